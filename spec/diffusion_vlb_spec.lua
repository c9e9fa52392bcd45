-- Improved DDPM: the bound's terms against closed forms, learned variances, the hybrid loss.
local gen = require "gen"
local diffusion = require "gen.diffusion"
local vlb = diffusion.vlb

describe("gen.diffusion.vlb", function()
  local process = diffusion.process("vp", { betas = "cosine", T = 50 })
  local sched = process.schedule

  it("computes the Gaussian KL in closed form", function()
    -- KL(N(m1, v1) || N(m2, v2)) = 0.5 (log(v2 / v1) + (v1 + (m1 - m2)^2) / v2 - 1)
    local m1, v1, m2, v2 = 0.3, 0.5, -0.2, 1.7
    local want = 0.5 * (math.log(v2 / v1) + (v1 + (m1 - m2) ^ 2) / v2 - 1)
    assert.near(want, vlb.normal_kl(m1, math.log(v1), m2, math.log(v2)), 1e-15)
    local t = vlb.normal_kl(gen.tensor({ m1, m1 }, "float64"), math.log(v1), gen.tensor({ m2, m1 }, "float64"), math.log(v2))
    assert.near(want, t:totable()[1], 1e-15)
    assert.near(0.5 * (math.log(v2 / v1) + v1 / v2 - 1), t:totable()[2], 1e-15)
    assert.near(0, vlb.normal_kl(gen.tensor({ 1.5 }), gen.tensor({ -0.3 }), gen.tensor({ 1.5 }), gen.tensor({ -0.3 })):item(), 1e-7)
  end)

  it("gives the standard normal CDF", function()
    local cdf = vlb.standard_normal_cdf(gen.tensor({ 0, 1, -1.96 }, "float64")):totable()
    assert.near(0.5, cdf[1], 1e-15)
    assert.near(0.84134474606854293, cdf[2], 1e-14)
    assert.near(0.024997895148220435, cdf[3], 1e-14)
  end)

  it("discretizes a Gaussian over the 256 levels into probabilities that sum to 1", function()
    local levels = gen.arange(0, 256):double() / 127.5 - 1
    for _, case in ipairs { { 0.1, -2 }, { -0.97, -4 }, { 0.5, 0.3 }, { 2.5, -6 } } do
      local mean, log_scale = case[1], case[2]
      local logp = vlb.discretized_gaussian_log_likelihood(levels, gen.full({ 256 }, mean, "float64"), gen.full({ 256 }, log_scale, "float64"))
      assert.near(1, logp:exp():sum():item(), 1e-6)
      -- an inner bin holds the integral of the density over [x - 1/255, x + 1/255]
      local x = levels:totable()[100]
      local s = math.exp(log_scale)
      local function cdf(v) return vlb.standard_normal_cdf(gen.tensor({ (v - mean) / s }, "float64")):item() end
      local want = cdf(x + 1 / 255) - cdf(x - 1 / 255)
      if want > 1e-10 then assert.near(math.log(want), logp:totable()[100], 1e-6) end
    end
  end)

  it("has the posterior q(x_{t-1} | x_t, x_0) of Bayes' rule", function()
    local x0, xt = gen.tensor({ { { { 0.4 } } } }, "float64"), gen.tensor({ { { { -0.7 } } } }, "float64")
    for _, t in ipairs { 2, 17, 50 } do
      local ab_prev, alpha, beta = sched.alpha_bars[t - 1], sched.alphas[t], sched.betas[t]
      -- q(x_{t-1} | x_0) = N(sqrt(ab_prev) x0, 1 - ab_prev) times q(x_t | x_{t-1}) = N(sqrt(alpha) x_{t-1}, beta)
      local precision = 1 / (1 - ab_prev) + alpha / beta
      local mean = (math.sqrt(ab_prev) * 0.4 / (1 - ab_prev) + math.sqrt(alpha) * -0.7 / beta) / precision
      local m, logvar = vlb.q_posterior(process, x0, xt, gen.tensor({ t }, "int64"))
      assert.near(mean, m:item(), 1e-6)
      assert.near(-math.log(precision), logvar:item(), 1e-6)
    end
  end)

  it("interpolates the learned log-variance between log beta~ (v = -1) and log beta (v = 1)", function()
    local xt = gen.randn(2, 1, 3, 3)
    local t = gen.tensor({ 5, 30 }, "int64")
    local function logvar(v)
      local out = gen.cat({ gen.zeros(2, 1, 3, 3), gen.full({ 2, 1, 3, 3 }, v) }, 2)
      local _, lv = vlb.p_mean_variance(process, out, xt, t, { variance = "learned" })
      return lv:totable()
    end
    local hi, lo, mid = logvar(1), logvar(-1), logvar(0)
    for i, step in ipairs { 5, 30 } do
      local beta = sched.betas[step]
      local tilde = beta * (1 - sched.alpha_bars[step - 1]) / (1 - sched.alpha_bars[step])
      assert.near(math.log(beta), hi[i][1][2][2], 1e-5)
      assert.near(math.log(tilde), lo[i][1][2][2], 1e-5)
      assert.near(0.5 * (math.log(beta) + math.log(tilde)), mid[i][1][3][1], 1e-5)
    end
  end)

  it("makes every KL term vanish for the exact x0 and the posterior variance", function()
    local x0 = gen.rand(3, 1, 4, 4) * 2 - 1
    local t = gen.tensor({ 2, 20, 50 }, "int64")
    local c = sched.alpha_bars
    local ab = gen.tensor({ c[2], c[20], c[50] }):view(3, 1, 1, 1)
    local xt = x0 * ab:sqrt() + gen.randn(3, 1, 4, 4) * (1 - ab):sqrt()
    local mean, logvar = vlb.p_mean_variance(process, x0, xt, t, { prediction = "x0", variance = "posterior" })
    local terms = vlb.vlb_terms(process, x0, xt, t, mean, logvar):totable()
    for i = 1, 3 do assert.near(0, terms[i], 1e-4) end
    -- and a wrong mean costs exactly (m - m*)^2 / (2 var) per element
    local shifted = vlb.vlb_terms(process, x0, xt, t, mean + 0.01, logvar):totable()
    for i, step in ipairs { 2, 20, 50 } do
      local tilde = sched.betas[step] * (1 - c[step - 1]) / (1 - c[step])
      assert.near(16 * 1e-4 / (2 * tilde), shifted[i], 2e-3 * 16 * 1e-4 / (2 * tilde) + 1e-5)
    end
  end)

  it("keeps the mean out of the hybrid loss's bound term", function()
    local out = gen.randn(2, 2, 4, 4):requires_grad_()
    local function model() return out * 1 end
    local x0 = gen.rand(2, 1, 4, 4) * 2 - 1
    gen.manual_seed(1)
    local _, _, bound = vlb.hybrid_loss(model, process, x0)
    bound:backward()
    assert.are.equal(0, out.grad:narrow(2, 1, 1):abs():sum():item())
    assert.is_true(out.grad:narrow(2, 2, 1):abs():sum():item() > 0)
    out.grad = nil
    gen.manual_seed(1)
    local _, simple = vlb.hybrid_loss(model, process, x0)
    simple:backward()
    assert.are.equal(0, out.grad:narrow(2, 2, 1):abs():sum():item())
    assert.is_true(out.grad:narrow(2, 1, 1):abs():sum():item() > 0)
  end)

  it("bounds the bits per dimension: a perfect denoiser of one image scores far below an untrained net", function()
    local levels = gen.randint(0, 255, { 1, 4, 4 })
    local img = (levels:float() / 127.5 - 1):view(1, 1, 4, 4)
    -- the exact x0 predictor of a one-image data set, with the posterior variance
    local function oracle(x) return img:expand(x:size(1), 1, 4, 4):contiguous() end
    local exact = vlb.variational_bound(oracle, process, img, { prediction = "x0", variance = "posterior", progress = false,
      generator = gen.Generator(9) }):item()
    local blind = vlb.variational_bound(function(x) return x * 0 end, process, img, { prediction = "eps", variance = "beta", progress = false }):item()
    assert.is_true(exact < blind, string.format("%g vs %g", exact, blind))
    -- the middle terms vanish, so the bound is the prior's KL plus the decoder's L_0
    local prior = vlb.prior_kl(process, img):item()
    assert.is_true(exact >= prior - 1e-6)
    local again, parts = vlb.variational_bound(oracle, process, img, { prediction = "x0", variance = "posterior",
      progress = false, generator = gen.Generator(9) })
    assert.equal(exact, again:item())
    assert.near(prior, parts.prior:item(), 1e-12)
    assert.near(0, parts.kl:item(), 1e-3)
    assert.near(exact, (parts.prior + parts.kl + parts.decoder):item(), 1e-9)
    local _, blind_parts = vlb.variational_bound(function(x) return x * 0 end, process, img, { prediction = "eps", variance = "beta",
      progress = false })
    assert.is_true(blind_parts.kl:item() > 1, tostring(blind_parts.kl:item()))
    local bpd, bits = diffusion.vlb_bits_per_dim(oracle, process, levels:byte(),
      { prediction = "x0", variance = "posterior", progress = false, generator = gen.Generator(9) })
    assert.near(exact / (16 * math.log(2)), bpd, 1e-4)
    assert.near(parts.decoder:item() / (16 * math.log(2)), bits.decoder, 1e-4)
    assert.near(bpd, bits.prior + bits.kl + bits.decoder, 1e-12)
  end)

  it("samples with learned variances: v = 1 is DDPM's beta, v = -1 the posterior's", function()
    local function model(x) return gen.cat({ x * 0.1, gen.full(x.shape, 1) }, 2) end
    local function model_lo(x) return gen.cat({ x * 0.1, gen.full(x.shape, -1) }, 2) end
    local function plain(x) return x * 0.1 end
    local function draw(m, variance, learned)
      local den = diffusion.denoiser(m, process, "eps", { learned_variance = learned })
      return diffusion.sample(den, { 2, 1, 4, 4 }, { sampler = "ddpm", steps = 10, variance = variance, progress = false,
        generator = gen.Generator(5) })
    end
    local learned_hi, beta = draw(model, "learned", true), draw(plain, "beta")
    assert.is_true((learned_hi - beta):abs():max():item() < 1e-4)
    local learned_lo, post = draw(model_lo, "learned", true), draw(plain, "posterior")
    assert.is_true((learned_lo - post):abs():max():item() < 1e-4)
    assert.has_error(function() draw(plain, "learned") end, "gen.diffusion.sample_ddpm: variance \"learned\" needs a denoiser built with learned_variance = true")
  end)

  it("rejects what it cannot bound, naming the function", function()
    local xt = gen.randn(1, 1, 2, 2)
    local t = gen.tensor({ 3 }, "int64")
    assert.has_error(function() vlb.p_mean_variance(process, gen.zeros(1, 1, 2, 2), xt, t, { variance = "learned" }) end,
      "gen.diffusion.p_mean_variance: with variance learned the output needs 2 channels for images of 1, got {1,1,2,2}")
    assert.has_error(function() vlb.p_mean_variance(process, gen.zeros(1, 1, 2, 2), xt, t, { prediction = "score", variance = "beta" }) end,
      "gen.diffusion.p_mean_variance: prediction must be eps, x0 or v, got score")
    assert.has_error(function() vlb.q_posterior(diffusion.process("edm"), xt, xt, t) end,
      "gen.diffusion.q_posterior: needs the discrete VP chain (gen.diffusion.process(\"vp\") or a schedule), got edm")
    assert.has_error(function() vlb.variational_bound(function(x) return x end, process, xt, { steps = 50 }) end,
      "gen.diffusion.variational_bound: steps must be an integer in 1..49, got 50")
    assert.has_error(function() vlb.hybrid_loss(function(x) return x end, process, xt) end,
      "gen.diffusion.hybrid_loss: the model must output 2C = 2 channels (prediction and variance), got {1,1,2,2}")
  end)
end)
