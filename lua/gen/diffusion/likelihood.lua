--- Likelihood by the probability-flow ODE (Song et al., 2021, sec. 4.3; Chen et al., 2018): the
-- ODE dx/dsigma = f(x, sigma) = (x - D(x, sigma)) / sigma carries x from the data (sigma_min) to
-- the prior (sigma_max), and the density changes by the divergence along the way:
--   log p(x(sigma_min); sigma_min) = log N(x(sigma_max); 0, sigma_max^2 I) + int div f dsigma
-- (the integral from sigma_min to sigma_max, div f = (d - tr dD/dx) / sigma in d dimensions).
-- The trace comes from Hutchinson's estimator tr J = E[z^T J z] with Rademacher z, fixed along
-- the path as in FFJORD (Grathwohl et al., 2019), one backward pass per probe; or, for small d,
-- exactly from the d basis vectors.
local gen = require "gen"

local M = {}

-- f(x, sigma) and the per-sample divergence estimate {B} (float64); the trace is the mean of
-- z^T J z over Hutchinson probes, or the sum over basis vectors (exact).
local function drift_and_divergence(denoise, x, sigma, probes, exact)
  local b = x:size(1)
  local trace
  local f
  for _, z in ipairs(probes) do
    local xr = x:detach():requires_grad_()
    local d = denoise(xr, sigma)
    ;(d * z):sum():backward()
    local tz = (xr.grad * z):view(b, -1):sum(2):double()
    trace = trace and trace + tz or tz
    f = f or ((x - d:detach()) / sigma)
  end
  local dim = x:numel() // b
  if not exact then trace = trace / #probes end
  return f, (trace * -1 + dim) / sigma
end

--- log_likelihood(denoise, x, sigmas [, opts]) -> {B} float64 log-densities in nats of the data
-- points x {B, ...} under the model's density at sigmas[1], integrating the ODE with Heun's
-- method over the increasing noise levels sigmas (sigmas[1] = sigma_min > 0, sigmas[#sigmas] =
-- sigma_max). opts.probes (1): Hutchinson probes per evaluation; opts.exact = true: the exact
-- trace from the basis vectors; opts.generator for the probes. denoise(x, sigma) must let
-- gradients through (a gen.diffusion.denoiser does).
function M.log_likelihood(denoise, x, sigmas, opts)
  opts = opts or {}
  if type(sigmas) ~= "table" or #sigmas < 2 or type(sigmas[1]) ~= "number" or sigmas[1] <= 0 then
    error("gen.diffusion.log_likelihood: expected increasing sigmas from sigma_min > 0, got " .. tostring(sigmas and sigmas[1]), 2)
  end
  for i = 2, #sigmas do
    if sigmas[i] <= sigmas[i - 1] then
      error(string.format("gen.diffusion.log_likelihood: sigmas must increase, got %g then %g at %d", sigmas[i - 1], sigmas[i], i), 2)
    end
  end
  local b, dim = x:size(1), x:numel() // x:size(1)
  local probes = {}
  if opts.exact then
    for i = 1, dim do
      local e = gen.zeros(b, dim)
      e:narrow(2, i, 1):add_(1)
      probes[i] = e:view(x.shape)
    end
  else
    for i = 1, opts.probes or 1 do
      probes[i] = gen.rand(x.shape, { generator = opts.generator }):lt(0.5):float() * 2 - 1
    end
  end
  x = x:float()
  local integral = gen.zeros({ b }, "float64")
  for i = 1, #sigmas - 1 do
    local s, s_next = sigmas[i], sigmas[i + 1]
    local h = s_next - s
    local f1, div1 = drift_and_divergence(denoise, x, s, probes, opts.exact)
    local xe = x + f1 * h
    local f2, div2 = drift_and_divergence(denoise, xe, s_next, probes, opts.exact)
    x = x + (f1 + f2) * (h / 2)
    integral = integral + (div1 + div2) * (h / 2)
  end
  local smax = sigmas[#sigmas]
  local prior = (x:double() ^ 2):view(b, -1):sum(2) * (-0.5 / (smax * smax)) - 0.5 * dim * math.log(2 * math.pi * smax * smax)
  return prior + integral
end

--- Bits per dimension of log-densities (nats) over d dimensions, gen.likelihood's convention:
-- with opts.range = {lo, hi} the density is of dequantized 8-bit data scaled to that range and the
-- bin width's offset is added; without opts, -log p / (d ln 2) as it stands.
function M.bits_per_dim(log_p, d, opts) return require("gen.likelihood").bits_per_dim(log_p, d, opts or { discrete = true }) end

return M
