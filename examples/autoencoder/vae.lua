-- A variational autoencoder on Fashion-MNIST (Kingma & Welling, 2014), MLP or convolutional.
--   bin/gen examples/autoencoder/vae.lua --epochs 10 [--model conv] [--beta 1] [--likelihood gaussian]
--   bin/gen examples/autoencoder/vae.lua --sample 10000
local gen = require "gen"
local vae = require "gen.models.vae"
local autoencoder = require "gen.autoencoder"
local experiment = require "gen.experiment"

local run = experiment.parse("vae", arg, { epochs = 10, batch = 128, lr = 1e-3, beta = 1.0, latent = 20,
  model = experiment.choice("mlp", { "mlp", "conv" }), likelihood = experiment.choice("bernoulli", { "bernoulli", "gaussian" }) })
gen.manual_seed(run.seed)
local model = run.model == "conv" and vae.Conv { latent = run.latent } or vae.MLP { latent = run.latent }
local opt = gen.optim.Adam(model, { lr = run.lr })

local function step(x)
  opt:zero_grad()
  local logits, mu, logvar = model(x)
  local loss, recon, kl = autoencoder.elbo_loss(x, logits, mu, logvar, { beta = run.beta, likelihood = run.likelihood })
  loss:backward()
  opt:step()
  return { loss = loss:item(), recon = recon:item(), kl = kl:item() }
end

-- Decoded means of prior samples, mapped to [-1, 1] for the sample files.
local function sample(n, _, draw)
  return gen.sigmoid(model:decode(experiment.noise(draw, n, model.latent))) * 2 - 1
end

local test = gen.data.fashion_mnist { split = "test" }
experiment.train(run, {
  state = { model = model, optimizer = opt },
  data = gen.data.fashion_mnist { split = "train" },
  transform = { range = { 0, 1 } },
  losses = { "loss", "recon", "kl" },
  step = step,
  sample = sample,
  after = function()
    print(string.format("test-set -ELBO: %.2f nats per image", autoencoder.test_nll(model, test.images, { likelihood = run.likelihood,
      generator = gen.Generator(0) })))
  end,
})
