-- gen.metrics.linear_probe and gen.metrics.knn on the features bench/twin_probe.py check scores
-- with its PyTorch copies: raw Fashion-MNIST pixels (first 10000 training images, the 10000 test
-- images) and clustered random 128-d features drawn from fixed generators. Same lines as the
-- Python side; the feature sums show both scored the same numbers.
--   bin/gen bench/twin_probe_check.lua --threads 1
local gen = require "gen"
local metrics = require "gen.metrics"

for i, a in ipairs(arg) do
  if a == "--threads" then gen.set_num_threads(tonumber(arg[i + 1])) end
end

local sets = {}
local train, test = gen.data.fashion_mnist { split = "train" }, gen.data.fashion_mnist { split = "test" }
local function pixels(images) return images:float():view(images:size(1), -1) / 255 end
sets[1] = { "raw pixels", pixels(train.images:narrow(1, 1, 10000)), train.labels:narrow(1, 1, 10000), pixels(test.images),
  test.labels }
local centres = gen.rand({ 10, 128 }, { generator = gen.Generator(1) })
local n = 12000
local cycle = {}
for i = 1, n do cycle[i] = (i - 1) % 10 + 1 end
local labels = gen.tensor(cycle, "int64")
local f = gen.rand({ n, 128 }, { generator = gen.Generator(2) }) + centres:index_select(1, labels) * 0.25
sets[2] = { "random clusters", f:narrow(1, 1, 8000), labels:narrow(1, 1, 8000), f:narrow(1, 8001, 4000), labels:narrow(1, 8001, 4000) }

for _, s in ipairs(sets) do
  local name, ftr, ytr, fte, yte = table.unpack(s)
  local test_acc, train_acc = metrics.linear_probe(ftr, ytr, fte, yte)
  local knn = metrics.knn(ftr, ytr, fte, yte, { k = 20 })
  print(string.format("%s: features sum %.6f; linear probe test %.4f%% train %.4f%%; kNN %.4f%%", name,
    ftr:double():sum():item() + fte:double():sum():item(), 100 * test_acc, 100 * train_acc, 100 * knn))
end
