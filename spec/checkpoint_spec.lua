-- gen.checkpoint: whole training states, atomic writes, bitwise-identical resume.
local gen = require "gen"
local nn = gen.nn

local dir = os.tmpname()
os.remove(dir)
os.execute("mkdir -p " .. dir)

local MLP = nn.Module:extend("MLP")
function MLP:init()
  self.w1 = nn.Parameter(gen.randn(8, 16) * 0.3)
  self.w2 = nn.Parameter(gen.randn(16, 1) * 0.3)
end
function MLP:forward(x)
  local h = gen.matmul(x, self.w1)
  return gen.matmul(h * h, self.w2)
end

-- One training step whose data comes from the default generator, so the RNG state matters.
local function step(model, opt, ema)
  local x = gen.randn(32, 8)
  local y = x:sum(2, true) * 0.5
  local d = model(x) - y
  local loss = (d * d):mean()
  opt:zero_grad()
  loss:backward()
  opt:step()
  ema:update()
  return loss:item()
end

local function fresh()
  gen.manual_seed(123)
  local model = MLP()
  local opt = gen.optim.Adam(model, { lr = 1e-2 })
  return model, opt, gen.optim.EMA(model, 0.9)
end

describe("checkpoint", function()
  it("resumes bitwise-identically", function()
    local model, opt, ema = fresh()
    local straight = {}
    for i = 1, 20 do straight[i] = step(model, opt, ema) end

    local m2, o2, e2 = fresh()
    local resumed = {}
    for i = 1, 10 do resumed[i] = step(m2, o2, e2) end
    local file = dir .. "/ck.safetensors"
    gen.checkpoint.save(file, { model = m2, optimizer = o2, ema = e2, step = 10, note = "half way" })
    for _ = 1, 3 do step(m2, o2, e2) end -- wander off: the load must undo all of it
    gen.manual_seed(999)

    local m3, o3, e3 = fresh()
    local ck = gen.checkpoint.load(file, { model = m3, optimizer = o3, ema = e3 })
    assert.equal(10, ck.step)
    assert.equal("half way", ck.note)
    for i = 11, 20 do resumed[i] = step(m3, o3, e3) end
    assert.same(straight, resumed)
    assert.same(model.w1:totable(), m3.w1:totable())
    assert.same(ema.shadow.w2:totable(), e3.shadow.w2:totable())
  end)

  it("replaces files atomically and leaves no temporary files", function()
    local file = dir .. "/atomic.safetensors"
    gen.checkpoint.save(file, { step = 1, w = gen.ones(3) })
    gen.checkpoint.save(file, { step = 2, w = gen.zeros(3) })
    local ck = gen.checkpoint.load(file, nil, { rng = false })
    assert.equal(2, ck.step)
    assert.same({ 0, 0, 0 }, ck.w:totable())
    local p = io.popen("ls " .. dir)
    local listing = p:read("a")
    p:close()
    assert.is_nil(listing:find("tmp", 1, true))
    -- a save that fails (unwritable place) leaves the previous checkpoint intact
    assert.has_error(function() gen.checkpoint.save(dir .. "/no/such/dir/x", { step = 3 }) end)
    os.execute("chmod 500 " .. dir)
    local ok = pcall(gen.checkpoint.save, file, { step = 3 })
    os.execute("chmod 700 " .. dir)
    if not ok then assert.equal(2, gen.checkpoint.load(file, nil, { rng = false }).step) end
  end)

  it("gives clear errors for corrupt files and missing parts", function()
    local file = dir .. "/corrupt.safetensors"
    local f = assert(io.open(file, "wb"))
    f:write(string.pack("<I8", 10) .. "{not json}")
    f:close()
    local ok, err = pcall(gen.checkpoint.load, file)
    assert.is_false(ok)
    assert.truthy(err:find("bad header", 1, true))
    gen.checkpoint.save(dir .. "/small.safetensors", { step = 1 })
    assert.has_error(function() gen.checkpoint.load(dir .. "/small.safetensors", { model = MLP() }) end)
    assert.has_error(function() gen.checkpoint.save(dir .. "/bad.safetensors", { f = print }) end)
  end)

  it("round-trips every optimizer, the EMA and a scheduler at step 0 as at step N", function()
    for _, name in ipairs { "SGD", "Adam", "AdamW", "RMSprop" } do
      for _, steps in ipairs { 0, 3 } do
        gen.manual_seed(7)
        local model = MLP()
        local opt = gen.optim[name](model, { lr = 1e-2, momentum = name == "SGD" and 0.9 or nil })
        local ema = gen.optim.EMA(model, 0.9)
        local sched = gen.optim.Scheduler(opt, gen.optim.schedules.cosine(10))
        for _ = 1, steps do step(model, opt, ema); sched:step() end
        local file = dir .. "/step0.safetensors"
        gen.checkpoint.save(file, { model = model, optimizer = opt, ema = ema, scheduler = sched, step = steps })
        local want = {}
        for _ = 1, 2 do want[#want + 1] = step(model, opt, ema); sched:step() end
        -- a fresh run loaded from the file continues exactly as the saved one did
        gen.manual_seed(99)
        local model2 = MLP()
        local opt2 = gen.optim[name](model2, { lr = 1e-2, momentum = name == "SGD" and 0.9 or nil })
        local ema2 = gen.optim.EMA(model2, 0.9)
        local sched2 = gen.optim.Scheduler(opt2, gen.optim.schedules.cosine(10))
        local ck = gen.checkpoint.load(file, { model = model2, optimizer = opt2, ema = ema2, scheduler = sched2 })
        assert.equal(steps, ck.step)
        for i = 1, 2 do
          assert.equal(want[i], step(model2, opt2, ema2), name .. " after " .. steps .. " steps")
          sched2:step()
        end
      end
    end
  end)
end)
