-- gen.image: PNG round trips, every PNG kind (hand-made files), corrupt files, grids, terminal
-- previews; gen.ui: progress output, CSV logs, plots.
local gen = require "gen"

local dir = os.tmpname()
os.remove(dir)
os.execute("mkdir -p " .. dir)
local function path(n) return dir .. "/" .. n end

-- A minimal PNG writer (stored deflate blocks, real CRCs) to make every colour type and depth.
local function crc32(s)
  local crc = 0xFFFFFFFF
  for i = 1, #s do
    crc = crc ~ s:byte(i)
    for _ = 1, 8 do crc = (crc & 1 == 1) and ((crc >> 1) ~ 0xEDB88320) or (crc >> 1) end
  end
  return crc ~ 0xFFFFFFFF
end
local function adler32(s)
  local a, b = 1, 0
  for i = 1, #s do a = (a + s:byte(i)) % 65521; b = (b + a) % 65521 end
  return (b << 16) | a
end
local function chunk(kind, data) return string.pack(">I4", #data) .. kind .. data .. string.pack(">I4", crc32(kind .. data)) end
local function png(w, h, color_type, depth, rows, plte)
  local raw = {}
  for y = 1, h do raw[#raw + 1] = "\0" .. rows[y] end
  raw = table.concat(raw)
  local z = "\x78\x01" .. "\1" .. string.pack("<I2I2", #raw, (~#raw) & 0xFFFF) .. raw .. string.pack(">I4", adler32(raw))
  return "\137PNG\r\n\26\n" .. chunk("IHDR", string.pack(">I4I4BBBBB", w, h, depth, color_type, 0, 0, 0)) ..
    (plte and chunk("PLTE", plte) or "") .. chunk("IDAT", z) .. chunk("IEND", "")
end
local function write(name, bytes) local f = assert(io.open(path(name), "wb")); f:write(bytes); f:close(); return path(name) end

describe("PNG", function()
  it("round-trips gray and RGB images", function()
    local g = gen.tensor({ { { 0, 64 }, { 128, 255 } } }, "uint8")
    gen.image.save(path("g.png"), g)
    assert.same(g:totable(), gen.image.load(path("g.png"), { uint8 = true }):totable())
    local rgb = gen.rand(3, 5, 7)
    gen.image.save(path("rgb.png"), rgb)
    local back = gen.image.load(path("rgb.png"))
    assert.same({ 3, 5, 7 }, back.shape)
    assert.is_true((back - rgb):abs():max():item() <= 0.5 / 255 + 1e-6)
    gen.image.save(path("hw.png"), gen.ones(4, 6))
    assert.same({ 1, 4, 6 }, gen.image.load(path("hw.png")).shape)
  end)

  it("converts gray+alpha, RGBA, palette and 16-bit files", function()
    local ga = gen.image.load(write("ga.png", png(2, 1, 4, 8, { "\10\255\20\128" })), { uint8 = true })
    assert.same({ { { 10, 20 } }, { { 255, 128 } } }, ga:totable())
    local rgba = gen.image.load(write("rgba.png", png(1, 1, 6, 8, { "\1\2\3\4" })), { uint8 = true })
    assert.same({ { { 1 } }, { { 2 } }, { { 3 } }, { { 4 } } }, rgba:totable())
    local pal = gen.image.load(write("pal.png", png(2, 1, 3, 8, { "\1\0" }, "\255\0\0\0\0\255")), { uint8 = true })
    assert.same({ { { 0, 255 } }, { { 0, 0 } }, { { 255, 0 } } }, pal:totable())
    local deep = gen.image.load(write("g16.png", png(2, 1, 0, 16, { "\255\255\128\0" })), { uint8 = true })
    assert.same({ { { 255, 128 } } }, deep:totable())
    local forced = gen.image.load(path("rgba.png"), { channels = 1 })
    assert.same({ 1, 1, 1 }, forced.shape)
  end)

  it("rejects corrupt files and bad tensors", function()
    local good = png(2, 2, 0, 8, { "\1\2", "\3\4" })
    local ok, err = pcall(gen.image.load, write("bad.png", good:sub(1, 40)))
    assert.is_false(ok)
    assert.truthy(err:find("gen.image.load: ", 1, true), err)
    ok = pcall(gen.image.load, write("junk.png", "not a png at all"))
    assert.is_false(ok)
    assert.has_error(function() gen.image.load(path("missing.png")) end)
    assert.has_error(function() gen.image.save(path("x.png"), gen.ones(5, 2, 2)) end)
    assert.has_error(function() gen.image.save(path("x.png"), gen.ones(2)) end)
  end)
end)

describe("grid", function()
  it("places tiles and padding like make_grid", function()
    local batch = gen.zeros(3, 1, 2, 2)
    for i = 1, 3 do gen.no_grad(function() batch[i]:fill_(i / 3) end) end
    local g = gen.image.grid(batch, { nrow = 2, padding = 1, range = { 0, 1 } })
    assert.same({ 1, 7, 7 }, g.shape) -- 2 rows x 2 columns of 2x2 tiles, 1 pixel of padding
    local t = g[1]:totable()
    assert.near(1 / 3, t[2][2], 1e-6)
    assert.near(2 / 3, t[2][5], 1e-6)
    assert.near(1, t[5][2], 1e-6)
    assert.equal(0, t[1][1])
    assert.equal(0, t[2][4]) -- the padding column between tiles
    assert.equal(0, t[5][5]) -- the missing fourth tile stays padding
  end)
end)

describe("terminal preview", function()
  local img = gen.tensor({ { { 0, 255 }, { 128, 64 } } }, "uint8")
  it("draws colour half blocks", function()
    local s = gen.image.show(img, { color = true, print = false })
    assert.equal("\27[38;2;0;0;0m\27[48;2;128;128;128m\u{2580}\27[38;2;255;255;255m\27[48;2;64;64;64m\u{2580}\27[0m", s)
  end)
  it("draws plain shading", function()
    -- columns average (0, 128) -> 64 and (255, 64) -> 159.5 on the 10-step ramp " .:-=+*#%@"
    assert.equal(":*", gen.image.show(img, { color = false, print = false }))
    assert.equal("@", gen.image.show(gen.ones(1, 2, 1), { color = false, print = false }))
  end)
end)

describe("ui", function()
  it("prints a plain progress line on non-terminals", function()
    local lines = {}
    local out = { write = function(_, ...) lines[#lines + 1] = table.concat({ ... }) end, flush = function() end }
    local t = 0
    local p = gen.ui.progress(20, { label = "epoch 1", tty = false, out = out, interval = 100, clock = function() return t end })
    for i = 1, 20 do t = i * 0.5; p:update(i, { loss = 1 / i }) end
    p:close()
    assert.equal(11, #lines) -- the first step, then every 10% of 20 steps; no duplicate at close
    assert.equal("epoch 1 1/20 2.0 it/s elapsed 00:01 eta 00:10 loss=1\n", lines[1])
    assert.equal("epoch 1 2/20 2.0 it/s elapsed 00:01 eta 00:09 loss=0.5\n", lines[2])
    assert.equal("epoch 1 20/20 2.0 it/s elapsed 00:10 eta 00:00 loss=0.05\n", lines[11])
  end)

  it("logs CSV and plots it", function()
    local log = gen.ui.CSVLogger(path("log.csv"), { "step", "loss_d", "loss_g" })
    for i = 1, 50 do log:log { step = i, loss_d = 1 / i, loss_g = math.log(i + 1) } end
    log:close()
    local names, cols = gen.ui.read_csv(path("log.csv"))
    assert.same({ "step", "loss_d", "loss_g" }, names)
    assert.equal(50, #cols.step)
    assert.near(0.5, cols.loss_d[2], 1e-6)
    local img = gen.ui.plot(path("plot.png"), { series = { { name = "loss_d", x = cols.step, y = cols.loss_d },
      { name = "loss_g", x = cols.step, y = cols.loss_g } }, title = "losses", width = 320, height = 200 })
    assert.same({ 3, 200, 320 }, img.shape)
    local back = gen.image.load(path("plot.png"), { uint8 = true })
    assert.same({ 3, 200, 320 }, back.shape)
    assert.is_true(back:lt(255):sum():item() > 1000) -- axes, text and curves drawn on white
    assert.has_error(function() gen.ui.plot(path("x.png"), {}) end)
  end)
end)
