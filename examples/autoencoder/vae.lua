-- A variational autoencoder on Fashion-MNIST (Kingma & Welling, 2014), MLP or convolutional.
--   bin/gen examples/autoencoder/vae.lua --epochs 10 [--model conv] [--beta 1] [--likelihood gaussian]
--   bin/gen examples/autoencoder/vae.lua --likelihood discretized --lr 5e-4 --clip 200 --iw 1000   # bits/dim: ELBO, IW bound
--   bin/gen examples/autoencoder/vae.lua --sample 10000
local gen = require "gen"
local vae = require "gen.models.vae"
local autoencoder = require "gen.autoencoder"
local experiment = require "gen.experiment"
local likelihood = require "gen.likelihood"

local run = experiment.parse("vae", arg, { epochs = 10, batch = 128, lr = 1e-3, beta = 1.0, latent = 20,
  model = experiment.choice("mlp", { "mlp", "conv" }),
  likelihood = experiment.choice("bernoulli", { "bernoulli", "gaussian", "discretized" }),
  iw = 0, test_images = 10000, clip = 0 })
if run.iw < 0 then experiment.fail(run.script, "option --iw must be a number of samples >= 0, got " .. run.iw) end
if run.test_images < 1 then experiment.fail(run.script, "option --test-images must be >= 1, got " .. run.test_images) end
gen.manual_seed(run.seed)
local outputs = run.likelihood == "discretized" and 2 or 1 -- a discretized Gaussian's mean and log-scale
local model = run.model == "conv" and vae.Conv { latent = run.latent, outputs = outputs } or vae.MLP { latent = run.latent, outputs = outputs }
local opt = gen.optim.Adam(model, { lr = run.lr })

local function step(x)
  opt:zero_grad()
  local logits, mu, logvar = model(x)
  local loss, recon, kl = autoencoder.elbo_loss(x, logits, mu, logvar, { beta = run.beta, likelihood = run.likelihood })
  loss:backward()
  if run.clip > 0 then gen.optim.clip_grad_norm(model:parameters(), run.clip) end -- --clip N: gradient norm at most N
  opt:step()
  return { loss = loss:item(), recon = recon:item(), kl = kl:item() }
end

-- Decoded means of prior samples, mapped to [-1, 1] for the sample files.
local function sample(n, _, draw)
  return autoencoder.decoded_mean(model:decode(experiment.noise(draw, n, model.latent)), run.likelihood) * 2 - 1
end

local test = gen.data.fashion_mnist { split = "test" }
local test_images = test.images:narrow(1, 1, math.min(run.test_images, test.images:size(1)))

-- The test set's -ELBO and, with --iw K, the importance-weighted bound with K samples, in nats per
-- image and, for the discretized likelihood (a probability of the 8-bit image), in bits/dim.
local function report()
  local lines = {}
  local function add(what, nats)
    local bits = run.likelihood == "discretized"
      and string.format(", %.4f bits/dim", likelihood.bits_per_dim(-nats, 784, { discrete = true })) or ""
    lines[#lines + 1] = string.format("test-set %s: %.2f nats per image%s (%d images)", what, nats, bits, test_images:size(1))
    print(lines[#lines])
  end
  add("-ELBO", autoencoder.test_nll(model, test_images, { likelihood = run.likelihood, generator = gen.Generator(0) }))
  if run.iw > 0 then
    local t0, bar = gen.time(), gen.ui.progress(test_images:size(1), { label = "IW bound" })
    local nats = autoencoder.iw_nll(model, test_images, { k = run.iw, likelihood = run.likelihood, generator = gen.Generator(1),
      progress = function(done) bar:update(done) end })
    bar:close()
    add(string.format("importance-weighted bound (k = %d, %.0f s)", run.iw, gen.time() - t0), nats)
  end
  local f = assert(io.open(run.out .. "/test_nll.txt", "w"))
  f:write(table.concat(lines, "\n"), "\n")
  f:close()
end

experiment.train(run, {
  state = { model = model, optimizer = opt, config = experiment.settings(run, { "likelihood", "model", "latent" }, { optional = true }) },
  data = gen.data.fashion_mnist { split = "train" },
  transform = { range = { 0, 1 } },
  losses = { "loss", "recon", "kl" },
  step = step,
  sample = sample,
  after = report,
})
