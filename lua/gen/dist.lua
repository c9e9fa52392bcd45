--- gen.dist: data-parallel training over MPI (Open MPI), on one machine or a cluster.
--
--   mpirun -np 4 bin/gen train.lua
--
--   local dist = require "gen.dist"
--   local rank, size = dist.init()               -- ranks are numbered 0..size-1, as MPI does
--   dist.all_reduce(t, "mean")                   -- in place: "sum" | "mean" | "max"
--   dist.broadcast(t, 0)                         -- in place, from rank 0
--   local all = dist.all_gather(t)               -- {size, ...t.shape}, in rank order
--   local part = dist.reduce_scatter(t, "sum")   -- this rank's 1/size of the reduction along dim 1
--   dist.barrier()
--
--   local model = dist.DataParallel(net, {bucket_mb = 25, deterministic = false, batch_norm = "local"})
--   local loss = gen.mse_loss(model(x), y)       -- called like net (which it trains)
--   loss:backward()                              -- gradients come back averaged over the ranks
--   opt:step()
--
-- The collectives are gen.mpi (csrc/dist/mpi.c), built when Open MPI's mpicc is present. Every wait
-- has a deadline (init{timeout = s}, 300 s by default): a rank that died or stopped calling
-- collectives turns into an error instead of a hang. A script run by bin/gen that ends with an
-- error on one rank stops the whole job (dist.abort), with a message naming that rank.
local gen = require "gen"

local found, mpi = pcall(require, "gen.mpi")
if not found then
  error("gen.dist: this build of gen has no MPI support. Install Open MPI (`make deps`, or `apt-get install "
    .. "openmpi-bin libopenmpi-dev`) and rebuild with `make`; then run scripts under `mpirun -np N bin/gen ...`.\n("
    .. tostring(mpi):gsub("\n.*", "") .. ")", 0)
end

local M = { mpi = mpi }

local function fail(fname, msg, level) error("gen.dist." .. fname .. ": " .. msg, (level or 1) + 1) end

--- Starts MPI (once; later calls return the same numbers). opts.timeout: seconds a collective
-- waits for the other ranks before raising (300). opts.progress (default true, or
-- GEN_DIST_PROGRESS=0 for false): a thread that advances non-blocking collectives while they are
-- in flight, so DataParallel's reductions run during backward (needs MPI_THREAD_MULTIPLE, which
-- Open MPI grants; without it the gradient hooks test the reductions instead). Returns rank, size.
function M.init(opts)
  opts = opts or {}
  if type(opts) ~= "table" then fail("init", "expected an options table, got " .. type(opts), 2) end
  local timeout = opts.timeout or tonumber(os.getenv("GEN_DIST_TIMEOUT") or "")
  if timeout ~= nil and (type(timeout) ~= "number" or timeout <= 0) then
    fail("init", "timeout must be a positive number of seconds, got " .. tostring(timeout), 2)
  end
  local progress = opts.progress
  if progress == nil then progress = os.getenv("GEN_DIST_PROGRESS") ~= "0" end
  if type(progress) ~= "boolean" then fail("init", "progress must be true or false, got " .. tostring(progress), 2) end
  return mpi.init(timeout, progress)
end

--- Whether a progress thread advances non-blocking collectives (see init).
function M.progress_thread() return mpi.progress_thread() end

function M.initialized() return mpi.initialized() end
function M.rank() return mpi.rank() end
function M.size() return mpi.size() end
--- True on rank 0, and in a process that never started MPI: the one that writes files.
function M.is_main() return not mpi.initialized() or mpi.rank() == 0 end
function M.barrier() return mpi.barrier() end
M.all_reduce = mpi.all_reduce
M.broadcast = mpi.broadcast
M.finalize = mpi.finalize

--- A new tensor {size, ...t.shape} holding every rank's t, in rank order.
function M.all_gather(t)
  if not gen.is_tensor(t) then fail("all_gather", "argument 1: expected a tensor, got " .. type(t), 2) end
  local out = gen.empty({ mpi.size(), table.unpack(t.shape) }, t.dtype)
  return mpi.all_gather(out, t)
end

