--- Classifier-free guidance (Ho & Salimans, 2022): train with labels dropped to a "no class"
-- label, sample with out = (1 + w) out(x, labels) - w out(x, no class). The null label comes
-- from the model (a ClassEmbedding built with null = true gives `model.null_label`), or from
-- opts.null_class for a model that is a plain function.
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

return M
