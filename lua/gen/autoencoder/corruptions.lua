--- gen.autoencoder.corruptions: input corruptions for denoising autoencoders (Vincent et al.,
-- 2008, 2010). Each constructor returns a function corrupt(x [, generator]) -> a corrupted copy of
-- x (images {B, C, H, W}, by default in [0, 1]); randomness comes from gen's RNG (or the generator),
-- so a seed fixes the corruption. They compose: compose{gaussian(0.1), erase(8)}.
--   gaussian(sigma [, {clamp = {lo, hi}}])   x + sigma * N(0, 1), clamped only if asked
--   masking(fraction [, {value = 0}])        each pixel independently set to value with probability
--                                            fraction ("masking noise": zeroes a fraction of pixels)
--   salt_pepper(fraction [, {lo = 0, hi = 1}]) each pixel with probability fraction set to lo or
--                                            hi, one or the other with probability 1/2
--   erase(size [, {value = 0}])              one size x size block per image (size = {h, w} also
--                                            works) at a uniformly random position set to value
--   compose(list)                            applies the corruptions in order
--   by_name(name, level [, opts])            "gaussian" | "mask" | "saltpepper" | "erase" (level:
--                                            sigma, fraction, fraction, block size)
local gen = require "gen"

local M = {}

local function check_images(who, x)
  if not gen.is_tensor(x) or x:dim() < 2 then
    error(string.format("gen.autoencoder.corruptions.%s: expected a batch of images, got %s", who,
      gen.is_tensor(x) and "{" .. table.concat(x.shape, ",") .. "}" or type(x)), 3)
  end
end

local function check_fraction(who, p)
  if type(p) ~= "number" or p < 0 or p > 1 then
    error(string.format("gen.autoencoder.corruptions.%s: fraction must be in [0, 1], got %s", who, tostring(p)), 3)
  end
end

function M.gaussian(sigma, opts)
  if type(sigma) ~= "number" or sigma < 0 then
    error("gen.autoencoder.corruptions.gaussian: sigma must be a number >= 0, got " .. tostring(sigma), 2)
  end
  local clamp = opts and opts.clamp
  return function(x, generator)
    check_images("gaussian", x)
    local y = x + gen.randn(x.shape, { dtype = x.dtype, generator = generator }) * sigma
    return clamp and y:clamp(clamp[1], clamp[2]) or y
  end
end

function M.masking(fraction, opts)
  check_fraction("masking", fraction)
  local value = opts and opts.value or 0
  return function(x, generator)
    check_images("masking", x)
    local hit = gen.rand(x.shape, { generator = generator }):lt(fraction)
    return x:masked_fill(hit, value)
  end
end

function M.salt_pepper(fraction, opts)
  check_fraction("salt_pepper", fraction)
  local lo, hi = opts and opts.lo or 0, opts and opts.hi or 1
  return function(x, generator)
    check_images("salt_pepper", x)
    local u = gen.rand(x.shape, { generator = generator })
    -- u < fraction / 2: pepper (lo); fraction / 2 <= u < fraction: salt (hi)
    return x:masked_fill(u:lt(fraction / 2), lo):masked_fill(u:ge(fraction / 2):mul(u:lt(fraction)), hi)
  end
end

function M.erase(size, opts)
  local bh, bw = type(size) == "table" and size[1] or size, type(size) == "table" and size[2] or size
  if math.type(bh) ~= "integer" or math.type(bw) ~= "integer" or bh < 1 or bw < 1 then
    error("gen.autoencoder.corruptions.erase: size must be a positive integer or {h, w}, got " .. tostring(size), 2)
  end
  local value = opts and opts.value or 0
  return function(x, generator)
    check_images("erase", x)
    local b, h, w = x:size(1), x:size(-2), x:size(-1)
    if bh > h or bw > w then
      error(string.format("gen.autoencoder.corruptions.erase: block %dx%d does not fit images %dx%d", bh, bw, h, w), 2)
    end
    local tops = gen.randint(1, h - bh + 1, { b }, { generator = generator }):totable()
    local lefts = gen.randint(1, w - bw + 1, { b }, { generator = generator }):totable()
    local keep = gen.ones(b, 1, h, w, "uint8")
    for i = 1, b do keep:select(1, i):narrow(2, tops[i], bh):narrow(3, lefts[i], bw):fill_(0) end
    return x:masked_fill(keep:eq(0), value)
  end
end

function M.compose(list)
  return function(x, generator)
    for _, c in ipairs(list) do x = c(x, generator) end
    return x
  end
end

local names = { gaussian = M.gaussian, mask = M.masking, saltpepper = M.salt_pepper, erase = function(level, opts)
  return M.erase(math.tointeger(level) or level, opts)
end }
function M.by_name(name, level, opts)
  local make = names[name]
  if not make then
    error("gen.autoencoder.corruptions.by_name: noise must be gaussian, mask, saltpepper or erase, got " .. tostring(name), 2)
  end
  return make(level, opts)
end

return M
