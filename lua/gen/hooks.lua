--- Gradient-ready hooks (gen.autograd.register_grad_ready_hook / register_backward_end_hook).
--
--   local h = gen.autograd.register_grad_ready_hook(w, function(w) ... w.grad is final ... end)
--   local e = gen.autograd.register_backward_end_hook(function(ok) ... end)
--   h:remove(); e:remove()
--
-- The engine (csrc/autograd.c) counts the contributions each watched leaf will receive in a
-- backward and calls its hooks right after the last one is accumulated, while backward goes on
-- through earlier layers: this is what lets gen.dist.DataParallel start reducing a bucket of
-- gradients before backward ends. End hooks run once after every backward (ok = false when it
-- failed). Hooks run with grad mode off; an error in one stops backward with that error.
local core = require "gen.core"

local M = {}
local by_key = {}   -- key -> list of {id, fn}
local ends = {}     -- list of {id, fn}
local next_key, next_id = 0, 0
local installed = false

local function ready(key, t)
  local list = by_key[key]
  if not list then return end
  for _, h in ipairs(list) do h.fn(t) end
end

local function finished(ok)
  for _, h in ipairs(ends) do h.fn(ok) end
end

local function sync()
  local any = next(by_key) ~= nil or #ends > 0
  if any and not installed then
    core.set_grad_hooks(ready, finished)
  elseif not any and installed then
    core.set_grad_hooks(nil, nil)
  end
  installed = any
end

local Handle = {}
Handle.__index = Handle
function Handle:remove()
  if self.removed then return end
  self.removed = true
  local list = self.list
  for i, h in ipairs(list) do
    if h == self.entry then table.remove(list, i) break end
  end
  if self.key and #list == 0 then
    by_key[self.key] = nil
    core.set_grad_hook_key(self.tensor, 0)
  end
  sync()
end

--- Calls fn(t) each time t's gradient is final during a backward. t must be a leaf that
-- requires grad (a parameter). Returns a handle with :remove().
function M.register_grad_ready_hook(t, fn)
  local fname = "gen.autograd.register_grad_ready_hook"
  if not core.is_tensor(t) then error(fname .. ": argument 1 must be a tensor, got " .. type(t), 2) end
  if type(fn) ~= "function" then error(fname .. ": argument 2 must be a function, got " .. type(fn), 2) end
  local key = core.set_grad_hook_key(t)
  if key == 0 or not by_key[key] then
    next_key = next_key + 1
    key = next_key
    local ok, err = pcall(core.set_grad_hook_key, t, key)
    if not ok then error(fname .. ": " .. tostring(err):gsub("^gen%.core%.set_grad_hook_key: ", ""), 2) end
    by_key[key] = {}
  end
  next_id = next_id + 1
  local entry = { id = next_id, fn = fn }
  table.insert(by_key[key], entry)
  sync()
  return setmetatable({ key = key, list = by_key[key], entry = entry, tensor = t }, Handle)
end

--- Calls fn(ok) after every backward (ok false when it failed). Returns a handle with :remove().
function M.register_backward_end_hook(fn)
  if type(fn) ~= "function" then
    error("gen.autograd.register_backward_end_hook: expected a function, got " .. type(fn), 2)
  end
  next_id = next_id + 1
  local entry = { id = next_id, fn = fn }
  ends[#ends + 1] = entry
  sync()
  return setmetatable({ list = ends, entry = entry }, Handle)
end

-- Gradient hooks on values (not leaves): h = gradient_hook(fn); y = h(x) is x, and in backward
-- the gradient reaching y passes through fn(dy) (returning the gradient for x, or nil to keep dy)
-- on its way to x. One h serves every forward (the key is h's, not the call's).
local transforms, transform_installed = {}, false
local GradientHook = {}
GradientHook.__index = GradientHook
GradientHook.__call = function(h, x)
  if h.removed then error("gen.autograd.gradient_hook: this hook was removed", 2) end
  return core.grad_hook(x, h.key)
end
function GradientHook:remove()
  self.removed = true
  transforms[self.key] = nil
end

--- gen.autograd.gradient_hook(fn): see above. Returns a callable h with h:remove().
function M.gradient_hook(fn)
  if type(fn) ~= "function" then error("gen.autograd.gradient_hook: expected a function, got " .. type(fn), 2) end
  if not transform_installed then
    core.set_grad_transform(function(key, g)
      local f = transforms[key]
      if f then return f(g) end
    end)
    transform_installed = true
  end
  next_key = next_key + 1
  transforms[next_key] = fn
  return setmetatable({ key = next_key }, GradientHook)
end

return M
