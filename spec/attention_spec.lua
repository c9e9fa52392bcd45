-- scaled_dot_product_attention: PyTorch fixtures (spec/fixtures/make_norm_fixtures.py) in float64 and
-- float32, agreement with the explicit softmax(QK^T)V across many tiles, gradient checks (causal,
-- masks, cross-attention, dv ~= d), fully masked rows, O(T d) memory, thread-count independence and
-- bad arguments.
local gen = require "gen"
local threads = require "support.threads"
local gradcheck = require("gen.testing").gradcheck
local fixtures = require "support.fixtures"
local cases = require "fixtures.norm_attention"
local sdpa = gen.scaled_dot_product_attention
local tensor = fixtures.tensor

local function check_case(name, c, dtype, tol)
  local ins = {}
  for i = 1, 3 do ins[i] = tensor(c.inputs[i], dtype):requires_grad_() end
  local opts = c.args and {}
  if c.args then
    for k, v in pairs(c.args) do opts[k] = v end
    if opts.mask then
      local m = c.inputs[4]
      local integral = true
      for _, v in ipairs(m.data) do if v ~= 0 and v ~= 1 then integral = false end end
      opts.mask = tensor(m, integral and "uint8" or dtype)
    end
  end
  local out = sdpa(ins[1], ins[2], ins[3], opts)
  assert.are.equal(dtype, out.dtype)
  fixtures.assert_close(out, c.out, tol, name .. " " .. dtype .. ": output")
  out:backward(fixtures.upstream(out))
  for i = 1, 3 do
    assert.truthy(ins[i].grad, name .. ": no gradient for input " .. i)
    fixtures.assert_close(ins[i].grad, c.grads[i], tol, string.format("%s %s: gradient of input %d", name, dtype, i))
  end
end

-- the textbook formula with gen's ordinary ops: the O(T^2) reference
local function explicit(q, k, v, opts)
  opts = opts or {}
  local s = gen.matmul(q, k:transpose(3, 4)) * (opts.scale or 1 / math.sqrt(q:size(4)))
  local tq, tk = q:size(3), k:size(3)
  if opts.causal then
    local t = {}
    for i = 1, tq do
      t[i] = {}
      for j = 1, tk do t[i][j] = j <= i + (opts.offset or 0) and 1 or 0 end
    end
    s = s:masked_fill(gen.tensor(t):eq(0), -math.huge)
  end
  if opts.mask then s = s:masked_fill(opts.mask:eq(0), -math.huge) end
  return gen.matmul(gen.softmax(s, -1), v)
end

describe("attention matches PyTorch", function()
  fixtures.each_case(it, cases, check_case)

  it("agrees with the explicit softmax(QK^T)V over many tiles, forward and backward", function()
    gen.manual_seed(21)
    local B, H, Tq, Tk, d, dv = 2, 2, 150, 200, 16, 8
    local mask = gen.rand(B, 1, Tq, Tk):gt(0.2):byte()
    for _, opts in ipairs { {}, { causal = true }, { causal = true, offset = 50 }, { causal = true, offset = 120 },
      { mask = mask, scale = 0.2 }, { mask = mask, causal = true, offset = 30 } } do
      local q0, k0, v0 = gen.randn(B, H, Tq, d), gen.randn(B, H, Tk, d), gen.randn(B, H, Tk, dv)
      local g = gen.randn(B, H, Tq, dv)
      local function run(f)
        local q, k, v = q0:clone():requires_grad_(), k0:clone():requires_grad_(), v0:clone():requires_grad_()
        local o = f(q, k, v, opts)
        o:backward(g)
        return o, q.grad, k.grad, v.grad
      end
      local a, b = { run(sdpa) }, { run(explicit) }
      for i = 1, 4 do fixtures.assert_close(a[i], b[i], 1e-4, "result " .. i) end
    end
  end)
end)

