-- Autoencoders: the MAE's masking and loss, DAE corruptions, the AE models, and the
-- representation metrics (linear probe, kNN) that score their frozen encoders.
local gen = require "gen"
local autoencoder = require "gen.autoencoder"
local corruptions = autoencoder.corruptions
local mae = require "gen.models.mae"
local models = require "gen.models.autoencoder"
local metrics = require "gen.metrics"

describe("random_masking", function()
  it("keeps exactly the requested count per sample and marks the rest masked", function()
    for _, c in ipairs { { 0.75, 49, 12 }, { 0.5, 64, 32 }, { 0, 16, 16 }, { 0.9, 196, 19 } } do
      local ratio, L, keep = table.unpack(c)
      local m = autoencoder.random_masking(6, L, { mask_ratio = ratio, generator = gen.Generator(1) })
      assert.equal(keep, m.keep)
      assert.same({ 6, keep }, m.ids_keep.shape)
      for b = 1, 6 do
        assert.equal(L - keep, m.mask[b]:sum():item())
        -- the kept patches are exactly the unmasked ones, each once
        local seen = {}
        for _, i in ipairs(m.ids_keep[b]:totable()) do
          assert.is_nil(seen[i])
          seen[i] = true
          assert.equal(0, m.mask[b]:at(i))
        end
      end
    end
  end)

  it("is a per-sample argsort of uniform noise; unshuffling restores the order exactly", function()
    local m = autoencoder.random_masking(4, 49, { generator = gen.Generator(5) })
    local noise = gen.rand({ 4, 49 }, { generator = gen.Generator(5) })
    local x = gen.randn(4, 49, 3)
    for b = 1, 4 do
      local order = m.ids_shuffle[b]:totable()
      for j = 2, 49 do assert.is_true(noise[b]:at(order[j - 1]) <= noise[b]:at(order[j])) end
    end
    local shuffled = x:gather(2, m.ids_shuffle:view(4, 49, 1):expand(4, 49, 3))
    local restored = shuffled:gather(2, m.ids_restore:view(4, 49, 1):expand(4, 49, 3))
    assert.equal(0, (restored - x):abs():max():item())
    assert.is_false(m.ids_shuffle[1]:eq(m.ids_shuffle[2]):sum():item() == 49) -- samples differ
  end)

  it("is reproducible from the seed", function()
    gen.manual_seed(9)
    local a = autoencoder.random_masking(3, 49)
    gen.manual_seed(9)
    local b = autoencoder.random_masking(3, 49)
    assert.same(a.ids_keep:totable(), b.ids_keep:totable())
  end)

  it("breaks ties by position, so equal noise keeps the order", function()
    assert.same({ { 2, 1, 3, 4 }, { 1, 2, 3, 4 } }, gen.argsort(gen.tensor { { 0.5, 0.1, 0.5, 0.5 }, { 0, 0, 0, 0 } }, 2):totable())
  end)

  it("rejects ratios that leave nothing visible", function()
    assert.has_error(function() autoencoder.random_masking(2, 4, { mask_ratio = 1 }) end,
      "gen.autoencoder.random_masking: mask_ratio 1 leaves no visible patch of 4 (need 0 <= ratio < 1)")
    assert.has_error(function() autoencoder.random_masking(2, 4, { mask_ratio = 0.9 }) end)
  end)
end)

