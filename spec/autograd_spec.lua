-- Autograd semantics: accumulation, graph freeing, explicit gradients, detach/no_grad,
-- in-place detection, deep graphs.
local gen = require "gen"

describe("autograd", function()
  it("accumulates into leaves across backward calls", function()
    local x = gen.tensor({ 1, 2, 3 }):requires_grad_()
    local y = (x * x):sum()
    y:backward()
    assert.same({ 2, 4, 6 }, x.grad:totable())
    ;(x * 3):sum():backward()
    assert.same({ 5, 7, 9 }, x.grad:totable())
    x.grad = nil
    assert.is_nil(x.grad)
  end)

  it("marks leaves and results", function()
    local x = gen.ones(2):requires_grad_()
    local y = x * 2
    assert.is_true(x.is_leaf)
    assert.is_false(y.is_leaf)
    assert.is_true(y.requires_grad)
    assert.equal("mul", y.grad_fn)
    assert.is_nil(x.grad_fn)
    assert.is_false((gen.ones(2) * 2).requires_grad)
  end)

  it("frees the graph after backward, unless retain_graph", function()
    local x = gen.ones(3):requires_grad_()
    local y = (x * x):sum()
    y:backward({ retain_graph = true })
    y:backward()
    assert.same({ 4, 4, 4 }, x.grad:totable())
    local ok, err = pcall(function() y:backward() end)
    assert.is_false(ok)
    assert.truthy(err:find("gen.backward: backward through the graph a second time", 1, true))
  end)

  it("needs an explicit gradient for non-scalar outputs", function()
    local x = gen.ones(2, 2):requires_grad_()
    local y = x * 3
    local ok, err = pcall(function() y:backward() end)
    assert.is_false(ok)
    assert.truthy(err:find("needs a gradient argument", 1, true))
    y:backward(gen.full({ 2, 2 }, 2))
    assert.same({ { 6, 6 }, { 6, 6 } }, x.grad:totable())
    assert.has_error(function() (x * 3):backward(gen.ones(3)) end)
    assert.has_error(function() gen.ones(2):sum():backward() end)
  end)

  it("reduces broadcast gradients back to the input shape", function()
    local x = gen.ones(3, 1):requires_grad_()
    local b = gen.ones(4):requires_grad_()
    ;(x + b):sum():backward()
    assert.same({ { 4 }, { 4 }, { 4 } }, x.grad:totable())
    assert.same({ 3, 3, 3, 3 }, b.grad:totable())
  end)

  it("stops at detach and inside no_grad", function()
    local x = gen.ones(2):requires_grad_()
    local d = x:detach()
    assert.is_false(d.requires_grad)
    local y = gen.no_grad(function() return x * 2 end)
    assert.is_false(y.requires_grad)
    assert.is_true(gen.is_grad_enabled())
    assert.has_error(function() gen.no_grad(function() error("boom") end) end)
    assert.is_true(gen.is_grad_enabled())
    local z = (d * x):sum()
    z:backward()
    assert.same({ 1, 1 }, x.grad:totable())
  end)

  it("detects tensors modified in place after being saved", function()
    local x = gen.ones(3):requires_grad_()
    local a = gen.ones(3)
    local y = (x * a):sum()
    a:add_(1)
    local ok, err = pcall(function() y:backward() end)
    assert.is_false(ok)
    assert.truthy(err:find("modified in place", 1, true))
  end)

  it("walks very deep graphs without recursion", function()
    local x = gen.tensor({ 1 }):requires_grad_()
    local y = x
    for _ = 1, 20000 do y = y * 1 end
    y:sum():backward()
    assert.same({ 1 }, x.grad:totable())
    y = nil
    collectgarbage()
  end)

  it("handles shared subexpressions (diamonds)", function()
    local x = gen.tensor({ 2 }):requires_grad_()
    local a = x * x
    local y = a * a + a
    y:sum():backward()
    -- d/dx (x^4 + x^2) = 4x^3 + 2x = 36
    assert.same({ 36 }, x.grad:totable())
  end)

  it("lets float32 and float64 mix", function()
    local x = gen.ones(2):requires_grad_()
    local y = (x * gen.ones(2, "float64")):sum()
    assert.equal("float64", y.dtype)
    y:backward()
    assert.equal("float32", x.grad.dtype)
    assert.same({ 1, 1 }, x.grad:totable())
  end)

  it("refuses grad on integer tensors and bad assignments", function()
    assert.has_error(function() gen.ones(2, "int64"):requires_grad_() end)
    local x = gen.ones(2):requires_grad_()
    assert.has_error(function() x.grad = gen.ones(3) end)
    assert.has_error(function() x.foo = 1 end, "gen.Tensor: cannot set field 'foo' (tensors have no user fields)")
    assert.has_error(function() (x * 2):requires_grad_(false) end)
  end)

  it("clones and converts with gradients", function()
    local x = gen.randn(3)
    assert.is_true(gen.testing.gradcheck(function(t) return t:clone() * 2 end, { x }))
    -- through float32 the finite difference needs a coarse step
    assert.is_true(gen.testing.gradcheck(function(t) return t:float():double() * 3 end, { x }, { eps = 1e-2, atol = 1e-3, rtol = 1e-3 }))
    assert.is_true(gen.testing.gradcheck(function(t) return t:view(3, 1):reshape(1, 3) end, { x }))
  end)
end)
