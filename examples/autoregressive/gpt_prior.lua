-- A GPT prior over the codes of a VQ-VAE (stage 2, as in DALL-E): a causal transformer learns
-- p(codes | class) over the 7x7 grid in raster order; samples are drawn token by token with a
-- key/value cache and decoded to images by the stage-1 model.
--   bin/gen examples/autoregressive/vqvae.lua --out runs/vqvae                  (stage 1)
--   bin/gen examples/autoregressive/gpt_prior.lua --stage1 runs/vqvae --epochs 10
--   bin/gen examples/autoregressive/gpt_prior.lua --stage1 runs/vqvae --sample 64 [--class 3]
--       [--temperature 1] [--top-k 0] [--top-p 1]
-- The training set's codes are computed once at the start (--train-images limits them); after
-- training, the NLL of the test set's codes (bits per grid). --lr-schedule cosine --warmup N decays
-- the lr as GPTs are trained (linear warm-up, then cosine). --ema D (0: off) keeps an exponential
-- moving average of the weights (gen.optim.EMA) that samples and the test NLL then use.
local gen = require "gen"
local gpt = require "gen.models.gpt"
local autoregressive = require "gen.autoregressive"
local experiment = require "gen.experiment"

local run = experiment.parse("gpt_prior", arg, experiment.lr_schedule_options { epochs = 10, batch = 64, lr = 3e-4, weight_decay = 0.01, dim = 192,
  depth = 4, heads = 6, dropout = 0.1, unconditional = false, temperature = 1.0, top_k = 0, top_p = 1.0,
  train_images = 0, test_images = 10000, encode_batch = 500, ema = 0.0 })
if run.temperature < 0 then experiment.fail(run.script, "option --temperature must be >= 0, got " .. run.temperature) end
if run.top_k < 0 then experiment.fail(run.script, "option --top-k must be >= 0 (0 = off), got " .. run.top_k) end
if not (run.top_p > 0 and run.top_p <= 1) then experiment.fail(run.script, "option --top-p must be in (0, 1], got " .. run.top_p) end
if not (run.ema >= 0 and run.ema < 1) then experiment.fail(run.script, "option --ema must be in [0, 1) (0 = off), got " .. run.ema) end
if run.class > 0 and run.unconditional then experiment.fail(run.script, "option --class needs a class-conditional prior") end

local stage1 = experiment.stage1(run, "vqvae")
if stage1.levels ~= 1 then
  experiment.fail(run.script, string.format("--stage1: the GPT prior models one grid of codes (levels = 1); %s has levels = %d",
    run.stage1, stage1.levels))
end
local gh, gw = stage1.grid[1], stage1.grid[2]
local classes = run.unconditional and 0 or 10
gen.manual_seed(run.seed)
local model = gpt.GPT { vocab = stage1.codebook_size, block_size = gh * gw, dim = run.dim, depth = run.depth,
  heads = run.heads, dropout = run.dropout, classes = classes }
local opt = gen.optim.AdamW(model, { lr = run.lr, betas = { 0.9, 0.95 }, weight_decay = run.weight_decay })
local ema = run.ema > 0 and gen.optim.EMA(model, run.ema) or nil

-- fn() run with the averaged weights in the model when --ema is on
local function with_ema(fn)
  if not ema then return fn() end
  return ema:call(fn)
end

-- The codes {N, gh gw} of the first n images of a split (n = 0: all), encoded once, in batches.
local function codes_of(split, n)
  local ds = gen.data.fashion_mnist { split = split }
  n = n > 0 and math.min(n, #ds) or #ds
  local t0, parts = gen.time(), {}
  gen.no_grad(function()
    for first = 1, n, run.encode_batch do
      local m = math.min(run.encode_batch, n - first + 1)
      local x = gen.core.io.batch_images(ds.images, gen.arange(first, first + m), { range = stage1.range })
      parts[#parts + 1] = stage1:encode_indices(x):view(m, gh * gw)
    end
  end)
  print(string.format("encoded %d %s images to %dx%d codes in %.1f s", n, split, gh, gw, gen.time() - t0))
  return gen.cat(parts, 1), ds.labels:narrow(1, 1, n)
end

local function step(x, y)
  local codes = x:long():view(x:size(1), gh * gw)
  opt:zero_grad()
  local loss = autoregressive.gpt.loss(model, codes, { labels = classes > 0 and y or nil })
  loss:backward()
  opt:step()
  if ema then ema:update() end
  return { loss = loss:item() }
end

local lo, hi = stage1.range[1], stage1.range[2]
local function sample(n, _, draw)
  model:eval()
  local labels = classes > 0 and experiment.class_labels(run, n, classes, draw) or nil
  local codes = with_ema(function()
    return autoregressive.sample(model, n, { labels = labels, temperature = run.temperature, top_k = run.top_k, top_p = run.top_p })
  end)
  model:train()
  local images = stage1:decode_indices(codes:view(n, gh, gw))
  return (images - lo) * (2 / (hi - lo)) - 1, labels
end

local data
if run.sample == 0 then
  -- codes as float32 images {N, 1, gh, gw} (exact below 2^24), so the loader shuffles and batches them
  local codes, labels = codes_of("train", run.train_images)
  data = gen.data.Dataset { images = codes:float():view(-1, 1, gh, gw), labels = labels }
end

experiment.train(run, {
  state = { model = model, optimizer = opt, ema = ema },
  scheduled = { opt },
  data = data,
  losses = { "loss" },
  nrow = classes > 0 and classes or 8,
  step = step,
  sample = sample,
  after = function()
    local codes, labels = codes_of("test", run.test_images)
    local nats = with_ema(function() return autoregressive.gpt.nll(model, codes, { labels = classes > 0 and labels or nil }) end)
    print(string.format("test NLL of the codes: %.4f nats per token, %.2f bits per %dx%d grid (%d test images)", nats,
      nats * gh * gw / math.log(2), gh, gw, codes:size(1)))
  end,
})
