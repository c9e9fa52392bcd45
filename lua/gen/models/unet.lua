--- The diffusion UNet (Ho et al., 2020, in the small form used for 28x28/32x32 images): ResBlocks
-- with the time (and class) embedding injected, a sinusoidal time embedding through an MLP,
-- self-attention at the lowest resolution, stride-2 convolutions down, nearest x2 + conv up,
-- concatenated skips. With classes > 0 the labels are embedded by a ClassEmbedding that owns the
-- "no class" entry (label classes + 1, `model.null_label`) for classifier-free guidance.
local gen = require "gen"
local nn = gen.nn
local blocks = require "gen.nn.blocks"

local M = {}
-- the blocks under their old names
M.timestep_embedding, M.ResBlock, M.AttnBlock = blocks.timestep_embedding, blocks.ResBlock, blocks.AttnBlock

local UNet = nn.Module:extend("UNet")
M.UNet = UNet
--- UNet{channels = 1, widths = {32, 64, 64}, time_dim = 128, heads = 4, groups = 8, classes = 0,
--   adaptive_norm = false, out_channels = channels}
-- adaptive_norm = true: every ResBlock takes a scale and a shift of its second GroupNorm from the
-- time/class embedding (adaptive group normalization; off by default, so the state-dict keys and
-- shapes of existing checkpoints do not change).
-- out_channels = 2 C: the prediction and improved DDPM's learned variance (gen.diffusion.vlb).
-- forward(x {B, C, H, W}, t {B} (float times), labels {B} (1..classes + 1) or nil) -> {B, out_channels, H, W}.
-- H and W must be divisible by 2^(#widths - 1); attention runs at the lowest level.
function UNet:init(opts)
  opts = opts or {}
  local c, widths = opts.channels or 1, opts.widths or { 32, 64, 64 }
  local tdim, groups, heads = opts.time_dim or 128, opts.groups or 8, opts.heads or 4
  self.widths, self.time_dim, self.classes = widths, tdim, opts.classes or 0
  local block_opts = { adaptive = opts.adaptive_norm or false }
  self.time_mlp = nn.Sequential(nn.Linear(widths[1], tdim), nn.SiLU(), nn.Linear(tdim, tdim))
  if self.classes > 0 then
    self.class_embed = blocks.ClassEmbedding(self.classes, tdim, { null = true })
    self.null_label = self.class_embed.null_label
  end
  self.input = nn.Conv2d(c, widths[1], 3, { padding = 1 })
  self.down_blocks, self.downsample = nn.ModuleList(), nn.ModuleList()
  local prev = widths[1]
  for i, w in ipairs(widths) do
    self.down_blocks:append(blocks.ResBlock(prev, w, tdim, groups, block_opts))
    if i < #widths then self.downsample:append(nn.Conv2d(w, w, 3, { stride = 2, padding = 1 })) end
    prev = w
  end
  self.down_attn = blocks.AttnBlock(prev, heads, groups)
  self.mid = blocks.ResBlock(prev, prev, tdim, groups, block_opts)
  self.up_blocks, self.upsample = nn.ModuleList(), nn.ModuleList()
  for i = #widths, 1, -1 do
    local w = widths[i]
    self.up_blocks:append(blocks.ResBlock(prev + w, w, tdim, groups, block_opts))
    if i > 1 then self.upsample:append(nn.Conv2d(w, w, 3, { padding = 1 })) end
    prev = w
  end
  self.up_attn = blocks.AttnBlock(widths[#widths], heads, groups)
  self.out_norm = nn.GroupNorm(groups, widths[1])
  self.output = nn.Conv2d(widths[1], opts.out_channels or c, 3, { padding = 1 })
end

function UNet:forward(x, t, labels)
  local levels = #self.widths
  local factor = 1 << (levels - 1)
  if x:dim() ~= 4 or x:size(3) % factor ~= 0 or x:size(4) % factor ~= 0 then
    error(string.format("UNet: expected images {B, C, H, W} with H and W divisible by %d, got {%s}", factor,
      table.concat(x.shape, ",")), 2)
  end
  local temb = self.time_mlp(blocks.timestep_embedding(t, self.widths[1]))
  if self.class_embed then
    if not labels then error("UNet: this model is class-conditional; pass labels (" .. self.null_label .. " = no class)", 2) end
    temb = temb + self.class_embed(labels, x:size(1), "UNet")
  end
  local h = self.input(x)
  local skips = {}
  for i = 1, levels do
    h = self.down_blocks:get(i)(h, temb)
    if i == levels then h = self.down_attn(h) end
    skips[i] = h
    if i < levels then h = self.downsample:get(i)(h) end
  end
  h = self.mid(h, temb)
  for k = 1, levels do
    local i = levels - k + 1
    h = self.up_blocks:get(k)(gen.cat({ h, skips[i] }, 2), temb)
    if i == levels then h = self.up_attn(h) end
    if i > 1 then h = self.upsample:get(k)(gen.upsample(h, { scale = 2 })) end
  end
  return self.output(gen.silu(self.out_norm(h)))
end

return M
