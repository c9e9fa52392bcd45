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

--- Returns true, or raises an error describing the worst mismatching entry.
-- opts: eps (1e-6), atol (1e-5), rtol (1e-3), wrt (list of input positions to check; default all
-- float inputs).
function M.gradcheck(fn, inputs, opts)
  local gen = gen_()
  opts = opts or {}
  local eps, atol, rtol = opts.eps or 1e-6, opts.atol or 1e-5, opts.rtol or 1e-3
  local xs = {}
  for i, x in ipairs(inputs) do xs[i] = as_double_leaf(x) end
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
  local wrt = opts.wrt
  if not wrt then
    wrt = {}
    for i, x in ipairs(xs) do if gen.is_tensor(x) and x.requires_grad then wrt[#wrt + 1] = i end end
  end
  for _, i in ipairs(wrt) do
    local x = xs[i]
    local analytic = x.grad
    local n = x:numel()
    for j = 1, n do
      local orig = x:at(j)
      local function eval(v)
        gen.no_grad(function() x:set_at(j, v) end)
        local r = gen.no_grad(function() return scalar(run(xs)):item() end)
        return r
      end
      local fp, fm = eval(orig + eps), eval(orig - eps)
      gen.no_grad(function() x:set_at(j, orig) end)
      local numeric = (fp - fm) / (2 * eps)
      local a = analytic and analytic:at(j) or 0
      if math.abs(a - numeric) > atol + rtol * math.abs(numeric) then
        error(string.format("gradcheck: input %d, element %d: analytic %.8g vs numeric %.8g", i, j, a, numeric), 2)
      end
    end
  end
  return true
end

return M
