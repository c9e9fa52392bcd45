--- gen.data.Dataset: images (a tensor whose first dimension counts samples), optional labels
-- (int64, 1-based classes) and class names.
--   #ds                  the number of samples
--   ds:get(i)            image, label (i may be negative: -1 is the last)
--   ds[i]                {image, label}: Lua's indexing gives one value, so the pair comes as a table
--   ds:float_images{range = {-1, 1}}   all images as float32 scaled from [0, 255] to the range
local gen = require "gen"

local Dataset = {}
local methods = {}

local mt = {
  __name = "gen.data.Dataset",
  __index = function(ds, k)
    if math.type(k) == "integer" then return { ds:get(k) } end
    return methods[k]
  end,
  __len = function(ds) return ds.images:size(1) end,
  __tostring = function(ds)
    local shape = ds.images.shape
    table.remove(shape, 1)
    return string.format("Dataset%s: %d images {%s} %s%s", ds.name and (" " .. ds.name) or "", #ds,
      table.concat(shape, ","), ds.images.dtype, ds.classes and (", " .. #ds.classes .. " classes") or "")
  end,
}

--- gen.data.Dataset{images = t, labels = l, classes = {...}, name = "..."}: wraps tensors as a dataset.
function Dataset.new(fields)
  local level = 2
  if type(fields) ~= "table" then error("gen.data.Dataset: expected {images = t, labels = l, ...}", level) end
  local images, labels = fields.images, fields.labels
  if not gen.is_tensor(images) or images:dim() < 1 then
    error("gen.data.Dataset: images must be a tensor whose first dimension counts samples", level)
  end
  if labels ~= nil then
    if not gen.is_tensor(labels) or labels:dim() ~= 1 or labels:size(1) ~= images:size(1) then
      error(string.format("gen.data.Dataset: labels must be a 1-d tensor of %d values", images:size(1)), level)
    end
  end
  return setmetatable(fields, mt)
end

function Dataset.is_dataset(x) return getmetatable(x) == mt end

function methods:get(i)
  local n = #self
  if math.type(i) ~= "integer" then error("gen.data.Dataset: index must be an integer, got " .. tostring(i), 2) end
  if i < 0 then i = n + i + 1 end
  if i < 1 or i > n then error(string.format("gen.data.Dataset: index %d out of range 1..%d", i, n), 2) end
  return self.images[i], self.labels and self.labels:at(i) or nil
end

--- All images as float32 in [-1, 1] (default) or opts.range = {lo, hi}, e.g. {0, 1}.
function methods:float_images(opts)
  local range = opts and opts.range or { -1, 1 }
  local x = self.images
  if x.dtype == "uint8" then
    local shape = x.shape
    local flat = x:dim() == 4 and x or x:reshape(shape[1], 1, 1, -1)
    return gen.core.io.batch_images(flat, gen.arange(1, shape[1] + 1), { range = range }):view(shape)
  end
  return x:float()
end

Dataset.methods = methods
return Dataset
