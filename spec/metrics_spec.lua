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
  end)
end)
