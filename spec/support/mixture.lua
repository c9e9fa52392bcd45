-- A Gaussian mixture in d dimensions whose exact denoiser is known in closed form, for testing
-- samplers: data x_0 ~ sum_k pi_k N(mu_k, s_k^2 I); at noise level sigma, x = x_0 + sigma eps has
-- p(x; sigma) = sum_k pi_k N(mu_k, (s_k^2 + sigma^2) I) and
--   D(x, sigma) = E[x_0 | x] = sum_k w_k(x) (mu_k + s_k^2 / (s_k^2 + sigma^2) (x - mu_k)),
-- w_k(x) the posterior probability of component k. Samples are {N, d, 1, 1} (image-shaped).
local gen = require "gen"

local M = {}

--- mixture{means = {{...}, ...}, stds = {...}, weights = {...}} (weights default to uniform).
function M.new(spec)
  local k, d = #spec.means, #spec.means[1]
  local w = spec.weights or {}
  for i = 1, k do w[i] = w[i] or 1 / k end
  return { k = k, d = d, means = gen.tensor(spec.means):double(), stds = spec.stds, weights = w }
end

--- n samples {n, d, 1, 1} drawn with generator g.
function M.sample(m, n, g)
  local comp = {}
  local u = gen.rand({ n }, { generator = g }):totable()
  for i = 1, n do
    local acc, c = 0, m.k
    for j = 1, m.k do
      acc = acc + m.weights[j]
      if u[i] <= acc then c = j; break end
    end
    comp[i] = c
  end
  local idx = gen.tensor(comp, "int64")
  local mu = m.means:index_select(1, idx)
  local std = gen.tensor(m.stds):double():index_select(1, idx):view(n, 1)
  return (mu + gen.randn({ n, m.d }, { generator = g, dtype = "float64" }) * std):float():view(n, m.d, 1, 1)
end

--- The exact denoiser D(x, sigma) (x {B, d, 1, 1}, sigma a number), computed in float64.
function M.denoiser(m)
  return function(x, sigma)
    local b = x:size(1)
    local xd = x:double():view(b, 1, m.d)
    local logits, shrink, half_prec = {}, {}, {}
    for j = 1, m.k do
      local v = m.stds[j] ^ 2 + sigma * sigma
      logits[j] = math.log(m.weights[j]) - 0.5 * m.d * math.log(v)
      shrink[j] = m.stds[j] ^ 2 / v
      half_prec[j] = 1 / (2 * v)
    end
    local diff = xd - m.means:view(1, m.k, m.d) -- {B, K, d}
    local logw = gen.tensor(logits):double():view(1, m.k) - (diff ^ 2):sum(3) * gen.tensor(half_prec):double():view(1, m.k)
    local w = gen.softmax(logw, 2):view(b, m.k, 1)
    local post = m.means:view(1, m.k, m.d) + diff * gen.tensor(shrink):double():view(1, m.k, 1)
    return (w * post):sum(2):float():view(b, m.d, 1, 1)
  end
end

--- The exact classifier of the mixture's components for the EDM process's network view (input x^,
-- time 250 ln sigma): logits log pi_k + log N(x; mu_k, (s_k^2 + sigma^2) I), differentiable by gen's
-- autograd (float32, as a network).
function M.classifier(m)
  return function(input, time)
    local b = input:size(1)
    local sigma = math.exp(time[1]:item() / 250)
    local x = input:view(b, 1, m.d)
    local mu = m.means:float():view(1, m.k, m.d)
    local logits = {}
    for j = 1, m.k do
      local v = m.stds[j] ^ 2 + sigma * sigma
      logits[j] = math.log(m.weights[j]) - 0.5 * m.d * math.log(v)
    end
    local inv = {}
    for j = 1, m.k do inv[j] = -1 / (2 * (m.stds[j] ^ 2 + sigma * sigma)) end
    return ((x - mu) ^ 2):sum(3) * gen.tensor(inv):view(1, m.k) + gen.tensor(logits):view(1, m.k)
  end
end

--- The exact denoiser of component k alone: mu_k + s_k^2 / (s_k^2 + sigma^2) (x - mu_k).
function M.component_denoiser(m, k)
  return function(x, sigma)
    local b = x:size(1)
    local v = m.stds[k] ^ 2 + sigma * sigma
    local mu = m.means:narrow(1, k, 1):float():view(1, m.d, 1, 1)
    return mu + (x:view(b, m.d, 1, 1) - mu) * (m.stds[k] ^ 2 / v)
  end
end

--- The energy distance 2 E|X - Y| - E|X - X'| - E|Y - Y'| between two sample sets {n, d, ...}
-- (Szekely & Rizzo): zero exactly when the distributions agree.
function M.energy_distance(a, b)
  local function mean_dist(p, q)
    local pp, qq = p:double():view(p:size(1), -1), q:double():view(q:size(1), -1)
    local d2 = (pp ^ 2):sum(2):view(-1, 1) + (qq ^ 2):sum(2):view(1, -1) - gen.matmul(pp, qq:t()) * 2
    return d2:clamp(0, math.huge):sqrt():mean():item()
  end
  return 2 * mean_dist(a, b) - mean_dist(a, a) - mean_dist(b, b)
end

return M
