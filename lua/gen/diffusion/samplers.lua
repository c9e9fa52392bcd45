--- Samplers: each starts from x ~ N(0, I) of the given shape and returns the sample. Every one
-- takes opts.labels and opts.guidance (classifier-free guidance, see gen.diffusion.guidance),
-- opts.callback(i, x, x0) after each step with the current sample and the predicted clean image,
-- and shows a progress bar unless opts.progress == false. The VP samplers take opts.prediction,
-- what the network predicts ("eps" by default, "x0" or "v"), and clip the predicted x0 to [-1, 1]
-- unless opts.clip == false.
local gen = require "gen"
local guidance = require "gen.diffusion.guidance"
local param = require "gen.diffusion.parameterization"

local M = {}

-- The loop every sampler shares: update(i, x) returns the next x and the predicted clean image.
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

-- The noise a VP model predicts at step t (with guidance), whatever its prediction kind.
local function predicted_eps(model, x, t, ab, opts)
  local out = guidance.guided(model, x, gen.full({ x:size(1) }, param.discrete_time(t)), opts.labels, opts)
  return param.eps_from(opts.prediction, x, out, ab)
end

--- Ancestral DDPM sampling (Ho et al., 2020) over all T steps of the schedule:
-- x_{t-1} = (x_t - beta_t / sqrt(1 - ab_t) eps) / sqrt(alpha_t) + sigma_t z with sigma_t^2 = beta_t;
-- with clipping, the posterior mean of q(x_{t-1} | x_t, x0) with x0 clipped to the data range.
function M.ddpm_sample(model, schedule, shape, opts)
  opts = opts or {}
  return sampling(shape, schedule.T, "ddpm", opts, function(i, x)
    local t = schedule.T - i + 1
    local a, ab, beta = schedule.alphas[t], schedule.alpha_bars[t], schedule.betas[t]
    local eps = predicted_eps(model, x, t, ab, opts)
    local x0 = param.x0_from_eps(x, eps, ab)
    if opts.clip ~= false then
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

--- DDIM sampling (Song et al., 2021) with opts.steps (50) evenly spaced steps and stochasticity
-- opts.eta (0: deterministic):
--   x0 = (x_t - sqrt(1 - ab_t) eps) / sqrt(ab_t);  sigma = eta sqrt((1 - ab_s)/(1 - ab_t)) sqrt(1 - ab_t/ab_s);
--   x_s = sqrt(ab_s) x0 + sqrt(1 - ab_s - sigma^2) eps + sigma z.
-- Clipping x0 matters here: at t = T, x0 multiplies any error of eps by 1 / sqrt(ab_T) ~ 156,
-- which made DDIM samples of a briefly trained model saturate; the noise is then recomputed to be
-- consistent with the clipped x0.
function M.ddim_sample(model, schedule, shape, opts)
  opts = opts or {}
  local steps, eta = opts.steps or 50, opts.eta or 0
  local ts = {}
  for i = 1, steps do ts[i] = math.max(1, math.floor(schedule.T * (steps - i + 1) / steps + 0.5)) end
  return sampling(shape, steps, "ddim", opts, function(i, x)
    local t = ts[i]
    local ab = schedule.alpha_bars[t]
    local eps = predicted_eps(model, x, t, ab, opts)
    local ab_prev = ts[i + 1] and schedule.alpha_bars[ts[i + 1]] or 1
    local x0 = param.x0_from_eps(x, eps, ab)
    if opts.clip ~= false then
      x0 = x0:clamp(-1, 1)
      eps = param.eps_from_x0(x, x0, ab)
    end
    local sigma = eta * math.sqrt((1 - ab_prev) / (1 - ab)) * math.sqrt(1 - ab / ab_prev)
    x = x0 * math.sqrt(ab_prev) + eps * math.sqrt(math.max(0, 1 - ab_prev - sigma * sigma))
    if sigma > 0 then x = x + gen.randn(shape) * sigma end
    return x, x0
  end)
end

--- Euler integration of rectified flow's dx/dt = v from t = 1 (noise) to t = 0 in opts.steps (50)
-- uniform steps; the model predicts the velocity.
function M.rectified_flow_sample(model, shape, opts)
  opts = opts or {}
  local steps = opts.steps or 50
  return sampling(shape, steps, "rectified flow", opts, function(i, x)
    local t = 1 - (i - 1) / steps
    local v = guidance.guided(model, x, gen.full({ shape[1] }, param.flow_time(t)), opts.labels, opts)
    return x - v * (1 / steps), param.x0_from_velocity(x, v, t)
  end)
end

return M
