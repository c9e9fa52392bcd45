--- DCGAN (Radford et al., 2016) for square images of 28, 32 or 64 pixels. At 28 (the default):
--   G: z(100) -> Linear -> BN -> ReLU -> {128,7,7} -> ConvT 128->64 (k4 s2 p1) -> BN -> ReLU
--        -> ConvT 64->C (k4 s2 p1) -> Tanh                                   gives {N, C, 28, 28}
--   D: x -> Conv C->64 (k4 s2 p1) -> LeakyReLU(0.2) -> Conv 64->128 (k4 s2 p1) -> BN
--        -> LeakyReLU(0.2) -> Flatten -> Linear -> one logit
-- At 32 the base grid is 8x8 instead of 7x7; at 64 one more stride-2 stage doubles the widths
-- (256 -> 128 -> 64 in G). Weights start as N(0, 0.02) (BN weights N(1, 0.02)), as in the paper.
-- Parameter names match the PyTorch twin in spec/fixtures/make_dcgan_fixture.py (net.0.weight ...),
-- so its state dict loads as-is.
--
-- With classes = K > 0 both become class-conditional (a conditional DCGAN, after Mirza &
-- Osindero, 2014): G concatenates a learned K-dimensional label embedding to z, and D sees the
-- label as one more input channel, an embedding of the class into an H x W map. Both then take
-- labels (int64 {N}, 1..K) as a second argument.
--
-- The discriminator's norm is an option: "batch" (the paper's), "layer" (each sample's C x H x W
-- normalized on its own, with a per-channel scale and shift: GroupNorm with one group), or
-- "none". A gradient penalty (WGAN-GP) asks for the per-sample gradient of D, which batch
-- statistics tie across the batch, so Gulrajani et al. (2017) replace batch norm by layer norm.
local gen = require "gen"
local nn = gen.nn
local blocks = require "gen.nn.blocks"
local models = require "gen.models"

local M = {}

-- resolution -> the side of the first (smallest) grid and the number of stride-2 stages
local layouts = { [28] = { base = 7, stages = 2 }, [32] = { base = 8, stages = 2 }, [64] = { base = 8, stages = 3 } }

-- N(0, 0.02) weights for convolutions and linear layers, N(1, 0.02) for the norms' scales.
local function dcgan_init(seq, generator)
  local g = generator and { generator = generator } or nil
  for i = 1, #seq do
    local m = seq:get(i)
    if m.weight then
      if m.num_features or m.num_channels then nn.init.normal_(m.weight, 1, 0.02, g) else nn.init.normal_(m.weight, 0, 0.02, g) end
    end
    if m.bias then nn.init.zeros_(m.bias) end
  end
end

M.Generator = nn.Module:extend("DCGANGenerator")
--- Generator{z_dim = 100, channels = 1, resolution = 28, width = 64, classes = 0, generator = g}
function M.Generator:init(opts)
  opts = opts or {}
  local c, r = models.image_shape("DCGANGenerator", opts, layouts)
  local z, w, layout = opts.z_dim or 100, opts.width or 64, layouts[r]
  local top, base = w << (layout.stages - 1), layout.base
  self.z_dim, self.classes, self.resolution = z, opts.classes or 0, r
  if self.classes > 0 then self.embed = blocks.ClassEmbedding(self.classes, self.classes) end
  local layers = {
    nn.Linear(z + self.classes, top * base * base, { bias = false }),
    nn.BatchNorm1d(top * base * base),
    nn.ReLU(),
    nn.Unflatten(2, { top, base, base }),
  }
  local width = top
  for _ = 2, layout.stages do -- each stage but the last doubles the side and halves the width
    layers[#layers + 1] = nn.ConvTranspose2d(width, width // 2, 4, { stride = 2, padding = 1, bias = false })
    layers[#layers + 1] = nn.BatchNorm2d(width // 2)
    layers[#layers + 1] = nn.ReLU()
    width = width // 2
  end
  layers[#layers + 1] = nn.ConvTranspose2d(width, c, 4, { stride = 2, padding = 1 })
  layers[#layers + 1] = nn.Tanh()
  self.net = nn.Sequential(layers)
  dcgan_init(self.net, opts.generator)
end
function M.Generator:forward(z, labels)
  if self.classes > 0 then z = gen.cat({ z, self.embed(labels, z:size(1), self.__name) }, 2) end
  return self.net(z)
end

local discriminator_norms = {
  batch = function(c) return nn.BatchNorm2d(c) end,
  layer = function(c) return nn.GroupNorm(1, c) end,
}

M.Discriminator = nn.Module:extend("DCGANDiscriminator")
--- Discriminator{channels = 1, resolution = 28, width = 64, classes = 0, norm = "batch" | "layer" |
-- "none"}: returns logits {N, 1}.
function M.Discriminator:init(opts)
  opts = opts or {}
  local c, r = models.image_shape("DCGANDiscriminator", opts, layouts)
  local norm = opts.norm or "batch"
  if norm ~= "none" and not discriminator_norms[norm] then
    error(string.format("DCGANDiscriminator: norm must be \"batch\", \"layer\" or \"none\", got %s", tostring(norm)), 3)
  end
  self.norm = norm
  local w, layout = opts.width or 64, layouts[r]
  self.classes, self.resolution = opts.classes or 0, r
  if self.classes > 0 then self.embed = blocks.ClassEmbedding(self.classes, r * r) end
  local layers = { nn.Conv2d(c + (self.classes > 0 and 1 or 0), w, 4, { stride = 2, padding = 1 }), nn.LeakyReLU(0.2) }
  local width = w
  for _ = 2, layout.stages do
    -- without a norm the convolution needs its own bias
    layers[#layers + 1] = nn.Conv2d(width, 2 * width, 4, { stride = 2, padding = 1, bias = norm == "none" })
    if norm ~= "none" then layers[#layers + 1] = discriminator_norms[norm](2 * width) end
    layers[#layers + 1] = nn.LeakyReLU(0.2)
    width = 2 * width
  end
  layers[#layers + 1] = nn.Flatten()
  layers[#layers + 1] = nn.Linear(width * layout.base * layout.base, 1)
  self.net = nn.Sequential(layers)
  dcgan_init(self.net, opts.generator)
end
function M.Discriminator:forward(x, labels)
  if self.classes > 0 then
    local n = x:size(1)
    x = gen.cat({ x, self.embed(labels, n, self.__name):view(n, 1, self.resolution, self.resolution) }, 2)
  end
  return self.net(x)
end

return M
