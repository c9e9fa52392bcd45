/* ops_sort.h — sorting along one dimension (ops_sort.c): sort, topk (and argsort, the indices of
 * sort, in the binding). dim is 0-based and already normalized by the binding. */
#ifndef GEN_OPS_SORT_H
#define GEN_OPS_SORT_H

#include "gen.h"

/* The k smallest (largest when descending) entries of every line of a along dim, in order, and
 * (when indices != NULL) their 1-based int64 positions. k = a->shape[dim] sorts. Stable: equal
 * values keep their order; NaN counts as larger than every number (last ascending, first
 * descending), as in PyTorch. The values are differentiable: the gradient goes back to the
 * positions they came from. */
gen_tensor *gen_topk(gen_tensor *a, int64_t k, int dim, bool descending, gen_tensor **indices);

#endif
