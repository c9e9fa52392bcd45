/*
 * winograd.c — F(4x4, 3x3) convolution: transforms, packing and the 36 GEMMs per chunk of tiles.
 *
 * The matrices (interpolation points 0, 1, -1, 2, -2 and infinity):
 *   B^T = [4  0 -5  0 1 0]    G = [ 1/4     0     0]    A^T = [1 1  1 1  1 0]
 *         [0 -4 -4  1 1 0]        [-1/6  -1/6  -1/6]          [0 1 -1 2 -2 0]
 *         [0  4 -4 -1 1 0]        [-1/6   1/6  -1/6]          [0 1  1 4  4 0]
 *         [0 -2 -1  2 1 0]        [1/24  1/12   1/6]          [0 1 -1 8 -8 1]
 *         [0  2 -1 -2 1 0]        [1/24 -1/12   1/6]
 *         [0  4  0 -5 0 1]        [   0     0     1]
 * Transforms run on eight patches at once, one per vector lane (a lane array float [36][8] is
 * eight 6x6 patches, element (r, s) of patch l at [r * 6 + s][l]), and write their results
 * straight into the GEMM panels of gemm_packed.h:
 *   forward      V {36, tile panels, C, 16} (B, lanes = tiles)   U {36, O panels, C, 6} (A)
 *                M {36, opad, tile panels * 16} (C), read back by the output transform
 *   weight grad  V {36, C panels, tiles, 16} (B, lanes = channels)
 *                dM {36, O panels, tiles, 6} (A, lanes = output channels, repacked by six)
 * Padding lanes (tiles past the chunk, channels past C or O) are zero patches.
 */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("no-trapping-math")
#endif
#include "winograd.h"

#include <string.h>

#include "fastmath.h"
#include "gemm_packed.h"

#define LANES 8
/* Scratch per chunk: both GEMM operands of a chunk stay within about this many bytes (L2-sized). */
#define CHUNK_BYTES ((int64_t)1 << 20)
#define MAX_CHUNK_TILES 256

static int64_t round_up(int64_t a, int64_t m) { return (a + m - 1) / m * m; }

gen_wino_geom gen_wino_geometry(int64_t n, int64_t c, int64_t h, int64_t w, int64_t o, int64_t ph, int64_t pw) {
  gen_wino_geom g = {.n = n, .c = c, .h = h, .w = w, .o = o, .ph = ph, .pw = pw, .ho = h + 2 * ph - 2, .wo = w + 2 * pw - 2};
  g.th = (g.ho + 3) / 4, g.tw = (g.wo + 3) / 4;
  g.opad = round_up(o, GEN_MR), g.cpad = round_up(c, GEN_NR);
  return g;
}

/* ---------------------------------------------------------------- the 1-d transforms */

/* B^T d for d = (d0 .. d5) with stride ds, into r with stride rs */
static inline void bt6(const float *d, int64_t ds, float *r, int64_t rs) {
  float d0 = d[0], d1 = d[ds], d2 = d[2 * ds], d3 = d[3 * ds], d4 = d[4 * ds], d5 = d[5 * ds];
  float a = d4 - 4 * d2, b = d3 - 4 * d1, c = d4 - d2, e = 2 * (d3 - d1);
  r[0] = 4 * d0 - 5 * d2 + d4;
  r[rs] = a + b;
  r[2 * rs] = a - b;
  r[3 * rs] = c + e;
  r[4 * rs] = c - e;
  r[5 * rs] = 4 * d1 - 5 * d3 + d5;
}

/* A^T m for m = (m0 .. m5): four outputs */
static inline void at6(const float *m, int64_t ms, float *y, int64_t ys) {
  float a = m[ms] + m[2 * ms], b = m[ms] - m[2 * ms], c = m[3 * ms] + m[4 * ms], d = m[3 * ms] - m[4 * ms];
  y[0] = m[0] + a + c;
  y[ys] = b + 2 * d;
  y[2 * ys] = a + 4 * c;
  y[3 * ys] = b + 8 * d + m[5 * ms];
}

/* A g for g = (g0 .. g3): six outputs (the adjoint of at6) */
static inline void a4(const float *g, int64_t gs, float *r, int64_t rs) {
  float g0 = g[0], g1 = g[gs], g2 = g[2 * gs], g3 = g[3 * gs];
  float even = g0 + g2, odd = g1 + g3, even4 = g0 + 4 * g2, odd2 = 2 * g1 + 8 * g3;
  r[0] = g0;
  r[rs] = even + odd;
  r[2 * rs] = even - odd;
  r[3 * rs] = even4 + odd2;
  r[4 * rs] = even4 - odd2;
  r[5 * rs] = g3;
}