describe("masked_patch_loss", function()
  it("has zero gradient for the visible patches' predictions", function()
    local m = autoencoder.random_masking(3, 16, { generator = gen.Generator(2) })
    for _, norm_pix in ipairs { false, true } do
      local pred = gen.randn(3, 16, 4):requires_grad_()
      local target = gen.randn(3, 16, 4)
      autoencoder.masked_patch_loss(pred, target, m.mask, { norm_pix = norm_pix }):backward()
      local per_patch = pred.grad:abs():sum(3)
      assert.equal(0, (per_patch * (1 - m.mask)):sum():item())
      assert.is_true((per_patch * m.mask):sum():item() > 0)
    end
  end)

  it("is the mean over masked patches of the per-patch MSE", function()
    local pred, target = gen.zeros(1, 2, 2), gen.tensor { { { 1, 1 }, { 3, 3 } } }
    assert.near(9, autoencoder.masked_patch_loss(pred, target, gen.tensor { { 0, 1 } }):item(), 1e-6)
    assert.near(5, autoencoder.masked_patch_loss(pred, target, gen.tensor { { 1, 1 } }):item(), 1e-6)
    local z = autoencoder.mae.normalize_patches(gen.tensor { { { 1, 2, 3, 4 } } })
    assert.near(0, z:mean():item(), 1e-6)
    assert.near(1, z:var():item(), 1e-5)
    assert.has_error(function() autoencoder.masked_patch_loss(gen.zeros(1, 2, 2), gen.zeros(1, 2, 3), gen.zeros(1, 2)) end)
  end)

  it("through the model: only masked patches' predictions get gradient, and training lowers the loss", function()
    gen.manual_seed(0)
    local model = mae.MAE { dim = 16, depth = 1, heads = 2, decoder_dim = 8, decoder_depth = 1, decoder_heads = 2, patch = 7 }
    local x = gen.rand(4, 1, 28, 28)
    local m = autoencoder.random_masking(4, model.num_patches, { mask_ratio = 0.75 })
    assert.equal(4, m.keep)
    local pred = model(x, m)
    assert.same({ 4, 16, 49 }, pred.shape)
    local leaf = pred:detach():requires_grad_()
    autoencoder.masked_patch_loss(leaf, model:patchify(x), m.mask):backward()
    assert.equal(0, (leaf.grad:abs():sum(3) * (1 - m.mask)):sum():item())
    local opt = gen.optim.AdamW(model, { lr = 3e-3 })
    local first, last
    for i = 1, 15 do
      opt:zero_grad()
      local loss = autoencoder.mae_loss(model, x, { generator = gen.Generator(i) })
      loss:backward()
      opt:step()
      first, last = first or loss:item(), loss:item()
    end
    assert.is_true(last < first, first .. " -> " .. last)
    assert.same({ 4, 16 }, model:features(x).shape)
    assert.same({ 4, 1, 28, 28 }, model:unpatchify(pred).shape)
  end)
end)

describe("corruptions", function()
  local x = gen.full({ 40, 1, 50, 50 }, 0.5) -- 100000 pixels

  it("gaussian: additive noise with the requested variance", function()
    local y = corruptions.gaussian(0.3)(x, gen.Generator(1))
    local d = y - x
    assert.near(0, d:mean():item(), 0.005)
    assert.near(0.09, d:var():item(), 0.09 * 0.02)
    local c = corruptions.gaussian(2, { clamp = { 0, 1 } })(x, gen.Generator(1))
    assert.is_true(c:min():item() >= 0 and c:max():item() <= 1)
  end)

  it("masking: zeroes the requested fraction of pixels", function()
    local y = corruptions.masking(0.3)(x, gen.Generator(2))
    assert.near(0.3, y:eq(0):float():mean():item(), 0.005)
    assert.equal(0, y:ne(0):mul(y:ne(0.5)):sum():item()) -- the rest untouched
  end)

  it("salt_pepper: half salt, half pepper", function()
    local y = corruptions.salt_pepper(0.2)(x, gen.Generator(3))
    assert.near(0.1, y:eq(0):float():mean():item(), 0.004)
    assert.near(0.1, y:eq(1):float():mean():item(), 0.004)
    assert.near(0.8, y:eq(0.5):float():mean():item(), 0.005)
  end)

  it("erase: one block of the given size per image", function()
    local y = corruptions.erase(7, { value = 0 })(x, gen.Generator(4))
    for i = 1, 40 do assert.equal(49, y[i]:eq(0):sum():item()) end
    local r = corruptions.erase({ 2, 3 })(gen.ones(2, 3, 4, 4), gen.Generator(4))
    assert.equal(2 * 3 * 6, r:eq(0):sum():item()) -- the same block in every channel
    assert.has_error(function() corruptions.erase(9)(gen.ones(1, 1, 8, 8)) end,
      "gen.autoencoder.corruptions.erase: block 9x9 does not fit images 8x8")
  end)

  it("compose, reproducibility, by_name and errors", function()
    local c = corruptions.compose { corruptions.masking(0.5), corruptions.gaussian(0.1) }
    assert.equal(0, (c(x, gen.Generator(7)) - c(x, gen.Generator(7))):abs():max():item())
    assert.is_true((c(x, gen.Generator(7)) - c(x, gen.Generator(8))):abs():max():item() > 0)
    for _, name in ipairs { "gaussian", "mask", "saltpepper" } do
      assert.same(x.shape, corruptions.by_name(name, 0.2)(x).shape)
    end
    assert.same(x.shape, corruptions.by_name("erase", 5)(x).shape)
    assert.has_error(function() corruptions.by_name("blur", 1) end,
      "gen.autoencoder.corruptions.by_name: noise must be gaussian, mask, saltpepper or erase, got blur")
    assert.has_error(function() corruptions.masking(1.5) end,
      "gen.autoencoder.corruptions.masking: fraction must be in [0, 1], got 1.5")
    assert.has_error(function() corruptions.gaussian(-1) end)
  end)

  it("the denoising loss compares the reconstruction of the corrupted input with the clean image", function()
    local identity = function(v) return v end
    local loss, recon, input = autoencoder.reconstruction_loss(identity, x, corruptions.masking(0.5), gen.Generator(1))
    assert.equal(input, recon)
    assert.near(0.5 * 0.25, loss:item(), 0.005) -- half the pixels off by 0.5
    assert.near(20 * math.log(10, 10) - 0, autoencoder.psnr(0.01), 1e-9)
  end)
end)

