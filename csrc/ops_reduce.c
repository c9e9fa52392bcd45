/*
 * ops_reduce.c — reductions over one dimension or over all elements; forward and backward.
 *
 * Layout legend: a reduction over dim d sees the (contiguous) input as [outer, n, inner], where
 * n = shape[d], outer = prod(shape[:d]), inner = prod(shape[d+1:]); the output is [outer, inner].
 * Accumulation is in double, and the order of additions is fixed by the data layout alone, so the
 * result is bitwise the same for any thread count.
 */
#include "ops_reduce.h"

#include <stdlib.h>
#include <string.h>

#include "autograd.h"
#include "kernels/elementwise.h"

static void split_dims(const gen_tensor *a, int dim, int64_t *outer, int64_t *n, int64_t *inner) {
  *outer = gen_numel_of(dim, a->shape);
  *n = a->shape[dim];
  *inner = gen_numel_of(a->ndim - dim - 1, a->shape + dim + 1);
}

static void reduced_shape(const gen_tensor *a, int dim, bool keepdim, int *ndim, int64_t *shape) {
  if (dim == GEN_DIM_ALL) {
    *ndim = 0;
    if (keepdim) {
      *ndim = a->ndim;
      for (int d = 0; d < a->ndim; d++) shape[d] = 1;
    }
    return;
  }
  int k = 0;
  for (int d = 0; d < a->ndim; d++) {
    if (d != dim) shape[k++] = a->shape[d];
    else if (keepdim) shape[k++] = 1;
  }
  *ndim = k;
}

/* Blocked sum of a contiguous buffer: fixed 4096-element blocks, partials added in order. */
static double sum_all_contiguous(const gen_tensor *c) {
  int64_t n = gen_numel(c);
  const int64_t block = 4096;
  int64_t nblocks = (n + block - 1) / block;
  if (nblocks == 0) return 0;
  double stack_partials[64], *partials = nblocks <= 64 ? stack_partials : malloc(sizeof(double) * (size_t)nblocks);
  if (!partials) return 0.0 / 0.0;
  const char *p = gen_data_ptr(c);
  gen_dtype dt = c->dtype;
#pragma omp parallel for if (n > GEN_PARALLEL_GRAIN)
  for (int64_t b = 0; b < nblocks; b++) {
    int64_t lo = b * block, hi = lo + block < n ? lo + block : n;
    double s = 0;
    if (dt == GEN_FLOAT32) {
      const float *f = (const float *)p;
      for (int64_t i = lo; i < hi; i++) s += f[i];
    } else {
      for (int64_t i = lo; i < hi; i++) s += gen_read_f64(p + (size_t)i * gen_dtype_size(dt), dt);
    }
    partials[b] = s;
  }
  double total = 0;
  for (int64_t b = 0; b < nblocks; b++) total += partials[b];
  if (partials != stack_partials) free(partials);
  return total;
}

gen_tensor *gen_sum_dim_raw(gen_tensor *a, int dim, bool keepdim) {
  int ndim;
  int64_t shape[GEN_MAX_DIMS];
  reduced_shape(a, dim, keepdim, &ndim, shape);
  gen_tensor *c = gen_contiguous_raw(a);
  if (!c) return NULL;
  gen_dtype odt = a->dtype == GEN_UINT8 ? GEN_INT64 : a->dtype;
  gen_tensor *out = gen_empty(odt, ndim, shape);
  if (!out) {
    gen_release(c);
    return NULL;
  }
  if (dim == GEN_DIM_ALL) {
    gen_write_f64(out->storage->data, odt, sum_all_contiguous(c));
  } else {
    int64_t outer, n, inner;
    split_dims(c, dim, &outer, &n, &inner);
    const char *p = gen_data_ptr(c);
    char *o = gen_data_ptr(out);
    size_t es = gen_dtype_size(c->dtype), oes = gen_dtype_size(odt);
    bool f32 = c->dtype == GEN_FLOAT32;
#pragma omp parallel for if (outer * n * inner > GEN_PARALLEL_GRAIN)
    for (int64_t i = 0; i < outer; i++) {
      for (int64_t k = 0; k < inner; k++) {
        double s = 0;
        int64_t base = i * n * inner + k;
        if (f32) {
          const float *f = (const float *)p + base;
          for (int64_t j = 0; j < n; j++) s += f[j * inner];
        } else {
          for (int64_t j = 0; j < n; j++) s += gen_read_f64(p + (size_t)(base + j * inner) * es, c->dtype);
        }
        gen_write_f64(o + (size_t)(i * inner + k) * oes, odt, s);
      }
    }
  }
  gen_release(c);
  return out;
}

