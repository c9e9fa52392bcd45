--- gen.autoregressive.pixelcnn: the exact likelihood and the raster-order sampler of a PixelCNN
-- (gen.models.pixelcnn.GatedPixelCNN).
--
-- An autoregressive model factors the probability of an image (or a code grid) x with d positions
-- in raster order,
--   log p(x) = sum_i log p(x_i | x_<i),
-- each factor a softmax over the `levels` values of position i. Training minimizes the mean
-- negative log-likelihood per position (a cross-entropy), and the test NLL converts to bits per
-- dimension through gen.likelihood.bits_per_dim(log p, d, {discrete = true}): a discrete model
-- needs no dequantization offset. Sampling draws the positions one at a time, in the same order,
-- each from its softmax at temperature T (Gumbel-max: argmax(logits / T + g), g ~ Gumbel(0, 1)).
local gen = require "gen"
local likelihood = require "gen.likelihood"

local M = {}

-- The class targets (1-based) of checked x: pixel values + 1, or the codes themselves.
local function targets(model, x)
  if model.input == "pixels" then return x:long():view(x:size(1), x:size(3), x:size(4)) + 1 end
  return x
end

--- log_prob(model, x [, labels [, map]]) -> log p(x) in nats per image, a tensor {B}.
function M.log_prob(model, x, labels, map)
  local logits = model(x, labels, map)
  local nll = gen.cross_entropy(logits, targets(model, x), { reduction = "none" }) -- {B, H, W}
  return -nll:flatten(2):sum(2)
end

