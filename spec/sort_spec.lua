-- sort, argsort, topk (csrc/ops_sort.c): values and 1-based indices against a Lua reference,
-- stability, NaN order, every dtype, gradients, errors.
local gen = require "gen"
local gradcheck = gen.testing.gradcheck

-- the stable ascending order of a Lua list (NaN last), as 1-based positions
local function reference_order(list, descending)
  local idx = {}
  for i = 1, #list do idx[i] = i end
  table.sort(idx, function(i, j)
    local a, b = list[i], list[j]
    local an, bn = a ~= a, b ~= b
    if an or bn then
      if an and bn then return i < j end
      if descending then return an end
      return bn
    end
    if a ~= b then
      if descending then return a > b end
      return a < b
    end
    return i < j
  end)
  return idx
end

describe("sort / argsort / topk", function()
  it("sorts every line along any dimension, matching a stable reference", function()
    local g = gen.Generator(1)
    local x = gen.randint(1, 6, { 4, 7, 3 }, { generator = g }):float() -- many ties
    for _, dim in ipairs { 1, 2, 3, -1 } do
      for _, descending in ipairs { false, true } do
        local values, indices = x:sort(dim, descending)
        local d = dim < 0 and 3 + dim + 1 or dim
        local xt, vt, it_ = x:transpose(d, 3):contiguous(), values:transpose(d, 3):contiguous(), indices:transpose(d, 3):contiguous()
        local rows = xt:view(-1, xt:size(3)):totable()
        local vrows, irows = vt:view(-1, xt:size(3)):totable(), it_:view(-1, xt:size(3)):totable()
        for r, row in ipairs(rows) do
          local want = reference_order(row, descending)
          assert.same(want, irows[r])
          for j, i in ipairs(want) do assert.equal(row[i], vrows[r][j]) end
        end
        assert.same(indices:totable(), x:argsort(dim, descending):totable())
      end
    end
  end)

  it("puts NaN last ascending and first descending, keeps dtypes, and topk takes the first k", function()
    local x = gen.tensor { 3, 0 / 0, -1, 2 }
    assert.same({ 3, 4, 1, 2 }, x:argsort():totable())
    assert.same({ 2, 1, 4, 3 }, x:argsort(1, true):totable())
    local v, i = gen.tensor({ 5, 9, 1, 7 }, "int64"):topk(2)
    assert.equal("int64", v.dtype)
    assert.same({ 9, 7 }, v:totable())
    assert.same({ 2, 4 }, i:totable())
    v, i = gen.tensor({ 5, 9, 1, 7 }, "uint8"):topk(3, 1, false)
    assert.same({ 1, 5, 7 }, v:totable())
    assert.same({ 3, 1, 4 }, i:totable())
    assert.same({ 2, 0 }, gen.zeros(2, 0):topk(0).shape)
    local big = gen.randn({ 3, 5000 }, { generator = gen.Generator(2) })
    local top, at = big:topk(20, 2)
    local maxv, maxi = big:max(2)
    assert.same(maxv:totable(), top:select(2, 1):totable())
    assert.same(maxi:totable(), at:select(2, 1):totable())
  end)

  it("passes gradient checks: the gradient goes back to where each value came from", function()
    local x = gen.randn({ 3, 6 }, { dtype = "float64", generator = gen.Generator(3) })
    gradcheck(function(t) return (t:sort(2)) end, { x })
    gradcheck(function(t) return (t:topk(3, 1)) end, { gen.randn({ 4, 5 }, { dtype = "float64", generator = gen.Generator(4) }) })
    gradcheck(function(t) return (t:topk(2, 2, false)) end, { x })
    local a = gen.tensor({ 4, 1, 3 }, "float64"):requires_grad_()
    local v = a:topk(2)
    v:backward(gen.tensor({ 10, 20 }, "float64"))
    assert.same({ 10, 0, 20 }, a.grad:totable())
  end)

  it("names the function and the shapes on bad input", function()
    assert.has_error(function() gen.topk(gen.zeros(2, 4), 5) end, "gen.topk: k = 5 out of range for dimension 2 of {2,4} (4 entries)")
    assert.has_error(function() gen.topk(gen.zeros(2, 4), -1, 1) end, "gen.topk: k = -1 out of range for dimension 1 of {2,4} (2 entries)")
    assert.has_error(function() gen.sort(gen.tensor(3)) end, "gen.sort: needs at least 1 dimension, got a 0-d tensor")
    local ok, err = pcall(gen.argsort, gen.zeros(2, 3), 3)
    assert.is_false(ok)
    assert.truthy(err:find("gen.argsort", 1, true), err)
    assert.has_error(function() gen.sort("x") end)
  end)
end)
