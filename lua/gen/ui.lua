--- gen.ui: progress bars, CSV logs and loss-curve plots (PNG, no Python).
local gen = require "gen"

local ui = {}

local function is_terminal(out)
  if out ~= io.stdout and out ~= io.stderr then return false end
  local fd = out == io.stdout and 1 or 2
  local ok = os.execute("test -t " .. fd)
  return ok == true or ok == 0
end

local function fmt_duration(s)
  if s ~= s or s == math.huge then return "?" end
  s = math.floor(s + 0.5)
  if s >= 3600 then return string.format("%d:%02d:%02d", s // 3600, s % 3600 // 60, s % 60) end
  return string.format("%02d:%02d", s // 60, s % 60)
end

local function fmt_values(values)
  if not values then return "" end
  local keys = {}
  for k in pairs(values) do keys[#keys + 1] = k end
  table.sort(keys)
  local parts = {}
  for _, k in ipairs(keys) do
    local v = values[k]
    parts[#parts + 1] = type(v) == "number" and string.format("%s=%.4g", k, v) or (k .. "=" .. tostring(v))
  end
  return table.concat(parts, " ")
end

local Progress = {}
Progress.__index = Progress

--- progress(total, {label, width = 30, tty, out = io.stderr, interval = 10 (seconds, non-terminal)})
-- p:update(n [, values]) sets the count done (values: a table of live numbers, e.g. losses);
-- p:close() finishes the line. On a terminal the bar redraws in place; otherwise a plain line is
-- printed at most every `interval` seconds and at every 10% of the total.
function ui.progress(total, opts)
  opts = opts or {}
  local out = opts.out or io.stderr
  local p = setmetatable({
    total = total, label = opts.label or "", width = opts.width or 30, out = out, start = gen.time(),
    tty = opts.tty == nil and is_terminal(out) or opts.tty, interval = opts.interval or 10, done = 0,
    last_print = -math.huge, last_decile = -1, clock = opts.clock or gen.time,
  }, Progress)
  p.start = p.clock()
  return p
end

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
  local s = string.format("%s%s%s %.1f it/s elapsed %s eta %s", self.label ~= "" and (self.label .. " ") or "", bar, count,
    rate, fmt_duration(elapsed), fmt_duration(eta))
  local v = fmt_values(values)
  return v ~= "" and (s .. " " .. v) or s
end

function Progress:update(n, values)
  self.done = n
  self.values = values or self.values
  if self.tty then
    self.out:write("\r\27[K", self:line(self.values))
    self.out:flush()
    return
  end
  local now = self.clock()
  local decile = self.total and math.floor(10 * n / math.max(self.total, 1)) or -1
  if now - self.last_print >= self.interval or decile > self.last_decile then
    self.last_print, self.last_decile = now, decile
    self.out:write(self:line(self.values), "\n")
    self.out:flush()
  end
end

function Progress:close()
  if self.tty then self.out:write("\r\27[K", self:line(self.values), "\n")
  elseif self.done ~= (self.total or -1) or self.last_decile < 10 then self.out:write(self:line(self.values), "\n") end
  self.out:flush()
end

---------------------------------------------------------------- CSV logs

local CSV = {}
CSV.__index = CSV

--- CSVLogger(path, {"step", "loss_d", ...} [, {append = true}]): a header line (unless appending to
-- an existing file), then one row per :log{step = 1, loss_d = 0.7, ...}. Flushed every row.
function ui.CSVLogger(path, columns, opts)
  local exists = io.open(path, "r")
  if exists then exists:close() end
  local append = opts and opts.append and exists
  local f, err = io.open(path, append and "a" or "w")
  if not f then error("gen.ui.CSVLogger: " .. tostring(err), 2) end
  if not append then f:write(table.concat(columns, ","), "\n") end
  return setmetatable({ f = f, columns = columns }, CSV)
end

function CSV:log(row)
  local cells = {}
  for i, c in ipairs(self.columns) do
    local v = row[c]
    cells[i] = v == nil and "" or (math.type(v) == "float" and string.format("%.6g", v) or tostring(v))
  end
  self.f:write(table.concat(cells, ","), "\n")
  self.f:flush()
end

function CSV:close() self.f:close() end

--- Reads a CSV written by CSVLogger: returns the column names and a table column -> array of numbers.
function ui.read_csv(path)
  local f = assert(io.open(path))
  local header = f:read("l")
  local names = {}
  for n in header:gmatch("[^,]+") do names[#names + 1] = n end
  local cols = {}
  for _, n in ipairs(names) do cols[n] = {} end
  for line in f:lines() do
    local i = 0
    for cell in (line .. ","):gmatch("([^,]*),") do
      i = i + 1
      if names[i] then cols[names[i]][#cols[names[i]] + 1] = tonumber(cell) end
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

--- Renders line plots to a PNG: plot(path, {series = {{name = "loss_d", x = {...}, y = {...}}, ...},
-- title, xlabel, ylabel, width = 800, height = 500}). Returns the image tensor {3, H, W}.
function ui.plot(path, opts)
  if type(opts) ~= "table" or type(opts.series) ~= "table" or #opts.series == 0 then
    error("gen.ui.plot: expected {series = {{name, x, y}, ...}}", 2)
  end
  local W, H = opts.width or 800, opts.height or 500
  local c = canvas(W, H)
  local left, right, top, bottom = 90, 20, 40, 60
  local xmin, xmax, ymin, ymax = math.huge, -math.huge, math.huge, -math.huge
  for i, s in ipairs(opts.series) do
    if type(s.y) ~= "table" then error("gen.ui.plot: series " .. i .. " has no y values", 2) end
    for j, y in ipairs(s.y) do
      local x = s.x and s.x[j] or j
      if y == y and math.abs(y) ~= math.huge then
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
    local s = tick_label(v, ystep)
    c:text(left - 8 - text_width(s), py(v) - 5, s, black)
  end
  local xt, xstep = nice_ticks(xmin, xmax, 6)
  for _, v in ipairs(xt) do
    c:line(px(v), top, px(v), H - bottom, grid)
    local s = tick_label(v, xstep)
    c:text(px(v) - text_width(s) / 2, H - bottom + 8, s, black)
  end
  c:line(left, H - bottom, W - right, H - bottom, black)
  c:line(left, top, left, H - bottom, black)
  for i, s in ipairs(opts.series) do
    local col = palette[(i - 1) % #palette + 1]
    local prev
    for j, y in ipairs(s.y) do
      local x = s.x and s.x[j] or j
      if y == y and math.abs(y) ~= math.huge then
        local cur = { px(x), py(y) }
        if prev then c:line(prev[1], prev[2], cur[1], cur[2], col, true) else c:set(cur[1], cur[2], col) end
        prev = cur
      else
        prev = nil
      end
    end
    local ly = top + 8 + (i - 1) * 16
    c:line(W - right - 150, ly + 5, W - right - 125, ly + 5, col, true)
    c:text(W - right - 118, ly, s.name or ("series " .. i), black)
  end
  if opts.title then c:text((W - text_width(opts.title, 3)) / 2, 10, opts.title, black, 3) end
  if opts.xlabel then c:text((W - text_width(opts.xlabel)) / 2, H - 22, opts.xlabel, black) end
  if opts.ylabel then c:text(6, top - 20, opts.ylabel, black) end
  local img = c:tensor()
  if path then require("gen.image").save(path, img) end
  return img
end

return ui
