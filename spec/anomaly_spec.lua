-- gen.autograd.detect_anomaly: the first op whose forward or backward produces NaN or Inf is named,
-- with the Lua line that created it.
local gen = require "gen"

local function err_of(fn)
  local ok, err = pcall(fn)
  assert.is_false(ok, "expected an anomaly error")
  return tostring(err)
end

describe("gen.autograd.detect_anomaly", function()
  after_each(function() gen.autograd.detect_anomaly(false) end)

  it("is off by default and returns the previous setting", function()
    assert.is_false(gen.autograd.detect_anomaly(true))
    assert.is_true(gen.autograd.detect_anomaly(false))
    -- off: NaN flows through silently, as before
    local y = gen.log(gen.tensor({ -1.0 }))
    assert.is_true(y:item() ~= y:item())
    assert.has_error(function() gen.autograd.detect_anomaly("yes") end)
  end)

  it("names the op whose forward turned finite inputs into NaN, and its line", function()
    gen.autograd.detect_anomaly(true)
    local x = gen.tensor({ 1, -1, 2 }):requires_grad_()
    local h = x * 2
    local line = debug.getinfo(1, "l").currentline + 1
    local err = err_of(function() return gen.log(h) end)
    assert.is_truthy(err:find("gen.log: anomaly: the forward of log produced NaN from finite inputs", 1, true), err)
    assert.is_truthy(err:find("anomaly_spec.lua:" .. line, 1, true), err)
    -- a NaN already in the input is not this op's doing: the op passes it on
    local nan = gen.tensor({ 0 / 0, 1 })
    assert.equal(2, gen.exp(nan):numel())
  end)

  it("names Inf from a division by zero, through the / operator", function()
    gen.autograd.detect_anomaly(true)
    local line = debug.getinfo(1, "l").currentline + 1
    local err = err_of(function() return gen.tensor({ 1, 2 }) / gen.zeros(2) end)
    assert.is_truthy(err:find("anomaly: the forward of div produced Inf", 1, true), err)
    assert.is_truthy(err:find("anomaly_spec.lua:" .. line, 1, true), err)
  end)

  it("names the op whose backward produced NaN or Inf, with the line that created it", function()
    gen.autograd.detect_anomaly(true)
    local y = gen.tensor({ 0, 1, 4 }):requires_grad_()
    local line = debug.getinfo(1, "l").currentline + 1
    local z = gen.sqrt(y) -- finite forward (0, 1, 2); its gradient 1 / (2 sqrt(y)) is Inf at 0
    local loss = (z * 3):sum()
    local err = err_of(function() loss:backward() end)
    assert.is_truthy(err:find("the backward of sqrt (created at " .. "spec/anomaly_spec.lua:" .. line .. ")", 1, true), err)
    assert.is_truthy(err:find("produced Inf in the gradient of input 1", 1, true), err)
  end)

  it("a NaN planted in a known op's backward: pow at 0 with a negative exponent's gradient", function()
    local run = function()
      local w = gen.tensor({ 1, 0 }, "float64"):requires_grad_()
      local p = w:pow(0.5)
      local ok, err = pcall(function() p:sum():backward() end)
      return ok, err
    end
    local ok, err = gen.autograd.detect_anomaly(run)
    assert.is_false(ok)
    assert.is_truthy(tostring(err):find("the backward of pow", 1, true), tostring(err))
    assert.is_false(gen.autograd.detect_anomaly(false)) -- the function form restored the setting
  end)

  it("a model step with finite values runs unchanged in anomaly mode", function()
    gen.manual_seed(1)
    local m = gen.nn.Sequential(gen.nn.Linear(4, 8), gen.nn.ReLU(), gen.nn.Linear(8, 1))
    local x = gen.randn(5, 4)
    local plain = m(x):sum()
    plain:backward()
    local g1 = m:parameters()[1].grad:clone()
    m:zero_grad()
    gen.autograd.detect_anomaly(true)
    local l2 = m(x):sum()
    l2:backward()
    assert.equal(plain:item(), l2:item())
    assert.equal(0, (g1 - m:parameters()[1].grad):abs():max():item())
  end)

  it("the examples take --detect-anomaly", function()
    local p = io.popen("bin/gen examples/gan/gan.lua --help 2>&1")
    local out = p:read("a")
    p:close()
    assert.is_truthy(out:find("--detect-anomaly", 1, true), out)
  end)
end)
