-- Model pieces: GAN losses, VAE ELBO and interpolation, the UNet, schedules, samplers, guidance.
local gen = require "gen"
local models = gen.models
local diffusion = gen.diffusion

describe("GAN losses", function()
  it("implement minimax and non-saturating objectives", function()
    local gan = models.gan
    local logits = gen.tensor { { 0 }, { 2 } }
    local d = function(l) return 1 / (1 + math.exp(-l)) end
    assert.near(-(math.log(d(0)) + math.log(d(2))) / 2, gan.generator_loss(logits):item(), 1e-6)
    assert.near((math.log(1 - d(0)) + math.log(1 - d(2))) / 2, gan.generator_loss(logits, "minimax"):item(), 1e-6)
    assert.near(-math.log(d(2)) - math.log(1 - d(0)), gan.discriminator_loss(gen.tensor { { 2 } }, gen.tensor { { 0 } }):item(), 1e-6)
    assert.has_error(function() gan.generator_loss(logits, "wasserstein") end)
    local G, D = gan.Generator { classes = 10 }, gan.Discriminator { classes = 10 }
    local y = gen.tensor({ 1, 10 }, "int64")
    local x = G(gen.randn(2, 64), y)
    assert.same({ 2, 1, 28, 28 }, x.shape)
    assert.same({ 2, 1 }, D(x, y).shape)
  end)
end)

describe("conditional DCGAN", function()
  it("conditions G and D on the label, keeps the unconditional layout, and checks the labels", function()
    local dcgan = models.dcgan
    local G, D = dcgan.Generator { width = 8, classes = 10 }, dcgan.Discriminator { width = 8, classes = 10 }
    local z = gen.randn(1, 100):expand(2, 100):contiguous()
    local y = gen.tensor({ 3, 7 }, "int64")
    local x = G(z, y)
    assert.same({ 2, 1, 28, 28 }, x.shape)
    -- the same z drawn as two classes gives two different images
    assert.is_true((x[1] - x[2]):abs():max():item() > 1e-3)
    local logits = D(x, y)
    assert.same({ 2, 1 }, logits.shape)
    logits:sum():backward()
    assert.is_true(D.embed.weight.grad:abs():sum():item() > 0)
    assert.is_true(G.embed.weight.grad:abs():sum():item() > 0)
    -- unconditional models keep the PyTorch-compatible parameter names and take no labels
    local plain = dcgan.Generator { width = 8 }:state_dict()
    assert.same({ 2 * 8 * 7 * 7, 100 }, plain["net.0.weight"].shape)
    for name in pairs(plain) do assert.is_nil(name:find("embed"), name) end
    assert.same({ 2 * 8 * 7 * 7, 110 }, G:state_dict()["net.0.weight"].shape)
    assert.same({ 8, 2, 4, 4 }, D:state_dict()["net.0.weight"].shape)
    for _, bad in ipairs { { nil, "got nil" }, { gen.tensor { 3, 7 }, "got float32 {2}" },
      { gen.tensor({ 3 }, "int64"), "got int64 {1}" } } do
      local ok, err = pcall(G, z, bad[1])
      assert.is_false(ok)
      assert.truthy(tostring(err):find("DCGANGenerator: expected labels as an int64 tensor {2} (classes = 10), " .. bad[2], 1, true), tostring(err))
      ok, err = pcall(D, x:detach(), bad[1])
      assert.is_false(ok)
      assert.truthy(tostring(err):find("DCGANDiscriminator: expected labels", 1, true), tostring(err))
    end
    local ok, err = pcall(G, z, gen.tensor({ 3, 11 }, "int64"))
    assert.is_false(ok)
    assert.truthy(tostring(err):find("11", 1, true), tostring(err))
  end)
end)

