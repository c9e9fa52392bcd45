-- gen side of the foundation benchmarks. Usage: lua5.4 bench/ops.lua THREADS WORKLOAD
-- Prints one line: "<workload> <threads> <median seconds per call> <peak RSS kB>".
package.path = "lua/?.lua;lua/?/init.lua;" .. package.path
package.cpath = "build/?.so;" .. package.cpath
local gen = require "gen"
local threads, name = tonumber(arg[1]), arg[2]
gen.set_num_threads(threads)

local function median(t) table.sort(t); return t[(#t + 1) // 2] end
-- times `calls` calls of f per sample, `samples` samples after one warm-up sample
local function bench(f, calls, samples)
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

local f = assert(workloads[name], "unknown workload " .. tostring(name))
local seconds = f()
local status = io.open("/proc/self/status"):read("a")
print(string.format("%s %d %.9g %s", name, threads, seconds, status:match("VmHWM:%s+(%d+)")))
