-- gen.autograd.grad and double backward: the API, second-order gradient checks of every op that
-- supports create_graph (float64 finite differences of the first-order gradient), the error of
-- those that do not, and that the recorded graphs are freed.
local gen = require "gen"
local ggc = gen.testing.gradgradcheck
local unsupported = require "support.second_order"

local function r(...) return gen.randn(...):double() end
local function close(a, b, tol)
  assert.is_true((a - b):abs():max():item() < (tol or 1e-9), "max difference " .. (a - b):abs():max():item())
end

describe("gen.autograd.grad", function()
  it("returns gradients without touching .grad, for a tensor or lists", function()
    local x, w = r(3):requires_grad_(), r(3):requires_grad_()
    local y = (x * x * w):sum()
    local g = gen.autograd.grad(y, x, { retain_graph = true })
    close(g[1], x * w * 2)
    assert.is_nil(x.grad)
    assert.is_nil(w.grad)
    local gx, gw, gx2 = table.unpack(gen.autograd.grad({ y }, { x, w, x }, { retain_graph = true }))
    close(gx, x * w * 2)
    close(gw, x * x)
    close(gx2, gx)
    local v = r(3)
    close(gen.autograd.grad(x, x, { grad_outputs = v })[1], v) -- an output that is the input itself
  end)

  it("takes grad_outputs, several outputs, and non-leaf inputs", function()
    local x = r(2, 3):requires_grad_()
    local h = x * 3
    local y1, y2 = h * h, h:sum()
    local v = r(2, 3)
    local gh = gen.autograd.grad({ y1, y2 }, { h }, { grad_outputs = { v } })[1]
    close(gh, h * v * 2 + 1)
    local ok, err = pcall(gen.autograd.grad, y1, x)
    assert.is_false(ok)
    assert.truthy(err:find("gen.autograd.grad: output 1 has shape {2,3}: it needs grad_outputs", 1, true))
  end)

  it("frees the graph unless retain_graph (which defaults to create_graph)", function()
    local x = r(3):requires_grad_()
    local y = (x:exp()):sum()
    gen.autograd.grad(y, x)
    local ok, err = pcall(gen.autograd.grad, y, x)
    assert.is_false(ok)
    assert.truthy(err:find("backward through the graph a second time", 1, true))
    local y2 = (x:exp()):sum()
    gen.autograd.grad(y2, x, { create_graph = true })
    close(gen.autograd.grad(y2, x)[1], x:exp()) -- the graph was retained
  end)

  it("raises for an unused input naming its index, or gives nil with allow_unused", function()
    local x, z = r(2):requires_grad_(), r(2):requires_grad_()
    local y = (x * 2):sum()
    local ok, err = pcall(gen.autograd.grad, y, { x, z }, { retain_graph = true })
    assert.is_false(ok)
    assert.truthy(err:find("gen.autograd.grad: input 2 is not used by the graph of the outputs", 1, true))
    local g = gen.autograd.grad(y, { x, z }, { allow_unused = true })
    close(g[1], gen.full({ 2 }, 2, "float64"))
    assert.is_nil(g[2])
  end)

  it("refuses bad arguments with clear errors", function()
    local x = r(2):requires_grad_()
    local y = (x * x):sum()
    local function err_of(...)
      local ok, e = pcall(gen.autograd.grad, ...)
      assert.is_false(ok)
      return e
    end
    assert.truthy(err_of(y, r(2)):find("gen.autograd.grad: input 1 does not require grad", 1, true))
    assert.truthy(err_of(r(1), x):find("gen.autograd.grad: output 1 does not require grad", 1, true))
    assert.truthy(err_of(y, { x, 3 }):find("gen.autograd.grad: inputs[2] must be a tensor", 1, true))
    assert.truthy(err_of(y, x, { grad_outputs = { r(3) } }):find("grad_outputs[1] has shape {3} but output 1 has shape {}", 1, true))
    assert.truthy(err_of(y, x, 5):find("expected an options table", 1, true))
    assert.truthy(err_of({}, x):find("needs at least one output", 1, true))
  end)

  it("differentiates a gradient again: d/dx of (d/dx x^3) and into parameters", function()
    local x = gen.tensor({ 1, 2, 3 }, "float64"):requires_grad_()
    local w = gen.tensor({ 0.5, -1, 2 }, "float64"):requires_grad_()
    local g = gen.autograd.grad((x * x * x * w):sum(), x, { create_graph = true })[1] -- 3 x^2 w
    assert.is_true(g.requires_grad)
    ;(g * g):sum():backward() -- d/dx (9 x^4 w^2) = 36 x^3 w^2, d/dw = 18 x^4 w
    close(x.grad, x:detach() ^ 3 * w:detach() ^ 2 * 36)
    close(w.grad, x:detach() ^ 4 * w:detach() * 18)
    local h = gen.autograd.grad(gen.autograd.grad((x:sin()):sum(), x, { create_graph = true })[1]:sum(), x)[1]
    close(h, -x:detach():sin())
  end)

  it("gives the same first-order gradients as backward()", function()
    gen.manual_seed(3)
    local m = gen.nn.Sequential(gen.nn.Conv2d(2, 4, 3, { padding = 1 }), gen.nn.LeakyReLU(0.2), gen.nn.Flatten(),
      gen.nn.Linear(4 * 5 * 5, 1))
    local x = gen.randn(3, 2, 5, 5):requires_grad_()
    local params = m:parameters()
    local out = m(x):sum()
    local gs = gen.autograd.grad(out, { x, table.unpack(params) }, { retain_graph = true })
    out:backward()
    assert.equal(0, (gs[1] - x.grad):abs():max():item())
    for i, p in ipairs(params) do assert.equal(0, (gs[i + 1] - p.grad):abs():max():item()) end
  end)
end)

