--- gen.nn containers: Sequential and ModuleList (children named "0", "1", ... as in PyTorch).
local base = require "gen.nn.module"

local M = {}
local Module = base.Module

M.Sequential = Module:extend("Sequential")
--- Sequential(m1, m2, ...) or Sequential{m1, m2, ...}; children are named "0", "1", ... as in PyTorch.
function M.Sequential:init(...)
  local mods = select("#", ...) == 1 and not base.is_module((...)) and (...) or { ... }
  self._n = 0
  for _, m in ipairs(mods) do self:add(m) end
end
function M.Sequential:add(m)
  assert(base.is_module(m), "gen.nn.Sequential: every element must be a module")
  self[tostring(self._n)] = m
  self._n = self._n + 1
  return self
end
function M.Sequential:get(i) return self[tostring(i - 1)] end
function M.Sequential:__len() return self._n end
function M.Sequential:forward(x, ...)
  for i = 0, self._n - 1 do x = self[tostring(i)](x, ...) end
  return x
end

M.ModuleList = Module:extend("ModuleList")
function M.ModuleList:init(mods)
  self._n = 0
  for _, m in ipairs(mods or {}) do self:append(m) end
end
function M.ModuleList:append(m)
  assert(base.is_module(m), "gen.nn.ModuleList: every element must be a module")
  self[tostring(self._n)] = m
  self._n = self._n + 1
  return self
end
--- 1-based access: list:get(1) is child "0".
function M.ModuleList:get(i) return self[tostring(i - 1)] end
function M.ModuleList:__len() return self._n end
function M.ModuleList:ipairs()
  local i = 0
  return function()
    i = i + 1
    if i <= self._n then return i, self[tostring(i - 1)] end
  end
end

return M
