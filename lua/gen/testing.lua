--- gen.testing: numerical gradient checks.
-- gradcheck(fn, inputs [, opts]) compares the gradients autograd gives for fn(inputs...) with
-- central finite differences, in float64. fn returns a tensor; a random projection of its output
-- (fixed seed) makes a scalar, so any output shape is checked through all its entries.
local M = {}

local function gen_() return require "gen" end

local function as_double_leaf(x)
  if gen_().is_tensor(x) and (x.dtype == "float32" or x.dtype == "float64") then
    return gen_().tensor(x, "float64"):requires_grad_()
  end
  return x
end

-- The float64 leaves of the inputs, the positions to check (opts.wrt or every float input) and
-- the tolerances.
local function setup(inputs, opts)
  local gen = gen_()
  local xs, wrt = {}, opts.wrt
  for i, x in ipairs(inputs) do xs[i] = as_double_leaf(x) end
  if not wrt then
    wrt = {}
    for i, x in ipairs(xs) do if gen.is_tensor(x) and x.requires_grad then wrt[#wrt + 1] = i end end
  end
  return xs, wrt, opts.eps or 1e-6, opts.atol or 1e-5, opts.rtol or 1e-3
end

-- Compares analytic (a tensor shaped like x, or nil for zeros) with central differences of the
-- number f() as each entry of x moves by eps; raises "<what>, element j: ..." at the checker's caller.
local function compare(x, analytic, f, tol, what)
  local gen = gen_()
  for j = 1, x:numel() do
    local orig = x:at(j)
    local function eval(v)
      gen.no_grad(function() x:set_at(j, v) end)
      return f()
    end
    local fp, fm = eval(orig + tol.eps), eval(orig - tol.eps)
    gen.no_grad(function() x:set_at(j, orig) end)
    local numeric = (fp - fm) / (2 * tol.eps)
    local a = analytic and analytic:at(j) or 0
    if math.abs(a - numeric) > tol.atol + tol.rtol * math.abs(numeric) then
      error(string.format("%s, element %d: analytic %.8g vs numeric %.8g", what, j, a, numeric), 3)
    end
  end
end

--- Returns true, or raises an error describing the worst mismatching entry.
-- opts: eps (1e-6), atol (1e-5), rtol (1e-3), wrt (list of input positions to check; default all
-- float inputs).
function M.gradcheck(fn, inputs, opts)
  local gen = gen_()
  local xs, wrt, eps, atol, rtol = setup(inputs, opts or {})
  local function run(args) return fn(table.unpack(args, 1, #inputs)) end
  local out = run(xs)
  assert(gen.is_tensor(out), "gradcheck: fn must return a tensor")
  local g = gen.Generator(1234)
  local proj = gen.randn(out.shape, { dtype = "float64", generator = g })
  local function scalar(o) return (o:double() * proj):sum() end
  local loss = scalar(out)
  gen.core.count_backward(true) -- the coverage meta-test counts backward runs made here
  local ok, err = pcall(loss.backward, loss)
  gen.core.count_backward(false)
  if not ok then error(err, 0) end
  local tol = { eps = eps, atol = atol, rtol = rtol }
  for _, i in ipairs(wrt) do
    compare(xs[i], xs[i].grad, function() return gen.no_grad(function() return scalar(run(xs)):item() end) end, tol,
      "gradcheck: input " .. i)
  end
  return true
end

--- Second-order check: the gradients that gen.autograd.grad builds with create_graph = true are
-- differentiated again and compared with central finite differences of the first-order gradients,
-- in float64. With s = <fn(inputs), p> for a random projection p, the first-order gradients are
-- g_i = ds/dx_i; with random directions v_i, t = sum_i <g_i, v_i> is a scalar whose gradient in
-- each x_j (a Hessian-vector product) and in p (a Jacobian-vector product: this checks how the
-- backward depends on its incoming gradient, which even piecewise-linear ops have) is checked.
-- Returns true, or raises naming the worst entry. opts as for gradcheck (eps 1e-6, atol 1e-5,
-- rtol 1e-3, wrt).
function M.gradgradcheck(fn, inputs, opts)
  local gen = gen_()
  local xs, wrt, eps, atol, rtol = setup(inputs, opts or {})
  local vars = {}
  for k, i in ipairs(wrt) do vars[k] = xs[i] end
  local out = fn(table.unpack(xs, 1, #inputs))
  assert(gen.is_tensor(out), "gradgradcheck: fn must return a tensor")
  local rng = gen.Generator(4321)
  local proj = gen.randn(out.shape, { dtype = "float64", generator = rng }):requires_grad_()
  local dirs = {}
  for k, x in ipairs(vars) do dirs[k] = gen.randn(x.shape, { dtype = "float64", generator = rng }) end
  -- t(xs, proj): the first-order gradients projected on the directions
  local function t_of(create)
    local o = fn(table.unpack(xs, 1, #inputs))
    local s = (o:double() * proj):sum()
    local gs = gen.autograd.grad(s, vars, { create_graph = create, allow_unused = true })
    local t
    for k = 1, #vars do
      if gs[k] then
        local term = (gs[k] * dirs[k]):sum()
        t = t and t + term or term
      end
    end
    return t
  end
  gen.core.count_backward(true) -- the coverage meta-test counts the graph backwards run here
  local ok, t = pcall(t_of, true)
  gen.core.count_backward(false)
  if not ok then error(t, 0) end
  if not t or not t.requires_grad then error("gradgradcheck: the first-order gradient does not depend on the inputs", 2) end
  local all = {}
  for k, x in ipairs(vars) do all[k] = x end
  all[#all + 1] = proj
  gen.core.count_backward(true) -- and the backwards of the ops those recorded
  local ok2, analytic = pcall(gen.autograd.grad, t, all, { allow_unused = true })
  gen.core.count_backward(false)
  if not ok2 then error(analytic, 0) end
  local tol = { eps = eps, atol = atol, rtol = rtol }
  for k, x in ipairs(all) do
    compare(x, analytic[k], function()
      local r = t_of(false)
      return r and r:item() or 0
    end, tol, "gradgradcheck: " .. (x == proj and "the output projection" or ("input " .. wrt[k])))
  end
  return true
end

return M
