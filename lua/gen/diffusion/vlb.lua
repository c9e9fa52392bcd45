--- Improved DDPM (Nichol & Dhariwal, 2021): learned reverse variances, the hybrid loss, and the
-- variational bound in bits per dimension, on the discrete VP chain x_t = sqrt(ab_t) x_0 +
-- sqrt(1 - ab_t) eps, t = 1..T, with data x_0 in [-1, 1] on 256 levels.
--
-- The bound (Ho et al., 2020, eq. 5): -log p(x_0) <= L_prior + sum_{t=2}^T L_{t-1} + L_0 with
--   L_prior = KL(q(x_T | x_0) || N(0, I))
--   L_{t-1} = KL(q(x_{t-1} | x_t, x_0) || p(x_{t-1} | x_t))    (t > 1, Gaussians: closed form)
--   L_0     = -log p(x_0 | x_1)    (a Gaussian discretized to the 256 bins of each pixel)
-- q(x_{t-1} | x_t, x_0) = N(c0_t x_0 + ct_t x_t, beta~_t), c0_t = beta_t sqrt(ab_{t-1}) / (1 - ab_t),
-- ct_t = (1 - ab_{t-1}) sqrt(alpha_t) / (1 - ab_t), beta~_t = beta_t (1 - ab_{t-1}) / (1 - ab_t).
-- The model's p(x_{t-1} | x_t) = N(c0_t x0^ + ct_t x_t, Sigma_t) puts its predicted x0^ into the
-- posterior mean. Sigma_t is fixed (beta_t, "beta", or beta~_t, "posterior") or learned: the
-- network gives a second set of C channels v in [-1, 1] (by training, not by a squashing) and
-- log Sigma_t = f log beta_t + (1 - f) log beta~_t, f = (v + 1) / 2 (Nichol & Dhariwal, eq. 15).
-- beta~_1 = 0, so log beta~ at t = 1 is clipped to that of t = 2, as in their code.
local gen = require "gen"
local likelihood = require "gen.likelihood"

local M = {}

local function fail(fn, msg, ...) error(string.format("gen.diffusion." .. fn .. ": " .. msg, ...), 3) end

local function exp(v) return type(v) == "number" and math.exp(v) or gen.exp(v) end

--- normal_kl(mean1, logvar1, mean2, logvar2): KL(N(mean1, e^logvar1) || N(mean2, e^logvar2)) in
-- nats per element; arguments are tensors or numbers and broadcast.
function M.normal_kl(mean1, logvar1, mean2, logvar2)
  local diff, dlog = mean1 - mean2, logvar1 - logvar2
  return (exp(dlog) - 1 - dlog + diff * diff * exp(-logvar2)) * 0.5
end

-- The discretized Gaussian of L_0 is shared with the VAE's decoder: it lives in gen.likelihood.
M.standard_normal_cdf = likelihood.standard_normal_cdf
M.discretized_gaussian_log_likelihood = likelihood.discretized_gaussian_log_likelihood

---------------------------------------------------------------- the chain's coefficients

-- Per-step tables of a schedule (Lua lists over t = 1..T), computed once per schedule.
local function chain(schedule)
  local c = rawget(schedule, "_vlb_chain")
  if c then return c end
  if schedule.T < 2 then fail("vlb", "the variational bound needs at least 2 steps, got T = %d", schedule.T) end
  c = { coef_x0 = {}, coef_xt = {}, post_var = {}, post_logvar = {}, log_beta = {}, sqrt_ab = {}, sqrt_1m_ab = {} }
  for t = 1, schedule.T do
    local ab, beta = schedule.alpha_bars[t], schedule.betas[t]
    local ab_prev = t > 1 and schedule.alpha_bars[t - 1] or 1
    c.coef_x0[t] = beta * math.sqrt(ab_prev) / (1 - ab)
    c.coef_xt[t] = (1 - ab_prev) * math.sqrt(schedule.alphas[t]) / (1 - ab)
    c.post_var[t] = beta * (1 - ab_prev) / (1 - ab)
    c.log_beta[t] = math.log(beta)
    c.sqrt_ab[t], c.sqrt_1m_ab[t] = math.sqrt(ab), math.sqrt(1 - ab)
  end
  for t = 1, schedule.T do c.post_logvar[t] = math.log(c.post_var[t == 1 and 2 or t]) end
  -- "beta" at t = 1 uses beta~_2 too, so that L_0's decoder is not as wide as beta_1 suggests
  c.fixed_beta_logvar = { c.post_logvar[1] }
  for t = 2, schedule.T do c.fixed_beta_logvar[t] = c.log_beta[t] end
  schedule._vlb_chain = c
  return c
