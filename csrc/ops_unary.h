/* ops_unary.h — elementwise math and activations, differentiable (ops_unary.c). */
#ifndef GEN_OPS_UNARY_H
#define GEN_OPS_UNARY_H

#include "gen.h"

typedef enum {
  GEN_UN_EXP,
  GEN_UN_LOG,
  GEN_UN_SQRT,
  GEN_UN_RSQRT,
  GEN_UN_ABS,
  GEN_UN_TANH,
  GEN_UN_SIGMOID,
  GEN_UN_SIN,
  GEN_UN_COS,
  GEN_UN_CLAMP,
  GEN_UN_RELU,
  GEN_UN_LEAKY_RELU,
  GEN_UN_SILU,
  GEN_UN_GELU,
  GEN_UN_GELU_TANH,
  GEN_UN_SOFTPLUS,
  GEN_UN_ELU,
  GEN_UN_ERF,
  GEN_UN_COUNT
} gen_unop;

/* p1, p2: clamp (lo, hi; NaN = unbounded), leaky_relu (slope), softplus (beta, threshold), elu (alpha) */
gen_tensor *gen_unary(gen_unop op, gen_tensor *a, double p1, double p2);
/* In place on a (float tensors; abs/clamp/relu also on integer ones). */
int gen_unary_(gen_unop op, gen_tensor *a, double p1, double p2);

/* where(mask, a, b): broadcasting; mask uint8 (nonzero = take a). */
gen_tensor *gen_where(gen_tensor *mask, gen_tensor *a, gen_tensor *b);
/* x with value where mask is set (mask broadcasts to x's shape). */
gen_tensor *gen_masked_fill(gen_tensor *x, gen_tensor *mask, double value);

#endif
