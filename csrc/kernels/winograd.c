/*
 * winograd.c — F(4x4, 3x3) and F(4x4, 2x2) convolutions: transforms, packing and the alpha^2
 * GEMMs per chunk of tiles (alpha = 6 or 5 transformed points per dimension).
 *
 * F(4x4, 3x3), interpolation points 0, 1, -1, 2, -2 and infinity:
 *   B^T = [4  0 -5  0 1 0]    G = [ 1/4     0     0]    A^T = [1 1  1 1  1 0]
 *         [0 -4 -4  1 1 0]        [-1/6  -1/6  -1/6]          [0 1 -1 2 -2 0]
 *         [0  4 -4 -1 1 0]        [-1/6   1/6  -1/6]          [0 1  1 4  4 0]
 *         [0 -2 -1  2 1 0]        [1/24  1/12   1/6]          [0 1 -1 8 -8 1]
 *         [0  2 -1 -2 1 0]        [1/24 -1/12   1/6]
 *         [0  4  0 -5 0 1]        [   0     0     1]
 * F(4x4, 2x2), points 0, 1, -1, 2 and infinity (Toom-Cook with the same A^T minus its -2 column):
 *   B^T = [2 -1 -2  1 0]      G = [ 1/2     0]      A^T = [1 1  1 1 0]
 *         [0 -2 -1  1 0]          [-1/2  -1/2]            [0 1 -1 2 0]
 *         [0  2 -3  1 0]          [-1/6   1/6]            [0 1  1 4 0]
 *         [0 -1  0  1 0]          [ 1/6   1/3]            [0 1 -1 8 1]
 *         [0  2 -1 -2 1]          [   0     1]
 *
 * Everything runs on eight tiles at once, one per AVX lane, and every operand has the tiles in
 * its lanes (gemm_packed.h panels of 16 tiles):
 *   V  {planes, tile panels, C, 16}   transformed input patches      (forward B; weight-grad B)
 *   U  {planes, O panels, C, 6}       transformed weights            (forward A)
 *   M  {planes, opad, tile panels*16} forward products, read back by the output transform
 *   dM {planes, tile panels, O, 16}   transformed output gradients   (weight-grad A)
 * B^T d B is separable: the vertical pass runs along whole rows of a tile row's six input rows
 * (a "band", zero-padded into Z), so it is plain contiguous SIMD; the horizontal pass loads each
 * of eight tiles' 8-wide row of Z and transposes 8x8, turning tiles into lanes without a gather.
 * The output and output-gradient tiles go through 4x8 transposes the same way. Lanes past the
 * chunk are zero tiles, so their products are zero and never written out.
 */
#include "winograd.h"

#include <stdint.h>
#include <string.h>

#include "../gen.h"
#include "gemm_packed.h"

#define LANES           8
#define MAX_CHUNK_TILES 512
/* The planes of an operand are written together; one cache line between them keeps them off
 * the same L1 sets (plane sizes are often multiples of 4 KB, which made every store a conflict). */
#define PLANE_PAD 16
/* Operand bytes of one chunk. A chunk's operands pass through L3 anyway (the transforms write all
 * planes before the GEMMs read them plane by plane), so chunks are sized to reuse each plane of U
 * over enough tiles and to make K long in the weight gradient's GEMMs. */
#define CHUNK_BYTES ((int64_t)2 << 20)

static int64_t round_up(int64_t a, int64_t m) { return (a + m - 1) / m * m; }

bool gen_wino_available(void) { return gen_gemm_packed_available(); }

gen_wino_geom gen_wino_geometry(int64_t n, int64_t c, int64_t h, int64_t w, int64_t o, int64_t k, int64_t ph, int64_t pw) {
  gen_wino_geom g = {.n = n,
                     .c = c,
                     .h = h,
                     .w = w,
                     .o = o,
                     .k = k,
                     .alpha = k + 3,
                     .planes = (k + 3) * (k + 3),
                     .ph = ph,
                     .pw = pw,
                     .ho = h + 2 * ph - k + 1,
                     .wo = w + 2 * pw - k + 1};
  g.th = (g.ho + 3) / 4, g.tw = (g.wo + 3) / 4;
  g.opad = round_up(o, GEN_MR), g.cpad = round_up(c, GEN_NR);
  /* a tile's 8-wide row read at 4 tx stays inside, and so do whole vectors of input columns */
  int64_t reach = 4 * g.tw + 4, cols = g.pw + round_up(w, LANES);
  g.zw = round_up(reach > cols ? reach : cols, LANES);
  return g;
}

/* Tiles per chunk: a multiple of 16 whose operands (bytes_per_tile each) fit the budget. */
static int64_t chunk_tiles(int64_t bytes_per_tile, int64_t budget) {
  int64_t nt = budget / bytes_per_tile / GEN_NR * GEN_NR;
  return nt < GEN_NR ? GEN_NR : nt > MAX_CHUNK_TILES ? MAX_CHUNK_TILES : nt;
}
/* Z bands of a chunk of nt tiles (it may start and end inside a tile row) */
static int64_t band_floats(const gen_wino_geom *g, int64_t nt) { return ((nt - 1) / g->tw + 2) * g->alpha * g->zw; }

int64_t gen_wino_weight_floats(const gen_wino_geom *g) { return g->planes * g->opad * g->c; }
/* The forward's chunks only split independent tiles (results are the same for any split), so they
 * are balanced over the threads: of the splits into multiples of 16 tiles no larger than the budget,
 * the one whose busiest thread has the fewest tiles (then the fewest chunks). */