describe("attention gradients", function()
  local function r(...) return gen.randn(...):double() end
  before_each(function() gen.manual_seed(17) end)

  it("self-attention, cross-attention with dv ~= d, a given scale", function()
    assert.is_true(gradcheck(sdpa, { r(1, 2, 3, 2), r(1, 2, 3, 2), r(1, 2, 3, 3) }))
    assert.is_true(gradcheck(sdpa, { r(2, 1, 2, 3), r(2, 1, 4, 3), r(2, 1, 4, 2) }))
    assert.is_true(gradcheck(function(q, k, v) return sdpa(q, k, v, { scale = 0.7 }) end, { r(1, 1, 3, 2), r(1, 1, 2, 2), r(1, 1, 2, 2) }))
  end)

  it("causal, masked (uint8 and additive), and both", function()
    local m = gen.tensor({ { { { 1, 0, 1 } } } }, "uint8")
    local fm = gen.tensor({ { 0.5, -1, 0 }, { 2, 0, -0.5 }, { 0, 0, 1 } }, "float64")
    assert.is_true(gradcheck(function(q, k, v) return sdpa(q, k, v, { causal = true }) end, { r(1, 2, 3, 2), r(1, 2, 3, 2), r(1, 2, 3, 2) }))
    assert.is_true(gradcheck(function(q, k, v) return sdpa(q, k, v, { mask = m }) end, { r(2, 1, 2, 2), r(2, 1, 3, 2), r(2, 1, 3, 3) }))
    assert.is_true(gradcheck(function(q, k, v) return sdpa(q, k, v, { causal = true, mask = m }) end,
      { r(1, 1, 3, 2), r(1, 1, 3, 2), r(1, 1, 3, 2) }))
    assert.is_true(gradcheck(function(q, k, v) return sdpa(q, k, v, { mask = fm }) end, { r(1, 1, 3, 2), r(1, 1, 3, 2), r(1, 1, 3, 2) }))
  end)

  it("causal with an offset: queries at the end of the keys, one query against a cache", function()
    local function causal(off) return function(q, k, v) return sdpa(q, k, v, { causal = true, offset = off }) end end
    assert.is_true(gradcheck(causal(2), { r(1, 2, 3, 2), r(1, 2, 5, 2), r(1, 2, 5, 3) }))
    assert.is_true(gradcheck(causal(3), { r(2, 1, 1, 3), r(2, 1, 6, 3), r(2, 1, 6, 2) }))
    assert.is_true(gradcheck(causal(68), { r(1, 1, 2, 1), r(1, 1, 72, 1), r(1, 1, 72, 1) }))
  end)

  it("one query at offset t equals row t + 1 of full causal attention; later keys are ignored", function()
    gen.manual_seed(4)
    local q, k, v = gen.randn(2, 3, 90, 8), gen.randn(2, 3, 90, 8), gen.randn(2, 3, 90, 8)
    local full = sdpa(q, k, v, { causal = true })
    for _, t in ipairs { 0, 1, 63, 64, 89 } do
      local junk_k, junk_v = k:clone(), v:clone()
      if t < 89 then -- keys after position t hold junk (finite), as an unfilled cache does
        junk_k:narrow(3, t + 2, 89 - t):fill_(1e4)
        junk_v:narrow(3, t + 2, 89 - t):fill_(-7e3)
      end
      local one = sdpa(q:narrow(3, t + 1, 1), junk_k, junk_v, { causal = true, offset = t })
      fixtures.assert_close(one, full:narrow(3, t + 1, 1), 1e-5, "query " .. t)
    end
  end)

  it("across tile boundaries (T > 64), causal", function()
    assert.is_true(gradcheck(function(q, k, v) return sdpa(q, k, v, { causal = true }) end,
      { r(1, 1, 70, 1), r(1, 1, 70, 1), r(1, 1, 70, 1) }))
  end)

  it("a fully masked query row gives zero output and zero gradient", function()
    local m = gen.tensor({ { 1, 1 }, { 0, 0 } }, "uint8") -- query 2 sees no key
    local q, k, v = gen.randn(1, 1, 2, 3):requires_grad_(), gen.randn(1, 1, 2, 3):requires_grad_(), gen.randn(1, 1, 2, 4):requires_grad_()
    local o = sdpa(q, k, v, { mask = m })
    assert.same({ 0, 0, 0, 0 }, o[1][1][2]:totable())
    o:sum():backward()
    assert.same({ 0, 0, 0 }, q.grad[1][1][2]:totable())
    assert.is_true(q.grad[1][1][1]:abs():sum():item() > 0)
    assert.is_true(gradcheck(function(a, b, c) return sdpa(a, b, c, { mask = m }) end, { r(1, 1, 2, 3), r(1, 1, 2, 3), r(1, 1, 2, 4) }))
  end)

  it("accepts non-contiguous q, k, v (a head split done with transpose)", function()
    local x = gen.randn(2, 5, 2, 3) -- {B, T, heads, d}
    local a = sdpa(x:transpose(2, 3), x:transpose(2, 3), x:transpose(2, 3))
    local c = x:transpose(2, 3):contiguous()
    assert.are.equal(0, (a - sdpa(c, c, c)):abs():max():item())
  end)
end)

