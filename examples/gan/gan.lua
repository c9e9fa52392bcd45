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
  return gan.step(G, D, opt_g, opt_d, x, gen.randn(x:size(1), run.z_dim), { loss = run.loss })
end

experiment.train(run, {
  state = { G = G, D = D, opt_g = opt_g, opt_d = opt_d },
  data = gen.data.fashion_mnist { split = "train" },
  losses = { "loss_d", "loss_g" },
  step = step,
  sample = function(n, _, draw) return G(experiment.noise(draw, n, run.z_dim)) end,
})
