--- gen.autoregressive.gpt: the objective of a GPT over token sequences (gen.models.gpt.GPT).
--
-- A sequence x_1 .. x_N factors as p(x) = prod_i p(x_i | x_<i, y) with the class y (or a start
-- token) as the prefix; the model reads [y, x_1 .. x_{N-1}] and its N rows of logits give the
-- N factors at once (teacher forcing). Training minimizes the mean negative log-likelihood per
-- token in nats; log2(e) times it is bits per token, and N times it the NLL of a whole sequence
-- (of a whole code grid, for a prior over VQ codes).
local gen = require "gen"

local M = {}

--- loss(model, x {B, N} int64 [, {labels}]) -> mean NLL per token in nats (a 0-d tensor).
function M.loss(model, x, opts)
  if not gen.is_tensor(x) or x.dtype ~= "int64" or x:dim() ~= 2 or x:size(2) < 1 then
    error("gen.autoregressive.gpt.loss: expected tokens int64 {B, N}, got " ..
      (gen.is_tensor(x) and x.dtype .. " {" .. table.concat(x.shape, ",") .. "}" or type(x)), 2)
  end
  if (model.prefix_tokens or 0) ~= 1 then error("gen.autoregressive.gpt.loss: the model needs a start token or a class prefix", 2) end
  local b, n = x:size(1), x:size(2)
  local logits = model(x:narrow(2, 1, n - 1), { labels = opts and opts.labels })
  return gen.cross_entropy(logits:reshape(b * n, logits:size(3)), x:reshape(b * n))
end

--- The mean NLL per token (nats) of sequences x {N, T}, in batches of `batch`, without gradients.
function M.nll(model, x, opts)
  opts = opts or {}
  local bs, total, n = opts.batch or 256, 0, x:size(1)
  local was = model.training
  model:eval()
  gen.no_grad(function()
    for first = 1, n, bs do
      local m = math.min(bs, n - first + 1)
      local labels = opts.labels and opts.labels:narrow(1, first, m) or nil
      total = total + M.loss(model, x:narrow(1, first, m), { labels = labels }):item() * m
    end
  end)
  if was then model:train() end
  return total / n
end

return M
