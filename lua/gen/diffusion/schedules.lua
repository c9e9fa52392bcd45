--- Schedules, of two kinds:
-- * the discrete noise schedules of denoising diffusion: betas over steps 1..T and their products
--   alpha_bar_t = prod_{s <= t} (1 - beta_s), so that q(x_t | x_0) = N(sqrt(alpha_bar_t) x_0, (1 - alpha_bar_t) I)
--   (linear_schedule, cosine_schedule; gen.diffusion.processes turns them into VP processes);
-- * step schedules for the samplers: the noise levels sigma_1 > ... > sigma_n > sigma_{n+1} = 0 a
--   sampler visits (uniform_sigmas, karras_sigmas, logsnr_sigmas; step_sigmas picks one by name).
local gen = require "gen"

local M = {}

local Schedule = {}
Schedule.__index = Schedule
M.Schedule = Schedule

--- A schedule from a Lua list of betas.
function M.from_betas(betas)
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
  return M.from_betas(betas)
end

--- Cosine schedule (Nichol & Dhariwal, 2021): alpha_bar(t) = cos^2(((t/T + s)/(1 + s)) pi/2), betas
-- clipped at 0.999.
function M.cosine_schedule(T, s)
  T, s = T or 1000, s or 0.008
  local function f(t) return math.cos(((t / T + s) / (1 + s)) * math.pi / 2) ^ 2 end
  local betas = {}
  for t = 1, T do betas[t] = math.min(1 - f(t) / f(t - 1), 0.999) end
  return M.from_betas(betas)
end

--- alpha_bar at integer steps (t {B} int64, 1-based) as a {B, 1, 1, 1} tensor.
function Schedule:alpha_bar_at(t)
  local vals = {}
  for i, v in ipairs(t:totable()) do vals[i] = self.alpha_bars[v] end
  return gen.tensor(vals):view(-1, 1, 1, 1)
end

---------------------------------------------------------------- step schedules

local function fail(fn, msg, ...) error(string.format("gen.diffusion." .. fn .. ": " .. msg, ...), 3) end

local function check_steps(fn, n)
  if math.type(n) ~= "integer" or n < 1 then fail(fn, "steps must be a positive integer, got %s", tostring(n)) end
end

--- Karras et al. (2022), eq. 5: sigma_i = (sigma_max^(1/rho) + (i - 1)/(n - 1) (sigma_min^(1/rho) -
-- sigma_max^(1/rho)))^rho for i = 1..n (rho = 7), then 0.
function M.karras_sigmas(n, sigma_min, sigma_max, rho)
  check_steps("karras_sigmas", n)
  rho = rho or 7
  local a, b = sigma_max ^ (1 / rho), sigma_min ^ (1 / rho)
  local s = {}
  for i = 1, n do s[i] = n == 1 and sigma_max or (a + (i - 1) / (n - 1) * (b - a)) ^ rho end
  s[n + 1] = 0
  return s
end

--- Uniform in log-SNR (log SNR = -2 ln sigma), as DPM-Solver steps (Lu et al., 2022): ln sigma_i
-- evenly spaced from ln sigma_max to ln sigma_min for i = 1..n, then 0.
function M.logsnr_sigmas(n, sigma_min, sigma_max)
  check_steps("logsnr_sigmas", n)
  local a, b = math.log(sigma_max), math.log(sigma_min)
  local s = {}
  for i = 1, n do s[i] = n == 1 and sigma_max or math.exp(a + (i - 1) / (n - 1) * (b - a)) end
  s[n + 1] = 0
  return s
end

--- Uniform in the process's own time: sigma(t_i) for the process's uniform_times(n), then 0
-- (DDIM's evenly spaced steps for VP, rectified flow's Euler times, linear t for VE and EDM).
function M.uniform_sigmas(process, n)
  check_steps("uniform_sigmas", n)
  local s = {}
  for i, t in ipairs(process:uniform_times(n)) do s[i] = process:sigma(t) end
  s[n + 1] = 0
  return s
end

--- step_sigmas(process, name, n [, {rho = 7}]): "uniform", "karras" or "logsnr" between the
-- process's sigma_min and sigma_max; a list of sigmas passes through (checked to decrease to 0).
function M.step_sigmas(process, name, n, opts)
  if type(name) == "table" then
    for i = 2, #name do
      if name[i] ~= name[i] or name[i] >= name[i - 1] then fail("step_sigmas", "sigmas must decrease, got %g then %g at %d", name[i - 1], name[i], i) end
    end
    if name[#name] ~= 0 then fail("step_sigmas", "sigmas must end with 0, got %s", tostring(name[#name])) end
    return name
  end
  if name == "uniform" then return M.uniform_sigmas(process, n) end
  if name == "karras" then return M.karras_sigmas(n, process.sigma_min, process.sigma_max, opts and opts.rho) end
  if name == "logsnr" then return M.logsnr_sigmas(n, process.sigma_min, process.sigma_max) end
  fail("step_sigmas", "unknown schedule %s (expected uniform, karras or logsnr)", tostring(name))
end

return M
