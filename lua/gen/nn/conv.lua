--- gen.nn spatial layers: Conv2d, ConvTranspose2d, Upsample.
local gen = require "gen"
local base = require "gen.nn.module"
local init = require "gen.nn.init_fns"
local M = {}
local Module, Parameter = base.Module, base.Parameter
local function uniform_fan_in(shape, fan_in) return Parameter(init.fan_in_uniform(shape, fan_in)) end
local function pair(v) if type(v) == "table" then return v end return { v, v } end
local function fmt_pair(v) v = pair(v); return v[1] == v[2] and tostring(v[1]) or ("(" .. v[1] .. ", " .. v[2] .. ")") end

local function conv_repr(self)
  local s = string.format("%d, %d, kernel_size=%s", self.in_channels, self.out_channels, fmt_pair(self.kernel_size))
  local o = self.opts
  if o.stride and o.stride ~= 1 then s = s .. ", stride=" .. fmt_pair(o.stride) end
  if o.padding and o.padding ~= 0 then s = s .. ", padding=" .. fmt_pair(o.padding) end
  if o.dilation and o.dilation ~= 1 then s = s .. ", dilation=" .. fmt_pair(o.dilation) end
  if o.output_padding and o.output_padding ~= 0 then s = s .. ", output_padding=" .. fmt_pair(o.output_padding) end
  if o.groups and o.groups ~= 1 then s = s .. ", groups=" .. o.groups end
  if not self.bias then s = s .. ", bias=false" end
  return s
end

local function conv_opts(opts)
  return { stride = opts.stride, padding = opts.padding, dilation = opts.dilation, groups = opts.groups,
           output_padding = opts.output_padding }
end