describe("DCGAN discriminator norms", function()
  it("normalizes each sample on its own with layer norm, drops the norm with none, and checks the name", function()
    local dcgan = models.dcgan
    gen.manual_seed(3)
    local x = gen.randn(4, 1, 28, 28)
    local alone = { batch = false, layer = true, none = true }
    for norm, per_sample in pairs(alone) do
      local D = dcgan.Discriminator { width = 8, norm = norm }
      local logits = D(x)
      assert.same({ 4, 1 }, logits.shape)
      -- a sample's logit with or without the other three in its batch
      local diff = (D(x:narrow(1, 1, 1)) - logits:narrow(1, 1, 1)):abs():max():item()
      if per_sample then assert.is_true(diff < 1e-5, norm .. " " .. diff) else assert.is_true(diff > 1e-3, norm .. " " .. diff) end
      local sd = D:state_dict()
      assert.equal(norm == "none", sd["net.2.bias"] ~= nil, norm) -- the second convolution's bias
      if norm == "layer" then
        -- the scales start near 1, as the batch norm's do
        assert.near(1, sd["net.3.weight"]:mean():item(), 0.05)
        assert.is_nil(sd["net.3.running_mean"])
      end
    end
    local ok, err = pcall(dcgan.Discriminator, { norm = "instance" })
    assert.is_false(ok)
    assert.truthy(tostring(err):find('DCGANDiscriminator: norm must be "batch", "layer" or "none", got instance', 1, true), tostring(err))
  end)
end)

describe("VAE", function()
  local vae = models.vae
  it("computes the ELBO terms", function()
    local x = gen.tensor { { 0, 1 } }
    local logits, mu, logvar = gen.tensor { { 0, 0 } }, gen.tensor { { 1 } }, gen.tensor { { 0 } }
    local loss, recon, kl = vae.elbo_loss(x, logits, mu, logvar, { beta = 2 })
    assert.near(2 * math.log(2), recon:item(), 1e-6)
    assert.near(0.5, kl:item(), 1e-6)
    assert.near(2 * math.log(2) + 1, loss:item(), 1e-6)
    local _, grec = vae.elbo_loss(x, logits, mu, logvar, { likelihood = "gaussian" })
    assert.near(0.5 * (0.25 + 0.25) + math.log(2 * math.pi), grec:item(), 1e-6)
  end)

  it("encodes, decodes and trains both architectures", function()
    for _, m in ipairs { vae.MLP(), vae.Conv() } do
      local x = gen.rand(3, 1, 28, 28)
      local logits, mu, logvar = m(x)
      assert.same({ 3, 1, 28, 28 }, logits.shape)
      assert.same({ 3, m.latent }, mu.shape)
      local loss = vae.elbo_loss(x, logits, mu, logvar)
      loss:backward()
      assert.truthy(m.mu.weight.grad)
    end
  end)

  it("a discretized decoder gives a probability of the 8-bit image: mean and log-scale channels", function()
    local ae = require "gen.autoencoder"
    for _, m in ipairs { vae.MLP { outputs = 2 }, vae.Conv { outputs = 2 } } do
      local x = gen.randint(0, 255, { 2, 1, 28, 28 }):float() / 255
      local out, mu, logvar = m(x)
      assert.same({ 2, 2, 28, 28 }, out.shape)
      local loss, recon = vae.elbo_loss(x, out, mu, logvar, { likelihood = "discretized" })
      assert.is_true(recon:item() > 0 and loss:item() >= recon:item())
      loss:backward()
      assert.truthy(m.mu.weight.grad)
      local mean = ae.decoded_mean(out, "discretized")
      assert.same({ 2, 1, 28, 28 }, mean.shape)
      assert.is_true(mean:min():item() >= 0 and mean:max():item() <= 1)
    end
    -- a sharp Gaussian centred on the pixel values puts all of each pixel's mass in its own bin
    local x = gen.tensor { 0, 1 / 255, 0.5, 254 / 255, 1 }:view(1, 1, 1, 5)
    local centre = (x * 2 - 1):clamp(-0.999999, 0.999999)
    local out = gen.cat({ (((centre + 1) / (1 - centre)):log() * 0.5), gen.full({ 1, 1, 1, 5 }, -9) }, 2) -- atanh, log-scale
    assert.near(0, ae.log_likelihood(x, out, "discretized"):item(), 1e-4)
    assert.has_error(function() ae.log_likelihood(x, out:narrow(2, 1, 1), "discretized") end,
      "gen.autoencoder.log_likelihood: a discretized likelihood needs 2 output channels (mean and log-scale) for 1 image channels, got 1 (build the model with outputs = 2)")
    assert.has_error(function() ae.log_likelihood(x, out, "laplace") end)
    assert.has_error(function() vae.MLP { outputs = 3 } end, "MLPVAE: outputs must be 1 or 2, got 3")
  end)

  it("the importance-weighted bound: exact when q is the posterior, tighter with more samples", function()
    local ae = require "gen.autoencoder"
    local images = gen.randint(0, 255, { 6, 1, 28, 28 }):byte()
    -- a decoder that ignores z has the prior as its posterior: an encoder giving N(0, I) makes every
    -- weight p(x), so the bound is -log p(x) for any k (16 samples a pass: k = 40 takes three), and equals the ELBO
    local const = gen.randn(1, 1, 28, 28)
    local blind = {
      encode = function(_, x) return gen.zeros(x:size(1), 3), gen.zeros(x:size(1), 3) end,
      decode = function(_, z) return const:expand(z:size(1), 1, 28, 28) end,
    }
    local exact = -ae.log_likelihood(images:float() / 255, const:expand(6, 1, 28, 28), "gaussian"):mean():item()
    for _, k in ipairs { 1, 7, 40 } do
      local nll = ae.iw_nll(blind, images, { k = k, likelihood = "gaussian", samples = 16, generator = gen.Generator(k) })
      assert.near(exact, nll, 1e-3 * math.abs(exact))
    end
    assert.near(exact, ae.test_nll(blind, images, { likelihood = "gaussian", generator = gen.Generator(0) }), 1e-3 * math.abs(exact))
    -- an untrained VAE's q is far from its posterior: 64 samples tighten the bound a lot
    gen.manual_seed(3)
    local m = vae.MLP { hidden = 32, latent = 4 }
    local one = ae.iw_nll(m, images, { k = 1, generator = gen.Generator(1) })
    local many = ae.iw_nll(m, images, { k = 64, samples = 100, generator = gen.Generator(1) })
    assert.is_true(many < one, string.format("k = 64: %.3f, k = 1: %.3f", many, one))
    assert.has_error(function() ae.iw_nll(m, images, { k = 0 }) end, "gen.autoencoder.iw_nll: k must be a positive integer, got 0")
  end)

  it("interpolates linearly and spherically", function()
    local a, b = gen.tensor { { 1, 0 } }, gen.tensor { { 0, 1 } }
    assert.same({ { 0.5, 0.5 } }, models.interpolate(a, b, 0.5, "linear"):totable())
    local mid = models.interpolate(a, b, 0.5):totable()[1]
    assert.near(math.sqrt(0.5), mid[1], 1e-6)
    assert.near(1, mid[1] ^ 2 + mid[2] ^ 2, 1e-6)
    assert.same(a:totable(), models.interpolate(a, b, 0):totable())
  end)
end)

