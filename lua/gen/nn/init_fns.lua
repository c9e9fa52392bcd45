--- gen.nn.init: in-place initializers with PyTorch's definitions (fan_in = size(2) * receptive
-- field, fan_out = size(1) * receptive field). Each returns the tensor it filled.
local gen = require "gen"

local M = {}

local function fans(t)
  local shape = t.shape
  if #shape < 2 then error(string.format("gen.nn.init: fan in/out need a tensor with at least 2 dims, got {%s}", table.concat(shape, ",")), 3) end
  local receptive = 1
  for i = 3, #shape do receptive = receptive * shape[i] end
  return shape[2] * receptive, shape[1] * receptive
end

local gains = { linear = 1, conv2d = 1, sigmoid = 1, tanh = 5 / 3, relu = math.sqrt(2) }
--- Recommended gain for a nonlinearity ("relu", "leaky_relu" with param slope, "tanh", ...).
function M.calculate_gain(nonlinearity, param)
  if nonlinearity == "leaky_relu" then
    local slope = param or 0.01
    return math.sqrt(2 / (1 + slope * slope))
  end
  local g = gains[nonlinearity or "linear"]
  if not g then error("gen.nn.init.calculate_gain: unknown nonlinearity '" .. tostring(nonlinearity) .. "'", 2) end
  return g
end

local function fill(t, f) gen.no_grad(f); return t end

function M.uniform_(t, a, b, opts) return fill(t, function() t:uniform_(a or 0, b or 1, opts) end) end
function M.normal_(t, mean, std, opts) return fill(t, function() t:normal_(mean or 0, std or 1, opts) end) end
function M.zeros_(t) return fill(t, function() t:zero_() end) end
function M.ones_(t) return fill(t, function() t:fill_(1) end) end
function M.constant_(t, v) return fill(t, function() t:fill_(v) end) end

function M.xavier_uniform_(t, gain, opts)
  local fan_in, fan_out = fans(t)
  local a = (gain or 1) * math.sqrt(6 / (fan_in + fan_out))
  return M.uniform_(t, -a, a, opts)
end

function M.xavier_normal_(t, gain, opts)
  local fan_in, fan_out = fans(t)
  return M.normal_(t, 0, (gain or 1) * math.sqrt(2 / (fan_in + fan_out)), opts)
end

--- kaiming_uniform_(t, {a = 0, mode = "fan_in", nonlinearity = "leaky_relu", generator})
function M.kaiming_uniform_(t, o)
  o = o or {}
  local fan_in, fan_out = fans(t)
  local fan = (o.mode or "fan_in") == "fan_in" and fan_in or fan_out
  local gain = M.calculate_gain(o.nonlinearity or "leaky_relu", o.a or 0)
  local bound = math.sqrt(3) * gain / math.sqrt(fan)
  return M.uniform_(t, -bound, bound, o)
end

function M.kaiming_normal_(t, o)
  o = o or {}
  local fan_in, fan_out = fans(t)
  local fan = (o.mode or "fan_in") == "fan_in" and fan_in or fan_out
  local gain = M.calculate_gain(o.nonlinearity or "leaky_relu", o.a or 0)
  return M.normal_(t, 0, gain / math.sqrt(fan), o)
end

--- Fills t (viewed as rows x cols, rows = size(1)) with a (semi-)orthogonal matrix times gain:
-- Gram-Schmidt (twice, for stability) on a Gaussian matrix, in float64.
function M.orthogonal_(t, gain, opts)
  local rows = t:size(1)
  local cols = t:numel() // rows
  local transpose = rows < cols
  local n, m = transpose and cols or rows, transpose and rows or cols -- n >= m: orthonormal columns
  local a = gen.randn(n, m, { dtype = "float64", generator = opts and opts.generator }):totable()
  for j = 1, m do
    for _ = 1, 2 do
      for k = 1, j - 1 do
        local dot = 0
        for i = 1, n do dot = dot + a[i][k] * a[i][j] end
        for i = 1, n do a[i][j] = a[i][j] - dot * a[i][k] end
      end
    end
    local norm = 0
    for i = 1, n do norm = norm + a[i][j] * a[i][j] end
    norm = math.sqrt(norm)
    for i = 1, n do a[i][j] = a[i][j] / norm end
  end
  local q = gen.tensor(a, "float64")
  if transpose then q = q:t() end
  return fill(t, function() t:copy_((q * (gain or 1)):reshape(t.shape)) end)
