--- A classifier of noisy images for classifier guidance (Dhariwal & Nichol, 2021, sec. 4): the
-- diffusion UNet's downsampling half (ResBlocks with the time embedding injected, stride-2
-- convolutions, self-attention at the lowest resolution), then GroupNorm, SiLU, global average
-- pooling and a linear layer to the class logits. It sees what a diffusion network sees: the
-- process's x_t and its time (gen.diffusion.processes), so its gradient can steer any sampler.
-- A separate network from gen.metrics' classifier, which only ever measures.
local gen = require "gen"
local nn = gen.nn
local blocks = require "gen.nn.blocks"

local M = {}

local NoisyClassifier = nn.Module:extend("NoisyClassifier")
M.NoisyClassifier = NoisyClassifier

--- NoisyClassifier{channels = 1, classes = 10, widths = {32, 64, 64}, time_dim = 128, heads = 4, groups = 8}
-- forward(x {B, C, H, W}, t {B} (float times, as the diffusion network gets them)) -> logits {B, classes}.
function NoisyClassifier:init(opts)
  opts = opts or {}
  local c, widths = opts.channels or 1, opts.widths or { 32, 64, 64 }
  local tdim, groups, heads = opts.time_dim or 128, opts.groups or 8, opts.heads or 4
  self.classes = opts.classes or 10
  if math.type(self.classes) ~= "integer" or self.classes < 2 then
    error("NoisyClassifier: classes must be an integer >= 2, got " .. tostring(self.classes), 2)
  end
  self.widths = widths
  self.time_mlp = nn.Sequential(nn.Linear(widths[1], tdim), nn.SiLU(), nn.Linear(tdim, tdim))
  self.input = nn.Conv2d(c, widths[1], 3, { padding = 1 })
  self.blocks, self.downsample = nn.ModuleList(), nn.ModuleList()
  local prev = widths[1]
  for i, w in ipairs(widths) do
    self.blocks:append(blocks.ResBlock(prev, w, tdim, groups))
    if i < #widths then self.downsample:append(nn.Conv2d(w, w, 3, { stride = 2, padding = 1 })) end
    prev = w
  end
  self.attn = blocks.AttnBlock(prev, heads, groups)
  self.out_norm = nn.GroupNorm(groups, prev)
  self.head = nn.Linear(prev, self.classes)
end

function NoisyClassifier:forward(x, t)
  local factor = 1 << (#self.widths - 1)
  if x:dim() ~= 4 or x:size(3) % factor ~= 0 or x:size(4) % factor ~= 0 then
    error(string.format("NoisyClassifier: expected images {B, C, H, W} with H and W divisible by %d, got {%s}", factor,
      table.concat(x.shape, ",")), 2)
  end
  local temb = self.time_mlp(blocks.timestep_embedding(t, self.widths[1]))
  local h = self.input(x)
  for i = 1, #self.widths do
    h = self.blocks:get(i)(h, temb)
    if i < #self.widths then h = self.downsample:get(i)(h) end
  end
  h = gen.silu(self.out_norm(self.attn(h)))
  return self.head(h:mean(4):mean(3))
end

return M
