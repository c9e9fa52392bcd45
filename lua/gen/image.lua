--- gen.image: PNG files, sample grids, and images drawn in the terminal.
--   image.load(path [, {channels, uint8}])    PNG -> {C, H, W} float32 in [0, 1] (or uint8)
--   image.save(path, t)                       {H, W}, {C, H, W} (C = 1, 2, 3, 4) -> PNG
--   image.grid(batch [, {nrow, padding, range, pad_value}])   {N, C, H, W} -> one {C, H', W'}
--   image.show(t [, {width, color, range, print}])            draws it in the terminal (inline in a notebook)
-- The PNG work is C over libpng (csrc/io_png.c); libpng's longjmp error handling stays inside C.
local gen = require "gen"
local core = gen.core

local image = {}

-- Calls a core function, re-raising its error at the caller of the function that called this one
-- (so a message points at the user's line, not at this file).
local function call(fn, ...)
  local ok, result = pcall(fn, ...)
  if not ok then error((tostring(result):gsub("^[^\n:]*:%d+: ", "")), 3) end
  return result
end

local function shape_str(t) return "{" .. table.concat(t.shape, ",") .. "}" end

--- Loads a PNG of any kind (gray, gray+alpha, RGB, RGBA, palette, 1/2/4/8/16-bit) as float32
-- {C, H, W} in [0, 1] with the file's own channels (1 to 4), or uint8 with {uint8 = true};
-- {channels = 1 | 3 | 4} converts (RGB -> gray by luminance, gray -> RGB, alpha dropped or added).
function image.load(path, opts)
  opts = opts or {}
  local t = call(core.png_read, path, opts.channels or 0)
  if opts.uint8 then return t end
  return core.io.batch_images(t:unsqueeze(1), gen.tensor({ 1 }, "int64"), { range = { 0, 1 } })[1]
end

--- Converts an image to uint8 {C, H, W}: uint8 as is, other dtypes from opts.range (default
-- {0, 1}) with clamping. Accepts {H, W} (one channel).
function image.to_uint8(t, range, fname)
  fname = fname or "gen.image.to_uint8"
  if not gen.is_tensor(t) then error(fname .. ": expected a tensor, got " .. type(t), 3) end
  if t:dim() == 2 then t = t:unsqueeze(1) end
  if t:dim() ~= 3 then error(string.format("%s: expected an image {H, W} or {C, H, W}, got %s", fname, shape_str(t)), 3) end
  if t.dtype == "uint8" then return t end
  range = range or { 0, 1 }
  return core.io.to_uint8(t:detach(), range[1], range[2])
end

--- Saves {H, W}, {1, H, W} (gray), {3, H, W} (RGB) or {2|4, H, W} (with alpha) as PNG: floats
-- in [0, 1] (clamped; opts.range = {lo, hi} maps another range) or uint8 as they are.
function image.save(path, t, opts)
  local bytes = image.to_uint8(t, opts and opts.range, "gen.image.save")
  call(core.png_write, path, bytes)
end

--- Tiles a batch {N, C, H, W} into one image {C, H', W'} as torchvision's make_grid does:
-- opts.nrow images per row (8), opts.padding pixels between and around tiles (2),
-- opts.pad_value (0) for the padding, opts.range = {lo, hi} maps that range to [0, 1] with
-- clamping; without it each grid is min-max scaled (uint8 batches are divided by 255).
-- H' = rows * (H + padding) + padding, W' = min(nrow, N) * (W + padding) + padding.
function image.grid(batch, opts)
  opts = opts or {}
  if not gen.is_tensor(batch) or batch:dim() ~= 4 then
    error("gen.image.grid: expected a batch {N, C, H, W}, got " .. (gen.is_tensor(batch) and shape_str(batch) or type(batch)), 2)
  end
  local n, c, h, w = table.unpack(batch.shape)
  if n == 0 then error("gen.image.grid: the batch is empty", 2) end
  local nrow, pad = opts.nrow or 8, opts.padding or 2
  if math.type(nrow) ~= "integer" or nrow < 1 then error("gen.image.grid: nrow must be a positive integer", 2) end
  if math.type(pad) ~= "integer" or pad < 0 then error("gen.image.grid: padding must be an integer >= 0", 2) end
  nrow = math.min(nrow, n)
  local rows = -(-n // nrow)
  local x
  if batch.dtype == "uint8" and not opts.range then
    x = core.io.batch_images(batch, gen.arange(1, n + 1), { range = { 0, 1 } })
  else
    x = batch:detach():float()
    local lo, hi
    if opts.range then
      lo, hi = opts.range[1], opts.range[2]
    else
      lo, hi = x:min():item(), x:max():item()
    end
    x = ((x - lo) / math.max(hi - lo, 1e-12)):clamp(0, 1)
  end
  local H, W = rows * (h + pad) + pad, nrow * (w + pad) + pad
  local out = gen.full({ c, H, W }, opts.pad_value or 0)
  for i = 1, n do
    local r, col = (i - 1) // nrow, (i - 1) % nrow
    out:narrow(2, r * (h + pad) + pad + 1, h):narrow(3, col * (w + pad) + pad + 1, w):copy_(x[i])
  end
  return out
end

local function wants_color(opts)
  if opts.color ~= nil then return opts.color end
  local term = os.getenv("TERM")
  return os.getenv("NO_COLOR") == nil and term ~= nil and term ~= "" and term ~= "dumb"
end

local SHADES = " .:-=+*#%@"

-- Box-filter downscaling of rgb[c][y][x] (1-based tables) to `width` columns, keeping the aspect:
-- returns a function pixel(y, x) -> r, g, b and the output height in pixels.
local function sampler(rgb, h, w, width)
  local step = w / width
  local height = math.max(1, math.floor(h / step + 0.5))
  local ystep = h / height
  local function span(i, s, n)
    local a = math.floor((i - 1) * s) + 1
    return a, math.max(a, math.min(n, math.floor(i * s)))
  end
  local R, G, B = rgb[1], rgb[2], rgb[3]
  return function(y, x)
    local y0, y1 = span(y, ystep, h)
    local x0, x1 = span(x, step, w)
    local r, g, b = 0, 0, 0
    for yy = y0, y1 do
      local rr, gr, br = R[yy], G[yy], B[yy]
      for xx = x0, x1 do r, g, b = r + rr[xx], g + gr[xx], b + br[xx] end
    end
    local k = (y1 - y0 + 1) * (x1 - x0 + 1)
    return (r + k // 2) // k, (g + k // 2) // k, (b + k // 2) // k
  end, height
end

--- Draws an image in the terminal: {H, W} or {C, H, W} (floats in [0, 1] unless opts.range,
-- or uint8), or a batch {N, C, H, W} shown as a grid. Each character is two pixels stacked:
-- "▀" in 24-bit colour (foreground = upper pixel, background = lower), or, where colour is
-- unavailable (NO_COLOR set, TERM=dumb or unset, {color = false}), one of " .:-=+*#%@" for the
-- pair's mean brightness. opts.width (default $COLUMNS or 80) bounds the width in characters;
-- larger images are box-filtered down. Prints the drawing, or returns it with {print = false}.
-- In a notebook (gen.ui.display set by the kernel) the image is shown inline as a PNG instead.
function image.show(t, opts)
  opts = opts or {}
  if not gen.is_tensor(t) then error("gen.image.show: expected a tensor, got " .. type(t), 2) end
  local range = opts.range
  if t:dim() == 4 then -- the grid maps the range to [0, 1] itself
    t = image.grid(t, { range = range, nrow = opts.nrow, padding = opts.padding })
    range = nil
  end
  if t:dim() ~= 2 and t:dim() ~= 3 then
    error("gen.image.show: expected {H, W}, {C, H, W} or {N, C, H, W}, got " .. shape_str(t), 2)
  end
  local px = image.to_uint8(t, range, "gen.image.show")
  local c, h, w = table.unpack(px.shape)
  if c > 4 then error("gen.image.show: expected 1 to 4 channels, got " .. c, 2) end
  local display = opts.print ~= false and package.loaded["gen.app.ui"] and package.loaded["gen.app.ui"].display
  if display and display.image then
    display.image(px)
    return
  end
  px = c < 3 and px:narrow(1, 1, 1):expand(3, h, w) or px:narrow(1, 1, 3) -- alpha is not drawn
  local width = math.min(w, opts.width or tonumber(os.getenv("COLUMNS") or "") or 80)
  if math.type(width) ~= "integer" or width < 1 then error("gen.image.show: width must be a positive integer", 2) end
  local pixel, height = sampler(px:contiguous():totable(), h, w, width)
  local color = wants_color(opts)
  local lines = {}
  for y = 1, height, 2 do
    local parts, fg, bg = {}, nil, nil
    for x = 1, width do
      local r1, g1, b1 = pixel(y, x)
      if color then
        local f = string.format("%d;%d;%d", r1, g1, b1)
        local b = y + 1 <= height and string.format("%d;%d;%d", pixel(y + 1, x)) or "default"
        -- escapes only when a colour changes: a flat background costs one byte per character
        if f ~= fg then parts[#parts + 1] = "\27[38;2;" .. f .. "m"; fg = f end
        if b ~= bg then parts[#parts + 1] = b == "default" and "\27[49m" or ("\27[48;2;" .. b .. "m"); bg = b end
        parts[#parts + 1] = "\u{2580}"
      else
        local v, n = r1 + g1 + b1, 3
        if y + 1 <= height then
          local r2, g2, b2 = pixel(y + 1, x)
          v, n = v + r2 + g2 + b2, 6
        end
        local k = math.min(#SHADES, math.floor(v / n / 256 * #SHADES) + 1)
        parts[#parts + 1] = SHADES:sub(k, k)
      end
    end
    lines[#lines + 1] = table.concat(parts) .. (color and "\27[0m" or "")
  end
  local s = table.concat(lines, "\n")
  if opts.print == false then return s end
  io.write(s, "\n")
end

return image
