--- Variational autoencoders (Kingma & Welling, 2014): an MLP VAE and a convolutional VAE for
-- 28x28 images in [0, 1], the reparameterization trick, and the (beta-weighted) ELBO.
--
--   z = mu + sigma * eps, eps ~ N(0, I), sigma = exp(logvar / 2)
--   -ELBO(x) = -E_q[log p(x | z)] + beta * KL(q(z | x) || N(0, I))
-- with a Bernoulli likelihood (pixels as probabilities; the decoder gives logits) or a Gaussian
-- one with unit variance (-log p = ||x - mean||^2 / 2 + D/2 log 2 pi). Losses are per sample (sums
-- over pixels and latents, averaged over the batch), so they read in nats.
local gen = require "gen"
local nn = gen.nn

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
    error("gen.models.vae.elbo_loss: likelihood must be \"bernoulli\" or \"gaussian\"", 2)
  end
  local kl = gen.kl_normal(mu, logvar) -- "mean": summed over latents, averaged over the batch
  return recon + kl * (opts.beta or 1), recon, kl
end

M.MLP = nn.Module:extend("MLPVAE")
--- MLPVAE{input = 784, hidden = 400, latent = 20}
function M.MLP:init(opts)
  opts = opts or {}
  local d, h, z = opts.input or 784, opts.hidden or 400, opts.latent or 20
  self.latent, self.shape = z, opts.shape or { 1, 28, 28 }
  self.encoder = nn.Sequential(nn.Linear(d, h), nn.ReLU())
  self.mu = nn.Linear(h, z)
  self.logvar = nn.Linear(h, z)
  self.decoder = nn.Sequential(nn.Linear(z, h), nn.ReLU(), nn.Linear(h, d))
end
function M.MLP:encode(x)
  local h = self.encoder(x:flatten(2))
  return self.mu(h), self.logvar(h)
end
function M.MLP:decode(z) return self.decoder(z):view(z:size(1), table.unpack(self.shape)) end
--- Returns reconstruction logits, mu, logvar.
function M.MLP:forward(x)
  local mu, logvar = self:encode(x)
  return self:decode(M.reparameterize(mu, logvar)), mu, logvar
end

M.Conv = nn.Module:extend("ConvVAE")
--- ConvVAE{channels = 1, width = 32, latent = 16} for 28x28 inputs.
function M.Conv:init(opts)
  opts = opts or {}
  local c, w, z = opts.channels or 1, opts.width or 32, opts.latent or 16
  self.latent, self.shape = z, { c, 28, 28 }
  self.encoder = nn.Sequential(
    nn.Conv2d(c, w, 4, { stride = 2, padding = 1 }), nn.ReLU(),
    nn.Conv2d(w, 2 * w, 4, { stride = 2, padding = 1 }), nn.ReLU(), nn.Flatten())
  self.mu = nn.Linear(2 * w * 49, z)
  self.logvar = nn.Linear(2 * w * 49, z)
  self.decoder = nn.Sequential(
    nn.Linear(z, 2 * w * 49), nn.ReLU(), nn.Unflatten(2, { 2 * w, 7, 7 }),
    nn.ConvTranspose2d(2 * w, w, 4, { stride = 2, padding = 1 }), nn.ReLU(),
    nn.ConvTranspose2d(w, c, 4, { stride = 2, padding = 1 }))
end
function M.Conv:encode(x)
  local h = self.encoder(x)
  return self.mu(h), self.logvar(h)
end
function M.Conv:decode(z) return self.decoder(z) end
M.Conv.forward = M.MLP.forward

--- The average -ELBO in nats over a dataset's images (uint8, scaled to [0, 1]), in batches, with
-- the posterior sample drawn from the given generator for reproducibility.
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
