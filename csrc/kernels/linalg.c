/*
 * linalg.c — the loops under gen.linalg: Doolittle LU with partial pivoting (LAPACK's dgetf2,
 * right-looking, unblocked) and forward / back substitution. The matrices of flows (1x1
 * convolutions over tens of channels) are far below the size where blocking pays, so these stay the
 * textbook loops, in double precision, in a fixed order (results do not depend on threads).
 *
 * Legend: A [n, n] row-major, A[i, j] = a[i * n + j]; B [n, k] right-hand sides.
 */
#include "linalg.h"

#include <math.h>

int64_t gen_lu_f64(double *a, int64_t *piv, int64_t n) {
  int64_t info = 0;
  for (int64_t j = 0; j < n; j++) {
    int64_t p = j;
    double best = fabs(a[j * n + j]);
    for (int64_t i = j + 1; i < n; i++)
      if (fabs(a[i * n + j]) > best) { /* strict: the first of equal magnitudes, as idamax */
        best = fabs(a[i * n + j]);
        p = i;
      }
    piv[j] = p;
    if (a[p * n + j] == 0) { /* a zero column below the diagonal: nothing to eliminate */
      if (!info) info = j + 1;
      continue;
    }
    if (p != j)
      for (int64_t c = 0; c < n; c++) {
        double t = a[j * n + c];
        a[j * n + c] = a[p * n + c];
        a[p * n + c] = t;
      }
    double inv = 1 / a[j * n + j];
    for (int64_t i = j + 1; i < n; i++) {
      double l = a[i * n + j] *= inv;
      if (l != 0)
        for (int64_t c = j + 1; c < n; c++) a[i * n + c] -= l * a[j * n + c];
    }
  }
  return info;
}

/* A[i, j] of op(A) */
static inline double at(const double *a, int64_t n, int64_t i, int64_t j, bool trans) {
  return trans ? a[j * n + i] : a[i * n + j];
}

/* row i of b minus sum over j in [lo, hi) of op(A)[i, j] * row j, then divided by the diagonal */
static void substitute(double *b, const double *a, int64_t n, int64_t k, int64_t i, int64_t lo, int64_t hi, bool unit,
                       bool trans) {
  double *bi = b + i * k;
  for (int64_t j = lo; j < hi; j++) {
    double aij = at(a, n, i, j, trans);
    if (aij != 0)
      for (int64_t c = 0; c < k; c++) bi[c] -= aij * b[j * k + c];
  }
  if (!unit) {
    double inv = 1 / a[i * n + i];
    for (int64_t c = 0; c < k; c++) bi[c] *= inv;
  }
}

void gen_trsm_f64(double *b, const double *a, int64_t n, int64_t k, bool upper, bool unit, bool trans) {
  if (upper == trans) /* op(A) is lower triangular: forward substitution */
    for (int64_t i = 0; i < n; i++) substitute(b, a, n, k, i, 0, i, unit, trans);
  else
    for (int64_t i = n - 1; i >= 0; i--) substitute(b, a, n, k, i, i + 1, n, unit, trans);
}

void gen_lu_permute_f64(double *b, const int64_t *piv, int64_t n, int64_t k, bool reverse) {
  for (int64_t s = 0; s < n; s++) {
    int64_t i = reverse ? n - 1 - s : s, p = piv[i];
    if (p == i) continue;
    for (int64_t c = 0; c < k; c++) {
      double t = b[i * k + c];
      b[i * k + c] = b[p * k + c];
      b[p * k + c] = t;
    }
  }
}

void gen_matmul_small_f64(double *out, const double *a, const double *b, int64_t n, int64_t k, int64_t m, bool ta, bool tb) {
  for (int64_t i = 0; i < n; i++)
    for (int64_t j = 0; j < m; j++) {
      double s = 0;
      for (int64_t p = 0; p < k; p++) s += (ta ? a[p * n + i] : a[i * k + p]) * (tb ? b[j * k + p] : b[p * m + j]);
      out[i * m + j] = s;
    }
}