/* ---------------------------------------------------------------- lane-parallel 2-d transforms */

/* v = B^T d B for eight 6x6 patches */
static inline void input_transform(float d[36][LANES], float v[36][LANES]) {
  float t[36][LANES];
  for (int s = 0; s < 6; s++)
    for (int l = 0; l < LANES; l++) bt6(&d[s][l], 6 * LANES, &t[s][l], 6 * LANES);
  for (int r = 0; r < 6; r++)
    for (int l = 0; l < LANES; l++) bt6(&t[r * 6][l], LANES, &v[r * 6][l], LANES);
}

/* y = A^T m A for eight 6x6 blocks: 4x4 results */
static inline void output_transform(float m[36][LANES], float y[16][LANES]) {
  float t[24][LANES]; /* 4 rows x 6 columns */
  for (int s = 0; s < 6; s++)
    for (int l = 0; l < LANES; l++) at6(&m[s][l], 6 * LANES, &t[s][l], 6 * LANES);
  for (int r = 0; r < 4; r++)
    for (int l = 0; l < LANES; l++) at6(&t[r * 6][l], LANES, &y[r * 4][l], LANES);
}

/* dm = A g A^T for eight 4x4 blocks: 6x6 results */
static inline void gradient_transform(float g[16][LANES], float dm[36][LANES]) {
  float t[24][LANES]; /* 6 rows x 4 columns */
  for (int s = 0; s < 4; s++)
    for (int l = 0; l < LANES; l++) a4(&g[s][l], 4 * LANES, &t[s][l], 4 * LANES);
  for (int r = 0; r < 6; r++)
    for (int l = 0; l < LANES; l++) a4(&t[r * 4][l], LANES, &dm[r * 6][l], LANES);
}

/* ---------------------------------------------------------------- patches */

typedef struct {
  int64_t n, y, x; /* image, and the top-left input element of the tile's patch (may be outside) */
} tile_pos;

static void locate(const gen_wino_geom *g, int64_t t0, int64_t nt, tile_pos *pos) {
  for (int64_t i = 0; i < nt; i++) {
    int64_t t = t0 + i, tx = t % g->tw, ty = (t / g->tw) % g->th;
    pos[i] = (tile_pos){.n = t / (g->tw * g->th), .y = ty * 4 - g->ph, .x = tx * 4 - g->pw};
  }
}

/* Lane l of d = the size x size window of plane {h, w} at (y, x), zero outside the plane. */
static inline void gather(float (*d)[LANES], int l, const float *plane, int64_t h, int64_t w, int64_t y, int64_t x, int size) {
  if (y >= 0 && x >= 0 && y + size <= h && x + size <= w) {
    for (int r = 0; r < size; r++)
      for (int s = 0; s < size; s++) d[r * size + s][l] = plane[(y + r) * w + x + s];
    return;
  }
  for (int r = 0; r < size; r++) {
    bool row_in = y + r >= 0 && y + r < h;
    for (int s = 0; s < size; s++) d[r * size + s][l] = row_in && x + s >= 0 && x + s < w ? plane[(y + r) * w + x + s] : 0.0f;
  }
}

static inline void zero_lane(float (*d)[LANES], int l, int count) {
  for (int i = 0; i < count; i++) d[i][l] = 0.0f;
}

/* ---------------------------------------------------------------- weights */

int64_t gen_wino_weight_floats(const gen_wino_geom *g) { return 36 * g->opad * g->c; }

void gen_wino_transform_weight(const gen_wino_geom *g, const float *w, bool adjoint, float *u) {
  static const double G[6][3] = {{0.25, 0, 0},           {-1.0 / 6, -1.0 / 6, -1.0 / 6}, {-1.0 / 6, 1.0 / 6, -1.0 / 6},
                                 {1.0 / 24, 1.0 / 12, 1.0 / 6}, {1.0 / 24, -1.0 / 12, 1.0 / 6}, {0, 0, 1}};
  memset(u, 0, sizeof(float) * (size_t)gen_wino_weight_floats(g));
  for (int64_t o = 0; o < g->o; o++)
    for (int64_t c = 0; c < g->c; c++) {
      double k[3][3], t[6][3];
      for (int r = 0; r < 3; r++)
        for (int s = 0; s < 3; s++) k[r][s] = adjoint ? w[((c * g->o + o) * 3 + 2 - r) * 3 + 2 - s] : w[((o * g->c + c) * 3 + r) * 3 + s];
      for (int i = 0; i < 6; i++)
        for (int s = 0; s < 3; s++) t[i][s] = G[i][0] * k[0][s] + G[i][1] * k[1][s] + G[i][2] * k[2][s];
      for (int i = 0; i < 6; i++)
        for (int j = 0; j < 6; j++) {
          int64_t xi = i * 6 + j;
          u[(xi * g->opad + o / GEN_MR * GEN_MR) * g->c + c * GEN_MR + o % GEN_MR] =
              (float)(t[i][0] * G[j][0] + t[i][1] * G[j][1] + t[i][2] * G[j][2]);
        }
    }
}

