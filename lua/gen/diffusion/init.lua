--- gen.diffusion: denoising diffusion and rectified flow, in pieces that compose (Karras et al.,
-- 2022): a noise process, a parameterization that turns a network into a denoiser, a loss, and
-- samplers that take a denoiser and a list of noise levels.
--   gen.diffusion.processes         noise processes: sigma(t) and s(t) (VP, VE, EDM, rectified flow)
--   gen.diffusion.schedules         DDPM's beta schedules (linear, cosine); sampler step schedules
--                                   (uniform in t, Karras, uniform in log-SNR)
--   gen.diffusion.parameterization  what the network predicts (eps, x0, v, score, velocity, edm),
--                                   conversions, the denoiser D(x, sigma, cond)
--   gen.diffusion.losses            training objectives with weightings (simple, SNR, min-SNR, EDM)
--   gen.diffusion.samplers          DDPM, DDIM, Euler, Heun, Euler ancestral, DPM-Solver++(2M), the
--                                   reverse SDE (Euler-Maruyama, predictor-corrector), and
--                                   sample(denoiser, shape, opts); inpainting and img2img
--   gen.diffusion.guidance          classifier-free guidance and label dropout
--   gen.diffusion.likelihood        log-likelihood by the probability-flow ODE (Hutchinson traces)
--   gen.diffusion.vlb               improved DDPM: learned variances, the hybrid loss, the
--                                   variational bound in bits/dim
-- Every function of the pieces is also here, gen.diffusion.NAME.
local M = {}
for _, piece in ipairs { "schedules", "processes", "parameterization", "losses", "samplers", "guidance", "likelihood", "vlb" } do
  local mod = require("gen.diffusion." .. piece)
  M[piece] = mod
  for name, v in pairs(mod) do
    if type(v) == "function" then
      assert(M[name] == nil, "gen.diffusion: " .. name .. " defined twice")
      M[name] = v
    end
  end
end

-- Old names (before the pieces were split out; "flow" now means normalizing flows).
M.flow_loss = M.rectified_flow_loss
M.flow_sample = M.rectified_flow_sample

return M
