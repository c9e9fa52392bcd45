--- gen.gan: GAN objectives (the networks live in gen.models: gan for MLPs, dcgan).
--
-- With D(x) = sigmoid(logit(x)), the discriminator minimizes
--     L_D = -E[log D(x)] - E[log(1 - D(G(z)))]
-- and the generator either minimizes the original minimax objective
--     L_G = E[log(1 - D(G(z)))]          ("minimax": saturates when D rejects G's samples)
-- or maximizes log D(G(z)), i.e. minimizes the non-saturating
--     L_G = -E[log D(G(z))]              ("nonsaturating", the paper's practical variant)
-- (Goodfellow et al., 2014).
local gen = require "gen"

local M = {}

--- Discriminator loss from logits on real and generated samples.
function M.discriminator_loss(real_logits, fake_logits)
  return gen.bce_with_logits(real_logits, gen.ones_like(real_logits)) + gen.bce_with_logits(fake_logits, gen.zeros_like(fake_logits))
end

--- Generator loss from the discriminator's logits on generated samples; kind is "nonsaturating"
-- (default) or "minimax".
function M.generator_loss(fake_logits, kind)
  if kind == "minimax" then
    -- log(1 - D) = -BCE(logits, 0)
    return -gen.bce_with_logits(fake_logits, gen.zeros_like(fake_logits))
  elseif kind == nil or kind == "nonsaturating" then
    return gen.bce_with_logits(fake_logits, gen.ones_like(fake_logits))
  end
  error("gen.gan.generator_loss: kind must be \"nonsaturating\" or \"minimax\", got " .. tostring(kind), 2)
end

--- One round of the alternating game: a discriminator update on real images x and on G(z)
-- (detached), then a generator update through D. opts.labels (or nil) condition both networks;
-- opts.loss picks the generator loss. Returns {loss_d = number, loss_g = number}.
function M.step(G, D, opt_g, opt_d, x, z, opts)
  opts = opts or {}
  local labels = opts.labels
  local generated = G(z, labels)
  opt_d:zero_grad()
  local loss_d = M.discriminator_loss(D(x, labels), D(generated:detach(), labels))
  loss_d:backward()
  opt_d:step()
  opt_g:zero_grad()
  local loss_g = M.generator_loss(D(generated, labels), opts.loss)
  loss_g:backward()
  opt_g:step()
  return { loss_d = loss_d:item(), loss_g = loss_g:item() }
end

return M
