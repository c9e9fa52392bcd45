-- gen.data: IDX files (round trips, corrupt files), Fashion-MNIST, image folders, DataLoader.
local gen = require "gen"

local dir = os.tmpname()
os.remove(dir)
os.execute("mkdir -p " .. dir)
local function path(n) return dir .. "/" .. n end
local function write(p, s) local f = assert(io.open(p, "wb")); f:write(s); f:close(); return p end

describe("IDX", function()
  it("round-trips every type, plain and gzip", function()
    local cases = {
      gen.tensor({ { 0, 255 }, { 7, 128 } }, "uint8"),
      gen.tensor({ -5, 2147483647, -2147483648 }, "int64"),
      gen.tensor { 1.5, -2.25, 3e-8 },
      gen.tensor({ { 1 / 3 } }, "float64"),
    }
    for i, t in ipairs(cases) do
      for _, gz in ipairs { false, true } do
        local p = path("t" .. i .. (gz and ".gz" or ""))
        gen.data.idx.write(p, t, { gzip = gz })
        local back = gen.data.idx.read(p)
        assert.equal(t.dtype, back.dtype)
        assert.same(t.shape, back.shape)
        assert.same(t:totable(), back:totable())
      end
    end
    local f = io.open(path("t1.gz"), "rb")
    assert.equal("\31\139", f:read(2)) -- gzip magic
    f:close()
  end)

  it("reads the byte layout of the format", function()
    local p = write(path("hand"), "\0\0\8\2\0\0\0\2\0\0\0\3" .. "\1\2\3\4\5\6")
    assert.same({ { 1, 2, 3 }, { 4, 5, 6 } }, gen.data.idx.read(p):totable())
    p = write(path("ints"), "\0\0\12\1\0\0\0\2" .. "\255\255\255\254\0\0\1\0")
    assert.same({ -2, 256 }, gen.data.idx.read(p):totable())
  end)

  it("rejects corrupt, truncated and lying files", function()
    local function fails(bytes, pattern)
      local p = write(path("bad"), bytes)
      local ok, err = pcall(gen.data.idx.read, p)
      assert.is_false(ok)
      assert.truthy(err:find("gen.data.idx.read: ", 1, true), err)
      assert.truthy(err:find(pattern, 1, true), err)
    end
    fails("\1\0\8\1\0\0\0\1\0", "bad magic")
    fails("\0\0\7\1\0\0\0\1\0", "unknown IDX element type")
    fails("\0\0\8\0", "0 dimensions")
    fails("\0\0\8\2\0\0\0\2", "truncated header")
    fails("\0\0\8\1\0\0\0\9\1\2", "file holds at most")
    fails("\0\0\8\3\127\255\255\255\127\255\255\255\127\255\255\255", "absurd")
    fails("\0\0\8\1\0\0\0\2\1\2\3", "more data than the header declares")
    assert.has_error(function() gen.data.idx.read(path("missing")) end)
    -- a truncated gzip stream
    gen.data.idx.write(path("full.gz"), gen.zeros(1000, "uint8") + 7, { gzip = true })
    local f = io.open(path("full.gz"), "rb")
    local bytes = f:read("a")
    f:close()
    local ok, err = pcall(gen.data.idx.read, write(path("cut.gz"), bytes:sub(1, #bytes // 2)))
    assert.is_false(ok)
    assert.truthy(err:find("truncated", 1, true), err)
    assert.has_error(function() gen.data.idx.write(path("x"), gen.tensor({ 2 ^ 40 }, "int64")) end)
  end)
end)

describe("Fashion-MNIST", function()
  it("loads both splits with 1-based labels and class names", function()
    local train, test = gen.data.fashion_mnist { split = "train" }, gen.data.fashion_mnist { split = "test" }
    assert.equal(60000, #train)
    assert.equal(10000, #test)
    assert.same({ 60000, 1, 28, 28 }, train.images.shape)
    assert.equal("uint8", train.images.dtype)
    assert.equal(1, train.labels:min():item())
    assert.equal(10, train.labels:max():item())
    assert.equal("Ankle boot", train.classes[10])
    local img, label = train:get(1)
    assert.same({ 1, 28, 28 }, img.shape)
    assert.equal(10, label) -- the first training image is an ankle boot
    local f = test:float_images()
    assert.equal(-1, f:min():item())
    assert.equal(1, f:max():item())
  end)

  it("says which package to install when the files are missing", function()
    local ok, err = pcall(gen.data.fashion_mnist, { dir = dir .. "/nowhere" })
    if ok then return end -- the Debian files were found as a fallback
    assert.truthy(err:find("apt-get install dataset-fashion-mnist", 1, true))
  end)

  it("reads a GEN_DATA-style folder of plain files", function()
    local images = gen.randint(0, 255, { 5, 28, 28 }, { dtype = "uint8" })
    gen.data.idx.write(path("t10k-images-idx3-ubyte"), images)
    gen.data.idx.write(path("t10k-labels-idx1-ubyte"), gen.tensor({ 0, 1, 2, 3, 9 }, "uint8"))
    local ds = gen.data.fashion_mnist { split = "test", dir = dir }
    assert.equal(5, #ds)
    assert.same({ 1, 2, 3, 4, 10 }, ds.labels:totable())
    assert.same(images[3]:totable(), ds.images[3][1]:totable())
  end)
end)

describe("image folders", function()
  it("labels sub-folders by sorted name", function()
    os.execute("mkdir -p " .. dir .. "/imgs/cat " .. dir .. "/imgs/ant")
    gen.image.save(dir .. "/imgs/cat/a.png", gen.ones(1, 4, 5))
    gen.image.save(dir .. "/imgs/ant/b.png", gen.zeros(1, 4, 5))
    gen.image.save(dir .. "/imgs/ant/c.png", gen.full({ 3, 4, 5 }, 0.5))
    local ds = gen.data.image_folder(dir .. "/imgs")
    assert.equal(3, #ds)
    assert.same({ "ant", "cat" }, ds.classes)
    assert.same({ 1, 1, 2 }, ds.labels:totable())
    assert.same({ 3, 1, 4, 5 }, ds.images.shape)
    assert.has_error(function() gen.data.image_folder(dir .. "/empty-nothing") end)
  end)
end)

describe("DataLoader", function()
  local ds = { images = gen.arange(10):byte():view(10, 1, 1, 1), labels = gen.arange(1, 11) }
  setmetatable(ds, { __len = function() return 10 end })

  it("batches with the right shapes, count and drop_last", function()
    local l = gen.data.DataLoader(ds, { batch_size = 4, shuffle = false, transform = { range = { 0, 255 } } })
    assert.equal(3, #l)
    local sizes, seen = {}, {}
    for x, y in l:iter() do
      sizes[#sizes + 1] = x:size(1)
      assert.equal("float32", x.dtype)
      for i, v in ipairs(y:totable()) do seen[#seen + 1] = v; assert.equal(v - 1, x[i]:item()) end
    end
    assert.same({ 4, 4, 2 }, sizes)
    assert.same({ 1, 2, 3, 4, 5, 6, 7, 8, 9, 10 }, seen)
    assert.equal(2, #gen.data.DataLoader(ds, { batch_size = 4, drop_last = true }))
    assert.has_error(function() gen.data.DataLoader(ds, { batch_size = 0 }) end)
  end)

  it("shuffles reproducibly and resumes mid-epoch", function()
    local function order(seed, epoch, start)
      local l = gen.data.DataLoader(ds, { batch_size = 3, seed = seed })
      local out = {}
      for _, y in l:iter { epoch = epoch, start = start } do
        for _, v in ipairs(y:totable()) do out[#out + 1] = v end
      end
      return out
    end
    assert.same(order(1, 1), order(1, 1))
    assert.are_not.same(order(1, 1), order(2, 1))
    assert.are_not.same(order(1, 1), order(1, 2))
    local full, tail = order(5, 3), order(5, 3, 2)
    assert.same({ table.unpack(full, 4) }, tail)
    local sorted = order(1, 1)
    table.sort(sorted)
    assert.same({ 1, 2, 3, 4, 5, 6, 7, 8, 9, 10 }, sorted)
  end)

  it("pads and flips", function()
    local img = gen.tensor({ { { { 0, 255 } } } }, "uint8")
    local one = { images = img:expand(8, 1, 1, 2):contiguous(), labels = gen.ones(8, "int64") }
    setmetatable(one, { __len = function() return 8 end })
    local l = gen.data.DataLoader(one, { batch_size = 8, shuffle = false, transform = { flip = true, pad = 1 } })
    local x = l:iter()()
    assert.same({ 8, 1, 3, 4 }, x.shape)
    local flipped = x:narrow(3, 2, 1):narrow(4, 2, 1):eq(1):sum():item()
    assert.is_true(flipped > 0 and flipped < 8)
    assert.equal(-1, x[1][1][1][1]:item()) -- padding is the range's low end
  end)
end)
