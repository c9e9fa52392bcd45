-- Runs a computation at 1 and at 2 threads (restoring the caller's setting) and compares: gen's
-- results must not depend on the thread count. `require "support.threads"`.
local gen = require "gen"
local assert = require "luassert"

local M = {}

--- The packed results of run() at 1 thread and at 2 threads.
function M.at_1_and_2(run)
  local saved = gen.get_num_threads()
  gen.set_num_threads(1)
  local one = table.pack(run())
  gen.set_num_threads(2)
  local two = table.pack(run())
  gen.set_num_threads(saved)
  return one, two
end

--- Asserts that every result of run() (tensors, numbers, or lists of them) is bitwise the same at
-- 1 and 2 threads.
function M.assert_same(run)
  local one, two = M.at_1_and_2(run)
  assert.equal(one.n, two.n)
  local function same(a, b, where)
    if gen.is_tensor(a) then
      assert.same(a.shape, b.shape, where)
      assert.equal(0, (a:double() - b:double()):abs():max():item(), where .. " differs")
    elseif type(a) == "table" then
      for i = 1, math.max(#a, #b) do same(a[i], b[i], where .. "[" .. i .. "]") end
    else
      assert.equal(a, b, where .. " differs")
    end
  end
  for i = 1, one.n do same(one[i], two[i], "result " .. i) end
end

return M