gen_tensor *gen_unreduce_raw(gen_tensor *g, int dim, bool keepdim, int ndim, const int64_t *shape) {
  /* Reinsert the reduced dims as size 1, then broadcast-copy to the full shape. */
  int64_t kshape[GEN_MAX_DIMS], kstride[GEN_MAX_DIMS];
  for (int d = 0; d < ndim; d++) kshape[d] = (dim == GEN_DIM_ALL || d == dim) ? 1 : shape[d];
  gen_tensor *gc = gen_contiguous_raw(g);
  if (!gc) return NULL;
  (void)keepdim;
  gen_contiguous_strides(ndim, kshape, kstride);
  gen_tensor *kept = gen_as_strided(gc, ndim, kshape, kstride, gc->offset);
  gen_tensor *out = kept ? gen_empty(g->dtype, ndim, shape) : NULL;
  if (out && gen_copy_raw(out, kept) < 0) {
    gen_release(out);
    out = NULL;
  }
  gen_release(kept);
  gen_release(gc);
  return out;
}

gen_tensor *gen_sum_to_shape(gen_tensor *g, int ndim, const int64_t *shape) {
  if (g->ndim == ndim) {
    bool same = true;
    for (int d = 0; d < ndim && same; d++) same = g->shape[d] == shape[d];
    if (same) {
      gen_retain(g);
      return g;
    }
  }
  gen_tensor *cur = g;
  gen_retain(cur);
  int lead = g->ndim - ndim;
  /* Leading dims that the input did not have: sum them away. */
  for (int d = 0; d < lead; d++) {
    gen_tensor *next = gen_sum_dim_raw(cur, 0, false);
    gen_release(cur);
    if (!next) return NULL;
    cur = next;
  }
  for (int d = 0; d < ndim; d++) {
    if (shape[d] == 1 && cur->shape[d] != 1) {
      gen_tensor *next = gen_sum_dim_raw(cur, d, true);
      gen_release(cur);
      if (!next) return NULL;
      cur = next;
    }
  }
  return cur;
}

/* attrs: ints[0] = dim, ints[1] = keepdim, reals[0] = scale (1 for sum, 1/n for mean) */
static int sum_mean_backward(gen_node *n, gen_tensor *g, gen_tensor **grad_in) {
  gen_tensor *full = gen_unreduce_raw(g, (int)n->ints[0], n->ints[1], n->edges[0].ndim, n->edges[0].shape);
  if (!full) return -1;
  if (n->reals[0] != 1.0) {
    gen_tensor *scaled = gen_scale_raw(full, n->reals[0]);
    gen_release(full);
    full = scaled;
  }
  grad_in[0] = full;
  return full ? 0 : -1;
}

static gen_tensor *sum_or_mean(gen_op op, gen_tensor *a, int dim, bool keepdim) {
  if (op == GEN_OP_MEAN && !gen_dtype_is_float(a->dtype))
    return gen_fail("mean of a %s tensor (convert it with :float() first)", gen_dtype_name(a->dtype));
  gen_tensor *out = gen_sum_dim_raw(a, dim, keepdim);
  if (!out) return NULL;
  int64_t count = dim == GEN_DIM_ALL ? gen_numel(a) : a->shape[dim];
  double scale = op == GEN_OP_MEAN ? 1.0 / (double)count : 1.0;
  if (op == GEN_OP_MEAN) {
    gen_tensor *m = gen_scale_raw(out, count ? scale : 0.0 / 0.0);
    gen_release(out);
    if (!(out = m)) return NULL;
  }
  if (!gen_needs_grad(1, &a)) return out;
  gen_node *n = gen_node_new(op, sum_mean_backward, 1, &a);
  if (!n) {
    gen_release(out);
    return NULL;
  }
  n->ints[0] = dim;
  n->ints[1] = keepdim;
  n->reals[0] = scale;
  gen_attach(out, n);
  return out;
}

gen_tensor *gen_sum(gen_tensor *a, int dim, bool keepdim) { return sum_or_mean(GEN_OP_SUM, a, dim, keepdim); }
gen_tensor *gen_mean(gen_tensor *a, int dim, bool keepdim) { return sum_or_mean(GEN_OP_MEAN, a, dim, keepdim); }
