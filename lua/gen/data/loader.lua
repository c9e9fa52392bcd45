--- gen.data.DataLoader(dataset, opts): batches of a dataset for training loops.
--
--   local loader = gen.data.DataLoader(ds, {batch_size = 64, shuffle = true, drop_last = false,
--                                            seed = 0 | generator = g, transform = {...}})
--   for x, y in loader:iter() do ... end      -- x float32 {B, C, H, W}, y int64 {B} (or nil)
--   #loader                                   -- batches per epoch
--
-- transform (a table): range = {lo, hi} maps uint8 pixels [0, 255] to [lo, hi] (default {-1, 1});
-- pad = p adds p pixels of the range's low end on every side (pad = 2 turns 28x28 into 32x32);
-- flip = true mirrors each sample left-right with probability 1/2; fn = function(x, y) return
-- x, y end runs last on every batch. A plain function as transform is taken as fn.
--
-- Randomness (the order and the flips) is reproducible:
--   seed = n        epoch e's order depends only on (n, e): loader:iter{epoch = e, start = k}
--                   restarts exactly at batch k of epoch e (how a resumed run continues mid-epoch).
--                   Without {epoch}, each iter() call is the next epoch (1, 2, ...).
--   generator = g   orders and flips are drawn from g, as PyTorch's DataLoader does: seeding g
--                   the same way gives the same sequence of epochs.
--   neither         drawn from the default generator (gen.manual_seed controls it).
-- Sharding for data-parallel training (gen.dist): ranks = p, rank = r (0-based) gives this rank
-- batch_size rows of each global batch of p * batch_size: batch k of an epoch is rows
-- r * batch_size + 1 .. (r + 1) * batch_size of the unsharded loader's batch k with batch_size
-- p * batch_size, so the ranks see disjoint shards of the same permutation and together the very
-- batches (and flips) one process would; needs drop_last and a seed (or shuffle = false), and
-- #loader is the number of global batches. Resuming mid-epoch works as without shards.
-- Batches are assembled in C (gather rows, scale, flip, pad in one pass: gen.core.io.batch_images).
local gen = require "gen"

local DataLoader = {}
DataLoader.__index = DataLoader
DataLoader.__name = "gen.data.DataLoader"

local function count(ds)
  if ds.images then return ds.images:size(1) end
  return #ds
end

DataLoader.__len = function(l)
  local n, bs = count(l.dataset), l.batch_size * l.ranks
  return l.drop_last and n // bs or -(-n // bs)
end

DataLoader.__tostring = function(l)
  return string.format("DataLoader: %d samples in %d batches of %d%s%s%s", count(l.dataset), #l, l.batch_size,
    l.shuffle and ", shuffled" or "", l.drop_last and ", drop_last" or "",
    l.ranks > 1 and string.format(", shard %d of %d", l.rank, l.ranks) or "")
end

local function fail(msg, level) error("gen.data.DataLoader: " .. msg, (level or 1) + 1) end

local function new(dataset, opts)
  opts = opts or {}
  if type(dataset) ~= "table" then fail("expected a dataset, got " .. type(dataset), 2) end
  if dataset.images then
    if not gen.is_tensor(dataset.images) or dataset.images:dim() ~= 4 then
      fail("dataset.images must be a tensor {N, C, H, W}", 2)
    end
  elseif type(dataset.get) ~= "function" then
    fail("expected a dataset with images {N, C, H, W} or a get(i) method", 2)
  end
  local bs = opts.batch_size or 64
  if math.type(bs) ~= "integer" or bs < 1 then fail("batch_size must be a positive integer, got " .. tostring(bs), 2) end
  local transform = opts.transform or {}
  if type(transform) == "function" then transform = { fn = transform } end
  if type(transform) ~= "table" then fail("transform must be a table or a function", 2) end
  local range = transform.range or { -1, 1 }
  if type(range) ~= "table" or type(range[1]) ~= "number" or type(range[2]) ~= "number" then
    fail("transform.range must be {lo, hi}", 2)
  end
  local pad = transform.pad or 0
  if math.type(pad) ~= "integer" or pad < 0 then fail("transform.pad must be an integer >= 0", 2) end
  if opts.seed ~= nil and math.type(opts.seed) ~= "integer" then fail("seed must be an integer", 2) end
  local ranks, rank = opts.ranks or 1, opts.rank or 0
  if math.type(ranks) ~= "integer" or ranks < 1 then fail("ranks must be a positive integer, got " .. tostring(ranks), 2) end
  if math.type(rank) ~= "integer" or rank < 0 or rank >= ranks then
    fail(string.format("rank must be an integer in 0..%d, got %s", ranks - 1, tostring(rank)), 2)
  end
  if ranks > 1 then
    if not opts.drop_last then fail("a sharded loader (ranks > 1) needs drop_last = true: every rank must get a full batch", 2) end
    if opts.shuffle ~= false and not opts.seed then
      fail("a sharded loader (ranks > 1) needs {seed = n}: every rank must draw the same permutation", 2)
    end
  end
  return setmetatable({ ranks = ranks, rank = rank,
    dataset = dataset, batch_size = bs, shuffle = opts.shuffle ~= false, drop_last = opts.drop_last or false,
    seed = opts.seed, generator = opts.generator, transform = transform, range = range, pad = pad,
    epoch = 0,
  }, DataLoader)
