--- gen.image: PNG files, sample grids, and images drawn in the terminal.
local gen = require "gen"
local core = gen.core

local image = {}

--- Loads a PNG (gray, gray+alpha, RGB, RGBA, palette, 16-bit) as float32 {C, H, W} in [0, 1], or
-- uint8 with {uint8 = true}; {channels = 1 | 3 | 4} converts.
function image.load(path, opts)
  opts = opts or {}
  local t = core.png_read(path, opts.channels or 0)
  if opts.uint8 then return t end
  return t:float() / 255
end

local function to_uint8(t, fname)
  if not gen.is_tensor(t) then error(fname .. ": expected a tensor, got " .. type(t), 3) end
  if t:dim() == 2 then t = t:unsqueeze(1) end
  if t:dim() ~= 3 then error(string.format("%s: expected {H, W} or {C, H, W}, got {%s}", fname, table.concat(t.shape, ",")), 3) end
  if t.dtype == "uint8" then return t end
  return (t:double():clamp(0, 1) * 255 + 0.5):byte()
end

--- Saves {H, W}, {1, H, W}, {3, H, W} (or 4 channels) as PNG: floats in [0, 1] (clamped), or uint8.
function image.save(path, t)
  core.png_write(path, to_uint8(t, "gen.image.save"))
end

--- Tiles a batch {N, C, H, W} into one image {C, H', W'} like torchvision's make_grid:
-- opts.nrow images per row (8), opts.padding pixels between and around (2), opts.pad_value (0),
-- opts.range = {lo, hi} maps that range to [0, 1] (else each grid is min-max scaled).
function image.grid(batch, opts)
  opts = opts or {}
  if not gen.is_tensor(batch) or batch:dim() ~= 4 then error("gen.image.grid: expected a batch {N, C, H, W}", 2) end
  local n, c, h, w = table.unpack(batch.shape)
  local nrow, pad = math.min(opts.nrow or 8, n), opts.padding or 2
  local rows = -(-n // nrow)
  local x = batch:float()
  if opts.range then
    x = (x - opts.range[1]) / (opts.range[2] - opts.range[1])
  else
    local lo, hi = x:min():item(), x:max():item()
    x = (x - lo) / math.max(hi - lo, 1e-12)
  end
  x = x:clamp(0, 1)
  local H, W = rows * (h + pad) + pad, nrow * (w + pad) + pad
  local out = gen.full({ c, H, W }, opts.pad_value or 0)
  gen.no_grad(function()
    for i = 1, n do
      local r, col = (i - 1) // nrow, (i - 1) % nrow
      out:narrow(2, r * (h + pad) + pad + 1, h):narrow(3, col * (w + pad) + pad + 1, w):copy_(x[i])
    end
  end)
  return out
end

local function wants_color(opts)
  if opts.color ~= nil then return opts.color end
  local term = os.getenv("TERM")
  return os.getenv("NO_COLOR") == nil and term ~= nil and term ~= "dumb"
end

local shades = " .:-=+*#%@"

--- Renders an image ({H, W}, {C, H, W} floats in [0, 1] or uint8, or a batch {N, C, H, W}, shown as
-- a grid) for the terminal: 24-bit colour half blocks (each character is two pixels), or
-- character shading when colour is unavailable (NO_COLOR, TERM=dumb, {color = false}).
-- opts.width limits the width in characters (downscaling by nearest pixel). Prints it, or with
-- opts.print == false returns it instead.
function image.show(t, opts)
  opts = opts or {}
  if t:dim() == 4 then t = image.grid(t, { range = opts.range }) end
  if t:dim() == 2 then t = t:unsqueeze(1) end
  local c, h, w = table.unpack(t.shape)
  local px = t.dtype == "uint8" and t:long() or (t:double():clamp(0, 1) * 255 + 0.5):long()
  if c == 1 then px = px:expand(3, h, w) elseif c == 2 then px = px:narrow(1, 1, 1):expand(3, h, w) else px = px:narrow(1, 1, 3) end
  local rgb = px:contiguous():totable()
  local width = math.min(w, opts.width or 80)
  local step = w / width
  local height = math.floor(h / step + 0.5)
  local function pixel(y, x)
    local sy, sx = math.min(h, math.floor((y - 1) * step) + 1), math.min(w, math.floor((x - 1) * step) + 1)
    return rgb[1][sy][sx], rgb[2][sy][sx], rgb[3][sy][sx]
  end
  local lines = {}
  local color = wants_color(opts)
  for y = 1, height, 2 do
    local parts = {}
    for x = 1, width do
      local r1, g1, b1 = pixel(y, x)
      local r2, g2, b2 = 0, 0, 0
      if y + 1 <= height then r2, g2, b2 = pixel(y + 1, x) end
      if color then
        parts[#parts + 1] = string.format("\27[38;2;%d;%d;%dm\27[48;2;%d;%d;%dm\u{2580}", r1, g1, b1, r2, g2, b2)
      else
        local v = ((r1 + g1 + b1) + (r2 + g2 + b2)) / 6
        local k = math.min(#shades, math.floor(v / 256 * #shades) + 1)
        parts[#parts + 1] = shades:sub(k, k)
      end
    end
    lines[#lines + 1] = table.concat(parts) .. (color and "\27[0m" or "")
  end
  local s = table.concat(lines, "\n")
  if opts.print == false then return s end
  io.write(s, "\n")
end

return image
