-- VQ-VAE (van den Oord et al., 2017) on Fashion-MNIST, and VQ-VAE-2 (Razavi et al., 2019) with
-- --levels 2: stage 1 of the priors over codes in this folder, which load it with --stage1 DIR.
--   bin/gen examples/autoregressive/vqvae.lua --epochs 2 [--levels 1|2] [--codebook-size 512] [--ema]
--   bin/gen examples/autoregressive/vqvae.lua --sample 16 [--fid 10000]   (reconstructions of test images, the test report)
-- One level codes a 28 x 28 image as 7 x 7 indices into --codebook-size vectors of --code-dim
-- numbers; two levels add a 14 x 14 bottom grid under the 7 x 7 top one. The loss is (3) of the
-- paper (gen.autoencoder.vqvae_loss); log.csv has the reconstruction MSE, the commitment loss, the
-- batch's codebook perplexity and the dead codes restarted at that step. At the end: the test
-- reconstruction MSE (pixels in [0, 1]) and the codebook perplexity over the test set's codes;
-- --fid N adds the FID/KID of the reconstructions of the first N test images against the test set.
local gen = require "gen"
local vqvae = require "gen.models.vqvae"
local autoencoder = require "gen.autoencoder"
local experiment = require "gen.experiment"

local run = experiment.parse("vqvae", arg, { epochs = 2, batch = 128, lr = 1e-3, levels = 1, codebook_size = 512,
  code_dim = 64, width = 64, beta = 0.25, ema = false, restart = 1.0, test_images = 10000, fid = 0 })
if run.levels ~= 1 and run.levels ~= 2 then experiment.fail(run.script, "option --levels must be 1 or 2, got " .. run.levels) end
gen.manual_seed(run.seed)
local model = vqvae.VQVAE { levels = run.levels, codebook_size = run.codebook_size, code_dim = run.code_dim,
  width = run.width, beta = run.beta, ema = run.ema, restart = run.restart }
local opt = gen.optim.Adam(model, { lr = run.lr })

local function step(x)
  opt:zero_grad()
  local loss, recon, q = autoencoder.vqvae_loss(model, x)
  loss:backward()
  opt:step()
  return { loss = loss:item(), recon = recon:item(), commitment = q.commitment_loss:item(), perplexity = q.perplexity, dead = q.dead }
end

-- Reconstructions of the first n test images (rows: original | reconstruction), through the codes.
local test = gen.data.fashion_mnist { split = "test" }
local function sample(n, _, draw)
  local first = draw and draw.first or 1 -- a batch of a --sample draw: test images first..first+n-1
  model:eval()
  local x = test.images:narrow(1, first, n):float():div(255)
  local recon = model:decode_indices(model:encode_indices(x)):clamp(0, 1)
  model:train()
  if first == 1 then experiment.write_reconstructions(run.out .. "/reconstructions.png", { x, recon }) end
  return recon * 2 - 1
end

-- Test MSE and the perplexity of the codes of the test images, per level.
local function report()
  model:eval()
  local images = test.images:narrow(1, 1, math.min(run.test_images, test.images:size(1)))
  local mse, psnr = autoencoder.test_mse(model, images)
  local counts = {}
  gen.no_grad(function()
    for i = 1, images:size(1), 500 do
      local x = images:narrow(1, i, math.min(500, images:size(1) - i + 1)):float():div(255)
      local codes = model:encode_indices(x)
      for level, c in pairs(gen.is_tensor(codes) and { codes = codes } or codes) do
        local flat = c:view(-1)
        counts[level] = (counts[level] or gen.zeros(model.codebook_size)):scatter_add(1, flat, gen.ones(flat:size(1)))
      end
    end
  end)
  local parts = {}
  for _, level in ipairs { "codes", "top", "bottom" } do
    if counts[level] then
      parts[#parts + 1] = string.format("%s%.1f of %d codes (%d unused)", level == "codes" and "" or level .. " ",
        gen.nn.VectorQuantizer.perplexity(counts[level]), model.codebook_size, counts[level]:eq(0):sum():item())
    end
  end
  local line = string.format("test (%d images): reconstruction MSE %.5f (PSNR %.2f dB); codebook perplexity %s", images:size(1), mse, psnr,
    table.concat(parts, ", "))
  if run.fid > 0 then
    local n, recon = math.min(run.fid, test.images:size(1)), {}
    gen.no_grad(function()
      for i = 1, n, 500 do
        local x = test.images:narrow(1, i, math.min(500, n - i + 1)):float():div(255)
        recon[#recon + 1] = model:decode_indices(model:encode_indices(x)):clamp(0, 1) * 2 - 1
      end
    end)
    local r = require("gen.metrics").evaluate(gen.cat(recon))
    line = line .. string.format("; reconstructions of %d test images: FID %.2f KID %.4f", n, r.fid, r.kid)
  end
  print(line)
  local f = assert(io.open(run.out .. "/test.txt", "w"))
  f:write(line, "\n")
  f:close()
  model:train()
end

experiment.train(run, {
  state = { model = model, optimizer = opt, stage1 = experiment.stage1_record("vqvae", model:config()) },
  data = gen.data.fashion_mnist { split = "train" },
  transform = { range = { 0, 1 } },
  losses = { "loss", "recon", "commitment", "perplexity", "dead" },
  step = step,
  sample = sample,
  after = report,
})
-- --sample N: the checkpoint's test report too
if run.sample > 0 then report() end