int64_t gen_wino_forward_chunk_tiles(const gen_wino_geom *g, int threads) {
  int64_t most = chunk_tiles(g->planes * (g->c + g->opad) * (int64_t)sizeof(float), CHUNK_BYTES), tiles = gen_wino_tiles(g);
  if (threads < 2 || tiles <= GEN_NR) return most;
  int64_t best = most, best_load = INT64_MAX;
  for (int64_t nt = most; nt >= GEN_NR; nt -= GEN_NR) {
    int64_t chunks = (tiles + nt - 1) / nt, load = (chunks + threads - 1) / threads * nt;
    if (load < best_load) best = nt, best_load = load;
  }
  return best;
}
int64_t gen_wino_forward_scratch_floats(const gen_wino_geom *g, int64_t nt) {
  return g->planes * ((g->c + g->opad) * nt + 2 * PLANE_PAD) + band_floats(g, nt);
}
int64_t gen_wino_weight_grad_chunk_tiles(const gen_wino_geom *g) {
  return chunk_tiles(g->planes * (g->c + g->o) * (int64_t)sizeof(float), CHUNK_BYTES);
}
int64_t gen_wino_weight_grad_scratch_floats(const gen_wino_geom *g) {
  int64_t nt = gen_wino_weight_grad_chunk_tiles(g);
  return g->planes * ((g->c + g->o) * nt + 2 * PLANE_PAD) + (g->cpad + g->opad) * nt + LANES + band_floats(g, nt);
}
int64_t gen_wino_du_floats(const gen_wino_geom *g) { return g->planes * g->opad * g->cpad; }

/* ---------------------------------------------------------------- weights (once per call, in double) */

/* G {alpha, k} of F(4x4, 3x3) and of F(4x4, 2x2) */
static const float G3[6][3] = {{0.25f, 0, 0},
                               {-1.0f / 6, -1.0f / 6, -1.0f / 6},
                               {-1.0f / 6, 1.0f / 6, -1.0f / 6},
                               {1.0f / 24, 1.0f / 12, 1.0f / 6},
                               {1.0f / 24, -1.0f / 12, 1.0f / 6},
                               {0, 0, 1}};
static const float G2[6][3] = {{0.5f, 0}, {-0.5f, -0.5f}, {-1.0f / 6, 1.0f / 6}, {1.0f / 6, 1.0f / 3}, {0, 1}};

/* ---------------------------------------------------------------- tiles of a chunk */

typedef struct {
  int64_t n, oy, ox; /* image and top-left output element; the input patch starts at (oy - ph, ox - pw) */
} tile_pos;

static void locate(const gen_wino_geom *g, int64_t t0, int64_t nt, tile_pos *pos) {
  for (int64_t i = 0; i < nt; i++) {
    int64_t t = t0 + i;
    pos[i] = (tile_pos){.n = t / (g->tw * g->th), .oy = (t / g->tw) % g->th * 4, .ox = t % g->tw * 4};
  }
}

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>

#include "isa.h"
#define AVX2   GEN_TARGET_AVX2
#define AVX512 GEN_TARGET_AVX512

/* ---------------------------------------------------------------- 1-d transforms on vectors
 * One body per vector width (P: the intrinsics' prefix, V: the vector type): the AVX-512 level runs
 * the same operations on 16 tiles that the AVX2 level runs on 8, so both give the same bits. */
#define WINO_1D_TRANSFORMS(ATTR, V, P, SUF)                                                                                      \
  /* (r0 .. r5) = B^T (d0 .. d5) */                                                                                              \
  ATTR static inline void bt6##SUF(const V d[6], V r[6]) {                                                                       \
    V four = P##_set1_ps(4), five = P##_set1_ps(5), two = P##_set1_ps(2);                                                        \
    V a = P##_fnmadd_ps(four, d[2], d[4]), b = P##_fnmadd_ps(four, d[1], d[3]);                                                  \
    V c = P##_sub_ps(d[4], d[2]), e = P##_mul_ps(two, P##_sub_ps(d[3], d[1]));                                                   \
    r[0] = P##_fmadd_ps(four, d[0], P##_fnmadd_ps(five, d[2], d[4]));                                                            \
    r[1] = P##_add_ps(a, b);                                                                                                     \
    r[2] = P##_sub_ps(a, b);                                                                                                     \
    r[3] = P##_add_ps(c, e);                                                                                                     \
    r[4] = P##_sub_ps(c, e);                                                                                                     \
    r[5] = P##_fmadd_ps(four, d[1], P##_fnmadd_ps(five, d[3], d[5]));                                                            \
  }                                                                                                                              \
  /* (y0 .. y3) = A^T (m0 .. m5) */                                                                                              \
  ATTR static inline void at6##SUF(const V m[6], V y[4]) {                                                                       \
    V a = P##_add_ps(m[1], m[2]), b = P##_sub_ps(m[1], m[2]);                                                                    \
    V c = P##_add_ps(m[3], m[4]), d = P##_sub_ps(m[3], m[4]);                                                                    \
    y[0] = P##_add_ps(P##_add_ps(m[0], a), c);                                                                                   \
    y[1] = P##_fmadd_ps(P##_set1_ps(2), d, b);                                                                                   \
    y[2] = P##_fmadd_ps(P##_set1_ps(4), c, a);                                                                                   \
    y[3] = P##_add_ps(P##_fmadd_ps(P##_set1_ps(8), d, b), m[5]);                                                                 \
  }                                                                                                                              \
  /* (r0 .. r4) = B^T (d0 .. d4) of F(4x4, 2x2) */                                                                               \
  ATTR static inline void bt5##SUF(const V d[5], V r[5]) {                                                                       \
    V two = P##_set1_ps(2), three = P##_set1_ps(3);                                                                              \
    V d31 = P##_sub_ps(d[3], d[1]);                                                                                              \
    r[0] = P##_add_ps(P##_fmsub_ps(two, P##_sub_ps(d[0], d[2]), d[1]), d[3]);                                                    \
    r[1] = P##_fnmadd_ps(two, d[1], P##_sub_ps(d[3], d[2]));                                                                     \
    r[2] = P##_fnmadd_ps(three, d[2], P##_fmadd_ps(two, d[1], d[3]));                                                            \
    r[3] = d31;                                                                                                                  \
    r[4] = P##_fnmadd_ps(two, d31, P##_sub_ps(d[4], d[2]));                                                                      \
  }                                                                                                                              \
  /* (y0 .. y3) = A^T (m0 .. m4) of F(4x4, 2x2) */                                                                               \
  ATTR static inline void at5##SUF(const V m[5], V y[4]) {                                                                       \
    V a = P##_add_ps(m[1], m[2]), b = P##_sub_ps(m[1], m[2]);                                                                    \
    y[0] = P##_add_ps(P##_add_ps(m[0], a), m[3]);                                                                                \
    y[1] = P##_fmadd_ps(P##_set1_ps(2), m[3], b);                                                                                \
    y[2] = P##_fmadd_ps(P##_set1_ps(4), m[3], a);                                                                                \
    y[3] = P##_add_ps(P##_fmadd_ps(P##_set1_ps(8), m[3], b), m[4]);                                                              \
  }                                                                                                                              \
  /* the transforms of a geometry's alpha (the branch is the same on every call of a pass) */                                    \
  ATTR static inline void bt##SUF(int alpha, const V *d, V *r) {                                                                 \
    if (alpha == 6)                                                                                                              \
      bt6##SUF(d, r);                                                                                                            \
    else                                                                                                                         \
      bt5##SUF(d, r);                                                                                                            \
  }                                                                                                                              \
  ATTR static inline void at##SUF(int alpha, const V *m, V *y) {                                                                 \
    if (alpha == 6)                                                                                                              \
      at6##SUF(m, y);                                                                                                            \
    else                                                                                                                         \
      at5##SUF(m, y);                                                                                                            \
  }

