/* gemm.h — the one BLAS GEMM call of the kernels (gemm.c): row-major, float32 or float64.
 * Arguments follow BLAS's order (C last), which every reader of a GEMM call already knows. */
#ifndef GEN_KERNELS_GEMM_H
#define GEN_KERNELS_GEMM_H

#include <stdbool.h>
#include <stdint.h>

#include "../gen.h"

/* C = alpha op(A) op(B) + beta C; op transposes when ta / tb. C is m x n, the reduction k long. */
void gen_gemm(bool ta, bool tb, int64_t m, int64_t n, int64_t k, double alpha, const void *a, int64_t lda, const void *b,
              int64_t ldb, double beta, void *c, int64_t ldc, gen_dtype dt);

/* Below this many multiply-adds OpenBLAS keeps a GEMM on one thread by itself (its threshold is
 * 4 x 65536), and gen_gemm_blocked is one gen_gemm. */
#define GEN_GEMM_BLOCKED_WORK ((int64_t)1 << 18)
/* gen's own SGEMM goes to the threads only from this many multiply-adds (10-20 us of one core's
 * work): waking a sleeping OpenMP worker costs about 13 us and a whole region about 24 us here, so
 * smaller products (a UNet's at batch 1) ran slower on 2 threads than on 1. Its bits depend on the
 * shape alone, so where it runs them does not change them. */
#define GEN_SGEMM_THREAD_WORK ((int64_t)1 << 21)
/* Whether gen_gemm_blocked splits this product over threads (it depends on the shape, the dtype
 * and the ISA level, never on the thread count). */
bool gen_gemm_splits(int64_t m, int64_t n, int64_t k, gen_dtype dt);

/* gen_gemm on `threads` threads, in blocks of C along its longer side, each block one single-threaded
 * GEMM (BLAS runs serially inside an active OpenMP region). The blocks depend on the shape alone:
 * OpenBLAS rounds the columns near the edge of the block it computes in another order than the
 * inner ones, so the blocks, not the thread count, must decide where the edges are, and the result
 * is the same bits on any number of threads. gen's SGEMM, whose bits depend on the shape alone,
 * takes one part per thread instead (gen_sgemm_threads). */
void gen_gemm_blocked(bool ta, bool tb, int64_t m, int64_t n, int64_t k, double alpha, const void *a, int64_t lda, const void *b,
                      int64_t ldb, double beta, void *c, int64_t ldc, gen_dtype dt, int threads);

/* "gen" when float32 GEMMs run on gen's own AVX-512 SGEMM (gemm_sgemm.c), "openblas" otherwise */
const char *gen_sgemm_backend(void);

#endif
