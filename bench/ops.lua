-- gen side of the foundation benchmarks. Usage: lua5.4 bench/ops.lua THREADS WORKLOAD
-- Prints one line: "<workload> <threads> <median seconds per call> <peak RSS kB>".
package.path = "lua/?.lua;lua/?/init.lua;" .. package.path
package.cpath = (os.getenv("GEN_BUILD") or "build") .. "/?.so;" .. package.cpath
local gen = require "gen"
local threads, name = tonumber(arg[1]), arg[2]
gen.set_num_threads(threads)

local function median(t) table.sort(t); return t[(#t + 1) // 2] end
-- times `calls` calls of f per sample, `samples` samples after one warm-up sample
-- (GEN_BENCH_QUICK=1: a tenth of the calls and 3 samples, for development only)
local quick = os.getenv("GEN_BENCH_QUICK") == "1"
local function bench(f, calls, samples)
  if quick then calls, samples = math.max(1, calls // 10), 3 end
  local times = {}
  for s = 0, samples do
    local t0 = gen.time()
    for _ = 1, calls do f() end
    if s > 0 then times[#times + 1] = (gen.time() - t0) / calls end
  end
  return median(times)
end

local workloads = {}
workloads.add4 = function()
  local a, b = gen.ones(4), gen.ones(4)
  return bench(function() return a + b end, 20000, 15)
end
workloads.add4_grad = function()
  local a, b = gen.ones(4):requires_grad_(), gen.ones(4)
  return bench(function() return a + b end, 20000, 15)
end
workloads.matmul64 = function()
  local a, b = gen.randn(64, 64), gen.randn(64, 64)
  return bench(function() return gen.matmul(a, b) end, 2000, 15)
end
for _, n in ipairs { 256, 512, 1024, 2048 } do
  workloads["sgemm" .. n] = function()
    local a, b = gen.randn(n, n), gen.randn(n, n)
    local calls = math.max(1, math.floor(2e9 / (2 * n ^ 3)))
    return bench(function() return gen.matmul(a, b) end, calls, 10)
  end
end

-- layer workloads, forward + backward (the issue's shapes)
local function fwd_bwd(make)
  local run = make()
  return bench(function()
    local out = run()
    out:backward(gen.ones_like(out))
  end, 1, 10)
end
workloads.conv_s2 = function() -- N=64, 64->128, 14x14, k4 s2 p1
  return fwd_bwd(function()
    local x, w, b = gen.randn(64, 64, 14, 14):requires_grad_(), (gen.randn(128, 64, 4, 4) * 0.05):requires_grad_(), gen.zeros(128):requires_grad_()
    return function() return gen.conv2d(x, w, b, { stride = 2, padding = 1 }) end
  end)
end
workloads.conv_s1 = function() -- N=32, 64->64, 28x28, k3 s1 p1
  return fwd_bwd(function()
    local x, w, b = gen.randn(32, 64, 28, 28):requires_grad_(), (gen.randn(64, 64, 3, 3) * 0.05):requires_grad_(), gen.zeros(64):requires_grad_()
    return function() return gen.conv2d(x, w, b, { padding = 1 }) end
  end)
end
workloads.convT = function() -- N=64, 128->64, 7x7, k4 s2 p1
  return fwd_bwd(function()
    local x, w, b = gen.randn(64, 128, 7, 7):requires_grad_(), (gen.randn(128, 64, 4, 4) * 0.05):requires_grad_(), gen.zeros(64):requires_grad_()
    return function() return gen.conv_transpose2d(x, w, b, { stride = 2, padding = 1 }) end
  end)
end
-- the MLP VAE's encoder layer: 128 x 784 -> 400 with bias, as in a training step (gradients
-- cleared first, like zero_grad), so that the work is the three GEMMs of sgemm_raw's linear mode
-- plus the bias and its gradient
workloads.linear = function()
  local x, w, b = gen.randn(128, 784):requires_grad_(), (gen.randn(400, 784) * 0.05):requires_grad_(), gen.zeros(400):requires_grad_()
  local g = gen.ones(128, 400)
  return bench(function()
    x.grad, w.grad, b.grad = nil, nil, nil
    gen.linear(x, w, b):backward(g)
  end, 20, 10)
end
local function attention(b, h, t, d)
  return function()
    return fwd_bwd(function()
      local q, k, v = gen.randn(b, h, t, d):requires_grad_(), gen.randn(b, h, t, d):requires_grad_(), gen.randn(b, h, t, d):requires_grad_()
      return function() return gen.scaled_dot_product_attention(q, k, v) end
    end)
  end
end
workloads.attn256 = attention(8, 4, 256, 32)
workloads.attn784 = attention(4, 4, 784, 64)

local f = assert(workloads[name], "unknown workload " .. tostring(name))
local seconds = f()
local status = io.open("/proc/self/status"):read("a")
print(string.format("%s %d %.9g %s", name, threads, seconds, status:match("VmHWM:%s+(%d+)")))
