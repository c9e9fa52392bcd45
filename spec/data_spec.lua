-- gen.data: IDX files (round trips, hand-made corrupt files), Fashion-MNIST, image folders,
-- DataLoader (shapes, counts, reproducible order, transforms).
local gen = require "gen"

local dir = os.tmpname()
os.remove(dir)
os.execute("mkdir -p " .. dir)
local function path(n) return dir .. "/" .. n end
local function write(p, s) local f = assert(io.open(p, "wb")); f:write(s); f:close(); return p end
local function slurp(p) local f = assert(io.open(p, "rb")); local s = f:read("a"); f:close(); return s end

-- Asserts that fn fails with a message containing every given plain substring.
local function fails_with(fn, ...)
  local ok, err = pcall(fn)
  assert.is_false(ok, "expected an error")
  err = tostring(err)
  for _, s in ipairs { ... } do assert.truthy(err:find(s, 1, true), "'" .. s .. "' not in: " .. err) end
  return err
end

describe("IDX", function()
  local idx = gen.data.idx

  it("round-trips every type, plain and gzip", function()
    local cases = {
      gen.tensor({ { 0, 255 }, { 7, 128 } }, "uint8"),
      gen.tensor({ -5, 2147483647, -2147483648 }, "int64"),
      gen.tensor { 1.5, -2.25, 3e-8, -0.0 },
      gen.tensor({ { { 1 / 3 } }, { { -1e300 } } }, "float64"),
      gen.randint(0, 255, { 3, 4, 5 }, { dtype = "uint8" }),
    }
    for i, t in ipairs(cases) do
      for _, gz in ipairs { false, true } do
        local p = path("t" .. i .. (gz and ".gz" or ""))
        idx.write(p, t, { gzip = gz })
        assert.equal(gz, slurp(p):sub(1, 2) == "\31\139") -- gzip magic only when asked
        local back = idx.read(p)
        assert.equal(t.dtype, back.dtype)
        assert.same(t.shape, back.shape)
        assert.same(t:totable(), back:totable())
      end
    end
    -- a non-contiguous tensor is written in logical order
    local t = gen.arange(6):view(2, 3):t()
    idx.write(path("tr"), t)
    assert.same(t:totable(), idx.read(path("tr")):totable())
  end)

  it("reads the byte layout of every element type", function()
    local p = write(path("hand"), "\0\0\8\2\0\0\0\2\0\0\0\3" .. "\1\2\3\4\5\6")
    assert.same({ { 1, 2, 3 }, { 4, 5, 6 } }, idx.read(p):totable())
    assert.same({ -2, 127 }, idx.read(write(path("sbyte"), "\0\0\9\1\0\0\0\2\254\127")):totable())
    assert.same({ -2, 258 }, idx.read(write(path("short"), "\0\0\11\1\0\0\0\2\255\254\1\2")):totable())
    local ints = idx.read(write(path("ints"), "\0\0\12\1\0\0\0\2" .. "\255\255\255\254\0\0\1\0"))
    assert.equal("int64", ints.dtype)
    assert.same({ -2, 256 }, ints:totable())
    local f = idx.read(write(path("float"), "\0\0\13\1\0\0\0\1" .. string.pack(">f", 1.5)))
    assert.equal("float32", f.dtype)
    assert.same({ 1.5 }, f:totable())
    local d = idx.read(write(path("double"), "\0\0\14\1\0\0\0\1" .. string.pack(">d", -0.1)))
    assert.same({ -0.1 }, d:totable())
    assert.same({ 0, 5 }, idx.read(write(path("empty"), "\0\0\8\2\0\0\0\0\0\0\0\5")).shape)
  end)

  it("rejects corrupt, truncated and lying files with the function and file named", function()
    local function bad(bytes, ...)
      local p = write(path("bad"), bytes)
      fails_with(function() idx.read(p) end, "gen.data.idx.read: ", p, ...)
    end
    bad("\1\0\8\1\0\0\0\1\0", "bad magic 01 00")
    bad("\0\0\7\1\0\0\0\1\0", "unknown IDX element type 0x07")
    bad("\0\0\8\0", "0 dimensions")
    bad("\0\0\8\9" .. ("\0\0\0\1"):rep(9) .. "\0", "9 dimensions")
    bad("\0\0\8", "truncated header")
    bad("\0\0\8\2\0\0\0\2", "truncated header")
    bad("\0\0\8\1\0\0\0\9\1\2", "declares {9} elements", "holds 2 bytes")
    bad("\0\0\12\2\0\0\0\2\0\0\0\2" .. ("\0"):rep(15), "16 bytes", "holds 15 bytes")
    bad("\0\0\8\3\127\255\255\255\127\255\255\255\127\255\255\255", "absurd dimensions")
    bad("\0\0\8\1\0\0\0\2\1\2\3", "more data than the header declares")
    fails_with(function() idx.read(path("missing")) end, "gen.data.idx.read: ", "missing", "cannot open")
    fails_with(function() idx.read(dir) end, "not a regular file")
    fails_with(function() idx.read(42) end, "gen.data.idx.read: argument 1: expected a file path")
  end)

  it("rejects truncated, lying and corrupt gzip streams without allocating what they claim", function()
    idx.write(path("full.gz"), gen.full({ 1000 }, 7, "uint8"), { gzip = true })
    local bytes = slurp(path("full.gz"))
    local p = write(path("cut.gz"), bytes:sub(1, #bytes // 2))
    fails_with(function() idx.read(p) end, "gen.data.idx.read: ", p, "truncated")
    -- a tiny file whose header claims 10^9 bytes: fails after inflating what is there
    local liar = path("liar")
    idx.write(liar, gen.zeros({ 4 }, "uint8"))
    local head = slurp(liar)
    local handle = io.popen("gzip -c > " .. liar .. ".gz", "w")
    handle:write("\0\0\8\2\0\15\66\64\0\0\3\232" .. head:sub(9))
    handle:close()
    local before = gen.memory().peak_bytes
    fails_with(function() idx.read(liar .. ".gz") end, "truncated data: 4 of 1000000000 bytes")
    assert.equal(before, gen.memory().peak_bytes) -- no tensor was allocated for the claim
    -- a claim of 2^43 bytes (2^40 float64 values, the most a header may declare) costs one block
    handle = io.popen("gzip -c > " .. liar .. "-huge.gz", "w")
    handle:write("\0\0\14\2\0\1\0\0\1\0\0\0" .. string.rep("\0", 32))
    handle:close()
    fails_with(function() idx.read(liar .. "-huge.gz") end, "truncated data: 32 of 8796093022208 bytes")
    -- a real stream longer than four 16 MB blocks: the list of blocks grows as they fill
    local block = 1 << 24
    local n = 5 * block + 3
    local marks = { [1] = 1, [block] = 2, [block + 1] = 3, [4 * block + 1] = 4, [n] = 5 }
    local long = gen.zeros({ n }, "uint8")
    for i, v in pairs(marks) do long:narrow(1, i, 1):fill_(v) end
    idx.write(path("long.gz"), long, { gzip = true })
    local back = idx.read(path("long.gz"))
    assert.same({ n }, back.shape)
    assert.equal(15, back:sum():item())
    for i, v in pairs(marks) do assert.equal(v, back[i]:item()) end
    -- a damaged CRC in the gzip trailer
    local crc = #bytes - 7
    local damaged = bytes:sub(1, crc - 1) .. string.char(bytes:byte(crc) ~ 0xFF) .. bytes:sub(crc + 1)
    fails_with(function() idx.read(write(path("crc.gz"), damaged)) end, "gen.data.idx.read: ", "crc.gz: corrupt gzip stream")
  end)

  it("names the function when writing fails", function()
    fails_with(function() idx.write(path("x"), gen.tensor({ 2 ^ 40 }, "int64")) end,
      "gen.data.idx.write: ", "does not fit IDX's 32-bit int")
    fails_with(function() idx.write(path("x"), gen.tensor(3)) end, "gen.data.idx.write: ", "at least one dimension")
    fails_with(function() idx.write(dir .. "/no/such/dir/x", gen.ones(2)) end, "gen.data.idx.write: ", "cannot open")
    fails_with(function() idx.write(path("x"), "not a tensor") end, "gen.data.idx.write: ", "expected a tensor")
  end)
end)

describe("Fashion-MNIST", function()
  local train, load_seconds
  setup(function()
    local t0 = gen.time()
    train = gen.data.fashion_mnist { split = "train" }
    load_seconds = gen.time() - t0
  end)

  it("loads the training split: shapes, 1-based labels, class names", function()
    assert.equal(60000, #train)
    assert.same({ 60000, 1, 28, 28 }, train.images.shape)
    assert.equal("uint8", train.images.dtype)
    assert.equal("int64", train.labels.dtype)
    assert.equal(1, train.labels:min():item())
    assert.equal(10, train.labels:max():item())
    for k = 1, 10 do assert.equal(6000, train.labels:eq(k):sum():item()) end -- balanced classes
    assert.same({ "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
      "Ankle boot" }, train.classes)
    local img, label = train:get(1)
    assert.same({ 1, 28, 28 }, img.shape)
    assert.equal(10, label) -- the first training image is an ankle boot
    local pair = train[1]
    assert.equal(10, pair[2])
    assert.same(img:totable(), pair[1]:totable())
    assert.equal(train.labels:at(60000), select(2, train:get(-1)))
    assert.has_error(function() train:get(60001) end, "gen.data.Dataset: index 60001 out of range 1..60000")
    assert.truthy(tostring(train):find("60000 images {1,28,28} uint8, 10 classes", 1, true))
    -- not a speed test (that is bench's job): a guard against a reader gone quadratic, which would
    -- take minutes; ~0.3 s when the machine is idle, 6 s seen under a load of 18
    assert.is_true(load_seconds < 60, "loading took " .. load_seconds .. " s")
  end)

  it("loads the test split and gives float views in [-1, 1] and [0, 1]", function()
    local test = gen.data.fashion_mnist { split = "test" }
    assert.equal(10000, #test)
    local f = test:float_images()
    assert.equal("float32", f.dtype)
    assert.same({ 10000, 1, 28, 28 }, f.shape)
    assert.equal(-1, f:min():item())
    assert.equal(1, f:max():item())
    local u = test:float_images { range = { 0, 1 } }
    assert.near(test.images[5][1][14][14]:item() / 255, u[5][1][14][14]:item(), 1e-6)
  end)

  it("says which package to install when the files are missing", function()
    local err = fails_with(function() gen.data.fashion_mnist { dir = path("nowhere") } end,
      "gen.data.fashion_mnist: ", "apt-get install dataset-fashion-mnist", "GEN_DATA", "nowhere")
    assert.falsy(err:find("/usr/share/datasets", 1, true)) -- an explicit dir is the only place looked at
    fails_with(function() gen.data.fashion_mnist { split = "val" } end, "split must be \"train\" or \"test\"")
  end)

  it("reads a GEN_DATA-style folder of plain files and validates it", function()
    local d = path("fm")
    os.execute("mkdir -p " .. d)
    local images = gen.randint(0, 255, { 5, 28, 28 }, { dtype = "uint8" })
    gen.data.idx.write(d .. "/t10k-images-idx3-ubyte", images)
    gen.data.idx.write(d .. "/t10k-labels-idx1-ubyte", gen.tensor({ 0, 1, 2, 3, 9 }, "uint8"))
    local ds = gen.data.fashion_mnist { split = "test", dir = d }
    assert.equal(5, #ds)
    assert.same({ 1, 2, 3, 4, 10 }, ds.labels:totable())
    assert.same(images[3]:totable(), ds.images[3][1]:totable())
    gen.data.idx.write(d .. "/t10k-labels-idx1-ubyte", gen.tensor({ 0, 1, 2, 3 }, "uint8"))
    fails_with(function() gen.data.fashion_mnist { split = "test", dir = d } end, "not a matching image/label pair")
    gen.data.idx.write(d .. "/t10k-labels-idx1-ubyte", gen.tensor({ 0, 1, 2, 3, 12 }, "uint8"))
    fails_with(function() gen.data.fashion_mnist { split = "test", dir = d } end, "label 12 (expected 0..9)")
  end)
end)

describe("image folders", function()
  it("labels sub-folders by sorted name", function()
    os.execute("mkdir -p " .. path("imgs/cat") .. " " .. path("imgs/ant") .. " " .. path("imgs/empty"))
    gen.image.save(path("imgs/cat/a.png"), gen.ones(1, 4, 5))
    gen.image.save(path("imgs/ant/b.png"), gen.zeros(1, 4, 5))
    gen.image.save(path("imgs/ant/c.png"), gen.full({ 3, 4, 5 }, 0.5))
    write(path("imgs/ant/notes.txt"), "ignored")
    local ds = gen.data.image_folder(path("imgs"))
    assert.equal(3, #ds)
    assert.same({ "ant", "cat" }, ds.classes) -- folders without PNG files are not classes
    assert.same({ 1, 1, 2 }, ds.labels:totable())
    assert.same({ 3, 1, 4, 5 }, ds.images.shape)
    assert.equal("uint8", ds.images.dtype)
    assert.same({ 0, 128, 255 }, { ds.images[1]:max():item(), ds.images[2]:max():item(), ds.images[3]:max():item() })
    local rgb = gen.data.image_folder(path("imgs"), { channels = 3 })
    assert.same({ 3, 3, 4, 5 }, rgb.images.shape)
    local x, y = gen.data.DataLoader(ds, { batch_size = 3, shuffle = false }):iter()()
    assert.same({ 3, 1, 4, 5 }, x.shape)
    assert.same({ 1, 1, 2 }, y:totable())
  end)

  it("reads a flat folder without labels and rejects bad folders", function()
    os.execute("mkdir -p " .. path("flat") .. " " .. path("nopng") .. " " .. path("sizes"))
    gen.image.save(path("flat/1.png"), gen.ones(2, 2))
    gen.image.save(path("flat/2.PNG"), gen.zeros(2, 2))
    local ds = gen.data.image_folder(path("flat"))
    assert.equal(2, #ds)
    assert.is_nil(ds.labels)
    assert.is_nil(select(2, ds:get(1)))
    fails_with(function() gen.data.image_folder(path("nopng")) end, "gen.data.image_folder: no PNG files")
    fails_with(function() gen.data.image_folder(path("absent")) end, "gen.data.image_folder: ", "not a readable folder")
    gen.image.save(path("sizes/a.png"), gen.ones(2, 2))
    gen.image.save(path("sizes/b.png"), gen.ones(3, 2))
    fails_with(function() gen.data.image_folder(path("sizes")) end, "b.png is 3x2 but", "a.png is 2x2")
    write(path("sizes/c.png"), "broken")
    os.remove(path("sizes/b.png"))
    fails_with(function() gen.data.image_folder(path("sizes")) end, "gen.data.image_folder: ", "c.png")
  end)
end)

describe("DataLoader", function()
  -- ten 1x1x1 images whose pixel is the sample's index - 1, labels 1..10
  local ds = gen.data.Dataset { images = gen.arange(10):byte():view(10, 1, 1, 1), labels = gen.arange(1, 11) }
  local raw = { range = { 0, 255 } } -- keeps pixel values as they are

  local function labels_of(loader, opts)
    local out = {}
    for _, y in loader:iter(opts) do
      for _, v in ipairs(y:totable()) do out[#out + 1] = v end
    end
    return out
  end

  it("batches with the right shapes, count and drop_last", function()
    local l = gen.data.DataLoader(ds, { batch_size = 4, shuffle = false, transform = raw })
    assert.equal(3, #l)
    local sizes, seen = {}, {}
    for x, y in l:iter() do
      sizes[#sizes + 1] = x:size(1)
      assert.equal("float32", x.dtype)
      assert.equal("int64", y.dtype)
      for i, v in ipairs(y:totable()) do seen[#seen + 1] = v; assert.equal(v - 1, x[i]:item()) end
    end
    assert.same({ 4, 4, 2 }, sizes)
    assert.same({ 1, 2, 3, 4, 5, 6, 7, 8, 9, 10 }, seen)
    local dropped = gen.data.DataLoader(ds, { batch_size = 4, drop_last = true, seed = 1 })
    assert.equal(2, #dropped)
    assert.equal(8, #labels_of(dropped))
    assert.equal(1, #gen.data.DataLoader(ds, { batch_size = 10 }))
    assert.equal(0, #gen.data.DataLoader(ds, { batch_size = 11, drop_last = true }))
    assert.equal(1, #gen.data.DataLoader(ds, { batch_size = 11 }))
  end)

  it("gives Fashion-MNIST batches of the right shape, range and labels", function()
    local train = gen.data.fashion_mnist { split = "train" }
    local l = gen.data.DataLoader(train, { batch_size = 64, seed = 3 })
    assert.equal(938, #l)
    assert.equal(937, #gen.data.DataLoader(train, { batch_size = 64, drop_last = true }))
    local x, y = l:iter()()
    assert.same({ 64, 1, 28, 28 }, x.shape)
    assert.same({ 64 }, y.shape)
    assert.is_true(x:min():item() >= -1 and x:max():item() <= 1)
    assert.is_true(y:min():item() >= 1 and y:max():item() <= 10)
    -- each row is the scaled image of the sample its label came from
    local order = l:order(1)
    local first = order:at(1)
    assert.equal(train.labels:at(first), y:at(1))
    local want = train.images[first]:float() * (2 / 255) - 1
    assert.is_true((x[1] - want):abs():max():item() < 1e-6)
    local padded = gen.data.DataLoader(train, { batch_size = 8, seed = 3, transform = { pad = 2, range = { 0, 1 } } })
    local p = padded:iter()()
    assert.same({ 8, 1, 32, 32 }, p.shape)
    assert.equal(0, p:narrow(3, 1, 2):abs():max():item()) -- the border is the range's low end
    assert.is_true((p:narrow(3, 3, 28):narrow(4, 3, 28)[1] - (want + 1) / 2):abs():max():item() < 1e-6)
  end)

  it("shuffles reproducibly from a seed, epoch by epoch, and resumes mid-epoch", function()
    local function order(seed, epoch, start)
      return labels_of(gen.data.DataLoader(ds, { batch_size = 3, seed = seed }), { epoch = epoch, start = start })
    end
    assert.same(order(1, 1), order(1, 1))
    assert.are_not.same(order(1, 1), order(2, 1))
    assert.are_not.same(order(1, 1), order(1, 2))
    local full, tail = order(5, 3), order(5, 3, 2)
    assert.same({ table.unpack(full, 4) }, tail)
    local sorted = order(1, 1)
    table.sort(sorted)
    assert.same({ 1, 2, 3, 4, 5, 6, 7, 8, 9, 10 }, sorted)
    -- without {epoch}, each iter() is the next epoch
    local l = gen.data.DataLoader(ds, { batch_size = 3, seed = 1 })
    assert.same(order(1, 1), labels_of(l))
    assert.same(order(1, 2), labels_of(l))
  end)

  it("shuffles reproducibly from a generator and from the default generator", function()
    local function epochs(seed)
      local l = gen.data.DataLoader(ds, { batch_size = 4, generator = gen.Generator(seed) })
      return { labels_of(l), labels_of(l) }
    end
    local a, b = epochs(7), epochs(7)
    assert.same(a, b)
    assert.are_not.same(a[1], a[2])
    assert.are_not.same(a, epochs(8))
    gen.manual_seed(11)
    local g1 = labels_of(gen.data.DataLoader(ds, { batch_size = 4 }))
    gen.manual_seed(11)
    assert.same(g1, labels_of(gen.data.DataLoader(ds, { batch_size = 4 })))
    fails_with(function() gen.data.DataLoader(ds, { generator = gen.Generator(1) }):iter { epoch = 2 } end,
      "gen.data.DataLoader: iter{epoch = e} needs a loader made with {seed = n}")
  end)

  it("pads, flips reproducibly, and runs a custom transform", function()
    local img = gen.tensor({ { { { 0, 255 } } } }, "uint8")
    local pair = gen.data.Dataset { images = img:expand(64, 1, 1, 2):contiguous(), labels = gen.ones(64, "int64") }
    local function batch(seed)
      return gen.data.DataLoader(pair, { batch_size = 64, seed = seed, transform = { flip = true, pad = 1 } }):iter()()
    end
    local x = batch(1)
    assert.same({ 64, 1, 3, 4 }, x.shape)
    assert.equal(-1, x[1][1][1][1]:item()) -- padding is the range's low end
    local right_is_white = x:select(3, 2):select(3, 3):eq(1) -- row 2, column 3: the image's right pixel
    local flipped = 64 - right_is_white:sum():item()
    assert.is_true(flipped > 16 and flipped < 48, "flipped " .. flipped)
    -- a flipped sample is exactly the mirror image
    for i = 1, 64 do
      local row = x[i][1][2]:totable()
      assert.is_true((row[2] == -1 and row[3] == 1) or (row[2] == 1 and row[3] == -1))
    end
    assert.same(x:totable(), batch(1):totable())
    assert.are_not.same(x:totable(), batch(2):totable())
    local doubled = gen.data.DataLoader(ds, { batch_size = 10, shuffle = false, transform = {
      range = { 0, 255 }, fn = function(xb, yb) return xb * 2, yb end } }):iter()()
    assert.same({ 0, 2, 4, 6, 8, 10, 12, 14, 16, 18 }, doubled:view(10):totable())
  end)

  it("batches any dataset with get(i) and rejects bad arguments", function()
    local custom = setmetatable({}, { __len = function() return 5 end })
    function custom:get(i) return gen.full({ 1, 2, 2 }, i / 10), i end
    local x, y = gen.data.DataLoader(custom, { batch_size = 5, shuffle = false, transform = { range = { 0, 255 } } }):iter()()
    assert.same({ 5, 1, 2, 2 }, x.shape)
    assert.near(0.3, x[3][1][1][1]:item(), 1e-6) -- float images pass through unscaled
    assert.same({ 1, 2, 3, 4, 5 }, y:totable())
    fails_with(function() gen.data.DataLoader(ds, { batch_size = 0 }) end, "gen.data.DataLoader: batch_size must be a positive integer")
    fails_with(function() gen.data.DataLoader(ds, { batch_size = 2.5 }) end, "batch_size")
    fails_with(function() gen.data.DataLoader({}) end, "gen.data.DataLoader: expected a dataset")
    fails_with(function() gen.data.DataLoader(ds, { transform = { pad = -1 } }) end, "transform.pad")
    fails_with(function() gen.data.DataLoader(ds, { transform = { range = 1 } }) end, "transform.range")
    fails_with(function() gen.data.Dataset { images = gen.zeros(3, 1, 1, 1), labels = gen.ones(2) } end,
      "gen.data.Dataset: labels must be a 1-d tensor of 3 values")
    fails_with(function() gen.core.io.batch_images(ds.images, gen.tensor({ 11 }, "int64")) end,
      "gen.data.batch_images: index 11 out of range 1..10")
  end)
end)