describe("attention kernel", function()
  it("does not allocate the T x T scores", function()
    local T, d = 2048, 16
    local q, k, v = gen.randn(1, 1, T, d):requires_grad_(), gen.randn(1, 1, T, d):requires_grad_(), gen.randn(1, 1, T, d):requires_grad_()
    collectgarbage()
    local before = gen.memory(true).live
    local o = sdpa(q, k, v, { causal = true })
    o:backward(gen.ones_like(o))
    local peak = gen.memory().peak - before
    -- a T x T float32 matrix alone would be 16 MB; q, k, v, out, lse and the gradients are ~1 MB
    assert.is_true(peak < 4 * 1024 * 1024, "peak tensor memory grew by " .. peak .. " bytes")
  end)

  it("does not depend on the thread count", function()
    gen.manual_seed(3)
    local q0, k0, v0 = gen.randn(2, 3, 130, 8), gen.randn(2, 3, 100, 8), gen.randn(2, 3, 100, 4)
    local g = gen.randn(2, 3, 130, 4)
    local function run()
      local q, k, v = q0:clone():requires_grad_(), k0:clone():requires_grad_(), v0:clone():requires_grad_()
      local o = sdpa(q, k, v, { causal = true })
      o:backward(g)
      return o, q.grad, k.grad, v.grad
    end
    threads.assert_same(run)
  end)
end)

describe("attention rejects bad arguments", function()
  local function err(fn)
    local ok, e = pcall(fn)
    assert.is_false(ok, "expected an error")
    return tostring(e)
  end
  local q, k, v = gen.randn(1, 2, 3, 4), gen.randn(1, 2, 5, 4), gen.randn(1, 2, 5, 6)

  it("mismatched widths, lengths, batches and ranks", function()
    assert.has_error(function() sdpa(q, gen.randn(1, 2, 5, 3), v) end,
      "gen.scaled_dot_product_attention: shapes q {1,2,3,4}, k {1,2,5,3}, v {1,2,5,6} do not fit " ..
      "(batch and heads equal, q and k widths equal, k and v lengths equal)")
    assert.truthy(err(function() sdpa(q, k, gen.randn(1, 2, 4, 6)) end):find("gen.scaled_dot_product_attention: shapes", 1, true))
    assert.truthy(err(function() sdpa(q, gen.randn(2, 2, 5, 4), gen.randn(2, 2, 5, 6)) end):find("do not fit", 1, true))
    assert.truthy(err(function() sdpa(gen.randn(2, 3, 4), k, v) end)
      :find("gen.scaled_dot_product_attention: q, k, v must be {B, heads, T, d}, got {2,3,4}", 1, true))
    assert.truthy(err(function() sdpa(q:double(), k, v) end):find("must share one float dtype", 1, true))
  end)

  it("a mask of the wrong shape or type", function()
    assert.has_error(function() sdpa(q, k, v, { mask = gen.ones(4, "uint8") }) end,
      "gen.scaled_dot_product_attention: mask {4} does not broadcast to {1,2,3,5}")
    assert.truthy(err(function() sdpa(q, k, v, { mask = gen.ones(3, 3, "uint8") }) end):find("does not broadcast", 1, true))
    assert.truthy(err(function() sdpa(q, k, v, { mask = gen.ones(3, 5, "int64") }) end)
      :find("mask must be uint8 (1 = attend) or float32 (added to the scores), got int64", 1, true))
    assert.truthy(err(function() sdpa(q, k, v, { mask = "all" }) end):find("gen.scaled_dot_product_attention", 1, true))
    assert.truthy(err(function() sdpa(q, k, v, { causal = 1 }) end):find("option 'causal' must be a boolean", 1, true))
  end)

  it("an offset that is negative, fractional or without causal", function()
    assert.has_error(function() sdpa(q, k, v, { causal = true, offset = -1 }) end,
      "gen.scaled_dot_product_attention: offset -1 needs causal = true and must be >= 0")
    assert.has_error(function() sdpa(q, k, v, { offset = 2 }) end,
      "gen.scaled_dot_product_attention: offset 2 needs causal = true and must be >= 0")
    assert.truthy(err(function() sdpa(q, k, v, { causal = true, offset = 1.5 }) end):find("option 'offset' must be an integer", 1, true))
  end)
end)