WINO_1D_TRANSFORMS(AVX2, __m256, _mm256, )
WINO_1D_TRANSFORMS(AVX512, __m512, _mm512, 16)

/* (r0 .. r5) = A (g0 .. g3), the adjoint of at6 */
AVX2 static inline void a6(const __m256 g[4], __m256 r[6]) {
  __m256 even = _mm256_add_ps(g[0], g[2]), odd = _mm256_add_ps(g[1], g[3]);
  __m256 even4 = _mm256_fmadd_ps(_mm256_set1_ps(4), g[2], g[0]);
  __m256 odd2 = _mm256_fmadd_ps(_mm256_set1_ps(8), g[3], _mm256_add_ps(g[1], g[1]));
  r[0] = g[0];
  r[1] = _mm256_add_ps(even, odd);
  r[2] = _mm256_sub_ps(even, odd);
  r[3] = _mm256_add_ps(even4, odd2);
  r[4] = _mm256_sub_ps(even4, odd2);
  r[5] = g[3];
}

/* (r0 .. r4) = A (g0 .. g3) of F(4x4, 2x2), the adjoint of at5 */
AVX2 static inline void a5(const __m256 g[4], __m256 r[5]) {
  __m256 even = _mm256_add_ps(g[0], g[2]), odd = _mm256_add_ps(g[1], g[3]);
  r[0] = g[0];
  r[1] = _mm256_add_ps(even, odd);
  r[2] = _mm256_sub_ps(even, odd);
  r[3] = _mm256_add_ps(_mm256_fmadd_ps(_mm256_set1_ps(4), g[2], g[0]),
                       _mm256_fmadd_ps(_mm256_set1_ps(8), g[3], _mm256_add_ps(g[1], g[1])));
  r[4] = g[3];
}

AVX2 static inline void a_adj(int alpha, const __m256 *g, __m256 *r) {
  if (alpha == 6)
    a6(g, r);
  else
    a5(g, r);
}

/* ---------------------------------------------------------------- transposes */

/* rows r[k] (8 values of tile k) -> r[s] (value s of the 8 tiles) */
AVX2 static inline void transpose8(__m256 r[8]) {
  __m256 t0 = _mm256_unpacklo_ps(r[0], r[1]), t1 = _mm256_unpackhi_ps(r[0], r[1]);
  __m256 t2 = _mm256_unpacklo_ps(r[2], r[3]), t3 = _mm256_unpackhi_ps(r[2], r[3]);
  __m256 t4 = _mm256_unpacklo_ps(r[4], r[5]), t5 = _mm256_unpackhi_ps(r[4], r[5]);
  __m256 t6 = _mm256_unpacklo_ps(r[6], r[7]), t7 = _mm256_unpackhi_ps(r[6], r[7]);
  __m256 u0 = _mm256_shuffle_ps(t0, t2, 0x44), u1 = _mm256_shuffle_ps(t0, t2, 0xEE);
  __m256 u2 = _mm256_shuffle_ps(t1, t3, 0x44), u3 = _mm256_shuffle_ps(t1, t3, 0xEE);
  __m256 u4 = _mm256_shuffle_ps(t4, t6, 0x44), u5 = _mm256_shuffle_ps(t4, t6, 0xEE);
  __m256 u6 = _mm256_shuffle_ps(t5, t7, 0x44), u7 = _mm256_shuffle_ps(t5, t7, 0xEE);
  r[0] = _mm256_permute2f128_ps(u0, u4, 0x20), r[4] = _mm256_permute2f128_ps(u0, u4, 0x31);
  r[1] = _mm256_permute2f128_ps(u1, u5, 0x20), r[5] = _mm256_permute2f128_ps(u1, u5, 0x31);
  r[2] = _mm256_permute2f128_ps(u2, u6, 0x20), r[6] = _mm256_permute2f128_ps(u2, u6, 0x31);
  r[3] = _mm256_permute2f128_ps(u3, u7, 0x20), r[7] = _mm256_permute2f128_ps(u3, u7, 0x31);
}

