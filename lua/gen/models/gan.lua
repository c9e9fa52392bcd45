--- An MLP generator/discriminator pair (Goodfellow et al., 2014), optionally class-conditional
-- (a label embedding concatenated to z and to the flattened image; Mirza & Osindero, 2014).
-- The losses are in gen.gan (also reachable here under their old names).
local gen = require "gen"
local nn = gen.nn
local blocks = require "gen.nn.blocks"
local models = require "gen.models"
local losses = require "gen.gan"

local M = {}
M.discriminator_loss, M.generator_loss = losses.discriminator_loss, losses.generator_loss -- old names

local function image_shape(who, opts)
  if opts.shape then return opts.shape end
  local c, r = models.image_shape(who, opts)
  return { c, r, r }
end

M.Generator = nn.Module:extend("MLPGenerator")
--- MLPGenerator{z_dim = 64, hidden = {256, 512}, channels = 1, resolution = 28, classes = 0}:
-- z -> image in [-1, 1] (or shape = {C, H, W} instead of channels and resolution). With classes > 0
-- a label embedding is concatenated to z (a conditional GAN).
function M.Generator:init(opts)
  opts = opts or {}
  self.z_dim, self.shape, self.classes = opts.z_dim or 64, image_shape("MLPGenerator", opts), opts.classes or 0
  local out = self.shape[1] * self.shape[2] * self.shape[3]
  local layers, width = {}, self.z_dim + (self.classes > 0 and self.classes or 0)
  if self.classes > 0 then self.embed = blocks.ClassEmbedding(self.classes, self.classes) end
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
  if self.embed then z = gen.cat({ z, self.embed(labels, z:size(1), self.__name) }, 2) end
  return self.net(z):view(z:size(1), table.unpack(self.shape))
end

M.Discriminator = nn.Module:extend("MLPDiscriminator")
--- MLPDiscriminator{hidden = {512, 256}, channels = 1, resolution = 28, classes = 0}: image -> one logit.
function M.Discriminator:init(opts)
  opts = opts or {}
  self.classes = opts.classes or 0
  local shape = image_shape("MLPDiscriminator", opts)
  local width = shape[1] * shape[2] * shape[3] + self.classes
  if self.classes > 0 then self.embed = blocks.ClassEmbedding(self.classes, self.classes) end
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
  if self.embed then x = gen.cat({ x, self.embed(labels, x:size(1), self.__name) }, 2) end
  return self.net(x)
end

return M
