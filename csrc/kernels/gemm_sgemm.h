/* gemm_sgemm.h — gen's own single-threaded float32 GEMM with an AVX-512 micro-kernel
 * (gemm_sgemm.c). gen_gemm (gemm.h) uses it for float32 when the ISA level is avx512 and OpenBLAS
 * otherwise (this environment pins OpenBLAS to its AVX2 Haswell kernels); bench/README.md has the
 * measurements behind the choice.
 *
 * Row-major, BLAS argument order: C = alpha op(A) op(B) + beta C (beta 0: C is not read), C m x n,
 * the reduction k long. Results depend on the shape only, never on the caller's threads. */
#ifndef GEN_KERNELS_GEMM_SGEMM_H
#define GEN_KERNELS_GEMM_SGEMM_H

#include <stdbool.h>
#include <stdint.h>

/* true when the ISA level in use is avx512 */
bool gen_sgemm_available(void);
void gen_sgemm(bool ta, bool tb, int64_t m, int64_t n, int64_t k, float alpha, const float *a, int64_t lda, const float *b,
               int64_t ldb, float beta, float *c, int64_t ldc);
/* gen_sgemm on `threads` threads (an OpenMP region; 1: the caller alone), the same bits */
void gen_sgemm_threads(bool ta, bool tb, int64_t m, int64_t n, int64_t k, float alpha, const float *a, int64_t lda,
                       const float *b, int64_t ldb, float beta, float *c, int64_t ldc, int threads);

#endif
