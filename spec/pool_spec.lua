-- max_pool2d, avg_pool2d, upsample and pad: PyTorch fixtures (spec/fixtures/make_conv_fixtures.py)
-- in float64 and float32, gradient checks, bad arguments.
local gen = require "gen"
local gradcheck = require("gen.testing").gradcheck
local fixtures = require "support.fixtures"
local cases = require "fixtures.conv_pool"
local tensor = fixtures.tensor
-- largest difference relative to the reference's largest magnitude (at least 1)
local scaled = { measure = "scaled" }

-- upsample's fixture opts are its options table; the others' are the argument list after x
local function call(c, x)
  if c.op == "upsample" then return gen.upsample(x, c.opts) end
  return gen[c.op](x, table.unpack(c.opts))
end

local function check_case(name, c, dtype, tol)
  local x = tensor(c.inputs[1], dtype):requires_grad_()
  local out = call(c, x)
  assert.are.equal(dtype, out.dtype)
  fixtures.assert_close(out, c.out, tol, name .. " " .. dtype .. ": output", scaled)
  out:backward(fixtures.upstream(out))
  fixtures.assert_close(x.grad, c.grads[1], tol, name .. " " .. dtype .. ": input gradient", scaled)
end

describe("pooling, upsampling and padding match PyTorch", function()
  fixtures.each_case(it, cases, check_case, 1e-5)

  it("works as methods and on non-contiguous input", function()
    local x = gen.randn(2, 5, 6, 3):permute(1, 4, 2, 3)
    local c = x:contiguous()
    assert.same(gen.max_pool2d(c, 2):totable(), x:max_pool2d(2):totable())
    assert.same(gen.avg_pool2d(c, 3, { padding = 1 }):totable(), x:avg_pool2d(3, { padding = 1 }):totable())
    assert.same(gen.upsample(c, { scale = 2, mode = "bilinear" }):totable(), x:upsample { scale = 2, mode = "bilinear" }:totable())
    assert.same(gen.pad(c, { 1, 2, 3, 4 }, "reflect"):totable(), x:pad({ 1, 2, 3, 4 }, "reflect"):totable())
  end)

  it("routes max-pool gradients to the maximum only", function()
    local x = gen.tensor({ { { { 1, 5, 2, 0 }, { 3, 4, 9, 1 } } } }):requires_grad_()
    local y = gen.max_pool2d(x, 2)
    assert.same({ { { { 5, 9 } } } }, y:totable())
    y:backward(gen.tensor({ { { { 10, 20 } } } }))
    assert.same({ { { { 0, 10, 0, 0 }, { 0, 0, 20, 0 } } } }, x.grad:totable())
  end)

  it("propagates NaN through max pooling like PyTorch", function()
    local y = gen.max_pool2d(gen.tensor({ { { { 1, 0 / 0 }, { 3, 4 } } } }), 2)
    assert.is_true(y:item() ~= y:item())
  end)
end)

describe("pooling, upsampling and padding gradients", function()
  local function r(...) return gen.randn(...):double() end
  before_each(function() gen.manual_seed(11) end)

  it("max_pool2d and avg_pool2d", function()
    assert.is_true(gradcheck(function(t) return gen.max_pool2d(t, 2) end, { r(2, 2, 4, 5) }))
    assert.is_true(gradcheck(function(t) return gen.max_pool2d(t, { 3, 2 }, { stride = { 2, 1 }, padding = 1 }) end, { r(1, 2, 5, 4) }))
    assert.is_true(gradcheck(function(t) return gen.avg_pool2d(t, 3, { stride = 2, padding = 1 }) end, { r(2, 2, 5, 5) }))
    assert.is_true(gradcheck(function(t) return gen.avg_pool2d(t, 3, { stride = 2, padding = 1, count_include_pad = false }) end,
      { r(1, 2, 5, 5) }))
  end)

  it("upsample, nearest and bilinear", function()
    assert.is_true(gradcheck(function(t) return gen.upsample(t, { scale = 2 }) end, { r(2, 2, 3, 3) }))
    assert.is_true(gradcheck(function(t) return gen.upsample(t, { size = { 5, 4 } }) end, { r(1, 2, 3, 3) }))
    assert.is_true(gradcheck(function(t) return gen.upsample(t, { scale = 2, mode = "bilinear" }) end, { r(1, 2, 3, 3) }))
    assert.is_true(gradcheck(function(t) return gen.upsample(t, { size = { 2, 5 }, mode = "bilinear" }) end, { r(1, 2, 4, 3) }))
  end)

  it("pad, constant, reflect and replicate", function()
    assert.is_true(gradcheck(function(t) return gen.pad(t, { 1, 2, 0, 1 }, "constant", 3) end, { r(2, 3, 3) }))
    assert.is_true(gradcheck(function(t) return gen.pad(t, { 2, 1, 2, 2 }, "reflect") end, { r(1, 2, 3, 3) }))
    assert.is_true(gradcheck(function(t) return gen.pad(t, { 3, 0, 1, 2 }, "replicate") end, { r(1, 2, 3, 3) }))
  end)
end)

