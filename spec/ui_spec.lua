-- gen.ui: progress output (terminal and plain), CSV logs, PNG plots.
local gen = require "gen"

local dir = os.tmpname()
os.remove(dir)
os.execute("mkdir -p " .. dir)
local function path(n) return dir .. "/" .. n end
local function slurp(p) local f = assert(io.open(p, "rb")); local s = f:read("a"); f:close(); return s end

-- A writer that records every write, and a clock the test moves by hand.
local function recorder()
  local out = { chunks = {} }
  function out:write(...) self.chunks[#self.chunks + 1] = table.concat({ ... }) end
  function out:flush() end
  return out
end

describe("progress", function()
  it("prints plain lines on a non-terminal: first step, every 10%, no duplicate at close", function()
    local out, t = recorder(), 0
    local p = gen.ui.progress(20, { label = "epoch 1", tty = false, out = out, interval = 100, clock = function() return t end })
    for i = 1, 20 do t = i * 0.5; p:update(i, { loss = 1 / i, acc = 0.5 }) end
    p:close()
    local lines = out.chunks
    assert.equal(11, #lines)
    assert.equal("epoch 1 1/20 2.0 it/s elapsed 00:01 eta 00:10 acc=0.5 loss=1\n", lines[1])
    assert.equal("epoch 1 2/20 2.0 it/s elapsed 00:01 eta 00:09 acc=0.5 loss=0.5\n", lines[2])
    assert.equal("epoch 1 20/20 2.0 it/s elapsed 00:10 eta 00:00 acc=0.5 loss=0.05\n", lines[11])
    for _, l in ipairs(lines) do assert.falsy(l:find("[\r\27]")) end -- no terminal control characters
  end)

  it("prints at a steady interval between the 10% marks and at close", function()
    local out, t = recorder(), 0
    local p = gen.ui.progress(1000, { tty = false, out = out, interval = 5, clock = function() return t end })
    for i = 1, 50 do t = i; p:update(i) end -- 50 s for 5%: a line at 1 s, then every 5 s up to 46 s
    assert.equal(10, #out.chunks)
    assert.equal("6/1000 1.0 it/s elapsed 00:06 eta 16:34\n", out.chunks[2])
    p:close()
    assert.equal(11, #out.chunks) -- 50/1000 had not been printed yet
    assert.equal("50/1000 1.0 it/s elapsed 00:50 eta 15:50\n", out.chunks[11])
    p:close()
    assert.equal(11, #out.chunks) -- closing twice prints nothing more
  end)

  it("redraws one line in place on a terminal, with a bar", function()
    local out, t = recorder(), 0
    local p = gen.ui.progress(4, { label = "sample", tty = true, out = out, width = 8, clock = function() return t end })
    t = 1; p:update(1, { loss = 0.25 })
    t = 1.01; p:update(2) -- within 0.1 s of the last draw: skipped
    t = 4; p:update(4)
    p:close()
    assert.equal("\r\27[Ksample [##......] 1/4 1.0 it/s elapsed 00:01 eta 00:03 loss=0.25", out.chunks[1])
    assert.equal("\r\27[Ksample [########] 4/4 1.0 it/s elapsed 00:04 eta 00:00 loss=0.25", out.chunks[2])
    assert.equal("\r\27[Ksample [########] 4/4 1.0 it/s elapsed 00:04 eta 00:00 loss=0.25\n", out.chunks[3])
  end)

  it("counts without a total, shows slow rates per item, and validates", function()
    local out, t = recorder(), 0
    local p = gen.ui.progress(nil, { tty = false, out = out, clock = function() return t end })
    t = 4; p:update()
    t = 8; p:update()
    p:close()
    assert.equal("1 4.00 s/it elapsed 00:04 eta ?\n", out.chunks[1])
    assert.equal("2 4.00 s/it elapsed 00:08 eta ?\n", out.chunks[#out.chunks])
    assert.has_error(function() gen.ui.progress(-1) end, "gen.ui.progress: total must be a non-negative integer or nil, got -1")
  end)
end)

describe("CSV logs", function()
  it("writes a header and rows, and reads them back", function()
    local p = path("log.csv")
    local log = gen.ui.CSVLogger(p, { "step", "loss_d", "loss_g" })
    for i = 1, 3 do log:log { step = i, loss_d = 1 / i, loss_g = gen.tensor(i * 0.5) } end
    log:log { step = 4 } -- missing values stay empty
    log:close()
    assert.equal("step,loss_d,loss_g\n1,1,0.5\n2,0.5,1\n3,0.333333,1.5\n4,,\n", slurp(p))
    local names, cols = gen.ui.read_csv(p)
    assert.same({ "step", "loss_d", "loss_g" }, names)
    assert.same({ 1, 2, 3, 4 }, cols.step)
    assert.near(0.5, cols.loss_d[2], 1e-6)
    assert.is_nil(cols.loss_g[4])
  end)

  it("appends to a log with the same header and refuses a different one", function()
    local p = path("resume.csv")
    local log = gen.ui.CSVLogger(p, { "step", "loss" })
    log:log { step = 1, loss = 2 }
    log:close()
    log = gen.ui.CSVLogger(p, { "step", "loss" }, { append = true })
    log:log { step = 2, loss = 1 }
    log:close()
    assert.equal("step,loss\n1,2\n2,1\n", slurp(p))
    assert.has_error(function() gen.ui.CSVLogger(p, { "step", "kl" }, { append = true }) end)
    local ok, err = pcall(gen.ui.CSVLogger, p, { "step", "kl" }, { append = true })
    assert.is_false(ok)
    assert.truthy(err:find("gen.ui.CSVLogger: " .. p .. " has columns 'step,loss', not 'step,kl'", 1, true), err)
    -- without append the file starts over
    gen.ui.CSVLogger(p, { "step", "kl" }):close()
    assert.equal("step,kl\n", slurp(p))
  end)

  it("rejects unknown columns and quotes text", function()
    local log = gen.ui.CSVLogger(path("q.csv"), { "step", "note" })
    local ok, err = pcall(log.log, log, { step = 1, lss = 3 })
    assert.is_false(ok)
    assert.truthy(err:find("gen.ui.CSVLogger: unknown column 'lss'", 1, true), err)
    log:log { step = 1, note = 'a, "b"' }
    log:close()
    assert.equal('step,note\n1,"a, ""b"""\n', slurp(path("q.csv")))
    assert.has_error(function() log:log { step = 2 } end)
    assert.has_error(function() gen.ui.CSVLogger(dir .. "/no/such/x.csv", { "a" }) end)
  end)
end)

describe("plot", function()
  local function count_color(img, rgb)
    local r, g, b = img[1]:eq(rgb[1]), img[2]:eq(rgb[2]), img[3]:eq(rgb[3])
    return (r:long() + g:long() + b:long()):eq(3):sum():item()
  end

  it("renders curves, axes, ticks, legend and text to a PNG of the requested size", function()
    local x, yd, yg = {}, {}, {}
    for i = 1, 50 do x[i], yd[i], yg[i] = i * 10, 1 / i, math.log(i + 1) end
    local img = gen.ui.plot(path("plot.png"), { series = { { name = "loss_d", x = x, y = yd }, { name = "loss_g", x = x, y = yg } },
      title = "losses", xlabel = "step", ylabel = "loss", width = 320, height = 200 })
    assert.same({ 3, 200, 320 }, img.shape)
    assert.equal("uint8", img.dtype)
    local back = gen.image.load(path("plot.png"), { uint8 = true })
    assert.same(img:totable(), back:totable())
    assert.is_true(count_color(back, { 31, 119, 180 }) > 100) -- the first series' blue
    assert.is_true(count_color(back, { 255, 127, 14 }) > 100) -- the second series' orange
    assert.is_true(count_color(back, { 0, 0, 0 }) > 500) -- axes, ticks and text
    assert.same({ { { 255 } }, { { 255 } }, { { 255 } } }, back:narrow(2, 1, 1):narrow(3, 1, 1):totable()) -- white background
  end)

  it("smooths noisy curves, skips non-finite values and validates", function()
    local y = {}
    for i = 1, 200 do y[i] = (i % 2 == 0) and 1 or 0 end
    y[100] = 0 / 0
    local img = gen.ui.plot(nil, { series = { { y = y } }, smooth = 0.9, width = 200, height = 120 })
    assert.same({ 3, 120, 200 }, img.shape)
    assert.is_true(count_color(img, { 31, 119, 180 }) > 50)
    assert.is_true(count_color(img, { (31 + 765) // 4, (119 + 765) // 4, (180 + 765) // 4 }) > 50) -- the faded raw values
    assert.has_error(function() gen.ui.plot(path("x.png"), {}) end)
    assert.has_error(function() gen.ui.plot(path("x.png"), { series = { { x = { 1 }, y = { 1, 2 } } } }) end,
      "gen.ui.plot: series 1 has 1 x values for 2 y values")
    assert.has_error(function() gen.ui.plot(path("x.png"), { series = { { y = { 1 } } }, width = 10 }) end)
  end)
end)
