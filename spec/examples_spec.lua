-- Smoke runs of the examples: the command-line contract, finite decreasing losses, bitwise
-- resume, reproducible samples. A few steps each, no real training.
local gen = require "gen"
local shell = require "support.shell"
local sh, read = shell.sh, shell.read
local base = shell.tmpdir()

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
    local s = gen.data.idx.read(base .. "/a/samples.idx")
    assert.same({ 10, 28, 28 }, s.shape)
    assert.equal("uint8", s.dtype)
    local first = read(base .. "/a/samples.idx")
    assert.is_true(sh("bin/gen examples/gan/dcgan.lua --sample 10 --out " .. base .. "/a"))
    assert.equal(first, read(base .. "/a/samples.idx"))
  end)

  it("trains with the gradient penalties on (R1 lazily; WGAN-GP with critic iterations; hinge)", function()
    local function losses_of(dir, header)
      local log = read(dir .. "/log.csv")
      assert.truthy(log:find("^" .. header .. "\n"), log)
      local n = 0
      for line in log:gmatch("[^\n]+") do
        if not line:find("^step") then
          n = n + 1
          for v in line:gmatch("[^,]+") do assert.truthy(tonumber(v) and tonumber(v) == tonumber(v) and math.abs(tonumber(v)) < 1e6, line) end
        end
      end
      return n
    end
    local common = " --steps 3 --batch 8 --log-every 1 --seed 5 --out " .. base
    local ok, out = sh("bin/gen examples/gan/dcgan.lua --r1 10 --r1-every 2" .. common .. "/r1")
    assert.is_true(ok, out)
    assert.equal(3, losses_of(base .. "/r1", "step,loss_d,loss_g,r1"))
    ok, out = sh("bin/gen examples/gan/dcgan.lua --loss wgan --gp 10 --critic-iters 2" .. common .. "/gp")
    assert.is_true(ok, out)
    assert.equal(3, losses_of(base .. "/gp", "step,loss_d,loss_g,gp"))
    -- with --gp the discriminator defaults to layer norm (no batch statistics), otherwise batch norm
    local function d_running_stats(dir)
      local n = 0
      for name in pairs(gen.load(dir .. "/checkpoint.safetensors")) do
        if name:find("^D/") and name:find("running_mean", 1, true) then n = n + 1 end
      end
      return n
    end
    assert.equal(0, d_running_stats(base .. "/gp"))
    assert.equal(1, d_running_stats(base .. "/r1"))
    ok, out = sh("bin/gen examples/gan/dcgan.lua --d-norm group --steps 1 --out " .. base .. "/bad")
    assert.is_not_true(ok)
    assert.truthy(out:find("--d-norm", 1, true) and out:find("auto|batch|layer|none", 1, true), out)
    ok, out = sh("bin/gen examples/gan/dcgan.lua --beta1 1.5 --steps 1 --out " .. base .. "/bad")
    assert.is_not_true(ok)
    assert.truthy(out:find("--beta1 and --beta2 must be in [0, 1), got 1.5 and 0.999", 1, true), out)
    ok, out = sh("bin/gen examples/gan/dcgan.lua --loss hinge --steps 0 --critic-iters 0 --out " .. base .. "/bad")
    assert.is_not_true(ok)
    assert.truthy(out:find("--critic-iters must be at least 1", 1, true), out)
  end)

  it("rejects unknown options", function()
    local ok, out = sh("bin/gen examples/gan/dcgan.lua --bogus 1 --out " .. base .. "/c")
    assert.is_not_true(ok)
    assert.truthy(out:find("unknown option --bogus", 1, true), out)
  end)
end)