end

--- A tensor drawn from U(-1/sqrt(fan_in), 1/sqrt(fan_in)): what PyTorch's kaiming_uniform_(a = sqrt(5))
-- gives for Linear and Conv weights, and its bias default.
function M.fan_in_uniform(shape, fan_in)
  local bound = fan_in > 0 and 1 / math.sqrt(fan_in) or 0
  return gen.empty(shape):uniform_(-bound, bound)
end

---------------------------------------------------------------- equalized learning rate
-- Karras et al. (2018), section 4.1: weights are stored as N(0, 1) draws and scaled at every
-- forward by c = gain / sqrt(fan_in), so every layer's parameters move at the same speed under
-- Adam, whatever their fan-in. With a learning-rate multiplier lr_mul (StyleGAN's mapping network
-- uses 0.01), the stored weight is N(0, 1) / lr_mul and c = gain lr_mul / sqrt(fan_in); the bias
-- is stored divided by lr_mul and multiplied back, so both its initial value and its effective
-- learning rate are as asked. The state dict holds the stored tensors under the usual names.

local function check_positive(who, name, v)
  if type(v) ~= "number" or v ~= v or v <= 0 or v == math.huge then
    error(string.format("%s: %s must be a positive number, got %s", who, name, tostring(v)), 4)
  end
end

--- Sets up an equalized layer (weight of `shape`, fan_in) on m from opts {equalized, lr_mul,
-- gain, bias_init, bias, generator}; returns false (doing nothing) without opts.equalized. Called
-- by nn.Linear and nn.Conv2d.
function M.equalize(m, who, shape, fan_in, opts)
  if not opts.equalized then
    for _, k in ipairs { "lr_mul", "gain", "bias_init" } do
      if opts[k] ~= nil then error(string.format("%s: option %s needs equalized = true", who, k), 4) end
    end
    return false
  end
  local lr_mul, gain, bias_init = opts.lr_mul or 1, opts.gain or 1, opts.bias_init or 0
  check_positive(who, "lr_mul", lr_mul)
  check_positive(who, "gain", gain)
  if type(bias_init) ~= "number" then error(who .. ": bias_init must be a number, got " .. type(bias_init), 4) end
  local base = require "gen.nn.module"
  local g = opts.generator and { generator = opts.generator } or nil
  rawset(m, "lr_mul", lr_mul)
  rawset(m, "weight_gain", gain * lr_mul / math.sqrt(math.max(fan_in, 1)))
  m.weight = base.Parameter(gen.no_grad(function() return gen.randn(shape, g) / lr_mul end))
  if opts.bias ~= false then m.bias = base.Parameter(gen.full({ shape[1] }, bias_init / lr_mul)) end
  return true
end

--- The weight an equalized layer computes with: stored weight times c.
function M.equalized_weight(m)
  if m.weight_gain == 1 then return m.weight end
  return m.weight * m.weight_gain
end

--- The bias it computes with: stored bias times lr_mul (nil without a bias).
function M.equalized_bias(m)
  if not m.bias or m.lr_mul == 1 then return m.bias end
  return m.bias * m.lr_mul
end

function M.equalized_repr(m)
  if not m.weight_gain then return "" end
  return m.lr_mul == 1 and ", equalized" or string.format(", equalized, lr_mul=%g", m.lr_mul)
end

return M
