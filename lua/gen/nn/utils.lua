--- gen.nn.utils: reparameterizations of a module's weight.
--
-- spectral_norm(module, {name = "weight", power_iterations = 1, eps = 1e-12, dim})
--   Spectral normalization (Miyato et al., 2018): the layer computes with W / sigma(W), where
--   sigma(W) is the largest singular value of W viewed as a matrix {rows, rest} (rows = the
--   output channels: dim 1, or dim 2 for ConvTranspose2d, whose weight is {in, out, k, k}).
--   sigma is estimated by power iteration with a persistent left vector u: each training-mode
--   forward runs `power_iterations` steps
--       v <- normalize(W^T u),   u <- normalize(W v)
--   and uses sigma = u^T W v, differentiated in W with u and v held fixed (so dsigma/dW = u v^T,
--   as in the paper's appendix). An evaluation-mode forward reuses the stored u and v.
--   The module's parameter `weight` becomes `weight_orig`, and u and v are buffers `weight_u`,
--   `weight_v`: PyTorch's names, saved in state dicts and checkpoints, so a resumed run continues
--   the same power iteration. `module.weight` is the normalized weight of the last forward.
--   Returns the module itself (modified in place), as torch.nn.utils.spectral_norm does.
-- remove_spectral_norm(module [, name]): bakes W / sigma into a plain parameter again.
local gen = require "gen"
local base = require "gen.nn.module"

local M = {}

local function normalize(t, eps)
  return t / math.max(math.sqrt((t * t):sum():item()), eps)
end

-- W as the matrix {rows, rest} whose largest singular value is sigma.
local function as_matrix(w, dim)
  if dim ~= 1 then w = w:transpose(1, dim) end
  return w:reshape(w:size(1), -1)
end

local function hooks(m) return rawget(m, "_spectral_norm") end

--- The normalized weight of module m for its reparameterized parameter (see above).
function M.spectral_weight(m, name)
  local sn = hooks(m) and hooks(m)[name or "weight"]
  if not sn then error("gen.nn.utils.spectral_weight: no spectral norm on '" .. tostring(name or "weight") .. "'", 2) end
  local w_orig, u, v = m[name .. "_orig"], m[name .. "_u"], m[name .. "_v"]
  local mat = as_matrix(w_orig, sn.dim)
  if m.training then
    gen.no_grad(function()
      local wd = mat:detach()
      for _ = 1, sn.power_iterations do
        v:copy_(normalize(gen.matmul(u:view(1, -1), wd):view(-1), sn.eps))
        u:copy_(normalize(gen.matmul(wd, v:view(-1, 1)):view(-1), sn.eps))
      end
    end)
  end
  -- copies: the next forward updates u and v in place while this graph may still be pending
  local uc, vc = u:clone(), v:clone()
  local sigma = gen.matmul(gen.matmul(uc:view(1, -1), mat), vc:view(-1, 1)):view({})
  return w_orig / sigma
end

local function check_module(who, m)
  if not base.is_module(m) then error(who .. ": expected a module, got " .. type(m), 3) end
end

function M.spectral_norm(m, opts)
  local who = "gen.nn.utils.spectral_norm"
  check_module(who, m)
  opts = opts or {}
  local name = opts.name or "weight"
  if hooks(m) and hooks(m)[name] then error(string.format("%s: '%s' of %s is already spectrally normalized", who, name, m.__name), 2) end
  local w = rawget(m, name)
  if not (gen.is_tensor(w) and base.is_parameter(w)) then
    error(string.format("%s: %s has no parameter '%s'", who, m.__name, tostring(name)), 2)
  end
  if w:dim() < 2 then error(string.format("%s: '%s' must have at least 2 dims, got {%s}", who, name, table.concat(w.shape, ",")), 2) end
  local iters = opts.power_iterations or 1
  if math.type(iters) ~= "integer" or iters < 1 then
    error(who .. ": power_iterations must be a positive integer, got " .. tostring(iters), 2)
  end
  local eps = opts.eps or 1e-12
  if type(eps) ~= "number" or eps <= 0 then error(who .. ": eps must be a positive number, got " .. tostring(eps), 2) end
  local dim = opts.dim or (m.__name == "ConvTranspose2d" and 2 or 1)
  if math.type(dim) ~= "integer" or dim < 1 or dim > w:dim() then
    error(string.format("%s: dim must be in 1..%d, got %s", who, w:dim(), tostring(dim)), 2)
  end
  local mat = as_matrix(w:detach(), dim)
  local g = opts.generator and { generator = opts.generator } or nil
  rawset(m, name, nil)
  m[name .. "_orig"] = w
  gen.no_grad(function()
    m:register_buffer(name .. "_u", normalize(gen.randn({ mat:size(1) }, g):type(w.dtype), eps))
    m:register_buffer(name .. "_v", normalize(gen.randn({ mat:size(2) }, g):type(w.dtype), eps))
  end)
  local state = rawget(m, "_spectral_norm")
  if not state then
    state = {}
    rawset(m, "_spectral_norm", state)
    -- the instance's forward recomputes every normalized weight, then runs the class's forward
    local class_forward = getmetatable(m).forward
    rawset(m, "forward", function(self, ...)
      for n in pairs(state) do rawset(self, n, M.spectral_weight(self, n)) end
      return class_forward(self, ...)
    end)
  end
  state[name] = { power_iterations = iters, eps = eps, dim = dim }
  -- before any forward, `module.weight` is W / sigma with the initial (random) u and v
  rawset(m, name, gen.no_grad(function() return w / M.sigma(m, name) end))
  return m
end

--- The current estimate u^T W v of the largest singular value (no power iteration, no graph).
function M.sigma(m, name)
  name = name or "weight"
  local sn = hooks(m) and hooks(m)[name]
  if not sn then error("gen.nn.utils.sigma: no spectral norm on '" .. tostring(name) .. "'", 2) end
  return gen.no_grad(function()
    local mat = as_matrix(m[name .. "_orig"]:detach(), sn.dim)
    return gen.matmul(gen.matmul(m[name .. "_u"]:view(1, -1), mat), m[name .. "_v"]:view(-1, 1)):item()
  end)
end

function M.remove_spectral_norm(m, name)
  name = name or "weight"
  check_module("gen.nn.utils.remove_spectral_norm", m)
  local state = hooks(m)
  if not (state and state[name]) then
    error(string.format("gen.nn.utils.remove_spectral_norm: '%s' of %s is not spectrally normalized", name, m.__name), 2)
  end
  local w = gen.no_grad(function() return m[name .. "_orig"] / M.sigma(m, name) end)
  state[name] = nil
  for _, suffix in ipairs { "_orig", "_u", "_v" } do
    rawset(m, name .. suffix, nil)
    m._buffers[name .. suffix] = nil
  end
  rawset(m, name, base.Parameter(w:detach():clone()))
  if next(state) == nil then
    rawset(m, "_spectral_norm", nil)
    rawset(m, "forward", nil)
  end
  return m
end

return M
