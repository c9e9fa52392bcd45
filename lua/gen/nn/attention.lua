--- gen.nn attention: MultiheadAttention on the fused scaled-dot-product kernel, and KVCache, the
-- keys and values a causal model keeps while it decodes one token at a time.
local gen = require "gen"
local base = require "gen.nn.module"
local init = require "gen.nn.init_fns"
local Linear = require("gen.nn.linear").Linear
local M = {}
local Module, Parameter = base.Module, base.Parameter

M.MultiheadAttention = Module:extend("MultiheadAttention")
--- MultiheadAttention(embed_dim, num_heads, {bias = true}): inputs are {B, T, E} (batch first).
-- Parameters follow PyTorch's names: in_proj_weight {3E, E}, in_proj_bias, out_proj (Linear).
function M.MultiheadAttention:init(embed_dim, num_heads, opts)
  opts = opts or {}
  if embed_dim % num_heads ~= 0 then
    error(string.format("gen.nn.MultiheadAttention: %d heads do not divide embed_dim %d", num_heads, embed_dim), 2)
  end
  self.embed_dim, self.num_heads = embed_dim, num_heads
  self.in_proj_weight = Parameter(init.xavier_uniform_(gen.empty(3 * embed_dim, embed_dim)))
  if opts.bias ~= false then self.in_proj_bias = Parameter(gen.zeros(3 * embed_dim)) end
  self.out_proj = Linear(embed_dim, embed_dim, { bias = opts.bias })
  if self.out_proj.bias then gen.no_grad(function() self.out_proj.bias:zero_() end) end
end
--- forward(query [, key, value [, {causal, mask, cache}]]): self-attention when key/value are nil.
-- Returns {B, Tq, E}. With cache (one layer's slot of a KVCache, causal self-attention only) the
-- T new tokens' keys and values are written after the cached ones and the queries attend to all of
-- them: one new token costs one token's projections and an O(cached) attention row, not a rerun
-- of the prefix.
function M.MultiheadAttention:forward(q, k, v, opts)
  if opts and opts.cache then return self:forward_cached(q, opts.cache, opts) end
  k, v = k or q, v or k or q
  local E, H = self.embed_dim, self.num_heads
  local w, b = self.in_proj_weight, self.in_proj_bias
  local function project(x, i)
    local wi = w:narrow(1, (i - 1) * E + 1, E)
    local bi = b and b:narrow(1, (i - 1) * E + 1, E) or nil
    local y = gen.linear(x, wi, bi)
    local B, T = y:size(1), y:size(2)
    return y:view(B, T, H, E // H):transpose(2, 3) -- {B, H, T, d}
  end
  local out = gen.scaled_dot_product_attention(project(q, 1), project(k, 2), project(v, 3), opts)
  local B, Tq = out:size(1), out:size(3)
  return self.out_proj(out:transpose(2, 3):reshape(B, Tq, E))
end
function M.MultiheadAttention:forward_cached(x, slot, opts)
  if not opts.causal or opts.mask then
    error("MultiheadAttention: a key/value cache needs causal = true and no mask", 3)
  end
  local E, H = self.embed_dim, self.num_heads
  local B, T = x:size(1), x:size(2)
  local keys, values, n = slot.keys, slot.values, slot.length
  if B ~= keys:size(1) or H ~= keys:size(2) or E // H ~= keys:size(4) then
    error(string.format("MultiheadAttention: the cache is for {B = %d, heads = %d, d = %d}, got %d tokens {%s} for %d heads",
      keys:size(1), keys:size(2), keys:size(4), T, table.concat(x.shape, ","), H), 3)
  end
  if n + T > keys:size(3) then
    error(string.format("MultiheadAttention: the cache holds %d tokens; %d more exceed its length %d", n, T, keys:size(3)), 3)
  end
  local w, b = self.in_proj_weight, self.in_proj_bias
  local function project(i)
    local y = gen.linear(x, w:narrow(1, (i - 1) * E + 1, E), b and b:narrow(1, (i - 1) * E + 1, E) or nil)
    return y:view(B, T, H, E // H):transpose(2, 3)
  end
  keys:narrow(3, n + 1, T):copy_(project(2))
  values:narrow(3, n + 1, T):copy_(project(3))
  slot.length = n + T
  -- the whole buffer, unfilled rows included: causality with offset n hides them (and the kernel
  -- skips their tiles), so nothing is sliced or copied per token
  local out = gen.scaled_dot_product_attention(project(1), keys, values, { causal = true, offset = n })
  return self.out_proj(out:transpose(2, 3):reshape(B, T, E))
end

function M.MultiheadAttention:extra_repr() return string.format("%d, num_heads=%d", self.embed_dim, self.num_heads) end

M.KVCache = {}
M.KVCache.__index = M.KVCache
--- KVCache(layers, batch, heads, length, head_dim [, dtype]): for each of `layers` attention
-- layers, preallocated keys and values {batch, heads, length, head_dim} (zeros) and a count of the
-- tokens written. cache:layer(i) is the slot layer i's MultiheadAttention takes as {cache = slot};
-- it appends in place, so a sequence of n tokens costs n rows of writes in total, never an
-- O(n^2) re-concatenation. For inference (under gen.no_grad): the buffers do not record autograd.
setmetatable(M.KVCache, { __call = function(cls, layers, batch, heads, length, head_dim, dtype)
  for _, v in ipairs { layers, batch, heads, length, head_dim } do
    if math.type(v) ~= "integer" or v < 1 then
      error(string.format("gen.nn.KVCache: layers, batch, heads, length and head_dim must be positive integers, got %s, %s, %s, %s, %s",
        tostring(layers), tostring(batch), tostring(heads), tostring(length), tostring(head_dim)), 2)
    end
  end
  local self = setmetatable({ slots = {}, max_length = length }, cls)
  for i = 1, layers do
    self.slots[i] = { keys = gen.zeros({ batch, heads, length, head_dim }, dtype or "float32"),
      values = gen.zeros({ batch, heads, length, head_dim }, dtype or "float32"), length = 0 }
  end
  return self
end })
function M.KVCache:layer(i) return self.slots[i] end
--- The number of tokens cached (the same in every layer once a forward pass has gone through).
function M.KVCache:length() return self.slots[1].length end
--- Forgets the tokens (the buffers are kept and overwritten).
function M.KVCache:reset() for _, s in ipairs(self.slots) do s.length = 0 end end

return M
