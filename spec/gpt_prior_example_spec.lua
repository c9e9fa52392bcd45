-- Smoke run of examples/autoregressive/gpt_prior.lua on a tiny stage 1 trained for two steps: the
-- command-line contract (log, checkpoint, samples, bitwise resume, --sample with --class and
-- top-k/top-p), and the refusal of a stage 1 of the wrong kind.
local gen = require "gen"

local shell = require "support.shell"
local sh, read = shell.sh, shell.read
local base = shell.tmpdir()
local stage1 = base .. "/vqvae"
local tiny = "--batch 8 --dim 32 --depth 1 --heads 2 --train-images 128 --test-images 32 --encode-batch 50 --seed 2"

describe("examples/autoregressive/gpt_prior.lua", function()
  setup(function()
    local ok, out = sh(string.format("bin/gen examples/autoregressive/vqvae.lua --steps 2 --batch 8 --codebook-size 32 " ..
      "--code-dim 8 --width 16 --test-images 16 --out %s", stage1))
    assert(ok, out)
  end)

  it("trains on the stage 1's codes, logs, resumes bitwise and samples", function()
    local out = base .. "/prior"
    local ok, log = sh(string.format("bin/gen examples/autoregressive/gpt_prior.lua --stage1 %s --steps 4 --log-every 1 %s --out %s",
      stage1, tiny, out))
    assert.is_true(ok, log)
    assert.truthy(log:find("encoded 128 train images to 7x7 codes", 1, true), log)
    assert.truthy(log:match("test NLL of the codes: [%d.]+ nats per token, [%d.]+ bits per 7x7 grid %(32 test images%)"), log)
    local csv = read(out .. "/log.csv")
    assert.truthy(csv:match("^step,loss\n"), csv)
    local losses = {}
    for v in csv:gmatch("\n%d+,([^\n]+)") do losses[#losses + 1] = tonumber(v) end
    assert.equal(4, #losses, csv)
    for _, v in ipairs(losses) do assert.truthy(v == v and v > 0 and v < 2 * math.log(32), csv) end
    for _, f in ipairs { "checkpoint.safetensors", "samples.png", "samples.idx" } do assert.truthy(read(out .. "/" .. f), f) end
    -- the same run stopped at 2 and resumed reaches the same losses, to the last digit
    local b = out .. "_b"
    assert.is_true(sh(string.format("bin/gen examples/autoregressive/gpt_prior.lua --stage1 %s --steps 2 --log-every 1 %s --out %s", stage1, tiny, b)))
    assert.is_true(sh(string.format("bin/gen examples/autoregressive/gpt_prior.lua --stage1 %s --steps 4 --log-every 1 --resume %s --out %s",
      stage1, tiny, b)))
    assert.equal(csv, read(b .. "/log.csv"))
    -- --sample N: decoded images, reproducible, with a class and filtered sampling
    local cmd = string.format("bin/gen examples/autoregressive/gpt_prior.lua --stage1 %s --sample 6 --class 3 --top-k 8 --top-p 0.9 " ..
      "--temperature 0.8 %s --out %s", stage1, tiny, out)
    ok, log = sh(cmd)
    assert.is_true(ok, log)
    local s = gen.data.idx.read(out .. "/samples.idx")
    assert.same({ 6, 28, 28 }, s.shape)
    assert.equal("uint8", s.dtype)
    local first = read(out .. "/samples.idx")
    assert.is_true(sh(cmd))
    assert.equal(first, read(out .. "/samples.idx"))
  end)

  it("--ema: the checkpoint keeps the averaged weights beside the last ones, and a resumed run matches bitwise", function()
    local out, b = base .. "/prior_ema", base .. "/prior_ema_b"
    local run = "bin/gen examples/autoregressive/gpt_prior.lua --stage1 %s --ema 0.9 --log-every 1 %s --steps %d %s --out %s"
    local ok, log = sh(string.format(run, stage1, tiny, 4, "", out))
    assert.is_true(ok, log)
    local t = gen.load(out .. "/checkpoint.safetensors")
    local shadow, weight
    for name, x in pairs(t) do
      if name:match("^ema/shadow/.*head.weight$") then shadow = x end
      if name:match("^model/.*head.weight$") then weight = x end
    end
    assert.truthy(shadow and weight, "the checkpoint holds the model and its average")
    assert.is_true((shadow - weight):abs():max():item() > 0, "the average differs from the last weights")
    assert.is_true(sh(string.format(run, stage1, tiny, 2, "", b)))
    assert.is_true(sh(string.format(run, stage1, tiny, 4, "--resume", b)))
    assert.equal(read(out .. "/log.csv"), read(b .. "/log.csv"))
    assert.equal(read(out .. "/samples.idx"), read(b .. "/samples.idx"))
  end)

  it("refuses a stage 1 of the wrong kind and bad sampling options", function()
    local prior = base .. "/prior"
    local cases = {
      { "--stage1 " .. prior, "--stage1: expected a vqvae checkpoint" },
      { "--stage1 " .. base .. "/nothing", "--stage1: expected a vqvae checkpoint, found no file" },
      { "", "option --stage1 DIR is required" },
      { "--stage1 " .. stage1 .. " --top-p 0", "option --top-p must be in (0, 1], got 0" },
      { "--stage1 " .. stage1 .. " --top-p 1.5", "option --top-p must be in (0, 1], got 1.5" },
      { "--stage1 " .. stage1 .. " --top-k -1", "option --top-k must be >= 0" },
      { "--stage1 " .. stage1 .. " --ema 1", "option --ema must be in [0, 1) (0 = off), got 1" },
      { "--stage1 " .. stage1 .. " --temperature -1", "option --temperature must be >= 0" },
      { "--stage1 " .. stage1 .. " --class 3 --unconditional", "option --class needs a class-conditional prior" },
    }
    for _, c in ipairs(cases) do
      local ok, out = sh(string.format("bin/gen examples/autoregressive/gpt_prior.lua --steps 1 %s --out %s/bad", c[1], base))
      assert.is_not_true(ok, c[1])
      assert.truthy(out:find(c[2], 1, true), c[1] .. ": " .. out)
      assert.falsy(out:find("traceback", 1, true), out)
    end
  end)
end)
