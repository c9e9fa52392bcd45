-- Smoke runs of the examples: the command-line contract, finite decreasing losses, bitwise
-- resume, reproducible samples. A few steps each, no real training.
local function sh(cmd)
  local p = io.popen(cmd .. " 2>&1")
  local out = p:read("a")
  local ok = p:close()
  return ok, out
end

local function read(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local s = f:read("a")
  f:close()
  return s
end

local base = os.tmpname()
os.remove(base)

describe("examples/gan/dcgan.lua", function()
  it("trains, logs, checkpoints, samples, and resumes bitwise-identically", function()
    local ok, out = sh("bin/gen examples/gan/dcgan.lua --steps 8 --batch 16 --log-every 1 --checkpoint-every 4 --seed 3 --out " .. base .. "/a")
    assert.is_true(ok, out)
    local log = read(base .. "/a/log.csv")
    assert.truthy(log:match("^step,loss_d,loss_g\n"), log)
    local rows = {}
    for line in log:gmatch("[^\n]+") do rows[#rows + 1] = line end
    assert.equal(9, #rows)
    for i = 2, #rows do
      local d, g = rows[i]:match("^%d+,([^,]+),([^,]+)$")
      assert.truthy(tonumber(d) and tonumber(d) == tonumber(d), rows[i])
      assert.truthy(tonumber(g) and tonumber(g) == tonumber(g), rows[i])
    end
    assert.is_true(tonumber(rows[9]:match("^%d+,([^,]+)")) < tonumber(rows[2]:match("^%d+,([^,]+)")),
      "discriminator loss did not decrease: " .. log)
    for _, f in ipairs { "checkpoint.safetensors", "samples.png", "samples.idx", "losses.png" } do
      assert.truthy(read(base .. "/a/" .. f), f .. " missing")
    end
    -- the same run stopped at 4 and resumed reaches the same losses, to the last digit
    assert.is_true(sh("bin/gen examples/gan/dcgan.lua --steps 4 --batch 16 --log-every 1 --checkpoint-every 4 --seed 3 --out " .. base .. "/b"))
    assert.is_true(sh("bin/gen examples/gan/dcgan.lua --steps 8 --batch 16 --log-every 1 --checkpoint-every 4 --seed 3 --resume --out " .. base .. "/b"))
    assert.equal(log, read(base .. "/b/log.csv"))
  end)

  it("writes N samples as IDX, reproducibly", function()
    local ok, out = sh("bin/gen examples/gan/dcgan.lua --sample 10 --out " .. base .. "/a")
    assert.is_true(ok, out)
    local gen = require "gen"
    local s = gen.data.idx.read(base .. "/a/samples.idx")
    assert.same({ 10, 28, 28 }, s.shape)
    assert.equal("uint8", s.dtype)
    local first = read(base .. "/a/samples.idx")
    assert.is_true(sh("bin/gen examples/gan/dcgan.lua --sample 10 --out " .. base .. "/a"))
    assert.equal(first, read(base .. "/a/samples.idx"))
  end)

  it("rejects unknown options", function()
    local ok, out = sh("bin/gen examples/gan/dcgan.lua --bogus 1 --out " .. base .. "/c")
    assert.is_not_true(ok)
    assert.truthy(out:find("unknown option --bogus", 1, true), out)
  end)
end)

describe("every example", function()
  local cases = {
    { "gan/gan", "--loss minimax" }, { "gan/cgan", "" }, { "gan/cgan", "--model dcgan", "cdcgan" },
    { "autoencoder/vae", "--model conv" }, { "diffusion/ddpm", "--sample-steps 2" },
    { "diffusion/rectified_flow", "--sample-steps 2" },
    { "diffusion/ddpm", "--process edm --parameterization edm --sampler heun --schedule karras --sample-steps 2 --adaptive-norm", "edm" },
    { "diffusion/rectified_flow", "--process vp --parameterization v --weighting min_snr --sampler dpmpp_2m --schedule logsnr --sample-steps 2", "vflow" },
  }
  for _, c in ipairs(cases) do
    local name, extra = c[1], c[2]
    local dir = c[3] or name:match("[^/]+$")
    it(name .. " " .. extra .. " trains a few steps and samples to IDX", function()
      local out = base .. "/" .. dir
      local ok, log = sh(string.format("bin/gen examples/%s.lua --steps 3 --batch 8 --log-every 1 --out %s %s", name, out, extra))
      assert.is_true(ok, log)
      local csv = read(out .. "/log.csv")
      local rows = 0
      for line in csv:gmatch("[^\n]+") do
        rows = rows + 1
        if rows > 1 then
          for cell in line:gmatch("[^,]+") do assert.truthy(tonumber(cell) and tonumber(cell) == tonumber(cell), line) end
        end
      end
      assert.equal(4, rows, csv)
      -- the grid is square: 8 x 8, or 10 x 10 (one column per class) for the conditional models
      local conditional = name == "gan/cgan" or name == "diffusion/rectified_flow"
      local side = (conditional and 10 or 8) * (28 + 2) + 2
      assert.same({ 1, side, side }, require("gen").image.load(out .. "/samples.png").shape)
      local class = conditional and " --class 3" or ""
      ok, log = sh(string.format("bin/gen examples/%s.lua --sample 5 --out %s %s%s", name, out, extra, class))
      assert.is_true(ok, log)
      local gen = require "gen"
      local s = gen.data.idx.read(out .. "/samples.idx")
      assert.same({ 5, 28, 28 }, s.shape)
    end)
  end
end)

describe("the diffusion command line", function()
  it("samples one model with several samplers, edits an image and inpaints it, and names bad choices", function()
    local gen = require "gen"
    local out = base .. "/ddpm" -- trained by the runs above
    for _, sampler in ipairs { "ddpm", "heun", "dpmpp_2m" } do
      local ok, log = sh(string.format("bin/gen examples/diffusion/ddpm.lua --sample 2 --sampler %s --sample-steps 2 --out %s", sampler, out))
      assert.is_true(ok, log)
    end
    local img = gen.rand(1, 28, 28)
    gen.image.save(base .. "/init.png", img)
    gen.image.save(base .. "/mask.png", gen.cat({ gen.ones(1, 28, 14), gen.zeros(1, 28, 14) }, 3)) -- keep the left half
    local ok, log = sh(string.format("bin/gen examples/diffusion/ddpm.lua --sample 3 --sample-steps 4 --init-image %s/init.png --mask %s/mask.png"
      .. " --resample 2 --out %s", base, base, out))
    assert.is_true(ok, log)
    local s = gen.data.idx.read(out .. "/samples.idx")
    local want = gen.image.load(base .. "/init.png", { uint8 = true })
    assert.same(want:narrow(3, 1, 14):expand(3, 28, 14):totable(), s:narrow(3, 1, 14):totable())
    ok, log = sh(string.format("bin/gen examples/diffusion/ddpm.lua --sample 2 --sample-steps 4 --init-image %s/init.png --strength 0.3 --out %s", base, out))
    assert.is_true(ok, log)
    -- bad choices, named (checked in-process: the same parse and build the scripts run)
    local experiment, dcli = require "gen.experiment", require "gen.diffusion.cli"
    for _, c in ipairs {
      { { "--sampler", "plms" }, "--sampler must be one of ddpm, ddim, euler, heun, euler_ancestral, dpmpp_2m, euler_maruyama, pc, got 'plms'" },
      { { "--process", "vpsde" }, "--process must be one of vp, ve, edm, rectified, got 'vpsde'" },
      { { "--schedule", "exponential" }, "--schedule must be one of uniform, karras, logsnr, got 'exponential'" },
      { { "--parameterization", "noise" }, "--parameterization must be one of eps, x0, v, score, velocity, edm, got 'noise'" },
      { { "--strength", "0" }, "--strength must be in (0, 1], got 0" },
      { { "--mask", "m.png" }, "--mask needs --init-image" },
    } do
      local ok2, err = pcall(function() dcli.build(experiment.parse("ddpm", c[1], dcli.defaults())) end)
      assert.is_false(ok2)
      assert.truthy(tostring(err):find(c[2], 1, true), err)
    end
    ok, log = sh(string.format("bin/gen examples/diffusion/ddpm.lua --sample 2 --init-image %s/nothing.png --out %s", base, out))
    assert.is_not_true(ok)
    assert.truthy(log:find("--init-image: cannot read", 1, true), log)
  end)
end)

describe("--eval", function()
  it("scores fresh samples against the test set and writes metrics.txt, with agreement for conditional models", function()
    for _, name in ipairs { "gan", "cgan" } do
      local out = base .. "/" .. name -- trained by the runs above
      local ok, log = sh(string.format("bin/gen examples/gan/%s.lua --sample 4 --eval 30 --eval-batch 8 --out %s", name, out))
      assert.is_true(ok, log)
      local line = read(out .. "/metrics.txt")
      assert.truthy(line and line:match("^" .. name .. ": 30 samples"), line)
      local fid, kid = line:match("FID ([%d%.]+)  KID (%-?[%d%.]+)")
      assert.truthy(tonumber(fid) and tonumber(fid) > 0 and tonumber(kid), line)
      assert.equal(name == "cgan", line:match("agreement [%d%.]+%%") ~= nil, line)
      assert.truthy(log:find(line, 1, true), log)
    end
  end)
end)

describe("examples cleanup", function()
  it("removes the runs", function()
    os.execute("rm -rf " .. base)
    assert.is_nil(read(base .. "/a/log.csv"))
  end)
end)
