--- gen.data.fashion_mnist{split = "train" | "test", dir = ...}: Zalando's Fashion-MNIST.
-- Looks in opts.dir when given (and only there), else in $GEN_DATA, then in Debian's
-- /usr/share/datasets/fashion-mnist (package dataset-fashion-mnist). Files are the four
-- {train,t10k}-{images-idx3,labels-idx1}-ubyte, gzip-compressed (.gz) or plain.
-- Returns a gen.data.Dataset: images uint8 {N, 1, 28, 28}, labels int64 in 1..10, classes.
local Dataset = require "gen.data.dataset"
local idx = require "gen.data.idx"

local DEBIAN_DIR = "/usr/share/datasets/fashion-mnist"

local classes = { "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot" }

local function exists(path)
  local f = io.open(path, "rb")
  if f then f:close() end
  return f ~= nil
end

local function find(dir, prefix)
  for _, ext in ipairs { ".gz", "" } do
    local img = dir .. "/" .. prefix .. "-images-idx3-ubyte" .. ext
    local lab = dir .. "/" .. prefix .. "-labels-idx1-ubyte" .. ext
    if exists(img) and exists(lab) then return img, lab end
  end
end

local function fashion_mnist(opts)
  opts = opts or {}
  local split = opts.split or "train"
  if split ~= "train" and split ~= "test" then
    error("gen.data.fashion_mnist: split must be \"train\" or \"test\", got " .. tostring(split), 2)
  end
  local prefix = split == "train" and "train" or "t10k"
  local dirs = opts.dir and { opts.dir } or { os.getenv("GEN_DATA"), DEBIAN_DIR }
  local img, lab
  for _, dir in pairs(dirs) do -- pairs: GEN_DATA may be nil
    img, lab = find(dir, prefix)
    if img then break end
  end
  if not img then
    local looked = {}
    for _, d in pairs(dirs) do looked[#looked + 1] = d end
    error(string.format("gen.data.fashion_mnist: no %s-images-idx3-ubyte(.gz) and %s-labels-idx1-ubyte(.gz) in %s; " ..
      "install them with `apt-get install dataset-fashion-mnist` (or set GEN_DATA to a folder holding them)",
      prefix, prefix, table.concat(looked, " or ")), 2)
  end
  local images, labels = idx.read(img), idx.read(lab)
  if images:dim() ~= 3 or images.dtype ~= "uint8" or labels:dim() ~= 1 or labels.dtype ~= "uint8"
      or images:size(1) ~= labels:size(1) then
    error(string.format("gen.data.fashion_mnist: %s (%s {%s}) and %s (%s {%s}) are not a matching image/label pair",
      img, images.dtype, table.concat(images.shape, ","), lab, labels.dtype, table.concat(labels.shape, ",")), 2)
  end
  if labels:numel() > 0 and labels:max():item() > 9 then
    error(string.format("gen.data.fashion_mnist: %s has label %d (expected 0..9)", lab, labels:max():item()), 2)
  end
  local n, h, w = table.unpack(images.shape)
  return Dataset.new {
    images = images:view(n, 1, h, w),
    labels = labels:long() + 1,
    classes = classes,
    name = "fashion_mnist/" .. split,
    files = { img, lab },
  }
end

return { load = fashion_mnist, classes = classes, DEBIAN_DIR = DEBIAN_DIR }