/* ---------------------------------------------------------------- forward */

static int64_t chunk_tiles(int64_t bytes_per_tile, int64_t multiple) {
  int64_t nt = CHUNK_BYTES / bytes_per_tile / multiple * multiple;
  return nt < multiple ? multiple : nt > MAX_CHUNK_TILES ? MAX_CHUNK_TILES : nt;
}

int64_t gen_wino_forward_chunk_tiles(const gen_wino_geom *g) {
  return chunk_tiles(36 * (g->c + g->opad) * (int64_t)sizeof(float), GEN_NR);
}
int64_t gen_wino_forward_scratch_floats(const gen_wino_geom *g) { return 36 * (g->c + g->opad) * gen_wino_forward_chunk_tiles(g); }

/* V panels of one chunk (lanes = eight consecutive tiles) */
GEN_SIMD_CLONES static void pack_forward_input(const gen_wino_geom *g, const float *x, const tile_pos *pos, int64_t nt, int64_t ntp,
                                               float *v) {
  int64_t hw = g->h * g->w, xi_stride = ntp * g->c * GEN_NR;
  for (int64_t c = 0; c < g->c; c++)
    for (int64_t q = 0; q < ntp * (GEN_NR / LANES); q++) {
      float d[36][LANES], r[36][LANES];
      for (int l = 0; l < LANES; l++) {
        int64_t i = q * LANES + l;
        if (i < nt) gather(d, l, x + (pos[i].n * g->c + c) * hw, g->h, g->w, pos[i].y, pos[i].x, 6);
        else zero_lane(d, l, 36);
      }
      input_transform(d, r);
      float *dst = v + (q / 2 * g->c + c) * GEN_NR + q % 2 * LANES;
      for (int xi = 0; xi < 36; xi++) memcpy(dst + xi * xi_stride, r[xi], sizeof r[xi]);
    }
}

/* out tiles = A^T M A + bias, clipped to the output */
GEN_SIMD_CLONES static void unpack_forward_output(const gen_wino_geom *g, const float *m, const tile_pos *pos, int64_t nt, int64_t ldm,
                                                  const float *bias, float *out) {
  int64_t plane = g->ho * g->wo;
  for (int64_t o = 0; o < g->o; o++)
    for (int64_t q = 0; q * LANES < nt; q++) {
      float blk[36][LANES], y[16][LANES];
      for (int xi = 0; xi < 36; xi++) memcpy(blk[xi], m + (xi * g->opad + o) * ldm + q * LANES, sizeof blk[xi]);
      output_transform(blk, y);
      float b = bias ? bias[o] : 0.0f;
      for (int l = 0; l < LANES && q * LANES + l < nt; l++) {
        const tile_pos *p = &pos[q * LANES + l];
        int64_t oy = p->y + g->ph, ox = p->x + g->pw;
        float *dst = out + (p->n * g->o + o) * plane;
        int rows = g->ho - oy < 4 ? (int)(g->ho - oy) : 4, cols = g->wo - ox < 4 ? (int)(g->wo - ox) : 4;
        for (int r = 0; r < rows; r++)
          for (int s = 0; s < cols; s++) dst[(oy + r) * g->wo + ox + s] = y[r * 4 + s][l] + b;
      }
    }
}

void gen_wino_forward(const gen_wino_geom *g, const float *x, const float *u, const float *bias, float *out, int64_t t0,
                      int64_t nt, float *scratch) {
  tile_pos pos[MAX_CHUNK_TILES];
  int64_t ntp = (nt + GEN_NR - 1) / GEN_NR, ldm = ntp * GEN_NR;
  float *v = scratch, *m = scratch + 36 * ntp * GEN_NR * g->c;
  locate(g, t0, nt, pos);
  pack_forward_input(g, x, pos, nt, ntp, v);
  for (int xi = 0; xi < 36; xi++)
    gen_gemm_packed(g->opad / GEN_MR, ntp, g->c, u + xi * g->opad * g->c, v + xi * ntp * GEN_NR * g->c, m + xi * g->opad * ldm, ldm,
                    false);
  unpack_forward_output(g, m, pos, nt, ldm, bias, out);
}

/* ---------------------------------------------------------------- weight gradient */

