--- Likelihoods of 8-bit images in bits per dimension: one convention for every model in gen.
--
-- An 8-bit image x in {0, ..., 255}^d is a point of a discrete space. A model of discrete values
-- (PixelCNN's 256-way softmax, a discretized logistic) gives log P(x) directly:
--   bits/dim = -log P(x) / (d ln 2).
-- A model of a continuous density p (a flow, a VAE with a Gaussian decoder, diffusion's
-- probability-flow ODE) sees the image dequantized: y = lo + (x + u) * delta, u ~ U[0, 1)^d, with
-- bin width delta = (hi - lo) / 256 for data scaled to [lo, hi]. Then P(x) >= exp E_u[log p(y)] *
-- delta^d (Theis et al., 2016; Ho et al., 2019), so the continuous log-density converts with the
-- offset d log delta:
--   bits/dim = -(log p(y) + d log delta) / (d ln 2).
-- For data in [0, 1] the offset is -d log 256 = -8 d bits: a uniform density on [0, 1]^d is
-- exactly 8 bits/dim, as is a uniform P over the 256^d images.
local gen = require "gen"

local M = {}

M.LEVELS = 256


local function check_range(range, fname)
  range = range or { 0, 1 }
  local ordered = type(range) == "table" and type(range[1]) == "number" and type(range[2]) == "number" and range[2] > range[1]
  if not ordered then -- also refuses NaN bounds
    error(string.format("gen.likelihood.%s: range must be {lo, hi} with lo < hi, got %s", fname, tostring(range)), 3)
  end
  return range
end

local function check_dims(dims, fname)
  if math.type(dims) ~= "integer" or dims < 1 then
    error(string.format("gen.likelihood.%s: dims must be a positive integer, got %s", fname, tostring(dims)), 3)
  end
end

--- log_bin_width(range) -> log delta in nats, the width of one of the 256 bins of data scaled to
-- range = {lo, hi} (default {0, 1}).
function M.log_bin_width(range)
  range = check_range(range, "log_bin_width")
  return math.log((range[2] - range[1]) / M.LEVELS)
end

--- bits_per_dim(log_p, dims [, opts]) -> bits per dimension of log-likelihoods in nats (a number
-- or a tensor, per image) over dims dimensions. opts.discrete = true: log_p is a discrete
-- log-probability of the 8-bit values, or any log-density to convert without an offset. Otherwise log_p is a continuous log-density of
-- dequantized data scaled to opts.range = {lo, hi} (default {0, 1}) and the bin width's offset is
-- added, as derived above.
function M.bits_per_dim(log_p, dims, opts)
  opts = opts or {}
  check_dims(dims, "bits_per_dim")
  local offset = opts.discrete and 0 or dims * M.log_bin_width(check_range(opts.range, "bits_per_dim"))
  local scale = -1 / (dims * math.log(2))
  if type(log_p) == "number" then return (log_p + offset) * scale end
  if not gen.is_tensor(log_p) then
    error("gen.likelihood.bits_per_dim: log_p must be a number or a tensor, got " .. type(log_p), 2)
  end
  return (log_p + offset) * scale
end

--- dequantize(images [, opts]) -> float32 images y = lo + (x + u) delta with u ~ U[0, 1): uniform
-- dequantization of uint8 images (or float images holding the integers 0..255) into
-- opts.range = {lo, hi} (default {0, 1}); opts.generator seeds u.
function M.dequantize(images, opts)
  opts = opts or {}
  local range = check_range(opts.range, "dequantize")
  if not gen.is_tensor(images) then error("gen.likelihood.dequantize: images must be a tensor, got " .. type(images), 2) end
  local delta = (range[2] - range[1]) / M.LEVELS
  local u = gen.rand(images.shape, { generator = opts.generator })
  return (images:float() + u) * delta + range[1]
end

--- The standard normal CDF, 0.5 (1 + erf(x / sqrt 2)).
function M.standard_normal_cdf(x) return (gen.erf(x * (1 / math.sqrt(2))) + 1) * 0.5 end

--- discretized_gaussian_log_likelihood(x, mean, log_scale): log P(x) in nats per element of the
-- Gaussian N(mean, e^(2 log_scale)) integrated over x's bin, for x in [-1, 1] on 256 levels (bins
-- of width 2/255 centred on them; the end bins reach to -inf and +inf), as in Ho et al. (2020).
-- Far out in a tail the probability is taken from the density at the bin's centre, so the result
-- stays finite and differentiable. The arguments broadcast; one fused op (csrc/ops_likelihood.c).
function M.discretized_gaussian_log_likelihood(x, mean, log_scale)
  local args = { x, mean, log_scale }
  local shape, ndim = {}, 0
  for _, t in ipairs(args) do
    if not gen.is_tensor(t) then error("gen.likelihood.discretized_gaussian_log_likelihood: expected tensors, got " .. type(t), 2) end
    ndim = math.max(ndim, t:dim())
  end
  for d = 1, ndim do -- right-aligned, as broadcasting does
    shape[d] = 1
    for _, t in ipairs(args) do
      local size = t.shape[d - ndim + t:dim()] or 1
      if size ~= 1 and shape[d] ~= 1 and size ~= shape[d] then
        error(string.format("gen.likelihood.discretized_gaussian_log_likelihood: shapes {%s}, {%s} and {%s} do not broadcast",
          table.concat(x.shape, ","), table.concat(mean.shape, ","), table.concat(log_scale.shape, ",")), 2)
      end
      if size ~= 1 then shape[d] = size end
    end
  end
  return gen.discretized_gaussian_log_likelihood(x:expand(shape), mean:expand(shape), log_scale:expand(shape))
end

return M
