/*
 * gemm_sgemm.c — gen's own float32 GEMM for AVX-512 CPUs (see gemm_sgemm.h).
 *
 * BLIS's loop structure (Van Zee and van de Geijn, "BLIS: A Framework for Rapidly Instantiating
 * BLAS Functionality", 2015): for each NC-wide column block of op(B) and KC-long slice of the
 * reduction, the slice of op(B) is packed into 32-column panels (KC x 32, one panel fits L1; a
 * transposed B goes through 16 x 16 register transposes); for each MC-row block of op(A) (it stays
 * in L2) the micro-kernel sweeps a 12 x 32 tile of C per panel. The tile lives in 24 ZMM
 * accumulators for the whole KC loop: per k, two loads of B, twelve broadcasts of A and 24 FMAs,
 * enough independent chains to cover the FMA latency on two pipes. A product usually does not pack
 * A: the twelve broadcasts read twelve rows of A (or, transposed, twelve neighbours in one row)
 * where they are, which saves a copy as long as the work for the small products of attention
 * tiles; wide ones with an aligned row stride pack it into 12-row panels (see gen_sgemm).
 *
 * Rounding: each element of C is sum_k a b accumulated in k order inside a KC slice, the slices
 * added in order; the blocks are fixed constants, so the bits depend on the shape alone (not on
 * where a caller cuts C into pieces or how many threads it runs).
 */
#include "gemm_sgemm.h"

#include <stdlib.h>
#include <string.h>

#include "isa.h"

#define MR             12
#define NR             32
#define KC             256
#define MC             144  /* 144 rows of A x KC: 144 KB at KC = 256, inside a 1 MB L2 */
#define NC             2048 /* op(B) packed per slice: up to 2 MB, from L3 */
#define PACK_A_COLUMNS 256
#define ALIAS_FLOATS   512 /* row strides of a multiple of 2 KB put twelve rows in a few L1 sets */

static int64_t round_up(int64_t a, int64_t m) { return (a + m - 1) / m * m; }

/* Per-thread packing buffers, grown to the largest need seen and kept (one per thread). */
static _Thread_local float *pack_buf;
static _Thread_local int64_t pack_cap;

static float *pack_space(int64_t floats) {
  if (floats > pack_cap) {
    free(pack_buf);
    pack_buf = aligned_alloc(64, (size_t)round_up(floats, 16) * sizeof(float));
    pack_cap = pack_buf ? floats : 0;
  }
  return pack_buf;
}

#if GEN_ISA_X86
#include <immintrin.h>

/* rows r[i] -> r[i] = column i, for a 16 x 16 block: 32-bit, then 64-bit interleaves within
 * 128-bit lanes, then two rounds of lane shuffles */
GEN_TARGET_AVX512 static inline void transpose16(__m512 r[16]) {
  __m512 t[16], u[16];
  for (int i = 0; i < 8; i++) {
    t[2 * i] = _mm512_unpacklo_ps(r[2 * i], r[2 * i + 1]);
    t[2 * i + 1] = _mm512_unpackhi_ps(r[2 * i], r[2 * i + 1]);
  }
  for (int i = 0; i < 4; i++) /* u[4i + m], lane L: column 4L + m of rows 4i .. 4i + 3 */
    for (int h = 0; h < 2; h++) {
      __m512d x = _mm512_castps_pd(t[4 * i + h]), y = _mm512_castps_pd(t[4 * i + h + 2]);
      u[4 * i + 2 * h] = _mm512_castpd_ps(_mm512_unpacklo_pd(x, y));
      u[4 * i + 2 * h + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(x, y));
    }
  for (int m = 0; m < 4; m++) {
    __m512 v0 = _mm512_shuffle_f32x4(u[m], u[4 + m], 0x88), v1 = _mm512_shuffle_f32x4(u[m], u[4 + m], 0xDD);
    __m512 w0 = _mm512_shuffle_f32x4(u[8 + m], u[12 + m], 0x88), w1 = _mm512_shuffle_f32x4(u[8 + m], u[12 + m], 0xDD);
    r[m] = _mm512_shuffle_f32x4(v0, w0, 0x88);
    r[8 + m] = _mm512_shuffle_f32x4(v0, w0, 0xDD);
    r[4 + m] = _mm512_shuffle_f32x4(v1, w1, 0x88);
    r[12 + m] = _mm512_shuffle_f32x4(v1, w1, 0xDD);
  }
}

