-- Vision Transformer pieces: patchify/unpatchify, position embeddings, the transformer block
-- against PyTorch (spec/fixtures/make_vit_fixtures.py, float64), the ViT encoder.
local gen = require "gen"
local blocks = require "gen.nn.blocks"
local vit = require "gen.models.vit"

local function max_abs_diff(a, b) return (a:double() - b:double()):abs():max():item() end

local fixture_path = "spec/fixtures/vit.safetensors"
local fx = io.open(fixture_path, "rb") and gen.load(fixture_path)

describe("patchify / unpatchify", function()
  it("round-trips exactly for every patch size dividing the image", function()
    for _, c in ipairs { { 1, 28, 4 }, { 1, 28, 7 }, { 3, 32, 4 }, { 2, 8, 8 }, { 1, 6, 1 } } do
      local ch, r, p = table.unpack(c)
      local x = gen.randn(3, ch, r, r)
      local t = blocks.patchify(x, p)
      assert.same({ 3, (r // p) ^ 2 // 1, p * p * ch }, t.shape)
      assert.equal(0, max_abs_diff(blocks.unpatchify(t, p, { ch, r, r }), x))
    end
  end)

  it("puts each patch's pixels in one token, row-major patches, (row, column, channel) inside", function()
    local x = gen.arange(0, 2 * 16):float():view(1, 2, 4, 4) -- channel 1: 0..15, channel 2: 16..31
    local t = blocks.patchify(x, 2) -- {1, 4, 8}
    -- second patch (top right): rows 1-2, columns 3-4
    assert.same({ 2, 18, 3, 19, 6, 22, 7, 23 }, t[1][2]:totable())
  end)

  it("rejects patch sizes that do not divide the image, naming the function", function()
    assert.has_error(function() blocks.patchify(gen.zeros(1, 1, 28, 28), 5) end,
      "gen.nn.blocks.patchify: patch size 5 does not divide the image 28x28")
    local ok, err = pcall(blocks.unpatchify, gen.zeros(1, 49, 15), 4, { 1, 28, 28 })
    assert.is_false(ok)
    assert.truthy(err:find("gen.nn.blocks.unpatchify: expected tokens {B, 49, 16}", 1, true), err)
  end)

  if fx then
    it("matches MAE's patchify (PyTorch einsum)", function()
      assert.equal(0, max_abs_diff(blocks.patchify(fx["patchify/in"], 4), fx["patchify/out"]))
    end)
  end
end)

describe("position embeddings", function()
  it("sincos_2d: the column in the first half, the row in the second, sin then cos", function()
    local t = blocks.sincos_2d(8, 3, 4) -- q = 2 frequencies: 1 and 10000^(-1/2)
    assert.same({ 12, 8 }, t.shape)
    local row = t[1 * 4 + 2 + 1]:totable() -- row 1, column 2 (from 0)
    local w = { 1, 0.01 }
    for i = 1, 2 do
      assert.near(math.sin(2 * w[i]), row[i], 1e-6)
      assert.near(math.cos(2 * w[i]), row[2 + i], 1e-6)
      assert.near(math.sin(1 * w[i]), row[4 + i], 1e-6)
      assert.near(math.cos(1 * w[i]), row[6 + i], 1e-6)
    end
    assert.has_error(function() blocks.sincos_2d(6, 2) end, "gen.nn.blocks.sincos_2d: dim must be divisible by 4, got 6")
  end)

  if fx then
    it("matches MAE's get_2d_sincos_pos_embed", function()
      assert.is_true(max_abs_diff(blocks.sincos_2d(16, 7), fx["sincos/out"]) < 1e-6)
    end)
  end

  it("PositionEmbedding: sin-cos is a buffer with a zero [CLS] row, learned is a parameter", function()
    local fixed = blocks.PositionEmbedding(8, 2, { extra = 1 })
    assert.equal(0, #fixed:parameters())
    assert.same({ 5, 8 }, fixed:state_dict().pos.shape)
    local x = gen.zeros(2, 5, 8)
    local y = fixed(x)
    assert.equal(0, y[1][1]:abs():sum():item())
    assert.equal(0, max_abs_diff(y[2]:narrow(1, 2, 4), blocks.sincos_2d(8, 2)))
    -- rows from the second on: the patch tokens alone
    assert.equal(0, max_abs_diff(fixed(gen.zeros(1, 4, 8), 2)[1], blocks.sincos_2d(8, 2)))
    local learned = blocks.PositionEmbedding(8, { 2, 3 }, { kind = "learned" })
    assert.equal(1, #learned:parameters())
    assert.same({ 6, 8 }, learned.pos.shape)
    assert.has_error(function() fixed(gen.zeros(1, 6, 8)) end)
    assert.has_error(function() blocks.PositionEmbedding(8, 2, { kind = "rope" }) end)
  end)
end)

describe("TransformerBlock", function()
  if fx then
    it("matches PyTorch's pre-norm block: output, input and weight gradients (float64)", function()
      local blk = blocks.TransformerBlock(8, 2):double()
      local sd = {}
      for name in pairs(blk:state_dict()) do sd[name] = fx["block/" .. name] end
      blk:load_state_dict(sd)
      local x = fx["block/in"]:clone():requires_grad_()
      local out = blk(x)
      assert.is_true(max_abs_diff(out, fx["block/out"]) < 1e-10)
      local total = (out * fx["block/gout"]):sum()
      total:backward()
      assert.is_true(max_abs_diff(x.grad, fx["block/grad_in"]) < 1e-10)
      local checked = 0
      for name, p in blk:named_parameters() do
        assert.is_true(max_abs_diff(p.grad, fx["block/grad/" .. name]) < 1e-10, name)
        checked = checked + 1
      end
      assert.equal(12, checked)
    end)
  else
    pending("PyTorch fixture spec/fixtures/vit.safetensors missing: run /usr/bin/python3 spec/fixtures/make_vit_fixtures.py")
  end

  it("passes a finite-difference gradient check in float64", function()
    gen.manual_seed(3)
    local blk = blocks.TransformerBlock(4, 2, { mlp_ratio = 2 }):double()
    gen.testing.gradcheck(function(x) return blk(x) end, { gen.randn(2, 3, 4, "float64") })
  end)
end)

describe("ViT", function()
  it("encodes images to tokens, with or without [CLS], and pools features", function()
    gen.manual_seed(0)
    local m = vit.ViT { dim = 16, depth = 2, heads = 2, patch = 7 }
    local x = gen.rand(3, 1, 28, 28)
    assert.same({ 3, 17, 16 }, m(x).shape)
    assert.same({ 3, 16 }, m:features(x).shape)
    local no_cls = vit.ViT { dim = 16, depth = 1, heads = 2, cls = false, pos = "learned", channels = 3, resolution = 32 }
    assert.same({ 2, 64, 16 }, no_cls(gen.rand(2, 3, 32, 32)).shape)
    assert.equal("mean", no_cls.pool)
    assert.same({ 2, 16 }, no_cls:features(gen.rand(2, 3, 32, 32)).shape)
  end)

  it("encodes a subset of embedded tokens (what masked models do)", function()
    local m = vit.ViT { dim = 8, depth = 1, heads = 2 }
    local t = m:embed(gen.rand(2, 1, 28, 28))
    assert.same({ 2, 49, 8 }, t.shape)
    assert.same({ 2, 13, 8 }, m:encode(t:narrow(2, 1, 12)).shape)
  end)

  it("rejects bad options and inputs with named errors", function()
    assert.has_error(function() vit.ViT { patch = 5 } end, "ViT: patch size 5 does not divide the resolution 28")
    assert.has_error(function() vit.ViT { dim = 10, heads = 3 } end, "ViT: 3 heads do not divide dim 10")
    local m = vit.ViT { dim = 8, depth = 1, heads = 2 }
    assert.has_error(function() m(gen.rand(2, 3, 28, 28)) end, "ViT: expected images {B, 1, 28, 28}, got {2,3,28,28}")
  end)
end)
