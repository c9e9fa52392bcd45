--- gen.autoregressive.sampling: drawing tokens from an autoregressive model, one at a time.
--
--   filter_logits(logits {B, V}, {temperature, top_k, top_p}) -> logits with the excluded tokens
--       at -inf: divided by the temperature, then the top-k rule, then the nucleus (top-p) rule
--   sample_logits(logits, opts) -> int64 {B}: one token per row from softmax(filter_logits(...))
--       (temperature = 0: the most likely token)
--   sample(model, n, opts) -> int64 {n, steps}: n sequences from a model called as
--       model(x {n, T}, {labels, cache}) -> logits {n, P + T, V} (gen.models.gpt.GPT's contract)
--
-- Top-k keeps the k largest logits (Fan et al., 2018); top-p keeps the smallest set of most likely
-- tokens whose probabilities sum to at least p (Holtzman et al., 2020). Either keeps every token
-- tied with the last one kept. Draws come from gen.multinomial with the given generator, one per
-- sequence and step, so a seed fixes the tokens whatever the thread count, and sampling with and
-- without the key/value cache gives the same tokens.
local gen = require "gen"

local M = {}

local function dims(t) return gen.is_tensor(t) and t.dtype .. " {" .. table.concat(t.shape, ",") .. "}" or type(t) end

local function check_opts(who, opts, vocab)
  local t = opts.temperature or 1
  if type(t) ~= "number" or t < 0 or t ~= t or t == math.huge then
    error(string.format("%s: temperature must be a finite number >= 0, got %s", who, tostring(opts.temperature)), 4)
  end
  local k = opts.top_k
  if k ~= nil and (math.type(k) ~= "integer" or k < 0) then
    error(string.format("%s: top_k must be an integer >= 0 (0 = off), got %s", who, tostring(k)), 4)
  end
  local p = opts.top_p
  if p ~= nil and (type(p) ~= "number" or not (p > 0 and p <= 1)) then
    error(string.format("%s: top_p must be in (0, 1], got %s", who, tostring(p)), 4)
  end
  if k and vocab and k > vocab then k = vocab end
  return t, (k and k > 0) and k or nil, (p and p < 1) and p or nil
end

--- Rows of logits {B, V} with everything outside top_k / top_p set to -inf, after dividing by
-- the temperature (temperature 0 leaves the logits as they are: sample_logits then takes argmax).
function M.filter_logits(logits, opts)
  opts = opts or {}
  if not gen.is_tensor(logits) or logits:dim() ~= 2 or not (logits.dtype == "float32" or logits.dtype == "float64") then
    error("gen.autoregressive.filter_logits: expected float logits {B, V}, got " .. dims(logits), 2)
  end
  local vocab = logits:size(2)
  local t, k, p = check_opts("gen.autoregressive.filter_logits", opts, vocab)
  if t > 0 and t ~= 1 then logits = logits / t end
  if k and k < vocab then
    local top = logits:topk(k, 2)
    logits = logits:masked_fill(logits:lt(top:narrow(2, k, 1)), -math.huge)
  end
  if p then
    -- in descending order, token j is kept while the mass before it is below p (the first always)
    local sorted = logits:sort(2, true)
    local probs = gen.softmax(sorted, 2)
    local before = gen.cumsum(probs, 2) - probs
    local kept = before:lt(p):long():sum(2, true) -- {B, 1}, at least 1
    logits = logits:masked_fill(logits:lt(sorted:gather(2, kept)), -math.huge)
  end
  return logits
end

--- One token per row of logits {B, V}: int64 {B}, 1-based.
function M.sample_logits(logits, opts)
  opts = opts or {}
  local filtered = M.filter_logits(logits, opts)
  if (opts.temperature or 1) == 0 then return filtered:argmax(2) end
  return gen.multinomial(gen.softmax(filtered, 2), 1, { generator = opts.generator }):view(-1)
end

--- sample(model, n, opts): n sequences of `steps` new tokens, int64 {n, steps} (after the prefix
-- tokens, if any, which are not repeated in the result). opts:
--   steps (or length)   tokens to draw (default: what the model's block_size leaves)
--   temperature, top_k, top_p   as filter_logits (defaults 1, off, off)
--   prefix              int64 {n, P0} tokens the sequences continue from
--   labels              int64 {n}, for a class-conditional model
--   generator           a gen.Generator (default: gen's global one)
--   callback(step, tokens {n, step})   after each drawn token
--   cache = true        decode with a key/value cache (model:new_cache(n)); false reruns the
--                       whole sequence for every token (the reference the cache must equal)
function M.sample(model, n, opts)
  opts = opts or {}
  local who = "gen.autoregressive.sample"
  if math.type(n) ~= "integer" or n < 1 then error(who .. ": n must be a positive integer, got " .. tostring(n), 2) end
  check_opts(who, opts, model.vocab)
  local prefix = opts.prefix
  if prefix ~= nil and (not gen.is_tensor(prefix) or prefix.dtype ~= "int64" or prefix:dim() ~= 2 or prefix:size(1) ~= n) then
    error(string.format("%s: prefix must be int64 tokens {%d, P}, got %s", who, n, dims(prefix)), 2)
  end
  local given = prefix and prefix:size(2) or 0
  local room = (model.block_size or math.huge) - (model.prefix_tokens or 0) - given + 1
  local steps = opts.steps or opts.length or room
  if math.type(steps) ~= "integer" or steps < 1 or steps > room then
    error(string.format("%s: steps must be an integer in 1..%s (block_size %s, prefix %d tokens), got %s", who, tostring(room),
      tostring(model.block_size), given + (model.prefix_tokens or 0), tostring(steps)), 2)
  end
  if given + (model.prefix_tokens or 0) == 0 then
    error(who .. ": the model has no start token or class prefix; give prefix tokens to continue from", 2)
  end
  local draw = { temperature = opts.temperature, top_k = opts.top_k, top_p = opts.top_p, generator = opts.generator }
  local use_cache = opts.cache ~= false
  return gen.no_grad(function()
    local seq = gen.zeros({ n, given + steps }, "int64") -- the given prefix, then the drawn tokens
    if prefix then seq:narrow(2, 1, given):copy_(prefix) end
    local cache = use_cache and model:new_cache(n) or nil
    for step = 1, steps do
      -- with a cache only the tokens it has not seen; without, the whole sequence so far
      local input = (cache and step > 1) and seq:narrow(2, given + step - 1, 1) or seq:narrow(2, 1, given + step - 1)
      local logits = model(input, { labels = (not cache or step == 1) and opts.labels or nil, cache = cache })
      seq:select(2, given + step):copy_(M.sample_logits(logits:select(2, logits:size(2)), draw))
      if opts.callback then opts.callback(step, seq:narrow(2, given + 1, step)) end
    end
    return seq:narrow(2, given + 1, steps):contiguous()
  end)
end

return M