/* op(B) reduction [p0, p0 + kc), columns [j0, j0 + nc) -> panels of NR columns, (k, j) at [k * NR + j],
 * zero past nc */
GEN_TARGET_AVX512 static void pack_b(float *dst, const float *b, int64_t ldb, bool tb, int64_t p0, int64_t kc, int64_t j0,
                                     int64_t nc) {
  for (int64_t jp = 0; jp < nc; jp += NR) {
    float *panel = dst + jp * kc;
    int64_t cols = nc - jp < NR ? nc - jp : NR;
    if (!tb) { /* two vector copies a row (masked past nc: zeros), not a memcpy call per 128 bytes */
      __mmask16 m0 = cols >= 16 ? 0xFFFF : (__mmask16)((1u << cols) - 1), m1 = cols >= NR ? 0xFFFF
                                                                               : cols <= 16
                                                                                   ? 0
                                                                                   : (__mmask16)((1u << (cols - 16)) - 1);
      const float *src = b + p0 * ldb + j0 + jp;
      for (int64_t k = 0; k < kc; k++, src += ldb) {
        _mm512_store_ps(panel + k * NR, _mm512_maskz_loadu_ps(m0, src));
        _mm512_store_ps(panel + k * NR + 16, _mm512_maskz_loadu_ps(m1, src + 16));
      }
      continue;
    }
    /* op(B)[k][j] = b[j * ldb + k]: 16 columns x 16 k at a time through registers */
    if (cols < NR) memset(panel, 0, sizeof(float) * (size_t)(kc * NR));
    for (int64_t h = 0; h < cols; h += 16) {
      int64_t hc = cols - h < 16 ? cols - h : 16, k = 0;
      const float *src = b + (j0 + jp + h) * ldb + p0;
      if (hc == 16)
        for (; k + 16 <= kc; k += 16) {
          __m512 r[16];
          for (int j = 0; j < 16; j++) r[j] = _mm512_loadu_ps(src + j * ldb + k);
          transpose16(r);
          for (int i = 0; i < 16; i++) _mm512_storeu_ps(panel + (k + i) * NR + h, r[i]);
        }
      for (int64_t j = 0; j < hc; j++)
        for (int64_t kk = k; kk < kc; kk++) panel[kk * NR + h + j] = src[j * ldb + kk];
    }
  }
}

/* c[r * ldc + j] = alpha ab + beta c (beta 0: c is not read) for the full 12 x 32 tile; row r of
 * op(A) starts at a[r] and steps by ks along k */
GEN_TARGET_AVX512 static void micro_12x32(int64_t kc, const float *const a[MR], int64_t ks, const float *b, float *c, int64_t ldc,
                                          float alpha, float beta) {
  __m512 acc[MR][2];
  for (int r = 0; r < MR; r++) acc[r][0] = acc[r][1] = _mm512_setzero_ps();
  const float *a0 = a[0], *a1 = a[1], *a2 = a[2], *a3 = a[3], *a4 = a[4], *a5 = a[5];
  const float *a6 = a[6], *a7 = a[7], *a8 = a[8], *a9 = a[9], *a10 = a[10], *a11 = a[11];
  for (int64_t k = 0, o = 0; k < kc; k++, o += ks) {
    __m512 b0 = _mm512_loadu_ps(b), b1 = _mm512_loadu_ps(b + 16), ar;
#define ROW(r, ap)                                                                                                               \
  ar = _mm512_set1_ps(ap[o]), acc[r][0] = _mm512_fmadd_ps(ar, b0, acc[r][0]), acc[r][1] = _mm512_fmadd_ps(ar, b1, acc[r][1])
    ROW(0, a0), ROW(1, a1), ROW(2, a2), ROW(3, a3), ROW(4, a4), ROW(5, a5);
    ROW(6, a6), ROW(7, a7), ROW(8, a8), ROW(9, a9), ROW(10, a10), ROW(11, a11);
#undef ROW
    b += NR;
  }
  __m512 va = _mm512_set1_ps(alpha), vb = _mm512_set1_ps(beta);
  for (int r = 0; r < MR; r++) {
    float *row = c + r * ldc;
    for (int h = 0; h < 2; h++) {
      __m512 v = acc[r][h];
      if (alpha != 1.0f) v = _mm512_mul_ps(va, v);
      if (beta == 1.0f)
        v = _mm512_add_ps(v, _mm512_loadu_ps(row + 16 * h));
      else if (beta != 0.0f)
        v = _mm512_add_ps(v, _mm512_mul_ps(vb, _mm512_loadu_ps(row + 16 * h)));
      _mm512_storeu_ps(row + 16 * h, v);
    }
  }
}

