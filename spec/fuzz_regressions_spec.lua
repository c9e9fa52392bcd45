-- Inputs the fuzzers found (fuzz/regressions/HARNESS-what), replayed without libFuzzer: each must
-- end in errors, never a crash or an unbounded allocation. `make fuzz` runs the fuzzers themselves.
local gen = require "gen"

local function files(prefix)
  local p = io.popen("ls fuzz/regressions 2>/dev/null")
  local out = {}
  for name in p:lines() do
    if name:sub(1, #prefix) == prefix then out[#out + 1] = "fuzz/regressions/" .. name end
  end
  p:close()
  return out
end

local function read(path)
  local f = assert(io.open(path, "rb"))
  local s = f:read("a")
  f:close()
  return s
end

describe("fuzzer findings", function()
  it("the Lua-binding grammar's inputs run to completion", function()
    local threads = gen.get_num_threads()
    local run = dofile("fuzz/lua_driver.lua") -- sets 1 thread and a 256 MB memory limit
    for _, path in ipairs(files("lua-")) do
      local t0 = gen.time()
      run(read(path))
      assert.is_true(gen.time() - t0 < 30, path .. " took too long")
    end
    gen.set_memory_limit(nil)
    gen.set_num_threads(threads)
  end)

  it("the reader harnesses' inputs give a tensor or an error", function()
    local readers = {
      ["idx-"] = gen.data.idx.read,
      ["png-"] = function(p) return gen.image.load(p) end,
      ["safetensors-"] = gen.load,
    }
    for prefix, read_file in pairs(readers) do
      for _, path in ipairs(files(prefix)) do
        local ok, err = pcall(read_file, path)
        assert.is_true(ok or type(err) == "string", path)
      end
    end
  end)
end)
