-- StyleGAN and its GAN training pieces: modulated convolutions against the explicit per-sample
-- convolution, demodulation, spectral normalization against an SVD (PyTorch fixture), the
-- equalized learning rate, truncation, style mixing, the projection discriminator, EMA of G, and
-- the clear errors of bad options.
local gen = require "gen"
local nn = gen.nn
local sg = require "gen.models.stylegan"
local train = require "gen.gan.stylegan"
local fixtures = require "support.fixtures"
local ref = require "fixtures.spectral_ref"

local function maxdiff(a, b) return (a:double() - b:double()):abs():max():item() end

local tiny = { width = 4, z_dim = 8, mapping_layers = 2 }
local function opts(extra)
  local o = {}
  for k, v in pairs(tiny) do o[k] = v end
  for k, v in pairs(extra or {}) do o[k] = v end
  return o
end

describe("modulated_conv2d", function()
  gen.manual_seed(1)
  local n, cin, cout = 3, 4, 5
  local x = gen.randn(n, cin, 6, 6, { dtype = "float64" })
  local w = gen.randn(cout, cin, 3, 3, { dtype = "float64" })
  local s = gen.randn(n, cin, { dtype = "float64" }) + 1

  -- the specification: sample i convolved alone with weight * s_i (and demodulated by hand)
  local function explicit(demodulate)
    local out = {}
    for i = 1, n do
      local wi = w * s:narrow(1, i, 1):view(1, cin, 1, 1)
      if demodulate then
        local norms = (wi * wi):view(cout, -1):sum(2):view(cout, 1, 1, 1)
        wi = wi / (norms + 1e-8):sqrt()
      end
      out[i] = gen.conv2d(x:narrow(1, i, 1), wi, nil, { padding = 1 })
    end
    return gen.cat(out, 1)
  end

  for _, fused in ipairs { true, false } do
    it("equals the per-sample convolution with scaled weights (fused = " .. tostring(fused) .. ")", function()
      for _, demod in ipairs { true, false } do
        local got = sg.modulated_conv2d(x, w, s, { padding = 1, demodulate = demod, fused = fused })
        assert.same({ n, cout, 6, 6 }, got.shape)
        assert.is_true(maxdiff(got, explicit(demod)) < 1e-12, "demodulate = " .. tostring(demod))
      end
    end)
  end

  it("demodulation leaves unit-norm weights per output channel (unit-variance outputs)", function()
    -- with x a one-hot over the receptive field of one output pixel, the output is that weight
    -- entry; summing the squares of all such outputs gives the norm of each demodulated filter
    local k = cin * 9
    for i = 1, n do
      local xi = gen.eye(k):double():view(k, cin, 3, 3) -- one unit input per weight entry
      local si = s:narrow(1, i, 1):expand(k, cin):contiguous()
      local y = sg.modulated_conv2d(xi, w, si, { fused = true }):view(k, cout) -- the entries of w'_i
      local norms = (y * y):sum(1):view(cout)
      assert.is_true(maxdiff(norms, gen.ones(cout, { dtype = "float64" })) < 1e-8)
    end
  end)

  it("has gradients that match finite differences in x, weight and styles", function()
    local xs = gen.randn(2, 2, 4, 4, { dtype = "float64" }):requires_grad_()
    local ws = gen.randn(3, 2, 3, 3, { dtype = "float64" }):requires_grad_()
    local ss = (gen.randn(2, 2, { dtype = "float64" }) + 2):requires_grad_()
    assert.is_true(gen.testing.gradcheck(function(a, b, c) return sg.modulated_conv2d(a, b, c, { padding = 1 }) end, { xs, ws, ss }))
  end)

  it("names the shapes it cannot use", function()
    local ok, err = pcall(sg.modulated_conv2d, x, w, gen.randn(n, cin + 1, { dtype = "float64" }))
    assert.is_false(ok)
    assert.truthy(tostring(err):find("modulated_conv2d: expected x {N, Cin, H, W}", 1, true), err)
    assert.truthy(tostring(err):find("styles {3,5}", 1, true), err)
  end)
end)

