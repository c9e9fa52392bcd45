/*
 * ops_index.c — index_select, gather, scatter_add, embedding; forward and backward.
 *
 * Legend: for a reduction-like view along dim, a contiguous tensor is [outer, n, inner].
 * Gradients of selections scatter-add back; duplicate indices accumulate. Accumulation loops
 * run serially along the indexed dim (parallel only over independent outer rows), so results do
 * not depend on the thread count.
 */
#include "ops_index.h"

#include <string.h>

#include "autograd.h"
#include "ops_shape.h"

static int check_indices(const gen_tensor *idx, int64_t size, const char *what) {
  if (idx->dtype != GEN_INT64) return gen_fail_int("%s must be an int64 tensor, got %s", what, gen_dtype_name(idx->dtype));
  int64_t n = gen_numel(idx);
  for (int64_t i = 0; i < n; i++) {
    int64_t v = gen_get_flat_i64(idx, i);
    if (v < 1 || v > size) return gen_fail_int("%s holds %lld, out of range 1..%lld", what, (long long)v, (long long)size);
  }
  return 0;
}

/* out[o, j, :] = a[o, idx[j], :] for a contiguous a [outer, n, inner], idx of k entries */
static void take_rows(char *out, const char *a, const int64_t *idx, int64_t k, int64_t outer, int64_t n, int64_t inner,
                      size_t es) {
  for (int64_t o = 0; o < outer; o++)
    for (int64_t j = 0; j < k; j++)
      memcpy(out + (size_t)((o * k + j) * inner) * es, a + (size_t)((o * n + idx[j] - 1) * inner) * es, (size_t)inner * es);
}

/* acc[o, idx[j], :] += g[o, j, :] */
static void add_rows(gen_tensor *acc, const gen_tensor *g, const int64_t *idx, int64_t k, int64_t outer, int64_t n,
                     int64_t inner) {
  char *a = gen_data_ptr(acc);
  const char *p = gen_data_ptr(g);
  gen_dtype dt = acc->dtype;
  size_t es = gen_dtype_size(dt);
  for (int64_t o = 0; o < outer; o++)
    for (int64_t j = 0; j < k; j++) {
      char *dst = a + (size_t)((o * n + idx[j] - 1) * inner) * es;
      const char *src = p + (size_t)((o * k + j) * inner) * es;
      if (dt == GEN_FLOAT32)
        for (int64_t i = 0; i < inner; i++) ((float *)dst)[i] += ((const float *)src)[i];
      else
        for (int64_t i = 0; i < inner; i++)
          gen_write_f64(dst + i * es, dt, gen_read_f64(dst + i * es, dt) + gen_read_f64(src + i * es, dt));
    }
}

static gen_tensor *select_rows(gen_tensor *a, int dim, gen_tensor *flat_idx, int nd, const int64_t *shape) {
  gen_tensor *ca = gen_contiguous_raw(a), *ci = ca ? gen_contiguous_raw(flat_idx) : NULL;
  gen_tensor *out = ci ? gen_empty(a->dtype, nd, shape) : NULL;
  if (out) {
    int64_t outer = gen_numel_of(dim, a->shape), n = a->shape[dim];
    int64_t inner = gen_numel_of(a->ndim - dim - 1, a->shape + dim + 1);
    take_rows(gen_data_ptr(out), gen_data_ptr(ca), (const int64_t *)gen_data_ptr(ci), gen_numel(ci), outer, n, inner,
              gen_dtype_size(a->dtype));
  }
  gen_release(ca);
  gen_release(ci);
  return out;
}

/* The one attribute of every op here: the dimension indexed. */
typedef struct {
  int dim;
} index_attrs;

/* saved[0] = flat index */
static int rows_backward(gen_node *node, gen_tensor *g, gen_tensor **grad_in) {
  gen_tensor *idx = gen_node_saved(node, 0);
  if (!idx) return -1;
  int dim = GEN_NODE_ATTRS(node, index_attrs)->dim;
  int wi = node->op == GEN_OP_EMBEDDING ? 1 : 0; /* embedding's weight is its second input */
  const gen_edge *e = &node->edges[wi];
  gen_tensor *acc = gen_zeros(g->dtype, e->ndim, e->shape);
  gen_tensor *cg = acc ? gen_contiguous_raw(g) : NULL;
  if (!cg) {
    gen_release(acc);
    return -1;
  }
  int64_t outer = gen_numel_of(dim, e->shape), n = e->shape[dim];
  int64_t inner = gen_numel_of(e->ndim - dim - 1, e->shape + dim + 1);
  add_rows(acc, cg, (const int64_t *)gen_data_ptr(idx), gen_numel(idx), outer, n, inner);
  gen_release(cg);
  grad_in[wi] = acc;
  return 0;
}

