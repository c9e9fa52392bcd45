--- gen.flows.MultiScale: the multi-scale architecture of RealNVP and Glow. Level l transforms its
-- input with a chain of flow layers; every level but the last then factors out half of the
-- channels (gen.flows.Split), which are scored by their prior and kept as one of the latents; the
-- last level's output is scored by the top prior. So a 1x32x32 image with three levels becomes
-- latents {2,16,16}, {4,8,8} and {16,4,4} (Glow: squeeze at the start of each level), and
--   log p(x) = sum_l log |det J_l| + sum_l log p(z_l | z_{l+1} ...) + log p(z_top).
local gen = require "gen"
local nn = gen.nn
local layers = require "gen.flows.layers"

local M = {}

local priors = { learned = true, standard = true }

--- MultiScale{shape = {C, H, W}, levels = L, level = fn, prior = "learned" | "standard"}:
-- fn(l, c, h, w) returns the list of layers of level l for an input {c, h, w} and the shape
-- {c', h', w'} they produce. prior: Glow's learned Gaussians (the split priors conditioned on the
-- kept half, the top prior's mean and log-scale learned per position) or RealNVP's N(0, I).
--- image_shape(name, opts, halvings) -> C, R: a flow model's image channels and resolution (16,
-- 32 or 64, default 32; gen.models.image_shape checks them), which `halvings` squeezes must divide.
function M.image_shape(name, opts, halvings)
  local c, r = require("gen.models").image_shape(name, { channels = opts.channels, resolution = opts.resolution or 32 },
    { [16] = true, [32] = true, [64] = true })
  if r % 2 ^ halvings ~= 0 then
    error(string.format("%s: resolution must be divisible by 2^%d (%d squeezes)", name, halvings, halvings), 3)
  end
  return c, r
end

M.MultiScale = nn.Module:extend("MultiScale")
function M.MultiScale:init(opts)
  local shape, levels = opts.shape, opts.levels
  if math.type(levels) ~= "integer" or levels < 1 then
    error("gen.flows.MultiScale: levels must be a positive integer, got " .. tostring(levels), 3)
  end
  local prior = opts.prior or "learned"
  if not priors[prior] then error("gen.flows.MultiScale: prior must be \"learned\" or \"standard\", got " .. tostring(prior), 3) end
  self.shape, self.dims = { table.unpack(shape) }, shape[1] * shape[2] * shape[3]
  self.levels, self.splits = nn.ModuleList(), nn.ModuleList()
  local c, h, w = shape[1], shape[2], shape[3]
  for l = 1, levels do
    local list, out = opts.level(l, c, h, w)
    self.levels:append(layers.Sequential(list))
    c, h, w = out[1], out[2], out[3]
    if l < levels then
      self.splits:append(layers.Split(c, { prior = prior }))
      c = c - c // 2
    end
  end
  self.top_shape = { c, h, w }
  if prior == "learned" then
    self.top_mean = nn.Parameter(gen.zeros(1, c, h, w))
    self.top_logsd = nn.Parameter(gen.zeros(1, c, h, w))
  end
end

function M.MultiScale:check(x, who)
  local s = self.shape
  if not gen.is_tensor(x) or x:dim() ~= 4 or x:size(2) ~= s[1] or x:size(3) ~= s[2] or x:size(4) ~= s[3] then
    error(string.format("%s: expects images {N, %d, %d, %d}, got %s", who, s[1], s[2], s[3],
      gen.is_tensor(x) and "{" .. table.concat(x.shape, ",") .. "}" or type(x)), 3)
  end
end

--- The top prior's mean and log standard deviation, {n, C, H, W}.
function M.MultiScale:top_params(n, dtype)
  local c, h, w = table.unpack(self.top_shape)
  if not self.top_mean then
    return gen.zeros({ n, c, h, w }, dtype), gen.zeros({ n, c, h, w }, dtype)
  end
  return self.top_mean:expand(n, c, h, w), self.top_logsd:expand(n, c, h, w)
end

--- encode(x) -> zs, log_p: the latents of every level (factored-out halves first, the top last)
-- and log p(x) {N} in nats, by the change of variables.
function M.MultiScale:encode(x)
  self:check(x, self.__name .. ":encode")
  local zs, logp = {}, gen.zeros({ x:size(1) }, x.dtype)
  for l, level in self.levels:ipairs() do
    local ld
    x, ld = level:forward(x)
    logp = logp + ld
    if l < #self.levels then
      local lp, z2
      x, lp, z2 = self.splits:get(l):forward(x)
      logp = logp + lp
      zs[#zs + 1] = z2
    end
  end
  local mean, logsd = self:top_params(x:size(1), x.dtype)
  zs[#zs + 1] = x
  return zs, logp + layers.gaussian_log_prob(x, mean, logsd)
end
M.MultiScale.forward = M.MultiScale.encode

--- log_prob(x) -> log p(x) {N}, in nats, of x in the model's input space.
function M.MultiScale:log_prob(x) return select(2, self:encode(x)) end

--- decode(zs [, {temperature, generator}]) -> x, the inverse of encode. Latents missing from zs
-- (all of them when zs = {}) are drawn from their priors at the given temperature.
function M.MultiScale:decode(zs, opts)
  opts = opts or {}
  local n_levels = #self.levels
  local x = zs[n_levels]
  if not x then
    local n = opts.n or error(self.__name .. ":decode: needs the top latent or opts.n", 2)
    local mean, logsd = self:top_params(n, opts.dtype or "float32")
    local eps = gen.randn(mean.shape, { dtype = mean.dtype, generator = opts.generator })
    x = mean + gen.exp(logsd) * eps * (opts.temperature or 1)
  end
  for l = n_levels, 1, -1 do
    if l < n_levels then
      x = self.splits:get(l):inverse(x, { z2 = zs[l], temperature = opts.temperature, generator = opts.generator })
    end
    x = self.levels:get(l):inverse(x)
  end
  return x
end
M.MultiScale.inverse = M.MultiScale.decode

--- sample(n [, {temperature = 1, generator}]) -> n images drawn from the model: every latent from
-- its prior with the standard deviation scaled by the temperature (Glow's "temperature"; 0 gives
-- the image of the priors' means).
function M.MultiScale:sample(n, opts)
  opts = opts or {}
  if math.type(n) ~= "integer" or n < 1 then error(self.__name .. ":sample: n must be a positive integer, got " .. tostring(n), 2) end
  local t = opts.temperature or 1
  if type(t) ~= "number" or t < 0 then error(self.__name .. ":sample: temperature must be a number >= 0, got " .. tostring(t), 2) end
  local dtype = self.top_mean and self.top_mean.dtype or (self:parameters()[1] or {}).dtype or "float32"
  return self:decode({}, { n = n, temperature = t, generator = opts.generator, dtype = dtype })
end

return M
