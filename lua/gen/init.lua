--- gen: deep generative modeling in Lua 5.4 on a C core.
-- `local gen = require "gen"` gives tensors, autograd, layers and the rest. Functions are also
-- tensor methods: gen.add(x, y) == x:add(y). See DESIGN.md for the contract.
-- gen.runtime first: it sets OpenMP's defaults (idle threads sleep) before gen.core loads libgomp.
local runtime_ok, runtime = pcall(require, "gen.runtime")
local core = require "gen.core"

local gen = {}
local Tensor = core.Tensor -- the methods table behind every tensor's __index
gen.Tensor = Tensor
gen.core = core
gen.runtime = runtime_ok and runtime or {} -- {omp_wait_policy = ...} as libgomp saw it

-- Names that are plain functions only (not methods).
local not_methods = {
  empty = true, zeros = true, ones = true, full = true, rand = true, randn = true, randint = true,
  randperm = true, arange = true, linspace = true, eye = true, tensor = true, manual_seed = true,
  Generator = true, get_rng_state = true, set_rng_state = true, set_grad_enabled = true,
  is_grad_enabled = true, memory = true, set_num_threads = true, set_winograd = true, set_memory_limit = true,
  set_weight_cache_limit = true,
  get_num_threads = true, time = true, is_tensor = true, Tensor = true, tensor_mt = true,
  generator_mt = true, cat = true, stack = true, where = true, save = true, load = true,
  from_bytes = true, config = true,
}

-- Core entry points used by Lua modules (optimizers, gradcheck), not public gen.* names.
local core_only = {
  adam_step_ = true, sgd_step_ = true, rmsprop_step_ = true, ema_update_ = true, sum_squares = true,
  count_backward = true, backward_counts = true, idx_read = true, idx_write = true, png_read = true,
  png_write = true, interrupt_handler = true, interrupt_arm = true, set_detect_anomaly = true,
  set_grad_hook_key = true, set_grad_hooks = true, grad_hook = true, set_grad_transform = true,
  linalg_lu_factor = true, linalg_slogdet = true, linalg_inverse = true, linalg_solve_triangular = true,
}

for name, fn in pairs(core) do
  if type(fn) == "function" and not core_only[name] then
    gen[name] = fn
    if not not_methods[name] then Tensor[name] = fn end
  end
end

-- Shape helpers in Lua (squeeze, unsqueeze, flatten, split, chunk; stack is a function only).
for name, fn in pairs(require "gen.shape") do
  gen[name] = fn
  if name ~= "stack" then Tensor[name] = fn end
end

-- Conversions (Torch7 names).
function Tensor:float() return self:type("float32") end
function Tensor:double() return self:type("float64") end
function Tensor:long() return self:type("int64") end
function Tensor:byte() return self:type("uint8") end

-- *_like creation.
local function like(make)
  return function(x, opts)
    local dtype = (type(opts) == "table" and opts.dtype) or (type(opts) == "string" and opts) or x.dtype
    local o = type(opts) == "table" and opts or {}
    return make(x.shape, setmetatable({ dtype = dtype }, { __index = o }))
  end
end
local function opts_only(f) return function(shape, o) return f(shape, o.dtype ~= nil and { dtype = o.dtype, generator = o.generator } or o) end end
gen.zeros_like = like(function(s, o) return core.zeros(s, o.dtype) end)
gen.ones_like = like(function(s, o) return core.ones(s, o.dtype) end)
gen.empty_like = like(function(s, o) return core.empty(s, o.dtype) end)
gen.full_like = function(x, v, dtype) return core.full(x.shape, v, dtype or x.dtype) end
gen.rand_like = like(opts_only(core.rand))
gen.randn_like = like(opts_only(core.randn))
Tensor.zeros_like, Tensor.ones_like, Tensor.randn_like = gen.zeros_like, gen.ones_like, gen.randn_like

--- Runs fn(...) with autograd recording off, restoring the previous mode even on error.
function gen.no_grad(fn, ...)
  local was = core.set_grad_enabled(false)
  local results = table.pack(pcall(fn, ...))
  core.set_grad_enabled(was)
  if not results[1] then error(results[2], 0) end
  return table.unpack(results, 2, results.n)
end

--- gen.autograd: autograd utilities beyond x:backward().
gen.autograd = gen.autograd or {}

--- Anomaly mode: the first op whose forward turns finite inputs into NaN or Inf, or whose backward
-- turns a finite gradient into NaN or Inf, raises an error naming the op and the Lua line that
-- created it. detect_anomaly(true | false) switches it and returns the previous setting;
-- detect_anomaly(fn, ...) runs fn(...) with it on, then restores the previous setting.
function gen.autograd.detect_anomaly(on, ...)
  if type(on) == "function" then
    local was = core.set_detect_anomaly(true)
    local results = table.pack(pcall(on, ...))
    core.set_detect_anomaly(was)
    if not results[1] then error(results[2], 0) end
    return table.unpack(results, 2, results.n)
  end
  if type(on) ~= "boolean" then error("gen.autograd.detect_anomaly: expected a boolean or a function, got " .. type(on), 2) end
  return core.set_detect_anomaly(on)
