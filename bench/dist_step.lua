-- Data-parallel step times: the DCGAN step and the UNet rectified-flow step under gen.dist, with
-- the share of the step spent waiting for gradient reductions. Run under mpirun; bench/dist.sh
-- alternates np 1 x 2 threads and np 2 x 1 thread.
--   mpirun -np P bin/gen bench/dist_step.lua WORKLOAD GLOBAL_BATCH STEPS THREADS [float|deterministic [BUCKET_MB]]
-- WORKLOAD: dcgan | unet. Prints one line (rank 0): per-step median ms, the median wait for the
-- reductions at the end of backward (ms and % of the step), the time inside the gradient hooks
-- (copies into buckets, starting reductions), and the bytes reduced per step.
local gen = require "gen"
local dist = require "gen.dist"
local workload, global_batch, steps, threads = arg[1], tonumber(arg[2]), tonumber(arg[3]), tonumber(arg[4])
local deterministic = arg[5] == "deterministic"
local bucket_mb = tonumber(arg[6] or "25")
local rank, size = dist.init()
gen.set_num_threads(threads)
local batch = global_batch // size
gen.manual_seed(1 + rank)

local models, step
if workload == "dcgan" then
  local gan, dcgan = require "gen.gan", require "gen.models.dcgan"
  gen.manual_seed(0)
  local G, D = dcgan.Generator { z_dim = 100 }, dcgan.Discriminator()
  local opt_g = gen.optim.Adam(G, { lr = 2e-4, betas = { 0.5, 0.999 } })
  local opt_d = gen.optim.Adam(D, { lr = 2e-4, betas = { 0.5, 0.999 } })
  models = { dist.DataParallel(G, { deterministic = deterministic, bucket_mb = bucket_mb }),
    dist.DataParallel(D, { deterministic = deterministic, bucket_mb = bucket_mb }) }
  local x = gen.rand(batch, 1, 28, 28) * 2 - 1
  step = function() gan.step(G, D, opt_g, opt_d, x, gen.randn(batch, 100)) end
elseif workload == "unet" then
  local unet, dcli = require "gen.models.unet", require "gen.diffusion.cli"
  local run = gen.experiment.parse("unet", { [0] = "bench/dist_step.lua" },
    dcli.defaults { process = "rectified", parameterization = "velocity", sampler = "euler" })
  local d = dcli.build(run)
  gen.manual_seed(0)
  local model = unet.UNet { widths = { 32, 64, 64 }, classes = 10 }
  local opt = gen.optim.AdamW(model, { lr = 2e-4 })
  models = { dist.DataParallel(model, { deterministic = deterministic, bucket_mb = bucket_mb }) }
  local x, y = gen.rand(batch, 1, 32, 32) * 2 - 1, gen.randint(1, 10, { batch })
  step = function()
    opt:zero_grad()
    d.loss(model, x, y, { label_dropout = 0.1 }):backward()
    opt:step()
  end
else
  error("bench/dist_step.lua: workload must be dcgan or unet, got " .. tostring(workload))
end

local bytes = 0
for _, m in ipairs(models) do
  for _, p in ipairs(m.module:parameters()) do bytes = bytes + p:numel() * 4 end
end
local times, waits, hooks = {}, {}, {}
for i = 1, steps + 2 do
  dist.barrier()
  local t0 = gen.time()
  step()
  local dt = gen.time() - t0
  local w, h = 0, 0
  for _, m in ipairs(models) do
    local t = m:take_timings()
    w, h = w + t.wait, h + t.hooks
  end
  if i > 2 then times[#times + 1], waits[#waits + 1], hooks[#hooks + 1] = dt, w, h end -- two warm-up steps
end
local function median(t)
  local s = { table.unpack(t) }
  table.sort(s)
  return s[(#s + 1) // 2]
end
-- The reduction alone, with the ranks already in step (a barrier first): what the wait would be
-- without the imbalance between ranks that a loaded machine adds.
local comm = {}
local buf = gen.zeros(bytes // 4)
local gathered = gen.empty({ size * buf:numel() }) -- reused, as DataParallel reuses its own
for _ = 1, 10 do
  dist.barrier()
  local t0 = gen.time()
  if deterministic then dist.mpi.all_gather(gathered, buf) else dist.all_reduce(buf, "sum") end
  comm[#comm + 1] = gen.time() - t0
end
-- rank 0 reports the slowest rank's median (a step ends when every rank's does)
local stats = gen.tensor({ median(times), median(waits), median(hooks), median(comm) }, "float64")
dist.all_reduce(stats, "max")
local ms, wait, hook_ms, comm_ms = stats[1]:item() * 1e3, stats[2]:item() * 1e3, stats[3]:item() * 1e3, stats[4]:item() * 1e3
if rank == 0 then
  print(string.format("%s np=%d threads=%d global_batch=%d buckets=%gMB%s: %.1f ms/step; end-of-backward wait %.1f ms (%.1f%%), hooks %.1f ms; "
    .. "%.2f MB of gradients, reduced alone in %.1f ms (%.1f%% of the step)", workload, size, threads, global_batch, bucket_mb,
    deterministic and " deterministic" or "", ms, wait, 100 * wait / ms, hook_ms, bytes / 2 ^ 20, comm_ms, 100 * comm_ms / ms))
end
