-- linear, conv2d and conv_transpose2d: PyTorch fixtures (spec/fixtures/make_conv_fixtures.py) in
-- float64 and float32, gradient checks, the fast paths against the general one, bad arguments.
local gen = require "gen"
local threads = require "support.threads"
local gradcheck = require("gen.testing").gradcheck
local fixtures = require "support.fixtures"
local layer_cases = require "fixtures.conv_layers"
local tensor = fixtures.tensor
-- largest difference relative to the reference's largest magnitude (at least 1)
local scaled = { measure = "scaled" }

local function call(c, ins)
  local opts = c.opts
  return gen[c.op](ins[1], ins[2], ins[3], opts)
end

local function check_case(name, c, dtype, tol)
  local ins = {}
  for i, t in ipairs(c.inputs) do ins[i] = tensor(t, dtype):requires_grad_() end
  -- a call with no bias passes nil through ins[3]
  local out = call(c, ins)
  assert.are.equal(dtype, out.dtype)
  fixtures.assert_close(out, c.out, tol, name .. " " .. dtype .. ": output", scaled)
  out:backward(fixtures.upstream(out))
  for i, g in ipairs(c.grads) do
    assert.truthy(ins[i].grad, name .. ": no gradient for input " .. i)
    fixtures.assert_close(ins[i].grad, g, tol, string.format("%s %s: gradient of input %d", name, dtype, i), scaled)
  end
end

describe("linear and convolutions match PyTorch", function()
  fixtures.each_case(it, layer_cases, check_case)
end)

describe("linear and convolution gradients", function()
  local function r(...) return gen.randn(...):double() end
  before_each(function() gen.manual_seed(7) end)

  it("linear, with and without bias, batched", function()
    assert.is_true(gradcheck(gen.linear, { r(2, 3), r(4, 3), r(4) }))
    assert.is_true(gradcheck(function(x, w) return gen.linear(x, w) end, { r(2, 2, 3), r(4, 3) }))
  end)

  it("conv2d with stride, padding, dilation and groups", function()
    assert.is_true(gradcheck(function(x, w, b) return gen.conv2d(x, w, b, { stride = 2, padding = 1 }) end,
      { r(2, 2, 5, 5), r(3, 2, 3, 3), r(3) }))
    assert.is_true(gradcheck(function(x, w, b) return gen.conv2d(x, w, b, { dilation = { 2, 1 }, padding = { 2, 0 }, groups = 2 }) end,
      { r(2, 4, 4, 4), r(2, 2, 2, 2), r(2) }))
    assert.is_true(gradcheck(function(x, w) return gen.conv2d(x, w) end, { r(2, 3, 3, 3), r(2, 3, 1, 1) }))
  end)

  it("conv_transpose2d with stride, output_padding, groups and dilation", function()
    assert.is_true(gradcheck(function(x, w, b) return gen.conv_transpose2d(x, w, b, { stride = 2, padding = 1, output_padding = 1 }) end,
      { r(2, 2, 3, 3), r(2, 3, 3, 3), r(3) }))
    assert.is_true(gradcheck(function(x, w, b) return gen.conv_transpose2d(x, w, b, { groups = 2, dilation = 2, stride = { 1, 2 } }) end,
      { r(1, 4, 3, 2), r(4, 1, 2, 2), r(2) }))
  end)
end)

