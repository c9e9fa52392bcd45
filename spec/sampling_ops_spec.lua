-- The ops sampling builds on: gen.cumsum (values, int64, gradient check, any dim) and
-- gen.multinomial (frequencies, zero weights, without replacement, seeds, thread counts, bad input).
local gen = require "gen"
local threads = require "support.threads"
local gradcheck = gen.testing.gradcheck

local function err(fn)
  local ok, e = pcall(fn)
  assert.is_false(ok, "expected an error")
  return tostring(e)
end

describe("cumsum", function()
  it("running sums along a dimension, floats and int64", function()
    local x = gen.tensor { { 1, 2, 3 }, { 4, 5, 6 } }
    assert.same({ { 1, 3, 6 }, { 4, 9, 15 } }, gen.cumsum(x, 2):totable())
    assert.same({ { 1, 2, 3 }, { 5, 7, 9 } }, x:cumsum(1):totable())
    assert.same({ { 1, 3, 6 }, { 4, 9, 15 } }, x:cumsum(-1):totable())
    local big = gen.tensor({ 1 << 60, 1, 1 }, "int64"):cumsum(1) -- exact, beyond a double's 53 bits
    assert.are.equal("int64", big.dtype)
    assert.same({ 1 << 60, (1 << 60) + 1, (1 << 60) + 2 }, big:totable())
    assert.same({ 0, 2 }, gen.zeros(0, 2):cumsum(1).shape)
  end)

  it("matches a loop over a non-contiguous 3-d input, and a float64 gradient check", function()
    gen.manual_seed(2)
    local x = gen.randn(4, 3, 5):transpose(1, 3) -- {5, 3, 4}, strided
    local y = x:cumsum(1)
    local acc = gen.zeros(3, 4)
    for i = 1, 5 do
      acc = acc + x[i]
      assert.is_true((y[i] - acc):abs():max():item() < 1e-6)
    end
    local r = gen.randn(3, 4, 2):double()
    for d = 1, 3 do assert.is_true(gradcheck(function(a) return a:cumsum(d) end, { r })) end
  end)

  it("rejects bad input", function()
    assert.truthy(err(function() gen.cumsum(gen.ones(3)) end):find("gen.cumsum: needs a dimension", 1, true))
    assert.truthy(err(function() gen.cumsum(gen.ones(3), 2) end):find("gen.cumsum", 1, true))
    assert.truthy(err(function() gen.cumsum(gen.ones(3, "uint8"), 1) end)
      :find("gen.cumsum: needs a float or int64 tensor, got uint8", 1, true))
  end)
end)

describe("random fills", function()
  it("give the same numbers into contiguous float32 (the fast path) and strided tensors", function()
    for _, fill in ipairs { function(t) return t:uniform_(-2, 3, { generator = gen.Generator(5) }) end,
      function(t) return t:bernoulli_(0.3, { generator = gen.Generator(5) }) end } do
      local a = fill(gen.empty(70001))
      local b = fill(gen.empty(70001, 3):select(2, 2))
      local c = fill(gen.empty(70001, "float64"))
      assert.are.equal(0, (a - b):abs():max():item())
      assert.is_true((a:double() - c):abs():max():item() < 1e-6)
    end
    threads.assert_same(function() return gen.rand(100001, { generator = gen.Generator(1) }) end)
  end)
end)

describe("multinomial", function()
  it("draws categories with the given probabilities, never a zero-weight one", function()
    local w = gen.tensor { 1, 0, 3, 6 } -- unnormalized
    local x = gen.multinomial(w, 20000, { replacement = true, generator = gen.Generator(7) })
    assert.are.equal("int64", x.dtype)
    assert.same({ 20000 }, x.shape)
    local counts = { 0, 0, 0, 0 }
    for _, v in ipairs(x:totable()) do counts[v] = counts[v] + 1 end
    assert.are.equal(0, counts[2])
    for k, p in pairs { [1] = 0.1, [3] = 0.3, [4] = 0.6 } do
      local sd = math.sqrt(p * (1 - p) / 20000)
      assert.is_true(math.abs(counts[k] / 20000 - p) < 5 * sd, "category " .. k .. ": " .. counts[k])
    end
  end)

  it("rows of a batch; without replacement the draws of a row are distinct", function()
    local w = gen.tensor { { 0, 0, 1 }, { 5, 1, 1 } }
    assert.same({ { 3 }, { 1 } }, gen.multinomial(gen.tensor { { 0, 0, 1 }, { 1, 0, 0 } }, 1):totable())
    local x = gen.multinomial(w:narrow(1, 2, 1):expand(50, 3), 3, { generator = gen.Generator(3) })
    for _, row in ipairs(x:totable()) do
      table.sort(row)
      assert.same({ 1, 2, 3 }, row)
    end
    assert.same({ 2, 3 }, gen.multinomial(gen.rand(2, 7), 3).shape)
    assert.same({ 2, 0 }, gen.multinomial(gen.rand(2, 7), 0).shape)
  end)

  it("is fixed by the generator's seed and the same at any thread count", function()
    local p = gen.rand(64, 300, { generator = gen.Generator(1) }):double()
    local a = gen.multinomial(p, 2, { generator = gen.Generator(9), replacement = true })
    local b = gen.multinomial(p, 2, { generator = gen.Generator(9), replacement = true })
    local c = gen.multinomial(p, 2, { generator = gen.Generator(10), replacement = true })
    assert.are.equal(0, (a - b):abs():max():item())
    assert.is_true((a - c):abs():max():item() > 0)
    threads.assert_same(function() return gen.multinomial(p, 4, { generator = gen.Generator(9) }) end)
    -- the global generator advances: two calls differ
    gen.manual_seed(4)
    local d1, d2 = gen.multinomial(p, 1), gen.multinomial(p, 1)
    assert.is_true((d1 - d2):abs():max():item() > 0)
  end)

  it("rejects bad input", function()
    local function e(...)
      local args = table.pack(...)
      return err(function() return gen.multinomial(table.unpack(args, 1, args.n)) end)
    end
    assert.truthy(e(gen.tensor { 1, -0.5 }, 1):find("gen.multinomial: probabilities must be finite and >= 0, got -0.5 at row 1, category 2", 1, true))
    assert.truthy(e(gen.tensor { 1, 0 / 0 }, 1):find("must be finite and >= 0", 1, true))
    assert.truthy(e(gen.tensor { 1, math.huge }, 1):find("must be finite and >= 0", 1, true))
    assert.truthy(e(gen.tensor { { 1, 1 }, { 0, 0 } }, 1):find("gen.multinomial: row 2 of the probabilities sums to 0", 1, true))
    assert.truthy(e(gen.tensor { 1, 0, 1 }, 3):find("cannot draw 3 samples without replacement from 2 categories", 1, true))
    assert.truthy(e(gen.ones(2, 2, 2), 1):find("must be {V} or {B, V}", 1, true))
    assert.truthy(e(gen.ones(3, "int64"), 1):find("probabilities must be float", 1, true))
    assert.truthy(e(gen.ones(3), -1):find("the number of samples must be >= 0", 1, true))
    assert.truthy(e(gen.ones(3), 1, { generator = 3 }):find("option 'generator' must be a gen.Generator", 1, true))
    assert.truthy(e(gen.ones(2, 0), 1):find("no categories", 1, true))
  end)
end)
