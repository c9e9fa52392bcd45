--- A GPT: a decoder-only causal transformer over token sequences (Radford et al., 2018, 2019), the
-- prior over VQ codes of DALL-E (Ramesh et al., 2021) and, without a head, a text encoder.
--   GPT{vocab = 512, block_size = 50, dim = 256, depth = 6, heads = 8, mlp_ratio = 4,
--       dropout = 0, classes = 0, start = true, tie = false}
-- The sequence the transformer sees is [prefix, x_1 .. x_T]: the prefix is one token, the class
-- embedding of the label (classes > 0: a class-conditional prior), or else a learned start token
-- (start = true; start = false gives no prefix, a plain language model). Embeddings: token
-- table + learned positions (block_size of them, prefix included), dropout; then `depth` pre-norm
-- blocks x += Attn(LN(x)), x += MLP(LN(x)) with causal self-attention on the fused kernel and
-- residual dropout (gen.nn.blocks.TransformerBlock); a final LayerNorm and a linear head to
-- `vocab` logits, its weight tied to the token table with tie = true.
--
--   logits = model(x {B, T} int64 in 1..vocab [, {labels = {B}, cache = kv}])   -> {B, P + T, vocab}
-- logits[:, t] is the distribution of the token after position t, so with a prefix (P = 1) the
-- first row predicts x_1 and the last predicts x_{T+1}: training on codes c {B, N} is
-- cross_entropy(model(c[:, 1..N-1], {labels}), c). With a key/value cache
-- (model:new_cache(B)) each call appends its tokens to the cached ones and returns their logits
-- only; the prefix goes in on the first call (cache empty), so decoding is
-- model(empty {B, 0}, {labels, cache}), then model(x_t {B, 1}, {cache}) for each new token.
-- Initialization as GPT-2: weights N(0, 0.02^2), biases 0, the residual projections (attention
-- output and the MLP's second layer) N(0, (0.02 / sqrt(2 depth))^2). State-dict keys:
-- tok_emb.weight, pos_emb.pos, start (or class_emb.weight), blocks.N.{norm1, attn.in_proj_weight,
-- attn.in_proj_bias, attn.out_proj, norm2, mlp.0, mlp.2}, norm, head.weight.
local gen = require "gen"
local nn = gen.nn
local blocks = require "gen.nn.blocks"

local M = {}

local function positive_integer(who, name, v)
  if math.type(v) ~= "integer" or v < 1 then error(string.format("%s: %s must be a positive integer, got %s", who, name, tostring(v)), 4) end
end

M.GPT = nn.Module:extend("GPT")
function M.GPT:init(opts)
  opts = opts or {}
  local vocab, block, dim, depth, heads = opts.vocab or 512, opts.block_size or 50, opts.dim or 256, opts.depth or 6, opts.heads or 8
  for name, v in pairs { vocab = vocab, block_size = block, dim = dim, depth = depth, heads = heads } do positive_integer("GPT", name, v) end
  if dim % heads ~= 0 then error(string.format("GPT: %d heads do not divide dim %d", heads, dim), 3) end
  local p = opts.dropout or 0
  if type(p) ~= "number" or p < 0 or p >= 1 then error("GPT: dropout must be in [0, 1), got " .. tostring(p), 3) end
  local classes = opts.classes or 0
  if math.type(classes) ~= "integer" or classes < 0 then error("GPT: classes must be an integer >= 0, got " .. tostring(classes), 3) end
  self.vocab, self.block_size, self.dim, self.depth, self.heads, self.p = vocab, block, dim, depth, heads, p
  self.classes, self.tied = classes, opts.tie == true
  self.prefix_tokens = (classes > 0 or opts.start ~= false) and 1 or 0
  if self.prefix_tokens >= block then error(string.format("GPT: block_size %d leaves no room after the prefix", block), 3) end

  local std = 0.02
  self.tok_emb = nn.Embedding(vocab, dim)
  nn.init.normal_(self.tok_emb.weight, 0, std)
  self.pos_emb = blocks.PositionEmbedding(dim, { 1, block }, { kind = "learned" })
  if classes > 0 then
    self.class_emb = blocks.ClassEmbedding(classes, dim)
    nn.init.normal_(self.class_emb.weight, 0, std)
  elseif self.prefix_tokens == 1 then
    self.start = nn.Parameter(gen.randn(1, 1, dim) * std)
  end
  local list = {}
  for i = 1, depth do
    local b = blocks.TransformerBlock(dim, heads, { mlp_ratio = opts.mlp_ratio or 4, dropout = p })
    for _, lin in ipairs { b.mlp:get(1), b.mlp:get(3), b.attn.out_proj } do
      nn.init.normal_(lin.weight, 0, lin == b.mlp:get(1) and std or std / math.sqrt(2 * depth))
      nn.init.zeros_(lin.bias)
    end
    nn.init.normal_(b.attn.in_proj_weight, 0, std)
    list[i] = b
  end
  self.blocks = nn.ModuleList(list)
  self.norm = nn.LayerNorm(dim)
  if not self.tied then
    self.head = nn.Linear(dim, vocab, { bias = false })
    nn.init.normal_(self.head.weight, 0, std)
  end
end

--- A key/value cache for decoding `batch` sequences of up to block_size tokens (prefix included).
function M.GPT:new_cache(batch)
  positive_integer("GPT:new_cache", "batch", batch)
  return nn.KVCache(self.depth, batch, self.heads, self.block_size, self.dim // self.heads, self.tok_emb.weight.dtype)
end

local function dims(t) return gen.is_tensor(t) and t.dtype .. " {" .. table.concat(t.shape, ",") .. "}" or type(t) end

--- The prefix embeddings {B, P, dim} (P = 0 or 1) for a batch of B.
function M.GPT:prefix(b, labels)
  if self.class_emb then
    if labels == nil then error(string.format("GPT: this model is class-conditional (%d classes): give labels", self.classes), 3) end
    return self.class_emb(labels, b, "GPT"):view(b, 1, self.dim)
  end
  if labels ~= nil then error("GPT: labels given to a model without classes", 3) end
  if self.start then return self.start:expand(b, 1, self.dim) end
  return nil
end

--- The final hidden states {B, P + T, dim} (after the last LayerNorm): the features a text
-- encoder uses. See the header for x and opts.
function M.GPT:features(x, opts)
  opts = opts or {}
  if not gen.is_tensor(x) or x.dtype ~= "int64" or x:dim() ~= 2 then
    error("GPT: expected tokens as an int64 tensor {B, T}, got " .. dims(x), 3)
  end
  local b, t = x:size(1), x:size(2)
  if t > 0 then
    local lo, hi = x:min():item(), x:max():item()
    if lo < 1 or hi > self.vocab then
      error(string.format("GPT: tokens must be in 1..%d, got values in %d..%d", self.vocab, lo, hi), 3)
    end
  end
  local cache = opts.cache
  local past = cache and cache:length() or 0
  local first = past == 0 -- the prefix goes in with the first tokens
  local total = past + t + (first and self.prefix_tokens or 0)
  if total > self.block_size then
    error(string.format("GPT: %d tokens (prefix and cache included) exceed block_size %d", total, self.block_size), 3)
  end
  if total == past then error("GPT: no tokens to process", 3) end
  local h = t > 0 and self.tok_emb(x) or nil
  local pre = first and self:prefix(b, opts.labels) or nil
  if not first and opts.labels ~= nil then error("GPT: labels go in with the first call on a cache", 3) end
  if pre and h then h = gen.cat({ pre, h }, 2) elseif pre then h = pre end
  h = self.pos_emb(h, past + 1)
  if self.p > 0 then h = gen.dropout(h, self.p, self.training) end
  for i, blk in self.blocks:ipairs() do h = blk(h, { causal = true, cache = cache and cache:layer(i) }) end
  return self.norm(h)
end

function M.GPT:forward(x, opts)
  local h = self:features(x, opts)
  if self.tied then return gen.linear(h, self.tok_emb.weight) end
  return self.head(h)
end

function M.GPT:extra_repr()
  return string.format("vocab=%d, block_size=%d, dim=%d, depth=%d, heads=%d, classes=%d, prefix=%d, tied=%s", self.vocab,
    self.block_size, self.dim, self.depth, self.heads, self.classes, self.prefix_tokens, tostring(self.tied))
end

return M