end

-- {B, 1, 1, 1} tensor of list[t_b] for the steps t {B} (int64).
local function at(list, t)
  local vals = {}
  for i, v in ipairs(t:totable()) do vals[i] = list[v] end
  return gen.tensor(vals):view(-1, 1, 1, 1)
end

local function schedule_of(process, fn)
  local s = type(process) == "table" and (process.schedule or (process.alpha_bars and process))
  if not s or not s.alpha_bars then
    fail(fn, "needs the discrete VP chain (gen.diffusion.process(\"vp\") or a schedule), got %s",
      type(process) == "table" and tostring(process.name) or type(process))
  end
  return s
end

local predictions = { eps = true, x0 = true, v = true }

--- q_posterior(process, x0, xt, t) -> mean, log-variance of q(x_{t-1} | x_t, x_0) at steps t {B}.
function M.q_posterior(process, x0, xt, t)
  local c = chain(schedule_of(process, "q_posterior"))
  return x0 * at(c.coef_x0, t) + xt * at(c.coef_xt, t), at(c.post_logvar, t)
end

--- p_mean_variance(process, out, xt, t [, opts]) -> mean, log-variance of p(x_{t-1} | x_t) and the
-- predicted x0, from the network's output `out` at steps t {B}:
--   opts.prediction  what the first C channels predict: "eps" (default), "x0" or "v"
--   opts.variance    "learned" (out has 2C channels, the second C give v), "beta" or "posterior"
--   opts.clip        clamp the predicted x0 to [-clip, clip] (sampling only; off for the bound)
function M.p_mean_variance(process, out, xt, t, opts)
  opts = opts or {}
  local c = chain(schedule_of(process, "p_mean_variance"))
  local kind, variance = opts.prediction or "eps", opts.variance or "learned"
  if not predictions[kind] then fail("p_mean_variance", "prediction must be eps, x0 or v, got %s", tostring(kind)) end
  local ch = xt:size(2)
  local expected = variance == "learned" and 2 * ch or ch
  if out:dim() ~= 4 or out:size(2) ~= expected then
    fail("p_mean_variance", "with variance %s the output needs %d channels for images of %d, got {%s}", variance, expected, ch,
      table.concat(out.shape, ","))
  end
  local pred = variance == "learned" and out:narrow(2, 1, ch) or out
  local sa, s1a = at(c.sqrt_ab, t), at(c.sqrt_1m_ab, t)
  local x0
  if kind == "eps" then x0 = (xt - pred * s1a) / sa
  elseif kind == "x0" then x0 = pred
  else x0 = xt * sa - pred * s1a end
  if opts.clip then x0 = x0:clamp(-opts.clip, opts.clip) end
  local mean = x0 * at(c.coef_x0, t) + xt * at(c.coef_xt, t)
  local logvar
  if variance == "learned" then
    local f = (out:narrow(2, ch + 1, ch) + 1) * 0.5
    logvar = f * at(c.log_beta, t) + (f * -1 + 1) * at(c.post_logvar, t)
  elseif variance == "beta" then logvar = at(c.fixed_beta_logvar, t)
  elseif variance == "posterior" then logvar = at(c.post_logvar, t)
  else fail("p_mean_variance", "variance must be learned, beta or posterior, got %s", tostring(variance)) end
  return mean, logvar, x0
end

