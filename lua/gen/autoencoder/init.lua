--- gen.autoencoder: autoencoder objectives (the networks live in gen.models.vae, .autoencoder, .mae).
-- Plain and denoising autoencoders (Vincent et al., 2008): the mean squared error between the
-- reconstruction of the (corrupted) input and the clean image; corruptions are in
-- gen.autoencoder.corruptions, the masked autoencoder's masking and loss in gen.autoencoder.mae
-- (also here as random_masking, masked_patch_loss, mae_loss).
-- Variational autoencoders (Kingma & Welling, 2014): the reparameterization trick and the
-- (beta-weighted) ELBO,
--   z = mu + sigma * eps, eps ~ N(0, I), sigma = exp(logvar / 2)
--   -ELBO(x) = -E_q[log p(x | z)] + beta * KL(q(z | x) || N(0, I))
-- with a Bernoulli likelihood (pixels as probabilities; the decoder gives logits) or a Gaussian
-- one with unit variance (-log p = ||x - mean||^2 / 2 + D/2 log 2 pi). Losses are per sample (sums
-- over pixels and latents, averaged over the batch), so they read in nats.
local gen = require "gen"

local M = {}

--- z = mu + exp(logvar / 2) * eps
function M.reparameterize(mu, logvar, opts)
  local eps = gen.randn(mu.shape, { dtype = mu.dtype, generator = opts and opts.generator })
  return mu + (logvar * 0.5):exp() * eps
end

--- Returns the loss (-ELBO with KL weighted by beta, per sample), and the reconstruction and KL
-- terms. x in [0, 1] like the decoder's output; opts = {beta = 1, likelihood = "bernoulli" | "gaussian"}.
function M.elbo_loss(x, logits, mu, logvar, opts)
  opts = opts or {}
  local n = x:size(1)
  local recon
  if (opts.likelihood or "bernoulli") == "bernoulli" then
    recon = gen.bce_with_logits(logits, x, { reduction = "sum" }) / n
  elseif opts.likelihood == "gaussian" then
    local d = x:numel() / n
    recon = gen.mse_loss(gen.sigmoid(logits), x, { reduction = "sum" }) * (0.5 / n) + 0.5 * d * math.log(2 * math.pi)
  else
    error("gen.autoencoder.elbo_loss: likelihood must be \"bernoulli\" or \"gaussian\"", 2)
  end
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
      local mu, logvar = model:encode(x)
      local logits = model:decode(M.reparameterize(mu, logvar, opts))
      total = total + M.elbo_loss(x, logits, mu, logvar, { likelihood = opts.likelihood }):item() * x:size(1)
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
