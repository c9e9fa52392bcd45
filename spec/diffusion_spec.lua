-- gen.diffusion in general form: noise processes, parameterizations and their conversions, the
-- denoiser, losses and weightings, and every sampler checked against a Gaussian mixture whose
-- exact denoiser is known in closed form (spec/support/mixture.lua).
local gen = require "gen"
local diffusion = gen.diffusion
local param = diffusion.parameterization
local samplers = diffusion.samplers
local mixture = require "support.mixture"

local function max_diff(a, b) return (a - b):abs():max():item() end
local function err_of(f, ...)
  local ok, err = pcall(f, ...)
  assert.is_false(ok, "expected an error")
  return tostring(err)
end
local quiet = { progress = false }
local function with(t, extra)
  local o = {}
  for k, v in pairs(t) do o[k] = v end
  for k, v in pairs(extra or {}) do o[k] = v end
  return o
end

local process_names = { "vp", "ve", "edm", "rectified" }

-- The network that a process and parameterization call for, computed from an exact denoiser:
-- it reads the noise level back from the time it is shown and answers with output_from.
-- Rows may have different times (training); rectified flow's t = 1 (sigma = infinity, where D is
-- the data mean) is answered in the flow's own terms, v = x_1 - E[x_0].
local function oracle_network(process, kind, denoise)
  local function one(input, tm)
    local sigma, xhat
    if process.name == "rectified" and kind == "velocity" and tm >= 1000 then return input - denoise(input, 1e9) end
    if kind == "edm" then
      sigma = math.exp(tm / 250)
      local _, _, c_in = param.edm_coefficients(sigma)
      xhat = input / c_in
    else
      local t = ({ vp = tm, ve = tm / 1000, rectified = tm / 1000, edm = math.exp(tm / 250) })[process.name]
      sigma = process:sigma(t)
      xhat = input / process:scale(t)
    end
    return param.output_from(kind, xhat, sigma, denoise(xhat, sigma))
  end
  return function(input, time)
    if time:min():item() == time:max():item() then return one(input, time[1]:item()) end
    local rows = {}
    for i = 1, input:size(1) do rows[i] = one(input:narrow(1, i, 1), time[i]:item()) end
    return gen.cat(rows)
  end
end

local mix = mixture.new { means = { { -0.6, -0.3 }, { 0.6, 0 }, { 0, 0.6 } }, stds = { 0.3, 0.35, 0.25 }, weights = { 0.5, 0.3, 0.2 } }
local exact = mixture.denoiser(mix)

