--- gen.nn.blocks: the building blocks that models of several families share.
--   ClassEmbedding     a label table that owns the "no class" entry (classifier-free guidance)
--                      and the one check of labels every conditional model runs
--   timestep_embedding sinusoidal features of (fractional) times (Vaswani et al., 2017)
--   FourierEmbedding   Gaussian random Fourier features of noise levels (Tancik et al., 2020;
--                      Song et al., 2021)
--   ResBlock           GroupNorm - SiLU - Conv3x3, plus a projected time/class embedding, twice,
--                      with a 1x1 skip when the width changes (Ho et al., 2020)
--   AttnBlock          self-attention over the pixels of a feature map, with a residual
--   TransformerBlock   pre-norm block: x + MHA(LN(x)), then x + MLP(LN(x)) (Vaswani et al., 2017;
--                      the pre-norm order of GPT-2 and ViT)
local gen = require "gen"
local base = require "gen.nn.module"
local nn = require "gen.nn"
local Module, Parameter = base.Module, base.Parameter

local M = {}

local function shape_of(v)
  if gen.is_tensor(v) then return v.dtype .. " {" .. table.concat(v.shape, ",") .. "}" end
  return type(v)
end

---------------------------------------------------------------- class labels

M.ClassEmbedding = Module:extend("ClassEmbedding")
--- ClassEmbedding(classes, dim [, {null = false}]): labels 1..classes -> {N, dim} rows, weights
-- N(0, 1) as nn.Embedding's. With null = true the table has one more row, label classes + 1,
-- meaning "no class": the unconditional branch of classifier-free guidance (Ho & Salimans, 2022).
-- Its index is `null_label`; training drops labels to it and guidance asks for it.
function M.ClassEmbedding:init(classes, dim, opts)
  if math.type(classes) ~= "integer" or classes < 1 then
    error("gen.nn.blocks.ClassEmbedding: classes must be a positive integer, got " .. tostring(classes), 3)
  end
  self.classes, self.dim = classes, dim
  self.null_label = opts and opts.null and classes + 1 or nil
  self.weight = Parameter(gen.randn(self.null_label or classes, dim))
end

--- check(labels [, n [, owner]]): labels must be int64 {n} with values in 1..classes (or the
-- null label). Errors name the owner (the model that was given the labels).
function M.ClassEmbedding:check(labels, n, owner)
  local top = self.null_label or self.classes
  local who = owner or self.__name
  if not gen.is_tensor(labels) or labels.dtype ~= "int64" or labels:dim() ~= 1 or (n and labels:size(1) ~= n) then
    error(string.format("%s: expected labels as an int64 tensor {%s} (classes = %d), got %s", who,
      n and tostring(n) or "N", self.classes, shape_of(labels)), 3)
  end
  if labels:numel() > 0 then
    local lo, hi = labels:min():item(), labels:max():item()
    if lo < 1 or hi > top then
      error(string.format("%s: labels must be in 1..%d%s, got values in %d..%d", who, top,
        self.null_label and " (" .. self.null_label .. " = no class)" or "", lo, hi), 3)
    end
  end
  return labels
end

--- forward(labels [, n [, owner]]): the checked labels' rows {N, dim}.
function M.ClassEmbedding:forward(labels, n, owner)
  return gen.embedding(self:check(labels, n, owner), self.weight)
end
function M.ClassEmbedding:extra_repr()
  return string.format("%d, %d%s", self.classes, self.dim, self.null_label and ", null_label=" .. self.null_label or "")
end

--- The labels with each one replaced by the null label with probability p (training for
-- classifier-free guidance): one uniform per label from gen's RNG. With p <= 0 or no labels, the
-- labels come back unchanged and nothing is drawn.
function M.drop_labels(labels, p, null_label)
  if not labels or (p or 0) <= 0 then return labels end
  if not null_label then error("gen.nn.blocks.drop_labels: the model has no null label (build it with null = true)", 2) end
  local drop = gen.rand(labels:size(1)):lt(p)
  return gen.where(drop, gen.full({ labels:size(1) }, null_label, "int64"), labels)
end

---------------------------------------------------------------- time and noise-level embeddings

--- Sinusoidal embedding of (possibly fractional) times t {B} -> {B, dim}: the first half
-- sin(t f_i), the second cos(t f_i), with f_i = 10000^(-i / half).
function M.timestep_embedding(t, dim)
  local half = dim // 2
  local freqs = {}
  for i = 0, half - 1 do freqs[i + 1] = math.exp(-math.log(10000) * i / half) end
  local args = t:float():view(-1, 1) * gen.tensor(freqs):view(1, half)
  return gen.cat({ args:sin(), args:cos() }, 2)
end

