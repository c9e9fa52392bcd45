/*
 * ops_shape.c — views (share storage, O(1)), shape changes and copies; forward and backward.
 *
 * The backward of a view is the inverse view of the gradient (reshape back, permute back, pad a
 * narrowed slice with zeros, sum an expanded dim).
 */
#include "ops_shape.h"

#include <stdlib.h>
#include <string.h>

#include "autograd.h"
#include "ops_arith.h"
#include "ops_reduce.h"

/* Records a single-input node with no saved tensors and no attributes. The backwards written with
 * differentiable ops (copy, view, permute) serve as their own graph_backward. */
static gen_tensor *record1(gen_tensor *out, gen_tensor *a, gen_op op, gen_backward_fn bw, gen_backward_fn graph_bw) {
  return gen_record(out, &(gen_record_args){.op = op, .backward = bw, .graph_backward = graph_bw, .inputs = GEN_TENSORS(a)});
}

static int copy_backward(gen_node *n, gen_tensor *g, gen_tensor **grad_in) {
  (void)n;
  gen_retain(g);
  grad_in[0] = g;
  return 0;
}

gen_tensor *gen_clone(gen_tensor *a) {
  gen_tensor *out = gen_empty(a->dtype, a->ndim, a->shape);
  if (out && gen_copy_raw(out, a) < 0) {
    gen_release(out);
    return NULL;
  }
  return record1(out, a, GEN_OP_COPY, copy_backward, copy_backward);
}

gen_tensor *gen_contiguous(gen_tensor *a) {
  if (gen_is_contiguous(a)) {
    gen_retain(a);
    return a;
  }
  return gen_clone(a);
}

static int to_dtype_backward(gen_node *n, gen_tensor *g, gen_tensor **grad_in) {
  grad_in[0] = gen_to_dtype_raw(g, n->edges[0].dtype);
  return grad_in[0] ? 0 : -1;
}

static int to_dtype_graph_backward(gen_node *n, gen_tensor *g, gen_tensor **grad_in) {
  grad_in[0] = gen_to_dtype(g, n->edges[0].dtype);
  return grad_in[0] ? 0 : -1;
}

gen_tensor *gen_to_dtype(gen_tensor *a, gen_dtype dt) {
  if (a->dtype == dt) {
    gen_retain(a);
    return a;
  }
  gen_tensor *out = gen_to_dtype_raw(a, dt);
  if (!out) return NULL;
  if (!gen_dtype_is_float(dt)) return out; /* integer results do not take part in autograd */
  return record1(out, a, GEN_OP_TO_DTYPE, to_dtype_backward, to_dtype_graph_backward);
}

gen_tensor *gen_detach(gen_tensor *a) { return gen_as_strided(a, a->ndim, a->shape, a->stride, a->offset); }

int gen_infer_shape(int64_t numel, int ndim, int64_t *shape) {
  int infer = -1;
  int64_t known = 1;
  bool ovf = false;
  for (int d = 0; d < ndim; d++) {
    if (shape[d] == -1)
      infer = d;
    else
      known = gen_size_mul(known, shape[d], &ovf);
  }
  if (ovf) goto mismatch;
  if (infer >= 0) {
    if (known == 0 || numel % known != 0) goto mismatch;
    shape[infer] = numel / known;
  } else if (known != numel) {
    goto mismatch;
  }
  return 0;
mismatch:;
  char s[GEN_SHAPE_STR_MAX];
  return gen_fail_int("shape %s is invalid for a tensor of %lld elements", gen_shape_str(s, sizeof s, ndim, shape),
                      (long long)numel);
}

/* Strides for viewing a's elements with a new shape without copying, if possible (PyTorch's rule:
 * each group of new dims must map onto a run of old dims that is contiguous in memory). */
