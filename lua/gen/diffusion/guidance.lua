--- Guidance.
-- Classifier-free (Ho & Salimans, 2022): train with labels dropped to a "no class" label, sample
-- with out = (1 + w) out(x, labels) - w out(x, no class). The null label comes from the model (a
-- ClassEmbedding built with null = true gives `model.null_label`), or from opts.null_class for a
-- model that is a plain function.
-- Classifier guidance (Dhariwal & Nichol, 2021): a classifier p_phi(y | x_t, t) trained on noisy
-- images (classifier_loss) moves the score by s grad log p_phi(y | x_t) (classifier_guided).
local gen = require "gen"
local blocks = require "gen.nn.blocks"

local M = {}

--- The "no class" label of a model (or opts.null_class); nil when it has none.
function M.null_label(model, opts)
  if opts and opts.null_class then return opts.null_class end
  if type(model) == "table" then return model.null_label end
  return nil
end

--- Labels with opts.label_dropout of them replaced by the model's null label (training).
function M.drop_labels(labels, opts, model)
  if not labels or not opts or (opts.label_dropout or 0) <= 0 then return labels end
  return blocks.drop_labels(labels, opts.label_dropout, M.null_label(model, opts))
end

--- The model's output at (x, t, labels) with guidance weight opts.guidance (0: no guidance):
-- both branches run as one batch of 2B. opts.guided_channels = c: only the first c channels are
-- guided, the rest come from the conditional branch (a learned variance, as in GLIDE).
function M.guided(model, x, tvec, labels, opts)
  local w = opts.guidance or 0
  if not labels or w == 0 then return model(x, tvec, labels) end
  local null_label = M.null_label(model, opts)
  if not null_label then error("gen.diffusion: guidance needs a model with a null label (classes > 0) or opts.null_class", 3) end
  local null = gen.full({ x:size(1) }, null_label, "int64")
  local both = model(gen.cat({ x, x }), gen.cat({ tvec, tvec }), gen.cat({ labels, null }))
  local cond, uncond = both:narrow(1, 1, x:size(1)), both:narrow(1, x:size(1) + 1, x:size(1))
  local c = opts.guided_channels
  if not c or c >= cond:size(2) then return cond * (1 + w) - uncond * w end
  local mixed = cond:narrow(2, 1, c) * (1 + w) - uncond:narrow(2, 1, c) * w
  return gen.cat({ mixed, cond:narrow(2, c + 1, cond:size(2) - c) }, 2)
end

---------------------------------------------------------------- classifier guidance

-- What a network is shown at noise level sigma of a process: x_t = s(t) x^ and its time.
local function network_view(process, x, sigma)
  local t = process:t_of_sigma(sigma)
  return x * process:scale(t), process:net_time(t)
end

--- classifier_loss(classifier, process, x0, labels) -> cross-entropy, accuracy: the classifier of
-- noisy images trained on x_t at the process's training times (process:sample_t), seeing x_t and
-- the time as the diffusion network does.
function M.classifier_loss(classifier, process, x0, labels)
  local b = x0:size(1)
  local t = process:sample_t(b)
  local s, n = process:coefficients(t)
  local logits = classifier(x0 * s + gen.randn_like(x0) * n, process:net_time(t))
  local accuracy = gen.no_grad(function() return logits:argmax(2):eq(labels):float():mean():item() end)
  return gen.cross_entropy(logits, labels), accuracy
end

local ClassifierGuided = {}
ClassifierGuided.__index = ClassifierGuided

--- classifier_guided(denoiser, classifier, scale): a denoiser steered towards cond.labels,
--   D'(x^, sigma) = D(x^, sigma) + scale sigma^2 grad_x^ log p_phi(y | x_t(x^), t(sigma)):
-- D = x^ + sigma^2 grad log p(x^; sigma) (Tweedie), so the score gains scale times the
-- classifier's, as in Dhariwal & Nichol's Algorithm 1 and its DDIM form (Algorithm 2), for every
-- sampler. The gradient comes from gen's autograd (the samplers run under no_grad; it is switched
-- on for this one backward pass). Without labels, or at scale 0, D is unchanged. A clipped denoiser
-- stays clipped.
function M.classifier_guided(denoiser, classifier, scale)
  if type(denoiser) ~= "table" or not denoiser.process then
    error("gen.diffusion.classifier_guided: expected a denoiser (gen.diffusion.denoiser), got " .. type(denoiser), 2)
  end
  if type(scale) ~= "number" or scale ~= scale then
    error("gen.diffusion.classifier_guided: scale must be a number, got " .. tostring(scale), 2)
  end
  return setmetatable({ inner = denoiser, classifier = classifier, scale = scale, process = denoiser.process,
    sigma_min = denoiser.sigma_min, sigma_max = denoiser.sigma_max, clip = denoiser.clip }, ClassifierGuided)
end

--- grad_x^ log p_phi(labels | x_t(x^), t) at noise level sigma, summed over the batch's own labels.
function M.classifier_gradient(classifier, process, x, sigma, labels)
  local was = gen.set_grad_enabled(true)
  local ok, grad = pcall(function()
    local xr = x:detach():requires_grad_()
    local input, time = network_view(process, xr, sigma)
    local logits = classifier(input, gen.full({ x:size(1) }, time))
    gen.log_softmax(logits, 2):gather(2, labels:view(-1, 1)):sum():backward()
    return xr.grad
  end)
  gen.set_grad_enabled(was)
  if not ok then error(grad, 0) end
  return grad
end

function ClassifierGuided:__call(x, sigma, cond)
  local d, v = self.inner(x, sigma, cond)
  local labels = cond and cond.labels
  if not labels or self.scale == 0 then return d, v end
  d = d + M.classifier_gradient(self.classifier, self.process, x, sigma, labels) * (self.scale * sigma * sigma)
  if self.clip then d = d:clamp(-self.clip, self.clip) end
  return d, v
end

return M
