-- gen.linalg: values against torch.linalg (spec/fixtures/make_linalg_fixtures.py), gradients,
-- batching, singular matrices and bad inputs.
local gen = require "gen"
local ref = require "fixtures.linalg_ref"
local fixtures = require "support.fixtures"
local gradcheck = gen.testing.gradcheck
local linalg = gen.linalg

local function close(got, want, tol, label) fixtures.assert_close(got, want, tol, label, { inclusive = true }) end

describe("gen.linalg", function()
  for _, name in ipairs { "a3", "batch", "negdet" } do
    it("matches torch.linalg on " .. name .. " (float64 and float32)", function()
      local case = ref[name]
      for _, dtype in ipairs { "float64", "float32" } do
        local tol = dtype == "float64" and 1e-12 or 2e-5
        local A = fixtures.tensor(case.a, dtype)
        local sign, logabs = linalg.slogdet(A)
        close(sign, case.sign, 0, "sign")
        close(logabs, case.logabsdet, tol, "logabsdet")
        close(linalg.inverse(A), case.inverse, tol * 10, "inverse")
        local P, L, U = linalg.lu(A)
        close(P, case.P, 0, "P")
        close(L, case.L, tol, "L")
        close(U, case.U, tol, "U")
        local LU, pivots = linalg.lu_factor(A)
        close(LU, case.LU, tol, "LU")
        assert.same(fixtures.tensor(case.pivots, "int64"):totable(), pivots:totable())
        assert.equal(dtype, L.dtype)
      end
    end)

    it("gives torch.linalg's gradients of lu and inverse on " .. name, function()
      local case = ref[name]
      local A = fixtures.tensor(case.a, "float64"):requires_grad_()
      local _, L, U = linalg.lu(A)
      local loss = (L * fixtures.upstream(L)):sum() + (U * fixtures.upstream(U)):sum()
      loss:backward()
      close(A.grad, case.lu_grad, 1e-10, "lu gradient")
      local B = fixtures.tensor(case.a, "float64"):requires_grad_()
      local inv = linalg.inverse(B)
      local loss2 = (inv * fixtures.upstream(inv)):sum()
      loss2:backward()
      close(B.grad, case.inverse_grad, 1e-10, "inverse gradient")
    end)
  end

  it("solves triangular systems as torch.linalg (batched, left and right, unit diagonal)", function()
    local A, B = fixtures.tensor(ref.batch.a, "float64"), fixtures.tensor(ref.rhs, "float64")
    close(linalg.solve_triangular(A, B, { upper = true }), ref.solve_upper, 1e-10, "upper")
    close(linalg.solve_triangular(A, B, { upper = false }), ref.solve_lower, 1e-10, "lower")
    close(linalg.solve_triangular(A, B, { upper = false, unitriangular = true }), ref.solve_lower_unit, 1e-10, "unit")
    close(linalg.solve_triangular(A, B:transpose(-2, -1), { upper = true, left = false }), ref.solve_upper_right, 1e-10,
      "right")
    close(linalg.solve_triangular(A:float(), B:float(), { upper = true }), ref.solve_upper, 1e-3, "float32")
    -- one matrix broadcast against a batch of right-hand sides
    local one = A:select(1, 2):select(1, 3)
    local X = linalg.solve_triangular(one, B, { upper = true })
    close(X, linalg.solve_triangular(one:expand(A.shape):contiguous(), B, { upper = true }), 0, "broadcast")
    close(X:select(1, 2):select(1, 3), fixtures.tensor(ref.solve_upper, "float64"):select(1, 2):select(1, 3), 1e-10,
      "broadcast value")
  end)

  it("gives sign 0 and log |det| = -inf for a singular matrix, and refuses to invert it", function()
    local A = fixtures.tensor(ref.singular.a, "float64")
    local sign, logabs = linalg.slogdet(A)
    assert.equal(0, sign:item())
    assert.equal(-math.huge, logabs:item())
    assert.equal(0, linalg.det(A):item())
    assert.has_error(function() linalg.inverse(A) end,
      "gen.linalg.inverse: the matrix is singular (U[2,2] = 0 in its LU factorization), it has no inverse")
    local batch = gen.stack({ gen.eye(2, "float64"), A })
    assert.has_error(function() linalg.inverse(batch) end,
      "gen.linalg.inverse: matrix 2 of the batch is singular (U[2,2] = 0 in its LU factorization), it has no inverse")
    local s2, l2 = linalg.slogdet(batch)
    assert.same({ 1, 0 }, s2:totable())
    assert.same({ 0, -math.huge }, l2:totable())
    -- the LU factorization itself exists, with the zero on U's diagonal
    local P, L, U = linalg.lu(A)
    close(P:matmul(L):matmul(U), A, 1e-15, "P L U")
    assert.equal(0, U[2][2]:item())
  end)

  it("reconstructs A = P L U and A A^-1 = I on batches of every size", function()
    local g = gen.Generator(5)
    for _, shape in ipairs { { 1, 1 }, { 5, 5 }, { 3, 2, 6, 6 } } do
      local A = gen.randn(shape, { dtype = "float64", generator = g })
      local P, L, U = linalg.lu(A)
      close(P:matmul(L):matmul(U), A, 1e-12, "P L U")
      local n = shape[#shape]
      close(A:matmul(linalg.inverse(A)), gen.eye(n, "float64"):expand(shape), 1e-10, "A A^-1")
      local sign, logabs = linalg.slogdet(A)
      close(linalg.det(A), sign * logabs:exp(), 1e-12, "det")
    end
    -- empty matrices: det 1, as in PyTorch
    local sign, logabs = linalg.slogdet(gen.zeros({ 2, 0, 0 }, "float64"))
    assert.same({ 1, 1 }, sign:totable())
    assert.same({ 0, 0 }, logabs:totable())
  end)

  it("gradchecks slogdet, inverse, lu and solve_triangular (float64, batched)", function()
    local g = gen.Generator(7)
    local A = gen.randn({ 2, 3, 3 }, { dtype = "float64", generator = g }) + gen.eye(3, "float64") * 2
    local B = gen.randn({ 2, 3, 2 }, { dtype = "float64", generator = g })
    assert.is_true(gradcheck(function(a) return select(2, linalg.slogdet(a)) end, { A }))
    assert.is_true(gradcheck(function(a) return linalg.det(a) end, { A }))
    assert.is_true(gradcheck(function(a) return linalg.inverse(a) end, { A }))
    assert.is_true(gradcheck(function(a)
      local _, L, U = linalg.lu(a)
      return gen.cat({ L, U }, 2)
    end, { A }))
    assert.is_true(gradcheck(function(a) return (linalg.lu_factor(a)) end, { A }))
    for _, o in ipairs { { upper = true }, { upper = false }, { upper = true, unitriangular = true },
      { upper = false, left = false } } do
      local rhs = o.left == false and B:transpose(-2, -1) or B
      assert.is_true(gradcheck(function(a, b) return linalg.solve_triangular(a, b, o) end, { A, rhs }))
    end
  end)

  it("refuses the gradient of log |det| at a singular matrix", function()
    local A = fixtures.tensor(ref.singular.a, "float64"):requires_grad_()
    local _, logabs = linalg.slogdet(A)
    assert.has_error(function() logabs:backward() end)
  end)

  it("rejects bad inputs with the function's name", function()
    assert.has_error(function() linalg.slogdet(gen.zeros(2, 3)) end,
      "gen.linalg.slogdet: needs a square matrix or a batch of them {..., n, n}, got {2,3}")
    assert.has_error(function() linalg.inverse(gen.zeros(3)) end,
      "gen.linalg.inverse: needs a square matrix or a batch of them {..., n, n}, got {3}")
    assert.has_error(function() linalg.lu(gen.zeros({ 2, 2 }, "int64")) end,
      "gen.linalg.lu_factor: needs a float32 or float64 tensor, got int64")
    assert.has_error(function() linalg.slogdet(3) end)
    assert.has_error(function() linalg.lu("x") end, "gen.linalg.lu: A must be a tensor, got string")
    local A = gen.eye(3)
    assert.has_error(function() linalg.solve_triangular(A, gen.ones(3, 2)) end,
      "gen.linalg.solve_triangular: options {upper = true | false} are required")
    assert.has_error(function() linalg.solve_triangular(A, gen.ones(4, 2), { upper = true }) end,
      "gen.linalg.solve_triangular: A {3,3} and B {4,2} do not align (B must be {..., 3, k} with A's batch dimensions)")
    assert.has_error(function() linalg.solve_triangular(A, gen.ones(3), { upper = true }) end,
      "gen.linalg.solve_triangular: A and B must have at least 2 dimensions, got {3,3} and {3}")
    assert.has_error(function() linalg.solve_triangular(A, gen.ones({ 3, 2 }, "float64"), { upper = true }) end,
      "gen.linalg.solve_triangular: A and B must have the same dtype, got float32 and float64")
    assert.has_error(function() linalg.solve_triangular(gen.ones(2, 3, 3), gen.ones(4, 3, 1), { upper = true }) end,
      "gen.linalg.solve_triangular: batch dimensions of A {2,3,3} and B {4,3,1} do not broadcast")
    assert.has_error(function() linalg.solve_triangular(A, gen.ones(3, 2), { upper = "yes" }) end)
  end)
end)
