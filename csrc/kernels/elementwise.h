/*
 * elementwise.h — broadcasting binary kernels (arithmetic and comparisons) with dtype promotion.
 *
 * These are the raw kernels: no autograd. ops_arith.c builds the differentiable ops on them.
 * float32 runs in float32 (vectorized rows); every other dtype computes through double, which is
 * exact for float64, uint8, and int64 values up to 2^53.
 */
#ifndef GEN_KERNELS_ELEMENTWISE_H
#define GEN_KERNELS_ELEMENTWISE_H

#include "../gen.h"

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

/* dtype of a op b: comparisons give uint8; division of integers gives float32. */
gen_dtype gen_binop_result_dtype(gen_binop op, gen_dtype a, gen_dtype b);
/* New tensor of the broadcast shape. */
gen_tensor *gen_binary_raw(gen_binop op, gen_tensor *a, gen_tensor *b);
/* out = a op b where out already has the broadcast shape (out may be a itself: in place). */
int gen_binary_into(gen_binop op, gen_tensor *out, gen_tensor *a, gen_tensor *b);
/* dst += src (src broadcast to dst's shape); used by gradient accumulation. */
int gen_add_into(gen_tensor *dst, gen_tensor *src);
/* out = a * alpha + b * beta for same-shape tensors, a common backward building block. */
gen_tensor *gen_axpby_raw(gen_tensor *a, double alpha, gen_tensor *b, double beta);
/* New tensor a * s (s a number), any dtype. */
gen_tensor *gen_scale_raw(gen_tensor *a, double s);

#endif
