-- --sample N / --eval N in batches of --sample-batch B (gen.experiment.draw): each image's noise
-- from its own generator, so the images do not depend on B; memory bounded by one batch; and the
-- block cache reusing large blocks instead of faulting fresh pages in at each collection.
local gen = require "gen"
local experiment = require "gen.experiment"
local dcli = require "gen.diffusion.cli"

local function same(a, b) return a.shape[1] == b.shape[1] and (a - b):abs():max():item() == 0 end
local function parse(args) return experiment.parse("batch_spec", args, dcli.defaults { sample_steps = 2 }) end

-- a small convolutional decoder from experiment.noise: deterministic given the noise
local function decoder(width)
  gen.manual_seed(5)
  local nn, w = gen.nn, width or 16
  return nn.Sequential(nn.Linear(8, w * 7 * 7), nn.SiLU(), nn.Unflatten(2, { w, 7, 7 }), nn.Upsample { scale = 4 },
    nn.Conv2d(w, 1, 3, { padding = 1 }), nn.Tanh())
end
-- OpenBLAS's result for one row of a product depends on how many rows the product has (edge
-- kernels), so images drawn in batches of other sizes agree to float rounding, not to the bit
local function close(a, b) return a.shape[1] == b.shape[1] and (a - b):abs():max():item() < 1e-5 end

describe("experiment.draw (--sample-batch)", function()
  it("gives the same images for any batch size (per-image noise), labels continuing across batches", function()
    local model = decoder()
    local seen = {}
    local spec = { sample = function(n, run, draw)
      seen[#seen + 1] = n
      return model(experiment.noise(draw, n, 8)), experiment.class_labels(run, n, 3, draw)
    end }
    local run7 = parse { "--sample-batch", "7" }
    local a, la = experiment.draw(run7, spec, 11, 42)
    assert.same({ 7, 4 }, seen)
    local b, lb = experiment.draw(parse { "--sample-batch", "3" }, spec, 11, 42)
    local c = experiment.draw(parse { "--sample-batch", "64" }, spec, 11, 42)
    assert.same({ 11, 1, 28, 28 }, a.shape)
    assert.is_true(close(a, b))
    assert.is_true(close(a, c))
    assert.same({ 1, 2, 3, 1, 2, 3, 1, 2, 3, 1, 2 }, la:totable())
    assert.same(la:totable(), lb:totable())
    -- another seed, other images; and a prefix of a longer draw is the shorter draw
    assert.is_false(close(a, experiment.draw(run7, spec, 11, 43)))
    assert.is_true(close(a:narrow(1, 1, 5), experiment.draw(run7, spec, 5, 42)))
  end)

  it("is bitwise the same on 1 and 2 threads", function()
    local model = decoder()
    local spec = { sample = function(n, _, draw) return model(experiment.noise(draw, n, 8)) end }
    local was = gen.get_num_threads()
    gen.set_num_threads(1)
    local a = experiment.draw(parse { "--sample-batch", "5" }, spec, 9, 1)
    gen.set_num_threads(2)
    local b = experiment.draw(parse { "--sample-batch", "5" }, spec, 9, 1)
    gen.set_num_threads(was)
    assert.is_true(same(a, b))
  end)

  it("gives the same diffusion samples for any batch size, up to float rounding", function()
    local unet = require "gen.models.unet"
    gen.manual_seed(1)
    local model = unet.UNet { widths = { 8, 8 }, groups = 4, heads = 2, time_dim = 16 }
    local function sample_with(b)
      local run = parse { "--sample-batch", tostring(b), "--process", "rectified", "--parameterization", "velocity",
        "--sampler", "euler_ancestral", "--eta", "1" }
      local d = dcli.build(run)
      return experiment.draw(run, { sample = function(n, _, draw) return d.sample(model, n, nil, draw) end }, 5, 7)
    end
    local a, b = sample_with(2), sample_with(5)
    assert.same({ 5, 1, 32, 32 }, a.shape)
    -- the ancestral sampler draws fresh noise at every step: still per image
    local diff = (a - b):abs():max():item()
    assert.is_true(diff < 1e-4, tostring(diff))
  end)

  it("holds memory to one batch whatever N is", function()
    local model = decoder(64)
    local spec = { sample = function(n, _, draw) return model(experiment.noise(draw, n, 8)) end }
    local garbage = 0 -- the most allocation gen lets pass between collections
    local function peak(n, b)
      collectgarbage()
      gen.memory(true)
      local base = gen.memory().live
      garbage = math.max(garbage, gen.memory().gc_threshold)
      local out = experiment.draw(parse { "--sample-batch", tostring(b) }, spec, n, 3)
      garbage = math.max(garbage, gen.memory().gc_threshold)
      return gen.memory().peak - base, out
    end
    local one = peak(64, 64)
    local many, out = peak(300, 64)
    local whole = peak(300, 300)
    assert.same({ 300, 1, 28, 28 }, out.shape)
    -- 300 images in batches of 64: one batch's activations, the garbage the collector lets pass
    -- (8 MB, or a quarter of the live bytes at the last collection: more in a long suite) and the
    -- outputs (300 x 3 KB, kept and concatenated), far below the single batch of 300
    assert.is_true(many < one + garbage + 3 * out:numel() * 4, string.format("%d vs one batch %d (garbage allowed %d)", many, one, garbage))
    assert.is_true(many < whole / 2, string.format("%d vs %d", many, whole))
  end)

  it("refuses a batch size below 1", function()
    local ok, err = pcall(parse, { "--sample-batch", "0" })
    assert.is_false(ok)
    assert.truthy(tostring(err):find("--sample-batch", 1, true), tostring(err))
    ok, err = pcall(experiment.noise, { generators = { gen.Generator(1) } }, 2, 8)
    assert.is_false(ok)
    assert.truthy(tostring(err):find("gen.experiment.noise", 1, true), tostring(err))
  end)
end)

describe("the block cache", function()
  local minor_faults = require("support.proc").minor_faults

  it("reuses blocks of a working set above 512 MB instead of faulting fresh pages in", function()
    -- three 200 MB tensors live at once, freed and drawn again: with a fixed 512 MB cap one of them
    -- went back to the system at each round and came back as 51,200 fresh pages
    local n = 50 << 20
    local function round()
      local s = (function() -- the three die with this scope
        local a, b, c = gen.empty(n), gen.empty(n), gen.empty(n)
        a:fill_(1)
        b:fill_(2)
        c:fill_(3)
        return a[1]:item() + b[n]:item() + c[n // 2]:item()
      end)()
      collectgarbage()
      return s
    end
    round()
    local f0 = minor_faults()
    for _ = 1, 2 do assert.equal(6, round()) end
    local faults = minor_faults() - f0
    assert.is_true(faults < 5000, "minor page faults in two rounds: " .. faults)
  end)
end)