--- vlb_terms(process, x0, xt, t, mean, logvar) -> {B} the terms of the bound in nats per image:
-- L_{t-1} = KL(q(x_{t-1} | x_t, x_0) || N(mean, e^logvar)) for t > 1, and L_0 = -log p(x_0 | x_1)
-- with the discretized decoder for t = 1; summed over the dimensions of each image.
function M.vlb_terms(process, x0, xt, t, mean, logvar)
  local true_mean, true_logvar = M.q_posterior(process, x0, xt, t)
  local b = x0:size(1)
  local kl = M.normal_kl(true_mean, true_logvar, mean, logvar)
  local nll = M.discretized_gaussian_log_likelihood(x0, mean, logvar * 0.5) * -1
  local first = t:eq(1):view(b, 1, 1, 1)
  return gen.where(first, nll, kl):view(b, -1):sum(2)
end

--- prior_kl(process, x0) -> {B} KL(q(x_T | x_0) || N(0, I)) in nats per image.
function M.prior_kl(process, x0)
  local c = chain(schedule_of(process, "prior_kl"))
  local T = #c.sqrt_ab
  local b = x0:size(1)
  return M.normal_kl(x0 * c.sqrt_ab[T], math.log(1 - c.sqrt_ab[T] ^ 2), 0, 0):view(b, -1):sum(2)
end

---------------------------------------------------------------- training

--- hybrid_loss(model, process, x0 [, labels [, opts]]) -> loss, L_simple, L_vlb (Nichol & Dhariwal,
-- sec. 3.1): L_simple + lambda L_vlb for a network whose output has 2C channels (the prediction
-- and v). L_vlb = T E_t[L_{t-1}] is estimated from the same uniform t as L_simple, with L_{t-1} in
-- bits per dimension; its mean goes through a stopped gradient, so it trains only the variances
-- and leaves the mean to L_simple. opts.lambda (0.001; with T = 1000 this weighs L_{t-1} by 1, as
-- their code does), opts.prediction ("eps"), opts.label_dropout (classifier-free guidance).
function M.hybrid_loss(model, process, x0, labels, opts)
  opts = opts or {}
  local sched = schedule_of(process, "hybrid_loss")
  local kind = opts.prediction or "eps"
  if not predictions[kind] then fail("hybrid_loss", "prediction must be eps, x0 or v, got %s", tostring(kind)) end
  if not gen.is_tensor(x0) or x0:dim() ~= 4 then fail("hybrid_loss", "expected images {B, C, H, W}") end
  local b, ch = x0:size(1), x0:size(2)
  local t = gen.randint(1, sched.T, { b })
  local eps = gen.randn_like(x0)
  local c = chain(sched)
  local sa, s1a = at(c.sqrt_ab, t), at(c.sqrt_1m_ab, t)
  local xt = x0 * sa + eps * s1a
  labels = require("gen.diffusion.guidance").drop_labels(labels, opts, model)
  local out = model(xt, t:float(), labels)
  if out:dim() ~= 4 or out:size(2) ~= 2 * ch then
    fail("hybrid_loss", "the model must output 2C = %d channels (prediction and variance), got {%s}", 2 * ch, table.concat(out.shape, ","))
  end
  local pred = out:narrow(2, 1, ch)
  local target = kind == "eps" and eps or kind == "x0" and x0 or (eps * sa - x0 * s1a)
  local simple = gen.mse_loss(pred, target)
  local frozen = gen.cat({ pred:detach(), out:narrow(2, ch + 1, ch) }, 2)
  local mean, logvar = M.p_mean_variance(sched, frozen, xt, t, { prediction = kind, variance = "learned" })
  local dims = x0:numel() // b
  local terms = M.vlb_terms(sched, x0, xt, t, mean, logvar) * (1 / (dims * math.log(2)))
  local vlb = terms:mean() * sched.T
  return simple + vlb * (opts.lambda or 0.001), simple, vlb
end

---------------------------------------------------------------- the bound on data

