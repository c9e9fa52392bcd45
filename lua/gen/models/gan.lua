--- GAN pieces: an MLP generator/discriminator pair (Goodfellow et al., 2014) and the two
-- generator losses.
--
-- With D(x) = sigmoid(logit(x)), the discriminator minimizes
--     L_D = -E[log D(x)] - E[log(1 - D(G(z)))]
-- and the generator either minimizes the original minimax objective
--     L_G = E[log(1 - D(G(z)))]          ("minimax": saturates when D rejects G's samples)
-- or maximizes log D(G(z)), i.e. minimizes the non-saturating
--     L_G = -E[log D(G(z))]              ("nonsaturating", the paper's practical variant)
local gen = require "gen"
local nn = gen.nn

local M = {}

--- Discriminator loss from logits on real and generated samples.
function M.discriminator_loss(real_logits, fake_logits)
  return gen.bce_with_logits(real_logits, gen.ones_like(real_logits)) + gen.bce_with_logits(fake_logits, gen.zeros_like(fake_logits))
end

--- Generator loss from the discriminator's logits on generated samples; kind is "nonsaturating"
-- (default) or "minimax".
function M.generator_loss(fake_logits, kind)
  if kind == "minimax" then
    -- log(1 - D) = -BCE(logits, 0)
    return -gen.bce_with_logits(fake_logits, gen.zeros_like(fake_logits))
  elseif kind == nil or kind == "nonsaturating" then
    return gen.bce_with_logits(fake_logits, gen.ones_like(fake_logits))
  end
  error("gen.models.gan.generator_loss: kind must be \"nonsaturating\" or \"minimax\", got " .. tostring(kind), 2)
end

M.Generator = nn.Module:extend("MLPGenerator")
--- MLPGenerator{z_dim = 64, hidden = {256, 512}, shape = {1, 28, 28}, classes = 0}: z -> image in
-- [-1, 1]. With classes > 0 a label embedding is concatenated to z (a conditional GAN).
function M.Generator:init(opts)
  opts = opts or {}
  self.z_dim, self.shape, self.classes = opts.z_dim or 64, opts.shape or { 1, 28, 28 }, opts.classes or 0
  local out = self.shape[1] * self.shape[2] * self.shape[3]
  local layers, width = {}, self.z_dim + (self.classes > 0 and self.classes or 0)
  if self.classes > 0 then self.embed = nn.Embedding(self.classes, self.classes) end
  for _, h in ipairs(opts.hidden or { 256, 512 }) do
    layers[#layers + 1] = nn.Linear(width, h)
    layers[#layers + 1] = nn.LeakyReLU(0.2)
    width = h
  end
  layers[#layers + 1] = nn.Linear(width, out)
  layers[#layers + 1] = nn.Tanh()
  self.net = nn.Sequential(layers)
end
function M.Generator:forward(z, labels)
  if self.embed then z = gen.cat({ z, self.embed(labels) }, 2) end
  return self.net(z):view(z:size(1), table.unpack(self.shape))
end

M.Discriminator = nn.Module:extend("MLPDiscriminator")
--- MLPDiscriminator{hidden = {512, 256}, shape = {1, 28, 28}, classes = 0}: image -> one logit.
function M.Discriminator:init(opts)
  opts = opts or {}
  self.classes = opts.classes or 0
  local shape = opts.shape or { 1, 28, 28 }
  local width = shape[1] * shape[2] * shape[3] + self.classes
  if self.classes > 0 then self.embed = nn.Embedding(self.classes, self.classes) end
  local layers = {}
  for _, h in ipairs(opts.hidden or { 512, 256 }) do
    layers[#layers + 1] = nn.Linear(width, h)
    layers[#layers + 1] = nn.LeakyReLU(0.2)
    width = h
  end
  layers[#layers + 1] = nn.Linear(width, 1)
  self.net = nn.Sequential(layers)
end
function M.Discriminator:forward(x, labels)
  x = x:flatten(2)
  if self.embed then x = gen.cat({ x, self.embed(labels) }, 2) end
  return self.net(x)
end

return M