describe("noise processes", function()
  it("map times to noise levels and back, with s(t) and sigma(t) as each paper defines them", function()
    for _, name in ipairs(process_names) do
      local p = diffusion.process(name)
      for _, u in ipairs { 0.1, 0.5, 0.9 } do
        local t = p.t_min + u * (p.t_max - p.t_min)
        assert.near(t, p:t_of_sigma(p:sigma(t)), 1e-9 * math.max(1, t))
      end
      assert.is_true(p.sigma_min < p.sigma_max, name)
    end
    local vp = diffusion.process("vp")
    for _, t in ipairs { 1, 10, 500, 1000 } do
      assert.near(math.sqrt(vp.schedule.alpha_bars[t]), vp:scale(t), 1e-12)
      assert.equal(t, vp:t_of_sigma(vp:sigma(t))) -- integer steps come back exactly
    end
    local cos = diffusion.process("vp", { betas = "cosine", T = 100 })
    assert.near(math.sqrt((1 - cos.schedule.alpha_bars[50]) / cos.schedule.alpha_bars[50]), cos:sigma(50), 1e-12)
    local rf = diffusion.process("rectified")
    assert.near(0.25 / 0.75, rf:sigma(0.25), 1e-15)
    assert.near(0.75, rf:scale(0.25), 1e-15)
    local ve = diffusion.process("ve")
    assert.near(0.01, ve:sigma(0), 1e-15)
    assert.near(50, ve:sigma(1), 1e-12)
    local edm = diffusion.process("edm")
    assert.near(0.5, edm.sigma_data, 0)
    assert.near(250 * math.log(2), edm:net_time(2), 1e-12)
    assert.truthy(err_of(diffusion.process, "bogus"):find("unknown process bogus", 1, true))
    assert.truthy(err_of(diffusion.vp_process, { betas = "quadratic" }):find("betas must be", 1, true))
  end)

  it("noises the way each process defines: coefficients agree with s(t) and sigma(t)", function()
    gen.manual_seed(1)
    for _, name in ipairs(process_names) do
      local p = diffusion.process(name)
      local t = p:sample_t(6)
      local s, n, sigma = p:coefficients(t)
      for i = 1, 6 do
        local ti = t[i]:item()
        assert.near(p:scale(ti), s[i]:item(), 1e-5 * math.max(1, s[i]:item()))
        assert.near(p:sigma(ti), sigma[i]:item(), 1e-4 * math.max(1, sigma[i]:item()))
        assert.near(s[i]:item() * sigma[i]:item(), n[i]:item(), 1e-4 * math.max(1, n[i]:item()))
      end
    end
    -- EDM's training levels are log-normal: ln sigma ~ N(-1.2, 1.2^2)
    local edm = diffusion.process("edm")
    local ls = edm:sample_t(20000):log()
    assert.near(-1.2, ls:mean():item(), 0.05)
    assert.near(1.2, ls:std():item(), 0.05)
  end)

  it("builds step schedules: uniform in t, Karras rho = 7, uniform in log-SNR", function()
    local vp = diffusion.process("vp")
    local u = diffusion.step_sigmas(vp, "uniform", 5)
    assert.same({ vp:sigma(1000), vp:sigma(800), vp:sigma(600), vp:sigma(400), vp:sigma(200), 0 }, u)
    local k = diffusion.karras_sigmas(4, 0.002, 80)
    assert.near(80, k[1], 1e-12)
    assert.near(0.002, k[4], 1e-15)
    assert.near(((80 ^ (1 / 7) + (0.002 ^ (1 / 7) - 80 ^ (1 / 7)) / 3)) ^ 7, k[2], 1e-12)
    assert.equal(0, k[5])
    local l = diffusion.logsnr_sigmas(3, 0.01, 100)
    assert.near(1, l[2], 1e-12)
    local rf = diffusion.step_sigmas(diffusion.process("rectified"), "uniform", 4)
    assert.near(0.999 / 0.001, rf[1], 1e-9) -- t = 1 is clipped to t_max
    assert.near(1, rf[3], 1e-12)            -- t = 1/2
    assert.truthy(err_of(diffusion.step_sigmas, vp, "cosine", 5):find("unknown schedule cosine", 1, true))
    assert.truthy(err_of(diffusion.step_sigmas, vp, { 3, 4, 0 }, 5):find("sigmas must decrease", 1, true))
    assert.truthy(err_of(diffusion.step_sigmas, vp, "karras", 0):find("steps must be a positive integer", 1, true))
  end)
end)

