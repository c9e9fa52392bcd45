-- gen's test MSE on masked patches, [CLS] features and probe of a checkpoint of
-- examples/autoencoder/mae.lua (default sizes), on the first N test and training images; the twin
-- prints the same lines for the same checkpoint with its own code:
--   bin/gen bench/twin_mae_check.lua runs/mae/checkpoint.safetensors 1000
--   /usr/bin/python3 bench/twin_mae.py score runs/mae/checkpoint.safetensors --images 1000
local gen = require "gen"
local mae = require "gen.models.mae"
local autoencoder = require "gen.autoencoder"
local metrics = require "gen.metrics"
gen.set_num_threads(1)
local path, n = assert(arg[1], "usage: twin_mae_check.lua CHECKPOINT [N]"), math.tointeger(tonumber(arg[2] or "1000"))
local model = mae.MAE { patch = 4, dim = 128, depth = 4, heads = 4, decoder_dim = 64, decoder_depth = 2, decoder_heads = 4, pool = "cls" }
local opt = gen.optim.AdamW(model, { lr = 1e-3, betas = { 0.9, 0.95 }, weight_decay = 0.05 })
gen.checkpoint.load(path, { model = model, optimizer = opt })
local train, test = gen.data.fashion_mnist { split = "train" }, gen.data.fashion_mnist { split = "test" }
local mse, psnr = autoencoder.mae.test_mse(model, test.images:narrow(1, 1, n), { mask_ratio = 0.75, generator = gen.Generator(2) })
print(string.format("gen: test MSE on masked patches %.7f (PSNR %.4f dB)", mse, psnr))
local f = function(x) return model:features(x) end
local ftr = metrics.extract_features(f, train.images:narrow(1, 1, n), { progress = false })
local fte = metrics.extract_features(f, test.images:narrow(1, 1, n), { progress = false })
print(string.format("gen: feature sums %.6f %.6f", ftr:double():sum():item(), fte:double():sum():item()))
local lin, tr = metrics.linear_probe(ftr, train.labels:narrow(1, 1, n), fte, test.labels:narrow(1, 1, n))
local knn = metrics.knn(ftr, train.labels:narrow(1, 1, n), fte, test.labels:narrow(1, 1, n))
print(string.format("gen: linear probe %.4f%% (train %.4f%%)  kNN %.4f%%", 100 * lin, 100 * tr, 100 * knn))
