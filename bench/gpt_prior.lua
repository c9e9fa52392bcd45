-- gen side of bench/twin_gpt.py run alone: the GPT prior's training step and its sampling (with
-- and without the key/value cache), wall and CPU time (os.clock: the process's CPU time, all
-- threads) per iteration; the same shapes as the gpt_prior_* workloads of bench/e2e.lua.
--   lua5.4 bench/gpt_prior.lua [THREADS [ITERS]]
package.path = "lua/?.lua;lua/?/init.lua;" .. package.path
package.cpath = (os.getenv("GEN_BUILD") or "build") .. "/?.so;" .. package.cpath
local gen = require "gen"
local gpt = require "gen.models.gpt"

local threads, iters = tonumber(arg[1] or 1), tonumber(arg[2] or 5)
gen.set_num_threads(threads)
gen.manual_seed(0)
local config = { vocab = 512, block_size = 49, dim = 192, depth = 4, heads = 6, classes = 10, dropout = 0.1 }

local function measure(name, fn, n)
  fn()
  local walls, cpus = {}, {}
  for i = 1, n do
    local w0, c0 = gen.time(), os.clock()
    fn()
    walls[i], cpus[i] = gen.time() - w0, os.clock() - c0
  end
  table.sort(walls)
  table.sort(cpus)
  print(string.format("gen %s: wall %.1f ms, CPU %.1f ms (medians of %d)", name, walls[(n + 1) // 2] * 1e3,
    cpus[(n + 1) // 2] * 1e3, n))
end

local model = gpt.GPT(config)
local opt = gen.optim.AdamW(model, { lr = 3e-4, betas = { 0.9, 0.95 }, weight_decay = 0.01 })
local codes, labels = gen.randint(1, 512, { 64, 49 }), gen.randint(1, 10, { 64 })
measure("step", function()
  opt:zero_grad()
  local loss = gen.autoregressive.gpt.loss(model, codes, { labels = labels })
  loss:backward()
  opt:step()
  return loss:item()
end, iters)
model:eval()
local g = gen.Generator(0)
measure("sample", function() return gen.autoregressive.sample(model, 64, { labels = labels, generator = g }) end, iters)
measure("sample without the cache", function()
  return gen.autoregressive.sample(model, 64, { labels = labels, generator = g, cache = false })
end, math.max(1, iters // 2))
