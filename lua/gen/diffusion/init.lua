--- gen.diffusion: denoising diffusion and rectified flow, in four pieces that compose:
--   gen.diffusion.schedules         noise schedules (linear, cosine)
--   gen.diffusion.parameterization  the time the network sees, what it predicts, conversions
--   gen.diffusion.losses            training objectives (DDPM, rectified flow)
--   gen.diffusion.samplers          DDPM ancestral, DDIM, Euler for rectified flow
--   gen.diffusion.guidance          classifier-free guidance and label dropout
-- Every function of the pieces is also here, gen.diffusion.NAME.
local M = {}
for _, piece in ipairs { "schedules", "parameterization", "losses", "samplers", "guidance" } do
  local mod = require("gen.diffusion." .. piece)
  M[piece] = mod
  for name, v in pairs(mod) do
    if type(v) == "function" and name ~= "Schedule" then
      assert(M[name] == nil, "gen.diffusion: " .. name .. " defined twice")
      M[name] = v
    end
  end
end

-- Old names (before the pieces were split out; "flow" now means normalizing flows).
M.flow_loss = M.rectified_flow_loss
M.flow_sample = M.rectified_flow_sample

return M
