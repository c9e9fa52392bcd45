/*
 * gemm_packed.c — the micro-kernels behind gemm_packed.h (layouts there).
 *
 * gen_gemm_packed: a 6x16 block of C lives in 12 AVX registers for the whole K loop; per k, two
 * loads of B, six broadcasts of A and twelve FMAs (the BLIS Haswell shape). Twelve independent
 * accumulators cover the latency of two FMA pipes.
 * The build targets baseline x86-64; these functions carry their own target attribute and run
 * only where the ISA level in use (isa.h) has them: avx2 for block_6x16, avx512 for block_6x32.
 */
#include "gemm_packed.h"

#include "isa.h"

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define AVX2   GEN_TARGET_AVX2
#define AVX512 GEN_TARGET_AVX512

bool gen_gemm_packed_available(void) { return gen_isa() >= GEN_ISA_AVX2; }

AVX2 static void block_6x16(int64_t k, const float *a, const float *b, float *c, int64_t ldc, bool accumulate) {
  __m256 c00 = _mm256_setzero_ps(), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00;
  __m256 c30 = c00, c31 = c00, c40 = c00, c41 = c00, c50 = c00, c51 = c00;
#pragma GCC unroll 4
  for (int64_t p = 0; p < k; p++) {
    __m256 b0 = _mm256_loadu_ps(b), b1 = _mm256_loadu_ps(b + 8), ar;
    ar = _mm256_broadcast_ss(a + 0), c00 = _mm256_fmadd_ps(ar, b0, c00), c01 = _mm256_fmadd_ps(ar, b1, c01);
    ar = _mm256_broadcast_ss(a + 1), c10 = _mm256_fmadd_ps(ar, b0, c10), c11 = _mm256_fmadd_ps(ar, b1, c11);
    ar = _mm256_broadcast_ss(a + 2), c20 = _mm256_fmadd_ps(ar, b0, c20), c21 = _mm256_fmadd_ps(ar, b1, c21);
    ar = _mm256_broadcast_ss(a + 3), c30 = _mm256_fmadd_ps(ar, b0, c30), c31 = _mm256_fmadd_ps(ar, b1, c31);
    ar = _mm256_broadcast_ss(a + 4), c40 = _mm256_fmadd_ps(ar, b0, c40), c41 = _mm256_fmadd_ps(ar, b1, c41);
    ar = _mm256_broadcast_ss(a + 5), c50 = _mm256_fmadd_ps(ar, b0, c50), c51 = _mm256_fmadd_ps(ar, b1, c51);
    a += GEN_MR, b += GEN_NR;
  }
  __m256 rows[GEN_MR][2] = {{c00, c01}, {c10, c11}, {c20, c21}, {c30, c31}, {c40, c41}, {c50, c51}};
  for (int r = 0; r < GEN_MR; r++) {
    float *row = c + r * ldc;
    __m256 lo = rows[r][0], hi = rows[r][1];
    if (accumulate) lo = _mm256_add_ps(lo, _mm256_loadu_ps(row)), hi = _mm256_add_ps(hi, _mm256_loadu_ps(row + 8));
    _mm256_storeu_ps(row, lo);
    _mm256_storeu_ps(row + 8, hi);
  }
}

/* AVX-512: a 6x32 block over two adjacent B panels, twelve ZMM accumulators. Every element is the
 * same chain of FMAs from zero as in block_6x16 (then + C), so both give the same bits. */
AVX512 static void block_6x32(int64_t k, const float *a, const float *b0, const float *b1, float *c, int64_t ldc,
                              bool accumulate) {
  __m512 acc[GEN_MR][2];
  for (int r = 0; r < GEN_MR; r++) acc[r][0] = acc[r][1] = _mm512_setzero_ps();
#pragma GCC unroll 2
  for (int64_t p = 0; p < k; p++) {
    __m512 x0 = _mm512_loadu_ps(b0), x1 = _mm512_loadu_ps(b1);
#pragma GCC unroll 6
    for (int r = 0; r < GEN_MR; r++) {
      __m512 ar = _mm512_set1_ps(a[r]);
      acc[r][0] = _mm512_fmadd_ps(ar, x0, acc[r][0]);
      acc[r][1] = _mm512_fmadd_ps(ar, x1, acc[r][1]);
    }
    a += GEN_MR, b0 += GEN_NR, b1 += GEN_NR;
  }
  for (int r = 0; r < GEN_MR; r++) {
    float *row = c + r * ldc;
    __m512 lo = acc[r][0], hi = acc[r][1];
    if (accumulate) lo = _mm512_add_ps(lo, _mm512_loadu_ps(row)), hi = _mm512_add_ps(hi, _mm512_loadu_ps(row + 16));
    _mm512_storeu_ps(row, lo);
    _mm512_storeu_ps(row + 16, hi);
  }
}

/* Column panels outside, row panels inside: one B panel (K x 16), or a pair of them under AVX-512,
 * stays in L1 while every A panel passes over it. */
void gen_gemm_packed(float *c, const float *a, const float *b, int64_t mp, int64_t nq, int64_t k, int64_t ldc, bool accumulate) {
  int64_t q = 0;
  if (gen_isa() >= GEN_ISA_AVX512)
    for (; q + 1 < nq; q += 2)
      for (int64_t p = 0; p < mp; p++)
        block_6x32(k, a + p * k * GEN_MR, b + q * k * GEN_NR, b + (q + 1) * k * GEN_NR, c + p * GEN_MR * ldc + q * GEN_NR, ldc,
                   accumulate);
  for (; q < nq; q++)
    for (int64_t p = 0; p < mp; p++)
      block_6x16(k, a + p * k * GEN_MR, b + q * k * GEN_NR, c + p * GEN_MR * ldc + q * GEN_NR, ldc, accumulate);
}

#else
bool gen_gemm_packed_available(void) { return false; }
void gen_gemm_packed(float *c, const float *a, const float *b, int64_t mp, int64_t nq, int64_t k, int64_t ldc, bool accumulate) {
  (void)mp, (void)nq, (void)k, (void)a, (void)b, (void)c, (void)ldc, (void)accumulate;
}
#endif
