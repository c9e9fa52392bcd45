--- gen.diffusion: noise schedules, DDPM training and ancestral sampling (Ho et al., 2020), DDIM
-- sampling (Song et al., 2021), rectified flow with logit-normal times and an Euler sampler
-- (Liu et al., 2023; Esser et al., 2024), and classifier-free guidance (Ho & Salimans, 2022).
--
-- A model is called as model(x, t, labels) with t {B} float (DDPM: the step 1..T; flow: 1000 t,
-- t in [0, 1]) and labels {B} int64 or nil; with guidance, label classes + 1 means "no class".
-- Samplers show progress and call opts.callback(i, x, x0) after each step with the current sample
-- and the predicted clean image.
local gen = require "gen"

local M = {}

---------------------------------------------------------------- schedules

local Schedule = {}
Schedule.__index = Schedule

local function schedule_from_betas(betas)
  local s = setmetatable({ T = #betas, betas = betas, alphas = {}, alpha_bars = {} }, Schedule)
  local prod = 1
  for t, b in ipairs(betas) do
    s.alphas[t] = 1 - b
    prod = prod * (1 - b)
    s.alpha_bars[t] = prod
  end
  return s
end

--- Linear betas from beta_1 to beta_T (Ho et al.: 1e-4 to 0.02 over 1000 steps).
function M.linear_schedule(T, beta1, betaT)
  T, beta1, betaT = T or 1000, beta1 or 1e-4, betaT or 0.02
  local betas = {}
  for t = 1, T do betas[t] = beta1 + (betaT - beta1) * (t - 1) / math.max(T - 1, 1) end
  return schedule_from_betas(betas)
end

--- Cosine schedule (Nichol & Dhariwal, 2021): alpha_bar(t) = cos^2(((t/T + s)/(1 + s)) pi/2), betas
-- clipped at 0.999.
function M.cosine_schedule(T, s)
  T, s = T or 1000, s or 0.008
  local function f(t) return math.cos(((t / T + s) / (1 + s)) * math.pi / 2) ^ 2 end
  local betas = {}
  for t = 1, T do betas[t] = math.min(1 - f(t) / f(t - 1), 0.999) end
  return schedule_from_betas(betas)
end

--- alpha_bar at integer steps (t {B} int64, 1-based) as a {B, 1, 1, 1} tensor.
function Schedule:alpha_bar_at(t)
  local vals = {}
  for i, v in ipairs(t:totable()) do vals[i] = self.alpha_bars[v] end
  return gen.tensor(vals):view(-1, 1, 1, 1)
end

---------------------------------------------------------------- DDPM

--- The DDPM loss: || eps - model(sqrt(ab) x0 + sqrt(1 - ab) eps, t, labels) ||^2 with t uniform
-- in 1..T. opts.label_dropout replaces labels by the "no class" entry (opts.null_class) with that
-- probability, to train for classifier-free guidance.
function M.ddpm_loss(model, schedule, x0, labels, opts)
  opts = opts or {}
  local b = x0:size(1)
  local t = gen.randint(1, schedule.T, { b })
  local eps = gen.randn_like(x0)
  local ab = schedule:alpha_bar_at(t)
  local xt = x0 * ab:sqrt() + eps * (1 - ab):sqrt()
  labels = M.drop_labels(labels, opts)
  return gen.mse_loss(model(xt, t:float(), labels), eps)
end

function M.drop_labels(labels, opts)
  if not labels or not opts or (opts.label_dropout or 0) <= 0 then return labels end
  local drop = gen.rand(labels:size(1)):lt(opts.label_dropout)
  return gen.where(drop, gen.full({ labels:size(1) }, opts.null_class, "int64"), labels)
end

-- model output with classifier-free guidance: (1 + w) out(labels) - w out(no class)
local function guided(model, x, tvec, labels, opts)
  local w = opts.guidance or 0
  if not labels or w == 0 then return model(x, tvec, labels) end
  local null = gen.full({ x:size(1) }, opts.null_class, "int64")
  local both = model(gen.cat({ x, x }), gen.cat({ tvec, tvec }), gen.cat({ labels, null }))
  local cond, uncond = both:narrow(1, 1, x:size(1)), both:narrow(1, x:size(1) + 1, x:size(1))
  return cond * (1 + w) - uncond * w
end
M.guided = guided

-- The loop every sampler shares: x starts as N(0, I); update(i, x) returns the next x and the
-- predicted clean image; progress and the per-step callback are handled here.
local function sampling(shape, steps, label, opts, update)
  return gen.no_grad(function()
    local x = gen.randn(shape)
    local bar = opts.progress ~= false and gen.ui.progress(steps, { label = label }) or nil
    for i = 1, steps do
      local x0
      x, x0 = update(i, x)
      if opts.callback then opts.callback(i, x, x0) end
      if bar then bar:update(i) end
    end
    if bar then bar:close() end
    return x
  end)
end

--- Ancestral DDPM sampling from x_T ~ N(0, I): x_{t-1} = (x_t - beta_t / sqrt(1 - ab_t) eps) /
-- sqrt(alpha_t) + sigma_t z with sigma_t^2 = beta_t. opts: labels, guidance, null_class, callback.
function M.ddpm_sample(model, schedule, shape, opts)
  opts = opts or {}
  return sampling(shape, schedule.T, "ddpm", opts, function(i, x)
    local t = schedule.T - i + 1
    local eps = guided(model, x, gen.full({ shape[1] }, t), opts.labels, opts)
    local a, ab, beta = schedule.alphas[t], schedule.alpha_bars[t], schedule.betas[t]
    local x0 = (x - eps * math.sqrt(1 - ab)) / math.sqrt(ab)
    if opts.clip ~= false then
      -- posterior mean of q(x_{t-1} | x_t, x0) with x0 clipped to the data range
      local ab_prev = t > 1 and schedule.alpha_bars[t - 1] or 1
      x0 = x0:clamp(-1, 1)
      x = x0 * (math.sqrt(ab_prev) * beta / (1 - ab)) + x * (math.sqrt(a) * (1 - ab_prev) / (1 - ab))
    else
      x = (x - eps * (beta / math.sqrt(1 - ab))) / math.sqrt(a)
    end
    if t > 1 then x = x + gen.randn(shape) * math.sqrt(beta) end
    return x, x0
  end)
end

--- DDIM sampling with `steps` evenly spaced steps and stochasticity eta (0: deterministic):
-- x0 = (x_t - sqrt(1 - ab_t) eps) / sqrt(ab_t);  sigma = eta sqrt((1 - ab_s)/(1 - ab_t)) sqrt(1 - ab_t/ab_s);
-- x_s = sqrt(ab_s) x0 + sqrt(1 - ab_s - sigma^2) eps + sigma z.
-- Both samplers clip the predicted x0 to [-1, 1] unless opts.clip == false (Ho et al.'s
-- clip_denoised): at t = T, x0 = (x - sqrt(1 - ab) eps) / sqrt(ab) multiplies any error of eps by
-- 1 / sqrt(ab_T) ~ 156, which made DDIM samples of a briefly trained model saturate.
function M.ddim_sample(model, schedule, shape, opts)
  opts = opts or {}
  local steps, eta = opts.steps or 50, opts.eta or 0
  local ts = {}
  for i = 1, steps do ts[i] = math.max(1, math.floor(schedule.T * (steps - i + 1) / steps + 0.5)) end
  return sampling(shape, steps, "ddim", opts, function(i, x)
    local t = ts[i]
    local eps = guided(model, x, gen.full({ shape[1] }, t), opts.labels, opts)
    local ab = schedule.alpha_bars[t]
    local ab_prev = ts[i + 1] and schedule.alpha_bars[ts[i + 1]] or 1
    local x0 = (x - eps * math.sqrt(1 - ab)) / math.sqrt(ab)
    if opts.clip ~= false then -- clip x0 to the data range and take the noise consistent with it
      x0 = x0:clamp(-1, 1)
      eps = (x - x0 * math.sqrt(ab)) / math.sqrt(1 - ab)
    end
    local sigma = eta * math.sqrt((1 - ab_prev) / (1 - ab)) * math.sqrt(1 - ab / ab_prev)
    x = x0 * math.sqrt(ab_prev) + eps * math.sqrt(math.max(0, 1 - ab_prev - sigma * sigma))
    if sigma > 0 then x = x + gen.randn(shape) * sigma end
    return x, x0
  end)
end

---------------------------------------------------------------- rectified flow

--- The rectified-flow loss: x_t = (1 - t) x0 + t eps with t = sigmoid(n), n ~ N(0, 1)
-- (logit-normal), and the model predicts the velocity v = eps - x0.
function M.flow_loss(model, x0, labels, opts)
  opts = opts or {}
  local b = x0:size(1)
  local t = gen.sigmoid(gen.randn(b))
  local tt = t:view(b, 1, 1, 1)
  local eps = gen.randn_like(x0)
  local xt = x0 * (1 - tt) + eps * tt
  labels = M.drop_labels(labels, opts)
  return gen.mse_loss(model(xt, t * 1000, labels), eps - x0)
end

--- Euler integration of dx/dt = v from t = 1 (noise) to t = 0 in `steps` steps, with
-- classifier-free guidance v = (1 + w) v(labels) - w v(no class).
function M.flow_sample(model, shape, opts)
  opts = opts or {}
  local steps = opts.steps or 50
  return sampling(shape, steps, "flow", opts, function(i, x)
    local t = 1 - (i - 1) / steps
    local v = guided(model, x, gen.full({ shape[1] }, t * 1000), opts.labels, opts)
    return x - v * (1 / steps), x - v * t
  end)
end

return M
