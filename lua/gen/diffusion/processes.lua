--- Noise processes in the form of Karras et al. (2022), eq. 4: a data point x_0 is noised to
--   x_t = s(t) (x_0 + sigma(t) eps),   eps ~ N(0, I),
-- so a process is a noise level sigma(t) and a scale s(t). Samplers work on x^ = x_t / s(t) =
-- x_0 + sigma eps (the "variance-exploding" view shared by every process) and on noise levels
-- sigma alone; the process says which time t a level is, what the network is shown, how training
-- draws times, and where sampling starts.
--
--   vp_process{betas = "linear" | "cosine", T = 1000}  DDPM's discrete chain (Ho et al., 2020;
--       Nichol & Dhariwal, 2021): s = sqrt(ab_t), sigma = sqrt((1 - ab_t) / ab_t) at steps
--       t = 1..T, log-linear in between; the network sees the step t (fractional in between).
--   ve_process{sigma_min = 0.01, sigma_max = 50}  Song et al. (2021): s = 1,
--       sigma(t) = sigma_min (sigma_max / sigma_min)^t for t in [0, 1]; the network sees 1000 t.
--   edm_process{sigma_min = 0.002, sigma_max = 80, sigma_data = 0.5, p_mean = -1.2, p_std = 1.2}
--       Karras et al. (2022): s = 1, sigma(t) = t, training draws ln sigma ~ N(p_mean, p_std^2);
--       the network sees c_noise = ln(sigma) / 4, times 1000 like every other time.
--   rectified_process{t_max = 0.999, t_min = 0.001}  the straight path x_t = (1 - t) x_0 + t eps
--       (Liu et al., 2023): s = 1 - t, sigma = t / (1 - t); training draws t logit-normal; the
--       network sees 1000 t. t = 1 is sigma = infinity, so sampling starts at t_max.
--
-- Every process has: name, sigma(t), scale(t), t_of_sigma(sigma) (numbers); net_time(t) (number
-- or tensor); sample_t(B) (training times, a {B} tensor); coefficients(t) (the {B, 1, 1, 1}
-- tensors s, s sigma and sigma for a {B} tensor of times, computed the process's own way);
-- uniform_times(n) (n times from the noisiest down, "uniform in t"); prior_std(sigma) (the
-- standard deviation of x^ at the first level); sigma_min, sigma_max.
local gen = require "gen"
local schedules = require "gen.diffusion.schedules"

local M = {}

local Process = {}
Process.__index = Process
M.Process = Process

local function fail(fn, msg, ...) error(string.format("gen.diffusion." .. fn .. ": " .. msg, ...), 3) end

--- The standard deviation of x^ = x / s where sampling starts: for the processes that keep the
-- total variance near 1 (VP, rectified flow) x_T ~ N(0, I), so x^ ~ N(0, 1 / s^2); for VE and
-- EDM x^ ~ N(0, sigma^2).
function Process:prior_std(sigma)
  if self.unit_variance then return 1 / self:scale(self:t_of_sigma(sigma)) end
  return sigma
end

---------------------------------------------------------------- VP (discrete DDPM chain)

--- vp_process{betas = "linear" | "cosine", T = 1000} or vp_process{schedule = s} (a
-- gen.diffusion.schedules schedule).
function M.vp_process(opts)
  opts = opts or {}
  local sched = opts.schedule
  if not sched then
    local T, betas = opts.T or 1000, opts.betas or "linear"
    if betas == "linear" then sched = schedules.linear_schedule(T)
    elseif betas == "cosine" then sched = schedules.cosine_schedule(T)
    else fail("vp_process", "betas must be \"linear\" or \"cosine\", got %s", tostring(betas)) end
  end
  local p = setmetatable({ name = "vp", schedule = sched, T = sched.T, sigmas = {}, log_sigmas = {}, unit_variance = true,
    t_min = 1, t_max = sched.T }, Process)
  for t, ab in ipairs(sched.alpha_bars) do
    p.sigmas[t] = math.sqrt((1 - ab) / ab)
    p.log_sigmas[t] = math.log(p.sigmas[t])
  end
  p.sigma_min, p.sigma_max = p.sigmas[1], p.sigmas[p.T]
  function p.sigma(_, t)
    t = math.max(1, math.min(p.T, t))
    local k = math.floor(t)
    if k == t then return p.sigmas[k] end
    local f = t - k
    return math.exp(p.log_sigmas[k] * (1 - f) + p.log_sigmas[k + 1] * f)
  end
  function p.scale(_, t) return 1 / math.sqrt(1 + p:sigma(t) ^ 2) end
  function p.t_of_sigma(_, sigma)
    if sigma <= p.sigmas[1] then return 1 end
    if sigma >= p.sigmas[p.T] then return p.T end
    local ls = math.log(sigma)
    local lo, hi = 1, p.T -- log_sigmas[lo] <= ls < log_sigmas[hi]
    while hi - lo > 1 do
      local mid = (lo + hi) // 2
      if p.log_sigmas[mid] <= ls then lo = mid else hi = mid end
    end
    if p.sigmas[lo] == sigma then return lo end
    return lo + (ls - p.log_sigmas[lo]) / (p.log_sigmas[hi] - p.log_sigmas[lo])
  end
  function p.net_time(_, t) return gen.is_tensor(t) and t:float() or t end
  function p.sample_t(_, b) return gen.randint(1, p.T, { b }) end
  function p.coefficients(_, t)
    local ab = sched:alpha_bar_at(t)
    return ab:sqrt(), (1 - ab):sqrt(), ((1 - ab) / ab):sqrt()
  end
  --- DDIM's steps: t_i = round(T (n - i + 1) / n), i = 1..n (at least 1).
  function p.uniform_times(_, n)
    local ts = {}
    for i = 1, n do ts[i] = math.max(1, math.floor(p.T * (n - i + 1) / n + 0.5)) end
    return ts
  end
  return p
end

---------------------------------------------------------------- VE

--- ve_process{sigma_min = 0.01, sigma_max = 50}: geometric noise levels (Song et al., 2021).
function M.ve_process(opts)
  opts = opts or {}
  local smin, smax = opts.sigma_min or 0.01, opts.sigma_max or 50
  if not (smin > 0 and smax > smin) then fail("ve_process", "need 0 < sigma_min < sigma_max, got %g and %g", smin, smax) end
  local ratio = math.log(smax / smin)
  local p = setmetatable({ name = "ve", sigma_min = smin, sigma_max = smax, t_min = 0, t_max = 1 }, Process)
  function p.sigma(_, t) return smin * math.exp(ratio * t) end
  function p.scale() return 1 end
  function p.t_of_sigma(_, sigma) return math.log(sigma / smin) / ratio end
  function p.net_time(_, t) return t * 1000 end
  function p.sample_t(_, b) return gen.rand(b) end
  function p.coefficients(_, t)
    local sigma = (t * ratio):exp():view(-1, 1, 1, 1) * smin
    return gen.ones_like(sigma), sigma, sigma
  end
  function p.uniform_times(_, n)
    local ts = {}
    for i = 1, n do ts[i] = n == 1 and 1 or 1 - (i - 1) / (n - 1) end
    return ts
  end
  return p
end

---------------------------------------------------------------- EDM

--- edm_process{sigma_min = 0.002, sigma_max = 80, sigma_data = 0.5, p_mean = -1.2, p_std = 1.2}.
function M.edm_process(opts)
  opts = opts or {}
  local p = setmetatable({ name = "edm", sigma_min = opts.sigma_min or 0.002, sigma_max = opts.sigma_max or 80,
    sigma_data = opts.sigma_data or 0.5, p_mean = opts.p_mean or -1.2, p_std = opts.p_std or 1.2 }, Process)
  p.t_min, p.t_max = p.sigma_min, p.sigma_max
  function p.sigma(_, t) return t end
  function p.scale() return 1 end
  function p.t_of_sigma(_, sigma) return sigma end
  --- c_noise = ln(sigma) / 4 (Karras et al., Table 1), shown to the network times 1000.
  function p.net_time(_, t) return gen.is_tensor(t) and t:log() * 250 or math.log(t) * 250 end
  function p.sample_t(_, b) return (gen.randn(b) * p.p_std + p.p_mean):exp() end
  function p.coefficients(_, t)
    local sigma = t:view(-1, 1, 1, 1)
    return gen.ones_like(sigma), sigma, sigma
  end
  function p.uniform_times(_, n)
    local ts = {}
    for i = 1, n do ts[i] = n == 1 and p.sigma_max or p.sigma_max + (p.sigma_min - p.sigma_max) * (i - 1) / (n - 1) end
    return ts
  end
  return p
end

---------------------------------------------------------------- rectified flow

--- rectified_process{t_max = 0.999, t_min = 0.001}: the straight path of rectified flow.
function M.rectified_process(opts)
  opts = opts or {}
  local t_max, t_min = opts.t_max or 0.999, opts.t_min or 0.001
  local p = setmetatable({ name = "rectified", t_min = t_min, t_max = t_max, unit_variance = true }, Process)
  function p.sigma(_, t) return t / (1 - t) end
  function p.scale(_, t) return 1 - t end
  function p.t_of_sigma(_, sigma) return sigma / (1 + sigma) end
  p.sigma_min, p.sigma_max = p:sigma(t_min), p:sigma(t_max)
  function p.net_time(_, t) return t * 1000 end
  --- t = sigmoid(n), n ~ N(0, 1): logit-normal times (Esser et al., 2024)
  function p.sample_t(_, b) return gen.sigmoid(gen.randn(b)) end
  function p.coefficients(_, t)
    local tt = t:view(t:size(1), 1, 1, 1)
    return 1 - tt, tt, tt / (1 - tt)
  end
  --- t_i = (n - i + 1) / n as the Euler sampler of rectified flow steps, the first at most t_max.
  function p.uniform_times(_, n)
    local ts = {}
    for i = 1, n do ts[i] = math.min(t_max, (n - i + 1) / n) end
    return ts
  end
  return p
end

local makers = { vp = M.vp_process, ve = M.ve_process, edm = M.edm_process, rectified = M.rectified_process }

--- process(name [, opts]): "vp", "ve", "edm" or "rectified"; a process passes through.
function M.process(name, opts)
  if getmetatable(name) == Process then return name end
  local make = makers[name]
  if not make then fail("process", "unknown process %s (expected vp, ve, edm or rectified)", tostring(name)) end
  return make(opts)
end

return M