/* create_graph: the same scatter as a recorded scatter_add of g into zeros, through the index
 * broadcast over g's other dims (embedding: g as {k, D} rows of the weight). */
static int rows_graph_backward(gen_node *node, gen_tensor *g, gen_tensor **grad_in) {
  gen_tensor *idx = gen_node_saved(node, 0);
  if (!idx) return -1;
  int dim = GEN_NODE_ATTRS(node, index_attrs)->dim;
  int wi = node->op == GEN_OP_EMBEDDING ? 1 : 0;
  const gen_edge *e = &node->edges[wi];
  int64_t k = gen_numel(idx);
  gen_arena ar = {0}, *A = &ar;
  gen_tensor *g2 = wi ? GEN_KEEP(A, gen_reshape(g, 2, (int64_t[2]){k, e->shape[1]})) : g;
  int64_t shape[GEN_MAX_DIMS], stride[GEN_MAX_DIMS] = {0};
  for (int d = 0; g2 && d < g2->ndim; d++) shape[d] = d == dim ? k : 1;
  stride[dim] = 1;
  gen_tensor *line = g2 ? GEN_KEEP(A, gen_as_strided(idx, g2->ndim, shape, stride, idx->offset)) : NULL;
  gen_tensor *full = line ? GEN_KEEP(A, gen_expand_raw(line, g2->ndim, g2->shape)) : NULL;
  gen_tensor *zeros = GEN_KEEP(A, gen_zeros(g->dtype, e->ndim, e->shape));
  gen_tensor *r = GEN_KEEP(A, gen_scatter_add(zeros, dim, full, g2));
  return (grad_in[wi] = gen_arena_take(A, r)) ? 0 : -1;
}

static gen_tensor *record_rows(gen_tensor *out, gen_op op, int n_in, gen_tensor **inputs, gen_tensor *flat_idx, int dim) {
  if (!out || !gen_needs_grad(n_in, inputs)) return out; /* before copying the index */
  gen_tensor *ci = gen_contiguous_raw(flat_idx);
  if (!ci) {
    gen_release(out);
    return NULL;
  }
  index_attrs at = {dim};
  out = gen_record(out, &(gen_record_args){.op = op,
                                           .backward = rows_backward,
                                           .graph_backward = rows_graph_backward,
                                           .inputs = {n_in, inputs},
                                           .saved = GEN_TENSORS(ci),
                                           .attrs = GEN_ATTRS(&at)});
  gen_release(ci);
  return out;
}

gen_tensor *gen_index_select(gen_tensor *a, int dim, gen_tensor *index) {
  if (index->ndim != 1) return gen_fail("index must be 1-d, got %d dimensions", index->ndim);
  if (check_indices(index, a->shape[dim], "index") < 0) return NULL;
  int64_t shape[GEN_MAX_DIMS];
  memcpy(shape, a->shape, sizeof shape);
  shape[dim] = index->shape[0];
  gen_tensor *out = select_rows(a, dim, index, a->ndim, shape);
  return record_rows(out, GEN_OP_INDEX_SELECT, 1, &a, index, dim);
}

gen_tensor *gen_embedding(gen_tensor *indices, gen_tensor *weight) {
  if (weight->ndim != 2) return gen_fail("weight must be {num_embeddings, dim}, got %d dimensions", weight->ndim);
  if (indices->ndim + 1 > GEN_MAX_DIMS) return gen_fail("too many index dimensions");
  if (check_indices(indices, weight->shape[0], "indices") < 0) return NULL;
  int64_t shape[GEN_MAX_DIMS];
  memcpy(shape, indices->shape, sizeof(int64_t) * (size_t)indices->ndim);
  shape[indices->ndim] = weight->shape[1];
  gen_tensor *out = select_rows(weight, 0, indices, indices->ndim + 1, shape);
  gen_tensor *inputs[2] = {indices, weight};
  return record_rows(out, GEN_OP_EMBEDDING, 2, inputs, indices, 0);
}

