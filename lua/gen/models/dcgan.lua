--- DCGAN for 28x28 images (Radford et al., 2016), the classic layout:
--   G: z(100) -> Linear -> BN -> ReLU -> {128,7,7} -> ConvT 128->64 (k4 s2 p1) -> BN -> ReLU
--        -> ConvT 64->C (k4 s2 p1) -> Tanh                                   gives {N, C, 28, 28}
--   D: x -> Conv C->64 (k4 s2 p1) -> LeakyReLU(0.2) -> Conv 64->128 (k4 s2 p1) -> BN
--        -> LeakyReLU(0.2) -> Flatten -> Linear -> one logit
-- Weights start as N(0, 0.02) (BN weights N(1, 0.02)), as in the paper. Parameter names match
-- the PyTorch twin in spec/fixtures/make_dcgan_fixture.py (net.0.weight ...), so its state dict
-- loads as-is.
--
-- With classes = K > 0 both become class-conditional (a conditional DCGAN, after Mirza &
-- Osindero, 2014): G concatenates a learned K-dimensional label embedding to z, and D sees the
-- label as one more input channel, an embedding of the class into an H x W map. Both then take
-- labels (int64 {N}, 1..K) as a second argument.
local gen = require "gen"
local nn = gen.nn

local M = {}

-- The labels a conditional model was given, checked: int64 {n} (the embedding checks the range).
local function checked_labels(module, labels, n)
  if not gen.is_tensor(labels) or labels.dtype ~= "int64" or labels:dim() ~= 1 or labels:size(1) ~= n then
    error(string.format("%s: expected labels as an int64 tensor {%d} (classes = %d), got %s", module.__name, n,
      module.classes, gen.is_tensor(labels) and (labels.dtype .. " {" .. table.concat(labels.shape, ",") .. "}")
      or type(labels)), 3)
  end
  return labels
end

-- N(0, 0.02) weights for convolutions and linear layers, N(1, 0.02) for batch-norm scales.
local function dcgan_init(seq, generator)
  local g = generator and { generator = generator } or nil
  for i = 1, #seq do
    local m = seq:get(i)
    if m.weight then
      if m.num_features then nn.init.normal_(m.weight, 1, 0.02, g) else nn.init.normal_(m.weight, 0, 0.02, g) end
    end
    if m.bias then nn.init.zeros_(m.bias) end
  end
end

M.Generator = nn.Module:extend("DCGANGenerator")
--- Generator{z_dim = 100, channels = 1, width = 64, classes = 0, generator = g}
function M.Generator:init(opts)
  opts = opts or {}
  local z, c, w = opts.z_dim or 100, opts.channels or 1, opts.width or 64
  self.z_dim, self.classes = z, opts.classes or 0
  if self.classes > 0 then self.embed = nn.Embedding(self.classes, self.classes) end
  self.net = nn.Sequential(
    nn.Linear(z + self.classes, 2 * w * 7 * 7, { bias = false }),
    nn.BatchNorm1d(2 * w * 7 * 7),
    nn.ReLU(),
    nn.Unflatten(2, { 2 * w, 7, 7 }),
    nn.ConvTranspose2d(2 * w, w, 4, { stride = 2, padding = 1, bias = false }),
    nn.BatchNorm2d(w),
    nn.ReLU(),
    nn.ConvTranspose2d(w, c, 4, { stride = 2, padding = 1 }),
    nn.Tanh())
  dcgan_init(self.net, opts.generator)
end
function M.Generator:forward(z, labels)
  if self.classes > 0 then z = gen.cat({ z, self.embed(checked_labels(self, labels, z:size(1))) }, 2) end
  return self.net(z)
end

M.Discriminator = nn.Module:extend("DCGANDiscriminator")
--- Discriminator{channels = 1, width = 64, classes = 0}: returns logits {N, 1}.
function M.Discriminator:init(opts)
  opts = opts or {}
  local c, w = opts.channels or 1, opts.width or 64
  self.classes = opts.classes or 0
  if self.classes > 0 then self.embed = nn.Embedding(self.classes, 28 * 28) end
  self.net = nn.Sequential(
    nn.Conv2d(c + (self.classes > 0 and 1 or 0), w, 4, { stride = 2, padding = 1 }),
    nn.LeakyReLU(0.2),
    nn.Conv2d(w, 2 * w, 4, { stride = 2, padding = 1, bias = false }),
    nn.BatchNorm2d(2 * w),
    nn.LeakyReLU(0.2),
    nn.Flatten(),
    nn.Linear(2 * w * 7 * 7, 1))
  dcgan_init(self.net, opts.generator)
end
function M.Discriminator:forward(x, labels)
  if self.classes > 0 then
    local n = x:size(1)
    x = gen.cat({ x, self.embed(checked_labels(self, labels, n)):view(n, 1, 28, 28) }, 2)
  end
  return self.net(x)
end

return M
