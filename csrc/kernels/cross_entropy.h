/* cross_entropy.h — float32 softmax cross entropy over a class dimension, with its gradient, in
 * loops that vectorize (cross_entropy.c); ops_loss.c keeps the float64 path for other dtypes and
 * for nll_loss. Arguments, as in every kernel: outputs first, then inputs, then sizes. */
#ifndef GEN_KERNELS_CROSS_ENTROPY_H
#define GEN_KERNELS_CROSS_ENTROPY_H

#include <stdint.h>

/* logits x {nb, c, s} (classes at stride s: s = 1 for {N, C}, H*W for {N, C, H, W}), targets
 * t {nb, s} in 1..c (checked by the caller). Writes loss {nb, s} = logsumexp_k x - x_t and
 * dx {nb, c, s} = softmax(x) - onehot(t). The result does not depend on the thread count. */
void gen_cross_entropy_f32(float *loss, float *dx, const float *x, const int64_t *t, int64_t nb, int64_t c, int64_t s);

#endif
