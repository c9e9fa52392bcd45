-- Optimizers against PyTorch trajectories, clipping, schedules, EMA, state round trips.
local gen = require "gen"
local ref = require "fixtures.optim_ref"
local fixtures = require "support.fixtures"

local p0 = { 0.5, -1.0, 2.0, 0.0, -0.25 }
local function grad(t)
  local g = {}
  for i = 0, 4 do g[i + 1] = math.sin(1.3 * i + 0.7 * t) + 0.1 * i end
  return gen.tensor(g, "float64")
end

local makers = {
  sgd = gen.optim.SGD, sgd_momentum = gen.optim.SGD, sgd_nesterov = gen.optim.SGD, sgd_dampening = gen.optim.SGD,
  adam = gen.optim.Adam, adam_wd = gen.optim.Adam, adamw = gen.optim.AdamW, rmsprop = gen.optim.RMSprop,
  rmsprop_centered_momentum = gen.optim.RMSprop,
}

describe("optimizers", function()
  for name, case in pairs(ref) do
    it("follows PyTorch's trajectory: " .. name, function()
      local p = gen.tensor(p0, "float64"):requires_grad_()
      local opt = makers[name]({ p }, case.opts)
      for t = 0, 5 do
        p.grad = grad(t)
        opt:step()
        fixtures.assert_close(p, case.trajectory[t + 1], 1e-10, name .. " after step " .. t + 1, { measure = "abs", inclusive = true })
      end
    end)
  end

  it("updates float32 parameters like float64 ones, to float precision", function()
    local p64 = gen.tensor(p0, "float64"):requires_grad_()
    local p32 = gen.tensor(p0):requires_grad_()
    local o64, o32 = gen.optim.Adam({ p64 }, { lr = 0.01 }), gen.optim.Adam({ p32 }, { lr = 0.01 })
    for t = 0, 5 do
      p64.grad, p32.grad = grad(t), grad(t):float()
      o64:step(); o32:step()
    end
    for i = 1, 5 do assert.near(p64:totable()[i], p32:totable()[i], 1e-5) end
  end)

  it("skips parameters without gradients and zeroes gradients", function()
    local a, b = gen.ones(2):requires_grad_(), gen.ones(2):requires_grad_()
    local opt = gen.optim.SGD({ a, b }, { lr = 1 })
    a.grad = gen.ones(2)
    opt:step()
    assert.same({ 0, 0 }, a:totable())
    assert.same({ 1, 1 }, b:totable())
    opt:zero_grad()
    assert.is_nil(a.grad)
  end)

  it("round-trips its state", function()
    local p = gen.tensor(p0, "float64"):requires_grad_()
    local opt = gen.optim.Adam({ p }, { lr = 0.01 })
    for t = 0, 2 do p.grad = grad(t); opt:step() end
    local q = gen.tensor(p:totable(), "float64"):requires_grad_()
    local opt2 = gen.optim.Adam({ q }, { lr = 0.01 })
    opt2:load_state_dict(opt:state_dict())
    for t = 3, 5 do
      p.grad, q.grad = grad(t), grad(t)
      opt:step(); opt2:step()
    end
    assert.same(p:totable(), q:totable())
  end)

  it("rejects bad arguments", function()
    local p = gen.ones(2):requires_grad_()
    assert.has_error(function() gen.optim.Adam({}, {}) end)
    assert.has_error(function() gen.optim.Adam({ gen.ones(2) }) end)
    assert.has_error(function() gen.optim.Adam({ p }, { lr = -1 }) end)
    assert.has_error(function() gen.optim.Adam({ p }, { betas = { 0.9 } }) end)
    assert.has_error(function() gen.optim.Adam({ p }, { learning_rate = 0.1 }) end, "gen.optim.Adam: unknown option 'learning_rate'")
    assert.has_error(function() gen.optim.SGD({ p }, { nesterov = true }) end)
    local opt = gen.optim.SGD({ p }, { lr = 0.1 })
    p.grad = gen.ones(2)
    local sd = { state = { [1] = { momentum_buffer = gen.ones(3) } } }
    assert.has_error(function() opt:load_state_dict(sd) end)
  end)
end)

describe("clip_grad_norm", function()
  it("scales gradients to the max norm and returns the norm before", function()
    local a, b = gen.zeros(2):requires_grad_(), gen.zeros(1):requires_grad_()
    a.grad, b.grad = gen.tensor { 3, 0 }, gen.tensor { 4 }
    local n = gen.optim.clip_grad_norm({ a, b }, 1)
    assert.near(5, n, 1e-6)
    assert.near(0.6, a.grad:totable()[1], 1e-5)
    assert.near(0.8, b.grad:totable()[1], 1e-5)
    assert.near(1, gen.optim.clip_grad_norm({ a, b }, 10), 1e-5)
    assert.near(0.6, a.grad:totable()[1], 1e-5)
  end)
end)

describe("schedules", function()
  it("warm up, decay and compose", function()
    local S = gen.optim.schedules
    assert.near(0.5, S.linear_warmup(2)(0), 1e-12)
    assert.near(1, S.linear_warmup(2)(5), 1e-12)
    assert.near(1, S.cosine(10)(0), 1e-12)
    assert.near(0.5, S.cosine(10)(5), 1e-12)
    assert.near(0.1, S.cosine(10, 0.1)(10), 1e-12)
    assert.near(0.01, S.step(2, 0.1)(4), 1e-12)
    local p = gen.ones(1):requires_grad_()
    local opt = gen.optim.SGD({ p }, { lr = 1 })
    local sched = gen.optim.Scheduler(opt, S.chain(S.linear_warmup(4), S.cosine(8)))
    assert.near(0.25, opt.lr, 1e-12)
    for _ = 1, 3 do sched:step() end
    assert.near(math.cos(math.pi * 3 / 8) * 0.5 + 0.5, opt.lr, 1e-12)
    local s2 = gen.optim.Scheduler(gen.optim.SGD({ p }, { lr = 1 }), S.cosine(8))
    s2:load_state_dict(sched:state_dict())
    assert.near(sched.optimizer.lr / S.linear_warmup(4)(3), s2.optimizer.lr, 1e-12)
  end)
end)
