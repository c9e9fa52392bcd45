--- gen.autoregressive: models that generate a sequence one token at a time (a GPT prior over VQ
-- codes, later text): sampling with temperature, top-k and top-p, with or without a key/value
-- cache (sampling.lua), and the GPT's objective (gpt.lua: loss, nll); the PixelCNN's likelihood,
-- loss and raster-order sampling of pixels or codes (pixelcnn.lua). The architectures live in
-- gen.models (gen.models.gpt, gen.models.pixelcnn).
local sampling = require "gen.autoregressive.sampling"

local M = { sampling = sampling, gpt = require "gen.autoregressive.gpt", pixelcnn = require "gen.autoregressive.pixelcnn" }
for _, name in ipairs { "filter_logits", "sample_logits", "sample" } do M[name] = sampling[name] end

return M
