--- Vision Transformer encoder (Dosovitskiy et al., 2021) for square images: patches of p x p
-- pixels, a linear patch embedding, position embeddings (fixed 2-D sin-cos or learned), an
-- optional [CLS] token, `depth` pre-norm transformer blocks and a final LayerNorm.
--   ViT{resolution = 28, channels = 1, patch = 4, dim = 192, depth = 6, heads = 3,
--       mlp_ratio = 4, cls = true, pos = "sincos" | "learned", pool = "cls" | "mean"}
-- The pieces are callable apart, so masked models can drop tokens between them:
--   embed(x)          images {B, C, H, W} -> patch tokens with positions {B, L, dim}
--   encode(tokens)    prepends [CLS] (if any), runs the blocks and the norm -> {B, T, dim}
--   forward(x)        encode(embed(x))
--   features(x)       one vector per image {B, dim}: the [CLS] output, or the mean of the patch
--                     outputs (pool = "mean", the default when cls = false)
local gen = require "gen"
local nn = gen.nn
local blocks = require "gen.nn.blocks"
local models = require "gen.models"

local M = {}

M.ViT = nn.Module:extend("ViT")
function M.ViT:init(opts)
  opts = opts or {}
  local c, r = models.image_shape("ViT", opts)
  local p = opts.patch or 4
  if math.type(p) ~= "integer" or p < 1 or r % p ~= 0 then
    error(string.format("ViT: patch size %s does not divide the resolution %d", tostring(p), r), 3)
  end
  local dim, heads = opts.dim or 192, opts.heads or 3
  if dim % heads ~= 0 then error(string.format("ViT: %d heads do not divide dim %d", heads, dim), 3) end
  self.channels, self.resolution, self.patch, self.dim = c, r, p, dim
  self.grid = r // p
  self.num_patches = self.grid * self.grid
  self.has_cls = opts.cls ~= false
  self.pool = opts.pool or (self.has_cls and "cls" or "mean")
  if self.pool == "cls" and not self.has_cls then error("ViT: pool = \"cls\" needs cls = true", 3) end
  self.patch_embed = nn.Linear(p * p * c, dim)
  if self.has_cls then self.cls_token = nn.Parameter(gen.randn(1, 1, dim) * 0.02) end
  self.pos_embed = blocks.PositionEmbedding(dim, self.grid, { kind = opts.pos or "sincos", extra = self.has_cls and 1 or 0 })
  local list = {}
  for i = 1, opts.depth or 6 do list[i] = blocks.TransformerBlock(dim, heads, { mlp_ratio = opts.mlp_ratio or 4 }) end
  self.blocks = nn.ModuleList(list)
  self.norm = nn.LayerNorm(dim)
end

--- Patch tokens with their position embeddings {B, L, dim} (no [CLS] yet).
function M.ViT:embed(x)
  if x:dim() ~= 4 or x:size(2) ~= self.channels or x:size(3) ~= self.resolution or x:size(4) ~= self.resolution then
    error(string.format("ViT: expected images {B, %d, %d, %d}, got {%s}", self.channels, self.resolution, self.resolution,
      table.concat(x.shape, ",")), 3)
  end
  return self.pos_embed(self.patch_embed(blocks.patchify(x, self.patch)), self.has_cls and 2 or 1)
end

--- Runs the transformer over (a subset of) embedded patch tokens {B, T, dim}; with [CLS] the
-- result has T + 1 tokens, [CLS] first.
function M.ViT:encode(tokens)
  local x = tokens
  if self.has_cls then
    local b = x:size(1)
    local cls = self.pos_embed(self.cls_token, 1):expand(b, 1, self.dim)
    x = gen.cat({ cls, x }, 2)
  end
  for _, blk in self.blocks:ipairs() do x = blk(x) end
  return self.norm(x)
end

function M.ViT:forward(x) return self:encode(self:embed(x)) end

--- One feature vector per image {B, dim}.
function M.ViT:features(x)
  local h = self:forward(x)
  if self.pool == "cls" then return h:select(2, 1) end
  local first = self.has_cls and 2 or 1
  return h:narrow(2, first, h:size(2) - first + 1):mean(2)
end

function M.ViT:extra_repr()
  return string.format("resolution=%d, channels=%d, patch=%d, dim=%d, cls=%s, pool=%s", self.resolution, self.channels,
    self.patch, self.dim, tostring(self.has_cls), self.pool)
end

return M
