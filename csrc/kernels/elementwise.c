/* elementwise.c — see elementwise.h. */
#include "elementwise.h"

#include "../gen.h"
#include "isa.h"

/* The strides are usually 1 or 0, which the branches below specialize. Every element is one IEEE
 * operation, so each ISA level's copy gives the same bits. */
GEN_ISA_BODY void binary_row_body(float *o, const float *a, const float *b, gen_binop op, int64_t n, int64_t so, int64_t sa,
                                  int64_t sb) {
  if (so == 1 && sa == 1 && sb == 1) {
    switch (op) {
    case GEN_BIN_ADD:
      for (int64_t i = 0; i < n; i++) o[i] = a[i] + b[i];
      return;
    case GEN_BIN_SUB:
      for (int64_t i = 0; i < n; i++) o[i] = a[i] - b[i];
      return;
    case GEN_BIN_MUL:
      for (int64_t i = 0; i < n; i++) o[i] = a[i] * b[i];
      return;
    case GEN_BIN_DIV:
      for (int64_t i = 0; i < n; i++) o[i] = a[i] / b[i];
      return;
    default: break;
    }
  } else if (so == 1 && sa == 1 && sb == 0) {
    const float y = b[0];
    switch (op) {
    case GEN_BIN_ADD:
      for (int64_t i = 0; i < n; i++) o[i] = a[i] + y;
      return;
    case GEN_BIN_SUB:
      for (int64_t i = 0; i < n; i++) o[i] = a[i] - y;
      return;
    case GEN_BIN_MUL:
      for (int64_t i = 0; i < n; i++) o[i] = a[i] * y;
      return;
    case GEN_BIN_DIV:
      for (int64_t i = 0; i < n; i++) o[i] = a[i] / y;
      return;
    default: break;
    }
  }
  switch (op) {
  case GEN_BIN_ADD:
    for (int64_t i = 0; i < n; i++) o[i * so] = a[i * sa] + b[i * sb];
    return;
  case GEN_BIN_SUB:
    for (int64_t i = 0; i < n; i++) o[i * so] = a[i * sa] - b[i * sb];
    return;
  case GEN_BIN_MUL:
    for (int64_t i = 0; i < n; i++) o[i * so] = a[i * sa] * b[i * sb];
    return;
  case GEN_BIN_DIV:
    for (int64_t i = 0; i < n; i++) o[i * so] = a[i * sa] / b[i * sb];
    return;
  case GEN_BIN_POW:
    for (int64_t i = 0; i < n; i++) o[i * so] = powf(a[i * sa], b[i * sb]);
    return;
  default:
    for (int64_t i = 0; i < n; i++) o[i * so] = (float)gen_binop_f64(op, a[i * sa], b[i * sb]);
  }
}

GEN_ISA_KERNEL(void, binary_row,
               (float *o, const float *a, const float *b, gen_binop op, int64_t n, int64_t so, int64_t sa, int64_t sb),
               (o, a, b, op, n, so, sa, sb))

void gen_binary_row_f32(float *o, const float *a, const float *b, gen_binop op, int64_t n, int64_t so, int64_t sa, int64_t sb) {
  binary_row(o, a, b, op, n, so, sa, sb);
}

/* no contraction into an FMA (ISO C mode): the same bits at every level */
GEN_ISA_BODY void axpby_range_body(float *o, const float *x, const float *y, float alpha, float beta, int64_t lo, int64_t hi) {
  for (int64_t i = lo; i < hi; i++) o[i] = x[i] * alpha + y[i] * beta;
}
GEN_ISA_KERNEL(void, axpby_range, (float *o, const float *x, const float *y, float alpha, float beta, int64_t lo, int64_t hi),
               (o, x, y, alpha, beta, lo, hi))

#define AXPBY_BLOCK 4096

void gen_axpby_f32(float *o, const float *x, const float *y, float alpha, float beta, int64_t n) {
  if (n > GEN_PARALLEL_GRAIN) {
    int64_t blocks = (n + AXPBY_BLOCK - 1) / AXPBY_BLOCK;
#pragma omp parallel for
    for (int64_t b = 0; b < blocks; b++)
      axpby_range(o, x, y, alpha, beta, b * AXPBY_BLOCK, b * AXPBY_BLOCK + AXPBY_BLOCK < n ? b * AXPBY_BLOCK + AXPBY_BLOCK : n);
  } else {
    axpby_range(o, x, y, alpha, beta, 0, n);
  }
}
