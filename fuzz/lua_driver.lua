-- lua_driver.lua — the grammar of fuzz_lua.c: turns fuzz bytes into a sequence of gen calls with
-- random shapes, dtypes, strides, views and options, each under pcall. A call must return or raise
-- a Lua error with a string message; anything else (a crash, a sanitizer report, a non-string
-- error) is a finding. Returns run(bytes).
local gen = require "gen"
gen.set_num_threads(1)
gen.set_memory_limit(256 * 2 ^ 20) -- a huge size is an error, not an out-of-memory kill

local R = {}
R.__index = R
function R:byte()
  local b = self.s:byte(self.pos) or 0
  self.pos = self.pos + 1
  return b
end
function R:pick(list) return list[self:byte() % #list + 1] end
local ints = { 0, 1, 2, 3, 4, 1, 2, 3, -1, -2, 5, 8, 16, math.maxinteger, math.mininteger, 1 << 31, 1 << 40, 1 << 62,
  (1 << 62) + 1, -(1 << 40) }
local small = { 0, 1, 2, 3, 1, 2, 3, 4, -1, 2 }
local nums = { 0, 1, -1, 0.5, 2, -2.5, 1e300, -1e300, 0 / 0, 1 / 0, -1 / 0, 3, 1e-300, 2 ^ 31 }
local dtypes = { "float32", "float64", "int64", "uint8", "float32", "float32", "bogus" }
function R:int() return self:byte() < 200 and self:pick(small) or self:pick(ints) end
function R:num() return self:byte() < 128 and self:pick(small) or self:pick(nums) end
function R:dtype() return self:pick(dtypes) end
function R:bool() return self:byte() % 2 == 0 end
function R:shape()
  local n = self:byte() % 5
  local s = {}
  for i = 1, n do s[i] = self:int() end
  return s
end
function R:smallshape()
  local n = self:byte() % 5
  local s = {}
  for i = 1, n do s[i] = self:byte() % 4 end
  return s
end
function R:pair() return self:bool() and self:int() or { self:int(), self:int() } end
function R:opts()
  local o = {}
  for _, k in ipairs({ "stride", "padding", "dilation", "output_padding" }) do
    if self:byte() < 60 then o[k] = self:pair() end
  end
  if self:byte() < 60 then o.groups = self:int() end
  if self:byte() < 30 then o.mode = self:pick({ "nearest", "bilinear", "reflect", "replicate", "constant", "x" }) end
  return o
end

local pool
function R:t() return pool[self:byte() % #pool + 1] end
function R:tn() -- a tensor or a number
  if self:byte() < 200 then return self:t() end
  return self:num()
end

local ops = {
  function(r) return gen.zeros(r:shape(), r:dtype()) end,
  function(r) return gen.full(r:smallshape(), r:num(), r:dtype()) end,
  function(r) return gen.arange(r:num(), r:num(), r:num()) end,
  function(r) return gen.linspace(r:num(), r:num(), r:int()) end,
  function(r) return gen.randn(r:smallshape()) end,
  function(r) return gen.randint(r:int(), r:int(), r:smallshape()) end,
  function(r) return gen.randperm(r:int()) end,
  function(r) return gen.eye(r:int()) end,
  function(r) return gen.tensor({ { r:num(), r:num() }, { r:num(), r:num() } }, r:dtype()) end,
  function(r) return r:t():view(r:shape()) end,
  function(r) return r:t():reshape(r:shape()) end,
  function(r) return r:t():narrow(r:int(), r:int(), r:int()) end,
  function(r) return r:t():select(r:int(), r:int()) end,
  function(r) return r:t():expand(r:shape()) end,
  function(r) return r:t():permute(r:int(), r:int(), r:int()) end,
  function(r) return r:t():transpose(r:int(), r:int()) end,
  function(r) return r:t():contiguous() end,
  function(r) return r:t():type(r:dtype()) end,
  function(r) return r:t():squeeze(r:int()) end,
  function(r) return r:t():unsqueeze(r:int()) end,
  function(r) return r:t():flatten() end,
  function(r) return gen.add(r:t(), r:tn()) end,
  function(r) return gen.sub(r:tn(), r:t()) end,
  function(r) return gen.mul(r:t(), r:tn()) end,
  function(r) return gen.div(r:t(), r:tn()) end,
  function(r) return gen.pow(r:t(), r:tn()) end,
  function(r) return r:t() + r:tn() end,
  function(r) return gen.matmul(r:t(), r:t()) end,
  function(r) return gen.bmm(r:t(), r:t()) end,
  function(r) return r:t():sum(r:int(), r:bool()) end,
  function(r) return r:t():sum() end,
  function(r) return r:t():mean(r:int()) end,
  function(r) return r:t():var(r:int()) end,
  function(r) return r:t():max(r:int()) end,
  function(r) return r:t():argmax(r:int()) end,
  function(r) return r:t():logsumexp(r:int()) end,
  function(r) return gen.softmax(r:t(), r:int()) end,
  function(r) return gen.log_softmax(r:t(), r:int()) end,
  function(r) return gen.conv2d(r:t(), r:t(), r:bool() and r:t() or nil, r:opts()) end,
  function(r) return gen.conv_transpose2d(r:t(), r:t(), r:bool() and r:t() or nil, r:opts()) end,
  function(r) return gen.max_pool2d(r:t(), r:pair(), r:opts()) end,
  function(r) return gen.avg_pool2d(r:t(), r:pair(), r:opts()) end,
  function(r)
    local o = r:opts()
    if r:bool() then o.scale = r:num() else o.size = { r:int(), r:int() } end
    return gen.upsample(r:t(), o)
  end,
  function(r) return gen.pad(r:t(), { r:int(), r:int(), r:int(), r:int() }, r:pick({ "constant", "reflect", "replicate" })) end,
  function(r) return gen.index_select(r:t(), r:int(), r:t()) end,
  function(r) return gen.gather(r:t(), r:int(), r:t()) end,
  function(r) return gen.cat({ r:t(), r:t() }, r:int()) end,
  function(r) return gen.stack({ r:t(), r:t() }, r:int()) end,
  function(r) return gen.where(r:t(), r:t(), r:t()) end,
  function(r) return r:t():masked_fill(r:t(), r:num()) end,
  function(r) return gen.linear(r:t(), r:t(), r:bool() and r:t() or nil) end,
  function(r) return gen.layer_norm(r:t(), r:smallshape()) end,
  function(r) return gen.group_norm(r:t(), r:int()) end,
  function(r) return gen.batch_norm(r:t(), nil, nil, nil, nil, { training = true }) end,
  function(r) return gen.embedding(r:t(), r:t()) end,
  function(r) return gen.cross_entropy(r:t(), r:t()) end,
  function(r) return gen.mse_loss(r:t(), r:t(), { reduction = r:pick({ "mean", "sum", "none", "x" }) }) end,
  function(r) return gen.bce_with_logits(r:t(), r:t()) end,
  function(r) return gen.scaled_dot_product_attention(r:t(), r:t(), r:t(), { causal = r:bool() }) end,
  function(r) return gen.values(r:t(), r:int(), r:int()) end,
  function(r) return r:t():at(r:int()) end,
  function(r) return r:t():set_at(r:int(), r:num()) end,
  function(r) return gen[r:pick({ "exp", "log", "sqrt", "tanh", "sigmoid", "relu", "gelu", "silu", "abs", "neg" })](r:t()) end,
  function(r) return r:t():clamp(r:num(), r:num()) end,
  function(r) return r:t():requires_grad_(r:bool()) end,
  function(r)
    local x = r:t()
    if x.requires_grad or x.grad_fn then x:sum():backward() end
  end,
  function(r) return r:t():detach() end,
  function(r) return r:t():clone() end,
  function(r) return r:t():copy_(r:t()) end,
  function(r) return r:t():fill_(r:num()) end,
  function(r) return r:t():totable() end,
  function(r) return tostring(r:t()) end,
  function(r) return r:t():item() end,
  function(r) return r:t():chunk(r:int(), r:int()) end,
  function(r) return r:t():split(r:int(), r:int()) end,
  function(r) gen.autograd.detect_anomaly(r:bool()) end,
  function(r)
    local path = os.tmpname()
    gen.save(path, { a = r:t(), b = r:t() })
    local back = gen.load(path)
    os.remove(path)
    return back.a
  end,
}

local checked = 0
local trace = os.getenv("GEN_FUZZ_TRACE") -- prints each call (to replay a finding with plain lua5.4)
return function(bytes)
  local r = setmetatable({ s = bytes, pos = 1 }, R)
  pool = { gen.randn(2, 3), gen.zeros(0), gen.arange(6):view(2, 3), gen.ones(1, 2, 3, 3),
    gen.randn(1, 2, 4, 4):requires_grad_(), gen.tensor(3.5), gen.randn(3, 2):t(), gen.zeros(2, 3, "uint8"),
    gen.arange(4), gen.randn(2, 1, 4, 4) }
  local steps = 0
  while r.pos <= #bytes and steps < 48 do
    steps = steps + 1
    local k = r:byte() % #ops + 1
    if trace then io.stderr:write(string.format("op %d at byte %d (live %d)\n", k, r.pos, gen.memory().live)) end
    local ok, res = pcall(ops[k], r)
    if trace then io.stderr:write(string.format("  -> %s\n", tostring(res))) end
    checked = checked + 1
    if not ok and type(res) ~= "string" then error("a call raised a non-string error: " .. type(res)) end
    if ok and gen.is_tensor(res) and res:numel() <= 100000 then
      if #pool < 16 then pool[#pool + 1] = res else pool[r:byte() % #pool + 1] = res end
    end
  end
  gen.autograd.detect_anomaly(false)
  pool = nil
  if checked > 2000 then
    checked = 0
    collectgarbage()
  end
end
