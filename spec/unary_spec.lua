-- Elementwise math, activations, where and masked_fill: values against PyTorch, gradients, errors.
local gen = require "gen"
local ref = require "fixtures.unary_ref"
local fixtures = require "support.fixtures"
local gradcheck = gen.testing.gradcheck

-- each element within tol of its expected value, relative to that value's magnitude (at least 1)
local function close(expected, t, tol) fixtures.assert_close(t, expected, tol, "values", { inclusive = true }) end

describe("unary math", function()
  it("computes elementary functions", function()
    local x = gen.tensor { 0.25, 1, 4 }
    close({ math.exp(0.25), math.exp(1), math.exp(4) }, x:exp(), 1e-6)
    close({ math.log(0.25), 0, math.log(4) }, x:log(), 1e-6)
    close({ 0.5, 1, 2 }, x:sqrt(), 1e-7)
    close({ 2, 1, 0.5 }, x:rsqrt(), 1e-6)
    close({ 3, 0, 2 }, gen.tensor({ -3, 0, 2 }):abs(), 0)
    close({ math.sin(1), math.cos(1) }, gen.cat({ gen.tensor({ 1 }):sin(), gen.tensor({ 1 }):cos() }), 1e-7)
    close({ 0, 1, 2 }, gen.tensor({ -1, 1, 5 }):clamp(0, 2), 0)
    close({ -1, 1, 2 }, gen.tensor({ -1, 1, 5 }):clamp(nil, 2), 0)
    assert.equal("int64", gen.tensor({ -1, 2 }, "int64"):abs().dtype)
    assert.equal("float32", gen.tensor({ 1, 2 }, "int64"):exp().dtype)
  end)

  it("matches PyTorch's activations (float64)", function()
    local x = gen.tensor(ref.x, "float64")
    close(ref.gelu, gen.gelu(x), 1e-12)
    close(ref.gelu_tanh, gen.gelu(x, { approximate = "tanh" }), 1e-12)
    close(ref.silu, gen.silu(x), 1e-12)
    close(ref.softplus, gen.softplus(x), 1e-12)
    close(ref.softplus_b2_t5, gen.softplus(x, 2, 5), 1e-12)
    close(ref.elu, gen.elu(x), 1e-12)
    close(ref.elu_a05, gen.elu(x, 0.5), 1e-12)
    close(ref.leaky_relu, gen.leaky_relu(x, 0.2), 1e-12)
    close(ref.sigmoid, gen.sigmoid(x), 1e-12)
    close(ref.tanh, gen.tanh(x), 1e-12)
    close(ref.erf, gen.erf(x), 1e-15)
    close(ref.erf, gen.erf(x:float()), 1e-7)
    -- and in float32
    close(ref.gelu, gen.gelu(x:float()), 1e-6)
    close(ref.silu, gen.silu(x:float()), 1e-6)
  end)

  it("keeps float32 gelu (vectorized kernel, erf by Abramowitz & Stegun 7.1.26) within 3e-7 of float64", function()
    -- error relative to the value's magnitude, at least 1 (the left tail is tiny and keeps its own
    -- accuracy: 1 + erf(x) is computed as erfc(|x|) there, with no cancellation)
    for _, range in ipairs { { -100, 100 }, { -6, 6 }, { -1e-3, 1e-3 } } do
      local x32 = gen.linspace(range[1], range[2], 100001):float()
      local want, got = gen.gelu(x32:double()), gen.gelu(x32):double()
      local err = ((got - want):abs() / want:abs():clamp(1, math.huge)):max():item()
      assert.is_true(err < 3e-7, "error " .. err)
      local a = x32:clone():requires_grad_()
      gen.gelu(a):sum():backward()
      local b = x32:double():requires_grad_()
      gen.gelu(b):sum():backward()
      local gerr = (a.grad:double() - b.grad):abs():max():item()
      assert.is_true(gerr < 5e-7, "gradient error " .. gerr)
    end
    local s = gen.gelu(gen.tensor { math.huge, 0 / 0, 0 }):totable()
    assert.equal(math.huge, s[1])
    assert.is_true(s[2] ~= s[2])
    assert.equal(0, s[3])
  end)

  it("keeps float32 silu, sigmoid and tanh (vectorized kernels) within float rounding of float64", function()
    -- 100001 points in [-100, 100]: past the parallel threshold, through both exponent extremes
    -- (and tanh's switch between its series and its exponential form at |x| = 0.625)
    local x64 = gen.linspace(-100, 100, 100001):double()
    local x32 = gen.cat { x64:float(), gen.linspace(-1, 1, 4001), gen.tensor { 1e-30, -1e-20, 3e-8, 0.625, -0.625 } }
    for _, f in ipairs { gen.silu, gen.sigmoid, gen.tanh } do
      local want, got = f(x32:double()), f(x32):double()
      local err = ((got - want):abs() / (want:abs() + 1e-30)):max():item()
      assert.is_true(err < 2e-6, "relative error " .. err)
    end
    -- backward: silu'(x) = s (1 + x (1 - s)) against the float64 graph
    local a = x32:clone():requires_grad_()
    gen.silu(a):sum():backward()
    local b = x32:double():requires_grad_()
    gen.silu(b):sum():backward()
    local gerr = (a.grad:double() - b.grad):abs():max():item()
    assert.is_true(gerr < 2e-6, "gradient error " .. gerr)
    -- specials: silu(-inf) = -inf / inf is NaN in PyTorch too
    local sp = gen.tensor { math.huge, -math.huge, 0 / 0, 0, -0.0 }
    local s = gen.sigmoid(sp):totable()
    assert.same({ 1, 0 }, { s[1], s[2] })
    local t = gen.tanh(sp):totable()
    assert.same({ 1, -1 }, { t[1], t[2] })
    assert.is_true(t[3] ~= t[3])
    assert.is_true(s[3] ~= s[3])
    assert.equal(0.5, s[4])
    local y = gen.silu(sp):totable()
    assert.equal(math.huge, y[1])
    assert.is_true(y[2] ~= y[2] and y[3] ~= y[3])
    assert.equal(0, y[4])
  end)

  it("works on non-contiguous views and in place", function()
    local x = gen.tensor { { -1, 2 }, { 3, -4 } }
    assert.same({ { 0, 3 }, { 2, 0 } }, x:t():relu():totable())
    x:relu_()
    assert.same({ { 0, 2 }, { 3, 0 } }, x:totable())
    local w = gen.ones(2):requires_grad_()
    assert.has_error(function() w:exp_() end)
  end)

  it("gradchecks every op", function()
    local x = gen.randn(3, 4)
    local pos = x:abs() + 0.5
    -- points away from the kinks at 0 and +-0.5, where finite differences are not derivatives
    local away = gen.tensor { { -2.1, -0.8, 0.3, 1.7 }, { 0.9, -0.2, 2.5, -1.3 }, { 0.1, -3.0, 0.7, -0.35 } }
    for _, f in ipairs {
      function(t) return t:exp() end, function(t) return t:tanh() end, function(t) return t:sigmoid() end,
      function(t) return t:sin() end, function(t) return t:cos() end, function(t) return gen.silu(t) end,
      function(t) return gen.gelu(t) end, function(t) return gen.gelu(t, { approximate = "tanh" }) end,
      function(t) return gen.softplus(t, 2, 1) end, function(t) return gen.elu(t, 0.7) end,
      function(t) return t:erf() end,
    } do assert.is_true(gradcheck(f, { x })) end
    for _, f in ipairs {
      function(t) return t:log() end, function(t) return t:sqrt() end, function(t) return t:rsqrt() end,
    } do assert.is_true(gradcheck(f, { pos })) end
    for _, f in ipairs {
      function(t) return t:abs() end, function(t) return t:relu() end, function(t) return gen.leaky_relu(t, 0.1) end,
      function(t) return t:clamp(-0.5, 0.5) end,
    } do assert.is_true(gradcheck(f, { away })) end
  end)

  it("rejects bad arguments", function()
    assert.has_error(function() gen.exp(3) end, "gen.exp: argument 1: expected a tensor, got number")
    assert.has_error(function() gen.leaky_relu(gen.ones(2), "x") end, "gen.leaky_relu: slope must be a number, got string")
    assert.has_error(function() gen.clamp(gen.ones(2)) end, "gen.clamp: needs at least one bound")
    assert.has_error(function() gen.clamp(gen.ones(2), 2, 1) end)
    assert.has_error(function() gen.gelu(gen.ones(2), { approximate = "fast" }) end)
    assert.has_error(function() gen.softplus(gen.ones(2), 0) end)
  end)
end)

