-- StyleGAN on Fashion-MNIST (Karras et al., 2019, 2020): a mapping network z -> w, styles in every
-- synthesis layer by modulated convolutions (StyleGAN2, --style modulated) or AdaIN (--style
-- adain), per-pixel noise, toRGB skips, style mixing (--mixing P), a residual discriminator with
-- the minibatch standard deviation, an EMA of G for sampling, and the truncation trick (--psi).
-- 28x28 images go through 32x32 networks (--resolution 32 trains on the images padded to 32).
-- --r1 GAMMA adds R1 on D every --r1-every steps (lazy regularization); it needs double backward.
--   bin/gen examples/gan/stylegan.lua --steps 3000
--   bin/gen examples/gan/stylegan.lua --sample 10000 --psi 1
--   bin/gen examples/gan/stylegan.lua --style adain --out runs/stylegan_adain --steps 3000
-- Training also writes style_mixing.png, truncation.png and interpolation.png (EMA weights).
local gen = require "gen"
local stylegan = require "gen.models.stylegan"
local train = require "gen.gan.stylegan"
local experiment = require "gen.experiment"

local run = experiment.parse("stylegan", arg, { steps = 3000, batch = 32, lr = 2e-3, z_dim = 128, width = 64,
  mapping_layers = 4, style = experiment.choice("modulated", { "modulated", "adain" }),
  resolution = experiment.choice("28", { "28", "32" }), psi = 1.0, mixing = 0.9, r1 = 0.0, r1_every = 16, ema = 0.999 })
if run.r1 > 0 and not train.r1_available() then
  experiment.fail(run.script, "--r1 needs gen.autograd.grad (double backward) and gen.gan.r1_penalty, which this build does not have")
end
if run.r1_every < 1 then experiment.fail(run.script, "option --r1-every must be at least 1, got " .. run.r1_every) end
if run.mixing < 0 or run.mixing > 1 then experiment.fail(run.script, "option --mixing must be in [0, 1], got " .. run.mixing) end
gen.manual_seed(run.seed)
local resolution = tonumber(run.resolution)
local config = { resolution = resolution, style = run.style, z_dim = run.z_dim, width = run.width, mapping_layers = run.mapping_layers }
local G, D = stylegan.Generator(config), stylegan.Discriminator(config)
-- Adam (0, 0.99) as in StyleGAN2; the equalized learning rate makes one lr fit every layer
local opt_g = gen.optim.Adam(G, { lr = run.lr, betas = { 0, 0.99 }, eps = 1e-8 })
local opt_d = gen.optim.Adam(D, { lr = run.lr, betas = { 0, 0.99 }, eps = 1e-8 })
local ema = gen.optim.EMA(G, run.ema)

local function step(x, _, i)
  return train.step(G, D, opt_g, opt_d, x, { mixing = run.mixing, r1 = run.r1, r1_every = run.r1_every, step = i, ema = ema })
end

-- Samples of the EMA generator in evaluation mode (w_avg frozen), truncated by --psi, 250 at a
-- time (--sample 10000 in one batch would hold gigabytes of activations); 32x32 samples are
-- cropped to the data's 28x28.
local function with_ema(fn)
  return ema:call(function()
    G:eval()
    local ok, r = pcall(fn)
    G:train()
    if not ok then error(r, 0) end
    return r
  end)
end
local function sample(n)
  return with_ema(function()
    local parts = {}
    for first = 1, n, 250 do
      local x = G(gen.randn(math.min(250, n - first + 1), run.z_dim), { psi = run.psi })
      parts[#parts + 1] = resolution == 32 and x:narrow(3, 3, 28):narrow(4, 3, 28) or x
    end
    return gen.cat(parts, 1)
  end)
end

experiment.train(run, {
  state = { G = G, D = D, opt_g = opt_g, opt_d = opt_d, ema = ema },
  data = gen.data.fashion_mnist { split = "train" },
  transform = resolution == 32 and { pad = 2 } or nil,
  losses = { "loss_d", "loss_g" },
  step = step,
  sample = sample,
  after = function() with_ema(function() train.write_figures(G, run.out, { seed = run.seed }) end) end,
})
