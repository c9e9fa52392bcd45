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
 *
 * Everything runs on eight tiles at once, one per AVX lane, and every operand has the tiles in
 * its lanes (gemm_packed.h panels of 16 tiles):
 *   V  {36, tile panels, C, 16}   transformed input patches      (forward B; weight-grad B)
 *   U  {36, O panels, C, 6}       transformed weights            (forward A)
 *   M  {36, opad, tile panels*16} forward products, read back by the output transform
 *   dM {36, tile panels, O, 16}   transformed output gradients   (weight-grad A)
 * B^T d B is separable: the vertical pass runs along whole rows of a tile row's six input rows
 * (a "band", zero-padded into Z), so it is plain contiguous SIMD; the horizontal pass loads each
 * of eight tiles' 8-wide row of Z and transposes 8x8, turning tiles into lanes without a gather.
 * The output and output-gradient tiles go through 4x8 transposes the same way. Lanes past the
 * chunk are zero tiles, so their products are zero and never written out.
 */
#include "winograd.h"

#include <string.h>

#include "gemm_packed.h"

#define LANES 8
#define MAX_CHUNK_TILES 512
/* The 36 planes of an operand are written together; one cache line between them keeps them off
 * the same L1 sets (plane sizes are often multiples of 4 KB, which made every store a conflict). */
#define PLANE_PAD 16
/* Operand bytes of one chunk: L2-sized. */
#define CHUNK_BYTES ((int64_t)1 << 20)

static int64_t round_up(int64_t a, int64_t m) { return (a + m - 1) / m * m; }

bool gen_wino_available(void) { return gen_gemm_packed_available(); }

gen_wino_geom gen_wino_geometry(int64_t n, int64_t c, int64_t h, int64_t w, int64_t o, int64_t ph, int64_t pw) {
  gen_wino_geom g = {.n = n, .c = c, .h = h, .w = w, .o = o, .ph = ph, .pw = pw, .ho = h + 2 * ph - 2, .wo = w + 2 * pw - 2};
  g.th = (g.ho + 3) / 4, g.tw = (g.wo + 3) / 4;
  g.opad = round_up(o, GEN_MR), g.cpad = round_up(c, GEN_NR);
  g.zw = round_up(4 * g.tw + 4, LANES); /* a tile's 8-wide row read at 4 tx stays inside */
  return g;
}

/* Tiles per chunk: a multiple of 16 whose operands (bytes_per_tile each) fit the budget. */
static int64_t chunk_tiles(int64_t bytes_per_tile, int64_t budget) {
  int64_t nt = budget / bytes_per_tile / GEN_NR * GEN_NR;
  return nt < GEN_NR ? GEN_NR : nt > MAX_CHUNK_TILES ? MAX_CHUNK_TILES : nt;
}
/* Z bands of a chunk of nt tiles (it may start and end inside a tile row) */
static int64_t band_floats(const gen_wino_geom *g, int64_t nt) { return ((nt - 1) / g->tw + 2) * 6 * g->zw; }

int64_t gen_wino_weight_floats(const gen_wino_geom *g) { return 36 * g->opad * g->c; }
int64_t gen_wino_forward_chunk_tiles(const gen_wino_geom *g) {
  return chunk_tiles(36 * (g->c + g->opad) * (int64_t)sizeof(float), CHUNK_BYTES);
}
int64_t gen_wino_forward_scratch_floats(const gen_wino_geom *g) {
  int64_t nt = gen_wino_forward_chunk_tiles(g);
  return 36 * ((g->c + g->opad) * nt + 2 * PLANE_PAD) + band_floats(g, nt);
}
int64_t gen_wino_weight_grad_chunk_tiles(const gen_wino_geom *g) {
  return chunk_tiles(36 * (g->c + g->o) * (int64_t)sizeof(float), CHUNK_BYTES);
}
int64_t gen_wino_weight_grad_scratch_floats(const gen_wino_geom *g) {
  int64_t nt = gen_wino_weight_grad_chunk_tiles(g);
  return 36 * ((g->c + g->o) * nt + 2 * PLANE_PAD) + (g->cpad + g->opad) * nt + LANES + band_floats(g, nt);
}
int64_t gen_wino_du_floats(const gen_wino_geom *g) { return 36 * g->opad * g->cpad; }

