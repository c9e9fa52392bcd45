--- gen.flows layers: invertible maps of image batches {N, C, H, W} for normalizing flows.
-- Every layer has forward(x) -> z, logdet and inverse(z) -> x, where logdet {N} is
-- log |det dz/dx| per sample, so that log p(x) = log p(z) + logdet (change of variables).
--   ActNorm              z = (x + b) exp(log s), per channel; b, s from the first batch (Glow, sec. 3.1)
--   InvConv1x1           z = W x at every pixel, log |det| = H W log |det W| (Glow, sec. 3.2)
--   InvConv1x1LU         the same with W = P L (U + diag(sign(s) exp(log |s|))): log |det| = H W sum log |s|
--   AffineCoupling       z_b = x_b exp(s(x_a)) + t(x_a), z_a = x_a; s bounded by tanh (RealNVP, sec. 3.3)
--   AdditiveCoupling     z_b = x_b + t(x_a) (NICE): volume preserving
--   Squeeze, Unsqueeze   {C, H, W} <-> {4C, H/2, W/2}, 2x2 blocks into channels (RealNVP, sec. 3.6)
--   Split                the multi-scale factor-out: z = (z1, z2), z2 scored by a Gaussian whose
--                        mean and log-scale are predicted from z1 (Glow) or by N(0, I) (RealNVP)
--   Sequential           a chain of the above: log-determinants add, inverse runs backwards
local gen = require "gen"
local nn = gen.nn

local M = {}
local LOG_2PI = math.log(2 * math.pi)

local function check_image(x, who, channels)
  if not gen.is_tensor(x) or x:dim() ~= 4 then
    error(string.format("%s: expects a batch of images {N, C, H, W}, got %s", who,
      gen.is_tensor(x) and "{" .. table.concat(x.shape, ",") .. "}" or type(x)), 3)
  end
  if channels and x:size(2) ~= channels then
    error(string.format("%s: expects %d channels, got {%s}", who, channels, table.concat(x.shape, ",")), 3)
  end
end

-- a per-sample constant c (a 0-d tensor or a number) as a {N} log-determinant
local function per_sample(c, x)
  local ones = gen.ones({ x:size(1) }, x.dtype)
  return ones * c
end

--- log N(z; mean, exp(logsd)^2), summed over all but the first dimension: {N}.
function M.gaussian_log_prob(z, mean, logsd)
  local e = (z - mean) * gen.exp(-logsd)
  local lp = (e * e + LOG_2PI) * -0.5 - logsd
  return lp:reshape(z:size(1), -1):sum(2)
end

--- log N(z; 0, I) summed over all but the first dimension: {N}.
function M.standard_normal_log_prob(z)
  return ((z * z + LOG_2PI) * -0.5):reshape(z:size(1), -1):sum(2)
end

-- A random orthogonal C x C matrix (Gram-Schmidt on Gaussian rows), Glow's initial 1x1 convolution.
local function random_orthogonal(c, generator)
  local rows = gen.randn({ c, c }, { dtype = "float64", generator = generator }):totable()
  for i = 1, c do
    local r = rows[i]
    for j = 1, i - 1 do
      local q, dot = rows[j], 0
      for k = 1, c do dot = dot + r[k] * q[k] end
      for k = 1, c do r[k] = r[k] - dot * q[k] end
    end
    local norm = 0
    for k = 1, c do norm = norm + r[k] * r[k] end
    norm = math.sqrt(norm)
    for k = 1, c do r[k] = r[k] / norm end
  end
  return gen.tensor(rows, "float32")
end
M.random_orthogonal = random_orthogonal

local function spatial(x) return x:size(3) * x:size(4) end

-- ---------------------------------------------------------------------------------------------
--- ActNorm(channels): an affine map per channel, z = (x + bias) * exp(logs), whose parameters are
-- set from the first batch it sees so that z has zero mean and unit variance per channel. The
-- buffer `initialized` records it in the state dict: a loaded or resumed model is not re-initialized.
M.ActNorm = nn.Module:extend("ActNorm")
function M.ActNorm:init(channels)
  self.channels = channels
  self.bias = nn.Parameter(gen.zeros(1, channels, 1, 1))
  self.logs = nn.Parameter(gen.zeros(1, channels, 1, 1))
  self:register_buffer("initialized", gen.zeros(1))
