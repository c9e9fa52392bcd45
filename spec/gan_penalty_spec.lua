-- gen.gan: hinge and Wasserstein losses, and the gradient penalties (R1, WGAN-GP) built on double
-- backward, against their closed forms on a linear discriminator and against finite differences
-- through a small convolutional one.
local gen = require "gen"
local gan = require "gen.gan"

local function close(a, b, tol)
  local d = (gen.is_tensor(a) and (a - b):abs():max():item()) or math.abs(a - b)
  assert.is_true(d < (tol or 1e-9), "difference " .. d)
end

-- D(x) = w . x over the flattened sample, as a module with one parameter
local function linear_d(w)
  local D = gen.nn.Module:extend("LinearD")
  function D:init() self.w = gen.nn.Parameter(w) end
  function D:forward(x) return gen.matmul(x:reshape(x:size(1), -1), self.w) end
  return D()
end

describe("gen.gan losses", function()
  it("hinge and wgan losses and their generator halves", function()
    local real, fake = gen.tensor { 2, 0.5, -1 }, gen.tensor { -2, 0.5, 1 }
    -- relu(1 - r): 0, 0.5, 2 -> mean 5/6; relu(1 + f): 0, 1.5, 2 -> mean 7/6
    close(gan.hinge_loss(real, fake):item(), 2, 1e-6)
    close(gan.discriminator_loss(real, fake, "hinge"):item(), 2, 1e-6)
    close(gan.wgan_loss(real, fake):item(), -0.5 / 3 - 1.5 / 3, 1e-6)
    close(gan.generator_loss(fake, "hinge"):item(), 0.5 / 3, 1e-6)
    close(gan.generator_loss(fake, "wgan"):item(), 0.5 / 3, 1e-6)
    close(gan.generator_loss(fake, "bce"):item(), gan.generator_loss(fake):item())
    local ok, err = pcall(gan.discriminator_loss, real, fake, "bogus")
    assert.is_false(ok)
    assert.truthy(err:find("gen.gan.discriminator_loss: kind must be", 1, true))
    ok, err = pcall(gan.generator_loss, fake, "bogus")
    assert.is_false(ok)
    assert.truthy(err:find("gen.gan.generator_loss: kind must be", 1, true))
  end)
end)

describe("gen.gan.r1_penalty", function()
  it("on D(x) = w.x equals gamma/2 ||w||^2, and its gradient in w is gamma w", function()
    local w = gen.tensor({ 0.3, -1.2, 0.5, 2.0 }, "float64")
    local D = linear_d(w)
    local real = gen.randn(5, 1, 2, 2):double()
    local gamma = 10
    local p = gan.r1_penalty(D, real, gamma)
    close(p:item(), gamma / 2 * (w * w):sum():item())
    p:backward()
    close(D.w.grad, w * gamma)
    assert.is_nil(real.grad)
  end)

  it("scales by the lazy-regularization interval", function()
    local w = gen.tensor({ 1, 2 }, "float64")
    local D = linear_d(w)
    local p = gan.r1_penalty(D, gen.randn(3, 2):double(), 1, { every = 16 })
    close(p:item(), 16 * 0.5 * 5)
    assert.is_true(gan.lazy_due(1, 16))
    assert.is_true(gan.lazy_due(33, 16))
    assert.is_false(gan.lazy_due(32, 16))
    assert.is_true(gan.lazy_due(7, 1))
    local ok, err = pcall(gan.r1_penalty, D, gen.randn(3, 2):double(), 1, { every = 0 })
    assert.is_false(ok)
    assert.truthy(err:find("gen.gan.r1_penalty: every must be an integer >= 1", 1, true))
    ok, err = pcall(gan.r1_penalty, D, gen.randn(3, 2):double(), -1)
    assert.is_false(ok)
    assert.truthy(err:find("gen.gan.r1_penalty: gamma must be a number >= 0", 1, true))
  end)

  it("flows into a conv discriminator's parameters as finite differences say (float64)", function()
    gen.manual_seed(2)
    local params = {
      w1 = gen.randn(2, 1, 3, 3):double() * 0.7, b1 = gen.randn(2):double() * 0.1,
      w2 = gen.randn(1, 2 * 2 * 2):double() * 0.7,
    }
    local names = { "w1", "b1", "w2" }
    local function D(x)
      local h = gen.silu(gen.conv2d(x, params.w1, params.b1, { stride = 2, padding = 1 }))
      h = gen.leaky_relu(h, 0.2) * h -- a curved activation, so every second derivative matters
      return gen.linear(h:flatten(2), params.w2)
    end
    local real = gen.randn(3, 1, 4, 4):double()
    for _, k in ipairs(names) do params[k]:requires_grad_() end
    local p = gan.r1_penalty(D, real, 4)
    p:backward()
    local eps = 1e-6
    for _, k in ipairs(names) do
      local t = params[k]
      for j = 1, t:numel() do
        local orig = t:at(j)
        local function at(v)
          gen.no_grad(function() t:set_at(j, v) end)
          return gan.r1_penalty(D, real, 4):item()
        end
        local numeric = (at(orig + eps) - at(orig - eps)) / (2 * eps)
        gen.no_grad(function() t:set_at(j, orig) end)
        local analytic = t.grad:at(j)
        assert.is_true(math.abs(analytic - numeric) < 1e-6 + 1e-4 * math.abs(numeric),
          string.format("%s[%d]: analytic %.10g vs numeric %.10g", k, j, analytic, numeric))
      end
    end
  end)
end)