describe("examples/gan/stylegan.lua", function()
  local tiny = "--batch 8 --width 4 --z-dim 8 --mapping-layers 2 --log-every 1 --checkpoint-every 2 --seed 5"
  it("trains, writes its figures, resumes bitwise-identically and samples with truncation", function()
    local ok, out = sh("bin/gen examples/gan/stylegan.lua --steps 4 " .. tiny .. " --out " .. base .. "/sga")
    assert.is_true(ok, out)
    local log = read(base .. "/sga/log.csv")
    assert.truthy(log:match("^step,loss_d,loss_g\n"), log)
    for _, f in ipairs { "checkpoint.safetensors", "samples.png", "samples.idx", "style_mixing.png", "truncation.png", "interpolation.png" } do
      assert.truthy(read(base .. "/sga/" .. f), f .. " missing")
    end
    assert.is_true(sh("bin/gen examples/gan/stylegan.lua --steps 2 " .. tiny .. " --out " .. base .. "/sgb"))
    assert.is_true(sh("bin/gen examples/gan/stylegan.lua --steps 4 --resume " .. tiny .. " --out " .. base .. "/sgb"))
    assert.equal(log, read(base .. "/sgb/log.csv"))
    ok, out = sh("bin/gen examples/gan/stylegan.lua --sample 5 --psi 0.7 " .. tiny .. " --out " .. base .. "/sga")
    assert.is_true(ok, out)
    assert.same({ 5, 28, 28 }, require("gen").data.idx.read(base .. "/sga/samples.idx").shape)
  end)

  it("--style adain --resolution 32 trains on padded images and samples 28x28", function()
    local ok, out = sh("bin/gen examples/gan/stylegan.lua --steps 2 --style adain --resolution 32 " .. tiny .. " --out " .. base .. "/sgc")
    assert.is_true(ok, out)
    ok, out = sh("bin/gen examples/gan/stylegan.lua --sample 3 --style adain --resolution 32 " .. tiny .. " --out " .. base .. "/sgc")
    assert.is_true(ok, out)
    assert.same({ 3, 28, 28 }, require("gen").data.idx.read(base .. "/sgc/samples.idx").shape)
  end)

  it("--r1 runs the lazy R1 penalty, or says it needs double backward", function()
    local ok, out = sh("bin/gen examples/gan/stylegan.lua --steps 2 --r1 10 --r1-every 2 " .. tiny .. " --out " .. base .. "/sgd")
    if require("gen.gan.stylegan").r1_available() then
      assert.is_true(ok, out)
    else
      assert.is_not_true(ok)
      assert.truthy(out:find("--r1 needs gen.autograd.grad", 1, true), out)
    end
  end)
end)

describe("every example", function()
  local cases = {
    { "gan/gan", "--loss minimax" }, { "gan/cgan", "" }, { "gan/cgan", "--model dcgan", "cdcgan" },
    { "autoencoder/vae", "--model conv" }, { "diffusion/ddpm", "--sample-steps 2" },
    { "autoencoder/vae", "--likelihood discretized --clip 200 --iw 3 --test-images 20", "vae_discretized" },
    { "diffusion/rectified_flow", "--sample-steps 2" },
    { "diffusion/ddpm", "--process edm --parameterization edm --sampler heun --schedule karras --sample-steps 2 --adaptive-norm", "edm" },
    { "diffusion/rectified_flow", "--process vp --parameterization v --weighting min_snr --sampler dpmpp_2m --schedule logsnr --sample-steps 2", "vflow" },
    { "diffusion/ddpm", "--learn-variance --betas cosine --sampler ddpm --sample-steps 3", "iddpm" },
    { "diffusion/noisy_classifier", "--test-images 16" },
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
      local s = gen.data.idx.read(out .. "/samples.idx")
      assert.same({ 5, 28, 28 }, s.shape)
    end)
  end
end)

