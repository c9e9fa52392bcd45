/* ops_reduce.h — reductions (ops_reduce.c). dim is 0-based and already normalized by the binding,
 * or GEN_DIM_ALL to reduce every element into a 0-d tensor. */
#ifndef GEN_OPS_REDUCE_H
#define GEN_OPS_REDUCE_H

#include "gen.h"

#define GEN_DIM_ALL (-1000)

/* Raw (no autograd): sum of a contiguous view over one dim, in double accumulators. */
gen_tensor *gen_sum_dim_raw(gen_tensor *a, int dim, bool keepdim);
/* Raw: broadcast g (shaped like the reduced result) back to (ndim, shape); the inverse of a
 * reduction over `dim` for the gradient. dim may be GEN_DIM_ALL. */
gen_tensor *gen_unreduce_raw(gen_tensor *g, int dim, bool keepdim, int ndim, const int64_t *shape);

gen_tensor *gen_sum(gen_tensor *a, int dim, bool keepdim);
gen_tensor *gen_mean(gen_tensor *a, int dim, bool keepdim);

#endif
