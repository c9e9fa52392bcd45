-- The meta-test: every differentiable op in csrc/ops.h must have had its backward run by a
-- gradient check somewhere in the suite, and, to second order, either its create_graph backward
-- run by gen.testing.gradgradcheck or be listed in spec/support/second_order.lua as raising
-- "create_graph is not supported through <op>" (spec/double_backward_spec.lua checks that each
-- listed op raises). Busted runs spec files in sorted order, so this file ("zz_") runs last and
-- sees the counters of the whole run. Run alone, it is skipped.
local gen = require "gen"
local unsupported = require "support.second_order"

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

  it("checked every op to second order, or lists it as unsupported", function()
    local counts = gen.core.graph_backward_counts()
    local ran_any, missing, stale = false, {}, {}
    for name, n in pairs(counts) do
      if n > 0 then ran_any = true end
      if n == 0 and not unsupported[name] then missing[#missing + 1] = name end
      if n > 0 and unsupported[name] then stale[#stale + 1] = name end
    end
    for name in pairs(unsupported) do
      if counts[name] == nil then stale[#stale + 1] = name .. " (no such op)" end
    end
    if not ran_any then
      pending("run with the whole suite")
      return
    end
    table.sort(missing)
    table.sort(stale)
    assert.are.same({}, missing, "ops with no second-order gradient check: " .. table.concat(missing, ", "))
    assert.are.same({}, stale, "ops listed as unsupported but checked to second order: " .. table.concat(stale, ", "))
  end)
end)
