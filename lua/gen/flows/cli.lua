--- gen.flows.cli: the training the flow examples (glow, realnvp) share on top of gen.experiment:
-- Adam with a linear warm-up, gradient norms clipped at 50, the loss in bits per dimension of the
-- 28x28 image (not its padding to 32x32), samples at --temperature, and after training the test
-- set's bits/dim (DIR/bpd.txt) and a temperature sweep (DIR/temperatures.png).
local gen = require "gen"
local flows = require "gen.flows"
local experiment = require "gen.experiment"

local M = {}

local PIXELS = 28 * 28 -- bits are counted over the 28x28 image, not its padding

--- The options every flow example takes, with the example's own over them.
function M.defaults(own)
  local d = { epochs = 10, batch = 64, lr = 1e-3, warmup = 200, temperature = 0.7, test = 10000 }
  for k, v in pairs(own or {}) do d[k] = v end
  return d
end

--- train(run, model): trains (or samples from) a flow built from run's options.
function M.train(run, model)
  local opt = gen.optim.Adam(model, { lr = run.lr })
  local warmup = gen.optim.schedules.linear_warmup(run.warmup)

  local function step(x, _, t)
    opt.lr = run.lr * warmup(t - 1)
    opt:zero_grad()
    local loss = flows.bits_per_dim(model, x, { dims = PIXELS }):mean()
    loss:backward()
    gen.optim.clip_grad_norm(model:parameters(), 50)
    opt:step()
    return { bpd = loss:item() }
  end

  -- samples at --temperature, cropped back to 28x28, in [-1, 1]
  local function sample(n) return flows.to_pixels(model:sample(n, { temperature = run.temperature }), 2) * 2 - 1 end

  local test = gen.data.fashion_mnist { split = "test" }
  experiment.train(run, {
    state = { model = model, optimizer = opt },
    data = gen.data.fashion_mnist { split = "train" },
    transform = { range = { 0, 255 }, pad = 2 },
    losses = { "bpd" },
    step = step,
    sample = sample,
    after = function()
      local images = test.images:narrow(1, 1, math.min(run.test, test.images:size(1)))
      local bpd = flows.test_bits_per_dim(model, images, { pad = 2, dims = PIXELS, generator = gen.Generator(0) })
      local line = string.format("test bits/dim: %.4f (%d test images, 8-bit, dequantized)", bpd, images:size(1))
      print(line)
      local f = assert(io.open(run.out .. "/bpd.txt", "w"))
      f:write(line, "\n")
      f:close()
      flows.temperature_grid(model, run.out .. "/temperatures.png", { crop = 2 })
    end,
  })
end

return M
