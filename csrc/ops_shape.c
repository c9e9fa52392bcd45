/*
 * ops_shape.c — views (share storage, O(1)), shape changes and copies; forward and backward.
 *
 * The backward of a view is the inverse view of the gradient (reshape back, permute back, pad a
 * narrowed slice with zeros, sum an expanded dim).
 */
#include "ops_shape.h"

#include <string.h>

#include "autograd.h"

/* Records a single-input node with no saved tensors. */
static gen_tensor *record1(gen_tensor *out, gen_tensor *a, gen_op op, gen_backward_fn bw) {
  if (!out || !gen_needs_grad(1, &a)) return out;
  gen_node *n = gen_node_new(op, bw, 1, &a);
  if (!n) {
    gen_release(out);
    return NULL;
  }
  gen_attach(out, n);
  return out;
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
  return record1(out, a, GEN_OP_COPY, copy_backward);
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

gen_tensor *gen_to_dtype(gen_tensor *a, gen_dtype dt) {
  if (a->dtype == dt) {
    gen_retain(a);
    return a;
  }
  gen_tensor *out = gen_to_dtype_raw(a, dt);
  if (!out) return NULL;
  if (!gen_dtype_is_float(dt)) return out; /* integer results do not take part in autograd */
  return record1(out, a, GEN_OP_TO_DTYPE, to_dtype_backward);
}

gen_tensor *gen_detach(gen_tensor *a) { return gen_as_strided(a, a->ndim, a->shape, a->stride, a->offset); }

int gen_infer_shape(int64_t numel, int ndim, int64_t *shape) {
  int infer = -1;
  int64_t known = 1;
  for (int d = 0; d < ndim; d++) {
    if (shape[d] == -1) infer = d;
    else known *= shape[d];
  }
  if (infer >= 0) {
    if (known == 0 || numel % known != 0) goto mismatch;
    shape[infer] = numel / known;
  } else if (known != numel) {
    goto mismatch;
  }
  return 0;
mismatch:;
  char s[GEN_SHAPE_STR_MAX];
  return gen_fail_int("shape %s is invalid for a tensor of %lld elements",
                      gen_shape_str(s, sizeof s, ndim, shape), (long long)numel);
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
  return record1(out, a, GEN_OP_VIEW, view_backward);
}

gen_tensor *gen_view(gen_tensor *a, int ndim, const int64_t *shape) { return view_impl(a, ndim, shape, false); }
gen_tensor *gen_reshape(gen_tensor *a, int ndim, const int64_t *shape) { return view_impl(a, ndim, shape, true); }
