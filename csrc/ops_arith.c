/*
 * ops_arith.c — add, sub, mul, div, pow, neg with broadcasting; forward and backward side by side.
 * Also the raw broadcasting binary ops on tensors (comparisons, maximum/minimum included) that
 * they and every backward build on: strided iteration and threads here, the row loops in
 * kernels/elementwise.c.
 *
 * Broadcasting in backward: the gradient of an input that was broadcast is summed over the
 * broadcast dimensions (gen_sum_to_shape), so it has the input's own shape.
 */
#include "ops_arith.h"

#include <math.h>

#include "autograd.h"
#include "iter.h"
#include "ops_reduce.h"
#include "ops_unary.h"

/* ---- raw tensor-level kernels (no autograd): broadcasting, dtype promotion, threads ---- */

gen_dtype gen_binop_result_dtype(gen_binop op, gen_dtype a, gen_dtype b) {
  if (op >= GEN_BIN_EQ) return GEN_UINT8;
  gen_dtype r = gen_promote(a, b);
  if ((op == GEN_BIN_DIV || op == GEN_BIN_POW) && !gen_dtype_is_float(r)) return GEN_FLOAT32;
  return r;
}

typedef struct {
  gen_binop op;
  gen_iter it;
  char *po;
  const char *pa, *pb;
  gen_dtype dto, dta, dtb;
} binary_job;

static void binary_row(const binary_job *j, int64_t r) {
  const gen_iter *it = &j->it;
  int64_t off[3];
  gen_iter_row(it, r, off);
  int64_t so = gen_iter_inner_stride(it, 0), sa = gen_iter_inner_stride(it, 1), sb = gen_iter_inner_stride(it, 2);
  if (j->dto == GEN_FLOAT32 && j->dta == GEN_FLOAT32 && j->dtb == GEN_FLOAT32) {
    gen_binary_row_f32((float *)j->po + off[0], (const float *)j->pa + off[1], (const float *)j->pb + off[2], j->op, it->inner,
                       so, sa, sb);
    return;
  }
  size_t eo = gen_dtype_size(j->dto), ea = gen_dtype_size(j->dta), eb = gen_dtype_size(j->dtb);
  for (int64_t i = 0; i < it->inner; i++) {
    double x = gen_read_f64(j->pa + (size_t)(off[1] + i * sa) * ea, j->dta);
    double y = gen_read_f64(j->pb + (size_t)(off[2] + i * sb) * eb, j->dtb);
    gen_write_f64(j->po + (size_t)(off[0] + i * so) * eo, j->dto, gen_binop_f64(j->op, x, y));
  }
}

int gen_binary_into(gen_binop op, gen_tensor *out, gen_tensor *a, gen_tensor *b) {
  int64_t stride_a[GEN_MAX_DIMS], stride_b[GEN_MAX_DIMS];
  if (gen_broadcast_strides(a, out->ndim, out->shape, stride_a) < 0 ||
      gen_broadcast_strides(b, out->ndim, out->shape, stride_b) < 0)
    return -1;
  binary_job j = {.op = op,
                  .po = gen_data_ptr(out),
                  .pa = gen_data_ptr(a),
                  .pb = gen_data_ptr(b),
                  .dto = out->dtype,
                  .dta = a->dtype,
                  .dtb = b->dtype};
  const int64_t *strides[3] = {out->stride, stride_a, stride_b};
  gen_iter_init(&j.it, out->ndim, out->shape, 3, strides);
  if (j.it.rows * j.it.inner > GEN_PARALLEL_GRAIN) {
#pragma omp parallel for
    for (int64_t r = 0; r < j.it.rows; r++) binary_row(&j, r);
  } else {
    for (int64_t r = 0; r < j.it.rows; r++) binary_row(&j, r);
  }
  gen_bump_version(out);
  return 0;
}

gen_tensor *gen_binary_raw(gen_binop op, gen_tensor *a, gen_tensor *b) {
  int64_t shape[GEN_MAX_DIMS];
  int nd = gen_broadcast_shapes(a->ndim, a->shape, b->ndim, b->shape, shape);
  if (nd < 0) return NULL;
  gen_tensor *out = gen_empty(gen_binop_result_dtype(op, a->dtype, b->dtype), nd, shape);
  if (out && gen_binary_into(op, out, a, b) < 0) {
    gen_release(out);
    return NULL;
  }
  return out;
}

