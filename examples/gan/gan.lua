-- The original GAN (Goodfellow et al., 2014) with MLPs on Fashion-MNIST.
--   bin/gen examples/gan/gan.lua --epochs 20 --loss minimax|nonsaturating
local gen = require "gen"
local gan = require "gen.gan"
local mlp = require "gen.models.gan"
local experiment = require "gen.experiment"

local run = experiment.parse("gan", arg, { epochs = 20, lr = 2e-4, z_dim = 64,
  loss = experiment.choice("nonsaturating", { "nonsaturating", "minimax" }) })
gen.manual_seed(run.seed)
local G, D = mlp.Generator { z_dim = run.z_dim }, mlp.Discriminator()
local opt_g = gen.optim.Adam(G, { lr = run.lr, betas = { 0.5, 0.999 } })
local opt_d = gen.optim.Adam(D, { lr = run.lr, betas = { 0.5, 0.999 } })

local function step(x)
  local generated = G(gen.randn(x:size(1), run.z_dim))
  opt_d:zero_grad()
  local loss_d = gan.discriminator_loss(D(x), D(generated:detach()))
  loss_d:backward()
  opt_d:step()
  opt_g:zero_grad()
  local loss_g = gan.generator_loss(D(generated), run.loss)
  loss_g:backward()
  opt_g:step()
  return { loss_d = loss_d:item(), loss_g = loss_g:item() }
end

experiment.train(run, {
  state = { G = G, D = D, opt_g = opt_g, opt_d = opt_d },
  data = gen.data.fashion_mnist { split = "train" },
  losses = { "loss_d", "loss_g" },
  step = step,
  sample = function(n) return G(gen.randn(n, run.z_dim)) end,
})
