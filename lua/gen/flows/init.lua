--- gen.flows: normalizing flows, trained by exact maximum likelihood through the change of
-- variables log p(x) = log p(f(x)) + log |det df/dx| (Dinh et al., 2015, 2017; Kingma & Dhariwal,
-- 2018). The layers (gen.flows.layers) each give forward(x) -> z, logdet and inverse(z) -> x; the
-- models built from them are gen.models.realnvp and gen.models.glow (multi-scale, gen.flows.MultiScale).
-- Dequantization and bits per dimension are gen.likelihood's, the one convention of every model.
local gen = require "gen"
local layers = require "gen.flows.layers"

local M = {}
for k, v in pairs(layers) do M[k] = v end
M.MultiScale = require("gen.flows.multiscale").MultiScale

--- dequantize(images [, opts]): uniform dequantization (gen.likelihood.dequantize).
function M.dequantize(images, opts) return gen.likelihood.dequantize(images, opts) end

return M
