--- The diffusion UNet (Ho et al., 2020, in the small form used for 28x28/32x32 images):
-- ResBlocks (GroupNorm - SiLU - Conv3x3, plus a projection of the time embedding, then GroupNorm -
-- SiLU - Conv3x3, with a 1x1 skip when the width changes), a sinusoidal time embedding through an
-- MLP, self-attention at the lowest resolution, stride-2 convolutions down, nearest x2 + conv up,
-- concatenated skips; optional class conditioning with an extra "no class" entry (index
-- classes + 1) for classifier-free guidance.
local gen = require "gen"
local nn = gen.nn

local M = {}

--- Sinusoidal embedding of (possibly fractional) times t {B} -> {B, dim} (Vaswani et al., 2017).
function M.timestep_embedding(t, dim)
  local half = dim // 2
  local freqs = {}
  for i = 0, half - 1 do freqs[i + 1] = math.exp(-math.log(10000) * i / half) end
  local args = t:float():view(-1, 1) * gen.tensor(freqs):view(1, half)
  return gen.cat({ args:sin(), args:cos() }, 2)
end

local ResBlock = nn.Module:extend("ResBlock")
function ResBlock:init(cin, cout, temb, groups)
  self.norm1 = nn.GroupNorm(groups, cin)
  self.conv1 = nn.Conv2d(cin, cout, 3, { padding = 1 })
  self.time = nn.Linear(temb, cout)
  self.norm2 = nn.GroupNorm(groups, cout)
  self.conv2 = nn.Conv2d(cout, cout, 3, { padding = 1 })
  if cin ~= cout then self.skip = nn.Conv2d(cin, cout, 1) end
end
function ResBlock:forward(x, temb)
  local h = self.conv1(gen.silu(self.norm1(x)))
  h = h + self.time(gen.silu(temb)):view(h:size(1), h:size(2), 1, 1)
  h = self.conv2(gen.silu(self.norm2(h)))
  return h + (self.skip and self.skip(x) or x)
end
M.ResBlock = ResBlock

local AttnBlock = nn.Module:extend("AttnBlock")
function AttnBlock:init(c, heads, groups)
  self.norm = nn.GroupNorm(groups, c)
  self.attn = nn.MultiheadAttention(c, heads)
end
function AttnBlock:forward(x)
  local b, c, h, w = table.unpack(x.shape)
  local tokens = self.norm(x):view(b, c, h * w):transpose(2, 3) -- {B, HW, C}
  local y = self.attn(tokens):transpose(2, 3):reshape(b, c, h, w)
  return x + y
end
M.AttnBlock = AttnBlock

local UNet = nn.Module:extend("UNet")
M.UNet = UNet
--- UNet{channels = 1, widths = {32, 64, 64}, time_dim = 128, heads = 4, groups = 8, classes = 0}
-- forward(x {B, C, H, W}, t {B} (float steps), labels {B} (1..classes+1) or nil) -> {B, C, H, W}.
-- H and W must be divisible by 2^(#widths - 1); attention runs at the lowest level.
function UNet:init(opts)
  opts = opts or {}
  local c, widths = opts.channels or 1, opts.widths or { 32, 64, 64 }
  local tdim, groups, heads = opts.time_dim or 128, opts.groups or 8, opts.heads or 4
  self.widths, self.time_dim, self.classes = widths, tdim, opts.classes or 0
  self.time_mlp = nn.Sequential(nn.Linear(widths[1], tdim), nn.SiLU(), nn.Linear(tdim, tdim))
  if self.classes > 0 then self.class_embed = nn.Embedding(self.classes + 1, tdim) end
  self.input = nn.Conv2d(c, widths[1], 3, { padding = 1 })
  self.down_blocks, self.downsample = nn.ModuleList(), nn.ModuleList()
  local prev = widths[1]
  for i, w in ipairs(widths) do
    self.down_blocks:append(ResBlock(prev, w, tdim, groups))
    if i < #widths then self.downsample:append(nn.Conv2d(w, w, 3, { stride = 2, padding = 1 })) end
    prev = w
  end
  self.down_attn = AttnBlock(prev, heads, groups)
  self.mid = ResBlock(prev, prev, tdim, groups)
  self.up_blocks, self.upsample = nn.ModuleList(), nn.ModuleList()
  for i = #widths, 1, -1 do
    local w = widths[i]
    self.up_blocks:append(ResBlock(prev + w, w, tdim, groups))
    if i > 1 then self.upsample:append(nn.Conv2d(w, w, 3, { padding = 1 })) end
    prev = w
  end
  self.up_attn = AttnBlock(widths[#widths], heads, groups)
  self.out_norm = nn.GroupNorm(groups, widths[1])
  self.output = nn.Conv2d(widths[1], c, 3, { padding = 1 })
end

function UNet:forward(x, t, labels)
  local temb = self.time_mlp(M.timestep_embedding(t, self.widths[1]))
  if self.class_embed then
    if not labels then error("UNet: this model is class-conditional; pass labels (classes + 1 = no class)", 2) end
    temb = temb + self.class_embed(labels)
  end
  local h = self.input(x)
  local skips = {}
  local levels = #self.widths
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
