--- gen.data: datasets and batching.
--   gen.data.idx.read/write          the IDX format (gzip or plain)
--   gen.data.fashion_mnist{...}      Fashion-MNIST from Debian's dataset-fashion-mnist package
--   gen.data.image_folder(dir)       a folder of PNG files, optionally one sub-folder per class
--   gen.data.DataLoader(ds, {...})   shuffled, reproducible batches
local gen = require "gen"
local core = gen.core

local data = {}

data.idx = {
  --- Reads an IDX file (gzip or plain) into a tensor: ubyte -> uint8, integers -> int64,
  -- float -> float32, double -> float64.
  read = function(path) return core.idx_read(path) end,
  --- Writes a tensor as IDX (uint8, int64 as 32-bit int, float32, float64); opts.gzip compresses.
  write = function(path, t, opts) return core.idx_write(path, t, opts and opts.gzip) end,
}

---------------------------------------------------------------- datasets

local Dataset = {}
Dataset.__index = Dataset
Dataset.__len = function(ds) return ds.images:size(1) end

--- ds:get(i) -> image {C, H, W} (uint8), label (1-based class)
function Dataset:get(i)
  return self.images[i], self.labels and self.labels:at(i) or nil
end

--- The images as float32 in [-1, 1] (default) or [0, 1]: ds:float_images{range = {0, 1}}.
function Dataset:float_images(opts)
  local lo, hi = -1, 1
  if opts and opts.range then lo, hi = opts.range[1], opts.range[2] end
  return self.images:float() * ((hi - lo) / 255) + lo
end

local fashion_classes = { "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot" }
data.fashion_mnist_classes = fashion_classes

local function exists(path)
  local f = io.open(path, "rb")
  if f then f:close() end
  return f ~= nil
end

--- Fashion-MNIST: {split = "train" | "test", dir = ...}. Looks in opts.dir, then $GEN_DATA, then
-- Debian's /usr/share/datasets/fashion-mnist. Returns a dataset with images uint8 {N, 1, 28, 28},
-- labels int64 in 1..10 and the class names.
function data.fashion_mnist(opts)
  opts = opts or {}
  local split = opts.split or "train"
  if split ~= "train" and split ~= "test" then error("gen.data.fashion_mnist: split must be \"train\" or \"test\", got " .. tostring(split), 2) end
  local prefix = split == "train" and "train" or "t10k"
  local dirs = { opts.dir, os.getenv("GEN_DATA"), "/usr/share/datasets/fashion-mnist" }
  for _, dir in pairs(dirs) do
    for _, ext in ipairs { ".gz", "" } do
      local img = dir .. "/" .. prefix .. "-images-idx3-ubyte" .. ext
      local lab = dir .. "/" .. prefix .. "-labels-idx1-ubyte" .. ext
      if exists(img) and exists(lab) then
        local images = core.idx_read(img)
        local labels = core.idx_read(lab)
        if images:dim() ~= 3 or labels:dim() ~= 1 or images:size(1) ~= labels:size(1) then
          error(string.format("gen.data.fashion_mnist: %s and %s do not match ({%s} vs {%s})", img, lab,
            table.concat(images.shape, ","), table.concat(labels.shape, ",")), 2)
        end
        return setmetatable({
          images = images:view(images:size(1), 1, images:size(2), images:size(3)),
          labels = labels:long() + 1,
          classes = fashion_classes,
          name = "fashion_mnist/" .. split,
        }, Dataset)
      end
    end
  end
  error("gen.data.fashion_mnist: the Fashion-MNIST files are missing; install them with " ..
    "`apt-get install dataset-fashion-mnist` or set GEN_DATA to a folder holding " .. prefix .. "-images-idx3-ubyte.gz", 2)
end

