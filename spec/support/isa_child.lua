-- Runs every ISA-dispatched kernel on fixed inputs, at 1 thread and at 2, and saves the inputs and
-- the 2-thread results to arg[1] (safetensors); spec/isa_spec.lua runs it once per GEN_ISA level.
-- The metadata's "threads" field lists the results that differ between 1 and 2 threads ("" if none).
local gen = require "gen"

local out_path = assert(arg[1], "usage: isa_child.lua OUT")
local inputs = {}

local function input(name, t)
  inputs[name] = t
  return t
end

-- The cases: name -> function returning {result name = tensor}. Inputs are drawn from the seed, so
-- each run sees the same ones.
local cases = {}

-- GEMM shapes: 1, 7, 17, 1023 and 1024 (a row stride of 4 KB), transposed operands, strided views.
local gemm_shapes = {
  { 1, 1, 1 }, { 1, 7, 17 }, { 7, 17, 1 }, { 17, 1023, 7 }, { 1023, 17, 33 }, { 33, 300, 1023 }, { 17, 300, 1024 },
  { 64, 64, 32 }, { 130, 70, 260 },
}
for i, s in ipairs(gemm_shapes) do
  local m, n, k = s[1], s[2], s[3]
  for _, tr in ipairs { "nn", "tn", "nt", "tt" } do
    cases[#cases + 1] = function()
      local a = tr:sub(1, 1) == "t" and input(("gemm%d%s_a"):format(i, tr), gen.randn(k, m)):t()
        or input(("gemm%d%s_a"):format(i, tr), gen.randn(m, k))
      local b = tr:sub(2, 2) == "t" and input(("gemm%d%s_b"):format(i, tr), gen.randn(n, k)):t()
        or input(("gemm%d%s_b"):format(i, tr), gen.randn(k, n))
      return { [("gemm%d%s"):format(i, tr)] = gen.matmul(a, b) }
    end
  end
end
-- strided operands: every other column of a wider matrix, a row window of a taller one
cases[#cases + 1] = function()
  local a = input("gemm_strided_a", gen.randn(37, 2 * 129)):narrow(2, 2, 129)
  local b = input("gemm_strided_b", gen.randn(140, 45)):narrow(1, 6, 129)
  return { gemm_strided = gen.matmul(a, b) }
end
-- rows of A 4 KB apart (packed by gen's SGEMM), a reduction not a multiple of 16 in any slice
cases[#cases + 1] = function()
  local a = input("gemm_packed_a", gen.randn(29, 1024)):narrow(2, 3, 1001)
  local b = input("gemm_packed_b", gen.randn(1001, 300))
  return { gemm_packed = gen.matmul(a, b) }
end
-- a linear layer, forward and backward (three GEMMs with transposes)
cases[#cases + 1] = function()
  local x = input("linear_x", gen.randn(19, 83)):requires_grad_()
  local w = input("linear_w", gen.randn(41, 83)):requires_grad_()
  local y = gen.linear(x, w)
  y:backward(input("linear_g", gen.randn(19, 41)))
  return { linear = y, linear_dx = x.grad, linear_dw = w.grad }
end

-- convolutions: 3x3 and 2x2 (Winograd), 4x4 stride 2 (Winograd on the polyphase image), 5x5 (im2col)
-- (lists, not tables keyed by name: each case's seed is its position, which must not vary by run)
local convs = { { "c3", 3, 1, 1 }, { "c2", 2, 1, 1 }, { "c4s2", 4, 2, 1 }, { "c5", 5, 1, 2 } }
for _, c in ipairs(convs) do
  local name = c[1]
  cases[#cases + 1] = function()
    local x = input(name .. "_x", gen.randn(2, 16, 13, 11)):requires_grad_()
    local w = input(name .. "_w", gen.randn(20, 16, c[2], c[2]) * 0.2):requires_grad_()
    local b = input(name .. "_b", gen.randn(20)):requires_grad_()
    local y = gen.conv2d(x, w, b, { stride = c[3], padding = c[4] })
    y:backward(input(name .. "_g", gen.randn(table.unpack(y.shape))))
    return { [name] = y, [name .. "_dx"] = x.grad, [name .. "_dw"] = w.grad, [name .. "_db"] = b.grad }
  end
end

-- attention: two query tiles and a partial one, causal or not; one query (the direct loops)
local attns = { { "full", 100, 100, false }, { "causal", 100, 100, true }, { "decode", 1, 50, false } }
for _, a in ipairs(attns) do
  local name = a[1]
  cases[#cases + 1] = function()
    local q = input("attn_" .. name .. "_q", gen.randn(2, 3, a[2], 24)):requires_grad_()
    local k = input("attn_" .. name .. "_k", gen.randn(2, 3, a[3], 24)):requires_grad_()
    local v = input("attn_" .. name .. "_v", gen.randn(2, 3, a[3], 20)):requires_grad_()
    local o = gen.scaled_dot_product_attention(q, k, v, { causal = a[4] })
    o:backward(input("attn_" .. name .. "_g", gen.randn(table.unpack(o.shape))))
    local p = "attn_" .. name
    return { [p] = o, [p .. "_dq"] = q.grad, [p .. "_dk"] = k.grad, [p .. "_dv"] = v.grad }
  end
end

-- activations, losses and elementwise ops, on more elements than one parallel grain
local n = 40000 + 13
local acts = { "silu", "sigmoid", "gelu", "tanh", "relu", "leaky_relu" }
for _, f in ipairs(acts) do
  cases[#cases + 1] = function()
    local x = input("act_" .. f .. "_x", gen.randn(n) * 4):requires_grad_()
    local y = gen[f](x)
    y:backward(input("act_" .. f .. "_g", gen.randn(n)))
    return { ["act_" .. f] = y, ["act_" .. f .. "_dx"] = x.grad }
  end
end
for _, f in ipairs { "mse_loss", "bce_with_logits" } do
  cases[#cases + 1] = function()
    local x = input(f .. "_x", gen.randn(n)):requires_grad_()
    local t = input(f .. "_t", gen.rand(n))
    local l = gen[f](x, t)
    l:backward()
    local e = gen[f](x:detach(), t, { reduction = "none" })
    return { [f] = l, [f .. "_dx"] = x.grad, [f .. "_el"] = e }
  end
end
-- softmax cross entropy on rows {N, C} and on images {N, C, H, W} (classes strided)
for _, shape in ipairs { { 300, 37 }, { 3, 10, 13, 11 } } do
  cases[#cases + 1] = function()
    local name = "ce" .. #shape
    local x = input(name .. "_x", gen.randn(table.unpack(shape)) * 3):requires_grad_()
    local tshape = { shape[1], table.unpack(shape, 3) }
    local t = input(name .. "_t", gen.randint(1, shape[2], tshape):double())
    local l = gen.cross_entropy(x, t:long())
    l:backward()
    return { [name] = l, [name .. "_dx"] = x.grad }
  end
end
cases[#cases + 1] = function()
  local a, b = input("ew_a", gen.randn(n)), input("ew_b", gen.randn(n) + 3)
  local r = input("ew_r", gen.randn(1))
  return { ew_add = a + b, ew_sub = a - b, ew_mul = a * b, ew_div = a / b, ew_bcast = a / r, ew_axpby = a * 0.3 + b * 1.7 }
end

local function run_all(threads)
  gen.set_num_threads(threads)
  local got = {}
  for i, case in ipairs(cases) do
    gen.manual_seed(1000 + i)
    for name, t in pairs(case()) do got[name] = t:detach():contiguous() end
  end
  return got
end

local one = run_all(1)
local results = run_all(2)
local differ = {}
for name, t in pairs(results) do
  if (t:double() - one[name]:double()):abs():max():item() ~= 0 then differ[#differ + 1] = name end
end
table.sort(differ)
local all = {}
for name, t in pairs(inputs) do all["in." .. name] = t:contiguous() end
for name, t in pairs(results) do all["out." .. name] = t end
gen.save(out_path, all, { isa = gen.config().isa, threads = table.concat(differ, " ") })
