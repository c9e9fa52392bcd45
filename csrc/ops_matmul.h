/* ops_matmul.h — matrix products through OpenBLAS (ops_matmul.c). */
#ifndef GEN_OPS_MATMUL_H
#define GEN_OPS_MATMUL_H

#include "gen.h"

/* torch.matmul semantics: 1-D x 1-D is a dot product; 1-D operands are promoted to a row (left)
 * or a column (right) and the added dim is removed; batch dims broadcast. */
gen_tensor *gen_matmul(gen_tensor *a, gen_tensor *b);
/* Raw batched product of operands with >= 2 dims (no autograd). */
gen_tensor *gen_matmul_raw(gen_tensor *a, gen_tensor *b);
/* The same with bias {m} (contiguous, a's dtype) added to every row: BLAS adds onto the bias rows. */
gen_tensor *gen_addmm_raw(const gen_tensor *bias, gen_tensor *a, gen_tensor *b);
/* A view with the last two dims swapped (no copy, no autograd). */
gen_tensor *gen_transpose_last2_raw(gen_tensor *t);

/* Differentiable transpose of the last two dims (a permute view). */
gen_tensor *gen_transpose_last2(gen_tensor *t);

#endif
