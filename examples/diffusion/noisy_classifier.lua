-- A classifier of noisy images for classifier guidance (Dhariwal & Nichol, 2021): trained on the
-- x_t of a diffusion process at its training times, it steers any model of that process towards
-- a class (bin/gen examples/diffusion/ddpm.lua --classifier DIR --class K --classifier-scale S).
--   bin/gen examples/diffusion/noisy_classifier.lua --steps 3000            (the VP process, as ddpm.lua)
--   bin/gen examples/diffusion/noisy_classifier.lua --process rectified --out runs/flow_classifier
-- Its samples.png shows test images as it sees them, from clean (top row) to pure noise (bottom).
local gen = require "gen"
local experiment = require "gen.experiment"
local dcli = require "gen.diffusion.cli"
local guidance = require "gen.diffusion.guidance"
local noisy_classifier = require "gen.models.noisy_classifier"

local run = experiment.parse("noisy_classifier", arg, dcli.defaults { steps = 3000, batch = 64, lr = 3e-4,
  test_images = 1000 })
local d = dcli.build(run)
gen.manual_seed(run.seed)
local model = noisy_classifier.NoisyClassifier { classes = 10 }
local opt = gen.optim.AdamW(model, { lr = run.lr, weight_decay = 0.05 })

local function step(x, y)
  opt:zero_grad()
  local loss, accuracy = guidance.classifier_loss(model, d.process, x, y)
  loss:backward()
  opt:step()
  return { loss = loss:item(), accuracy = accuracy }
end

-- Test images noised to 8 levels evenly spaced in the process's time, one level per row.
local test = gen.data.fashion_mnist { split = "test" }
local function noised(n, rows)
  local x = gen.pad(test.images:narrow(1, 1, n):float():view(n, 1, 28, 28) / 127.5 - 1, { 2, 2, 2, 2 }, "constant", -1)
  local times = d.process:uniform_times(rows)
  local out = {}
  for r = 1, rows do
    local t = times[rows - r + 1]
    local sigma = d.process:sigma(t)
    out[r] = (x + gen.randn_like(x) * sigma) * d.process:scale(t)
  end
  return out, times
end

local function sample(n)
  local per_row = math.max(1, n // 8)
  local rows = noised(per_row, 8)
  return gen.cat(rows):narrow(1, 1, n):narrow(3, 3, 28):narrow(4, 3, 28):clamp(-1, 1)
end

-- Test accuracy at the 8 levels on --test-images images: how much class information survives the noise.
local function report()
  model:eval()
  local n = math.min(run.test_images, test.images:size(1))
  local rows, times = noised(n, 8)
  local parts = {}
  for r, x in ipairs(rows) do
    local t = times[8 - r + 1]
    local logits = gen.no_grad(model, x, gen.full({ n }, d.process:net_time(t)))
    local acc = logits:argmax(2):eq(test.labels:narrow(1, 1, n)):float():mean():item()
    parts[#parts + 1] = string.format("sigma %.3g: %.1f%%", d.process:sigma(t), 100 * acc)
  end
  print(string.format("noisy classifier test accuracy (%d images) at %s", n, table.concat(parts, ", ")))
  model:train()
end

experiment.train(run, {
  state = { model = model, optimizer = opt, noise = dcli.settings(run, dcli.noise_keys) },
  data = gen.data.fashion_mnist { split = "train" },
  transform = { pad = 2 },
  losses = { "loss", "accuracy" },
  step = step,
  sample = sample,
  after = report,
})
