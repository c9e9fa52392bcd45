local gen = require "gen"
local likelihood = require "gen.likelihood"

describe("gen.likelihood", function()
  local d = 784

  it("gives exactly 8 bits/dim for the uniform distribution, discrete or continuous on any range", function()
    assert.near(8, likelihood.bits_per_dim(-d * math.log(256), d, { discrete = true }), 1e-12)
    assert.near(8, likelihood.bits_per_dim(0, d), 1e-12) -- density 1 on [0, 1]^d
    assert.near(8, likelihood.bits_per_dim(-d * math.log(2), d, { range = { -1, 1 } }), 1e-12) -- density 2^-d on [-1, 1]^d
  end)

  it("converts tensors of per-image log-likelihoods elementwise", function()
    local log_p = gen.tensor({ 0, -d * math.log(2), 100 }, "float64")
    local bpd = likelihood.bits_per_dim(log_p, d):totable()
    assert.near(8, bpd[1], 1e-12)
    assert.near(9, bpd[2], 1e-12)
    assert.near(8 - 100 / (d * math.log(2)), bpd[3], 1e-12)
  end)

  it("agrees with the diffusion module's conversion", function()
    assert.near(likelihood.bits_per_dim(-5, 2, { discrete = true }), gen.diffusion.bits_per_dim(-5, 2), 1e-15)
    assert.near(likelihood.bits_per_dim(-5, 2, { range = { -1, 1 } }), gen.diffusion.bits_per_dim(-5, 2, { range = { -1, 1 } }), 1e-15)
  end)

  it("dequantizes 8-bit images into their own bins, reproducibly", function()
    local x = gen.tensor({ { 0, 1, 128, 255 } }, "uint8")
    local y = likelihood.dequantize(x, { range = { -1, 1 }, generator = gen.Generator(3) })
    local again = likelihood.dequantize(x, { range = { -1, 1 }, generator = gen.Generator(3) })
    assert.are.same(y:totable(), again:totable())
    assert.are.equal("float32", y.dtype)
    for i, v in ipairs(y:totable()[1]) do
      local lo = -1 + x:totable()[1][i] * 2 / 256
      assert.is_true(v >= lo - 1e-6 and v <= lo + 2 / 256 + 1e-6, string.format("pixel %d: %g outside [%g, %g]", i, v, lo, lo + 2 / 256))
    end
  end)

  it("rejects bad arguments with errors naming the function", function()
    assert.has_error(function() likelihood.bits_per_dim(0, 0) end, "gen.likelihood.bits_per_dim: dims must be a positive integer, got 0")
    assert.has_error(function() likelihood.bits_per_dim(0, 2.5) end, "gen.likelihood.bits_per_dim: dims must be a positive integer, got 2.5")
    assert.has_error(function() likelihood.bits_per_dim("x", 2) end, "gen.likelihood.bits_per_dim: log_p must be a number or a tensor, got string")
    assert.has_error(function() likelihood.bits_per_dim(0, 2, { range = { 1, 1 } }) end)
    assert.has_error(function() likelihood.dequantize({}, {}) end, "gen.likelihood.dequantize: images must be a tensor, got table")
    assert.has_error(function() likelihood.dequantize(gen.zeros(2), { range = "01" }) end)
  end)
end)
