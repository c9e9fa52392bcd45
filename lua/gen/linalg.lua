--- gen.linalg: linear algebra of small square matrices with gradients, batched over leading
-- dimensions, float32 and float64 (computed in double precision; float32 results are rounded).
-- Names and conventions follow torch.linalg: slogdet returns (sign, log |det|), lu returns
-- (P, L, U) with A = P L U, pivots are 1-based as LAPACK's. The C ops are in csrc/ops_linalg.c;
-- their backward formulas are in its header comment and docs/derivations.md.
local gen = require "gen"
local core = gen.core

local M = {}

local function check_tensor(x, what, fname)
  if not gen.is_tensor(x) then
    error(string.format("gen.linalg.%s: %s must be a tensor, got %s", fname, what, type(x)), 3)
  end
end

local function shape_str(s) return "{" .. table.concat(s, ",") .. "}" end

-- 0/1 masks of a triangle of an n x n matrix: "strict_lower" (i > j) or "upper" (i <= j)
local function triangle_mask(n, dtype, which)
  local rows = gen.arange(1, n + 1):view(n, 1)
  local cols = gen.arange(1, n + 1):view(1, n)
  local m = which == "strict_lower" and rows:gt(cols) or rows:le(cols)
  return m:type(dtype)
end

--- lu_factor(A) -> LU, pivots: the LU factorization with partial pivoting of A [..., n, n],
-- P^T A = L U, packed in one tensor (L below the diagonal, its unit diagonal implied; U on and
-- above), and the pivots [..., n] (int64, 1-based: row i was swapped with row pivots[i]).
-- Differentiable in LU. A singular matrix factors without error (a zero on U's diagonal).
function M.lu_factor(A)
  check_tensor(A, "A", "lu_factor")
  local lu, pivots = core.linalg_lu_factor(A)
  return lu, pivots
end

--- lu(A) -> P, L, U with A = P L U: P a permutation matrix, L unit lower triangular, U upper
-- triangular, all [..., n, n] (square matrices only). L and U are differentiable.
function M.lu(A)
  check_tensor(A, "A", "lu")
  local lu, _, P = core.linalg_lu_factor(A)
  local n = A:size(-1)
  local L = lu * triangle_mask(n, A.dtype, "strict_lower") + gen.eye(n, A.dtype)
  local U = lu * triangle_mask(n, A.dtype, "upper")
  return P, L, U
end

--- slogdet(A) -> sign, logabsdet: det A = sign * exp(logabsdet) for every matrix of A [..., n, n]
-- (both shaped [...]); a singular matrix gives sign 0 and logabsdet -inf. logabsdet is
-- differentiable (its gradient is A^-T, undefined for a singular A).
M.slogdet = core.linalg_slogdet

--- det(A) -> det A for every matrix of A [..., n, n], as sign * exp(logabsdet).
function M.det(A)
  check_tensor(A, "A", "det")
  local sign, logabs = core.linalg_slogdet(A)
  return sign * gen.exp(logabs)
end

--- inverse(A) -> A^-1 for every matrix of A [..., n, n]; raises an error naming the matrix when
-- one is singular. Differentiable.
M.inverse = core.linalg_inverse
M.inv = M.inverse

--- solve_triangular(A, B, {upper = bool [, left = true] [, unitriangular = false]}) -> X with
-- A X = B (left) or X A = B (left = false), A [..., n, n] triangular (only the triangle named by
-- upper is read; unitriangular takes its diagonal as ones), B [..., n, k] (left) or [..., k, n];
-- batch dimensions broadcast. Differentiable in A and B.
function M.solve_triangular(A, B, opts)
  check_tensor(A, "A", "solve_triangular")
  check_tensor(B, "B", "solve_triangular")
  if type(opts) ~= "table" or type(opts.upper) ~= "boolean" then
    error("gen.linalg.solve_triangular: options {upper = true | false} are required", 2)
  end
  local left = opts.left == nil and true or opts.left
  local unit = opts.unitriangular or false
  if type(left) ~= "boolean" or type(unit) ~= "boolean" then
    error("gen.linalg.solve_triangular: options left and unitriangular must be booleans", 2)
  end
  if A:dim() < 2 or B:dim() < 2 then
    error(string.format("gen.linalg.solve_triangular: A and B must have at least 2 dimensions, got %s and %s",
      shape_str(A.shape), shape_str(B.shape)), 2)
  end
  -- broadcast the batch dimensions
  local sa, sb = A.shape, B.shape
  local na, nb = #sa - 2, #sb - 2
  local nbatch = math.max(na, nb)
  local batch = {}
  for i = 1, nbatch do
    local da, db = sa[i - nbatch + na] or 1, sb[i - nbatch + nb] or 1
    if da ~= db and da ~= 1 and db ~= 1 then
      error(string.format("gen.linalg.solve_triangular: batch dimensions of A %s and B %s do not broadcast",
        shape_str(sa), shape_str(sb)), 2)
    end
    batch[i] = math.max(da, db)
  end
  local function expand(t, s)
    local full = { table.unpack(batch) }
    full[#full + 1], full[#full + 2] = s[#s - 1], s[#s]
    if #s == #full then
      local same = true
      for i = 1, #s do same = same and s[i] == full[i] end
      if same then return t end
    end
    return t:expand(full)
  end
  A, B = expand(A, sa), expand(B, sb)
  if left then return core.linalg_solve_triangular(A, B, opts.upper, unit) end
  -- X A = B  <=>  A^T X^T = B^T, and A^T has the other triangle
  local Xt = core.linalg_solve_triangular(A:transpose(-2, -1), B:transpose(-2, -1), not opts.upper, unit)
  return Xt:transpose(-2, -1)
end

return M
