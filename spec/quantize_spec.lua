-- Vector quantization: nearest codes against a brute-force search (ties, float64, chunked rows),
-- the straight-through gradient, gradient checks of the codebook and commitment losses, the EMA
-- update against its formula, dead-code restarts, perplexity, bad inputs; the VQ-VAE models'
-- code interface and the stage-1 loader's refusals.
local gen = require "gen"
local gradcheck = require("gen.testing").gradcheck
local experiment = require "gen.experiment"

-- The brute-force nearest code of each row (1-based, ties to the lowest index), its distance,
-- and the gap to the second nearest.
local function brute(z, cb)
  local zt, ct = z:double():totable(), cb:double():totable()
  local idx, gap = {}, {}
  for r = 1, #zt do
    local best, bd, second = 0, math.huge, math.huge
    for k = 1, #ct do
      local d = 0
      for c = 1, #ct[k] do d = d + (zt[r][c] - ct[k][c]) ^ 2 end
      if d < bd then best, second, bd = k, bd, d elseif d < second then second = d end
    end
    idx[r], gap[r] = best, second - bd
  end
  return idx, gap
end

local function same_codes(z, cb, tol)
  local _, got = gen.vector_quantize(z, cb)
  got = got:view(-1):totable()
  local want, gap = brute(z:view(-1, cb:size(2)), cb)
  local checked = 0
  for r = 1, #want do
    if gap[r] > tol then -- rows whose two nearest codes differ by more than rounding
      assert.are.equal(want[r], got[r], "row " .. r)
      checked = checked + 1
    end
  end
  return checked, #want
end

