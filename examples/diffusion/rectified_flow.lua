-- Class-conditional rectified flow (Liu et al., 2023) with classifier-free guidance (Ho &
-- Salimans, 2022) on Fashion-MNIST padded to 32x32.
--   bin/gen examples/diffusion/rectified_flow.lua --epochs 10
--   bin/gen examples/diffusion/rectified_flow.lua --sample 100 --class 3 --guidance 2.0
local gen = require "gen"
local diffusion = require "gen.diffusion"
local unet = require "gen.models.unet"
local experiment = require "gen.experiment"

local run = experiment.parse("rectified_flow", arg, { epochs = 10, batch = 32, lr = 2e-4, sample_steps = 50, label_dropout = 0.1,
  guidance = 2.0, ema = 0.999 })
gen.manual_seed(run.seed)
local classes = 10
local model = unet.UNet { widths = { 32, 64, 64 }, classes = classes }
local opt = gen.optim.AdamW(model, { lr = run.lr })
local ema = gen.optim.EMA(model, run.ema)

local function step(x, y)
  opt:zero_grad()
  local loss = diffusion.rectified_flow_loss(model, x, y, { label_dropout = run.label_dropout })
  loss:backward()
  opt:step()
  ema:update()
  return { loss = loss:item() }
end

-- --class K draws class K; otherwise the classes cycle along the rows of the grid.
local function sample(n)
  local labels = experiment.class_labels(run, n, classes)
  ema:swap()
  local x = diffusion.rectified_flow_sample(model, { n, 1, 32, 32 }, { steps = run.sample_steps, labels = labels,
    guidance = run.guidance })
  ema:swap()
  return x:narrow(3, 3, 28):narrow(4, 3, 28), labels
end

experiment.train(run, {
  state = { model = model, optimizer = opt, ema = ema },
  data = gen.data.fashion_mnist { split = "train" },
  transform = { pad = 2 },
  losses = { "loss" },
  step = step,
  sample = sample,
  nrow = 10,
})
