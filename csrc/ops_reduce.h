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

/* Differentiable versions of the two, for create_graph backwards: gen_sum_to sums g over the
 * dims broadcast to reach it from (ndim, shape); gen_unreduce expands g (the result of a
 * reduction over dim) back to (ndim, shape) as a view. */
gen_tensor *gen_sum_to(gen_tensor *g, int ndim, const int64_t *shape);
gen_tensor *gen_unreduce(gen_tensor *g, int dim, int ndim, const int64_t *shape);

gen_tensor *gen_sum(gen_tensor *a, int dim, bool keepdim);
gen_tensor *gen_mean(gen_tensor *a, int dim, bool keepdim);
/* correction: 1 for the unbiased estimate (the default, as PyTorch), 0 for the population one */
gen_tensor *gen_var(gen_tensor *a, int dim, bool keepdim, int64_t correction);
gen_tensor *gen_std(gen_tensor *a, int dim, bool keepdim, int64_t correction);
/* values, and (when indices != NULL) 1-based int64 positions of the first extreme; NaN wins */
gen_tensor *gen_max(gen_tensor *a, int dim, bool keepdim, gen_tensor **indices);
gen_tensor *gen_min(gen_tensor *a, int dim, bool keepdim, gen_tensor **indices);
/* 1-based positions of the first maximum (flat positions when dim == GEN_DIM_ALL) */
gen_tensor *gen_argmax(gen_tensor *a, int dim, bool keepdim);
gen_tensor *gen_argmin(gen_tensor *a, int dim, bool keepdim);
gen_tensor *gen_logsumexp(gen_tensor *a, int dim, bool keepdim);
gen_tensor *gen_softmax(gen_tensor *a, int dim);
gen_tensor *gen_log_softmax(gen_tensor *a, int dim);
/* Running sums along dim (float: a double accumulator, differentiable; int64: exact) */
gen_tensor *gen_cumsum(gen_tensor *a, int dim);

#endif
