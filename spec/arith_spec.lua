-- Arithmetic, broadcasting, matmul, sum/mean: values, gradients (gradcheck) and bad input.
local gen = require "gen"
local threads = require "support.threads"
local gradcheck = gen.testing.gradcheck

describe("arithmetic", function()
  it("adds, subtracts, multiplies, divides with broadcasting", function()
    local a = gen.tensor { { 1, 2, 3 }, { 4, 5, 6 } }
    local b = gen.tensor { 10, 20, 30 }
    assert.same({ { 11, 22, 33 }, { 14, 25, 36 } }, (a + b):totable())
    assert.same({ { -9, -18, -27 }, { -6, -15, -24 } }, (a - b):totable())
    assert.same({ { 10, 40, 90 }, { 40, 100, 180 } }, (a * b):totable())
    assert.same({ { 0.5, 1, 1.5 }, { 2, 2.5, 3 } }, (a / 2):totable())
    assert.same({ { 1, 4, 9 }, { 16, 25, 36 } }, (a ^ 2):totable())
    assert.same({ { 9, 8, 7 }, { 6, 5, 4 } }, (10 - a):totable())
    assert.same({ { -1, -2, -3 }, { -4, -5, -6 } }, (-a):totable())
    assert.same({ 2, 3 }, (gen.ones(2, 1) + gen.ones(3)).shape)
  end)

  it("promotes dtypes like PyTorch", function()
    assert.equal("float64", (gen.ones(2) + gen.ones(2, "float64")).dtype)
    assert.equal("int64", (gen.ones(2, "int64") + 1).dtype)
    assert.equal("float32", (gen.ones(2, "int64") + 0.5).dtype)
    assert.equal("float32", (gen.ones(2, "int64") / gen.ones(2, "int64")).dtype)
    assert.equal("uint8", gen.ones(3):gt(0):type())
  end)

  it("compares into masks", function()
    local a = gen.tensor { 1, 2, 3 }
    assert.same({ 0, 1, 0 }, a:eq(2):totable())
    assert.same({ 1, 0, 1 }, a:ne(2):totable())
    assert.same({ 1, 0, 0 }, a:lt(2):totable())
    assert.same({ 0, 0, 1 }, a:gt(2):totable())
    assert.same({ 1, 1, 0 }, a:le(2):totable())
    assert.same({ 0, 1, 1 }, a:ge(2):totable())
  end)

  it("works in place and refuses in-place writes on tensors that require grad", function()
    local a = gen.ones(2, 2)
    a:add_(1):mul_(3)
    assert.same({ { 6, 6 }, { 6, 6 } }, a:totable())
    local w = gen.ones(2):requires_grad_()
    assert.has_error(function() w:add_(1) end)
    gen.no_grad(function() w:add_(1) end)
    assert.same({ 2, 2 }, w:totable())
    assert.has_error(function() gen.ones(2):add_(gen.ones(3, 2)) end)
  end)

  it("gradchecks add, sub, mul, div, pow, neg with broadcasting", function()
    local a, b = gen.randn(3, 4), gen.randn(4)
    assert.is_true(gradcheck(function(x, y) return x + y end, { a, b }))
    assert.is_true(gradcheck(function(x, y) return x - y end, { a, b }))
    assert.is_true(gradcheck(function(x, y) return x * y end, { a, b }))
    assert.is_true(gradcheck(function(x, y) return x / (y:pow(2) + 1) end, { a, b }))
    assert.is_true(gradcheck(function(x, y) return (x:pow(2) + 1):pow(y) end, { a, b }))
    assert.is_true(gradcheck(function(x) return -x end, { a }))
    assert.is_true(gradcheck(function(x) return 2 / (x * x + 1) end, { a }))
  end)

  it("names the function and the shapes in errors", function()
    assert.has_error(function() return gen.ones(2, 3) + gen.ones(4) end,
      "gen.add: shapes {2,3} and {4} do not broadcast (dimension 2: 3 vs 4)")
    assert.has_error(function() return gen.ones(2) * "x" end)
    assert.has_error(function() return gen.add({}, 1) end)
  end)
end)

