--- gen.nn linear layers and reshaping: Linear, Identity, Flatten, Unflatten.
local gen = require "gen"
local base = require "gen.nn.module"
local init = require "gen.nn.init_fns"
local M = {}
local Module, Parameter = base.Module, base.Parameter
local function uniform_fan_in(shape, fan_in) return Parameter(init.fan_in_uniform(shape, fan_in)) end

M.Linear = Module:extend("Linear")
--- Linear(in, out, {bias = true, equalized = false, lr_mul = 1, gain = 1, bias_init = 0, generator})
-- With equalized = true, the equalized learning rate of Karras et al. (2018): see init_fns.equalize.
function M.Linear:init(in_features, out_features, opts)
  opts = opts or {}
  self.in_features, self.out_features = in_features, out_features
  if init.equalize(self, "gen.nn.Linear", { out_features, in_features }, in_features, opts) then return end
  self.weight = uniform_fan_in({ out_features, in_features }, in_features)
  if opts.bias ~= false then self.bias = uniform_fan_in({ out_features }, in_features) end
end
function M.Linear:forward(x)
  if self.weight_gain then return gen.linear(x, init.equalized_weight(self), init.equalized_bias(self)) end
  return gen.linear(x, self.weight, self.bias)
end
function M.Linear:extra_repr()
  return string.format("%d, %d%s%s", self.in_features, self.out_features, self.bias and "" or ", bias=false",
    init.equalized_repr(self))
end

M.Identity = Module:extend("Identity")
function M.Identity:forward(x) return x end

M.Flatten = Module:extend("Flatten")
--- Flatten(start_dim = 2, end_dim = -1), as in PyTorch (dims 1-based).
function M.Flatten:init(s, e) self.start_dim, self.end_dim = s or 2, e or -1 end
function M.Flatten:forward(x) return x:flatten(self.start_dim, self.end_dim) end
function M.Flatten:extra_repr() return string.format("start_dim=%d, end_dim=%d", self.start_dim, self.end_dim) end

M.Unflatten = Module:extend("Unflatten")
--- Unflatten(d, sizes): splits dim d into the sizes given.
function M.Unflatten:init(d, sizes) self.dim, self.sizes = d, sizes end
function M.Unflatten:forward(x)
  local shape, d = x.shape, self.dim
  if d < 0 then d = #shape + 1 + d end
  local out = {}
  for i = 1, d - 1 do out[#out + 1] = shape[i] end
  for _, s in ipairs(self.sizes) do out[#out + 1] = s end
  for i = d + 1, #shape do out[#out + 1] = shape[i] end
  return x:reshape(out)
end
function M.Unflatten:extra_repr() return string.format("%d, {%s}", self.dim, table.concat(self.sizes, ",")) end

return M
