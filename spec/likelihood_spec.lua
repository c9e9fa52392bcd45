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

describe("discretized_gaussian_log_likelihood (one fused op)", function()
  local gradcheck = require("gen.testing").gradcheck
  -- the definition as a chain of ops: Phi(u) - Phi(l), the end bins open, the density where the
  -- difference underflows
  local function reference(x, mean, log_scale)
    local function cdf(v) return (gen.erf(v * (1 / math.sqrt(2))) + 1) * 0.5 end
    local inv = gen.exp(-log_scale)
    local c = x - mean
    local upper, lower = cdf((c + 1 / 255) * inv), cdf((c - 1 / 255) * inv)
    local p = gen.where(x:lt(-0.999), upper, gen.where(x:gt(0.999), -lower + 1, upper - lower))
    local z = c * inv
    local density = z * z * -0.5 - log_scale - 0.5 * math.log(2 * math.pi) + math.log(2 / 255)
    return gen.where(p:lt(1e-12), density, p:clamp(1e-12, nil):log())
  end
  local levels = gen.arange(0, 256):double() * (2 / 255) - 1

  it("equals the chain of ops, and sums to 1 over the 256 levels", function()
    for _, case in ipairs { { 0.1, -1 }, { -0.95, -4 }, { 0.999, -6 }, { 0.3, 1.5 } } do
      local mean, log_scale = gen.full({ 256 }, case[1], "float64"), gen.full({ 256 }, case[2], "float64")
      local got = likelihood.discretized_gaussian_log_likelihood(levels, mean, log_scale)
      local want = reference(levels, mean, log_scale)
      local finite = want:gt(-20) -- where both keep digits (far tails: ours from the other side's erfc)
      assert.is_true(((got - want):abs() * finite:double()):max():item() < 1e-9, table.concat(case, ", "))
      assert.near(1, got:exp():sum():item(), 1e-9)
    end
  end)

  it("keeps its digits far in a tail, where the difference of CDFs cancels", function()
    -- the bin of 0.0039 under N(-0.9, 0.05^2): l and u 18.00 and 18.16 standard deviations out, where
    -- Phi(u) - Phi(l) is 1 - 1 in floating point
    local got = likelihood.discretized_gaussian_log_likelihood(gen.tensor({ 128 / 255 * 2 - 1 }, "float64"),
      gen.tensor({ -0.9 }, "float64"), gen.tensor({ math.log(0.05) }, "float64")):item()
    assert.near(-165.87229932936538, got, 1e-9) -- log(Q(l) - Q(u)) in float64 (the density there: -166.19)
  end)

  it("has the gradients of its definition in mean and log-scale (and x), broadcasting", function()
    local x = gen.tensor({ { -1, -0.2, 0.5 }, { 1, 0.0039215686, 0.8 } }, "float64")
    assert.is_true(gradcheck(function(m, ls) return likelihood.discretized_gaussian_log_likelihood(x, m, ls) end,
      { gen.randn(2, 3):double() * 0.5, gen.randn(2, 3):double() * 0.3 - 1.5 }))
    assert.is_true(gradcheck(function(m, ls) return likelihood.discretized_gaussian_log_likelihood(x, m, ls) end,
      { gen.randn(1, 3):double() * 0.5, gen.tensor({ -2.0 }, "float64") }))
    -- x away from bin ends: d/dx = -d/dmean
    assert.is_true(gradcheck(function(xx) return gen.discretized_gaussian_log_likelihood(xx, gen.zeros(3):double(),
      gen.full({ 3 }, -1.0, "float64")) end, { gen.tensor({ -0.3, 0.1, 0.6 }, "float64") }))
    -- the density branch: a bin 40 standard deviations out
    assert.is_true(gradcheck(function(m) return gen.discretized_gaussian_log_likelihood(gen.tensor({ 0.6 }, "float64"), m,
      gen.tensor({ -4.0 }, "float64")) end, { gen.tensor({ -0.1 }, "float64") }))
  end)

  it("float32 agrees with float64, and bad arguments are errors", function()
    local x = (gen.randint(0, 255, { 4000 }):double() * (2 / 255) - 1)
    local m, ls = gen.randn(4000):double() * 0.5, gen.randn(4000):double() - 2
    local f64 = likelihood.discretized_gaussian_log_likelihood(x, m, ls)
    local f32 = likelihood.discretized_gaussian_log_likelihood(x:float(), m:float(), ls:float()):double()
    assert.is_true(((f32 - f64):abs() / (f64:abs() + 1)):max():item() < 1e-5)
    assert.has_error(function() gen.discretized_gaussian_log_likelihood(gen.zeros(2), gen.zeros(3), gen.zeros(2)) end,
      "gen.discretized_gaussian_log_likelihood: x {2}, mean {3} and log_scale {2} must have the same shape")
    assert.has_error(function() gen.discretized_gaussian_log_likelihood(gen.zeros({ 2 }, "int64"), gen.zeros(2), gen.zeros(2)) end,
      "gen.discretized_gaussian_log_likelihood: needs float tensors, got int64, float32 and float32")
    assert.has_error(function() likelihood.discretized_gaussian_log_likelihood(gen.zeros(2), gen.zeros(3), gen.zeros(1)) end,
      "gen.likelihood.discretized_gaussian_log_likelihood: shapes {2}, {3} and {1} do not broadcast")
  end)
end)