describe("parameterizations", function()
  it("convert between every pair exactly (float64 round trips)", function()
    gen.manual_seed(3)
    local x0, eps = gen.randn(4, 3):double(), gen.randn(4, 3):double()
    for _, sigma in ipairs { 0.01, 0.7, 30, gen.tensor({ 0.05, 0.5, 5, 50 }):double():view(4, 1) } do
      local x = x0 + eps * sigma
      for _, from in ipairs(param.kinds) do
        local out = param.prediction_target(from, x0, eps, sigma)
        -- the target is what the output stands for: D(target) = x_0, output_from(x_0) = target
        assert.is_true(max_diff(param.denoised_from(from, x, sigma, out), x0) < 1e-9, from)
        assert.is_true(max_diff(param.output_from(from, x, sigma, x0), out) < 1e-9, from)
        for _, to in ipairs(param.kinds) do
          local there = param.convert_prediction(from, to, x, sigma, out)
          assert.is_true(max_diff(there, param.prediction_target(to, x0, eps, sigma)) < 1e-9, from .. " -> " .. to)
          assert.is_true(max_diff(param.convert_prediction(to, from, x, sigma, there), out) < 1e-9, to .. " -> " .. from)
        end
      end
      assert.is_true(max_diff(param.score_from_denoised(x, sigma, x0), -eps / sigma) < 1e-9)
    end
    -- VP's v (Salimans & Ho) at the matching level: v = sqrt(ab) eps - sqrt(1 - ab) x_0
    local ab = 0.37
    local sigma = math.sqrt((1 - ab) / ab)
    assert.is_true(max_diff(param.prediction_target("v", x0, eps, sigma), param.v_from(eps, x0, ab)) < 1e-12)
    -- EDM's preconditioning (Karras et al., Table 1)
    local c_skip, c_out, c_in, c_noise = param.edm_coefficients(2)
    assert.near(0.25 / 4.25, c_skip, 1e-15)
    assert.near(1 / math.sqrt(4.25), c_out, 1e-15)
    assert.near(1 / math.sqrt(4.25), c_in, 1e-15)
    assert.near(math.log(2) / 4, c_noise, 1e-15)
    assert.truthy(err_of(param.denoised_from, "noise", x0, 1, x0):find("unknown parameterization noise", 1, true))
  end)

  it("turn a network of any kind on any process into the same denoiser", function()
    local x = mixture.sample(mix, 8, gen.Generator(4)) + gen.randn({ 8, 2, 1, 1 }, { generator = gen.Generator(5) })
    for _, pname in ipairs(process_names) do
      local p = diffusion.process(pname)
      for _, kind in ipairs(param.kinds) do
        local d = diffusion.denoiser(oracle_network(p, kind, exact), p, kind)
        for _, sigma in ipairs { p:sigma(p.t_min + 0.3 * (p.t_max - p.t_min)), p:sigma(p.t_min + 0.9 * (p.t_max - p.t_min)) } do
          local want = exact(x * math.sqrt(1 + sigma * sigma), sigma)
          assert.is_true(max_diff(d(x * math.sqrt(1 + sigma * sigma), sigma), want) < 1e-3 * math.max(1, sigma), pname .. " " .. kind)
        end
      end
    end
    local p = diffusion.process("edm")
    assert.truthy(err_of(diffusion.denoiser, exact, "edm", "eps"):find("expected a process", 1, true))
    assert.truthy(err_of(diffusion.denoiser, exact, p, "noise"):find("unknown parameterization noise", 1, true))
    local d = diffusion.denoiser(exact, p, "x0", { clip = 0.5 })
    assert.truthy(err_of(d, gen.zeros(1, 2, 1, 1), 0):find("sigma must be a positive number", 1, true))
  end)
end)

