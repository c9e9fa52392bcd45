-- A class-conditional GAN (Mirza & Osindero, 2014) on Fashion-MNIST: MLPs with label embeddings
-- (--model mlp), or the DCGAN with the label as an embedding added to z and an input map to D
-- (--model dcgan).
--   bin/gen examples/gan/cgan.lua --epochs 20
--   bin/gen examples/gan/cgan.lua --model dcgan --epochs 5
--   bin/gen examples/gan/cgan.lua --sample 100 --class 8       (100 bags; without --class, all classes)
local gen = require "gen"
local gan = require "gen.gan"
local mlp = require "gen.models.gan"
local dcgan = require "gen.models.dcgan"
local experiment = require "gen.experiment"

-- --z-dim 0 keeps the model's own default (64 for the MLP, 100 for the DCGAN)
local run = experiment.parse("cgan", arg, { epochs = 20, lr = 2e-4, z_dim = 0,
  loss = experiment.choice("nonsaturating", { "nonsaturating", "minimax" }), model = experiment.choice("mlp", { "mlp", "dcgan" }) })
gen.manual_seed(run.seed)
local family = ({ mlp = mlp, dcgan = dcgan })[run.model]
local G = family.Generator { z_dim = run.z_dim > 0 and run.z_dim or nil, classes = 10 }
local D = family.Discriminator { classes = 10 }
local opt_g = gen.optim.Adam(G, { lr = run.lr, betas = { 0.5, 0.999 } })
local opt_d = gen.optim.Adam(D, { lr = run.lr, betas = { 0.5, 0.999 } })

local function step(x, y)
  return gan.step(G, D, opt_g, opt_d, x, gen.randn(x:size(1), G.z_dim), { labels = y, loss = run.loss })
end

-- --class K draws class K; otherwise classes cycle 1..10 (rows of the sample grid).
local function sample(n, _, draw)
  local labels = experiment.class_labels(run, n, 10, draw)
  return G(experiment.noise(draw, n, G.z_dim), labels), labels
end

experiment.train(run, {
  state = { G = G, D = D, opt_g = opt_g, opt_d = opt_d },
  data = gen.data.fashion_mnist { split = "train" },
  losses = { "loss_d", "loss_g" },
  step = step,
  sample = sample,
  nrow = 10,
})