/* Four vectors over eight tiles <-> eight 4-vectors, one per tile. The network is its own
 * inverse under this pairing: v[k] holds tile k in its low half and tile k + 4 in its high half. */
AVX2 static inline void transpose4x8(__m256 v[4]) {
  __m256 lo01 = _mm256_unpacklo_ps(v[0], v[1]), hi01 = _mm256_unpackhi_ps(v[0], v[1]);
  __m256 lo23 = _mm256_unpacklo_ps(v[2], v[3]), hi23 = _mm256_unpackhi_ps(v[2], v[3]);
  v[0] = _mm256_shuffle_ps(lo01, lo23, 0x44), v[1] = _mm256_shuffle_ps(lo01, lo23, 0xEE);
  v[2] = _mm256_shuffle_ps(hi01, hi23, 0x44), v[3] = _mm256_shuffle_ps(hi01, hi23, 0xEE);
}

/* transpose8 in each 256-bit half of eight ZMM rows: with tile k in the low half of r[k] and tile
 * k + 8 in its high half, r[s] ends as value s of tiles 0 .. 15 in order */
AVX512 static inline void transpose8x2(__m512 r[8]) {
  __m512 t0 = _mm512_unpacklo_ps(r[0], r[1]), t1 = _mm512_unpackhi_ps(r[0], r[1]);
  __m512 t2 = _mm512_unpacklo_ps(r[2], r[3]), t3 = _mm512_unpackhi_ps(r[2], r[3]);
  __m512 t4 = _mm512_unpacklo_ps(r[4], r[5]), t5 = _mm512_unpackhi_ps(r[4], r[5]);
  __m512 t6 = _mm512_unpacklo_ps(r[6], r[7]), t7 = _mm512_unpackhi_ps(r[6], r[7]);
  __m512 u0 = _mm512_shuffle_ps(t0, t2, 0x44), u1 = _mm512_shuffle_ps(t0, t2, 0xEE);
  __m512 u2 = _mm512_shuffle_ps(t1, t3, 0x44), u3 = _mm512_shuffle_ps(t1, t3, 0xEE);
  __m512 u4 = _mm512_shuffle_ps(t4, t6, 0x44), u5 = _mm512_shuffle_ps(t4, t6, 0xEE);
  __m512 u6 = _mm512_shuffle_ps(t5, t7, 0x44), u7 = _mm512_shuffle_ps(t5, t7, 0xEE);
  /* permute2f128's 0x20 and 0x31 within each half */
  __m512i lo = _mm512_setr_epi32(0, 1, 2, 3, 16, 17, 18, 19, 8, 9, 10, 11, 24, 25, 26, 27);
  __m512i hi = _mm512_setr_epi32(4, 5, 6, 7, 20, 21, 22, 23, 12, 13, 14, 15, 28, 29, 30, 31);
  r[0] = _mm512_permutex2var_ps(u0, lo, u4), r[4] = _mm512_permutex2var_ps(u0, hi, u4);
  r[1] = _mm512_permutex2var_ps(u1, lo, u5), r[5] = _mm512_permutex2var_ps(u1, hi, u5);
  r[2] = _mm512_permutex2var_ps(u2, lo, u6), r[6] = _mm512_permutex2var_ps(u2, hi, u6);
  r[3] = _mm512_permutex2var_ps(u3, lo, u7), r[7] = _mm512_permutex2var_ps(u3, hi, u7);
}

/* transpose4x8 in each 128-bit lane: afterwards lane L of v[k] holds tile 4 L + k */
AVX512 static inline void transpose4x16(__m512 v[4]) {
  __m512 lo01 = _mm512_unpacklo_ps(v[0], v[1]), hi01 = _mm512_unpackhi_ps(v[0], v[1]);
  __m512 lo23 = _mm512_unpacklo_ps(v[2], v[3]), hi23 = _mm512_unpackhi_ps(v[2], v[3]);
  v[0] = _mm512_shuffle_ps(lo01, lo23, 0x44), v[1] = _mm512_shuffle_ps(lo01, lo23, 0xEE);
  v[2] = _mm512_shuffle_ps(hi01, hi23, 0x44), v[3] = _mm512_shuffle_ps(hi01, hi23, 0xEE);
}

/* ---------------------------------------------------------------- weights */

/* Row panel p (GEN_MR output channels) of gen_wino_transform_weight. */
AVX2 static void transform_weight_panel(float *u, const float *w, const gen_wino_geom *g, bool adjoint, int64_t p) {
  const float(*G)[3] = g->k == 3 ? G3 : G2;
  int k = (int)g->k, a = (int)g->alpha;
  int64_t plane = g->opad * g->c, kk = k * k;
  for (int64_t c0 = 0; c0 < g->c; c0 += LANES) {
    int lanes = g->c - c0 < LANES ? (int)(g->c - c0) : LANES;
    /* lane l reads channel c0 + l, or repeats channel c0 past the end of C (results unused) */
    __m256i step = _mm256_set1_epi32((int)(adjoint ? g->o * kk : kk));
    __m256i idx =
        _mm256_mullo_epi32(_mm256_min_epi32(_mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7), _mm256_set1_epi32(lanes - 1)), step);
    for (int lane = 0; lane < GEN_MR; lane++) {
      int64_t o = p * GEN_MR + lane;
      __m256 kern[3][3], t[6][3];
      for (int r = 0; r < k; r++)
        for (int s = 0; s < k; s++) {
          if (o >= g->o) {
            kern[r][s] = _mm256_setzero_ps();
            continue;
          }
          const float *base =
              adjoint ? w + ((c0 * g->o + o) * k + k - 1 - r) * k + k - 1 - s : w + ((o * g->c + c0) * k + r) * k + s;
          kern[r][s] = _mm256_i32gather_ps(base, idx, 4);
        }
      for (int i = 0; i < a; i++)
        for (int s = 0; s < k; s++) {
          __m256 acc = _mm256_mul_ps(_mm256_set1_ps(G[i][0]), kern[0][s]);
          for (int r = 1; r < k; r++) acc = _mm256_fmadd_ps(_mm256_set1_ps(G[i][r]), kern[r][s], acc);
          t[i][s] = acc;
        }
      float *dst = u + (p * g->c + c0) * GEN_MR + lane;
      for (int i = 0; i < a; i++)
        for (int j = 0; j < a; j++) {
          __m256 acc = _mm256_mul_ps(t[i][0], _mm256_set1_ps(G[j][0]));
          for (int s = 1; s < k; s++) acc = _mm256_fmadd_ps(t[i][s], _mm256_set1_ps(G[j][s]), acc);
          float vals[LANES];
          _mm256_storeu_ps(vals, acc);
          float *row = dst + (i * a + j) * plane;
          for (int l = 0; l < lanes; l++) row[l * GEN_MR] = vals[l];
        }
    }
  }
}