describe("pooling, upsampling and padding reject bad arguments", function()
  local x = gen.randn(2, 3, 8, 8)
  local function msg(fn)
    local ok, m = pcall(fn)
    assert.is_false(ok)
    return m
  end

  it("names the function and the offending values", function()
    assert.has_error(function() gen.max_pool2d(x, 9) end, "gen.max_pool2d: kernel 9x9 is larger than the padded input 8x8")
    assert.has_error(function() gen.avg_pool2d(x, { 2, 9 }) end, "gen.avg_pool2d: kernel 2x9 is larger than the padded input 8x8")
    assert.has_error(function() gen.max_pool2d(gen.randn(3, 8, 8), 2) end, "gen.max_pool2d: input must be {N, C, H, W}, got {3,8,8}")
    assert.has_error(function() gen.max_pool2d(x, 2, { stride = 0 }) end,
      "gen.max_pool2d: kernel 2, stride 0 and padding 0 must be positive (padding >= 0)")
    assert.has_error(function() gen.avg_pool2d(x, 0) end,
      "gen.avg_pool2d: kernel 0, stride 0 and padding 0 must be positive (padding >= 0)")
    assert.has_error(function() gen.max_pool2d(x, 2, { padding = 2 }) end,
      "gen.max_pool2d: padding 2 must be at most half the kernel size 2")
    assert.truthy(msg(function() gen.max_pool2d(x, "2") end):find("gen.max_pool2d: argument 2", 1, true))
    assert.truthy(msg(function() gen.max_pool2d(gen.ones({ 1, 1, 2, 2 }, "int64"), 2) end):find("gen.max_pool2d: ", 1, true))
    assert.has_error(function() gen.upsample(x, { scale = 2, mode = "cubic" }) end,
      'gen.upsample: mode must be "nearest" or "bilinear", got cubic')
    assert.has_error(function() gen.upsample(x, { scale = 0 }) end, "gen.upsample: give scale > 0 or size = {H, W}")
    assert.has_error(function() gen.upsample(x, { scale = 0.1 }) end, "gen.upsample: output size 0x0 must be positive")
    assert.has_error(function() gen.upsample(gen.randn(3, 8, 8), { scale = 2 }) end,
      "gen.upsample: input must be {N, C, H, W}, got 3 dimensions")
    assert.has_error(function() gen.pad(x, { 8, 0, 0, 0 }, "reflect") end,
      "gen.pad: reflect padding 8 must be smaller than the dimension size 8")
    assert.has_error(function() gen.pad(x, { 1, 1 }, "wrap") end,
      "gen.pad: mode must be \"constant\", \"reflect\" or \"replicate\", got 'wrap'")
    assert.has_error(function() gen.pad(x, { -1, 0, 0, 0 }) end, "gen.pad: padding -1 is negative")
    assert.has_error(function() gen.pad(gen.randn(4), { 1, 1, 1, 1 }) end, "gen.pad: input needs at least 2 dimensions, got 1")
    assert.has_error(function() gen.pad(x, { 1, 2, 3 }) end, "gen.pad: argument 2: expected {left, right, top, bottom} (or {left, right})")
  end)
end)
