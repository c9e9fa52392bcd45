/*
 * ops_reduce.c — reductions over one dimension or over all elements; forward and backward.
 *
 * Layout legend: a reduction over dim d sees the (contiguous) input as [outer, n, inner], where
 * n = shape[d], outer = prod(shape[:d]), inner = prod(shape[d+1:]); the output is [outer, inner].
 * Accumulation is in double, and the order of additions is fixed by the data layout alone, so the
 * result is bitwise the same for any thread count.
 */
#include "ops_reduce.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "autograd.h"
#include "ops_arith.h"
#include "ops_index.h"
#include "ops_shape.h"
#include "ops_unary.h"

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
    if (d != dim)
      shape[k++] = a->shape[d];
    else if (keepdim)
      shape[k++] = 1;
  }
  *ndim = k;
}

/* Block b of sum_all_contiguous. */
static void sum_block(double *partials, const char *p, int64_t n, int64_t block, gen_dtype dt, int64_t b) {
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
  if (n > GEN_PARALLEL_GRAIN) {
#pragma omp parallel for
    for (int64_t b = 0; b < nblocks; b++) sum_block(partials, p, n, block, dt, b);
  } else {
    for (int64_t b = 0; b < nblocks; b++) sum_block(partials, p, n, block, dt, b);
  }
  double total = 0;
  for (int64_t b = 0; b < nblocks; b++) total += partials[b];
  if (partials != stack_partials) free(partials);
  return total;
}

#define SUM_COLS 256

/* Outer index i of gen_sum_dim_raw: each column summed down its n values in order. */
static void sum_strided_row(char *o, const char *p, int64_t n, int64_t inner, size_t es, size_t oes, bool f32, gen_dtype dt,
                            gen_dtype odt, int64_t i) {
  for (int64_t k = 0; k < inner; k++) {
    double s = 0;
    int64_t base = i * n * inner + k;
    if (f32) {
      const float *f = (const float *)p + base;
      for (int64_t j = 0; j < n; j++) s += f[j * inner];
    } else {
      for (int64_t j = 0; j < n; j++) s += gen_read_f64(p + (size_t)(base + j * inner) * es, dt);
    }
    gen_write_f64(o + (size_t)(i * inner + k) * oes, odt, s);
  }
}

