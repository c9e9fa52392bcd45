/* gemm_packed.h — float32 GEMMs on operands already packed into register-tile panels (AVX2+FMA).
 *
 * Kernels that produce their GEMM operands themselves (the Winograd transforms) write them
 * straight into the layout the micro-kernels read: no BLAS packing copy, no call overhead per
 * small matrix and no separate pass to zero or scale C. Callers check gen_gemm_packed_available()
 * and use BLAS otherwise.
 *
 * gen_gemm_packed: C = A B (K is the reduction length)
 *   A: mp panels of GEN_MR rows, panel p at a + p * K * GEN_MR, element (row r, k) at [k * GEN_MR + r]
 *   B: nq panels of GEN_NR columns, panel q at b + q * K * GEN_NR, element (k, col j) at [k * GEN_NR + j]
 *   C: row-major with row stride ldc, (mp * GEN_MR) x (nq * GEN_NR)
 *   Rows or columns past the real matrix are zero padding in A or B; C then holds zero products.
 */
#ifndef GEN_KERNELS_GEMM_PACKED_H
#define GEN_KERNELS_GEMM_PACKED_H

#include <stdbool.h>
#include <stdint.h>

#define GEN_MR 6
#define GEN_NR 16

bool gen_gemm_packed_available(void);

/* C = A B, or C += A B when accumulate. Single-threaded: callers parallelize over their own work. */
void gen_gemm_packed(float *c, const float *a, const float *b, int64_t mp, int64_t nq, int64_t k, int64_t ldc, bool accumulate);

#endif