static bool view_strides(const gen_tensor *a, int ndim, const int64_t *shape, int64_t *stride) {
  int64_t numel = gen_numel(a);
  if (numel == 0 || a->ndim == 0) {
    gen_contiguous_strides(ndim, shape, stride);
    return true;
  }
  int view_d = ndim - 1;
  int64_t chunk_base_stride = a->stride[a->ndim - 1], tensor_numel = 1, view_numel = 1;
  for (int d = a->ndim - 1; d >= 0; d--) {
    tensor_numel *= a->shape[d];
    if (d == 0 || (a->shape[d - 1] != 1 && a->stride[d - 1] != tensor_numel * chunk_base_stride)) {
      while (view_d >= 0 && (view_numel < tensor_numel || shape[view_d] == 1)) {
        stride[view_d] = view_numel * chunk_base_stride;
        view_numel *= shape[view_d];
        view_d--;
      }
      if (view_numel != tensor_numel) return false;
      if (d > 0) {
        chunk_base_stride = a->stride[d - 1];
        tensor_numel = 1;
        view_numel = 1;
      }
    }
  }
  return view_d == -1;
}

static int view_backward(gen_node *n, gen_tensor *g, gen_tensor **grad_in) {
  grad_in[0] = gen_reshape(g, n->edges[0].ndim, n->edges[0].shape);
  return grad_in[0] ? 0 : -1;
}

static gen_tensor *view_impl(gen_tensor *a, int ndim, const int64_t *shape_in, bool may_copy) {
  if (ndim > GEN_MAX_DIMS) return gen_fail("%d dimensions (at most %d are supported)", ndim, GEN_MAX_DIMS);
  int64_t shape[GEN_MAX_DIMS], stride[GEN_MAX_DIMS];
  memcpy(shape, shape_in, sizeof(int64_t) * (size_t)ndim);
  if (gen_infer_shape(gen_numel(a), ndim, shape) < 0) return NULL;
  if (gen_numel_checked(ndim, shape) < 0) return NULL; /* an empty tensor matches any shape with a 0 */
  gen_tensor *out;
  if (view_strides(a, ndim, shape, stride)) {
    out = gen_as_strided(a, ndim, shape, stride, a->offset);
  } else if (may_copy) {
    gen_tensor *c = gen_contiguous_raw(a);
    if (!c) return NULL;
    gen_contiguous_strides(ndim, shape, stride);
    out = gen_as_strided(c, ndim, shape, stride, c->offset);
    gen_release(c);
  } else {
    char s[GEN_SHAPE_STR_MAX];
    return gen_fail("cannot view a non-contiguous tensor of shape %s as %s; use reshape (which "
                    "copies) or call contiguous() first",
                    gen_shape_str(s, sizeof s, a->ndim, a->shape),
                    gen_shape_str((char[GEN_SHAPE_STR_MAX]){0}, GEN_SHAPE_STR_MAX, ndim, shape));
  }
  return record1(out, a, GEN_OP_VIEW, view_backward, view_backward);
}

gen_tensor *gen_view(gen_tensor *a, int ndim, const int64_t *shape) { return view_impl(a, ndim, shape, false); }
gen_tensor *gen_reshape(gen_tensor *a, int ndim, const int64_t *shape) { return view_impl(a, ndim, shape, true); }

/* ---- permute ---- */
typedef struct {
  int dims[GEN_MAX_DIMS]; /* result dim d is input dim dims[d] */
} permute_attrs;

static int permute_backward(gen_node *n, gen_tensor *g, gen_tensor **grad_in) {
  const permute_attrs *at = GEN_NODE_ATTRS(n, permute_attrs);
  int inv[GEN_MAX_DIMS];
  for (int d = 0; d < g->ndim; d++) inv[at->dims[d]] = d;
  grad_in[0] = gen_permute(g, inv);
  return grad_in[0] ? 0 : -1;
}

