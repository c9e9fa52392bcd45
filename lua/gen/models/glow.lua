--- Glow (Kingma & Dhariwal, 2018): L levels, each a squeeze and K steps of flow
-- [ActNorm, invertible 1x1 convolution, affine coupling], then a split whose factored-out half has
-- a Gaussian prior conditioned on the kept half; the top latent has a learned Gaussian prior.
--   Glow{channels = 1, resolution = 32, levels = 3, depth = 8, hidden = 128, lu = true,
--        coupling = "affine" | "additive", generator = g}
-- lu = true uses the LU-parameterized 1x1 convolution (log |det| in O(C)); false the plain form
-- (gen.linalg.slogdet). Methods (gen.flows.MultiScale): encode(x) -> zs, log_p; log_prob(x);
-- decode(zs) (the inverse); sample(n, {temperature, generator}).
local flows = require "gen.flows"

local M = {}

local couplings = { affine = true, additive = true }

M.Glow = flows.MultiScale:extend("Glow")
function M.Glow:init(opts)
  opts = opts or {}
  local levels, depth, hidden = opts.levels or 3, opts.depth or 8, opts.hidden or 128
  local c, r = flows.image_shape("gen.models.glow.Glow", opts, levels)
  local kind = opts.coupling or "affine"
  if not couplings[kind] then error("gen.models.glow.Glow: coupling must be \"affine\" or \"additive\", got " .. tostring(kind), 2) end
  local Conv = opts.lu == false and flows.InvConv1x1 or flows.InvConv1x1LU
  local Coupling = kind == "affine" and flows.AffineCoupling or flows.AdditiveCoupling
  flows.MultiScale.init(self, {
    shape = { c, r, r },
    levels = levels,
    prior = "learned",
    level = function(_, ch, h, w)
      ch = ch * 4
      local list = { flows.Squeeze() }
      for _ = 1, depth do
        list[#list + 1] = flows.ActNorm(ch)
        list[#list + 1] = Conv(ch, { generator = opts.generator })
        list[#list + 1] = Coupling(ch, { mask = "channel", hidden = hidden })
      end
      return list, { ch, h // 2, w // 2 }
    end,
  })
end

return M
