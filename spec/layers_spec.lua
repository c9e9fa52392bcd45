-- Layer ops against PyTorch fixtures (spec/fixtures/make_layer_fixtures.py, float64): outputs and
-- input/weight gradients; then gradient checks and bad arguments for each op.
local gen = require "gen"
local gradcheck = gen.testing.gradcheck
local fixtures = require "support.fixtures"
local fx = gen.load("spec/fixtures/layers.safetensors")

local function get(case, field) return fx[case .. "/" .. field] end

local calls = {
  linear = gen.linear,
  linear_3d_nobias = function(x, w) return gen.linear(x, w) end,
  conv2d_s2p1 = function(x, w, b) return gen.conv2d(x, w, b, { stride = 2, padding = 1 }) end,
  conv2d_dil2 = function(x, w, b) return gen.conv2d(x, w, b, { dilation = 2, padding = 2 }) end,
  conv2d_groups2 = function(x, w, b) return gen.conv2d(x, w, b, { groups = 2, padding = 1 }) end,
  conv2d_1x1 = function(x, w) return gen.conv2d(x, w) end,
  conv2d_rect = function(x, w, b) return gen.conv2d(x, w, b, { stride = { 2, 1 }, padding = { 0, 1 } }) end,
  convT_s2p1 = function(x, w, b) return gen.conv_transpose2d(x, w, b, { stride = 2, padding = 1 }) end,
  convT_op1 = function(x, w, b) return gen.conv_transpose2d(x, w, b, { stride = 2, padding = 1, output_padding = 1 }) end,
  convT_groups_dil = function(x, w) return gen.conv_transpose2d(x, w, nil, { groups = 2, dilation = 2 }) end,
  max_pool_k2 = function(x) return gen.max_pool2d(x, 2) end,
  max_pool_k3s2p1 = function(x) return gen.max_pool2d(x, 3, { stride = 2, padding = 1 }) end,
  avg_pool_k2 = function(x) return gen.avg_pool2d(x, 2) end,
  avg_pool_k3s2p1 = function(x) return gen.avg_pool2d(x, 3, { stride = 2, padding = 1 }) end,
  avg_pool_nopadcount = function(x) return gen.avg_pool2d(x, 3, { stride = 2, padding = 1, count_include_pad = false }) end,
  up_nearest2 = function(x) return gen.upsample(x, { scale = 2 }) end,
  up_bilinear2 = function(x) return gen.upsample(x, { scale = 2, mode = "bilinear" }) end,
  up_bilinear_size = function(x) return gen.upsample(x, { size = { 5, 7 }, mode = "bilinear" }) end,
  pad_constant = function(x) return gen.pad(x, { 1, 2, 0, 3 }, "constant", 0.5) end,
  pad_reflect = function(x) return gen.pad(x, { 2, 1, 3, 1 }, "reflect") end,
  pad_replicate = function(x) return gen.pad(x, { 2, 1, 3, 1 }, "replicate") end,
  bn_eval = function(x, w, b)
    return gen.batch_norm(x, get("bn_eval", "running_mean"), get("bn_eval", "running_var"), w, b, { training = false })
  end,
  bn_1d = function(x) return gen.batch_norm(x, nil, nil, nil, nil, { training = true }) end,
  group_norm = function(x, w, b) return gen.group_norm(x, 2, w, b) end,
  layer_norm = function(x, w, b) return gen.layer_norm(x, { 3, 4 }, w, b) end,
  mse_mean = gen.mse_loss,
  mse_none = function(x, y) return gen.mse_loss(x, y, { reduction = "none" }) end,
  l1_sum = function(x, y) return gen.l1_loss(x, y, { reduction = "sum" }) end,
  bce_logits = gen.bce_with_logits,
  bce = function(p, y) return gen.binary_cross_entropy(p, y, { reduction = "sum" }) end,
  cross_entropy = gen.cross_entropy,
  cross_entropy_4d = function(x, t) return gen.cross_entropy(x, t, { reduction = "sum" }) end,
  nll = function(x, t) return gen.nll_loss(x, t, { reduction = "none" }) end,
  kl_mean = gen.kl_normal,
  attn = gen.scaled_dot_product_attention,
  attn_causal = function(q, k, v) return gen.scaled_dot_product_attention(q, k, v, { causal = true }) end,
  attn_cross_dv = gen.scaled_dot_product_attention,
  attn_mask = function(q, k, v, m) return gen.scaled_dot_product_attention(q, k, v, { mask = m }) end,
}

-- largest difference relative to the reference's largest magnitude (at least 1)
local function check(got, want, tol, label) fixtures.assert_close(got, want, tol, label, { measure = "scaled" }) end

