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

#endif
