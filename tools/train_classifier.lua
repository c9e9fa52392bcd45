-- Trains the Fashion-MNIST classifier behind gen.metrics and writes its weights to
-- lua/gen/metrics/fashion_mnist_classifier.safetensors (with its test accuracy in the metadata).
--   bin/gen tools/train_classifier.lua [--epochs 4] [--seed 0]
local gen = require "gen"
local metrics = require "gen.metrics"
local experiment = require "gen.experiment"

local run = experiment.parse("classifier", arg, { epochs = 4, batch = 128, lr = 1e-3 })
gen.manual_seed(run.seed)
local model = metrics.Classifier()
local opt = gen.optim.AdamW(model, { lr = run.lr, weight_decay = 1e-4 })
local train, test = gen.data.fashion_mnist { split = "train" }, gen.data.fashion_mnist { split = "test" }
local loader = gen.data.DataLoader(train, { batch_size = run.batch, seed = run.seed, transform = { flip = true } })
local sched = gen.optim.Scheduler(opt, gen.optim.schedules.cosine(run.epochs * #loader, 0.05))

local function accuracy()
  model:eval()
  local correct = 0
  gen.no_grad(function()
    for i = 1, #test, 1000 do
      local x = test.images:narrow(1, i, 1000):float() * (2 / 255) - 1
      local _, pred = model(x):max(2)
      correct = correct + pred:eq(test.labels:narrow(1, i, 1000)):sum():item()
    end
  end)
  model:train()
  return correct / #test
end

for epoch = 1, run.epochs do
  local bar = gen.ui.progress(#loader, { label = "epoch " .. epoch })
  local k = 0
  for x, y in loader:iter { epoch = epoch } do
    opt:zero_grad()
    local loss = gen.cross_entropy(model(x), y)
    loss:backward()
    opt:step()
    sched:step()
    k = k + 1
    bar:update(k, { loss = loss:item() })
  end
  bar:close()
  print(string.format("epoch %d: test accuracy %.4f", epoch, accuracy()))
end
local acc = accuracy()
model:eval()
gen.save(metrics.weights_path, model:state_dict(), { test_accuracy = string.format("%.4f", acc), epochs = tostring(run.epochs) })
print(string.format("wrote %s (test accuracy %.4f)", metrics.weights_path, acc))
