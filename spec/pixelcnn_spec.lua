-- Masked convolutions, the gated PixelCNN, its exact likelihood and its raster-order sampler.
local gen = require "gen"
local nn = gen.nn
local pixelcnn = require "gen.models.pixelcnn"
local ar = require "gen.autoregressive.pixelcnn"

-- The dependence of every output position on every input position, from one backward pass: a
-- batch of H*W copies of one input x {1, C, H, W}, copy b keeping only output position b.
-- Returns a table dep[i][j] (raster positions, 1-based) = max |d out_i / d in_j| over channels.
local function dependence(fn, x)
  local _, c, h, w = table.unpack(x.shape)
  local n = h * w
  local xs = x:detach():expand(n, c, h, w):contiguous():requires_grad_()
  local out = fn(xs)
  local onehot = gen.eye(n):type(out.dtype):view(n, 1, h, w)
  ;(out * onehot):sum():backward()
  local g = xs.grad:abs():max(2) -- {n, h, w}
  return g:reshape(n, n):totable()
end

-- every dependence on positions j with j >= i (strict = false: j > i) is exactly zero
local function assert_causal(dep, strict, what)
  for i = 1, #dep do
    for j = strict and i or i + 1, #dep do
      if dep[i][j] ~= 0 then error(string.format("%s: output %d depends on input %d (%g)", what, i, j, dep[i][j])) end
    end
  end
end

local function row_col(i, w) return (i - 1) // w, (i - 1) % w end

