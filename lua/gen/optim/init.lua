--- gen.optim: optimizers (updates run in C, one fused pass per parameter), gradient clipping,
-- learning-rate schedules and an exponential moving average of a model's weights.
local gen = require "gen"
local core = gen.core

local optim = {}

local function param_list(params, who)
  if type(params) == "table" and params.parameters and rawget(params, "_is_module") then params = params:parameters() end
  if type(params) ~= "table" or #params == 0 then error(who .. ": expected a non-empty list of parameters (or a module)", 3) end
  for i, p in ipairs(params) do
    if not gen.is_tensor(p) then error(string.format("%s: parameter %d is a %s, not a tensor", who, i, type(p)), 3) end
    if not p.requires_grad then error(string.format("%s: parameter %d does not require grad", who, i), 3) end
  end
  return params
end

local function check_number(who, name, v, lo)
  if type(v) ~= "number" or v ~= v or (lo and v < lo) then
    error(string.format("%s: %s must be a number%s, got %s", who, name, lo and (" >= " .. lo) or "", tostring(v)), 3)
  end
end

---------------------------------------------------------------- the base class
local Optimizer = {}
Optimizer.__index = Optimizer

local function new_optimizer(cls, name, params, defaults, opts)
  local o = setmetatable({ name = name, params = param_list(params, name), state = {}, step_count = 0 }, cls)
  opts = opts or {}
  for k, v in pairs(defaults) do o[k] = opts[k] == nil and v or opts[k] end
  for k in pairs(opts) do
    if defaults[k] == nil then error(string.format("%s: unknown option '%s'", name, k), 3) end
  end
  check_number(name, "lr", o.lr, 0)
  if o.weight_decay then check_number(name, "weight_decay", o.weight_decay, 0) end
  return o
end

--- Sets every parameter's gradient to nil (what PyTorch's zero_grad(set_to_none=True) does).
function Optimizer:zero_grad()
  for _, p in ipairs(self.params) do p.grad = nil end
end

--- The tensors and counters needed to resume: {step_count, lr, state = {[i] = {name = tensor}}}.
function Optimizer:state_dict()
  local state = {}
  for i, s in pairs(self.state) do
    local copy = {}
    for k, v in pairs(s) do copy[k] = v end
    state[i] = copy
  end
  return { step_count = self.step_count, lr = self.lr, state = state }
end

