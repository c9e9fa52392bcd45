-- The twin's trained weights in gen's Glow: bench/twin_glow.py --train writes them under gen's names
-- (DIR/gen_weights.safetensors) with 250 dequantized test images and the twin's log p of them
-- (DIR/gen_check.safetensors). This loads them into gen.models.glow, compares the two log p (the
-- same model in both frameworks up to float32 rounding), and scores the 10000 test images with
-- gen.flows.test_bits_per_dim (the number gen's examples/flows/glow.lua reports):
--   bin/gen bench/twin_glow_check.lua runs/twin_glow
local gen = require "gen"
local glow = require "gen.models.glow"
local flows = require "gen.flows"

local dir = arg[1] or error("usage: bin/gen bench/twin_glow_check.lua DIR (the --out of bench/twin_glow.py --train)")
gen.set_num_threads(1)
local model = glow.Glow { levels = 3, depth = 4, hidden = 64 }
model:load_state_dict((gen.load(dir .. "/gen_weights.safetensors")))
local check = gen.load(dir .. "/gen_check.safetensors")
local log_p = gen.no_grad(function() return model:log_prob(check.y) end)
local worst = ((log_p - check.log_p):abs() / (check.log_p:abs() + 1)):max():item()
print(string.format("log p of %d test images: gen %.4f, twin %.4f nats on average; largest relative difference %.2g",
  log_p:size(1), log_p:mean():item(), check.log_p:mean():item(), worst))
if worst > 1e-4 then error(string.format("gen and the twin disagree: relative difference %.3g > 1e-4", worst)) end
local test = gen.data.fashion_mnist { split = "test" }
local bpd = flows.test_bits_per_dim(model, test.images, { pad = 2, dims = 28 * 28, generator = gen.Generator(0) })
print(string.format("gen.flows.test_bits_per_dim of the twin's weights: %.4f (%d test images)", bpd, test.images:size(1)))
