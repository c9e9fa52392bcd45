-- Run by spec/dist_spec.lua under `mpirun -np 2`: bin/gen spec/support/dist_child.lua MODE OUT
--   collectives  checks every collective's values and errors; writes OUT/collectives.txt (rank 0)
--   train        the deterministic run (support/dist_train.lua) in both reduction modes, with one
--                bucket per parameter, and with a synchronized and a local batch norm; rank 0
--                writes OUT/{float,deterministic,buckets,syncbn,localbn}.safetensors
--   raise        rank 1 raises an error mid-training
--   kill         rank 1 kills itself (SIGKILL) while rank 0 waits in a collective
--   stall        rank 1 stops calling collectives; rank 0's wait times out
--   loop         both ranks reduce forever (until Ctrl-C)
package.path = "spec/?.lua;" .. package.path
local gen = require "gen"
local dist = require "gen.dist"
local mode, out = arg[1], arg[2]
local timeout = tonumber(os.getenv("GEN_DIST_TIMEOUT") or "") or 20
local rank, size = dist.init { timeout = timeout }

if mode == "collectives" then
  local lines = {}
  local function check(name, ok) lines[#lines + 1] = (ok and "ok " or "FAIL ") .. name end
  local function same(t, want)
    local got = t:reshape(-1):totable()
    if #got ~= #want then return false end
    for i = 1, #want do if got[i] ~= want[i] then return false end end
    return true
  end
  check("rank/size", dist.rank() == rank and dist.size() == 2 and size == 2)
  local s = gen.tensor({ rank + 1, 10 * (rank + 1) }); dist.all_reduce(s)
  check("all_reduce sum", same(s, { 3, 30 }))
  local m = gen.tensor({ { rank + 1.0 } }, "float64"); dist.all_reduce(m, "mean")
  check("all_reduce mean float64", same(m, { 1.5 }))
  local x = gen.tensor({ rank, -rank }, "int64"); dist.all_reduce(x, "max")
  check("all_reduce max int64", same(x, { 1, 0 }) and x.dtype == "int64")
  local b = gen.full({ 2, 3 }, rank + 7); dist.broadcast(b, 1)
  check("broadcast from rank 1", same(b, { 8, 8, 8, 8, 8, 8 }))
  local b0 = gen.tensor({ rank }, "uint8"); dist.broadcast(b0)
  check("broadcast uint8 from rank 0", same(b0, { 0 }))
  local g = dist.all_gather(gen.tensor({ { rank, rank + 0.5 } }))
  check("all_gather", same(g, { 0, 0.5, 1, 1.5 }) and table.concat(g.shape, ",") == "2,1,2")
  local rs = dist.reduce_scatter(gen.tensor({ { 1, 2 }, { 3, 4 } }) * (rank + 1), "sum")
  check("reduce_scatter", same(rs, rank == 0 and { 3, 6 } or { 9, 12 }) and table.concat(rs.shape, ",") == "1,2")
  local big = gen.arange(0, 100000):float() * (rank + 1)
  local req = dist.mpi.iall_reduce(big, "mean")
  req:wait()
  check("iall_reduce mean", big[100000]:item() == 99999 * 1.5 and req:test())
  -- the progress thread finishes a started reduction while this thread makes no MPI call
  local flying = gen.ones(300000) * (rank + 1)
  local started, t0 = dist.mpi.iall_reduce(flying, "sum"), gen.time()
  while flying[300000]:item() ~= 3 and gen.time() - t0 < 10 do end
  check("progress thread", dist.progress_thread() == (os.getenv("GEN_DIST_PROGRESS") ~= "0") and flying[300000]:item() == 3)
  started:wait()
  local function err(f, ...)
    local ok, e = pcall(f, ...)
    return not ok and tostring(e) or ""
  end
  check("error non-contiguous", err(dist.all_reduce, gen.zeros(2, 3):t()):find("gen.dist.all_reduce: argument 1: the tensor {3,2} is not contiguous", 1, true))
  check("error op", err(dist.all_reduce, gen.zeros(2), "prod"):find('op must be "sum", "mean" or "max", got "prod"', 1, true))
  check("error mean int", err(dist.all_reduce, gen.zeros({ 2 }, "int64"), "mean"):find('op "mean" needs a float tensor, got int64', 1, true))
  check("error not a tensor", err(dist.broadcast, 3):find("gen.dist.broadcast: argument 1: expected a tensor, got number", 1, true))
  check("error root", err(dist.broadcast, gen.zeros(2), 2):find("root must be a rank in 0..1, got 2", 1, true))
  check("error scatter shape", err(dist.reduce_scatter, gen.zeros(3)):find("the input {3} must split into 2 equal parts", 1, true))
  local w = gen.zeros(2):requires_grad_()
  check("error recorded result", err(dist.all_reduce, w * 2):find("is the result of an op that autograd recorded", 1, true))
  check("error DataParallel", err(dist.DataParallel, 5):find("gen.dist.DataParallel: expected a gen.nn module, got number", 1, true))
  dist.barrier()
  if rank == 0 then
    local f = assert(io.open(out .. "/collectives.txt", "w"))
    f:write(table.concat(lines, "\n"), "\n")
    f:close()
  end
elseif mode == "train" then
  local train = require "support.dist_train"
  local runs = {
    float = { deterministic = false },
    deterministic = { deterministic = true },
    buckets = { deterministic = false, bucket_mb = 1e-4 }, -- one bucket per parameter
    syncbn = { deterministic = false, batch_norm = "sync" },
    localbn = { deterministic = false, batch_norm = "local" },
  }
  for _, name in ipairs({ "float", "deterministic", "buckets", "syncbn", "localbn" }) do
    local o = runs[name]
    local p = train { dist = dist, rank = rank, ranks = size, global_batch = 16, steps = 20, deterministic = o.deterministic,
      bucket_mb = o.bucket_mb, batch_norm = o.batch_norm }
    -- every rank holds the same parameters (and, unless batch norm is local, running statistics)
    local all = dist.all_gather(p)
    local differ = (all:select(1, 1) - all:select(1, 2)):abs():max():item()
    assert(differ == 0 or name == "localbn", "ranks hold different parameters")
    if rank == 0 then gen.save(out .. "/" .. name .. ".safetensors", { params = p }) end
  end
elseif mode == "raise" then
  local t = gen.ones(4)
  dist.all_reduce(t)
  if rank == 1 then error("boom on purpose") end
  dist.all_reduce(t)
elseif mode == "kill" then
  dist.barrier()
  if rank == 1 then
    local f = assert(io.open("/proc/self/stat"))
    local pid = f:read("a"):match("^(%d+)")
    f:close()
    os.execute("kill -9 " .. pid)
  end
  dist.all_reduce(gen.ones(4))
elseif mode == "loop" then -- until interrupted: rank 0 writes OUT/looping once both ranks run
  dist.barrier()
  if rank == 0 then io.open(out .. "/looping", "w"):close() end
  local t = gen.ones(4)
  for _ = 1, 1e9 do dist.all_reduce(t, "mean") end
elseif mode == "stall" then
  dist.barrier()
  if rank == 1 then os.execute("sleep 30") end
  dist.all_reduce(gen.ones(4))
end
