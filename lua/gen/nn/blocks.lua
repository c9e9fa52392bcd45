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
--   patchify           images {B, C, H, W} -> patch tokens {B, L, p p C} (Dosovitskiy et al., 2021),
--   unpatchify         and back; any patch size p dividing H and W
--   sincos_2d          fixed 2-D sin-cos position table {L, dim} (the MAE/ViT variant)
--   PositionEmbedding  fixed sin-cos (a buffer) or learned position embeddings added to tokens
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

---------------------------------------------------------------- vision transformer pieces

local function dims(x) return "{" .. table.concat(x.shape, ",") .. "}" end

--- patchify(x, p): images {B, C, H, W} -> tokens {B, (H/p)(W/p), p*p*C}, patches in row-major
-- order, each flattened as (row in patch, column in patch, channel), as MAE's patchify.
function M.patchify(x, p)
  if not gen.is_tensor(x) or x:dim() ~= 4 then
    error("gen.nn.blocks.patchify: expected images {B, C, H, W}, got " .. (gen.is_tensor(x) and dims(x) or type(x)), 2)
  end
  local b, c, h, w = table.unpack(x.shape)
  if math.type(p) ~= "integer" or p < 1 or h % p ~= 0 or w % p ~= 0 then
    error(string.format("gen.nn.blocks.patchify: patch size %s does not divide the image %dx%d", tostring(p), h, w), 2)
  end
  local gh, gw = h // p, w // p
  return x:reshape(b, c, gh, p, gw, p):permute(1, 3, 5, 4, 6, 2):reshape(b, gh * gw, p * p * c)
end

--- unpatchify(tokens, p, {C, H, W}): the inverse of patchify: {B, L, p*p*C} -> {B, C, H, W}.
function M.unpatchify(t, p, shape)
  local c, h, w = table.unpack(shape or {})
  if not (c and h and w) then error("gen.nn.blocks.unpatchify: give the image shape {C, H, W}", 2) end
  if math.type(p) ~= "integer" or p < 1 or h % p ~= 0 or w % p ~= 0 then
    error(string.format("gen.nn.blocks.unpatchify: patch size %s does not divide the image %dx%d", tostring(p), h, w), 2)
  end
  local gh, gw = h // p, w // p
  if not gen.is_tensor(t) or t:dim() ~= 3 or t:size(2) ~= gh * gw or t:size(3) ~= p * p * c then
    error(string.format("gen.nn.blocks.unpatchify: expected tokens {B, %d, %d} for %dx%dx%d images and patch %d, got %s",
      gh * gw, p * p * c, c, h, w, p, gen.is_tensor(t) and dims(t) or type(t)), 2)
  end
  local b = t:size(1)
  return t:reshape(b, gh, gw, p, p, c):permute(1, 6, 2, 4, 3, 5):reshape(b, c, h, w)
end

--- sincos_2d(dim, gh [, gw]): the fixed 2-D position table {gh gw, dim} of MAE (He et al., 2022):
-- the first half of each row encodes the patch's column, the second half its row, each as
-- [sin(pos w_i), cos(pos w_i)] with w_i = 10000^(-i / (dim / 4)), i = 0 .. dim/4 - 1 (positions
-- from 0). dim must be divisible by 4.
function M.sincos_2d(dim, gh, gw)
  gw = gw or gh
  if math.type(dim) ~= "integer" or dim % 4 ~= 0 then
    error("gen.nn.blocks.sincos_2d: dim must be divisible by 4, got " .. tostring(dim), 2)
  end
  local q = dim // 4
  local rows = {}
  for r = 0, gh - 1 do
    for c = 0, gw - 1 do
      local row = {}
      for half, pos in ipairs { c, r } do
        local off = (half - 1) * 2 * q
        for i = 0, q - 1 do
          local a = pos * 10000 ^ (-i / q)
          row[off + i + 1], row[off + q + i + 1] = math.sin(a), math.cos(a)
        end
      end
      rows[#rows + 1] = row
    end
  end
  return gen.tensor(rows)
end

M.PositionEmbedding = Module:extend("PositionEmbedding")
--- PositionEmbedding(dim, grid [, {kind = "sincos" | "learned", extra = 0}]): forward(tokens
-- {B, T, dim}) adds a table {T, dim} for T = extra + gh gw tokens (grid = {gh, gw} or a number
-- for a square grid; extra counts leading tokens such as [CLS], which get a zero row in the sin-cos
-- table as in MAE). sin-cos is a buffer (saved, never trained); learned starts N(0, 0.02^2).
function M.PositionEmbedding:init(dim, grid, opts)
  opts = opts or {}
  local gh, gw = type(grid) == "table" and grid[1] or grid, type(grid) == "table" and grid[2] or grid
  self.kind, self.extra, self.dim = opts.kind or "sincos", opts.extra or 0, dim
  self.tokens = self.extra + gh * gw
  if self.kind == "sincos" then
    local t = M.sincos_2d(dim, gh, gw)
    if self.extra > 0 then t = gen.cat({ gen.zeros(self.extra, dim), t }, 1) end
    self:register_buffer("pos", t)
  elseif self.kind == "learned" then
    self.pos = Parameter(gen.randn(self.tokens, dim) * 0.02)
  else
    error("gen.nn.blocks.PositionEmbedding: kind must be \"sincos\" or \"learned\", got " .. tostring(self.kind), 3)
  end
end
--- forward(x [, first]): x + rows first .. first + T - 1 of the table (first = 1).
function M.PositionEmbedding:forward(x, first)
  first = first or 1
  if x:dim() ~= 3 or x:size(3) ~= self.dim or first + x:size(2) - 1 > self.tokens then
    error(string.format("PositionEmbedding: expected tokens {B, <=%d, %d}, got %s", self.tokens - first + 1, self.dim, dims(x)), 2)
  end
  return x + self.pos:narrow(1, first, x:size(2)):view(1, x:size(2), self.dim)
end
function M.PositionEmbedding:extra_repr() return string.format("%d, tokens=%d, kind=%s", self.dim, self.tokens, self.kind) end

return M
