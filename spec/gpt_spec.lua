-- gen.models.gpt and gen.autoregressive: the causal mask (future tokens leave earlier logits
-- bitwise unchanged), the key/value cache (the same logits, one token per block call, the same
-- sampled tokens as uncached decoding), class and start prefixes, tied heads, a few training
-- steps, top-k / top-p / temperature on hand-computed cases, and bad input.
local gen = require "gen"
local gpt = require "gen.models.gpt"
local ar = require "gen.autoregressive"
local threads = require "support.threads"

local function err(fn)
  local ok, e = pcall(fn)
  assert.is_false(ok, "expected an error")
  return tostring(e)
end

local function tiny(opts)
  gen.manual_seed(opts and opts.seed or 1)
  local o = { vocab = 24, block_size = 12, dim = 32, depth = 2, heads = 4 }
  for k, v in pairs(opts or {}) do o[k] = v end
  o.seed = nil
  local m = gpt.GPT(o)
  m:eval()
  return m
end

local function maxdiff(a, b) return (a:double() - b:double()):abs():max():item() end

describe("GPT", function()
  it("has PyTorch-style keys, a start token or a class table, and a tied head on request", function()
    local m = tiny()
    local sd = m:state_dict()
    for _, k in ipairs { "tok_emb.weight", "pos_emb.pos", "start", "blocks.0.attn.in_proj_weight", "blocks.1.mlp.2.weight",
      "norm.weight", "head.weight" } do assert.truthy(sd[k], k) end
    assert.same({ 12, 32 }, sd["pos_emb.pos"].shape)
    local c = tiny { classes = 3, tie = true }
    local sc = c:state_dict()
    assert.truthy(sc["class_emb.weight"])
    assert.is_nil(sc["start"])
    assert.is_nil(sc["head.weight"])
    local x = gen.randint(1, 24, { 2, 5 })
    local labels = gen.tensor({ 1, 3 }, "int64")
    local logits = c(x, { labels = labels })
    assert.same({ 2, 6, 24 }, logits.shape)
    local h = c:features(x, { labels = labels })
    assert.are.equal(0, maxdiff(logits, gen.linear(h, c.tok_emb.weight)))
    -- the class decides the first prediction
    local other = c(x, { labels = gen.tensor({ 2, 2 }, "int64") })
    assert.is_true(maxdiff(logits:select(2, 1), other:select(2, 1)) > 1e-4)
    -- no prefix at all: logits for the T given tokens
    assert.same({ 2, 5, 24 }, tiny { start = false }(x).shape)
  end)

  it("is causal: changing later tokens leaves every earlier logit bitwise unchanged", function()
    for _, opts in ipairs { {}, { classes = 4 } } do
      local m = tiny(opts)
      local labels = opts.classes and gen.tensor({ 4, 1, 2 }, "int64") or nil
      local x = gen.randint(1, 24, { 3, 11 }, { generator = gen.Generator(3) })
      local base = m(x, { labels = labels })
      for _, t in ipairs { 1, 6, 11 } do
        local y = x:clone()
        y:narrow(2, t, 11 - t + 1):copy_(gen.randint(1, 24, { 3, 11 - t + 1 }, { generator = gen.Generator(t) }))
        local out = m(y, { labels = labels })
        -- logits at positions 1..t (prefix + tokens before t) see none of the changed tokens
        assert.are.equal(0, maxdiff(out:narrow(2, 1, t), base:narrow(2, 1, t)), "token " .. t)
        assert.is_true(maxdiff(out:narrow(2, t + 1, 1), base:narrow(2, t + 1, 1)) > 0)
      end
    end
  end)

  it("with a key/value cache gives the uncached logits, one token per block call", function()
    local m = tiny { classes = 2 }
    local x = gen.randint(1, 24, { 2, 11 }, { generator = gen.Generator(8) })
    local labels = gen.tensor({ 2, 1 }, "int64")
    local full = m(x, { labels = labels })
    local seen = {}
    for _, blk in m.blocks:ipairs() do
      local fwd = blk.forward
      blk.forward = function(b, h, o) seen[#seen + 1] = h:size(2); return fwd(b, h, o) end
    end
    local cache = m:new_cache(2)
    local rows = gen.no_grad(function()
      local r = { m(gen.zeros({ 2, 0 }, "int64"), { labels = labels, cache = cache }) }
      for t = 1, 11 do r[#r + 1] = m(x:narrow(2, t, 1), { cache = cache }) end
      return r
    end)
    for _, blk in m.blocks:ipairs() do blk.forward = nil end
    assert.is_true(maxdiff(gen.cat(rows, 2), full) < 1e-5)
    assert.are.equal(12, cache:length())
    assert.are.equal(2 * 12, #seen)
    for _, n in ipairs(seen) do assert.are.equal(1, n) end
    -- several tokens at once continue the same cache
    cache:reset()
    local two = gen.no_grad(function()
      local a = m(x:narrow(2, 1, 4), { labels = labels, cache = cache })
      return gen.cat({ a, m(x:narrow(2, 5, 7), { cache = cache }) }, 2)
    end)
    assert.is_true(maxdiff(two, full) < 1e-5)
    assert.has_error(function() gen.no_grad(function() m(x:narrow(2, 1, 1), { cache = cache }) end) end)
  end)

  it("learns: a few Adam steps lower the loss on a fixed batch", function()
    local m = tiny { classes = 2, dropout = 0.1 }
    m:train()
    local opt = gen.optim.AdamW(m, { lr = 3e-3 })
    local codes = gen.randint(1, 24, { 8, 11 }, { generator = gen.Generator(1) })
    local labels = gen.tensor({ 1, 2, 1, 2, 1, 2, 1, 2 }, "int64")
    local losses = {}
    for i = 1, 12 do
      opt:zero_grad()
      local logits = m(codes:narrow(2, 1, 10), { labels = labels })
      local loss = gen.cross_entropy(logits:reshape(8 * 11, 24), codes:reshape(8 * 11))
      loss:backward()
      opt:step()
      losses[i] = loss:item()
    end
    assert.is_true(losses[12] < losses[1] - 0.3, losses[1] .. " -> " .. losses[12])
  end)

  it("rejects bad input", function()
    local m, c = tiny(), tiny { classes = 3 }
    assert.truthy(err(function() m(gen.tensor({ { 0, 3 } }, "int64")) end):find("GPT: tokens must be in 1..24, got values in 0..3", 1, true))
    assert.truthy(err(function() m(gen.tensor({ { 25 } }, "int64")) end):find("got values in 25..25", 1, true))
    assert.truthy(err(function() m(gen.ones(1, 3)) end):find("GPT: expected tokens as an int64 tensor {B, T}, got float32 {1,3}", 1, true))
    assert.truthy(err(function() m(gen.ones({ 3 }, "int64")) end):find("expected tokens as an int64 tensor", 1, true))
    assert.truthy(err(function() m(gen.ones({ 1, 12 }, "int64")) end)
      :find("GPT: 13 tokens (prefix and cache included) exceed block_size 12", 1, true))
    assert.truthy(err(function() c(gen.ones({ 2, 3 }, "int64")) end):find("GPT: this model is class-conditional (3 classes): give labels", 1, true))
    assert.truthy(err(function() c(gen.ones({ 2, 3 }, "int64"), { labels = gen.tensor({ 1, 4 }, "int64") }) end)
      :find("labels must be in 1..3", 1, true))
    assert.truthy(err(function() m(gen.ones({ 2, 3 }, "int64"), { labels = gen.tensor({ 1, 1 }, "int64") }) end)
      :find("GPT: labels given to a model without classes", 1, true))
    assert.truthy(err(function() gpt.GPT { dim = 30, heads = 4 } end):find("GPT: 4 heads do not divide dim 30", 1, true))
    assert.truthy(err(function() gpt.GPT { vocab = 0 } end):find("GPT: vocab must be a positive integer, got 0", 1, true))
    assert.truthy(err(function() gpt.GPT { dropout = 1 } end):find("GPT: dropout must be in [0, 1)", 1, true))
    local cache = m:new_cache(1)
    gen.no_grad(function() m(gen.ones({ 1, 11 }, "int64"), { cache = cache }) end)
    assert.truthy(err(function() gen.no_grad(function() m(gen.ones({ 1, 1 }, "int64"), { cache = cache }) end) end)
      :find("exceed block_size 12", 1, true))
    assert.truthy(err(function() gen.nn.KVCache(2, 0, 4, 8, 8) end):find("gen.nn.KVCache: layers, batch, heads, length and head_dim", 1, true))
    local mha = gen.nn.MultiheadAttention(8, 2)
    local kv = gen.nn.KVCache(1, 1, 2, 3, 4)
    assert.truthy(err(function() mha(gen.ones(1, 2, 8), nil, nil, { cache = kv:layer(1) }) end)
      :find("MultiheadAttention: a key/value cache needs causal = true and no mask", 1, true))
    assert.truthy(err(function() mha(gen.ones(1, 4, 8), nil, nil, { causal = true, cache = kv:layer(1) }) end)
      :find("MultiheadAttention: the cache holds 0 tokens; 4 more exceed its length 3", 1, true))
    assert.truthy(err(function() mha(gen.ones(2, 1, 8), nil, nil, { causal = true, cache = kv:layer(1) }) end)
      :find("MultiheadAttention: the cache is for {B = 1, heads = 2, d = 4}", 1, true))
  end)
end)

describe("filter_logits", function()
  local probs = { 0.5, 0.2, 0.15, 0.1, 0.05 }
  local logits = gen.tensor({ probs }):log()
  local function kept(opts)
    local f = ar.filter_logits(logits, opts):totable()[1]
    local out = {}
    for i, v in ipairs(f) do if v > -math.huge then out[#out + 1] = i end end
    return out
  end

  it("top-k keeps the k largest (ties with the k-th too)", function()
    assert.same({ 1, 2 }, kept { top_k = 2 })
    assert.same({ 1 }, kept { top_k = 1 })
    assert.same({ 1, 2, 3, 4, 5 }, kept { top_k = 0 })
    assert.same({ 1, 2, 3, 4, 5 }, kept { top_k = 9 })
    local tied = ar.filter_logits(gen.tensor { { 1, 3, 3, 0 } }, { top_k = 2 }):totable()[1]
    assert.same({ -math.huge, 3, 3, -math.huge }, tied)
    local t3 = ar.filter_logits(gen.tensor { { 2, 1, 2, 0 } }, { top_k = 1 }):totable()[1]
    assert.same({ 2, -math.huge, 2, -math.huge }, t3)
  end)

  it("top-p keeps the smallest most likely set whose mass reaches p", function()
    assert.same({ 1 }, kept { top_p = 0.3 })
    assert.same({ 1 }, kept { top_p = 0.5 }) -- 0.5 alone reaches 0.5
    assert.same({ 1, 2 }, kept { top_p = 0.6 })
    assert.same({ 1, 2 }, kept { top_p = 0.7 - 1e-6 })
    assert.same({ 1, 2, 3 }, kept { top_p = 0.71 })
    assert.same({ 1, 2, 3, 4, 5 }, kept { top_p = 1 })
    -- rows are independent; the order of the tokens does not matter
    local two = ar.filter_logits(gen.tensor({ { 0.05, 0.5, 0.1, 0.2, 0.15 }, { 0.2, 0.2, 0.2, 0.2, 0.2 } }):log(), { top_p = 0.6 })
    local t = two:totable()
    assert.same({ false, true, false, true, false }, { t[1][1] > -1 / 0, t[1][2] > -1 / 0, t[1][3] > -1 / 0, t[1][4] > -1 / 0, t[1][5] > -1 / 0 })
    for j = 1, 5 do assert.is_true(t[2][j] > -math.huge) end -- all tied with the last kept
    -- after top-k the nucleus is taken of the renormalized rest: {0.5, 0.2} -> {5/7, 2/7}
    assert.same({ 1 }, kept { top_k = 2, top_p = 0.7 })
    assert.same({ 1, 2 }, kept { top_k = 2, top_p = 0.72 })
  end)

  it("temperature divides the logits; 0 samples the argmax", function()
    local l = gen.tensor { { 1.0, -2.0, 0.5 } }
    assert.same({ { 0.5, -1.0, 0.25 } }, ar.filter_logits(l, { temperature = 2 }):totable())
    -- the temperature applies before the nucleus: at T = 0.25, 0.5:0.2 becomes 0.5^4:0.2^4
    assert.same({ 1 }, kept { temperature = 0.25, top_p = 0.9 })
    -- at T = 4 the fourth roots renormalize to 0.266, 0.211, 0.196, ...: 0.45 then needs two tokens
    assert.same({ 1 }, kept { top_p = 0.45 })
    assert.same({ 1, 2 }, kept { temperature = 4, top_p = 0.45 })
    assert.same({ 1, 3 }, ar.sample_logits(gen.tensor { { 3, 1, 2 }, { 0, 1, 5 } }, { temperature = 0 }):totable())
  end)

  it("samples only kept tokens, in proportion to their probabilities", function()
    local rows = logits:expand(4000, 5)
    local x = ar.sample_logits(rows, { top_k = 2, generator = gen.Generator(1) })
    local counts = { 0, 0, 0, 0, 0 }
    for _, v in ipairs(x:totable()) do counts[v] = counts[v] + 1 end
    assert.are.equal(4000, counts[1] + counts[2])
    local p = 5 / 7
    assert.is_true(math.abs(counts[1] / 4000 - p) < 5 * math.sqrt(p * (1 - p) / 4000), tostring(counts[1]))
    -- a high temperature flattens the distribution, a low one sharpens it
    local hot = ar.sample_logits(rows, { temperature = 100, generator = gen.Generator(2) }):eq(1):double():mean():item()
    local cold = ar.sample_logits(rows, { temperature = 0.2, generator = gen.Generator(2) }):eq(1):double():mean():item()
    assert.is_true(hot < 0.3 and cold > 0.95, hot .. " " .. cold)
  end)

  it("rejects bad options and logits", function()
    for _, p in ipairs { 0, 1.5, -0.1, 0 / 0 } do
      assert.truthy(err(function() ar.filter_logits(logits, { top_p = p }) end)
        :find("gen.autoregressive.filter_logits: top_p must be in (0, 1], got", 1, true))
    end
    assert.truthy(err(function() ar.filter_logits(logits, { top_k = -1 }) end):find("top_k must be an integer >= 0", 1, true))
    assert.truthy(err(function() ar.filter_logits(logits, { top_k = 1.5 }) end):find("top_k must be an integer >= 0", 1, true))
    assert.truthy(err(function() ar.filter_logits(logits, { temperature = -1 }) end):find("temperature must be a finite number >= 0", 1, true))
    assert.truthy(err(function() ar.filter_logits(gen.ones(5)) end):find("expected float logits {B, V}, got float32 {5}", 1, true))
  end)
end)

describe("autoregressive.sample", function()
  it("gives the same tokens with and without the key/value cache", function()
    for _, case in ipairs {
      { model = {}, opts = {} },
      { model = { classes = 3 }, opts = { labels = gen.tensor({ 1, 2, 3, 3, 2 }, "int64"), top_k = 8 } },
      { model = { tie = true }, opts = { top_p = 0.8, temperature = 1.5 } },
      { model = { start = false }, opts = { prefix = gen.randint(1, 24, { 5, 3 }, { generator = gen.Generator(4) }), top_k = 5, top_p = 0.9 } },
    } do
      local m = tiny(case.model)
      local function run(cache)
        local o = { generator = gen.Generator(11), cache = cache }
        for k, v in pairs(case.opts) do o[k] = v end
        return ar.sample(m, 5, o)
      end
      local a, b = run(true), run(false)
      assert.same(b:totable(), a:totable())
      local steps = 12 - m.prefix_tokens - (case.opts.prefix and 3 or 0) + 1
      assert.same({ 5, steps }, a.shape)
      assert.is_true(a:min():item() >= 1 and a:max():item() <= 24)
    end
  end)

  it("is fixed by the seed, independent of the thread count; calls back after each token", function()
    local m = tiny { classes = 2 }
    local labels = gen.tensor({ 1, 2, 1 }, "int64")
    local function run(seed) return ar.sample(m, 3, { labels = labels, steps = 6, top_p = 0.95, generator = gen.Generator(seed) }) end
    assert.same(run(3):totable(), run(3):totable())
    assert.is_true(maxdiff(run(3), run(4)) > 0)
    threads.assert_same(function() return run(5) end)
    local calls = {}
    ar.sample(m, 3, { labels = labels, steps = 4, callback = function(step, x) calls[#calls + 1] = { step, x:size(2) } end })
    assert.same({ { 1, 1 }, { 2, 2 }, { 3, 3 }, { 4, 4 } }, calls)
    -- a class decides what is drawn: the same seed with other labels differs somewhere
    local other = ar.sample(m, 3, { labels = gen.tensor({ 2, 1, 2 }, "int64"), steps = 6, top_p = 0.95, generator = gen.Generator(3) })
    assert.is_true(maxdiff(other, run(3)) > 0)
  end)

  it("rejects bad options", function()
    local m = tiny()
    assert.truthy(err(function() ar.sample(m, 2, { steps = 13 }) end)
      :find("gen.autoregressive.sample: steps must be an integer in 1..12 (block_size 12, prefix 1 tokens), got 13", 1, true))
    assert.truthy(err(function() ar.sample(m, 0) end):find("n must be a positive integer", 1, true))
    assert.truthy(err(function() ar.sample(m, 2, { top_p = 2 }) end):find("top_p must be in (0, 1]", 1, true))
    assert.truthy(err(function() ar.sample(m, 2, { prefix = gen.ones(2, 3) }) end):find("prefix must be int64 tokens {2, P}", 1, true))
    assert.truthy(err(function() ar.sample(tiny { start = false }, 2) end):find("the model has no start token or class prefix", 1, true))
    assert.truthy(err(function() ar.sample(tiny { classes = 2 }, 2) end):find("give labels", 1, true))
  end)
end)
