--- Deterministic autoencoders for square images in [0, 1]: a bottleneck of `latent` numbers.
--   Conv{resolution = 28, channels = 1, width = 32, latent = 32}: two stride-2 4x4 convolutions
--       down to a (resolution / 4)^2 grid, a linear map to the code, and the mirror image back
--       (resolution divisible by 4)
--   MLP{resolution = 28, channels = 1, hidden = 512, latent = 32}
-- encode(x) -> codes {B, latent}; decode(z) -> images in [0, 1] (a sigmoid output);
-- forward(x) -> decode(encode(x)); features(x) = encode(x). The objectives (plain and denoising
-- reconstruction) live in gen.autoencoder.
local gen = require "gen"
local nn = gen.nn
local models = require "gen.models"

local M = {}

M.Conv = nn.Module:extend("ConvAutoencoder")
function M.Conv:init(opts)
  opts = opts or {}
  local c, r = models.image_shape("ConvAutoencoder", opts)
  if r % 4 ~= 0 then error("ConvAutoencoder: resolution must be divisible by 4, got " .. r, 3) end
  local w, z, cells = opts.width or 32, opts.latent or 32, (r // 4) * (r // 4)
  self.latent, self.shape = z, { c, r, r }
  self.encoder = nn.Sequential(
    nn.Conv2d(c, w, 4, { stride = 2, padding = 1 }), nn.ReLU(),
    nn.Conv2d(w, 2 * w, 4, { stride = 2, padding = 1 }), nn.ReLU(), nn.Flatten(),
    nn.Linear(2 * w * cells, z))
  self.decoder = nn.Sequential(
    nn.Linear(z, 2 * w * cells), nn.ReLU(), nn.Unflatten(2, { 2 * w, r // 4, r // 4 }),
    nn.ConvTranspose2d(2 * w, w, 4, { stride = 2, padding = 1 }), nn.ReLU(),
    nn.ConvTranspose2d(w, c, 4, { stride = 2, padding = 1 }), nn.Sigmoid())
end
function M.Conv:encode(x) return self.encoder(x) end
function M.Conv:decode(z) return self.decoder(z) end
function M.Conv:forward(x) return self:decode(self:encode(x)) end
M.Conv.features = M.Conv.encode

M.MLP = nn.Module:extend("MLPAutoencoder")
function M.MLP:init(opts)
  opts = opts or {}
  local c, r = models.image_shape("MLPAutoencoder", opts)
  local d, h, z = c * r * r, opts.hidden or 512, opts.latent or 32
  self.latent, self.shape = z, { c, r, r }
  self.encoder = nn.Sequential(nn.Flatten(), nn.Linear(d, h), nn.ReLU(), nn.Linear(h, z))
  self.decoder = nn.Sequential(nn.Linear(z, h), nn.ReLU(), nn.Linear(h, d), nn.Sigmoid(), nn.Unflatten(2, { c, r, r }))
end
M.MLP.encode, M.MLP.decode, M.MLP.forward, M.MLP.features = M.Conv.encode, M.Conv.decode, M.Conv.forward, M.Conv.encode

return M