gen_tensor *gen_permute(gen_tensor *a, const int *dims) {
  int64_t shape[GEN_MAX_DIMS], stride[GEN_MAX_DIMS];
  bool seen[GEN_MAX_DIMS] = {0};
  for (int d = 0; d < a->ndim; d++) {
    if (dims[d] < 0 || dims[d] >= a->ndim || seen[dims[d]])
      return gen_fail("dims must be a permutation of 1..%d (dimension %d repeated or out of range)", a->ndim, dims[d] + 1);
    seen[dims[d]] = true;
    shape[d] = a->shape[dims[d]];
    stride[d] = a->stride[dims[d]];
  }
  gen_tensor *out = gen_as_strided(a, a->ndim, shape, stride, a->offset);
  permute_attrs at = {{0}};
  memcpy(at.dims, dims, sizeof(int) * (size_t)a->ndim);
  return gen_record(out, &(gen_record_args){.op = GEN_OP_PERMUTE,
                                            .backward = permute_backward,
                                            .graph_backward = permute_backward,
                                            .inputs = GEN_TENSORS(a),
                                            .attrs = GEN_ATTRS(&at)});
}

/* ---- narrow and select: backward writes g into a zero tensor of the input's shape ---- */
typedef struct {
  int dim;
  int64_t start, length; /* select: length -1, the dim is removed */
} slice_attrs;

static int slice_backward(gen_node *n, gen_tensor *g, gen_tensor **grad_in) {
  const slice_attrs *at = GEN_NODE_ATTRS(n, slice_attrs);
  gen_tensor *z = gen_zeros(g->dtype, n->edges[0].ndim, n->edges[0].shape);
  if (!z) return -1;
  int dim = at->dim;
  int64_t shape[GEN_MAX_DIMS], stride[GEN_MAX_DIMS];
  int nd = 0;
  for (int d = 0; d < z->ndim; d++) {
    if (d == dim && at->length < 0) continue; /* select: the dim is gone from g */
    shape[nd] = d == dim ? at->length : z->shape[d];
    stride[nd++] = z->stride[d];
  }
  gen_tensor *slot = gen_as_strided(z, nd, shape, stride, z->offset + at->start * z->stride[dim]);
  int rc = slot ? gen_copy_raw(slot, g) : -1;
  gen_release(slot);
  if (rc < 0) {
    gen_release(z);
    return -1;
  }
  grad_in[0] = z;
  return 0;
}

/* g placed into zeros of the input's shape, as a cat of zeros, g and zeros along the dim */
static int slice_graph_backward(gen_node *n, gen_tensor *g, gen_tensor **grad_in) {
  const slice_attrs *at = GEN_NODE_ATTRS(n, slice_attrs);
  const gen_edge *e = &n->edges[0];
  int dim = at->dim;
  int64_t len = at->length < 0 ? 1 : at->length, after = e->shape[dim] - at->start - len;
  gen_tensor *piece = g;
  gen_retain(piece);
  if (at->length < 0) { /* select: put the dim back */
    gen_release(piece);
    int64_t shape[GEN_MAX_DIMS];
    memcpy(shape, e->shape, sizeof shape);
    shape[dim] = 1;
    if (!(piece = gen_reshape(g, e->ndim, shape))) return -1;
  }
  gen_tensor *parts[3];
  int np = 0, rc = 0;
  int64_t sizes[3] = {at->start, 0, after};
  for (int k = 0; k < 3 && rc == 0; k++) {
    if (k == 1) {
      parts[np++] = piece;
      continue;
    }
    if (sizes[k] == 0) continue;
    int64_t shape[GEN_MAX_DIMS];
    memcpy(shape, e->shape, sizeof shape);
    shape[dim] = sizes[k];
    if (!(parts[np] = gen_zeros(g->dtype, e->ndim, shape)))
      rc = -1;
    else
      np++;
  }
  if (rc == 0) {
    if (np == 1) {
      gen_retain(piece);
      grad_in[0] = piece;
    } else {
      grad_in[0] = gen_cat(np, parts, dim);
    }
  }
  for (int k = 0; k < np; k++) gen_release(parts[k]);
  if (rc < 0) gen_release(piece);
  return rc == 0 && grad_in[0] ? 0 : -1;
}

static gen_tensor *slice_record(gen_tensor *out, gen_tensor *a, gen_op op, int dim, int64_t start, int64_t length) {
  slice_attrs at = {dim, start, length};
  return gen_record(out, &(gen_record_args){.op = op,
                                            .backward = slice_backward,
                                            .graph_backward = slice_graph_backward,
                                            .inputs = GEN_TENSORS(a),
                                            .attrs = GEN_ATTRS(&at)});
}