--- loss(model, x [, labels [, map]]) -> the mean negative log-likelihood per position in nats (a
-- scalar tensor; divided by ln 2 it is the training batch's bits per dimension).
function M.loss(model, x, labels, map)
  return gen.cross_entropy(model(x, labels, map), targets(model, x))
end

--- bits_per_dim(model, data [, {labels, maps, batch = 256}]) -> the mean bits per dimension of
-- every item of data (pixels {N, 1, H, W} or codes {N, H, W}; labels {N}; maps {N, C, H, W}),
-- evaluated without gradients in batches, and the per-item values {N}.
function M.bits_per_dim(model, data, opts)
  opts = opts or {}
  local n, bs = data:size(1), opts.batch or 256
  if math.type(bs) ~= "integer" or bs < 1 then error("gen.autoregressive.pixelcnn.bits_per_dim: batch must be a positive integer", 2) end
  local was_training = model.training
  model:eval()
  local parts = {}
  gen.no_grad(function()
    for first = 1, n, bs do
      local len = math.min(bs, n - first + 1)
      local x = data:narrow(1, first, len)
      local labels = opts.labels and opts.labels:narrow(1, first, len) or nil
      local map = opts.maps and opts.maps:narrow(1, first, len) or nil
      local dims = x:numel() // len
      parts[#parts + 1] = likelihood.bits_per_dim(M.log_prob(model, x, labels, map), dims, { discrete = true })
    end
  end)
  model:train(was_training)
  local per_item = gen.cat(parts)
  return per_item:mean():item(), per_item
end

-- The logits {n, levels} at row r, column c of x (rows before r and the columns of row r before c
-- filled), recomputing both stacks over rows 1..r.
local function logits_uncached(model, x, r, c, labels, map)
  local n, pixels = x:size(1), model.input == "pixels"
  local xr = x:narrow(pixels and 3 or 2, 1, r)
  local _, hs = model:stacks(model:features(xr), labels, map and map:narrow(3, 1, r) or nil)
  return model:head(hs:narrow(3, r, 1):narrow(4, c, 1)):view(n, -1)
end

-- Row-cached sampling. The horizontal stack of row r sees the vertical stack only through rows
-- before r, which are final once row r starts: each row runs the vertical stack once over the
-- rows above it and keeps every layer's convolution at the last of them; each position then runs
-- only the horizontal stack, over its own row up to its own column (H W single-row passes instead
-- of H W passes over up to H rows of both stacks). The same numbers as logits_uncached: every
-- convolution here sees exactly the inputs it sees there.
local function row_cache(model, x, r, labels, map)
  local n, pixels = x:size(1), model.input == "pixels"
  local above = {}
  if r == 1 then -- shift_down fills the first row with zeros
    local first = model.stack:get(1).v_to_h
    local zeros = gen.zeros({ n, first.in_channels, 1, x:size(pixels and 4 or 3) }, first.weight.dtype)
    for l = 1, #model.stack do above[l] = zeros end
    return above
  end
  local f = model:features(x:narrow(pixels and 3 or 2, 1, r - 1))
  local e, m = model:label_features(labels, f.dtype), map and map:narrow(3, 1, r - 1) or nil
  local v = f
  for l, layer in model.stack:ipairs() do
    local vp
    vp, v = layer:vertical(v, e, m)
    above[l] = vp:narrow(3, r - 1, 1)
  end
  return above
end

local function logits_cached(model, x, r, c, above, labels, map)
  local n, pixels = x:size(1), model.input == "pixels"
  local row = pixels and x:narrow(3, r, 1):narrow(4, 1, c) or x:narrow(2, r, 1):narrow(3, 1, c)
  local h = model:features(row)
  local e, m = model:label_features(labels, h.dtype), map and map:narrow(3, r, 1):narrow(4, 1, c) or nil
  for l, layer in model.stack:ipairs() do h = layer:horizontal(h, above[l]:narrow(4, 1, c), e, m) end
  return model:head(h:narrow(4, c, 1)):view(n, -1)
end

--- position_logits(model, x, r, c [, {labels, map, cache = true}]) -> the logits {B, levels} that
-- sample draws position (r, c) from: x (pixels {B, 1, H, W} or codes {B, H, W}) filled before
-- (r, c) in raster order; what x holds at and after (r, c) does not matter.
function M.position_logits(model, x, r, c, opts)
  opts = opts or {}
  local pixels = model.input == "pixels"
  local h, w = x:size(pixels and 3 or 2), x:size(pixels and 4 or 3)
  if math.type(r) ~= "integer" or math.type(c) ~= "integer" or r < 1 or r > h or c < 1 or c > w then
    error(string.format("gen.autoregressive.pixelcnn.position_logits: position (%s, %s) outside the %dx%d image", tostring(r), tostring(c), h, w), 2)
  end
  model:check(x, opts.labels, opts.map)
  return gen.no_grad(function()
    if opts.cache == false then return logits_uncached(model, x, r, c, opts.labels, opts.map) end
    return logits_cached(model, x, r, c, row_cache(model, x, r, opts.labels, opts.map), opts.labels, opts.map)
  end)
end

--- sample(model, n [, {labels, map, temperature = 1, generator, size = {H, W}, cache = true}]) ->
-- int64 samples: pixels {n, 1, H, W} with values 0..255, or codes {n, H, W} with values
-- 1..levels, drawn position by position in raster order, the n images in one batch. The image
-- size defaults to the model's resolution (or the map's size). labels: int64 {n} for a
-- class-conditional model; map: {n, C, H, W} for one built with cond_channels. The same
-- generator state gives the same samples, with the row cache (the default) or without it
-- (cache = false: both stacks rerun over the rows filled so far at every position).
function M.sample(model, n, opts)
  opts = opts or {}
  local who = "gen.autoregressive.pixelcnn.sample"
  if math.type(n) ~= "integer" or n < 1 then error(string.format("%s: n must be a positive integer, got %s", who, tostring(n)), 2) end
  local temperature = opts.temperature or 1
  if type(temperature) ~= "number" or temperature ~= temperature or temperature <= 0 or temperature == math.huge then
    error(string.format("%s: temperature must be a positive number, got %s", who, tostring(temperature)), 2)
  end
  local map = opts.map
  local h, w = model.resolution, model.resolution
  if opts.size then h, w = opts.size[1], opts.size[2] elseif map then h, w = map:size(3), map:size(4) end
  if math.type(h) ~= "integer" or math.type(w) ~= "integer" or h < 1 or w < 1 then
    error(string.format("%s: size must be {H, W} with positive integers", who), 2)
  end
  local pixels = model.input == "pixels"
  local x = pixels and gen.zeros({ n, 1, h, w }, "int64") or gen.ones({ n, h, w }, "int64")
  local labels = opts.labels
  model:check(x, labels, map) -- the labels and the map, before the first step
  local rand_opts = { generator = opts.generator }
  local was_training = model.training
  model:eval()
  local cache = opts.cache ~= false
  gen.no_grad(function()
    for r = 1, h do
      local above = cache and row_cache(model, x, r, labels, map) or nil
      for c = 1, w do
        local logits = cache and logits_cached(model, x, r, c, above, labels, map) or logits_uncached(model, x, r, c, labels, map)
        local u = gen.rand(logits.shape, rand_opts)
        local g = -gen.log(-gen.log(u))
        local _, value = (logits / temperature + g):max(2)
        if pixels then
          x:narrow(3, r, 1):narrow(4, c, 1):copy_((value - 1):view(n, 1, 1, 1))
        else
          x:narrow(2, r, 1):narrow(3, c, 1):copy_(value:view(n, 1, 1))
        end
      end
    end
  end)
  model:train(was_training)
  return x
end

---------------------------------------------------------------- priors over VQ-VAE codes

-- codes of a CodePrior: a tensor {B, h, w} (one level) or {top = ..., bottom = ...} (two levels)
local function split(prior, codes, who)
  if prior.levels == 1 then
    if not gen.is_tensor(codes) then error(who .. ": one level: codes must be an int64 tensor {B, h, w}", 3) end
    return codes
  end
  if type(codes) ~= "table" or gen.is_tensor(codes) or not gen.is_tensor(codes.top) or not gen.is_tensor(codes.bottom) then
    error(who .. ": two levels: codes must be {top = ..., bottom = ...}", 3)
  end
  return codes.top, codes.bottom
end

--- code_log_prob(prior, codes [, labels]) -> log p(codes) in nats per image {B}: log p(top) (+
-- log p(bottom | top) with two levels), and the per-level terms.
function M.code_log_prob(prior, codes, labels)
  local top, bottom = split(prior, codes, "gen.autoregressive.pixelcnn.code_log_prob")
  local lt = M.log_prob(prior.top, top, labels)
  if not bottom then return lt, { top = lt } end
  local lb = M.log_prob(prior.bottom, bottom, labels, prior:top_map(top))
  return lt + lb, { top = lt, bottom = lb }
end

--- code_loss(prior, codes [, labels]) -> the training loss (mean NLL per code, summed over the
-- levels) and a table of the per-level means (numbers, nats per code).
function M.code_loss(prior, codes, labels)
  local top, bottom = split(prior, codes, "gen.autoregressive.pixelcnn.code_loss")
  local lt = M.loss(prior.top, top, labels)
  if not bottom then return lt, { top = lt:item() } end
  local lb = M.loss(prior.bottom, bottom, labels, prior:top_map(top))
  return lt + lb, { top = lt:item(), bottom = lb:item() }
end

--- code_bits(prior, codes [, {labels, batch = 256}]) -> bits per code position of every level
-- ({top = ..., bottom = ...}; log2 of the codebook size is the uniform prior's), evaluated
-- without gradients.
function M.code_bits(prior, codes, opts)
  opts = opts or {}
  local top, bottom = split(prior, codes, "gen.autoregressive.pixelcnn.code_bits")
  local out = { top = (M.bits_per_dim(prior.top, top, { labels = opts.labels, batch = opts.batch })) }
  if bottom then
    local maps = gen.no_grad(function() return prior:top_map(top) end)
    out.bottom = M.bits_per_dim(prior.bottom, bottom, { labels = opts.labels, maps = maps, batch = opts.batch })
  end
  return out
end

--- sample_codes(prior, n [, {labels, temperature, generator}]) -> codes as the VQ-VAE's
-- decode_indices takes them: the top grid, then (two levels) the bottom one given it.
function M.sample_codes(prior, n, opts)
  opts = opts or {}
  local o = { labels = opts.labels, temperature = opts.temperature, generator = opts.generator }
  local top = M.sample(prior.top, n, o)
  if prior.levels == 1 then return top end
  o.map = gen.no_grad(function() return prior:top_map(top) end)
  return { top = top, bottom = M.sample(prior.bottom, n, o) }
end

return M
