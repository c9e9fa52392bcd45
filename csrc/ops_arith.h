/* ops_arith.h — broadcasting arithmetic and comparisons (ops_arith.c): the raw tensor-level
 * functions (no autograd; backward code builds on them) and the differentiable ops. */
#ifndef GEN_OPS_ARITH_H
#define GEN_OPS_ARITH_H

#include "gen.h"
#include "kernels/elementwise.h"

/* ---- raw: no autograd. float32 runs in float32 (vectorized rows); every other dtype computes
 * through double, which is exact for float64, uint8, and int64 values up to 2^53. ---- */

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

/* ---- differentiable ---- */
gen_tensor *gen_add(gen_tensor *a, gen_tensor *b);
gen_tensor *gen_sub(gen_tensor *a, gen_tensor *b);
gen_tensor *gen_mul(gen_tensor *a, gen_tensor *b);
gen_tensor *gen_div(gen_tensor *a, gen_tensor *b);
gen_tensor *gen_pow(gen_tensor *a, gen_tensor *b);
gen_tensor *gen_neg(gen_tensor *a);
/* Any binop as a differentiable op when it is one of the above, else the raw kernel (comparisons). */
gen_tensor *gen_binary(gen_binop op, gen_tensor *a, gen_tensor *b);
/* Differentiable a * s and a + s for a number s (what create_graph backwards are built from). */
gen_tensor *gen_scale(gen_tensor *a, double s);
gen_tensor *gen_add_scalar(gen_tensor *a, double s);
/* In place: a = a op b (b broadcast to a's shape; the result dtype must be a's). */
int gen_binary_(gen_binop op, gen_tensor *a, gen_tensor *b);

#endif
