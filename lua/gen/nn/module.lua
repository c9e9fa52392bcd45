--- gen.nn.Module: the base class of every layer and model.
-- A class is made with Module:extend(name); calling the class builds an instance and runs its
-- init(...). Modules and parameters assigned to fields of self become children, named by their
-- field and kept in assignment order, which fixes the order of parameters() and of state_dict().
local gen = require "gen"

local Module = { __name = "Module" }
local parameter_marks = setmetatable({}, { __mode = "k" })

--- Marks a tensor as a trainable parameter (it gets requires_grad) and returns it.
local function Parameter(t)
  assert(gen.is_tensor(t), "gen.nn.Parameter: expected a tensor")
  if not t.requires_grad then t:requires_grad_() end
  parameter_marks[t] = true
  return t
end

local function is_parameter(v) return parameter_marks[v] == true end
local function is_module(v) return type(v) == "table" and rawget(v, "_is_module") == true end

-- Fields are stored in the instance table itself; __newindex only remembers the order in which
-- names first appeared. Whether a name holds a module, parameter or buffer is decided when the tree
-- is walked, so replacing a child (model.head = nn.Linear(...)) just works.
local function newindex(self, k, v)
  if type(k) == "string" and k:sub(1, 1) ~= "_" then
    local order = rawget(self, "_order")
    order[#order + 1] = k
  end
  rawset(self, k, v)
end

--- Creates a subclass. Class fields (methods) are looked up through the parent chain.
function Module:extend(name)
  local cls = setmetatable({ __name = name or "Module" }, { __index = self, __call = function(c, ...) return c:new(...) end })
  cls.__index = cls
  cls.__newindex = newindex
  cls.__call = function(m, ...) return m:forward(...) end
  cls.__tostring = function(m) return m:tree() end
  return cls
end

function Module:new(...)
  local m = setmetatable({ _is_module = true, _order = {}, _buffers = {}, training = true }, self)
  m:init(...)
  return m
end

function Module:init() end
function Module:forward() error(self.__name .. ": forward() is not defined", 2) end

--- Registers a persistent non-trainable tensor (running statistics): it is saved in state_dict.
function Module:register_buffer(name, t)
  self._buffers[name] = true
  self[name] = t
end

--- Ordered list of {name, value, kind} for direct children ("module", "parameter", "buffer").
function Module:_children()
  local out, seen = {}, {}
  for _, name in ipairs(self._order) do
    if not seen[name] then
      seen[name] = true
      local v = rawget(self, name)
      if is_module(v) then out[#out + 1] = { name, v, "module" }
      elseif gen.is_tensor(v) and is_parameter(v) then out[#out + 1] = { name, v, "parameter" }
      elseif gen.is_tensor(v) and self._buffers[name] then out[#out + 1] = { name, v, "buffer" } end
    end
  end
  return out
end

local function walk(m, prefix, kind, out)
  for _, c in ipairs(m:_children()) do
    local name, v, k = c[1], c[2], c[3]
    if k == "module" then walk(v, prefix .. name .. ".", kind, out)
    elseif k == kind then out[#out + 1] = { prefix .. name, v } end
  end
  return out
end

--- Parameters in a deterministic order (depth first, assignment order).
function Module:parameters()
  local out = {}
  for _, nv in ipairs(walk(self, "", "parameter", {})) do out[#out + 1] = nv[2] end
  return out
end

--- Iterator over (name, parameter) with PyTorch-style dotted names.
function Module:named_parameters()
  local list, i = walk(self, "", "parameter", {}), 0
  return function()
    i = i + 1
    if list[i] then return list[i][1], list[i][2] end
  end
end

function Module:buffers()
  local out = {}
  for _, nv in ipairs(walk(self, "", "buffer", {})) do out[#out + 1] = nv[2] end
  return out
end

function Module:named_buffers()
  local list, i = walk(self, "", "buffer", {}), 0
  return function()
    i = i + 1
    if list[i] then return list[i][1], list[i][2] end
  end
end

--- Direct child modules as an ordered list of {name, module}.
function Module:named_children()
  local out = {}
  for _, c in ipairs(self:_children()) do if c[3] == "module" then out[#out + 1] = { c[1], c[2] } end end
  return out
end

--- name -> tensor for every parameter and buffer (the tensors themselves, not copies).
function Module:state_dict()
  local sd = {}
  for _, nv in ipairs(walk(self, "", "parameter", {})) do sd[nv[1]] = nv[2] end
  for _, nv in ipairs(walk(self, "", "buffer", {})) do sd[nv[1]] = nv[2] end
  return sd
end

--- Copies tensors from sd into this module's parameters and buffers.
-- opts.strict (default true): missing or unexpected keys are an error listing them by name.
-- Shape mismatches are always an error naming the key and both shapes.
-- Returns the lists of missing and unexpected keys.
function Module:load_state_dict(sd, opts)
  local strict = not (opts and opts.strict == false)
  local own = self:state_dict()
  local missing, unexpected, bad = {}, {}, {}
  for k, t in pairs(own) do
    local src = sd[k]
    if src == nil then missing[#missing + 1] = k
    elseif not gen.is_tensor(src) then bad[#bad + 1] = string.format("%s: expected a tensor, got %s", k, type(src))
    elseif table.concat(src.shape, "x") ~= table.concat(t.shape, "x") then
      bad[#bad + 1] = string.format("%s: shape {%s} in the state dict, {%s} in the model", k,
        table.concat(src.shape, ","), table.concat(t.shape, ","))
    end
  end
  for k in pairs(sd) do if own[k] == nil then unexpected[#unexpected + 1] = k end end
  table.sort(missing); table.sort(unexpected); table.sort(bad)
  if #bad > 0 then error("load_state_dict: size mismatch: " .. table.concat(bad, "; "), 2) end
  if strict and (#missing > 0 or #unexpected > 0) then
    error(string.format("load_state_dict: missing keys: {%s}; unexpected keys: {%s}",
      table.concat(missing, ", "), table.concat(unexpected, ", ")), 2)
  end
  gen.no_grad(function()
    for k, t in pairs(own) do if gen.is_tensor(sd[k]) then t:copy_(sd[k]) end end
  end)
  return missing, unexpected
end

function Module:train(mode)
  if mode == nil then mode = true end
  rawset(self, "training", mode)
  for _, c in ipairs(self:named_children()) do c[2]:train(mode) end
  return self
end

function Module:eval() return self:train(false) end

function Module:zero_grad()
  for _, p in ipairs(self:parameters()) do p.grad = nil end
end

function Module:num_parameters()
  local n = 0
  for _, p in ipairs(self:parameters()) do n = n + p:numel() end
  return n
end

--- Converts every parameter and buffer to dtype in place (the module keeps its tensors' identity
-- only when the dtype already matches).
function Module:type(dtype)
  for _, c in ipairs(self:_children()) do
    local name, v, kind = c[1], c[2], c[3]
    if kind == "module" then v:type(dtype)
    elseif v.dtype ~= dtype then
      local t = gen.no_grad(function() return v:detach():type(dtype) end)
      if kind == "parameter" then t = Parameter(t) end
      rawset(self, name, t)
    end
  end
  return self
end
function Module:double() return self:type("float64") end
function Module:float() return self:type("float32") end

--- One line describing this module's own settings, e.g. "64, 128, kernel_size=3".
function Module:extra_repr() return "" end

local function count_label(n)
  local s = tostring(n):reverse():gsub("(%d%d%d)", "%1,"):reverse()
  return (s:gsub("^,", ""))
end

function Module:tree(indent)
  indent = indent or ""
  local kids = self:named_children()
  local head = self.__name .. "(" .. self:extra_repr()
  local n = self:num_parameters()
  local suffix = n > 0 and ("  # " .. count_label(n) .. " parameters") or ""
  if #kids == 0 then return head .. ")" .. suffix end
  local lines = { head .. (head:sub(-1) == "(" and "" or ", ") .. suffix }
  if head:sub(-1) == "(" then lines[1] = head .. suffix end
  for _, c in ipairs(kids) do
    lines[#lines + 1] = indent .. "  (" .. c[1] .. "): " .. c[2]:tree(indent .. "  ")
  end
  lines[#lines + 1] = indent .. ")"
  return table.concat(lines, "\n")
end

return { Module = Module, Parameter = Parameter, is_parameter = is_parameter, is_module = is_module }
