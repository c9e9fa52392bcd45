/* ops_index.h — indexing ops (ops_index.c). dim is 0-based; index tensors are int64 and hold
 * Lua's 1-based indices (the core subtracts 1 as it reads them, after checking every one). */
#ifndef GEN_OPS_INDEX_H
#define GEN_OPS_INDEX_H

#include "gen.h"

gen_tensor *gen_index_select(gen_tensor *a, int dim, gen_tensor *index);
gen_tensor *gen_gather(gen_tensor *a, int dim, gen_tensor *index);
/* a copy of a with src added at the positions index names along dim (index and src same shape) */
gen_tensor *gen_scatter_add(gen_tensor *a, int dim, gen_tensor *index, gen_tensor *src);
/* The gradient of picking the entries `index` names along dim out of a tensor of the given shape
 * (gather, topk): g added into zeros at those positions, as recorded ops (create_graph backwards). */
gen_tensor *gen_scatter_grad(int ndim, const int64_t *shape, int dim, gen_tensor *index, gen_tensor *g);
/* weight {V, D}, indices any shape -> indices.shape .. {D} */
gen_tensor *gen_embedding(gen_tensor *indices, gen_tensor *weight);

#endif
