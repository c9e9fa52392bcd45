/*
 * activation.c — float32 SiLU, sigmoid, tanh, GELU and (leaky) ReLU in loops GCC vectorizes.
 *
 * With libm's expf these activations took about a sixth of a diffusion UNet's training step;
 * gen_exp_approx turns each loop into straight-line SIMD. GELU with libm's erff (and a float64
 * backward) took close to half of a ViT's training step (the MAE's); gen_one_plus_erf_approx does
 * the same for it. ReLU and the derivatives from saved outputs are plain loops, here so that they
 * too are vectorized per ISA and split over the threads. Blocks of BLOCK elements are the unit
 * of parallel work, so the result never depends on the thread count; small arrays stay out of
 * OpenMP entirely (even a region with a false if-clause costs about a microsecond).
 */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("no-trapping-math") /* see fastmath.h */
#endif
#include "activation.h"

#include "../gen.h"
#include "fastmath.h"
#include "isa.h"

#define BLOCK 4096

GEN_ISA_BODY void silu_range_body(float *y, const float *x, int64_t lo, int64_t hi) {
  for (int64_t i = lo; i < hi; i++) y[i] = x[i] * gen_sigmoid_approx(x[i]);
}
GEN_ISA_KERNEL(void, silu_range, (float *y, const float *x, int64_t lo, int64_t hi), (y, x, lo, hi))

GEN_ISA_BODY void silu_backward_range_body(float *dx, const float *x, const float *dy, int64_t lo, int64_t hi) {
  for (int64_t i = lo; i < hi; i++) {
    float s = gen_sigmoid_approx(x[i]);
    dx[i] = dy[i] * s * (1.0f + x[i] * (1.0f - s));
  }
}
GEN_ISA_KERNEL(void, silu_backward_range, (float *dx, const float *x, const float *dy, int64_t lo, int64_t hi),
               (dx, x, dy, lo, hi))

GEN_ISA_BODY void sigmoid_range_body(float *y, const float *x, int64_t lo, int64_t hi) {
  for (int64_t i = lo; i < hi; i++) y[i] = gen_sigmoid_approx(x[i]);
}
GEN_ISA_KERNEL(void, sigmoid_range, (float *y, const float *x, int64_t lo, int64_t hi), (y, x, lo, hi))

GEN_ISA_BODY void tanh_range_body(float *y, const float *x, int64_t lo, int64_t hi) {
  for (int64_t i = lo; i < hi; i++) y[i] = gen_tanh_approx(x[i]);
}
GEN_ISA_KERNEL(void, tanh_range, (float *y, const float *x, int64_t lo, int64_t hi), (y, x, lo, hi))

/* gelu(x) = x / 2 (1 + erf(x / sqrt 2)) */
GEN_ISA_BODY void gelu_range_body(float *y, const float *x, int64_t lo, int64_t hi) {
  for (int64_t i = lo; i < hi; i++) {
    float g;
    y[i] = 0.5f * x[i] * gen_one_plus_erf_approx(x[i], &g);
  }
}
GEN_ISA_KERNEL(void, gelu_range, (float *y, const float *x, int64_t lo, int64_t hi), (y, x, lo, hi))

/* gelu'(x) = (1 + erf(x / sqrt 2)) / 2 + x e^(-x^2 / 2) / sqrt(2 pi) */
GEN_ISA_BODY void gelu_backward_range_body(float *dx, const float *x, const float *dy, int64_t lo, int64_t hi) {
  for (int64_t i = lo; i < hi; i++) {
    float g, c = gen_one_plus_erf_approx(x[i], &g);
    dx[i] = dy[i] * (0.5f * c + x[i] * g * 0.39894228040143268f);
  }
}
GEN_ISA_KERNEL(void, gelu_backward_range, (float *dx, const float *x, const float *dy, int64_t lo, int64_t hi),
               (dx, x, dy, lo, hi))

/* relu (slope 0) and leaky_relu: y = x > 0 ? x : slope x, and dx = x > 0 ? dy : slope dy */
GEN_ISA_BODY void leaky_relu_range_body(float *y, const float *x, float slope, int64_t lo, int64_t hi) {
  for (int64_t i = lo; i < hi; i++) y[i] = x[i] > 0 ? x[i] : x[i] * slope;
}
GEN_ISA_KERNEL(void, leaky_relu_range, (float *y, const float *x, float slope, int64_t lo, int64_t hi), (y, x, slope, lo, hi))

