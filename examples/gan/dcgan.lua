-- DCGAN on Fashion-MNIST (Radford et al., 2016): the classic 28x28 generator and discriminator
-- (gen.models.dcgan), Adam(2e-4, betas 0.5/0.999), binary cross-entropy on logits.
--   bin/gen examples/gan/dcgan.lua --epochs 5             train; writes runs/dcgan/{samples.png, log.csv, ...}
--   bin/gen examples/gan/dcgan.lua --sample 10000         samples from the checkpoint
-- Other objectives and the gradient penalties of gen.gan (double backward):
--   --loss nonsaturating|bce|minimax|hinge|wgan   (bce is the non-saturating default)
--   --r1 GAMMA --r1-every 16       R1 on real data, applied lazily every 16 D steps (scaled by 16)
--   --loss wgan --gp 10 --critic-iters 5          WGAN-GP: one G update per 5 D updates
--   --d-norm auto|batch|layer|none  D's norm; auto is layer norm with --gp (as in WGAN-GP), else batch
--   --beta1 B1 --beta2 B2           Adam's betas for both players (0.5, 0.999; WGAN-GP used 0, 0.9)
local gen = require "gen"
local gan = require "gen.gan"
local dcgan = require "gen.models.dcgan"
local experiment = require "gen.experiment"

local run = experiment.parse("dcgan", arg, { epochs = 5, lr = 2e-4, z_dim = 100,
  loss = experiment.choice("nonsaturating", { "nonsaturating", "bce", "minimax", "hinge", "wgan" }),
  r1 = 0.0, r1_every = 16, gp = 0.0, critic_iters = 1, d_norm = experiment.choice("auto", { "auto", "batch", "layer", "none" }),
  beta1 = 0.5, beta2 = 0.999 })
if run.r1 < 0 or run.gp < 0 then experiment.fail(run.script, "options --r1 and --gp must be >= 0") end
if run.r1_every < 1 or run.critic_iters < 1 then
  experiment.fail(run.script, "options --r1-every and --critic-iters must be at least 1")
end
if not (run.beta1 >= 0 and run.beta1 < 1 and run.beta2 >= 0 and run.beta2 < 1) then
  experiment.fail(run.script, string.format("options --beta1 and --beta2 must be in [0, 1), got %g and %g", run.beta1, run.beta2))
end
local d_norm = run.d_norm == "auto" and (run.gp > 0 and "layer" or "batch") or run.d_norm
gen.manual_seed(run.seed)
local G, D = dcgan.Generator { z_dim = run.z_dim }, dcgan.Discriminator { norm = d_norm }
local betas = { run.beta1, run.beta2 }
local opt_g = gen.optim.Adam(G, { lr = run.lr, betas = betas })
local opt_d = gen.optim.Adam(D, { lr = run.lr, betas = betas })

-- One discriminator update on real and generated images (plus the penalties, when on), then a
-- generator update every critic_iters steps. The generator loss is the non-saturating
-- -log D(G(z)) by default (minimax: log(1 - D(G(z))); hinge and wgan: -D(G(z))).
local losses = { "loss_d", "loss_g" }
if run.r1 > 0 then losses[#losses + 1] = "r1" end
if run.gp > 0 then losses[#losses + 1] = "gp" end
local last = {}
local function step(x, _, n)
  local values = gan.step(G, D, opt_g, opt_d, x, gen.randn(x:size(1), run.z_dim), { loss = run.loss, step = n,
    r1 = run.r1, r1_every = run.r1_every, gp = run.gp, critic_iters = run.critic_iters })
  for _, k in ipairs(losses) do -- steps without a G update or a lazy penalty show the last value
    if values[k] == nil then values[k] = last[k] end
    last[k] = values[k]
  end
  return values
end

-- Samples with batch statistics (train-mode batch norm), as the DCGAN paper's generator runs;
-- running averages lag far behind a generator that is still moving.
local function sample(n, _, draw) return G(experiment.noise(draw, n, run.z_dim)) end

experiment.train(run, {
  state = { G = G, D = D, opt_g = opt_g, opt_d = opt_d },
  data = gen.data.fashion_mnist { split = "train" },
  losses = losses,
  step = step,
  sample = sample,
})
