-- A gated PixelCNN (van den Oord et al., 2016) on Fashion-MNIST: an exact-likelihood model of the
-- 8-bit pixels (--on pixels: test NLL in bits/dim), or the prior over the codes of a VQ-VAE
-- (--on codes --stage1 DIR; two PixelCNNs, top and bottom given top, for a VQ-VAE-2), sampled
-- position by position in raster order.
--   bin/gen examples/autoregressive/pixelcnn.lua --steps 2000
--   bin/gen examples/autoregressive/pixelcnn.lua --sample 16 --temperature 0.9
--   bin/gen examples/autoregressive/pixelcnn.lua --conditional --steps 2000 --out runs/cpixelcnn
--   bin/gen examples/autoregressive/pixelcnn.lua --conditional --sample 10 --class 8 --out runs/cpixelcnn
--   bin/gen examples/autoregressive/vqvae.lua --epochs 2 --out runs/vqvae
--   bin/gen examples/autoregressive/pixelcnn.lua --on codes --stage1 runs/vqvae --epochs 5 --out runs/vq_pixelcnn
local gen = require "gen"
local pixelcnn = require "gen.models.pixelcnn"
local ar = require "gen.autoregressive.pixelcnn"
local experiment = require "gen.experiment"

local run = experiment.parse("pixelcnn", arg, { batch = 64, lr = 1e-3, width = 64, layers = 8, kernel = 3, first_kernel = 7,
  head = 0, conditional = false, temperature = 1.0, test_images = 10000, train_images = 0, grid = 0,
  on = experiment.choice("pixels", { "pixels", "codes" }) })
if run.on == "pixels" and run.stage1 ~= "" then experiment.fail(run.script, "--stage1 is for --on codes (a prior over VQ-VAE codes)") end
if run.grid < 0 then experiment.fail(run.script, "option --grid must be at least 0, got " .. run.grid) end
local classes = run.conditional and 10 or 0
if run.class > 0 and classes == 0 then experiment.fail(run.script, "--class needs a class-conditional model (train with --conditional)") end
local codes = run.on == "codes"
local vq = codes and experiment.stage1(run, "vqvae") or nil -- refuses a missing or wrong-kind --stage1
gen.manual_seed(run.seed)

local sizes = { width = run.width, layers = run.layers, kernel = run.kernel, first_kernel = run.first_kernel,
  head = run.head > 0 and run.head or nil, classes = classes }
local model
if codes then
  sizes.levels, sizes.codebook_size, sizes.grid = vq.levels, vq.codebook_size, vq.grid
  model = pixelcnn.CodePrior(sizes)
else
  sizes.input = "pixels"
  model = pixelcnn.GatedPixelCNN(sizes)
end
local opt = gen.optim.Adam(model, { lr = run.lr })

local train = gen.data.fashion_mnist { split = "train" }
local test = gen.data.fashion_mnist { split = "test" }
local function first(ds, n)
  n = n > 0 and math.min(n, ds.images:size(1)) or ds.images:size(1)
  return ds.images:narrow(1, 1, n), ds.labels:narrow(1, 1, n)
end

