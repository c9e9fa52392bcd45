--- gen.nn: modules. Each layer is a thin Module around the functional op in `gen`, with
-- PyTorch's parameter names, shapes and default initializations, so state dicts interchange.
local gen = require "gen"
local base = require "gen.nn.module"
local init = require "gen.nn.init_fns"

local nn = { Module = base.Module, Parameter = base.Parameter, init = init }
local Module, Parameter = base.Module, base.Parameter

local function pair(v) if type(v) == "table" then return v end return { v, v } end
local function fmt_pair(v) v = pair(v); return v[1] == v[2] and tostring(v[1]) or ("(" .. v[1] .. ", " .. v[2] .. ")") end

-- U(-1/sqrt(fan_in), 1/sqrt(fan_in)): what PyTorch's kaiming_uniform_(a = sqrt(5)) gives for
-- weights, and its bias default.
local function uniform_fan_in(shape, fan_in)
  local bound = fan_in > 0 and 1 / math.sqrt(fan_in) or 0
  return Parameter(gen.empty(shape):uniform_(-bound, bound))
end

---------------------------------------------------------------- containers
nn.Sequential = Module:extend("Sequential")
--- Sequential(m1, m2, ...) or Sequential{m1, m2, ...}; children are named "0", "1", ... as in PyTorch.
function nn.Sequential:init(...)
  local mods = select("#", ...) == 1 and not base.is_module((...)) and (...) or { ... }
  self._n = 0
  for _, m in ipairs(mods) do self:add(m) end
end
function nn.Sequential:add(m)
  assert(base.is_module(m), "gen.nn.Sequential: every element must be a module")
  self[tostring(self._n)] = m
  self._n = self._n + 1
  return self
end
function nn.Sequential:get(i) return self[tostring(i - 1)] end
function nn.Sequential:__len() return self._n end
function nn.Sequential:forward(x, ...)
  for i = 0, self._n - 1 do x = self[tostring(i)](x, ...) end
  return x
end

nn.ModuleList = Module:extend("ModuleList")
function nn.ModuleList:init(mods)
  self._n = 0
  for _, m in ipairs(mods or {}) do self:append(m) end
end
function nn.ModuleList:append(m)
  assert(base.is_module(m), "gen.nn.ModuleList: every element must be a module")
  self[tostring(self._n)] = m
  self._n = self._n + 1
  return self
end
--- 1-based access: list:get(1) is child "0".
function nn.ModuleList:get(i) return self[tostring(i - 1)] end
function nn.ModuleList:__len() return self._n end
function nn.ModuleList:ipairs()
  local i = 0
  return function()
    i = i + 1
    if i <= self._n then return i, self[tostring(i - 1)] end
  end
end

---------------------------------------------------------------- layers
nn.Linear = Module:extend("Linear")
function nn.Linear:init(in_features, out_features, opts)
  opts = opts or {}
  self.in_features, self.out_features = in_features, out_features
  self.weight = uniform_fan_in({ out_features, in_features }, in_features)
  if opts.bias ~= false then self.bias = uniform_fan_in({ out_features }, in_features) end
end
function nn.Linear:forward(x) return gen.linear(x, self.weight, self.bias) end
function nn.Linear:extra_repr()
  return string.format("%d, %d%s", self.in_features, self.out_features, self.bias and "" or ", bias=false")
end

local function conv_repr(self)
  local s = string.format("%d, %d, kernel_size=%s", self.in_channels, self.out_channels, fmt_pair(self.kernel_size))
  local o = self.opts
  if o.stride and o.stride ~= 1 then s = s .. ", stride=" .. fmt_pair(o.stride) end
  if o.padding and o.padding ~= 0 then s = s .. ", padding=" .. fmt_pair(o.padding) end
  if o.dilation and o.dilation ~= 1 then s = s .. ", dilation=" .. fmt_pair(o.dilation) end
  if o.output_padding and o.output_padding ~= 0 then s = s .. ", output_padding=" .. fmt_pair(o.output_padding) end
  if o.groups and o.groups ~= 1 then s = s .. ", groups=" .. o.groups end
  if not self.bias then s = s .. ", bias=false" end
  return s
