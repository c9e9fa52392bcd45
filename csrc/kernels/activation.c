/*
 * activation.c — float32 SiLU, sigmoid and GELU in loops GCC vectorizes.
 *
 * With libm's expf these activations took about a sixth of a diffusion UNet's training step;
 * gen_exp_approx turns each loop into straight-line SIMD. GELU with libm's erff (and a float64
 * backward) took close to half of a ViT's training step (the MAE's); gen_one_plus_erf_approx does
 * the same for it. Blocks of BLOCK elements are the unit
 * of parallel work, so the result never depends on the thread count; small arrays stay out of
 * OpenMP entirely (even a region with a false if-clause costs about a microsecond).
 */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("no-trapping-math") /* see fastmath.h */
#endif
#include "activation.h"

#include "../gen.h"
#include "fastmath.h"

#define BLOCK 4096

GEN_SIMD_CLONES static void silu_range(float *y, const float *x, int64_t lo, int64_t hi) {
  for (int64_t i = lo; i < hi; i++) y[i] = x[i] * gen_sigmoid_approx(x[i]);
}

GEN_SIMD_CLONES static void silu_backward_range(float *dx, const float *x, const float *dy, int64_t lo, int64_t hi) {
  for (int64_t i = lo; i < hi; i++) {
    float s = gen_sigmoid_approx(x[i]);
    dx[i] = dy[i] * s * (1.0f + x[i] * (1.0f - s));
  }
}

GEN_SIMD_CLONES static void sigmoid_range(float *y, const float *x, int64_t lo, int64_t hi) {
  for (int64_t i = lo; i < hi; i++) y[i] = gen_sigmoid_approx(x[i]);
}

GEN_SIMD_CLONES static void tanh_range(float *y, const float *x, int64_t lo, int64_t hi) {
  for (int64_t i = lo; i < hi; i++) y[i] = gen_tanh_approx(x[i]);
}

/* gelu(x) = x / 2 (1 + erf(x / sqrt 2)) */
GEN_SIMD_CLONES static void gelu_range(float *y, const float *x, int64_t lo, int64_t hi) {
  for (int64_t i = lo; i < hi; i++) {
    float g;
    y[i] = 0.5f * x[i] * gen_one_plus_erf_approx(x[i], &g);
  }
}

/* gelu'(x) = (1 + erf(x / sqrt 2)) / 2 + x e^(-x^2 / 2) / sqrt(2 pi) */
GEN_SIMD_CLONES static void gelu_backward_range(float *dx, const float *x, const float *dy, int64_t lo, int64_t hi) {
  for (int64_t i = lo; i < hi; i++) {
    float g, c = gen_one_plus_erf_approx(x[i], &g);
    dx[i] = dy[i] * (0.5f * c + x[i] * g * 0.39894228040143268f);
  }
}

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