M.FourierEmbedding = Module:extend("FourierEmbedding")
--- FourierEmbedding(dim [, {scale = 16}]): t {B} -> {B, dim} = [sin(2 pi t w), cos(2 pi t w)] with
-- w ~ N(0, scale^2) drawn once and kept as a buffer (saved with the model, never trained).
-- Suited to continuous noise levels such as log(sigma) / 4 in score-based models.
function M.FourierEmbedding:init(dim, opts)
  if dim % 2 ~= 0 then error("gen.nn.blocks.FourierEmbedding: dim must be even, got " .. tostring(dim), 3) end
  self.dim, self.scale = dim, opts and opts.scale or 16
  self:register_buffer("freqs", gen.randn(dim // 2) * self.scale)
end
function M.FourierEmbedding:forward(t)
  local args = t:float():view(-1, 1) * (self.freqs * (2 * math.pi)):view(1, -1)
  return gen.cat({ args:sin(), args:cos() }, 2)
end
function M.FourierEmbedding:extra_repr() return string.format("%d, scale=%g", self.dim, self.scale) end

---------------------------------------------------------------- convolutional blocks

M.ResBlock = Module:extend("ResBlock")
--- ResBlock(cin, cout, emb_dim, groups [, {adaptive = false}]): forward(x {B, cin, H, W},
-- emb {B, emb_dim}) -> {B, cout, H, W}. emb carries the time (and class) embedding; each block
-- projects it to a per-channel shift after its first convolution, or with adaptive = true to a
-- scale and a shift of its second GroupNorm, norm(h) (1 + scale) + shift (adaptive group
-- normalization, Dhariwal & Nichol, 2021; `time` is then a Linear to 2 cout). emb_dim = 0 builds a
-- block without it.
function M.ResBlock:init(cin, cout, emb_dim, groups, opts)
  self.norm1 = nn.GroupNorm(groups, cin)
  self.conv1 = nn.Conv2d(cin, cout, 3, { padding = 1 })
  self.adaptive = opts and opts.adaptive or false
  if (emb_dim or 0) > 0 then self.time = nn.Linear(emb_dim, self.adaptive and 2 * cout or cout) end
  self.norm2 = nn.GroupNorm(groups, cout)
  self.conv2 = nn.Conv2d(cout, cout, 3, { padding = 1 })
  if cin ~= cout then self.skip = nn.Conv2d(cin, cout, 1) end
end
function M.ResBlock:forward(x, emb)
  local h = self.conv1(gen.silu(self.norm1(x)))
  if self.time and not emb then error("ResBlock: this block takes an embedding {B, " .. self.time.in_features .. "}", 2) end
  if self.time and self.adaptive then
    local b, c = h:size(1), h:size(2)
    local e = self.time(gen.silu(emb))
    local scale, shift = e:narrow(2, 1, c):reshape(b, c, 1, 1), e:narrow(2, c + 1, c):reshape(b, c, 1, 1)
    h = self.conv2(gen.silu(self.norm2(h) * (scale + 1) + shift))
  else
    if self.time then h = h + self.time(gen.silu(emb)):view(h:size(1), h:size(2), 1, 1) end
    h = self.conv2(gen.silu(self.norm2(h)))
  end
  return h + (self.skip and self.skip(x) or x)
end

M.AttnBlock = Module:extend("AttnBlock")
--- AttnBlock(channels, heads, groups): x + MHA(GroupNorm(x)) over the H W positions of x.
function M.AttnBlock:init(c, heads, groups)
  self.norm = nn.GroupNorm(groups, c)
  self.attn = nn.MultiheadAttention(c, heads)
end
function M.AttnBlock:forward(x)
  local b, c, h, w = table.unpack(x.shape)
  local tokens = self.norm(x):view(b, c, h * w):transpose(2, 3) -- {B, HW, C}
  local y = self.attn(tokens):transpose(2, 3):reshape(b, c, h, w)
  return x + y
end

---------------------------------------------------------------- transformer

M.TransformerBlock = Module:extend("TransformerBlock")
--- TransformerBlock(dim, heads [, {mlp_ratio = 4, dropout = 0}]): on tokens {B, T, dim},
--   x = x + Dropout(MHA(LN(x)));  x = x + Dropout(W2 GELU(W1 LN(x)))
-- forward(x [, attn_opts]) passes attn_opts ({causal, mask}) to the attention.
function M.TransformerBlock:init(dim, heads, opts)
  opts = opts or {}
  local hidden = math.floor(dim * (opts.mlp_ratio or 4) + 0.5)
  self.dim, self.heads, self.p = dim, heads, opts.dropout or 0
  self.norm1 = nn.LayerNorm(dim)
  self.attn = nn.MultiheadAttention(dim, heads)
  self.norm2 = nn.LayerNorm(dim)
  self.mlp = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, dim))
end
function M.TransformerBlock:forward(x, attn_opts)
  if x:dim() ~= 3 or x:size(3) ~= self.dim then
    error(string.format("TransformerBlock: expected tokens {B, T, %d}, got {%s}", self.dim, table.concat(x.shape, ",")), 2)
  end
  local function drop(y) return self.p > 0 and gen.dropout(y, self.p, self.training) or y end
  local h = self.norm1(x)
  x = x + drop(self.attn(h, h, h, attn_opts))
  return x + drop(self.mlp(self.norm2(x)))
end
function M.TransformerBlock:extra_repr() return string.format("%d, heads=%d, dropout=%g", self.dim, self.heads, self.p) end

return M
