-- Per-image cost against the batch size: forward without autograd and forward+backward of the
-- diffusion UNet (widths 32/64/64 on 1x32x32, as the flow and DDPM examples), the DCGAN generator
-- and discriminator (28x28) and the MLP VAE (784-400-20), at batch 16, 64, 256, 1024 (and 2000 for
-- the UNet forward, the size of a --sample 2000 run). Each (model, batch) runs in a fresh process
-- so that peak RSS is that configuration's own.
--   lua5.4 bench/batch_scaling.lua [THREADS] [MODEL ...]      every configuration, one process each
--   lua5.4 bench/batch_scaling.lua THREADS MODEL MODE BATCH   one configuration (used by the above)
-- Prints "model mode batch ms/image cpu-ms/image peak-RSS-MB" lines: the median wall time of a few
-- calls after a warm-up call (fewer calls at bigger batches), and the process CPU time over the
-- same calls (os.clock), which a host loaded by other jobs inflates less than wall time (use one
-- thread for it to mean time per image).
package.path = "lua/?.lua;lua/?/init.lua;" .. package.path
package.cpath = (os.getenv("GEN_BUILD") or "build") .. "/?.so;" .. package.cpath

local threads = tonumber(arg[1]) or 1
local MODELS = { "unet", "dcgan_g", "dcgan_d", "vae" }
local BATCHES = { 16, 64, 256, 1024 }

if not arg[3] or not tonumber(arg[4]) then
  local models = {}
  for i = 2, #arg do models[#models + 1] = arg[i] end
  if #models == 0 then models = MODELS end
  print(string.format("# threads %d, %s; load: %s", threads,
    io.popen("lscpu | sed -n 's/^Model name:[ ]*//p'"):read("l") or "?", io.popen("uptime"):read("l")))
  print(string.format("%-8s %-8s %6s %10s %10s %8s", "model", "mode", "batch", "ms/image", "cpu ms/img", "RSS MB"))
  for _, m in ipairs(models) do
    for _, mode in ipairs { "forward", "train" } do
      local batches = { table.unpack(BATCHES) }
      if m == "unet" and mode == "forward" then batches[#batches + 1] = 2000 end
      for _, b in ipairs(batches) do
        local p = io.popen(string.format("lua5.4 %s %d %s %s %d", arg[0], threads, m, mode, b))
        io.write(p:read("a"))
        io.stdout:flush()
        p:close()
      end
    end
  end
  return
end

local gen = require "gen"
local model_name, mode, batch = arg[2], arg[3], tonumber(arg[4])
gen.set_num_threads(threads)
gen.manual_seed(0)

local build = {
  unet = function()
    local m = require("gen.models.unet").UNet { channels = 1, widths = { 32, 64, 64 } }
    local x, t = gen.randn(batch, 1, 32, 32), gen.rand(batch)
    return m, function() return m(x, t) end
  end,
  dcgan_g = function()
    local m = require("gen.models.dcgan").Generator { z_dim = 100 }
    local z = gen.randn(batch, 100)
    return m, function() return m(z) end
  end,
  dcgan_d = function()
    local m = require("gen.models.dcgan").Discriminator()
    local x = gen.rand(batch, 1, 28, 28) * 2 - 1
    return m, function() return m(x) end
  end,
  vae = function()
    local m = require("gen.models.vae").MLP { input = 784, hidden = 400, latent = 20 }
    local x = gen.rand(batch, 1, 28, 28)
    return m, function() return (m(x)) end
  end,
}
local model, forward = assert(build[model_name], "unknown model " .. tostring(model_name))()
local function call()
  if mode == "forward" then return gen.no_grad(forward):sum():item() end
  model:zero_grad()
  local y = forward()
  local loss = (y * y):mean()
  loss:backward()
  return loss:item()
end
-- about 32 images' worth of work per sample at small batches, at least 3 samples
local samples = tonumber(os.getenv("GEN_BATCH_SAMPLES")) or math.max(3, math.min(15, (16 * 1024) // (batch * 16)))
call()
local times, c0 = {}, os.clock()
for i = 1, samples do
  local t0 = gen.time()
  call()
  times[i] = gen.time() - t0
end
local cpu = (os.clock() - c0) / samples
table.sort(times)
local median = times[(#times + 1) // 2]
local rss = io.open("/proc/self/status"):read("a"):match("VmHWM:%s+(%d+)")
print(string.format("%-8s %-8s %6d %10.3f %10.3f %8.0f", model_name, mode, batch, 1e3 * median / batch, 1e3 * cpu / batch,
  tonumber(rss) / 1024))
