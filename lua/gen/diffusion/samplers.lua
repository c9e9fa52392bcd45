--- Samplers: each starts from x ~ N(0, I) of the given shape and returns the sample. Every one
-- takes opts.labels and opts.guidance (classifier-free guidance, see gen.diffusion.guidance),
-- opts.callback(i, x, x0) after each step with the current sample and the predicted clean image,
-- and shows a progress bar unless opts.progress == false. The VP samplers take opts.prediction,
-- what the network predicts ("eps" by default, "x0" or "v"), and clip the predicted x0 to [-1, 1]
-- unless opts.clip == false.
local gen = require "gen"
local guidance = require "gen.diffusion.guidance"
local param = require "gen.diffusion.parameterization"

local schedules = require "gen.diffusion.schedules"

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

---------------------------------------------------------------- samplers on a denoiser

-- The samplers below follow k-diffusion's and EDM's shape: sample_NAME(denoise, x, sigmas [, opts])
-- integrates from x at sigmas[1] through sigmas[2], ... to sigmas[#sigmas] = 0 on x^ = x_0 + sigma eps
-- (gen.diffusion.processes), calling denoise(x, sigma) -> D(x, sigma), the denoised estimate. The
-- probability-flow ODE in this form is dx/dsigma = (x - D(x, sigma)) / sigma (Karras et al., 2022,
-- eq. 3 with s = 1, sigma(t) = t). Options every one takes:
--   generator  the gen.Generator for every random draw (default: gen's global stream), or a list
--              of one generator per image (the first dimension): image i's noise then comes from
--              generator i alone, so it does not depend on the batch it is drawn in
--   callback   callback(i, x, denoised, sigma) after step i, with the new x at sigma = sigmas[i + 1]
--   progress   false: no progress bar
--   mask, known  inpainting: mask (1 = known) and the known image x_0 (both broadcast to x); after
--              each step the known pixels are replaced by known + sigma z, so at sigma = 0 they are
--              exactly the known ones
--   resample   r > 1: RePaint (Lugmayr et al., 2022): each step is taken r times, noising back from
--              sigma_{i+1} to sigma_i in between, so the generated pixels harmonize with the known
-- Stochastic samplers take eta (ancestral noise) or churn (Heun); see each one.

local function fail(fn, msg, ...) error(string.format("gen.diffusion." .. fn .. ": " .. msg, ...), 3) end

-- Standard normal noise of a shape; with a list of generators, row i from generator i.
local function randn_shape(shape, g)
  if type(g) ~= "table" then return gen.randn(shape, { generator = g }) end
  if #g ~= shape[1] then fail("sample", "%d generators for %d images", #g, shape[1]) end
  local row, rows = { 1, table.unpack(shape, 2) }, {}
  for i, gi in ipairs(g) do rows[i] = gen.randn(row, { generator = gi }) end
  return gen.cat(rows, 1)
end
local function randn(x, g) return randn_shape(x.shape, g) end

-- One Euler step of the ODE from sigma to sigma_next given D at (x, sigma):
-- x + (sigma_next - sigma) (x - D) / sigma, computed as D + (sigma_next / sigma) (x - D), which is
-- the same number without cancelling two large terms when sigma is huge (x^ at rectified flow's
-- t near 1 is x_t / (1 - t)); D itself at sigma_next = 0.
local function euler_to(x, denoised, sigma, sigma_next)
  if sigma_next == 0 then return denoised end
  return denoised + (x - denoised) * (sigma_next / sigma)
end

-- The loop every sampler shares: step(ctx, x, sigma, sigma_next) -> next x, denoised.
local function run(fn, step, denoise, x, sigmas, opts)
  opts = opts or {}
  if type(denoise) ~= "function" and not (type(denoise) == "table" and getmetatable(denoise) and getmetatable(denoise).__call) then
    fail(fn, "expected a denoiser (a function of x and sigma), got %s", type(denoise))
  end
  if not gen.is_tensor(x) then fail(fn, "expected a tensor x, got %s", type(x)) end
  if type(sigmas) ~= "table" or #sigmas < 2 then fail(fn, "expected a list of at least 2 sigmas, got %s", tostring(sigmas)) end
  for i = 2, #sigmas do
    if sigmas[i] ~= sigmas[i] or sigmas[i] >= sigmas[i - 1] or sigmas[i] < 0 then
      fail(fn, "sigmas must decrease to 0, got %s then %s at %d", tostring(sigmas[i - 1]), tostring(sigmas[i]), i)
    end
  end
  local mask, known = opts.mask, opts.known
  if mask then
    if not gen.is_tensor(known) then fail(fn, "a mask needs the known image (opts.known)") end
    for _, t in ipairs { { "mask", mask }, { "known", known } } do
      local ok = t[2]:dim() == x:dim()
      for d = 1, x:dim() do ok = ok and (t[2]:size(d) == x:size(d) or t[2]:size(d) == 1) end
      if not ok then
        fail(fn, "%s {%s} does not broadcast to the samples {%s}", t[1], table.concat(t[2].shape, ","), table.concat(x.shape, ","))
      end
    end
    mask = mask:float()
  end
  local resample = opts.resample or 1
  if math.type(resample) ~= "integer" or resample < 1 then fail(fn, "resample must be a positive integer, got %s", tostring(resample)) end
  local n = #sigmas - 1
  local ctx = { opts = opts, n = n, generator = opts.generator, denoise = denoise }
  local function noise() return randn(x, ctx.generator) end
  ctx.noise = noise
  local function paste(y, sigma)
    if not mask then return y end
    local k = sigma > 0 and known + noise() * sigma or known
    return k * mask + y * (1 - mask)
  end
  return gen.no_grad(function()
    local bar = opts.progress ~= false and gen.ui.progress(n, { label = opts.label or fn }) or nil
    x = paste(x, sigmas[1])
    for i = 1, n do
      ctx.i = i
      local s, s_next = sigmas[i], sigmas[i + 1]
      local y, denoised
      for r = 1, resample do
        y, denoised = step(ctx, x, s, s_next)
        y = paste(y, s_next)
        if r < resample then x = y + noise() * math.sqrt(s * s - s_next * s_next) end
      end
      x = y
      if opts.callback then opts.callback(i, x, denoised, s_next) end
      if bar then bar:update(i) end
    end
    if bar then bar:close() end
    return x
  end)
end
M.run_sampler = run

--- Euler's method on the probability-flow ODE (Karras et al., 2022, Algorithm 1 with Euler steps);
-- one network evaluation per step. DDIM with eta = 0 is this sampler (Song et al., 2021).
function M.sample_euler(denoise, x, sigmas, opts)
  return run("sample_euler", function(_, xi, s, s_next)
    local d = denoise(xi, s)
    return euler_to(xi, d, s, s_next), d
  end, denoise, x, sigmas, opts)
end

-- The ancestral split of a step sigma -> sigma_next with stochasticity eta: the deterministic part
-- goes down to sigma_down, then fresh noise of std sigma_up comes back up to sigma_next;
-- sigma_up^2 = eta^2 sigma_next^2 (sigma^2 - sigma_next^2) / sigma^2, the posterior variance of
-- q(x_next | x, x_0) for eta = 1.
local function ancestral_step(ctx, x, s, s_next, eta)
  local d = ctx.denoise(x, s)
  local up = math.min(s_next, eta * math.sqrt(s_next * s_next * (s * s - s_next * s_next) / (s * s)))
  local down = math.sqrt(s_next * s_next - up * up)
  local y = euler_to(x, d, s, down)
  if up > 0 then y = y + ctx.noise() * up end
  return y, d
end

--- Euler ancestral: each step goes to sigma_down deterministically, then adds noise of std
-- sigma_up (opts.eta = 1: the posterior q(x_{sigma_next} | x, D)).
function M.sample_euler_ancestral(denoise, x, sigmas, opts)
  local eta = opts and opts.eta or 1
  return run("sample_euler_ancestral", function(ctx, xi, s, s_next) return ancestral_step(ctx, xi, s, s_next, eta) end,
    denoise, x, sigmas, opts)
end

--- DDIM (Song et al., 2021) with opts.eta (0: deterministic). In x^ coordinates DDIM's
-- sigma_eta = eta sqrt((1 - ab_s)/(1 - ab_t)) sqrt(1 - ab_t/ab_s) is sqrt(ab_s) sigma_up, so DDIM is
-- the ancestral step above: eta = 0 is Euler, eta = 1 the DDPM posterior.
function M.sample_ddim(denoise, x, sigmas, opts)
  local eta = opts and opts.eta or 0
  return run("sample_ddim", function(ctx, xi, s, s_next) return ancestral_step(ctx, xi, s, s_next, eta) end,
    denoise, x, sigmas, opts)
end

--- Ancestral DDPM (Ho et al., 2020): x_next ~ N(mu, var) with mu the posterior mean of
-- q(x_next | x, x_0 = D) (in x^ coordinates: D + (sigma_next / sigma)^2 (x - D)) and var
-- opts.variance = "beta" (Ho et al.'s sigma_t^2 = beta_t of the VP chain between the two levels,
-- (sigma^2 - sigma_next^2)(1 + sigma_next^2) / (1 + sigma^2) in x^; the default), "posterior"
-- (beta tilde, sigma_next^2 (sigma^2 - sigma_next^2) / sigma^2 in x^: then this is DDIM with
-- eta = 1) or "learned" (improved DDPM: exp(f log beta + (1 - f) log beta tilde) with f = (v + 1) / 2
-- from a denoiser built with learned_variance = true; on fewer steps than the training chain,
-- beta and beta tilde are those of the respaced chain, as in Nichol & Dhariwal, sec. 4).
function M.sample_ddpm(denoise, x, sigmas, opts)
  local variance = opts and opts.variance or "beta"
  if variance ~= "beta" and variance ~= "posterior" and variance ~= "learned" then
    fail("sample_ddpm", "variance must be \"beta\", \"posterior\" or \"learned\", got %s", tostring(variance))
  end
  return run("sample_ddpm", function(ctx, xi, s, s_next)
    if variance == "posterior" then return ancestral_step(ctx, xi, s, s_next, 1) end
    local d, v = denoise(xi, s)
    local y = euler_to(xi, d, s, s_next * s_next / s)
    if s_next > 0 then
      local var_beta = (s * s - s_next * s_next) * (1 + s_next * s_next) / (1 + s * s)
      if variance == "learned" then
        if not gen.is_tensor(v) then fail("sample_ddpm", "variance \"learned\" needs a denoiser built with learned_variance = true") end
        local var_tilde = s_next * s_next * (s * s - s_next * s_next) / (s * s)
        local f = (v + 1) * 0.5
        local logvar = f * math.log(var_beta) + (f * -1 + 1) * math.log(var_tilde)
        y = y + ctx.noise() * gen.exp(logvar * 0.5)
      else
        y = y + ctx.noise() * math.sqrt(var_beta)
      end
    end
    return y, d
  end, denoise, x, sigmas, opts)
end

--- Heun's second-order method with EDM's stochastic churn (Karras et al., 2022, Algorithm 2):
-- with gamma = min(churn / n, sqrt 2 - 1) while sigma is in [churn_tmin, churn_tmax] (0 otherwise),
-- raise the level to sigma^ = sigma (1 + gamma) with noise of std churn_noise sqrt(sigma^2^ - sigma^2),
-- take an Euler step to sigma_next and correct it with the slope there (the trapezoid rule), except
-- on the last step to 0. opts.churn = 0 (default): the deterministic Algorithm 1; 2n - 1 network
-- evaluations for n steps.
function M.sample_heun(denoise, x, sigmas, opts)
  opts = opts or {}
  local churn, tmin, tmax, s_noise = opts.churn or 0, opts.churn_tmin or 0, opts.churn_tmax or math.huge, opts.churn_noise or 1
  return run("sample_heun", function(ctx, xi, s, s_next)
    local gamma = (s >= tmin and s <= tmax) and math.min(churn / ctx.n, math.sqrt(2) - 1) or 0
    local s_hat = s * (1 + gamma)
    if gamma > 0 then xi = xi + ctx.noise() * (s_noise * math.sqrt(s_hat * s_hat - s * s)) end
    local d = denoise(xi, s_hat)
    local slope = (xi - d) / s_hat
    if s_next == 0 then return d, d end
    local y = xi + slope * (s_next - s_hat)
    local slope2 = (y - denoise(y, s_next)) / s_next
    return xi + (slope + slope2) * ((s_next - s_hat) / 2), d
  end, denoise, x, sigmas, opts)
end

--- DPM-Solver++(2M) (Lu et al., 2022, Algorithm 2): a multistep second-order solver of the ODE
-- in the data prediction D, in lambda = -ln sigma with h_i = lambda_{i+1} - lambda_i:
--   x_{i+1} = (sigma_{i+1} / sigma_i) x_i + (1 - e^{-h_i}) D^_i,
--   D^_i = (1 + 1/(2 r_i)) D_i - 1/(2 r_i) D_{i-1},  r_i = h_{i-1} / h_i,
-- first order (D^ = D) on the first step and on the last one (to sigma = 0, where x = D).
-- e^{-h} = sigma_{i+1} / sigma_i, so no exponential is computed.
function M.sample_dpmpp_2m(denoise, x, sigmas, opts)
  return run("sample_dpmpp_2m", function(ctx, xi, s, s_next)
    local d = denoise(xi, s)
    if s_next == 0 then
      ctx.old = nil
      return d, d
    end
    local h = math.log(s) - math.log(s_next)
    local dh = d
    if ctx.old and ctx.old_sigma_next == s then
      local r = ctx.old_h / h
      dh = d * (1 + 1 / (2 * r)) - ctx.old * (1 / (2 * r))
    end
    ctx.old, ctx.old_h, ctx.old_sigma_next = d, h, s_next
    local ratio = s_next / s
    return xi * ratio + dh * (1 - ratio), d
  end, denoise, x, sigmas, opts)
end

---------------------------------------------------------------- the reverse SDE

-- One Euler-Maruyama step of the reverse-time SDE dx = -d[sigma^2] grad log p(x; sigma) +
-- sqrt(d[sigma^2]) dw (Song et al., 2021, eq. 6 for VE; VP's x^ = x / s obeys the same) from sigma
-- down to sigma_next: with dv = sigma^2 - sigma_next^2 and the score (D - x) / sigma^2,
--   x_next = x + dv score + sqrt(dv) z,
-- and on the last step (sigma_next = 0) the denoised D itself ("noise removal").
local function reverse_sde_step(ctx, x, s, s_next)
  local d = ctx.denoise(x, s)
  if s_next == 0 then return d, d end
  local dv = s * s - s_next * s_next
  return x + (d - x) * (dv / (s * s)) + ctx.noise() * math.sqrt(dv), d
end

--- Euler-Maruyama on the reverse-time SDE (Song et al.'s "reverse diffusion" predictor); one
-- network evaluation per step.
function M.sample_euler_maruyama(denoise, x, sigmas, opts)
  return run("sample_euler_maruyama", reverse_sde_step, denoise, x, sigmas, opts)
end

--- Predictor-corrector (Song et al., 2021, Algorithm 2): the reverse-SDE step above, then
-- opts.corrector_steps (1) steps of Langevin dynamics at the new level,
--   x = x + e g + sqrt(2 e) z,  g = (D(x, sigma) - x) / sigma^2,  e = 2 (r |z| / |g|)^2
-- with the signal-to-noise ratio r = opts.snr (0.16; norms per sample, averaged over the batch).
-- 2n - 1 network evaluations for n steps with one corrector step (none after the last).
function M.sample_pc(denoise, x, sigmas, opts)
  local r, m = opts and opts.snr or 0.16, opts and opts.corrector_steps or 1
  return run("sample_pc", function(ctx, xi, s, s_next)
    local y, d = reverse_sde_step(ctx, xi, s, s_next)
    if s_next == 0 then return y, d end
    local b = y:size(1)
    for _ = 1, m do
      local g = (denoise(y, s_next) - y) / (s_next * s_next)
      local z = ctx.noise()
      local zn = (z ^ 2):view(b, -1):sum(2):sqrt():mean():item()
      local gn = (g ^ 2):view(b, -1):sum(2):sqrt():mean():item()
      local e = 2 * (r * zn / gn) ^ 2
      y = y + g * e + z * math.sqrt(2 * e)
    end
    return y, d
  end, denoise, x, sigmas, opts)
end

M.sampler_names = { "ddpm", "ddim", "euler", "heun", "euler_ancestral", "dpmpp_2m", "euler_maruyama", "pc" }
M.by_name = { ddpm = M.sample_ddpm, ddim = M.sample_ddim, euler = M.sample_euler, heun = M.sample_heun,
  euler_ancestral = M.sample_euler_ancestral, dpmpp_2m = M.sample_dpmpp_2m, euler_maruyama = M.sample_euler_maruyama,
  pc = M.sample_pc }

--- Network evaluations of a sampler over n steps (Heun and pc with one corrector step: 2n - 1;
-- the others n).
function M.nfe(name, n)
  if not M.by_name[name] then fail("nfe", "unknown sampler %s", tostring(name)) end
  return (name == "heun" or name == "pc") and 2 * n - 1 or n
end

--- sample(denoiser, shape, opts): samples of a denoiser (gen.diffusion.denoiser) in data space.
--   sampler    "ddpm" | "ddim" | "euler" | "heun" | "euler_ancestral" | "dpmpp_2m" |
--              "euler_maruyama" | "pc" ("euler")
--   steps      number of steps (50)
--   schedule   "uniform" (in the process's time) | "karras" | "logsnr", or a list of sigmas ending
--              in 0 ("uniform"); rho for karras (7)
--   labels, guidance, null_class   conditioning and classifier-free guidance
--   init, strength  img2img (SDEdit, Meng et al., 2022): start from the image init noised to the
--              level of the last round(strength * steps) steps of the schedule (0 < strength <= 1)
--   mask, known, resample  inpainting (see above); known defaults to init
--   generator, callback, progress, and the sampler's own options (eta, variance, churn, ...).
-- Starts at x^ = z prior_std(sigma_1), z ~ N(0, I) (VP and rectified flow: x_T ~ N(0, I)).
function M.sample(denoiser, shape, opts)
  opts = opts or {}
  local name = opts.sampler or "euler"
  local sampler = M.by_name[name]
  if not sampler then
    fail("sample", "unknown sampler %s (expected %s)", tostring(name), table.concat(M.sampler_names, ", "))
  end
  if type(denoiser) ~= "table" or not denoiser.process then
    fail("sample", "expected a denoiser (gen.diffusion.denoiser(model, process, kind)), got %s", type(denoiser))
  end
  if type(shape) ~= "table" or #shape < 1 then fail("sample", "expected a shape table, got %s", tostring(shape)) end
  local process = denoiser.process
  local steps = opts.steps or 50
  if math.type(steps) ~= "integer" or steps < 1 then fail("sample", "steps must be a positive integer, got %s", tostring(steps)) end
  local sigmas = schedules.step_sigmas(process, opts.schedule or "uniform", steps, opts)
  local z = randn_shape(shape, opts.generator)
  local x
  if opts.init then
    local init, strength = opts.init, opts.strength or 1
    if not (type(strength) == "number" and strength > 0 and strength <= 1) then
      fail("sample", "strength must be in (0, 1], got %s", tostring(strength))
    end
    if not gen.is_tensor(init) or init:dim() ~= #shape then
      fail("sample", "init must be images {B, C, H, W} like the shape {%s}, got %s", table.concat(shape, ","),
        gen.is_tensor(init) and "{" .. table.concat(init.shape, ",") .. "}" or type(init))
    end
    local n = #sigmas - 1
    local keep = math.max(1, math.floor(strength * n + 0.5))
    local tail = {}
    for i = n - keep + 1, n + 1 do tail[#tail + 1] = sigmas[i] end
    sigmas = tail
    x = init:float() + z * sigmas[1]
  else
    x = z * process:prior_std(sigmas[1])
  end
  local cond = { labels = opts.labels, guidance = opts.guidance, null_class = opts.null_class }
  local function denoise(xi, s) return denoiser(xi, s, cond) end
  local sopts = setmetatable({ known = opts.known or opts.init, label = opts.label or name }, { __index = opts })
  return sampler(denoise, x, sigmas, sopts)
end

return M
