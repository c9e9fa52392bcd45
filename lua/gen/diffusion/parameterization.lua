--- What a diffusion network is given and what it predicts, in one place.
--
-- Time as the network sees it (the `t` argument of model(x, t, labels), a float tensor {B}):
--   DDPM/DDIM steps t in 1..T are passed as they are        (discrete_time)
--   rectified flow's continuous t in [0, 1] is passed as 1000 t (flow_time), so both kinds of
--   model see times on the same scale and share one time embedding.
--
-- Predictions and the conversions between them, for x_t = sqrt(ab) x_0 + sqrt(1 - ab) eps (VP)
-- and x_t = (1 - t) x_0 + t eps (rectified flow):
--   eps: the noise;  x0: the clean image;  v = sqrt(ab) eps - sqrt(1 - ab) x_0 (Salimans & Ho,
--   2022);  velocity = eps - x_0 = dx_t/dt on the straight path.
--
-- The general form (Karras et al., 2022, sec. 5): any network F becomes a denoiser
-- D(x^, sigma) ~ E[x_0 | x^] on x^ = x_0 + sigma eps (see gen.diffusion.processes), through what F
-- is trained to predict. With a = 1 / sqrt(1 + sigma^2) and b = sigma a (VP's sqrt(ab) and
-- sqrt(1 - ab) at the same noise level):
--   kind       F predicts                        D(x^, sigma)
--   eps        eps                               x^ - sigma F
--   x0         x_0                               F
--   v          a eps - b x_0                     a^2 x^ - b F
--   score      sigma grad log p(x^; sigma) = -eps x^ + sigma F
--   velocity   eps - x_0 (rectified flow)         (x^ - sigma F) / (1 + sigma)
--   edm        (x_0 - c_skip x^) / c_out         c_skip x^ + c_out F
-- with EDM's preconditioning c_skip = sd^2 / (sigma^2 + sd^2), c_out = sigma sd / sqrt(sigma^2 + sd^2),
-- c_in = 1 / sqrt(sigma^2 + sd^2), c_noise = ln(sigma) / 4 (sd = sigma_data, 0.5). Every kind but
-- edm shows the network the process's x_t = s x^ and its time; edm shows c_in x^ and c_noise
-- (times 1000). sigma may be a number or a {B, 1, 1, 1} tensor; x a tensor.
local gen = require "gen"
local guidance = require "gen.diffusion.guidance"

local M = {}

M.kinds = { "eps", "x0", "v", "score", "velocity", "edm" }

function M.discrete_time(step) return step end
function M.flow_time(t) return t * 1000 end

--- x_0 from the noise: (x_t - sqrt(1 - ab) eps) / sqrt(ab)
function M.x0_from_eps(x, eps, ab) return (x - eps * math.sqrt(1 - ab)) / math.sqrt(ab) end
--- the noise from x_0: (x_t - sqrt(ab) x_0) / sqrt(1 - ab)
function M.eps_from_x0(x, x0, ab) return (x - x0 * math.sqrt(ab)) / math.sqrt(1 - ab) end
--- the noise from v: sqrt(ab) v + sqrt(1 - ab) x_t
function M.eps_from_v(x, v, ab) return v * math.sqrt(ab) + x * math.sqrt(1 - ab) end
--- v from the noise and x_0
function M.v_from(eps, x0, ab) return eps * math.sqrt(ab) - x0 * math.sqrt(1 - ab) end
--- x_0 on the straight path from the velocity at time t: x_t - t v
function M.x0_from_velocity(x, velocity, t) return x - velocity * t end

local to_eps = {
  eps = function(_, out) return out end,
  x0 = M.eps_from_x0,
  v = M.eps_from_v,
}
--- The noise a VP model's output stands for, given its prediction kind ("eps", "x0" or "v").
function M.eps_from(prediction, x, out, ab)
  local f = to_eps[prediction or "eps"]
  if not f then error("gen.diffusion: prediction must be \"eps\", \"x0\" or \"v\", got " .. tostring(prediction), 3) end
  return f(x, out, ab)
end

---------------------------------------------------------------- the general form

local function sqrt(v) return type(v) == "number" and math.sqrt(v) or v:sqrt() end
local function log(v) return type(v) == "number" and math.log(v) or v:log() end

local function check_kind(fn, kind)
  for _, k in ipairs(M.kinds) do if k == kind then return kind end end
  error(string.format("gen.diffusion.%s: unknown parameterization %s (expected %s)", fn, tostring(kind),
    table.concat(M.kinds, ", ")), 3)
end

--- EDM's preconditioning at noise level sigma: c_skip, c_out, c_in, c_noise (sigma_data = 0.5).
function M.edm_coefficients(sigma, sigma_data)
  local sd = sigma_data or 0.5
  local v = sigma * sigma + sd * sd
  return sd * sd / v, sigma * sd / sqrt(v), 1 / sqrt(v), log(sigma) / 4
end

--- D(x^, sigma) from the network's output F of the given kind (the table above).
function M.denoised_from(kind, x, sigma, out, sigma_data)
  check_kind("denoised_from", kind)
  if kind == "eps" then return x - out * sigma end
  if kind == "x0" then return out end
  if kind == "score" then return x + out * sigma end
  if kind == "velocity" then return (x - out * sigma) / (1 + sigma) end
  if kind == "v" then
    local a2 = 1 / (1 + sigma * sigma)
    return x * a2 - out * (sigma * sqrt(a2))
  end
  local c_skip, c_out = M.edm_coefficients(sigma, sigma_data)
  return x * c_skip + out * c_out
end

