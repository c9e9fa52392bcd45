--- StyleGAN (Karras et al., 2019) and StyleGAN2 (Karras et al., 2020) for 32x32 images, and for
-- 28x28 ones (Fashion-MNIST) through the same 32x32 networks: the generator crops the centre
-- 28x28 of its output and the discriminator pads its input back with the background value -1.
--
-- Generator = mapping network f: z -> w, then synthesis network g: (w_1 .. w_L) -> image.
--   f:  z -> z / sqrt(mean(z^2) + 1e-8) -> `mapping_layers` x [equalized Linear (lr_mul 0.01),
--       leaky ReLU 0.2 times sqrt 2]                                                        w {N, w_dim}
--   g:  a learned constant {C_4, 4, 4}; a block per resolution 4, 8, 16, 32 of styled 3x3
--       convolutions (one at 4, two elsewhere, the first after a nearest 2x upsampling), each
--       followed by per-pixel noise times a learned per-channel strength, a bias and leaky ReLU
--       0.2 times sqrt 2; a 1x1 toRGB per block, the RGB images summed with bilinear 2x
--       upsampling (the "skip" generator of StyleGAN2; its FIR-filtered resampling is not here). Layer i takes w_i: L = num_ws = 2 x blocks (8 at 32x32),
--       the toRGB of a block sharing its w with the next block's first convolution.
--   Styles enter each convolution in one of two ways (opts.style):
--     "adain"      AdaIN (StyleGAN): after the activation, instance normalization, then
--                  y_s (x - mu) / sigma + y_b with (y_s, y_b) = A(w) per channel;
--     "modulated"  modulated convolution (StyleGAN2): s = A(w) scales the weights' input channels,
--                  w'_{ijk} = s_i w_{ijk}, and demodulation divides each output channel by
--                  sqrt(sum_{i,k} w'_{ijk}^2 + 1e-8), so output features keep unit variance.
--                  Run as ONE grouped convolution, the batch folded into the groups.
--   Around it: the tracked mean w_avg (an exponential moving average of w over training, a
--   buffer), the truncation trick w' = w_avg + psi (w - w_avg), and style mixing (two latents,
--   w_1 before a random crossover layer and w_2 after it).
--
-- Discriminator (StyleGAN2's residual one): fromRGB 1x1, then per resolution 32 -> 16 -> 8 -> 4 a
-- block [conv3x3, lrelu, conv3x3, lrelu, 2x2 average pool] + [2x2 average pool, 1x1 conv], summed
-- and divided by sqrt 2; at 4x4 the minibatch standard deviation (one extra feature map, groups of
-- up to 4), conv3x3, a fully connected layer to features phi(x), and the logit psi(phi(x)). With
-- classes = K it is a projection discriminator (Miyato & Koyama, 2018):
--   D(x, y) = psi(phi(x)) + <embed(y), phi(x)>,
-- and the generator's mapping network takes the label too (its normalized embedding concatenated
-- to the normalized z, as in StyleGAN2-ADA). Every layer of both networks uses the equalized
-- learning rate. Widths are options: `widths = {C_4, C_8, C_16, C_32}` or `width = c` for
-- {2c, 2c, c, c / 2}.
local gen = require "gen"
local nn = gen.nn
local blocks = require "gen.nn.blocks"
local models = require "gen.models"

local M = {}

local SQRT2 = math.sqrt(2)
local resolutions = { [28] = true, [32] = true }
local styles = { adain = true, modulated = true }

local function lrelu(x) return gen.leaky_relu(x, 0.2) * SQRT2 end

local function shape_str(t)
  if not gen.is_tensor(t) then return type(t) end
  return "{" .. table.concat(t.shape, ",") .. "}"
end