--- The reduction of every rank's t ({size * m, ...}) split along dim 1: this rank's {m, ...} part.
function M.reduce_scatter(t, op)
  if not gen.is_tensor(t) then fail("reduce_scatter", "argument 1: expected a tensor, got " .. type(t), 2) end
  local p, shape = mpi.size(), t.shape
  if #shape < 1 or shape[1] % p ~= 0 then
    fail("reduce_scatter", string.format("the input {%s} must split into %d equal parts along its first dimension",
      table.concat(shape, ","), p), 2)
  end
  shape[1] = shape[1] // p
  return mpi.reduce_scatter(gen.empty(shape, t.dtype), t, op)
end

--- Ends every rank of the job with status code after printing message (a rank that cannot go on
-- calls this, so the others do not wait for it).
function M.abort(code, message) mpi.abort(code or 1, message) end

--- Called by bin/gen when a script ends with an error: in a job of several ranks, prints the
-- error with this rank's number and stops all of them.
function M.on_error(err)
  if not mpi.initialized() or mpi.size() < 2 then return end
  mpi.abort(1, string.format("gen.dist: rank %d of %d failed; stopping all ranks:\n%s", mpi.rank(), mpi.size(), tostring(err)))
end

-- ---------------------------------------------------------------------------------------------
-- DataParallel: one replica of the model per rank, each on its shard of the batch. Gradients are
-- averaged over the ranks in buckets of about bucket_mb megabytes, filled in reverse registration
-- order (the order backward finishes them): a bucket's reduction starts, non-blocking, as soon as
-- the last of its gradients is final (gen.autograd.register_grad_ready_hook), so it overlaps the
-- rest of backward; the backward-end hook waits for all of them and writes the averages back into
-- .grad before backward() returns. MPI progresses a started reduction only inside MPI calls: the
-- progress thread of gen.mpi makes them (see init); without it, each later hook tests the
-- reductions in flight.
--
-- deterministic = true gathers every rank's bucket and sums them in rank order 0, 1, ..., p-1 on
-- every rank (instead of MPI's reduction, whose order depends on the algorithm MPI picks), so the
-- averaged gradients are bitwise the same run to run. Over p ranks it moves p / 2 times the bytes
-- of a ring all-reduce.
--
-- batch_norm = "local" (the default) keeps batch-norm statistics per rank: each rank normalizes its
-- own batch, as PyTorch's DDP does, and checkpoints keep rank 0's running averages. "sync" makes
-- every BatchNorm1d/2d of the model normalize with the statistics of the global batch (as
-- PyTorch's SyncBatchNorm): the per-channel sums and sums of squares are all-reduced in forward,
-- and their gradients in backward (gen.autograd.gradient_hook), so p ranks with batch B/p compute
-- what one process with batch B does. Outside training or grad mode (sampling on rank 0 alone)
-- the layers normalize locally. All ranks must run the same graph: the same parameters get
-- gradients in the same backward passes.
-- ---------------------------------------------------------------------------------------------

local DataParallel = {}
DataParallel.__name = "gen.dist.DataParallel"
DataParallel.__call = function(self, ...) return self.module(...) end
DataParallel.__index = function(self, k)
  local v = rawget(DataParallel, k)
  if v ~= nil then return v end
  local m = rawget(self, "module")
  local f = m[k]
  if type(f) == "function" then return function(_, ...) return f(m, ...) end end
  return f
end
DataParallel.__tostring = function(self)
  return string.format("DataParallel(%d ranks, %d buckets%s)\n%s", self.size, #self.buckets,
    self.deterministic and ", deterministic" or "", tostring(self.module))
end

local function launch(self, b)
  if b.launched then return end
  b.launched = true
  if self.size == 1 then return end
  if self.deterministic then
    b.gathered = b.gathered or gen.empty({ self.size * b.numel }, b.buffer.dtype)
    b.request = mpi.iall_gather(b.gathered, b.buffer)
  else
    b.request = mpi.iall_reduce(b.buffer, "sum")
  end
  self.in_flight[#self.in_flight + 1] = b
end

local function progress(self)
  for _, b in ipairs(self.in_flight) do b.request:test() end
end

local function on_ready(self, b, slot, p)
  local t0 = gen.time()
  if self.size > 1 then b.buffer:narrow(1, slot.offset + 1, slot.numel):copy_(p.grad:view(-1)) end
  b.ready = b.ready + 1
  slot.has_grad = true
  if not self.progress_thread then progress(self) end
  if b.ready == #b.slots then launch(self, b) end
  self.hook_seconds = self.hook_seconds + (gen.time() - t0)
end

-- Waits for every started bucket and writes the averages back into the gradients.
local function finish(self, ok)
  if not ok then -- backward failed part way: forget this round (the error ends the job anyway)
    for _, b in ipairs(self.buckets) do
      b.ready, b.launched, b.request = 0, false, nil
      for _, s in ipairs(b.slots) do s.has_grad = false end
    end
    self.in_flight = {}
    return
  end
  for _, b in ipairs(self.buckets) do -- a bucket some of whose parameters got no gradient
    if b.ready > 0 and not b.launched then
      for _, s in ipairs(b.slots) do
        if not s.has_grad and self.size > 1 then b.buffer:narrow(1, s.offset + 1, s.numel):zero_() end
      end
      launch(self, b)
    end
  end
  local t0 = gen.time()
  for _, b in ipairs(self.in_flight) do
    b.request:wait()
    if self.deterministic then
      local parts = b.gathered:view(self.size, b.numel)
      b.buffer:copy_(parts:select(1, 1))
      for r = 2, self.size do b.buffer:add_(parts:select(1, r)) end
    end
    b.buffer:div_(self.size)
    for _, s in ipairs(b.slots) do
      if s.has_grad then s.param.grad:view(-1):copy_(b.buffer:narrow(1, s.offset + 1, s.numel)) end
    end
  end
  self.wait_seconds = self.wait_seconds + (gen.time() - t0)
  for _, b in ipairs(self.buckets) do
    b.ready, b.launched, b.request = 0, false, nil
    for _, s in ipairs(b.slots) do s.has_grad = false end
  end
  self.in_flight = {}
end

-- The sum over ranks as a differentiable op: the value is the all-reduced sum; backward all-reduces
-- the gradient (d/dt_r of sum_s L_s through T = sum_r t_r is sum_s dL_s/dT).
local reduce_grad
local function all_reduce_sum(t)
  reduce_grad = reduce_grad or gen.autograd.gradient_hook(function(g)
    local c = g:contiguous():clone()
    mpi.all_reduce(c, "sum")
    return c
  end)
  local total = gen.no_grad(function() return mpi.all_reduce(t:detach():contiguous():clone(), "sum") end)
  return reduce_grad(t + (total - t:detach()))
end

-- Batch norm over the global batch: x {N, C, ...} normalized per channel with the mean and the
-- (biased) variance of every rank's x, E[x^2] - E[x]^2 from the all-reduced sums.
local function sync_batch_norm(m, x, original)
  if not m.training or not gen.is_grad_enabled() or mpi.size() == 1 then return original(m, x) end
  local c = x:size(2)
  local rows = x:transpose(1, 2):reshape(c, -1) -- {C, M}
  local m_local = rows:size(2)
  local stats = all_reduce_sum(gen.cat({ rows:sum(2), (rows * rows):sum(2), gen.full({ 1 }, m_local, x.dtype) }))
  local n = stats[2 * c + 1]:item()
  local mean = stats:narrow(1, 1, c) / n
  local var = stats:narrow(1, c + 1, c) / n - mean * mean
  local shape = { 1, c }
  for _ = 3, x:dim() do shape[#shape + 1] = 1 end
  local y = (x - mean:view(shape)) * (var + m.eps):rsqrt():view(shape)
  if m.weight then y = y * m.weight:view(shape) + m.bias:view(shape) end
  if m.running_mean then
    gen.no_grad(function()
      local k = m.momentum
      m.running_mean:mul_(1 - k):add_(mean:detach() * k)
      m.running_var:mul_(1 - k):add_(var:detach() * (k * n / math.max(n - 1, 1)))
      m.num_batches_tracked:add_(1)
    end)
  end
  return y
end

local function batch_norms(m, out)
  local name = m.__name
  if name == "BatchNorm1d" or name == "BatchNorm2d" then out[#out + 1] = m end
  for _, c in ipairs(m:named_children()) do batch_norms(c[2], out) end
  return out
end

--- gen.dist.DataParallel(model [, {bucket_mb = 25, deterministic = false, batch_norm = "local"}]):
-- see above. MPI must be started (gen.dist.init). Parameters and buffers are broadcast from rank 0
-- here.
function M.DataParallel(model, opts)
  opts = opts or {}
  if type(model) ~= "table" or type(model.parameters) ~= "function" then
    fail("DataParallel", "expected a gen.nn module, got " .. type(model), 2)
  end
  if type(opts) ~= "table" then fail("DataParallel", "expected an options table, got " .. type(opts), 2) end
  local bucket_mb = opts.bucket_mb or 25
  if type(bucket_mb) ~= "number" or bucket_mb <= 0 then
    fail("DataParallel", "bucket_mb must be a positive number, got " .. tostring(bucket_mb), 2)
  end
  local bn = opts.batch_norm or "local"
  if bn ~= "local" and bn ~= "sync" then fail("DataParallel", 'batch_norm must be "local" or "sync", got ' .. tostring(bn), 2) end
  if not mpi.initialized() then fail("DataParallel", "MPI is not running (call gen.dist.init() first)", 2) end
  local self = setmetatable({ module = model, size = mpi.size(), rank = mpi.rank(), deterministic = opts.deterministic == true,
    buckets = {}, in_flight = {}, handles = {}, wait_seconds = 0, hook_seconds = 0, progress_thread = mpi.progress_thread() },
    DataParallel)
  gen.no_grad(function()
    for _, p in ipairs(model:parameters()) do mpi.broadcast(p, 0) end
    for _, b in ipairs(model:buffers()) do mpi.broadcast(b, 0) end
  end)
  -- buckets in reverse registration order, a new one per dtype change or when full
  local params = model:parameters()
  local limit = math.floor(bucket_mb * 1024 * 1024)
  local cur
  for i = #params, 1, -1 do
    local p = params[i]
    local bytes = p:numel() * (p.dtype == "float64" and 8 or 4)
    if not cur or cur.dtype ~= p.dtype or (cur.bytes > 0 and cur.bytes + bytes > limit) then
      cur = { dtype = p.dtype, bytes = 0, numel = 0, slots = {}, ready = 0, launched = false }
      self.buckets[#self.buckets + 1] = cur
    end
    cur.slots[#cur.slots + 1] = { param = p, offset = cur.numel, numel = p:numel(), has_grad = false }
    cur.numel, cur.bytes = cur.numel + p:numel(), cur.bytes + bytes
  end
  for _, b in ipairs(self.buckets) do
    if self.size > 1 then b.buffer = gen.zeros({ b.numel }, b.dtype) end
    for _, s in ipairs(b.slots) do
      self.handles[#self.handles + 1] = gen.autograd.register_grad_ready_hook(s.param, function(p) on_ready(self, b, s, p) end)
    end
  end
  self.handles[#self.handles + 1] = gen.autograd.register_backward_end_hook(function(ok) finish(self, ok) end)
  self.synced = {}
  if bn == "sync" then
    for _, m in ipairs(batch_norms(model, {})) do
      local original = getmetatable(m).forward
      rawset(m, "forward", function(mm, x) return sync_batch_norm(mm, x, original) end)
      self.synced[#self.synced + 1] = m
    end
  end
  return self
end

--- Stops averaging this model's gradients (removes the hooks) and synchronizing its batch norms.
function DataParallel:close()
  for _, h in ipairs(self.handles) do h:remove() end
  for _, m in ipairs(self.synced) do rawset(m, "forward", nil) end
  self.handles, self.synced = {}, {}
end

--- Seconds spent on communication since the last call (then reset): wait, in the backward-end hook
-- (waiting for the reductions, writing the averages back); hooks, in the gradient-ready hooks
-- (copies into buckets, starting and testing reductions), which run inside backward.
function DataParallel:take_timings()
  local t = { wait = self.wait_seconds, hooks = self.hook_seconds }
  self.wait_seconds, self.hook_seconds = 0, 0
  return t
end

return M
