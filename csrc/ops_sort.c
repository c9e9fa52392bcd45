/*
 * ops_sort.c — sort and top-k along one dimension, forward and backward.
 *
 * Dimensions: a line is the `len` entries of a along dim, at stride `inner` in the contiguous
 * input; there are outer * inner lines. Each line is sorted on its own by a stable bottom-up merge
 * sort of positions (no recursion, deterministic, the same for any thread count), and its first k
 * positions give the values and indices. What this file is not: a selection algorithm; top-k
 * sorts the whole line (O(len log len)), fine for the lines of a batch (a few thousand entries).
 *
 *   forward:  values[line, j] = a[line, perm[j]],  indices[line, j] = perm[j] + 1,  j < k
 *   backward: da[line, perm[j]] += dvalues[line, j]   (indices are distinct: each a entry gets
 *             at most one gradient; the others get 0)
 */
#include "ops_sort.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "autograd.h"
#include "ops_index.h"

typedef struct {
  int dim;
} sort_attrs;

/* true when key a goes before key b (ascending: NaN last; descending: NaN first) */
static inline bool before(double a, double b, bool descending) {
  bool an = isnan(a), bn = isnan(b);
  if (an || bn) return descending ? (an && !bn) : (!an && bn);
  return descending ? a > b : a < b;
}

/* Stable merge sort of perm[0..n) by key[perm[i]]; tmp has room for n positions. */
static void merge_sort(int64_t *perm, int64_t *tmp, const double *key, int64_t n, bool descending) {
  for (int64_t width = 1; width < n; width *= 2) {
    for (int64_t lo = 0; lo < n; lo += 2 * width) {
      int64_t mid = lo + width < n ? lo + width : n, hi = lo + 2 * width < n ? lo + 2 * width : n;
      int64_t i = lo, j = mid, o = lo;
      while (i < mid && j < hi) tmp[o++] = before(key[perm[j]], key[perm[i]], descending) ? perm[j++] : perm[i++];
      while (i < mid) tmp[o++] = perm[i++];
      while (j < hi) tmp[o++] = perm[j++];
    }
    memcpy(perm, tmp, (size_t)n * sizeof *perm);
  }
}

static void split_dims(const gen_tensor *t, int dim, int64_t *outer, int64_t *len, int64_t *inner) {
  *outer = 1;
  *inner = 1;
  for (int d = 0; d < dim; d++) *outer *= t->shape[d];
  for (int d = dim + 1; d < t->ndim; d++) *inner *= t->shape[d];
  *len = t->shape[dim];
}

/* saved[0] = indices (1-based, shaped like the values) */
static int topk_backward(gen_node *n, gen_tensor *g, gen_tensor **grad_in) {
  gen_tensor *idx = gen_node_saved(n, 0);
  if (!idx) return -1;
  const gen_edge *e = &n->edges[0];
  int dim = GEN_NODE_ATTRS(n, sort_attrs)->dim;
  gen_tensor *acc = gen_zeros(g->dtype, e->ndim, e->shape);
  gen_tensor *cg = acc ? gen_contiguous_raw(g) : NULL;
  if (!cg) {
    gen_release(acc);
    return -1;
  }
  int64_t outer, len, inner, k = idx->shape[dim];
  split_dims(acc, dim, &outer, &len, &inner);
  const int64_t *p = (const int64_t *)gen_data_ptr(idx);
  size_t es = gen_dtype_size(g->dtype);
  char *pa = gen_data_ptr(acc);
  const char *pg = gen_data_ptr(cg);
  for (int64_t o = 0; o < outer && k > 0; o++) /* k = 0: an empty gradient, however many lines */
    for (int64_t i = 0; i < inner; i++)
      for (int64_t j = 0; j < k; j++) {
        int64_t src = (o * k + j) * inner + i, dst = (o * len + p[src] - 1) * inner + i;
        double v = gen_read_f64(pa + (size_t)dst * es, g->dtype) + gen_read_f64(pg + (size_t)src * es, g->dtype);
        gen_write_f64(pa + (size_t)dst * es, g->dtype, v);
      }
  gen_release(cg);
  grad_in[0] = acc;
  return 0;
}

