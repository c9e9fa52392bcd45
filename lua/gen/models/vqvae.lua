--- VQ-VAE (van den Oord et al., 2017) and VQ-VAE-2 (Razavi et al., 2019) for square images in [0, 1].
--
--   local vqvae = require "gen.models.vqvae"
--   local model = vqvae.VQVAE {levels = 1, codebook_size = 512, code_dim = 64}
--   local xhat, q = model(x)                -- q.loss: the VQ terms of every level
--   local codes = model:encode_indices(x)   -- int64 {B, 7, 7}; two levels: {top = {B,7,7}, bottom = {B,14,14}}
--   local x2 = model:decode_indices(codes)  -- images in [0, 1] (model.range), unclamped
--
-- Options (every one is recorded in a stage-1 checkpoint, see config()): resolution (28, divisible
-- by 4), channels (1), levels (1 or 2), codebook_size K (512), code_dim D (64), width (64, the
-- hidden channels), res_blocks (2) of res_width (32) channels, and the quantizer's beta (0.25),
-- ema (false), decay (0.99), restart (1; 0 disables dead-code restarts).
--
-- One level: the encoder halves the resolution twice (28 -> 14 -> 7) and the codes sit on a
-- (resolution / 4)^2 grid. Two levels, as in VQ-VAE-2: the bottom encoder halves once (14 x 14),
-- the top encoder halves again (7 x 7); the top codes are decoded to the bottom grid and
-- concatenated with the bottom features before the bottom quantizer, and the image decoder sees
-- the bottom codes together with the upsampled top codes, so the bottom level codes only what the
-- top one misses. The networks are the paper's: strided 4 x 4 convolutions, residual 3 x 3 / 1 x 1
-- blocks, transposed convolutions back up, and a linear output.
local gen = require "gen"
local nn = gen.nn
local models = require "gen.models"

local M = {}

-- x + conv1x1(relu(conv3x3(relu(x))))
local Residual = nn.Module:extend("VQResidual")
function Residual:init(c, hidden)
  self.conv1 = nn.Conv2d(c, hidden, 3, { padding = 1 })
  self.conv2 = nn.Conv2d(hidden, c, 1)
end
function Residual:forward(x) return x + self.conv2(gen.relu(self.conv1(gen.relu(x)))) end