M.Conv2d = Module:extend("Conv2d")
--- Conv2d(in, out, kernel_size, {stride, padding, dilation, groups, bias}); with equalized = true
-- (and lr_mul, gain, bias_init) the equalized learning rate (see gen.nn.init.equalize).
function M.Conv2d:init(cin, cout, k, opts)
  opts = opts or {}
  local groups, ks = opts.groups or 1, pair(k)
  if cin % groups ~= 0 or cout % groups ~= 0 then
    error(string.format("gen.nn.Conv2d: groups (%d) must divide in_channels (%d) and out_channels (%d)", groups, cin, cout), 2)
  end
  self.in_channels, self.out_channels, self.kernel_size, self.opts = cin, cout, k, conv_opts(opts)
  local fan_in = cin // groups * ks[1] * ks[2]
  if init.equalize(self, "gen.nn.Conv2d", { cout, cin // groups, ks[1], ks[2] }, fan_in, opts) then return end
  self.weight = uniform_fan_in({ cout, cin // groups, ks[1], ks[2] }, fan_in)
  if opts.bias ~= false then self.bias = uniform_fan_in({ cout }, fan_in) end
end
function M.Conv2d:forward(x)
  if self.weight_gain then return gen.conv2d(x, init.equalized_weight(self), init.equalized_bias(self), self.opts) end
  return gen.conv2d(x, self.weight, self.bias, self.opts)
end
function M.Conv2d:extra_repr() return conv_repr(self) .. init.equalized_repr(self) end

M.ConvTranspose2d = Module:extend("ConvTranspose2d")
--- ConvTranspose2d(in, out, kernel_size, {stride, padding, output_padding, dilation, groups, bias})
function M.ConvTranspose2d:init(cin, cout, k, opts)
  opts = opts or {}
  local groups, ks = opts.groups or 1, pair(k)
  if cin % groups ~= 0 or cout % groups ~= 0 then
    error(string.format("gen.nn.ConvTranspose2d: groups (%d) must divide in_channels (%d) and out_channels (%d)", groups, cin, cout), 2)
  end
  self.in_channels, self.out_channels, self.kernel_size, self.opts = cin, cout, k, conv_opts(opts)
  -- PyTorch computes fan_in from weight:size(2) * kernel area for transposed convolutions.
  local fan_in = cout // groups * ks[1] * ks[2]
  self.weight = uniform_fan_in({ cin, cout // groups, ks[1], ks[2] }, fan_in)
  if opts.bias ~= false then self.bias = uniform_fan_in({ cout }, fan_in) end
end
function M.ConvTranspose2d:forward(x) return gen.conv_transpose2d(x, self.weight, self.bias, self.opts) end
M.ConvTranspose2d.extra_repr = conv_repr
M.Upsample = Module:extend("Upsample")
--- Upsample{scale = 2, mode = "nearest" | "bilinear"} (or size = {H, W})
function M.Upsample:init(opts) self.opts = opts or { scale = 2 } end
function M.Upsample:forward(x) return gen.upsample(x, self.opts) end
function M.Upsample:extra_repr() return string.format("scale=%s, mode=%s", tostring(self.opts.scale), self.opts.mode or "nearest") end

-- Masked convolutions (van den Oord et al., 2016): output pixel (r, c) may see only the input
-- pixels before it in raster order (type A), or those and (r, c) itself (type B). The mask
-- multiplies the weight (w * mask), so the convolution is the ordinary fast one and the masked
-- entries get zero gradient through the product. Three kernel shapes:
--   "full"        k x k, the PixelCNN mask: the rows above the centre, and the centre row up to
--                 the centre (A: excluding it);
--   "vertical"    (k//2 + 1) x k, the rows above and the current row (A: above only), the input
--                 padded on top so the kernel's last row is the output's row;
--   "horizontal"  1 x (k//2 + 1), the pixels to the left and the current one (A: left only),
--                 the input padded on the left.
-- The vertical and horizontal shapes are the two stacks of the gated PixelCNN, which store
-- only the unmasked half of the kernel (type B needs no mask at all). The mask is recomputed
-- from the options, not stored: the state dict is that of a Conv2d with the same kernel
-- shape, {weight, bias}.
M.MaskedConv2d = Module:extend("MaskedConv2d")
local stacks = { full = true, vertical = true, horizontal = true }

-- The 0/1 mask of a kernel {kh, kw} (a Lua table of rows), or nil when nothing is masked.
local function kernel_mask(stack, mask_type, k)
  local half = k // 2
  if stack == "full" then
    local rows = {}
    for i = 1, k do
      rows[i] = {}
      for j = 1, k do
        local before = i <= half or (i == half + 1 and (j <= half or (mask_type == "B" and j == half + 1)))
        rows[i][j] = before and 1 or 0
      end
    end
    return rows
  end
  if mask_type == "B" then return nil end
  if stack == "vertical" then
    local rows = {}
    for i = 1, half + 1 do
      rows[i] = {}
      for j = 1, k do rows[i][j] = i <= half and 1 or 0 end
    end
    return rows
  end
  local row = {}
  for j = 1, half + 1 do row[j] = j <= half and 1 or 0 end
  return { row }
end

--- MaskedConv2d(in, out, kernel_size, {mask = "B", stack = "full", bias = true}): kernel_size odd;
-- stride 1 and the output the size of the input.
function M.MaskedConv2d:init(cin, cout, k, opts)
  opts = opts or {}
  local mask_type, stack = opts.mask or "B", opts.stack or "full"
  if mask_type ~= "A" and mask_type ~= "B" then
    error(string.format("gen.nn.MaskedConv2d: mask must be \"A\" or \"B\", got %s", tostring(mask_type)), 3)
  end
  if not stacks[stack] then
    error(string.format("gen.nn.MaskedConv2d: stack must be \"full\", \"vertical\" or \"horizontal\", got %s", tostring(stack)), 3)
  end
  if math.type(k) ~= "integer" or k < 1 or k % 2 == 0 then
    error(string.format("gen.nn.MaskedConv2d: kernel_size must be an odd positive integer, got %s", tostring(k)), 3)
  end
  if stack == "full" and k == 1 and mask_type == "A" then
    error("gen.nn.MaskedConv2d: a 1x1 type A full mask sees nothing (use kernel_size >= 3)", 3)
  end
  for _, v in ipairs { cin, cout } do
    if math.type(v) ~= "integer" or v < 1 then
      error(string.format("gen.nn.MaskedConv2d: channels must be positive integers, got %s, %s", tostring(cin), tostring(cout)), 3)
    end
  end
  local half = k // 2
  local kh, kw = k, k
  if stack == "vertical" then kh = half + 1 elseif stack == "horizontal" then kh, kw = 1, half + 1 end
  self.in_channels, self.out_channels, self.kernel_size = cin, cout, k
  self.mask_type, self.stack = mask_type, stack
  -- zero padding {left, right, top, bottom} that keeps the output the size of the input
  self.pad = ({ full = { half, half, half, half }, vertical = { half, half, half, 0 }, horizontal = { half, 0, 0, 0 } })[stack]
  self._mask_rows = kernel_mask(stack, mask_type, k)
  self._masks = {} -- dtype -> {1, 1, kh, kw} mask tensor, built on first use
  local fan_in = cin * kh * kw
  self.weight = uniform_fan_in({ cout, cin, kh, kw }, fan_in)
  if opts.bias ~= false then self.bias = uniform_fan_in({ cout }, fan_in) end
end

--- The masked weight w * mask (the weight itself when nothing is masked).
function M.MaskedConv2d:masked_weight()
  local w = self.weight
  if not self._mask_rows then return w end
  local m = self._masks[w.dtype]
  if not m then
    m = gen.tensor({ { self._mask_rows } }, w.dtype)
    self._masks[w.dtype] = m
  end
  return w * m
end

function M.MaskedConv2d:forward(x)
  if not gen.is_tensor(x) or x:dim() ~= 4 or x:size(2) ~= self.in_channels then
    error(string.format("gen.nn.MaskedConv2d: expected input {B, %d, H, W}, got %s", self.in_channels,
      gen.is_tensor(x) and "{" .. table.concat(x.shape, ",") .. "}" or type(x)), 2)
  end
  return gen.conv2d(gen.pad(x, self.pad), self:masked_weight(), self.bias)
end
function M.MaskedConv2d:extra_repr()
  return string.format("%d, %d, kernel_size=%d, mask=%s, stack=%s%s", self.in_channels, self.out_channels, self.kernel_size,
    self.mask_type, self.stack, self.bias and "" or ", bias=false")
end

return M
