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

return M