-- the four widths {C_4, C_8, C_16, C_32}, checked
local function widths_of(who, opts)
  local w = opts.widths
  if w == nil then
    local c = opts.width or 64
    if math.type(c) ~= "integer" or c < 2 then error(string.format("%s: width must be an integer >= 2, got %s", who, tostring(c)), 4) end
    w = { 2 * c, 2 * c, c, c // 2 }
  end
  if type(w) ~= "table" or #w ~= 4 then error(who .. ": widths must be a list of 4 channel counts (4, 8, 16 and 32 pixels)", 4) end
  for _, c in ipairs(w) do
    if math.type(c) ~= "integer" or c < 1 then error(string.format("%s: widths must be positive integers, got %s", who, tostring(c)), 4) end
  end
  return w
end

local function positive_int(who, name, v, default)
  v = v == nil and default or v
  if math.type(v) ~= "integer" or v < 1 then error(string.format("%s: %s must be a positive integer, got %s", who, name, tostring(v)), 4) end
  return v
end

---------------------------------------------------------------- modulated convolution

--- modulated_conv2d(x {N, Cin, H, W}, weight {Cout, Cin, k, k}, styles {N, Cin} [, {demodulate =
-- true, padding = 0, eps = 1e-8, fused = true}]) -> {N, Cout, H', W'}: each sample n is convolved
-- with its own weights w'_n = weight * styles_n (per input channel), demodulated per output
-- channel unless demodulate = false.
-- fused = true: ONE grouped convolution, x viewed as {1, N Cin, H, W}, the per-sample weights as
-- {N Cout, Cin, k, k}, groups = N.
-- fused = false: the same numbers from the shared weight, since the modulation and the
-- demodulation are per channel: conv(x * s_n, weight) * d_n, with d_n the demodulation factors
-- (StyleGAN2's non-fused form). It runs gen's batched (Winograd) convolution, which beats the
-- grouped one on this machine: see the Generator's `fused` option.
function M.modulated_conv2d(x, weight, s, opts)
  opts = opts or {}
  if not (gen.is_tensor(x) and x:dim() == 4 and gen.is_tensor(weight) and weight:dim() == 4 and gen.is_tensor(s) and s:dim() == 2
      and s:size(1) == x:size(1) and s:size(2) == x:size(2) and weight:size(2) == x:size(2)) then
    error(string.format("gen.models.stylegan.modulated_conv2d: expected x {N, Cin, H, W}, weight {Cout, Cin, k, k} and "
      .. "styles {N, Cin}, got x %s, weight %s, styles %s", shape_str(x), shape_str(weight), shape_str(s)), 2)
  end
  local n, cin, h, w = table.unpack(x.shape)
  local cout, kh, kw = weight:size(1), weight:size(3), weight:size(4)
  local demodulate, padding = opts.demodulate ~= false, opts.padding or 0
  local eps = opts.eps or 1e-8
  if opts.fused == false then
    local y = gen.conv2d(x * s:view(n, cin, 1, 1), weight, nil, { padding = padding })
    if not demodulate then return y end
    -- sum_{i,k} (s_i w_{jik})^2 = sum_i s_i^2 sum_k w_{jik}^2: {N, Cin} x {Cin, Cout}
    local d = (gen.matmul(s * s, (weight * weight):view(cout, cin, kh * kw):sum(3):t()) + eps):rsqrt()
    return y * d:view(n, cout, 1, 1)
  end
  local wm = weight:view(1, cout, cin, kh, kw) * s:view(n, 1, cin, 1, 1) -- {N, Cout, Cin, k, k}
  if demodulate then
    local d = ((wm * wm):view(n, cout, cin * kh * kw):sum(3) + eps):rsqrt() -- {N, Cout}
    wm = wm * d:view(n, cout, 1, 1, 1)
  end
  local y = gen.conv2d(x:reshape(1, n * cin, h, w), wm:reshape(n * cout, cin, kh, kw), nil, { padding = padding, groups = n })
  return y:view(n, cout, y:size(3), y:size(4))
end

---------------------------------------------------------------- synthesis layers

local function equalized_linear(cin, cout, opts)
  opts = opts or {}
  opts.equalized = true
  return nn.Linear(cin, cout, opts)
end

-- One styled 3x3 convolution (optionally after a 2x upsampling) with noise, bias and activation.
local StyledConv = nn.Module:extend("StyledConv")
function StyledConv:init(cin, cout, w_dim, opts)
  self.in_channels, self.out_channels, self.up, self.style = cin, cout, opts.up or false, opts.style
  self.fused = opts.fused
  self.weight = nn.Parameter(gen.randn(cout, cin, 3, 3))
  self.weight_gain = 1 / math.sqrt(cin * 9)
  if self.style == "modulated" then
    self.affine = equalized_linear(w_dim, cin, { bias_init = 1 })
  else
    -- AdaIN: (y_s, y_b) = A(w), y_s starting at 1 and y_b at 0
    self.affine = equalized_linear(w_dim, 2 * cout)
    gen.no_grad(function() self.affine.bias:narrow(1, 1, cout):fill_(1) end)
  end
  self.noise_strength = nn.Parameter(gen.zeros(cout))
  self.bias = nn.Parameter(gen.zeros(cout))
end

function StyledConv:forward(x, w, opts)
  if self.up then x = gen.upsample(x, { scale = 2 }) end
  local weight = self.weight * self.weight_gain
  local n, c = x:size(1), self.out_channels
  if self.style == "modulated" then
    x = M.modulated_conv2d(x, weight, self.affine(w), { padding = 1, fused = self.fused })
  else
    x = gen.conv2d(x, weight, nil, { padding = 1 })
  end
  if opts.noise ~= "none" then
    local noise = gen.randn({ n, 1, x:size(3), x:size(4) }, opts.generator and { generator = opts.generator } or nil)
    x = x + noise * self.noise_strength:view(1, c, 1, 1)
  end
  x = lrelu(x + self.bias:view(1, c, 1, 1))
  if self.style == "adain" then
    local y = self.affine(w)
    x = gen.group_norm(x, c, nil, nil, 1e-8) * y:narrow(2, 1, c):view(n, c, 1, 1) + y:narrow(2, c + 1, c):view(n, c, 1, 1)
  end
  return x
end
function StyledConv:extra_repr()
  return string.format("%d, %d, style=%s%s", self.in_channels, self.out_channels, self.style, self.up and ", up=2" or "")
end

-- 1x1 convolution to image channels: modulated without demodulation (StyleGAN2), or a plain
-- equalized convolution (AdaIN variant).
local ToRGB = nn.Module:extend("ToRGB")
function ToRGB:init(cin, channels, w_dim, style, fused)
  self.style, self.fused = style, fused
  if style == "modulated" then
    self.affine = equalized_linear(w_dim, cin, { bias_init = 1 })
    self.weight = nn.Parameter(gen.randn(channels, cin, 1, 1))
    self.weight_gain = 1 / math.sqrt(cin)
    self.bias = nn.Parameter(gen.zeros(channels))
  else
    self.conv = nn.Conv2d(cin, channels, 1, { equalized = true })
  end
end
function ToRGB:forward(x, w)
  if self.style ~= "modulated" then return self.conv(x) end
  local y = M.modulated_conv2d(x, self.weight * self.weight_gain, self.affine(w), { demodulate = false, fused = self.fused })
  return y + self.bias:view(1, -1, 1, 1)
end

---------------------------------------------------------------- generator

M.Generator = nn.Module:extend("StyleGANGenerator")
--- Generator{resolution = 28 | 32, channels = 1, z_dim = 128, w_dim = z_dim, mapping_layers = 4,
-- lr_mul = 0.01, style = "modulated" | "adain", width = 64 (or widths = {C_4, C_8, C_16, C_32}),
-- classes = 0, w_avg_beta = 0.995, fused = false}. fused picks how modulated convolutions run
-- (see modulated_conv2d; the numbers are the same either way): true, one grouped convolution
-- per layer; false (the default), the shared weight's batched convolution between the per-channel
-- scalings. At the default size (width 64, batch 32) on this 2-core machine the generator's
-- forward and backward took 1.03 s fused and 0.28 s not: gen's grouped convolution runs im2col
-- GEMMs group by group, while the shared weight takes the Winograd path.
function M.Generator:init(opts)
  opts = opts or {}
  local who = "StyleGANGenerator"
  local c, r = models.image_shape(who, opts, resolutions)
  local style = opts.style or "modulated"
  if not styles[style] then error(string.format("%s: style must be \"adain\" or \"modulated\", got %s", who, tostring(style)), 3) end
  local widths = widths_of(who, opts)
  local fused = opts.fused or false
  if type(fused) ~= "boolean" then error(string.format("%s: fused must be true or false, got %s", who, tostring(fused)), 3) end
  self.resolution, self.channels, self.style = r, c, style
  self.z_dim = positive_int(who, "z_dim", opts.z_dim, 128)
  self.w_dim = positive_int(who, "w_dim", opts.w_dim, self.z_dim)
  self.classes = opts.classes or 0
  if math.type(self.classes) ~= "integer" or self.classes < 0 then
    error(string.format("%s: classes must be a non-negative integer, got %s", who, tostring(opts.classes)), 3)
  end
  local layers = positive_int(who, "mapping_layers", opts.mapping_layers, 4)
  local lr_mul = opts.lr_mul or 0.01
  self.w_avg_beta = opts.w_avg_beta or 0.995
  self.num_ws = 2 * #widths

  -- mapping network
  if self.classes > 0 then self.embed = blocks.ClassEmbedding(self.classes, self.z_dim) end
  local fc, width = {}, self.z_dim * (self.classes > 0 and 2 or 1)
  for _ = 1, layers do
    fc[#fc + 1] = equalized_linear(width, self.w_dim, { lr_mul = lr_mul })
    width = self.w_dim
  end
  self.mapping = nn.ModuleList(fc)
  self:register_buffer("w_avg", gen.zeros(self.w_dim))

  -- synthesis network
  self.const = nn.Parameter(gen.randn(widths[1], 4, 4))
  local convs, rgbs = {}, {}
  for i, cw in ipairs(widths) do
    if i > 1 then convs[#convs + 1] = StyledConv(widths[i - 1], cw, self.w_dim, { up = true, style = style, fused = fused }) end
    convs[#convs + 1] = StyledConv(cw, cw, self.w_dim, { style = style, fused = fused })
    rgbs[#rgbs + 1] = ToRGB(cw, c, self.w_dim, style, fused)
  end
  self.convs = nn.ModuleList(convs)
  self.to_rgb = nn.ModuleList(rgbs)
end

local function normalize_2nd_moment(x) return x * ((x * x):mean(2, true) + 1e-8):rsqrt() end

--- mapping(z {N, z_dim} [, labels]) -> w {N, w_dim}.
function M.Generator:map(z, labels)
  if not (gen.is_tensor(z) and z:dim() == 2 and z:size(2) == self.z_dim) then
    error(string.format("%s: expected z {N, %d}, got %s", self.__name, self.z_dim, shape_str(z)), 2)
  end
  local x = normalize_2nd_moment(z)
  if self.classes > 0 then
    x = gen.cat({ x, normalize_2nd_moment(self.embed(labels, z:size(1), self.__name)) }, 2)
  elseif labels ~= nil then
    error(self.__name .. ": labels given to an unconditional generator (build it with classes = K)", 2)
  end
  for _, layer in self.mapping:ipairs() do x = lrelu(layer(x)) end
  return x
end

--- truncate(w, psi [, cutoff]): w_avg + psi (w - w_avg), for w {N, w_dim} or ws {N, num_ws, w_dim}
-- (then only the first `cutoff` layers, all by default).
function M.Generator:truncate(w, psi, cutoff)
  if psi == nil or psi == 1 then return w end
  if type(psi) ~= "number" then error(self.__name .. ": psi must be a number, got " .. type(psi), 2) end
  local avg = self.w_avg
  if w:dim() == 2 then return avg + (w - avg) * psi end
  local k = cutoff or self.num_ws
  local t = avg + (w:narrow(2, 1, k) - avg) * psi
  if k == self.num_ws then return t end
  return gen.cat({ t, w:narrow(2, k + 1, self.num_ws - k) }, 2)
end

--- mix(w1, w2, crossover) -> ws {N, num_ws, w_dim}: layers 1..crossover take w1, the rest w2
-- (crossover = num_ws: w1 everywhere).
function M.Generator:mix(w1, w2, crossover)
  local n, L = w1:size(1), self.num_ws
  if math.type(crossover) ~= "integer" or crossover < 0 or crossover > L then
    error(string.format("%s: crossover must be an integer in 0..%d, got %s", self.__name, L, tostring(crossover)), 2)
  end
  local parts = {}
  if crossover > 0 then parts[#parts + 1] = w1:view(n, 1, self.w_dim):expand(n, crossover, self.w_dim) end
  if crossover < L then parts[#parts + 1] = w2:view(n, 1, self.w_dim):expand(n, L - crossover, self.w_dim) end
  return #parts == 1 and parts[1]:contiguous() or gen.cat(parts, 2)
end

--- synthesis(ws [, {noise = "random" | "none", generator}]): ws {N, num_ws, w_dim} or one w
-- {N, w_dim} for every layer -> images {N, C, R, R} (R = 28 crops the centre of 32).
function M.Generator:synthesis(ws, opts)
  opts = opts or {}
  if not gen.is_tensor(ws) or ws:size(-1) ~= self.w_dim or (ws:dim() == 3 and ws:size(2) ~= self.num_ws) or (ws:dim() ~= 2 and ws:dim() ~= 3) then
    error(string.format("%s: expected ws {N, %d, %d} or w {N, %d}, got %s", self.__name, self.num_ws, self.w_dim, self.w_dim, shape_str(ws)), 2)
  end
  if opts.noise ~= nil and opts.noise ~= "random" and opts.noise ~= "none" then
    error(self.__name .. ": noise must be \"random\" or \"none\", got " .. tostring(opts.noise), 2)
  end
  local n = ws:size(1)
  local function layer_w(i) return ws:dim() == 2 and ws or ws:select(2, i) end
  local x = self.const:view(1, -1, 4, 4):expand(n, self.const:size(1), 4, 4)
  x = self.convs:get(1)(x, layer_w(1), opts)
  local img = self.to_rgb:get(1)(x, layer_w(2))
  local wi = 2
  for b = 2, #self.to_rgb do
    x = self.convs:get(2 * b - 2)(x, layer_w(wi), opts)
    x = self.convs:get(2 * b - 1)(x, layer_w(wi + 1), opts)
    img = gen.upsample(img, { scale = 2, mode = "bilinear" }) + self.to_rgb:get(b)(x, layer_w(wi + 2))
    wi = wi + 2
  end
  if self.resolution == 28 then img = img:narrow(3, 3, 28):narrow(4, 3, 28) end
  return img
end

--- styles(z [, opts]) -> ws {N, num_ws, w_dim}, crossover: mapping, style mixing and truncation.
-- opts.mixing = p: with probability p (one draw per batch), a second latent z2 ~ N(0, I) and a
-- crossover layer uniform in 1..num_ws - 1 (w1 before and at it, w2 after); otherwise crossover
-- = num_ws. opts.psi truncates. In training mode the batch's mean w moves w_avg (beta 0.995).
function M.Generator:styles(z, opts)
  opts = opts or {}
  local w = self:map(z, opts.labels)
  if self.training and opts.update_w_avg ~= false then
    gen.no_grad(function()
      self.w_avg:mul_(self.w_avg_beta):add_(w:detach():mean(1) * (1 - self.w_avg_beta))
    end)
  end
  local crossover = self.num_ws
  local mixing = opts.mixing or 0
  if type(mixing) ~= "number" or mixing < 0 or mixing > 1 then
    error(self.__name .. ": mixing must be a probability in [0, 1], got " .. tostring(mixing), 2)
  end
  local w2 = w
  if mixing > 0 and gen.rand(1):item() < mixing then
    crossover = gen.randint(1, self.num_ws - 1, { 1 }):item()
    w2 = self:map(gen.randn(z.shape), opts.labels)
  end
  local ws = self:mix(w, w2, crossover)
  return self:truncate(ws, opts.psi, opts.truncation_cutoff), crossover
end

--- G(z [, opts]) -> images {N, C, R, R} in about [-1, 1]. opts: labels (int64 {N}, with classes),
-- psi (truncation), truncation_cutoff, mixing (probability), noise ("random" | "none"),
-- generator (for the noise), update_w_avg (default true in training mode). A tensor as the
-- second argument is taken as the labels.
function M.Generator:forward(z, opts)
  if gen.is_tensor(opts) then opts = { labels = opts } end
  opts = opts or {}
  local ws = self:styles(z, opts)
  return self:synthesis(ws, opts)
end

function M.Generator:extra_repr()
  return string.format("resolution=%d, style=%s, z_dim=%d, w_dim=%d, num_ws=%d%s", self.resolution, self.style, self.z_dim,
    self.w_dim, self.num_ws, self.classes > 0 and ", classes=" .. self.classes or "")
end

---------------------------------------------------------------- discriminator

local function conv(cin, cout, k, opts)
  opts = opts or {}
  opts.equalized, opts.padding = true, k // 2
  return nn.Conv2d(cin, cout, k, opts)
end

local DBlock = nn.Module:extend("DBlock")
function DBlock:init(cin, cout)
  self.conv0 = conv(cin, cin, 3)
  self.conv1 = conv(cin, cout, 3)
  self.skip = conv(cin, cout, 1, { bias = false })
end
function DBlock:forward(x)
  local y = self.skip(gen.avg_pool2d(x, 2))
  x = lrelu(self.conv0(x))
  x = gen.avg_pool2d(lrelu(self.conv1(x)), 2)
  return (x + y) * (1 / SQRT2)
end

--- The minibatch standard deviation (Karras et al., 2018): the batch split into groups of
-- `group` samples (sample n in group slot n // (N / group)), the standard deviation of every
-- feature over each group, averaged to one number per group and appended as a constant map.
local function minibatch_stddev(x, group)
  local n, c, h, w = table.unpack(x.shape)
  local g = math.min(group, n)
  while n % g ~= 0 do g = g - 1 end
  local m = n // g
  local y = x:view(g, m, c, h, w)
  y = y - y:mean(1, true)
  local s = ((y * y):mean(1) + 1e-8):pow(0.5):view(m, c * h * w):mean(2) -- {m}
  local map = s:view(m, 1, 1, 1) * gen.ones(1, 1, h, w, { dtype = x.dtype })
  local parts = {}
  for i = 1, g do parts[i] = map end
  return gen.cat({ x, gen.cat(parts, 1) }, 2)
end

M.Discriminator = nn.Module:extend("StyleGANDiscriminator")
--- Discriminator{resolution = 28 | 32, channels = 1, width = 64 (or widths = {C_4, C_8, C_16,
-- C_32}), classes = 0 (K: projection discriminator), mbstd_group = 4} -> logits {N, 1}.
function M.Discriminator:init(opts)
  opts = opts or {}
  local who = "StyleGANDiscriminator"
  local c, r = models.image_shape(who, opts, resolutions)
  local widths = widths_of(who, opts)
  self.resolution, self.channels = r, c
  self.classes = opts.classes or 0
  if math.type(self.classes) ~= "integer" or self.classes < 0 then
    error(string.format("%s: classes must be a non-negative integer, got %s", who, tostring(opts.classes)), 3)
  end
  self.mbstd_group = positive_int(who, "mbstd_group", opts.mbstd_group, 4)
  self.from_rgb = conv(c, widths[4], 1)
  local list = {}
  for i = 4, 2, -1 do list[#list + 1] = DBlock(widths[i], widths[i - 1]) end
  self.blocks = nn.ModuleList(list)
  local top = widths[1]
  self.conv = conv(top + 1, top, 3)
  self.fc = equalized_linear(top * 16, top)
  self.out = equalized_linear(top, 1)
  if self.classes > 0 then self.embed = blocks.ClassEmbedding(self.classes, top) end
end

-- {N, C, 28, 28} -> {N, C, 32, 32} with a border of -1 (the images' background), built with cat.
local function pad_background(x)
  local n, c = x:size(1), x:size(2)
  local side = gen.full({ n, c, 28, 2 }, -1, x.dtype)
  x = gen.cat({ side, x, side }, 4)
  local top = gen.full({ n, c, 2, 32 }, -1, x.dtype)
  return gen.cat({ top, x, top }, 3)
end

--- features(x) -> phi(x) {N, C_4}: everything before the logit.
function M.Discriminator:features(x)
  local r = self.resolution
  if not (gen.is_tensor(x) and x:dim() == 4 and x:size(2) == self.channels and x:size(3) == r and x:size(4) == r) then
    error(string.format("%s: expected images {N, %d, %d, %d}, got %s", self.__name, self.channels, r, r, shape_str(x)), 3)
  end
  if r == 28 then x = pad_background(x) end
  x = lrelu(self.from_rgb(x))
  for _, b in self.blocks:ipairs() do x = b(x) end
  x = lrelu(self.conv(minibatch_stddev(x, self.mbstd_group)))
  return lrelu(self.fc(x:flatten(2)))
end

--- D(x [, labels]) -> logits {N, 1}; with classes, psi(phi(x)) + <embed(y), phi(x)> / sqrt(C_4).
function M.Discriminator:forward(x, labels)
  local phi = self:features(x)
  local logit = self.out(phi)
  if self.classes > 0 then
    local e = self.embed(labels, x:size(1), self.__name)
    logit = logit + (e * phi):sum(2, true) * (1 / math.sqrt(phi:size(2)))
  elseif labels ~= nil then
    error(self.__name .. ": labels given to an unconditional discriminator (build it with classes = K)", 2)
  end
  return logit
end

function M.Discriminator:extra_repr()
  return string.format("resolution=%d%s", self.resolution, self.classes > 0 and ", projection, classes=" .. self.classes or "")
end

return M