local function res_stack(list, c, n, hidden)
  for _ = 1, n do list[#list + 1] = Residual(c, hidden) end
  list[#list + 1] = nn.ReLU()
  return list
end

-- cin -> cout channels at 1 / 2^halvings of the resolution
local function encoder(cin, w, cout, halvings, o)
  local layers = {}
  for i = 1, halvings do
    layers[#layers + 1] = nn.Conv2d(i == 1 and cin or w, w, 4, { stride = 2, padding = 1 })
    layers[#layers + 1] = nn.ReLU()
  end
  layers[#layers + 1] = nn.Conv2d(w, w, 3, { padding = 1 })
  res_stack(layers, w, o.res_blocks, o.res_width)
  layers[#layers + 1] = nn.Conv2d(w, cout, 1)
  return nn.Sequential(table.unpack(layers))
end

-- cin -> cout channels at 2^doublings times the resolution
local function decoder(cin, w, cout, doublings, o)
  local layers = { nn.Conv2d(cin, w, 3, { padding = 1 }) }
  res_stack(layers, w, o.res_blocks, o.res_width)
  for i = 1, doublings do
    layers[#layers + 1] = nn.ConvTranspose2d(w, i == doublings and cout or w, 4, { stride = 2, padding = 1 })
    if i < doublings then layers[#layers + 1] = nn.ReLU() end
  end
  return nn.Sequential(table.unpack(layers))
end

local defaults = { resolution = 28, channels = 1, levels = 1, codebook_size = 512, code_dim = 64, width = 64, res_blocks = 2,
  res_width = 32, beta = 0.25, ema = false, decay = 0.99, restart = 1.0 }

local function positive_int(name, v)
  if math.type(v) ~= "integer" or v < 1 then error(string.format("VQVAE: %s must be a positive integer, got %s", name, tostring(v)), 4) end
end

M.VQVAE = nn.Module:extend("VQVAE")

--- VQVAE(opts): see the top of this file for the options.
function M.VQVAE:init(opts)
  opts = opts or {}
  local o = {}
  for k, v in pairs(defaults) do o[k] = v end
  for k, v in pairs(opts) do
    if defaults[k] == nil then error("VQVAE: unknown option '" .. tostring(k) .. "'", 3) end
    o[k] = v
  end
  local c, r = models.image_shape("VQVAE", o)
  if r % 4 ~= 0 then error("VQVAE: resolution must be divisible by 4, got " .. tostring(r), 3) end
  if o.levels ~= 1 and o.levels ~= 2 then error("VQVAE: levels must be 1 or 2, got " .. tostring(o.levels), 3) end
  for _, name in ipairs { "codebook_size", "code_dim", "width", "res_width" } do positive_int(name, o[name]) end
  if math.type(o.res_blocks) ~= "integer" or o.res_blocks < 0 then error("VQVAE: res_blocks must be an integer >= 0", 3) end
  self._config = o
  local k, d, w = o.codebook_size, o.code_dim, o.width
  local qopts = { beta = o.beta, ema = o.ema, decay = o.decay, restart = o.restart }
  self.levels, self.codebook_size, self.code_dim, self.shape, self.range = o.levels, k, d, { c, r, r }, { 0, 1 }
  if o.levels == 1 then
    self.grid = { r // 4, r // 4 }
    self.encoder = encoder(c, w, d, 2, o)
    self.quantizer = nn.VectorQuantizer(k, d, qopts)
    self.decoder = decoder(d, w, c, 2, o)
  else
    self.grid = { top = { r // 4, r // 4 }, bottom = { r // 2, r // 2 } }
    self.encoder_bottom = encoder(c, w, w, 1, o)
    self.encoder_top = encoder(w, w, d, 1, o)
    self.quantizer_top = nn.VectorQuantizer(k, d, qopts)
    self.decoder_top = decoder(d, w, d, 1, o) -- top codes -> the bottom grid, to condition the bottom quantizer
    self.pre_quantize_bottom = nn.Conv2d(d + w, d, 1)
    self.quantizer_bottom = nn.VectorQuantizer(k, d, qopts)
    self.upsample_top = nn.ConvTranspose2d(d, d, 4, { stride = 2, padding = 1 })
    self.decoder = decoder(2 * d, w, c, 1, o)
  end
end

--- The constructor options (every one, defaults filled in): VQVAE(model:config()) rebuilds it.
function M.VQVAE:config()
  local t = {}
  for k, v in pairs(self._config) do t[k] = v end
  return t
end

function M.VQVAE:extra_repr() return string.format("levels=%d, K=%d, D=%d", self.levels, self.codebook_size, self.code_dim) end

-- The quantized top level and the bottom encoder features (two levels).
function M.VQVAE:_top(x)
  local hb = self.encoder_bottom(x)
  return hb, self.encoder_top(hb)
end
function M.VQVAE:_bottom_input(hb, qt) return self.pre_quantize_bottom(gen.cat({ self.decoder_top(qt), hb }, 2)) end
function M.VQVAE:_decode_levels(qt, qb) return self.decoder(gen.cat({ self.upsample_top(qt), qb }, 2)) end

--- xhat, q = model(x): the reconstruction and the quantizer's report (see gen.nn.VectorQuantizer),
-- with q.loss summed over the levels; two levels also give q.top and q.bottom.
function M.VQVAE:forward(x)
  if self.levels == 1 then
    local zq, q = self.quantizer(self.encoder(x))
    return self.decoder(zq), q
  end
  local hb, zt = self:_top(x)
  local qt, top = self.quantizer_top(zt)
  local qb, bottom = self.quantizer_bottom(self:_bottom_input(hb, qt))
  local q = { top = top, bottom = bottom, indices = { top = top.indices, bottom = bottom.indices } }
  for _, key in ipairs { "loss", "codebook_loss", "commitment_loss" } do q[key] = top[key] + bottom[key] end
  if top.perplexity then q.perplexity, q.dead = (top.perplexity * bottom.perplexity) ^ 0.5, top.dead + bottom.dead end
  return self:_decode_levels(qt, qb), q
end

--- int64 codes of images x {B, C, H, W} in [0, 1]: {B, h, w} (one level) or {top = ..., bottom = ...}.
function M.VQVAE:encode_indices(x)
  return gen.no_grad(function()
    if self.levels == 1 then return self.quantizer:indices(self.encoder(x)) end
    local hb, zt = self:_top(x)
    local top = self.quantizer_top:indices(zt)
    local bottom = self.quantizer_bottom:indices(self:_bottom_input(hb, self.quantizer_top:lookup(top)))
    return { top = top, bottom = bottom }
  end)
end

local function check_codes(codes, grid, what)
  if not gen.is_tensor(codes) or codes.dtype ~= "int64" or codes:dim() ~= 3 or codes:size(2) ~= grid[1] or codes:size(3) ~= grid[2] then
    error(string.format("VQVAE:decode_indices: %s must be int64 {B, %d, %d}, got %s", what, grid[1], grid[2],
      gen.is_tensor(codes) and (codes.dtype .. " {" .. table.concat(codes.shape, ",") .. "}") or type(codes)), 3)
  end
end

--- Images {B, C, H, W} (in [0, 1], model.range, unclamped) of codes as encode_indices gives them.
function M.VQVAE:decode_indices(codes)
  if self.levels == 1 then
    check_codes(codes, self.grid, "codes")
    return self.decoder(self.quantizer:lookup(codes))
  end
  if type(codes) ~= "table" or gen.is_tensor(codes) then error("VQVAE:decode_indices: two levels need {top = ..., bottom = ...}", 2) end
  check_codes(codes.top, self.grid.top, "codes.top")
  check_codes(codes.bottom, self.grid.bottom, "codes.bottom")
  return self:_decode_levels(self.quantizer_top:lookup(codes.top), self.quantizer_bottom:lookup(codes.bottom))
end

--- The reconstruction of x through the codes (eval-mode forward, no statistics).
function M.VQVAE:reconstruct(x) return (self:forward(x)) end

return M