/* ---- gather / scatter_add: elementwise along dim ---- */

/* For each element of idx (shape of idx, row-major), the flat offsets into a (contiguous, shape of a)
 * and into a contiguous tensor shaped like idx. */
static void gather_offsets(const gen_tensor *a_shape, const gen_tensor *idx, int dim, int64_t i, int64_t *a_off) {
  int64_t rest = i, off = 0, astride = 1;
  int64_t strides[GEN_MAX_DIMS];
  for (int d = a_shape->ndim - 1; d >= 0; d--) {
    strides[d] = astride;
    astride *= a_shape->shape[d];
  }
  const int64_t *iv = (const int64_t *)gen_data_ptr(idx);
  for (int d = idx->ndim - 1; d >= 0; d--) {
    int64_t c = rest % idx->shape[d];
    rest /= idx->shape[d];
    off += (d == dim ? iv[i] - 1 : c) * strides[d];
  }
  *a_off = off;
}

static int check_gather_shapes(const gen_tensor *a, int dim, const gen_tensor *idx) {
  if (idx->ndim != a->ndim) return gen_fail_int("index has %d dimensions, the input %d", idx->ndim, a->ndim);
  for (int d = 0; d < a->ndim; d++)
    if (d != dim && idx->shape[d] > a->shape[d]) {
      char s1[GEN_SHAPE_STR_MAX], s2[GEN_SHAPE_STR_MAX];
      return gen_fail_int("index shape %s is larger than the input's %s in dimension %d",
                          gen_shape_str(s1, sizeof s1, idx->ndim, idx->shape), gen_shape_str(s2, sizeof s2, a->ndim, a->shape),
                          d + 1);
    }
  return check_indices(idx, a->shape[dim], "index");
}

static gen_tensor *gather_raw(gen_tensor *a, int dim, gen_tensor *ci) {
  gen_tensor *ca = gen_contiguous_raw(a);
  gen_tensor *out = ca ? gen_empty(a->dtype, ci->ndim, ci->shape) : NULL;
  if (out) {
    size_t es = gen_dtype_size(a->dtype);
    int64_t n = gen_numel(ci);
    for (int64_t i = 0; i < n; i++) {
      int64_t off;
      gather_offsets(ca, ci, dim, i, &off);
      memcpy(gen_data_ptr(out) + (size_t)i * es, gen_data_ptr(ca) + (size_t)off * es, es);
    }
  }
  gen_release(ca);
  return out;
}

/* acc (contiguous) [positions named by idx] += src (contiguous, idx's shape) */
static void scatter_add_raw(gen_tensor *acc, int dim, gen_tensor *ci, gen_tensor *csrc) {
  size_t es = gen_dtype_size(acc->dtype);
  int64_t n = gen_numel(ci);
  for (int64_t i = 0; i < n; i++) {
    int64_t off;
    gather_offsets(acc, ci, dim, i, &off);
    char *p = gen_data_ptr(acc) + (size_t)off * es;
    gen_write_f64(p, acc->dtype, gen_read_f64(p, acc->dtype) + gen_read_f64(gen_data_ptr(csrc) + (size_t)i * es, csrc->dtype));
  }
}

/* gather: saved[0] = index */
static int gather_backward(gen_node *node, gen_tensor *g, gen_tensor **grad_in) {
  gen_tensor *ci = gen_node_saved(node, 0);
  if (!ci) return -1;
  gen_tensor *acc = gen_zeros(g->dtype, node->edges[0].ndim, node->edges[0].shape);
  gen_tensor *cg = acc ? gen_contiguous_raw(g) : NULL;
  if (!cg) {
    gen_release(acc);
    return -1;
  }
  scatter_add_raw(acc, GEN_NODE_ATTRS(node, index_attrs)->dim, ci, cg);
  gen_release(cg);
  grad_in[0] = acc;
  return 0;
}

