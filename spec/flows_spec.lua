-- gen.flows and the flow models: exact inverses, log-determinants against the full Jacobian,
-- ActNorm's data-dependent initialization, the LU 1x1 convolution, bits/dim, temperature, errors.
local gen = require "gen"
local flows = require "gen.flows"
local fixtures = require "support.fixtures"
local realnvp = require "gen.models.realnvp"
local glow = require "gen.models.glow"

local function close(got, want, tol, label) fixtures.assert_close(got, want, tol, label, { inclusive = true }) end

-- Every parameter of m drawn at random (scaled), so that no layer is the identity it starts as.
local function randomize(m, seed, scale)
  local g = gen.Generator(seed)
  gen.no_grad(function()
    for _, p in ipairs(m:parameters()) do p:copy_(gen.randn(p.shape, { dtype = p.dtype, generator = g }) * (scale or 0.1)) end
  end)
  return m
end

-- Layers with a nontrivial map, built for `channels` channels (float32, then converted by the caller).
local function layer_cases(c)
  return {
    { "ActNorm", function() return randomize(flows.ActNorm(c), 1, 0.5) end },
    { "InvConv1x1", function() return flows.InvConv1x1(c, { generator = gen.Generator(2) }) end },
    { "InvConv1x1LU", function() return randomize(flows.InvConv1x1LU(c, { generator = gen.Generator(3) }), 3, 0.3) end },
    { "AffineCoupling channel", function() return randomize(flows.AffineCoupling(c, { hidden = 6 }), 4, 0.3) end },
    { "AffineCoupling channel parity 1", function() return randomize(flows.AffineCoupling(c, { hidden = 6, parity = 1 }), 5, 0.3) end },
    { "AffineCoupling checkerboard", function() return randomize(flows.AffineCoupling(c, { mask = "checkerboard", hidden = 6 }), 6, 0.3) end },
    { "AffineCoupling checkerboard parity 1", function()
      return randomize(flows.AffineCoupling(c, { mask = "checkerboard", parity = 1, hidden = 6 }), 7, 0.3)
    end },
    { "AdditiveCoupling channel", function() return randomize(flows.AdditiveCoupling(c, { hidden = 6 }), 8, 0.3) end },
    { "AdditiveCoupling checkerboard", function() return randomize(flows.AdditiveCoupling(c, { mask = "checkerboard", hidden = 6 }), 9, 0.3) end },
    { "Squeeze", function() return flows.Squeeze() end },
    { "Unsqueeze", function() return flows.Unsqueeze() end },
    { "Sequential", function()
      return randomize(flows.Sequential { flows.ActNorm(c), flows.InvConv1x1LU(c), flows.AffineCoupling(c, { hidden = 4 }) }, 10, 0.2)
    end },
  }
end

-- the ActNorm case must not initialize itself from the data (its parameters are set already)
local function mark_initialized(m)
  for _, b in ipairs(m:buffers()) do if b:numel() == 1 then b:fill_(1) end end
  return m
end

