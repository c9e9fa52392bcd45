-- Losses: PyTorch fixtures (spec/fixtures/make_norm_fixtures.py) for every loss and reduction in
-- float64 and float32, gradient checks, numerical stability, the kl_normal convention and bad
-- arguments.
local gen = require "gen"
local threads = require "support.threads"
local gradcheck = require("gen.testing").gradcheck
local fixtures = require "support.fixtures"
local cases = require "fixtures.norm_losses"
local tensor = fixtures.tensor

local class_losses = { cross_entropy = true, nll_loss = true }

local function check_case(name, c, dtype, tol)
  local ins = {}
  for i, t in ipairs(c.inputs) do
    if class_losses[c.op] and i == 2 then ins[i] = tensor(t, "int64")
    else ins[i] = tensor(t, dtype):requires_grad_() end
  end
  local out = gen[c.op](ins[1], ins[2], { reduction = c.args })
  assert.are.equal(dtype, out.dtype)
  fixtures.assert_close(out, c.out, tol, name .. " " .. dtype .. ": output")
  out:backward(fixtures.upstream(out))
  for i, g in ipairs(c.grads) do
    if g then
      assert.truthy(ins[i].grad, name .. ": no gradient for input " .. i)
      fixtures.assert_close(ins[i].grad, g, tol, string.format("%s %s: gradient of input %d", name, dtype, i))
    end
  end
end

describe("losses match PyTorch", function()
  fixtures.each_case(it, cases, check_case)

  it("reduces to a 0-d tensor, or keeps the element shape with 'none'", function()
    local x, y = gen.randn(2, 3), gen.randn(2, 3)
    assert.same({}, gen.mse_loss(x, y).shape)
    assert.same({ 2, 3 }, gen.mse_loss(x, y, { reduction = "none" }).shape)
    assert.same({ 2, 4 }, gen.cross_entropy(gen.randn(2, 5, 4), gen.ones(2, 4, "int64"), { reduction = "none" }).shape)
    -- the default reduction is the mean
    assert.near(gen.mse_loss(x, y, { reduction = "sum" }):item() / 6, gen.mse_loss(x, y):item(), 1e-6)
  end)
end)

