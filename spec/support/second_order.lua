-- The ops whose backward cannot be recorded (gen.autograd.grad with create_graph = true raises
-- "create_graph is not supported through <op>"), each with a function building a graph through it:
-- it returns an output and the input to differentiate it with respect to. Every other op must have
-- its second-order gradient checked (spec/double_backward_spec.lua); spec/zz_coverage_spec.lua
-- holds the suite to both.
local gen = require "gen"

local function leaf(...) return gen.randn(...):double():requires_grad_() end
local function L(t) return gen.tensor(t, "int64") end

return {
  lu_factor = function() local a = leaf(3, 3); return (gen.linalg.lu_factor(a)), a end,
  slogdet = function() local a = leaf(3, 3) + gen.eye(3):double() * 4; return select(2, gen.linalg.slogdet(a)), a end,
  inverse = function() local a = leaf(3, 3) + gen.eye(3):double() * 4; return gen.linalg.inverse(a), a end,
  solve_triangular = function()
    local a, b = leaf(3, 3) + gen.eye(3):double() * 4, leaf(3, 2)
    return gen.linalg.solve_triangular(a, b, { upper = true }), b
  end,
  scaled_dot_product_attention = function()
    local q = leaf(1, 1, 2, 2)
    return gen.scaled_dot_product_attention(q, q * 1, q * 1), q
  end,
  binary_cross_entropy = function() local x = leaf(2, 3); return gen.binary_cross_entropy(gen.sigmoid(x), gen.rand(2, 3):double()), x end,
  cross_entropy = function() local x = leaf(2, 3); return gen.cross_entropy(x, L { 1, 3 }), x end,
  nll_loss = function() local x = leaf(2, 3); return gen.nll_loss(x, L { 1, 3 }), x end,
  grad_hook = function()
    local h = gen.autograd.gradient_hook(function(g) return g end)
    local x = leaf(3)
    return h(x * 2), x
  end,
  vector_quantize = function() local z = leaf(2, 3); return (gen.vector_quantize(z, gen.randn(4, 3):double())), z end,
  vq_codebook_loss = function()
    local cb = leaf(4, 3)
    return gen.vq_codebook_loss(gen.randn(2, 3):double(), cb, L { 1, 2 }), cb
  end,
  vq_commitment_loss = function()
    local z = leaf(2, 3)
    return gen.vq_commitment_loss(z, gen.randn(4, 3):double(), L { 1, 2 }), z
  end,
}
