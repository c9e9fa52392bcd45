-- The fixture harness every spec shares: reference values (PyTorch's, from the generators in
-- spec/fixtures/make_*.py, or closed forms), compared with gen's results under a tolerance, and a
-- failure message that names the worst element. `require "support.fixtures"`.
--
-- Three measures of the difference between got and want (gen tensors, or fixture tables
-- {data = {...}, shape = {...}}), all computed in float64:
--   rel     each element's difference relative to its reference's magnitude (at least 1)
--   scaled  the largest difference relative to the reference's largest magnitude (at least 1)
--   abs     the largest absolute difference
local gen = require "gen"
local assert = require "luassert" -- busted gives specs this one; a required module must ask for it

local M = {}

--- A fixture table {data = {...}, shape = {...}} as a gen tensor of the given dtype.
function M.tensor(t, dtype) return gen.tensor(t.data, dtype):view(t.shape) end

local function as_double(t)
  if gen.is_tensor(t) then return t:double() end
  if t.data then return M.tensor(t, "float64") end
  return gen.tensor(t, "float64") -- a plain list of numbers
end

--- The upstream gradient the fixture generators use for an output: ((i * 37) % 17 - 8) / 8 at
-- flat index i, or 1 for a 0-d output (a reduced loss).
function M.upstream(out)
  if out:dim() == 0 then return gen.ones_like(out) end
  local v = {}
  for i = 0, out:numel() - 1 do v[i + 1] = ((i * 37) % 17 - 8) / 8 end
  return gen.tensor(v, out.dtype):view(out.shape)
end

-- each measure: per-element errors (to find the worst one) and the overall error
local measures = {
  rel = function(d, w)
    local e = d / w:abs():clamp(1, math.huge)
    return e, e:max():item()
  end,
  scaled = function(d, w) return d, d:max():item() / math.max(1, w:abs():max():item()) end,
  abs = function(d) return d, d:max():item() end,
}

--- The error of got against want under a measure ("rel" by default), and the per-element errors.
function M.err(got, want, measure)
  local g, w = as_double(got), as_double(want)
  assert.same(w.shape, g.shape)
  local f = measures[measure or "rel"] or error("unknown measure " .. tostring(measure), 2)
  local per, e = f((g - w):abs(), w)
  return e, per
end

-- "at element {2,1,3} (got 0.51, want 0.5)" for the largest per-element error
local function worst(got, want, per)
  local g, w = as_double(got):reshape(-1), as_double(want):reshape(-1)
  if g:numel() == 0 then return "" end
  local flat = per:reshape(-1):argmax():item() -- 1-based
  local idx, rest, shape = {}, flat - 1, per.shape
  for d = #shape, 1, -1 do
    idx[d] = rest % shape[d] + 1
    rest = rest // shape[d]
  end
  return string.format(" at element {%s} (got %.17g, want %.17g)", table.concat(idx, ","), g:totable()[flat], w:totable()[flat])
end

--- Asserts that got matches want: err < tol, or err <= tol with opts.inclusive (busted's
-- assert.near). opts.measure picks the measure ("rel" by default). On failure the message is
-- "<label>: differs by <err> (tolerance <tol>) at element {...} (got ..., want ...)".
function M.assert_close(got, want, tol, label, opts)
  opts = opts or {}
  local e, per = M.err(got, want, opts.measure)
  local ok = opts.inclusive and e <= tol or e < tol
  if not ok then -- the message only on failure: finding the worst element walks the tensors
    assert.is_true(false, string.format("%s: differs by %.3g (tolerance %.3g)%s", label, e, tol, worst(got, want, per)))
  end
end

--- The names of a fixture module's cases, sorted (so the specs run in a fixed order).
function M.names(cases)
  local names = {}
  for name in pairs(cases) do names[#names + 1] = name end
  table.sort(names)
  return names
end

--- One test per fixture case, in name order (it: busted's `it`, which lives in the spec file's
-- environment): check(name, case, dtype, tolerance) in float64 to 1e-7 (the fixtures keep 9
-- digits) and in float32 to float32_tolerance (1e-4 unless given).
function M.each_case(it, cases, check, float32_tolerance)
  for _, name in ipairs(M.names(cases)) do
    it(name .. " (float64 and float32)", function()
      check(name, cases[name], "float64", 1e-7)
      check(name, cases[name], "float32", float32_tolerance or 1e-4)
    end)
  end
end

return M
