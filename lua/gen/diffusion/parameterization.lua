--- What a diffusion network is given and what it predicts, in one place.
--
-- Time as the network sees it (the `t` argument of model(x, t, labels), a float tensor {B}):
--   DDPM/DDIM steps t in 1..T are passed as they are        (discrete_time)
--   rectified flow's continuous t in [0, 1] is passed as 1000 t (flow_time), so both kinds of
--   model see times on the same scale and share one time embedding.
--
-- Predictions and the conversions between them, for x_t = sqrt(ab) x_0 + sqrt(1 - ab) eps (VP)
-- and x_t = (1 - t) x_0 + t eps (rectified flow):
--   eps: the noise;  x0: the clean image;  v = sqrt(ab) eps - sqrt(1 - ab) x_0 (Salimans & Ho,
--   2022);  velocity = eps - x_0 = dx_t/dt on the straight path.
local M = {}

function M.discrete_time(step) return step end
function M.flow_time(t) return t * 1000 end

--- x_0 from the noise: (x_t - sqrt(1 - ab) eps) / sqrt(ab)
function M.x0_from_eps(x, eps, ab) return (x - eps * math.sqrt(1 - ab)) / math.sqrt(ab) end
--- the noise from x_0: (x_t - sqrt(ab) x_0) / sqrt(1 - ab)
function M.eps_from_x0(x, x0, ab) return (x - x0 * math.sqrt(ab)) / math.sqrt(1 - ab) end
--- the noise from v: sqrt(ab) v + sqrt(1 - ab) x_t
function M.eps_from_v(x, v, ab) return v * math.sqrt(ab) + x * math.sqrt(1 - ab) end
--- v from the noise and x_0
function M.v_from(eps, x0, ab) return eps * math.sqrt(ab) - x0 * math.sqrt(1 - ab) end
--- x_0 on the straight path from the velocity at time t: x_t - t v
function M.x0_from_velocity(x, velocity, t) return x - velocity * t end

local to_eps = {
  eps = function(_, out) return out end,
  x0 = M.eps_from_x0,
  v = M.eps_from_v,
}
--- The noise a VP model's output stands for, given its prediction kind ("eps", "x0" or "v").
function M.eps_from(prediction, x, out, ab)
  local f = to_eps[prediction or "eps"]
  if not f then error("gen.diffusion: prediction must be \"eps\", \"x0\" or \"v\", got " .. tostring(prediction), 3) end
  return f(x, out, ab)
end

return M