/* op(A) rows [0, mc) x reduction [0, kc) at a (element (i, k) at a[i * rs + k * ks]) -> panels of MR
 * rows, (r, k) at [k * MR + r]; rows past mc repeat the last one (their results are not stored).
 * Rows of A (ks = 1) go 16 k at a time through the register transpose, twelve lanes stored;
 * a transposed A (rs = 1) has the twelve values of one k side by side already. */
GEN_TARGET_AVX512 static void pack_a(float *dst, const float *a, int64_t rs, int64_t ks, int64_t mc, int64_t kc) {
  const __mmask16 twelve = (1u << MR) - 1;
  for (int64_t ip = 0; ip < mc; ip += MR) {
    float *panel = dst + ip * kc;
    int64_t rows = mc - ip < MR ? mc - ip : MR, k = 0;
    const float *src[MR];
    for (int r = 0; r < MR; r++) src[r] = a + (ip + (r < rows ? r : rows - 1)) * rs;
    if (rs == 1) {
      __mmask16 live = (__mmask16)((1u << rows) - 1);
      for (; k < kc; k++) {
        __m512 v = _mm512_maskz_loadu_ps(live, src[0] + k * ks);
        if (rows < MR) v = _mm512_mask_blend_ps(live, _mm512_set1_ps(src[0][k * ks + rows - 1]), v);
        _mm512_mask_storeu_ps(panel + k * MR, twelve, v);
      }
      continue;
    }
    for (; k + 16 <= kc; k += 16) {
      __m512 r[16];
      for (int i = 0; i < MR; i++) r[i] = _mm512_loadu_ps(src[i] + k);
      for (int i = MR; i < 16; i++) r[i] = r[MR - 1];
      transpose16(r);
      for (int i = 0; i < 16; i++) _mm512_mask_storeu_ps(panel + (k + i) * MR, twelve, r[i]);
    }
    for (; k < kc; k++)
      for (int r = 0; r < MR; r++) panel[k * MR + r] = src[r][k * ks];
  }
}

/* One slice: C (mc x nc) from op(A) (rows at a, element (i, k) at a[i * rs + k * ks]; or packed by
 * pack_a, then ks = MR) and packed panels of op(B); edge tiles go through a tile buffer and the same arithmetic as full ones. */
GEN_TARGET_AVX512 static void macro_tile(const float *a, bool packed, int64_t rs, int64_t ks, const float *bp, float *c,
                                         int64_t ldc, int64_t mc, int64_t nc, int64_t kc, float alpha, float beta) {
  for (int64_t jp = 0; jp < nc; jp += NR)
    for (int64_t ip = 0; ip < mc; ip += MR) {
      int64_t rows = mc - ip < MR ? mc - ip : MR, cols = nc - jp < NR ? nc - jp : NR;
      const float *ar[MR];
      for (int r = 0; r < MR; r++) /* packed: panel ip / MR; otherwise in place, repeating a row past the edge */
        ar[r] = packed ? a + ip * kc + r : a + (ip + (r < rows ? r : rows - 1)) * rs;
      float *ct = c + ip * ldc + jp;
      if (rows == MR && cols == NR) {
        micro_12x32(kc, ar, ks, bp + jp * kc, ct, ldc, alpha, beta);
        continue;
      }
      float tile[MR * NR] __attribute__((aligned(64)));
      micro_12x32(kc, ar, ks, bp + jp * kc, tile, NR, 1.0f, 0.0f);
      for (int64_t r = 0; r < rows; r++)
        for (int64_t j = 0; j < cols; j++) {
          float v = tile[r * NR + j];
          if (alpha != 1.0f) v = alpha * v;
          if (beta == 1.0f)
            v = v + ct[r * ldc + j];
          else if (beta != 0.0f)
            v = v + beta * ct[r * ldc + j];
          ct[r * ldc + j] = v;
        }
    }
}

