--- gen.nn lookup tables: Embedding (1-based indices).
local gen = require "gen"
local base = require "gen.nn.module"

local M = {}
local Module, Parameter = base.Module, base.Parameter

M.Embedding = Module:extend("Embedding")
--- Embedding(num_embeddings, embedding_dim): weight ~ N(0, 1) as in PyTorch; indices are 1-based.
function M.Embedding:init(n, dim)
  self.num_embeddings, self.embedding_dim = n, dim
  self.weight = Parameter(gen.randn(n, dim))
end
function M.Embedding:forward(idx) return gen.embedding(idx, self.weight) end
function M.Embedding:extra_repr() return string.format("%d, %d", self.num_embeddings, self.embedding_dim) end

return M
