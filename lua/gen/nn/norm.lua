--- gen.nn normalization: BatchNorm1d, BatchNorm2d, GroupNorm, LayerNorm.
local gen = require "gen"
local base = require "gen.nn.module"

local M = {}
local Module, Parameter = base.Module, base.Parameter

local function make_batch_norm(name, ranks)
  local cls = Module:extend(name)
  --- BatchNorm(num_features, {eps = 1e-5, momentum = 0.1, affine = true, track_running_stats = true})
  function cls:init(n, opts)
    opts = opts or {}
    self.num_features, self.eps, self.momentum = n, opts.eps or 1e-5, opts.momentum or 0.1
    if opts.affine ~= false then
      self.weight = Parameter(gen.ones(n))
      self.bias = Parameter(gen.zeros(n))
    end
    if opts.track_running_stats ~= false then
      self:register_buffer("running_mean", gen.zeros(n))
      self:register_buffer("running_var", gen.ones(n))
      self:register_buffer("num_batches_tracked", gen.zeros({}, "int64"))
    end
  end
  function cls:forward(x)
    if not ranks[x:dim()] then
      error(string.format("gen.nn.%s: expected a %s input, got shape {%s}", name,
        name == "BatchNorm1d" and "2-d or 3-d" or "4-d", table.concat(x.shape, ",")), 2)
    end
    local training = self.training or not self.running_mean
    if self.training and self.num_batches_tracked then
      gen.no_grad(function() self.num_batches_tracked:add_(1) end)
    end
    return gen.batch_norm(x, self.running_mean, self.running_var, self.weight, self.bias,
      { training = training, momentum = self.momentum, eps = self.eps })
  end
  function cls:extra_repr() return string.format("%d, eps=%g, momentum=%g", self.num_features, self.eps, self.momentum) end
  return cls
end
M.BatchNorm1d = make_batch_norm("BatchNorm1d", { [2] = true, [3] = true })
M.BatchNorm2d = make_batch_norm("BatchNorm2d", { [4] = true })

M.GroupNorm = Module:extend("GroupNorm")
--- GroupNorm(num_groups, num_channels, {eps = 1e-5, affine = true})
function M.GroupNorm:init(groups, channels, opts)
  opts = opts or {}
  if channels % groups ~= 0 then
    error(string.format("gen.nn.GroupNorm: %d groups do not divide %d channels", groups, channels), 2)
  end
  self.num_groups, self.num_channels, self.eps = groups, channels, opts.eps or 1e-5
  if opts.affine ~= false then
    self.weight = Parameter(gen.ones(channels))
    self.bias = Parameter(gen.zeros(channels))
  end
end
function M.GroupNorm:forward(x) return gen.group_norm(x, self.num_groups, self.weight, self.bias, self.eps) end
function M.GroupNorm:extra_repr() return string.format("%d, %d, eps=%g", self.num_groups, self.num_channels, self.eps) end

M.LayerNorm = Module:extend("LayerNorm")
--- LayerNorm(normalized_shape (number or table), {eps = 1e-5, elementwise_affine = true})
function M.LayerNorm:init(shape, opts)
  opts = opts or {}
  self.normalized_shape = type(shape) == "table" and shape or { shape }
  self.eps = opts.eps or 1e-5
  if opts.elementwise_affine ~= false then
    self.weight = Parameter(gen.ones(self.normalized_shape))
    self.bias = Parameter(gen.zeros(self.normalized_shape))
  end
end
function M.LayerNorm:forward(x) return gen.layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps) end
function M.LayerNorm:extra_repr() return "{" .. table.concat(self.normalized_shape, ",") .. "}, eps=" .. self.eps end

return M
