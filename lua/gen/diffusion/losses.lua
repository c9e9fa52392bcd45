--- Training objectives of diffusion models. opts.label_dropout trains for classifier-free
-- guidance (labels dropped to the model's null label, see gen.diffusion.guidance).
local gen = require "gen"
local guidance = require "gen.diffusion.guidance"
local param = require "gen.diffusion.parameterization"

local M = {}

--- The DDPM loss (Ho et al., 2020): || eps - model(sqrt(ab) x0 + sqrt(1 - ab) eps, t, labels) ||^2
-- with the step t uniform in 1..T.
function M.ddpm_loss(model, schedule, x0, labels, opts)
  opts = opts or {}
  local b = x0:size(1)
  local t = gen.randint(1, schedule.T, { b })
  local eps = gen.randn_like(x0)
  local ab = schedule:alpha_bar_at(t)
  local xt = x0 * ab:sqrt() + eps * (1 - ab):sqrt()
  labels = guidance.drop_labels(labels, opts, model)
  return gen.mse_loss(model(xt, param.discrete_time(t:float()), labels), eps)
end

--- The rectified-flow loss (Liu et al., 2023): x_t = (1 - t) x0 + t eps with t = sigmoid(n),
-- n ~ N(0, 1) (logit-normal, Esser et al., 2024), and the model predicts the velocity eps - x0.
function M.rectified_flow_loss(model, x0, labels, opts)
  opts = opts or {}
  local b = x0:size(1)
  local t = gen.sigmoid(gen.randn(b))
  local tt = t:view(b, 1, 1, 1)
  local eps = gen.randn_like(x0)
  local xt = x0 * (1 - tt) + eps * tt
  labels = guidance.drop_labels(labels, opts, model)
  return gen.mse_loss(model(xt, param.flow_time(t), labels), eps - x0)
end

--- The weights on ||D - x_0||^2 (Karras et al., 2022, sec. 5): "simple" leaves each
-- parameterization its own plain MSE (DDPM's L_simple for eps, EDM's lambda for edm);
-- "snr" weighs by SNR = 1 / sigma^2; "min_snr" by min(SNR, gamma) (Hang et al., 2023; gamma = 5);
-- "edm" by lambda = (sigma^2 + sd^2) / (sigma sd)^2.
M.weightings = { "simple", "snr", "min_snr", "edm" }

--- The weight on ||D - x_0||^2 of a weighting at noise levels sigma (a tensor or number).
function M.loss_weight(weighting, kind, sigma, opts)
  opts = opts or {}
  if weighting == "simple" then return param.native_weight(kind, sigma, opts.sigma_data) end
  if weighting == "snr" then return 1 / (sigma * sigma) end
  if weighting == "min_snr" then
    local snr, gamma = 1 / (sigma * sigma), opts.min_snr_gamma or 5
    return type(snr) == "number" and math.min(snr, gamma) or snr:clamp(0, gamma)
  end
  if weighting == "edm" then return param.native_weight("edm", sigma, opts.sigma_data) end
  error(string.format("gen.diffusion.loss_weight: unknown weighting %s (expected %s)", tostring(weighting),
    table.concat(M.weightings, ", ")), 2)
end

--- denoising_loss(model, process, x0 [, labels [, opts]]): the loss of a network trained as
-- opts.parameterization ("eps" by default; see gen.diffusion.parameterization) on a process (see
-- gen.diffusion.processes): times t from the process's training distribution, x_t = s x_0 +
-- s sigma eps, and the mean squared error of the network's output against its target, weighted
-- by opts.weighting ("simple" by default: the plain MSE) relative to the kind's own weight.
-- opts.label_dropout trains for classifier-free guidance. With "simple", vp + eps draws and
-- computes exactly as ddpm_loss, and rectified + velocity exactly as rectified_flow_loss.
function M.denoising_loss(model, process, x0, labels, opts)
  opts = opts or {}
  local kind, weighting = opts.parameterization or "eps", opts.weighting or "simple"
  if not gen.is_tensor(x0) or x0:dim() ~= 4 then
    error("gen.diffusion.denoising_loss: expected images {B, C, H, W}, got " .. (gen.is_tensor(x0) and
      "{" .. table.concat(x0.shape, ",") .. "}" or type(x0)), 2)
  end
  local b = x0:size(1)
  local sd = opts.sigma_data or process.sigma_data or 0.5
  local t = process:sample_t(b)
  local eps = gen.randn_like(x0)
  local s, n, sigma = process:coefficients(t)
  labels = guidance.drop_labels(labels, opts, model)
  local input, time
  if kind == "edm" then
    local _, _, c_in, c_noise = param.edm_coefficients(sigma, sd)
    input, time = (x0 + eps * sigma) * c_in, (c_noise * 1000):view(b)
  else
    input, time = x0 * s + eps * n, process:net_time(t)
  end
  local out = model(input, time, labels)
  local target = param.prediction_target(kind, x0, eps, sigma, sd)
  if weighting == "simple" then return gen.mse_loss(out, target) end
  local rel = M.loss_weight(weighting, kind, sigma, opts) / param.native_weight(kind, sigma, sd)
  local per_sample = ((out - target) ^ 2):view(b, -1):mean(2)
  return (per_sample * rel:view(b)):mean()
end

return M
