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

-- The blocks load on first use: they build on the layers above.
return setmetatable(nn, { __index = function(t, k)
  if k ~= "blocks" then return nil end
  local blocks = require "gen.nn.blocks"
  rawset(t, k, blocks)
  return blocks
end })
