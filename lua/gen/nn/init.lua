--- gen.nn: modules. Each layer is a thin Module around the functional op in `gen`, with
-- PyTorch's parameter names, shapes and default initializations, so state dicts interchange.
-- The layers live in one file per kind (containers, linear, conv, norm, embedding, attention,
-- activation); gen.nn.blocks holds the building blocks that models share.
local base = require "gen.nn.module"

local nn = { Module = base.Module, Parameter = base.Parameter, init = require "gen.nn.init_fns" }
for _, kind in ipairs { "containers", "linear", "conv", "norm", "embedding", "attention", "activation", "quantize" } do
  for name, class in pairs(require("gen.nn." .. kind)) do
    assert(nn[name] == nil, "gen.nn: " .. name .. " defined twice")
    nn[name] = class
  end
end

-- The blocks (shared model parts) and utils (weight reparameterizations: spectral_norm) load on
-- first use: they build on the layers above.
local lazy = { blocks = "gen.nn.blocks", utils = "gen.nn.utils" }
return setmetatable(nn, { __index = function(t, k)
  if not lazy[k] then return nil end
  local m = require(lazy[k])
  rawset(t, k, m)
  return m
end })
