--- gen.autoencoder: autoencoder objectives (the networks live in gen.models.vae, .autoencoder, .mae).
-- Plain and denoising autoencoders (Vincent et al., 2008): the mean squared error between the
-- reconstruction of the (corrupted) input and the clean image; corruptions are in
-- gen.autoencoder.corruptions, the masked autoencoder's masking and loss in gen.autoencoder.mae
-- (also here as random_masking, masked_patch_loss, mae_loss).
-- Variational autoencoders (Kingma & Welling, 2014): the reparameterization trick and the
-- (beta-weighted) ELBO,
--   z = mu + sigma * eps, eps ~ N(0, I), sigma = exp(logvar / 2)
--   -ELBO(x) = -E_q[log p(x | z)] + beta * KL(q(z | x) || N(0, I))
-- with a Bernoulli likelihood (pixels as probabilities; the decoder gives logits), a Gaussian
-- one with unit variance (-log p = ||x - mean||^2 / 2 + D/2 log 2 pi), or a Gaussian with a learned
-- scale discretized to the 8-bit bins (a probability, comparable with PixelCNN's); and the
-- importance-weighted bound (Burda et al., 2016), which tightens the ELBO with k samples. Losses
-- are per sample (sums over pixels and latents, averaged over the batch), so they read in nats.
local gen = require "gen"
local likelihood_lib = require "gen.likelihood"

local M = {}

--- z = mu + exp(logvar / 2) * eps
function M.reparameterize(mu, logvar, opts)
  local eps = gen.randn(mu.shape, { dtype = mu.dtype, generator = opts and opts.generator })
  return mu + (logvar * 0.5):exp() * eps
end

local HALF_LOG_2PI = 0.5 * math.log(2 * math.pi)
local LIKELIHOODS = { bernoulli = true, gaussian = true, discretized = true }

local function check_likelihood(name, fname)
  name = name or "bernoulli"
  if not LIKELIHOODS[name] then
    error(string.format('gen.autoencoder.%s: likelihood must be "bernoulli", "gaussian" or "discretized", got %s', fname,
      tostring(name)), 3)
  end
  return name
end

--- log_likelihood(x, out [, likelihood]) -> log p(x | z) in nats, one number per sample ({N}), for
-- images x in [0, 1] and the decoder's output out:
--   "bernoulli" (default): out are logits, pixels are probabilities;
--   "gaussian": N(sigmoid(out), 1) per pixel (a density: not comparable with discrete models);
--   "discretized": out has 2C channels, the mean (through tanh) and the log-scale (at least -7) of a Gaussian on
--   [-1, 1] integrated over each 8-bit pixel's bin (gen.likelihood.discretized_gaussian_log_likelihood):
--   a probability of the 8-bit image, so its bits/dim compare with PixelCNN's.
function M.log_likelihood(x, out, likelihood)
  likelihood = check_likelihood(likelihood, "log_likelihood")
  local n = x:size(1)
  local per_pixel
  if likelihood == "bernoulli" then
    per_pixel = gen.bce_with_logits(out, x, { reduction = "none" }) * -1
  elseif likelihood == "gaussian" then
    local d = gen.sigmoid(out) - x
    per_pixel = d * d * -0.5 - HALF_LOG_2PI
  else
    local c = out:size(2) // 2
    if out:size(2) ~= 2 * x:size(2) then
      error(string.format("gen.autoencoder.log_likelihood: a discretized likelihood needs %d output channels (mean and "
        .. "log-scale) for %d image channels, got %d (build the model with outputs = 2)", 2 * x:size(2), x:size(2), out:size(2)), 2)
    end
    -- log-scales below -7 (a standard deviation under a quarter of a bin) buy nothing and, unbounded,
    -- let the scale underflow to 0 and the likelihood's gradient to NaN (PixelCNN++ clamps the same)
    local mean, log_scale = out:narrow(2, 1, c):tanh(), out:narrow(2, c + 1, c):clamp(-7, nil)
    per_pixel = likelihood_lib.discretized_gaussian_log_likelihood(x * 2 - 1, mean, log_scale)
  end
  return per_pixel:reshape(n, -1):sum(2)
end

--- The image a decoder's output stands for, in [0, 1]: the Bernoulli's probabilities, the
-- Gaussian's mean (the first C channels of a discretized one).
function M.decoded_mean(out, likelihood)
  likelihood = check_likelihood(likelihood, "decoded_mean")
  if likelihood == "discretized" then return (out:narrow(2, 1, out:size(2) // 2):tanh() + 1) * 0.5 end
  return gen.sigmoid(out)
end

--- Returns the loss (-ELBO with KL weighted by beta, per sample), and the reconstruction and KL
-- terms. x in [0, 1]; opts = {beta = 1, likelihood = "bernoulli" | "gaussian" | "discretized"}.
function M.elbo_loss(x, logits, mu, logvar, opts)
  opts = opts or {}
  local recon = M.log_likelihood(x, logits, check_likelihood(opts.likelihood, "elbo_loss")):mean() * -1
  local kl = gen.kl_normal(mu, logvar) -- "mean": summed over latents, averaged over the batch
  return recon + kl * (opts.beta or 1), recon, kl
end

--- The average -ELBO in nats over a dataset's images (uint8, scaled to [0, 1]), in batches, with
-- the posterior sample drawn from the given generator for reproducibility. The model has
-- encode(x) -> mu, logvar and decode(z) -> logits.
function M.test_nll(model, images, opts)
  opts = opts or {}
  local total, n, bs = 0, images:size(1), opts.batch or 500
  gen.no_grad(function()
    for i = 1, n, bs do
      local x = images:narrow(1, i, math.min(bs, n - i + 1)):float() / 255
      if x:dim() == 3 then x = x:unsqueeze(2) end
      local mu, logvar = model:encode(x)
      local logits = model:decode(M.reparameterize(mu, logvar, opts))
      total = total + M.elbo_loss(x, logits, mu, logvar, { likelihood = opts.likelihood }):item() * x:size(1)
    end
  end)
  return total / n
end

--- iw_nll(model, images [, opts]) -> the importance-weighted bound on -log p(x) (Burda et al.,
-- 2016), in nats per image, averaged over the images (uint8, scaled to [0, 1]):
--   log p(x) >= E log (1/k) sum_i p(x | z_i) p(z_i) / q(z_i | x),  z_i ~ q(z | x),
-- tighter as k grows (k = 1 is the ELBO; the bound converges to log p(x) as k -> infinity).
-- opts: k (1000), likelihood, samples (decoder passes of at most this many samples, 10000),
-- generator (for the z_i), progress (a function(done, total)).
function M.iw_nll(model, images, opts)
  opts = opts or {}
  local k, per_pass = opts.k or 1000, opts.samples or 10000
  if math.type(k) ~= "integer" or k < 1 then error("gen.autoencoder.iw_nll: k must be a positive integer, got " .. tostring(k), 2) end
  local likelihood = check_likelihood(opts.likelihood, "iw_nll")
  local n = images:size(1)
  local m = math.max(1, per_pass // k) -- images per pass
  local total = 0
  gen.no_grad(function()
    for i = 1, n, m do
      local x = images:narrow(1, i, math.min(m, n - i + 1)):float() / 255
      if x:dim() == 3 then x = x:unsqueeze(2) end
      local b = x:size(1)
      local mu, logvar = model:encode(x)
      local sigma = (logvar * 0.5):exp()
      local log_q_const = (logvar * -0.5):sum(2) - HALF_LOG_2PI * mu:size(2) -- log q(z | x) = this - |eps|^2 / 2
      local pieces = {}
      for j = 1, k, math.max(1, per_pass // b) do
        local kc = math.min(math.max(1, per_pass // b), k - j + 1)
        local eps = gen.randn({ kc, b, mu:size(2) }, { generator = opts.generator })
        local z = mu:unsqueeze(1) + sigma:unsqueeze(1) * eps -- {kc, b, latent}
        local out = model:decode(z:reshape(kc * b, -1))
        local xs = x:unsqueeze(1):expand(kc, table.unpack(x.shape)):reshape(kc * b, table.unpack(x.shape, 2))
        local log_px = M.log_likelihood(xs, out, likelihood):view(kc, b)
        local log_pz = (z * z):sum(3) * -0.5 - HALF_LOG_2PI * mu:size(2)
        local log_qz = (eps * eps):sum(3) * -0.5 + log_q_const:unsqueeze(1)
        pieces[#pieces + 1] = log_px + log_pz - log_qz
      end
      local log_w = #pieces == 1 and pieces[1] or gen.cat(pieces, 1)
      total = total - (log_w:double():logsumexp(1) - math.log(k)):sum():item()
      if opts.progress then opts.progress(math.min(i + m - 1, n), n) end
    end
  end)
  return total / n
end

--- reconstruction_loss(model, x [, corrupt [, generator]]) -> loss, reconstruction, input: the
-- per-pixel mean squared error between model(corrupt(x)) and the clean x (no corruption: a
-- plain autoencoder's loss).
function M.reconstruction_loss(model, x, corrupt, generator)
  local input = corrupt and corrupt(x, generator) or x
  local recon = model(input)
  return gen.mse_loss(recon, x), recon, input
end

--- Peak signal-to-noise ratio in dB of a mean squared error for images with the given peak
-- (1 for images in [0, 1]): 10 log10(peak^2 / mse).
function M.psnr(mse, peak)
  return 10 * math.log((peak or 1) ^ 2 / mse, 10)
end

--- test_mse(model, images [, {corrupt, generator, batch = 500}]) -> the per-pixel mean squared
-- error between model(corrupt(x)) and x over a dataset's uint8 images (scaled to [0, 1]), and
-- its PSNR in dB. The corruption draws from the generator (pass one for a fixed test set).
function M.test_mse(model, images, opts)
  opts = opts or {}
  local total, n, bs = 0, images:size(1), opts.batch or 500
  gen.no_grad(function()
    for i = 1, n, bs do
      local x = images:narrow(1, i, math.min(bs, n - i + 1)):float() / 255
      if x:dim() == 3 then x = x:unsqueeze(2) end
      local input = opts.corrupt and opts.corrupt(x, opts.generator) or x
      total = total + gen.mse_loss(model(input), x, { reduction = "sum" }):item()
    end
  end)
  local mse = total / images:numel()
  return mse, M.psnr(mse)
end

--- vqvae_loss(model, x) -> loss, reconstruction loss, q: the VQ-VAE objective, (3) of the paper
-- with a fixed-variance Gaussian decoder (a mean squared error per pixel):
--   L = ||x - D(e)||^2 + ||sg[E(x)] - e||^2 + beta ||E(x) - sg[e]||^2
-- summed over the levels of a VQ-VAE-2. q is the quantizer's report (q.codebook_loss,
-- q.commitment_loss, q.perplexity, q.dead; see gen.nn.VectorQuantizer); with EMA codebooks the
-- middle term is replaced by the EMA update, so q.loss holds the commitment term only.
function M.vqvae_loss(model, x)
  local xhat, q = model(x)
  local recon = gen.mse_loss(xhat, x)
  return recon + q.loss, recon, q
end

local mae = require "gen.autoencoder.mae"
M.mae, M.corruptions = mae, require "gen.autoencoder.corruptions"
M.random_masking, M.masked_patch_loss, M.mae_loss = mae.random_masking, mae.masked_patch_loss, mae.loss

return M