describe("gen.vector_quantize", function()
  it("finds the nearest code of every row, in float32 and float64, across GEMM chunks", function()
    local g = gen.Generator(7)
    for _, dtype in ipairs { "float32", "float64" } do
      local z, cb = gen.randn({ 6, 50, 5 }, { generator = g, dtype = dtype }), gen.randn({ 37, 5 }, { generator = g, dtype = dtype })
      local checked, n = same_codes(z, cb, dtype == "float64" and 1e-12 or 1e-4)
      assert.is_true(checked > 0.95 * n)
    end
    -- K = 40000 codes: 26 rows per chunk, so 100 rows take four GEMMs
    local z, cb = gen.randn({ 100, 3 }, { generator = g, dtype = "float64" }), gen.randn({ 40000, 3 }, { generator = g, dtype = "float64" })
    local checked, n = same_codes(z, cb, 1e-12)
    assert.is_true(checked > 0.95 * n)
  end)

  it("breaks ties to the lowest index", function()
    for _, dtype in ipairs { "float32", "float64" } do
      -- duplicate codes 2 = 4 and 3 = 5; z = 0 is equidistant from codes 1 and 2
      local cb = gen.tensor({ { -1, 0 }, { 1, 0 }, { 0, 3 }, { 1, 0 }, { 0, 3 } }, dtype)
      local z = gen.tensor({ { 0, 0 }, { 0.9, 0.1 }, { 0.2, 2.5 }, { 0.5, 0 } }, dtype)
      local _, idx = gen.vector_quantize(z, cb)
      assert.are.same({ 1, 2, 3, 2 }, idx:totable())
    end
  end)

  it("returns the codes themselves, shaped like z, and 1-based int64 indices shaped like z without D", function()
    local cb = gen.randn(9, 4)
    local z = gen.randn(2, 3, 5, 4)
    local zq, idx = gen.vector_quantize(z, cb)
    assert.are.same({ 2, 3, 5, 4 }, zq.shape)
    assert.are.same({ 2, 3, 5 }, idx.shape)
    assert.are.equal("int64", idx.dtype)
    assert.are.same(gen.embedding(idx, cb):totable(), zq:totable())
    local lo, hi = idx:min():item(), idx:max():item()
    assert.is_true(lo >= 1 and hi <= 9)
  end)

  it("gives the same codes for a non-contiguous z and for any thread count", function()
    local cb = gen.randn(64, 8)
    local zt = gen.randn(8, 700) -- z = zt:t() is a {700, 8} view with strides {1, 700}
    local _, a = gen.vector_quantize(zt:t(), cb)
    local _, b = gen.vector_quantize(zt:t():contiguous(), cb)
    assert.are.same(b:totable(), a:totable())
    local before = gen.get_num_threads()
    gen.set_num_threads(1)
    local _, c = gen.vector_quantize(zt:t(), cb)
    gen.set_num_threads(before)
    assert.are.same(b:totable(), c:totable())
  end)

  it("passes the upstream gradient straight through to z and none to the codebook", function()
    -- The straight-through estimator is by definition not the derivative of the quantizer (which is
    -- zero almost everywhere), so it is checked against its definition rather than finite differences.
    local z, cb = gen.randn(6, 3):double():requires_grad_(), gen.randn(4, 3):double():requires_grad_()
    local g = gen.randn(6, 3):double()
    gen.core.count_backward(true)
    local zq = gen.vector_quantize(z, cb)
    zq:backward(g)
    gen.core.count_backward(false)
    assert.are.same(g:totable(), z.grad:totable())
    assert.is_nil(cb.grad)
  end)

  it("raises on bad inputs, naming the function and the shapes", function()
    local cb = gen.randn(8, 4)
    assert.error_matches(function() gen.vector_quantize(gen.randn(3, 5), cb) end,
      "gen.vector_quantize: z {3,5} must end in the code dimension D = 4 of the codebook {8,4}", 1, true)
    assert.error_matches(function() gen.vector_quantize(gen.randn(3, 4), gen.zeros(0, 4)) end, "the codebook is empty: {0,4}", 1, true)
    assert.error_matches(function() gen.vector_quantize(gen.randn(3, 4), gen.randn(8)) end, "codebook must be {K, D}, got {8}", 1, true)
    assert.error_matches(function() gen.vector_quantize(gen.ones({ 3, 4 }, "int64"), cb) end, "z must be float32 or float64, got int64", 1, true)
    assert.error_matches(function() gen.vector_quantize(gen.randn(3, 4), cb:double()) end, "z is float32 but the codebook is float64", 1, true)
    assert.error_matches(function() gen.vector_quantize(gen.randn(3, 4)) end, "gen.vector_quantize: argument 2: expected a tensor", 1, true)
    local _, idx = gen.vector_quantize(gen.randn(3, 4), cb)
    assert.error_matches(function() gen.vq_codebook_loss(gen.randn(3, 4), cb, idx:double()) end, "indices must be int64", 1, true)
    assert.error_matches(function() gen.vq_commitment_loss(gen.randn(3, 4), cb, gen.tensor({ 1, 9, 2 }, "int64")) end,
      "index 9 is out of range 1..8", 1, true)
    assert.error_matches(function() gen.vq_commitment_loss(gen.randn(3, 4), cb, gen.tensor({ 1, 2 }, "int64")) end,
      "indices {2} must have the shape of z {3,4} without its last dimension", 1, true)
  end)

  it("handles an empty batch", function()
    local zq, idx = gen.vector_quantize(gen.zeros(0, 4), gen.randn(8, 4))
    assert.are.same({ 0, 4 }, zq.shape)
    assert.are.same({ 0 }, idx.shape)
  end)
end)

describe("the codebook and commitment losses", function()
  it("both equal the mean squared distance of z to its codes", function()
    local z, cb = gen.randn(5, 7, 3), gen.randn(6, 3)
    local zq, idx = gen.vector_quantize(z, cb)
    local want = gen.mse_loss(z, zq):item()
    assert.is_true(math.abs(gen.vq_codebook_loss(z, cb, idx):item() - want) < 1e-6)
    assert.is_true(math.abs(gen.vq_commitment_loss(z, cb, idx):item() - want) < 1e-6)
  end)

  it("pass gradient checks: the codebook loss moves only the codebook, the commitment loss only z", function()
    local g = gen.Generator(3)
    local z, cb = gen.randn({ 4, 5, 3 }, { generator = g, dtype = "float64" }), gen.randn({ 6, 3 }, { generator = g, dtype = "float64" })
    local _, idx = gen.vector_quantize(z, cb)
    assert.is_true(gradcheck(function(e) return gen.vq_codebook_loss(z, e, idx) end, { cb }))
    assert.is_true(gradcheck(function(x) return gen.vq_commitment_loss(x, cb, idx) end, { z }))
    local zz, cc = z:clone():requires_grad_(), cb:clone():requires_grad_()
    gen.vq_codebook_loss(zz, cc, idx):backward()
    assert.is_nil(zz.grad)
    assert.truthy(cc.grad)
    zz, cc = z:clone():requires_grad_(), cb:clone():requires_grad_()
    gen.vq_commitment_loss(zz, cc, idx):backward()
    assert.is_nil(cc.grad)
    assert.truthy(zz.grad)
  end)

  it("let the codebook be rewritten in place between forward and backward (the EMA update)", function()
    local z, cb = gen.randn(10, 3):requires_grad_(), gen.randn(4, 3)
    local _, idx = gen.vector_quantize(z, cb)
    local loss = gen.vq_commitment_loss(z, cb, idx)
    local want = ((z:detach() - gen.embedding(idx, cb)) * (2 / 30)):totable()
    cb:mul_(0)
    loss:backward()
    local got = z.grad:totable()
    for r = 1, 10 do for c = 1, 3 do assert.is_true(math.abs(got[r][c] - want[r][c]) < 1e-6) end end
  end)
end)

