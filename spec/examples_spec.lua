-- Smoke runs of the examples: the command-line contract, finite decreasing losses, bitwise
-- resume, reproducible samples. A few steps each, no real training.
local function sh(cmd)
  local p = io.popen(cmd .. " 2>&1")
  local out = p:read("a")
  local ok = p:close()
  return ok, out
end

local function read(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local s = f:read("a")
  f:close()
  return s
end

local base = os.tmpname()
os.remove(base)

describe("examples/dcgan.lua", function()
  it("trains, logs, checkpoints, samples, and resumes bitwise-identically", function()
    local ok, out = sh("bin/gen examples/dcgan.lua --steps 8 --batch 16 --log-every 1 --checkpoint-every 4 --seed 3 --out " .. base .. "/a")
    assert.is_true(ok, out)
    local log = read(base .. "/a/log.csv")
    assert.truthy(log:match("^step,loss_d,loss_g\n"), log)
    local rows = {}
    for line in log:gmatch("[^\n]+") do rows[#rows + 1] = line end
    assert.equal(9, #rows)
    for i = 2, #rows do
      local d, g = rows[i]:match("^%d+,([^,]+),([^,]+)$")
      assert.truthy(tonumber(d) and tonumber(d) == tonumber(d), rows[i])
      assert.truthy(tonumber(g) and tonumber(g) == tonumber(g), rows[i])
    end
    assert.is_true(tonumber(rows[9]:match("^%d+,([^,]+)")) < tonumber(rows[2]:match("^%d+,([^,]+)")),
      "discriminator loss did not decrease: " .. log)
    for _, f in ipairs { "checkpoint.safetensors", "samples.png", "samples.idx", "losses.png" } do
      assert.truthy(read(base .. "/a/" .. f), f .. " missing")
    end
    -- the same run stopped at 4 and resumed reaches the same losses, to the last digit
    assert.is_true(sh("bin/gen examples/dcgan.lua --steps 4 --batch 16 --log-every 1 --checkpoint-every 4 --seed 3 --out " .. base .. "/b"))
    assert.is_true(sh("bin/gen examples/dcgan.lua --steps 8 --batch 16 --log-every 1 --checkpoint-every 4 --seed 3 --resume --out " .. base .. "/b"))
    assert.equal(log, read(base .. "/b/log.csv"))
  end)

  it("writes N samples as IDX, reproducibly", function()
    local ok, out = sh("bin/gen examples/dcgan.lua --sample 10 --out " .. base .. "/a")
    assert.is_true(ok, out)
    local gen = require "gen"
    local s = gen.data.idx.read(base .. "/a/samples.idx")
    assert.same({ 10, 28, 28 }, s.shape)
    assert.equal("uint8", s.dtype)
    local first = read(base .. "/a/samples.idx")
    assert.is_true(sh("bin/gen examples/dcgan.lua --sample 10 --out " .. base .. "/a"))
    assert.equal(first, read(base .. "/a/samples.idx"))
  end)

  it("rejects unknown options", function()
    local ok, out = sh("bin/gen examples/dcgan.lua --bogus 1 --out " .. base .. "/c")
    assert.is_not_true(ok)
    assert.truthy(out:find("unknown option --bogus", 1, true), out)
    os.execute("rm -rf " .. base)
  end)
end)