/* U = G w G^T, eight input channels at a time (lanes = c): the kernels come in by gathers, the
 * transforms are vector FMAs, and each plane's six-channel rows are written lane by lane. */
AVX2 void gen_wino_transform_weight(float *u, const float *w, const gen_wino_geom *g, bool adjoint) {
  int64_t panels = g->opad / GEN_MR, a = g->alpha;
  if (panels * g->c * a * a > GEN_PARALLEL_GRAIN) {
#pragma omp parallel for
    for (int64_t p = 0; p < panels; p++) transform_weight_panel(u, w, g, adjoint, p);
  } else {
    for (int64_t p = 0; p < panels; p++) transform_weight_panel(u, w, g, adjoint, p);
  }
}

/* Output channel o of gen_wino_weight_grad_finish. */
AVX2 static void weight_grad_finish_row(float *dw, const float *du, const gen_wino_geom *g, int64_t o) {
  const float(*G)[3] = g->k == 3 ? G3 : G2;
  int k = (int)g->k, a = (int)g->alpha;
  int64_t plane = g->opad * g->cpad, kk = k * k;
  for (int64_t c0 = 0; c0 < g->c; c0 += LANES) { /* cpad is a multiple of 16: the loads stay inside */
    int lanes = g->c - c0 < LANES ? (int)(g->c - c0) : LANES;
    __m256 t[3][6];
    for (int j = 0; j < a; j++) {
      __m256 col[6];
      for (int i = 0; i < a; i++) col[i] = _mm256_loadu_ps(du + (i * a + j) * plane + o * g->cpad + c0);
      for (int r = 0; r < k; r++) {
        __m256 acc = _mm256_mul_ps(_mm256_set1_ps(G[0][r]), col[0]);
        for (int i = 1; i < a; i++) acc = _mm256_fmadd_ps(_mm256_set1_ps(G[i][r]), col[i], acc);
        t[r][j] = acc;
      }
    }
    float *dst = dw + (o * g->c + c0) * kk;
    for (int r = 0; r < k; r++)
      for (int s = 0; s < k; s++) {
        __m256 acc = _mm256_mul_ps(t[r][0], _mm256_set1_ps(G[0][s]));
        for (int j = 1; j < a; j++) acc = _mm256_fmadd_ps(t[r][j], _mm256_set1_ps(G[j][s]), acc);
        float vals[LANES];
        _mm256_storeu_ps(vals, acc);
        for (int l = 0; l < lanes; l++) dst[l * kk + r * k + s] = vals[l];
      }
  }
}

/* dw {O, C, k, k} = G^T dU G, eight channels at a time along the rows of dU */
AVX2 void gen_wino_weight_grad_finish(float *dw, const float *du, const gen_wino_geom *g) {
  int64_t a = g->alpha;
  if (g->o * g->c * a * a > GEN_PARALLEL_GRAIN) {
#pragma omp parallel for
    for (int64_t o = 0; o < g->o; o++) weight_grad_finish_row(dw, du, g, o);
  } else {
    for (int64_t o = 0; o < g->o; o++) weight_grad_finish_row(dw, du, g, o);
  }
}

/* ---------------------------------------------------------------- input patches -> V */

/* Z {alpha, zw} of one band: B^T applied down the columns of input rows 4 ty - ph .. + alpha - 1
 * of a plane, column x' of Z being input column x' - pw. Only columns pw .. pw + w (rounded up to
 * whole vectors, the last one loaded masked, so zero past w) are written: the caller zeroes the
 * band buffer once, and the columns outside the image stay zero. */
AVX2 static void band_transform(const gen_wino_geom *g, const float *plane, int64_t ty, float *z) {
  int64_t zw = g->zw, w = g->w;
  int a = (int)g->alpha;
  const float *rows[6];
  for (int r = 0; r < a; r++) {
    int64_t y = ty * 4 - g->ph + r;
    rows[r] = y >= 0 && y < g->h ? plane + y * w : NULL;
  }
  z += g->pw;
  for (int64_t x = 0; x < w; x += LANES) {
    __m256i lanes =
        _mm256_cmpgt_epi32(_mm256_set1_epi32((int)(w - x < LANES ? w - x : LANES)), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
    __m256 d[6] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(),
                   _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps()},
           t[6];
    for (int r = 0; r < a; r++)
      if (rows[r]) d[r] = x + LANES <= w ? _mm256_loadu_ps(rows[r] + x) : _mm256_maskload_ps(rows[r] + x, lanes);
    bt(a, d, t);
    for (int i = 0; i < a; i++) _mm256_storeu_ps(z + i * zw + x, t[i]);
  }
}

