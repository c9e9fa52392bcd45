/* ops_shape.h — views, shape changes and copies, all differentiable (ops_shape.c).
 * Dims are 0-based (the binding converts). */
#ifndef GEN_OPS_SHAPE_H
#define GEN_OPS_SHAPE_H

#include "gen.h"

/* A copy with its own storage (COPY op). */
gen_tensor *gen_clone(gen_tensor *a);
/* a itself when contiguous, else a copy (COPY op). */
gen_tensor *gen_contiguous(gen_tensor *a);
/* dtype conversion (TO_DTYPE op: gradients flow between float dtypes). Returns a itself if same. */
gen_tensor *gen_to_dtype(gen_tensor *a, gen_dtype dt);
/* Detached alias: same storage, no grad_fn, requires_grad false. */
gen_tensor *gen_detach(gen_tensor *a);
/* shape may hold one -1. A view when strides allow (view), else a copy (reshape only). */
gen_tensor *gen_view(gen_tensor *a, int ndim, const int64_t *shape);
gen_tensor *gen_reshape(gen_tensor *a, int ndim, const int64_t *shape);
/* Resolve a -1 in shape against numel; errors when sizes do not match. */
int gen_infer_shape(int64_t numel, int ndim, int64_t *shape);

/* dims: a permutation of 0..ndim-1 */
gen_tensor *gen_permute(gen_tensor *a, const int *dims);
gen_tensor *gen_narrow(gen_tensor *a, int dim, int64_t start, int64_t length);
gen_tensor *gen_select(gen_tensor *a, int dim, int64_t index);
/* shape may hold -1 (keep that size); new leading dims allowed */
gen_tensor *gen_expand(gen_tensor *a, int ndim, const int64_t *shape);
/* Concatenates n tensors along dim (same dtype; equal sizes elsewhere). */
gen_tensor *gen_cat(int n, gen_tensor *const *ts, int dim);

#endif
