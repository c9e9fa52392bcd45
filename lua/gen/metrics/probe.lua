--- gen.metrics.probe: how much a frozen encoder's features know about the labels.
--   extract_features(fn, images [, {batch = 500, transform, label}]) -> {N, D} features of a
--       dataset's images (uint8 {N, H, W} or {N, C, H, W}, or float), computed by fn(x) in
--       batches under no_grad, with a progress bar; transform(x_uint8) -> the model's input
--       (default: x / 255 as {B, C, H, W} in [0, 1])
--   linear_probe(train_f, train_y, test_f, test_y [, opts]) -> test accuracy, train accuracy:
--       a linear softmax classifier trained by gen on features standardized with the training
--       set's mean and standard deviation: AdamW (lr 1e-3, weight decay 1e-4), batch 256,
--       `epochs` (20) passes in an order drawn from gen.Generator(seed) (0); zero-initialized,
--       so the result is deterministic
--   knn(train_f, train_y, test_f, test_y [, {k = 20, batch = 256}]) -> test accuracy: each test
--       point takes the label with the largest summed cosine similarity among its k most
--       similar training points (cosine on L2-normalized features)
-- Labels are 1-based int64 {N}. The features are frozen: nothing here changes the encoder.
local gen = require "gen"

local M = {}

local function check(who, f, y, name)
  if not gen.is_tensor(f) or f:dim() ~= 2 then
    error(string.format("gen.metrics.%s: %s features must be {N, D}, got %s", who, name,
      gen.is_tensor(f) and "{" .. table.concat(f.shape, ",") .. "}" or type(f)), 3)
  end
  if not gen.is_tensor(y) or y.dtype ~= "int64" or y:dim() ~= 1 or y:size(1) ~= f:size(1) then
    error(string.format("gen.metrics.%s: %s labels must be int64 {%d}, got %s", who, name, f:size(1),
      gen.is_tensor(y) and y.dtype .. " {" .. table.concat(y.shape, ",") .. "}" or type(y)), 3)
  end
end

function M.extract_features(fn, images, opts)
  opts = opts or {}
  local n, bs = images:size(1), opts.batch or 500
  local transform = opts.transform or function(x)
    x = x:float() / 255
    return x:dim() == 3 and x:unsqueeze(2) or x
  end
  local parts = {}
  local progress = opts.progress ~= false and gen.ui and gen.ui.progress(n, { label = opts.label or "features" })
  gen.no_grad(function()
    for i = 1, n, bs do
      local b = math.min(bs, n - i + 1)
      parts[#parts + 1] = fn(transform(images:narrow(1, i, b))):contiguous()
      if progress then progress:update(i + b - 1) end
    end
  end)
  if progress then progress:close() end
  return gen.cat(parts, 1)
end

local function accuracy(logits, y)
  local _, pred = logits:max(2)
  return pred:eq(y):sum():item() / y:size(1)
end

function M.linear_probe(train_f, train_y, test_f, test_y, opts)
  opts = opts or {}
  check("linear_probe", train_f, train_y, "train")
  check("linear_probe", test_f, test_y, "test")
  if test_f:size(2) ~= train_f:size(2) then
    error(string.format("gen.metrics.linear_probe: train features have %d dimensions, test features %d", train_f:size(2),
      test_f:size(2)), 2)
  end
  local classes = opts.classes or math.max(train_y:max():item(), test_y:max():item())
  local n, d = train_f:size(1), train_f:size(2)
  local mean = train_f:float():mean(1, true)
  local std = train_f:float():std(1, true) + 1e-6
  local xtr, xte = (train_f:float() - mean) / std, (test_f:float() - mean) / std
  local w = gen.nn.Parameter(gen.zeros(classes, d))
  local b = gen.nn.Parameter(gen.zeros(classes))
  local opt = gen.optim.AdamW({ w, b }, { lr = opts.lr or 1e-3, weight_decay = opts.weight_decay or 1e-4 })
  local g = gen.Generator(opts.seed or 0)
  local bs = opts.batch or 256
  for _ = 1, opts.epochs or 20 do
    local order = gen.randperm(n, { generator = g })
    for i = 1, n, bs do
      local idx = order:narrow(1, i, math.min(bs, n - i + 1))
      opt:zero_grad()
      local loss = gen.cross_entropy(gen.linear(xtr:index_select(1, idx), w, b), train_y:index_select(1, idx))
      loss:backward()
      opt:step()
    end
  end
  local test_acc, train_acc
  gen.no_grad(function()
    test_acc, train_acc = accuracy(gen.linear(xte, w, b), test_y), accuracy(gen.linear(xtr, w, b), train_y)
  end)
  return test_acc, train_acc
end

function M.knn(train_f, train_y, test_f, test_y, opts)
  opts = opts or {}
  check("knn", train_f, train_y, "train")
  check("knn", test_f, test_y, "test")
  local k, bs = opts.k or 20, opts.batch or 256
  if math.type(k) ~= "integer" or k < 1 or k > train_f:size(1) then
    error(string.format("gen.metrics.knn: k must be in 1..%d, got %s", train_f:size(1), tostring(k)), 2)
  end
  local function normalize(f)
    f = f:float()
    return f / ((f * f):sum(2, true):sqrt() + 1e-12)
  end
  local tr, te = normalize(train_f), normalize(test_f)
  local classes = opts.classes or math.max(train_y:max():item(), test_y:max():item())
  local correct = 0
  gen.no_grad(function()
    for i = 1, te:size(1), bs do
      local q = te:narrow(1, i, math.min(bs, te:size(1) - i + 1))
      local sims = gen.matmul(q, tr:t()) -- {b, Ntrain}
      local v, idx = sims:topk(k, 2) -- {b, k}: the k most similar, ties to the earlier training point
      local votes = gen.zeros(q:size(1), classes)
      votes:scatter_add_(2, train_y:index_select(1, idx:view(-1)):view(q:size(1), k), v)
      local _, pred = votes:max(2)
      correct = correct + pred:view(-1):eq(test_y:narrow(1, i, q:size(1))):sum():item()
    end
  end)
  return correct / te:size(1)
end

return M