describe("where and masked_fill", function()
  it("selects with broadcasting and numbers", function()
    local a = gen.tensor { { 1, 2 }, { 3, 4 } }
    local m = a:gt(2)
    assert.same({ { 0, 0 }, { 3, 4 } }, gen.where(m, a, 0):totable())
    assert.same({ { 9, 9 }, { 3, 4 } }, gen.where(m, a, gen.tensor { 9 }):totable())
    assert.same({ { 1, 2 }, { -1, -1 } }, a:masked_fill(m, -1):totable())
    assert.same({ { 1, 2 }, { 5, 5 } }, a:masked_fill(gen.tensor({ { 0 }, { 1 } }, "uint8"), 5):totable())
    local b = a:clone()
    b:masked_fill_(m, 0)
    assert.same({ { 1, 2 }, { 0, 0 } }, b:totable())
  end)

  it("gradchecks where and masked_fill", function()
    local m = gen.tensor({ { 1, 0, 1 }, { 0, 0, 1 } }, "uint8")
    assert.is_true(gradcheck(function(x, y) return gen.where(m, x, y) end, { gen.randn(2, 3), gen.randn(3) }))
    assert.is_true(gradcheck(function(x) return x:masked_fill(m, 2) end, { gen.randn(2, 3) }))
  end)

  it("rejects bad masks", function()
    local a = gen.ones(2, 2)
    assert.has_error(function() gen.where(gen.ones(2, 2), a, a) end, "gen.where: mask must be uint8 (from a comparison), got float32")
    assert.has_error(function() gen.where(gen.ones(3, "uint8"), a, a) end)
    assert.has_error(function() a:masked_fill(gen.ones(3, "uint8"), 1) end)
    assert.has_error(function() a:masked_fill(a:gt(0), "x") end)
  end)
end)
