/*
 * elementwise.h — the raw loops of the broadcasting binary ops (arithmetic and comparisons).
 *
 * Pointers and element strides only; ops_arith.c walks tensors with them (gen_binary_raw and
 * friends), and builds the differentiable ops on top.
 */
#ifndef GEN_KERNELS_ELEMENTWISE_H
#define GEN_KERNELS_ELEMENTWISE_H

#include <math.h>
#include <stdint.h>

typedef enum {
  GEN_BIN_ADD,
  GEN_BIN_SUB,
  GEN_BIN_MUL,
  GEN_BIN_DIV,
  GEN_BIN_POW,
  GEN_BIN_MAXIMUM,
  GEN_BIN_MINIMUM,
  GEN_BIN_EQ, /* comparisons give uint8 masks (1 = true) */
  GEN_BIN_NE,
  GEN_BIN_LT,
  GEN_BIN_LE,
  GEN_BIN_GT,
  GEN_BIN_GE,
  GEN_BIN_COUNT
} gen_binop;

/* x op y in double: every dtype but float32 computes through it (exact for float64, uint8, and
 * int64 values up to 2^53); comparisons give 0 or 1. */
static inline double gen_binop_f64(gen_binop op, double x, double y) {
  switch (op) {
  case GEN_BIN_ADD: return x + y;
  case GEN_BIN_SUB: return x - y;
  case GEN_BIN_MUL: return x * y;
  case GEN_BIN_DIV: return x / y;
  case GEN_BIN_POW: return pow(x, y);
  case GEN_BIN_MAXIMUM: return (x > y || x != x) ? x : y;
  case GEN_BIN_MINIMUM: return (x < y || x != x) ? x : y;
  case GEN_BIN_EQ: return x == y;
  case GEN_BIN_NE: return x != y;
  case GEN_BIN_LT: return x < y;
  case GEN_BIN_LE: return x <= y;
  case GEN_BIN_GT: return x > y;
  case GEN_BIN_GE: return x >= y;
  default: return 0;
  }
}

/* o[i*so] = a[i*sa] op b[i*sb] for i < n, in float32 (strides of 1 or 0 get vectorized loops) */
void gen_binary_row_f32(float *o, const float *a, const float *b, gen_binop op, int64_t n, int64_t so, int64_t sa, int64_t sb);
/* o = x * alpha + y * beta over n contiguous floats */
void gen_axpby_f32(float *o, const float *x, const float *y, float alpha, float beta, int64_t n);

#endif