describe("flow layers", function()
  it("invert exactly: x -> z -> x to 1e-5 in float64 and 1e-3 in float32", function()
    for _, case in ipairs(layer_cases(4)) do
      for _, dtype in ipairs { "float64", "float32" } do
        local m = mark_initialized(case[2]()):type(dtype)
        local input = case[1] == "Unsqueeze" and { 3, 16, 2, 2 } or { 3, 4, 6, 6 }
        local x = gen.randn(input, { dtype = dtype, generator = gen.Generator(11) })
        local z, logdet = m:forward(x)
        assert.same({ 3 }, logdet.shape, case[1])
        assert.equal(dtype, z.dtype, case[1])
        close(m:inverse(z), x, dtype == "float64" and 1e-5 or 1e-3, case[1] .. " " .. dtype)
      end
    end
  end)

  it("give log |det J| of the full Jacobian (autograd, float64)", function()
    for _, case in ipairs(layer_cases(2)) do
      local m = mark_initialized(case[2]()):double()
      local shape = case[1] == "Unsqueeze" and { 1, 8, 2, 2 } or { 1, 2, 4, 4 }
      local x0 = gen.randn(shape, { dtype = "float64", generator = gen.Generator(12) })
      local d = x0:numel()
      local _, logdet = m:forward(x0)
      local rows = {}
      for i = 1, d do
        local x = x0:clone():requires_grad_()
        local z = m:forward(x)
        local pick = gen.zeros({ d }, "float64")
        pick:set_at(i, 1)
        ;(z:reshape(-1) * pick):sum():backward()
        rows[i] = x.grad:reshape(-1)
      end
      local _, want = gen.linalg.slogdet(gen.stack(rows))
      close(logdet:reshape({}), want, 1e-9, case[1])
    end
  end)

  it("ActNorm initializes to zero mean and unit variance per channel, once, and keeps it in the state dict", function()
    local g = gen.Generator(13)
    local x = gen.randn({ 16, 3, 5, 5 }, { generator = g }) * gen.tensor({ 0.5, 2, 7 }):view(1, 3, 1, 1)
      + gen.tensor({ -3, 0.5, 10 }):view(1, 3, 1, 1)
    local an = flows.ActNorm(3)
    local z = an:forward(x)
    local flat = z:transpose(1, 2):reshape(3, -1):double()
    close(flat:mean(2), gen.zeros(3), 1e-5, "mean")
    close(((flat - flat:mean(2, true)) ^ 2):mean(2), gen.ones(3), 1e-4, "variance")
    assert.equal(1, an:state_dict().initialized:item())
    -- a second batch does not re-initialize
    local bias = an.bias:clone()
    an:forward(x * 3 + 1)
    close(an.bias, bias, 0, "bias after a second batch")
    -- neither does a loaded copy
    local copy = flows.ActNorm(3)
    copy:load_state_dict(an:state_dict())
    close(copy:forward(x * 5), an:forward(x * 5), 0, "loaded ActNorm")
  end)

  it("LU 1x1 convolution: W = P L (U + diag s) and log |det| = H W sum log |s| = H W slogdet(W)", function()
    local m = randomize(flows.InvConv1x1LU(5, { generator = gen.Generator(14) }), 14, 0.4):double()
    local W = m:matrix()
    local _, logabs = gen.linalg.slogdet(W)
    local x = gen.randn({ 2, 5, 3, 4 }, { dtype = "float64", generator = gen.Generator(15) })
    local _, logdet = m:forward(x)
    close(logdet, gen.full({ 2 }, logabs:item() * 12, "float64"), 1e-10, "logdet")
    close(m.log_s:sum(), logabs, 1e-10, "sum log |s|")
    -- the plain form agrees when given the same matrix
    local plain = flows.InvConv1x1(5):double()
    gen.no_grad(function() plain.weight:copy_(W) end)
    local zp, lp = plain:forward(x)
    local zl = m:forward(x)
    close(zp, zl, 1e-12, "z")
    close(lp, logdet, 1e-10, "plain logdet")
    -- it starts as a rotation: |det W| = 1
    local fresh = flows.InvConv1x1LU(6, { generator = gen.Generator(16) })
    close(fresh.log_s:sum(), gen.tensor(0), 1e-5, "initial log |det|")
  end)

  it("Split scores the factored-out half and restores it; its prior starts as N(0, I)", function()
    local split = flows.Split(4)
    local x = gen.randn({ 2, 4, 3, 3 }, { dtype = "float64", generator = gen.Generator(17) })
    split:double()
    local z1, logp, z2 = split:forward(x)
    assert.same({ 2, 2, 3, 3 }, z1.shape)
    close(logp, flows.standard_normal_log_prob(z2), 1e-12, "zero-initialized prior")
    close(split:inverse(z1, { z2 = z2 }), x, 0, "inverse with z2")
    -- at temperature 0 the factored-out half is the prior's mean
    randomize(split, 18, 0.3)
    local mean = split:prior_params(z1)
    close(split:inverse(z1, { temperature = 0 }):narrow(2, 3, 2), mean, 0, "temperature 0")
  end)

  it("squeeze moves each 2x2 block into channels, in order", function()
    local x = gen.arange(1, 17):view(1, 1, 4, 4):float()
    local s = flows.squeeze(x)
    assert.same({ 1, 4, 2, 2 }, s.shape)
    assert.same({ { 1, 3 }, { 9, 11 } }, s[1][1]:totable())
    assert.same({ { 2, 4 }, { 10, 12 } }, s[1][2]:totable())
    assert.same({ { 5, 7 }, { 13, 15 } }, s[1][3]:totable())
    close(flows.unsqueeze(s), x, 0, "unsqueeze")
  end)
end)

