--- gen.autoencoder.mae: the masked-autoencoder objective (He et al., 2022).
--   random_masking(n, L [, {mask_ratio = 0.75, generator}]) -> {ids_keep {n, K}, ids_restore
--       {n, L}, mask {n, L}, keep = K, ids_shuffle {n, L}}: per sample, the patches ordered by the
--       argsort (gen.argsort, stable) of uniform noise; the first K = floor(L (1 - mask_ratio)) are kept (visible), the rest
--       masked. ids_restore is the inverse permutation (the argsort of the argsort), so
--       gathering the shuffled tokens by it restores the patch order. mask is 1 on masked
--       patches, 0 on visible ones, in the original order. Indices are 1-based int64.
--   masked_patch_loss(pred, target, mask [, {norm_pix = false}]): the mean over masked
--       patches of the per-patch mean squared error; with norm_pix the target patches are
--       first normalized by their own mean and variance (var + 1e-6, unbiased as in MAE).
--   loss(model, x [, {mask_ratio, norm_pix, generator}]) -> loss, pred, masking: draws the
--       masking, runs the model (gen.models.mae) and scores the masked patches.
local gen = require "gen"
local blocks = require "gen.nn.blocks"

local M = {}

function M.random_masking(n, L, opts)
  opts = opts or {}
  local ratio = opts.mask_ratio or 0.75
  if math.type(n) ~= "integer" or math.type(L) ~= "integer" or n < 1 or L < 1 then
    error(string.format("gen.autoencoder.random_masking: n and L must be positive integers, got %s and %s", tostring(n),
      tostring(L)), 2)
  end
  local keep = math.floor(L * (1 - ratio) + 1e-9)
  if type(ratio) ~= "number" or ratio < 0 or ratio >= 1 or keep < 1 then
    error(string.format("gen.autoencoder.random_masking: mask_ratio %s leaves no visible patch of %d (need 0 <= ratio < 1)",
      tostring(ratio), L), 2)
  end
  -- a stable argsort (ties keep their order), so the masks are a function of the noise alone
  local ids_shuffle = gen.argsort(gen.rand({ n, L }, { generator = opts.generator }), 2)
  local ids_restore = gen.argsort(ids_shuffle, 2)
  local shuffled_mask = gen.cat({ gen.zeros(n, keep), gen.ones(n, L - keep) }, 2)
  return { ids_keep = ids_shuffle:narrow(2, 1, keep):contiguous(), ids_restore = ids_restore,
    mask = shuffled_mask:gather(2, ids_restore), keep = keep, ids_shuffle = ids_shuffle }
end

--- Per-patch normalized targets: (t - mean) / sqrt(var + 1e-6) over each patch's pixels.
function M.normalize_patches(target)
  local mean = target:mean(3, true)
  local var = target:var(3, true)
  return (target - mean) / (var + 1e-6):sqrt()
end

function M.masked_patch_loss(pred, target, mask, opts)
  if pred:dim() ~= 3 or table.concat(pred.shape, ",") ~= table.concat(target.shape, ",")
    or mask:dim() ~= 2 or mask:size(1) ~= pred:size(1) or mask:size(2) ~= pred:size(2) then
    error(string.format("gen.autoencoder.masked_patch_loss: pred {%s}, target {%s} and mask {%s} do not match ({B, L, D} and {B, L})",
      table.concat(pred.shape, ","), table.concat(target.shape, ","), table.concat(mask.shape, ",")), 2)
  end
  if opts and opts.norm_pix then target = M.normalize_patches(target) end
  local per_patch = ((pred - target) ^ 2):mean(3) -- {B, L}
  return (per_patch * mask):sum() / mask:sum()
end

function M.loss(model, x, opts)
  opts = opts or {}
  local masking = M.random_masking(x:size(1), model.num_patches, opts)
  local pred = model(x, masking)
  local target = blocks.patchify(x, model.patch)
  return M.masked_patch_loss(pred, target, masking.mask, opts), pred, masking
end

--- Pixels {B, L, p p C} from predictions: as they are, or with norm_pix un-normalized by the true
-- patches' own mean and standard deviation (as MAE's figures do).
function M.to_pixels(pred, target, opts)
  if not (opts and opts.norm_pix) then return pred end
  local mean, var = target:mean(3, true), target:var(3, true)
  return pred * (var + 1e-6):sqrt() + mean
end

--- test_mse(model, images [, {mask_ratio, norm_pix, generator, batch = 500}]) -> the per-pixel
-- mean squared error over the masked patches of a dataset's uint8 images (scaled to [0, 1]), in
-- pixel space, and its PSNR in dB. Masks come from the generator (pass one for a fixed test set).
function M.test_mse(model, images, opts)
  opts = opts or {}
  local total, count, n, bs = 0, 0, images:size(1), opts.batch or 500
  gen.no_grad(function()
    for i = 1, n, bs do
      local x = images:narrow(1, i, math.min(bs, n - i + 1)):float() / 255
      if x:dim() == 3 then x = x:unsqueeze(2) end
      local masking = M.random_masking(x:size(1), model.num_patches, opts)
      local target = blocks.patchify(x, model.patch)
      local pred = M.to_pixels(model(x, masking), target, opts)
      local err = ((pred - target) ^ 2):sum(3) * masking.mask
      total = total + err:sum():item()
      count = count + masking.mask:sum():item() * target:size(3)
    end
  end)
  local mse = total / count
  return mse, 10 * math.log(1 / mse, 10)
end

return M
