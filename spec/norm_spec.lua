-- batch_norm, group_norm, layer_norm and dropout: PyTorch fixtures (spec/fixtures/make_norm_fixtures.py)
-- in float64 and float32, running-statistic updates, gradient checks, thread-count independence and
-- bad arguments.
local gen = require "gen"
local threads = require "support.threads"
local gradcheck = require("gen.testing").gradcheck
local fixtures = require "support.fixtures"
local cases = require "fixtures.norm_layers"
local tensor = fixtures.tensor

local function run_case(c, dtype)
  local a = c.args
  local ins = {}
  for i, t in ipairs(c.inputs) do ins[i] = tensor(t, dtype):requires_grad_() end
  local x, w, b = ins[1], ins[2], ins[3]
  local stats = {}
  local out
  if c.op == "batch_norm" then
    if a.stats then stats = { tensor(c.rm_before, dtype), tensor(c.rv_before, dtype) } end
    out = gen.batch_norm(x, stats[1], stats[2], w, b, { training = a.training, momentum = a.momentum, eps = a.eps })
  elseif c.op == "group_norm" then
    out = gen.group_norm(x, a.groups, w, b, a.eps)
  else
    out = gen.layer_norm(x, a.shape, w, b, a.eps)
  end
  return out, ins, stats
end

local function check_case(name, c, dtype, tol)
  local out, ins, stats = run_case(c, dtype)
  assert.are.equal(dtype, out.dtype)
  fixtures.assert_close(out, c.out, tol, name .. " " .. dtype .. ": output")
  if stats[1] then
    fixtures.assert_close(stats[1], c.rm_after, tol, name .. ": running_mean")
    fixtures.assert_close(stats[2], c.rv_after, tol, name .. ": running_var")
  end
  out:backward(fixtures.upstream(out))
  for i, g in ipairs(c.grads) do
    assert.truthy(ins[i].grad, name .. ": no gradient for input " .. i)
    fixtures.assert_close(ins[i].grad, g, tol, string.format("%s %s: gradient of input %d", name, dtype, i))
  end
end

describe("normalization matches PyTorch", function()
  fixtures.each_case(it, cases, check_case)

  it("leaves the running statistics alone in evaluation mode", function()
    local rm, rv = gen.tensor { 0.5, -1 }, gen.tensor { 2, 0.25 }
    local y = gen.batch_norm(gen.tensor { { 1.5, 0 }, { 2.5, -2 } }, rm, rv, nil, nil, { training = false, eps = 0 })
    assert.same({ 0.5, -1 }, rm:totable())
    assert.same({ 2, 0.25 }, rv:totable())
    -- (1.5 - 0.5) / sqrt(2), (0 + 1) / 0.5
    assert.near(1 / math.sqrt(2), y:totable()[1][1], 1e-6)
    assert.near(2, y:totable()[1][2], 1e-6)
  end)

  it("updates the running variance with the unbiased estimate", function()
    -- channel values 1, 3: mean 2, biased var 1, unbiased 2
    local rm, rv = gen.zeros(1), gen.ones(1)
    gen.batch_norm(gen.tensor { { 1 }, { 3 } }, rm, rv, nil, nil, { training = true, momentum = 0.5 })
    assert.near(1, rm:item(), 1e-6)
    assert.near(1.5, rv:item(), 1e-6)
    -- the default mode is training, the default momentum 0.1
    gen.batch_norm(gen.tensor { { 1 }, { 3 } }, rm, rv)
    assert.near(0.9 * 1 + 0.1 * 2, rm:item(), 1e-6)
  end)
end)

