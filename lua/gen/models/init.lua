--- gen.models: model families (each a submodule) and helpers they share.
--   gen.models.dcgan   DCGAN generator/discriminator for 28x28 (Radford et al., 2016)
--   gen.models.gan     MLP GAN and the GAN losses (Goodfellow et al., 2014)
--   gen.models.vae     MLP and convolutional VAEs, the ELBO (Kingma & Welling, 2014)
--   gen.models.unet    the diffusion UNet (Ho et al., 2020)
local M = {}

setmetatable(M, { __index = function(t, k)
  local ok, m = pcall(require, "gen.models." .. k)
  if not ok then return nil end
  rawset(t, k, m)
  return m
end })

--- interpolate(z0, z1, t [, "linear" | "spherical"]): latent batches {N, D} at t in [0, 1].
-- Spherical interpolation (Shoemake's slerp) keeps Gaussian latents at a typical norm, so
-- the midpoints decode to samples as plausible as the endpoints.
function M.interpolate(z0, z1, t, mode)
  local gen = require "gen"
  if mode == "linear" then return z0 * (1 - t) + z1 * t end
  if mode ~= nil and mode ~= "spherical" then error("gen.models.interpolate: mode must be \"linear\" or \"spherical\"", 2) end
  local a, b = z0:double():totable(), z1:double():totable()
  local w0, w1 = {}, {}
  for i = 1, #a do
    local dot, na, nb = 0, 0, 0
    for j = 1, #a[i] do dot, na, nb = dot + a[i][j] * b[i][j], na + a[i][j] ^ 2, nb + b[i][j] ^ 2 end
    local omega = math.acos(math.max(-1, math.min(1, dot / math.sqrt(na * nb))))
    local s = math.sin(omega)
    w0[i] = { s > 1e-6 and math.sin((1 - t) * omega) / s or 1 - t }
    w1[i] = { s > 1e-6 and math.sin(t * omega) / s or t }
  end
  return z0 * gen.tensor(w0, z0.dtype) + z1 * gen.tensor(w1, z0.dtype)
end

return M