describe("gen.gan.gradient_penalty", function()
  it("on D(x) = w.x equals lambda (||w|| - 1)^2 with its gradient in w", function()
    local w = gen.tensor({ 0.3, -1.2, 0.5, 2.0 }, "float64")
    local D = linear_d(w)
    local real, fake = gen.randn(6, 4):double(), gen.randn(6, 4):double()
    local p, x_hat = gan.gradient_penalty(D, real, fake, { lambda = 10, generator = gen.Generator(1) })
    local n = math.sqrt((w * w):sum():item())
    close(p:item(), 10 * (n - 1) ^ 2, 1e-8)
    p:backward()
    close(D.w.grad, w * (20 * (n - 1) / n), 1e-8)
    -- the interpolates lie on the segments between the pairs
    local e = ((x_hat - fake) / (real - fake)):detach()
    assert.is_true(e:min():item() >= -1e-9 and e:max():item() <= 1 + 1e-9)
    close(e:std(2):max():item(), 0, 1e-6) -- one e per sample
  end)

  it("refuses mismatched shapes", function()
    local D = linear_d(gen.ones(4):double())
    local ok, err = pcall(gan.gradient_penalty, D, gen.randn(2, 4):double(), gen.randn(3, 4):double())
    assert.is_false(ok)
    assert.truthy(err:find("gen.gan.gradient_penalty: real {2,4} and fake {3,4} differ in shape", 1, true))
  end)
end)

describe("gen.gan.step with penalties", function()
  it("runs R1 (lazily), WGAN-GP with critic iterations, and hinge; losses stay finite", function()
    local dcgan = require "gen.models.dcgan"
    gen.manual_seed(4)
    local G, D = dcgan.Generator { z_dim = 8, width = 8 }, dcgan.Discriminator { width = 8 }
    local opt_g, opt_d = gen.optim.Adam(G, { lr = 1e-4 }), gen.optim.Adam(D, { lr = 1e-4 })
    local x = gen.rand(4, 1, 28, 28) * 2 - 1
    local function finite(v) return v == v and v ~= math.huge and v ~= -math.huge end
    local r = gan.step(G, D, opt_g, opt_d, x, gen.randn(4, 8), { r1 = 10, r1_every = 2, step = 3 })
    assert.is_true(finite(r.loss_d) and finite(r.loss_g) and finite(r.r1) and r.r1 > 0)
    r = gan.step(G, D, opt_g, opt_d, x, gen.randn(4, 8), { r1 = 10, r1_every = 2, step = 4 })
    assert.is_nil(r.r1)
    r = gan.step(G, D, opt_g, opt_d, x, gen.randn(4, 8), { loss = "wgan", gp = 10, critic_iters = 2, step = 2 })
    assert.is_true(finite(r.loss_d) and finite(r.gp))
    assert.is_nil(r.loss_g)
    r = gan.step(G, D, opt_g, opt_d, x, gen.randn(4, 8), { loss = "hinge", step = 1 })
    assert.is_true(finite(r.loss_d) and finite(r.loss_g))
  end)
end)
