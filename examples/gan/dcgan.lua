-- DCGAN on Fashion-MNIST (Radford et al., 2016): the classic 28x28 generator and discriminator
-- (gen.models.dcgan), Adam(2e-4, betas 0.5/0.999), binary cross-entropy on logits.
--   bin/gen examples/gan/dcgan.lua --epochs 5             train; writes runs/dcgan/{samples.png, log.csv, ...}
--   bin/gen examples/gan/dcgan.lua --sample 10000         samples from the checkpoint
local gen = require "gen"
local gan = require "gen.gan"
local dcgan = require "gen.models.dcgan"
local experiment = require "gen.experiment"

local run = experiment.parse("dcgan", arg, { epochs = 5, lr = 2e-4, z_dim = 100,
  loss = experiment.choice("nonsaturating", { "nonsaturating", "minimax" }) })
gen.manual_seed(run.seed)
local G, D = dcgan.Generator { z_dim = run.z_dim }, dcgan.Discriminator()
local opt_g = gen.optim.Adam(G, { lr = run.lr, betas = { 0.5, 0.999 } })
local opt_d = gen.optim.Adam(D, { lr = run.lr, betas = { 0.5, 0.999 } })

-- One discriminator update on real and generated images, then one generator update. The
-- generator loss is the non-saturating -log D(G(z)) (or the original minimax log(1 - D(G(z)))).
local function step(x)
  return gan.step(G, D, opt_g, opt_d, x, gen.randn(x:size(1), run.z_dim), { loss = run.loss })
end

-- Samples with batch statistics (train-mode batch norm), as the DCGAN paper's generator runs;
-- running averages lag far behind a generator that is still moving.
local function sample(n, _, draw) return G(experiment.noise(draw, n, run.z_dim)) end

experiment.train(run, {
  state = { G = G, D = D, opt_g = opt_g, opt_d = opt_d },
  data = gen.data.fashion_mnist { split = "train" },
  losses = { "loss_d", "loss_g" },
  step = step,
  sample = sample,
})