/* ---------------------------------------------------------------- weights (once per call, in double) */

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

/* dw {O, C, 3, 3} = G^T dU G */
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
#define AVX2 __attribute__((target("avx2,fma")))

/* ---------------------------------------------------------------- 1-d transforms on vectors */

/* (r0 .. r5) = B^T (d0 .. d5) */
AVX2 static inline void bt6(const __m256 d[6], __m256 r[6]) {
  __m256 four = _mm256_set1_ps(4), five = _mm256_set1_ps(5), two = _mm256_set1_ps(2);
  __m256 a = _mm256_fnmadd_ps(four, d[2], d[4]), b = _mm256_fnmadd_ps(four, d[1], d[3]);
  __m256 c = _mm256_sub_ps(d[4], d[2]), e = _mm256_mul_ps(two, _mm256_sub_ps(d[3], d[1]));
  r[0] = _mm256_fmadd_ps(four, d[0], _mm256_fnmadd_ps(five, d[2], d[4]));
  r[1] = _mm256_add_ps(a, b);
  r[2] = _mm256_sub_ps(a, b);
  r[3] = _mm256_add_ps(c, e);
  r[4] = _mm256_sub_ps(c, e);
  r[5] = _mm256_fmadd_ps(four, d[1], _mm256_fnmadd_ps(five, d[3], d[5]));
}

/* (y0 .. y3) = A^T (m0 .. m5) */
AVX2 static inline void at6(const __m256 m[6], __m256 y[4]) {
  __m256 a = _mm256_add_ps(m[1], m[2]), b = _mm256_sub_ps(m[1], m[2]);
  __m256 c = _mm256_add_ps(m[3], m[4]), d = _mm256_sub_ps(m[3], m[4]);
  y[0] = _mm256_add_ps(_mm256_add_ps(m[0], a), c);
  y[1] = _mm256_fmadd_ps(_mm256_set1_ps(2), d, b);
  y[2] = _mm256_fmadd_ps(_mm256_set1_ps(4), c, a);
  y[3] = _mm256_add_ps(_mm256_fmadd_ps(_mm256_set1_ps(8), d, b), m[5]);
}

