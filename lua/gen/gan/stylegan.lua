--- gen.gan.stylegan: training a StyleGAN (gen.models.stylegan) and the figures of its papers.
--
-- step(G, D, opt_g, opt_d, x, opts): one round of the game with the non-saturating logistic loss
-- (gen.gan.discriminator_loss / generator_loss), style mixing regularization, and R1 on D with
-- lazy regularization (Karras et al., 2020, section 3.1): every `r1_every` steps the penalty
--     R1 = gamma / 2 E_x ||grad_x D(x)||^2         (Mescheder et al., 2018)
-- from gen.gan.r1_penalty is added to D's loss multiplied by r1_every, so its average weight is
-- unchanged while D pays for the double backward once in r1_every steps. R1 needs the gradient
-- of a gradient (gen.autograd.grad with create_graph): without it, r1 > 0 is an error.
--
-- Figures (images in [-1, 1] ready for gen.image.grid; write_figures saves all three as PNGs):
--   style_mixing   the top row shows latents a_1..a_k, the left column latents b_1..b_m; cell
--                  (i, j) takes the coarse styles (layers 1..crossover: 4x4 and 8x8 at the
--                  default crossover 4) from a_j and the fine ones from b_i (Karras et al., 2019,
--                  figure 3)
--   truncation     one row per psi (0.5, 0.7, 1.0 by default), the same z in each column, around
--                  the tracked mean w; the first column of each row is w_avg's own image
--   interpolation  pairs of rows: z_0 -> z_1 interpolated in Z (spherically) and mapped, then
--                  f(z_0) -> f(z_1) interpolated linearly in W
-- Every figure draws its latents and its noise from its own gen.Generator(seed), so a figure is
-- a function of the weights and the seed alone, and each row reuses the same noise maps.
local gen = require "gen"
local gan = require "gen.gan"
local models = require "gen.models"

local M = {}

--- True when this build can compute R1 (double backward and gen.gan.r1_penalty exist).
function M.r1_available()
  return gen.autograd ~= nil and gen.autograd.grad ~= nil and gan.r1_penalty ~= nil
end

--- Raises unless R1 can be used; `who` names the caller.
function M.check_r1(who)
  if not M.r1_available() then
    error(string.format("%s: R1 needs gen.autograd.grad (double backward, create_graph = true) and gen.gan.r1_penalty, "
      .. "which this build does not have", who or "gen.gan.stylegan"), 3)
  end
end

--- step(G, D, opt_g, opt_d, x, {labels, mixing = 0.9, r1 = 0, r1_every = 16, step = 1, ema})
-- -> {loss_d, loss_g, r1 (on steps that ran it, else nil: the penalty gamma/2 E||grad||^2, before
-- the scaling by r1_every)}. ema (a gen.optim.EMA of G) is updated after G's step.
function M.step(G, D, opt_g, opt_d, x, opts)
  opts = opts or {}
  local labels, gamma, every = opts.labels, opts.r1 or 0, opts.r1_every or 16
  if gamma > 0 then M.check_r1("gen.gan.stylegan.step") end
  if math.type(every) ~= "integer" or every < 1 then error("gen.gan.stylegan.step: r1_every must be a positive integer, got " .. tostring(every), 2) end
  local n = x:size(1)
  local fake = G(gen.randn(n, G.z_dim), { labels = labels, mixing = opts.mixing or 0.9 })

  opt_d:zero_grad()
  local r1, real_logits
  if gamma > 0 and (opts.step or 1) % every == 0 then
    -- the penalty comes scaled by `every`, with D's logits on x (their graph serves the loss too)
    r1, real_logits = gan.r1_penalty(D, x, gamma, { every = every, labels = labels })
  end
  local loss_d = gan.discriminator_loss(real_logits or D(x, labels), D(fake:detach(), labels))
  local total = r1 and loss_d + r1 or loss_d
  total:backward()
  opt_d:step()

  opt_g:zero_grad()
  local loss_g = gan.generator_loss(D(fake, labels))
  loss_g:backward()
  opt_g:step()
  if opts.ema then opts.ema:update() end
  return { loss_d = loss_d:item(), loss_g = loss_g:item(), r1 = r1 and r1:item() / every or nil }
