/* ops_linear.h — the affine layer y = x w^T + b (ops_linear.c). */
#ifndef GEN_OPS_LINEAR_H
#define GEN_OPS_LINEAR_H

#include "gen.h"

/* x {..., in}, w {out, in}, b {out} or NULL -> {..., out} */
gen_tensor *gen_linear(gen_tensor *x, gen_tensor *w, gen_tensor *b);

#endif