describe("autoencoder models", function()
  it("conv and MLP: a bottleneck of latent numbers, images in [0, 1] back", function()
    gen.manual_seed(0)
    for _, M in ipairs { models.Conv, models.MLP } do
      local m = M { latent = 12 }
      local x = gen.rand(3, 1, 28, 28)
      assert.same({ 3, 12 }, m:encode(x).shape)
      local y = m(x)
      assert.same({ 3, 1, 28, 28 }, y.shape)
      assert.is_true(y:min():item() >= 0 and y:max():item() <= 1)
    end
    assert.same({ 2, 3, 32, 32 }, models.Conv { channels = 3, resolution = 32 }(gen.rand(2, 3, 32, 32)).shape)
    assert.has_error(function() models.Conv { resolution = 30 } end, "ConvAutoencoder: resolution must be divisible by 4, got 30")
  end)
end)

describe("linear_probe and knn", function()
  local function blobs(n, d, seed)
    local g = gen.Generator(seed)
    local y = gen.randint(1, 4, { n }, { generator = g })
    local centers = gen.randn({ 4, d }, { generator = gen.Generator(100) }) * 4
    return centers:index_select(1, y) + gen.randn({ n, d }, { generator = g }), y
  end

  it("reach ~100% on separable features, deterministically", function()
    local ftr, ytr = blobs(600, 8, 1)
    local fte, yte = blobs(200, 8, 2)
    local acc, train_acc = metrics.linear_probe(ftr, ytr, fte, yte)
    assert.is_true(acc >= 0.99 and train_acc >= 0.99, acc .. " " .. train_acc)
    assert.equal(acc, (metrics.linear_probe(ftr, ytr, fte, yte)))
    assert.is_true(metrics.knn(ftr, ytr, fte, yte) >= 0.99)
  end)

  it("are at chance on random labels", function()
    local ftr = gen.randn({ 500, 8 }, { generator = gen.Generator(1) })
    local fte = gen.randn({ 500, 8 }, { generator = gen.Generator(2) })
    local ytr = gen.randint(1, 10, { 500 }, { generator = gen.Generator(3) })
    local yte = gen.randint(1, 10, { 500 }, { generator = gen.Generator(4) })
    assert.is_true(metrics.linear_probe(ftr, ytr, fte, yte) < 0.2)
    assert.is_true(metrics.knn(ftr, ytr, fte, yte) < 0.2)
  end)

  it("kNN votes by summed cosine similarity among the k nearest", function()
    local tr = gen.tensor { { 1, 0 }, { 0.9, 0.1 }, { 0, 1 }, { -1, 0 } }
    local ytr = gen.tensor({ 1, 1, 2, 3 }, "int64")
    assert.equal(1, metrics.knn(tr, ytr, gen.tensor { { 1, 0.05 } }, gen.tensor({ 1 }, "int64"), { k = 2 }))
    assert.equal(1, metrics.knn(tr, ytr, gen.tensor { { 0.1, 1 } }, gen.tensor({ 2 }, "int64"), { k = 1 }))
  end)

  it("extract_features runs an encoder over uint8 images in batches", function()
    local images = gen.randint(0, 255, { 7, 1, 4, 4 }):byte()
    local f = metrics.extract_features(function(x) return x:flatten(2) end, images, { batch = 3, progress = false })
    assert.same({ 7, 16 }, f.shape)
    assert.near(images:float():mean():item() / 255, f:mean():item(), 1e-6)
  end)

  it("name the function and the shapes on bad input", function()
    assert.has_error(function() metrics.linear_probe(gen.zeros(4, 2), gen.ones(3, "int64"), gen.zeros(2, 2), gen.ones(2, "int64")) end,
      "gen.metrics.linear_probe: train labels must be int64 {4}, got int64 {3}")
    assert.has_error(function() metrics.knn(gen.zeros(4, 2), gen.ones(4, "int64"), gen.zeros(2, 2), gen.ones(2, "int64"), { k = 5 }) end,
      "gen.metrics.knn: k must be in 1..4, got 5")
  end)
end)