describe("kl_normal", function()
  -- Convention (the VAE one): "none" gives each element's KL, "sum" the total over everything,
  -- "mean" (the default) the total divided by the batch size (mu's first dimension), i.e. the
  -- per-sample KL averaged over the batch -- not the mean over all elements.
  local mu = gen.tensor { { 1, 0 }, { 0.5, -1 }, { 0, 0 } }
  local lv = gen.tensor { { 0, math.log(2) }, { -1, 0 }, { 0, 0 } }
  local function kl(m, l) return -0.5 * (1 + l - m * m - math.exp(l)) end
  local total = 0
  for i = 1, 3 do for j = 1, 2 do total = total + kl(mu:totable()[i][j], lv:totable()[i][j]) end end

  it("divides the total by the batch size for 'mean'", function()
    assert.near(total / 3, gen.kl_normal(mu, lv):item(), 1e-6)
    assert.near(total / 3, gen.kl_normal(mu, lv, { reduction = "mean" }):item(), 1e-6)
    assert.near(total, gen.kl_normal(mu, lv, { reduction = "sum" }):item(), 1e-6)
    assert.near(kl(0.5, -1), gen.kl_normal(mu, lv, { reduction = "none" }):totable()[2][1], 1e-6)
    assert.are.equal(0, gen.kl_normal(gen.zeros(4, 5), gen.zeros(4, 5)):item())
  end)

  it("has the gradients mu and (exp(logvar) - 1) / 2", function()
    local m, l = mu:clone():requires_grad_(), lv:clone():requires_grad_()
    gen.kl_normal(m, l, { reduction = "sum" }):backward()
    assert.is_true((m.grad - mu):abs():max():item() < 1e-6)
    assert.is_true((l.grad - (lv:exp() - 1) * 0.5):abs():max():item() < 1e-6)
  end)
end)

describe("loss gradients", function()
  local function r(...) return gen.randn(...):double() end
  before_each(function() gen.manual_seed(13) end)
  local reds = { "mean", "sum", "none" }

  it("pointwise losses, every reduction, both inputs", function()
    for _, red in ipairs(reds) do
      local o = { reduction = red }
      assert.is_true(gradcheck(function(x, y) return gen.mse_loss(x, y, o) end, { r(2, 3), r(2, 3) }))
      -- away from the kink of |x - y|
      assert.is_true(gradcheck(function(x, y) return gen.l1_loss(x, y, o) end,
        { gen.tensor { 0.5, -1.2, 2 }, gen.tensor { 0.1, 0.3, -1 } }))
      assert.is_true(gradcheck(function(x, y) return gen.bce_with_logits(x, y, o) end, { r(2, 3) * 3, gen.rand(2, 3) }))
      assert.is_true(gradcheck(function(p, y) return gen.binary_cross_entropy(p, y, o) end,
        { gen.rand(2, 3) * 0.8 + 0.1, gen.rand(2, 3) }))
      assert.is_true(gradcheck(function(m, l) return gen.kl_normal(m, l, o) end, { r(2, 3), r(2, 3) }))
    end
  end)

  it("class losses on {N, C} and {N, C, H, W}, every reduction", function()
    local t = gen.tensor({ 3, 1, 4 }, "int64")
    local t4 = gen.tensor({ { { 1, 3 }, { 2, 2 } }, { { 3, 1 }, { 1, 2 } } }, "int64")
    for _, red in ipairs(reds) do
      local o = { reduction = red }
      assert.is_true(gradcheck(function(x) return gen.cross_entropy(x, t, o) end, { r(3, 4) }))
      assert.is_true(gradcheck(function(x) return gen.cross_entropy(x, t4, o) end, { r(2, 3, 2, 2) }))
      assert.is_true(gradcheck(function(x) return gen.nll_loss(x, t, o) end, { r(3, 4) }))
      assert.is_true(gradcheck(function(x) return gen.nll_loss(x, t4, o) end, { r(2, 3, 2, 2) }))
    end
  end)

  it("a non-contiguous input gives the same loss and gradient", function()
    local x = gen.randn(4, 3)
    local t = gen.tensor({ 1, 4, 2 }, "int64")
    local a = x:t():requires_grad_()
    local b = x:t():contiguous():requires_grad_()
    local la, lb = gen.cross_entropy(a, t), gen.cross_entropy(b, t)
    assert.near(lb:item(), la:item(), 1e-7)
    la:backward()
    lb:backward()
    assert.are.equal(0, (a.grad - b.grad):abs():max():item())
  end)
end)

describe("losses stay finite at extreme inputs", function()
  it("bce_with_logits uses the stable form", function()
    local l = gen.bce_with_logits(gen.tensor { 1000, -1000, 1000, -1000 }, gen.tensor { 0, 1, 1, 0 }, { reduction = "none" })
    assert.same({ 1000, 1000, 0, 0 }, l:totable())
    local x = gen.tensor({ 200, -200 }):requires_grad_()
    gen.bce_with_logits(x, gen.tensor { 0, 0 }, { reduction = "sum" }):backward()
    assert.same({ 1, 0 }, x.grad:totable())
  end)

  it("binary_cross_entropy clamps its logs at -100", function()
    local l = gen.binary_cross_entropy(gen.tensor { 0, 1, 0, 1 }, gen.tensor { 1, 0, 0, 1 }, { reduction = "none" })
    assert.same({ 100, 100, 0, 0 }, l:totable())
    -- the target gradient differentiates the clamped loss: finite where PyTorch's is infinite
    local y = gen.tensor({ 1, 0.5 }):requires_grad_()
    gen.binary_cross_entropy(gen.tensor { 0, 1 }, y, { reduction = "sum" }):backward()
    assert.same({ 100, -100 }, y.grad:totable())
  end)

  it("cross_entropy is shift-invariant for huge logits", function()
    local t = gen.tensor({ 2 }, "int64")
    local big = gen.cross_entropy(gen.tensor { { 1000, 1001, 999 } }, t):item()
    local small = gen.cross_entropy(gen.tensor { { 0, 1, -1 } }, t):item()
    assert.near(small, big, 1e-5)
  end)
end)

describe("float32 bce_with_logits and mse (vectorized exp and log)", function()
  -- logits across the whole range, including the tiny ones where log1p(e^-|x|) needs the rounding
  -- correction, and sizes that leave partial blocks and partial vectors
  local function logits(n)
    local v = {}
    for i = 1, n do
      local u = (i * 0.6180339887) % 1
      v[i] = ({ -90, -20, -1e-9, 0, 3e-8, 0.5, 17, 88 })[i % 8 + 1] * (0.5 + u)
    end
    return gen.tensor(v)
  end
  for _, n in ipairs { 7, 4096, 10003 } do
    it("agree with float64 for " .. n .. " elements, every reduction, both gradients", function()
      local x, t = logits(n), gen.rand(n)
      for _, loss in ipairs { "bce_with_logits", "mse_loss" } do
        for _, red in ipairs { "none", "sum", "mean" } do
          local function run(dt)
            local a, b = x:type(dt):clone():requires_grad_(), t:type(dt):clone():requires_grad_()
            local l = gen[loss](a, b, { reduction = red })
            local g = red == "none" and gen.linspace(-1, 1, n):type(dt) or nil
            l:backward(g)
            return l:double(), a.grad:double(), b.grad:double()
          end
          local f, d = { run("float32") }, { run("float64") }
          for i = 1, 3 do
            local err = ((f[i] - d[i]):abs() / (d[i]:abs() + 1e-30)):max():item()
            local abs = (f[i] - d[i]):abs():max():item()
            assert.is_true(err < 1e-6 or abs < 1e-6 * (d[i]:abs():max():item() + 1),
              string.format("%s %s result %d: relative error %.3g", loss, red, i, err))
          end
        end
      end
    end)
  end

  it("cross_entropy agrees with float64 on rows and on pixel tiles of any width", function()
    -- {N, C} rows (classes contiguous) and {N, C, H, W} (classes at stride H*W, walked in tiles of 64
    -- pixels: 35 and 81 pixels leave partial tiles), logits spread to +-40, every reduction
    for _, shape in ipairs { { 9, 10 }, { 3, 256, 5, 7 }, { 2, 17, 9, 9 } } do
      local c = shape[2]
      local tshape = { shape[1], table.unpack(shape, 3) }
      local x = gen.randn(table.unpack(shape)) * 8
      local t = gen.randint(1, c, tshape)
      local g = gen.rand(table.unpack(tshape))
      for _, red in ipairs { "none", "sum", "mean" } do
        local function run(dt)
          local a = x:type(dt):clone():requires_grad_()
          local l = gen.cross_entropy(a, t, { reduction = red })
          l:backward(red == "none" and g:type(dt) or nil)
          return l:double(), a.grad:double()
        end
        local f, d = { run("float32") }, { run("float64") }
        for i = 1, 2 do
          local err = (f[i] - d[i]):abs():max():item() / (d[i]:abs():max():item() + 1e-30)
          assert.is_true(err < 2e-6, string.format("%s %s result %d: error %.3g", table.concat(shape, "x"), red, i, err))
        end
      end
    end
  end)

  it("sum to the same value at 1 and 2 threads", function()
    threads.assert_same(function()
      local x = gen.randn(8, 256, 28, 28, { generator = gen.Generator(1) })
      return gen.cross_entropy(x, gen.randint(1, 256, { 8, 28, 28 }, { generator = gen.Generator(2) })):item()
    end)
    local x, t = gen.randn(300000) * 4, gen.rand(300000)
    threads.assert_same(function() return gen.bce_with_logits(x, t, { reduction = "sum" }):item() end)
  end)
end)

describe("losses reject bad arguments", function()
  local function err(fn)
    local ok, e = pcall(fn)
    assert.is_false(ok, "expected an error")
    return tostring(e)
  end
  local logits = gen.randn(2, 3)

  it("targets out of range, named with the bad value", function()
    assert.has_error(function() gen.cross_entropy(logits, gen.tensor({ 1, 4 }, "int64")) end,
      "gen.cross_entropy: target 4 is out of range 1..3 (at position 2)")
    assert.has_error(function() gen.cross_entropy(logits, gen.tensor({ 0, 1 }, "int64")) end,
      "gen.cross_entropy: target 0 is out of range 1..3 (at position 1)")
    assert.has_error(function() gen.nll_loss(logits, gen.tensor({ 2, -1 }, "int64")) end,
      "gen.nll_loss: target -1 is out of range 1..3 (at position 2)")
    assert.has_error(function() gen.cross_entropy(gen.randn(1, 2, 2), gen.tensor({ { 1, 3 } }, "int64")) end,
      "gen.cross_entropy: target 3 is out of range 1..2 (at position 2)")
  end)

  it("targets of the wrong type or shape", function()
    assert.truthy(err(function() gen.cross_entropy(logits, gen.tensor { 1, 2 }) end)
      :find("gen.cross_entropy: targets must be int64 class indices (1-based), got float32", 1, true))
    assert.truthy(err(function() gen.nll_loss(logits, gen.tensor({ 1, 2, 3 }, "int64")) end)
      :find("gen.nll_loss: targets {3} do not match input {2,3}", 1, true))
    assert.truthy(err(function() gen.cross_entropy(gen.randn(3), gen.tensor({ 1 }, "int64")) end)
      :find("gen.cross_entropy: input must be {N, C, ...}", 1, true))
  end)

  it("a wrong reduction name or options type", function()
    assert.has_error(function() gen.mse_loss(gen.randn(2), gen.randn(2), { reduction = "avg" }) end,
      'gen.mse_loss: reduction must be "mean", "sum" or "none", got avg')
    assert.truthy(err(function() gen.cross_entropy(logits, gen.tensor({ 1, 2 }, "int64"), { reduction = "max" }) end)
      :find("gen.cross_entropy: reduction must be", 1, true))
    assert.truthy(err(function() gen.kl_normal(gen.randn(2), gen.randn(2), "sum") end)
      :find("gen.kl_normal: options must be a table", 1, true))
  end)

  it("mismatched shapes, integer inputs, probabilities outside [0, 1]", function()
    assert.has_error(function() gen.mse_loss(gen.randn(2), gen.randn(3)) end,
      "gen.mse_loss: input {2} and target {3} must have the same shape")
    assert.truthy(err(function() gen.l1_loss(gen.ones(2, "int64"), gen.ones(2, "int64")) end):find("gen.l1_loss: needs float tensors", 1, true))
    assert.truthy(err(function() gen.kl_normal(gen.randn(2, 3), gen.randn(3, 2)) end)
      :find("gen.kl_normal: mu {2,3} and logvar {3,2} must have the same shape", 1, true))
    assert.has_error(function() gen.binary_cross_entropy(gen.tensor { 1.5 }, gen.tensor { 1 }) end,
      "gen.binary_cross_entropy: input probabilities must be in [0, 1], found 1.5")
    assert.truthy(err(function() gen.bce_with_logits(gen.randn(2)) end):find("gen.bce_with_logits", 1, true))
  end)
end)
