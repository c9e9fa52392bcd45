/* ops_likelihood.h — per-element likelihoods of 8-bit data (ops_likelihood.c). */
#ifndef GEN_OPS_LIKELIHOOD_H
#define GEN_OPS_LIKELIHOOD_H

#include "gen.h"

/* log P(x) of N(mean, exp(2 log_scale)) integrated over x's bin, for x on the 256 levels of [-1, 1]
 * (bins of width 2/255 centred on them; the first and last reach to -inf and +inf). Same-shaped float
 * tensors; the result has mean's dtype. Differentiable in mean and log_scale (and in x, as
 * -d/dmean: x is usually data). */
gen_tensor *gen_discretized_gaussian_log_likelihood(gen_tensor *x, gen_tensor *mean, gen_tensor *log_scale);

#endif
