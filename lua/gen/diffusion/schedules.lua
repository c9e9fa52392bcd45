--- Discrete noise schedules of denoising diffusion: betas over steps 1..T and their products
-- alpha_bar_t = prod_{s <= t} (1 - beta_s), so that q(x_t | x_0) = N(sqrt(alpha_bar_t) x_0, (1 - alpha_bar_t) I).
local gen = require "gen"

local M = {}

local Schedule = {}
Schedule.__index = Schedule
M.Schedule = Schedule

--- A schedule from a Lua list of betas.
function M.from_betas(betas)
  local s = setmetatable({ T = #betas, betas = betas, alphas = {}, alpha_bars = {} }, Schedule)
  local prod = 1
  for t, b in ipairs(betas) do
    s.alphas[t] = 1 - b
    prod = prod * (1 - b)
    s.alpha_bars[t] = prod
  end
  return s
end

--- Linear betas from beta_1 to beta_T (Ho et al.: 1e-4 to 0.02 over 1000 steps).
function M.linear_schedule(T, beta1, betaT)
  T, beta1, betaT = T or 1000, beta1 or 1e-4, betaT or 0.02
  local betas = {}
  for t = 1, T do betas[t] = beta1 + (betaT - beta1) * (t - 1) / math.max(T - 1, 1) end
  return M.from_betas(betas)
end

--- Cosine schedule (Nichol & Dhariwal, 2021): alpha_bar(t) = cos^2(((t/T + s)/(1 + s)) pi/2), betas
-- clipped at 0.999.
function M.cosine_schedule(T, s)
  T, s = T or 1000, s or 0.008
  local function f(t) return math.cos(((t / T + s) / (1 + s)) * math.pi / 2) ^ 2 end
  local betas = {}
  for t = 1, T do betas[t] = math.min(1 - f(t) / f(t - 1), 0.999) end
  return M.from_betas(betas)
end

--- alpha_bar at integer steps (t {B} int64, 1-based) as a {B, 1, 1, 1} tensor.
function Schedule:alpha_bar_at(t)
  local vals = {}
  for i, v in ipairs(t:totable()) do vals[i] = self.alpha_bars[v] end
  return gen.tensor(vals):view(-1, 1, 1, 1)
end

return M