describe("gen.nn.MaskedConv2d", function()
  local x = gen.randn(1, 2, 5, 6, "float64")

  it("type A: no output sees its own or a later pixel; type B adds only the pixel itself", function()
    for _, stack in ipairs { "full", "horizontal" } do
      for _, k in ipairs { 3, 5 } do
        local dep = {}
        for _, t in ipairs { "A", "B" } do
          gen.manual_seed(1)
          local m = nn.MaskedConv2d(2, 3, k, { mask = t, stack = stack }):double()
          dep[t] = dependence(function(xs) return m(xs) end, x)
        end
        assert_causal(dep.A, true, stack .. " A")
        assert_causal(dep.B, false, stack .. " B")
        -- what is allowed is seen: the left neighbour for both, the pixel itself for B only
        for i = 2, 30 do
          local _, c = row_col(i, 6)
          assert.is_true(dep.B[i][i] > 0, stack .. " B does not see its own pixel")
          if c > 0 then assert.is_true(dep.A[i][i - 1] > 0 and dep.B[i][i - 1] > 0, stack .. " misses the left neighbour") end
        end
        if stack == "full" then assert.is_true(dep.A[14][14 - 6] > 0, "full A misses the pixel above") end
        if stack == "horizontal" then assert.equal(0, dep.B[14][14 - 6], "horizontal sees the row above") end
      end
    end
  end)

  it("vertical: the rows above and the current row (B), above only (A); shifted down, no later pixel", function()
    local w = 6
    for _, t in ipairs { "A", "B" } do
      local m = nn.MaskedConv2d(2, 3, 3, { mask = t, stack = "vertical" }):double()
      local dep = dependence(function(xs) return m(xs) end, x)
      local shifted = dependence(function(xs) return pixelcnn.shift_down(m(xs)) end, x)
      for i = 1, 30 do
        local ri, ci = row_col(i, w)
        for j = 1, 30 do
          local rj, cj = row_col(j, w)
          local reach = rj <= ri and ri - rj <= 1 and math.abs(ci - cj) <= 1
          if t == "A" then reach = reach and rj < ri end
          assert.equal(reach, dep[i][j] > 0, string.format("vertical %s: out %d, in %d", t, i, j))
          if rj >= ri then assert.equal(0, shifted[i][j]) end
        end
      end
      assert_causal(shifted, true, "shifted vertical " .. t)
    end
  end)

  it("gradients reach only the unmasked weights, and the state dict is a Conv2d's", function()
    local m = nn.MaskedConv2d(2, 3, 5, { mask = "A" })
    m(gen.randn(2, 2, 6, 6)):sum():backward()
    local g = m.weight.grad:abs():sum(1):sum(1):view(5, 5):totable()
    for i = 1, 5 do
      for j = 1, 5 do
        local open = i < 3 or (i == 3 and j < 3)
        assert.equal(open, g[i][j] > 0, string.format("weight (%d, %d)", i, j))
      end
    end
    local keys = {}
    for k in pairs(m:state_dict()) do keys[#keys + 1] = k end
    table.sort(keys)
    assert.same({ "bias", "weight" }, keys)
    -- a plain Conv2d loads it, and with the masked weight computes the same thing
    local plain = nn.Conv2d(2, 3, 5, { padding = 2 })
    plain:load_state_dict(m:state_dict())
    local xx = gen.randn(1, 2, 7, 7)
    plain.weight = nn.Parameter(m:masked_weight():detach())
    assert.is_true((plain(xx) - m(xx)):abs():max():item() < 1e-5)
  end)

  it("names bad options and inputs", function()
    assert.has_error(function() nn.MaskedConv2d(2, 3, 3, { mask = "C" }) end, 'gen.nn.MaskedConv2d: mask must be "A" or "B", got C')
    assert.has_error(function() nn.MaskedConv2d(2, 3, 4) end, "gen.nn.MaskedConv2d: kernel_size must be an odd positive integer, got 4")
    assert.has_error(function() nn.MaskedConv2d(2, 3, 3, { stack = "diagonal" }) end)
    assert.has_error(function() nn.MaskedConv2d(2, 3, 1, { mask = "A" }) end)
    local m = nn.MaskedConv2d(2, 3, 3)
    assert.has_error(function() m(gen.randn(1, 3, 4, 4)) end, "gen.nn.MaskedConv2d: expected input {B, 2, H, W}, got {1,3,4,4}")
  end)
end)

describe("gen.models.pixelcnn.GatedPixelCNN", function()
  local function small(opts)
    opts = opts or {}
    gen.manual_seed(opts.seed or 0)
    return pixelcnn.GatedPixelCNN { width = 4, layers = opts.layers or 5, first_kernel = 5, head = 8, resolution = 6,
      classes = opts.classes, input = opts.input, levels = opts.levels, cond_channels = opts.cond_channels }:double()
  end

  it("both stacks and the logits never see the current or a later pixel, and nothing earlier is blind", function()
    local model = small()
    local f = model:features(gen.randint(0, 255, { 1, 1, 6, 6 }))
    local v = dependence(function(xs) return (model:stacks(xs)) end, f)
    local h = dependence(function(xs) local _, hh = model:stacks(xs); return hh end, f)
    local logits = dependence(function(xs) return model:net(xs) end, f)
    assert_causal(v, true, "vertical stack (as the horizontal one sees it)")
    assert_causal(h, true, "horizontal stack")
    assert_causal(logits, true, "logits")
    -- five layers (kernels 5, 3, 3, 3, 3) reach every earlier pixel of a 6 x 6 image: no blind spot
    for i = 2, 36 do
      for j = 1, i - 1 do assert.is_true(logits[i][j] > 0, string.format("output %d is blind to input %d", i, j)) end
    end
    -- a one-layer net is blind to the far corner, so the check above can fail
    local shallow = small { layers = 1 }
    local dep = dependence(function(xs) return shallow:net(xs) end, f)
    assert.equal(0, dep[36][1])
  end)

  it("gives exactly 8 bits/dim with uniform logits, and the NLL of a fixed categorical", function()
    local model = small()
    gen.no_grad(function() model.out2.weight:zero_(); model.out2.bias:zero_() end)
    local x = gen.randint(0, 255, { 5, 1, 6, 6 })
    local bpd, per = ar.bits_per_dim(model, x, { batch = 2 })
    assert.is_true(math.abs(bpd - 8) < 1e-12, tostring(bpd))
    assert.same({ 5 }, per.shape)
    -- logits = a fixed bias b: log p(x) = sum_i log_softmax(b)[x_i + 1]
    local b = gen.randn(256, "float64")
    gen.no_grad(function() model.out2.bias:copy_(b) end)
    local logp = gen.log_softmax(b, 1):totable()
    local xs, want = x:view(5, 36):totable(), 0
    for n = 1, 5 do for i = 1, 36 do want = want - logp[xs[n][i] + 1] end end
    want = want / (5 * 36 * math.log(2))
    bpd = ar.bits_per_dim(model, x)
    assert.is_true(math.abs(bpd - want) < 1e-10, bpd .. " vs " .. want)
    assert.is_true(math.abs(ar.log_prob(model, x):sum():item() + want * 5 * 36 * math.log(2)) < 1e-8)
  end)

  it("samples reproducibly from a generator, and from the model's distribution", function()
    local model = small()
    local a = ar.sample(model, 3, { generator = gen.Generator(7) })
    local b = ar.sample(model, 3, { generator = gen.Generator(7) })
    local c = ar.sample(model, 3, { generator = gen.Generator(8) })
    assert.same({ 3, 1, 6, 6 }, a.shape)
    assert.equal("int64", a.dtype)
    assert.same(a:totable(), b:totable())
    assert.is_true(a:eq(c):sum():item() < a:numel())
    assert.is_true(a:min():item() >= 0 and a:max():item() <= 255)
    -- a model whose logits are a fixed bias: the sampled values follow softmax(bias / T)
    gen.no_grad(function()
      model.out2.weight:zero_()
      model.out2.bias:fill_(-1e9)
      model.out2.bias:narrow(1, 11, 1):fill_(math.log(3)) -- value 10: p = 3/4
      model.out2.bias:narrow(1, 201, 1):fill_(0)           -- value 200: p = 1/4
    end)
    local s = ar.sample(model, 40, { generator = gen.Generator(1), size = { 4, 5 } })
    local tens, hundreds = s:eq(10):sum():item(), s:eq(200):sum():item()
    assert.equal(800, tens + hundreds)
    assert.is_true(math.abs(tens / 800 - 0.75) < 0.06, tostring(tens / 800))
    -- temperature 0.25 sharpens 3:1 into 81:1
    s = ar.sample(model, 40, { generator = gen.Generator(1), size = { 4, 5 }, temperature = 0.25 })
    assert.is_true(s:eq(10):sum():item() / 800 > 0.95)
  end)

  it("row-cached sampling draws the same values as rerunning both stacks at every position", function()
    for _, dtype in ipairs { "float64", "float32" } do
      local model = small { classes = 4, width = 6, layers = 3 }:type(dtype)
      local labels = gen.tensor({ 1, 4, 2 }, "int64")
      local cached = ar.sample(model, 3, { labels = labels, generator = gen.Generator(11), size = { 7, 5 } })
      local plain = ar.sample(model, 3, { labels = labels, generator = gen.Generator(11), size = { 7, 5 }, cache = false })
      assert.same(plain:totable(), cached:totable(), dtype .. " pixels")
      local prior = small { input = "codes", levels = 9, cond_channels = 2 }:type(dtype)
      local map = gen.randn(2, 2, 5, 6, dtype)
      local a = ar.sample(prior, 2, { map = map, generator = gen.Generator(4) })
      local b = ar.sample(prior, 2, { map = map, generator = gen.Generator(4), cache = false })
      assert.same(b:totable(), a:totable(), dtype .. " codes with a map")
      assert.is_true(a:ne(a:select(1, 1):unsqueeze(1)):sum():item() > 0) -- the draws are not all one value
      -- the logits of every position, against the whole net's
      local x = gen.randint(0, 255, { 3, 1, 7, 5 }):type(dtype)
      local codes = gen.randint(1, 9, { 2, 5, 6 })
      local full, full_codes = model(x, labels), prior(codes, nil, map)
      local tol = dtype == "float64" and 1e-12 or 1e-5
      for r = 1, 7 do
        for c = 1, 5 do
          local want = full:narrow(3, r, 1):narrow(4, c, 1):reshape(3, 256)
          local got = ar.position_logits(model, x, r, c, { labels = labels })
          assert.is_true((got - want):abs():max():item() < tol, string.format("%s pixels (%d, %d)", dtype, r, c))
          assert.same(got:totable(), ar.position_logits(model, x, r, c, { labels = labels, cache = false }):totable())
          if r <= 5 then
            want = full_codes:narrow(3, r, 1):narrow(4, c, 1):reshape(2, 9)
            got = ar.position_logits(prior, codes, r, c, { map = map })
            assert.is_true((got - want):abs():max():item() < tol, string.format("%s codes (%d, %d)", dtype, r, c))
          end
        end
      end
    end
    assert.has_error(function() ar.position_logits(small(), gen.zeros({ 1, 1, 6, 6 }), 7, 1) end,
      "gen.autoregressive.pixelcnn.position_logits: position (7, 1) outside the 6x6 image")
  end)

  it("the class and the spatial map change the logits; codes go through an embedding", function()
    local model = small { classes = 10 }
    local x = gen.randint(0, 255, { 2, 1, 6, 6 })
    local l1 = model(x, gen.tensor({ 1, 1 }, "int64"))
    local l2 = model(x, gen.tensor({ 1, 2 }, "int64"))
    assert.equal(0, (l1:select(1, 1) - l2:select(1, 1)):abs():max():item())
    assert.is_true((l1:select(1, 2) - l2:select(1, 2)):abs():max():item() > 1e-6)
    local prior = small { input = "codes", levels = 12, cond_channels = 3 }
    local codes = gen.randint(1, 12, { 2, 6, 6 })
    local map = gen.randn(2, 3, 6, 6, "float64")
    local out = prior(codes, nil, map)
    assert.same({ 2, 12, 6, 6 }, out.shape)
    assert.is_true((out - prior(codes, nil, map * 2)):abs():max():item() > 1e-6)
    local s = ar.sample(prior, 2, { map = map, generator = gen.Generator(3) })
    assert.same({ 2, 6, 6 }, s.shape)
    assert.is_true(s:min():item() >= 1 and s:max():item() <= 12)
    -- the codes' logits are causal too (through the embedding's features)
    local f = prior:features(codes:narrow(1, 1, 1))
    assert_causal(dependence(function(xs) return prior:net(xs, nil, map:narrow(1, 1, 1):expand(36, 3, 6, 6)) end, f), true, "codes")
  end)

  it("names bad inputs and options", function()
    local model = small()
    local who = "gen.models.pixelcnn.GatedPixelCNN: "
    assert.has_error(function() model(gen.full({ 1, 1, 6, 6 }, 256)) end, who .. "pixels must be the integers 0..255, got values in 256..256")
    assert.has_error(function() model(gen.full({ 1, 1, 6, 6 }, -1, "int64")) end, who .. "pixels must be the integers 0..255, got values in -1..-1")
    assert.has_error(function() model(gen.full({ 1, 1, 6, 6 }, 0.5)) end,
      who .. "pixels must be the integers 0..255, got values in 0.5..0.5 (not all integers)")
    assert.has_error(function() model(gen.zeros(1, 6, 6)) end, who .. "expected pixels {B, 1, H, W}, got float32 {1,6,6}")
    assert.has_error(function() model(gen.zeros(1, 1, 6, 6), gen.tensor({ 1 }, "int64")) end,
      who .. "labels given to an unconditional model (classes = 0)")
    local cond = small { classes = 3 }
    assert.has_error(function() cond(gen.zeros(1, 1, 6, 6)) end, who .. "the model is class-conditional (classes = 3): labels are required")
    assert.has_error(function() cond(gen.zeros(1, 1, 6, 6), gen.tensor({ 4 }, "int64")) end, who .. "labels must be in 1..3, got values in 4..4")
    local prior = small { input = "codes", levels = 12 }
    assert.has_error(function() prior(gen.full({ 1, 6, 6 }, 13, "int64")) end, who .. "codes must be in 1..12, got values in 13..13")
    assert.has_error(function() prior(gen.zeros({ 1, 6, 6 }, "int64")) end, who .. "codes must be in 1..12, got values in 0..0")
    assert.has_error(function() prior(gen.ones(1, 6, 6)) end, who .. "expected codes as an int64 tensor {B, H, W}, got float32 {1,6,6}")
    assert.has_error(function() prior(gen.ones({ 1, 6, 6 }, "int64"), nil, gen.zeros(1, 2, 6, 6)) end,
      who .. "a conditioning map given to a model built with cond_channels = 0")
    local mapped = small { input = "codes", levels = 12, cond_channels = 2 }
    assert.has_error(function() mapped(gen.ones({ 1, 6, 6 }, "int64"), nil, gen.zeros(1, 2, 5, 6)) end,
      who .. "expected a conditioning map {1, 2, 6, 6}, got float32 {1,2,5,6}")
    assert.has_error(function() pixelcnn.GatedPixelCNN { channels = 3 } end)
    assert.has_error(function() pixelcnn.GatedPixelCNN { levels = 16 } end,
      who .. 'input = "pixels" models 8-bit values: levels must be 256, got 16')
    assert.has_error(function() pixelcnn.GatedPixelCNN { kernel = 4 } end, who .. "kernel must be odd, got 4")
    assert.has_error(function() pixelcnn.GatedPixelCNN { input = "tokens" } end)
    assert.has_error(function() ar.sample(model, 2, { temperature = 0 }) end,
      "gen.autoregressive.pixelcnn.sample: temperature must be a positive number, got 0")
    assert.has_error(function() ar.sample(model, 0) end, "gen.autoregressive.pixelcnn.sample: n must be a positive integer, got 0")
    assert.has_error(function() ar.sample(cond, 2) end, who .. "the model is class-conditional (classes = 3): labels are required")
  end)
end)