/* Task t = (i, block of SUM_COLS columns) of gen_sum_dim_raw, float32. */
static void sum_column_block(char *o, const char *p, int64_t n, int64_t inner, int64_t blocks, size_t oes, gen_dtype odt,
                             int64_t t) {
  int64_t i = t / blocks, k0 = t % blocks * SUM_COLS, len = inner - k0 < SUM_COLS ? inner - k0 : SUM_COLS;
  double acc[SUM_COLS] = {0};
  for (int64_t j = 0; j < n; j++) {
    const float *row = (const float *)p + (i * n + j) * inner + k0;
    for (int64_t k = 0; k < len; k++) acc[k] += row[k];
  }
  for (int64_t k = 0; k < len; k++) gen_write_f64(o + (size_t)(i * inner + k0 + k) * oes, odt, acc[k]);
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
    if (f32 && inner >= 8) {
      /* Columns of a float32 [outer, n, inner]: a block of SUM_COLS running sums in double, each
       * still adding its n values in order, walked row by row (contiguous, vectorized) instead of
       * one strided column at a time. */
      int64_t blocks = (inner + SUM_COLS - 1) / SUM_COLS;
      if (outer * n * inner > GEN_PARALLEL_GRAIN) {
#pragma omp parallel for
        for (int64_t t = 0; t < outer * blocks; t++) sum_column_block(o, p, n, inner, blocks, oes, odt, t);
      } else {
        for (int64_t t = 0; t < outer * blocks; t++) sum_column_block(o, p, n, inner, blocks, oes, odt, t);
      }
    } else {
      if (outer * n * inner > GEN_PARALLEL_GRAIN) {
#pragma omp parallel for
        for (int64_t i = 0; i < outer; i++) sum_strided_row(o, p, n, inner, es, oes, f32, c->dtype, odt, i);
      } else {
        for (int64_t i = 0; i < outer; i++) sum_strided_row(o, p, n, inner, es, oes, f32, c->dtype, odt, i);
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

gen_tensor *gen_sum_to(gen_tensor *g, int ndim, const int64_t *shape) {
  gen_tensor *cur = g;
  gen_retain(cur);
  for (int d = 0; d < g->ndim - ndim && cur; d++) { /* leading dims the input did not have */
    gen_tensor *next = gen_sum(cur, 0, false);
    gen_release(cur);
    cur = next;
  }
  for (int d = 0; d < ndim && cur; d++) {
    if (shape[d] == 1 && cur->shape[d] != 1) {
      gen_tensor *next = gen_sum(cur, d, true);
      gen_release(cur);
      cur = next;
    }
  }
  return cur;
}

gen_tensor *gen_unreduce(gen_tensor *g, int dim, int ndim, const int64_t *shape) {
  int64_t kshape[GEN_MAX_DIMS];
  for (int d = 0; d < ndim; d++) kshape[d] = (dim == GEN_DIM_ALL || d == dim) ? 1 : shape[d];
  gen_tensor *kept = gen_reshape(g, ndim, kshape);
  gen_tensor *out = kept ? gen_expand(kept, ndim, shape) : NULL;
  gen_release(kept);
  return out;
}

/* The attributes of every reduction's node. */
typedef struct {
  int dim; /* or GEN_DIM_ALL */
  bool keepdim;
  double scale;       /* sum: 1, mean: 1/n */
  int64_t correction; /* var, std */
} reduce_attrs;

static int sum_mean_backward(gen_node *n, gen_tensor *g, gen_tensor **grad_in) {
  const reduce_attrs *ra = GEN_NODE_ATTRS(n, reduce_attrs);
  gen_tensor *full = gen_unreduce_raw(g, ra->dim, ra->keepdim, n->edges[0].ndim, n->edges[0].shape);
  if (!full) return -1;
  if (ra->scale != 1.0) {
    gen_tensor *scaled = gen_scale_raw(full, ra->scale);
    gen_release(full);
    full = scaled;
  }
  grad_in[0] = full;
  return full ? 0 : -1;
}

static int sum_mean_graph_backward(gen_node *n, gen_tensor *g, gen_tensor **grad_in) {
  const reduce_attrs *ra = GEN_NODE_ATTRS(n, reduce_attrs);
  gen_tensor *full = gen_unreduce(g, ra->dim, n->edges[0].ndim, n->edges[0].shape);
  if (full && ra->scale != 1.0) {
    gen_tensor *scaled = gen_scale(full, ra->scale);
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
  reduce_attrs ra = {dim, keepdim, scale, 0};
  return gen_record(out, &(gen_record_args){.op = op,
                                            .backward = sum_mean_backward,
                                            .graph_backward = sum_mean_graph_backward,
                                            .inputs = GEN_TENSORS(a),
                                            .attrs = GEN_ATTRS(&ra)});
}

gen_tensor *gen_sum(gen_tensor *a, int dim, bool keepdim) { return sum_or_mean(GEN_OP_SUM, a, dim, keepdim); }
gen_tensor *gen_mean(gen_tensor *a, int dim, bool keepdim) { return sum_or_mean(GEN_OP_MEAN, a, dim, keepdim); }

/* ---------------------------------------------------------------- row-wise reductions
 * Every output element reduces one "row": n elements `inner` apart in the contiguous input. Rows
 * are independent (parallel); each is walked serially in order (deterministic). */

typedef struct {
  gen_tensor *c; /* contiguous input */
  int64_t outer, n, inner;
} rows;

static int rows_of(gen_tensor *a, int dim, rows *r) {
  r->c = gen_contiguous_raw(a);
  if (!r->c) return -1;
  if (dim == GEN_DIM_ALL) {
    r->outer = 1;
    r->n = gen_numel(a);
    r->inner = 1;
  } else {
    split_dims(r->c, dim, &r->outer, &r->n, &r->inner);
  }
  return 0;
}

static inline double at(const gen_tensor *c, int64_t i) {
  const char *p = gen_data_ptr(c);
  return c->dtype == GEN_FLOAT32 ? ((const float *)p)[i] : gen_read_f64(p + (size_t)i * gen_dtype_size(c->dtype), c->dtype);
}
static inline void put(gen_tensor *t, int64_t i, double v) {
  char *p = gen_data_ptr(t);
  if (t->dtype == GEN_FLOAT32)
    ((float *)p)[i] = (float)v;
  else
    gen_write_f64(p + (size_t)i * gen_dtype_size(t->dtype), t->dtype, v);
}
static inline int64_t row_base(const rows *r, int64_t row) { return (row / r->inner) * r->n * r->inner + row % r->inner; }

typedef enum { ROW_VAR, ROW_MAX, ROW_MIN, ROW_LOGSUMEXP } row_kind;

/* value of the row, and the 0-based position for max/min */
static double reduce_row(const rows *r, int64_t row, row_kind kind, int64_t correction, int64_t *pos) {
  int64_t b = row_base(r, row), s = r->inner, n = r->n;
  switch (kind) {
  case ROW_VAR: {
    double mean = 0, ss = 0;
    for (int64_t k = 0; k < n; k++) mean += at(r->c, b + k * s);
    mean /= (double)n;
    for (int64_t k = 0; k < n; k++) {
      double d = at(r->c, b + k * s) - mean;
      ss += d * d;
    }
    return n - correction > 0 ? ss / (double)(n - correction) : 0.0 / 0.0;
  }
  case ROW_MAX:
  case ROW_MIN: {
    double best = at(r->c, b);
    int64_t where = 0;
    for (int64_t k = 1; k < n && best == best; k++) {
      double v = at(r->c, b + k * s);
      if (v != v || (kind == ROW_MAX ? v > best : v < best)) {
        best = v;
        where = k;
      }
    }
    *pos = where;
    return best;
  }
  default: {
    double m = -INFINITY, sum = 0;
    for (int64_t k = 0; k < n; k++) {
      double v = at(r->c, b + k * s);
      if (v > m || v != v) m = v;
    }
    if (m == -INFINITY || m != m) return m;
    for (int64_t k = 0; k < n; k++) sum += exp(at(r->c, b + k * s) - m);
    return m + log(sum);
  }
  }
}

/* Runs reduce_row over every row into out (values) and idx (positions, optional, 1-based). */
static int reduce_rows(gen_tensor *a, int dim, bool keepdim, row_kind kind, int64_t correction, gen_tensor **out,
                       gen_tensor **idx) {
  int ndim;
  int64_t shape[GEN_MAX_DIMS];
  reduced_shape(a, dim, keepdim, &ndim, shape);
  if (gen_numel(a) == 0 || (dim != GEN_DIM_ALL && a->shape[dim] == 0)) return gen_fail_int("cannot reduce an empty dimension");
  rows r;
  if (rows_of(a, dim, &r) < 0) return -1;
  gen_dtype odt = gen_dtype_is_float(a->dtype) || kind == ROW_MAX || kind == ROW_MIN ? a->dtype : GEN_FLOAT32;
  *out = gen_empty(odt, ndim, shape);
  gen_tensor *ix = idx ? gen_empty(GEN_INT64, ndim, shape) : NULL;
  if (!*out || (idx && !ix)) {
    gen_release(*out);
    gen_release(ix);
    gen_release(r.c);
    *out = NULL;
    return -1;
  }
  int64_t nrows = r.outer * r.inner;
  int64_t *ip = ix ? (int64_t *)gen_data_ptr(ix) : NULL;
  if (nrows * r.n > GEN_PARALLEL_GRAIN) {
#pragma omp parallel for
    for (int64_t row = 0; row < nrows; row++) {
      int64_t pos = 0;
      put(*out, row, reduce_row(&r, row, kind, correction, &pos));
      if (ip) ip[row] = pos + 1; /* over all elements, the row is the flat tensor */
    }
  } else {
    for (int64_t row = 0; row < nrows; row++) {
      int64_t pos = 0;
      put(*out, row, reduce_row(&r, row, kind, correction, &pos));
      if (ip) ip[row] = pos + 1; /* over all elements, the row is the flat tensor */
    }
  }
  gen_release(r.c);
  if (idx) *idx = ix;
  return 0;
}

/* Records a reduction of a along dim; saves save1 and save2 (either may be NULL, or out). */
static gen_tensor *record_reduce(gen_tensor *out, gen_tensor *a, gen_op op, gen_backward_fn bw, gen_backward_fn graph_bw, int dim,
                                 bool keepdim, gen_tensor *save1, gen_tensor *save2, int64_t correction) {
  reduce_attrs ra = {dim, keepdim, 1.0, correction};
  return gen_record(out, &(gen_record_args){.op = op,
                                            .backward = bw,
                                            .graph_backward = graph_bw,
                                            .inputs = GEN_TENSORS(a),
                                            .saved = GEN_TENSORS(save1, save2),
                                            .attrs = GEN_ATTRS(&ra)});
}

/* The mean of x over dim, kept as a size-1 dim (differentiable). */
static gen_tensor *mean_kept(gen_tensor *x, int dim) {
  if (dim != GEN_DIM_ALL) return gen_mean(x, dim, true);
  int64_t ones[GEN_MAX_DIMS];
  for (int d = 0; d < x->ndim; d++) ones[d] = 1;
  gen_tensor *m = gen_mean(x, GEN_DIM_ALL, false), *r = m ? gen_reshape(m, x->ndim, ones) : NULL;
  gen_release(m);
  return r;
}

/* var: g 2 (x - mean) / (n - correction); std: the same with g / (2 std) */
static int var_std_graph_backward(gen_node *n, gen_tensor *g, gen_tensor **grad_in) {
  gen_tensor *x = gen_node_saved(n, 0);
  if (!x) return -1;
  const reduce_attrs *ra = GEN_NODE_ATTRS(n, reduce_attrs);
  int64_t count = ra->dim == GEN_DIM_ALL ? gen_numel(x) : x->shape[ra->dim];
  gen_tensor *gg = g;
  gen_retain(gg);
  if (n->op == GEN_OP_STD) {
    gen_tensor *sd = gen_node_saved(n, 1), *q = sd ? gen_div(g, sd) : NULL;
    gen_release(gg);
    if (!(gg = q ? gen_scale(q, 0.5) : NULL)) {
      gen_release(q);
      return -1;
    }
    gen_release(q);
  }
  gen_tensor *m = mean_kept(x, ra->dim), *dev = m ? gen_sub(x, m) : NULL;
  gen_tensor *full = dev ? gen_unreduce(gg, ra->dim, x->ndim, x->shape) : NULL;
  gen_tensor *prod = full ? gen_mul(dev, full) : NULL;
  grad_in[0] = prod ? gen_scale(prod, 2.0 / (double)(count - ra->correction)) : NULL;
  gen_release(gg);
  gen_release(m);
  gen_release(dev);
  gen_release(full);
  gen_release(prod);
  return grad_in[0] ? 0 : -1;
}

/* var: d/dx = 2 (x - mean) / (n - correction); std additionally / (2 std). saved: x, [std out] */
static int var_std_backward(gen_node *n, gen_tensor *g, gen_tensor **grad_in) {
  gen_tensor *x = gen_node_saved(n, 0);
  if (!x) return -1;
  const reduce_attrs *ra = GEN_NODE_ATTRS(n, reduce_attrs);
  int dim = ra->dim;
  bool keepdim = ra->keepdim;
  gen_tensor *gg = g;
  gen_retain(gg);
  if (n->op == GEN_OP_STD) { /* g / (2 std) */
    gen_tensor *sd = gen_node_saved(n, 1);
    gen_tensor *two = sd ? gen_scale_raw(sd, 2.0) : NULL;
    gen_tensor *q = two ? gen_binary_raw(GEN_BIN_DIV, g, two) : NULL;
    gen_release(two);
    gen_release(gg);
    if (!(gg = q)) return -1;
  }
  gen_tensor *mean = gen_sum_dim_raw(x, dim, true);
  int64_t count = dim == GEN_DIM_ALL ? gen_numel(x) : x->shape[dim];
  gen_tensor *m = mean ? gen_scale_raw(mean, 1.0 / (double)count) : NULL;
  gen_tensor *dev = m ? gen_binary_raw(GEN_BIN_SUB, x, m) : NULL;
  gen_tensor *full = dev ? gen_unreduce_raw(gg, dim, keepdim, x->ndim, x->shape) : NULL;
  gen_tensor *prod = full ? gen_binary_raw(GEN_BIN_MUL, dev, full) : NULL;
  grad_in[0] = prod ? gen_scale_raw(prod, 2.0 / (double)(count - ra->correction)) : NULL;
  gen_release(gg);
  gen_release(mean);
  gen_release(m);
  gen_release(dev);
  gen_release(full);
  gen_release(prod);
  return grad_in[0] ? 0 : -1;
}

gen_tensor *gen_var(gen_tensor *a, int dim, bool keepdim, int64_t correction) {
  if (!gen_dtype_is_float(a->dtype)) return gen_fail("needs a float tensor, got %s", gen_dtype_name(a->dtype));
  gen_tensor *out = NULL;
  if (reduce_rows(a, dim, keepdim, ROW_VAR, correction, &out, NULL) < 0) return NULL;
  return record_reduce(out, a, GEN_OP_VAR, var_std_backward, var_std_graph_backward, dim, keepdim, a, NULL, correction);
}

gen_tensor *gen_std(gen_tensor *a, int dim, bool keepdim, int64_t correction) {
  gen_tensor *v = NULL;
  if (!gen_dtype_is_float(a->dtype)) return gen_fail("needs a float tensor, got %s", gen_dtype_name(a->dtype));
  if (reduce_rows(a, dim, keepdim, ROW_VAR, correction, &v, NULL) < 0) return NULL;
  int64_t k = gen_numel(v);
  for (int64_t i = 0; i < k; i++) put(v, i, sqrt(at(v, i)));
  return record_reduce(v, a, GEN_OP_STD, var_std_backward, var_std_graph_backward, dim, keepdim, a, v, correction);
}

/* max/min: the gradient goes to the chosen position. saved: positions (1-based, reduced shape) */
static int extreme_backward(gen_node *n, gen_tensor *g, gen_tensor **grad_in) {
  gen_tensor *pos = gen_node_saved(n, 0);
  if (!pos) return -1;
  const gen_edge *e = &n->edges[0];
  int dim = GEN_NODE_ATTRS(n, reduce_attrs)->dim;
  gen_tensor *acc = gen_zeros(g->dtype, e->ndim, e->shape);
  gen_tensor *cg = acc ? gen_contiguous_raw(g) : NULL;
  if (!cg) {
    gen_release(acc);
    return -1;
  }
  int64_t outer, len, inner;
  if (dim == GEN_DIM_ALL) {
    outer = 1;
    len = gen_numel(acc);
    inner = 1;
  } else {
    split_dims(acc, dim, &outer, &len, &inner);
  }
  const int64_t *p = (const int64_t *)gen_data_ptr(pos);
  for (int64_t row = 0; row < outer * inner; row++) {
    int64_t b = (row / inner) * len * inner + row % inner;
    put(acc, b + (p[row] - 1) * inner, at(cg, row));
  }
  gen_release(cg);
  grad_in[0] = acc;
  return 0;
}

/* create_graph: g scattered to the chosen positions by a recorded scatter_add (dim kept, or the
 * flattened input for a reduction over everything) */
static int extreme_graph_backward(gen_node *n, gen_tensor *g, gen_tensor **grad_in) {
  gen_tensor *pos = gen_node_saved(n, 0);
  if (!pos) return -1;
  const gen_edge *e = &n->edges[0];
  int dim = GEN_NODE_ATTRS(n, reduce_attrs)->dim;
  int nd = dim == GEN_DIM_ALL ? 1 : e->ndim, d0 = dim == GEN_DIM_ALL ? 0 : dim;
  int64_t kshape[GEN_MAX_DIMS], full[GEN_MAX_DIMS], kstride[GEN_MAX_DIMS];
  if (dim == GEN_DIM_ALL) {
    kshape[0] = 1;
    full[0] = gen_numel_of(e->ndim, e->shape);
  } else {
    for (int d = 0; d < nd; d++) kshape[d] = d == dim ? 1 : e->shape[d], full[d] = e->shape[d];
  }
  gen_contiguous_strides(nd, kshape, kstride);
  gen_arena ar = {0}, *A = &ar;
  gen_tensor *cp = GEN_KEEP(A, gen_contiguous_raw(pos));
  gen_tensor *pk = cp ? GEN_KEEP(A, gen_as_strided(cp, nd, kshape, kstride, cp->offset)) : NULL;
  gen_tensor *gk = GEN_KEEP(A, gen_reshape(g, nd, kshape));
  gen_tensor *zeros = GEN_KEEP(A, gen_zeros(g->dtype, nd, full));
  gen_tensor *r = GEN_KEEP(A, gen_scatter_add(zeros, d0, pk, gk));
  gen_tensor *out = GEN_KEEP(A, gen_reshape(r, e->ndim, e->shape));
  return (grad_in[0] = gen_arena_take(A, out)) ? 0 : -1;
}

static gen_tensor *extreme(gen_tensor *a, int dim, bool keepdim, gen_tensor **indices, row_kind kind) {
  gen_tensor *out = NULL, *pos = NULL;
  if (reduce_rows(a, dim, keepdim, kind, 0, &out, &pos) < 0) return NULL;
  out = record_reduce(out, a, kind == ROW_MAX ? GEN_OP_MAX : GEN_OP_MIN, extreme_backward, extreme_graph_backward, dim, keepdim,
                      pos, NULL, 0);
  if (out && indices)
    *indices = pos;
  else
    gen_release(pos);
  return out;
}

gen_tensor *gen_max(gen_tensor *a, int dim, bool keepdim, gen_tensor **indices) {
  return extreme(a, dim, keepdim, indices, ROW_MAX);
}
gen_tensor *gen_min(gen_tensor *a, int dim, bool keepdim, gen_tensor **indices) {
  return extreme(a, dim, keepdim, indices, ROW_MIN);
}

static gen_tensor *arg_extreme(gen_tensor *a, int dim, bool keepdim, row_kind kind) {
  gen_tensor *out = NULL, *pos = NULL;
  if (reduce_rows(a, dim, keepdim, kind, 0, &out, &pos) < 0) return NULL;
  gen_release(out);
  return pos;
}
gen_tensor *gen_argmax(gen_tensor *a, int dim, bool keepdim) { return arg_extreme(a, dim, keepdim, ROW_MAX); }
gen_tensor *gen_argmin(gen_tensor *a, int dim, bool keepdim) { return arg_extreme(a, dim, keepdim, ROW_MIN); }

/* logsumexp: d/dx = exp(x - out). saved: x, out alias */
static int logsumexp_backward(gen_node *n, gen_tensor *g, gen_tensor **grad_in) {
  gen_tensor *x = gen_node_saved(n, 0), *y = x ? gen_node_saved(n, 1) : NULL;
  if (!y) return -1;
  const reduce_attrs *ra = GEN_NODE_ATTRS(n, reduce_attrs);
  int dim = ra->dim;
  bool keepdim = ra->keepdim;
  gen_tensor *yf = gen_unreduce_raw(y, dim, keepdim, x->ndim, x->shape);
  gen_tensor *gf = yf ? gen_unreduce_raw(g, dim, keepdim, x->ndim, x->shape) : NULL;
  gen_tensor *d = gf ? gen_binary_raw(GEN_BIN_SUB, x, yf) : NULL;
  if (d) {
    int64_t k = gen_numel(d);
    for (int64_t i = 0; i < k; i++) put(d, i, exp(at(d, i)) * at(gf, i));
  }
  gen_release(yf);
  gen_release(gf);
  grad_in[0] = d;
  return d ? 0 : -1;
}

/* g exp(x - out), out expanded back (saved: x, out) */
static int logsumexp_graph_backward(gen_node *n, gen_tensor *g, gen_tensor **grad_in) {
  gen_tensor *x = gen_node_saved(n, 0), *y = x ? gen_node_saved(n, 1) : NULL;
  if (!y) return -1;
  int dim = GEN_NODE_ATTRS(n, reduce_attrs)->dim;
  gen_tensor *yf = gen_unreduce(y, dim, x->ndim, x->shape), *gf = yf ? gen_unreduce(g, dim, x->ndim, x->shape) : NULL;
  gen_tensor *d = gf ? gen_sub(x, yf) : NULL, *e = d ? gen_unary(GEN_UN_EXP, d, 0, 0) : NULL;
  grad_in[0] = e ? gen_mul(e, gf) : NULL;
  gen_release(yf);
  gen_release(gf);
  gen_release(d);
  gen_release(e);
  return grad_in[0] ? 0 : -1;
}

gen_tensor *gen_logsumexp(gen_tensor *a, int dim, bool keepdim) {
  if (!gen_dtype_is_float(a->dtype)) return gen_fail("needs a float tensor, got %s", gen_dtype_name(a->dtype));
  gen_tensor *out = NULL;
  if (reduce_rows(a, dim, keepdim, ROW_LOGSUMEXP, 0, &out, NULL) < 0) return NULL;
  return record_reduce(out, a, GEN_OP_LOGSUMEXP, logsumexp_backward, logsumexp_graph_backward, dim, keepdim, a, out, 0);
}

/* ---------------------------------------------------------------- softmax, log_softmax
 * One pass for the row max, one for the sum of exponentials, one to write: per row, serially. */

static void softmax_row(const rows *r, gen_tensor *out, int64_t row, bool log_space) {
  int64_t b = row_base(r, row), s = r->inner, n = r->n;
  if (r->c->dtype == GEN_FLOAT32) {
    const float *x = (const float *)gen_data_ptr(r->c) + b;
    float *y = (float *)gen_data_ptr(out) + b;
    float m = -INFINITY;
    for (int64_t k = 0; k < n; k++) m = x[k * s] > m ? x[k * s] : m;
    double sum = 0;
    for (int64_t k = 0; k < n; k++) {
      float e = expf(x[k * s] - m);
      if (!log_space) y[k * s] = e;
      sum += e;
    }
    if (log_space) {
      float logsum = (float)log(sum); /* (x - m) - log sum keeps precision when |x| is large */
      for (int64_t k = 0; k < n; k++) y[k * s] = (x[k * s] - m) - logsum;
    } else {
      float inv = (float)(1.0 / sum);
      for (int64_t k = 0; k < n; k++) y[k * s] *= inv;
    }
    return;
  }
  double m = -INFINITY, sum = 0;
  for (int64_t k = 0; k < n; k++) m = fmax(m, at(r->c, b + k * s));
  for (int64_t k = 0; k < n; k++) sum += exp(at(r->c, b + k * s) - m);
  for (int64_t k = 0; k < n; k++) {
    double v = at(r->c, b + k * s) - m;
    put(out, b + k * s, log_space ? v - log(sum) : exp(v) / sum);
  }
}

/* Row row of softmax_backward. */
static void softmax_backward_row(gen_tensor *out, const rows *r, const gen_tensor *cy, bool log_space, int64_t row) {
  int64_t b = row_base(r, row), s = r->inner;
  double dot = 0;
  for (int64_t k = 0; k < r->n; k++) dot += at(r->c, b + k * s) * (log_space ? 1 : at(cy, b + k * s));
  for (int64_t k = 0; k < r->n; k++) {
    double gy = at(r->c, b + k * s), yy = at(cy, b + k * s);
    put(out, b + k * s, log_space ? gy - exp(yy) * dot : yy * (gy - dot));
  }
}

/* softmax: dx = y (g - sum(g y)); log_softmax: dx = g - exp(y) sum(g). saved: y alias */
static int softmax_backward(gen_node *n, gen_tensor *g, gen_tensor **grad_in) {
  gen_tensor *y = gen_node_saved(n, 0);
  if (!y) return -1;
  rows r;
  if (rows_of(g, GEN_NODE_ATTRS(n, reduce_attrs)->dim, &r) < 0) return -1;
  gen_tensor *cy = gen_contiguous_raw(y);
  gen_tensor *out = cy ? gen_empty(g->dtype, g->ndim, g->shape) : NULL;
  if (out) {
    bool log_space = n->op == GEN_OP_LOG_SOFTMAX;
    int64_t nrows = r.n ? r.outer * r.inner : 0; /* no work for empty rows (2^40 of them once hung) */
    if (nrows * r.n > GEN_PARALLEL_GRAIN) {
#pragma omp parallel for
      for (int64_t row = 0; row < nrows; row++) softmax_backward_row(out, &r, cy, log_space, row);
    } else {
      for (int64_t row = 0; row < nrows; row++) softmax_backward_row(out, &r, cy, log_space, row);
    }
  }
  gen_release(cy);
  gen_release(r.c);
  grad_in[0] = out;
  return out ? 0 : -1;
}

/* softmax: y (g - sum(g y)); log_softmax: g - exp(y) sum(g) (saved: y) */
static int softmax_graph_backward(gen_node *n, gen_tensor *g, gen_tensor **grad_in) {
  gen_tensor *y = gen_node_saved(n, 0);
  if (!y) return -1;
  int dim = GEN_NODE_ATTRS(n, reduce_attrs)->dim;
  gen_tensor *t = NULL, *s = NULL, *u = NULL;
  if (n->op == GEN_OP_SOFTMAX) {
    gen_tensor *gy = gen_mul(g, y);
    s = gy ? gen_sum(gy, dim, true) : NULL;
    u = s ? gen_sub(g, s) : NULL;
    grad_in[0] = u ? gen_mul(y, u) : NULL;
    gen_release(gy);
  } else {
    t = gen_unary(GEN_UN_EXP, y, 0, 0);
    s = t ? gen_sum(g, dim, true) : NULL;
    u = s ? gen_mul(t, s) : NULL;
    grad_in[0] = u ? gen_sub(g, u) : NULL;
  }
  gen_release(t);
  gen_release(s);
  gen_release(u);
  return grad_in[0] ? 0 : -1;
}

static gen_tensor *softmax_impl(gen_tensor *a, int dim, bool log_space) {
  if (!gen_dtype_is_float(a->dtype)) return gen_fail("needs a float tensor, got %s", gen_dtype_name(a->dtype));
  rows r;
  if (rows_of(a, dim, &r) < 0) return NULL;
  gen_tensor *out = gen_empty(a->dtype, a->ndim, a->shape);
  if (out) {
    int64_t nrows = r.n ? r.outer * r.inner : 0; /* no work for empty rows (2^40 of them once hung) */
    if (nrows * r.n > GEN_PARALLEL_GRAIN) {
#pragma omp parallel for
      for (int64_t row = 0; row < nrows; row++) softmax_row(&r, out, row, log_space);
    } else {
      for (int64_t row = 0; row < nrows; row++) softmax_row(&r, out, row, log_space);
    }
  }
  gen_release(r.c);
  return record_reduce(out, a, log_space ? GEN_OP_LOG_SOFTMAX : GEN_OP_SOFTMAX, softmax_backward, softmax_graph_backward, dim,
                       false, out, NULL, 0);
}

gen_tensor *gen_softmax(gen_tensor *a, int dim) { return softmax_impl(a, dim, false); }
gen_tensor *gen_log_softmax(gen_tensor *a, int dim) { return softmax_impl(a, dim, true); }

/* ---------------------------------------------------------------- cumulative sum
 *   forward:  y_k = sum_{j <= k} x_j along dim (a running double sum, in order)
 *   backward: dx_k = sum_{j >= k} dy_j (the same scan, run from the end) */

/* Row row of the scan of r into out, forward (from the first element) or reversed. int64 sums
 * in integers (exact), floats in a double accumulator. */
static void cumsum_row(const rows *r, gen_tensor *out, int64_t row, bool reverse) {
  int64_t b = row_base(r, row), s = r->inner, n = r->n;
  if (r->c->dtype == GEN_INT64) {
    const int64_t *x = (const int64_t *)gen_data_ptr(r->c) + b;
    int64_t *y = (int64_t *)gen_data_ptr(out) + b, acc = 0;
    for (int64_t k = 0; k < n; k++) {
      int64_t i = (reverse ? n - 1 - k : k) * s;
      acc += x[i];
      y[i] = acc;
    }
    return;
  }
  double acc = 0;
  for (int64_t k = 0; k < n; k++) {
    int64_t i = b + (reverse ? n - 1 - k : k) * s;
    acc += at(r->c, i);
    put(out, i, acc);
  }
}

static gen_tensor *cumsum_raw(gen_tensor *a, int dim, bool reverse) {
  rows r;
  if (rows_of(a, dim, &r) < 0) return NULL;
  gen_tensor *out = gen_empty(a->dtype, a->ndim, a->shape);
  if (out) {
    int64_t nrows = r.n ? r.outer * r.inner : 0;
    if (nrows > 1 && nrows * r.n > GEN_PARALLEL_GRAIN) {
#pragma omp parallel for
      for (int64_t row = 0; row < nrows; row++) cumsum_row(&r, out, row, reverse);
    } else {
      for (int64_t row = 0; row < nrows; row++) cumsum_row(&r, out, row, reverse);
    }
  }
  gen_release(r.c);
  return out;
}

static int cumsum_backward(gen_node *n, gen_tensor *g, gen_tensor **grad_in) {
  grad_in[0] = cumsum_raw(g, GEN_NODE_ATTRS(n, reduce_attrs)->dim, true);
  return grad_in[0] ? 0 : -1;
}

/* the reversed scan as ops: dx_k = sum_j dy_j - sum_{j < k} dy_j = sum(dy) - cumsum(dy)_k + dy_k */
static int cumsum_graph_backward(gen_node *n, gen_tensor *g, gen_tensor **grad_in) {
  int dim = GEN_NODE_ATTRS(n, reduce_attrs)->dim;
  gen_arena ar = {0}, *A = &ar;
  gen_tensor *total = GEN_KEEP(A, gen_sum(g, dim, true)), *c = GEN_KEEP(A, gen_cumsum(g, dim));
  gen_tensor *r = GEN_KEEP(A, gen_add(GEN_KEEP(A, gen_sub(total, c)), g));
  return (grad_in[0] = gen_arena_take(A, r)) ? 0 : -1;
}

gen_tensor *gen_cumsum(gen_tensor *a, int dim) {
  if (!gen_dtype_is_float(a->dtype) && a->dtype != GEN_INT64)
    return gen_fail("needs a float or int64 tensor, got %s", gen_dtype_name(a->dtype));
  gen_tensor *out = cumsum_raw(a, dim, false);
  if (!out || !gen_dtype_is_float(a->dtype)) return out;
  return record_reduce(out, a, GEN_OP_CUMSUM, cumsum_backward, cumsum_graph_backward, dim, false, NULL, NULL, 0);
}