end

--- Gradients of outputs with respect to inputs, returned rather than accumulated into .grad.
-- outputs and inputs are a tensor or a list of tensors; opts:
--   grad_outputs  a tensor or list (one per output; nil entries for one-element outputs, which get 1)
--   create_graph  record the backward pass, so the gradients can be differentiated again (false)
--   retain_graph  keep the forward graph's saved tensors (default: create_graph)
--   allow_unused  give nil for an input the outputs do not depend on, instead of an error (false)
-- Returns a list of tensors, one per input (an input that is used but gets no gradient gets zeros).
function gen.autograd.grad(outputs, inputs, opts)
  local fname = "gen.autograd.grad"
  opts = opts or {}
  if type(opts) ~= "table" then error(fname .. ": argument 3: expected an options table, got " .. type(opts), 2) end
  local function as_list(v, what, allow_nil)
    if gen.is_tensor(v) then return { v } end
    if type(v) ~= "table" then
      error(string.format("%s: %s must be a tensor or a list of tensors, got %s", fname, what, type(v)), 3)
    end
    local n = 0
    for k in pairs(v) do
      if math.type(k) ~= "integer" or k < 1 then error(string.format("%s: %s must be a list", fname, what), 3) end
      n = math.max(n, k)
    end
    for i = 1, n do
      if not gen.is_tensor(v[i]) and not (allow_nil and v[i] == nil) then
        error(string.format("%s: %s[%d] must be a tensor, got %s", fname, what, i, type(v[i])), 3)
      end
    end
    return v, n
  end
  local outs = as_list(outputs, "outputs")
  local ins = as_list(inputs, "inputs")
  if #outs == 0 then error(fname .. ": needs at least one output", 2) end
  local gos
  if opts.grad_outputs ~= nil then
    local n
    gos, n = as_list(opts.grad_outputs, "grad_outputs", true)
    if gen.is_tensor(opts.grad_outputs) then n = 1 end
    if n > #outs then
      error(string.format("%s: %d grad_outputs for %d outputs", fname, n, #outs), 2)
    end
  end
  local create = opts.create_graph and true or false
  local retain = opts.retain_graph
  if retain == nil then retain = create end
  local ok, results, used = pcall(core.autograd_grad, outs, ins, gos, create, retain and true or false)
  if not ok then error(results, 2) end
  for j = 1, #ins do
    if not used[j] then
      if not opts.allow_unused then
        error(string.format("%s: input %d is not used by the graph of the outputs (pass allow_unused = true to get nil)",
          fname, j), 2)
      end
    elseif results[j] == nil then
      results[j] = gen.zeros_like(ins[j])
    end
  end
  return results
end

-- Gradient-ready and backward-end hooks (gen.dist.DataParallel overlaps its all-reduce with them).
local hooks = require "gen.hooks"
gen.autograd.register_grad_ready_hook = hooks.register_grad_ready_hook
gen.autograd.register_backward_end_hook = hooks.register_backward_end_hook
gen.autograd.gradient_hook = hooks.gradient_hook

--- Generators: gen.Generator(seed) with g:manual_seed(n), g:get_state(), g:set_state(s).
local generator_methods = core.generator_mt.__index
function generator_methods.set_state(g, s) core.set_rng_state(s, g) end

-- Printing.
local format = require "gen.format"
core.tensor_mt.__tostring = format.tensor

package.loaded.gen = gen
gen.testing = require "gen.testing"

-- Submodules load on first use (gen.nn, gen.optim, ...), so `require "gen"` stays fast.
local lazy = { nn = "gen.nn", optim = "gen.optim", checkpoint = "gen.checkpoint", data = "gen.data", image = "gen.image",
  ui = "gen.app.ui", models = "gen.models", experiment = "gen.experiment", diffusion = "gen.diffusion",
  metrics = "gen.metrics", gan = "gen.gan", autoencoder = "gen.autoencoder", autoregressive = "gen.autoregressive",
  likelihood = "gen.likelihood", linalg = "gen.linalg", flows = "gen.flows" }

-- Module paths that moved, still loadable by their old names (see the README's changelog).
for old, new in pairs { ["gen.ui"] = "gen.app.ui", ["gen.repl"] = "gen.app.repl", ["gen.kernel"] = "gen.app.kernel" } do
  package.preload[old] = function() return require(new) end
end
-- `lazy` stays in the metatable so the notebook's completion can offer gen.nn before it loads.
setmetatable(gen, { lazy = lazy, __index = function(t, k)
  local name = lazy[k]
  if not name then return nil end
  local m = require(name)
  rawset(t, k, m)
  return m
end })

return gen