describe("reductions", function()
  it("sums and averages over all or one dimension", function()
    local a = gen.tensor { { 1, 2, 3 }, { 4, 5, 6 } }
    assert.equal(21, a:sum():item())
    assert.same({}, a:sum().shape)
    assert.same({ 5, 7, 9 }, a:sum(1):totable())
    assert.same({ { 6 }, { 15 } }, a:sum(2, true):totable())
    assert.same({ 2, 5 }, a:mean(-1):totable())
    assert.near(3.5, a:mean():item(), 1e-6)
    assert.has_error(function() a:sum(3) end, "gen.sum: dimension 3 out of range for a 2-d tensor (1..2, or -2..-1)")
  end)

  it("gives the same sum for any thread count", function()
    local x = gen.randn(1000, 513, { generator = gen.Generator(7) })
    threads.assert_same(function() return x:sum():item() end)
  end)

  it("gradchecks sum and mean", function()
    local a = gen.randn(3, 4)
    assert.is_true(gradcheck(function(x) return x:sum() end, { a }))
    assert.is_true(gradcheck(function(x) return x:sum(1) end, { a }))
    assert.is_true(gradcheck(function(x) return x:mean(2, true) end, { a }))
    assert.is_true(gradcheck(function(x) return x:mean() end, { a }))
  end)
end)

describe("matmul", function()
  it("multiplies matrices, vectors and batches", function()
    local a = gen.tensor { { 1, 2 }, { 3, 4 } }
    local v = gen.tensor { 1, 1 }
    assert.same({ { 7, 10 }, { 15, 22 } }, gen.matmul(a, a):totable())
    assert.same({ 3, 7 }, gen.matmul(a, v):totable())
    assert.same({ 4, 6 }, gen.matmul(v, a):totable())
    assert.equal(2, gen.matmul(v, v):item())
    local b = gen.randn(5, 2, 3)
    assert.same({ 5, 2, 4 }, gen.matmul(b, gen.randn(3, 4)).shape)
    assert.same({ 5, 2, 4 }, gen.bmm(b, gen.randn(5, 3, 4)).shape)
  end)

  it("agrees with a naive product, also through transposed views", function()
    local g = gen.Generator(3)
    local a, b = gen.randn(7, 5, { generator = g }), gen.randn(5, 6, { generator = g })
    local c = gen.matmul(a, b)
    local at, bt = a:totable(), b:totable()
    for i = 1, 7 do
      for j = 1, 6 do
        local s = 0
        for k = 1, 5 do s = s + at[i][k] * bt[k][j] end
        assert.near(s, c:at((i - 1) * 6 + j), 1e-4)
      end
    end
  end)

  it("gradchecks matmul for all operand ranks", function()
    assert.is_true(gradcheck(gen.matmul, { gen.randn(3, 4), gen.randn(4, 2) }))
    assert.is_true(gradcheck(gen.matmul, { gen.randn(4), gen.randn(4, 2) }))
    assert.is_true(gradcheck(gen.matmul, { gen.randn(3, 4), gen.randn(4) }))
    assert.is_true(gradcheck(gen.matmul, { gen.randn(4), gen.randn(4) }))
    assert.is_true(gradcheck(gen.matmul, { gen.randn(2, 3, 4), gen.randn(4, 2) }))
    assert.is_true(gradcheck(gen.matmul, { gen.randn(2, 1, 3, 4), gen.randn(3, 4, 2) }))
  end)

  it("rejects shapes that do not align", function()
    assert.has_error(function() gen.matmul(gen.ones(3, 4), gen.ones(5, 6)) end,
      "gen.matmul: shapes {3,4} and {5,6} do not align (4 ~= 5)")
    assert.has_error(function() gen.matmul(gen.ones(3), gen.ones(4)) end)
    assert.has_error(function() gen.matmul(gen.ones(2, 3, 4), gen.ones(3, 4, 2)) end)
    assert.has_error(function() gen.matmul(gen.ones(3, 4, "int64"), gen.ones(4, 2, "int64")) end)
    assert.has_error(function() gen.bmm(gen.ones(3, 4), gen.ones(4, 2)) end)
  end)
end)
