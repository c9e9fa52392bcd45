-- A checkpoint's digest that does not depend on the order of its file's header: sorted tensor
-- names with each tensor's dtype, shape and bytes, then the sorted metadata (but the recorded run
-- options under "diffusion/"), through sha256sum.
local gen = require "gen"

local function slurp(path)
  local f = assert(io.open(path, "rb"))
  local s = f:read("a")
  f:close()
  return s
end

return function(path)
  local tensors, meta = gen.load(path)
  local names, keys = {}, {}
  for k in pairs(tensors) do names[#names + 1] = k end
  -- the run's recorded options ("diffusion/process", ...) say what the numbers mean; they are not numbers
  for k in pairs(meta or {}) do if not k:find("^diffusion/") then keys[#keys + 1] = k end end
  table.sort(names)
  table.sort(keys)
  local canon = os.tmpname()
  local out = assert(io.open(canon, "wb"))
  for _, name in ipairs(names) do
    local one = os.tmpname()
    gen.save(one, { x = tensors[name] }) -- a single tensor and no metadata: a canonical file
    out:write(name, "\0", slurp(one), "\0")
    os.remove(one)
  end
  for _, k in ipairs(keys) do out:write(k, "=", tostring(meta[k]), "\0") end
  out:close()
  local p = io.popen("sha256sum " .. canon)
  local digest = p:read("a"):match("%x+")
  p:close()
  os.remove(canon)
  return digest
end
