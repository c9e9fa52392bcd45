-- The meta-test: every differentiable op in csrc/ops.h must have had its backward run by a
-- gradient check somewhere in the suite. Busted runs spec files in sorted order, so this file
-- ("zz_") runs last and sees the counters of the whole run. Run alone, it is skipped.
local gen = require "gen"

describe("gradient-check coverage", function()
  it("ran the backward of every op", function()
    local counts = gen.core.backward_counts()
    local ran_any, missing = false, {}
    for name, n in pairs(counts) do
      if n > 0 then ran_any = true else missing[#missing + 1] = name end
    end
    if not ran_any then
      pending("run with the whole suite")
      return
    end
    table.sort(missing)
    assert.are.same({}, missing, "ops with no gradient check: " .. table.concat(missing, ", "))
  end)
end)
