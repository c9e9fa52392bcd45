--- gen.checkpoint: a whole training state in one safetensors file, written atomically.
--
--   gen.checkpoint.save(path, {model = m, optimizer = opt, ema = ema, step = 1200, epoch = 3})
--   local ck = gen.checkpoint.load(path, {model = m, optimizer = opt, ema = ema})
--   -- m, opt and ema now hold the saved state, the RNG is restored, ck.step == 1200
--
-- Objects with a state_dict() method are saved through it; tensors go in the tensor section,
-- numbers, strings and booleans in the metadata, nested tables under "/"-joined keys
-- ("optimizer/state/1/exp_avg"); an empty table is kept as one metadata entry, so an optimizer saved
-- before its first step (no per-parameter state yet) loads back. The default generator's state is
-- saved as "rng" unless rng = false.
local gen = require "gen"

local M = {}

local function is_object(v) return type(v) == "table" and type(v.state_dict) == "function" end

local function encode_scalar(v)
  if math.type(v) == "integer" then return "i:" .. v end
  if type(v) == "number" then return "n:" .. string.format("%.17g", v) end
  if type(v) == "boolean" then return v and "b:1" or "b:0" end
  if type(v) == "string" then return "s:" .. v end
end

local function decode_scalar(s)
  local kind, body = s:sub(1, 2), s:sub(3)
  if kind == "i:" then return math.tointeger(tonumber(body)) end
  if kind == "n:" then return tonumber(body) end
  if kind == "b:" then return body == "1" end
  if kind == "s:" then return body end
  if s == "t:" then return {} end
  return s
end

local function flatten(prefix, v, tensors, meta, seen)
  if gen.is_tensor(v) then
    tensors[prefix] = v
  elseif is_object(v) then
    flatten(prefix, v:state_dict(), tensors, meta, seen)
  elseif type(v) == "table" then
    if seen[v] then error("gen.checkpoint.save: a cycle in the state at " .. prefix, 3) end
    if next(v) == nil and prefix ~= "" then
      meta[prefix] = "t:"
      return
    end
    seen[v] = true
    for k, x in pairs(v) do
      if type(k) ~= "string" and math.type(k) ~= "integer" then
        error("gen.checkpoint.save: keys must be strings or integers (at " .. prefix .. ")", 3)
      end
      local ks = tostring(k)
      if ks:find("/", 1, true) then error("gen.checkpoint.save: key '" .. ks .. "' contains '/'", 3) end
      flatten(prefix == "" and ks or (prefix .. "/" .. ks), x, tensors, meta, seen)
    end
    seen[v] = nil
  else
    local s = encode_scalar(v)
    if not s then error("gen.checkpoint.save: cannot save a " .. type(v) .. " at " .. prefix, 3) end
    meta[prefix] = s
  end
end

--- Saves state (a table) to path atomically: a crash mid-save leaves the previous file intact.
function M.save(path, state, opts)
  if type(state) ~= "table" then error("gen.checkpoint.save: expected a state table", 2) end
  local full = {}
  for k, v in pairs(state) do full[k] = v end
  if not (opts and opts.rng == false) and full.rng == nil then full.rng = gen.get_rng_state() end
  local tensors, meta = {}, {}
  flatten("", full, tensors, meta, {})
  gen.save(path, tensors, meta, { atomic = true })
end

local function insert(root, key, value)
  local node = root
  local parts = {}
  for part in key:gmatch("[^/]+") do parts[#parts + 1] = math.tointeger(tonumber(part)) or part end
  for i = 1, #parts - 1 do
    local p = parts[i]
    if type(node[p]) ~= "table" then node[p] = {} end
    node = node[p]
  end
  node[parts[#parts]] = value
end

--- Loads path; objects given in `into` ({model = m, optimizer = opt, ...}) receive their saved
-- state through load_state_dict, and the RNG state is restored (unless opts.rng == false). An
-- object with optional_state = true may be absent from the file (it was added to the state later).
-- Returns the whole saved state as nested tables.
function M.load(path, into, opts)
  local tensors, meta = gen.load(path)
  local state = {}
  for k, t in pairs(tensors) do insert(state, k, t) end
  for k, s in pairs(meta) do insert(state, k, decode_scalar(s)) end
  local names = {}
  for name in pairs(into or {}) do names[#names + 1] = name end
  table.sort(names) -- a fixed order, so the first complaint is always the same one
  for _, name in ipairs(names) do
    local obj = into[name]
    if state[name] ~= nil then
      obj:load_state_dict(state[name])
    elseif not obj.optional_state then
      error("gen.checkpoint.load: " .. path .. " has no '" .. name .. "'", 2)
    end
  end
  if state.rng and not (opts and opts.rng == false) then gen.set_rng_state(state.rng) end
  return state
end

return M
