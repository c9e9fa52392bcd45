--- gen.metrics: sample quality measured with a Fashion-MNIST classifier trained with gen.
--   FID (Heusel et al., 2017) between the classifier's penultimate features of two image sets,
--   Inception Score (Salimans et al., 2016) with the classifier's class probabilities,
--   coverage = entropy of the predicted-class histogram (ln 10 = 2.303 when all classes appear
--   equally), and agreement = the fraction classified as a requested class.
-- The classifier's weights ship in lua/gen/metrics_classifier.safetensors, built by
-- tools/train_classifier.lua. Images are {N, 1, 28, 28}: uint8 (0 = black) or floats in [-1, 1].
local gen = require "gen"
local nn = gen.nn

local M = {}

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
  return here .. "/metrics_classifier.safetensors"
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

--- Penultimate features {N, 128} and class probabilities {N, 10}, in batches.
function M.features(images, opts)
  local c = opts and opts.classifier or M.classifier()
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

-- Symmetric eigen-decomposition by cyclic Jacobi rotations (float64 Lua tables): returns the
-- eigenvalues and the eigenvectors as columns.
local function jacobi_eigen(a)
  local n = #a
  local v = {}
  for i = 1, n do v[i] = {}; for j = 1, n do v[i][j] = i == j and 1 or 0 end end
  for _ = 1, 50 do
    local off = 0
    for p = 1, n - 1 do for q = p + 1, n do off = off + a[p][q] ^ 2 end end
    if off < 1e-22 then break end
    for p = 1, n - 1 do
      for q = p + 1, n do
        if math.abs(a[p][q]) > 1e-300 then
          local theta = (a[q][q] - a[p][p]) / (2 * a[p][q])
          local t = (theta >= 0 and 1 or -1) / (math.abs(theta) + math.sqrt(theta * theta + 1))
          local c = 1 / math.sqrt(t * t + 1)
          local s = t * c
          for k = 1, n do
            local akp, akq = a[k][p], a[k][q]
            a[k][p], a[k][q] = c * akp - s * akq, s * akp + c * akq
          end
          for k = 1, n do
            local apk, aqk = a[p][k], a[q][k]
            a[p][k], a[q][k] = c * apk - s * aqk, s * apk + c * aqk
          end
          for k = 1, n do
            local vkp, vkq = v[k][p], v[k][q]
            v[k][p], v[k][q] = c * vkp - s * vkq, s * vkp + c * vkq
          end
        end
      end
    end
  end
  local vals = {}
  for i = 1, n do vals[i] = a[i][i] end
  return vals, v
end

local function mean_cov(f)
  local x = f:double()
  local n = x:size(1)
  local mu = x:mean(1, true)
  local d = x - mu
  return mu, gen.matmul(d:t(), d) / (n - 1)
end

-- sqrt of a symmetric PSD matrix (tensor) via its eigen-decomposition
local function sqrtm(s)
  local vals, vecs = jacobi_eigen(s:totable())
  for i, v in ipairs(vals) do vals[i] = math.sqrt(math.max(v, 0)) end
  local q = gen.tensor(vecs, "float64")
  return gen.matmul(q * gen.tensor(vals, "float64"):view(1, -1), q:t())
end

--- Fréchet distance between Gaussians fitted to two feature sets {N, D}:
-- ||mu1 - mu2||^2 + Tr(S1 + S2 - 2 (S1^1/2 S2 S1^1/2)^1/2).
function M.fid_from_features(f1, f2)
  local mu1, s1 = mean_cov(f1)
  local mu2, s2 = mean_cov(f2)
  local r1 = sqrtm(s1)
  local middle = sqrtm(gen.matmul(gen.matmul(r1, s2), r1))
  local diff = mu1 - mu2
  local trace = 0
  local a, b, m = s1:totable(), s2:totable(), middle:totable()
  for i = 1, #a do trace = trace + a[i][i] + b[i][i] - 2 * m[i][i] end
  return (diff * diff):sum():item() + trace
end

--- Kernel Inception Distance (Binkowski et al., 2018): the unbiased estimate of the squared MMD
-- between two feature sets {N, D} and {M, D} under the kernel k(x, y) = (x.y / D + 1)^3.
-- Unlike FID it has no bias that grows as N shrinks, so it compares models measured on a few
-- hundred samples (1000-step DDPM sampling is too slow for 10000). Can be slightly negative.
function M.kid_from_features(f1, f2)
  local x, y = f1:double(), f2:double()
  local n, m, d = x:size(1), y:size(1), x:size(2)
  if n < 2 or m < 2 then error("gen.metrics.kid_from_features: needs at least 2 samples in each set, got " .. n .. " and " .. m, 2) end
  if y:size(2) ~= d then error("gen.metrics.kid_from_features: feature sizes differ: " .. d .. " and " .. y:size(2), 2) end
  local function k(a, b) return (gen.matmul(a, b:t()) / d + 1) ^ 3 end
  local kxx, kyy, kxy = k(x, x), k(y, y), k(x, y)
  local function off_diagonal_mean(kk, size) -- mean over i ~= j
    return (kk:sum():item() - gen.eye(size, "float64"):mul(kk):sum():item()) / (size * (size - 1))
  end
  return off_diagonal_mean(kxx, n) + off_diagonal_mean(kyy, m) - 2 * kxy:mean():item()
end

--- Inception Score exp(E_x KL(p(y|x) || p(y))) from class probabilities {N, 10}.
function M.inception_score(probs)
  local p = probs:double():clamp(1e-12, 1)
  local marginal = p:mean(1, true)
  return math.exp((p * (p:log() - marginal:log())):sum(2):mean():item())
end

--- Entropy (nats) of the histogram of predicted classes.
function M.coverage(probs)
  local _, pred = probs:max(2)
  local counts, n = {}, pred:size(1)
  for _, c in ipairs(pred:totable()) do counts[c] = (counts[c] or 0) + 1 end
  local h = 0
  for _, k in pairs(counts) do h = h - (k / n) * math.log(k / n) end
  return h
end

--- All metrics for a set of samples against the Fashion-MNIST test set (features cached).
-- opts.class: also the fraction of samples classified as that class; opts.labels ({N}, 1..10):
-- the fraction classified as their own requested class.
local test_features, test_rms
function M.evaluate(images, opts)
  opts = opts or {}
  if not test_features then test_features = M.features(gen.data.fashion_mnist { split = "test" }.images) end
  local f, p = M.features(images)
  -- KID on features divided by the test set's RMS feature: our classifier's features are large
  -- (mean square ~10 per dimension), which would put the cubic kernel far from its intended scale
  if not test_rms then test_rms = math.sqrt(test_features:double():pow(2):mean():item()) end
  local kid = M.kid_from_features(f:double() / test_rms, test_features:double() / test_rms)
  local r = { fid = M.fid_from_features(f, test_features), kid = kid, inception_score = M.inception_score(p), coverage = M.coverage(p), n = images:size(1) }
  if opts.labels or (opts.class and opts.class > 0) then
    local _, pred = p:max(2)
    local want = opts.labels or opts.class
    if opts.labels and (opts.labels:dim() ~= 1 or opts.labels:size(1) ~= images:size(1)) then
      error(string.format("gen.metrics.evaluate: labels must be {%d}, got {%s}", images:size(1), table.concat(opts.labels.shape, ",")), 2)
    end
    r.agreement = pred:eq(want):sum():item() / images:size(1)
  end
  return r
end

return M
