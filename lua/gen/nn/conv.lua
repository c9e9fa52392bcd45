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
--- Conv2d(in, out, kernel_size, {stride, padding, dilation, groups, bias})
function M.Conv2d:init(cin, cout, k, opts)
  opts = opts or {}
  local groups, ks = opts.groups or 1, pair(k)
  if cin % groups ~= 0 or cout % groups ~= 0 then
    error(string.format("gen.nn.Conv2d: groups (%d) must divide in_channels (%d) and out_channels (%d)", groups, cin, cout), 2)
  end
  self.in_channels, self.out_channels, self.kernel_size, self.opts = cin, cout, k, conv_opts(opts)
  local fan_in = cin // groups * ks[1] * ks[2]
  self.weight = uniform_fan_in({ cout, cin // groups, ks[1], ks[2] }, fan_in)
  if opts.bias ~= false then self.bias = uniform_fan_in({ cout }, fan_in) end
end
function M.Conv2d:forward(x) return gen.conv2d(x, self.weight, self.bias, self.opts) end
M.Conv2d.extra_repr = conv_repr

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

return M