describe("flow models", function()
  local function models()
    return {
      { "RealNVP", randomize(realnvp.RealNVP { levels = 2, blocks = 1, hidden = 4, resolution = 16 }, 20, 0.05) },
      { "Glow", randomize(glow.Glow { levels = 2, depth = 2, hidden = 4, resolution = 16 }, 21, 0.05) },
      { "Glow plain additive", randomize(glow.Glow { levels = 2, depth = 1, hidden = 4, resolution = 16, lu = false,
        coupling = "additive" }, 22, 0.05) },
    }
  end

  it("invert exactly in float64 (1e-5) and float32 (1e-3), with log p(x) per image", function()
    for _, case in ipairs(models()) do
      local m = mark_initialized(case[2])
      for _, dtype in ipairs { "float64", "float32" } do
        m:type(dtype)
        local x = gen.rand({ 3, 1, 16, 16 }, { dtype = dtype, generator = gen.Generator(23) }) - 0.5
        local zs, logp = m:encode(x)
        assert.same({ 3 }, logp.shape)
        close(logp, m:log_prob(x), 0, case[1] .. " log_prob")
        close(m:decode(zs), x, dtype == "float64" and 1e-5 or 1e-3, case[1] .. " " .. dtype)
      end
    end
  end)

  it("are multi-scale: the latents of a 3x32x32 Glow and a 1x32x32 RealNVP", function()
    local g = glow.Glow { channels = 3, levels = 3, depth = 1, hidden = 4 }
    local zs = g:encode(gen.rand(2, 3, 32, 32) - 0.5)
    assert.same({ { 2, 6, 16, 16 }, { 2, 12, 8, 8 }, { 2, 48, 4, 4 } }, { zs[1].shape, zs[2].shape, zs[3].shape })
    local r = realnvp.RealNVP { levels = 3, blocks = 1, hidden = 4 }
    zs = r:encode(gen.rand(2, 1, 32, 32) - 0.5)
    assert.same({ { 2, 2, 16, 16 }, { 2, 4, 8, 8 }, { 2, 4, 8, 8 } }, { zs[1].shape, zs[2].shape, zs[3].shape })
    assert.same({ 2, 3, 32, 32 }, g:sample(2, { temperature = 0.5 }).shape)
  end)

  it("sample at temperature 0 gives the image of the priors' means", function()
    -- RealNVP: N(0, I) everywhere, so the image of the zero latents
    local r = mark_initialized(randomize(realnvp.RealNVP { levels = 2, blocks = 1, hidden = 4, resolution = 16 }, 24, 0.05))
    local zeros = { gen.zeros(2, 2, 8, 8), gen.zeros(2, 2, 8, 8) }
    close(r:sample(2, { temperature = 0 }), r:decode(zeros), 1e-6, "RealNVP")
    -- Glow: the learned top mean, then each split's conditional mean
    local g = mark_initialized(randomize(glow.Glow { levels = 2, depth = 1, hidden = 4, resolution = 16 }, 25, 0.2))
    local x = g.top_mean:expand(3, 8, 4, 4)
    for l = 2, 1, -1 do
      if l < 2 then x = gen.cat({ x, (g.splits:get(l):prior_params(x)) }, 2) end
      x = g.levels:get(l):inverse(x)
    end
    local s = g:sample(3, { temperature = 0, generator = gen.Generator(1) })
    close(s, x, 1e-6, "Glow")
    assert.is_true((s:narrow(1, 1, 1) - s:narrow(1, 2, 1)):abs():max():item() == 0)
    -- and a positive temperature draws different images from a generator, reproducibly
    local a = g:sample(2, { temperature = 0.7, generator = gen.Generator(2) })
    close(a, g:sample(2, { temperature = 0.7, generator = gen.Generator(2) }), 0, "reproducible")
    assert.is_true((a - s:narrow(1, 1, 2)):abs():max():item() > 1e-3)
  end)

  it("train: a few Adam steps lower the bits/dim of a batch", function()
    gen.manual_seed(26)
    local m = glow.Glow { levels = 2, depth = 1, hidden = 8, resolution = 16 }
    local x = gen.randint(0, 255, { 8, 1, 16, 16 }):float()
    local opt = gen.optim.Adam(m, { lr = 1e-2 })
    local first, last
    for i = 1, 8 do
      opt:zero_grad()
      local loss = flows.bits_per_dim(m, x, { generator = gen.Generator(i) }):mean()
      loss:backward()
      opt:step()
      first, last = first or loss:item(), loss:item()
    end
    assert.is_true(last < first, string.format("%g -> %g", first, last))
  end)
end)

