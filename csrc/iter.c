/* iter.c — see iter.h. */
#include "iter.h"

void gen_iter_init(gen_iter *it, int ndim, const int64_t *shape, int n_ops, const int64_t *const *strides) {
  it->n_ops = n_ops;
  int nd = 0;
  /* Drop size-1 dimensions (their stride never matters), then merge contiguous neighbours. */
  for (int d = 0; d < ndim; d++) {
    if (shape[d] == 1) continue;
    bool merge = nd > 0;
    for (int k = 0; k < n_ops && merge; k++) merge = it->stride[k][nd - 1] == strides[k][d] * shape[d];
    if (merge) {
      it->shape[nd - 1] *= shape[d];
      for (int k = 0; k < n_ops; k++) it->stride[k][nd - 1] = strides[k][d];
    } else {
      it->shape[nd] = shape[d];
      for (int k = 0; k < n_ops; k++) it->stride[k][nd] = strides[k][d];
      nd++;
    }
  }
  if (nd == 0) {
    bool empty = false;
    for (int d = 0; d < ndim; d++) empty |= shape[d] == 0;
    it->shape[0] = empty ? 0 : 1;
    for (int k = 0; k < n_ops; k++) it->stride[k][0] = 1;
    nd = 1;
  }
  it->ndim = nd;
  it->inner = it->shape[nd - 1];
  it->rows = 1;
  for (int d = 0; d < nd - 1; d++) it->rows *= it->shape[d];
  if (it->inner == 0) it->rows = 0;
}