-- Codes of images (uint8 {N, 1, 28, 28}), encoded once, in batches, without gradients: int64
-- {N, h, w}, or {top = ..., bottom = ...}.
local function encode(images)
  local parts = {}
  gen.no_grad(function()
    for i = 1, images:size(1), 500 do
      local x = images:narrow(1, i, math.min(500, images:size(1) - i + 1)):float():div(255)
      parts[#parts + 1] = vq:encode_indices(x)
    end
  end)
  if vq.levels == 1 then return gen.cat(parts) end
  local top, bottom = {}, {}
  for i, p in ipairs(parts) do top[i], bottom[i] = p.top, p.bottom end
  return { top = gen.cat(top), bottom = gen.cat(bottom) }
end
-- The loader batches images: the codes travel as float rows {N, 1, 1, L} (exact integers) and
-- are unpacked in the step.
local function pack(c)
  if vq.levels == 1 then return c:float():view(c:size(1), 1, 1, -1) end
  local n = c.top:size(1)
  return gen.cat({ c.top:view(n, -1), c.bottom:view(n, -1) }, 2):float():view(n, 1, 1, -1)
end
local function unpack_codes(x)
  local n, flat = x:size(1), x:long():view(x:size(1), -1)
  if vq.levels == 1 then return flat:view(n, vq.grid[1], vq.grid[2]) end
  local t, b = vq.grid.top, vq.grid.bottom
  return { top = flat:narrow(2, 1, t[1] * t[2]):contiguous():view(n, t[1], t[2]),
           bottom = flat:narrow(2, t[1] * t[2] + 1, b[1] * b[2]):contiguous():view(n, b[1], b[2]) }
end

local data
if codes then
  local images, labels = first(train, run.train_images)
  if run.sample == 0 then
    local t0 = gen.time()
    data = gen.data.Dataset { images = pack(encode(images)), labels = labels }
    print(string.format("encoded %d training images to codes in %.1f s", images:size(1), gen.time() - t0))
  end
else
  local images, labels = first(train, run.train_images)
  data = gen.data.Dataset { images = images, labels = labels }
end

-- x holds the pixel values 0..255 (the loader's range {0, 255} keeps them integers), or packed codes
local function step(x, y)
  opt:zero_grad()
  local labels = classes > 0 and y or nil
  local loss, parts
  if codes then loss, parts = ar.code_loss(model, unpack_codes(x), labels) else loss = ar.loss(model, x, labels) end
  loss:backward()
  opt:step()
  local nats = loss:item()
  if codes then return { loss = nats, top = parts.top, bottom = parts.bottom or 0 } end
  return { loss = nats, bits_per_dim = nats / math.log(2) }
end

-- samples drawn in raster order, mapped to [-1, 1] (codes decoded by the VQ-VAE); conditional
-- models also return the labels
local function sample(n, _, draw)
  local labels = classes > 0 and experiment.class_labels(run, n, classes, draw) or nil
  local o = { labels = labels, temperature = run.temperature }
  if codes then return vq:decode_indices(ar.sample_codes(model, n, o)):clamp(0, 1) * 2 - 1, labels end
  return ar.sample(model, n, o):float() * (2 / 255) - 1, labels
end

-- the test set's NLL (the first --test-images images): bits/dim of the pixels, or bits per code
local function test_nll()
  if run.test_images == 0 then return end
  local images, labels = first(test, run.test_images)
  labels = classes > 0 and labels or nil
  local t0 = gen.time()
  local line
  if codes then
    local bits = ar.code_bits(model, encode(images), { labels = labels })
    line = string.format("test NLL of the codes: %.4f bits per top code%s (uniform: %.2f) over %d images (%.1f s)", bits.top,
      bits.bottom and string.format(", %.4f per bottom code", bits.bottom) or "", math.log(vq.codebook_size, 2), images:size(1), gen.time() - t0)
  else
    local pixels = gen.core.io.batch_images(images, gen.arange(1, images:size(1) + 1), { range = { 0, 255 } })
    line = string.format("test NLL: %.4f bits/dim over %d images (%.1f s)", ar.bits_per_dim(model, pixels, { labels = labels }),
      images:size(1), gen.time() - t0)
  end
  print(line)
  local f = assert(io.open(run.out .. "/test_nll.txt", "w"))
  f:write(line, "\n")
  f:close()
end

experiment.train(run, {
  state = { model = model, optimizer = opt },
  data = data,
  transform = { range = { 0, 255 } },
  losses = codes and { "loss", "top", "bottom" } or { "loss", "bits_per_dim" },
  step = step,
  sample = sample,
  nrow = run.grid > 0 and run.grid or (classes > 0 and 10 or 8), -- --grid 0: one column per class, or 8 x 8
  after = test_nll,
})
