/* ops_loss.h — losses (ops_loss.c). */
#ifndef GEN_OPS_LOSS_H
#define GEN_OPS_LOSS_H

#include "gen.h"

typedef enum { GEN_REDUCE_MEAN, GEN_REDUCE_SUM, GEN_REDUCE_NONE } gen_reduction;

/* Pointwise losses of an input and a same-shaped target. */
gen_tensor *gen_mse_loss(gen_tensor *x, gen_tensor *y, gen_reduction r);
gen_tensor *gen_l1_loss(gen_tensor *x, gen_tensor *y, gen_reduction r);
gen_tensor *gen_bce_with_logits(gen_tensor *x, gen_tensor *y, gen_reduction r);
gen_tensor *gen_binary_cross_entropy(gen_tensor *p, gen_tensor *y, gen_reduction r);
/* logits {N, C, ...}, targets int64 {N, ...} with 1-based classes */
gen_tensor *gen_cross_entropy(gen_tensor *logits, gen_tensor *targets, gen_reduction r);
gen_tensor *gen_nll_loss(gen_tensor *logp, gen_tensor *targets, gen_reduction r);
/* KL(N(mu, exp(logvar)) || N(0, 1)) per element; "mean" divides the total by the batch size
 * (mu's first dim), the VAE convention of a per-sample KL; "sum" is the total. */
gen_tensor *gen_kl_normal(gen_tensor *mu, gen_tensor *logvar, gen_reduction r);

#endif