describe("gen.nn.utils.spectral_norm", function()
  local function from(t) return fixtures.tensor(t, "float64") end

  it("converges to the largest singular value from an SVD, for Linear, Conv2d and ConvTranspose2d", function()
    local cases = {
      { nn.Linear(9, 6), ref.linear },
      { nn.Conv2d(3, 8, 3), ref.conv },
      { nn.ConvTranspose2d(4, 5, 3), ref.convt },
    }
    for _, c in ipairs(cases) do
      local m, r = c[1]:double(), c[2]
      gen.no_grad(function() m.weight:copy_(from(r.weight)) end)
      nn.utils.spectral_norm(m, { power_iterations = 50, generator = gen.Generator(0) })
      m(m.__name == "Linear" and gen.zeros(1, 9, { dtype = "float64" }) or gen.zeros(1, m.in_channels, 3, 3, { dtype = "float64" }))
      local sigma = nn.utils.sigma(m)
      assert.is_true(math.abs(sigma - r.sigma) < 1e-9 * r.sigma, m.__name .. ": " .. sigma .. " vs " .. r.sigma)
      -- the weight the layer used has spectral norm 1: W / sigma
      assert.is_true(maxdiff(m.weight, from(r.weight) / r.sigma) < 1e-9)
    end
  end)

  it("matches PyTorch's training step: u, v, the output and the gradient through sigma", function()
    local m = nn.Linear(9, 6):double()
    gen.no_grad(function() m.weight:copy_(from(ref.linear.weight)); m.bias:zero_() end)
    nn.utils.spectral_norm(m)
    m.weight_u:copy_(from(ref.step.u0))
    m.weight_v:copy_(from(ref.step.v0))
    local y = m(from(ref.step.x))
    fixtures.assert_close(y, ref.step.y, 1e-12, "spectral norm step")
    fixtures.assert_close(m.weight_u, ref.step.u1, 1e-12, "spectral norm step")
    fixtures.assert_close(m.weight_v, ref.step.v1, 1e-12, "spectral norm step");
    (y * fixtures.upstream(y)):sum():backward()
    fixtures.assert_close(m.weight_orig.grad, ref.step.grad, 1e-12, "spectral norm step")
  end)

  it("keeps u and v as buffers under PyTorch's names, restored by load_state_dict; eval mode does not iterate", function()
    local m = nn.utils.spectral_norm(nn.Conv2d(2, 3, 3))
    local keys = {}
    for k in pairs(m:state_dict()) do keys[#keys + 1] = k end
    table.sort(keys)
    assert.same({ "bias", "weight_orig", "weight_u", "weight_v" }, keys)
    local x = gen.randn(2, 2, 5, 5)
    m(x)
    local copy = nn.utils.spectral_norm(nn.Conv2d(2, 3, 3))
    copy:load_state_dict(m:state_dict())
    assert.equal(0, maxdiff(copy(x), m(x)))
    m:eval()
    local u = m.weight_u:clone()
    m(x)
    assert.equal(0, maxdiff(u, m.weight_u))
    nn.utils.remove_spectral_norm(m)
    assert.is_nil(m:state_dict().weight_u)
    assert.truthy(m:state_dict().weight)
  end)

  it("raises clear errors", function()
    local ok, err = pcall(nn.utils.spectral_norm, nn.Linear(2, 2), { name = "gamma" })
    assert.is_false(ok)
    assert.truthy(tostring(err):find("has no parameter 'gamma'", 1, true), err)
    ok, err = pcall(nn.utils.spectral_norm, nn.Linear(2, 2), { power_iterations = 0 })
    assert.is_false(ok)
    assert.truthy(tostring(err):find("power_iterations must be a positive integer", 1, true), err)
    local m = nn.utils.spectral_norm(nn.Linear(2, 2))
    ok, err = pcall(nn.utils.spectral_norm, m)
    assert.is_false(ok)
    assert.truthy(tostring(err):find("already spectrally normalized", 1, true), err)
    ok, err = pcall(nn.utils.spectral_norm, {})
    assert.is_false(ok)
    assert.truthy(tostring(err):find("expected a module", 1, true), err)
  end)
end)

describe("equalized learning rate", function()
  it("stores N(0, 1) / lr_mul weights and computes with c = gain lr_mul / sqrt(fan_in)", function()
    gen.manual_seed(0)
    local l = nn.Linear(400, 300, { equalized = true, lr_mul = 0.01, bias_init = 0.5 })
    local sd = l.weight:std():item()
    assert.is_true(math.abs(sd - 100) < 2, sd)
    local x = gen.randn(5, 400)
    local want = gen.linear(x, l.weight * (0.01 / 20), l.bias * 0.01)
    assert.equal(0, maxdiff(l(x), want))
    assert.is_true(maxdiff(l.bias * 0.01, gen.full({ 300 }, 0.5)) < 1e-6) -- the effective bias starts at bias_init
    local c = nn.Conv2d(3, 4, 3, { equalized = true, padding = 1 })
    local y = gen.randn(2, 3, 5, 5)
    assert.equal(0, maxdiff(c(y), gen.conv2d(y, c.weight * (1 / math.sqrt(27)), c.bias, { padding = 1 })))
    -- the state dict is the stored tensors under the usual names
    local keys = {}
    for k in pairs(c:state_dict()) do keys[#keys + 1] = k end
    table.sort(keys)
    assert.same({ "bias", "weight" }, keys)
    local ok, err = pcall(nn.Linear, 2, 2, { lr_mul = 0.1 })
    assert.is_false(ok)
    assert.truthy(tostring(err):find("gen.nn.Linear: option lr_mul needs equalized = true", 1, true), err)
    ok, err = pcall(nn.Conv2d, 2, 2, 1, { equalized = true, lr_mul = -1 })
    assert.is_false(ok)
    assert.truthy(tostring(err):find("gen.nn.Conv2d: lr_mul must be a positive number, got -1", 1, true), err)
  end)
end)

describe("gen.models.stylegan", function()
  it("builds both styles at 28 and 32 pixels with the documented shapes", function()
    for _, style in ipairs { "adain", "modulated" } do
      for _, r in ipairs { 28, 32 } do
        gen.manual_seed(0)
        local G, D = sg.Generator(opts { style = style, resolution = r }), sg.Discriminator(opts { resolution = r })
        assert.equal(8, G.num_ws)
        local x = G(gen.randn(4, 8), { mixing = 1 })
        assert.same({ 4, 1, r, r }, x.shape)
        local logits = D(x)
        assert.same({ 4, 1 }, logits.shape)
        logits:sum():backward()
        for name, p in G:named_parameters() do
          if not name:find("noise_strength") then assert.truthy(p.grad, style .. " " .. r .. ": no gradient for " .. name) end
        end
      end
    end
  end)

  it("the fused (grouped) and unfused generators give the same images", function()
    gen.manual_seed(2)
    local a = sg.Generator(opts { fused = true })
    local b = sg.Generator(opts { fused = false })
    b:load_state_dict(a:state_dict())
    local z = gen.randn(3, 8)
    assert.is_true(maxdiff(a(z, { noise = "none" }), b(z, { noise = "none" })) < 1e-4)
  end)

  it("truncation with psi = 0 gives the mean w's image for every z", function()
    gen.manual_seed(3)
    local G = sg.Generator(opts {})
    G(gen.randn(16, 8)) -- training mode: moves w_avg away from zero
    assert.is_true(G.w_avg:abs():max():item() > 0)
    G:eval()
    local z = gen.randn(5, 8)
    local avg_w = G.w_avg:clone()
    local images = G(z, { psi = 0, noise = "none" })
    local want = G:synthesis(avg_w:view(1, -1), { noise = "none" })
    for i = 1, 5 do assert.is_true(maxdiff(images:narrow(1, i, 1), want) < 1e-5) end
    assert.equal(0, maxdiff(avg_w, G.w_avg)) -- eval mode leaves w_avg alone
    -- psi = 1 leaves w alone; psi = 0.5 halves the distance
    local w = G:map(z)
    assert.equal(0, maxdiff(G:truncate(w, 1), w))
    assert.is_true(maxdiff(G:truncate(w, 0.5), (w + avg_w) * 0.5) < 1e-6)
  end)

  it("style mixing takes w1 up to the crossover and w2 after it", function()
    gen.manual_seed(4)
    local G = sg.Generator(opts {})
    G:eval()
    local w1, w2 = G:map(gen.randn(2, 8)), G:map(gen.randn(2, 8))
    local ws = G:mix(w1, w2, 3)
    assert.same({ 2, 8, 8 }, ws.shape)
    for i = 1, 8 do assert.equal(0, maxdiff(ws:select(2, i), i <= 3 and w1 or w2)) end
    -- G's own mixing: the crossover it drew, and layers after it from another latent
    gen.manual_seed(5)
    local z = gen.randn(2, 8)
    local mixed, crossover = G:styles(z, { mixing = 1 })
    assert.is_true(crossover >= 1 and crossover <= 7)
    local w = G:map(z)
    for i = 1, 8 do
      local d = maxdiff(mixed:select(2, i), w)
      if i <= crossover then assert.equal(0, d) else assert.is_true(d > 0) end
    end
    local _, none = G:styles(z, { mixing = 0 })
    assert.equal(8, none)
    -- the images change only through the layers after the crossover: the same noise, w1 in
    -- every layer up to it gives the same image as mixing with w2 = w1
    local g1 = G:synthesis(G:mix(w1, w1, 3), { generator = gen.Generator(9) })
    local g2 = G:synthesis(w1, { generator = gen.Generator(9) })
    assert.equal(0, maxdiff(g1, g2))
  end)

  it("is a projection discriminator with classes: D(x, y) = psi(phi(x)) + <embed(y), phi(x)> / sqrt(C)", function()
    gen.manual_seed(6)
    local D = sg.Discriminator(opts { classes = 3 })
    local x, y = gen.randn(4, 1, 28, 28), gen.tensor({ 1, 3, 2, 3 }, "int64")
    local phi = D:features(x)
    local want = D.out(phi) + (gen.embedding(y, D.embed.weight) * phi):sum(2, true) / math.sqrt(phi:size(2))
    assert.is_true(maxdiff(D(x, y), want) < 1e-6)
    local G = sg.Generator(opts { classes = 3 })
    assert.same({ 4, 1, 28, 28 }, G(gen.randn(4, 8), { labels = y }).shape)
    local ok, err = pcall(D, x, gen.tensor({ 1, 4, 2, 3 }, "int64"))
    assert.is_false(ok)
    assert.truthy(tostring(err):find("labels must be in 1..3", 1, true), err)
  end)

  it("the EMA of G averages its parameters and copies w_avg", function()
    gen.manual_seed(7)
    local G = sg.Generator(opts {})
    local ema = gen.optim.EMA(G, 0.5, { warmup = false })
    local before = G.const:clone()
    gen.no_grad(function() G.const:add_(1) end)
    G(gen.randn(4, 8))
    ema:update()
    assert.is_true(maxdiff(ema.shadow.const, before + 0.5) < 1e-6)
    assert.equal(0, maxdiff(ema.shadow.w_avg, G.w_avg))
    for name in G:named_parameters() do assert.truthy(ema.shadow[name], name) end
  end)

  it("names bad options and inputs", function()
    local cases = {
      { function() return sg.Generator { style = "bogus" } end, "style must be \"adain\" or \"modulated\", got bogus" },
      { function() return sg.Generator { resolution = 64 } end, "resolution must be one of 28, 32, got 64" },
      { function() return sg.Generator { widths = { 4, 4 } } end, "widths must be a list of 4 channel counts" },
      { function() return sg.Generator { fused = "yes" } end, "fused must be true or false, got yes" },
      { function() return sg.Discriminator { mbstd_group = 0 } end, "mbstd_group must be a positive integer, got 0" },
      { function() return sg.Generator(opts {})(gen.randn(2, 9)) end, "expected z {N, 8}, got {2,9}" },
      { function() return sg.Generator(opts {}):synthesis(gen.randn(2, 3, 8)) end, "expected ws {N, 8, 8} or w {N, 8}, got {2,3,8}" },
      { function() return sg.Generator(opts {})(gen.randn(2, 8), { mixing = 2 }) end, "mixing must be a probability in [0, 1], got 2" },
      { function() return sg.Generator(opts {})(gen.randn(2, 8), { noise = "const" }) end, "noise must be \"random\" or \"none\", got const" },
      { function() return sg.Discriminator(opts {})(gen.randn(2, 1, 32, 32)) end, "expected images {N, 1, 28, 28}, got {2,1,32,32}" },
      { function() return sg.Generator(opts {}):mix(gen.randn(2, 8), gen.randn(2, 8), 9) end, "crossover must be an integer in 0..8, got 9" },
      { function() return sg.Generator(opts {})(gen.randn(2, 8), gen.tensor({ 1, 2 }, "int64")) end, "labels given to an unconditional generator" },
    }
    for _, c in ipairs(cases) do
      local ok, err = pcall(c[1])
      assert.is_false(ok, c[2])
      assert.truthy(tostring(err):find(c[2], 1, true), tostring(err))
    end
  end)
end)

describe("gen.gan.stylegan", function()
  it("trains one step with finite losses, and R1 is a clear error without double backward", function()
    gen.manual_seed(8)
    local G, D = sg.Generator(opts {}), sg.Discriminator(opts {})
    local opt_g, opt_d = gen.optim.Adam(G, { lr = 1e-3 }), gen.optim.Adam(D, { lr = 1e-3 })
    local x = gen.rand(4, 1, 28, 28) * 2 - 1
    local r = train.step(G, D, opt_g, opt_d, x, { mixing = 0.9, ema = gen.optim.EMA(G) })
    assert.truthy(r.loss_d == r.loss_d and math.abs(r.loss_d) < math.huge)
    assert.truthy(r.loss_g == r.loss_g and math.abs(r.loss_g) < math.huge)
    if not train.r1_available() then
      local ok, err = pcall(train.step, G, D, opt_g, opt_d, x, { r1 = 10 })
      assert.is_false(ok)
      assert.truthy(tostring(err):find("needs gen.autograd.grad", 1, true), err)
    else
      local res = train.step(G, D, opt_g, opt_d, x, { r1 = 10, r1_every = 1, step = 1 })
      assert.truthy(res.r1 and res.r1 >= 0)
    end
  end)

  it("R1 through the residual discriminator has the gradient of its finite differences", function()
    if not train.r1_available() then return end -- the step test above checks the error instead
    local gan = require "gen.gan"
    gen.manual_seed(10)
    local D = sg.Discriminator(opts {}):double()
    local x = gen.rand(4, 1, 28, 28, { dtype = "float64" }) * 2 - 1
    local function penalty() return gan.r1_penalty(D, x, 10) end
    penalty():backward()
    for _, p in ipairs { D.from_rgb.weight, D.blocks:get(2).conv0.weight, D.fc.weight } do
      local grad, flat = p.grad:reshape(-1), p:view(-1)
      for _, j in ipairs { 1, p:numel() // 2, p:numel() } do
        local entry = flat:narrow(1, j, 1)
        local v, h = entry:item(), 1e-5
        gen.no_grad(function() entry:fill_(v + h) end)
        local up = penalty():item()
        gen.no_grad(function() entry:fill_(v - h) end)
        local down = penalty():item()
        gen.no_grad(function() entry:fill_(v) end)
        local numeric, analytic = (up - down) / (2 * h), grad:narrow(1, j, 1):item()
        assert.is_true(math.abs(numeric - analytic) <= 1e-6 + 1e-4 * math.abs(numeric),
          string.format("element %d: analytic %.10g, numeric %.10g", j, analytic, numeric))
      end
    end
  end)

  it("draws the three figures with one row per psi, mixing cell or interpolation", function()
    gen.manual_seed(9)
    local G = sg.Generator(opts {})
    G:eval()
    gen.no_grad(function()
      local m, nrow = train.style_mixing(G, { rows = 2, cols = 3 })
      assert.same({ 12, 1, 28, 28 }, m.shape)
      assert.equal(4, nrow)
      local t = train.truncation(G, { n = 4 })
      assert.same({ 12, 1, 28, 28 }, t.shape)
      -- the first column is w_avg's image, the same in every row
      assert.equal(0, maxdiff(t:narrow(1, 1, 1), t:narrow(1, 5, 1)))
      local i = train.interpolation(G, { pairs = 1, steps = 4 })
      assert.same({ 8, 1, 28, 28 }, i.shape)
      -- Z and W interpolations share their end points
      assert.is_true(maxdiff(i:narrow(1, 1, 1), i:narrow(1, 5, 1)) < 1e-5)
      assert.is_true(maxdiff(i:narrow(1, 4, 1), i:narrow(1, 8, 1)) < 1e-5)
    end)
  end)
end)