describe("denoising losses", function()
  it("reproduce ddpm_loss and rectified_flow_loss exactly on their processes", function()
    local net = gen.models.unet.UNet { widths = { 8, 16 }, time_dim = 16, heads = 2, groups = 4, classes = 2 }
    local x = gen.randn(4, 1, 8, 8)
    local y = gen.tensor({ 1, 2, 1, 2 }, "int64")
    local vp = diffusion.process("vp", { T = 100 })
    gen.manual_seed(11)
    local a = diffusion.ddpm_loss(net, vp.schedule, x, y, { label_dropout = 0.5 }):item()
    gen.manual_seed(11)
    local b = diffusion.denoising_loss(net, vp, x, y, { label_dropout = 0.5 }):item()
    assert.equal(a, b)
    gen.manual_seed(12)
    a = diffusion.rectified_flow_loss(net, x, y, { label_dropout = 0.1 }):item()
    gen.manual_seed(12)
    b = diffusion.denoising_loss(net, diffusion.process("rectified"), x, y, { parameterization = "velocity", label_dropout = 0.1 }):item()
    assert.equal(a, b)
  end)

  it("vanish for the exact network and weigh ||D - x0||^2 as asked, for every kind and weighting", function()
    -- a data set of one point: the exact denoiser is that point at every level
    local point = gen.tensor({ 0.3, -0.7 }):view(1, 2, 1, 1)
    local function single(xhat) return point:expand(xhat:size(1), 2, 1, 1) + 0 end
    local x0 = point:expand(16, 2, 1, 1):contiguous()
    for _, pname in ipairs(process_names) do
      local p = diffusion.process(pname)
      for _, kind in ipairs(param.kinds) do
        gen.manual_seed(2)
        local l = diffusion.denoising_loss(oracle_network(p, kind, single), p, x0, nil, { parameterization = kind }):item()
        assert.is_true(l < 1e-6 * ((kind == "eps" or kind == "score" or kind == "v" or kind == "velocity") and 1e4 or 1), pname .. " " .. kind .. " " .. l)
      end
    end
    -- the weights on ||D - x_0||^2 at sigma = 2: SNR = 1/4
    local lw = diffusion.loss_weight
    assert.near(0.25, lw("snr", "eps", 2), 1e-15)
    assert.near(0.25, lw("min_snr", "eps", 2), 1e-15)
    assert.near(5, lw("min_snr", "eps", 0.1), 1e-12)
    assert.near(3, lw("min_snr", "v", 0.1, { min_snr_gamma = 3 }), 1e-12)
    assert.near(4.25 / 1, lw("edm", "x0", 2), 1e-12)
    assert.near(0.25, lw("simple", "eps", 2), 1e-15)
    assert.near(1.25, lw("simple", "v", 2), 1e-15)
    assert.truthy(err_of(lw, "p2", "eps", 1):find("unknown weighting p2", 1, true))
    -- a weighted loss is the MSE of D - x_0 times the weight: a network off by a constant c in D
    local p = diffusion.process("edm")
    local c = 0.1
    local off = oracle_network(p, "x0", function(xhat) return single(xhat) + c end)
    gen.manual_seed(5)
    local t = p:sample_t(16)
    gen.manual_seed(5)
    local l = diffusion.denoising_loss(off, p, x0, nil, { parameterization = "x0", weighting = "min_snr" }):item()
    local want = (t:double() ^ -2):clamp(0, 5):mean():item() * c * c
    assert.near(want, l, 1e-5 * want)
    assert.truthy(err_of(diffusion.denoising_loss, off, p, gen.zeros(3)):find("expected images {B, C, H, W}, got {3}", 1, true))
  end)
end)

