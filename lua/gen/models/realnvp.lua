--- RealNVP (Dinh, Sohl-Dickstein & Bengio, 2017): a multi-scale flow of affine couplings. Each
-- scale applies three couplings with alternating checkerboard masks, squeezes, applies three with
-- alternating channel masks and factors out half of the channels; the last scale applies four
-- checkerboard couplings. Every latent has the prior N(0, I).
--   RealNVP{channels = 1, resolution = 32, levels = 3, hidden = 64, blocks = 3}
-- Methods (gen.flows.MultiScale): encode(x) -> zs, log_p; log_prob(x); decode(zs) (the inverse);
-- sample(n, {temperature, generator}). 1x28x28 images are padded to 32 (see examples/flows).
local flows = require "gen.flows"

local M = {}

M.RealNVP = flows.MultiScale:extend("RealNVP")
function M.RealNVP:init(opts)
  opts = opts or {}
  local levels, hidden, blocks = opts.levels or 3, opts.hidden or 64, opts.blocks or 3
  local c, r = flows.image_shape("gen.models.realnvp.RealNVP", opts, levels - 1)
  local function coupling(ch, mask, parity)
    return flows.AffineCoupling(ch, { mask = mask, parity = parity, hidden = hidden })
  end
  flows.MultiScale.init(self, {
    shape = { c, r, r },
    levels = levels,
    prior = "standard",
    level = function(l, ch, h, w)
      local list = {}
      if l == levels then
        for i = 1, blocks + 1 do list[#list + 1] = coupling(ch, "checkerboard", (i - 1) % 2) end
        return list, { ch, h, w }
      end
      for i = 1, blocks do list[#list + 1] = coupling(ch, "checkerboard", (i - 1) % 2) end
      list[#list + 1] = flows.Squeeze()
      for i = 1, blocks do list[#list + 1] = coupling(ch * 4, "channel", (i - 1) % 2) end
      return list, { ch * 4, h // 2, w // 2 }
    end,
  })
end

return M
