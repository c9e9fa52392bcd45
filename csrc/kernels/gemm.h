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

#endif