function Optimizer:load_state_dict(sd)
  if type(sd) ~= "table" or type(sd.state) ~= "table" then error(self.name .. ":load_state_dict: not an optimizer state", 2) end
  for key, s in pairs(sd.state) do
    local i = tonumber(key)
    local p = i and self.params[i]
    if not p then error(string.format("%s:load_state_dict: state for parameter %s, but there are %d parameters", self.name, tostring(key), #self.params), 2) end
    local mine = {}
    for k, t in pairs(s) do
      if gen.is_tensor(t) then
        if table.concat(t.shape, "x") ~= table.concat(p.shape, "x") then
          error(string.format("%s:load_state_dict: state %s.%s has shape {%s}, parameter has {%s}", self.name, key, k,
            table.concat(t.shape, ","), table.concat(p.shape, ",")), 2)
        end
        mine[k] = gen.tensor(t, p.dtype)
      else
        mine[k] = t
      end
    end
    self.state[i] = mine
  end
  self.step_count = math.tointeger(sd.step_count) or self.step_count
  if sd.lr then self.lr = sd.lr end
end

function Optimizer:step()
  self.step_count = self.step_count + 1
  for i, p in ipairs(self.params) do
    local g = p.grad
    if g then
      if not g:is_contiguous() then g = g:contiguous() end
      local s = self.state[i]
      if not s then s = {}; self.state[i] = s end
      self:update(p, g, s)
    end
  end
end

---------------------------------------------------------------- SGD
local SGD = setmetatable({}, { __index = Optimizer })
SGD.__index = SGD
--- SGD(params, {lr = 0.01, momentum = 0, dampening = 0, weight_decay = 0, nesterov = false})
function optim.SGD(params, opts)
  local o = new_optimizer(SGD, "gen.optim.SGD", params, { lr = 0.01, momentum = 0, dampening = 0, weight_decay = 0, nesterov = false }, opts)
  if o.nesterov and (o.momentum <= 0 or o.dampening ~= 0) then error("gen.optim.SGD: nesterov needs momentum > 0 and dampening 0", 2) end
  return o
end
function SGD:update(p, g, s)
  local first = false
  if self.momentum ~= 0 and not s.momentum_buffer then s.momentum_buffer = gen.zeros_like(p); first = true end
  core.sgd_step_(p, g, s.momentum_buffer, { lr = self.lr, momentum = self.momentum, dampening = self.dampening,
    weight_decay = self.weight_decay, nesterov = self.nesterov, first_step = first })
end

---------------------------------------------------------------- Adam, AdamW
local Adam = setmetatable({}, { __index = Optimizer })
Adam.__index = Adam
local function make_adam(name, decoupled, default_wd)
  return function(params, opts)
    local o = new_optimizer(Adam, name, params, { lr = 1e-3, betas = { 0.9, 0.999 }, eps = 1e-8, weight_decay = default_wd }, opts)
    if type(o.betas) ~= "table" or #o.betas ~= 2 then error(name .. ": betas must be a pair {beta1, beta2}", 2) end
    for _, b in ipairs(o.betas) do
      if type(b) ~= "number" or b < 0 or b >= 1 then error(name .. ": betas must be in [0, 1), got " .. tostring(b), 2) end
    end
    o.decoupled = decoupled
    return o
  end
end
--- Adam(params, {lr = 1e-3, betas = {0.9, 0.999}, eps = 1e-8, weight_decay = 0}) (L2 on the gradient)
optim.Adam = make_adam("gen.optim.Adam", false, 0)
--- AdamW(params, {lr = 1e-3, betas = {0.9, 0.999}, eps = 1e-8, weight_decay = 0.01}) (decoupled decay)
optim.AdamW = make_adam("gen.optim.AdamW", true, 0.01)
function Adam:update(p, g, s)
  if not s.exp_avg then s.exp_avg, s.exp_avg_sq, s.step = gen.zeros_like(p), gen.zeros_like(p), 0 end
  s.step = s.step + 1
  core.adam_step_(p, g, s.exp_avg, s.exp_avg_sq, { lr = self.lr, beta1 = self.betas[1], beta2 = self.betas[2],
    eps = self.eps, weight_decay = self.weight_decay, step = math.tointeger(s.step), decoupled = self.decoupled })
end

---------------------------------------------------------------- RMSprop
local RMSprop = setmetatable({}, { __index = Optimizer })
RMSprop.__index = RMSprop
--- RMSprop(params, {lr = 0.01, alpha = 0.99, eps = 1e-8, weight_decay = 0, momentum = 0, centered = false})
function optim.RMSprop(params, opts)
  return new_optimizer(RMSprop, "gen.optim.RMSprop", params,
    { lr = 0.01, alpha = 0.99, eps = 1e-8, weight_decay = 0, momentum = 0, centered = false }, opts)
end
function RMSprop:update(p, g, s)
  if not s.square_avg then
    s.square_avg = gen.zeros_like(p)
    if self.momentum > 0 then s.momentum_buffer = gen.zeros_like(p) end
    if self.centered then s.grad_avg = gen.zeros_like(p) end
  end
  core.rmsprop_step_(p, g, s.square_avg, s.momentum_buffer, s.grad_avg, { lr = self.lr, alpha = self.alpha,
    eps = self.eps, weight_decay = self.weight_decay, momentum = self.momentum, centered = self.centered })
end

---------------------------------------------------------------- gradient clipping
--- Scales all gradients so their joint L2 norm is at most max_norm; returns the norm before.
function optim.clip_grad_norm(params, max_norm)
  if type(params) == "table" and rawget(params, "_is_module") then params = params:parameters() end
  check_number("gen.optim.clip_grad_norm", "max_norm", max_norm, 0)
  local total = 0
  for _, p in ipairs(params) do
    local g = p.grad
    if g then total = total + core.sum_squares(g) end
  end
  total = math.sqrt(total)
  local scale = max_norm / (total + 1e-6)
  if scale < 1 then
    gen.no_grad(function()
      for _, p in ipairs(params) do
        local g = p.grad
        if g then g:mul_(scale) end
      end
    end)
  end
  return total
end

---------------------------------------------------------------- learning-rate schedules
-- A schedule is a function of the step count (0-based) giving a factor of the base lr.
local schedules = {}
optim.schedules = schedules
function schedules.constant() return function() return 1 end end
--- Multiply by gamma every step_size steps.
function schedules.step(step_size, gamma)
  return function(t) return (gamma or 0.1) ^ (t // step_size) end
end
--- Cosine decay from 1 to min_factor over total steps (constant after).
function schedules.cosine(total, min_factor)
  min_factor = min_factor or 0
  return function(t)
    local x = math.min(t, total) / total
    return min_factor + (1 - min_factor) * 0.5 * (1 + math.cos(math.pi * x))
  end
end
--- Linear warm-up from 1/warmup to 1 over the first `warmup` steps.
function schedules.linear_warmup(warmup)
  return function(t) return math.min(1, (t + 1) / warmup) end
end
--- The product of several schedules (warm-up then cosine: chain(linear_warmup(500), cosine(1e4))).
function schedules.chain(...)
  local fs = { ... }
  return function(t)
    local f = 1
    for _, s in ipairs(fs) do f = f * s(t) end
    return f
  end
end

local Scheduler = {}
Scheduler.__index = Scheduler
--- Scheduler(optimizer, schedule): :step() advances one step and sets optimizer.lr.
function optim.Scheduler(opt, schedule)
  local s = setmetatable({ optimizer = opt, schedule = schedule, base_lr = opt.lr, count = 0 }, Scheduler)
  opt.lr = s.base_lr * schedule(0)
  return s
end
function Scheduler:step()
  self.count = self.count + 1
  self.optimizer.lr = self.base_lr * self.schedule(self.count)
  return self.optimizer.lr
end
function Scheduler:state_dict() return { count = self.count, base_lr = self.base_lr } end
function Scheduler:load_state_dict(s)
  self.count, self.base_lr = math.tointeger(s.count) or 0, s.base_lr or self.base_lr
  self.optimizer.lr = self.base_lr * self.schedule(self.count)
end

---------------------------------------------------------------- EMA
local EMA = {}
EMA.__index = EMA
--- EMA(model, decay = 0.999, {warmup = true}): shadow weights ema = d * ema + (1 - d) * w after
-- each update(); swap(model) exchanges model and shadow weights (call again to swap back), e.g.
-- to sample with the averaged weights. Buffers (running stats) are copied, not averaged.
-- With warmup, update n uses d = min(decay, (1 + n) / (10 + n)) (TensorFlow's num_updates rule):
-- a plain 0.999 average still holds 0.999^1000 = 37% of the random initial weights after 1000
-- steps, which made short diffusion runs sample pure noise.
function optim.EMA(model, decay, opts)
  decay, opts = decay or 0.999, opts or {}
  check_number("gen.optim.EMA", "decay", decay, 0)
  local e = setmetatable({ model = model, decay = decay, warmup = opts.warmup ~= false, shadow = {}, updates = 0 }, EMA)
  gen.no_grad(function()
    for name, p in model:named_parameters() do e.shadow[name] = p:detach():clone() end
    for name, b in model:named_buffers() do e.shadow[name] = b:clone() end
  end)
  return e
end
--- The decay the next update will use.
function EMA:current_decay()
  local n = self.updates + 1
  return self.warmup and math.min(self.decay, (1 + n) / (10 + n)) or self.decay
end
function EMA:update()
  local d = self:current_decay()
  self.updates = self.updates + 1
  for name, p in self.model:named_parameters() do core.ema_update_(self.shadow[name], p, d) end
  gen.no_grad(function()
    for name, b in self.model:named_buffers() do self.shadow[name]:copy_(b) end
  end)
end
function EMA:swap()
  gen.no_grad(function()
    local sd = self.model:state_dict()
    for name, t in pairs(sd) do
      local tmp = t:clone()
      t:copy_(self.shadow[name])
      self.shadow[name]:copy_(tmp)
    end
  end)
end
--- call(fn, ...) -> fn(...)'s results, computed with the averaged weights in the model; the
-- model's own weights are back afterwards, also when fn raises (the error is raised again).
function EMA:call(fn, ...)
  self:swap()
  local r = table.pack(pcall(fn, ...))
  self:swap()
  if not r[1] then error(r[2], 0) end
  return table.unpack(r, 2, r.n)
end
function EMA:state_dict() return { decay = self.decay, updates = self.updates, warmup = self.warmup, shadow = self.shadow } end
function EMA:load_state_dict(s)
  for name, t in pairs(s.shadow or {}) do
    if not self.shadow[name] then error("gen.optim.EMA:load_state_dict: unexpected key " .. name, 2) end
    gen.no_grad(function() self.shadow[name]:copy_(t) end)
  end
  self.decay, self.updates = s.decay or self.decay, math.tointeger(s.updates) or self.updates
  if s.warmup ~= nil then self.warmup = s.warmup end
end

return optim