describe("layer ops match PyTorch", function()
  for name, call in pairs(calls) do
    it(name, function()
      local ins = {}
      local i = 0
      while get(name, "in" .. i) do
        local t = get(name, "in" .. i):clone()
        if t.dtype == "float64" and get(name, "grad" .. i) then t:requires_grad_() end
        ins[#ins + 1] = t
        i = i + 1
      end
      local out = call(table.unpack(ins))
      assert.same(get(name, "out").shape, out.shape)
      check(out, get(name, "out"), 1e-9, name .. ": output")
      out:backward(get(name, "gout"))
      for k, t in ipairs(ins) do
        local want = get(name, "grad" .. (k - 1))
        if want then
          assert.truthy(t.grad, name .. ": no gradient for input " .. k)
          check(t.grad, want, 1e-9, name .. ": gradient of input " .. k)
        end
      end
    end)
  end

  it("updates batch-norm running statistics like PyTorch", function()
    local rm, rv = get("bn_train", "running_mean_before"):clone(), get("bn_train", "running_var_before"):clone()
    local x, w, b = get("bn_train", "in0"), get("bn_train", "in1"), get("bn_train", "in2")
    local out = gen.batch_norm(x, rm, rv, w, b, { training = true, momentum = 0.1 })
    check(out, get("bn_train", "out"), 1e-9, "bn_train: output")
    check(rm, get("bn_train", "running_mean_after"), 1e-12, "bn_train: running_mean")
    check(rv, get("bn_train", "running_var_after"), 1e-12, "bn_train: running_var")
  end)

  it("agrees in float32 within float precision", function()
    local x, w, b = get("conv2d_s2p1", "in0"):float(), get("conv2d_s2p1", "in1"):float(), get("conv2d_s2p1", "in2"):float()
    local out = gen.conv2d(x, w, b, { stride = 2, padding = 1 })
    check(out:double(), get("conv2d_s2p1", "out"), 1e-5, "conv2d_s2p1 float32: output")
    local q, k, v = get("attn_causal", "in0"):float(), get("attn_causal", "in1"):float(), get("attn_causal", "in2"):float()
    local a = gen.scaled_dot_product_attention(q, k, v, { causal = true })
    check(a:double(), get("attn_causal", "out"), 1e-5, "attn_causal float32: output")
  end)
end)

describe("layer gradient checks", function()
  local r = function(...) return gen.randn(...) end
  it("linear, conv2d, conv_transpose2d", function()
    assert.is_true(gradcheck(gen.linear, { r(2, 3), r(4, 3), r(4) }))
    assert.is_true(gradcheck(function(x, w, b) return gen.conv2d(x, w, b, { stride = 2, padding = 1, groups = 2 }) end,
      { r(1, 4, 5, 5), r(2, 2, 3, 3), r(2) }))
    assert.is_true(gradcheck(function(x, w, b) return gen.conv_transpose2d(x, w, b, { stride = 2, padding = 1, output_padding = 1 }) end,
      { r(1, 2, 3, 3), r(2, 3, 3, 3), r(3) }))
  end)

  it("pooling, upsampling, padding", function()
    local x = gen.tensor({ { { { 0.1, 0.9, 0.4, 0.3 }, { 0.7, 0.2, 0.8, 0.5 }, { 0.6, 0.05, 0.35, 0.95 }, { 0.15, 0.55, 0.75, 0.25 } } } })
    assert.is_true(gradcheck(function(t) return gen.max_pool2d(t, 2) end, { x }))
    assert.is_true(gradcheck(function(t) return gen.avg_pool2d(t, 3, { stride = 1, padding = 1 }) end, { x }))
    assert.is_true(gradcheck(function(t) return gen.upsample(t, { scale = 2 }) end, { x }))
    assert.is_true(gradcheck(function(t) return gen.upsample(t, { size = { 3, 6 }, mode = "bilinear" }) end, { x }))
    assert.is_true(gradcheck(function(t) return gen.pad(t, { 1, 2, 2, 1 }, "reflect") end, { x }))
    assert.is_true(gradcheck(function(t) return gen.pad(t, { 1, 0, 0, 1 }) end, { x }))
  end)

  it("normalization and dropout", function()
    assert.is_true(gradcheck(function(x, w, b) return gen.batch_norm(x, nil, nil, w, b, { training = true }) end, { r(3, 2, 2), r(2), r(2) }))
    assert.is_true(gradcheck(function(x, w, b) return gen.group_norm(x, 2, w, b) end, { r(2, 4, 3), r(4), r(4) }))
    assert.is_true(gradcheck(function(x, w, b) return gen.layer_norm(x, 3, w, b) end, { r(2, 3), r(3), r(3) }))
    local g = gen.Generator(4)
    assert.is_true(gradcheck(function(x) g:manual_seed(4); return gen.dropout(x, 0.5, true, { generator = g }) end, { r(4, 5) }))
  end)

  it("losses", function()
    local t = gen.tensor({ 3, 1 }, "int64")
    assert.is_true(gradcheck(gen.mse_loss, { r(2, 3), r(2, 3) }))
    assert.is_true(gradcheck(gen.l1_loss, { gen.tensor { 0.5, -1.2 }, gen.tensor { 0.1, 0.3 } }))
    assert.is_true(gradcheck(gen.bce_with_logits, { r(2, 3), gen.rand(2, 3) }))
    assert.is_true(gradcheck(gen.binary_cross_entropy, { gen.rand(2, 3) * 0.8 + 0.1, gen.rand(2, 3) }))
    assert.is_true(gradcheck(function(x) return gen.cross_entropy(x, t) end, { r(2, 4) }))
    assert.is_true(gradcheck(function(x) return gen.nll_loss(x, t, { reduction = "sum" }) end, { r(2, 4) }))
    assert.is_true(gradcheck(gen.kl_normal, { r(2, 3), r(2, 3) }))
  end)

  it("attention, causal and masked", function()
    local m = gen.tensor({ { { { 1, 0, 1 } } } }, "uint8")
    assert.is_true(gradcheck(gen.scaled_dot_product_attention, { r(1, 2, 3, 2), r(1, 2, 3, 2), r(1, 2, 3, 3) }))
    assert.is_true(gradcheck(function(q, k, v) return gen.scaled_dot_product_attention(q, k, v, { causal = true, mask = m }) end,
      { r(1, 1, 3, 2), r(1, 1, 3, 2), r(1, 1, 3, 2) }))
  end)
end)

describe("layer ops reject bad arguments", function()
  local x = gen.randn(2, 3, 8, 8)
  it("names the function and the shapes", function()
    assert.has_error(function() gen.conv2d(x, gen.randn(4, 2, 3, 3)) end,
      "gen.conv2d: input {2,3,8,8} has 3 channels but weight {4,2,3,3} expects 2 x groups(1) = 2")
    assert.has_error(function() gen.conv2d(x, gen.randn(4, 3, 9, 9)) end)
    assert.has_error(function() gen.conv2d(x, gen.randn(4, 1, 3, 3), nil, { groups = 2 }) end)
    assert.has_error(function() gen.conv2d(gen.randn(3, 8, 8), gen.randn(4, 3, 3, 3)) end)
    assert.has_error(function() gen.conv2d(x, gen.randn(4, 3, 3, 3), nil, { stride = 0 }) end)
    assert.has_error(function() gen.conv2d(x, gen.randn(4, 3, 3, 3), gen.randn(5)) end)
    assert.has_error(function() gen.conv_transpose2d(x, gen.randn(4, 3, 3, 3)) end)
    assert.has_error(function() gen.linear(gen.randn(2, 3), gen.randn(4, 5)) end)
    assert.has_error(function() gen.max_pool2d(x, 9) end)
    assert.has_error(function() gen.upsample(x, { scale = 2, mode = "cubic" }) end)
    assert.has_error(function() gen.pad(x, { 8, 0, 0, 0 }, "reflect") end)
    assert.has_error(function() gen.pad(x, { 1, 1 }, "wrap") end)
    assert.has_error(function() gen.group_norm(x, 2) end, "gen.group_norm: 2 groups do not divide 3 channels")
    assert.has_error(function() gen.layer_norm(x, { 7 }) end)
    assert.has_error(function() gen.batch_norm(x, nil, nil, nil, nil, { training = false }) end)
    assert.has_error(function() gen.cross_entropy(gen.randn(2, 3), gen.tensor({ 1, 4 }, "int64")) end,
      "gen.cross_entropy: target 4 is out of range 1..3 (at position 2)")
    assert.has_error(function() gen.cross_entropy(gen.randn(2, 3), gen.tensor({ 1, 2 })) end)
    assert.has_error(function() gen.mse_loss(gen.randn(2), gen.randn(3)) end)
    assert.has_error(function() gen.mse_loss(gen.randn(2), gen.randn(2), { reduction = "avg" }) end)
    assert.has_error(function() gen.binary_cross_entropy(gen.tensor { 1.5 }, gen.tensor { 1 }) end)
    assert.has_error(function() gen.scaled_dot_product_attention(gen.randn(1, 2, 3, 4), gen.randn(1, 2, 3, 5), gen.randn(1, 2, 3, 4)) end)
    assert.has_error(function()
      gen.scaled_dot_product_attention(gen.randn(1, 2, 3, 4), gen.randn(1, 2, 3, 4), gen.randn(1, 2, 3, 4), { mask = gen.ones(5, "uint8") })
    end)
    assert.has_error(function() gen.dropout(gen.ones(2), 1.5) end)
  end)

  it("keeps dropout reproducible and unbiased", function()
    local a = gen.dropout(gen.ones(10000), 0.3, true, { generator = gen.Generator(1) })
    local b = gen.dropout(gen.ones(10000), 0.3, true, { generator = gen.Generator(1) })
    assert.same(a:totable(), b:totable())
    assert.near(1, a:mean():item(), 0.03)
    assert.near(0.3, a:eq(0):sum():item() / 10000, 0.02)
    assert.same(gen.ones(3):totable(), gen.dropout(gen.ones(3), 0.5, false):totable())
  end)
end)
