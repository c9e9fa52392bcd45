--- The gated PixelCNN (van den Oord et al., 2016, "Conditional Image Generation with PixelCNN
-- Decoders"): an autoregressive model p(x) = prod_i p(x_i | x_<i) over the pixels (or the codes
-- of a VQ-VAE) in raster order, whose every output sees exactly the positions before it.
--
-- Two stacks of masked convolutions (gen.nn.MaskedConv2d) remove the blind spot of the original
-- PixelCNN. The vertical stack v sees the rows above and the current row, everything in its
-- window; the horizontal stack h sees the current row to the left. v is shifted down one row
-- before it feeds h, so h at (r, c) gets only rows < r from it. Each layer l computes, with a
-- conditioning term c (class and/or a spatial map) added before the gate,
--   v' = V * v                                   (2p channels, vertical kernel)
--   v_out = tanh(v'_a + c_v) . sigmoid(v'_b + c_v)
--   h' = H * h + W_vh * shift_down(v')            (2p channels, horizontal kernel, 1x1)
--   h_out = h + W_o * [tanh(h'_a + c_h) . sigmoid(h'_b + c_h)]   (residual; none on layer 1)
-- Layer 1 has a type A horizontal mask (the pixel itself excluded) and a larger kernel; the
-- others are type B. A head relu - 1x1 - relu - 1x1 gives `levels` logits per position: 256 for
-- 8-bit pixels, K for the codes of a VQ-VAE.
local gen = require "gen"
local nn = gen.nn
local blocks = require "gen.nn.blocks"

local M = {}

local function shape_of(v)
  if gen.is_tensor(v) then return v.dtype .. " {" .. table.concat(v.shape, ",") .. "}" end
  return type(v)
end

-- The feature map one row lower: row r gets row r - 1, row 1 gets zeros.
local function shift_down(x)
  local h = x:size(3)
  return gen.pad(x, { 0, 0, 1, 0 }):narrow(3, 1, h):contiguous()
end
M.shift_down = shift_down

-- tanh(a) * sigmoid(b) over the two halves of the channels (made contiguous first: the strided
-- halves took the elementwise kernels 2.4x longer than a copy and contiguous ones)
local function gate(x)
  local a, b = table.unpack(x:chunk(2, 2))
  return gen.tanh(a:contiguous()) * gen.sigmoid(b:contiguous())
end

local GatedLayer = nn.Module:extend("GatedLayer")
M.GatedLayer = GatedLayer
--- GatedLayer(cin, p, k, {mask = "A" | "B", residual, cond_dim, cond_channels}): one layer of both stacks.
function GatedLayer:init(cin, p, k, opts)
  self.residual = opts.residual
  self.v = nn.MaskedConv2d(cin, 2 * p, k, { stack = "vertical", mask = "B" })
  self.h = nn.MaskedConv2d(cin, 2 * p, k, { stack = "horizontal", mask = opts.mask })
  self.v_to_h = nn.Conv2d(2 * p, 2 * p, 1)
  self.h_out = nn.Conv2d(p, p, 1)
  if (opts.cond_dim or 0) > 0 then
    self.cond_v = nn.Linear(opts.cond_dim, 2 * p, { bias = false })
    self.cond_h = nn.Linear(opts.cond_dim, 2 * p, { bias = false })
  end
  if (opts.cond_channels or 0) > 0 then
    self.map_v = nn.Conv2d(opts.cond_channels, 2 * p, 1, { bias = false })
    self.map_h = nn.Conv2d(opts.cond_channels, 2 * p, 1, { bias = false })
  end
end

--- vertical(v, e, map) -> vp, v_out: the vertical stack's convolution (what the horizontal stack
-- sees, one row lower) and its gated output.
function GatedLayer:vertical(v, e, map)
  local vp = self.v(v)
  local cv = vp
  if e then cv = cv + self.cond_v(e):view(e:size(1), vp:size(2), 1, 1) end
  if map then cv = cv + self.map_v(map) end
  return vp, gate(cv)
end

