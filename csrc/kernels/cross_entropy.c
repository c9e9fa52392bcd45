/*
 * cross_entropy.c — softmax cross entropy for float32 logits.
 *
 * The generic loop of ops_loss.c reads and writes every logit through a dtype switch and calls
 * float64 exp: on a PixelCNN's 256-way softmax over every pixel (12.8 M logits a batch) it took
 * 0.9 s of a 7 s training step. Here a position's classes are walked in the order they lie in
 * memory: for {N, C} rows the class loop is contiguous; for {N, C, H, W} a tile of TILE
 * neighbouring pixels is carried through the class loop side by side, so each pass over the
 * classes is a vector operation over the tile. Tiles are the unit of parallel work.
 */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("no-trapping-math") /* see fastmath.h */
#endif
#include "cross_entropy.h"

#include <math.h>

#include "../gen.h"
#include "fastmath.h"

#define TILE 64

/* One row of c contiguous logits (s = 1). Everything is computed from x - max, which is exact in
 * float32 however large the logits (the loss of logits near 1e4 keeps its digits). */
GEN_SIMD_CLONES static void row_contiguous(float *loss, float *dx, const float *x, int64_t target, int64_t c) {
  float m = -INFINITY;
  for (int64_t k = 0; k < c; k++) m = x[k] > m ? x[k] : m;
  float sum = 0;
  for (int64_t k = 0; k < c; k++) sum += gen_exp_approx(x[k] - m);
  float ls = logf(sum);
  for (int64_t k = 0; k < c; k++) dx[k] = gen_exp_approx((x[k] - m) - ls);
  dx[target] -= 1.0f;
  *loss = (m - x[target]) + ls;
}

/* Positions j0 .. j0 + w - 1 of one image: logits x[k * s + j]. */
GEN_SIMD_CLONES static void tile_strided(float *loss, float *dx, const float *x, const int64_t *t, int64_t c, int64_t s,
                                         int64_t j0, int64_t w) {
  float m[TILE], sum[TILE], ls[TILE];
  for (int64_t j = 0; j < w; j++) m[j] = -INFINITY, sum[j] = 0;
  for (int64_t k = 0; k < c; k++) {
    const float *xk = x + k * s + j0;
    for (int64_t j = 0; j < w; j++) m[j] = xk[j] > m[j] ? xk[j] : m[j];
  }
  for (int64_t k = 0; k < c; k++) {
    const float *xk = x + k * s + j0;
    for (int64_t j = 0; j < w; j++) sum[j] += gen_exp_approx(xk[j] - m[j]);
  }
  for (int64_t j = 0; j < w; j++) ls[j] = logf(sum[j]);
  for (int64_t k = 0; k < c; k++) {
    const float *xk = x + k * s + j0;
    float *dk = dx + k * s + j0;
    for (int64_t j = 0; j < w; j++) dk[j] = gen_exp_approx((xk[j] - m[j]) - ls[j]);
  }
  for (int64_t j = 0; j < w; j++) {
    int64_t k = t[j0 + j] - 1;
    dx[k * s + j0 + j] -= 1.0f;
    loss[j0 + j] = (m[j] - x[k * s + j0 + j]) + ls[j];
  }
}

/* Unit u: row u (s = 1), or tile u % tiles of image u / tiles. */
static void unit(float *loss, float *dx, const float *x, const int64_t *t, int64_t c, int64_t s, int64_t tiles, int64_t u) {
  if (s == 1) {
    row_contiguous(loss + u, dx + u * c, x + u * c, t[u] - 1, c);
  } else {
    int64_t i = u / tiles, j0 = u % tiles * TILE, w = s - j0 < TILE ? s - j0 : TILE;
    tile_strided(loss + i * s, dx + i * c * s, x + i * c * s, t + i * s, c, s, j0, w);
  }
}

void gen_cross_entropy_f32(float *loss, float *dx, const float *x, const int64_t *t, int64_t nb, int64_t c, int64_t s) {
  int64_t tiles = (s + TILE - 1) / TILE, units = s == 1 ? nb : nb * tiles;
  if (nb * c * s > GEN_PARALLEL_GRAIN) {
#pragma omp parallel for
    for (int64_t u = 0; u < units; u++) unit(loss, dx, x, t, c, s, tiles, u);
  } else {
    for (int64_t u = 0; u < units; u++) unit(loss, dx, x, t, c, s, tiles, u);
  }
}
