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
--- MLPVAE{channels = 1, resolution = 28, hidden = 400, latent = 20} (or input = D and shape = {C, H, W})
function M.MLP:init(opts)
  opts = opts or {}
  local c, r = models.image_shape("MLPVAE", opts)
  self.shape = opts.shape or { c, r, r }
  local d, h, z = opts.input or self.shape[1] * self.shape[2] * self.shape[3], opts.hidden or 400, opts.latent or 20
  self.latent = z
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
  return self:decode(objective.reparameterize(mu, logvar)), mu, logvar
end

M.Conv = nn.Module:extend("ConvVAE")
--- ConvVAE{channels = 1, resolution = 28, width = 32, latent = 16}: two stride-2 convolutions down
-- to a (resolution / 4)^2 grid and two transposed ones back; resolution divisible by 4.
function M.Conv:init(opts)
  opts = opts or {}
  local c, r = models.image_shape("ConvVAE", opts)
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
    nn.ConvTranspose2d(w, c, 4, { stride = 2, padding = 1 }))
end
function M.Conv:encode(x)
  local h = self.encoder(x)
  return self.mu(h), self.logvar(h)
end
function M.Conv:decode(z) return self.decoder(z) end
M.Conv.forward = M.MLP.forward

return M
