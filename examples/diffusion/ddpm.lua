-- Denoising diffusion (Ho et al., 2020) on Fashion-MNIST padded to 32x32, with a small UNet; by
-- default the VP process with eps-prediction, sampled by DDIM in 50 steps. Any process,
-- parameterization and sampler of gen.diffusion (see gen.diffusion.cli for every option):
--   bin/gen examples/diffusion/ddpm.lua --epochs 10
--   bin/gen examples/diffusion/ddpm.lua --sample 64 [--sampler ddim --sample-steps 50 --eta 0 | --sampler ddpm]
--   bin/gen examples/diffusion/ddpm.lua --process edm --parameterization edm --out runs/edm --steps 4000
--   bin/gen examples/diffusion/ddpm.lua --out runs/edm --sample 64 --sampler heun --schedule karras --sample-steps 18
--   bin/gen examples/diffusion/ddpm.lua --sample 8 --init-image shirt.png --strength 0.5 [--mask keep.png]
--   bin/gen examples/diffusion/ddpm.lua --sample 100 --classifier runs/noisy_classifier --classifier-scale 2 --class 3
--   bin/gen examples/diffusion/ddpm.lua --learn-variance --betas cosine --out runs/iddpm --bound 100   (improved DDPM)
local gen = require "gen"
local unet = require "gen.models.unet"
local experiment = require "gen.experiment"
local dcli = require "gen.diffusion.cli"

local run = experiment.parse("ddpm", arg, dcli.defaults { epochs = 10, batch = 32, lr = 2e-4, ema = 0.999,
  process = "vp", parameterization = "eps", sampler = "ddim", clip = 1.0 })
local d = dcli.build(run)
gen.manual_seed(run.seed)
local model = unet.UNet { widths = { 32, 64, 64 }, adaptive_norm = run.adaptive_norm, out_channels = d.out_channels }
local opt = gen.optim.AdamW(model, { lr = run.lr })
local ema = gen.optim.EMA(model, run.ema)

local function step(x)
  opt:zero_grad()
  local loss = d.loss(model, x)
  loss:backward()
  opt:step()
  ema:update()
  return { loss = loss:item() }
end

-- Samples with the EMA weights (unless --raw-weights); 32x32 images cropped back to 28x28. With
-- --classifier, classes as --class says (or cycling), for the classifier's guidance.
local function sample(n, _, draw)
  return d.sample_images(model, ema, n, run.classifier ~= "" and experiment.class_labels(run, n, 10, draw) or nil, draw)
end

experiment.train(run, {
  state = { model = model, optimizer = opt, ema = ema, diffusion = d.settings },
  data = gen.data.fashion_mnist { split = "train" },
  transform = { pad = 2 },
  losses = { "loss" },
  step = step,
  sample = sample,
})
d.with_sampling_weights(ema, d.report_bound, model) -- with --bound N
