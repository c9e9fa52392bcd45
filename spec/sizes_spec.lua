-- Checked size arithmetic: sizes, offsets, counts and ranges computed from user input never wrap.
-- Each case once crashed the process (SIGFPE, reads outside a storage) or silently gave a wrong
-- size; now each is a Lua error naming the function and the offending values.
local gen = require "gen"

local maxint = math.maxinteger

local function raises(pattern, fn, ...)
  local ok, err = pcall(fn, ...)
  assert.is_false(ok, "expected an error matching " .. pattern)
  assert.is_truthy(tostring(err):find(pattern), "error '" .. tostring(err) .. "' does not match " .. pattern)
end

describe("checked sizes", function()
  it("gen.values ranges (once SIGFPE on an empty tensor, ~2^63 iterations on a full one)", function()
    raises("gen.values: range of %d+ elements from 2 is outside 1..0", gen.values, gen.zeros(0), 2, maxint)
    raises("gen.values: range", gen.values, gen.zeros(3), 2, maxint)
    raises("gen.values: range", gen.values, gen.zeros(3), maxint, 1)
    assert.same({ 0, 0 }, gen.values(gen.zeros(3), 2, 2))
    assert.same({}, gen.values(gen.zeros(3), 4, 0))
  end)

  it("narrow: start + length cannot overflow past the dimension", function()
    raises("gen.narrow: start 2 and length " .. maxint .. " do not fit dimension 1 of size 4",
      function() return gen.zeros(4):narrow(1, 2, maxint) end)
    raises("gen.narrow: start " .. maxint, function() return gen.zeros(4):narrow(1, maxint, 2):sum() end)
    assert.same({ 4 }, gen.zeros(4):narrow(1, 1, 4).shape)
    assert.same({ 0 }, gen.zeros(4):narrow(1, 5, 0).shape)
  end)

  it("conv_transpose2d checks groups before dividing by them (once SIGFPE)", function()
    raises("gen.conv_transpose2d: groups must be >= 1, got 0", gen.conv_transpose2d, gen.randn(1, 2, 3, 3),
      gen.randn(2, 1, 2, 2), nil, { groups = 0 })
  end)

  it("layer output sizes do not wrap", function()
    raises("gen.pad: paddings {" .. maxint, gen.pad, gen.zeros(1, 1, 2, 2), { maxint, maxint, 0, 0 })
    raises("gen.pad: paddings", gen.pad, gen.zeros(1, 1, 2, 2), { 0, 0, maxint, 1 })
    raises("gen.conv2d: sizes overflow.*padding " .. maxint, gen.conv2d, gen.randn(1, 1, 3, 3), gen.randn(1, 1, 2, 2), nil,
      { padding = maxint })
    raises("gen.conv2d: sizes overflow.*dilation", gen.conv2d, gen.randn(1, 1, 3, 3), gen.randn(1, 1, 2, 2), nil,
      { dilation = maxint })
    raises("gen.conv_transpose2d: output size overflows.*stride 4611686018427387905", gen.conv_transpose2d,
      gen.randn(1, 1, 3, 3), gen.randn(1, 1, 2, 2), nil, { stride = (1 << 62) + 1 })
    raises("gen.conv_transpose2d: .*overflow", gen.conv_transpose2d, gen.randn(1, 1, 3, 3), gen.randn(1, 1, 2, 2), nil,
      { dilation = maxint })
    raises("gen.max_pool2d: ", gen.max_pool2d, gen.zeros(1, 1, 2, 2), maxint)
    raises("gen.avg_pool2d: ", gen.avg_pool2d, gen.zeros(1, 1, 2, 2), 2, { padding = maxint })
    raises("gen.upsample: scale 1e%+300", gen.upsample, gen.zeros(1, 1, 2, 2), { scale = 1e300 })
    raises("gen.upsample: output size", gen.upsample, gen.zeros(1, 1, 2, 2), { size = { maxint, 2 } })
    -- found by fuzzing: the index tables were built (16 GB, filled) before the result was refused
    raises("out of memory: gen.pad needs 147456.0 MB", gen.pad, gen.zeros(1, 2, 4, 4), { 0, 2, 3, 1 << 31 })
    raises("gen.pad: output size 2147483655x6 is too large for an output of 0 elements", gen.pad, gen.zeros(0, 2, 4, 4),
      { 0, 2, 3, 1 << 31 })
    raises("gen.upsample: output size 34359738368x2 is too large", gen.upsample, gen.zeros(0, 1, 2, 2), { size = { 1 << 35, 2 } })
    -- found by fuzzing: an empty batch let the per-image column size overflow (UBSan)
    raises("gen.conv2d: sizes overflow: 2 channels, kernel 3x3, input 3x3, output 4294967297x4294967297", gen.conv2d,
      gen.zeros(0, 2, 3, 3), gen.randn(1, 2, 3, 3), nil, { padding = 1 << 31 })
    -- found by fuzzing: a stride of 2^63 - 1 overflowed the column bounds of im2col (UBSan); one
    -- output pixel, the top-left window, is the right answer
    local x, w = gen.randn(1, 1, 4, 4), gen.randn(1, 1, 2, 2)
    local y = gen.conv2d(x, w, nil, { stride = maxint })
    assert.same({ 1, 1, 1, 1 }, y.shape)
    assert.near((x:narrow(3, 1, 2):narrow(4, 1, 2) * w):sum():item(), y:item(), 1e-5)
    assert.same({ 1, 1, 1, 1 }, gen.conv2d(x, w, nil, { stride = { 1, maxint }, padding = 1 }):narrow(3, 1, 1).shape)
    -- the ordinary cases still work
    assert.same({ 1, 1, 4, 6 }, gen.pad(gen.zeros(1, 1, 2, 2), { 1, 3, 1, 1 }).shape)
    assert.same({ 1, 1, 6, 6 }, gen.conv_transpose2d(gen.randn(1, 1, 3, 3), gen.randn(1, 1, 2, 2), nil, { stride = 2 }).shape)
  end)

  it("shapes, views and expansions whose element count overflows", function()
    raises("gen.zeros: shape {1099511627776,1099511627776} has more elements", gen.zeros, 1 << 40, 1 << 40)
    raises("gen.zeros: shape .* is too large", gen.zeros, 1 << 39, 8)
    raises("gen.zeros: shape {0,.*more elements", gen.zeros, 0, 1 << 40, 1 << 40)
    raises("gen.expand: shape", function() return gen.zeros(1):expand(1 << 40, 1 << 40) end)
    raises("gen.view: shape", function() return gen.zeros(0):view(1 << 40, 1 << 40, -1) end)
    raises("gen.reshape: shape", function() return gen.zeros(0):reshape(1 << 40, 1 << 40, 0) end)
    -- found by fuzzing: strides of an empty view overflowed (UBSan) before the shape was checked
    raises("gen.view: shape {2,0,4611686018427387905} has more elements", function()
      return gen.zeros(0):view(2, 0, (1 << 62) + 1)
    end)
  end)

  it("softmax of empty rows does no work per row (found by fuzzing: 2^40 empty rows hung)", function()
    local t0 = gen.time()
    assert.same({ 1 << 40, 0 }, gen.softmax(gen.zeros(1, 0):expand(1 << 40, 0), 2).shape)
    assert.same({ 1 << 40, 0 }, gen.log_softmax(gen.zeros(1, 0):expand(1 << 40, 0), 2).shape)
    assert.is_true(gen.time() - t0 < 1)
  end)

  it("norms, sort and topk of 2^40 empty rows do no work per row (found by fuzzing: batch_norm hung)", function()
    local t0 = gen.time()
    local empty = gen.zeros(1, 0):expand(1 << 40, 0)
    assert.same({ 1 << 40, 0 }, gen.batch_norm(empty, nil, nil, nil, nil, { training = true }).shape)
    assert.same({ 1 << 40, 2, 0 }, gen.batch_norm(gen.zeros(1, 2, 0):expand(1 << 40, 2, 0), gen.zeros(2), gen.ones(2), nil, nil,
      { training = false }).shape)
    assert.same({ 1 << 40, 0 }, gen.layer_norm(empty, { 0 }).shape)
    assert.same({ 1 << 40, 0 }, gen.sort(empty, 2).shape)
    assert.same({ 1 << 40, 0 }, gen.topk(empty, 0, 2).shape)
    assert.same({ 1 << 20, 0 }, gen.topk(gen.zeros(1, 5):expand(1 << 20, 5), 0, 2).shape)
    local x = gen.zeros(1 << 20, 0):requires_grad_()
    gen.sort(x, 2):sum():backward()
    assert.same({ 1 << 20, 0 }, x.grad.shape)
    assert.is_true(gen.time() - t0 < 1)
  end)

  it("reads int64 indices exactly (found by fuzzing: math.maxinteger went through a double, UBSan)", function()
    local huge = gen.tensor({ math.maxinteger }, "int64")
    raises("holds 9223372036854775807, out of range 1..3", function() return gen.index_select(gen.zeros(3), 1, huge) end)
    raises("target 9223372036854775807 is out of range 1..3", function() return gen.cross_entropy(gen.zeros(1, 3), huge) end)
    raises("indices holds %-9223372036854775808, out of range 1..3", function()
      return gen.embedding(gen.tensor({ math.mininteger }, "int64"), gen.zeros(3, 2))
    end)
  end)

  it("totable refuses to build 2^40 empty Lua tables (found by fuzzing: it hung)", function()
    raises("gen.totable: shape {1099511627776,0} would make more than 1073741824 Lua tables and numbers",
      function() return gen.zeros(1, 0):expand(1 << 40, 0):totable() end)
    raises("gen.totable: shape {65536,65536} would make more than", function() return gen.zeros(1, 1):expand(1 << 16, 1 << 16):totable() end)
    assert.same({ {}, {} }, gen.zeros(2, 0):totable())
  end)

  it("arange and linspace refuse absurd counts before allocating", function()
    raises("gen.arange: %(2.14748e%+09, %-0.18, %-1.8%) has 1193046472 elements", gen.arange, 2 ^ 31, -0.18, -1.8)
    raises("gen.arange: ", gen.arange, 0, 1e300, 1e-300)
    raises("gen.linspace: number of points must be in 0..2%^30, got " .. maxint, gen.linspace, 0, 1, maxint)
    assert.same({ 0, 2, 4 }, gen.arange(0, 5, 2):totable())
    assert.near(0.2, gen.arange(2, -0.18, -1.8):totable()[2], 1e-6)
  end)

  it("an IDX header with a zero size does not hide overflowing ones", function()
    local p = os.tmpname()
    local f = assert(io.open(p, "wb"))
    f:write(string.char(0, 0, 0x08, 4), string.pack(">I4>I4>I4>I4", 0, 2 ^ 32 - 1, 2 ^ 32 - 1, 2 ^ 32 - 1))
    f:close()
    raises("absurd dimensions {0,4294967295,4294967295,4294967295}", gen.data.idx.read, p)
    os.remove(p)
  end)

  it("a safetensors header whose sizes overflow is refused", function()
    local p = os.tmpname()
    local header = '{"a":{"dtype":"F32","shape":[0,1099511627776,1099511627776],"data_offsets":[0,0]}}'
    local f = assert(io.open(p, "wb"))
    f:write(string.pack("<I8", #header), header)
    f:close()
    raises("gen.load: .*tensor 'a' of shape {0,1099511627776,1099511627776} is too large", gen.load, p)
    os.remove(p)
  end)

  it("gen.load of 100,000 empty tensors is not quadratic", function()
    local p = os.tmpname()
    local t, e = {}, gen.zeros(0)
    for i = 1, 100000 do t["t" .. i] = e end
    gen.save(p, t)
    local t0 = gen.time()
    local back = gen.load(p)
    local took = gen.time() - t0
    os.remove(p)
    assert.same({ 0 }, back.t99999.shape)
    assert.is_true(took < 6, "gen.load took " .. took .. " s") -- 14 s with a pairwise duplicate check
  end)
end)