--- horizontal(h, vs, e, map) -> h_out, vs being the vertical convolution shifted down one row
-- (zeros above the first row). Rows are independent here, and a column sees only the columns to
-- its left: any rows, or the first c columns of a row, give the same numbers as the whole map.
function GatedLayer:horizontal(h, vs, e, map)
  local ch = self.h(h) + self.v_to_h(vs)
  if e then ch = ch + self.cond_h(e):view(e:size(1), ch:size(2), 1, 1) end
  if map then ch = ch + self.map_h(map) end
  local h_new = self.h_out(gate(ch))
  if self.residual then h_new = h + h_new end
  return h_new
end

--- forward(v, h, e, map) -> v_out, h_out: e {B, cond_dim} or nil, map {B, cond_channels, H, W} or nil.
function GatedLayer:forward(v, h, e, map)
  local vp, v_out = self:vertical(v, e, map)
  return v_out, self:horizontal(h, shift_down(vp), e, map)
end

local PixelCNN = nn.Module:extend("GatedPixelCNN")
M.GatedPixelCNN = PixelCNN

--- GatedPixelCNN{input = "pixels" | "codes", levels = 256 (pixels) or K (codes), resolution = 28,
--   channels = 1, width = 64, layers = 8, kernel = 3, first_kernel = 7, head = width,
--   embed_dim = width (codes), classes = 0, cond_channels = 0}
-- input = "pixels": x holds 8-bit values {B, 1, H, W} (any dtype holding integers 0..255), fed to
-- the net scaled to [-1, 1]; the logits are {B, 256, H, W}. input = "codes": x is int64 {B, H, W}
-- with codes 1..levels, fed through an embedding table; the logits are {B, levels, H, W}.
-- classes > 0: a class label per image (gen.nn.blocks.ClassEmbedding) biases every gate.
-- cond_channels > 0: a spatial map {B, cond_channels, H, W} (e.g. the embedded top codes of a
-- VQ-VAE-2, for the bottom prior) does the same through 1x1 convolutions.
-- Only one image channel: colour images need the R -> G -> B channel masks of the PixelCNN paper.
function PixelCNN:init(opts)
  opts = opts or {}
  local who = "gen.models.pixelcnn.GatedPixelCNN"
  local input = opts.input or "pixels"
  if input ~= "pixels" and input ~= "codes" then
    error(string.format("%s: input must be \"pixels\" or \"codes\", got %s", who, tostring(input)), 3)
  end
  local function positive(name, default)
    local v = opts[name] or default
    if math.type(v) ~= "integer" or v < 1 then error(string.format("%s: %s must be a positive integer, got %s", who, name, tostring(v)), 4) end
    return v
  end
  local function odd(name, default)
    local v = positive(name, default)
    if v % 2 == 0 then error(string.format("%s: %s must be odd, got %d", who, name, v), 4) end
    return v
  end
  self.input = input
  self.channels = positive("channels", 1)
  if self.channels ~= 1 then
    error(string.format("%s: only one image channel is supported (colour needs channel masks), got channels = %d", who, self.channels), 3)
  end
  self.resolution = positive("resolution", 28)
  self.levels = positive("levels", 256)
  if input == "pixels" and self.levels ~= 256 then
    error(string.format("%s: input = \"pixels\" models 8-bit values: levels must be 256, got %d", who, self.levels), 3)
  end
  self.width = positive("width", 64)
  self.layers = positive("layers", 8)
  self.kernel, self.first_kernel = odd("kernel", 3), odd("first_kernel", 7)
  if self.first_kernel < 3 then error(string.format("%s: first_kernel must be at least 3, got %d", who, self.first_kernel), 3) end
  self.classes = opts.classes or 0
  if math.type(self.classes) ~= "integer" or self.classes < 0 then
    error(string.format("%s: classes must be a non-negative integer, got %s", who, tostring(self.classes)), 3)
  end
  self.cond_channels = opts.cond_channels or 0
  if math.type(self.cond_channels) ~= "integer" or self.cond_channels < 0 then
    error(string.format("%s: cond_channels must be a non-negative integer, got %s", who, tostring(self.cond_channels)), 3)
  end
  local p = self.width
  local cin = 1
  if input == "codes" then
    cin = positive("embed_dim", p)
    self.embed = nn.Embedding(self.levels, cin)
  end
  local cond_dim = 0
  if self.classes > 0 then
    cond_dim = p
    self.class_embed = blocks.ClassEmbedding(self.classes, cond_dim)
  end
  self.stack = nn.ModuleList()
  for l = 1, self.layers do
    self.stack:append(GatedLayer(l == 1 and cin or p, p, l == 1 and self.first_kernel or self.kernel, {
      mask = l == 1 and "A" or "B", residual = l > 1, cond_dim = cond_dim, cond_channels = self.cond_channels }))
  end
  local head = positive("head", p)
  self.out1 = nn.Conv2d(p, head, 1)
  self.out2 = nn.Conv2d(head, self.levels, 1)
