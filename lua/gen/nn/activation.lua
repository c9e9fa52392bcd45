--- gen.nn pointwise layers without parameters: activations and Dropout.
local gen = require "gen"
local base = require "gen.nn.module"

local M = {}
local Module = base.Module

local function activation(name, fn, repr)
  local cls = Module:extend(name)
  function cls:init(...) self.args = { ... } end
  function cls:forward(x) return fn(x, table.unpack(self.args)) end
  function cls:extra_repr() return repr and repr(self.args) or "" end
  M[name] = cls
end
activation("ReLU", function(x) return gen.relu(x) end)
activation("LeakyReLU", function(x, slope) return gen.leaky_relu(x, slope or 0.01) end,
  function(a) return "negative_slope=" .. (a[1] or 0.01) end)
activation("SiLU", function(x) return gen.silu(x) end)
activation("GELU", function(x) return gen.gelu(x) end)
activation("Tanh", function(x) return gen.tanh(x) end)
activation("Sigmoid", function(x) return gen.sigmoid(x) end)

M.Dropout = Module:extend("Dropout")
function M.Dropout:init(p) self.p = p or 0.5 end
function M.Dropout:forward(x) return gen.dropout(x, self.p, self.training) end
function M.Dropout:extra_repr() return "p=" .. self.p end

return M