int gen_add_into(gen_tensor *dst, gen_tensor *src) { return gen_binary_into(GEN_BIN_ADD, dst, dst, src); }

gen_tensor *gen_axpby_raw(gen_tensor *a, double alpha, gen_tensor *b, double beta) {
  if (!gen_same_shape(a, b)) return gen_fail("internal: axpby of different shapes");
  gen_tensor *ca = gen_contiguous_raw(a), *cb = ca ? gen_contiguous_raw(b) : NULL;
  gen_tensor *out = cb ? gen_empty(gen_promote(a->dtype, b->dtype), a->ndim, a->shape) : NULL;
  if (out) {
    int64_t n = gen_numel(out);
    if (out->dtype == GEN_FLOAT32 && ca->dtype == GEN_FLOAT32 && cb->dtype == GEN_FLOAT32) {
      gen_axpby_f32((float *)gen_data_ptr(out), (const float *)gen_data_ptr(ca), (const float *)gen_data_ptr(cb), (float)alpha,
                    (float)beta, n);
    } else {
      for (int64_t i = 0; i < n; i++) {
        double x = gen_read_f64(gen_data_ptr(ca) + (size_t)i * gen_dtype_size(ca->dtype), ca->dtype);
        double y = gen_read_f64(gen_data_ptr(cb) + (size_t)i * gen_dtype_size(cb->dtype), cb->dtype);
        gen_write_f64(gen_data_ptr(out) + (size_t)i * gen_dtype_size(out->dtype), out->dtype, x * alpha + y * beta);
      }
    }
  }
  gen_release(ca);
  gen_release(cb);
  return out;
}

gen_tensor *gen_scale_raw(gen_tensor *a, double s) {
  gen_tensor *k = gen_scalar(a->dtype, s);
  gen_tensor *out = k ? gen_binary_raw(GEN_BIN_MUL, a, k) : NULL;
  gen_release(k);
  return out;
}

/* ---- the differentiable ops ---- */

static gen_op binop_to_op(gen_binop op) {
  switch (op) {
  case GEN_BIN_ADD: return GEN_OP_ADD;
  case GEN_BIN_SUB: return GEN_OP_SUB;
  case GEN_BIN_MUL: return GEN_OP_MUL;
  case GEN_BIN_DIV: return GEN_OP_DIV;
  case GEN_BIN_POW: return GEN_OP_POW;
  default: return GEN_OP_COUNT;
  }
}

/* grad_in[i] = sum_to_shape(g * scale) for the input's shape; g itself when nothing changes. */
static int reduce_to_input(gen_node *n, int i, gen_tensor *g, gen_tensor **grad_in) {
  if (!gen_edge_live(&n->edges[i])) return 0;
  grad_in[i] = gen_sum_to_shape(g, n->edges[i].ndim, n->edges[i].shape);
  return grad_in[i] ? 0 : -1;
}

/* d(a+b) = g, g;  d(a-b) = g, -g */
static int add_sub_backward(gen_node *n, gen_tensor *g, gen_tensor **grad_in) {
  if (reduce_to_input(n, 0, g, grad_in) < 0) return -1;
  if (!gen_edge_live(&n->edges[1])) return 0;
  if (n->op == GEN_OP_ADD) return reduce_to_input(n, 1, g, grad_in);
  gen_tensor *neg = gen_scale_raw(g, -1.0);
  int rc = neg ? reduce_to_input(n, 1, neg, grad_in) : -1;
  gen_release(neg);
  return rc;
}

/* Computes grad_in[i] = sum_to_shape(g op x) */
static int chain(gen_node *n, int i, gen_tensor *g, gen_binop op, gen_tensor *x, gen_tensor **grad_in) {
  if (!gen_edge_live(&n->edges[i])) return 0;
  gen_tensor *t = gen_binary_raw(op, g, x);
  int rc = t ? reduce_to_input(n, i, t, grad_in) : -1;
  gen_release(t);
  return rc;
}

