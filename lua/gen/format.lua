--- Torch7-style printing of tensors: the values (a 2-d matrix per slice for higher ranks), then a
-- footer with the type and size, e.g. "[gen.FloatTensor of size 2x3]". Large tensors are
-- abbreviated: at most `edge` rows/columns are shown at each end of every dimension, with "...".
local M = {}

local type_names = { float32 = "FloatTensor", float64 = "DoubleTensor", int64 = "LongTensor", uint8 = "ByteTensor" }
M.threshold, M.edge = 1000, 3

local function footer(t)
  local shape = t.shape
  if #shape == 0 then return string.format("[gen.%s of size {}]", type_names[t.dtype]) end
  return string.format("[gen.%s of size %s]", type_names[t.dtype], table.concat(shape, "x"))
end

-- Indices shown along a dim of size n: all, or the first and last `edge` with a gap (0) between.
local function shown(n, abbreviate)
  local idx = {}
  if not abbreviate or n <= 2 * M.edge then
    for i = 1, n do idx[#idx + 1] = i end
  else
    for i = 1, M.edge do idx[#idx + 1] = i end
    idx[#idx + 1] = 0
    for i = n - M.edge + 1, n do idx[#idx + 1] = i end
  end
  return idx
end

-- One format for all shown values: integers as integers, else fixed or scientific by range.
local function number_format(values, is_float)
  local maxabs, minabs, integral = 0, math.huge, true
  for _, v in ipairs(values) do
    if v ~= v or v == math.huge or v == -math.huge then
      integral = false
    else
      local a = math.abs(v)
      maxabs = math.max(maxabs, a)
      if a > 0 then minabs = math.min(minabs, a) end
      if v ~= math.floor(v) then integral = false end
    end
  end
  if not is_float then return function(v) return string.format("%d", v) end end
  if integral and maxabs < 1e8 then return function(v) return string.format("%.0f", v) end end
  if maxabs >= 1e5 or (minabs < 1e-4 and minabs ~= math.huge) then
    return function(v) return string.format("%.4e", v) end
  end
  return function(v) return string.format("%.4f", v) end
end

function M.tensor(t)
  local shape, nd = t.shape, t:dim()
  local numel = t:numel()
  if nd == 0 then return string.format("%s\n%s", tostring(t:item()), footer(t)) end
  if numel == 0 then return string.format("[gen.%s with no elements of size %s]", type_names[t.dtype], table.concat(shape, "x")) end
  local abbreviate = numel > M.threshold
  local strides = {}
  local s = 1
  for d = nd, 1, -1 do strides[d] = s; s = s * shape[d] end
  local per_dim = {}
  for d = 1, nd do per_dim[d] = shown(shape[d], abbreviate) end
  -- collect the values to be shown, to pick one width
  local values = {}
  local function flat(index) local f = 1; for d = 1, nd do f = f + (index[d] - 1) * strides[d] end; return f end
  local function each(d, index, fn)
    if d > nd then return fn(index) end
    for _, i in ipairs(per_dim[d]) do
      if i > 0 then index[d] = i; each(d + 1, index, fn) end
    end
  end
  each(1, {}, function(index) values[#values + 1] = t:at(flat(index)) end)
  local fmt = number_format(values, t.dtype == "float32" or t.dtype == "float64")
  local width = 0
  for _, v in ipairs(values) do width = math.max(width, #fmt(v)) end
  local cell = "%" .. width .. "s"
  local out = {}
  local function row(prefix_index)
    local parts = {}
    for _, j in ipairs(per_dim[nd]) do
      if j == 0 then parts[#parts + 1] = string.rep(" ", math.max(0, width - 3)) .. "..."
      else
        prefix_index[nd] = j
        parts[#parts + 1] = string.format(cell, fmt(t:at(flat(prefix_index))))
      end
    end
    return " " .. table.concat(parts, " ")
  end
  if nd == 1 then
    for _, i in ipairs(per_dim[1]) do
      if i == 0 then out[#out + 1] = string.rep(" ", math.max(0, width - 3)) .. "..." else
        out[#out + 1] = string.format(cell, fmt(t:at(i)))
      end
    end
  else
    local function slices(d, index)
      if d == nd - 1 then
        if nd > 2 then
          local label = {}
          for k = 1, nd - 2 do label[k] = tostring(index[k]) end
          out[#out + 1] = "(" .. table.concat(label, ",") .. ",.,.) = "
        end
        for _, i in ipairs(per_dim[nd - 1]) do
          if i == 0 then out[#out + 1] = " ..." else index[nd - 1] = i; out[#out + 1] = row(index) end
        end
        if nd > 2 then out[#out + 1] = "" end
        return
      end
      for _, i in ipairs(per_dim[d]) do
        if i == 0 then out[#out + 1] = "(...)"; out[#out + 1] = "" else index[d] = i; slices(d + 1, index) end
      end
    end
    slices(1, {})
  end
  out[#out + 1] = footer(t)
  return table.concat(out, "\n")
end

return M
