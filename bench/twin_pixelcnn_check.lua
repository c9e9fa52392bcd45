-- gen's side of the PixelCNN parity check: the twin's initial weights and batch order
-- (bench/twin_pixelcnn.py parity --out FILE), trained here with the same Adam; prints the loss at
-- every step and the test NLL on the first 1000 test images, as the twin does for the same file:
--   /usr/bin/python3 bench/twin_pixelcnn.py parity --steps 200 --out /tmp/pixelcnn_parity.safetensors
--   bin/gen bench/twin_pixelcnn_check.lua /tmp/pixelcnn_parity.safetensors [--width 32 --layers 5]
local gen = require "gen"
local pixelcnn = require "gen.models.pixelcnn"
local ar = require "gen.autoregressive.pixelcnn"
gen.set_num_threads(1)
local path = assert(arg[1], "usage: twin_pixelcnn_check.lua FILE [--width W] [--layers L] [--lr LR]")
local opts = { width = 32, layers = 5, lr = 1e-3 }
for i = 2, #arg, 2 do opts[arg[i]:gsub("^%-%-", "")] = tonumber(arg[i + 1]) end
local model = pixelcnn.GatedPixelCNN { input = "pixels", width = math.tointeger(opts.width), layers = math.tointeger(opts.layers) }
local t = gen.load(path)
local batches = t.batches:long() + 1 -- 0-based in the file
t.batches = nil
model:load_state_dict(t)
local opt = gen.optim.Adam(model, { lr = opts.lr })
local train = gen.data.fashion_mnist { split = "train" }
local test = gen.data.fashion_mnist { split = "test" }
for step = 1, batches:size(1) do
  local x = train.images:index_select(1, batches[step]):float()
  opt:zero_grad()
  local loss = ar.loss(model, x)
  loss:backward()
  opt:step()
  print(string.format("step %d loss %.6f", step, loss:item()))
end
print(string.format("test NLL %.5f bits/dim over 1000 images", ar.bits_per_dim(model, test.images:narrow(1, 1, 1000):float())))
