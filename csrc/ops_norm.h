/* ops_norm.h — normalization layers and dropout (ops_norm.c). w and b may be NULL. */
#ifndef GEN_OPS_NORM_H
#define GEN_OPS_NORM_H

#include "gen.h"

/* x {N, C, ...}; training: batch statistics, and running_mean/var (if given) updated in place
 * with momentum (unbiased variance, as PyTorch); eval: the running statistics. */
gen_tensor *gen_batch_norm(gen_tensor *x, gen_tensor *running_mean, gen_tensor *running_var, gen_tensor *w, gen_tensor *b,
                           bool training, double momentum, double eps);
/* x {N, C, ...}, groups dividing C; w, b {C} */
gen_tensor *gen_group_norm(gen_tensor *x, int64_t groups, gen_tensor *w, gen_tensor *b, double eps);
/* normalizes over the last nd dims (which must equal shape); w, b of that shape */
gen_tensor *gen_layer_norm(gen_tensor *x, int nd, const int64_t *shape, gen_tensor *w, gen_tensor *b, double eps);
/* inverted dropout: zero with probability p, scale the rest by 1/(1-p) */
gen_tensor *gen_dropout(gen_tensor *x, double p, bool training, gen_generator *g);

#endif
