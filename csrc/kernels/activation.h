/* activation.h — vectorized float32 SiLU and sigmoid over contiguous arrays (activation.c), the
 * activations of every diffusion UNet and VAE; ops_unary.c keeps the generic strided/any-dtype
 * path these must agree with (to float32 rounding: they use gen_exp_approx). Arguments, as in every
 * kernel: outputs first, then inputs, then sizes. */
#ifndef GEN_KERNELS_ACTIVATION_H
#define GEN_KERNELS_ACTIVATION_H

#include <stdint.h>

/* y = x * sigmoid(x) */
void gen_silu_f32(float *y, const float *x, int64_t n);
/* dx = dy * s * (1 + x * (1 - s)), s = sigmoid(x) */
void gen_silu_backward_f32(float *dx, const float *x, const float *dy, int64_t n);
/* y = sigmoid(x) */
void gen_sigmoid_f32(float *y, const float *x, int64_t n);

#endif