end

-- The generator for the order of an epoch and for the flips of its k-th batch.
function DataLoader:rng(epoch, k)
  if self.seed then
    if k then return gen.Generator(self.seed * 7919 + epoch * 104729 + k) end
    return gen.Generator(self.seed * 1000003 + epoch)
  end
  return self.generator -- nil: the default generator
end

--- The order (a permutation of 1..N, int64) of an epoch.
function DataLoader:order(epoch)
  local n = count(self.dataset)
  if not self.shuffle then return gen.arange(1, n + 1) end
  local g = self:rng(epoch)
  return g and gen.randperm(n, { generator = g }) or gen.randperm(n)
end

--- One batch: images (float32, transformed) and labels for the given 1-based indices.
-- (first, the row of this batch's first sample in the global batch: the shard's flips are the
-- global batch's, so sharded ranks flip exactly what one process would)
function DataLoader:batch(idx, epoch, k, first)
  local ds, t = self.dataset, self.transform
  local flip
  if t.flip then
    local g = self:rng(epoch, k)
    local n = first and self.batch_size * self.ranks or idx:size(1)
    flip = (g and gen.rand(n, { generator = g }) or gen.rand(n)):narrow(1, first or 1, idx:size(1)):lt(0.5)
  end
  local x, y
  if ds.images then
    x = gen.core.io.batch_images(ds.images, idx, { range = self.range, pad = self.pad, flip = flip })
    if ds.labels then y = ds.labels:index_select(1, idx) end
  else -- any table with get(i) -> image {C, H, W}, label
    local imgs, labels = {}, {}
    for i, j in ipairs(idx:totable()) do imgs[i], labels[i] = ds:get(j) end
    local stacked = gen.stack(imgs)
    x = gen.core.io.batch_images(stacked, gen.arange(1, #imgs + 1), { range = self.range, pad = self.pad, flip = flip })
    if #labels == #imgs then y = gen.is_tensor(labels[1]) and gen.stack(labels) or gen.tensor(labels, "int64") end
  end
  if t.fn then x, y = t.fn(x, y) end
  return x, y
end

--- Iterates the batches of an epoch: for x, y in loader:iter([{epoch = e, start = k}]) do ... end
function DataLoader:iter(opts)
  local epoch = opts and opts.epoch
  if epoch ~= nil then
    if math.type(epoch) ~= "integer" or epoch < 1 then fail("epoch must be a positive integer", 2) end
    if self.shuffle and not self.seed then fail("iter{epoch = e} needs a loader made with {seed = n}", 2) end
    self.epoch = epoch
  else
    self.epoch = self.epoch + 1
    epoch = self.epoch
  end
  local start = opts and opts.start or 1
  if math.type(start) ~= "integer" or start < 1 then fail("start must be a positive integer", 2) end
  local order = self:order(epoch)
  local n, nb, bs = count(self.dataset), #self, self.batch_size
  local k = start - 1
  if self.ranks > 1 then
    return function()
      k = k + 1
      if k > nb then return nil end
      local row = self.rank * bs + 1 -- this rank's rows of the global batch k
      return self:batch(order:narrow(1, (k - 1) * bs * self.ranks + row, bs), epoch, k, row)
    end
  end
  return function()
    k = k + 1
    if k > nb then return nil end
    local first = (k - 1) * bs + 1
    return self:batch(order:narrow(1, first, math.min(bs, n - first + 1)), epoch, k)
  end
end

return new
