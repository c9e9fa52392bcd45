-- Runtime ISA dispatch (csrc/kernels/isa.h): gen.config(), GEN_ISA, and every dispatched kernel
-- under each ISA level this CPU supports against the generic level and float64 references, with
-- results bitwise independent of the thread count at each level. Levels the CPU lacks are printed
-- as skipped (they are not counted as passed).
local gen = require "gen"
local shell = require "support.shell"

local levels = { "avx512", "avx2", "generic" }
local config = gen.config()
local available = {}
for _, l in ipairs(config.isa_available) do available[l] = true end

describe("gen.config", function()
  it("names the ISA level in use, the levels available, threads, BLAS, the float32 GEMM and the build", function()
    assert.is_true(available[config.isa])
    assert.equal("generic", config.isa_available[#config.isa_available])
    for i, l in ipairs(config.isa_available) do -- best first
      local rank = { avx512 = 3, avx2 = 2, generic = 1 }
      if i > 1 then assert.is_true(rank[config.isa_available[i - 1]] > rank[l]) end
    end
    assert.equal(gen.get_num_threads(), config.threads)
    assert.matches("OpenBLAS", config.blas)
    assert.equal(config.isa == "avx512" and "gen" or "openblas", config.sgemm)
    assert.is_string(config.build)
    assert.is_nil(gen.Tensor.config) -- a function, not a tensor method
  end)

  it("is what bin/gen --version prints", function()
    local ok, out = shell.sh("bin/gen --version")
    assert.is_true(ok, out)
    assert.matches("ISA " .. config.isa, out, 1, true)
  end)
end)

describe("GEN_ISA", function()
  it("forces each level the CPU supports", function()
    for _, l in ipairs(config.isa_available) do
      local ok, out = shell.sh("GEN_ISA=" .. l .. " bin/gen -e 'io.write(gen.config().isa)'")
      assert.is_true(ok, out)
      assert.equal(l, out)
    end
  end)

  it("with an unknown value fails at load with the accepted ones", function()
    local ok, out = shell.sh("GEN_ISA=sse9 bin/gen -e 'print(1)'")
    assert.is_falsy(ok)
    assert.matches("GEN_ISA must be avx512, avx2 or generic (or unset), got 'sse9'", out, 1, true)
  end)

  local best = config.isa_available[1]
  if best ~= "avx512" then
    it("above the CPU's best fails at load naming the best", function()
      local ok, out = shell.sh("GEN_ISA=avx512 bin/gen -e 'print(1)'")
      assert.is_falsy(ok)
      assert.matches("GEN_ISA=avx512, but this CPU supports at most " .. best, out, 1, true)
    end)
  else
    print("isa_spec: skipped: GEN_ISA above the CPU's best (this CPU has avx512, the highest level)")
  end
end)

-- One child run per available level: inputs, results, and which results depended on threads.
local runs = {}
local dir = shell.tmpdir()
os.execute("mkdir -p " .. dir)
local function run(level)
  if runs[level] == nil then
    local path = dir .. "/" .. level .. ".safetensors"
    local ok, out = shell.sh("GEN_ISA=" .. level .. " bin/gen spec/support/isa_child.lua " .. path)
    assert(ok, out)
    local t, meta = gen.load(path)
    local r = { isa = meta.isa, threads = meta.threads, inputs = {}, out = {} }
    for name, x in pairs(t) do
      local kind, key = name:match("^(%a+)%.(.+)$")
      r[kind == "in" and "inputs" or "out"][key] = x
    end
    runs[level] = r
  end
  return runs[level]
end

local function max_abs(t) return t:double():abs():max():item() end
local function bitwise(a, b) return (a:double() - b:double()):abs():max():item() == 0 end

-- float64 references from the saved inputs
local function references(r)
  local i, ref = r.inputs, {}
  for name, a in pairs(i) do
    local case = name:match("^(gemm%d+%a%a)_a$")
    if case then
      local tr = case:sub(-2)
      local A, B = a:double(), i[case .. "_b"]:double()
      ref[case] = gen.matmul(tr:sub(1, 1) == "t" and A:t() or A, tr:sub(2, 2) == "t" and B:t() or B)
    end
  end
  ref.gemm_strided = gen.matmul(i.gemm_strided_a:double():narrow(2, 2, 129), i.gemm_strided_b:double():narrow(1, 6, 129))
  ref.gemm_packed = gen.matmul(i.gemm_packed_a:double():narrow(2, 3, 1001), i.gemm_packed_b:double())
  local x, w = i.linear_x:double():requires_grad_(), i.linear_w:double():requires_grad_()
  local y = gen.linear(x, w)
  y:backward(i.linear_g:double())
  ref.linear, ref.linear_dx, ref.linear_dw = y, x.grad, w.grad
  for name, c in pairs { c3 = { 1, 1 }, c2 = { 1, 1 }, c4s2 = { 2, 1 }, c5 = { 1, 2 } } do
    local cx, cw, cb = i[name .. "_x"]:double():requires_grad_(), i[name .. "_w"]:double():requires_grad_(),
      i[name .. "_b"]:double():requires_grad_()
    local cy = gen.conv2d(cx, cw, cb, { stride = c[1], padding = c[2] })
    cy:backward(i[name .. "_g"]:double())
    ref[name], ref[name .. "_dx"], ref[name .. "_dw"], ref[name .. "_db"] = cy, cx.grad, cw.grad, cb.grad
  end
  for name, causal in pairs { full = false, causal = true, decode = false } do
    local p = "attn_" .. name
    local q, k, v = i[p .. "_q"]:double():requires_grad_(), i[p .. "_k"]:double():requires_grad_(),
      i[p .. "_v"]:double():requires_grad_()
    local o = gen.scaled_dot_product_attention(q, k, v, { causal = causal })
    o:backward(i[p .. "_g"]:double())
    ref[p], ref[p .. "_dq"], ref[p .. "_dk"], ref[p .. "_dv"] = o, q.grad, k.grad, v.grad
  end
  for _, f in ipairs { "silu", "sigmoid", "gelu", "tanh", "relu", "leaky_relu" } do
    local ax = i["act_" .. f .. "_x"]:double():requires_grad_()
    local ay = gen[f](ax)
    ay:backward(i["act_" .. f .. "_g"]:double())
    ref["act_" .. f], ref["act_" .. f .. "_dx"] = ay, ax.grad
  end
  for _, f in ipairs { "mse_loss", "bce_with_logits" } do
    local lx, lt = i[f .. "_x"]:double():requires_grad_(), i[f .. "_t"]:double()
    local l = gen[f](lx, lt)
    l:backward()
    ref[f], ref[f .. "_dx"], ref[f .. "_el"] = l, lx.grad, gen[f](lx:detach(), lt, { reduction = "none" })
  end
  for _, name in ipairs { "ce2", "ce4" } do
    local cx = i[name .. "_x"]:double():requires_grad_()
    local l = gen.cross_entropy(cx, i[name .. "_t"]:long())
    l:backward()
    ref[name], ref[name .. "_dx"] = l, cx.grad
  end
  local a, b, rr = i.ew_a:double(), i.ew_b:double(), i.ew_r:double()
  ref.ew_add, ref.ew_sub, ref.ew_mul, ref.ew_div, ref.ew_bcast, ref.ew_axpby = a + b, a - b, a * b, a / b, a / rr, a * 0.3 + b * 1.7
  return ref
end

-- float32 results against float64: relative to the reference's size (GEMM-like sums of up to 1024
-- terms round to a few 1e-7 of it; the activations' approximations are within 1e-6)
local function close(name, got, want)
  local scale = math.max(max_abs(want), 1e-30)
  local err = max_abs(got:double() - want) / scale
  assert(err < 2e-5, string.format("%s: float32 result off the float64 reference by %.3g (relative to max %.3g)", name, err,
    scale))
end

-- Which results must be the same bits at every level: those whose kernels avoid BLAS and order
-- their sums the same way at every width. GEMM-based ones compare to float64 only (gen's AVX-512
-- SGEMM and OpenBLAS round differently).
local function same_bits_everywhere(name) return name:match("^act_") or name:match("^ew_") or name:match("^mse_loss")
  or name:match("^bce_with_logits") or name:match("^ce%d") end

describe("dispatched kernels", function()
  teardown(function() -- busted keeps the closures (and so runs) to the end of the suite: let the tensors go
    for level in pairs(runs) do runs[level] = nil end
    collectgarbage()
    os.execute("rm -rf " .. dir)
  end)
  for _, level in ipairs(levels) do
    if not available[level] then
      print("isa_spec: skipped " .. level .. ": this CPU supports at most " .. config.isa_available[1])
    else
      it(level .. ": every kernel against float64, bitwise the same on 1 and 2 threads", function()
        local r = run(level)
        assert.equal(level, r.isa)
        assert.equal("", r.threads, "results that depend on the thread count at " .. level .. ": " .. r.threads)
        local ref, count = references(r), 0
        for name, got in pairs(r.out) do
          assert(ref[name], "no reference for " .. name)
          close(level .. " " .. name, got, ref[name])
          count = count + 1
        end
        assert.is_true(count > 80)
      end)
      if level ~= "generic" then
        it(level .. ": the same bits as the generic level where the kernels promise it", function()
          local r, g = run(level), run("generic")
          for name, got in pairs(r.out) do
            if same_bits_everywhere(name) then assert(bitwise(got, g.out[name]), level .. " " .. name .. " differs from generic") end
          end
          if level == "avx2" then -- the same BLAS as generic: attention's own loops must not change a bit
            for name, got in pairs(r.out) do
              if name:match("^attn_") then assert(bitwise(got, g.out[name]), "avx2 " .. name .. " differs from generic") end
            end
          end
        end)
      end
    end
  end
  if available.avx512 and available.avx2 then
    it("avx512: Winograd convolutions are the same bits as at avx2 (the same FMA chains, 16 lanes wide)", function()
      local a, b = run("avx512"), run("avx2")
      for _, name in ipairs { "c3", "c3_dx", "c3_dw", "c2", "c2_dx", "c2_dw" } do
        assert(bitwise(a.out[name], b.out[name]), name .. " differs between avx512 and avx2")
      end
    end)
  end
end)