gen_tensor *gen_narrow(gen_tensor *a, int dim, int64_t start, int64_t length) {
  if (start < 0 || length < 0 || start > a->shape[dim] || length > a->shape[dim] - start)
    return gen_fail("start %lld and length %lld do not fit dimension %d of size %lld", (long long)start + 1, (long long)length,
                    dim + 1, (long long)a->shape[dim]);
  int64_t shape[GEN_MAX_DIMS];
  memcpy(shape, a->shape, sizeof shape);
  shape[dim] = length;
  gen_tensor *out = gen_as_strided(a, a->ndim, shape, a->stride, a->offset + start * a->stride[dim]);
  return slice_record(out, a, GEN_OP_NARROW, dim, start, length);
}

gen_tensor *gen_select(gen_tensor *a, int dim, int64_t index) {
  if (index < 0 || index >= a->shape[dim])
    return gen_fail("index %lld out of range for dimension %d of size %lld", (long long)index + 1, dim + 1,
                    (long long)a->shape[dim]);
  int64_t shape[GEN_MAX_DIMS], stride[GEN_MAX_DIMS];
  int nd = 0;
  for (int d = 0; d < a->ndim; d++) {
    if (d == dim) continue;
    shape[nd] = a->shape[d];
    stride[nd++] = a->stride[d];
  }
  gen_tensor *out = gen_as_strided(a, nd, shape, stride, a->offset + index * a->stride[dim]);
  return slice_record(out, a, GEN_OP_SELECT, dim, index, -1);
}

/* ---- expand ---- */
static int expand_backward(gen_node *n, gen_tensor *g, gen_tensor **grad_in) {
  grad_in[0] = gen_sum_to_shape(g, n->edges[0].ndim, n->edges[0].shape);
  return grad_in[0] ? 0 : -1;
}

static int expand_graph_backward(gen_node *n, gen_tensor *g, gen_tensor **grad_in) {
  grad_in[0] = gen_sum_to(g, n->edges[0].ndim, n->edges[0].shape);
  return grad_in[0] ? 0 : -1;
}

gen_tensor *gen_expand(gen_tensor *a, int ndim, const int64_t *shape_in) {
  if (ndim < a->ndim) return gen_fail("cannot expand %d dimensions into %d", a->ndim, ndim);
  int64_t shape[GEN_MAX_DIMS];
  int lead = ndim - a->ndim;
  for (int d = 0; d < ndim; d++) {
    shape[d] = shape_in[d];
    if (shape[d] == -1) {
      if (d < lead) return gen_fail("-1 is not allowed for a new leading dimension (%d)", d + 1);
      shape[d] = a->shape[d - lead];
    }
  }
  gen_tensor *out = gen_expand_raw(a, ndim, shape);
  return record1(out, a, GEN_OP_EXPAND, expand_backward, expand_graph_backward);
}

/* ---- cat ---- the node's inputs are the pieces, in order */
typedef struct {
  int dim;
} cat_attrs;

static int cat_backward(gen_node *n, gen_tensor *g, gen_tensor **grad_in) {
  int dim = GEN_NODE_ATTRS(n, cat_attrs)->dim;
  int64_t start = 0;
  for (int i = 0; i < n->n_inputs; i++) {
    int64_t len = n->edges[i].shape[dim];
    if (gen_edge_live(&n->edges[i])) {
      int64_t shape[GEN_MAX_DIMS];
      memcpy(shape, g->shape, sizeof shape);
      shape[dim] = len;
      gen_tensor *v = gen_as_strided(g, g->ndim, shape, g->stride, g->offset + start * g->stride[dim]);
      grad_in[i] = v ? gen_contiguous_raw(v) : NULL;
      gen_release(v);
      if (!grad_in[i]) return -1;
    }
    start += len;
  }
  return 0;
}

static int cat_graph_backward(gen_node *n, gen_tensor *g, gen_tensor **grad_in) {
  int dim = GEN_NODE_ATTRS(n, cat_attrs)->dim;
  int64_t start = 0;
  for (int i = 0; i < n->n_inputs; i++) {
    int64_t len = n->edges[i].shape[dim];
    if (gen_edge_live(&n->edges[i]) && !(grad_in[i] = gen_narrow(g, dim, start, len))) return -1;
    start += len;
  }
  return 0;
}