/* The band's input rows, requested ahead: they usually come from L3 or memory, and the loads of
 * band_transform otherwise stall on them one plane after another. */
AVX2 static void prefetch_band(const gen_wino_geom *g, const float *plane, int64_t ty) {
  for (int r = 0; r < g->alpha; r++) {
    int64_t y = ty * 4 - g->ph + r;
    if (y < 0 || y >= g->h) continue;
    for (int64_t x = 0; x < g->w; x += 16) _mm_prefetch((const char *)(plane + y * g->w + x), _MM_HINT_T0);
  }
}

/* The horizontal pass of one channel: tile k's rows of its Z band at zt(k), the result into
 * dst + panel * C * 16 (dst: the channel's row of panel 0). */
static inline const float *band_tile(const gen_wino_geom *g, const float *bands, int64_t band0, int64_t t) {
  return bands + (t / g->tw - band0) * g->alpha * g->zw + t % g->tw * 4;
}

/* eight tiles per transpose, half a panel at a time */
AVX2 static void horizontal8(const gen_wino_geom *g, const float *bands, int64_t band0, int64_t t0, int64_t nt, int64_t ntp,
                             float *dst0, int64_t xi_stride) {
  int a = (int)g->alpha;
  for (int64_t q = 0; q < ntp * (GEN_NR / LANES); q++) {
    const float *zt[LANES];
    for (int k = 0; k < LANES; k++) zt[k] = q * LANES + k < nt ? band_tile(g, bands, band0, t0 + q * LANES + k) : NULL;
    float *dst = dst0 + q / 2 * g->c * GEN_NR + q % 2 * LANES;
    for (int i = 0; i < a; i++) {
      __m256 s[8], r[6];
      for (int k = 0; k < LANES; k++) s[k] = zt[k] ? _mm256_loadu_ps(zt[k] + i * g->zw) : _mm256_setzero_ps();
      transpose8(s);
      bt(a, s, r);
      for (int j = 0; j < a; j++) _mm256_storeu_ps(dst + (i * a + j) * xi_stride, r[j]);
    }
  }
}

/* AVX-512: a whole panel of sixteen tiles per transpose, the same arithmetic */
AVX512 static void horizontal16(const gen_wino_geom *g, const float *bands, int64_t band0, int64_t t0, int64_t nt, int64_t ntp,
                                float *dst0, int64_t xi_stride) {
  int a = (int)g->alpha;
  for (int64_t q = 0; q < ntp; q++) {
    const float *zt[GEN_NR];
    for (int k = 0; k < GEN_NR; k++) zt[k] = q * GEN_NR + k < nt ? band_tile(g, bands, band0, t0 + q * GEN_NR + k) : NULL;
    float *dst = dst0 + q * g->c * GEN_NR;
    for (int i = 0; i < a; i++) {
      __m512 s[8], r[6];
      for (int k = 0; k < LANES; k++) {
        __m256 lo = zt[k] ? _mm256_loadu_ps(zt[k] + i * g->zw) : _mm256_setzero_ps();
        __m256 hi = zt[k + LANES] ? _mm256_loadu_ps(zt[k + LANES] + i * g->zw) : _mm256_setzero_ps();
        s[k] = _mm512_insertf32x8(_mm512_castps256_ps512(lo), hi, 1);
      }
      transpose8x2(s);
      bt16(a, s, r);
      for (int j = 0; j < a; j++) _mm512_storeu_ps(dst + (i * a + j) * xi_stride, r[j]);
    }
  }
}

/* V panels of one chunk: for each channel, the Z bands of the chunk's tile rows, then per group
 * of eight (AVX-512: sixteen) tiles the horizontal pass through a transpose. */
AVX2 static void pack_input(const gen_wino_geom *g, const float *x, int64_t t0, int64_t nt, int64_t ntp, float *v,
                            int64_t xi_stride, float *bands) {
  bool wide = gen_isa() >= GEN_ISA_AVX512;
  int64_t zw = g->zw, hw = g->h * g->w, band0 = t0 / g->tw, band_floats = g->alpha * zw;
  int64_t nbands = (t0 + nt - 1) / g->tw - band0 + 1;
  memset(bands, 0, sizeof(float) * (size_t)(nbands * band_floats));
  for (int64_t c = 0; c < g->c; c++) {
    for (int64_t b = 0; b < nbands && c + 1 < g->c; b++) {
      int64_t band = band0 + b, n = band / g->th;
      prefetch_band(g, x + (n * g->c + c + 1) * hw, band % g->th);
    }
    for (int64_t b = 0; b < nbands; b++) {
      int64_t band = band0 + b, n = band / g->th;
      band_transform(g, x + (n * g->c + c) * hw, band % g->th, bands + b * band_floats);
    }
    if (wide)
      horizontal16(g, bands, band0, t0, nt, ntp, v + c * GEN_NR, xi_stride);
    else
      horizontal8(g, bands, band0, t0, nt, ntp, v + c * GEN_NR, xi_stride);
  }
}

/* ---------------------------------------------------------------- M -> output tiles */

/* Writes row i of a 4x4 output tile: v its four values */
static inline void store_tile_row(const gen_wino_geom *g, const tile_pos *p, int i, int64_t o, __m128 v, float *out) {
  if (p->oy + i >= g->ho) return;
  float *dst = out + (p->n * g->o + o) * g->ho * g->wo + (p->oy + i) * g->wo + p->ox;
  if (p->ox + 4 <= g->wo) {
    _mm_storeu_ps(dst, v);
  } else {
    float vals[4];
    _mm_storeu_ps(vals, v);
    for (int64_t j = 0; j < g->wo - p->ox; j++) dst[j] = vals[j];
  }
}

