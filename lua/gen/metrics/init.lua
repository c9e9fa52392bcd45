--- gen.metrics: sample quality from the features of a network, any network: an extractor (see
-- gen.metrics.fashion_mnist, the default, for the interface) turns images into features and class
-- probabilities, and these functions score them:
--   FID (Heusel et al., 2017) between Gaussians fitted to two feature sets,
--   KID (Binkowski et al., 2018), the unbiased squared MMD under a cubic polynomial kernel,
--   Inception Score (Salimans et al., 2016) from class probabilities,
--   coverage = entropy of the predicted-class histogram (ln 10 = 2.303 when all classes appear
--   equally), and agreement = the fraction classified as a requested class.
-- The extractor is the measuring instrument: models are never trained against it.
local gen = require "gen"
local fashion_mnist = require "gen.metrics.fashion_mnist"

local M = { fashion_mnist = fashion_mnist }

-- Representation quality of frozen features: linear probe, k-nearest neighbours, and the helper
-- that runs an encoder over a dataset (gen.metrics.probe).
local probe = require "gen.metrics.probe"
M.probe, M.linear_probe, M.knn, M.extract_features = probe, probe.linear_probe, probe.knn, probe.extract_features

-- The default extractor's pieces under their old names.
M.Classifier, M.classifier, M.features, M.weights_path =
  fashion_mnist.Classifier, fashion_mnist.classifier, fashion_mnist.features, fashion_mnist.weights_path

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

--- All metrics for a set of samples against the extractor's reference set (opts.extractor,
-- the Fashion-MNIST classifier and test set by default). opts.class: also the fraction of samples
-- classified as that class; opts.labels ({N}, 1..K): the fraction classified as their own
-- requested class.
local reference_rms = setmetatable({}, { __mode = "k" })
function M.evaluate(images, opts)
  opts = opts or {}
  local extractor = opts.extractor or fashion_mnist
  local reference = extractor.reference()
  local f, p = extractor.features(images)
  -- KID on features divided by the reference set's RMS feature: the classifier's features are
  -- large (mean square ~10 per dimension), which would put the cubic kernel far from its intended scale
  if not reference_rms[reference] then reference_rms[reference] = math.sqrt(reference:double():pow(2):mean():item()) end
  local rms = reference_rms[reference]
  local kid = M.kid_from_features(f:double() / rms, reference:double() / rms)
  local r = { fid = M.fid_from_features(f, reference), kid = kid, n = images:size(1) }
  if p then r.inception_score, r.coverage = M.inception_score(p), M.coverage(p) end
  if p and (opts.labels or (opts.class and opts.class > 0)) then
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
