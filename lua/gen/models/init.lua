--- gen.models: architectures only, each sized by options (resolution, channels, classes); the
-- objectives and samplers live with their family (gen.gan, gen.autoencoder, gen.diffusion).
--   gen.models.gan     MLP generator/discriminator (Goodfellow et al., 2014)
--   gen.models.dcgan   DCGAN generator/discriminator for 28, 32 or 64 pixels (Radford et al., 2016)
--   gen.models.vae     MLP and convolutional VAEs (Kingma & Welling, 2014)
--   gen.models.unet    the diffusion UNet (Ho et al., 2020)
--   gen.models.noisy_classifier  a classifier of noisy images for classifier guidance (Dhariwal & Nichol, 2021)
--   gen.models.realnvp RealNVP (Dinh et al., 2017) and gen.models.glow Glow (Kingma & Dhariwal, 2018)
--   gen.models.gpt     a causal transformer over tokens with a key/value cache (Radford et al., 2019)
--   gen.models.stylegan  StyleGAN / StyleGAN2 generator and residual discriminator at 28 or 32 pixels (Karras et al., 2019, 2020)
local M = {}

local known = { gan = true, dcgan = true, vae = true, unet = true, vit = true, mae = true, autoencoder = true,
  noisy_classifier = true, realnvp = true, glow = true, vqvae = true, gpt = true,
  pixelcnn = true, stylegan = true }

-- Submodules load on first use. A broken model file raises its own load error here.
setmetatable(M, { __index = function(t, k)
  if not known[k] then return nil end
  local m = require("gen.models." .. k)
  rawset(t, k, m)
  return m
end })

--- The square image shape {channels, resolution, resolution} of a model's options, checked
-- against the resolutions the model supports. Defaults: 1 channel, 28 pixels.
function M.image_shape(who, opts, supported)
  local c, r = opts.channels or 1, opts.resolution or 28
  if math.type(c) ~= "integer" or c < 1 then error(string.format("%s: channels must be a positive integer, got %s", who, tostring(c)), 3) end
  if supported and not supported[r] then
    local list = {}
    for k in pairs(supported) do list[#list + 1] = k end
    table.sort(list)
    error(string.format("%s: resolution must be one of %s, got %s", who, table.concat(list, ", "), tostring(r)), 3)
  end
  return c, r
end

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