end

--- check(x [, labels [, map]]) -> B, H, W: raises an error naming the model for inputs it cannot take.
function PixelCNN:check(x, labels, map)
  local who = "gen.models.pixelcnn.GatedPixelCNN"
  if not gen.is_tensor(x) then error(string.format("%s: expected a tensor, got %s", who, type(x)), 3) end
  local b, h, w
  if self.input == "pixels" then
    if x:dim() ~= 4 or x:size(2) ~= 1 then
      error(string.format("%s: expected pixels {B, 1, H, W}, got %s", who, shape_of(x)), 3)
    end
    b, h, w = x:size(1), x:size(3), x:size(4)
    if x:numel() > 0 then
      local lo, hi = x:min():item(), x:max():item()
      local xf = x.dtype == "float32" or x.dtype == "float64"
      if lo < 0 or hi > 255 or (xf and x:ne(x:long():type(x.dtype)):sum():item() > 0) then
        error(string.format("%s: pixels must be the integers 0..255, got values in %g..%g%s", who, lo, hi,
          (xf and lo >= 0 and hi <= 255) and " (not all integers)" or ""), 3)
      end
    end
  else
    if x.dtype ~= "int64" or x:dim() ~= 3 then
      error(string.format("%s: expected codes as an int64 tensor {B, H, W}, got %s", who, shape_of(x)), 3)
    end
    b, h, w = x:size(1), x:size(2), x:size(3)
    if x:numel() > 0 then
      local lo, hi = x:min():item(), x:max():item()
      if lo < 1 or hi > self.levels then
        error(string.format("%s: codes must be in 1..%d, got values in %d..%d", who, self.levels, lo, hi), 3)
      end
    end
  end
  if self.classes > 0 then
    if labels == nil then error(string.format("%s: the model is class-conditional (classes = %d): labels are required", who, self.classes), 3) end
    self.class_embed:check(labels, b, who)
  elseif labels ~= nil then
    error(string.format("%s: labels given to an unconditional model (classes = 0)", who), 3)
  end
  if self.cond_channels > 0 then
    if not gen.is_tensor(map) or map:dim() ~= 4 or map:size(1) ~= b or map:size(2) ~= self.cond_channels or map:size(3) ~= h or map:size(4) ~= w then
      error(string.format("%s: expected a conditioning map {%d, %d, %d, %d}, got %s", who, b, self.cond_channels, h, w, shape_of(map)), 3)
    end
  elseif map ~= nil then
    error(string.format("%s: a conditioning map given to a model built with cond_channels = 0", who), 3)
  end
  return b, h, w
end

--- The network's input features {B, cin, H, W} of checked x: scaled pixels or embedded codes.
function PixelCNN:features(x)
  if self.input == "pixels" then return x:type(self.out2.weight.dtype) * (2 / 255) - 1 end
  return self.embed(x):permute(1, 4, 2, 3):contiguous()
end

--- label_features(labels, dtype) -> the class embedding of the labels in dtype (nil without labels).
function PixelCNN:label_features(labels, dtype)
  local e = labels and self.class_embed(labels) or nil
  if e and e.dtype ~= dtype then e = e:type(dtype) end
  return e
end

--- stacks(f, labels, map) -> v, h: the last layer's vertical stack shifted down one row (what the
-- horizontal stack sees of it) and horizontal stack, from input features f {B, cin, H, W}.
function PixelCNN:stacks(f, labels, map)
  local e = self:label_features(labels, f.dtype)
  local v, h = f, f
  for _, layer in self.stack:ipairs() do
    v, h = layer(v, h, e, map)
  end
  return shift_down(v), h