int64_t gen_wino_weight_grad_chunk_tiles(const gen_wino_geom *g) {
  return chunk_tiles(36 * (g->cpad + g->opad) * (int64_t)sizeof(float), LANES);
}
int64_t gen_wino_weight_grad_scratch_floats(const gen_wino_geom *g) {
  return 36 * (g->cpad + g->opad) * gen_wino_weight_grad_chunk_tiles(g);
}
int64_t gen_wino_du_floats(const gen_wino_geom *g) { return 36 * g->opad * g->cpad; }

/* V panels with lanes = eight consecutive channels of one tile; K runs over the chunk's tiles */
GEN_SIMD_CLONES static void pack_grad_input(const gen_wino_geom *g, const float *x, const tile_pos *pos, int64_t nt, float *v) {
  int64_t hw = g->h * g->w, xi_stride = g->cpad * nt;
  for (int64_t t = 0; t < nt; t++)
    for (int64_t q = 0; q < g->cpad / LANES; q++) {
      float d[36][LANES], r[36][LANES];
      for (int l = 0; l < LANES; l++) {
        int64_t c = q * LANES + l;
        if (c < g->c) gather(d, l, x + (pos[t].n * g->c + c) * hw, g->h, g->w, pos[t].y, pos[t].x, 6);
        else zero_lane(d, l, 36);
      }
      input_transform(d, r);
      float *dst = v + (q / 2 * nt + t) * GEN_NR + q % 2 * LANES;
      for (int xi = 0; xi < 36; xi++) memcpy(dst + xi * xi_stride, r[xi], sizeof r[xi]);
    }
}

/* dM = A dout_tile A^T with lanes = eight output channels, repacked into panels of six rows */
GEN_SIMD_CLONES static void pack_grad_output(const gen_wino_geom *g, const float *dout, const tile_pos *pos, int64_t nt, float *dm) {
  int64_t plane = g->ho * g->wo, xi_stride = g->opad * nt;
  for (int64_t t = 0; t < nt; t++)
    for (int64_t q = 0; q * LANES < g->opad; q++) {
      float gy[16][LANES], r[36][LANES];
      for (int l = 0; l < LANES; l++) {
        int64_t o = q * LANES + l;
        if (o < g->o) gather(gy, l, dout + (pos[t].n * g->o + o) * plane, g->ho, g->wo, pos[t].y + g->ph, pos[t].x + g->pw, 4);
        else zero_lane(gy, l, 16);
      }
      gradient_transform(gy, r);
      for (int l = 0; l < LANES && q * LANES + l < g->opad; l++) {
        int64_t o = q * LANES + l;
        float *dst = dm + (o / GEN_MR * nt + t) * GEN_MR + o % GEN_MR;
        for (int xi = 0; xi < 36; xi++) dst[xi * xi_stride] = r[xi][l];
      }
    }
}

void gen_wino_weight_grad(const gen_wino_geom *g, const float *x, const float *dout, int64_t t0, int64_t nt, float *du,
                          bool accumulate, float *scratch) {
  tile_pos pos[MAX_CHUNK_TILES];
  float *v = scratch, *dm = scratch + 36 * g->cpad * nt;
  locate(g, t0, nt, pos);
  pack_grad_input(g, x, pos, nt, v);
  pack_grad_output(g, dout, pos, nt, dm);
  for (int xi = 0; xi < 36; xi++)
    gen_gemm_packed(g->opad / GEN_MR, g->cpad / GEN_NR, nt, dm + xi * g->opad * nt, v + xi * g->cpad * nt, du + xi * g->opad * g->cpad,
                    g->cpad, accumulate);
}

void gen_wino_weight_grad_finish(const gen_wino_geom *g, const float *du, float *dw) {
  static const double GT[3][6] = {{0.25, -1.0 / 6, -1.0 / 6, 1.0 / 24, 1.0 / 24, 0},
                                  {0, -1.0 / 6, 1.0 / 6, 1.0 / 12, -1.0 / 12, 0},
                                  {0, -1.0 / 6, -1.0 / 6, 1.0 / 6, 1.0 / 6, 1}};
  for (int64_t o = 0; o < g->o; o++)
    for (int64_t c = 0; c < g->c; c++) {
      double t[3][6];
      for (int j = 0; j < 6; j++)
        for (int r = 0; r < 3; r++) {
          double acc = 0;
          for (int i = 0; i < 6; i++) acc += GT[r][i] * du[((i * 6 + j) * g->opad + o) * g->cpad + c];
          t[r][j] = acc;
        }
      for (int r = 0; r < 3; r++)
        for (int s = 0; s < 3; s++) {
          double acc = 0;
          for (int j = 0; j < 6; j++) acc += t[r][j] * GT[s][j];
          dw[((o * g->c + c) * 3 + r) * 3 + s] = (float)acc;
        }
    }
}