describe("gen.models.pixelcnn.CodePrior", function()
  it("models top codes, then bottom codes given the top ones (VQ-VAE-2), with exact bits per code", function()
    gen.manual_seed(3)
    local prior = pixelcnn.CodePrior { levels = 2, codebook_size = 5, grid = { top = { 3, 3 }, bottom = { 6, 6 } }, width = 4,
      layers = 2, first_kernel = 3, head = 4 }
    local codes = { top = gen.randint(1, 5, { 4, 3, 3 }), bottom = gen.randint(1, 5, { 4, 6, 6 }) }
    local loss, parts = ar.code_loss(prior, codes)
    assert.is_true(math.abs(loss:item() - parts.top - parts.bottom) < 1e-5)
    local logp, per = ar.code_log_prob(prior, codes)
    assert.same({ 4 }, logp.shape)
    -- the mean losses are the per-code NLLs: 9 top and 36 bottom codes per image
    assert.is_true(math.abs(-per.top:mean():item() / 9 - parts.top) < 1e-4)
    assert.is_true(math.abs(-per.bottom:mean():item() / 36 - parts.bottom) < 1e-4)
    -- the bottom prior sees the top codes
    local other = { top = codes.top:clone():fill_(1), bottom = codes.bottom }
    local _, per2 = ar.code_log_prob(prior, other)
    assert.is_true((per2.bottom - per.bottom):abs():max():item() > 1e-6)
    -- uniform logits: exactly log2 K bits per code on both levels
    gen.no_grad(function()
      for _, p in ipairs { prior.top, prior.bottom } do p.out2.weight:zero_(); p.out2.bias:zero_() end
    end)
    local bits = ar.code_bits(prior, codes, { batch = 3 })
    assert.is_true(math.abs(bits.top - math.log(5, 2)) < 1e-6 and math.abs(bits.bottom - math.log(5, 2)) < 1e-6)
    local s = ar.sample_codes(prior, 2, { generator = gen.Generator(1) })
    assert.same({ 2, 3, 3 }, s.top.shape)
    assert.same({ 2, 6, 6 }, s.bottom.shape)
    assert.has_error(function() ar.code_loss(prior, codes.top) end, "gen.autoregressive.pixelcnn.code_loss: two levels: codes must be {top = ..., bottom = ...}")
    assert.has_error(function() pixelcnn.CodePrior { levels = 2, codebook_size = 5, grid = { top = { 3, 3 }, bottom = { 7, 7 } } } end,
      "gen.models.pixelcnn.CodePrior: the bottom grid (7) must be a multiple of the top grid (3)")
    assert.has_error(function() pixelcnn.CodePrior { levels = 3, codebook_size = 5, grid = { 3, 3 } } end,
      "gen.models.pixelcnn.CodePrior: levels must be 1 or 2, got 3")
    local one = pixelcnn.CodePrior { levels = 1, codebook_size = 5, grid = { 3, 3 }, width = 4, layers = 1 }
    assert.same({ 2, 3, 3 }, ar.sample_codes(one, 2).shape)
  end)
end)
