-- gen.save / gen.load: round trips, the exact byte format, and hostile or corrupt files.
local gen = require "gen"

local dir = os.tmpname()
os.remove(dir)
os.execute("mkdir -p " .. dir)
local function path(name) return dir .. "/" .. name end

local function write_bytes(p, s)
  local f = assert(io.open(p, "wb"))
  f:write(s)
  f:close()
end

-- A file with the given JSON header and data bytes.
local function craft(name, header, data, declared_len)
  local len = declared_len or #header
  write_bytes(path(name), string.pack("<I8", len) .. header .. (data or ""))
  return path(name)
end

describe("safetensors", function()
  it("round-trips every dtype, shape and metadata", function()
    local t = {
      f = gen.randn(3, 4),
      d = gen.randn(2, "float64"),
      l = gen.tensor({ 1, -2, 9007199254740993 }, "int64"),
      b = gen.tensor({ { 0, 255 } }, "uint8"),
      s = gen.tensor(3.5),
      e = gen.zeros(0, 3),
      v = gen.arange(12):float():view(3, 4):t(),
    }
    gen.save(path("a.safetensors"), t, { format = "pt", note = "quote \" and \\ and \n" })
    local back, meta = gen.load(path("a.safetensors"))
    for k, x in pairs(t) do
      assert.equal(x.dtype, back[k].dtype)
      assert.same(x.shape, back[k].shape)
      assert.same(x:totable(), back[k]:totable())
    end
    assert.same({ format = "pt", note = "quote \" and \\ and \n" }, meta)
  end)

  it("writes the documented layout", function()
    gen.save(path("b.safetensors"), { x = gen.tensor { 1, 2 } })
    local f = assert(io.open(path("b.safetensors"), "rb"))
    local bytes = f:read("a")
    f:close()
    local n = string.unpack("<I8", bytes)
    local header = bytes:sub(9, 8 + n)
    assert.equal(0, (8 + n) % 8)
    assert.truthy(header:find('"x":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}', 1, true))
    assert.equal(string.pack("<ff", 1, 2), bytes:sub(9 + n))
  end)

  it("reads files written by other tools (spaces, any key order, metadata first or last)", function()
    local data = string.pack("<dd", 1.5, -2)
    local p = craft("c.safetensors", ' { "w" : { "data_offsets" : [0, 16], "shape" : [2], "dtype" : "F64" }, "__metadata__": {"a": "b"} }   ', data)
    local t, meta = gen.load(p)
    assert.same({ 1.5, -2 }, t.w:totable())
    assert.equal("b", meta.a)
  end)

  local function fails(name, header, data, pattern, declared)
    local p = craft(name, header, data, declared)
    local ok, err = pcall(gen.load, p)
    assert.is_false(ok, "expected an error for " .. name)
    assert.truthy(err:find("gen.load: ", 1, true), err)
    assert.truthy(err:find(pattern, 1, true), err)
  end

  it("rejects corrupt and hostile files with clear errors", function()
    local ok, err = pcall(gen.load, path("missing.safetensors"))
    assert.is_false(ok)
    assert.truthy(err:find("cannot open", 1, true))
    write_bytes(path("short"), "abc")
    ok, err = pcall(gen.load, path("short"))
    assert.is_false(ok)
    assert.truthy(err:find("truncated", 1, true))
    fails("huge_header", "{}", "", "header length", 1 << 62)
    fails("past_end", "{}", "", "does not fit the file", 100)
    fails("bad_json", '{"x": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]', string.rep("\0", 4), "bad header")
    fails("not_object", "[1, 2]", "", "bad header")
    fails("bad_dtype", '{"x": {"dtype": "BF16", "shape": [1], "data_offsets": [0, 2]}}', "\0\0", "unsupported dtype")
    fails("neg_shape", '{"x": {"dtype": "F32", "shape": [-1], "data_offsets": [0, 4]}}', "\0\0\0\0", "bad header")
    fails("size_mismatch", '{"x": {"dtype": "F32", "shape": [3], "data_offsets": [0, 8]}}', string.rep("\0", 8), "needs 12 bytes")
    fails("out_of_file", '{"x": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]}}', string.rep("\0", 8), "truncated file")
    fails("overlap", '{"x": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}, "y": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]}}',
      string.rep("\0", 12), "overlap")
    fails("dup", '{"x": {"dtype": "U8", "shape": [1], "data_offsets": [0, 1]}, "x": {"dtype": "U8", "shape": [1], "data_offsets": [1, 2]}}', "\0\0", "duplicate")
    fails("reversed", '{"x": {"dtype": "U8", "shape": [0], "data_offsets": [4, 0]}}', "\0\0\0\0", "needs 0 bytes")
    fails("absurd", '{"x": {"dtype": "F32", "shape": [1099511627777, 1099511627777], "data_offsets": [0, 4]}}', "\0\0\0\0", "absurd")
    fails("trailing", '{} x', "", "trailing")
    fails("missing_field", '{"x": {"dtype": "F32", "shape": [1]}}', "\0\0\0\0", "lacks")
    fails("meta_number", '{"__metadata__": {"a": 1}}', "", "metadata values must be strings")
    fails("ctrl", '{"a\1": {"dtype": "U8", "shape": [0], "data_offsets": [0, 0]}}', "", "control character")
  end)

  it("validates its arguments", function()
    assert.has_error(function() gen.save(path("x"), { a = 1 }) end, "gen.save: 'a' is a number, not a tensor")
    assert.has_error(function() gen.save(path("x"), gen.ones(1)) end)
    assert.has_error(function() gen.save(path("x"), { a = gen.ones(1) }, { k = 1 }) end)
    assert.has_error(function() gen.save("/nonexistent-dir/x", { a = gen.ones(1) }) end)
  end)
end)
