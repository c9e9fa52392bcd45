-- gen.nn.Module mechanics: children, parameter order and names, state dicts, modes, printing;
-- and the EMA of a model's weights.
local gen = require "gen"
local nn = gen.nn

local Affine = nn.Module:extend("Affine")
function Affine:init(n, m)
  self.weight = nn.Parameter(gen.ones(n, m))
  self.bias = nn.Parameter(gen.zeros(m))
  self:register_buffer("calls", gen.zeros(1))
end
function Affine:forward(x)
  gen.no_grad(function() self.calls:add_(1) end)
  return gen.matmul(x, self.weight) + self.bias
end
function Affine:extra_repr() return string.format("%d, %d", self.weight:size(1), self.weight:size(2)) end

local Net = nn.Module:extend("Net")
function Net:init()
  self.first = Affine(3, 4)
  self.blocks = nn.Sequential(Affine(4, 4), Affine(4, 2))
  self.scale = nn.Parameter(gen.ones(1))
  self.not_a_param = gen.ones(5) -- plain tensors are neither parameters nor buffers
end
function Net:forward(x) return self.blocks(self.first(x)) * self.scale end

describe("nn.Module", function()
  it("calls forward and collects parameters in assignment order", function()
    local net = Net()
    local y = net(gen.ones(2, 3))
    assert.same({ 2, 2 }, y.shape)
    local names = {}
    for name in net:named_parameters() do names[#names + 1] = name end
    assert.same({ "first.weight", "first.bias", "blocks.0.weight", "blocks.0.bias", "blocks.1.weight", "blocks.1.bias", "scale" }, names)
    assert.equal(7, #net:parameters())
    assert.equal(12 + 4 + 16 + 4 + 8 + 2 + 1, net:num_parameters())
    local buffers = {}
    for name in net:named_buffers() do buffers[#buffers + 1] = name end
    assert.same({ "first.calls", "blocks.0.calls", "blocks.1.calls" }, buffers)
  end)

  it("has PyTorch-style state dict keys and loads them back", function()
    local a, b = Net(), Net()
    gen.no_grad(function() a.first.weight:fill_(3) end)
    local sd = a:state_dict()
    assert.truthy(sd["blocks.1.bias"])
    assert.truthy(sd["first.calls"])
    b:load_state_dict(sd)
    assert.same(a.first.weight:totable(), b.first.weight:totable())
    assert.is_false(rawequal(a.first.weight, b.first.weight))
  end)

  it("reports missing, unexpected and mismatched keys by name", function()
    local net = Net()
    local sd = net:state_dict()
    local partial = {}
    for k, v in pairs(sd) do partial[k] = v end
    partial["scale"] = nil
    partial["extra.weight"] = gen.ones(1)
    local ok, err = pcall(net.load_state_dict, net, partial)
    assert.is_false(ok)
    assert.truthy(err:find("missing keys: {scale}", 1, true))
    assert.truthy(err:find("unexpected keys: {extra.weight}", 1, true))
    local missing, unexpected = net:load_state_dict(partial, { strict = false })
    assert.same({ "scale" }, missing)
    assert.same({ "extra.weight" }, unexpected)
    partial["scale"] = gen.ones(2)
    ok, err = pcall(net.load_state_dict, net, partial, { strict = false })
    assert.is_false(ok)
    assert.truthy(err:find("scale: shape {2} in the state dict, {1} in the model", 1, true))
  end)

  it("switches train/eval recursively and zeroes gradients", function()
    local net = Net()
    net:eval()
    assert.is_false(net.blocks:get(2).training)
    net:train()
    assert.is_true(net.blocks:get(2).training)
    net(gen.ones(1, 3)):sum():backward()
    assert.truthy(net.first.weight.grad)
    net:zero_grad()
    assert.is_nil(net.first.weight.grad)
  end)

  it("follows a replaced child", function()
    local net = Net()
    net.first = Affine(3, 4)
    net.first.weight:requires_grad_()
    assert.equal(7, #net:parameters())
    assert.truthy(rawequal(net:parameters()[1], net.first.weight))
  end)

  it("prints its tree with parameter counts", function()
    local s = tostring(Net())
    assert.truthy(s:find("Net(", 1, true))
    assert.truthy(s:find("(first): Affine(3, 4)  # 16 parameters", 1, true))
    assert.truthy(s:find("(blocks): Sequential(", 1, true))
    assert.truthy(s:find("(0): Affine(4, 4)  # 20 parameters", 1, true))
  end)

  it("converts its dtype", function()
    local net = Net():double()
    assert.equal("float64", net.first.weight.dtype)
    assert.equal("float64", net(gen.ones(1, 3, "float64")).dtype)
    assert.equal(7, #net:parameters())
  end)
end)

describe("EMA", function()
  it("averages weights and swaps them in and out", function()
    local net = Affine(1, 1)
    local ema = gen.optim.EMA(net, 0.5, { warmup = false })
    gen.no_grad(function() net.weight:fill_(3) end)
    ema:update() -- 0.5 * 1 + 0.5 * 3
    assert.equal(2, ema.shadow["weight"]:item())
    ema:swap()
    assert.equal(2, net.weight:item())
    ema:swap()
    assert.equal(3, net.weight:item())
    -- call: fn's results with the average in, the own weights back after, also after an error
    local a, b = ema:call(function(k) return net.weight:item() * k, "seen" end, 10)
    assert.equal(20, a)
    assert.equal("seen", b)
    assert.equal(3, net.weight:item())
    assert.has_error(function() ema:call(function() error("inside", 0) end) end, "inside")
    assert.equal(3, net.weight:item())
    local other = gen.optim.EMA(Affine(1, 1), 0.9)
    other:load_state_dict(ema:state_dict())
    assert.equal(2, other.shadow["weight"]:item())
    assert.equal(0.5, other.decay)
    assert.is_false(other.warmup)
  end)

  it("warms up: update n uses min(decay, (1 + n) / (10 + n))", function()
    local net = Affine(1, 1)
    local ema = gen.optim.EMA(net, 0.9)
    local w0 = ema.shadow["weight"]:item()
    gen.no_grad(function() net.weight:fill_(1) end)
    local want = w0
    for n = 1, 30 do
      local d = math.min(0.9, (1 + n) / (10 + n))
      assert.near(d, ema:current_decay(), 1e-15)
      ema:update()
      want = d * want + (1 - d) * 1
      assert.near(want, ema.shadow["weight"]:item(), 1e-6)
    end
    assert.near(32 / 41, ema:current_decay(), 1e-15)
    ema.updates = 79 -- (1 + n) / (10 + n) reaches 0.9 at n = 80
    assert.near(0.9, ema:current_decay(), 1e-15)
    ema.updates = 1000
    assert.equal(0.9, ema:current_decay())
  end)
end)
