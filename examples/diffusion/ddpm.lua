-- Denoising diffusion (Ho et al., 2020) on Fashion-MNIST padded to 32x32, with a small UNet.
--   bin/gen examples/diffusion/ddpm.lua --epochs 10
--   bin/gen examples/diffusion/ddpm.lua --sample 64 [--sampler ddim --sample-steps 50 --eta 0 | --sampler ddpm]
local gen = require "gen"
local diffusion = require "gen.diffusion"
local unet = require "gen.models.unet"
local experiment = require "gen.experiment"

local run = experiment.parse("ddpm", arg, { epochs = 10, batch = 32, lr = 2e-4, timesteps = 1000,
  schedule = experiment.choice("linear", { "linear", "cosine" }), sampler = experiment.choice("ddim", { "ddim", "ddpm" }), sample_steps = 50, eta = 0.0, ema = 0.999 })
gen.manual_seed(run.seed)
local model = unet.UNet { widths = { 32, 64, 64 } }
local opt = gen.optim.AdamW(model, { lr = run.lr })
local ema = gen.optim.EMA(model, run.ema)
local schedule = run.schedule == "cosine" and diffusion.cosine_schedule(run.timesteps) or diffusion.linear_schedule(run.timesteps)

local function step(x)
  opt:zero_grad()
  local loss = diffusion.ddpm_loss(model, schedule, x)
  loss:backward()
  opt:step()
  ema:update()
  return { loss = loss:item() }
end

-- Samples with the EMA weights; 32x32 images cropped back to 28x28.
local function sample(n)
  ema:swap()
  local shape = { n, 1, 32, 32 }
  local x = run.sampler == "ddim" and diffusion.ddim_sample(model, schedule, shape, { steps = run.sample_steps, eta = run.eta })
    or diffusion.ddpm_sample(model, schedule, shape)
  ema:swap()
  return x:narrow(3, 3, 28):narrow(4, 3, 28)
end

experiment.train(run, {
  state = { model = model, optimizer = opt, ema = ema },
  data = gen.data.fashion_mnist { split = "train" },
  transform = { pad = 2 },
  losses = { "loss" },
  step = step,
  sample = sample,
})
