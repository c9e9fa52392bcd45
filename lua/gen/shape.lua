--- Shape helpers written on the core views (reshape is a view whenever strides allow).
-- Installed as gen.* functions and tensor methods by lua/gen/init.lua.
local M = {}

local function norm_dim(d, n, fname)
  if math.type(d) ~= "integer" then error(fname .. ": expected an integer dimension, got " .. tostring(d), 3) end
  local m = n > 0 and n or 1
  if d == 0 or d > m or d < -m then
    error(string.format("%s: dimension %d out of range for a %d-d tensor (1..%d, or -%d..-1)", fname, d, n, m, m), 3)
  end
  return d > 0 and d or m + 1 + d
end

--- x:squeeze([d]): removes dim d (if its size is 1), or every size-1 dim.
function M.squeeze(x, d)
  local shape, out = x.shape, {}
  if d ~= nil then
    d = norm_dim(d, #shape, "gen.squeeze")
    for i, s in ipairs(shape) do if i ~= d or s ~= 1 then out[#out + 1] = s end end
  else
    for _, s in ipairs(shape) do if s ~= 1 then out[#out + 1] = s end end
  end
  return x:reshape(out)
end

--- x:unsqueeze(d): inserts a size-1 dim at position d (1..ndim+1, negative counts from the end).
function M.unsqueeze(x, d)
  local shape = x.shape
  d = norm_dim(d, #shape + 1, "gen.unsqueeze")
  table.insert(shape, d, 1)
  return x:reshape(shape)
end

--- x:flatten([d1 = 1, d2 = -1]): merges dims d1..d2 into one.
function M.flatten(x, d1, d2)
  local shape = x.shape
  if #shape == 0 then return x:reshape(1) end
  d1 = norm_dim(d1 or 1, #shape, "gen.flatten")
  d2 = norm_dim(d2 or -1, #shape, "gen.flatten")
  if d1 > d2 then error(string.format("gen.flatten: start dim %d is after end dim %d", d1, d2), 2) end
  local out, merged = {}, 1
  for i = 1, d1 - 1 do out[#out + 1] = shape[i] end
  for i = d1, d2 do merged = merged * shape[i] end
  out[#out + 1] = merged
  for i = d2 + 1, #shape do out[#out + 1] = shape[i] end
  return x:reshape(out)
end

--- gen.stack({t1, t2, ...} [, d = 1]): joins equal-shaped tensors along a new dim d.
function M.stack(list, d)
  if type(list) ~= "table" or #list == 0 then error("gen.stack: expected a non-empty list of tensors", 2) end
  local gen = require "gen"
  local first = list[1]
  if not gen.is_tensor(first) then error("gen.stack: element 1 is a " .. type(first) .. ", not a tensor", 2) end
  d = norm_dim(d or 1, first:dim() + 1, "gen.stack")
  local parts = {}
  for i, t in ipairs(list) do
    if not gen.is_tensor(t) then error("gen.stack: element " .. i .. " is a " .. type(t) .. ", not a tensor", 2) end
    if table.concat(t.shape, ",") ~= table.concat(first.shape, ",") then
      error(string.format("gen.stack: element %d has shape {%s}, element 1 has {%s}", i, table.concat(t.shape, ","),
        table.concat(first.shape, ",")), 2)
    end
    parts[i] = M.unsqueeze(t, d)
  end
  return gen.cat(parts, d)
end

--- x:split(size, d = 1): a list of views of `size` along d (the last may be smaller).
function M.split(x, size, d)
  d = norm_dim(d or 1, x:dim(), "gen.split")
  if math.type(size) ~= "integer" or size < 1 then error("gen.split: size must be a positive integer, got " .. tostring(size), 2) end
  local n, out = x:size(d), {}
  for start = 1, n, size do out[#out + 1] = x:narrow(d, start, math.min(size, n - start + 1)) end
  return out
end

--- x:chunk(n, d = 1): at most n nearly equal views along d.
function M.chunk(x, n, d)
  if math.type(n) ~= "integer" or n < 1 then error("gen.chunk: n must be a positive integer, got " .. tostring(n), 2) end
  d = norm_dim(d or 1, x:dim(), "gen.chunk")
  return M.split(x, math.max(1, -(-x:size(d) // n)), d)
end

return M