describe("UNet", function()
  it("maps images to images, conditioned on time and class", function()
    local net = models.unet.UNet { widths = { 16, 32 }, time_dim = 32, heads = 2, groups = 4, classes = 3 }
    local x = gen.randn(2, 1, 8, 8)
    local y = net(x, gen.tensor { 1, 500 }, gen.tensor({ 1, 4 }, "int64"))
    assert.same({ 2, 1, 8, 8 }, y.shape)
    y:sum():backward()
    assert.truthy(net.input.weight.grad)
    assert.truthy(net.class_embed.weight.grad)
    assert.has_error(function() net(x, gen.tensor { 1, 2 }) end)
    local e = models.unet.timestep_embedding(gen.tensor { 0, 10 }, 8)
    assert.same({ 2, 8 }, e.shape)
    assert.same({ 0, 0, 0, 0, 1, 1, 1, 1 }, e[1]:totable())
  end)
end)

describe("diffusion", function()
  it("builds schedules", function()
    local lin = diffusion.linear_schedule(1000)
    assert.near(1 - 1e-4, lin.alpha_bars[1], 1e-12)
    assert.near(0.02, lin.betas[1000], 1e-12)
    assert.is_true(lin.alpha_bars[1000] < 1e-4)
    local cos = diffusion.cosine_schedule(100)
    for t = 2, 100 do assert.is_true(cos.alpha_bars[t] < cos.alpha_bars[t - 1]) end
  end)

  it("trains the DDPM and flow objectives", function()
    local net = models.unet.UNet { widths = { 8, 16 }, time_dim = 16, heads = 2, groups = 4, classes = 2 }
    local x = gen.randn(4, 1, 8, 8)
    local y = gen.tensor({ 1, 2, 1, 2 }, "int64")
    local l1 = diffusion.ddpm_loss(net, diffusion.linear_schedule(100), x, y, { label_dropout = 0.5, null_class = 3 })
    local l2 = diffusion.flow_loss(net, x, y)
    assert.is_true(l1:item() > 0 and l2:item() > 0)
    ;(l1 + l2):backward()
    assert.truthy(net.output.weight.grad)
  end)

  it("samples with DDPM, DDIM and Euler, calling back every step", function()
    local zero = function(x) return x * 0 end
    local s = diffusion.linear_schedule(20)
    local calls = 0
    local out = diffusion.ddpm_sample(zero, s, { 2, 1, 4, 4 }, { progress = false, callback = function() calls = calls + 1 end })
    assert.same({ 2, 1, 4, 4 }, out.shape)
    assert.equal(20, calls)
    gen.manual_seed(5)
    local a = diffusion.ddim_sample(zero, s, { 2, 1, 4, 4 }, { steps = 5, progress = false })
    gen.manual_seed(5)
    local b = diffusion.ddim_sample(zero, s, { 2, 1, 4, 4 }, { steps = 5, progress = false })
    assert.same(a:totable(), b:totable())
    -- with v(x) = x, each Euler step scales x by (1 - 1/steps)
    gen.manual_seed(9)
    local x0 = gen.randn(1, 1, 2, 2)
    gen.manual_seed(9)
    local f = diffusion.flow_sample(function(x) return x end, { 1, 1, 2, 2 }, { steps = 4, progress = false })
    assert.is_true((f - x0 * 0.75 ^ 4):abs():max():item() < 1e-6)
  end)

  it("recovers the data point from an exact noise oracle, and clips x0 to [-1, 1]", function()
    local s = diffusion.linear_schedule(50)
    local target = gen.tensor({ -0.9, -0.2, 0.4, 1.0 }):view(1, 1, 2, 2):expand(3, 1, 2, 2):contiguous()
    local function oracle(x, t) -- the true eps for data = target
      local ab = s.alpha_bars[math.tointeger(t[1]:item())]
      return (x - target * math.sqrt(ab)) / math.sqrt(1 - ab)
    end
    for _, clip in ipairs { true, false } do
      for _, sample in ipairs {
        function() return diffusion.ddim_sample(oracle, s, { 3, 1, 2, 2 }, { steps = 10, progress = false, clip = clip }) end,
        function() return diffusion.ddpm_sample(oracle, s, { 3, 1, 2, 2 }, { progress = false, clip = clip }) end,
      } do
        assert.is_true((sample() - target):abs():max():item() < 1e-4)
      end
    end
    -- a model that predicts no noise claims x0 = x_T / sqrt(ab_T), far outside the data range
    local silent = function(x) return x * 0 end
    gen.manual_seed(3)
    local clipped = diffusion.ddim_sample(silent, s, { 4, 1, 2, 2 }, { steps = 5, progress = false })
    gen.manual_seed(3)
    local raw = diffusion.ddim_sample(silent, s, { 4, 1, 2, 2 }, { steps = 5, progress = false, clip = false })
    assert.is_true(clipped:abs():max():item() <= 1 + 1e-6)
    assert.is_true(raw:abs():max():item() > 2)
  end)

  it("guides: (1 + w) v(class) - w v(no class)", function()
    local model = function(x, _, labels) return x * 0 + labels:float():view(-1, 1, 1, 1) end
    local v = diffusion.guided(model, gen.zeros(2, 1, 1, 1), gen.ones(2), gen.tensor({ 1, 2 }, "int64"), { guidance = 2, null_class = 11 })
    assert.same({ 3 * 1 - 2 * 11, 3 * 2 - 2 * 11 }, v:view(2):totable())
  end)
end)
