-- gen.image: PNG round trips, every PNG kind (hand-made files), corrupt and lying files, grids,
-- terminal previews.
local gen = require "gen"

local dir = os.tmpname()
os.remove(dir)
os.execute("mkdir -p " .. dir)
local function path(n) return dir .. "/" .. n end

-- A minimal PNG writer (stored deflate blocks, real CRCs) to make every colour type and depth
-- that gen.image.save does not write itself.
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
-- rows: the raw bytes of each row (without the filter byte); extra: chunks between PLTE and IDAT
local function png(w, h, color_type, depth, rows, plte, extra)
  local raw = {}
  for y = 1, h do raw[#raw + 1] = "\0" .. rows[y] end
  raw = table.concat(raw)
  local z = "\x78\x01" .. "\1" .. string.pack("<I2I2", #raw, (~#raw) & 0xFFFF) .. raw .. string.pack(">I4", adler32(raw))
  return "\137PNG\r\n\26\n" .. chunk("IHDR", string.pack(">I4I4BBBBB", w, h, depth, color_type, 0, 0, 0)) ..
    (plte and chunk("PLTE", plte) or "") .. (extra or "") .. chunk("IDAT", z) .. chunk("IEND", "")
end
local function write(name, bytes) local f = assert(io.open(path(name), "wb")); f:write(bytes); f:close(); return path(name) end
local function u8(name, opts)
  opts = opts or {}
  opts.uint8 = true
  return gen.image.load(path(name), opts):totable()
end

local function fails_with(fn, ...)
  local ok, err = pcall(fn)
  assert.is_false(ok, "expected an error")
  err = tostring(err)
  for _, s in ipairs { ... } do assert.truthy(err:find(s, 1, true), "'" .. s .. "' not in: " .. err) end
end

describe("PNG", function()
  it("round-trips gray, gray+alpha, RGB and RGBA images", function()
    local g = gen.tensor({ { { 0, 64 }, { 128, 255 } } }, "uint8")
    gen.image.save(path("g.png"), g)
    assert.same(g:totable(), u8("g.png"))
    local f = gen.image.load(path("g.png"))
    assert.equal("float32", f.dtype)
    local function f32(x) return (string.unpack("f", string.pack("f", x))) end
    assert.same({ { { 0, f32(64 / 255) }, { f32(128 / 255), 1 } } }, f:totable()) -- exact at 0 and 1
    for _, c in ipairs { 2, 3, 4 } do
      local t = gen.randint(0, 255, { c, 3, 5 }, { dtype = "uint8" })
      gen.image.save(path("c.png"), t)
      assert.same(t:totable(), u8("c.png"))
    end
    local rgb = gen.rand(3, 5, 7)
    gen.image.save(path("rgb.png"), rgb)
    local back = gen.image.load(path("rgb.png"))
    assert.same({ 3, 5, 7 }, back.shape)
    assert.is_true((back - rgb):abs():max():item() <= 0.5 / 255 + 1e-6)
    gen.image.save(path("hw.png"), gen.ones(4, 6))
    assert.same({ 1, 4, 6 }, gen.image.load(path("hw.png")).shape)
    -- floats are clamped to [0, 1]; NaN becomes 0; views are written in logical order
    gen.image.save(path("clamp.png"), gen.tensor { { -3, 0.5, 7, 0 / 0 } })
    assert.same({ { { 0, 128, 255, 0 } } }, u8("clamp.png"))
    gen.image.save(path("range.png"), gen.tensor { { -1, 0, 1 } }, { range = { -1, 1 } })
    assert.same({ { { 0, 128, 255 } } }, u8("range.png"))
    local tr = gen.tensor({ { 1, 2, 3 }, { 4, 5, 6 } }, "uint8"):t()
    gen.image.save(path("tr.png"), tr)
    assert.same({ tr:totable() }, u8("tr.png"))
  end)

  it("converts gray+alpha, RGBA, palette, low-bit and 16-bit files", function()
    write("ga.png", png(2, 1, 4, 8, { "\10\255\20\128" }))
    assert.same({ { { 10, 20 } }, { { 255, 128 } } }, u8("ga.png"))
    write("rgba.png", png(1, 1, 6, 8, { "\1\2\3\4" }))
    assert.same({ { { 1 } }, { { 2 } }, { { 3 } }, { { 4 } } }, u8("rgba.png"))
    write("pal.png", png(2, 1, 3, 8, { "\1\0" }, "\255\0\0\0\0\255"))
    assert.same({ { { 0, 255 } }, { { 0, 0 } }, { { 255, 0 } } }, u8("pal.png"))
    -- a palette with transparency (tRNS) gains an alpha channel
    write("palt.png", png(2, 1, 3, 8, { "\1\0" }, "\255\0\0\0\0\255", chunk("tRNS", "\0")))
    assert.same({ { { 0, 255 } }, { { 0, 0 } }, { { 255, 0 } }, { { 255, 0 } } }, u8("palt.png"))
    write("g16.png", png(2, 1, 0, 16, { "\255\255\128\0" }))
    assert.same({ { { 255, 128 } } }, u8("g16.png")) -- 16-bit samples keep their high byte
    write("rgb16.png", png(1, 1, 2, 16, { "\1\0\2\0\255\255" }))
    assert.same({ { { 1 } }, { { 2 } }, { { 255 } } }, u8("rgb16.png"))
    write("g1.png", png(3, 1, 0, 1, { "\160" })) -- 1-bit gray: bits 1 0 1
    assert.same({ { { 255, 0, 255 } } }, u8("g1.png"))
    -- channel conversions
    assert.same({ 1, 1, 1 }, gen.image.load(path("rgba.png"), { channels = 1 }).shape)
    assert.same({ { { 10, 20 } }, { { 10, 20 } }, { { 10, 20 } } }, u8("ga.png", { channels = 3 }))
    assert.same({ { { 255, 128 } }, { { 255, 128 } }, { { 255, 128 } }, { { 255, 255 } } }, u8("g16.png", { channels = 4 }))
    local g4 = u8("g.png", { channels = 4 })
    assert.same({ { 255, 255 }, { 255, 255 } }, g4[4]) -- opaque alpha added
    assert.same({ { 0, 64 }, { 128, 255 } }, g4[2])
  end)

  it("rejects corrupt and lying files with the function and file named", function()
    local good = png(2, 2, 0, 8, { "\1\2", "\3\4" })
    local p = write("cut.png", good:sub(1, 40))
    fails_with(function() gen.image.load(p) end, "gen.image.load: ", p, "truncated file")
    p = write("junk.png", "not a png at all")
    fails_with(function() gen.image.load(p) end, "gen.image.load: ", p, "not a PNG file")
    -- a damaged IHDR checksum
    local bad_crc = good:sub(1, 29) .. string.char(good:byte(30) ~ 1) .. good:sub(31)
    p = write("crc.png", bad_crc)
    fails_with(function() gen.image.load(p) end, "gen.image.load: ", p, "CRC")
    -- a header claiming 30000 x 30000 pixels over a few bytes of data
    local tiny = png(1, 1, 6, 8, { "\0\0\0\0" })
    local ihdr = chunk("IHDR", string.pack(">I4I4BBBBB", 30000, 30000, 8, 6, 0, 0, 0))
    p = write("liar.png", tiny:sub(1, 8) .. ihdr .. tiny:sub(8 + #ihdr + 1))
    fails_with(function() gen.image.load(p) end, "gen.image.load: ", "header claims 30000x30000 pixels")
    -- an invalid colour type / depth pair
    p = write("depth.png", png(1, 1, 2, 4, { "\0" }))
    fails_with(function() gen.image.load(p) end, "gen.image.load: ", p)
    fails_with(function() gen.image.load(path("missing.png")) end, "gen.image.load: ", "missing.png", "cannot open")
    fails_with(function() gen.image.load(7) end, "gen.image.load: argument 1: expected a file path")
    fails_with(function() gen.image.load(path("g.png"), { channels = 5 }) end, "gen.image.load: channels must be 1..4")
  end)

  it("rejects tensors that are not images", function()
    fails_with(function() gen.image.save(path("x.png"), gen.ones(5, 2, 2)) end, "gen.image.save: ", "C in 1..4")
    fails_with(function() gen.image.save(path("x.png"), gen.ones(2)) end, "gen.image.save: expected an image {H, W} or {C, H, W}, got {2}")
    fails_with(function() gen.image.save(path("x.png"), gen.ones(1, 1, 2, 2)) end, "gen.image.save: ", "{1,1,2,2}")
    fails_with(function() gen.image.save(path("x.png"), "pixels") end, "gen.image.save: expected a tensor")
    fails_with(function() gen.image.save(dir .. "/no/such/x.png", gen.ones(2, 2)) end, "gen.image.save: ")
  end)
end)

describe("grid", function()
  it("places tiles and padding like make_grid", function()
    local batch = gen.zeros(3, 1, 2, 2)
    for i = 1, 3 do batch[i]:fill_(i / 3) end
    local g = gen.image.grid(batch, { nrow = 2, padding = 1, range = { 0, 1 } })
    assert.same({ 1, 7, 7 }, g.shape) -- 2 rows x 2 columns of 2x2 tiles, 1 pixel of padding
    local t = g[1]:totable()
    for _, yx in ipairs { { 2, 2 }, { 2, 3 }, { 3, 2 }, { 3, 3 } } do assert.near(1 / 3, t[yx[1]][yx[2]], 1e-6) end
    assert.near(2 / 3, t[2][5], 1e-6)
    assert.near(2 / 3, t[3][6], 1e-6)
    assert.near(1, t[5][2], 1e-6)
    assert.near(1, t[6][3], 1e-6)
    for i = 1, 7 do
      assert.equal(0, t[1][i]); assert.equal(0, t[4][i]); assert.equal(0, t[7][i]) -- padding rows
      assert.equal(0, t[i][1]); assert.equal(0, t[i][4]); assert.equal(0, t[i][7]) -- padding columns
    end
    assert.equal(0, t[5][5]) -- the missing fourth tile stays padding
    assert.equal(0, t[6][6])
  end)

  it("uses pad_value, fewer columns than nrow, min-max scaling and uint8 batches", function()
    local g = gen.image.grid(gen.full({ 2, 3, 1, 1 }, 5), { nrow = 8, padding = 2, pad_value = 0.5, range = { 0, 10 } })
    assert.same({ 3, 5, 8 }, g.shape) -- two columns only: 2 * (1 + 2) + 2
    assert.equal(0.5, g[2][1][1]:item())
    assert.equal(0.5, g[1][3][3]:item())
    assert.equal(0.5, g[1][3][6]:item())
    local mm = gen.image.grid(gen.tensor({ { { { -2 } } }, { { { 6 } } } }), { padding = 0 })
    assert.same({ { { 0, 1 } } }, mm:totable())
    local u = gen.image.grid(gen.tensor({ { { { 0, 255 } } } }, "uint8"), { padding = 0 })
    assert.same({ { { 0, 1 } } }, u:totable())
    assert.equal(gen.image.grid(gen.ones(64, 1, 28, 28)):size(3), 8 * 30 + 2)
    fails_with(function() gen.image.grid(gen.ones(2, 2)) end, "gen.image.grid: expected a batch {N, C, H, W}, got {2,2}")
    fails_with(function() gen.image.grid(gen.ones(2, 1, 2, 2), { nrow = 0 }) end, "gen.image.grid: nrow")
    fails_with(function() gen.image.grid(gen.ones(2, 1, 2, 2), { padding = -1 }) end, "gen.image.grid: padding")
  end)
end)

describe("terminal preview", function()
  local img = gen.tensor({ { { 0, 255 }, { 128, 64 } } }, "uint8")

  it("draws 24-bit colour half blocks: foreground the upper pixel, background the lower", function()
    local s = gen.image.show(img, { color = true, print = false })
    assert.equal("\27[38;2;0;0;0m\27[48;2;128;128;128m\u{2580}\27[38;2;255;255;255m\27[48;2;64;64;64m\u{2580}\27[0m", s)
    -- escapes are repeated only when a colour changes; an odd last row keeps the terminal's background
    assert.equal("\27[38;2;9;9;9m\27[48;2;9;9;9m\u{2580}\u{2580}\27[0m",
      gen.image.show(gen.full({ 2, 2 }, 9, "uint8"), { color = true, print = false }))
    assert.equal("\27[38;2;255;0;0m\27[49m\u{2580}\27[0m",
      gen.image.show(gen.tensor { { { 1 } }, { { 0 } }, { { 0 } } }, { color = true, print = false }))
  end)

  it("draws plain shading where colour is unavailable", function()
    -- columns average (0, 128) -> 64 and (255, 64) -> 159.5 on the 10-step ramp " .:-=+*#%@"
    assert.equal(":*", gen.image.show(img, { color = false, print = false }))
    assert.equal("@", gen.image.show(gen.ones(1, 2, 1), { color = false, print = false }))
    assert.equal(" \n@", gen.image.show(gen.tensor { { 0 }, { 0 }, { 1 }, { 1 } }, { color = false, print = false }))
  end)

  it("box-filters down to the width and draws batches as grids", function()
    -- a 4x4 image squeezed into 2 columns: each character averages a 2x2 block of pixels (and two rows of those)
    local t = gen.tensor({ { 0, 0, 255, 255 }, { 0, 0, 255, 255 }, { 0, 0, 255, 255 }, { 0, 0, 255, 255 } }, "uint8")
    assert.equal(" @", gen.image.show(t, { color = false, width = 2, print = false }))
    local s = gen.image.show(gen.ones(4, 1, 2, 2), { color = false, print = false, padding = 0, nrow = 4, range = { 0, 1 } })
    assert.equal("@@@@@@@@", s)
    fails_with(function() gen.image.show(gen.ones(2)) end, "gen.image.show: expected {H, W}, {C, H, W} or {N, C, H, W}")
  end)
end)