end

function M.ActNorm:initialize(x)
  gen.no_grad(function()
    local c = self.channels
    local flat = x:detach():transpose(1, 2):reshape(c, -1) -- {C, N H W}
    local mean = flat:mean(2, true)
    local var = ((flat - mean) ^ 2):mean(2)
    self.bias:copy_((-mean):view(1, c, 1, 1))
    self.logs:copy_((-gen.log(gen.sqrt(var) + 1e-6)):view(1, c, 1, 1))
    self.initialized:fill_(1)
  end)
end

function M.ActNorm:forward(x)
  check_image(x, "gen.flows.ActNorm", self.channels)
  if self.initialized:item() == 0 then self:initialize(x) end
  local z = (x + self.bias) * gen.exp(self.logs)
  return z, per_sample(self.logs:sum() * spatial(x), x)
end

function M.ActNorm:inverse(z)
  check_image(z, "gen.flows.ActNorm:inverse", self.channels)
  return z * gen.exp(-self.logs) - self.bias
end

-- ---------------------------------------------------------------------------------------------
--- InvConv1x1(channels [, {generator}]): z = W x at every pixel, W [C, C] initialized to a random
-- rotation; log |det| = H W log |det W| by gen.linalg.slogdet (the plain form of Glow).
M.InvConv1x1 = nn.Module:extend("InvConv1x1")
function M.InvConv1x1:init(channels, opts)
  self.channels = channels
  self.weight = nn.Parameter(random_orthogonal(channels, (opts or {}).generator))
end

function M.InvConv1x1:matrix() return self.weight end

local function conv1x1(x, w) return gen.conv2d(x, w:view(w:size(1), w:size(2), 1, 1)) end

function M.InvConv1x1:forward(x)
  check_image(x, "gen.flows.InvConv1x1", self.channels)
  local _, logabs = gen.linalg.slogdet(self.weight)
  return conv1x1(x, self.weight), per_sample(logabs * spatial(x), x)
end

function M.InvConv1x1:inverse(z)
  check_image(z, "gen.flows.InvConv1x1:inverse", self.channels)
  return conv1x1(z, gen.linalg.inverse(self.weight))
end

--- InvConv1x1LU(channels [, {generator}]): Glow's LU-decomposed 1x1 convolution,
-- W = P L (U + diag(sign_s * exp(log_s))), P a fixed permutation, L unit lower triangular, U
-- strictly upper triangular, sign_s fixed: log |det W| = sum(log_s) costs O(C), not O(C^3).
M.InvConv1x1LU = nn.Module:extend("InvConv1x1LU")
function M.InvConv1x1LU:init(channels, opts)
  self.channels = channels
  local P, L, U = gen.linalg.lu(random_orthogonal(channels, (opts or {}).generator))
  local eye = gen.eye(channels)
  local rows, cols = gen.arange(1, channels + 1):view(channels, 1), gen.arange(1, channels + 1):view(1, channels)
  local s = (U * eye):sum(2)
  self:register_buffer("p", P)
  self:register_buffer("sign_s", s:gt(0):float() * 2 - 1)
  self:register_buffer("lower_mask", rows:gt(cols):float())
  self:register_buffer("eye", eye)
  self.lower = nn.Parameter(L * self.lower_mask)
  self.upper = nn.Parameter(U * self.lower_mask:t())
  self.log_s = nn.Parameter(s:abs():log())
end

--- The factors P, L, U + diag(s) of W, and W itself.
function M.InvConv1x1LU:factors()
  local L = self.lower * self.lower_mask + self.eye
  local U = self.upper * self.lower_mask:t() + self.eye * (self.sign_s * gen.exp(self.log_s)):view(1, -1)
  return self.p, L, U
end

