-- Reductions and softmax: values, shapes, indices, gradients, determinism, bad input.
local gen = require "gen"
local threads = require "support.threads"
local gradcheck = gen.testing.gradcheck

local function close(expected, got, tol)
  if type(expected) == "table" then
    for i, v in ipairs(expected) do close(v, got[i], tol) end
  else
    assert.near(expected, got, tol)
  end
end

describe("reductions", function()
  local x = gen.tensor { { 1, 5, 2 }, { 7, 3, 3 } }

  it("var and std (unbiased by default, like PyTorch)", function()
    close(4.7, x:var():item(), 1e-5)
    close({ 18, 2, 0.5 }, x:var(1):totable(), 1e-5)
    close({ 13 / 3, 16 / 3 }, x:var(2):totable(), 1e-5)
    close({ { 26 / 9 }, { 32 / 9 } }, x:var(2, true, { correction = 0 }):totable(), 1e-5)
    close({ 26 / 9, 32 / 9 }, x:var(2, false, { unbiased = false }):totable(), 1e-5)
    close(math.sqrt(4.7), x:std():item(), 1e-5)
    close({ math.sqrt(18), math.sqrt(2), math.sqrt(0.5) }, x:std(1):totable(), 1e-5)
  end)

  it("max, min with values and 1-based indices", function()
    assert.equal(7, x:max():item())
    assert.equal(1, x:min():item())
    local v, i = x:max(2)
    assert.same({ 5, 7 }, v:totable())
    assert.same({ 2, 1 }, i:totable())
    assert.equal("int64", i.dtype)
    v, i = x:min(1, true)
    assert.same({ { 1, 3, 2 } }, v:totable())
    assert.same({ { 1, 2, 1 } }, i:totable())
    local _, first = gen.tensor({ 3, 3, 1 }):max(1)
    assert.equal(1, first:item()) -- first occurrence wins
    assert.equal(4, x:argmax():item())
    assert.same({ 2, 1 }, x:argmax(2):totable())
    assert.same({ 1, 2 }, x:argmin(2):totable())
    local nan = gen.tensor { 1, 0 / 0, 3 }
    assert.is_true(nan:max():item() ~= nan:max():item())
  end)

  it("logsumexp, softmax, log_softmax are stable", function()
    local big = gen.tensor { { 1000, 1000 }, { -1000, 0 } }
    close({ 1000 + math.log(2), math.log(1 + math.exp(-1000)) }, big:logsumexp(2):totable(), 1e-3)
    close({ { 0.5, 0.5 }, { 0, 1 } }, big:softmax(2):totable(), 1e-6)
    close({ { -math.log(2), -math.log(2) } }, big:narrow(1, 1, 1):log_softmax(2):totable(), 1e-5)
    local s = gen.randn(4, 7):softmax(1):sum(1)
    close({ 1, 1, 1, 1, 1, 1, 1 }, s:totable(), 1e-6)
    local lse = gen.tensor({ 1, 2, 3 }, "float64"):logsumexp()
    close(math.log(math.exp(1) + math.exp(2) + math.exp(3)), lse:item(), 1e-12)
  end)

  it("gradchecks every reduction", function()
    local a = gen.tensor({ { 0.3, -1.2, 2.1, 0.8 }, { 1.5, 0.1, -0.7, -2.2 }, { 0.9, 1.9, -0.4, 0.2 } })
    for _, f in ipairs {
      function(t) return t:var() end, function(t) return t:var(1) end, function(t) return t:var(2, true, { correction = 0 }) end,
      function(t) return t:std(2) end, function(t) return t:std() end,
      function(t) return t:max() end, function(t) return (t:max(2)) end, function(t) return (t:min(1, true)) end,
      function(t) return t:min() end,
      function(t) return t:logsumexp(2) end, function(t) return t:logsumexp() end,
      function(t) return t:softmax(2) end, function(t) return t:softmax(1) end,
      function(t) return t:log_softmax(2) end, function(t) return t:log_softmax(1) end,
    } do assert.is_true(gradcheck(f, { a })) end
  end)

  it("gives identical results for 1 and 2 threads", function()
    local big = gen.randn(300, 257, { generator = gen.Generator(3) })
    local function run()
      return { big:var(1):sum():item(), big:softmax(2):max():item(), big:logsumexp(1):sum():item(), big:std():item() }
    end
    threads.assert_same(run)
  end)

  it("rejects bad arguments", function()
    assert.has_error(function() x:var(3) end, "gen.var: dimension 3 out of range for a 2-d tensor (1..2, or -2..-1)")
    assert.has_error(function() x:softmax() end, "gen.softmax: needs a dimension (softmax(x, d))")
    assert.has_error(function() gen.ones(2, "int64"):softmax(1) end, "gen.softmax: needs a float tensor, got int64")
    assert.has_error(function() gen.ones(2, "int64"):var() end)
    assert.has_error(function() gen.zeros(0):max() end)
    assert.has_error(function() x:var(1, false, { correction = -1 }) end)
  end)
end)
