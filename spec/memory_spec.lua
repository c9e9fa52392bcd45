-- A training-like loop must hold flat memory with no collectgarbage() in user code.
local gen = require "gen"

local rss_kb = require("support.proc").rss_kb

describe("memory", function()
  it("stays flat over thousands of autograd steps", function()
    local g = gen.Generator(0)
    local w1 = (gen.randn(64, 256, { generator = g }) * 0.05):requires_grad_()
    local w2 = (gen.randn(256, 10, { generator = g }) * 0.05):requires_grad_()
    local x = gen.randn(128, 64, { generator = g })
    local function step()
      local h = gen.matmul(x, w1)
      local y = gen.matmul(h * h, w2)
      local loss = (y * y):mean()
      loss:backward()
      gen.no_grad(function()
        w1:sub_(w1.grad * 1e-3)
        w2:sub_(w2.grad * 1e-3)
      end)
      w1.grad, w2.grad = nil, nil
      return loss:item()
    end
    for _ = 1, 300 do step() end
    local live0, rss0 = gen.memory().live, rss_kb()
    for _ = 1, 2000 do step() end
    local live1, rss1 = gen.memory().live, rss_kb()
    -- each step allocates ~0.6 MB of tensors: 2000 steps would be ~1.2 GB if nothing were freed
    assert.is_true(live1 - live0 < 80 * 1024 * 1024, "live tensor bytes grew by " .. (live1 - live0))
    assert.is_true(rss1 - rss0 < 100 * 1024, "RSS grew by " .. (rss1 - rss0) .. " kB")
  end)

  it("reports live and peak bytes", function()
    -- collect first: otherwise the collection the new tensor's allocation may trigger frees
    -- earlier garbage, and live bytes can drop while this tensor adds 4 MB
    collectgarbage()
    local before = gen.memory(true)
    local t = gen.zeros(1024, 1024) -- luacheck: ignore (held live while memory() is read)
    local m = gen.memory()
    assert.is_true(m.live - before.live >= 4 * 1024 * 1024)
    assert.is_true(m.peak >= m.live)
    t = nil
  end)
end)
