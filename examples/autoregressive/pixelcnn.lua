-- A gated PixelCNN (van den Oord et al., 2016) on Fashion-MNIST: an exact-likelihood model of the
-- 8-bit pixels (--on pixels: test NLL in bits/dim), or the prior over the codes of a VQ-VAE
-- (--on codes --stage1 DIR), sampled position by position in raster order.
--   bin/gen examples/autoregressive/pixelcnn.lua --steps 2000
--   bin/gen examples/autoregressive/pixelcnn.lua --sample 16 --temperature 0.9
--   bin/gen examples/autoregressive/pixelcnn.lua --conditional --steps 2000 --out runs/cpixelcnn
--   bin/gen examples/autoregressive/pixelcnn.lua --conditional --sample 10 --class 8 --out runs/cpixelcnn
local gen = require "gen"
local pixelcnn = require "gen.models.pixelcnn"
local ar = require "gen.autoregressive.pixelcnn"
local experiment = require "gen.experiment"

local run = experiment.parse("pixelcnn", arg, { batch = 64, lr = 1e-3, width = 64, layers = 8, kernel = 3, first_kernel = 7,
  head = 0, conditional = false, temperature = 1.0, test_images = 10000, stage1 = "",
  on = experiment.choice("pixels", { "pixels", "codes" }) })
gen.manual_seed(run.seed)
if run.on == "pixels" and run.stage1 ~= "" then experiment.fail(run.script, "--stage1 is for --on codes (a prior over VQ-VAE codes)") end
if run.on == "codes" then experiment.fail(run.script, "--on codes needs a VQ-VAE stage 1, which this build does not have yet") end
local classes = run.conditional and 10 or 0
if run.class > 0 and classes == 0 then experiment.fail(run.script, "--class needs a class-conditional model (train with --conditional)") end

local model = pixelcnn.GatedPixelCNN { input = "pixels", width = run.width, layers = run.layers, kernel = run.kernel,
  first_kernel = run.first_kernel, head = run.head > 0 and run.head or nil, classes = classes }
local opt = gen.optim.Adam(model, { lr = run.lr })
local train = gen.data.fashion_mnist { split = "train" }

-- x holds the pixel values 0..255 (the loader's range {0, 255} keeps them integers)
local function step(x, y)
  opt:zero_grad()
  local loss = ar.loss(model, x, classes > 0 and y or nil)
  loss:backward()
  opt:step()
  local nats = loss:item()
  return { loss = nats, bits_per_dim = nats / math.log(2) }
end

-- samples drawn in raster order, mapped to [-1, 1]; conditional models also return the labels
local function sample(n)
  local labels = classes > 0 and experiment.class_labels(run, n, classes) or nil
  local x = ar.sample(model, n, { labels = labels, temperature = run.temperature })
  return x:float() * (2 / 255) - 1, labels
end

-- the test set's NLL in bits/dim (the first --test-images images)
local function test_nll()
  local test = gen.data.fashion_mnist { split = "test" }
  local n = math.min(run.test_images, test.images:size(1))
  if n == 0 then return end
  local images = test.images:narrow(1, 1, n)
  local pixels = gen.core.io.batch_images(images, gen.arange(1, n + 1), { range = { 0, 255 } })
  local t0 = gen.time()
  local bpd = ar.bits_per_dim(model, pixels, { labels = classes > 0 and test.labels:narrow(1, 1, n) or nil })
  local line = string.format("test NLL: %.4f bits/dim over %d images (%.1f s)", bpd, n, gen.time() - t0)
  print(line)
  local f = assert(io.open(run.out .. "/bits_per_dim.txt", "w"))
  f:write(line, "\n")
  f:close()
end

experiment.train(run, {
  state = { model = model, optimizer = opt },
  data = train,
  transform = { range = { 0, 255 } },
  losses = { "loss", "bits_per_dim" },
  step = step,
  sample = sample,
  nrow = classes > 0 and 10 or 8,
  after = test_nll,
})