GEN_ISA_BODY void leaky_relu_backward_range_body(float *dx, const float *x, const float *dy, float slope, int64_t lo,
                                                 int64_t hi) {
  for (int64_t i = lo; i < hi; i++) dx[i] = x[i] > 0 ? dy[i] : dy[i] * slope;
}
GEN_ISA_KERNEL(void, leaky_relu_backward_range, (float *dx, const float *x, const float *dy, float slope, int64_t lo, int64_t hi),
               (dx, x, dy, slope, lo, hi))

/* tanh' = 1 - y^2 and sigmoid' = y (1 - y), from the saved output y */
GEN_ISA_BODY void tanh_backward_range_body(float *dx, const float *y, const float *dy, int64_t lo, int64_t hi) {
  for (int64_t i = lo; i < hi; i++) dx[i] = dy[i] * (1 - y[i] * y[i]);
}
GEN_ISA_KERNEL(void, tanh_backward_range, (float *dx, const float *y, const float *dy, int64_t lo, int64_t hi),
               (dx, y, dy, lo, hi))

GEN_ISA_BODY void sigmoid_backward_range_body(float *dx, const float *y, const float *dy, int64_t lo, int64_t hi) {
  for (int64_t i = lo; i < hi; i++) dx[i] = dy[i] * y[i] * (1 - y[i]);
}
GEN_ISA_KERNEL(void, sigmoid_backward_range, (float *dx, const float *y, const float *dy, int64_t lo, int64_t hi),
               (dx, y, dy, lo, hi))

/* Runs BODY(lo, hi) over [0, n) in blocks, in parallel when n is large. */
#define FOR_BLOCKS(n, BODY)                                                                                                      \
  do {                                                                                                                           \
    int64_t blocks_ = ((n) + BLOCK - 1) / BLOCK;                                                                                 \
    if ((n) > GEN_PARALLEL_GRAIN) {                                                                                              \
      _Pragma("omp parallel for") for (int64_t b_ = 0; b_ < blocks_; b_++) {                                                     \
        int64_t lo = b_ * BLOCK, hi = lo + BLOCK < (n) ? lo + BLOCK : (n);                                                       \
        BODY;                                                                                                                    \
      }                                                                                                                          \
    } else {                                                                                                                     \
      int64_t lo = 0, hi = (n);                                                                                                  \
      BODY;                                                                                                                      \
    }                                                                                                                            \
  } while (0)

void gen_silu_f32(float *y, const float *x, int64_t n) { FOR_BLOCKS(n, silu_range(y, x, lo, hi)); }

void gen_silu_backward_f32(float *dx, const float *x, const float *dy, int64_t n) {
  FOR_BLOCKS(n, silu_backward_range(dx, x, dy, lo, hi));
}

void gen_sigmoid_f32(float *y, const float *x, int64_t n) { FOR_BLOCKS(n, sigmoid_range(y, x, lo, hi)); }

void gen_tanh_f32(float *y, const float *x, int64_t n) { FOR_BLOCKS(n, tanh_range(y, x, lo, hi)); }

void gen_gelu_f32(float *y, const float *x, int64_t n) { FOR_BLOCKS(n, gelu_range(y, x, lo, hi)); }

void gen_gelu_backward_f32(float *dx, const float *x, const float *dy, int64_t n) {
  FOR_BLOCKS(n, gelu_backward_range(dx, x, dy, lo, hi));
}

void gen_leaky_relu_f32(float *y, const float *x, float slope, int64_t n) {
  FOR_BLOCKS(n, leaky_relu_range(y, x, slope, lo, hi));
}

void gen_leaky_relu_backward_f32(float *dx, const float *x, const float *dy, float slope, int64_t n) {
  FOR_BLOCKS(n, leaky_relu_backward_range(dx, x, dy, slope, lo, hi));
}

void gen_tanh_backward_f32(float *dx, const float *y, const float *dy, int64_t n) {
  FOR_BLOCKS(n, tanh_backward_range(dx, y, dy, lo, hi));
}

void gen_sigmoid_backward_f32(float *dx, const float *y, const float *dy, int64_t n) {
  FOR_BLOCKS(n, sigmoid_backward_range(dx, y, dy, lo, hi));
}