end

local function conv_opts(opts)
  return { stride = opts.stride, padding = opts.padding, dilation = opts.dilation, groups = opts.groups,
           output_padding = opts.output_padding }
end

nn.Conv2d = Module:extend("Conv2d")
--- Conv2d(in, out, kernel_size, {stride, padding, dilation, groups, bias})
function nn.Conv2d:init(cin, cout, k, opts)
  opts = opts or {}
  local groups, ks = opts.groups or 1, pair(k)
  if cin % groups ~= 0 or cout % groups ~= 0 then
    error(string.format("gen.nn.Conv2d: groups (%d) must divide in_channels (%d) and out_channels (%d)", groups, cin, cout), 2)
  end
  self.in_channels, self.out_channels, self.kernel_size, self.opts = cin, cout, k, conv_opts(opts)
  local fan_in = cin // groups * ks[1] * ks[2]
  self.weight = uniform_fan_in({ cout, cin // groups, ks[1], ks[2] }, fan_in)
  if opts.bias ~= false then self.bias = uniform_fan_in({ cout }, fan_in) end
end
function nn.Conv2d:forward(x) return gen.conv2d(x, self.weight, self.bias, self.opts) end
nn.Conv2d.extra_repr = conv_repr

nn.ConvTranspose2d = Module:extend("ConvTranspose2d")
--- ConvTranspose2d(in, out, kernel_size, {stride, padding, output_padding, dilation, groups, bias})
function nn.ConvTranspose2d:init(cin, cout, k, opts)
  opts = opts or {}
  local groups, ks = opts.groups or 1, pair(k)
  if cin % groups ~= 0 or cout % groups ~= 0 then
    error(string.format("gen.nn.ConvTranspose2d: groups (%d) must divide in_channels (%d) and out_channels (%d)", groups, cin, cout), 2)
  end
  self.in_channels, self.out_channels, self.kernel_size, self.opts = cin, cout, k, conv_opts(opts)
  -- PyTorch computes fan_in from weight:size(2) * kernel area for transposed convolutions.
  local fan_in = cout // groups * ks[1] * ks[2]
  self.weight = uniform_fan_in({ cin, cout // groups, ks[1], ks[2] }, fan_in)
  if opts.bias ~= false then self.bias = uniform_fan_in({ cout }, fan_in) end
end
function nn.ConvTranspose2d:forward(x) return gen.conv_transpose2d(x, self.weight, self.bias, self.opts) end
nn.ConvTranspose2d.extra_repr = conv_repr

local function make_batch_norm(name, ranks)
  local cls = Module:extend(name)
  --- BatchNorm(num_features, {eps = 1e-5, momentum = 0.1, affine = true, track_running_stats = true})
  function cls:init(n, opts)
    opts = opts or {}
    self.num_features, self.eps, self.momentum = n, opts.eps or 1e-5, opts.momentum or 0.1
    if opts.affine ~= false then
      self.weight = Parameter(gen.ones(n))
      self.bias = Parameter(gen.zeros(n))
    end
    if opts.track_running_stats ~= false then
      self:register_buffer("running_mean", gen.zeros(n))
      self:register_buffer("running_var", gen.ones(n))
      self:register_buffer("num_batches_tracked", gen.zeros({}, "int64"))
    end
  end
  function cls:forward(x)
    if not ranks[x:dim()] then
      error(string.format("gen.nn.%s: expected a %s input, got shape {%s}", name,
        name == "BatchNorm1d" and "2-d or 3-d" or "4-d", table.concat(x.shape, ",")), 2)
    end
    local training = self.training or not self.running_mean
    if self.training and self.num_batches_tracked then
      gen.no_grad(function() self.num_batches_tracked:add_(1) end)
    end
    return gen.batch_norm(x, self.running_mean, self.running_var, self.weight, self.bias,
      { training = training, momentum = self.momentum, eps = self.eps })
  end
  function cls:extra_repr() return string.format("%d, eps=%g, momentum=%g", self.num_features, self.eps, self.momentum) end
  return cls
end
nn.BatchNorm1d = make_batch_norm("BatchNorm1d", { [2] = true, [3] = true })
nn.BatchNorm2d = make_batch_norm("BatchNorm2d", { [4] = true })

nn.GroupNorm = Module:extend("GroupNorm")
--- GroupNorm(num_groups, num_channels, {eps = 1e-5, affine = true})
function nn.GroupNorm:init(groups, channels, opts)
  opts = opts or {}
  if channels % groups ~= 0 then
    error(string.format("gen.nn.GroupNorm: %d groups do not divide %d channels", groups, channels), 2)
  end
  self.num_groups, self.num_channels, self.eps = groups, channels, opts.eps or 1e-5
  if opts.affine ~= false then
    self.weight = Parameter(gen.ones(channels))
    self.bias = Parameter(gen.zeros(channels))
  end
end
function nn.GroupNorm:forward(x) return gen.group_norm(x, self.num_groups, self.weight, self.bias, self.eps) end
function nn.GroupNorm:extra_repr() return string.format("%d, %d, eps=%g", self.num_groups, self.num_channels, self.eps) end

nn.LayerNorm = Module:extend("LayerNorm")
--- LayerNorm(normalized_shape (number or table), {eps = 1e-5, elementwise_affine = true})
function nn.LayerNorm:init(shape, opts)
  opts = opts or {}
  self.normalized_shape = type(shape) == "table" and shape or { shape }
  self.eps = opts.eps or 1e-5
  if opts.elementwise_affine ~= false then
    self.weight = Parameter(gen.ones(self.normalized_shape))
    self.bias = Parameter(gen.zeros(self.normalized_shape))
  end
end
function nn.LayerNorm:forward(x) return gen.layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps) end
function nn.LayerNorm:extra_repr() return "{" .. table.concat(self.normalized_shape, ",") .. "}, eps=" .. self.eps end

nn.Embedding = Module:extend("Embedding")
--- Embedding(num_embeddings, embedding_dim): weight ~ N(0, 1) as in PyTorch; indices are 1-based.
function nn.Embedding:init(n, dim)
  self.num_embeddings, self.embedding_dim = n, dim
  self.weight = Parameter(gen.randn(n, dim))
end
function nn.Embedding:forward(idx) return gen.embedding(idx, self.weight) end
function nn.Embedding:extra_repr() return string.format("%d, %d", self.num_embeddings, self.embedding_dim) end

nn.Dropout = Module:extend("Dropout")
function nn.Dropout:init(p) self.p = p or 0.5 end
function nn.Dropout:forward(x) return gen.dropout(x, self.p, self.training) end
function nn.Dropout:extra_repr() return "p=" .. self.p end

nn.MultiheadAttention = Module:extend("MultiheadAttention")
--- MultiheadAttention(embed_dim, num_heads, {bias = true}): inputs are {B, T, E} (batch first).
-- Parameters follow PyTorch's names: in_proj_weight {3E, E}, in_proj_bias, out_proj (Linear).
function nn.MultiheadAttention:init(embed_dim, num_heads, opts)
  opts = opts or {}
  if embed_dim % num_heads ~= 0 then
    error(string.format("gen.nn.MultiheadAttention: %d heads do not divide embed_dim %d", num_heads, embed_dim), 2)
  end
  self.embed_dim, self.num_heads = embed_dim, num_heads
  self.in_proj_weight = Parameter(init.xavier_uniform_(gen.empty(3 * embed_dim, embed_dim)))
  if opts.bias ~= false then self.in_proj_bias = Parameter(gen.zeros(3 * embed_dim)) end
  self.out_proj = nn.Linear(embed_dim, embed_dim, { bias = opts.bias })
  if self.out_proj.bias then gen.no_grad(function() self.out_proj.bias:zero_() end) end
end
--- forward(query [, key, value [, {causal, mask}]]): self-attention when key/value are nil.
-- Returns {B, Tq, E}.
function nn.MultiheadAttention:forward(q, k, v, opts)
  k, v = k or q, v or k or q
  local E, H = self.embed_dim, self.num_heads
  local w, b = self.in_proj_weight, self.in_proj_bias
  local function project(x, i)
    local wi = w:narrow(1, (i - 1) * E + 1, E)
    local bi = b and b:narrow(1, (i - 1) * E + 1, E) or nil
    local y = gen.linear(x, wi, bi)
    local B, T = y:size(1), y:size(2)
    return y:view(B, T, H, E // H):transpose(2, 3) -- {B, H, T, d}
  end
  local out = gen.scaled_dot_product_attention(project(q, 1), project(k, 2), project(v, 3), opts)
  local B, Tq = out:size(1), out:size(3)
  return self.out_proj(out:transpose(2, 3):reshape(B, Tq, E))
end
function nn.MultiheadAttention:extra_repr() return string.format("%d, num_heads=%d", self.embed_dim, self.num_heads) end

---------------------------------------------------------------- activations and reshaping
local function activation(name, fn, repr)
  local cls = Module:extend(name)
  function cls:init(...) self.args = { ... } end
  function cls:forward(x) return fn(x, table.unpack(self.args)) end
  function cls:extra_repr() return repr and repr(self.args) or "" end
  nn[name] = cls
end
activation("ReLU", function(x) return gen.relu(x) end)
activation("LeakyReLU", function(x, slope) return gen.leaky_relu(x, slope or 0.01) end,
  function(a) return "negative_slope=" .. (a[1] or 0.01) end)
activation("SiLU", function(x) return gen.silu(x) end)
activation("GELU", function(x) return gen.gelu(x) end)
activation("Tanh", function(x) return gen.tanh(x) end)
activation("Sigmoid", function(x) return gen.sigmoid(x) end)

nn.Identity = Module:extend("Identity")
function nn.Identity:forward(x) return x end

nn.Flatten = Module:extend("Flatten")
--- Flatten(start_dim = 2, end_dim = -1), as in PyTorch (dims 1-based).
function nn.Flatten:init(s, e) self.start_dim, self.end_dim = s or 2, e or -1 end
function nn.Flatten:forward(x) return x:flatten(self.start_dim, self.end_dim) end
function nn.Flatten:extra_repr() return string.format("start_dim=%d, end_dim=%d", self.start_dim, self.end_dim) end

nn.Unflatten = Module:extend("Unflatten")
--- Unflatten(d, sizes): splits dim d into the sizes given.
function nn.Unflatten:init(d, sizes) self.dim, self.sizes = d, sizes end
function nn.Unflatten:forward(x)
  local shape, d = x.shape, self.dim
  if d < 0 then d = #shape + 1 + d end
  local out = {}
  for i = 1, d - 1 do out[#out + 1] = shape[i] end
  for _, s in ipairs(self.sizes) do out[#out + 1] = s end
  for i = d + 1, #shape do out[#out + 1] = shape[i] end
  return x:reshape(out)
end
function nn.Unflatten:extra_repr() return string.format("%d, {%s}", self.dim, table.concat(self.sizes, ",")) end

nn.Upsample = Module:extend("Upsample")
--- Upsample{scale = 2, mode = "nearest" | "bilinear"} (or size = {H, W})
function nn.Upsample:init(opts) self.opts = opts or { scale = 2 } end
function nn.Upsample:forward(x) return gen.upsample(x, self.opts) end
function nn.Upsample:extra_repr() return string.format("scale=%s, mode=%s", tostring(self.opts.scale), self.opts.mode or "nearest") end

return nn
