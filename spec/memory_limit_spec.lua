-- gen.set_memory_limit and GEN_MAX_MEMORY: an allocation past the limit is a Lua error
-- "out of memory: gen.OP needs N MB (live L MB, limit M MB)", and the session goes on.
local gen = require "gen"

local function run(cmd)
  local p = assert(io.popen(cmd .. " 2>&1"))
  local out = p:read("a")
  p:close()
  return out
end

describe("the memory limit", function()
  after_each(function() gen.set_memory_limit(nil) end)

  it("refuses an allocation past it with the op, the size, the live bytes and the limit", function()
    assert.is_nil(gen.set_memory_limit(64 * 2 ^ 20))
    assert.equal(64 * 2 ^ 20, gen.memory().limit)
    local ok, err = pcall(gen.zeros, 4096, 4096, 2)
    assert.is_false(ok)
    assert.is_truthy(tostring(err):find("out of memory: gen.zeros needs 128.0 MB %(live [%d.]+ MB, limit 64.0 MB%)"), err)
    ok, err = pcall(function() return gen.randn(64, 1000):matmul(gen.randn(1000, 300000)) end)
    assert.is_false(ok)
    assert.is_truthy(tostring(err):find("out of memory: gen.randn needs", 1, true), err)
    assert.equal(64 * 2 ^ 20, gen.set_memory_limit(nil))
    assert.equal(0, gen.memory().limit)
    assert.equal(4096 * 4096, gen.zeros(4096, 4096):numel())
  end)

  it("failed ops inside a step leak nothing", function()
    collectgarbage()
    collectgarbage()
    local live = gen.memory().live
    gen.set_memory_limit(live + 8 * 2 ^ 20)
    local w = gen.randn(256, 256):requires_grad_()
    for _ = 1, 20 do
      local ok, err = pcall(function()
        local h = gen.randn(512, 256):matmul(w):relu()
        return h:reshape(512, 256, 1) * gen.ones(1, 1, 64) -- 32 MB, past the limit
      end)
      assert.is_false(ok)
      assert.is_truthy(tostring(err):find("out of memory: gen.mul needs 32.0 MB", 1, true), err)
    end
    gen.set_memory_limit(nil)
    w = nil -- luacheck: ignore
    collectgarbage()
    collectgarbage()
    assert.equal(live, gen.memory().live)
  end)

  it("rejects bad limits", function()
    assert.has_error(function() gen.set_memory_limit(-1) end, "gen.set_memory_limit: the limit must be >= 0 bytes, got -1")
    assert.has_error(function() gen.set_memory_limit("1G") end)
  end)

  it("the REPL reports the error and stays usable", function()
    local name = os.tmpname()
    local f = assert(io.open(name, "w"))
    f:write("gen.set_memory_limit(32 * 2^20)\n", "x = gen.ones(4096, 4096)\n", "y = gen.ones(1024, 1024)\n",
      "y:sum():item()\n")
    f:close()
    local out = run("bin/gen < " .. name)
    os.remove(name)
    assert.is_truthy(out:find("error: stdin:1: out of memory: gen.ones needs 64.0 MB (live", 1, true), out)
    assert.is_truthy(out:find("limit 32.0 MB)", 1, true), out)
    assert.is_truthy(out:find("1048576", 1, true), out)
  end)

  it("GEN_MAX_MEMORY sets the limit at start (with K, M, G suffixes)", function()
    local out = run("GEN_MAX_MEMORY=16M lua5.4 -e 'package.path=\"lua/?.lua;lua/?/init.lua;\"..package.path "
      .. "package.cpath=\"" .. (os.getenv("GEN_BUILD") or "build") .. "/?.so;\"..package.cpath "
      .. "local gen = require \"gen\" print(gen.memory().limit, select(2, pcall(gen.zeros, 2048, 4096)))'")
    assert.is_truthy(out:find("16777216\t", 1, true), out)
    assert.is_truthy(out:find("out of memory: gen.zeros needs 32.0 MB", 1, true), out)
  end)
end)
