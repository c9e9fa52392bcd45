-- The shared building blocks (gen.nn.blocks), models sized by options, the diffusion pieces and
-- their conversions, metrics with any feature extractor, and the old names that still work.
local gen = require "gen"
local blocks = gen.nn.blocks
local models = gen.models
local diffusion = gen.diffusion

local function max_diff(a, b) return (a - b):abs():max():item() end
local function err_of(f, ...)
  local ok, err = pcall(f, ...)
  assert.is_false(ok, "expected an error")
  return tostring(err)
end

describe("gen.nn.blocks.ClassEmbedding", function()
  it("owns the null label and checks labels in one place", function()
    local e = blocks.ClassEmbedding(10, 4, { null = true })
    assert.equal(11, e.null_label)
    assert.same({ 11, 4 }, e.weight.shape)
    assert.same({ 2, 4 }, e(gen.tensor({ 1, 11 }, "int64")).shape)
    local plain = blocks.ClassEmbedding(10, 4)
    assert.is_nil(plain.null_label)
    assert.same({ 10, 4 }, plain.weight.shape)
    assert.truthy(err_of(plain, gen.tensor({ 1, 11 }, "int64")):find("labels must be in 1..10, got values in 1..11", 1, true))
    assert.truthy(err_of(e, gen.tensor({ 0, 3 }, "int64")):find("labels must be in 1..11 (11 = no class), got values in 0..3", 1, true))
    assert.truthy(err_of(e, gen.tensor { 1, 2 }):find("expected labels as an int64 tensor {N} (classes = 10), got float32 {2}", 1, true))
    assert.truthy(err_of(e, gen.tensor({ 1, 2 }, "int64"), 3, "MyModel"):find("MyModel: expected labels as an int64 tensor {3}", 1, true))
    assert.truthy(err_of(blocks.ClassEmbedding, 0, 4):find("classes must be a positive integer", 1, true))
    -- state-dict key as nn.Embedding's, so models that switched keep their checkpoints
    assert.same({ "weight" }, (function() local k = {} for n in pairs(e:state_dict()) do k[#k + 1] = n end return k end)())
  end)

  it("drops labels to the null label with the given probability, reproducibly", function()
    local labels = gen.full({ 4000 }, 3, "int64")
    gen.manual_seed(1)
    local a = blocks.drop_labels(labels, 0.25, 11)
    gen.manual_seed(1)
    local b = blocks.drop_labels(labels, 0.25, 11)
    assert.same(a:totable(), b:totable())
    local dropped = a:eq(11):sum():item() / 4000
    assert.is_true(math.abs(dropped - 0.25) < 0.03, tostring(dropped))
    assert.equal(4000, a:eq(11):sum():item() + a:eq(3):sum():item())
    assert.equal(labels, blocks.drop_labels(labels, 0, 11))
    assert.truthy(err_of(blocks.drop_labels, labels, 0.5, nil):find("no null label", 1, true))
  end)
end)

describe("gen.nn.blocks embeddings and blocks", function()
  it("embeds times with sinusoids and noise levels with saved Fourier features", function()
    local e = blocks.timestep_embedding(gen.tensor { 0, 10 }, 8)
    assert.same({ 0, 0, 0, 0, 1, 1, 1, 1 }, e[1]:totable())
    assert.near(math.sin(10 * 10000 ^ (-1 / 4)), e[2][2]:item(), 1e-5)
    local f = blocks.FourierEmbedding(6, { scale = 2 })
    local w = f.freqs:totable()
    local y = f(gen.tensor { 0.5 })
    for i = 1, 3 do
      assert.near(math.sin(2 * math.pi * 0.5 * w[i]), y[1][i]:item(), 1e-5)
      assert.near(math.cos(2 * math.pi * 0.5 * w[i]), y[1][i + 3]:item(), 1e-5)
    end
    assert.truthy(f:state_dict().freqs) -- a buffer: saved, not trained
    assert.equal(0, #f:parameters())
    assert.truthy(err_of(blocks.FourierEmbedding, 5):find("dim must be even", 1, true))
  end)

  it("runs a ResBlock with and without an embedding", function()
    local r = blocks.ResBlock(4, 8, 6, 2)
    local x = gen.randn(2, 4, 5, 5)
    assert.same({ 2, 8, 5, 5 }, r(x, gen.randn(2, 6)).shape)
    assert.truthy(err_of(r, x):find("ResBlock: this block takes an embedding {B, 6}", 1, true))
    local plain = blocks.ResBlock(4, 4, 0, 2)
    assert.is_nil(plain.time)
    assert.is_nil(plain.skip)
    assert.same({ 2, 4, 5, 5 }, plain(x).shape)
  end)

  it("computes the pre-norm transformer block as its equations", function()
    gen.manual_seed(4)
    local b = blocks.TransformerBlock(8, 2, { mlp_ratio = 2 })
    local x = gen.randn(3, 5, 8):requires_grad_()
    local y = b(x)
    local h = gen.layer_norm(x, { 8 }, b.norm1.weight, b.norm1.bias)
    local mid = x + b.attn(h)
    local want = mid + b.mlp:get(3)(gen.gelu(b.mlp:get(1)(gen.layer_norm(mid, { 8 }, b.norm2.weight, b.norm2.bias))))
    assert.is_true(max_diff(y, want) < 1e-5)
    assert.same({ 16, 8 }, b.mlp:get(1).weight.shape)
    y:sum():backward()
    assert.truthy(x.grad and b.attn.in_proj_weight.grad and b.mlp:get(3).weight.grad)
    -- causal attention: the first token's output does not depend on the later ones
    local x2 = x:detach():clone()
    x2:narrow(2, 2, 4):normal_(0, 1)
    local c1, c2 = b(x:detach(), { causal = true }), b(x2, { causal = true })
    assert.is_true(max_diff(c1:narrow(2, 1, 1), c2:narrow(2, 1, 1)) < 1e-6)
    assert.truthy(err_of(b, gen.randn(2, 8)):find("TransformerBlock: expected tokens {B, T, 8}, got {2,8}", 1, true))
  end)
end)

describe("models sized by options", function()
  it("builds the DCGAN for 28, 32 and 64 pixels, gray or RGB, conditional or not", function()
    for _, c in ipairs { { 28, 1 }, { 32, 3 }, { 64, 3 } } do
      local r, ch = c[1], c[2]
      local G = models.dcgan.Generator { resolution = r, channels = ch, width = 8, classes = 3 }
      local D = models.dcgan.Discriminator { resolution = r, channels = ch, width = 8, classes = 3 }
      local y = gen.tensor({ 1, 3 }, "int64")
      local x = G(gen.randn(2, 100), y)
      assert.same({ 2, ch, r, r }, x.shape)
      assert.same({ 2, 1 }, D(x, y).shape)
    end
    assert.truthy(err_of(models.dcgan.Generator, { resolution = 48 }):find("DCGANGenerator: resolution must be one of 28, 32, 64, got 48", 1, true))
  end)

  it("builds the VAEs and the MLP GAN at other sizes", function()
    local v = models.vae.Conv { resolution = 32, channels = 3, width = 8, latent = 4 }
    local logits, mu = v(gen.rand(2, 3, 32, 32))
    assert.same({ 2, 3, 32, 32 }, logits.shape)
    assert.same({ 2, 4 }, mu.shape)
    assert.truthy(err_of(models.vae.Conv, { resolution = 30 }):find("ConvVAE: resolution must be divisible by 4, got 30", 1, true))
    local m = models.vae.MLP { resolution = 32, channels = 3, hidden = 16, latent = 4 }
    assert.same({ 2, 3, 32, 32 }, (m(gen.rand(2, 3, 32, 32))).shape)
    local G = models.gan.Generator { resolution = 32, channels = 3, hidden = { 16 } }
    local D = models.gan.Discriminator { resolution = 32, channels = 3, hidden = { 16 } }
    local x = G(gen.randn(2, 64))
    assert.same({ 2, 3, 32, 32 }, x.shape)
    assert.same({ 2, 1 }, D(x).shape)
    assert.truthy(err_of(models.gan.Generator, { channels = 0 }):find("MLPGenerator: channels must be a positive integer", 1, true))
  end)

  it("checks the labels of every conditional model the same way", function()
    local unet = models.unet.UNet { widths = { 8, 16 }, time_dim = 16, heads = 2, groups = 4, classes = 2 }
    assert.equal(3, unet.null_label)
    local x = gen.randn(2, 1, 8, 8)
    assert.truthy(err_of(unet, x, gen.ones(2), gen.tensor({ 1, 4 }, "int64")):find("UNet: labels must be in 1..3 (3 = no class)", 1, true))
    assert.truthy(err_of(unet, gen.randn(2, 1, 7, 7), gen.ones(2)):find("H and W divisible by 2", 1, true))
    local mlp = models.gan.Generator { classes = 10 }
    assert.truthy(err_of(mlp, gen.randn(2, 64), gen.tensor({ 1 }, "int64")):find("MLPGenerator: expected labels as an int64 tensor {2} (classes = 10), got int64 {1}", 1, true))
    local mlp_d = models.gan.Discriminator { classes = 10 }
    assert.truthy(err_of(mlp_d, gen.randn(2, 1, 28, 28), gen.tensor({ 1, 12 }, "int64")):find("MLPDiscriminator: labels must be in 1..10", 1, true))
  end)

  it("loads model files without hiding their errors", function()
    assert.is_nil(models.no_such_model)
    package.preload["gen.models.broken_for_test"] = function() error("syntax trouble in the model file") end
    local ok, err = pcall(require, "gen.models.broken_for_test")
    assert.is_false(ok)
    assert.truthy(tostring(err):find("syntax trouble", 1, true))
    package.preload["gen.models.broken_for_test"] = nil
  end)
end)

describe("gen.diffusion pieces", function()
  it("converts between predictions exactly", function()
    local p = diffusion.parameterization
    local x0, eps, ab = gen.randn(3, 4):double(), gen.randn(3, 4):double(), 0.37
    local x = x0 * math.sqrt(ab) + eps * math.sqrt(1 - ab)
    assert.is_true(max_diff(p.x0_from_eps(x, eps, ab), x0) < 1e-12)
    assert.is_true(max_diff(p.eps_from_x0(x, x0, ab), eps) < 1e-12)
    local v = p.v_from(eps, x0, ab)
    assert.is_true(max_diff(p.eps_from_v(x, v, ab), eps) < 1e-12)
    assert.is_true(max_diff(p.eps_from("v", x, v, ab), eps) < 1e-12)
    assert.is_true(max_diff(p.eps_from("x0", x, x0, ab), eps) < 1e-12)
    assert.equal(eps, p.eps_from(nil, x, eps, ab))
    local t = 0.3
    local xt = x0 * (1 - t) + eps * t
    assert.is_true(max_diff(p.x0_from_velocity(xt, eps - x0, t), x0) < 1e-12)
    assert.equal(250, p.flow_time(0.25))
    assert.truthy(err_of(p.eps_from, "score", x, x, ab):find("prediction must be", 1, true))
  end)

  it("samples a model of any prediction kind with DDIM and DDPM", function()
    local s = diffusion.linear_schedule(50)
    local target = gen.tensor({ -0.9, -0.2, 0.4, 1.0 }):view(1, 1, 2, 2):expand(3, 1, 2, 2):contiguous()
    local p = diffusion.parameterization
    local function oracle(kind)
      return function(x, t)
        local ab = s.alpha_bars[math.tointeger(t[1]:item())]
        local eps = p.eps_from_x0(x, target, ab)
        if kind == "x0" then return target * 1 end
        if kind == "v" then return p.v_from(eps, target, ab) end
        return eps
      end
    end
    for _, kind in ipairs { "eps", "x0", "v" } do
      local a = diffusion.ddim_sample(oracle(kind), s, { 3, 1, 2, 2 }, { steps = 10, progress = false, prediction = kind })
      assert.is_true(max_diff(a, target) < 1e-4, kind)
      local b = diffusion.ddpm_sample(oracle(kind), s, { 3, 1, 2, 2 }, { progress = false, prediction = kind })
      assert.is_true(max_diff(b, target) < 1e-4, kind)
    end
  end)

  it("takes the null label from the model", function()
    local net = models.unet.UNet { widths = { 8, 16 }, time_dim = 16, heads = 2, groups = 4, classes = 2 }
    local x = gen.randn(2, 1, 8, 8)
    local y = gen.tensor({ 1, 2 }, "int64")
    local direct = gen.no_grad(function()
      local c = net(x, gen.ones(2), y)
      local u = net(x, gen.ones(2), gen.full({ 2 }, 3, "int64"))
      return c * 3 - u * 2
    end)
    local guided = gen.no_grad(diffusion.guided, net, x, gen.ones(2), y, { guidance = 2 })
    assert.is_true(max_diff(guided, direct) < 1e-5)
    local plain = function(xx) return xx end
    assert.truthy(err_of(diffusion.guided, plain, x, gen.ones(2), y, { guidance = 1 }):find("needs a model with a null label", 1, true))
    -- training drops labels to the model's null label
    gen.manual_seed(2)
    local loss = diffusion.rectified_flow_loss(net, x, y, { label_dropout = 1 })
    assert.is_true(loss:item() > 0)
  end)
end)

describe("gen.metrics with another feature extractor", function()
  it("scores against the extractor's reference set", function()
    local ref = gen.randn(200, 3)
    local extractor = {
      name = "identity",
      features = function(images) return images:view(images:size(1), -1) end,
      reference = function() return ref end,
    }
    local r = gen.metrics.evaluate(ref + 0, { extractor = extractor })
    assert.is_true(r.fid < 1e-6)
    assert.is_nil(r.inception_score) -- no class probabilities, no IS
    local far = gen.metrics.evaluate(ref + 3, { extractor = extractor })
    assert.near(27, far.fid, 1e-3)
    assert.is_true(far.kid > r.kid)
  end)
end)

describe("old names", function()
  it("still work after the move", function()
    assert.equal(diffusion.rectified_flow_loss, diffusion.flow_loss)
    assert.equal(diffusion.rectified_flow_sample, diffusion.flow_sample)
    assert.equal(gen.gan.discriminator_loss, models.gan.discriminator_loss)
    assert.equal(gen.autoencoder.elbo_loss, models.vae.elbo_loss)
    assert.equal(blocks.ResBlock, models.unet.ResBlock)
    assert.equal(blocks.timestep_embedding, models.unet.timestep_embedding)
    assert.equal(gen.metrics.fashion_mnist.features, gen.metrics.features)
    assert.equal(require "gen.app.ui", require "gen.ui")
    assert.equal(gen.ui, require "gen.ui")
    assert.equal(require "gen.app.repl", require "gen.repl")
  end)
end)