describe("gen.vq_ema_update_", function()
  it("follows N_k <- d N_k + (1-d) n_k, m_k <- d m_k + (1-d) s_k, e_k = m_k / Laplace-smoothed N_k", function()
    local k, d, n, decay, eps = 5, 3, 12, 0.9, 0.1
    local g = gen.Generator(5)
    local z = gen.randn({ n, d }, { generator = g, dtype = "float64" })
    local idx = gen.tensor({ 1, 2, 2, 3, 1, 1, 2, 3, 3, 3, 1, 2 }, "int64") -- code 4 and 5 unused
    local cs = gen.tensor({ 2, 1, 0.5, 3, 0.2 }, "float64")
    local es = gen.randn({ k, d }, { generator = g, dtype = "float64" })
    local cb = gen.zeros({ k, d }, "float64")
    local cs0, es0, zt, it = cs:totable(), es:totable(), z:totable(), idx:totable()
    local counts = gen.vq_ema_update_(cb, cs, es, z, idx, { decay = decay, eps = eps })
    local nk, sk = {}, {}
    for j = 1, k do nk[j], sk[j] = 0, { 0, 0, 0 } end
    for r = 1, n do
      nk[it[r]] = nk[it[r]] + 1
      for c = 1, d do sk[it[r]][c] = sk[it[r]][c] + zt[r][c] end
    end
    assert.are.same(nk, counts:totable())
    local newcs, total = {}, 0
    for j = 1, k do newcs[j] = decay * cs0[j] + (1 - decay) * nk[j]; total = total + newcs[j] end
    local got_cs, got_es, got_cb = cs:totable(), es:totable(), cb:totable()
    for j = 1, k do
      assert.is_true(math.abs(got_cs[j] - newcs[j]) < 1e-12)
      local smoothed = (newcs[j] + eps) / (total + k * eps) * total
      for c = 1, d do
        local m = decay * es0[j][c] + (1 - decay) * sk[j][c]
        assert.is_true(math.abs(got_es[j][c] - m) < 1e-12)
        assert.is_true(math.abs(got_cb[j][c] - m / smoothed) < 1e-12)
      end
    end
  end)

  it("checks its buffers", function()
    local cb, z, idx = gen.randn(4, 2), gen.randn(3, 2), gen.tensor({ 1, 2, 3 }, "int64")
    assert.error_matches(function() gen.vq_ema_update_(cb, gen.zeros(3), gen.zeros(4, 2), z, idx) end,
      "gen.vq_ema_update_: cluster_size must be a float32 {4} tensor, got float32 {3}", 1, true)
    assert.error_matches(function() gen.vq_ema_update_(cb, gen.zeros(4), gen.zeros(4, 3), z, idx) end, "embed_sum must be", 1, true)
    assert.error_matches(function() gen.vq_ema_update_(cb, gen.zeros(4), gen.zeros(4, 2), z, idx, { decay = 1.5 }) end,
      "decay must be in [0, 1], got 1.5", 1, true)
  end)
end)