/* create_graph: the same scatter, recorded (scatter_add of g into zeros through the indices) */
static int topk_graph_backward(gen_node *n, gen_tensor *g, gen_tensor **grad_in) {
  gen_tensor *idx = gen_node_saved(n, 0);
  grad_in[0] = idx ? gen_scatter_grad(n->edges[0].ndim, n->edges[0].shape, GEN_NODE_ATTRS(n, sort_attrs)->dim, idx, g) : NULL;
  return grad_in[0] ? 0 : -1;
}

gen_tensor *gen_topk(gen_tensor *a, int64_t k, int dim, bool descending, gen_tensor **indices) {
  if (a->ndim == 0) return gen_fail("needs at least 1 dimension, got a 0-d tensor");
  if (dim < 0 || dim >= a->ndim) return gen_fail("dimension %d out of range for %d dimensions", dim + 1, a->ndim);
  if (k < 0 || k > a->shape[dim]) {
    char buf[128];
    return gen_fail("k = %lld out of range for dimension %d of %s (%lld entries)", (long long)k, dim + 1,
                    gen_shape_str(buf, sizeof buf, a->ndim, a->shape), (long long)a->shape[dim]);
  }
  int64_t outer, len, inner;
  split_dims(a, dim, &outer, &len, &inner);
  int64_t shape[GEN_MAX_DIMS];
  memcpy(shape, a->shape, (size_t)a->ndim * sizeof *shape);
  shape[dim] = k;
  gen_tensor *ca = gen_contiguous_raw(a);
  gen_tensor *values = ca ? gen_empty(a->dtype, a->ndim, shape) : NULL;
  gen_tensor *idx = values ? gen_empty(GEN_INT64, a->ndim, shape) : NULL;
  int64_t *scratch = idx ? malloc((size_t)(len > 0 ? len : 1) * (2 * sizeof(int64_t) + sizeof(double))) : NULL;
  if (!scratch) {
    gen_release(ca);
    gen_release(values);
    gen_release(idx);
    return idx ? gen_fail("out of memory sorting lines of %lld entries", (long long)len) : NULL;
  }
  int64_t *perm = scratch, *tmp = scratch + len;
  double *key = (double *)(scratch + 2 * len);
  size_t es = gen_dtype_size(a->dtype);
  const char *src = gen_data_ptr(ca);
  char *dst = gen_data_ptr(values);
  int64_t *pi = (int64_t *)gen_data_ptr(idx);
  for (int64_t o = 0; o < outer && k > 0; o++) /* k = 0: nothing to select, however many lines */
    for (int64_t i = 0; i < inner; i++) {
      const char *line = src + (size_t)(o * len * inner + i) * es;
      for (int64_t j = 0; j < len; j++) {
        key[j] = gen_read_f64(line + (size_t)(j * inner) * es, a->dtype);
        perm[j] = j;
      }
      merge_sort(perm, tmp, key, len, descending);
      for (int64_t j = 0; j < k; j++) {
        int64_t out = (o * k + j) * inner + i;
        memcpy(dst + (size_t)out * es, line + (size_t)(perm[j] * inner) * es, es); /* exact for every dtype */
        pi[out] = perm[j] + 1;
      }
    }
  free(scratch);
  gen_release(ca);
  if (!gen_dtype_is_float(a->dtype)) { /* integers carry no gradient */
    if (indices)
      *indices = idx;
    else
      gen_release(idx);
    return values;
  }
  sort_attrs at = {dim};
  values = gen_record(values, &(gen_record_args){.op = GEN_OP_SORT,
                                                 .backward = topk_backward,
                                                 .graph_backward = topk_graph_backward,
                                                 .inputs = GEN_TENSORS(a),
                                                 .saved = GEN_TENSORS(idx),
                                                 .attrs = GEN_ATTRS(&at)});
  if (values && indices)
    *indices = idx;
  else
    gen_release(idx);
  return values;
}