/* AVX-512: sixteen tiles (one panel of M) per pass, the same arithmetic as unpack_output */
AVX512 static void unpack_output16(const gen_wino_geom *g, const float *m, int64_t xi_stride, const tile_pos *pos, int64_t nt,
                                   int64_t ldm, const float *bias, float *out) {
  int a = (int)g->alpha;
  for (int64_t o = 0; o < g->o; o++) {
    __m512 b = _mm512_set1_ps(bias ? bias[o] : 0.0f);
    for (int64_t q = 0; q * GEN_NR < nt; q++) {
      __m512 cols[4][6];
      for (int s = 0; s < a; s++) {
        __m512 col[6] = {_mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps(),
                         _mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps()},
               y[4];
        for (int r = 0; r < a; r++) col[r] = _mm512_loadu_ps(m + (r * a + s) * xi_stride + o * ldm + q * GEN_NR);
        at16(a, col, y);
        for (int i = 0; i < 4; i++) cols[i][s] = y[i];
      }
      for (int i = 0; i < 4; i++) {
        __m512 y[4];
        float rows[4][GEN_NR];
        at16(a, cols[i], y);
        for (int j = 0; j < 4; j++) y[j] = _mm512_add_ps(y[j], b);
        transpose4x16(y);
        for (int j = 0; j < 4; j++) _mm512_storeu_ps(rows[j], y[j]);
        for (int k = 0; k < GEN_NR && q * GEN_NR + k < nt; k++)
          store_tile_row(g, &pos[q * GEN_NR + k], i, o, _mm_loadu_ps(&rows[k % 4][k / 4 * 4]), out);
      }
    }
  }
}

AVX2 static void unpack_output(const gen_wino_geom *g, const float *m, int64_t xi_stride, const tile_pos *pos, int64_t nt,
                               int64_t ldm, const float *bias, float *out) {
  if (gen_isa() >= GEN_ISA_AVX512) {
    unpack_output16(g, m, xi_stride, pos, nt, ldm, bias, out);
    return;
  }
  int64_t plane = g->ho * g->wo;
  int a = (int)g->alpha;
  for (int64_t o = 0; o < g->o; o++) {
    __m256 b = _mm256_set1_ps(bias ? bias[o] : 0.0f);
    for (int64_t q = 0; q * LANES < nt; q++) {
      __m256 cols[4][6]; /* A^T applied down each of the alpha columns */
      for (int s = 0; s < a; s++) {
        __m256 col[6] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(),
                         _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps()},
               y[4];
        for (int r = 0; r < a; r++) col[r] = _mm256_loadu_ps(m + (r * a + s) * xi_stride + o * ldm + q * LANES);
        at(a, col, y);
        for (int i = 0; i < 4; i++) cols[i][s] = y[i];
      }
      for (int i = 0; i < 4; i++) {
        __m256 y[4];
        at(a, cols[i], y);
        for (int j = 0; j < 4; j++) y[j] = _mm256_add_ps(y[j], b);
        transpose4x8(y);
        for (int k = 0; k < LANES && q * LANES + k < nt; k++) {
          const tile_pos *p = &pos[q * LANES + k];
          if (p->oy + i >= g->ho) continue;
          __m128 v = k < 4 ? _mm256_castps256_ps128(y[k]) : _mm256_extractf128_ps(y[k - 4], 1);
          float *dst = out + (p->n * g->o + o) * plane + (p->oy + i) * g->wo + p->ox;
          if (p->ox + 4 <= g->wo) {
            _mm_storeu_ps(dst, v);
          } else {
            float vals[4];
            _mm_storeu_ps(vals, v);
            for (int64_t j = 0; j < g->wo - p->ox; j++) dst[j] = vals[j];
          }
        }
      }
    }
  }
}

/* ---------------------------------------------------------------- output gradient -> dM */

AVX2 static void pack_output_grad(const gen_wino_geom *g, const float *dout, const tile_pos *pos, int64_t nt, int64_t ntp,
                                  float *dm, int64_t xi_stride) {
  int64_t plane = g->ho * g->wo;
  int a = (int)g->alpha;
  for (int64_t o = 0; o < g->o; o++)
    for (int64_t q = 0; q < ntp * (GEN_NR / LANES); q++) {
      __m256 rows[4][4]; /* rows[i][j]: element (i, j) of the eight 4x4 gradient tiles */
      for (int i = 0; i < 4; i++) {
        __m128 part[LANES];
        for (int k = 0; k < LANES; k++) {
          const tile_pos *p = &pos[q * LANES + k];
          part[k] = _mm_setzero_ps();
          if (q * LANES + k >= nt || p->oy + i >= g->ho) continue;
          const float *src = dout + (p->n * g->o + o) * plane + (p->oy + i) * g->wo + p->ox;
          if (p->ox + 4 <= g->wo) {
            part[k] = _mm_loadu_ps(src);
          } else {
            float vals[4] = {0, 0, 0, 0};
            for (int64_t j = 0; j < g->wo - p->ox; j++) vals[j] = src[j];
            part[k] = _mm_loadu_ps(vals);
          }
        }
        for (int k = 0; k < 4; k++) rows[i][k] = _mm256_set_m128(part[k + 4], part[k]);
        transpose4x8(rows[i]);
      }
      __m256 t[6][4]; /* A applied down each of the four columns: alpha rows */
      for (int j = 0; j < 4; j++) {
        __m256 col[4] = {rows[0][j], rows[1][j], rows[2][j], rows[3][j]}, r[6];
        a_adj(a, col, r);
        for (int i = 0; i < a; i++) t[i][j] = r[i];
      }
      float *dst = dm + (q / 2 * g->o + o) * GEN_NR + q % 2 * LANES;
      for (int i = 0; i < a; i++) {
        __m256 r[6];
        a_adj(a, t[i], r);
        for (int j = 0; j < a; j++) _mm256_storeu_ps(dst + (i * a + j) * xi_stride, r[j]);
      }
    }
}