end

local function blank(like) return gen.full({ 1, table.unpack(like.shape, 2) }, -1, like.dtype) end

-- G's images of ws with the noise of a fresh generator (the same maps for every call)
local function render(G, ws, seed)
  return G:synthesis(ws, { generator = gen.Generator(seed) })
end

--- style_mixing(G, {rows = 5, cols = 6, crossover = 4, psi = 1, seed = 0}) -> images, nrow.
function M.style_mixing(G, opts)
  opts = opts or {}
  local rows, cols, cut, seed = opts.rows or 5, opts.cols or 6, opts.crossover or 4, opts.seed or 0
  local g = gen.Generator(seed)
  local wa = G:truncate(G:map(gen.randn({ cols, G.z_dim }, { generator = g })), opts.psi)
  local wb = G:truncate(G:map(gen.randn({ rows, G.z_dim }, { generator = g })), opts.psi)
  local top = render(G, wa, seed + 1)
  local left = render(G, wb, seed + 1)
  local tiles = { blank(top), top }
  for i = 1, rows do
    tiles[#tiles + 1] = left:narrow(1, i, 1)
    local wbi = wb:narrow(1, i, 1):expand(cols, G.w_dim):contiguous()
    tiles[#tiles + 1] = render(G, G:mix(wa, wbi, cut), seed + 1)
  end
  return gen.cat(tiles, 1), cols + 1
end

--- truncation(G, {psis = {0.5, 0.7, 1.0}, n = 8, seed = 0}) -> images, nrow: a row per psi.
function M.truncation(G, opts)
  opts = opts or {}
  local psis, n, seed = opts.psis or { 0.5, 0.7, 1.0 }, opts.n or 8, opts.seed or 0
  local w = G:map(gen.randn({ n - 1, G.z_dim }, { generator = gen.Generator(seed) }))
  local rows = {}
  for _, psi in ipairs(psis) do
    rows[#rows + 1] = render(G, gen.cat({ G.w_avg:view(1, -1), G:truncate(w, psi) }, 1), seed + 1)
  end
  return gen.cat(rows, 1), n
end

--- interpolation(G, {pairs = 3, steps = 8, seed = 0}) -> images, nrow: for each pair a row
-- interpolated in Z, then a row interpolated in W.
function M.interpolation(G, opts)
  opts = opts or {}
  local npairs, steps, seed = opts.pairs or 3, opts.steps or 8, opts.seed or 0
  local g = gen.Generator(seed)
  local z0, z1 = gen.randn({ npairs, G.z_dim }, { generator = g }), gen.randn({ npairs, G.z_dim }, { generator = g })
  local w0, w1 = G:map(z0), G:map(z1)
  local rows = {}
  for p = 1, npairs do
    local zs, ws = {}, {}
    for s = 0, steps - 1 do
      local t = s / (steps - 1)
      zs[#zs + 1] = models.interpolate(z0:narrow(1, p, 1), z1:narrow(1, p, 1), t, "spherical")
      ws[#ws + 1] = models.interpolate(w0:narrow(1, p, 1), w1:narrow(1, p, 1), t, "linear")
    end
    rows[#rows + 1] = render(G, G:map(gen.cat(zs, 1)), seed + 1)
    rows[#rows + 1] = render(G, gen.cat(ws, 1), seed + 1)
  end
  return gen.cat(rows, 1), steps
end

--- write_figures(G, dir [, {seed, psi}]): dir/style_mixing.png, dir/truncation.png and
-- dir/interpolation.png, computed without gradients in G's current mode and weights.
function M.write_figures(G, dir, opts)
  opts = opts or {}
  gen.no_grad(function()
    for _, f in ipairs { { "style_mixing", M.style_mixing }, { "truncation", M.truncation }, { "interpolation", M.interpolation } } do
      local images, nrow = f[2](G, { seed = opts.seed, psi = opts.psi })
      gen.image.save(dir .. "/" .. f[1] .. ".png", gen.image.grid(images:clamp(-1, 1), { nrow = nrow, range = { -1, 1 } }))
    end
  end)
  return { dir .. "/style_mixing.png", dir .. "/truncation.png", dir .. "/interpolation.png" }
end

return M
