-- A denoising autoencoder (Vincent et al., 2008) on Fashion-MNIST: the same networks as ae.lua,
-- trained to reconstruct the clean image from a corrupted one.
--   bin/gen examples/autoencoder/dae.lua --noise gaussian|mask|saltpepper|erase --level L [--probe]
-- --level is the noise's sigma (gaussian), the fraction of pixels hit (mask, saltpepper) or the
-- erased block's side (erase). Reports the test MSE and PSNR on clean and on corrupted inputs.
local gen = require "gen"
local models = require "gen.models.autoencoder"
local autoencoder = require "gen.autoencoder"
local experiment = require "gen.experiment"
local aecli = require "gen.autoencoder.cli"

local run = experiment.parse("dae", arg, { epochs = 5, batch = 128, lr = 1e-3, latent = 32,
  model = experiment.choice("conv", { "conv", "mlp" }),
  noise = experiment.choice("gaussian", { "gaussian", "mask", "saltpepper", "erase" }), level = 0.3,
  probe = false, probe_train = 10000, probe_test = 0, test_images = 10000 })
gen.manual_seed(run.seed)
local model = run.model == "mlp" and models.MLP { latent = run.latent } or models.Conv { latent = run.latent }
local opt = gen.optim.Adam(model, { lr = run.lr })
local corrupt = autoencoder.corruptions.by_name(run.noise, run.level)

local function step(x)
  opt:zero_grad()
  local loss = autoencoder.reconstruction_loss(model, x, corrupt) -- || f(corrupt(x)) - x ||^2
  loss:backward()
  opt:step()
  return { loss = loss:item() }
end

-- Reconstructions of the first n test images (rows: original | corrupted | reconstruction).
local test = gen.data.fashion_mnist { split = "test" }
local test_images = test.images:narrow(1, 1, math.min(run.test_images, test.images:size(1)))
local function sample(n, _, draw)
  local first = draw and draw.first or 1 -- a batch of a --sample draw: test images first..first+n-1
  local x = test.images:narrow(1, first, n):float():div(255)
  local noisy = corrupt(x, gen.Generator(first))
  local recon = model(noisy)
  if first == 1 then experiment.write_reconstructions(run.out .. "/reconstructions.png", { x, noisy, recon }) end
  return recon * 2 - 1
end

aecli.train(run, { model = model, optimizer = opt, step = step, sample = sample,
  report = function() aecli.report_reconstruction(run, model, test_images, corrupt) end })