--- variational_bound(model, process, x0 [, opts]) -> {B} float64 the variational bound -log p(x_0) <= L in
-- nats per image of images x0 {B, C, H, W} in [-1, 1] (exactly the 256 levels), summing every
-- term: one network evaluation per step t = T..1 (opts.steps = k: k steps drawn uniformly per
-- call, their sum scaled by (T - 1) / k, with L_0 and L_prior always exact, an unbiased estimate).
-- opts.prediction, opts.variance as in p_mean_variance; opts.labels; opts.generator for the noise
-- and the steps; opts.progress = false hides the bar. gen.likelihood.bits_per_dim(-L, dims,
-- {discrete = true}) turns it into bits per dimension. The second result splits L into its parts,
-- {B} float64 each: prior (L_prior), kl (the sum of L_1 .. L_{T-1}, or its estimate) and decoder
-- (L_0); L = prior + kl + decoder.
function M.variational_bound(model, process, x0, opts)
  opts = opts or {}
  local sched = schedule_of(process, "variational_bound")
  if not gen.is_tensor(x0) or x0:dim() ~= 4 then fail("variational_bound", "expected images {B, C, H, W} in [-1, 1]") end
  local b, T, g = x0:size(1), sched.T, opts.generator
  local steps = {}
  if opts.steps then
    if math.type(opts.steps) ~= "integer" or opts.steps < 1 or opts.steps > T - 1 then
      fail("variational_bound", "steps must be an integer in 1..%d, got %s", T - 1, tostring(opts.steps))
    end
    local perm = gen.randperm(T - 1, { generator = g }):totable()
    for i = 1, opts.steps do steps[i] = perm[i] + 1 end
  else
    for t = 2, T do steps[#steps + 1] = t end
  end
  local scale = (T - 1) / #steps
  local c = chain(sched)
  local mv = { prediction = opts.prediction, variance = opts.variance }
  return gen.no_grad(function()
    local total = M.prior_kl(sched, x0):double()
    local middle = gen.zeros({ b }, "float64")
    local bar = opts.progress ~= false and gen.ui.progress(#steps + 1, { label = "bound" }) or nil
    local function term(t)
      local tv = gen.full({ b }, t, "int64")
      local xt = x0 * c.sqrt_ab[t] + gen.randn(x0.shape, { generator = g }) * c.sqrt_1m_ab[t]
      local mean, logvar = M.p_mean_variance(sched, model(xt, tv:float(), opts.labels), xt, tv, mv)
      return M.vlb_terms(sched, x0, xt, tv, mean, logvar):double()
    end
    for i, t in ipairs(steps) do
      middle = middle + term(t)
      if bar then bar:update(i) end
    end
    local prior, kl, decoder = total, middle * scale, term(1)
    if bar then bar:close() end
    return prior + kl + decoder, { prior = prior, kl = kl, decoder = decoder }
  end)
end

--- vlb_bits_per_dim(model, process, images [, opts]) -> mean bits per dimension of the bound over
-- images (uint8 {N, ...} or float in [-1, 1]), and its parts {prior, kl, decoder} in bits per
-- dimension as well (they sum to it), in batches of opts.batch (100); opts.pad pads each
-- side by that many pixels of -1 (the examples train on 28x28 padded to 32x32). The dimensions
-- counted are opts.dims (default: the images' own, before padding): the padding is constant, so
-- the bound on the padded image bounds the unpadded image's -log p as well.
function M.vlb_bits_per_dim(model, process, images, opts)
  opts = opts or {}
  local n, bs = images:size(1), opts.batch or 100
  local dims = opts.dims or images:numel() // n
  local sums = { prior = 0, kl = 0, decoder = 0 }
  for first = 1, n, bs do
    local x = images:narrow(1, first, math.min(bs, n - first + 1))
    if x.dtype == "uint8" then x = x:float() / 127.5 - 1 end
    if x:dim() == 3 then x = x:unsqueeze(2) end
    if (opts.pad or 0) > 0 then x = gen.pad(x, { opts.pad, opts.pad, opts.pad, opts.pad }, "constant", -1) end
    local _, parts = M.variational_bound(model, process, x, opts)
    for k, v in pairs(parts) do sums[k] = sums[k] + v:sum():item() end
  end
  local bits = {}
  for k, v in pairs(sums) do bits[k] = likelihood.bits_per_dim(-v / n, dims, { discrete = true }) end
  return bits.prior + bits.kl + bits.decoder, bits
end

return M
