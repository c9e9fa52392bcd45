-- gen.dist: gradient-ready hooks and sharded loading in this process; the collectives,
-- DataParallel's equivalence with one process, --dist in an example and the fault paths under
-- `mpirun -np 2` (spec/support/dist_child.lua), on loopback.
local gen = require "gen"
local train = require "support.dist_train"

local dir = os.tmpname()
os.remove(dir)
os.execute("mkdir -p " .. dir)

-- Under make asan, mpirun itself runs without the sanitizer preload and the ranks get it back.
-- ASan and UBSan check every rank; LeakSanitizer checks the ranks of runs marked check_leaks (with
-- the slow unwinder, which Open MPI's suppressions in support/lsan.supp need: it costs ~15 s a run),
-- and not the others (the fault runs end in MPI_Abort, which leaves everything allocated).
local preload = os.getenv("LD_PRELOAD") or ""
local asan = preload:find("libasan") ~= nil
local function mpirun(np, args, env, check_leaks)
  local sanitizer = ""
  if asan then
    sanitizer = check_leaks and "LSAN_OPTIONS=$LSAN_OPTIONS:fast_unwind_on_malloc=0"
      or "ASAN_OPTIONS=detect_leaks=0:abort_on_error=1"
  end
  local cmd = string.format("env LD_PRELOAD= OMP_NUM_THREADS=1 %s %s timeout 120 mpirun --allow-run-as-root --oversubscribe "
    .. "-np %d %s bin/gen %s 2>&1", sanitizer, env or "", np, asan and ('-x LD_PRELOAD="' .. preload .. '"') or "", args)
  local t0 = gen.time()
  local p = io.popen(cmd)
  local out = p:read("a")
  local ok = p:close()
  return ok, out, gen.time() - t0
end

local function read(path)
  local f = assert(io.open(path))
  local s = f:read("a")
  f:close()
  return s
end

describe("gradient-ready hooks", function()
  it("fire once per backward, after a leaf's last contribution, before backward ends", function()
    local w = gen.randn(3, 3):requires_grad_()
    local b = gen.randn(3):requires_grad_()
    local events, seen = {}, {}
    local hw = gen.autograd.register_grad_ready_hook(w, function(t)
      events[#events + 1] = "w"
      seen.w = t.grad:clone()
    end)
    local hb = gen.autograd.register_grad_ready_hook(b, function() events[#events + 1] = "b" end)
    local he = gen.autograd.register_backward_end_hook(function(ok) events[#events + 1] = ok and "end" or "failed" end)
    local x = gen.randn(4, 3)
    local h = gen.tanh(gen.linear(x, w, b))
    local y = gen.linear(h, w, b) -- w and b feed two nodes: the hooks wait for both
    y:sum():backward()
    assert.same({ "w", "b", "end" }, events) -- the first linear node gives both their last part
    assert.equal(0, (seen.w - w.grad):abs():max():item()) -- the hook saw the final gradient
    -- a second backward fires again; removed hooks stop firing
    events = {}
    hb:remove()
    gen.linear(x, w, b):sum():backward()
    assert.same({ "w", "end" }, events)
    hw:remove(); he:remove()
    events = {}
    gen.linear(x, w, b):sum():backward()
    assert.same({}, events)
  end)

  it("a leaf that receives no gradient never fires; an error in a hook fails backward cleanly", function()
    local w = gen.randn(2, 2):requires_grad_()
    local unused = gen.randn(2):requires_grad_()
    local fired = false
    local h1 = gen.autograd.register_grad_ready_hook(unused, function() fired = true end)
    local h2 = gen.autograd.register_grad_ready_hook(w, function() error("hook says no") end)
    local ends = {}
    local h3 = gen.autograd.register_backward_end_hook(function(ok) ends[#ends + 1] = ok end)
    local ok, err = pcall(function() (w * 2):sum():backward() end)
    assert.is_false(ok)
    assert.matches("in a gradient hook: .*hook say?s no", tostring(err))
    assert.is_false(fired)
    assert.same({ false }, ends)
    h1:remove(); h2:remove(); h3:remove()
    w.grad = nil
    ;(w * 2):sum():backward() -- the engine is usable again
    assert.equal(2, w.grad[1][1]:item())
  end)

  it("gradient_hook: y = h(x) is x, and backward passes dy through the hook (gradcheck with the identity)", function()
    local seen
    local h = gen.autograd.gradient_hook(function(g)
      seen = g:clone()
      return g * 3
    end)
    local x = gen.tensor({ 1, 2, 3 }):requires_grad_()
    local y = h(x * 2)
    assert.equal(0, (y - x * 2):abs():max():item())
    y:sum():backward()
    assert.same({ 1, 1, 1 }, seen:totable())
    assert.same({ 6, 6, 6 }, x.grad:totable())
    local id = gen.autograd.gradient_hook(function() end) -- nil: the gradient goes on unchanged
    assert.is_true(gen.testing.gradcheck(function(a) return gen.tanh(id(a * a)) end, { gen.randn(2, 3) }))
    local bad = gen.autograd.gradient_hook(function() return gen.zeros(2) end)
    local z = gen.zeros(3):requires_grad_()
    local ok, err = pcall(function() bad(z):sum():backward() end)
    assert.is_false(ok)
    assert.matches("a gradient hook returned float32 {2} for a gradient float32 {3}", err)
    h:remove(); id:remove(); bad:remove()
    assert.has_error(function() h(x) end, "gen.autograd.gradient_hook: this hook was removed")
    assert.has_error(function() gen.autograd.gradient_hook(1) end, "gen.autograd.gradient_hook: expected a function, got number")
  end)

  it("bad arguments are errors naming the function", function()
    assert.has_error(function() gen.autograd.register_grad_ready_hook(3, print) end,
      "gen.autograd.register_grad_ready_hook: argument 1 must be a tensor, got number")
    assert.has_error(function() gen.autograd.register_grad_ready_hook(gen.zeros(1), 3) end,
      "gen.autograd.register_grad_ready_hook: argument 2 must be a function, got number")
    local y = gen.zeros(1):requires_grad_() * 2
    local ok, err = pcall(gen.autograd.register_grad_ready_hook, y, print)
    assert.is_false(ok)
    assert.matches("only a leaf tensor can be watched", err)
    assert.has_error(function() gen.autograd.register_backward_end_hook("x") end,
      "gen.autograd.register_backward_end_hook: expected a function, got string")
  end)
end)

describe("sharded DataLoader", function()
  local n = 50
  local ds = gen.data.Dataset { images = gen.arange(0, n):view(n, 1, 1, 1):byte(), labels = gen.arange(1, n + 1) }
  local function loader(rank, ranks, bs)
    return gen.data.DataLoader(ds, { batch_size = bs, drop_last = true, seed = 9, rank = rank, ranks = ranks,
      transform = { range = { 0, 255 }, flip = true } })
  end

  it("gives 3 ranks disjoint shards of each global batch, together the batches of one process", function()
    local one = loader(0, 1, 12)
    local shards = { loader(0, 3, 4), loader(1, 3, 4), loader(2, 3, 4) }
    assert.equal(#one, #shards[1]) -- 50 // 12 = 4 global batches
    for epoch = 1, 2 do
      local its = {}
      for r = 1, 3 do its[r] = shards[r]:iter { epoch = epoch } end
      local seen, count = {}, 0
      for x, y in one:iter { epoch = epoch } do
        local xs, ys = {}, {}
        for r = 1, 3 do xs[r], ys[r] = its[r]() end
        assert.equal(0, (gen.cat(xs) - x):abs():max():item())
        assert.equal(0, (gen.cat(ys) - y):abs():max():item())
        for _, l in ipairs(gen.cat(ys):totable()) do
          assert.is_nil(seen[l]) -- disjoint, within and across batches
          seen[l], count = true, count + 1
        end
      end
      for r = 1, 3 do assert.is_nil(its[r]()) end
      assert.equal(48, count) -- the epoch's 4 x 12, the 2 left over dropped as without shards
    end
  end)

  it("covers the epoch when it divides evenly, and restarts mid-epoch", function()
    local seen = {}
    for r = 0, 1 do
      for _, y in loader(r, 2, 5):iter { epoch = 3 } do
        for _, l in ipairs(y:totable()) do
          assert.is_nil(seen[l])
          seen[l] = true
        end
      end
    end
    for i = 1, n do assert.is_true(seen[i]) end
    local full, later = {}, {}
    for _, y in loader(1, 2, 5):iter { epoch = 3 } do full[#full + 1] = y end
    for _, y in loader(1, 2, 5):iter { epoch = 3, start = 4 } do later[#later + 1] = y end
    assert.equal(#full - 3, #later)
    for i, y in ipairs(later) do assert.equal(0, (y - full[i + 3]):abs():max():item()) end
  end)

  it("refuses shards it cannot make", function()
    assert.has_error(function() gen.data.DataLoader(ds, { batch_size = 4, seed = 1, rank = 0, ranks = 2 }) end,
      "gen.data.DataLoader: a sharded loader (ranks > 1) needs drop_last = true: every rank must get a full batch")
    assert.has_error(function() gen.data.DataLoader(ds, { batch_size = 4, drop_last = true, rank = 0, ranks = 2 }) end,
      "gen.data.DataLoader: a sharded loader (ranks > 1) needs {seed = n}: every rank must draw the same permutation")
    assert.has_error(function() gen.data.DataLoader(ds, { batch_size = 4, drop_last = true, seed = 1, rank = 2, ranks = 2 }) end,
      "gen.data.DataLoader: rank must be an integer in 0..1, got 2")
    assert.has_error(function() gen.data.DataLoader(ds, { ranks = 0 }) end, "gen.data.DataLoader: ranks must be a positive integer, got 0")
  end)
end)

describe("gen.dist over MPI (mpirun -np 2)", function()
  it("without the MPI module, requiring gen.dist says how to get it", function()
    local saved_cpath, saved_dist, saved_mpi = package.cpath, package.loaded["gen.dist"], package.loaded["gen.mpi"]
    package.cpath, package.loaded["gen.dist"], package.loaded["gen.mpi"] = "", nil, nil
    local ok, err = pcall(require, "gen.dist")
    package.cpath, package.loaded["gen.dist"], package.loaded["gen.mpi"] = saved_cpath, saved_dist, saved_mpi
    assert.is_false(ok)
    assert.matches("gen.dist: this build of gen has no MPI support. Install Open MPI %(`make deps`", err)
  end)

  it("collectives give the right values and name the function in errors", function()
    local ok, out = mpirun(2, "spec/support/dist_child.lua collectives " .. dir, nil, true)
    assert.is_true(ok, out)
    local report = read(dir .. "/collectives.txt")
    assert.is_nil(report:find("FAIL"), report)
    local _, count = report:gsub("ok ", "")
    assert.equal(18, count, report)
  end)

  it("20 steps on 2 ranks with batch B/2 each equal 1 process with batch B; deterministic mode bitwise run to run", function()
    local ref = train { global_batch = 16, steps = 20 }
    local init = train { global_batch = 16, steps = 0 }
    assert.is_true((ref - init):abs():max():item() > 0.05) -- training moved the parameters
    local ok, out = mpirun(2, "spec/support/dist_child.lua train " .. dir)
    assert.is_true(ok, out)
    local first = {}
    for _, name in ipairs({ "float", "deterministic", "buckets" }) do
      first[name] = gen.load(dir .. "/" .. name .. ".safetensors").params
      assert.is_true((first[name] - ref):abs():max():item() < 2e-6, name) -- float32 summation order only
    end
    -- batch norm: synchronized, 2 x B/2 normalize like 1 x B (parameters and running statistics);
    -- local statistics do not
    local ref_bn = train { global_batch = 16, steps = 20, batch_norm = "sync" }
    local sync = gen.load(dir .. "/syncbn.safetensors").params
    local loc = gen.load(dir .. "/localbn.safetensors").params
    assert.is_true((sync - ref_bn):abs():max():item() < 2e-6)
    assert.is_true((loc - ref_bn):abs():max():item() > 1e-3)
    -- again without the progress thread (the gradient hooks test the reductions): the same bits
    ok, out = mpirun(2, "spec/support/dist_child.lua train " .. dir, "GEN_DIST_PROGRESS=0")
    assert.is_true(ok, out)
    local again = gen.load(dir .. "/deterministic.safetensors").params
    assert.equal(0, (again - first.deterministic):abs():max():item())
  end)

  it("an example trains with --dist on rank 0's files, and --resume refuses another number of ranks", function()
    local out_dir = dir .. "/dcgan"
    local ok, out = mpirun(2, "examples/gan/dcgan.lua --dist --steps 2 --batch 8 --threads 1 --log-every 1 --out " .. out_dir)
    assert.is_true(ok, out)
    local log = read(out_dir .. "/log.csv")
    assert.matches("^step,loss_d,loss_g\n1,[%d.e-]+,[%d.e-]+\n2,", log)
    assert.equal(2, gen.load(out_dir .. "/checkpoint.safetensors") and gen.checkpoint.load(out_dir .. "/checkpoint.safetensors").dist_world_size)
    local p = io.popen("bin/gen examples/gan/dcgan.lua --resume --steps 3 --out " .. out_dir .. " 2>&1; echo status=$?")
    local msg = p:read("a")
    p:close()
    assert.matches("status=2", msg)
    assert.matches("was written by a run on 2 ranks; resume it with the same number %(mpirun %-np 2 ... %-%-dist%), not 1", msg)
    ok, out = mpirun(2, "examples/gan/dcgan.lua --dist --resume --steps 3 --batch 8 --threads 1 --log-every 1 --out " .. out_dir)
    assert.is_true(ok, out)
    assert.matches("resumed from .* at step 2", out)
    local _, resumed = out:gsub("resumed from", "")
    assert.equal(1, resumed) -- rank 0 alone prints
    assert.matches("\n3,", read(out_dir .. "/log.csv"))
  end)

  it("a rank that raises, dies or stalls ends the job with an error naming the rank, within the timeout", function()
    local ok, out, seconds = mpirun(2, "spec/support/dist_child.lua raise " .. dir, "GEN_DIST_TIMEOUT=5")
    assert.is_falsy(ok)
    assert.matches("gen.dist: rank 1 of 2 failed; stopping all ranks:\n.*boom on purpose", out)
    assert.is_true(seconds < 30, tostring(seconds))
    ok, out, seconds = mpirun(2, "spec/support/dist_child.lua kill " .. dir, "GEN_DIST_TIMEOUT=5")
    assert.is_falsy(ok)
    assert.matches("process rank 1 .* exited on signal 9", out)
    assert.is_true(seconds < 30, tostring(seconds))
    ok, out, seconds = mpirun(2, "spec/support/dist_child.lua stall " .. dir, "GEN_DIST_TIMEOUT=1")
    assert.is_falsy(ok)
    assert.matches("gen.dist: rank 0 of 2 failed.*gen.dist.all_reduce: rank 0 of 2 waited 1 s for the other ranks", out)
    assert.is_true(seconds < 30, tostring(seconds))
  end)

  it("Ctrl-C (SIGINT to the job's process group) stops every rank", function()
    os.remove(dir .. "/looping")
    local script = string.format([[
unset LD_PRELOAD
OMP_NUM_THREADS=1 setsid mpirun --allow-run-as-root --oversubscribe -np 2 %s bin/gen spec/support/dist_child.lua loop %s >%s/loop.log 2>&1 &
pid=$!
i=0; while [ ! -f %s/looping ] && [ $i -lt 600 ]; do sleep 0.1; i=$((i+1)); done
kill -INT -$pid
i=0; while kill -0 $pid 2>/dev/null && [ $i -lt 300 ]; do sleep 0.1; i=$((i+1)); done
if kill -0 $pid 2>/dev/null; then echo still-running; kill -KILL -$pid; else echo stopped; fi
sleep 0.5
left=$(pgrep -f "dist_child.lua loop %s")
if [ -n "$left" ]; then echo ranks-left; kill -KILL $left; else echo no-ranks-left; fi
]], asan and ('-x LD_PRELOAD="' .. preload .. '" -x ASAN_OPTIONS=detect_leaks=0:abort_on_error=1') or "", dir, dir, dir, dir)
    local f = assert(io.open(dir .. "/interrupt.sh", "w"))
    f:write(script)
    f:close()
    local p = io.popen("sh " .. dir .. "/interrupt.sh")
    local out = p:read("a")
    p:close()
    assert.matches("stopped", out)
    assert.matches("no%-ranks%-left", out)
  end)
end)
