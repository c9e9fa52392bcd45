/* elementwise.c — see elementwise.h. */
#include "elementwise.h"

#include "../gen.h"

/* The strides are usually 1 or 0, which the branches below specialize. */
void gen_binary_row_f32(float *o, const float *a, const float *b, gen_binop op, int64_t n, int64_t so, int64_t sa, int64_t sb) {
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

void gen_axpby_f32(float *o, const float *x, const float *y, float alpha, float beta, int64_t n) {
  if (n > GEN_PARALLEL_GRAIN) {
#pragma omp parallel for
    for (int64_t i = 0; i < n; i++) o[i] = x[i] * alpha + y[i] * beta;
  } else {
    for (int64_t i = 0; i < n; i++) o[i] = x[i] * alpha + y[i] * beta;
  }
}