/* d(ab) = g b, g a */
static int mul_backward(gen_node *n, gen_tensor *g, gen_tensor **grad_in) {
  gen_tensor *a = gen_node_saved(n, 0), *b = a ? gen_node_saved(n, 1) : NULL;
  if (!b) return -1;
  if (chain(n, 0, g, GEN_BIN_MUL, b, grad_in) < 0) return -1;
  return chain(n, 1, g, GEN_BIN_MUL, a, grad_in);
}

/* d(a/b) = g / b, -g a / b^2 */
static int div_backward(gen_node *n, gen_tensor *g, gen_tensor **grad_in) {
  gen_tensor *a = gen_node_saved(n, 0), *b = a ? gen_node_saved(n, 1) : NULL;
  if (!b) return -1;
  gen_tensor *g_over_b = gen_binary_raw(GEN_BIN_DIV, g, b);
  if (!g_over_b) return -1;
  int rc = reduce_to_input(n, 0, g_over_b, grad_in);
  if (rc == 0 && gen_edge_live(&n->edges[1])) {
    gen_tensor *t = gen_binary_raw(GEN_BIN_MUL, g_over_b, a);     /* g a / b */
    gen_tensor *u = t ? gen_binary_raw(GEN_BIN_DIV, t, b) : NULL; /* g a / b^2 */
    gen_tensor *v = u ? gen_scale_raw(u, -1.0) : NULL;
    rc = v ? reduce_to_input(n, 1, v, grad_in) : -1;
    gen_release(t);
    gen_release(u);
    gen_release(v);
  }
  gen_release(g_over_b);
  return rc;
}

/* d(a^b) = g b a^(b-1), g a^b log a */
static int pow_backward(gen_node *n, gen_tensor *g, gen_tensor **grad_in) {
  gen_tensor *a = gen_node_saved(n, 0), *b = a ? gen_node_saved(n, 1) : NULL;
  if (!b) return -1;
  int rc = 0;
  if (gen_edge_live(&n->edges[0])) {
    gen_tensor *one = gen_scalar(b->dtype, 1.0);
    gen_tensor *bm1 = one ? gen_binary_raw(GEN_BIN_SUB, b, one) : NULL;
    gen_tensor *p = bm1 ? gen_binary_raw(GEN_BIN_POW, a, bm1) : NULL;
    gen_tensor *q = p ? gen_binary_raw(GEN_BIN_MUL, p, b) : NULL;
    rc = q ? chain(n, 0, g, GEN_BIN_MUL, q, grad_in) : -1;
    gen_release(one);
    gen_release(bm1);
    gen_release(p);
    gen_release(q);
  }
  if (rc == 0 && gen_edge_live(&n->edges[1])) {
    gen_tensor *p = gen_binary_raw(GEN_BIN_POW, a, b);
    gen_tensor *la = p ? gen_to_dtype_raw(a, p->dtype) : NULL;
    int64_t k = la ? gen_numel(la) : 0;
    for (int64_t i = 0; i < k; i++) { /* log a, with 0 where a^b is 0 (the limit as a -> 0+) */
      char *ptr = gen_data_ptr(la) + (size_t)i * gen_dtype_size(la->dtype);
      double v = gen_read_f64(ptr, la->dtype);
      gen_write_f64(ptr, la->dtype, v == 0 ? 0 : log(v));
    }
    gen_tensor *q = la ? gen_binary_raw(GEN_BIN_MUL, p, la) : NULL;
    rc = q ? chain(n, 1, g, GEN_BIN_MUL, q, grad_in) : -1;
    gen_release(p);
    gen_release(la);
    gen_release(q);
  }
  return rc;
}

/* ---- the same backwards with differentiable ops, for create_graph (autograd.h) ---- */

gen_tensor *gen_scale(gen_tensor *a, double s) {
  gen_tensor *k = gen_scalar(a->dtype, s);
  gen_tensor *out = k ? gen_mul(a, k) : NULL;
  gen_release(k);
  return out;
}

gen_tensor *gen_add_scalar(gen_tensor *a, double s) {
  gen_tensor *k = gen_scalar(a->dtype, s);
  gen_tensor *out = k ? gen_add(a, k) : NULL;
  gen_release(k);
  return out;
}