describe("bits per dimension of a flow", function()
  -- a standard normal "model" on known data, against the closed form
  local normal = { log_prob = function(_, y) return flows.standard_normal_log_prob(y) end }

  it("is -(log N(y; 0, I) + D log(1/256)) / (D ln 2) of the dequantized data", function()
    local x = gen.tensor({ 0, 17, 128, 255, 3, 200 }):view(2, 1, 1, 3)
    local bpd = flows.bits_per_dim(normal, x, { generator = gen.Generator(27) })
    local y = gen.likelihood.dequantize(x, { range = { -0.5, 0.5 }, generator = gen.Generator(27) }):double():totable()
    for i = 1, 2 do
      local logp = 0
      for _, v in ipairs(y[i][1][1]) do logp = logp - 0.5 * v * v - 0.5 * math.log(2 * math.pi) end
      local want = -(logp + 3 * math.log(1 / 256)) / (3 * math.log(2))
      assert.near(want, bpd[i]:item(), 1e-5)
    end
  end)

  it("counts the bits of a padded image over the unpadded dimensions", function()
    local x = gen.zeros(1, 1, 2, 2)
    local full = flows.bits_per_dim(normal, x, { generator = gen.Generator(28) }):item()
    local over3 = flows.bits_per_dim(normal, x, { dims = 3, generator = gen.Generator(28) }):item()
    assert.near(full * 4 / 3, over3, 1e-5)
    -- the test-set helper pads with zeros and averages
    local images = gen.full({ 4, 1, 2, 2 }, 9, "uint8")
    local mean = flows.test_bits_per_dim(normal, images, { pad = 1, dims = 4, generator = gen.Generator(0) })
    local padded = gen.pad(images:float(), { 1, 1, 1, 1 })
    assert.same({ 4, 1, 4, 4 }, padded.shape)
    assert.near(flows.bits_per_dim(normal, padded, { dims = 4, generator = gen.Generator(0) }):mean():item(), mean, 1e-4)
  end)
end)

describe("flow errors", function()
  it("name the layer and the shapes", function()
    assert.has_error(function() flows.ActNorm(3):forward(gen.zeros(2, 4, 2, 2)) end,
      "gen.flows.ActNorm: expects 3 channels, got {2,4,2,2}")
    assert.has_error(function() flows.InvConv1x1(3):forward(gen.zeros(2, 3)) end,
      "gen.flows.InvConv1x1: expects a batch of images {N, C, H, W}, got {2,3}")
    assert.has_error(function() flows.squeeze(gen.zeros(1, 1, 3, 4)) end,
      "gen.flows.squeeze: height and width must be even, got {1,1,3,4}")
    assert.has_error(function() flows.unsqueeze(gen.zeros(1, 3, 2, 2)) end,
      "gen.flows.unsqueeze: channels must be a multiple of 4, got {1,3,2,2}")
    assert.has_error(function() flows.AffineCoupling(4, { mask = "stripes" }) end,
      "gen.flows coupling: mask must be \"checkerboard\" or \"channel\", got stripes")
    assert.has_error(function() flows.AffineCoupling(1) end, "gen.flows coupling: a channel mask needs at least 2 channels")
    assert.has_error(function() flows.Split(1) end, "gen.flows.Split: needs at least 2 channels, got 1")
    local g = glow.Glow { levels = 2, depth = 1, hidden = 4, resolution = 16 }
    assert.has_error(function() g:log_prob(gen.zeros(2, 1, 28, 28)) end, "Glow:encode: expects images {N, 1, 16, 16}, got {2,1,28,28}")
    assert.has_error(function() g:sample(0) end, "Glow:sample: n must be a positive integer, got 0")
    assert.has_error(function() g:sample(2, { temperature = -1 }) end, "Glow:sample: temperature must be a number >= 0, got -1")
    assert.has_error(function() glow.Glow { resolution = 28 } end)
    assert.has_error(function() glow.Glow { coupling = "neural" } end)
    assert.has_error(function() realnvp.RealNVP { levels = 0 } end)
    assert.has_error(function() glow.Glow { resolution = 16, levels = 5 } end,
      "gen.models.glow.Glow: resolution must be divisible by 2^5 (5 squeezes)")
    assert.has_error(function() realnvp.RealNVP { resolution = 16, levels = 6 } end,
      "gen.models.realnvp.RealNVP: resolution must be divisible by 2^5 (5 squeezes)")
  end)
end)
