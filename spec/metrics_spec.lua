-- gen.metrics: the statistics themselves on known inputs, and the shipped classifier.
local gen = require "gen"
local metrics = require "gen.metrics"

describe("metrics", function()
  it("computes the Frechet distance of Gaussians", function()
    local g = gen.Generator(1)
    local a = gen.randn(4000, 3, { generator = g })
    assert.is_true(metrics.fid_from_features(a, a) < 1e-6)
    -- a shifted copy: the distance is the squared shift
    assert.near(4 + 1, metrics.fid_from_features(a, a + gen.tensor { 2, 1, 0 }), 1e-6)
    -- scaled by 2: Tr(S + 4S - 2 * 2S) = Tr(S) ~ 3
    assert.near(3, metrics.fid_from_features(a, a * 2), 0.3)
  end)

  it("computes the unbiased KID", function()
    -- against the definition, summed term by term in plain Lua
    local g = gen.Generator(2)
    local x, y = gen.randn(5, 3, { generator = g }), gen.randn(4, 3, { generator = g }) + 0.5
    local xt, yt = x:double():totable(), y:double():totable()
    local function k(a, b) local s = 0; for i = 1, 3 do s = s + a[i] * b[i] end; return (s / 3 + 1) ^ 3 end
    local sxx, syy, sxy = 0, 0, 0
    for i = 1, 5 do for j = 1, 5 do if i ~= j then sxx = sxx + k(xt[i], xt[j]) end end end
    for i = 1, 4 do for j = 1, 4 do if i ~= j then syy = syy + k(yt[i], yt[j]) end end end
    for i = 1, 5 do for j = 1, 4 do sxy = sxy + k(xt[i], yt[j]) end end
    local want = sxx / 20 + syy / 12 - 2 * sxy / 20
    assert.near(want, metrics.kid_from_features(x, y), 1e-9 * math.max(1, math.abs(want)))
    -- two samples of one distribution: near 0; a shifted one: clearly positive
    local a, b = gen.randn(500, 8, { generator = g }), gen.randn(500, 8, { generator = g })
    assert.is_true(math.abs(metrics.kid_from_features(a, b)) < 0.02)
    assert.is_true(metrics.kid_from_features(a, b + 1) > 0.5)
    assert.has_error(function() metrics.kid_from_features(a:narrow(1, 1, 1), b) end,
      "gen.metrics.kid_from_features: needs at least 2 samples in each set, got 1 and 500")
    assert.has_error(function() metrics.kid_from_features(a, b:narrow(2, 1, 4)) end, "gen.metrics.kid_from_features: feature sizes differ: 8 and 4")
  end)

  it("computes the Inception Score and coverage", function()
    local uniform = gen.full({ 100, 10 }, 0.1)
    assert.near(1, metrics.inception_score(uniform), 1e-9)
    local onehot = gen.cat { gen.eye(10), gen.eye(10) }
    assert.near(10, metrics.inception_score(onehot), 1e-6)
    assert.near(math.log(10), metrics.coverage(onehot), 1e-9)
    assert.near(0, metrics.coverage(gen.eye(10):narrow(1, 1, 1):expand(50, 10)), 1e-12)
  end)

  it("ships a classifier with at least 90% test accuracy", function()
    local t, meta = gen.load(metrics.weights_path)
    assert.truthy(t["head.weight"])
    assert.is_true(tonumber(meta.test_accuracy) >= 0.90, "accuracy " .. tostring(meta.test_accuracy))
    local test = gen.data.fashion_mnist { split = "test" }
    local _, probs = metrics.features(test.images:narrow(1, 1, 1000))
    local _, pred = probs:max(2)
    local acc = pred:eq(test.labels:narrow(1, 1, 1000)):sum():item() / 1000
    assert.is_true(acc >= 0.88, "accuracy on the first 1000 test images " .. acc)
    local r = metrics.evaluate(test.images:narrow(1, 1001, 2000), { class = 3 })
    assert.is_true(r.fid < 5, "FID of real images " .. r.fid)
    assert.is_true(r.coverage > 2.2)
    assert.is_true(r.agreement > 0.05 and r.agreement < 0.2)
    -- KID of 200 training images (disjoint from the test set): near 0 although FID there is ~20
    -- from its small-sample bias; 200 images of a single class are far away on both
    local train = gen.data.fashion_mnist { split = "train" }
    local few = metrics.evaluate(train.images:narrow(1, 1, 200))
    assert.is_true(few.fid > 10 and math.abs(few.kid) < 0.03, string.format("FID %.2f KID %.5f", few.fid, few.kid))
    local one_class = train.images:index_select(1, gen.tensor((function()
      local idx, labels = {}, train.labels:totable()
      for i = 1, #labels do if labels[i] == 1 and #idx < 200 then idx[#idx + 1] = i end end
      return idx
    end)(), "int64"))
    assert.is_true(metrics.evaluate(one_class).kid > 1)
  end)
end)