describe("convolution fast paths", function()
  it("1x1 conv2d equals linear over the channels, on small and large images", function()
    for _, hw in ipairs { 2, 24 } do
      local x, w, b = gen.randn(3, 8, hw, hw), gen.randn(5, 8, 1, 1), gen.randn(5)
      x:requires_grad_(); w:requires_grad_(); b:requires_grad_()
      local y = gen.conv2d(x, w, b)
      local xl = x:detach():permute(1, 3, 4, 2):requires_grad_()
      local wl = w:detach():view(5, 8):requires_grad_()
      local bl = b:detach():requires_grad_()
      local yl = gen.linear(xl, wl, bl):permute(1, 4, 2, 3)
      assert.is_true((y - yl):abs():max():item() < 1e-4)
      local g = gen.randn(y.shape)
      y:backward(g)
      yl:backward(g)
      assert.is_true((x.grad - xl.grad:permute(1, 4, 2, 3)):abs():max():item() < 1e-4)
      assert.is_true((w.grad:view(5, 8) - wl.grad):abs():max():item() < 1e-3)
      assert.is_true((b.grad - bl.grad):abs():max():item() < 1e-3)
    end
  end)

  it("1x1 convolutions of few channels on many images (whole images per thread) agree with float64, at any thread count",
    function()
      -- 16 x 16 images of 6 and 5 channels: each image's GEMM is small, so images go to threads and
      -- the weight gradient sums parts of 8 images; 21 images leave a short last part
      for _, transposed in ipairs { false, true } do
        local f = transposed and gen.conv_transpose2d or gen.conv2d
        local x, w, b = gen.randn(21, 6, 16, 16), gen.randn(transposed and 6 or 5, transposed and 5 or 6, 1, 1), gen.randn(5)
        local g = gen.randn(21, 5, 16, 16)
        local function all(dt)
          local function leaf(t) return t:type(dt):clone():requires_grad_() end
          local xs, ws, bs = leaf(x), leaf(w), leaf(b)
          local y = f(xs, ws, bs)
          y:backward(g:type(dt))
          return { y, xs.grad, ws.grad, bs.grad }
        end
        local got, want = all("float32"), all("float64")
        for i = 1, 4 do
          local err = (got[i]:double() - want[i]):abs():max():item() / want[i]:abs():max():item()
          assert.is_true(err < 1e-5, string.format("transposed %s, result %d: %.3g", tostring(transposed), i, err))
        end
        threads.assert_same(function() return all("float32") end)
      end
    end)

  it("grouped convolutions of one image (groups spread over the threads) give the same bits at 1 and 2 threads",
    function()
      -- a modulated convolution written as a grouped one: {1, N Cin, H, W} with N groups
      local x, w, b = gen.randn(1, 6 * 8, 9, 9), gen.randn(6 * 5, 8, 3, 3), gen.randn(30)
      local g = gen.randn(1, 30, 9, 9)
      threads.assert_same(function()
        local xs, ws, bs = x:clone():requires_grad_(), w:clone():requires_grad_(), b:clone():requires_grad_()
        local y = gen.conv2d(xs, ws, bs, { padding = 1, groups = 6 })
        y:backward(g)
        local yt = gen.conv_transpose2d(y:detach(), ws:detach(), nil, { padding = 1, groups = 6 })
        return { y, xs.grad, ws.grad, bs.grad, yt }
      end)
      -- and against float64
      local x64, w64 = x:double():requires_grad_(), w:double():requires_grad_()
      local y64 = gen.conv2d(x64, w64, b:double(), { padding = 1, groups = 6 })
      local y32 = gen.conv2d(x, w, b, { padding = 1, groups = 6 })
      assert.is_true((y32:double() - y64):abs():max():item() < 1e-4 * y64:abs():max():item())
    end)

  it("1x1 conv_transpose2d equals linear with the weight transposed, on small and large images", function()
    for _, hw in ipairs { 3, 20 } do
      local x, w, b = gen.randn(2, 6, hw, hw):requires_grad_(), gen.randn(6, 4, 1, 1):requires_grad_(), gen.randn(4):requires_grad_()
      local y = gen.conv_transpose2d(x, w, b)
      local xl, wl = x:detach():permute(1, 3, 4, 2):requires_grad_(), w:detach():view(6, 4):t():contiguous():requires_grad_()
      local yl = gen.linear(xl, wl, b:detach()):permute(1, 4, 2, 3)
      assert.is_true((y - yl):abs():max():item() < 1e-4)
      local g = gen.randn(y.shape)
      y:backward(g)
      yl:backward(g)
      assert.is_true((x.grad - xl.grad:permute(1, 4, 2, 3)):abs():max():item() < 1e-4)
      assert.is_true((w.grad:view(6, 4) - wl.grad:t()):abs():max():item() < 1e-3)
      assert.is_true((b.grad - g:sum(4):sum(3):sum(1)):abs():max():item() < 1e-3)
    end
  end)

  it("float32 'same' convolutions (one shifted copy per tap) agree with the float64 path", function()
    -- the float32 fast path covers stride 1 with output width == input width; float64 takes the
    -- per-row path, so the two must agree (forward, input, weight and bias gradients); batches
    -- of 9 also cross the im2col chunk boundary
    local cases = {
      { c = 3, o = 4, h = 7, w = 6, k = { 3, 3 }, opts = { padding = 1 } },
      { c = 2, o = 3, h = 5, w = 5, k = { 5, 5 }, opts = { padding = 2 } },
      { c = 2, o = 2, h = 6, w = 4, k = { 3, 3 }, opts = { padding = { 2, 1 }, dilation = { 2, 1 } } },
      { c = 2, o = 2, h = 4, w = 3, k = { 3, 1 }, opts = { padding = { 0, 0 } } },
      { c = 1, o = 2, h = 3, w = 1, k = { 5, 1 }, opts = { padding = { 2, 0 } } },
      { c = 2, o = 2, h = 2, w = 3, k = { 5, 3 }, opts = { padding = { 3, 1 } } },
      { c = 64, o = 8, h = 32, w = 32, k = { 3, 3 }, opts = { padding = 1 }, n = 9 },
    }
    for _, cs in ipairs(cases) do
      local x = gen.randn(cs.n or 2, cs.c, cs.h, cs.w)
      local w, b = gen.randn(cs.o, cs.c, cs.k[1], cs.k[2]), gen.randn(cs.o)
      local function run(dt)
        local function leaf(t) return t:type(dt):clone():requires_grad_() end
        local xs, ws, bs = leaf(x), leaf(w), leaf(b)
        local y = gen.conv2d(xs, ws, bs, cs.opts)
        y:backward(gen.ones(y.shape):type(dt))
        return y:double(), xs.grad:double(), ws.grad:double(), bs.grad:double()
      end
      local r32, r64 = { run("float32") }, { run("float64") }
      for i = 1, 4 do
        local scale = r64[i]:abs():max():item() + 1
        local err = (r32[i] - r64[i]):abs():max():item()
        -- 2e-5: case 7's weight gradient sums 9216 float32 products through Winograd's transforms
        -- (1.1e-5 of the largest element with some draws), as the ISA spec allows
        assert.is_true(err < 2e-5 * scale, "case " .. _ .. " result " .. i .. ": " .. err .. " scale " .. scale)
      end
    end
  end)

  it("handles an empty batch", function()
    for _, cs in ipairs { { 1, 3 }, { 3, 3 }, { 3, 8 } } do -- 1x1, 3x3 by im2col, 3x3 by Winograd
      local k, c = cs[1], cs[2]
      local x, w, b = gen.randn(0, c, 16, 16):requires_grad_(), gen.randn(4 * c, c, k, k):requires_grad_(), gen.randn(4 * c):requires_grad_()
      local y = gen.conv2d(x, w, b, { padding = (k - 1) // 2 })
      assert.same({ 0, 4 * c, 16, 16 }, y.shape)
      y:sum():backward()
      assert.same({ 0, c, 16, 16 }, x.grad.shape)
      assert.are.equal(0, w.grad:abs():sum():item())
      assert.are.equal(0, b.grad:abs():sum():item())
    end
  end)

  it("conv_transpose2d is the adjoint of conv2d", function()
    -- <conv2d(x, w), y> == <x, conv_transpose2d(y, w)> with the same options
    local opts = { stride = 2, padding = 1, dilation = 2, groups = 2 }
    local x, w = gen.randn(2, 4, 9, 9):double(), gen.randn(6, 2, 3, 3):double()
    local y = gen.conv2d(x, w, nil, opts)
    local u = gen.randn(y.shape):double()
    local xt = gen.conv_transpose2d(u, w, nil, opts)
    assert.same(x.shape, xt.shape)
    assert.near((y * u):sum():item(), (x * xt):sum():item(), 1e-9 * (y * u):abs():sum():item())
  end)

  it("takes non-contiguous inputs and weights", function()
    local x = gen.randn(2, 7, 7, 3):permute(1, 4, 2, 3)
    local w = gen.randn(4, 3, 3, 3):transpose(3, 4)
    local want = gen.conv2d(x:contiguous(), w:contiguous(), nil, { padding = 1 })
    assert.is_true((gen.conv2d(x, w, nil, { padding = 1 }) - want):abs():max():item() < 1e-6)
    local lx, lw = gen.randn(3, 4):t(), gen.randn(3, 5):t()
    assert.is_true((gen.linear(lx, lw) - gen.linear(lx:contiguous(), lw:contiguous())):abs():max():item() < 1e-6)
  end)

  it("gives the same result at 1 and 2 threads", function()
    local x, w, b = gen.randn(4, 8, 12, 12), gen.randn(8, 8, 3, 3), gen.randn(8)
    local function run()
      local xx, ww, bb = x:clone():requires_grad_(), w:clone():requires_grad_(), b:clone():requires_grad_()
      local y = gen.conv2d(xx, ww, bb, { padding = 1 })
      y:backward(gen.ones_like(y))
      return y, xx.grad, ww.grad, bb.grad
    end
    local a, c = threads.at_1_and_2(run)
    for i = 1, 4 do assert.is_true((a[i] - c[i]):abs():max():item() < 1e-4) end
  end)
end)

describe("Winograd convolutions (float32): F(4x4, 3x3), F(4x4, 2x2) and 4x4 stride 2 through the polyphase image", function()
  before_each(function() gen.manual_seed(11) end)

  -- forward, input, weight and bias gradients of conv2d in dtype dt, from the same values
  local function conv_all(x, w, b, g, opts, dt, transposed)
    local function leaf(t) return t:type(dt):clone():requires_grad_() end
    local xs, ws, bs = leaf(x), leaf(w), leaf(b)
    local y = (transposed and gen.conv_transpose2d or gen.conv2d)(xs, ws, bs, opts)
    y:backward(g:type(dt))
    return { y, xs.grad, ws.grad, bs.grad }
  end
  local function worst(got, want)
    local e = 0
    for i = 1, 4 do
      local w = want[i]:double()
      e = math.max(e, (got[i]:double() - w):abs():max():item() / (w:abs():max():item() + 1e-30))
    end
    return e
  end

  -- borders (odd sizes, partial tiles), every padding 0..2, channel counts off the 6/16 panels,
  -- and batches large enough for several chunks and weight-gradient segments
  local cases = {
    { n = 2, c = 8, o = 8, h = 8, w = 8, padding = 1 },
    { n = 3, c = 16, o = 12, h = 13, w = 11, padding = 1 },
    { n = 2, c = 9, o = 10, h = 7, w = 9, padding = 0 },
    { n = 2, c = 9, o = 10, h = 7, w = 9, padding = 2 },
    { n = 2, c = 11, o = 8, h = 6, w = 10, padding = { 0, 2 } },
    { n = 5, c = 20, o = 33, h = 6, w = 5, padding = 1 },
    { n = 1, c = 8, o = 9, h = 3, w = 4, padding = 1 },
    { n = 8, c = 64, o = 64, h = 32, w = 32, padding = 1 },
    { n = 2, c = 8, o = 8, h = 8, w = 8, padding = 0, k = 2 },
    { n = 3, c = 9, o = 13, h = 7, w = 10, padding = 1, k = 2 },
    { n = 3, c = 16, o = 12, h = 14, w = 14, padding = 1, k = 4, stride = 2 },
    { n = 2, c = 2, o = 8, h = 10, w = 6, padding = 1, k = 4, stride = 2 },
    { n = 64, c = 64, o = 128, h = 14, w = 14, padding = 1, k = 4, stride = 2 },
    { n = 2, c = 8, o = 8, h = 9, w = 8, padding = 1, k = 4, stride = 2 }, -- odd height: im2col
  }

  it("agree with the float64 im2col path (output and all gradients)", function()
    for i, cs in ipairs(cases) do
      local k = cs.k or 3
      local x, w, b = gen.randn(cs.n, cs.c, cs.h, cs.w), gen.randn(cs.o, cs.c, k, k) * 0.2, gen.randn(cs.o)
      local opts = { padding = cs.padding, stride = cs.stride }
      local g = gen.randn(gen.conv2d(x, w, b, opts).shape)
      local e = worst(conv_all(x, w, b, g, opts, "float32"), conv_all(x, w, b, g, opts, "float64"))
      assert.is_true(e < 2e-5, string.format("case %d: relative error %.3g", i, e))
    end
  end)

  it("run conv_transpose2d with 3x3 kernels and stride 1, and 4x4 kernels and stride 2, too", function()
    local x, w, b = gen.randn(3, 12, 9, 10), gen.randn(12, 16, 3, 3) * 0.2, gen.randn(16)
    for _, p in ipairs { 0, 1, 2 } do
      local opts = { padding = p }
      local g = gen.randn(gen.conv_transpose2d(x, w, b, opts).shape)
      local e = worst(conv_all(x, w, b, g, opts, "float32", true), conv_all(x, w, b, g, opts, "float64", true))
      assert.is_true(e < 2e-5, string.format("padding %d: relative error %.3g", p, e))
    end
    for _, cs in ipairs { { 64, 128, 64, 7 }, { 3, 16, 9, 5 } } do -- DCGAN's generator layer, and a small one
      local x4, w4, b4 = gen.randn(cs[1], cs[2], cs[4], cs[4]), gen.randn(cs[2], cs[3], 4, 4) * 0.2, gen.randn(cs[3])
      local opts = { stride = 2, padding = 1 }
      local g = gen.randn(gen.conv_transpose2d(x4, w4, b4, opts).shape)
      local e = worst(conv_all(x4, w4, b4, g, opts, "float32", true), conv_all(x4, w4, b4, g, opts, "float64", true))
      assert.is_true(e < 2e-5, string.format("4x4 stride 2: relative error %.3g", e))
    end
  end)

  it("give bitwise the same results at 1 and 2 threads", function()
    for _, cs in ipairs { { 8, 32, 32, 3, 1, 1 }, { 64, 64, 14, 4, 2, 1 } } do
      local n, c, h, k, stride, padding = table.unpack(cs)
      local x, w, b = gen.randn(n, c, h, h), gen.randn(c, c, k, k) * 0.1, gen.randn(c)
      local opts = { padding = padding, stride = stride }
      local g = gen.randn(gen.conv2d(x, w, b, opts).shape)
      threads.assert_same(function() return conv_all(x, w, b, g, opts, "float32") end)
    end
  end)

  it("can be turned off: gen.set_winograd(false) gives the im2col results", function()
    local x, w, b = gen.randn(2, 16, 12, 12), gen.randn(16, 16, 3, 3) * 0.2, gen.randn(16)
    local g = gen.randn(2, 16, 12, 12)
    local wino = conv_all(x, w, b, g, { padding = 1 }, "float32")
    assert.is_true(gen.set_winograd(false))
    local im2col = conv_all(x, w, b, g, { padding = 1 }, "float32")
    assert.is_false(gen.set_winograd(true))
    local exact = conv_all(x, w, b, g, { padding = 1 }, "float64")
    assert.is_true(worst(im2col, exact) < 1e-6)
    assert.is_true(worst(wino, exact) < 2e-5)
    -- the two float32 paths round differently, so the switch really changed the algorithm
    assert.is_true((wino[1] - im2col[1]):abs():max():item() > 0)
    assert.has_error(function() gen.set_winograd(1) end)
  end)
end)

-- Winograd's transformed weights are kept on the weight's storage between calls (a sampler applies
-- the same weights at every step); every in-place write must invalidate them.
describe("the cache of transformed weights", function()
  before_each(function() gen.manual_seed(5) end)
  local function same(a, b) return (a - b):abs():max():item() == 0 end
  local function fresh(f, x, w, opts) return f(x, w:clone(), nil, opts) end -- a new storage: never cached
  local kinds = {
    { "3x3 conv2d", gen.conv2d, { 8, 12, 3, 3 }, { 2, 12, 9, 9 }, { padding = 1 } },
    { "2x2 conv2d", gen.conv2d, { 8, 12, 2, 2 }, { 2, 12, 9, 9 }, {} },
    { "4x4 stride-2 conv2d (polyphase)", gen.conv2d, { 10, 8, 4, 4 }, { 2, 8, 10, 10 }, { stride = 2, padding = 1 } },
    { "4x4 stride-2 conv_transpose2d (polyphase adjoint)", gen.conv_transpose2d, { 10, 8, 4, 4 }, { 2, 10, 5, 5 },
      { stride = 2, padding = 1 } },
    { "3x3 conv_transpose2d (adjoint)", gen.conv_transpose2d, { 12, 8, 3, 3 }, { 2, 12, 9, 9 }, { padding = 1 } },
  }
  for _, k in ipairs(kinds) do
    local name, f, wshape, xshape, opts = k[1], k[2], k[3], k[4], k[5]
    it(name .. ": in-place writes, optimizer steps and loads are seen at the next call", function()
      local w, x = gen.randn(table.unpack(wshape)):requires_grad_(), gen.randn(table.unpack(xshape))
      local before = gen.memory().weight_cache
      local y1 = f(x, w, nil, opts)
      assert.is_true(gen.memory().weight_cache > before) -- kept
      assert.is_true(same(f(x, w, nil, opts), y1)) -- reused: the same bits
      gen.no_grad(function() w:mul_(0.5) end)
      assert.is_true(same(f(x, w, nil, opts), fresh(f, x, w, opts)))
      gen.no_grad(function() w:narrow(1, 1, 1):fill_(0.25) end) -- a write through another view
      assert.is_true(same(f(x, w, nil, opts), fresh(f, x, w, opts)))
      local opt = gen.optim.Adam({ w }, { lr = 0.1 })
      f(x, w, nil, opts):sum():backward()
      opt:step()
      assert.is_true(same(f(x, w, nil, opts), fresh(f, x, w, opts)))
      gen.no_grad(function() w:copy_(gen.randn(table.unpack(wshape))) end) -- as load_state_dict does
      assert.is_true(same(f(x, w, nil, opts), fresh(f, x, w, opts)))
    end)
  end
  it("tells views of one storage apart", function()
    local base = gen.randn(2, 8, 12, 3, 3)
    local x = gen.randn(2, 12, 9, 9)
    local a, b = base:select(1, 1), base:select(1, 2)
    local ya, yb = gen.conv2d(x, a, nil, { padding = 1 }), gen.conv2d(x, b, nil, { padding = 1 })
    assert.is_true(same(ya, gen.conv2d(x, a:clone(), nil, { padding = 1 })))
    assert.is_true(same(yb, gen.conv2d(x, b:clone(), nil, { padding = 1 })))
    assert.is_false(same(ya, yb))
  end)
  it("is freed with its weight, and bounded by gen.set_weight_cache_limit", function()
    collectgarbage()
    local base = gen.memory().weight_cache
    local x = gen.randn(1, 16, 8, 8)
    do
      local w = gen.randn(16, 16, 3, 3)
      gen.conv2d(x, w, nil, { padding = 1 })
      local held = gen.memory().weight_cache - base
      assert.is_true(held >= 36 * 16 * 16 * 4) -- 6x6 planes of a 16x16 matrix at least
    end
    collectgarbage()
    collectgarbage()
    assert.equal(base, gen.memory().weight_cache)
    local was = gen.set_weight_cache_limit(0)
    assert.equal(gen.memory().weight_cache_limit, 0)
    local w2 = gen.randn(16, 16, 3, 3)
    local y = gen.conv2d(x, w2, nil, { padding = 1 })
    assert.equal(base, gen.memory().weight_cache) -- off: nothing kept
    assert.is_true(same(y, gen.conv2d(x, w2, nil, { padding = 1 })))
    assert.equal(0, gen.set_weight_cache_limit(was))
    assert.has_error(function() gen.set_weight_cache_limit(-1) end, "gen.set_weight_cache_limit: the limit must be >= 0 bytes, got -1")
    assert.has_error(function() gen.set_weight_cache_limit("x") end, "gen.set_weight_cache_limit: expected a number of bytes, got string")
  end)
end)

describe("linear and convolutions reject bad arguments", function()
  local x = gen.randn(2, 3, 8, 8)
  local function err(fn)
    local ok, msg = pcall(fn)
    assert.is_false(ok)
    return msg
  end

  it("names the function and the shapes", function()
    assert.has_error(function() gen.conv2d(x, gen.randn(4, 2, 3, 3)) end,
      "gen.conv2d: input {2,3,8,8} has 3 channels but weight {4,2,3,3} expects 2 x groups(1) = 2")
    assert.has_error(function() gen.conv2d(x, gen.randn(4, 3, 9, 9)) end,
      "gen.conv2d: kernel 9x9 (dilated 9x9) is larger than the padded input 8x8")
    assert.has_error(function() gen.conv2d(x, gen.randn(4, 3, 5, 5), nil, { dilation = 2 }) end,
      "gen.conv2d: kernel 5x5 (dilated 9x9) is larger than the padded input 8x8")
    assert.has_error(function() gen.conv2d(x, gen.randn(4, 1, 3, 3), nil, { groups = 2 }) end,
      "gen.conv2d: groups (2) must divide the input's 3 channels")
    assert.has_error(function() gen.conv2d(gen.randn(2, 4, 8, 8), gen.randn(3, 2, 3, 3), nil, { groups = 2 }) end,
      "gen.conv2d: groups (2) must divide the weight's 3 output channels")
    assert.has_error(function() gen.conv2d(gen.randn(3, 8, 8), gen.randn(4, 3, 3, 3)) end,
      "gen.conv2d: input must be {N, C, H, W}, got {3,8,8}")
    assert.has_error(function() gen.conv2d(x, gen.randn(4, 3, 3)) end, "gen.conv2d: weight must be 4-d, got {4,3,3}")
    assert.has_error(function() gen.conv2d(x, gen.randn(4, 3, 3, 3), nil, { stride = 0 }) end,
      "gen.conv2d: stride must be >= 1, got 0")
    assert.has_error(function() gen.conv2d(x, gen.randn(4, 3, 3, 3), nil, { padding = -1 }) end,
      "gen.conv2d: padding must be >= 0, got -1")
    assert.has_error(function() gen.conv2d(x, gen.randn(4, 3, 3, 3), gen.randn(5)) end, "gen.conv2d: bias must be {4}, got {5}")
    assert.has_error(function() gen.conv2d(x, gen.randn(4, 3, 3, 3):double()) end)
    assert.truthy(err(function() gen.conv2d(x, gen.randn(4, 3, 3, 3), nil, { stride = { 1, 2, 3 } }) end):find("gen.conv2d", 1, true))
    assert.has_error(function() gen.conv_transpose2d(x, gen.randn(4, 3, 3, 3)) end,
      "gen.conv_transpose2d: input {2,3,8,8} has 3 channels but weight {4,3,3,3} expects 4 x groups(1) = 4")
    assert.has_error(function() gen.conv_transpose2d(gen.randn(2, 4, 3, 3), gen.randn(4, 3, 3, 3), nil, { groups = 3 }) end,
      "gen.conv_transpose2d: groups (3) must divide the input's 4 channels")
    assert.has_error(function() gen.conv_transpose2d(x, gen.randn(3, 2, 3, 3), nil, { stride = 2, output_padding = 2 }) end,
      "gen.conv_transpose2d: output_padding 2 must be smaller than the stride or the dilation")
    assert.has_error(function() gen.conv_transpose2d(gen.randn(1, 3, 1, 1), gen.randn(3, 2, 3, 3), nil, { padding = 2 }) end,
      "gen.conv_transpose2d: output size -1x-1 is not positive")
    assert.has_error(function() gen.conv_transpose2d(x, gen.randn(3, 2, 3, 3), gen.randn(3)) end,
      "gen.conv_transpose2d: bias must be {2}, got {3}")
    assert.has_error(function() gen.linear(gen.randn(2, 3), gen.randn(4, 5)) end,
      "gen.linear: input {2,3} does not end in the weight's 5 input features (weight {4,5})")
    assert.has_error(function() gen.linear(gen.randn(2, 3), gen.randn(4, 3, 1)) end, "gen.linear: weight must be {out, in}, got {4,3,1}")
    assert.has_error(function() gen.linear(gen.randn(2, 3), gen.randn(4, 3), gen.randn(3)) end,
      "gen.linear: bias {3} does not match the weight's 4 outputs")
    assert.truthy(err(function() gen.linear(gen.randn(2, 3), gen.randn(4, 3):double()) end):find("gen.linear: ", 1, true))
    assert.truthy(err(function() gen.linear(gen.randn(2, 3)) end):find("gen.linear", 1, true))
  end)
end)
