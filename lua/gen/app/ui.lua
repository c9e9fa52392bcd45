--- gen.ui: progress bars, CSV logs and loss-curve plots (PNG, no Python).
local gen = require "gen"

local ui = {}

--- Where rich output goes: nil in a terminal or a script. The notebook kernel (lua/gen/app/kernel.lua)
-- sets a table of hooks, and then images, plots and progress bars display in the notebook:
--   display.image(px)                  px: uint8 {C, H, W}; shown inline as a PNG
--   display.progress(p, line, final)   redraws progress bar p's line in place
ui.display = nil

local tty_cache = {}
local function is_terminal(out)
  if out ~= io.stdout and out ~= io.stderr then return false end
  local fd = out == io.stdout and 1 or 2
  if tty_cache[fd] == nil then
    local ok = os.execute("test -t " .. fd)
    tty_cache[fd] = ok == true or ok == 0
  end
  return tty_cache[fd]
end

local function fmt_duration(s)
  if s ~= s or s == math.huge or s < 0 then return "?" end
  s = math.floor(s + 0.5)
  if s >= 3600 then return string.format("%d:%02d:%02d", s // 3600, s % 3600 // 60, s % 60) end
  return string.format("%02d:%02d", s // 60, s % 60)
end

local function fmt_rate(rate)
  if rate > 0 and rate < 1 then return string.format("%.2f s/it", 1 / rate) end
  return string.format("%.1f it/s", rate)
end

local function fmt_values(values)
  if not values then return "" end
  local keys = {}
  for k in pairs(values) do keys[#keys + 1] = k end
  table.sort(keys)
  local parts = {}
  for _, k in ipairs(keys) do
    local v = values[k]
    if gen.is_tensor(v) and v:numel() == 1 then v = v:item() end
    parts[#parts + 1] = type(v) == "number" and string.format("%s=%.4g", k, v) or (k .. "=" .. tostring(v))
  end
  return table.concat(parts, " ")
end

local Progress = {}
Progress.__index = Progress

--- A progress bar: ui.progress(total, {label, width = 30, out = io.stderr, tty, interval = 10, clock}).
--   p:update(n [, values])   n items done (nil: one more); values: live numbers such as losses
--   p:close()                finishes the line
-- On a terminal the line redraws in place ("\r", at most 10 times a second):
--   label [#########.....................] 300/1000 52.1 it/s elapsed 00:05 eta 00:13 loss=0.31
-- Elsewhere (a log file, a pipe, {tty = false}) a plain line without the bar is printed at the
-- first update, every `interval` seconds and every 10% of the total, and at close if the last
-- state was not printed yet. `out` is a file or any object with :write(...) (and :flush()).
function ui.progress(total, opts)
  opts = opts or {}
  if total ~= nil and (math.type(total) ~= "integer" or total < 0) then
    error("gen.ui.progress: total must be a non-negative integer or nil, got " .. tostring(total), 2)
  end
  local out = opts.out or io.stderr
  -- a bar with no explicit destination draws in the notebook when there is one
  local display = opts.out == nil and ui.display and ui.display.progress or nil
  local p = setmetatable({ display = display,
    total = total, label = opts.label or "", width = opts.width or 30, out = out,
    tty = display and true or (opts.tty == nil and is_terminal(out) or opts.tty), interval = opts.interval or 10, done = 0,
    last_print = -math.huge, last_decile = -1, clock = opts.clock or gen.time, printed_done = nil,
  }, Progress)
  p.start = p.clock()
  return p
end

--- The status line (without the bar unless drawing on a terminal).
function Progress:line(values)
  local elapsed = self.clock() - self.start
  local rate = self.done / math.max(elapsed, 1e-9)
  local eta = self.total and (self.total - self.done) / math.max(rate, 1e-9) or 0 / 0
  local bar = ""
  if self.total and self.tty then
    local filled = math.floor(self.width * math.min(1, self.done / math.max(self.total, 1)))
    bar = "[" .. string.rep("#", filled) .. string.rep(".", self.width - filled) .. "] "
  end
  local count = self.total and string.format("%d/%d", self.done, self.total) or tostring(self.done)
  local s = string.format("%s%s%s %s elapsed %s eta %s", self.label ~= "" and (self.label .. " ") or "", bar, count,
    fmt_rate(rate), fmt_duration(elapsed), fmt_duration(eta))
  local v = fmt_values(values)
  return v ~= "" and (s .. " " .. v) or s
end

local function flush(out) if out.flush then out:flush() end end

function Progress:update(n, values)
  self.done = n or self.done + 1
  self.values = values or self.values
  local now = self.clock()
  if self.display then
    -- each redraw is a message to the browser: 4 a second is smooth enough
    if now - self.last_print >= 0.25 or self.done == self.total then
      self.last_print = now
      self.display(self, self:line(self.values), false)
    end
    return
  end
  if self.tty then
    if now - self.last_print >= 0.1 or self.done == self.total then
      self.last_print = now
      self.out:write("\r\27[K", self:line(self.values))
      flush(self.out)
    end
    return
  end
  local decile = self.total and math.floor(10 * self.done / math.max(self.total, 1)) or -1
  if now - self.last_print >= self.interval or decile > self.last_decile then
    self.last_print, self.last_decile, self.printed_done = now, decile, self.done
    self.out:write(self:line(self.values), "\n")
    flush(self.out)
  end
end

function Progress:close()
  if self.closed then return end
  self.closed = true
  if self.display then
    self.display(self, self:line(self.values), true)
    return
  end
  if self.tty then
    self.out:write("\r\27[K", self:line(self.values), "\n")
  elseif self.printed_done ~= self.done then
    self.out:write(self:line(self.values), "\n")
  end
  flush(self.out)
end
Progress.__close = Progress.close

---------------------------------------------------------------- CSV logs

local CSV = {}
CSV.__index = CSV

--- CSVLogger(path, {"step", "loss_d", ...} [, {append = true}]): writes a header line, then one
-- row per log:log{step = 1, loss_d = 0.7, ...} (missing values are left empty, unknown names are
-- an error), flushed at every row so a crash loses nothing. With {append = true} an existing file
-- with the same header is continued (a resumed run); a different header is an error.
function ui.CSVLogger(path, columns, opts)
  if type(path) ~= "string" then error("gen.ui.CSVLogger: expected a file path, got " .. type(path), 2) end
  if type(columns) ~= "table" or #columns == 0 then error("gen.ui.CSVLogger: expected a list of column names", 2) end
  local header = table.concat(columns, ",")
  local known = {}
  for _, c in ipairs(columns) do known[c] = true end
  local existing = io.open(path, "r")
  local append = false
  if existing then
    local first = existing:read("l")
    existing:close()
    if opts and opts.append and first then
      if first ~= header then
        error(string.format("gen.ui.CSVLogger: %s has columns '%s', not '%s'", path, first, header), 2)
      end
      append = true
    end
  end
  local f, err = io.open(path, append and "a" or "w")
  if not f then error("gen.ui.CSVLogger: " .. tostring(err), 2) end
  if not append then
    f:write(header, "\n")
    f:flush()
  end
  return setmetatable({ f = f, columns = columns, known = known, path = path }, CSV)
end

local function cell(v)
  if v == nil then return "" end
  if gen.is_tensor(v) then v = v:item() end
  if math.type(v) == "float" then return string.format("%.6g", v) end
  local s = tostring(v)
  if s:find('[,"\n]') then s = '"' .. s:gsub('"', '""') .. '"' end
  return s
end

function CSV:log(row)
  if not self.f then error("gen.ui.CSVLogger: log after close (" .. self.path .. ")", 2) end
  for k in pairs(row) do
    if not self.known[k] then error("gen.ui.CSVLogger: unknown column '" .. tostring(k) .. "' (columns: " ..
      table.concat(self.columns, ", ") .. ")", 2) end
  end
  local cells = {}
  for i, c in ipairs(self.columns) do cells[i] = cell(row[c]) end
  self.f:write(table.concat(cells, ","), "\n")
  self.f:flush()
end

function CSV:close()
  if self.f then self.f:close(); self.f = nil end
end
CSV.__close = CSV.close
CSV.__gc = CSV.close

--- Reads a CSV written by CSVLogger: returns the column names and a table column -> array of numbers.
function ui.read_csv(path)
  local f, err = io.open(path)
  if not f then error("gen.ui.read_csv: " .. tostring(err), 2) end
  local header = f:read("l")
  if not header then f:close(); error("gen.ui.read_csv: " .. path .. " is empty", 2) end
  local names = {}
  for n in header:gmatch("[^,]+") do names[#names + 1] = n end
  local cols = {}
  for _, n in ipairs(names) do cols[n] = {} end
  for line in f:lines() do
    local i = 0
    for field in (line .. ","):gmatch("([^,]*),") do
      i = i + 1
      if names[i] then cols[names[i]][#cols[names[i]] + 1] = tonumber(field) end
    end
  end
  f:close()
  return names, cols
end

---------------------------------------------------------------- plots

-- A 3x5 pixel font: each glyph is 5 rows of 3 bits (most significant bit on the left).
local font = {
  ["0"] = { 7, 5, 5, 5, 7 }, ["1"] = { 2, 6, 2, 2, 7 }, ["2"] = { 7, 1, 7, 4, 7 }, ["3"] = { 7, 1, 7, 1, 7 },
  ["4"] = { 5, 5, 7, 1, 1 }, ["5"] = { 7, 4, 7, 1, 7 }, ["6"] = { 7, 4, 7, 5, 7 }, ["7"] = { 7, 1, 1, 1, 1 },
  ["8"] = { 7, 5, 7, 5, 7 }, ["9"] = { 7, 5, 7, 1, 7 }, ["."] = { 0, 0, 0, 0, 2 }, ["-"] = { 0, 0, 7, 0, 0 },
  ["+"] = { 0, 2, 7, 2, 0 }, ["_"] = { 0, 0, 0, 0, 7 }, [" "] = { 0, 0, 0, 0, 0 }, ["/"] = { 1, 1, 2, 4, 4 },
  ["("] = { 2, 4, 4, 4, 2 }, [")"] = { 2, 1, 1, 1, 2 }, [":"] = { 0, 2, 0, 2, 0 }, ["="] = { 0, 7, 0, 7, 0 },
  A = { 2, 5, 7, 5, 5 }, B = { 6, 5, 6, 5, 6 }, C = { 3, 4, 4, 4, 3 }, D = { 6, 5, 5, 5, 6 }, E = { 7, 4, 6, 4, 7 },
  F = { 7, 4, 6, 4, 4 }, G = { 3, 4, 5, 5, 3 }, H = { 5, 5, 7, 5, 5 }, I = { 7, 2, 2, 2, 7 }, J = { 1, 1, 1, 5, 2 },
  K = { 5, 5, 6, 5, 5 }, L = { 4, 4, 4, 4, 7 }, M = { 5, 7, 7, 5, 5 }, N = { 6, 5, 5, 5, 5 }, O = { 2, 5, 5, 5, 2 },
  P = { 6, 5, 6, 4, 4 }, Q = { 2, 5, 5, 6, 3 }, R = { 6, 5, 6, 5, 5 }, S = { 3, 4, 2, 1, 6 }, T = { 7, 2, 2, 2, 2 },
  U = { 5, 5, 5, 5, 7 }, V = { 5, 5, 5, 5, 2 }, W = { 5, 5, 7, 7, 5 }, X = { 5, 5, 2, 5, 5 }, Y = { 5, 5, 2, 2, 2 },
  Z = { 7, 1, 2, 4, 7 },
}

local palette = { { 31, 119, 180 }, { 255, 127, 14 }, { 44, 160, 44 }, { 214, 39, 40 }, { 148, 103, 189 }, { 140, 86, 75 } }

local Canvas = {}
Canvas.__index = Canvas

local function canvas(w, h)
  local px = {}
  for i = 1, w * h * 3 do px[i] = 255 end
  return setmetatable({ w = w, h = h, px = px }, Canvas)
end

function Canvas:set(x, y, c)
  x, y = math.floor(x + 0.5), math.floor(y + 0.5)
  if x < 1 or y < 1 or x > self.w or y > self.h then return end
  local i = ((y - 1) * self.w + (x - 1))
  self.px[i + 1], self.px[self.w * self.h + i + 1], self.px[2 * self.w * self.h + i + 1] = c[1], c[2], c[3]
end

function Canvas:line(x0, y0, x1, y1, c, thick)
  local n = math.max(math.abs(x1 - x0), math.abs(y1 - y0), 1)
  for k = 0, n do
    local x, y = x0 + (x1 - x0) * k / n, y0 + (y1 - y0) * k / n
    self:set(x, y, c)
    if thick then self:set(x, y + 1, c) end
  end
end

function Canvas:text(x, y, s, c, scale)
  scale = scale or 2
  s = s:upper()
  for ch in s:gmatch(".") do
    local g = font[ch] or font[" "]
    for row = 1, 5 do
      for col = 0, 2 do
        if g[row] & (4 >> col) ~= 0 then
          for dy = 0, scale - 1 do for dx = 0, scale - 1 do self:set(x + col * scale + dx, y + (row - 1) * scale + dy, c) end end
        end
      end
    end
    x = x + 4 * scale
  end
end

local function text_width(s, scale) return #s * 4 * (scale or 2) end

function Canvas:tensor()
  local bytes = {}
  for i = 1, #self.px, 4096 do
    bytes[#bytes + 1] = string.char(table.unpack(self.px, i, math.min(i + 4095, #self.px)))
  end
  return gen.from_bytes(table.concat(bytes), { 3, self.h, self.w })
end

local function nice_ticks(lo, hi, n)
  if hi <= lo then hi = lo + 1 end
  local raw = (hi - lo) / n
  local mag = 10 ^ math.floor(math.log(raw, 10))
  local step = mag
  for _, m in ipairs { 1, 2, 5, 10 } do if m * mag >= raw then step = m * mag; break end end
  local ticks = {}
  for v = math.ceil(lo / step) * step, hi + step * 1e-9, step do ticks[#ticks + 1] = v end
  return ticks, step
end

local function tick_label(v, step)
  if math.abs(v) < step * 1e-6 then return "0" end
  if step >= 1 and math.abs(v) < 1e6 then return string.format("%d", math.floor(v + 0.5)) end
  local digits = math.max(0, -math.floor(math.log(step, 10)))
  if math.abs(v) >= 1e6 or digits > 5 then return string.format("%.1e", v) end
  return string.format("%." .. digits .. "f", v)
end

function Canvas:rect(x0, y0, x1, y1, fill, border)
  for y = math.floor(y0), math.floor(y1) do
    for x = math.floor(x0), math.floor(x1) do self:set(x, y, fill) end
  end
  if border then
    self:line(x0, y0, x1, y0, border); self:line(x0, y1, x1, y1, border)
    self:line(x0, y0, x0, y1, border); self:line(x1, y0, x1, y1, border)
  end
end

-- An exponential moving average (TensorBoard's smoothing), skipping non-finite values.
local function smooth(ys, alpha)
  local out, m, k = {}, 0, 0
  for j, y in ipairs(ys) do
    if y == y and math.abs(y) ~= math.huge then
      m, k = alpha * m + (1 - alpha) * y, k + 1
      out[j] = m / (1 - alpha ^ k) -- debiased, so the curve starts at the first value
    else
      out[j] = y
    end
  end
  return out
end

local function finite(v) return type(v) == "number" and v == v and math.abs(v) ~= math.huge end

--- Renders line plots to a PNG (no Python, no plotting library): axes with numbered ticks and a
-- grid, a legend, a title and axis labels in a built-in 3x5 pixel font (upper case).
--   ui.plot(path, {series = {{name = "loss_d", x = {...}, y = {...}}, ...}, title = "...",
--                  xlabel = "step", ylabel = "loss", width = 800, height = 500, smooth = 0.9})
-- x defaults to 1..#y; non-finite y values break the line. smooth (0..1, per series or for all)
-- draws the raw values faded and their moving average on top. path nil only renders. In a
-- notebook the plot is also shown inline (not with show = false). Returns the image, a uint8
-- tensor {3, height, width}.
function ui.plot(path, opts)
  if type(opts) ~= "table" or type(opts.series) ~= "table" or #opts.series == 0 then
    error("gen.ui.plot: expected {series = {{name = ..., x = {...}, y = {...}}, ...}}", 2)
  end
  local W, H = opts.width or 800, opts.height or 500
  if math.type(W) ~= "integer" or math.type(H) ~= "integer" or W < 160 or H < 100 or W * H > 1e8 then
    error(string.format("gen.ui.plot: width and height must be integers of at least 160 x 100, got %s x %s",
      tostring(W), tostring(H)), 2)
  end
  for i, s in ipairs(opts.series) do
    if type(s) ~= "table" or type(s.y) ~= "table" then error("gen.ui.plot: series " .. i .. " has no y values", 2) end
    if s.x ~= nil and (type(s.x) ~= "table" or #s.x ~= #s.y) then
      error(string.format("gen.ui.plot: series %d has %s x values for %d y values", i,
        type(s.x) == "table" and tostring(#s.x) or "no", #s.y), 2)
    end
  end
  local c = canvas(W, H)
  local left, right, top, bottom = 90, 20, 40, 60
  local xmin, xmax, ymin, ymax = math.huge, -math.huge, math.huge, -math.huge
  for _, s in ipairs(opts.series) do
    for j, y in ipairs(s.y) do
      local x = s.x and s.x[j] or j
      if finite(y) and finite(x) then
        xmin, xmax, ymin, ymax = math.min(xmin, x), math.max(xmax, x), math.min(ymin, y), math.max(ymax, y)
      end
    end
  end
  if xmin == math.huge then xmin, xmax, ymin, ymax = 0, 1, 0, 1 end
  if xmax == xmin then xmax = xmin + 1 end
  if ymax == ymin then ymax, ymin = ymax + 0.5, ymin - 0.5 end
  local pad = (ymax - ymin) * 0.05
  ymin, ymax = ymin - pad, ymax + pad
  local function px(x) return left + (x - xmin) / (xmax - xmin) * (W - left - right) end
  local function py(y) return H - bottom - (y - ymin) / (ymax - ymin) * (H - top - bottom) end
  local black, grid = { 0, 0, 0 }, { 225, 225, 225 }
  local yt, ystep = nice_ticks(ymin, ymax, 6)
  for _, v in ipairs(yt) do
    c:line(left, py(v), W - right, py(v), grid)
    c:line(left - 5, py(v), left, py(v), black)
    local label = tick_label(v, ystep)
    c:text(left - 10 - text_width(label), py(v) - 5, label, black)
  end
  local xt, xstep = nice_ticks(xmin, xmax, 6)
  for _, v in ipairs(xt) do
    c:line(px(v), top, px(v), H - bottom, grid)
    c:line(px(v), H - bottom, px(v), H - bottom + 5, black)
    local label = tick_label(v, xstep)
    c:text(px(v) - text_width(label) / 2, H - bottom + 10, label, black)
  end
  c:line(left, H - bottom, W - right, H - bottom, black)
  c:line(left, top, left, H - bottom, black)
  local function draw(s, ys, col)
    local prev
    for j, y in ipairs(ys) do
      local x = s.x and s.x[j] or j
      if finite(y) and finite(x) then
        local cur = { px(x), py(y) }
        if prev then c:line(prev[1], prev[2], cur[1], cur[2], col, true) else c:set(cur[1], cur[2], col) end
        prev = cur
      else
        prev = nil
      end
    end
  end
  local names = {}
  for i, s in ipairs(opts.series) do
    local col = palette[(i - 1) % #palette + 1]
    local alpha = s.smooth or opts.smooth
    if alpha and alpha > 0 then
      draw(s, s.y, { (col[1] + 3 * 255) // 4, (col[2] + 3 * 255) // 4, (col[3] + 3 * 255) // 4 })
      draw(s, smooth(s.y, math.min(alpha, 0.999)), col)
    else
      draw(s, s.y, col)
    end
    names[i] = tostring(s.name or ("series " .. i))
  end
  local longest = 0
  for _, n in ipairs(names) do longest = math.max(longest, text_width(n)) end
  local lx1, ly0 = W - right - 8, top + 6
  local lx0, ly1 = lx1 - longest - 48, ly0 + 16 * #names + 6
  c:rect(lx0, ly0, lx1, ly1, { 255, 255, 255 }, { 160, 160, 160 })
  for i, n in ipairs(names) do
    local col = palette[(i - 1) % #palette + 1]
    local ly = ly0 + 8 + (i - 1) * 16
    c:line(lx0 + 8, ly + 4, lx0 + 32, ly + 4, col, true)
    c:text(lx0 + 40, ly, n, black)
  end
  if opts.title then c:text((W - text_width(opts.title, 3)) / 2, 10, opts.title, black, 3) end
  if opts.xlabel then c:text((W - text_width(opts.xlabel)) / 2, H - 22, opts.xlabel, black) end
  if opts.ylabel then c:text(6, top - 20, opts.ylabel, black) end
  local img = c:tensor()
  if path then require("gen.image").save(path, img) end
  if ui.display and ui.display.image and opts.show ~= false then ui.display.image(img) end
  return img
end

return ui