gen_tensor *gen_scatter_grad(int ndim, const int64_t *shape, int dim, gen_tensor *index, gen_tensor *g) {
  gen_tensor *zeros = gen_zeros(g->dtype, ndim, shape);
  gen_tensor *out = zeros ? gen_scatter_add(zeros, dim, index, g) : NULL;
  gen_release(zeros);
  return out;
}

static int gather_graph_backward(gen_node *node, gen_tensor *g, gen_tensor **grad_in) {
  gen_tensor *ci = gen_node_saved(node, 0);
  grad_in[0] =
      ci ? gen_scatter_grad(node->edges[0].ndim, node->edges[0].shape, GEN_NODE_ATTRS(node, index_attrs)->dim, ci, g) : NULL;
  return grad_in[0] ? 0 : -1;
}

gen_tensor *gen_gather(gen_tensor *a, int dim, gen_tensor *index) {
  if (check_gather_shapes(a, dim, index) < 0) return NULL;
  gen_tensor *ci = gen_contiguous_raw(index);
  gen_tensor *out = ci ? gather_raw(a, dim, ci) : NULL;
  index_attrs at = {dim};
  out = gen_record(out, &(gen_record_args){.op = GEN_OP_GATHER,
                                           .backward = gather_backward,
                                           .graph_backward = gather_graph_backward,
                                           .inputs = GEN_TENSORS(a),
                                           .saved = GEN_TENSORS(ci),
                                           .attrs = GEN_ATTRS(&at)});
  gen_release(ci);
  return out;
}

/* scatter_add: d/da = g; d/dsrc = gather(g, dim, index) */
static int scatter_add_backward(gen_node *node, gen_tensor *g, gen_tensor **grad_in) {
  if (gen_edge_live(&node->edges[0])) {
    gen_retain(g);
    grad_in[0] = g;
  }
  if (gen_edge_live(&node->edges[2])) {
    gen_tensor *ci = gen_node_saved(node, 0);
    if (!ci || !(grad_in[2] = gather_raw(g, GEN_NODE_ATTRS(node, index_attrs)->dim, ci))) return -1;
  }
  return 0;
}

static int scatter_add_graph_backward(gen_node *node, gen_tensor *g, gen_tensor **grad_in) {
  if (gen_edge_live(&node->edges[0])) {
    gen_retain(g);
    grad_in[0] = g;
  }
  if (gen_edge_live(&node->edges[2])) {
    gen_tensor *ci = gen_node_saved(node, 0);
    if (!ci || !(grad_in[2] = gen_gather(g, GEN_NODE_ATTRS(node, index_attrs)->dim, ci))) return -1;
  }
  return 0;
}

gen_tensor *gen_scatter_add(gen_tensor *a, int dim, gen_tensor *index, gen_tensor *src) {
  if (check_gather_shapes(a, dim, index) < 0) return NULL;
  if (!gen_same_shape(index, src)) {
    char s1[GEN_SHAPE_STR_MAX], s2[GEN_SHAPE_STR_MAX];
    return gen_fail("src shape %s must equal the index shape %s", gen_shape_str(s1, sizeof s1, src->ndim, src->shape),
                    gen_shape_str(s2, sizeof s2, index->ndim, index->shape));
  }
  if (src->dtype != a->dtype)
    return gen_fail("src is %s but the input is %s", gen_dtype_name(src->dtype), gen_dtype_name(a->dtype));
  gen_tensor *out = gen_empty(a->dtype, a->ndim, a->shape);
  gen_tensor *ci = out && gen_copy_raw(out, a) == 0 ? gen_contiguous_raw(index) : NULL;
  gen_tensor *cs = ci ? gen_contiguous_raw(src) : NULL;
  if (!cs) {
    gen_release(out);
    gen_release(ci);
    return NULL;
  }
  scatter_add_raw(out, dim, ci, cs);
  gen_release(cs);
  index_attrs at = {dim};
  out = gen_record(out, &(gen_record_args){.op = GEN_OP_SCATTER_ADD,
                                           .backward = scatter_add_backward,
                                           .graph_backward = scatter_add_graph_backward,
                                           .inputs = GEN_TENSORS(a, index, src),
                                           .saved = GEN_TENSORS(ci),
                                           .attrs = GEN_ATTRS(&at)});
  gen_release(ci);
  return out;
}
