--- gen.diffusion.cli: the command line the diffusion examples share, on top of gen.experiment.
--
--   local dcli = require "gen.diffusion.cli"
--   local run = experiment.parse("ddpm", arg, dcli.defaults { process = "vp", parameterization = "eps", ... })
--   local d = dcli.build(run)        -- d.process, d.kind, d.loss(model, x, labels), d.sample(model, n, labels)
--
-- Options (each example picks its defaults; any trained model samples with any sampler):
--   --process vp|ve|edm|rectified      the noise process (gen.diffusion.processes); --betas linear|cosine
--                                      and --timesteps T for vp (--schedule linear|cosine is still
--                                      read as --betas, its meaning before the step schedules came)
--   --parameterization eps|x0|v|score|velocity|edm   what the network predicts
--   --weighting simple|snr|min_snr|edm  the loss weighting (gen.diffusion.losses)
--   --sampler ddpm|ddim|euler|heun|euler_ancestral|dpmpp_2m|euler_maruyama|pc, --schedule uniform|karras|logsnr,
--   --sample-steps N (0: 50, or all T steps for ddpm on vp), --eta E (ddim, euler_ancestral),
--   --churn S (heun), --clip C (clamp the denoised image to [-C, C]; 0: off), --raw-weights (sample
--   with the trained weights instead of the EMA)
--   --init-image FILE --strength S     img2img (SDEdit): a 28x28 PNG noised to strength S in (0, 1]
--   --mask FILE [--resample R]         inpainting: white pixels of the mask PNG are kept from
--                                      --init-image, the rest generated (RePaint with R > 1)
--   --learn-variance [--vlb-weight L]  improved DDPM (vp only; eps, x0 or v): the network also
--                                      predicts its reverse variances, trained by the hybrid loss
--                                      L_simple + L * T * L_vlb (L = 0.001); --sampler ddpm then
--                                      samples with the learned variances
--   --bound N [--bound-steps K]        after training or sampling: the variational bound on N test
--                                      images in bits/dim (all T terms, or K random ones; vp only),
--                                      with its parts (L_prior, the sum of L_1..L_{T-1}, L_0)
--   --bound-offset K                   the bound's images start after the first K test images, so
--                                      a whole-test-set bound can run in chunks (each chunk draws its
--                                      noise from the same seed: chunks average to the same
--                                      expectation as one run, not to the same bits)
--   --bound-variance V                 the reverse variance the bound uses: auto (the learned one
--                                      with --learn-variance, else beta), learned, beta or posterior
--                                      (fixed; a learned-variance network's variance output is ignored)
--   --classifier DIR [--classifier-scale S]  classifier guidance (scale S, 1) by the noisy classifier
--                                      that examples/diffusion/noisy_classifier.lua trained in DIR on
--                                      the same process; --class K picks the class
local gen = require "gen"
local diffusion = require "gen.diffusion"
local experiment = require "gen.experiment"

local M = {}

-- the options with a fixed set of values (declared once: parse rejects others, --help lists them);
-- --schedule also takes linear|cosine, its meaning (the betas) before the step schedules came
local choices = {
  process = { "vp", "ve", "edm", "rectified" },
  parameterization = diffusion.parameterization.kinds,
  weighting = diffusion.losses.weightings,
  betas = { "linear", "cosine" },
  sampler = diffusion.samplers.sampler_names,
  schedule = { "uniform", "karras", "logsnr", "linear", "cosine" },
  bound_variance = { "auto", "learned", "beta", "posterior" },
}

local base = { process = "vp", parameterization = "eps", weighting = "simple", betas = "linear", timesteps = 1000,
  sampler = "euler", schedule = "uniform", sample_steps = 0, eta = -1.0, churn = 0.0, clip = 0.0, raw_weights = false,
  init_image = "", strength = 1.0, mask = "", resample = 1, adaptive_norm = false, learn_variance = false,
  vlb_weight = 0.001, bound = 0, bound_steps = 0, bound_offset = 0, bound_variance = "auto", classifier = "", classifier_scale = 1.0 }

--- The options above with the example's own defaults over them, for gen.experiment.parse.
function M.defaults(own)
  local d = {}
  for k, v in pairs(base) do d[k] = v end
  for k, v in pairs(own or {}) do d[k] = v end
  for k, values in pairs(choices) do d[k] = experiment.choice(d[k], values) end
  return d
end

-- A 28x28 gray PNG as {1, 1, 32, 32} in [lo, hi], padded with `pad_value` like the training data.
local function load_image(run, path, option, lo, hi, pad_value)
  local ok, img = pcall(gen.image.load, path, { channels = 1 })
  if not ok then experiment.fail(run.script, string.format("--%s: cannot read '%s': %s", option, path, tostring(img))) end
  if img:size(2) ~= 28 or img:size(3) ~= 28 then
    experiment.fail(run.script, string.format("--%s: expected a 28x28 image, got %dx%d in '%s'", option, img:size(2), img:size(3), path))
  end
  local x = img:view(1, 1, 28, 28) * (hi - lo) + lo
  return gen.pad(x, { 2, 2, 2, 2 }, "constant", pad_value)
end

--- settings(run, keys [, optional]): experiment.settings, where betas and timesteps count only for
-- the vp process (the others do not read them).
function M.settings(run, keys, optional)
  return experiment.settings(run, keys, { optional = optional,
    applies = function(k) return k ~= "betas" and k ~= "timesteps" or run.process == "vp" end })
end

-- The options that say what noisy images a network was trained on (a noisy classifier's record).
M.noise_keys = { "process", "betas", "timesteps" }

-- The noisy classifier saved in DIR (examples/diffusion/noisy_classifier.lua), for run's process.
local function load_classifier(run)
  local path = run.classifier .. "/checkpoint.safetensors"
  local clf = require("gen.models.noisy_classifier").NoisyClassifier {}
  local ok, err = pcall(gen.checkpoint.load, path, { model = clf, noise = M.settings(run, M.noise_keys) }, { rng = false })
  if not ok then
    experiment.fail(run.script, string.format("--classifier: %s is not a noisy classifier for this run (%s)", path,
      tostring(err):gsub("^[^:]*:%d+: ", "")))
  end
  clf:eval()
  return clf
end

--- The process, the parameterization, a loss and a sampling function from the parsed options.
function M.build(run)
  if run.schedule == "linear" or run.schedule == "cosine" then run.betas, run.schedule = run.schedule, "uniform" end
  local function fail(msg) experiment.fail(run.script, msg) end
  if run.strength <= 0 or run.strength > 1 then fail("option --strength must be in (0, 1], got " .. run.strength) end
  if run.mask ~= "" and run.init_image == "" then fail("option --mask needs --init-image (the image whose white-masked pixels are kept)") end
  local process = diffusion.process(run.process, run.process == "vp" and { betas = run.betas, T = run.timesteps } or nil)
  local d = { process = process, kind = run.parameterization, out_channels = run.learn_variance and 2 or 1 }
  local discrete = { eps = true, x0 = true, v = true }
  if run.learn_variance and (run.process ~= "vp" or not discrete[d.kind]) then
    fail(string.format("option --learn-variance needs --process vp and --parameterization eps, x0 or v, got %s and %s", run.process, d.kind))
  end
  if run.bound > 0 and (run.process ~= "vp" or not discrete[d.kind]) then
    fail(string.format("option --bound needs --process vp and --parameterization eps, x0 or v, got %s and %s", run.process, d.kind))
  end
  if math.type(run.bound_offset) ~= "integer" or run.bound_offset < 0 then
    fail("option --bound-offset must be a whole number >= 0, got " .. tostring(run.bound_offset))
  end
  if run.bound_variance == "learned" and not run.learn_variance then
    fail("option --bound-variance learned needs a network trained with --learn-variance")
  end

  function d.loss(model, x, labels, opts)
    if run.learn_variance then
      local o = { prediction = d.kind, lambda = run.vlb_weight }
      for k, v in pairs(opts or {}) do o[k] = v end
      return (diffusion.hybrid_loss(model, process, x, labels, o))
    end
    local o = { parameterization = d.kind, weighting = run.weighting }
    for k, v in pairs(opts or {}) do o[k] = v end
    return diffusion.denoising_loss(model, process, x, labels, o)
  end

  -- What the trained network means, saved in its checkpoint (as "diffusion/process", ...): loading
  -- it under other options fails and says which to pass. Checkpoints from before it load as they are.
  d.settings = M.settings(run, { "process", "parameterization", "betas", "timesteps", "learn_variance" }, true)

  --- fn(...) with the EMA's weights swapped into the model (the trained ones with --raw-weights).
  function d.with_sampling_weights(ema, fn, ...)
    if run.raw_weights then return fn(...) end
    return ema:call(fn, ...)
  end

  --- n images {n, 1, 28, 28}: d.sample's 32x32 images with the sampling weights, cropped back to
  -- the data's 28x28; and the labels they were drawn for. draw: gen.experiment's batch of a draw.
  function d.sample_images(model, ema, n, labels, draw)
    local x = d.with_sampling_weights(ema, d.sample, model, n, labels, draw)
    return x:narrow(3, 3, 28):narrow(4, 3, 28), labels
  end

  --- The variational bound of model on run.bound test images after the first run.bound_offset, in bits per dimension of
  -- the 28x28 images (the padding is constant); prints it with its parts and returns it and them.
  -- Nothing without --bound. A fixed --bound-variance bounds a learned-variance network with its
  -- mean alone (the first half of its output channels).
  function d.report_bound(model)
    if run.bound <= 0 then return nil end
    local variance = run.bound_variance
    if variance == "auto" then variance = run.learn_variance and "learned" or "beta" end
    local net = model
    if run.learn_variance and variance ~= "learned" then
      net = function(...)
        local out = model(...)
        return out:narrow(2, 1, out:size(2) // 2)
      end
    end
    local test = gen.data.fashion_mnist { split = "test" }
    local skip = run.bound_offset
    if skip >= test.images:size(1) then
      fail(string.format("option --bound-offset %d skips all %d test images", skip, test.images:size(1)))
    end
    local n = math.min(run.bound, test.images:size(1) - skip)
    local t0 = gen.time()
    local bpd, parts = diffusion.vlb_bits_per_dim(net, process, test.images:narrow(1, skip + 1, n), { pad = 2, dims = 784,
      prediction = d.kind, variance = variance,
      steps = run.bound_steps > 0 and run.bound_steps or nil, generator = gen.Generator(run.seed + 3) })
    print(string.format("%s: variational bound on %d test images%s: %.4f bits/dim (%s, %s variance, %.1f s);"
      .. " L_prior %.4f + L_1..L_%d %.4f + L_0 %.4f", run.name, n,
      skip > 0 and string.format(" (%d to %d)", skip + 1, skip + n) or "", bpd,
      run.bound_steps > 0 and (run.bound_steps .. " random steps of " .. process.T) or ("all " .. process.T .. " steps"),
      variance, gen.time() - t0, parts.prior, process.T - 1, parts.kl, parts.decoder))
    return bpd, parts
  end

  --- n images {n, 1, 32, 32} from model (EMA weights swapped in by the caller), labels optional.
  -- With a draw (gen.experiment.draw), every image's noise comes from its own generator: the same
  -- images in any --sample-batch.
  function d.sample(model, n, labels, draw)
    local steps = run.sample_steps
    if steps == 0 then steps = (run.sampler == "ddpm" and process.T) or 50 end
    local opts = { sampler = run.sampler, steps = steps, schedule = run.schedule, labels = labels,
      guidance = labels and run.guidance or nil, churn = run.churn, resample = run.resample,
      variance = run.learn_variance and "learned" or nil, generator = draw and draw.generators or nil }
    if run.eta >= 0 then opts.eta = run.eta end
    if run.init_image ~= "" then
      opts.init = load_image(run, run.init_image, "init-image", -1, 1, -1):expand(n, 1, 32, 32)
      opts.strength = run.strength
      if run.mask ~= "" then opts.mask = load_image(run, run.mask, "mask", 0, 1, 1):ge(0.5) end
    end
    local denoiser = diffusion.denoiser(model, process, d.kind, { clip = run.clip > 0 and run.clip or nil,
      learned_variance = run.learn_variance })
    if run.classifier ~= "" then
      d.classifier = d.classifier or load_classifier(run)
      denoiser = diffusion.classifier_guided(denoiser, d.classifier, run.classifier_scale)
    end
    return diffusion.sample(denoiser, { n, 1, 32, 32 }, opts)
  end
  return d
end

return M
