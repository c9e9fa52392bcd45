/* ops_linalg.h — linear algebra of small square matrices, batched over leading dimensions, float32
 * and float64, differentiable (ops_linalg.c): LU with partial pivoting, log |det|, inverse,
 * triangular solves. gen.linalg (lua/gen/linalg.lua) builds the public functions on these. */
#ifndef GEN_OPS_LINALG_H
#define GEN_OPS_LINALG_H

#include "gen.h"

/* P^T A = L U for every matrix A of a [..., n, n]: returns L and U packed in one tensor shaped like
 * a (L strictly below the diagonal, unit diagonal implied; U on and above it), differentiable.
 * *pivots (int64 [..., n], 1-based, LAPACK's convention: row i was swapped with row pivots[i] at
 * step i) and *perm (the permutation matrix P, a's dtype, [..., n, n]) are not. A singular A
 * factors without error (a zero on U's diagonal). */
gen_tensor *gen_lu_factor(gen_tensor *a, gen_tensor **pivots, gen_tensor **perm);

/* log |det A| for every matrix of a [..., n, n] (shape [...]), differentiable, and *sign (the sign
 * of det A: +1, -1, or 0 with log |det A| = -inf for a singular A, as in PyTorch). */
gen_tensor *gen_slogdet(gen_tensor *a, gen_tensor **sign);

/* A^-1 for every matrix of a [..., n, n]; fails, naming the matrix, when one is singular. */
gen_tensor *gen_inverse(gen_tensor *a);

/* X = A^-1 B for A [..., n, n] triangular (the upper or lower triangle of a is read; with
 * unitriangular its diagonal is taken as ones) and B [..., n, k] with the same batch shape. */
gen_tensor *gen_solve_triangular(gen_tensor *a, gen_tensor *b, bool upper, bool unitriangular);

#endif