/* grad_in[i] = sum_to(t) for input i (t consumed; NULL t is an error already set) */
static int to_input(gen_node *n, int i, gen_tensor *t, gen_tensor **grad_in) {
  if (!t) return -1;
  grad_in[i] = gen_sum_to(t, n->edges[i].ndim, n->edges[i].shape);
  gen_release(t);
  return grad_in[i] ? 0 : -1;
}

static int add_sub_graph_backward(gen_node *n, gen_tensor *g, gen_tensor **grad_in) {
  if (gen_edge_live(&n->edges[0])) {
    gen_retain(g);
    if (to_input(n, 0, g, grad_in) < 0) return -1;
  }
  if (!gen_edge_live(&n->edges[1])) return 0;
  if (n->op == GEN_OP_ADD) gen_retain(g);
  return to_input(n, 1, n->op == GEN_OP_ADD ? g : gen_neg(g), grad_in);
}

static int mul_graph_backward(gen_node *n, gen_tensor *g, gen_tensor **grad_in) {
  gen_tensor *a = gen_node_saved(n, 0), *b = a ? gen_node_saved(n, 1) : NULL;
  if (!b) return -1;
  if (gen_edge_live(&n->edges[0]) && to_input(n, 0, gen_mul(g, b), grad_in) < 0) return -1;
  if (gen_edge_live(&n->edges[1]) && to_input(n, 1, gen_mul(g, a), grad_in) < 0) return -1;
  return 0;
}

static int div_graph_backward(gen_node *n, gen_tensor *g, gen_tensor **grad_in) {
  gen_tensor *a = gen_node_saved(n, 0), *b = a ? gen_node_saved(n, 1) : NULL;
  if (!b) return -1;
  gen_tensor *g_over_b = gen_div(g, b);
  if (!g_over_b) return -1;
  int rc = 0;
  if (gen_edge_live(&n->edges[0])) {
    gen_retain(g_over_b);
    rc = to_input(n, 0, g_over_b, grad_in);
  }
  if (rc == 0 && gen_edge_live(&n->edges[1])) { /* -(g / b) (a / b) */
    gen_tensor *q = gen_div(a, b), *t = q ? gen_mul(g_over_b, q) : NULL;
    rc = to_input(n, 1, t ? gen_neg(t) : NULL, grad_in);
    gen_release(q);
    gen_release(t);
  }
  gen_release(g_over_b);
  return rc;
}

static int pow_graph_backward(gen_node *n, gen_tensor *g, gen_tensor **grad_in) {
  gen_tensor *a = gen_node_saved(n, 0), *b = a ? gen_node_saved(n, 1) : NULL;
  if (!b) return -1;
  int rc = 0;
  if (gen_edge_live(&n->edges[0])) { /* g b a^(b-1) */
    gen_tensor *bm1 = gen_add_scalar(b, -1.0), *p = bm1 ? gen_pow(a, bm1) : NULL, *q = p ? gen_mul(p, b) : NULL;
    rc = to_input(n, 0, q ? gen_mul(g, q) : NULL, grad_in);
    gen_release(bm1);
    gen_release(p);
    gen_release(q);
  }
  if (rc == 0 && gen_edge_live(&n->edges[1])) { /* g a^b log a, with log taken of 1 where a is 0 */
    gen_tensor *zero = gen_scalar(a->dtype, 0.0), *one = zero ? gen_scalar(a->dtype, 1.0) : NULL;
    gen_tensor *is0 = one ? gen_binary_raw(GEN_BIN_EQ, a, zero) : NULL;
    gen_tensor *safe = is0 ? gen_where(is0, one, a) : NULL, *la = safe ? gen_unary(GEN_UN_LOG, safe, 0, 0) : NULL;
    gen_tensor *p = la ? gen_pow(a, b) : NULL, *q = p ? gen_mul(p, la) : NULL;
    rc = to_input(n, 1, q ? gen_mul(g, q) : NULL, grad_in);
    gen_release(zero);
    gen_release(one);
    gen_release(is0);
    gen_release(safe);
    gen_release(la);
    gen_release(p);
    gen_release(q);
  }
  return rc;
}

static gen_backward_fn graph_backward_of(gen_op op) {
  switch (op) {
  case GEN_OP_ADD:
  case GEN_OP_SUB: return add_sub_graph_backward;
  case GEN_OP_MUL: return mul_graph_backward;
  case GEN_OP_DIV: return div_graph_backward;
  default: return pow_graph_backward;
  }
}