/* ---------------------------------------------------------------- tile lanes -> GEMM panels */

/* One plane of V {tile panels, C, 16} as B panels {cpad / 16, K, 16} (K = ntp * 16), zero past C */
AVX2 static void repack_b(const float *v, int64_t c, int64_t cpad, int64_t ntp, float *b) {
  int64_t k = ntp * GEN_NR;
  for (int64_t tp = 0; tp < ntp; tp++)
    for (int64_t c0 = 0; c0 < cpad; c0 += LANES)
      for (int th = 0; th < GEN_NR; th += LANES) {
        __m256 r[8];
        for (int i = 0; i < LANES; i++)
          r[i] = c0 + i < c ? _mm256_loadu_ps(v + (tp * c + c0 + i) * GEN_NR + th) : _mm256_setzero_ps();
        transpose8(r);
        for (int s = 0; s < LANES; s++)
          _mm256_storeu_ps(b + (c0 / GEN_NR * k + tp * GEN_NR + th + s) * GEN_NR + c0 % GEN_NR, r[s]);
      }
}

/* One plane of dM {tile panels, O, 16} as A panels {opad / 6, K, 6}, zero past O. Each row of six
 * is stored as eight floats in increasing address order, so the two extra ones are overwritten by
 * the next row (or land in the two floats of slack after the last panel): no masked stores. */
AVX2 static void repack_a(const float *dm, int64_t o, int64_t opad, int64_t ntp, float *a) {
  int64_t k = ntp * GEN_NR;
  for (int64_t o0 = 0; o0 < opad; o0 += GEN_MR)
    for (int64_t tp = 0; tp < ntp; tp++)
      for (int th = 0; th < GEN_NR; th += LANES) {
        __m256 r[8];
        for (int i = 0; i < LANES; i++)
          r[i] = i < GEN_MR && o0 + i < o ? _mm256_loadu_ps(dm + (tp * o + o0 + i) * GEN_NR + th) : _mm256_setzero_ps();
        transpose8(r);
        for (int s = 0; s < LANES; s++) _mm256_storeu_ps(a + (o0 / GEN_MR * k + tp * GEN_NR + th + s) * GEN_MR, r[s]);
      }
}

#else
void gen_wino_transform_weight(float *u, const float *w, const gen_wino_geom *g, bool adjoint) {}
void gen_wino_weight_grad_finish(float *dw, const float *du, const gen_wino_geom *g) {}
static void repack_b(const float *v, int64_t c, int64_t cpad, int64_t ntp, float *b) {}
static void repack_a(const float *dm, int64_t o, int64_t opad, int64_t ntp, float *a) {}
static void pack_input(const gen_wino_geom *g, const float *x, int64_t t0, int64_t nt, int64_t ntp, float *v, int64_t xi_stride,
                       float *bands) {}
static void unpack_output(const gen_wino_geom *g, const float *m, int64_t xi_stride, const tile_pos *pos, int64_t nt, int64_t ldm,
                          const float *bias, float *out) {}
static void pack_output_grad(const gen_wino_geom *g, const float *dout, const tile_pos *pos, int64_t nt, int64_t ntp, float *dm,
                             int64_t xi_stride) {}
#endif

/* ---------------------------------------------------------------- the chunk drivers */

void gen_wino_forward(float *out, const float *x, const float *u, const float *bias, const gen_wino_geom *g, int64_t t0,
                      int64_t nt, float *scratch) {
  tile_pos pos[MAX_CHUNK_TILES];
  int64_t ntp = (nt + GEN_NR - 1) / GEN_NR, ldm = ntp * GEN_NR, vs = ldm * g->c + PLANE_PAD, ms = g->opad * ldm + PLANE_PAD;
  float *v = scratch, *m = v + g->planes * vs, *bands = m + g->planes * ms;
  locate(g, t0, nt, pos);
  pack_input(g, x, t0, nt, ntp, v, vs, bands);
  for (int xi = 0; xi < g->planes; xi++)
    gen_gemm_packed(m + xi * ms, u + xi * g->opad * g->c, v + xi * vs, g->opad / GEN_MR, ntp, g->c, ldm, false);
  unpack_output(g, m, ms, pos, nt, ldm, bias, out);
}

void gen_wino_weight_grad(float *du, const float *x, const float *dout, const gen_wino_geom *g, int64_t t0, int64_t nt,
                          bool accumulate, float *scratch) {
  tile_pos pos[MAX_CHUNK_TILES];
  int64_t ntp = (nt + GEN_NR - 1) / GEN_NR, ldm = ntp * GEN_NR, vs = ldm * g->c + PLANE_PAD, dms = ldm * g->o + PLANE_PAD;
  float *v = scratch, *dm = v + g->planes * vs, *a = dm + g->planes * dms, *b = a + g->opad * ldm + LANES,
        *bands = b + g->cpad * ldm;
  locate(g, t0, nt, pos);
  pack_input(g, x, t0, nt, ntp, v, vs, bands);
  pack_output_grad(g, dout, pos, nt, ntp, dm, dms);
  /* per position, both operands move from tile lanes into the micro-kernel's panels (K = tiles) */
  for (int xi = 0; xi < g->planes; xi++) {
    repack_a(dm + xi * dms, g->o, g->opad, ntp, a);
    repack_b(v + xi * vs, g->c, g->cpad, ntp, b);
    gen_gemm_packed(du + xi * g->opad * g->cpad, a, b, g->opad / GEN_MR, g->cpad / GEN_NR, ldm, g->cpad, accumulate);
  }
}
