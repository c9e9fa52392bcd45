--- gen.autoencoder.cli: what the autoencoder examples (ae, dae, mae) share on top of gen.experiment:
-- Fashion-MNIST in [0, 1], one loss, the test report after training, and with --probe a linear
-- probe and kNN of the frozen encoder's features (model:features), also for a checkpoint loaded by
-- --sample N --probe.
local gen = require "gen"
local autoencoder = require "gen.autoencoder"
local experiment = require "gen.experiment"

local M = {}

--- train(run, {model, optimizer, step, sample, report}): report() prints the test errors.
function M.train(run, spec)
  local function probe() experiment.probe(run, function(x) return spec.model:features(x) end) end
  experiment.train(run, {
    state = { model = spec.model, optimizer = spec.optimizer },
    data = gen.data.fashion_mnist { split = "train" },
    transform = { range = { 0, 1 } },
    losses = { "loss" },
    step = spec.step,
    sample = spec.sample,
    scheduled = spec.scheduled,
    after = function()
      spec.report()
      if run.probe then probe() end
    end,
  })
  if run.sample > 0 and run.probe then probe() end
end

--- Prints the test MSE and PSNR of model on clean images and on images corrupted by corrupt (the
-- run's --noise at --level).
function M.report_reconstruction(run, model, images, corrupt)
  local mse, psnr = autoencoder.test_mse(model, images)
  local nmse, npsnr = autoencoder.test_mse(model, images, { corrupt = corrupt, generator = gen.Generator(2) })
  print(string.format("test (%d images): MSE %.5f (PSNR %.2f dB); on %s noise %g: MSE %.5f (PSNR %.2f dB)", images:size(1), mse, psnr,
    run.noise, run.level, nmse, npsnr))
end

return M
