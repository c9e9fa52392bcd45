--- gen.nn attention: MultiheadAttention on the fused scaled-dot-product kernel.
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
--- forward(query [, key, value [, {causal, mask}]]): self-attention when key/value are nil.
-- Returns {B, Tq, E}.
function M.MultiheadAttention:forward(q, k, v, opts)
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
function M.MultiheadAttention:extra_repr() return string.format("%d, num_heads=%d", self.embed_dim, self.num_heads) end

return M
