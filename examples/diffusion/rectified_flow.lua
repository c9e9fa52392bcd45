-- Class-conditional rectified flow (Liu et al., 2023) with classifier-free guidance (Ho &
-- Salimans, 2022) on Fashion-MNIST padded to 32x32: the straight path, velocity prediction and
-- Euler steps uniform in t by default; any process, parameterization and sampler of gen.diffusion
-- (see gen.diffusion.cli).
--   bin/gen examples/diffusion/rectified_flow.lua --epochs 10
--   bin/gen examples/diffusion/rectified_flow.lua --sample 100 --class 3 --guidance 2.0 [--sampler heun --sample-steps 13]
local gen = require "gen"
local unet = require "gen.models.unet"
local experiment = require "gen.experiment"
local dcli = require "gen.diffusion.cli"

local run = experiment.parse("rectified_flow", arg, dcli.defaults { epochs = 10, batch = 32, lr = 2e-4, sample_steps = 50,
  label_dropout = 0.1, guidance = 2.0, ema = 0.999, process = "rectified", parameterization = "velocity", sampler = "euler" })
local d = dcli.build(run)
gen.manual_seed(run.seed)
local classes = 10
local model = unet.UNet { widths = { 32, 64, 64 }, classes = classes, adaptive_norm = run.adaptive_norm,
  out_channels = d.out_channels }
local opt = gen.optim.AdamW(model, { lr = run.lr })
local ema = gen.optim.EMA(model, run.ema)

local function step(x, y)
  opt:zero_grad()
  local loss = d.loss(model, x, y, { label_dropout = run.label_dropout })
  loss:backward()
  opt:step()
  ema:update()
  return { loss = loss:item() }
end

-- --class K draws class K; otherwise the classes cycle along the rows of the grid.
local function sample(n, _, draw) return d.sample_images(model, ema, n, experiment.class_labels(run, n, classes, draw), draw) end

experiment.train(run, {
  state = { model = model, optimizer = opt, ema = ema, diffusion = d.settings },
  data = gen.data.fashion_mnist { split = "train" },
  transform = { pad = 2 },
  losses = { "loss" },
  step = step,
  sample = sample,
  nrow = 10,
})
