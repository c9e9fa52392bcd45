--- The Fashion-MNIST classifier, gen.metrics' default feature extractor: a small CNN trained with
-- gen (tools/train_classifier.lua); its 128 penultimate features give FID and KID, its class
-- probabilities the Inception Score, coverage and agreement. Images are {N, 1, 28, 28}: uint8
-- (0 = black) or floats in [-1, 1]. The weights ship beside this file.
--
-- An extractor for gen.metrics.evaluate is a table with
--   name                        for messages
--   features(images) -> f, p    features {N, D} and class probabilities {N, K} (p may be nil)
--   reference() -> f            features of the reference set (cached by the extractor)
local gen = require "gen"
local nn = gen.nn

local M = { name = "fashion_mnist" }

M.Classifier = nn.Module:extend("FashionClassifier")
function M.Classifier:init()
  self.block1 = nn.Sequential(nn.Conv2d(1, 32, 3, { padding = 1 }), nn.BatchNorm2d(32), nn.ReLU())
  self.block2 = nn.Sequential(nn.Conv2d(32, 64, 3, { padding = 1 }), nn.BatchNorm2d(64), nn.ReLU())
  self.fc = nn.Sequential(nn.Flatten(), nn.Linear(64 * 7 * 7, 128), nn.ReLU())
  self.dropout = nn.Dropout(0.3)
  self.head = nn.Linear(128, 10)
end
--- The 128 penultimate features used for FID.
function M.Classifier:embed(x)
  local h = gen.max_pool2d(self.block1(x), 2)
  return self.fc(gen.max_pool2d(self.block2(h), 2))
end
function M.Classifier:forward(x) return self.head(self.dropout(self:embed(x))) end

M.weights_path = (function()
  local here = debug.getinfo(1, "S").source:match("^@(.*)/[^/]*$") or "."
  return here .. "/fashion_mnist_classifier.safetensors"
end)()

local cached
--- The trained classifier (eval mode), loaded once.
function M.classifier()
  if cached then return cached end
  local c = M.Classifier()
  local ok, tensors = pcall(gen.load, M.weights_path)
  if not ok then error("gen.metrics: no classifier weights at " .. M.weights_path .. " (run bin/gen tools/train_classifier.lua)", 2) end
  c:load_state_dict(tensors)
  cached = c:eval()
  return cached
end

local function as_input(images)
  if images.dtype == "uint8" then return images:float() * (2 / 255) - 1 end
  return images:float()
end

--- Penultimate features {N, 128} and class probabilities {N, 10}, in batches (opts.classifier
-- replaces the shipped one).
function M.features(images, opts)
  local c = opts and opts.classifier or M.classifier()
  if images:dim() ~= 4 or images:size(2) ~= 1 or images:size(3) ~= 28 or images:size(4) ~= 28 then
    error(string.format("gen.metrics: the Fashion-MNIST classifier takes images {N, 1, 28, 28}, got {%s}",
      table.concat(images.shape, ",")), 2)
  end
  local feats, probs = {}, {}
  gen.no_grad(function()
    for i = 1, images:size(1), 500 do
      local x = as_input(images:narrow(1, i, math.min(500, images:size(1) - i + 1)))
      local f = c:embed(x)
      feats[#feats + 1] = f
      probs[#probs + 1] = c.head(f):softmax(2)
    end
  end)
  return gen.cat(feats), gen.cat(probs)
end

local test_features
--- Features of the Fashion-MNIST test set, computed once.
function M.reference()
  if not test_features then test_features = M.features(gen.data.fashion_mnist { split = "test" }.images) end
  return test_features
end

return M