describe("gen.nn.VectorQuantizer", function()
  it("restarts dead codes at encoder outputs of the batch and counts them", function()
    gen.manual_seed(11)
    local vq = gen.nn.VectorQuantizer(8, 2, { restart = 1 })
    local w = vq.embedding.weight
    gen.no_grad(function()
      w:copy_(gen.tensor({ { 0, 0 }, { 10, 10 }, { 20, 20 }, { 30, 30 }, { 40, 40 }, { 50, 50 }, { 60, 60 }, { 70, 70 } }))
      vq.cluster_size:fill_(5)
      vq.cluster_size:narrow(1, 3, 2):fill_(0.5) -- codes 3 and 4 are dead (and get no rows below)
    end)
    local z = (gen.randn(4, 2, 3, 3) * 0.1):requires_grad_() -- every row is nearest to code 1
    local before = w:clone()
    local _, q = vq(z)
    assert.are.equal(2, q.dead)
    local rows = z:detach():permute(1, 3, 4, 2):contiguous():view(-1, 2):totable()
    local after = w:totable()
    for j = 1, 8 do
      if j == 3 or j == 4 then
        local found = false
        for _, r in ipairs(rows) do found = found or (r[1] == after[j][1] and r[2] == after[j][2]) end
        assert.is_true(found, "code " .. j .. " restarted at an encoder output")
      else
        assert.are.same(before:totable()[j], after[j])
      end
    end
    assert.is_true(vq.cluster_size:narrow(1, 3, 2):min():item() >= 1)
    -- eval mode: no statistics, no restarts
    vq:eval()
    local cs = vq.cluster_size:clone()
    local _, q2 = vq(z)
    assert.is_nil(q2.perplexity)
    assert.are.same(cs:totable(), vq.cluster_size:totable())
  end)

  it("reports perplexity: K for uniform use, 1 for one code", function()
    local P = gen.nn.VectorQuantizer.perplexity
    assert.is_true(math.abs(P(gen.full({ 16 }, 3)) - 16) < 1e-9)
    assert.is_true(math.abs(P(gen.tensor({ 0, 0, 7, 0 })) - 1) < 1e-9)
    assert.is_true(math.abs(P(gen.tensor({ 1, 1, 0, 0 })) - 2) < 1e-9)
  end)

  it("keeps the codebook as a parameter, or with ema as a buffer with its running sums", function()
    local a = gen.nn.VectorQuantizer(16, 4)
    local b = gen.nn.VectorQuantizer(16, 4, { ema = true })
    local ka, kb = {}, {}
    for k in pairs(a:state_dict()) do ka[#ka + 1] = k end
    for k in pairs(b:state_dict()) do kb[#kb + 1] = k end
    table.sort(ka); table.sort(kb)
    assert.are.same({ "cluster_size", "embedding.weight" }, ka)
    assert.are.same({ "cluster_size", "embed_sum", "embedding.weight" }, kb)
    assert.are.equal(1, #a:parameters())
    assert.are.equal(0, #b:parameters())
    assert.has_error(function() a(gen.randn(2, 3, 4, 4)) end, nil)
  end)

  it("trains with the EMA: the codebook loss falls without a gradient", function()
    gen.manual_seed(2)
    local vq = gen.nn.VectorQuantizer(4, 2, { ema = true, decay = 0.5, restart = 0 })
    local centers = gen.tensor({ { 3, 3 }, { -3, 3 }, { 3, -3 }, { -3, -3 } })
    gen.no_grad(function() -- each code starts 1 away from its center: the EMA must pull it in
      vq.embedding.weight:copy_(centers + 1)
      vq.embed_sum:copy_(centers + 1)
    end)
    local first, last
    for i = 1, 30 do
      local z = (centers:index_select(1, gen.randint(1, 4, { 64 })) + gen.randn(64, 2) * 0.1):view(64, 2, 1, 1)
      local _, q = vq(z)
      if i == 1 then first = q.codebook_loss:item() end
      last = q.codebook_loss:item()
    end
    assert.is_true(last < 0.05 * first, string.format("%g -> %g", first, last))
  end)
end)

describe("gen.models.vqvae", function()
  local vqvae = require "gen.models.vqvae"

  it("encodes to and decodes from codes on the 7 x 7 grid (one level) or 7 x 7 and 14 x 14 (two)", function()
    gen.manual_seed(1)
    local x = gen.rand(3, 1, 28, 28)
    local one = vqvae.VQVAE { codebook_size = 16, code_dim = 8, width = 8, res_width = 4 }
    local c = one:encode_indices(x)
    assert.are.same({ 3, 7, 7 }, c.shape)
    assert.are.equal("int64", c.dtype)
    assert.are.same({ 7, 7 }, one.grid)
    assert.are.same({ 3, 1, 28, 28 }, one:decode_indices(c).shape)
    one:eval()
    assert.are.same(one(x):totable(), one:decode_indices(c):totable())
    local two = vqvae.VQVAE { levels = 2, codebook_size = 16, code_dim = 8, width = 8, res_width = 4 }
    local cc = two:encode_indices(x)
    assert.are.same({ 3, 7, 7 }, cc.top.shape)
    assert.are.same({ 3, 14, 14 }, cc.bottom.shape)
    assert.are.same({ top = { 7, 7 }, bottom = { 14, 14 } }, two.grid)
    two:eval()
    assert.are.same(two(x):totable(), two:decode_indices(cc):totable())
    assert.error_matches(function() one:decode_indices(gen.ones({ 3, 6, 6 }, "int64")) end, "codes must be int64 {B, 7, 7}, got int64 {3,6,6}", 1, true)
    assert.error_matches(function() two:decode_indices(c) end, "two levels need {top = ..., bottom = ...}", 1, true)
    assert.error_matches(function() vqvae.VQVAE { levels = 3 } end, "levels must be 1 or 2, got 3", 1, true)
    assert.error_matches(function() vqvae.VQVAE { resolution = 30 } end, "divisible by 4", 1, true)
    assert.error_matches(function() vqvae.VQVAE { codebok_size = 3 } end, "unknown option 'codebok_size'", 1, true)
  end)

  it("rebuilds from its config", function()
    local m = vqvae.VQVAE { levels = 2, codebook_size = 8, code_dim = 4, width = 8, ema = true, resolution = 32 }
    local copy = vqvae.VQVAE(m:config())
    assert.are.same(m:config(), copy:config())
    assert.are.same({ top = { 8, 8 }, bottom = { 16, 16 } }, copy.grid)
  end)
end)

describe("gen.experiment.stage1", function()
  local dir = os.tmpname()
  os.remove(dir)
  os.execute("mkdir -p " .. dir .. "/vq " .. dir .. "/gan " .. dir .. "/other")
  local vqvae = require "gen.models.vqvae"

  local function load(sub)
    local run = experiment.parse("prior", { [0] = "prior.lua", "--stage1", dir .. "/" .. sub }, {})
    return experiment.stage1(run, "vqvae")
  end
  local function refusal(sub)
    local ok, err = pcall(load, sub)
    assert.is_false(ok)
    assert.is_true(experiment.is_usage_error(err), tostring(err))
    return tostring(err)
  end

  it("rebuilds a vqvae checkpoint in eval mode with frozen parameters", function()
    local m = vqvae.VQVAE { codebook_size = 8, code_dim = 4, width = 8, res_width = 4 }
    gen.checkpoint.save(dir .. "/vq/checkpoint.safetensors", { model = m, stage1 = experiment.stage1_record("vqvae", m:config()) })
    local got, config = load("vq")
    assert.are.equal(8, got.codebook_size)
    assert.are.equal(8, config.codebook_size)
    assert.is_false(got.training)
    for _, p in ipairs(got:parameters()) do assert.is_false(p.requires_grad) end
    local x = gen.rand(2, 1, 28, 28)
    assert.are.same(m:encode_indices(x):totable(), got:encode_indices(x):totable())
  end)

  it("refuses another kind of checkpoint, a missing file and a missing --stage1 in one line", function()
    gen.checkpoint.save(dir .. "/gan/checkpoint.safetensors", { G = gen.nn.Linear(2, 2), D = gen.nn.Linear(2, 1) })
    local m = gen.nn.Linear(2, 2)
    gen.checkpoint.save(dir .. "/other/checkpoint.safetensors", { model = m, stage1 = experiment.stage1_record("pixelcnn", {}) })
    local e = refusal("gan")
    assert.truthy(e:find("expected a vqvae checkpoint, " .. dir .. "/gan/checkpoint.safetensors is a checkpoint with no stage-1 record (it holds D, G)", 1, true), e)
    e = refusal("other")
    assert.truthy(e:find("expected a vqvae checkpoint, " .. dir .. "/other/checkpoint.safetensors is a pixelcnn checkpoint", 1, true), e)
    e = refusal("missing")
    assert.truthy(e:find("expected a vqvae checkpoint, found no file at", 1, true), e)
    assert.is_nil(e:find("\n"))
    local ok, err = pcall(experiment.stage1, experiment.parse("prior", { [0] = "prior.lua" }, {}), "vqvae")
    assert.is_false(ok)
    assert.truthy(tostring(err):find("option --stage1 DIR is required", 1, true))
  end)
end)