local function list_dir(dir)
  local p = io.popen('ls -1 "' .. dir:gsub('"', '\\"') .. '" 2>/dev/null')
  local out = {}
  for line in p:lines() do out[#out + 1] = line end
  p:close()
  table.sort(out)
  return out
end

local function is_dir(path)
  local ok = os.execute('test -d "' .. path:gsub('"', '\\"') .. '"')
  return ok == true or ok == 0
end

--- A dataset from PNG files: dir/*.png (label nil), or dir/<class>/*.png (labels 1..K by sorted
-- class folder name). All images are converted to `channels` (1 by default) and must share a size.
function data.image_folder(dir, opts)
  opts = opts or {}
  local image = require "gen.image"
  local files, labels, classes = {}, {}, {}
  for _, name in ipairs(list_dir(dir)) do
    local path = dir .. "/" .. name
    if is_dir(path) then
      classes[#classes + 1] = name
      for _, f in ipairs(list_dir(path)) do
        if f:lower():match("%.png$") then files[#files + 1] = path .. "/" .. f; labels[#labels + 1] = #classes end
      end
    elseif name:lower():match("%.png$") then
      files[#files + 1] = path
    end
  end
  if #files == 0 then error("gen.data.image_folder: no PNG files in " .. dir, 2) end
  local imgs = {}
  for i, f in ipairs(files) do
    imgs[i] = image.load(f, { channels = opts.channels or 1, uint8 = true })
    if i > 1 and table.concat(imgs[i].shape, "x") ~= table.concat(imgs[1].shape, "x") then
      error(string.format("gen.data.image_folder: %s is %s but %s is %s", f, table.concat(imgs[i].shape, "x"), files[1],
        table.concat(imgs[1].shape, "x")), 2)
    end
  end
  return setmetatable({
    images = gen.stack(imgs),
    labels = #labels == #files and gen.tensor(labels, "int64") or nil,
    classes = #classes > 0 and classes or nil,
    files = files,
  }, Dataset)
end

---------------------------------------------------------------- batching

local DataLoader = {}
DataLoader.__index = DataLoader
DataLoader.__len = function(l)
  local n = #l.dataset
  return l.drop_last and n // l.batch_size or -(-n // l.batch_size)
end

--- DataLoader(dataset, {batch_size = 64, shuffle = true, drop_last = false, generator = g,
--   transform = {range = {-1, 1}, pad = 2, flip = true}})
-- `for x, y in loader:iter() do` gives float32 images {B, C, H, W} (scaled to transform.range)
-- and labels. The order of epoch e depends only on (generator seed, e), so loader:iter{epoch = e,
-- start = k} resumes exactly at batch k of epoch e (1-based).
function data.DataLoader(dataset, opts)
  opts = opts or {}
  local bs = opts.batch_size or 64
  if math.type(bs) ~= "integer" or bs < 1 then error("gen.data.DataLoader: batch_size must be a positive integer", 2) end
  if type(dataset) ~= "table" or not dataset.images then error("gen.data.DataLoader: expected a dataset with images", 2) end
  local seed = opts.generator and opts.generator:get_state()[1] or opts.seed or 0
  return setmetatable({
    dataset = dataset, batch_size = bs, shuffle = opts.shuffle ~= false, drop_last = opts.drop_last or false,
    seed = seed, transform = opts.transform or {},
  }, DataLoader)
end

--- The permutation of epoch e (1-based indices), from the loader's seed and e alone.
function DataLoader:order(epoch)
  local n = #self.dataset
  if not self.shuffle then return gen.arange(1, n + 1) end
  return gen.randperm(n, { generator = gen.Generator(self.seed * 1000003 + epoch) })
end

--- One batch of images (float, transformed) and labels for the given indices.
function DataLoader:batch(idx, epoch, k)
  local t = self.transform
  local x = self.dataset.images:index_select(1, idx)
  local lo, hi = -1, 1
  if t.range then lo, hi = t.range[1], t.range[2] end
  x = x:float() * ((hi - lo) / 255) + lo
  if t.flip then
    local g = gen.Generator(self.seed * 7919 + epoch * 104729 + k)
    local mask = gen.rand(x:size(1), 1, 1, 1, { generator = g }):lt(0.5)
    local w = x:size(4)
    x = gen.where(mask, x:index_select(4, gen.arange(w, 0, -1)), x)
  end
  if t.pad then x = gen.pad(x, { t.pad, t.pad, t.pad, t.pad }, "constant", lo) end
  local y = self.dataset.labels and self.dataset.labels:index_select(1, idx) or nil
  return x, y
end

--- Iterates the batches of an epoch: for x, y in loader:iter{epoch = 1, start = 1} do ... end
function DataLoader:iter(opts)
  local epoch = opts and opts.epoch or 1
  local k = (opts and opts.start or 1) - 1
  local order = self:order(epoch)
  local n, nb = #self.dataset, #self
  return function()
    k = k + 1
    if k > nb then return nil end
    local first = (k - 1) * self.batch_size + 1
    local count = math.min(self.batch_size, n - first + 1)
    return self:batch(order:narrow(1, first, count), epoch, k)
  end
end

return data