describe("samplers on a Gaussian mixture with its exact denoiser", function()
  local n = 1000
  local reference = mixture.sample(mix, n, gen.Generator(1))
  local floor = mixture.energy_distance(reference, mixture.sample(mix, n, gen.Generator(2)))

  it("converge to the data distribution as steps grow, every sampler", function()
    local p = diffusion.process("edm", { sigma_max = 20 })
    local d = diffusion.denoiser(oracle_network(p, "edm", exact), p, "edm")
    for _, name in ipairs(samplers.sampler_names) do
      local dist = {}
      for _, steps in ipairs { 3, 10, 40 } do
        local x = diffusion.sample(d, { n, 2, 1, 1 }, with(quiet, { sampler = name, steps = steps, schedule = "karras", generator = gen.Generator(7) }))
        dist[#dist + 1] = mixture.energy_distance(x, reference)
      end
      assert.is_true(dist[3] < dist[1] and dist[3] < dist[2] * 1.2, name .. ": " .. table.concat(dist, " "))
      assert.is_true(dist[3] < floor + 0.01, name .. ": " .. dist[3] .. " vs floor " .. floor)
    end
  end)

  it("Heun at 19 NFE beats Euler at 20 on the ODE's own solution, and both converge at their order", function()
    local sig = function(k) return diffusion.karras_sigmas(k, 0.02, 10) end
    local x = gen.randn({ 500, 2, 1, 1 }, { generator = gen.Generator(5) }) * 10
    local truth = samplers.sample_heun(exact, x, sig(400), quiet)
    local function err(name, k) return (samplers.by_name[name](exact, x, sig(k), quiet) - truth):abs():mean():item() end
    local e20, h10 = err("euler", 20), err("heun", 10)
    assert.is_true(h10 < e20, "heun 19 NFE " .. h10 .. " vs euler 20 NFE " .. e20)
    assert.is_true(err("euler", 40) < e20 * 0.6)  -- first order: halves with twice the steps
    assert.is_true(err("heun", 20) < h10 * 0.35)  -- second order: a quarter
    assert.is_true(err("dpmpp_2m", 20) < e20)
  end)

  it("know their equivalences: DDIM eta 0 is Euler; DDIM eta 1, Euler ancestral and the DDPM posterior are one", function()
    local p = diffusion.process("vp", { T = 200 })
    local d = diffusion.denoiser(oracle_network(p, "eps", exact), p, "eps")
    local function run(name, extra)
      return diffusion.sample(d, { 50, 2, 1, 1 }, with(quiet, with({ sampler = name, steps = 8, generator = gen.Generator(3) }, extra)))
    end
    assert.equal(0, max_diff(run("ddim"), run("euler")))
    local ea = run("euler_ancestral")
    assert.equal(0, max_diff(run("ddim", { eta = 1 }), ea))
    assert.equal(0, max_diff(run("ddpm", { variance = "posterior" }), ea))
    assert.is_true(max_diff(run("ddpm"), ea) > 1e-3) -- Ho et al.'s beta_t variance is larger
  end)

  it("match the DDIM and rectified-flow samplers they generalize", function()
    local s = diffusion.linear_schedule(100)
    local p = diffusion.process("vp", { schedule = s })
    local net = oracle_network(p, "eps", exact)
    gen.manual_seed(4)
    local old = diffusion.ddim_sample(net, s, { 64, 2, 1, 1 }, { steps = 10, progress = false, clip = false })
    gen.manual_seed(4)
    local new = diffusion.sample(diffusion.denoiser(net, p, "eps"), { 64, 2, 1, 1 }, with(quiet, { sampler = "ddim", steps = 10 }))
    assert.is_true(max_diff(old, new) < 1e-4, max_diff(old, new))
    local rf = diffusion.process("rectified", { t_max = 1 - 1e-6 })
    local vnet = oracle_network(rf, "velocity", exact)
    gen.manual_seed(6)
    old = diffusion.rectified_flow_sample(vnet, { 64, 2, 1, 1 }, { steps = 10, progress = false })
    gen.manual_seed(6)
    new = diffusion.sample(diffusion.denoiser(vnet, rf, "velocity"), { 64, 2, 1, 1 }, with(quiet, { sampler = "euler", steps = 10 }))
    assert.is_true(max_diff(old, new) < 1e-3, max_diff(old, new))
  end)

  it("are reproducible with a generator, call back every step, and do not depend on the thread count", function()
    local p = diffusion.process("edm", { sigma_max = 20 })
    local d = diffusion.denoiser(oracle_network(p, "edm", exact), p, "edm")
    for _, name in ipairs(samplers.sampler_names) do
      local calls
      local opts = with(quiet, { sampler = name, steps = 6, schedule = "karras", churn = 10, callback = function(i, _, den, sigma)
        calls = calls + 1
        assert.equal(i, calls)
        assert.same({ 30, 2, 1, 1 }, den.shape)
        assert.is_true(sigma >= 0)
      end })
      local threads = gen.get_num_threads()
      gen.set_num_threads(1)
      calls = 0
      local a = diffusion.sample(d, { 30, 2, 1, 1 }, with(opts, { generator = gen.Generator(9) }))
      gen.set_num_threads(2)
      calls = 0
      local b = diffusion.sample(d, { 30, 2, 1, 1 }, with(opts, { generator = gen.Generator(9) }))
      gen.set_num_threads(threads)
      assert.equal(0, max_diff(a, b), name)
      assert.equal(6, calls)
    end
  end)

  it("reject bad names, shapes and options with the function and the values", function()
    local p = diffusion.process("edm")
    local d = diffusion.denoiser(exact, p, "x0")
    local s = diffusion.sample
    assert.truthy(err_of(s, d, { 2, 2, 1, 1 }, { sampler = "plms" })
      :find("gen.diffusion.sample: unknown sampler plms (expected ddpm, ddim, euler, heun, euler_ancestral, dpmpp_2m, euler_maruyama, pc)", 1, true))
    assert.truthy(err_of(s, d, { 2, 2, 1, 1 }, { steps = 0 }):find("steps must be a positive integer, got 0", 1, true))
    assert.truthy(err_of(s, exact, { 2, 2, 1, 1 }):find("expected a denoiser", 1, true))
    assert.truthy(err_of(s, d, { 2, 2, 1, 1 }, with(quiet, { mask = gen.ones(2, 2, 3, 1), known = gen.zeros(2, 2, 1, 1) }))
      :find("mask {2,2,3,1} does not broadcast to the samples {2,2,1,1}", 1, true))
    assert.truthy(err_of(s, d, { 2, 2, 1, 1 }, with(quiet, { mask = gen.ones(2, 2, 1, 1) })):find("a mask needs the known image", 1, true))
    assert.truthy(err_of(s, d, { 2, 2, 1, 1 }, with(quiet, { init = gen.zeros(2, 2, 1, 1), strength = 1.5 })):find("strength must be in (0, 1], got 1.5", 1, true))
    assert.truthy(err_of(samplers.sample_euler, exact, gen.zeros(1, 2, 1, 1), { 1, 2, 0 }, quiet):find("sigmas must decrease to 0, got 1 then 2 at 2", 1, true))
    assert.truthy(err_of(samplers.sample_ddpm, exact, gen.zeros(1, 2, 1, 1), { 1, 0 }, { variance = "big" }):find("variance must be", 1, true))
  end)
end)

describe("editing", function()
  local p = diffusion.process("vp", { T = 200 })
  local d = diffusion.denoiser(oracle_network(p, "eps", exact), p, "eps")

  it("inpaints: known pixels come back exactly, with and without RePaint resampling, for every sampler", function()
    local known = mixture.sample(mix, 40, gen.Generator(3))
    local mask = gen.tensor({ 1, 0 }):view(1, 2, 1, 1) -- keep the first coordinate
    for _, name in ipairs(samplers.sampler_names) do
      for _, r in ipairs { 1, 3 } do
        local x = diffusion.sample(d, { 40, 2, 1, 1 }, with(quiet, { sampler = name, steps = 5, mask = mask, known = known, resample = r, generator = gen.Generator(1) }))
        assert.equal(0, max_diff(x:narrow(2, 1, 1), known:narrow(2, 1, 1)), name)
        assert.is_true(max_diff(x:narrow(2, 2, 1), known:narrow(2, 2, 1)) > 0, name)
      end
    end
  end)

  it("edits an image (SDEdit): weak strength stays near it, full strength forgets it", function()
    local init = mixture.sample(mix, 200, gen.Generator(3))
    local function edit(strength)
      local x = diffusion.sample(d, { 200, 2, 1, 1 }, with(quiet, { sampler = "ddim", steps = 20, init = init, strength = strength, generator = gen.Generator(2) }))
      return (x - init):abs():mean():item()
    end
    local weak, strong = edit(0.1), edit(1)
    assert.is_true(weak < 0.2, weak)
    assert.is_true(strong > 3 * weak, strong .. " vs " .. weak)
  end)
end)

describe("UNet with adaptive group normalization", function()
  it("is off by default (keys and shapes unchanged) and, on, takes scale and shift from the embedding", function()
    local o = { widths = { 8, 16 }, time_dim = 16, heads = 2, groups = 4, classes = 2 }
    gen.manual_seed(1)
    local plain = gen.models.unet.UNet(o)
    gen.manual_seed(1)
    local ada = gen.models.unet.UNet(with(o, { adaptive_norm = true }))
    local a, b = plain:state_dict(), ada:state_dict()
    for k, v in pairs(a) do
      assert.truthy(b[k], k)
      if k:match("%.time%.weight$") then
        assert.same({ 2 * v:size(1), v:size(2) }, b[k].shape)
      elseif k:match("%.time%.bias$") then
        assert.same({ 2 * v:size(1) }, b[k].shape)
      else
        assert.same(v.shape, b[k].shape, k)
      end
    end
    for k in pairs(b) do assert.truthy(a[k], k) end
    assert.same({ 8, 16 }, plain.down_blocks:get(1).time.weight.shape)
    local x, t, y = gen.randn(2, 1, 8, 8), gen.tensor { 10, 500 }, gen.tensor({ 1, 3 }, "int64")
    local out = ada(x, t, y)
    assert.same({ 2, 1, 8, 8 }, out.shape)
    out:sum():backward()
    assert.truthy(ada.mid.time.weight.grad)
    -- the embedding scales the normalized features: a different time changes the output
    local other = gen.no_grad(ada, x, gen.tensor { 900, 20 }, y)
    assert.is_true(max_diff(out:detach(), other) > 1e-4)
  end)
end)

describe("likelihood by the probability-flow ODE", function()
  it("recovers the mixture's exact log-density, exactly traced or by Hutchinson's estimator", function()
    -- the exact denoiser written with autograd ops, so the trace of its Jacobian can be taken
    local function net_exact(xhat, sigma)
      local b = xhat:size(1)
      local logits, shrink, hp = {}, {}, {}
      for j = 1, mix.k do
        local v = mix.stds[j] ^ 2 + sigma * sigma
        logits[j], shrink[j], hp[j] = math.log(mix.weights[j]) - math.log(v), mix.stds[j] ^ 2 / v, 1 / (2 * v)
      end
      local mu = mix.means:float():view(1, mix.k, 2)
      local diff = xhat:view(b, 1, 2) - mu
      local w = gen.softmax(gen.tensor(logits):view(1, mix.k) - (diff * diff):sum(3) * gen.tensor(hp):view(1, mix.k), 2)
      return (w:view(b, mix.k, 1) * (mu + diff * gen.tensor(shrink):view(1, mix.k, 1))):sum(2):view(b, 2, 1, 1)
    end
    local n, smin = 200, 0.01
    local x = mixture.sample(mix, n, gen.Generator(3))
    local up = {}
    local k = diffusion.karras_sigmas(100, smin, 20)
    for i = 100, 1, -1 do up[#up + 1] = k[i] end
    local parts = {}
    for j = 1, mix.k do
      local v = mix.stds[j] ^ 2 + smin ^ 2
      parts[j] = (((x:double():view(n, 2) - mix.means[j]:view(1, 2)) ^ 2):sum(2) * (-0.5 / v) - math.log(2 * math.pi * v)
        + math.log(mix.weights[j])):view(n, 1)
    end
    local truth = gen.logsumexp(gen.cat(parts, 2), 2):view(n)
    local exact_ll = diffusion.log_likelihood(net_exact, x, up, { exact = true })
    assert.is_true((exact_ll - truth):abs():mean():item() < 0.02)
    local hutchinson = diffusion.log_likelihood(net_exact, x, up, { generator = gen.Generator(1) })
    assert.is_true(math.abs((hutchinson - truth):mean():item()) < 0.08) -- unbiased: the mean error is small
    assert.near(-truth:mean():item() / (2 * math.log(2)), diffusion.bits_per_dim(truth, 2):mean():item(), 1e-12)
    assert.truthy(err_of(diffusion.log_likelihood, net_exact, x, { 1, 0.5 }):find("sigmas must increase, got 1 then 0.5 at 2", 1, true))
  end)
end)

describe("classifier guidance", function()
  local process = diffusion.process("edm")
  -- a denoiser of the whole mixture, through the EDM network view, as the samplers call it
  local den = diffusion.denoiser(oracle_network(process, "edm", exact), process, "edm")
  local classifier = mixture.classifier(mix)

  it("turns the mixture's denoiser into one component's at scale 1, with the exact classifier", function()
    -- grad log p(x | y) = grad log p(x) + grad log p(y | x): D + sigma^2 grad log p(y | x) = E[x_0 | x, y]
    local guided = diffusion.classifier_guided(den, classifier, 1)
    local x = mixture.sample(mix, 6, gen.Generator(11)) + gen.randn({ 6, 2, 1, 1 }, { generator = gen.Generator(12) })
    for k = 1, 3 do
      local want = mixture.component_denoiser(mix, k)
      for _, sigma in ipairs { 0.1, 0.7, 3 } do
        local got = guided(x, sigma, { labels = gen.full({ 6 }, k, "int64") })
        assert.is_true(max_diff(got, want(x, sigma)) < 2e-4, string.format("component %d at sigma %g: %g", k, sigma, max_diff(got, want(x, sigma))))
      end
    end
  end)

  it("scales the classifier's pull, and leaves the denoiser alone without labels or at scale 0", function()
    local x = mixture.sample(mix, 4, gen.Generator(13)) + gen.randn({ 4, 2, 1, 1 }, { generator = gen.Generator(14) }) * 0.5
    local labels = gen.tensor({ 1, 2, 3, 1 }, "int64")
    local plain = den(x, 0.5)
    assert.equal(0, max_diff(diffusion.classifier_guided(den, classifier, 0)(x, 0.5, { labels = labels }), plain))
    assert.equal(0, max_diff(diffusion.classifier_guided(den, classifier, 3)(x, 0.5, {}), plain))
    local one = diffusion.classifier_guided(den, classifier, 1)(x, 0.5, { labels = labels }) - plain
    local three = diffusion.classifier_guided(den, classifier, 3)(x, 0.5, { labels = labels }) - plain
    assert.is_true(max_diff(three, one * 3) < 1e-5)
    assert.is_true(one:abs():max():item() > 1e-3)
  end)

  it("samples one component of the mixture when guided to it", function()
    local guided = diffusion.classifier_guided(den, classifier, 1)
    local n = 400
    local x = diffusion.sample(guided, { n, 2, 1, 1 }, { sampler = "heun", schedule = "karras", steps = 12, progress = false,
      labels = gen.full({ n }, 3, "int64"), generator = gen.Generator(15) })
    local one = mixture.new { means = { { 0, 0.6 } }, stds = { 0.25 } }
    local d = mixture.energy_distance(x, mixture.sample(one, n, gen.Generator(16)))
    local floor = mixture.energy_distance(mixture.sample(one, n, gen.Generator(17)), mixture.sample(one, n, gen.Generator(16)))
    assert.is_true(d < 3 * floor + 0.01, string.format("energy distance %g (floor %g)", d, floor))
  end)

  it("trains a noisy classifier on the process's x_t and rejects bad arguments", function()
    local clf = gen.models.noisy_classifier.NoisyClassifier { widths = { 8, 8 }, groups = 4, heads = 2, time_dim = 16 }
    local vp = diffusion.process("vp")
    local loss, acc = diffusion.classifier_loss(clf, vp, gen.rand(4, 1, 8, 8) * 2 - 1, gen.tensor({ 1, 2, 3, 4 }, "int64"))
    assert.is_true(loss:item() > 0 and acc >= 0 and acc <= 1)
    loss:backward()
    assert.is_true(clf.head.weight.grad:abs():sum():item() > 0)
    assert.same({ 4, 10 }, clf(gen.zeros(4, 1, 8, 8), gen.ones(4)).shape)
    assert.truthy(err_of(clf, gen.zeros(1, 1, 7, 8), gen.ones(1)):find("divisible by 2, got {1,1,7,8}", 1, true))
    assert.truthy(err_of(gen.models.noisy_classifier.NoisyClassifier, { classes = 1 }):find("classes must be an integer >= 2, got 1", 1, true))
    assert.truthy(err_of(diffusion.classifier_guided, {}, clf, 1):find("expected a denoiser", 1, true))
    assert.truthy(err_of(diffusion.classifier_guided, den, clf, "big"):find("scale must be a number, got big", 1, true))
  end)
end)
