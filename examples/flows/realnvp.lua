-- RealNVP (Dinh et al., 2017) on Fashion-MNIST padded to 32x32, by exact maximum likelihood.
--   bin/gen examples/flows/realnvp.lua --epochs 10 [--levels 3 --blocks 3 --hidden 64]
--   bin/gen examples/flows/realnvp.lua --sample 10000 --temperature 0.7
-- Reports the test set's bits/dim (over the 784 pixels; see gen.flows.bits_per_dim) and writes a
-- temperature sweep, DIR/temperatures.png (rows at 0.5, 0.7, 0.85, 1.0).
local gen = require "gen"
local flows = require "gen.flows"
local realnvp = require "gen.models.realnvp"
local experiment = require "gen.experiment"

local run = experiment.parse("realnvp", arg, { epochs = 10, batch = 64, lr = 1e-3, warmup = 200, levels = 3, blocks = 3,
  hidden = 64, temperature = 0.7, test = 10000 })
gen.manual_seed(run.seed)
local model = realnvp.RealNVP { levels = run.levels, blocks = run.blocks, hidden = run.hidden }
local opt = gen.optim.Adam(model, { lr = run.lr })
local warmup = gen.optim.schedules.linear_warmup(run.warmup)
local PIXELS = 28 * 28 -- bits are counted over the 28x28 image, not its padding

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
