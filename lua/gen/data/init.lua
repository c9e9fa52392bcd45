--- gen.data: datasets and batching.
--   gen.data.idx.read/write            the IDX format (gzip or plain)           data/idx.lua
--   gen.data.fashion_mnist{...}        Fashion-MNIST (Debian's dataset-fashion-mnist)  data/fashion_mnist.lua
--   gen.data.image_folder(dir)         a folder of PNG files, optionally one sub-folder per class
--   gen.data.Dataset{images, labels}   wraps tensors as a dataset                data/dataset.lua
--   gen.data.DataLoader(ds, {...})     shuffled, reproducible batches             data/loader.lua
local Dataset = require "gen.data.dataset"
local fashion = require "gen.data.fashion_mnist"

return {
  idx = require "gen.data.idx",
  fashion_mnist = fashion.load,
  fashion_mnist_classes = fashion.classes,
  image_folder = require "gen.data.folder",
  Dataset = Dataset.new,
  DataLoader = require "gen.data.loader",
}