/* Up to GEN_NODE_MAX_INPUTS pieces per node: longer lists are joined as a tree of cats. */
static gen_tensor *cat_small(int n, gen_tensor *const *ts, int dim) {
  int64_t shape[GEN_MAX_DIMS];
  memcpy(shape, ts[0]->shape, sizeof shape);
  shape[dim] = 0;
  for (int i = 0; i < n; i++) shape[dim] += ts[i]->shape[dim];
  gen_tensor *out = gen_empty(ts[0]->dtype, ts[0]->ndim, shape);
  if (!out) return NULL;
  int64_t start = 0;
  for (int i = 0; i < n; i++) {
    int64_t pshape[GEN_MAX_DIMS];
    memcpy(pshape, out->shape, sizeof pshape);
    pshape[dim] = ts[i]->shape[dim];
    gen_tensor *v = gen_as_strided(out, out->ndim, pshape, out->stride, out->offset + start * out->stride[dim]);
    int rc = v ? gen_copy_raw(v, ts[i]) : -1;
    gen_release(v);
    if (rc < 0) {
      gen_release(out);
      return NULL;
    }
    start += ts[i]->shape[dim];
  }
  cat_attrs at = {dim};
  return gen_record(out, &(gen_record_args){.op = GEN_OP_CAT,
                                            .backward = cat_backward,
                                            .graph_backward = cat_graph_backward,
                                            .inputs = {n, ts},
                                            .attrs = GEN_ATTRS(&at)});
}

gen_tensor *gen_cat(int n, gen_tensor *const *ts, int dim) {
  if (n < 1) return gen_fail("needs at least one tensor");
  for (int i = 0; i < n; i++) {
    gen_tensor *t = ts[i];
    if (t->dtype != ts[0]->dtype)
      return gen_fail("tensor %d is %s but tensor 1 is %s", i + 1, gen_dtype_name(t->dtype), gen_dtype_name(ts[0]->dtype));
    bool ok = t->ndim == ts[0]->ndim;
    for (int d = 0; ok && d < t->ndim; d++) ok = d == dim || t->shape[d] == ts[0]->shape[d];
    if (!ok) {
      char a[GEN_SHAPE_STR_MAX], b[GEN_SHAPE_STR_MAX];
      return gen_fail("tensor %d has shape %s, which does not match tensor 1's %s outside dimension %d", i + 1,
                      gen_shape_str(a, sizeof a, t->ndim, t->shape), gen_shape_str(b, sizeof b, ts[0]->ndim, ts[0]->shape),
                      dim + 1);
    }
  }
  if (n <= GEN_NODE_MAX_INPUTS) return cat_small(n, ts, dim);
  int groups = (n + GEN_NODE_MAX_INPUTS - 1) / GEN_NODE_MAX_INPUTS;
  gen_tensor *parts[GEN_NODE_MAX_INPUTS * GEN_NODE_MAX_INPUTS];
  gen_tensor **heap = NULL, **p = parts;
  if (groups > GEN_NODE_MAX_INPUTS * GEN_NODE_MAX_INPUTS) {
    heap = malloc(sizeof(gen_tensor *) * (size_t)groups);
    if (!heap) return gen_fail("out of memory");
    p = heap;
  }
  gen_tensor *out = NULL;
  int made = 0;
  for (int gi = 0; gi < groups; gi++) {
    int k = n - gi * GEN_NODE_MAX_INPUTS < GEN_NODE_MAX_INPUTS ? n - gi * GEN_NODE_MAX_INPUTS : GEN_NODE_MAX_INPUTS;
    p[gi] = cat_small(k, ts + gi * GEN_NODE_MAX_INPUTS, dim);
    if (!p[gi]) goto done;
    made++;
  }
  out = gen_cat(groups, p, dim);
done:
  for (int i = 0; i < made; i++) gen_release(p[i]);
  free(heap);
  return out;
}
