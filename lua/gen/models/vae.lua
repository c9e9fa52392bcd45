--- Variational autoencoders (Kingma & Welling, 2014) for square images in [0, 1]: an MLP VAE and a
-- convolutional VAE. The objective (reparameterization, ELBO, test NLL) is in gen.autoencoder,
-- also reachable here under its old names.
local gen = require "gen"
local nn = gen.nn
local models = require "gen.models"
local objective = require "gen.autoencoder"

local M = {}
M.reparameterize, M.elbo_loss, M.test_nll = objective.reparameterize, objective.elbo_loss, objective.test_nll -- old names

M.MLP = nn.Module:extend("MLPVAE")
-- outputs = k: the decoder gives k numbers per pixel (k C channels): 1 for a Bernoulli's logits or a
-- Gaussian's mean, 2 for a discretized Gaussian's mean and log-scale (gen.autoencoder.log_likelihood).
local function outputs_of(name, opts)
  local k = opts.outputs or 1
  if k ~= 1 and k ~= 2 then error(string.format("%s: outputs must be 1 or 2, got %s", name, tostring(k)), 3) end
  return k
end

--- MLPVAE{channels = 1, resolution = 28, hidden = 400, latent = 20, outputs = 1} (or input = D and
-- shape = {C, H, W})
function M.MLP:init(opts)
  opts = opts or {}
  local c, r = models.image_shape("MLPVAE", opts)
  self.shape = opts.shape or { c, r, r }
  self.outputs = outputs_of("MLPVAE", opts)
  local d, h, z = opts.input or self.shape[1] * self.shape[2] * self.shape[3], opts.hidden or 400, opts.latent or 20
  self.latent = z
  self.encoder = nn.Sequential(nn.Linear(d, h), nn.ReLU())
  self.mu = nn.Linear(h, z)
  self.logvar = nn.Linear(h, z)
  self.decoder = nn.Sequential(nn.Linear(z, h), nn.ReLU(), nn.Linear(h, d * self.outputs))
end
function M.MLP:encode(x)
  local h = self.encoder(x:flatten(2))
  return self.mu(h), self.logvar(h)
end
function M.MLP:decode(z)
  local c, hgt, w = table.unpack(self.shape)
  return self.decoder(z):view(z:size(1), c * self.outputs, hgt, w)
end
--- Returns reconstruction logits, mu, logvar.
function M.MLP:forward(x)
  local mu, logvar = self:encode(x)
  return self:decode(objective.reparameterize(mu, logvar)), mu, logvar
end

M.Conv = nn.Module:extend("ConvVAE")
--- ConvVAE{channels = 1, resolution = 28, width = 32, latent = 16, outputs = 1}: two stride-2
-- convolutions down to a (resolution / 4)^2 grid and two transposed ones back; resolution divisible by 4.
function M.Conv:init(opts)
  opts = opts or {}
  local c, r = models.image_shape("ConvVAE", opts)
  self.outputs = outputs_of("ConvVAE", opts)
  if r % 4 ~= 0 then error("ConvVAE: resolution must be divisible by 4, got " .. r, 2) end
  local w, z, cells = opts.width or 32, opts.latent or 16, (r // 4) ^ 2 // 1
  self.latent, self.shape = z, { c, r, r }
  self.encoder = nn.Sequential(
    nn.Conv2d(c, w, 4, { stride = 2, padding = 1 }), nn.ReLU(),
    nn.Conv2d(w, 2 * w, 4, { stride = 2, padding = 1 }), nn.ReLU(), nn.Flatten())
  self.mu = nn.Linear(2 * w * cells, z)
  self.logvar = nn.Linear(2 * w * cells, z)
  self.decoder = nn.Sequential(
    nn.Linear(z, 2 * w * cells), nn.ReLU(), nn.Unflatten(2, { 2 * w, r // 4, r // 4 }),
    nn.ConvTranspose2d(2 * w, w, 4, { stride = 2, padding = 1 }), nn.ReLU(),
    nn.ConvTranspose2d(w, c * self.outputs, 4, { stride = 2, padding = 1 }))
end
function M.Conv:encode(x)
  local h = self.encoder(x)
  return self.mu(h), self.logvar(h)
end
function M.Conv:decode(z) return self.decoder(z) end
M.Conv.forward = M.MLP.forward

return M