describe("the diffusion command line", function()
  it("samples one model with several samplers, edits an image and inpaints it, and names bad choices", function()
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
    -- classifier guidance by the noisy classifier trained above; a wrong checkpoint is refused
    ok, log = sh(string.format("bin/gen examples/diffusion/ddpm.lua --sample 2 --sample-steps 2 --classifier %s/noisy_classifier --class 4"
      .. " --classifier-scale 2 --out %s", base, out))
    assert.is_true(ok, log)
    ok, log = sh(string.format("bin/gen examples/diffusion/ddpm.lua --sample 2 --classifier %s --out %s", out, out))
    assert.is_not_true(ok)
    assert.truthy(log:find("--classifier: " .. out .. "/checkpoint.safetensors is not a noisy classifier for this run", 1, true), log)
    ok, log = sh(string.format("bin/gen examples/diffusion/ddpm.lua --sample 2 --classifier %s/noisy_classifier --betas cosine --out %s/iddpm"
      .. " --learn-variance", base, base))
    assert.is_not_true(ok)
    assert.truthy(log:find("it was trained with --betas linear, not cosine: --betas linear", 1, true), log)
    -- the checkpoint records what its network means
    ok, log = sh(string.format("bin/gen examples/diffusion/ddpm.lua --sample 2 --process edm --parameterization edm --out %s", out))
    assert.is_not_true(ok)
    assert.truthy(log:find("it was trained with --process vp, not edm: --process vp", 1, true), log)
    ok, log = sh(string.format("bin/gen examples/diffusion/ddpm.lua --sample 2 --betas cosine --out %s/iddpm", base))
    assert.is_not_true(ok)
    assert.truthy(log:find("it was trained with --learn-variance true, not false: add --learn-variance", 1, true), log)
    -- improved DDPM's model (trained above): learned-variance sampling and its bound in bits/dim
    ok, log = sh(string.format("bin/gen examples/diffusion/ddpm.lua --learn-variance --betas cosine --sample 2 --sampler ddpm"
      .. " --sample-steps 3 --bound 2 --bound-steps 3 --out %s/iddpm", base))
    assert.is_true(ok, log)
    local bpd, prior, kl, l0 = log:match("variational bound on 2 test images: ([%d.]+) bits/dim %(3 random steps of 1000,"
      .. " learned variance, [%d.]+ s%); L_prior ([%d.]+) %+ L_1..L_999 ([%d.]+) %+ L_0 ([%d.]+)")
    bpd = tonumber(bpd)
    assert.is_true(bpd ~= nil and bpd > 0 and bpd < 1000, log)
    assert.near(bpd, tonumber(prior) + tonumber(kl) + tonumber(l0), 2e-4)
    -- the same network's bound with a fixed variance: its mean alone, on the same noise
    ok, log = sh(string.format("bin/gen examples/diffusion/ddpm.lua --learn-variance --betas cosine --sample 1 --sample-steps 1"
      .. " --bound 2 --bound-steps 3 --bound-variance beta --out %s/iddpm", base))
    assert.is_true(ok, log)
    local fixed, fixed_kl = log:match("variational bound on 2 test images: ([%d.]+) bits/dim %(3 random steps of 1000,"
      .. " beta variance, [%d.]+ s%); L_prior [%d.]+ %+ L_1..L_999 ([%d.]+)")
    assert.is_true(tonumber(fixed) ~= nil and tonumber(fixed) ~= bpd and tonumber(fixed_kl) ~= tonumber(kl), log)
    -- a later chunk of the test set: images 2 and 3 (image 2 is the second of the run above)
    ok, log = sh(string.format("bin/gen examples/diffusion/ddpm.lua --learn-variance --betas cosine --sample 1 --sample-steps 1"
      .. " --bound 2 --bound-steps 3 --bound-offset 1 --out %s/iddpm", base))
    assert.is_true(ok, log)
    local later = tonumber(log:match("variational bound on 2 test images %(2 to 3%): ([%d.]+) bits/dim"))
    assert.is_true(later ~= nil and later > 0 and later ~= bpd, log)
    ok, log = sh(string.format("bin/gen examples/diffusion/ddpm.lua --learn-variance --betas cosine --sample 1 --sample-steps 1"
      .. " --bound 2 --bound-offset 10000 --out %s/iddpm", base))
    assert.is_not_true(ok)
    assert.truthy(log:find("option --bound-offset 10000 skips all 10000 test images", 1, true), log)
    -- bad choices, named (checked in-process: the same parse and build the scripts run)
    local experiment, dcli = require "gen.experiment", require "gen.diffusion.cli"
    for _, c in ipairs {
      { { "--sampler", "plms" }, "--sampler must be one of ddpm|ddim|euler|heun|euler_ancestral|dpmpp_2m|euler_maruyama|pc, got 'plms'" },
      { { "--process", "vpsde" }, "--process must be one of vp|ve|edm|rectified, got 'vpsde'" },
      { { "--schedule", "exponential" }, "--schedule must be one of uniform|karras|logsnr|linear|cosine, got 'exponential'" },
      { { "--parameterization", "noise" }, "--parameterization must be one of eps|x0|v|score|velocity|edm, got 'noise'" },
      { { "--strength", "0" }, "--strength must be in (0, 1], got 0" },
      { { "--mask", "m.png" }, "--mask needs --init-image" },
      { { "--learn-variance", "--process", "edm" }, "--learn-variance needs --process vp and --parameterization eps, x0 or v, got edm and eps" },
      { { "--bound", "10", "--parameterization", "score" }, "--bound needs --process vp and --parameterization eps, x0 or v, got vp and score" },
      { { "--bound", "10", "--bound-variance", "learned" }, "--bound-variance learned needs a network trained with --learn-variance" },
      { { "--bound-variance", "large" }, "--bound-variance must be one of auto|learned|beta|posterior, got 'large'" },
      { { "--bound-offset", "-3" }, "--bound-offset must be a whole number >= 0, got -3" },
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

describe("autoencoder examples", function()
  local tiny_mae = "--dim 16 --depth 1 --heads 2 --decoder-dim 16 --decoder-depth 1 --decoder-heads 2"
  local cases = {
    { "ae", "" }, { "dae", "--noise mask --level 0.5" }, { "mae", "--mask-ratio 0.75 " .. tiny_mae },
  }
  for _, c in ipairs(cases) do
    local name, extra = c[1], c[2]
    it(name .. ".lua trains with decreasing loss, writes its files and probe.txt, resumes bitwise, reconstructs", function()
      local out = base .. "/ae_" .. name
      local common = string.format("--batch 16 --log-every 1 --checkpoint-every 4 --seed 2 --test-images 64 %s", extra)
      local cmd = string.format("bin/gen examples/autoencoder/%s.lua --steps 8 %s --probe --probe-train 200 --probe-test 100 --out %s",
        name, common, out)
      local ok, log = sh(cmd)
      assert.is_true(ok, log)
      local csv = read(out .. "/log.csv")
      local losses = {}
      for v in csv:gmatch("\n%d+,([^\n]+)") do losses[#losses + 1] = tonumber(v) end
      assert.equal(8, #losses, csv)
      for _, v in ipairs(losses) do assert.truthy(v == v and v < math.huge, csv) end
      local function mean(a) return (losses[a] + losses[a + 1] + losses[a + 2] + losses[a + 3]) / 4 end
      assert.is_true(mean(5) < mean(1), "loss did not decrease: " .. csv)
      for _, f in ipairs { "checkpoint.safetensors", "reconstructions.png", "losses.png", "samples.png", "probe.txt" } do
        assert.truthy(read(out .. "/" .. f), f .. " missing")
      end
      local probe = read(out .. "/probe.txt")
      assert.truthy(probe:match("linear probe [%d.]+%%  kNN %(k = 20, cosine%) [%d.]+%%"), probe)
      assert.truthy(log:match("test %(64 images%): MSE"), log)
      -- stopped at 4 and resumed: the same losses to the last digit
      local b = out .. "_b"
      assert.is_true(sh(string.format("bin/gen examples/autoencoder/%s.lua --steps 4 %s --out %s", name, common, b)))
      assert.is_true(sh(string.format("bin/gen examples/autoencoder/%s.lua --steps 8 %s --resume --out %s", name, common, b)))
      assert.equal(csv, read(b .. "/log.csv"))
      -- --sample N: N reconstructions of test images, three rows per band of up to 8
      ok, log = sh(string.format("bin/gen examples/autoencoder/%s.lua --sample 5 %s --out %s", name, extra, out))
      assert.is_true(ok, log)
      assert.same({ 5, 28, 28 }, require("gen").data.idx.read(out .. "/samples.idx").shape)
      local rows = name == "ae" and 4 or 3
      assert.same({ 1, rows * 30 + 2, 8 * 30 + 2 }, require("gen").image.load(out .. "/reconstructions.png").shape)
    end)
  end
end)

describe("examples/flows", function()
  local tiny = {
    glow = "--levels 2 --depth 1 --hidden 8 --test 16",
    realnvp = "--levels 2 --blocks 1 --hidden 8 --test 16",
  }
  for _, name in ipairs { "glow", "realnvp" } do
    it(name .. " trains, reports test bits/dim, writes the temperature sweep, samples at a temperature", function()
      local out = base .. "/" .. name
      local ok, log = sh(string.format("bin/gen examples/flows/%s.lua --steps 3 --batch 8 --log-every 1 %s --out %s", name, tiny[name], out))
      assert.is_true(ok, log)
      local bpd = tonumber(log:match("test bits/dim: ([%d.]+)"))
      assert.truthy(bpd and bpd > 0 and bpd < 20, log)
      assert.truthy(read(out .. "/bpd.txt"):find("test bits/dim", 1, true))
      local csv = read(out .. "/log.csv")
      assert.truthy(csv:match("^step,bpd\n"), csv)
      for v in csv:gmatch("\n%d+,([^\n]+)") do assert.truthy(tonumber(v) and tonumber(v) > 0, csv) end
      -- four rows of eight 28x28 samples (0.5, 0.7, 0.85, 1.0), padding 2 between tiles
      local grid = gen.image.load(out .. "/temperatures.png")
      assert.same({ 1, 4 * 30 + 2, 8 * 30 + 2 }, grid.shape)
      ok, log = sh(string.format("bin/gen examples/flows/%s.lua --sample 5 --temperature 0.5 %s --out %s", name, tiny[name], out))
      assert.is_true(ok, log)
      assert.same({ 5, 28, 28 }, gen.data.idx.read(out .. "/samples.idx").shape)
    end)
  end

  it("glow resumes bitwise-identically (ActNorm's initialization is part of the checkpoint)", function()
    local flags = "--batch 8 --log-every 1 --checkpoint-every 2 --seed 5 --test 8 " .. tiny.glow
    local ok, log = sh("bin/gen examples/flows/glow.lua --steps 4 " .. flags .. " --out " .. base .. "/glow_a")
    assert.is_true(ok, log)
    assert.is_true(sh("bin/gen examples/flows/glow.lua --steps 2 " .. flags .. " --out " .. base .. "/glow_b"))
    ok, log = sh("bin/gen examples/flows/glow.lua --steps 4 --resume " .. flags .. " --out " .. base .. "/glow_b")
    assert.is_true(ok, log)
    assert.equal(read(base .. "/glow_a/log.csv"), read(base .. "/glow_b/log.csv"))
  end)
end)

describe("examples/autoregressive/vqvae.lua", function()
  local tiny = "--batch 16 --codebook-size 32 --code-dim 8 --width 16 --test-images 64 --seed 4"
  it("trains with its codebook statistics in log.csv, resumes bitwise, reconstructs, and serves as stage 1", function()
    local out = base .. "/vqvae"
    local ok, log = sh(string.format("bin/gen examples/autoregressive/vqvae.lua --steps 6 --log-every 1 %s --out %s", tiny, out))
    assert.is_true(ok, log)
    local csv = read(out .. "/log.csv")
    assert.truthy(csv:match("^step,loss,recon,commitment,perplexity,dead\n"), csv)
    local rows = 0
    for line in csv:gmatch("\n([^\n]+)") do
      rows = rows + 1
      local cells = {}
      for cell in line:gmatch("[^,]+") do cells[#cells + 1] = tonumber(cell) end
      assert.equal(6, #cells, line)
      for _, v in ipairs(cells) do assert.truthy(v == v and v < math.huge, line) end
      assert.truthy(cells[5] >= 1 and cells[5] <= 32, line) -- perplexity of 32 codes
    end
    assert.equal(6, rows, csv)
    local report = read(out .. "/test.txt")
    assert.truthy(report and report:match("^test %(64 images%): reconstruction MSE [%d.]+ %(PSNR [%d.]+ dB%); codebook perplexity [%d.]+ of 32 codes"), report)
    -- stopped at 3 and resumed: the same log to the last digit (codebook usage and restarts included)
    local b = out .. "_b"
    assert.is_true(sh(string.format("bin/gen examples/autoregressive/vqvae.lua --steps 3 --log-every 1 %s --out %s", tiny, b)))
    assert.is_true(sh(string.format("bin/gen examples/autoregressive/vqvae.lua --steps 6 --log-every 1 --resume %s --out %s", tiny, b)))
    assert.equal(csv, read(b .. "/log.csv"))
    ok, log = sh(string.format("bin/gen examples/autoregressive/vqvae.lua --sample 5 %s --out %s", tiny, out))
    assert.is_true(ok, log)
    assert.same({ 5, 28, 28 }, gen.data.idx.read(out .. "/samples.idx").shape)
    assert.same({ 1, 2 * 30 + 2, 8 * 30 + 2 }, gen.image.load(out .. "/reconstructions.png").shape)
    -- the stage-1 loader rebuilds it
    local experiment = require "gen.experiment"
    local model = experiment.stage1(experiment.parse("prior", { [0] = "prior.lua", "--stage1", out }, {}), "vqvae")
    assert.equal(32, model.codebook_size)
    assert.same({ 2, 7, 7 }, model:encode_indices(gen.zeros(2, 1, 28, 28)).shape)
  end)

  it("--levels 2 --ema trains and reports both levels", function()
    local out = base .. "/vqvae2"
    local ok, log = sh(string.format("bin/gen examples/autoregressive/vqvae.lua --steps 2 --levels 2 --ema %s --out %s", tiny, out))
    assert.is_true(ok, log)
    local report = read(out .. "/test.txt")
    assert.truthy(report and report:match("codebook perplexity top [%d.]+ of 32 codes %(%d+ unused%), bottom [%d.]+ of 32 codes"), report)
  end)
end)

describe("examples/autoregressive/pixelcnn.lua", function()
  local tiny = "--batch 8 --width 8 --layers 2 --test-images 16 --grid 2 --seed 2"
  it("--on pixels trains, reports the test bits/dim, and samples a class reproducibly", function()
    local out = base .. "/pixelcnn"
    local ok, log = sh(string.format("bin/gen examples/autoregressive/pixelcnn.lua --steps 3 --log-every 1 --conditional %s --out %s", tiny, out))
    assert.is_true(ok, log)
    local csv = read(out .. "/log.csv")
    assert.truthy(csv:match("^step,loss,bits_per_dim\n"), csv)
    local rows = {}
    for line in csv:gmatch("\n([^\n]+)") do rows[#rows + 1] = line end
    assert.equal(3, #rows, csv)
    for _, line in ipairs(rows) do
      local nats, bits = line:match("^%d+,([^,]+),([^,]+)$")
      assert.truthy(tonumber(nats) and math.abs(tonumber(nats) / math.log(2) - tonumber(bits)) < 1e-3, line)
    end
    local nll = read(out .. "/test_nll.txt")
    local bpd = tonumber(nll and nll:match("^test NLL: ([%d.]+) bits/dim over 16 images"))
    assert.truthy(bpd and bpd > 0 and bpd < 8.5, nll)
    assert.same({ 1, 2 * 30 + 2, 2 * 30 + 2 }, gen.image.load(out .. "/samples.png").shape)
    local cmd = string.format("bin/gen examples/autoregressive/pixelcnn.lua --sample 3 --class 4 --conditional %s --out %s", tiny, out)
    ok, log = sh(cmd)
    assert.is_true(ok, log)
    local first = read(out .. "/samples.idx")
    assert.same({ 3, 28, 28 }, gen.data.idx.read(out .. "/samples.idx").shape)
    assert.is_true(sh(cmd))
    assert.equal(first, read(out .. "/samples.idx"))
    -- --stage1 belongs to --on codes, and --class to a conditional model
    ok, log = sh(string.format("bin/gen examples/autoregressive/pixelcnn.lua --stage1 %s --out %s", out, base .. "/pixelcnn_x"))
    assert.is_not_true(ok)
    assert.truthy(log:find("--stage1 is for --on codes", 1, true), log)
    ok, log = sh(string.format("bin/gen examples/autoregressive/pixelcnn.lua --sample 2 --class 3 %s --out %s", tiny, out))
    assert.is_not_true(ok)
    assert.truthy(log:find("--class needs a class-conditional model", 1, true), log)
  end)

  it("--on codes trains the top and bottom priors of a VQ-VAE-2 and decodes their samples; refuses another stage 1", function()
    local out, stage1 = base .. "/vq_pixelcnn", base .. "/vqvae2" -- trained by the vqvae runs above
    local args = string.format("--on codes --stage1 %s --train-images 32 %s", stage1, tiny)
    local ok, log = sh(string.format("bin/gen examples/autoregressive/pixelcnn.lua --steps 3 --log-every 1 %s --out %s", args, out))
    assert.is_true(ok, log)
    local csv = read(out .. "/log.csv")
    assert.truthy(csv:match("^step,loss,top,bottom\n"), csv)
    for line in csv:gmatch("\n([^\n]+)") do
      local loss, top, bottom = line:match("^%d+,([^,]+),([^,]+),([^,]+)$")
      assert.truthy(top and math.abs(tonumber(loss) - tonumber(top) - tonumber(bottom)) < 1e-3 and tonumber(bottom) > 0, line)
    end
    local nll = read(out .. "/test_nll.txt")
    assert.truthy(nll and nll:match("^test NLL of the codes: [%d.]+ bits per top code, [%d.]+ per bottom code %(uniform: 5.00%)"), nll)
    ok, log = sh(string.format("bin/gen examples/autoregressive/pixelcnn.lua --sample 2 %s --out %s", args, out))
    assert.is_true(ok, log)
    assert.same({ 2, 28, 28 }, gen.data.idx.read(out .. "/samples.idx").shape)
    -- the priors remember whose codes they learned: another VQ-VAE-2 of the same shape is refused
    local other = base .. "/vqvae2_other"
    assert.is_true(sh(string.format("bin/gen examples/autoregressive/vqvae.lua --steps 1 --levels 2 --ema --batch 16 "
      .. "--codebook-size 32 --code-dim 8 --width 16 --test-images 16 --seed 5 --out %s", other)))
    local other_args = string.format("--on codes --stage1 %s --train-images 32 %s", other, tiny)
    ok, log = sh(string.format("bin/gen examples/autoregressive/pixelcnn.lua --sample 2 %s --out %s", other_args, out))
    assert.is_not_true(ok)
    assert.truthy(log:find("it was trained on the codes of the vqvae in " .. stage1 .. " (fingerprint ", 1, true), log)
    assert.truthy(log:find("--stage1 " .. other .. " holds another one", 1, true), log)
    -- a PixelCNN checkpoint is not a VQ-VAE
    ok, log = sh(string.format("bin/gen examples/autoregressive/pixelcnn.lua --on codes --stage1 %s --steps 1 --out %s", base .. "/pixelcnn", base .. "/pixelcnn_x"))
    assert.is_not_true(ok)
    assert.truthy(log:find("--stage1: expected a vqvae checkpoint", 1, true), log)
  end)
end)

describe("bad command-line input", function()
  -- one line on stderr, exit status 2, never a traceback, never a silent fallback
  local cases = {
    { "gan/dcgan", "--bogus 1", "unknown option --bogus" },
    { "gan/dcgan", "--steps abc", "option --steps needs a number, got 'abc'" },
    { "gan/dcgan", "--steps -3", "option --steps must be at least 0, got -3" },
    { "gan/dcgan", "--batch 0", "option --batch must be at least 1, got 0" },
    { "gan/dcgan", "--steps 1.5", "option --steps needs an integer, got '1.5'" },
    { "gan/dcgan", "--loss wasserstein", "option --loss must be one of nonsaturating|bce|minimax|hinge|wgan, got 'wasserstein'" },
    { "gan/stylegan", "--style stylegan3", "option --style must be one of modulated|adain, got 'stylegan3'" },
    { "gan/stylegan", "--resolution 64", "option --resolution must be one of 28|32, got '64'" },
    { "gan/stylegan", "--mixing 1.5", "option --mixing must be in [0, 1], got 1.5" },
    { "diffusion/ddpm", "--sampler ddmi", "option --sampler must be one of" },
    { "autoencoder/vae", "--model resnet", "option --model must be one of mlp|conv, got 'resnet'" },
    { "gan/cgan", "--sample 4 --class 11", "option --class must be in 1..10, got 11", "cgan" },
    { "gan/dcgan", "--sample 4", "--sample: no checkpoint at", "nothing" },
    { "gan/dcgan", "--steps 2 --resume", "--resume: no checkpoint at", "nothing" },
    { "autoencoder/vae", "--steps 2 --resume", "--resume: ", "a", "does not hold this model's state" },
    { "gan/dcgan", "--steps 1 --out /proc/no-such-dir", "cannot write to --out /proc/no-such-dir" },
    { "flows/glow", "--temperature warm", "option --temperature needs a number, got 'warm'" },
    { "autoregressive/vqvae", "--levels 3", "option --levels must be 1 or 2, got 3" },
    { "autoencoder/ae", "--steps 1 --stage1 somewhere", "option --stage1 is for two-stage scripts" },
  }
  for _, c in ipairs(cases) do
    local script, flags, want, dir, also = c[1], c[2], c[3], c[4], c[5]
    it(script .. " " .. flags, function()
      local out = flags:find("--out", 1, true) and "" or (" --out " .. base .. "/" .. (dir or "bad"))
      local ok, log = sh("bin/gen examples/" .. script .. ".lua " .. flags .. out)
      assert.is_not_true(ok, log)
      assert.truthy(log:find(want, 1, true), log)
      if also then assert.truthy(log:find(also, 1, true), log) end
      assert.is_nil(log:find("traceback", 1, true), log)
      local lines = select(2, log:gsub("\n", ""))
      assert.equal(1, lines, log)
    end)
  end

  it("lists the choices in the usage text", function()
    local ok, log = sh("bin/gen examples/diffusion/ddpm.lua --help")
    assert.is_true(ok, log)
    assert.truthy(log:find("--sampler          ddpm|ddim|euler|heun|euler_ancestral|dpmpp_2m|euler_maruyama|pc (default ddim)", 1, true), log)
  end)
end)

describe("examples cleanup", function()
  it("removes the runs", function()
    os.execute("rm -rf " .. base)
    assert.is_nil(read(base .. "/a/log.csv"))
  end)
end)
