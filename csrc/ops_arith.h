/* ops_arith.h — differentiable broadcasting arithmetic (ops_arith.c). */
#ifndef GEN_OPS_ARITH_H
#define GEN_OPS_ARITH_H

#include "gen.h"
#include "kernels/elementwise.h"

gen_tensor *gen_add(gen_tensor *a, gen_tensor *b);
gen_tensor *gen_sub(gen_tensor *a, gen_tensor *b);
gen_tensor *gen_mul(gen_tensor *a, gen_tensor *b);
gen_tensor *gen_div(gen_tensor *a, gen_tensor *b);
gen_tensor *gen_pow(gen_tensor *a, gen_tensor *b);
gen_tensor *gen_neg(gen_tensor *a);
/* Any binop as a differentiable op when it is one of the above, else the raw kernel (comparisons). */
gen_tensor *gen_binary(gen_binop op, gen_tensor *a, gen_tensor *b);
/* In place: a = a op b (b broadcast to a's shape; the result dtype must be a's). */
int gen_binary_(gen_binop op, gen_tensor *a, gen_tensor *b);

#endif
