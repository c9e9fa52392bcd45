/* linalg.h — LU factorization with partial pivoting and triangular solves on small dense row-major
 * double matrices (linalg.c), for ops_linalg.c. Arguments: outputs (or in-place operands) first,
 * then inputs, then sizes. No allocation: scratch comes from the caller. */
#ifndef GEN_KERNELS_LINALG_H
#define GEN_KERNELS_LINALG_H

#include <stdbool.h>
#include <stdint.h>

/* a [n, n] is overwritten by L (strictly below the diagonal, unit diagonal implied) and U (on and
 * above it) with P^T A = L U; piv[i] [n] is the 0-based row swapped with row i at step i (LAPACK's
 * getrf convention, 0-based). The pivot is the first entry of largest magnitude in its column, as
 * in LAPACK. Returns 0, or k + 1 for the first k with U[k, k] == 0 (A singular; the factorization
 * is still completed, as getrf does). */
int64_t gen_lu_f64(double *a, int64_t *piv, int64_t n);

/* b [n, k] := op(A)^-1 b, with A [n, n] triangular (upper or lower; a unit diagonal when unit, its
 * stored diagonal then unread) and op(A) = A or A^T (trans). */
void gen_trsm_f64(double *b, const double *a, int64_t n, int64_t k, bool upper, bool unit, bool trans);

/* b [n, k]: rows swapped by the pivots, in order (b := P^T b), or in reverse order (b := P b). */
void gen_lu_permute_f64(double *b, const int64_t *piv, int64_t n, int64_t k, bool reverse);

/* out [n, m] := a [n, k] @ b [k, m], with a and b optionally read transposed (ta: a is stored
 * [k, n]; tb: b is stored [m, k]). Naive loops in a fixed order, for matrices of tens of rows. */
void gen_matmul_small_f64(double *out, const double *a, const double *b, int64_t n, int64_t k, int64_t m, bool ta, bool tb);

#endif