/* (r0 .. r5) = A (g0 .. g3), the adjoint of at6 */
AVX2 static inline void a4(const __m256 g[4], __m256 r[6]) {
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

/* ---------------------------------------------------------------- input patches -> V */

/* Z {6, zw} of one band: B^T applied down the columns of input rows 4 ty - ph .. + 5 of a plane,
 * column x' of Z being input column x' - pw (zero outside the image). */
AVX2 static void band_transform(const gen_wino_geom *g, const float *plane, int64_t ty, float *z) {
  int64_t zw = g->zw, w = g->w, pw = g->pw;
  const float *rows[6];
  for (int r = 0; r < 6; r++) {
    int64_t y = ty * 4 - g->ph + r;
    rows[r] = y >= 0 && y < g->h ? plane + y * w : NULL;
  }
  for (int i = 0; i < 6; i++) {
    for (int64_t x = 0; x < pw; x++) z[i * zw + x] = 0.0f;
    for (int64_t x = pw + w; x < zw; x++) z[i * zw + x] = 0.0f;
  }
  /* full vectors, then the last w % 8 columns through a buffer (masked stores are slow on AMD) */
  int64_t x = 0;
  for (; x + LANES <= w; x += LANES) {
    __m256 d[6], t[6];
    for (int r = 0; r < 6; r++) d[r] = rows[r] ? _mm256_loadu_ps(rows[r] + x) : _mm256_setzero_ps();
    bt6(d, t);
    for (int i = 0; i < 6; i++) _mm256_storeu_ps(z + i * zw + pw + x, t[i]);
  }
  if (x < w) {
    float buf[6][LANES] = {{0}};
    __m256 d[6], t[6];
    for (int r = 0; r < 6; r++) {
      for (int64_t j = 0; rows[r] && x + j < w; j++) buf[r][j] = rows[r][x + j];
      d[r] = _mm256_loadu_ps(buf[r]);
    }
    bt6(d, t);
    for (int i = 0; i < 6; i++) {
      _mm256_storeu_ps(buf[i], t[i]);
      for (int64_t j = 0; x + j < w; j++) z[i * zw + pw + x + j] = buf[i][j];
    }
  }
}

/* The band's input rows, requested ahead: they usually come from L3 or memory, and the loads of
 * band_transform otherwise stall on them one plane after another. */
AVX2 static void prefetch_band(const gen_wino_geom *g, const float *plane, int64_t ty) {
  for (int r = 0; r < 6; r++) {
    int64_t y = ty * 4 - g->ph + r;
    if (y < 0 || y >= g->h) continue;
    for (int64_t x = 0; x < g->w; x += 16) _mm_prefetch((const char *)(plane + y * g->w + x), _MM_HINT_T0);
  }
}

/* V panels of one chunk: for each channel, the Z bands of the chunk's tile rows, then per group
 * of eight tiles the horizontal pass through a transpose. */
AVX2 static void pack_input(const gen_wino_geom *g, const float *x, int64_t t0, int64_t nt, int64_t ntp, float *v, int64_t xi_stride,
                            float *bands) {
  int64_t zw = g->zw, hw = g->h * g->w, band0 = t0 / g->tw;
  int64_t nbands = (t0 + nt - 1) / g->tw - band0 + 1;
  for (int64_t c = 0; c < g->c; c++) {
    for (int64_t b = 0; b < nbands && c + 1 < g->c; b++) {
      int64_t band = band0 + b, n = band / g->th;
      prefetch_band(g, x + (n * g->c + c + 1) * hw, band % g->th);
    }
    for (int64_t b = 0; b < nbands; b++) {
      int64_t band = band0 + b, n = band / g->th;
      band_transform(g, x + (n * g->c + c) * hw, band % g->th, bands + b * 6 * zw);
    }
    for (int64_t q = 0; q < ntp * (GEN_NR / LANES); q++) {
      const float *zt[LANES];
      for (int k = 0; k < LANES; k++) {
        int64_t t = t0 + q * LANES + k;
        zt[k] = q * LANES + k < nt ? bands + (t / g->tw - band0) * 6 * zw + t % g->tw * 4 : NULL;
      }
      float *dst = v + (q / 2 * g->c + c) * GEN_NR + q % 2 * LANES;
      for (int i = 0; i < 6; i++) {
        __m256 s[8], r[6];
        for (int k = 0; k < LANES; k++) s[k] = zt[k] ? _mm256_loadu_ps(zt[k] + i * zw) : _mm256_setzero_ps();
        transpose8(s);
        bt6(s, r);
        for (int j = 0; j < 6; j++) _mm256_storeu_ps(dst + (i * 6 + j) * xi_stride, r[j]);
      }
    }
  }
}

/* ---------------------------------------------------------------- M -> output tiles */

AVX2 static void unpack_output(const gen_wino_geom *g, const float *m, int64_t xi_stride, const tile_pos *pos, int64_t nt, int64_t ldm,
                               const float *bias, float *out) {
  int64_t plane = g->ho * g->wo;
  for (int64_t o = 0; o < g->o; o++) {
    __m256 b = _mm256_set1_ps(bias ? bias[o] : 0.0f);
    for (int64_t q = 0; q * LANES < nt; q++) {
      __m256 cols[4][6]; /* A^T applied down each of the six columns */
      for (int s = 0; s < 6; s++) {
        __m256 col[6], y[4];
        for (int r = 0; r < 6; r++) col[r] = _mm256_loadu_ps(m + (r * 6 + s) * xi_stride + o * ldm + q * LANES);
        at6(col, y);
        for (int i = 0; i < 4; i++) cols[i][s] = y[i];
      }
      for (int i = 0; i < 4; i++) {
        __m256 y[4];
        at6(cols[i], y);
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

AVX2 static void pack_output_grad(const gen_wino_geom *g, const float *dout, const tile_pos *pos, int64_t nt, int64_t ntp, float *dm,
                                  int64_t xi_stride) {
  int64_t plane = g->ho * g->wo;
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
      __m256 t[6][4]; /* A applied down each of the four columns */
      for (int j = 0; j < 4; j++) {
        __m256 col[4] = {rows[0][j], rows[1][j], rows[2][j], rows[3][j]}, r[6];
        a4(col, r);
        for (int i = 0; i < 6; i++) t[i][j] = r[i];
      }
      float *dst = dm + (q / 2 * g->o + o) * GEN_NR + q % 2 * LANES;
      for (int i = 0; i < 6; i++) {
        __m256 r[6];
        a4(t[i], r);
        for (int j = 0; j < 6; j++) _mm256_storeu_ps(dst + (i * 6 + j) * xi_stride, r[j]);
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
        for (int i = 0; i < LANES; i++) r[i] = c0 + i < c ? _mm256_loadu_ps(v + (tp * c + c0 + i) * GEN_NR + th) : _mm256_setzero_ps();
        transpose8(r);
        for (int s = 0; s < LANES; s++) _mm256_storeu_ps(b + (c0 / GEN_NR * k + tp * GEN_NR + th + s) * GEN_NR + c0 % GEN_NR, r[s]);
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

void gen_wino_forward(const gen_wino_geom *g, const float *x, const float *u, const float *bias, float *out, int64_t t0,
                      int64_t nt, float *scratch) {
  tile_pos pos[MAX_CHUNK_TILES];
  int64_t ntp = (nt + GEN_NR - 1) / GEN_NR, ldm = ntp * GEN_NR, vs = ldm * g->c + PLANE_PAD, ms = g->opad * ldm + PLANE_PAD;
  float *v = scratch, *m = v + 36 * vs, *bands = m + 36 * ms;
  locate(g, t0, nt, pos);
  pack_input(g, x, t0, nt, ntp, v, vs, bands);
  for (int xi = 0; xi < 36; xi++)
    gen_gemm_packed(g->opad / GEN_MR, ntp, g->c, u + xi * g->opad * g->c, v + xi * vs, m + xi * ms, ldm, false);
  unpack_output(g, m, ms, pos, nt, ldm, bias, out);
}

void gen_wino_weight_grad(const gen_wino_geom *g, const float *x, const float *dout, int64_t t0, int64_t nt, float *du,
                          bool accumulate, float *scratch) {
  tile_pos pos[MAX_CHUNK_TILES];
  int64_t ntp = (nt + GEN_NR - 1) / GEN_NR, ldm = ntp * GEN_NR, vs = ldm * g->c + PLANE_PAD, dms = ldm * g->o + PLANE_PAD;
  float *v = scratch, *dm = v + 36 * vs, *a = dm + 36 * dms, *b = a + g->opad * ldm + LANES, *bands = b + g->cpad * ldm;
  locate(g, t0, nt, pos);
  pack_input(g, x, t0, nt, ntp, v, vs, bands);
  pack_output_grad(g, dout, pos, nt, ntp, dm, dms);
  /* per position, both operands move from tile lanes into the micro-kernel's panels (K = tiles) */
  for (int xi = 0; xi < 36; xi++) {
    repack_a(dm + xi * dms, g->o, g->opad, ntp, a);
    repack_b(v + xi * vs, g->c, g->cpad, ntp, b);
    gen_gemm_packed(g->opad / GEN_MR, g->cpad / GEN_NR, ldm, a, b, du + xi * g->opad * g->cpad, g->cpad, accumulate);
  }
}