describe("normalization gradients", function()
  local function r(...) return gen.randn(...):double() end
  before_each(function() gen.manual_seed(11) end)

  it("batch_norm in training, with and without affine parameters", function()
    assert.is_true(gradcheck(function(x, w, b) return gen.batch_norm(x, nil, nil, w, b, { training = true }) end,
      { r(3, 2, 2, 2), r(2), r(2) }))
    assert.is_true(gradcheck(function(x) return gen.batch_norm(x, gen.zeros(3):double(), gen.ones(3):double()) end, { r(4, 3) }))
  end)

  it("batch_norm in evaluation mode", function()
    local rm, rv = r(3), gen.rand(3):double() + 0.5
    assert.is_true(gradcheck(function(x, w, b) return gen.batch_norm(x, rm, rv, w, b, { training = false }) end,
      { r(2, 3, 2), r(3), r(3) }))
  end)

  it("batch_norm on {N, C} (column kernels): training with affine, evaluation, several column blocks", function()
    assert.is_true(gradcheck(function(x, w, b) return gen.batch_norm(x, nil, nil, w, b, { training = true }) end,
      { r(5, 3), r(3), r(3) }))
    local rm, rv = r(4), gen.rand(4):double() + 0.5
    assert.is_true(gradcheck(function(x, w, b) return gen.batch_norm(x, rm, rv, w, b, { training = false }) end,
      { r(3, 4), r(4), r(4) }))
    -- 600 channels span three blocks of 256; float32 against float64, output and all gradients
    local x, w, b, g = gen.randn(7, 600), gen.randn(600), gen.randn(600), gen.randn(7, 600)
    local function run(dt)
      local xs, ws, bs = x:type(dt):clone():requires_grad_(), w:type(dt):clone():requires_grad_(), b:type(dt):clone():requires_grad_()
      local y = gen.batch_norm(xs, nil, nil, ws, bs, { training = true })
      y:backward(g:type(dt))
      return { y, xs.grad, ws.grad, bs.grad }
    end
    local f, d = run("float32"), run("float64")
    for i = 1, 4 do assert.is_true((f[i]:double() - d[i]):abs():max():item() < 1e-4, "result " .. i) end
  end)

  it("batch statistics stay accurate far from zero (one pass, shifted sums)", function()
    for _, shape in ipairs { { 64, 8 }, { 16, 4, 5, 5 } } do
      local x = (gen.randn(shape):double() + 1e4)
      local y = gen.batch_norm(x, nil, nil, nil, nil, { training = true, eps = 0 })
      local dims = #shape == 2 and { 1 } or { 1, 3, 4 }
      local m, v = y:double(), y:double() ^ 2
      for _, d in ipairs(dims) do m, v = m:mean(d, true), v:mean(d, true) end
      assert.is_true(m:abs():max():item() < 1e-9)
      assert.is_true((v - 1):abs():max():item() < 1e-9)
    end
  end)

  it("group_norm: several groups, one group, one channel per group", function()
    assert.is_true(gradcheck(function(x, w, b) return gen.group_norm(x, 2, w, b) end, { r(2, 4, 3), r(4), r(4) }))
    assert.is_true(gradcheck(function(x) return gen.group_norm(x, 1) end, { r(2, 3, 2, 2) }))
    assert.is_true(gradcheck(function(x, w, b) return gen.group_norm(x, 3, w, b, 1e-3) end, { r(2, 3, 2, 2), r(3), r(3) }))
  end)

  it("layer_norm over one and two trailing dimensions", function()
    assert.is_true(gradcheck(function(x, w, b) return gen.layer_norm(x, { 3 }, w, b) end, { r(2, 3), r(3), r(3) }))
    assert.is_true(gradcheck(function(x, w, b) return gen.layer_norm(x, { 2, 3 }, w, b) end, { r(2, 2, 3), r(2, 3), r(2, 3) }))
    assert.is_true(gradcheck(function(x) return gen.layer_norm(x, 4) end, { r(3, 4) }))
  end)

  it("a non-contiguous input gives the same result as its contiguous copy", function()
    local x = gen.randn(3, 4, 5):transpose(1, 3)
    local y1 = gen.group_norm(x, 2, nil, nil)
    local y2 = gen.group_norm(x:contiguous(), 2, nil, nil)
    assert.are.equal(0, (y1 - y2):abs():max():item())
    assert.is_true(gradcheck(function(t) return gen.layer_norm(t:transpose(1, 2), { 2 }) end, { r(2, 3) }))
  end)

  it("does not depend on the thread count", function()
    local x = gen.randn(8, 64, 32, 32)
    local w, b = gen.randn(64), gen.randn(64)
    local function run()
      local xi, wi, bi = x:clone():requires_grad_(), w:clone():requires_grad_(), b:clone():requires_grad_()
      local y = gen.group_norm(xi, 8, wi, bi) + gen.batch_norm(xi, nil, nil, wi, bi)
      y:backward(gen.ones_like(y))
      return y, xi.grad, wi.grad, bi.grad
    end
    threads.assert_same(run)
  end)
end)