function M.InvConv1x1LU:matrix()
  local P, L, U = self:factors()
  return P:matmul(L):matmul(U)
end

function M.InvConv1x1LU:forward(x)
  check_image(x, "gen.flows.InvConv1x1LU", self.channels)
  return conv1x1(x, self:matrix()), per_sample(self.log_s:sum() * spatial(x), x)
end

-- W^-1 = U^-1 L^-1 P^T by two triangular solves
function M.InvConv1x1LU:inverse(z)
  check_image(z, "gen.flows.InvConv1x1LU:inverse", self.channels)
  local P, L, U = self:factors()
  local linv_pt = gen.linalg.solve_triangular(L, P:t(), { upper = false, unitriangular = true })
  return conv1x1(z, gen.linalg.solve_triangular(U, linv_pt, { upper = true }))
end

-- ---------------------------------------------------------------------------------------------
-- The coupling network: 3x3 conv, ReLU, 1x1 conv, ReLU, 3x3 conv initialized to zero, so that
-- every coupling starts as the identity (Glow's zero-initialized last layer).
local function coupling_net(cin, cout, hidden)
  local last = nn.Conv2d(hidden, cout, 3, { padding = 1 })
  gen.no_grad(function()
    last.weight:zero_()
    last.bias:zero_()
  end)
  return nn.Sequential(nn.Conv2d(cin, hidden, 3, { padding = 1 }), nn.ReLU(), nn.Conv2d(hidden, hidden, 1), nn.ReLU(), last)
end

-- checkerboard mask {1, 1, H, W}: 1 where (row + col + parity) is even
local mask_cache = setmetatable({}, { __mode = "v" })
local function checkerboard(h, w, parity, dtype)
  local key = table.concat({ h, w, parity, dtype }, ":")
  if mask_cache[key] then return mask_cache[key] end
  local m = {}
  for i = 1, h do
    local row = {}
    for j = 1, w do row[j] = (i + j + parity) % 2 == 0 and 1 or 0 end
    m[i] = row
  end
  local t = gen.tensor(m, dtype):view(1, 1, h, w)
  mask_cache[key] = t
  return t
end

-- Shared by the affine and additive couplings: how x splits into the conditioning part x_a and the
-- transformed part x_b, and how the network's outputs map back.
local Coupling = nn.Module:extend("Coupling")

local masks = { checkerboard = true, channel = true }
function Coupling:setup(channels, opts, outputs_per_channel)
  opts = opts or {}
  local mask = opts.mask or "channel"
  if not masks[mask] then error("gen.flows coupling: mask must be \"checkerboard\" or \"channel\", got " .. tostring(mask), 3) end
  if mask == "channel" and channels < 2 then error("gen.flows coupling: a channel mask needs at least 2 channels", 3) end
  self.channels, self.mask, self.parity = channels, mask, opts.parity or 0
  local hidden = opts.hidden or 64
  if mask == "channel" then
    local ca = channels // 2
    if self.parity == 1 then ca = channels - ca end
    self.ca, self.cb = ca, channels - ca
    self.net = coupling_net(ca, outputs_per_channel * self.cb, hidden)
  else
    self.net = coupling_net(channels, outputs_per_channel * channels, hidden)
  end
end

-- x_a (the input of the network), and for channel masks x_b
function Coupling:parts(x)
  if self.mask == "channel" then
    local first, second = x:narrow(2, 1, self.channels // 2), x:narrow(2, self.channels // 2 + 1, self.channels - self.channels // 2)
    if self.parity == 1 then return second, first end
    return first, second
  end
  local b = checkerboard(x:size(3), x:size(4), self.parity, x.dtype)
  return x * b, nil, b
end

function Coupling:join(xa, zb)
  if self.parity == 1 then return gen.cat({ zb, xa }, 2) end
  return gen.cat({ xa, zb }, 2)
end

--- AffineCoupling(channels, {mask = "channel" | "checkerboard", parity = 0 | 1, hidden = 64}):
-- z_b = x_b * exp(s) + t with (s_raw, t) = net(x_a) and s = scale * tanh(s_raw) (bounded, so a
-- step cannot blow up the scale; `scale` is learned per channel); log |det| = sum(s).
M.AffineCoupling = Coupling:extend("AffineCoupling")
function M.AffineCoupling:init(channels, opts)
  self:setup(channels, opts, 2)
  self.scale = nn.Parameter(gen.ones(1, self.mask == "channel" and self.cb or channels, 1, 1))
end

function M.AffineCoupling:st(xa, keep)
  local h = self.net(xa)
  local c = h:size(2) // 2
  local s, t = self.scale * gen.tanh(h:narrow(2, 1, c)), h:narrow(2, c + 1, c)
  if keep then -- checkerboard: only the unmasked positions move
    s, t = s * (1 - keep), t * (1 - keep)
  end
  return s, t
end

function M.AffineCoupling:forward(x)
  check_image(x, "gen.flows.AffineCoupling", self.channels)
  local xa, xb, keep = self:parts(x)
  local s, t = self:st(xa, keep)
  local logdet = s:reshape(x:size(1), -1):sum(2)
  if self.mask == "channel" then return self:join(xa, xb * gen.exp(s) + t), logdet end
  return x * gen.exp(s) + t, logdet
end

function M.AffineCoupling:inverse(z)
  check_image(z, "gen.flows.AffineCoupling:inverse", self.channels)
  local za, zb, keep = self:parts(z)
  local s, t = self:st(za, keep)
  if self.mask == "channel" then return self:join(za, (zb - t) * gen.exp(-s)) end
  return (z - t) * gen.exp(-s)
end

--- AdditiveCoupling(channels, {mask, parity, hidden}): z_b = x_b + t(x_a); log |det| = 0.
M.AdditiveCoupling = Coupling:extend("AdditiveCoupling")
function M.AdditiveCoupling:init(channels, opts) self:setup(channels, opts, 1) end

function M.AdditiveCoupling:shift(xa, keep)
  local t = self.net(xa)
  return keep and t * (1 - keep) or t
end

function M.AdditiveCoupling:forward(x)
  check_image(x, "gen.flows.AdditiveCoupling", self.channels)
  local xa, xb, keep = self:parts(x)
  local t = self:shift(xa, keep)
  local zero = gen.zeros({ x:size(1) }, x.dtype)
  if self.mask == "channel" then return self:join(xa, xb + t), zero end
  return x + t, zero
end

function M.AdditiveCoupling:inverse(z)
  check_image(z, "gen.flows.AdditiveCoupling:inverse", self.channels)
  local za, zb, keep = self:parts(z)
  local t = self:shift(za, keep)
  if self.mask == "channel" then return self:join(za, zb - t) end
  return z - t
end

-- ---------------------------------------------------------------------------------------------
--- squeeze(x) {N, C, H, W} -> {N, 4C, H/2, W/2}: each 2x2 block of a channel becomes 4 channels.
function M.squeeze(x)
  check_image(x, "gen.flows.squeeze")
  local n, c, h, w = x:size(1), x:size(2), x:size(3), x:size(4)
  if h % 2 ~= 0 or w % 2 ~= 0 then
    error(string.format("gen.flows.squeeze: height and width must be even, got {%s}", table.concat(x.shape, ",")), 2)
  end
  return x:reshape(n, c, h // 2, 2, w // 2, 2):permute(1, 2, 4, 6, 3, 5):reshape(n, c * 4, h // 2, w // 2)
end

--- unsqueeze(z) {N, 4C, H, W} -> {N, C, 2H, 2W}, the inverse of squeeze.
function M.unsqueeze(z)
  check_image(z, "gen.flows.unsqueeze")
  local n, c4, h, w = z:size(1), z:size(2), z:size(3), z:size(4)
  if c4 % 4 ~= 0 then
    error(string.format("gen.flows.unsqueeze: channels must be a multiple of 4, got {%s}", table.concat(z.shape, ",")), 2)
  end
  local c = c4 // 4
  return z:reshape(n, c, 2, 2, h, w):permute(1, 2, 5, 3, 6, 4):reshape(n, c, h * 2, w * 2)
end

--- Squeeze(): squeeze as a flow layer (log |det| = 0: a permutation).
M.Squeeze = nn.Module:extend("Squeeze")
function M.Squeeze:forward(x) return M.squeeze(x), gen.zeros({ x:size(1) }, x.dtype) end
function M.Squeeze:inverse(z) return M.unsqueeze(z) end

--- Unsqueeze(): unsqueeze as a flow layer.
M.Unsqueeze = nn.Module:extend("Unsqueeze")
function M.Unsqueeze:forward(x) return M.unsqueeze(x), gen.zeros({ x:size(1) }, x.dtype) end
function M.Unsqueeze:inverse(z) return M.squeeze(z) end

-- ---------------------------------------------------------------------------------------------
--- Split(channels, {prior = "learned" | "standard"}): the multi-scale factor-out. forward(x) ->
-- z1, log_p, z2: z1 the first half of the channels (it goes on through the flow), z2 the second
-- half (factored out) and log_p {N} = log p(z2 | z1), a Gaussian whose mean and log-scale a
-- zero-initialized 3x3 convolution predicts from z1 (Glow) or N(0, I) (RealNVP).
-- inverse(z1 [, {z2, temperature = 1, generator}]) -> x: with no z2 it is drawn from the prior,
-- with its standard deviation scaled by the temperature (0 gives the mean).
M.Split = nn.Module:extend("Split")
function M.Split:init(channels, opts)
  opts = opts or {}
  if channels < 2 then error("gen.flows.Split: needs at least 2 channels, got " .. tostring(channels), 2) end
  self.channels, self.c1 = channels, channels - channels // 2
  self.learned = (opts.prior or "learned") == "learned"
  if self.learned then
    self.prior = nn.Conv2d(self.c1, 2 * (channels - self.c1), 3, { padding = 1 })
    gen.no_grad(function()
      self.prior.weight:zero_()
      self.prior.bias:zero_()
    end)
  end
end

--- The prior's mean and log standard deviation of z2 given z1.
function M.Split:prior_params(z1)
  local c2 = self.channels - self.c1
  if not self.learned then
    local shape = { z1:size(1), c2, z1:size(3), z1:size(4) }
    return gen.zeros(shape, z1.dtype), gen.zeros(shape, z1.dtype)
  end
  local h = self.prior(z1)
  return h:narrow(2, 1, c2), h:narrow(2, c2 + 1, c2)
end

function M.Split:forward(x)
  check_image(x, "gen.flows.Split", self.channels)
  local z1, z2 = x:narrow(2, 1, self.c1), x:narrow(2, self.c1 + 1, self.channels - self.c1)
  local mean, logsd = self:prior_params(z1)
  return z1, M.gaussian_log_prob(z2, mean, logsd), z2
end

function M.Split:inverse(z1, opts)
  opts = opts or {}
  check_image(z1, "gen.flows.Split:inverse", self.c1)
  local z2 = opts.z2
  if not z2 then
    local mean, logsd = self:prior_params(z1)
    local t = opts.temperature or 1
    local eps = gen.randn(mean.shape, { dtype = mean.dtype, generator = opts.generator })
    z2 = mean + gen.exp(logsd) * eps * t
  end
  return gen.cat({ z1, z2 }, 2)
end

-- ---------------------------------------------------------------------------------------------
--- Sequential(layers): a chain of flow layers; forward adds their log-determinants, inverse runs
-- the inverses in reverse order.
M.Sequential = nn.Module:extend("FlowSequential")
function M.Sequential:init(layers)
  self.layers = nn.ModuleList(layers)
end

function M.Sequential:forward(x)
  local logdet = gen.zeros({ x:size(1) }, x.dtype)
  for _, layer in self.layers:ipairs() do
    local ld
    x, ld = layer:forward(x)
    logdet = logdet + ld
  end
  return x, logdet
end

function M.Sequential:inverse(z)
  for i = #self.layers, 1, -1 do z = self.layers:get(i):inverse(z) end
  return z
end

return M
