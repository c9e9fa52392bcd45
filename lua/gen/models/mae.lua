--- Masked autoencoder (He et al., 2022): a ViT encoder that sees only the visible patches and a
-- light transformer decoder that puts a learned [MASK] token at every masked position, restores
-- the patch order and predicts the pixels of every patch.
--   MAE{resolution = 28, channels = 1, patch = 4, dim = 192, depth = 6, heads = 3,
--       decoder_dim = 128, decoder_depth = 2, decoder_heads = 4, mlp_ratio = 4, cls = true}
--   forward(x, masking) -> predicted patches {B, L, p p C}; masking = gen.autoencoder.random_masking(...)
--   (nil: the encoder sees every patch). features(x) -> the frozen encoder's {B, dim} features.
-- The masking and the loss on masked patches live in gen.autoencoder (the objective).
local gen = require "gen"
local nn = gen.nn
local blocks = require "gen.nn.blocks"
local vit = require "gen.models.vit"

local M = {}

M.MAE = nn.Module:extend("MAE")
function M.MAE:init(opts)
  opts = opts or {}
  self.encoder = vit.ViT { resolution = opts.resolution, channels = opts.channels, patch = opts.patch, dim = opts.dim,
    depth = opts.depth, heads = opts.heads, mlp_ratio = opts.mlp_ratio, cls = opts.cls, pos = "sincos", pool = opts.pool }
  local e = self.encoder
  local dd, heads = opts.decoder_dim or 128, opts.decoder_heads or 4
  if dd % heads ~= 0 then error(string.format("MAE: %d decoder heads do not divide decoder_dim %d", heads, dd), 3) end
  self.patch, self.num_patches, self.decoder_dim = e.patch, e.num_patches, dd
  self.shape = { e.channels, e.resolution, e.resolution }
  self.decoder_embed = nn.Linear(e.dim, dd)
  self.mask_token = nn.Parameter(gen.randn(1, 1, dd) * 0.02)
  self.decoder_pos = blocks.PositionEmbedding(dd, e.grid, { kind = "sincos", extra = e.has_cls and 1 or 0 })
  local list = {}
  for i = 1, opts.decoder_depth or 2 do list[i] = blocks.TransformerBlock(dd, heads, { mlp_ratio = opts.mlp_ratio or 4 }) end
  self.decoder_blocks = nn.ModuleList(list)
  self.decoder_norm = nn.LayerNorm(dd)
  self.decoder_pred = nn.Linear(dd, e.patch * e.patch * e.channels)
end

local function check_masking(self, m, b)
  if m.ids_keep:size(1) ~= b or m.ids_restore:size(2) ~= self.num_patches then
    error(string.format("MAE: masking for %d x %d patches does not fit %d images of %d patches", m.ids_restore:size(1),
      m.ids_restore:size(2), b, self.num_patches), 3)
  end
end

--- The encoder's output {B, [1 +] K, dim} over the visible patches (all of them without masking).
function M.MAE:forward_encoder(x, masking)
  local t = self.encoder:embed(x) -- {B, L, dim}
  if masking then
    check_masking(self, masking, x:size(1))
    local b, k, d = t:size(1), masking.ids_keep:size(2), t:size(3)
    t = t:gather(2, masking.ids_keep:view(b, k, 1):expand(b, k, d))
  end
  return self.encoder:encode(t)
end

--- Predicted pixels of every patch {B, L, p p C}, in the original patch order.
function M.MAE:forward_decoder(latent, masking)
  local x = self.decoder_embed(latent)
  local b, dd, L = x:size(1), self.decoder_dim, self.num_patches
  local first = self.encoder.has_cls and 2 or 1
  local visible = x:narrow(2, first, x:size(2) - first + 1)
  if masking then
    local k = visible:size(2)
    local tokens = gen.cat({ visible, self.mask_token:expand(b, L - k, dd) }, 2) -- shuffled order
    visible = tokens:gather(2, masking.ids_restore:view(b, L, 1):expand(b, L, dd)) -- unshuffled
  end
  if first == 2 then visible = gen.cat({ x:narrow(2, 1, 1), visible }, 2) end
  local h = self.decoder_pos(visible)
  for _, blk in self.decoder_blocks:ipairs() do h = blk(h) end
  h = self.decoder_pred(self.decoder_norm(h))
  return h:narrow(2, first, L)
end

function M.MAE:forward(x, masking) return self:forward_decoder(self:forward_encoder(x, masking), masking) end

--- The frozen encoder's features {B, dim} of whole (unmasked) images.
function M.MAE:features(x) return self.encoder:features(x) end

--- Patches {B, L, p p C} back to images {B, C, H, W}.
function M.MAE:unpatchify(t) return blocks.unpatchify(t, self.patch, self.shape) end
function M.MAE:patchify(x) return blocks.patchify(x, self.patch) end

return M