describe("dropout", function()
  it("is reproducible from a generator and from the global seed", function()
    local a = gen.dropout(gen.ones(1000), 0.3, true, { generator = gen.Generator(1) })
    local b = gen.dropout(gen.ones(1000), 0.3, true, { generator = gen.Generator(1) })
    assert.same(a:totable(), b:totable())
    gen.manual_seed(5)
    local c = gen.dropout(gen.ones(1000), 0.3, true)
    gen.manual_seed(5)
    local d = gen.dropout(gen.ones(1000), 0.3, true)
    assert.same(c:totable(), d:totable())
    assert.are_not.same(a:totable(), gen.dropout(gen.ones(1000), 0.3, true, { generator = gen.Generator(2) }):totable())
  end)

  it("zeroes a fraction p and scales the rest by 1 / (1 - p)", function()
    local y = gen.dropout(gen.ones(20000), 0.25, true, { generator = gen.Generator(3) })
    local zeros = y:eq(0):sum():item()
    assert.near(0.25, zeros / 20000, 0.015)
    assert.near(20000 - zeros, y:eq(1 / 0.75):sum():item(), 0)
    assert.near(1, y:mean():item(), 0.03)
    assert.same({ 0, 0, 0 }, gen.dropout(gen.ones(3), 1, true):totable())
  end)

  it("is the identity when not training or when p is 0, still differentiable", function()
    local x = gen.randn(2, 3):requires_grad_()
    assert.same(x:totable(), gen.dropout(x, 0.5, false):totable())
    local y = gen.dropout(x, 0, true)
    assert.same(x:totable(), y:totable())
    y:sum():backward()
    assert.same(gen.ones(2, 3):totable(), x.grad:totable())
  end)

  it("passes the gradient through the kept elements only, scaled", function()
    local g = gen.Generator(4)
    local x = gen.randn(6, 7):requires_grad_()
    local y = gen.dropout(x, 0.4, true, { generator = g })
    y:backward(gen.ones_like(y))
    local mask = y:ne(0):float() / 0.6
    assert.is_true((x.grad - mask):abs():max():item() < 1e-6)
    assert.is_true(gradcheck(function(t) g:manual_seed(4); return gen.dropout(t, 0.5, true, { generator = g }) end,
      { gen.randn(4, 5) }))
    assert.is_true(gradcheck(function(t) return gen.dropout(t, 0.5, false) end, { gen.randn(3) }))
  end)
end)

describe("normalization rejects bad arguments", function()
  local x = gen.randn(2, 6, 4, 4)
  local function err(fn)
    local ok, e = pcall(fn)
    assert.is_false(ok, "expected an error")
    return tostring(e)
  end

  it("group_norm: groups that do not divide the channels, wrong affine sizes", function()
    assert.has_error(function() gen.group_norm(x, 4) end, "gen.group_norm: 4 groups do not divide 6 channels")
    assert.has_error(function() gen.group_norm(x, 0) end, "gen.group_norm: 0 groups do not divide 6 channels")
    assert.truthy(err(function() gen.group_norm(x, 3, gen.ones(5)) end):find("gen.group_norm: weight must have 6 elements", 1, true))
    assert.truthy(err(function() gen.group_norm(x, 3, nil, gen.ones(7)) end):find("gen.group_norm: bias", 1, true))
    assert.truthy(err(function() gen.group_norm(gen.randn(6), 3) end):find("gen.group_norm: input must be {N, C, ...}", 1, true))
    assert.truthy(err(function() gen.group_norm(gen.ones(2, 6, "int64"), 3) end):find("gen.group_norm: input must be float", 1, true))
  end)

  it("layer_norm: a shape that is not the input's trailing one", function()
    assert.has_error(function() gen.layer_norm(x, { 7 }) end,
      "gen.layer_norm: normalized shape {7} does not match the end of the input's float32 {2,6,4,4}")
    assert.truthy(err(function() gen.layer_norm(x, { 4, 4 }, gen.ones(4)) end):find("gen.layer_norm: weight must have 16 elements", 1, true))
    assert.truthy(err(function() gen.layer_norm(x, "4") end):find("gen.layer_norm: argument 2", 1, true))
  end)

  it("batch_norm: missing statistics, mismatched sizes, a single value per channel", function()
    assert.has_error(function() gen.batch_norm(x, nil, nil, nil, nil, { training = false }) end,
      "gen.batch_norm: evaluation mode needs running statistics")
    assert.truthy(err(function() gen.batch_norm(x, gen.zeros(6)) end):find("gen.batch_norm: give both", 1, true))
    assert.truthy(err(function() gen.batch_norm(x, gen.zeros(5), gen.ones(5)) end):find("gen.batch_norm: running_mean must have 6", 1, true))
    assert.truthy(err(function() gen.batch_norm(gen.randn(1, 3)) end):find("gen.batch_norm: training needs more than one value", 1, true))
    assert.truthy(err(function() gen.batch_norm(x, nil, nil, nil, nil, { momentum = "high" }) end):find("gen.batch_norm: option 'momentum'", 1, true))
  end)

  it("dropout: a probability outside [0, 1], an integer tensor", function()
    assert.has_error(function() gen.dropout(gen.ones(2), 1.5) end, "gen.dropout: probability 1.5 is not in [0, 1]")
    assert.has_error(function() gen.dropout(gen.ones(2), -0.1) end, "gen.dropout: probability -0.1 is not in [0, 1]")
    assert.truthy(err(function() gen.dropout(gen.ones(2, "int64"), 0.5) end):find("gen.dropout: needs a float tensor", 1, true))
  end)
end)