describe("second-order gradient checks", function()
  local x23, y23 = r(2, 3), r(2, 3)
  local pos = gen.rand(2, 3):double() + 0.5
  it("arithmetic and broadcasting", function()
    assert.is_true(ggc(function(a, b) return a * b + a - b end, { x23, r(3) }))
    assert.is_true(ggc(function(a, b) return a / (b * b + 1) end, { x23, y23 }))
    assert.is_true(ggc(function(a, b) return (a * a + 0.5) ^ b end, { x23, r(1, 3) }))
    assert.is_true(ggc(function(a) return -(a * a) end, { x23 }))
  end)

  it("unary math and activations", function()
    for _, f in ipairs { gen.exp, gen.tanh, gen.sigmoid, gen.sin, gen.cos, gen.silu, gen.gelu, gen.softplus, gen.elu, gen.erf,
      gen.relu, gen.abs } do
      assert.is_true(ggc(function(a) return f(a * 1.5) end, { x23 }))
    end
    assert.is_true(ggc(function(a) return gen.gelu(a, "tanh") end, { x23 }))
    assert.is_true(ggc(function(a) return gen.leaky_relu(a, 0.2) * a end, { x23 }))
    assert.is_true(ggc(function(a) return gen.softplus(a, 2, 1) end, { x23 }))
    assert.is_true(ggc(function(a) return a:clamp(-0.5, 0.5) * a end, { x23 }))
    for _, f in ipairs { gen.log, gen.sqrt, gen.rsqrt } do assert.is_true(ggc(f, { pos })) end
  end)

  it("where and masked_fill", function()
    local m = x23:gt(0)
    assert.is_true(ggc(function(a, b) return gen.where(m, a * a, b * b) end, { x23, y23 }))
    assert.is_true(ggc(function(a) return (a * a):masked_fill(m, 1) end, { x23 }))
  end)

  it("reductions", function()
    assert.is_true(ggc(function(a) return (a * a):sum(2) end, { x23 }))
    assert.is_true(ggc(function(a) return (a * a):mean() end, { x23 }))
    assert.is_true(ggc(function(a) return (a * a):mean(1, true) end, { x23 }))
    assert.is_true(ggc(function(a) return a:var(2) end, { x23 }))
    assert.is_true(ggc(function(a) return a:std() end, { x23 }))
    assert.is_true(ggc(function(a) return a:logsumexp(2) end, { x23 }))
    assert.is_true(ggc(function(a) return gen.softmax(a, 2) end, { x23 }))
    assert.is_true(ggc(function(a) return gen.log_softmax(a, 1) end, { x23 }))
  end)

  it("max, min, sort, top-k, cumsum", function()
    local a = r(3, 4)
    assert.is_true(ggc(function(t) return (t * t):max(2) end, { a }))
    assert.is_true(ggc(function(t) return (t * t):max(1, true) end, { a }))
    assert.is_true(ggc(function(t) return (t * t):min() end, { a }))
    assert.is_true(ggc(function(t) return ((t * t):sort(2)) end, { a }))
    assert.is_true(ggc(function(t) return ((t * t):topk(2, 1)) end, { a }))
    assert.is_true(ggc(function(t) return (t * t):cumsum(2) end, { a }))
  end)

  it("index_select, gather, scatter_add, embedding", function()
    local L = function(t) return gen.tensor(t, "int64") end
    local a = r(3, 4)
    assert.is_true(ggc(function(t) return (t * t):index_select(1, L { 3, 1, 3 }) end, { a }))
    assert.is_true(ggc(function(t) return (t * t):index_select(2, L { 4, 1 }) end, { a }))
    assert.is_true(ggc(function(t) return (t * t):gather(2, L { { 1, 1 }, { 4, 2 }, { 3, 3 } }) end, { a }))
    assert.is_true(ggc(function(t, s) return (t * t):scatter_add(1, L { { 1, 2, 1, 3 } }, s * s) end, { a, r(1, 4) }))
    assert.is_true(ggc(function(w) return gen.embedding(L { { 1, 3 }, { 3, 3 } }, w * w) end, { a }))
  end)

  it("views, copies and cat", function()
    local sq = function(a) return a * a end
    assert.is_true(ggc(function(a) return sq(a):view(3, 2) end, { x23 }))
    assert.is_true(ggc(function(a) return sq(a):t():reshape(6) end, { x23 }))
    assert.is_true(ggc(function(a) return sq(a):narrow(2, 2, 2) end, { x23 }))
    assert.is_true(ggc(function(a) return sq(a):select(1, 2) end, { x23 }))
    assert.is_true(ggc(function(a) return sq(a):view(2, 1, 3):expand(2, 4, 3) end, { x23 }))
    assert.is_true(ggc(function(a) return sq(a:t():contiguous()) end, { x23 }))
    assert.is_true(ggc(function(a) return sq(a:float()) end, { x23 }, { atol = 1e-3, rtol = 1e-2, eps = 1e-3 }))
    assert.is_true(ggc(function(a, b) return gen.cat({ sq(a), b }, 1) end, { x23, y23 }))
  end)

  it("matmul reads broadcast (stride-0) operands, as the backward of a sum makes them", function()
    local w = gen.tensor({ 0.3, -1.2, 0.5, 2.0 }, "float64")
    local g = gen.full({ 1 }, 5, "float64"):expand(5):reshape(5, 1)
    close(gen.matmul(g, w:reshape(1, 4)), gen.full({ 5, 4 }, 5, "float64") * w)
    close(gen.matmul(w:reshape(1, 4):expand(3, 4), gen.eye(4):double()), w:reshape(1, 4):expand(3, 4):contiguous())
  end)

  it("matmul and linear", function()
    assert.is_true(ggc(function(a, b) return gen.matmul(a * a, b) end, { r(2, 2, 3), r(3, 4) }))
    assert.is_true(ggc(function(a, b) return gen.matmul(a, b * b) end, { r(3), r(2, 3, 2) }))
    assert.is_true(ggc(function(a, w, b) return gen.tanh(gen.linear(a, w, b)) end, { r(2, 2, 3), r(4, 3), r(4) }))
  end)

  it("conv2d and conv_transpose2d (strides, padding, dilation, groups)", function()
    assert.is_true(ggc(function(a, w, b) return gen.tanh(gen.conv2d(a, w, b, { stride = 2, padding = 1 })) end,
      { r(2, 2, 5, 5), r(3, 2, 3, 3), r(3) }))
    assert.is_true(ggc(function(a, w) return gen.conv2d(a * a, w, nil, { padding = { 1, 0 }, dilation = 2, groups = 2 }) end,
      { r(1, 4, 5, 6), r(2, 2, 2, 2) }))
    assert.is_true(ggc(function(a, w, b) return gen.tanh(gen.conv_transpose2d(a, w, b, { stride = 2, padding = 1 })) end,
      { r(2, 2, 3, 3), r(2, 3, 4, 4), r(3) }))
    assert.is_true(ggc(function(a, w) return gen.conv_transpose2d(a * a, w, nil, { stride = 2, output_padding = 1, groups = 2 }) end,
      { r(1, 2, 2, 3), r(2, 1, 3, 3) }))
  end)

  it("conv2d on the Winograd and polyphase paths (float32 forward)", function()
    -- a float32 layer large enough for the fast kernels: its create_graph gradient (recorded as
    -- convolutions) against the float64 im2col reference
    gen.manual_seed(7)
    for _, cfg in ipairs { { k = 3, s = 1, p = 1 }, { k = 4, s = 2, p = 1 } } do
      local x, w = gen.randn(2, 8, 8, 8), gen.randn(8, 8, cfg.k, cfg.k) * 0.1
      local function d2(xx, ww)
        xx, ww = xx:clone():requires_grad_(), ww:clone():requires_grad_()
        local y = gen.conv2d(xx, ww, nil, { stride = cfg.s, padding = cfg.p })
        local gx = gen.autograd.grad((y * y):sum(), xx, { create_graph = true })[1]
        local gw = gen.autograd.grad((gx * gx):sum(), ww)[1]
        return gx:detach(), gw
      end
      local gx32, gw32 = d2(x, w)
      local gx64, gw64 = d2(x:double(), w:double())
      close(gx32:double(), gx64, 1e-2 * gx64:abs():max():item())
      close(gw32:double(), gw64, 1e-2 * gw64:abs():max():item())
    end
  end)

  it("a convolution's saved copy of a non-contiguous leaf keeps the leaf's identity and forward values", function()
    local x = r(2, 2, 5, 5):requires_grad_()
    local function run(w)
      local y = gen.conv2d(x, w, nil, { padding = 1 })
      local gx = gen.autograd.grad((y * y):sum(), x, { create_graph = true })[1]
      return gx, gen.autograd.grad((gx * gx):sum(), w)[1]
    end
    local base = r(3, 2, 3, 3)
    local wc = base:clone():requires_grad_()
    local wn = base:permute(1, 2, 4, 3):contiguous():permute(1, 2, 4, 3):requires_grad_() -- same values, strided
    assert.is_false(wn:is_contiguous())
    local gx1, gw1 = run(wc)
    local gx2, gw2 = run(wn)
    close(gx1, gx2)
    close(gw1, gw2)
    -- a leaf stepped in place after the forward: the recorded gradient still uses the forward's values
    local y = gen.conv2d(x, wn, nil, { padding = 1 })
    gen.no_grad(function() wn:add_(1) end)
    local gx3 = gen.autograd.grad((y * y):sum(), x, { create_graph = true })[1]
    close(gx3, gx1)
  end)

  it("pooling, upsampling and padding", function()
    local x = r(1, 2, 4, 4)
    assert.is_true(ggc(function(a) return gen.avg_pool2d(a * a, 2) end, { x }))
    assert.is_true(ggc(function(a) return gen.avg_pool2d(a * a, 3, { stride = 1, padding = 1 }) end, { x }))
    assert.is_true(ggc(function(a) return gen.max_pool2d(a * a, 2) end, { x }))
    assert.is_true(ggc(function(a) return gen.upsample(a * a, { scale = 2 }) end, { r(1, 1, 2, 3) }))
    assert.is_true(ggc(function(a) return gen.upsample(a * a, { scale = 2, mode = "bilinear" }) end, { r(1, 1, 2, 3) }))
    assert.is_true(ggc(function(a) return gen.pad(a * a, { 1, 2, 0, 1 }) end, { x }))
    assert.is_true(ggc(function(a) return gen.pad(a * a, { 1, 2, 0, 1 }, "reflect") end, { x }))
  end)

  it("third order: the recorded backward of pooling and upsampling (resample_backward) differentiated again", function()
    local function grad_of(f)
      return function(a) return gen.autograd.grad((f(a * a) ^ 2):sum(), a, { create_graph = true })[1] end
    end
    local x = r(1, 2, 4, 4)
    assert.is_true(ggc(grad_of(function(a) return gen.avg_pool2d(a, 2) end), { x }))
    assert.is_true(ggc(grad_of(function(a) return gen.max_pool2d(a, 2) end), { x }))
    assert.is_true(ggc(grad_of(function(a) return gen.upsample(a, { scale = 2, mode = "bilinear" }) end), { r(1, 1, 2, 2) }))
  end)

  it("batch, group and layer norm, dropout", function()
    local x = r(3, 4, 2, 2)
    assert.is_true(ggc(function(a, w, b) return gen.batch_norm(a, nil, nil, w, b, { training = true }) end, { x, r(4), r(4) }))
    local rm, rv = r(4), gen.rand(4):double() + 0.5
    assert.is_true(ggc(function(a, w, b) return gen.batch_norm(a * a, rm, rv, w, b, { training = false }) end, { x, r(4), r(4) }))
    assert.is_true(ggc(function(a, w, b) return gen.group_norm(a, 2, w, b) end, { x, r(4), r(4) }))
    assert.is_true(ggc(function(a) return gen.group_norm(a, 4) end, { x }))
    assert.is_true(ggc(function(a, w, b) return gen.layer_norm(a, { 2, 2 }, w, b) end, { x, r(2, 2), r(2, 2) }))
    assert.is_true(ggc(function(a) return gen.dropout(a * a, 0.5, true, { generator = gen.Generator(3) }) end, { x }))
  end)

  it("losses", function()
    for _, red in ipairs { "mean", "sum", "none" } do
      local o = { reduction = red }
      assert.is_true(ggc(function(a, b) return gen.mse_loss(a * a, b, o) end, { x23, y23 }))
      assert.is_true(ggc(function(a, b) return gen.l1_loss(a * a, b, o) end, { x23, y23 }))
      assert.is_true(ggc(function(a, b) return gen.bce_with_logits(a * a, b, o) end, { x23, gen.rand(2, 3):double() }))
    end
    assert.is_true(ggc(function(a, b) return gen.kl_normal(a * a, b) end, { x23, y23 }))
  end)

  it("a small discriminator end to end (conv, leaky_relu, norm, linear)", function()
    gen.manual_seed(5)
    local w1, w2 = r(3, 1, 3, 3) * 0.5, r(1, 3 * 2 * 2) * 0.5
    assert.is_true(ggc(function(x, a, b)
      local h = gen.leaky_relu(gen.conv2d(x, a, nil, { stride = 2, padding = 1 }), 0.2)
      h = gen.group_norm(h, 1)
      return gen.linear(h:flatten(2), b)
    end, { r(2, 1, 4, 4), w1, w2 }))
  end)
end)

