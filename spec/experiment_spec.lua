-- gen.experiment's training loop, run in-process on a toy model: the learning-rate schedules.
local gen = require "gen"
local experiment = require "gen.experiment"
local shell = require "support.shell"

local base = shell.tmpdir()

-- Trains a 4 -> 1 linear layer on 8 random images for the given command line; returns the lr
-- each step ran with (by step number) and the run.
local function lrs_of(argv)
  argv[0] = "toy.lua"
  local run = experiment.parse("toy", argv, experiment.lr_schedule_options { lr = 0.1, batch = 2 })
  gen.manual_seed(0)
  local model = gen.nn.Linear(4, 1)
  local opt = gen.optim.SGD(model, { lr = run.lr })
  local data = gen.data.Dataset { images = gen.rand(8, 1, 2, 2), labels = gen.ones({ 8 }, "int64") }
  local seen = {}
  experiment.train(run, {
    state = { model = model, optimizer = opt },
    scheduled = { opt },
    data = data,
    losses = { "loss" },
    step = function(x, _, k)
      seen[k] = opt.lr
      opt:zero_grad()
      local loss = model(x:view(x:size(1), 4)):pow(2):mean()
      loss:backward()
      opt:step()
      return { loss = loss:item() }
    end,
    sample = function(n) return gen.zeros(n, 1, 2, 2) end,
    nrow = 1,
  })
  return seen, run
end

describe("gen.experiment learning-rate schedules", function()
  it("warms up linearly, decays by a cosine to --min-lr at the last step, and resumes on the same curve", function()
    local total, warmup, min = 6, 2, 0.1
    local seen = lrs_of { "--steps", tostring(total), "--warmup", tostring(warmup), "--lr-schedule", "cosine", "--min-lr",
      tostring(min), "--out", base .. "/a", "--log-every", "1" }
    for k = 1, total do
      local t = k - 1
      local expected = 0.1 * math.min(1, (t + 1) / warmup) * (min + (1 - min) * 0.5 * (1 + math.cos(math.pi * t / (total - 1))))
      assert.near(expected, seen[k], 1e-12)
    end
    assert.near(0.1 * min, seen[total], 1e-12)
    -- stopped after 3 steps and resumed: the same lr at every later step
    lrs_of { "--steps", "3", "--warmup", "2", "--lr-schedule", "cosine", "--min-lr", "0.1", "--out", base .. "/b" }
    local resumed = lrs_of { "--steps", tostring(total), "--warmup", "2", "--lr-schedule", "cosine", "--min-lr", "0.1",
      "--resume", "--out", base .. "/b" }
    assert.is_nil(resumed[3])
    for k = 4, total do assert.near(seen[k], resumed[k], 1e-12) end
  end)

  it("keeps the lr constant by default", function()
    local seen = lrs_of { "--steps", "3", "--out", base .. "/c" }
    for k = 1, 3 do assert.equal(0.1, seen[k]) end
  end)

  it("rejects a negative warm-up, a --min-lr outside [0, 1] and an unknown schedule", function()
    for _, bad in ipairs {
      { { "--warmup", "-1" }, "option --warmup must be >= 0, got -1" },
      { { "--min-lr", "2" }, "option --min-lr must be in [0, 1], got 2" },
      { { "--lr-schedule", "linear" }, "constant|cosine" },
    } do
      local argv = { "--steps", "1", "--out", base .. "/d", table.unpack(bad[1]) }
      local ok, err = pcall(lrs_of, argv)
      assert.is_false(ok)
      assert.truthy(tostring(err):find(bad[2], 1, true), tostring(err))
      assert.truthy(tostring(err):find("toy.lua: ", 1, true), tostring(err))
    end
  end)
end)
