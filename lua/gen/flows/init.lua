--- gen.flows: normalizing flows, trained by exact maximum likelihood through the change of
-- variables log p(x) = log p(f(x)) + log |det df/dx| (Dinh et al., 2015, 2017; Kingma & Dhariwal,
-- 2018). The layers (gen.flows.layers) each give forward(x) -> z, logdet and inverse(z) -> x; the
-- models built from them are gen.models.realnvp and gen.models.glow (multi-scale,
-- gen.flows.MultiScale). Dequantization and bits per dimension are gen.likelihood's, the one
-- convention of every likelihood model in gen.
local gen = require "gen"
local layers = require "gen.flows.layers"

local M = {}
for k, v in pairs(layers) do M[k] = v end
M.MultiScale = require("gen.flows.multiscale").MultiScale
M.image_shape = require("gen.flows.multiscale").image_shape

--- The range flows see 8-bit data in: pixels k in 0..255 dequantize to [k/256, (k+1)/256) - 1/2.
M.RANGE = { -0.5, 0.5 }

--- bits_per_dim(model, images [, {dims, generator}]) -> {N}: each image's bits per dimension under
-- a flow. images hold 8-bit values 0..255 (uint8, or float as the data loader gives them with
-- transform {range = {0, 255}}); they are dequantized uniformly into gen.flows.RANGE
-- (gen.likelihood.dequantize, u drawn from opts.generator) and scored by model:log_prob, and the
-- density becomes bits/dim by gen.likelihood.bits_per_dim. This is the training objective and
-- (its mean over a test set) the reported number: E_u[-log p(x + u)] bounds -log P(x) from above.
-- opts.dims counts the bits over fewer dimensions than the image has: a 28x28 image padded to
-- 32x32 with a constant border has P(x) >= P(x, border), so the padded image's -log2 P divided by
-- 784 is an upper bound on the 28x28 image's bits/dim, comparable with models of 28x28 pixels.
function M.bits_per_dim(model, images, opts)
  opts = opts or {}
  local likelihood = gen.likelihood
  local y = likelihood.dequantize(images, { range = M.RANGE, generator = opts.generator })
  local log_p = model:log_prob(y)
  local all = images:numel() // images:size(1)
  local dims = opts.dims or all
  if dims == all then return likelihood.bits_per_dim(log_p, all, { range = M.RANGE }) end
  -- the discrete log-probability of the whole (padded) image, shared among dims dimensions
  local log_P = log_p + all * likelihood.log_bin_width(M.RANGE)
  return likelihood.bits_per_dim(log_P, dims, { discrete = true })
end

--- test_bits_per_dim(model, images [, {pad, dims, batch = 250, generator}]) -> the mean bits/dim
-- over a set of uint8 images {N, C, H, W}, padded by opts.pad pixels of value 0 on every side,
-- without gradients, in batches.
function M.test_bits_per_dim(model, images, opts)
  opts = opts or {}
  local n, bs, total = images:size(1), opts.batch or 250, 0
  gen.no_grad(function()
    for first = 1, n, bs do
      local x = images:narrow(1, first, math.min(bs, n - first + 1)):float()
      if opts.pad and opts.pad > 0 then x = gen.pad(x, { opts.pad, opts.pad, opts.pad, opts.pad }) end
      total = total + M.bits_per_dim(model, x, { dims = opts.dims, generator = opts.generator }):sum():item()
    end
  end)
  return total / n
end

--- to_pixels(y [, crop]) -> images in [0, 1] from a flow's output space (gen.flows.RANGE),
-- with crop pixels removed on every side (the padding of 28x28 data).
function M.to_pixels(y, crop)
  if crop and crop > 0 then
    y = y:narrow(3, crop + 1, y:size(3) - 2 * crop):narrow(4, crop + 1, y:size(4) - 2 * crop)
  end
  return (y - M.RANGE[1]):clamp(0, 1)
end

--- temperature_grid(model, path, {temperatures = {0.5, 0.7, 0.85, 1}, n = 8, crop, seed = 0}):
-- writes one row of n samples per temperature to the PNG at path, every row drawn from the same
-- noise (a generator seeded alike), so the rows show one set of samples cooling down.
function M.temperature_grid(model, path, opts)
  opts = opts or {}
  local rows = {}
  for _, t in ipairs(opts.temperatures or { 0.5, 0.7, 0.85, 1.0 }) do
    local x = gen.no_grad(model.sample, model, opts.n or 8, { temperature = t, generator = gen.Generator(opts.seed or 0) })
    rows[#rows + 1] = M.to_pixels(x, opts.crop)
  end
  require("gen.experiment").write_reconstructions(path, rows, opts.n or 8)
end

return M