describe("create_graph through an unsupported op", function()
  local names = {}
  for name in pairs(unsupported) do names[#names + 1] = name end
  table.sort(names)
  for _, name in ipairs(names) do
    it("raises naming " .. name, function()
      local out, x = unsupported[name]()
      local ok, err = pcall(gen.autograd.grad, out:sum(), x, { create_graph = true })
      assert.is_false(ok)
      assert.equal("gen.autograd.grad: create_graph is not supported through " .. name, err)
      gen.autograd.grad(out:sum(), x) -- first order still works
    end)
  end

  it("checks only the paths to the inputs", function()
    local x, w = r(2, 3):requires_grad_(), r(4, 3):requires_grad_()
    -- the cross-entropy lies on the path to w only: a gradient in x does not go through it
    local e = gen.cross_entropy(w, gen.tensor({ 1, 2, 3, 1 }, "int64"), { reduction = "none" })
    local y = (gen.matmul(x, w:t()) ^ 2):sum() + e:sum()
    local gx = gen.autograd.grad(y, x, { create_graph = true })[1]
    assert.is_true(gx.requires_grad)
    local ok, err = pcall(gen.autograd.grad, y, w, { create_graph = true })
    assert.is_false(ok)
    assert.equal("gen.autograd.grad: create_graph is not supported through cross_entropy", err)
  end)
end)

describe("double backward memory", function()
  local rss_kb = require("support.proc").rss_kb

  it("frees the second-order graph: a penalty loop holds flat memory", function()
    gen.manual_seed(11)
    local D = gen.nn.Sequential(gen.nn.Conv2d(1, 8, 4, { stride = 2, padding = 1 }), gen.nn.LeakyReLU(0.2),
      gen.nn.Conv2d(8, 8, 3, { padding = 1 }), gen.nn.SiLU(), gen.nn.Flatten(), gen.nn.Linear(8 * 4 * 4, 1))
    local opt = gen.optim.SGD(D:parameters(), { lr = 1e-4 })
    local real = gen.randn(8, 1, 8, 8)
    local function step()
      local x = real:clone():requires_grad_()
      local out = D(x)
      local g = gen.autograd.grad(out:sum(), x, { create_graph = true })[1]
      local loss = out:mean() + (g * g):sum() / 8
      opt:zero_grad()
      loss:backward()
      opt:step()
    end
    for _ = 1, 30 do step() end
    collectgarbage()
    collectgarbage()
    local live0, rss0 = gen.memory().live, rss_kb()
    for _ = 1, 300 do step() end
    collectgarbage()
    collectgarbage()
    local live1, rss1 = gen.memory().live, rss_kb()
    assert.is_true(live1 - live0 <= 0, "live tensor bytes grew by " .. (live1 - live0))
    assert.is_true(rss1 - rss0 < 20 * 1024, "RSS grew by " .. (rss1 - rss0) .. " kB")
  end)
end)
