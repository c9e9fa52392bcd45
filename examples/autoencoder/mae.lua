-- A masked autoencoder (He et al., 2022) on Fashion-MNIST: a ViT encoder sees a random 25% of
-- the 4x4 patches, a light decoder predicts the pixels of the masked ones.
--   bin/gen examples/autoencoder/mae.lua --steps 1000 [--mask-ratio 0.75] [--norm-pix] [--probe]
--   bin/gen examples/autoencoder/mae.lua --sample 16     (rows: original | masked | reconstruction)
-- Reports the test MSE and PSNR on the masked patches; --probe scores the frozen encoder's
-- features (probe.txt): the [CLS] output, or with --pool mean the mean of the patch outputs.
-- --lr-schedule cosine --warmup N: the paper's linear warm-up and cosine decay of the lr.
local gen = require "gen"
local mae = require "gen.models.mae"
local autoencoder = require "gen.autoencoder"
local experiment = require "gen.experiment"
local aecli = require "gen.autoencoder.cli"

local run = experiment.parse("mae", arg, experiment.lr_schedule_options { epochs = 5, batch = 128, lr = 1e-3, weight_decay = 0.05, mask_ratio = 0.75,
  norm_pix = false, patch = 4, dim = 128, depth = 4, heads = 4, decoder_dim = 64, decoder_depth = 2, decoder_heads = 4,
  pool = experiment.choice("cls", { "cls", "mean" }), probe = false, probe_train = 10000, probe_test = 0, test_images = 10000 })
if run.mask_ratio < 0 or run.mask_ratio >= 1 then
  experiment.fail(run.script, "option --mask-ratio must be in [0, 1), got " .. run.mask_ratio)
end
gen.manual_seed(run.seed)
local model = mae.MAE { patch = run.patch, dim = run.dim, depth = run.depth, heads = run.heads, decoder_dim = run.decoder_dim,
  decoder_depth = run.decoder_depth, decoder_heads = run.decoder_heads, pool = run.pool }
local opt = gen.optim.AdamW(model, { lr = run.lr, betas = { 0.9, 0.95 }, weight_decay = run.weight_decay })
local objective = { mask_ratio = run.mask_ratio, norm_pix = run.norm_pix }

local function step(x)
  opt:zero_grad()
  local loss = autoencoder.mae_loss(model, x, objective)
  loss:backward()
  opt:step()
  return { loss = loss:item() }
end

-- The first n test images, masked, and reconstructed: visible patches as they are, masked ones predicted.
local test = gen.data.fashion_mnist { split = "test" }
local test_images = test.images:narrow(1, 1, math.min(run.test_images, test.images:size(1)))
local function sample(n, _, draw)
  local first = draw and draw.first or 1 -- a batch of a --sample draw: test images first..first+n-1
  local x = test.images:narrow(1, first, n):float():div(255)
  local masking = autoencoder.random_masking(n, model.num_patches, { mask_ratio = run.mask_ratio, generator = gen.Generator(first) })
  local patches = model:patchify(x)
  local pred = autoencoder.mae.to_pixels(model(x, masking), patches, objective)
  local m = masking.mask:view(n, -1, 1)
  local masked = model:unpatchify(patches * (1 - m) + m * 0.5) -- masked patches grey
  local recon = model:unpatchify(patches * (1 - m) + pred * m)
  if first == 1 then experiment.write_reconstructions(run.out .. "/reconstructions.png", { x, masked, recon }) end
  return recon * 2 - 1
end

aecli.train(run, { model = model, optimizer = opt, scheduled = { opt }, step = step, sample = sample, report = function()
  local mse, psnr = autoencoder.mae.test_mse(model, test_images, { mask_ratio = run.mask_ratio, norm_pix = run.norm_pix,
    generator = gen.Generator(2) })
  print(string.format("test (%d images): MSE on masked patches %.5f (PSNR %.2f dB), mask ratio %g", test_images:size(1), mse, psnr, run.mask_ratio))
end })
