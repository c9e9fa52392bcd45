-- gen side of the end-to-end benchmarks: whole training steps and sampling steps of the models in
-- gen.models, and the examples' own training loops. Usage: lua5.4 bench/e2e.lua THREADS WORKLOAD
-- Prints one line: "<workload> <threads> <median seconds per iteration> <peak RSS kB> params=<n>".
-- GEN_BENCH_QUICK=1 times 3 iterations instead of 10 (development only: noisy).
package.path = "lua/?.lua;lua/?/init.lua;" .. package.path
package.cpath = (os.getenv("GEN_BUILD") or "build") .. "/?.so;" .. package.cpath
local gen = require "gen"
local dcgan = require "gen.models.dcgan"
local vae = require "gen.models.vae"
local autoencoder = require "gen.autoencoder"
local unet = require "gen.models.unet"
local diffusion = require "gen.diffusion"

local threads, name = tonumber(arg[1]), arg[2]
local quick = os.getenv("GEN_BENCH_QUICK") == "1"
local WARMUP, ITERS = 2, quick and 3 or 10
gen.set_num_threads(threads)
gen.manual_seed(0)

-- the lower median, as bench/ops.lua and statistics.median_low in the twin
local function median(t) table.sort(t); return t[(#t + 1) // 2] end
local function bench(step)
  local times = {}
  for i = 1, WARMUP + ITERS do
    local t0 = gen.time()
    step()
    if i > WARMUP then times[#times + 1] = gen.time() - t0 end
  end
  return median(times)
end

--- The median time of model's training step: zero the gradients, loss_of(), backward, then
--- before_step() if given (gradient clipping), the optimizer step; returns it and the model's
--- parameter count, the two numbers every workload reports.
local function train_step(model, opt, loss_of, before_step)
  local seconds = bench(function()
    opt:zero_grad()
    local loss = loss_of()
    loss:backward()
    if before_step then before_step() end
    opt:step()
    return loss:item()
  end)
  return seconds, model:num_parameters()
end

local workloads = {}

-- One D update on real and generated images, then one G update, as examples/gan/dcgan.lua does.
workloads.dcgan_step = function()
  local G, D = dcgan.Generator { z_dim = 100 }, dcgan.Discriminator()
  local opt_g = gen.optim.Adam(G, { lr = 2e-4, betas = { 0.5, 0.999 } })
  local opt_d = gen.optim.Adam(D, { lr = 2e-4, betas = { 0.5, 0.999 } })
  local x = gen.rand(64, 1, 28, 28) * 2 - 1
  local ones, zeros = gen.ones(64, 1), gen.zeros(64, 1)
  local seconds = bench(function()
    local fake = G(gen.randn(64, 100))
    opt_d:zero_grad()
    local loss_d = gen.bce_with_logits(D(x), ones) + gen.bce_with_logits(D(fake:detach()), zeros)
    loss_d:backward()
    opt_d:step()
    opt_g:zero_grad()
    local loss_g = gen.bce_with_logits(D(fake), ones)
    loss_g:backward()
    opt_g:step()
    return loss_d:item() + loss_g:item()
  end)
  return seconds, G:num_parameters() + D:num_parameters()
end

-- One D update of the DCGAN on real and (fixed) generated images, plain or with R1 (gamma 10) on
-- the real batch every step: the R1 step differentiates D's input gradient (double backward).
local function dcgan_d_step(r1)
  local gan = require "gen.gan"
  local G, D = dcgan.Generator { z_dim = 100 }, dcgan.Discriminator()
  local opt_d = gen.optim.Adam(D, { lr = 2e-4, betas = { 0.5, 0.999 } })
  local x = gen.rand(64, 1, 28, 28) * 2 - 1
  local fake = gen.no_grad(G, gen.randn(64, 100))
  local ones, zeros = gen.ones(64, 1), gen.zeros(64, 1)
  local seconds = bench(function()
    opt_d:zero_grad()
    local penalty, real_out
    if r1 then penalty, real_out = gan.r1_penalty(D, x, 10) else real_out = D(x) end
    local loss = gen.bce_with_logits(real_out, ones) + gen.bce_with_logits(D(fake), zeros)
    if penalty then loss = loss + penalty end
    loss:backward()
    opt_d:step()
    return loss:item()
  end)
  return seconds, D:num_parameters()
end
workloads.dcgan_d_step = function() return dcgan_d_step(false) end
workloads.dcgan_r1_step = function() return dcgan_d_step(true) end

workloads.vae_mlp_step = function()
  local model = vae.MLP { input = 784, hidden = 400, latent = 20 }
  local opt = gen.optim.Adam(model, { lr = 1e-3 })
  local x = gen.rand(128, 1, 28, 28)
  return train_step(model, opt, function()
    local logits, mu, logvar = model(x)
    return autoencoder.elbo_loss(x, logits, mu, logvar)
  end)
end

-- The training step of examples/autoencoder/mae.lua with its defaults: ViT encoder dim 128, depth
-- 4, 4 heads, patch 4 (49 patches, 12 visible), decoder dim 64, depth 2; batch 128, mask ratio 0.75,
-- AdamW(1e-3, betas 0.9/0.95, weight decay 0.05). Masks are drawn inside the step, as in training.
workloads.mae_step = function()
  local mae = require "gen.models.mae"
  local model = mae.MAE { patch = 4, dim = 128, depth = 4, heads = 4, decoder_dim = 64, decoder_depth = 2, decoder_heads = 4 }
  local opt = gen.optim.AdamW(model, { lr = 1e-3, betas = { 0.9, 0.95 }, weight_decay = 0.05 })
  local x = gen.rand(128, 1, 28, 28)
  return train_step(model, opt, function() return autoencoder.mae_loss(model, x, { mask_ratio = 0.75 }) end)
end

-- The training step of examples/flows/glow.lua as measured in the README (levels 3, depth 4,
-- hidden 64, batch 64, 28x28 images padded to 32): bits/dim of uniformly dequantized 8-bit images
-- over 784 pixels, Adam(1e-3), gradient norm clipped at 50 (twin: bench/twin_glow.py).
workloads.glow_step = function()
  local glow = require "gen.models.glow"
  local flows = require "gen.flows"
  local model = glow.Glow { levels = 3, depth = 4, hidden = 64 }
  local opt = gen.optim.Adam(model, { lr = 1e-3 })
  local images = gen.pad(gen.randint(0, 255, { 64, 1, 28, 28 }):float(), { 2, 2, 2, 2 })
  return train_step(model, opt, function() return flows.bits_per_dim(model, images, { dims = 28 * 28 }):mean() end,
    function() gen.optim.clip_grad_norm(model:parameters(), 50) end)
end

--- The training step of examples/autoregressive/pixelcnn.lua (--on pixels) with its defaults: gated
--- PixelCNN width 64, 8 layers (kernel 7 then 3), batch 64 of 28 x 28 pixels, 256-way softmax,
--- Adam(1e-3). The twin is bench/twin_pixelcnn.py.
workloads.pixelcnn_step = function()
  local pixelcnn = require "gen.models.pixelcnn"
  local ar = require "gen.autoregressive.pixelcnn"
  local model = pixelcnn.GatedPixelCNN { width = 64, layers = 8 }
  local opt = gen.optim.Adam(model, { lr = 1e-3 })
  local x = gen.randint(0, 255, { 64, 1, 28, 28 }):float()
  return train_step(model, opt, function() return ar.loss(model, x) end)
end

--- The training step of examples/gan/stylegan.lua with its defaults (modulated convolutions, width
--- 64, z 128, 4 mapping layers, batch 32, style mixing 0.9, Adam(2e-3, (0, 0.99)), EMA of G), through
--- gen.gan.stylegan.step. stylegan_r1_step adds R1 (gamma 10) at every step, the cost of one
--- regularized step of lazy R1. The twin is bench/twin_stylegan.py.
local function stylegan_step(r1)
  return function()
    local sg = require "gen.models.stylegan"
    local train = require "gen.gan.stylegan"
    local G, D = sg.Generator {}, sg.Discriminator {}
    local opt_g = gen.optim.Adam(G, { lr = 2e-3, betas = { 0, 0.99 }, eps = 1e-8 })
    local opt_d = gen.optim.Adam(D, { lr = 2e-3, betas = { 0, 0.99 }, eps = 1e-8 })
    local ema = gen.optim.EMA(G, 0.999)
    local x = gen.rand(32, 1, 28, 28) * 2 - 1
    local seconds = bench(function()
      local r = train.step(G, D, opt_g, opt_d, x, { mixing = 0.9, r1 = r1, r1_every = 1, step = 1, ema = ema })
      return r.loss_d + r.loss_g
    end)
    return seconds, G:num_parameters() + D:num_parameters()
  end
end
workloads.stylegan_step = stylegan_step(0)
workloads.stylegan_r1_step = stylegan_step(10)

local function ddpm_unet() return unet.UNet { channels = 1, widths = { 32, 64, 64 } } end

workloads.unet_ddpm_step = function()
  local model = ddpm_unet()
  local opt = gen.optim.AdamW(model, { lr = 2e-4 })
  local schedule = diffusion.linear_schedule(1000)
  local x0 = gen.rand(32, 1, 32, 32) * 2 - 1
  return train_step(model, opt, function() return diffusion.ddpm_loss(model, schedule, x0) end)
end

-- One iteration is one DDIM step (a UNet forward on 64 images and the update); the library's own
-- sampler runs and its per-step callback stamps the time. Reported: 50 x the median step.
workloads.unet_ddim_sample = function()
  local model = ddpm_unet()
  local schedule = diffusion.linear_schedule(1000)
  local steps = quick and WARMUP + ITERS or 50
  local stamps = { gen.time() }
  diffusion.ddim_sample(model, schedule, { 64, 1, 32, 32 }, { steps = steps, eta = 0, progress = false,
    callback = function(i) stamps[i + 1] = gen.time() end })
  local times = {}
  for i = WARMUP + 1, steps do times[#times + 1] = stamps[i + 1] - stamps[i] end
  return 50 * median(times), model:num_parameters()
end

-- Sampling with gen.diffusion.sample on the UNet above (unconditional), without autograd:
-- edm_heun_sample*: EDM (Karras et al., 2022) with its preconditioning, Heun's method over 18
-- noise levels of the Karras schedule (rho 7, sigma 0.002-80): 35 network evaluations;
-- flow_sample*: rectified flow, velocity prediction, 25 Euler steps uniform in t. Batch 64
-- (`edm_heun_sample`, `flow_sample`): one sample of 64 images with each step stamped; the time
-- is the sum of the steps after the first plus the median step in place of the first (its
-- warm-up). Batch 1 (`*_b1`): one image per sample, a whole sample per iteration.
local function sampling(process, kind, sampler, steps, schedule, batch)
  return function()
    local model = ddpm_unet()
    model:eval()
    local denoiser = diffusion.denoiser(model, diffusion.process(process), kind)
    local opts = { sampler = sampler, steps = steps, schedule = schedule, progress = false }
    if batch == 1 then
      return bench(function() return diffusion.sample(denoiser, { 1, 1, 32, 32 }, opts):sum():item() end),
        model:num_parameters()
    end
    local stamps = { gen.time() }
    opts.callback = function(i) stamps[i + 1] = gen.time() end
    diffusion.sample(denoiser, { batch, 1, 32, 32 }, opts)
    local times, total = {}, 0
    for i = 1, steps do times[i] = stamps[i + 1] - stamps[i] end
    for i = 2, steps do total = total + times[i] end
    return total + median(times), model:num_parameters()
  end
end
workloads.edm_heun_sample = sampling("edm", "edm", "heun", 18, "karras", 64)
workloads.edm_heun_sample_b1 = sampling("edm", "edm", "heun", 18, "karras", 1)
workloads.flow_sample = sampling("rectified", "velocity", "euler", 25, "uniform", 64)
workloads.flow_sample_b1 = sampling("rectified", "velocity", "euler", 25, "uniform", 1)
-- the other samplers, batch 64: DPM-Solver++(2M) and Euler ancestral on the EDM model (20 Karras
-- levels, 20 network evaluations), and DDPM's ancestral sampler on a VP/epsilon model (50 uniform
-- steps of the linear-beta chain, Ho et al.'s variance)
workloads.edm_dpmpp_2m_sample = sampling("edm", "edm", "dpmpp_2m", 20, "karras", 64)
workloads.edm_euler_ancestral_sample = sampling("edm", "edm", "euler_ancestral", 20, "karras", 64)
workloads.vp_ddpm_sample = sampling("vp", "eps", "ddpm", 50, "uniform", 64)
-- the reverse SDE on a VE/score model (geometric sigmas 50 -> 0.01, uniform in t): Euler-Maruyama
-- in 50 steps (50 evaluations) and predictor-corrector with one Langevin step at snr 0.16 in 25
-- steps (49 evaluations)
workloads.ve_euler_maruyama_sample = sampling("ve", "score", "euler_maruyama", 50, "uniform", 64)
workloads.ve_pc_sample = sampling("ve", "score", "pc", 25, "uniform", 64)

-- The examples' training loops, run in this process as `bin/gen examples/FAMILY/NAME.lua` would run them
-- (real data loader, progress bar, loss log). Each step's start is stamped; the loop is stopped by
-- an error at the start of the step after the last timed one, before checkpointing and sampling,
-- which are not part of the loop. An iteration is the whole loop body, data loading included.
local stop = setmetatable({}, { __tostring = function() return "bench: enough steps" end })
local function example(script, model_params)
  return function()
    local experiment = require "gen.experiment"
    local train = experiment.train
    local stamps, params = {}, 0
    experiment.train = function(run, spec)
      params = model_params(spec.state)
      local step = spec.step
      spec.step = function(...)
        stamps[#stamps + 1] = gen.time()
        if #stamps > WARMUP + ITERS then error(stop) end
        return step(...)
      end
      return train(run, spec)
    end
    local out = "build/bench/runs/" .. script
    os.execute("mkdir -p " .. out)
    -- the progress bar still runs, as when a run's output goes to a log, but not over the tables
    local log, progress = assert(io.open(out .. "/progress.log", "w")), gen.ui.progress
    gen.ui.progress = function(total, opts)
      opts = opts or {}
      opts.out = log
      return progress(total, opts)
    end
    arg = { [0] = "examples/" .. script .. ".lua", "--steps", tostring(WARMUP + ITERS + 1), "--out", out,
      "--threads", tostring(threads) }
    local ok, err = pcall(dofile, arg[0])
    if ok or err ~= stop then error(ok and "bench: the loop ended early" or err, 0) end
    local times = {}
    for i = WARMUP + 1, WARMUP + ITERS do times[#times + 1] = stamps[i + 1] - stamps[i] end
    return median(times), params
  end
end
workloads.example_dcgan = example("gan/dcgan", function(s) return s.G:num_parameters() + s.D:num_parameters() end)
workloads.example_vae = example("autoencoder/vae", function(s) return s.model:num_parameters() end)
workloads.example_ddpm = example("diffusion/ddpm", function(s) return s.model:num_parameters() end)

-- The GPT prior of examples/autoregressive/gpt_prior.lua with its defaults over a 7x7 grid of
-- codes from a K = 512 codebook, class-conditional (10 classes), dim 192, depth 4, 6 heads,
-- dropout 0.1 (twin: bench/twin_gpt.py). gpt_prior_step: one AdamW(3e-4, betas 0.9/0.95,
-- weight decay 0.01) step on 64 code grids; gpt_prior_sample: 64 grids of 49 tokens drawn with the
-- key/value cache (temperature 1, no top-k/top-p), one iteration per whole sample.
local GPT_PRIOR = { vocab = 512, block_size = 49, dim = 192, depth = 4, heads = 6, classes = 10, dropout = 0.1 }
workloads.gpt_prior_step = function()
  local model = require("gen.models.gpt").GPT(GPT_PRIOR)
  local opt = gen.optim.AdamW(model, { lr = 3e-4, betas = { 0.9, 0.95 }, weight_decay = 0.01 })
  local codes, labels = gen.randint(1, 512, { 64, 49 }), gen.randint(1, 10, { 64 })
  return train_step(model, opt, function()
    local logits = model(codes:narrow(2, 1, 48), { labels = labels })
    return gen.cross_entropy(logits:reshape(64 * 49, 512), codes:reshape(64 * 49))
  end)
end
local function gpt_sample(cache)
  return function()
    local model = require("gen.models.gpt").GPT(GPT_PRIOR)
    model:eval()
    local labels, g = gen.randint(1, 10, { 64 }), gen.Generator(0)
    local function sample() return gen.autoregressive.sample(model, 64, { labels = labels, generator = g, cache = cache }) end
    if cache then return bench(sample), model:num_parameters() end
    -- uncached decoding takes about 10x longer: 1 warm-up and the median of 3
    local times = {}
    for i = 1, 4 do
      local t0 = gen.time()
      sample()
      if i > 1 then times[#times + 1] = gen.time() - t0 end
    end
    return median(times), model:num_parameters()
  end
end
workloads.gpt_prior_sample = gpt_sample(true)
workloads.gpt_prior_sample_nocache = gpt_sample(false) -- gen only: what the cache saves

local f = assert(workloads[name], "unknown workload " .. tostring(name))
local seconds, params = f()
local status = io.open("/proc/self/status"):read("a")
print(string.format("%s %d %.9g %s params=%d", name, threads, seconds, status:match("VmHWM:%s+(%d+)"), params))