end

--- head(h) -> logits {B, levels, H', W'} of horizontal-stack features h (any positions of them).
function PixelCNN:head(h) return self.out2(gen.relu(self.out1(gen.relu(h)))) end

--- net(f, labels, map) -> logits {B, levels, H, W} from input features f (unchecked).
function PixelCNN:net(f, labels, map)
  local _, h = self:stacks(f, labels, map)
  return self:head(h)
end

--- forward(x [, labels [, map]]) -> logits {B, levels, H, W}; position i's logits depend only on
-- the positions before i in raster order (and on the labels and the map).
function PixelCNN:forward(x, labels, map)
  self:check(x, labels, map)
  return self:net(self:features(x), labels, map)
end

function PixelCNN:extra_repr()
  return string.format("input=%s, levels=%d, width=%d, layers=%d, kernel=%d, first_kernel=%d%s%s", self.input, self.levels,
    self.width, self.layers, self.kernel, self.first_kernel, self.classes > 0 and ", classes=" .. self.classes or "",
    self.cond_channels > 0 and ", cond_channels=" .. self.cond_channels or "")
end

local CodePrior = nn.Module:extend("CodePrior")
M.CodePrior = CodePrior

--- CodePrior{levels = 1 | 2, codebook_size = K, grid = {h, w} or {top = {h, w}, bottom = {h, w}}, width,
--   layers, kernel, first_kernel, head, classes, map_dim = width}: the prior over the codes of a
-- VQ-VAE (model.levels, model.codebook_size, model.grid give the options). One level: a
-- GatedPixelCNN over the code grid (`top`). Two levels (VQ-VAE-2): p(top) p(bottom | top), the
-- bottom PixelCNN conditioned on the top codes, embedded (`top_embed`, map_dim numbers per code)
-- and upsampled (nearest) to the bottom grid as its spatial map.
function CodePrior:init(opts)
  local who = "gen.models.pixelcnn.CodePrior"
  local levels = opts.levels or 1
  if levels ~= 1 and levels ~= 2 then error(string.format("%s: levels must be 1 or 2, got %s", who, tostring(levels)), 3) end
  local k = opts.codebook_size
  if math.type(k) ~= "integer" or k < 1 then error(string.format("%s: codebook_size must be a positive integer, got %s", who, tostring(k)), 3) end
  local grid = opts.grid
  local top_grid = levels == 1 and grid or (type(grid) == "table" and grid.top)
  local function square(g, name)
    if type(g) ~= "table" or math.type(g[1]) ~= "integer" or g[1] < 1 or g[2] ~= g[1] then
      error(string.format("%s: %s must be a square grid {n, n}", who, name), 4)
    end
    return g[1]
  end
  self.levels, self.codebook_size = levels, k
  local function prior(resolution, cond_channels)
    return PixelCNN { input = "codes", levels = k, resolution = resolution, width = opts.width, layers = opts.layers,
      kernel = opts.kernel, first_kernel = opts.first_kernel, head = opts.head, classes = opts.classes, cond_channels = cond_channels }
  end
  self.top = prior(square(top_grid, levels == 1 and "grid" or "grid.top"))
  if levels == 2 then
    local b, t = square(grid.bottom, "grid.bottom"), top_grid[1]
    if b % t ~= 0 then error(string.format("%s: the bottom grid (%d) must be a multiple of the top grid (%d)", who, b, t), 3) end
    self.scale = b // t
    local dim = opts.map_dim or self.top.width
    self.top_embed = nn.Embedding(k, dim)
    self.bottom = prior(b, dim)
  end
end

--- The bottom prior's spatial map {B, map_dim, hb, wb} of top codes {B, ht, wt}.
function CodePrior:top_map(top)
  local m = self.top_embed(top):permute(1, 4, 2, 3):contiguous()
  return self.scale > 1 and gen.upsample(m, { scale = self.scale }) or m
end

function CodePrior:extra_repr() return string.format("levels=%d, K=%d", self.levels, self.codebook_size) end

return M