static gen_backward_fn backward_of(gen_op op) {
  switch (op) {
  case GEN_OP_ADD:
  case GEN_OP_SUB: return add_sub_backward;
  case GEN_OP_MUL: return mul_backward;
  case GEN_OP_DIV: return div_backward;
  default: return pow_backward;
  }
}

gen_tensor *gen_binary(gen_binop bop, gen_tensor *a, gen_tensor *b) {
  gen_tensor *out = gen_binary_raw(bop, a, b);
  gen_op op = binop_to_op(bop);
  if (!out || op == GEN_OP_COUNT) return out;
  bool grad = gen_needs_grad(2, (gen_tensor *[]){a, b});
  if (!grad && !gen_anomaly_enabled()) return out; /* anomaly mode: gen_record checks the result */
  if (grad && !gen_dtype_is_float(out->dtype)) {
    gen_release(out);
    return gen_fail("integer results cannot take part in autograd");
  }
  bool saves = op != GEN_OP_ADD && op != GEN_OP_SUB;
  return gen_record(out, &(gen_record_args){.op = op,
                                            .backward = backward_of(op),
                                            .graph_backward = graph_backward_of(op),
                                            .inputs = GEN_TENSORS(a, b),
                                            .saved = saves ? GEN_TENSORS(a, b) : (gen_tensor_list){0}});
}

gen_tensor *gen_add(gen_tensor *a, gen_tensor *b) { return gen_binary(GEN_BIN_ADD, a, b); }
gen_tensor *gen_sub(gen_tensor *a, gen_tensor *b) { return gen_binary(GEN_BIN_SUB, a, b); }
gen_tensor *gen_mul(gen_tensor *a, gen_tensor *b) { return gen_binary(GEN_BIN_MUL, a, b); }
gen_tensor *gen_div(gen_tensor *a, gen_tensor *b) { return gen_binary(GEN_BIN_DIV, a, b); }
gen_tensor *gen_pow(gen_tensor *a, gen_tensor *b) { return gen_binary(GEN_BIN_POW, a, b); }

static int neg_backward(gen_node *n, gen_tensor *g, gen_tensor **grad_in) {
  (void)n;
  grad_in[0] = gen_scale_raw(g, -1.0);
  return grad_in[0] ? 0 : -1;
}

static int neg_graph_backward(gen_node *n, gen_tensor *g, gen_tensor **grad_in) {
  (void)n;
  grad_in[0] = gen_neg(g);
  return grad_in[0] ? 0 : -1;
}

gen_tensor *gen_neg(gen_tensor *a) {
  gen_tensor *out = gen_scale_raw(a, -1.0);
  return gen_record(
      out, &(gen_record_args){
               .op = GEN_OP_NEG, .backward = neg_backward, .graph_backward = neg_graph_backward, .inputs = GEN_TENSORS(a)});
}

int gen_binary_(gen_binop op, gen_tensor *a, gen_tensor *b) {
  if (gen_check_inplace(a) < 0) return -1;
  int64_t shape[GEN_MAX_DIMS];
  int nd = gen_broadcast_shapes(a->ndim, a->shape, b->ndim, b->shape, shape);
  if (nd < 0) return -1;
  bool same = nd == a->ndim;
  for (int d = 0; same && d < nd; d++) same = shape[d] == a->shape[d];
  if (!same) {
    char sa[GEN_SHAPE_STR_MAX], sb[GEN_SHAPE_STR_MAX];
    return gen_fail_int("in place, the result must keep shape %s, but it broadcasts with %s",
                        gen_shape_str(sa, sizeof sa, a->ndim, a->shape), gen_shape_str(sb, sizeof sb, b->ndim, b->shape));
  }
  gen_dtype rd = gen_binop_result_dtype(op, a->dtype, b->dtype);
  if (rd != a->dtype && !(gen_dtype_is_float(a->dtype) && op < GEN_BIN_EQ))
    return gen_fail_int("in place, a %s result cannot be stored in a %s tensor", gen_dtype_name(rd), gen_dtype_name(a->dtype));
  return gen_binary_into(op, a, a, b);
}