bool gen_sgemm_available(void) { return gen_isa() >= GEN_ISA_AVX512; }

void gen_sgemm(bool ta, bool tb, int64_t m, int64_t n, int64_t k, float alpha, const float *a, int64_t lda, const float *b,
               int64_t ldb, float beta, float *c, int64_t ldc) {
  if (m == 0 || n == 0) return;
  if (k == 0 || alpha == 0.0f) { /* C = beta C, as BLAS defines it (beta 0 clears NaNs too) */
    for (int64_t i = 0; i < m; i++)
      for (int64_t j = 0; j < n; j++) c[i * ldc + j] = beta == 0.0f ? 0.0f : beta * c[i * ldc + j];
    return;
  }
  int64_t kcm = k < KC ? k : KC, ncm = round_up(n < NC ? n : NC, NR), mcm = round_up(m < MC ? m : MC, MR);
  /* A is read in place unless twelve of its rows, a multiple of 2 KB apart, would share L1 sets
   * (a third of the speed at n = 1024) and each block of it meets enough B panels to pay for a copy
   * (the copy cost a sixth at n = 256 with an unaligned stride) */
  bool pack = !ta && lda % ALIAS_FLOATS == 0 && n >= PACK_A_COLUMNS;
  float *bp = pack_space(kcm * ncm + (pack ? kcm * mcm : 0)), *ap = bp + kcm * ncm;
  if (!bp) abort(); /* 2 MB at most, once per thread; nothing sensible to fall back to mid-product */
  int64_t rs = ta ? 1 : lda, ks = ta ? lda : 1;
  for (int64_t jc = 0; jc < n; jc += NC) {
    int64_t nc = n - jc < NC ? n - jc : NC;
    for (int64_t pc = 0; pc < k; pc += KC) {
      int64_t kc = k - pc < KC ? k - pc : KC;
      pack_b(bp, b, ldb, tb, pc, kc, jc, nc);
      for (int64_t ic = 0; ic < m; ic += MC) {
        int64_t mc = m - ic < MC ? m - ic : MC;
        const float *ab = a + ic * rs + pc * ks;
        if (pack) pack_a(ap, ab, rs, ks, mc, kc);
        macro_tile(pack ? ap : ab, pack, rs, pack ? MR : ks, bp, c + ic * ldc + jc, ldc, mc, nc, kc, alpha,
                   pc == 0 ? beta : 1.0f);
      }
    }
  }
}
#else
bool gen_sgemm_available(void) { return false; }
void gen_sgemm(bool ta, bool tb, int64_t m, int64_t n, int64_t k, float alpha, const float *a, int64_t lda, const float *b,
               int64_t ldb, float beta, float *c, int64_t ldc) {
  abort();
}
#endif

/* One part of C per thread, cut along its longer side at whole micro-tiles (MR rows or NR
 * columns); each part packs its own op(B). The 64-row blocks gen_gemm_blocked used before each
 * packed all of op(B) again, 16 times at n = 1024, which held 2 threads at 1.2x of one; a slice
 * packed once and shared between the threads ran slower where the other core had to read it.
 * The bits depend on the shape alone, so the cut points change nothing. */
void gen_sgemm_threads(bool ta, bool tb, int64_t m, int64_t n, int64_t k, float alpha, const float *a, int64_t lda,
                       const float *b, int64_t ldb, float beta, float *c, int64_t ldc, int threads) {
  if (threads <= 1) {
    gen_sgemm(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
    return;
  }
  bool by_rows = m >= n;
  int64_t side = by_rows ? m : n, unit = by_rows ? MR : NR, units = (side + unit - 1) / unit;
#pragma omp parallel for num_threads(threads) schedule(static)
  for (int t = 0; t < threads; t++) {
    int64_t lo = units * t / threads * unit, hi = units * (t + 1) / threads * unit;
    if (hi > side) hi = side;
    if (lo >= hi) continue;
    if (by_rows) /* rows of op(A): A's rows, or A's columns when transposed */
      gen_sgemm(ta, tb, hi - lo, n, k, alpha, a + (ta ? lo : lo * lda), lda, b, ldb, beta, c + lo * ldc, ldc);
    else /* columns of op(B) */
      gen_sgemm(ta, tb, m, hi - lo, k, alpha, a, lda, b + (tb ? lo * ldb : lo), ldb, beta, c + lo, ldc);
  }
}
