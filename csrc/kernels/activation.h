/* activation.h — vectorized float32 SiLU, sigmoid, tanh, GELU and (leaky) ReLU over contiguous arrays (activation.c),
 * the activations of every diffusion UNet, VAE and transformer; ops_unary.c keeps the generic
 * strided/any-dtype path these must agree with (to float32 rounding: they use gen_exp_approx;
 * GELU's erf to about 1.5e-7 absolute). Arguments, as in every kernel: outputs first, then
 * inputs, then sizes. */
#ifndef GEN_KERNELS_ACTIVATION_H
#define GEN_KERNELS_ACTIVATION_H

#include <stdint.h>

/* y = x * sigmoid(x) */
void gen_silu_f32(float *y, const float *x, int64_t n);
/* dx = dy * s * (1 + x * (1 - s)), s = sigmoid(x) */
void gen_silu_backward_f32(float *dx, const float *x, const float *dy, int64_t n);
/* y = sigmoid(x) */
void gen_sigmoid_f32(float *y, const float *x, int64_t n);
/* y = tanh(x) */
void gen_tanh_f32(float *y, const float *x, int64_t n);
/* y = x / 2 (1 + erf(x / sqrt 2)), PyTorch's exact GELU */
void gen_gelu_f32(float *y, const float *x, int64_t n);
/* dx = dy * ((1 + erf(x / sqrt 2)) / 2 + x e^(-x^2 / 2) / sqrt(2 pi)) */
void gen_gelu_backward_f32(float *dx, const float *x, const float *dy, int64_t n);

/* y = x > 0 ? x : slope x (relu: slope 0) */
void gen_leaky_relu_f32(float *y, const float *x, float slope, int64_t n);
/* dx = x > 0 ? dy : slope dy */
void gen_leaky_relu_backward_f32(float *dx, const float *x, const float *dy, float slope, int64_t n);
/* dx = dy (1 - y^2), y = tanh(x) */
void gen_tanh_backward_f32(float *dx, const float *y, const float *dy, int64_t n);
/* dx = dy y (1 - y), y = sigmoid(x) */
void gen_sigmoid_backward_f32(float *dx, const float *y, const float *dy, int64_t n);

#endif
