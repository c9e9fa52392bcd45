--- gen.nn vector quantization: VectorQuantizer, the bottleneck of VQ-VAE (van den Oord et al., 2017).
--
--   local vq = gen.nn.VectorQuantizer(512, 64, {beta = 0.25})
--   local zq, q = vq(z_e)        -- z_e {B, D, H, W}: zq = e_k (nearest code), gradient straight through to z_e
--   loss = recon + q.codebook_loss + vq.beta * q.commitment_loss     -- (3) of the paper; q.loss is the VQ part
--
-- The codebook loss ||sg[z_e] - e||^2 moves the codes towards the encoder outputs, the commitment
-- loss ||z_e - sg[e]||^2 keeps the encoder near its codes (both means over elements; gradients in
-- C, gen.vq_codebook_loss and gen.vq_commitment_loss). With {ema = true} the codebook follows the
-- exponential moving averages of appendix A.1 instead (decay 0.99, Laplace smoothing eps 1e-5),
-- is a buffer rather than a parameter, and q.codebook_loss is only reported (the loss uses the
-- commitment term alone).
--
-- Usage: every training forward adds the batch's code counts n_k to cluster_size (N_k <- decay N_k
-- + (1 - decay) n_k; in EMA mode this is the EMA's own N_k). A code whose N_k is below `restart`
-- (default 1: used less than about once per batch lately) is dead and restarts at an encoder
-- output of the current batch drawn at random, as in Jukebox (Dhariwal et al., 2020); restart = 0
-- turns this off. q.perplexity = exp(-sum_k p_k log p_k) of the batch's code frequencies (K when
-- all codes are used equally, 1 when one code takes everything) and q.dead the number of dead
-- codes found by this step.
--
-- State-dict keys: embedding.weight {K, D} (the codebook, as PyTorch's nn.Embedding), cluster_size
-- {K}, and with ema also embed_sum {K, D} (the running sums m_k).
local gen = require "gen"
local base = require "gen.nn.module"

local M = {}
local Module, Parameter = base.Module, base.Parameter

-- The codebook's holder, so that its key is embedding.weight whether it is trained by gradients
-- (a parameter) or by the EMA (a buffer).
local Codebook = Module:extend("Codebook")
function Codebook:init(k, d, trainable)
  -- the paper's initialization, U(-1/K, 1/K)
  local w = gen.rand(k, d) * (2 / k) - 1 / k
  if trainable then self.weight = Parameter(w) else self:register_buffer("weight", w) end
end
function Codebook:extra_repr() return string.format("%d, %d", self.weight:size(1), self.weight:size(2)) end

M.VectorQuantizer = Module:extend("VectorQuantizer")

--- VectorQuantizer(K, D [, {beta = 0.25, ema = false, decay = 0.99, eps = 1e-5, restart = 1}])
function M.VectorQuantizer:init(k, d, opts)
  opts = opts or {}
  if math.type(k) ~= "integer" or k < 1 then error("VectorQuantizer: K must be a positive integer, got " .. tostring(k), 3) end
  if math.type(d) ~= "integer" or d < 1 then error("VectorQuantizer: D must be a positive integer, got " .. tostring(d), 3) end
  local decay, restart = opts.decay or 0.99, opts.restart or 1
  if type(decay) ~= "number" or decay < 0 or decay > 1 then error("VectorQuantizer: decay must be in [0, 1], got " .. tostring(decay), 3) end
  if type(restart) ~= "number" or restart < 0 then error("VectorQuantizer: restart must be a number >= 0, got " .. tostring(restart), 3) end
  self.num_codes, self.code_dim = k, d
  self.beta, self.ema, self.decay, self.eps, self.restart = opts.beta or 0.25, opts.ema == true, decay, opts.eps or 1e-5, restart
  self.embedding = Codebook(k, d, not self.ema)
  self:register_buffer("cluster_size", gen.zeros(k))
  if self.ema then self:register_buffer("embed_sum", self.embedding.weight:clone()) end
end

function M.VectorQuantizer:extra_repr()
  return string.format("%d, %d, beta=%g%s, restart=%g", self.num_codes, self.code_dim, self.beta,
    self.ema and string.format(", ema=true, decay=%g", self.decay) or "", self.restart)
end

--- VectorQuantizer.perplexity(counts): exp(H) of code counts {K}, the effective number of codes in use.
local function perplexity(counts)
  local p = counts:double() / math.max(counts:sum():item(), 1)
  return math.exp(-(p * (p + 1e-12):log()):sum():item())
end

M.VectorQuantizer.perplexity = perplexity

-- channels-last rows {N, D} of z {B, D, ...} and back
local function to_rows(z)
  local perm = { 1 }
  for i = 3, z:dim() do perm[#perm + 1] = i end
  perm[#perm + 1] = 2
  return z:permute(perm):contiguous()
end
local function from_rows(t)
  local perm = { 1, t:dim() }
  for i = 2, t:dim() - 1 do perm[#perm + 1] = i end
  return t:permute(perm)
end

--- The 1-based codes {B, ...} of z {B, D, ...} (no gradient, no statistics).
function M.VectorQuantizer:indices(z)
  return gen.no_grad(function()
    local _, idx = gen.vector_quantize(to_rows(z), self.embedding.weight)
    return idx
  end)
end

--- The code vectors {B, D, ...} of 1-based codes {B, ...}.
function M.VectorQuantizer:lookup(indices)
  return from_rows(gen.embedding(indices, self.embedding.weight))
end

-- Usage statistics and the codebook's own updates, after the codes of a training batch are known.
function M.VectorQuantizer:_update(rows, idx)
  local k, codebook = self.num_codes, self.embedding.weight
  return gen.no_grad(function()
    local flat = rows:view(-1, self.code_dim)
    local n = flat:size(1)
    local counts
    if self.ema then
      counts = gen.vq_ema_update_(codebook, self.cluster_size, self.embed_sum, flat, idx:view(-1),
        { decay = self.decay, eps = self.eps })
    else
      counts = gen.zeros(k, { dtype = codebook.dtype }):scatter_add(1, idx:view(-1), gen.ones(n, { dtype = codebook.dtype }))
      self.cluster_size:mul_(self.decay):add_(counts:type(self.cluster_size.dtype) * (1 - self.decay))
    end
    local dead = 0
    if self.restart > 0 and n > 0 then
      local mask = self.cluster_size:lt(self.restart)
      dead = mask:sum():item()
      if dead > 0 then
        -- one random encoder output of this batch per code; only the dead codes take theirs
        local fresh = flat:index_select(1, gen.randint(1, n, { k }))
        local m = mask:view(k, 1)
        codebook:copy_(gen.where(m, fresh, codebook))
        self.cluster_size:copy_(gen.where(mask, gen.full({ k }, self.restart, self.cluster_size.dtype), self.cluster_size))
        if self.ema then self.embed_sum:copy_(gen.where(m, fresh * self.restart, self.embed_sum)) end
      end
    end
    return counts, dead
  end)
end

--- zq, q = vq(z): z {B, D, ...} (D at dim 2, like a convolution's output). zq is the quantized z
-- (gradient straight through to z); q = {indices {B, ...}, loss, codebook_loss, commitment_loss,
-- perplexity, dead}. In training mode the usage statistics, the EMA and the restarts are updated.
function M.VectorQuantizer:forward(z)
  if z:dim() < 2 or z:size(2) ~= self.code_dim then
    error(string.format("VectorQuantizer: input {%s} must have the code dimension D = %d at dim 2", table.concat(z.shape, ","),
      self.code_dim), 2)
  end
  local rows = to_rows(z)
  local codebook = self.embedding.weight
  local zq, idx = gen.vector_quantize(rows, codebook)
  local q = { indices = idx }
  q.commitment_loss = gen.vq_commitment_loss(rows, codebook, idx)
  if self.ema then
    q.codebook_loss = q.commitment_loss:detach() -- same value; the EMA moves the codes
    q.loss = q.commitment_loss * self.beta
  else
    q.codebook_loss = gen.vq_codebook_loss(rows, codebook, idx)
    q.loss = q.codebook_loss + q.commitment_loss * self.beta
  end
  if self.training then
    local counts, dead = self:_update(rows:detach(), idx)
    q.perplexity, q.dead = perplexity(counts), dead
  end
  return from_rows(zq), q
end

return M