--- The output F of the given kind that stands for the denoised D (the inverse of denoised_from).
function M.output_from(kind, x, sigma, denoised, sigma_data)
  check_kind("output_from", kind)
  local d = denoised
  if kind == "eps" then return (x - d) / sigma end
  if kind == "x0" then return d end
  if kind == "score" then return (d - x) / sigma end
  if kind == "velocity" then return (x - d * (1 + sigma)) / sigma end
  if kind == "v" then
    local a2 = 1 / (1 + sigma * sigma)
    return (x * a2 - d) / (sigma * sqrt(a2))
  end
  local c_skip, c_out = M.edm_coefficients(sigma, sigma_data)
  return (d - x * c_skip) / c_out
end

--- convert_prediction(from, to, x^, sigma, out): the prediction of kind `to` equivalent to `out`.
function M.convert_prediction(from, to, x, sigma, out, sigma_data)
  return M.output_from(to, x, sigma, M.denoised_from(from, x, sigma, out, sigma_data), sigma_data)
end

--- The score grad_x^ log p(x^; sigma) = (D - x^) / sigma^2 (Tweedie's formula).
function M.score_from_denoised(x, sigma, denoised) return (denoised - x) / (sigma * sigma) end

--- The training target of kind `kind` for clean x_0 and noise eps at noise level sigma.
function M.prediction_target(kind, x0, eps, sigma, sigma_data)
  check_kind("prediction_target", kind)
  if kind == "eps" then return eps end
  if kind == "x0" then return x0 end
  if kind == "score" then return -eps end
  if kind == "velocity" then return eps - x0 end
  if kind == "v" then
    local a = 1 / sqrt(1 + sigma * sigma)
    return eps * a - x0 * (sigma * a)
  end
  local c_skip, c_out = M.edm_coefficients(sigma, sigma_data)
  return (x0 * (1 - c_skip) - eps * (sigma * c_skip)) / c_out
end

--- The weight on ||D - x_0||^2 that the plain mean squared error of a kind's output carries:
-- ||F - F*||^2 = w ||D - x_0||^2 (eps and score: 1 / sigma^2 = SNR; x0: 1; v: SNR + 1; velocity:
-- (1 + sigma)^2 / sigma^2; edm: 1 / c_out^2, EDM's lambda).
function M.native_weight(kind, sigma, sigma_data)
  check_kind("native_weight", kind)
  if kind == "eps" or kind == "score" then return 1 / (sigma * sigma) end
  if kind == "x0" then return sigma * 0 + 1 end
  if kind == "v" then return 1 / (sigma * sigma) + 1 end
  if kind == "velocity" then return (1 + sigma) * (1 + sigma) / (sigma * sigma) end
  local _, c_out = M.edm_coefficients(sigma, sigma_data)
  return 1 / (c_out * c_out)
end

--- The network's input and time for a kind at process time t (noise level sigma): edm shows
-- c_in x^ and 1000 c_noise; the others the process's x_t = s(t) x^ and net_time(t).
function M.network_input(kind, process, x, sigma, t, sigma_data)
  if kind == "edm" then
    local _, _, c_in, c_noise = M.edm_coefficients(sigma, sigma_data or process.sigma_data)
    return x * c_in, c_noise * 1000
  end
  return x * process:scale(t), process:net_time(t)
end

local Denoiser = {}
Denoiser.__index = Denoiser
M.Denoiser = Denoiser

--- denoiser(model, process, kind [, {clip = c, sigma_data = 0.5, learned_variance = false}]): the
-- denoiser D(x^, sigma [, cond]) of a network model(x, t, labels) trained to predict `kind` on
-- `process`. cond = {labels, guidance, null_class} runs classifier-free guidance on the output
-- (gen.diffusion.guidance); clip = c clamps D to [-c, c] (the data range). sigma is a number: one
-- level for the batch. learned_variance = true: the network's output has 2C channels, the second
-- C being improved DDPM's variance interpolation v in [-1, 1] (gen.diffusion.vlb); the denoiser
-- returns D and v (guidance acts on the prediction only, v comes from the conditional branch),
-- and sample_ddpm's variance = "learned" uses it.
function M.denoiser(model, process, kind, opts)
  opts = opts or {}
  check_kind("denoiser", kind or "eps")
  if type(process) ~= "table" or not process.t_of_sigma then
    error("gen.diffusion.denoiser: expected a process (gen.diffusion.process(name)), got " .. tostring(process), 2)
  end
  return setmetatable({ model = model, process = process, kind = kind or "eps", clip = opts.clip,
    sigma_data = opts.sigma_data or process.sigma_data or 0.5, sigma_min = process.sigma_min,
    sigma_max = process.sigma_max, null_label = guidance.null_label(model), learned_variance = opts.learned_variance }, Denoiser)
end

function Denoiser:__call(x, sigma, cond)
  if type(sigma) ~= "number" or sigma ~= sigma or sigma <= 0 then
    error("gen.diffusion.denoiser: sigma must be a positive number, got " .. tostring(sigma), 2)
  end
  cond = cond or {}
  local t = self.process:t_of_sigma(sigma)
  local input, time = M.network_input(self.kind, self.process, x, sigma, t, self.sigma_data)
  local c = x:size(2)
  local gopts = self.learned_variance and setmetatable({ guided_channels = c }, { __index = cond }) or cond
  local out = guidance.guided(self.model, input, gen.full({ x:size(1) }, time), cond.labels, gopts)
  local v
  if self.learned_variance then
    if out:size(2) ~= 2 * c then
      error(string.format("gen.diffusion.denoiser: a learned-variance model must output 2C = %d channels, got {%s}", 2 * c,
        table.concat(out.shape, ",")), 2)
    end
    out, v = out:narrow(2, 1, c), out:narrow(2, c + 1, c)
  end
  local d = M.denoised_from(self.kind, x, sigma, out, self.sigma_data)
  if self.clip then d = d:clamp(-self.clip, self.clip) end
  return d, v
end

return M
