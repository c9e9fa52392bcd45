--- gen.gan: GAN objectives (the networks live in gen.models: gan for MLPs, dcgan).
--
-- With D(x) = sigmoid(logit(x)), the discriminator minimizes
--     L_D = -E[log D(x)] - E[log(1 - D(G(z)))]
-- and the generator either minimizes the original minimax objective
--     L_G = E[log(1 - D(G(z)))]          ("minimax": saturates when D rejects G's samples)
-- or maximizes log D(G(z)), i.e. minimizes the non-saturating
--     L_G = -E[log D(G(z))]              ("nonsaturating", the paper's practical variant)
-- (Goodfellow et al., 2014).
--
-- Other objectives, with D's raw output d(x) (a logit or a critic score):
--   hinge (Lim & Ye, 2017; Miyato et al., 2018):  L_D = E[relu(1 - d(x))] + E[relu(1 + d(G(z)))],
--                                                  L_G = -E[d(G(z))]
--   wgan (Arjovsky et al., 2017):                  L_D = E[d(G(z))] - E[d(x)],  L_G = -E[d(G(z))]
-- and the gradient penalties on D, which differentiate D's input gradient (gen.autograd.grad with
-- create_graph) into D's parameters:
--   R1 (Mescheder et al., 2018):          gamma/2 E_x ||grad_x d(x)||^2 on real data, applied lazily
--                                         every k steps and scaled by k (Karras et al., 2020);
--   WGAN-GP (Gulrajani et al., 2017):     lambda E[(||grad d(x_hat)|| - 1)^2] at random
--                                         interpolates x_hat = e x + (1 - e) G(z), e ~ U[0, 1].
local gen = require "gen"

local M = {}

--- Hinge loss of the discriminator: E[relu(1 - d(x))] + E[relu(1 + d(G(z)))].
function M.hinge_loss(real_out, fake_out)
  return gen.relu(1 - real_out):mean() + gen.relu(1 + fake_out):mean()
end

--- Wasserstein critic loss: E[d(G(z))] - E[d(x)] (the critic maximizes the difference).
function M.wgan_loss(real_out, fake_out) return fake_out:mean() - real_out:mean() end

-- The generator losses, by the name of the objective.
local generator_losses = {
  nonsaturating = function(f) return gen.bce_with_logits(f, gen.ones_like(f)) end,
  minimax = function(f) return -gen.bce_with_logits(f, gen.zeros_like(f)) end, -- log(1 - D) = -BCE(logits, 0)
  hinge = function(f) return -f:mean() end,
  wgan = function(f) return -f:mean() end,
}
generator_losses.bce = generator_losses.nonsaturating

--- Discriminator loss on its outputs for real and generated samples; kind is "bce" (default:
-- binary cross-entropy on logits; also for "nonsaturating" and "minimax", which differ only in the
-- generator's loss), "hinge" or "wgan".
function M.discriminator_loss(real_logits, fake_logits, kind)
  if kind == "hinge" then return M.hinge_loss(real_logits, fake_logits) end
  if kind == "wgan" then return M.wgan_loss(real_logits, fake_logits) end
  if kind ~= nil and not generator_losses[kind] then
    error("gen.gan.discriminator_loss: kind must be \"bce\", \"hinge\" or \"wgan\", got " .. tostring(kind), 2)
  end
  return gen.bce_with_logits(real_logits, gen.ones_like(real_logits)) + gen.bce_with_logits(fake_logits, gen.zeros_like(fake_logits))
end

--- Generator loss from the discriminator's outputs on generated samples; kind is
-- "nonsaturating" (default; "bce" is the same), "minimax", "hinge" or "wgan" (both -E[d(G(z))]).
function M.generator_loss(fake_logits, kind)
  local f = generator_losses[kind or "nonsaturating"]
  if not f then
    error("gen.gan.generator_loss: kind must be \"nonsaturating\", \"bce\", \"minimax\", \"hinge\" or \"wgan\", got "
      .. tostring(kind), 2)
  end
  return f(fake_logits)
end

-- sum over every dim but the first: {N, ...} -> {N}
local function per_sample_sum(t) return t:reshape(t:size(1), -1):sum(2) end

local function input_gradient(D, x, labels)
  local out = D(x, labels)
  return gen.autograd.grad(out:sum(), x, { create_graph = true })[1], out
end

--- R1 penalty: gamma/2 E_x ||grad_x d(x)||^2 on real samples (the squared norm sums over every
-- dim but the batch's, the mean is over the batch). Differentiable in D's parameters. opts:
--   every    lazy regularization: the penalty is applied once every `every` D steps, so it is
--            scaled by `every` to keep its average strength (StyleGAN2's 16); default 1
--   labels   passed to D as its second argument (class-conditional discriminators)
-- Returns the penalty (a 0-d tensor) and D's output on real (graph attached, reusable for the main
-- loss: its gradient in D's parameters is the ordinary one).
function M.r1_penalty(D, real, gamma, opts)
  opts = opts or {}
  if type(gamma) ~= "number" or gamma < 0 then error("gen.gan.r1_penalty: gamma must be a number >= 0, got " .. tostring(gamma), 2) end
  local every = opts.every or 1
  if math.type(every) ~= "integer" or every < 1 then error("gen.gan.r1_penalty: every must be an integer >= 1, got " .. tostring(every), 2) end
  local x = real:detach():requires_grad_()
  local g, out = input_gradient(D, x, opts.labels)
  return per_sample_sum(g * g):mean() * (gamma / 2 * every), out
end

--- Whether a lazily applied penalty is due at D step `step` (1-based): steps 1, 1 + every, ...
function M.lazy_due(step, every) return every <= 1 or (step - 1) % every == 0 end

--- WGAN-GP penalty: lambda E[(||grad d(x_hat)|| - 1)^2] at x_hat = e real + (1 - e) fake with one
-- e ~ U[0, 1] per sample. fake is detached here. opts: lambda (10), generator (for e), labels.
-- Returns the penalty (0-d, differentiable in D's parameters) and the interpolates.
function M.gradient_penalty(D, real, fake, opts)
  opts = opts or {}
  local lambda = opts.lambda or 10
  if type(lambda) ~= "number" then error("gen.gan.gradient_penalty: lambda must be a number, got " .. tostring(lambda), 2) end
  local rs, fs = real.shape, fake.shape
  local same = #rs == #fs
  for d = 1, #rs do same = same and rs[d] == fs[d] end
  if not same then
    error(string.format("gen.gan.gradient_penalty: real {%s} and fake {%s} differ in shape", table.concat(rs, ","),
      table.concat(fs, ",")), 2)
  end
  local eshape = { real:size(1) }
  for _ = 2, real:dim() do eshape[#eshape + 1] = 1 end
  local e = gen.rand(eshape, { dtype = real.dtype, generator = opts.generator })
  local x_hat = (real:detach() * e + fake:detach() * (1 - e)):requires_grad_()
  local g = input_gradient(D, x_hat, opts.labels)
  local norm = (per_sample_sum(g * g) + 1e-12):sqrt()
  return ((norm - 1) ^ 2):mean() * lambda, x_hat
end

--- One round of the alternating game: a discriminator update on real images x and on G(z)
-- (detached), then a generator update through D. opts:
--   labels          condition both networks (or nil)
--   loss            the objective: "nonsaturating" (default) or "bce", "minimax", "hinge", "wgan"
--   r1, r1_every    R1 weight gamma on real data (0: off), applied every r1_every D steps (1)
--   gp              WGAN-GP weight lambda (0: off)
--   critic_iters    D updates per G update (1): G is updated at steps 1, 1 + critic_iters, ...
--   step            this step's number (1-based), for r1_every and critic_iters
-- Returns {loss_d = number, loss_g = number} (no loss_g when the G update is skipped), plus r1
-- and gp (the penalties' values) when they ran.
function M.step(G, D, opt_g, opt_d, x, z, opts)
  opts = opts or {}
  local labels, kind, step = opts.labels, opts.loss, opts.step or 1
  local r1, gp, every, n_critic = opts.r1 or 0, opts.gp or 0, opts.r1_every or 1, opts.critic_iters or 1
  local generated = G(z, labels)
  opt_d:zero_grad()
  local result = {}
  local real_out, penalty
  if r1 > 0 and M.lazy_due(step, every) then
    penalty, real_out = M.r1_penalty(D, x, r1, { every = every, labels = labels })
    result.r1 = penalty:item()
  else
    real_out = D(x, labels)
  end
  local loss_d = M.discriminator_loss(real_out, D(generated:detach(), labels), kind)
  if gp > 0 then
    local p = M.gradient_penalty(D, x, generated, { lambda = gp, labels = labels })
    result.gp = p:item()
    penalty = penalty and penalty + p or p
  end
  ;(penalty and loss_d + penalty or loss_d):backward()
  opt_d:step()
  result.loss_d = loss_d:item()
  if (step - 1) % n_critic == 0 then
    opt_g:zero_grad()
    local loss_g = M.generator_loss(D(generated, labels), kind)
    loss_g:backward()
    opt_g:step()
    result.loss_g = loss_g:item()
  end
  return result
end

return M
