--- gen.autoencoder: autoencoder objectives (the networks live in gen.models.vae).
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

return M
