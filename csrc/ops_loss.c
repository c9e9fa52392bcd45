/*
 * ops_loss.c — losses. Pointwise losses compute each element's loss in one pass and save their
 * (contiguous) inputs; backward recomputes the partial derivatives from them, only for the inputs
 * that need a gradient, scaled by the upstream gradient. Class losses work on rows of logits and
 * save d loss / d input, computed with the forward. Definitions follow PyTorch:
 *   mse (x-y)^2;  l1 |x-y|;  bce_with_logits max(x,0) - x y + log1p(exp(-|x|));
 *   binary_cross_entropy -(y log p + (1-y) log(1-p)) with logs clamped at -100;
 *   cross_entropy -log_softmax(x)[t];  nll_loss -x[t];  kl_normal -1/2 (1 + lv - mu^2 - exp(lv)).
 */
#include "ops_loss.h"

#include <math.h>
#include <string.h>

#include "autograd.h"
#include "kernels/cross_entropy.h"
#include "kernels/fastmath.h"
#include "ops_arith.h"
#include "ops_reduce.h"
#include "ops_unary.h"

typedef enum { PW_MSE, PW_L1, PW_BCE_LOGITS, PW_BCE, PW_KL, PW_COUNT } pointwise;

static const gen_op pointwise_ops[] = {GEN_OP_MSE_LOSS, GEN_OP_L1_LOSS, GEN_OP_BCE_WITH_LOGITS, GEN_OP_BINARY_CROSS_ENTROPY,
                                       GEN_OP_KL_NORMAL};
_Static_assert(GEN_COUNT_OF(pointwise_ops) == PW_COUNT, "every pointwise loss needs its op");

static double clamp_log(double v) { return v > 0 ? fmax(log(v), -100.0) : -100.0; }

/* the loss of one element (a, b) */
static double pointwise_value(pointwise k, double a, double b) {
  switch (k) {
  case PW_MSE: return (a - b) * (a - b);
  case PW_L1: return fabs(a - b);
  case PW_BCE_LOGITS: return fmax(a, 0) - a * b + log1p(exp(-fabs(a)));
  case PW_BCE: return -(b * clamp_log(a) + (1 - b) * clamp_log(1 - a));
  default: return -0.5 * (1 + b - a * a - exp(b)); /* a = mu, b = logvar */
  }
}

/* d loss / d a (wrt_b false) or d loss / d b */
static double pointwise_grad(pointwise k, bool wrt_b, double a, double b) {
  switch (k) {
  case PW_MSE: return wrt_b ? -2 * (a - b) : 2 * (a - b);
  case PW_L1: return (a > b ? 1 : a < b ? -1 : 0) * (wrt_b ? -1 : 1);
  case PW_BCE_LOGITS: return wrt_b ? -a : 1 / (1 + exp(-a)) - b;
  case PW_BCE: /* PyTorch's gradient: (p - y) / max(p (1 - p), eps) */
    return wrt_b ? clamp_log(1 - a) - clamp_log(a) : (a - b) / fmax(a * (1 - a), 1e-12);
  default: return wrt_b ? 0.5 * (exp(b) - 1) : a;
  }
}

/* float32 fast paths of the two losses generative training runs every step (bce_with_logits in
 * GANs and VAEs, mse in diffusion): the same formulas through the vectorized exp and log of
 * fastmath.h, about 1e-7 relative from the double versions. */
static bool fast_kind(pointwise k) { return k == PW_MSE || k == PW_BCE_LOGITS; }
static inline float fast_value(pointwise k, float a, float b) {
  if (k == PW_MSE) return (a - b) * (a - b);
  return (a > 0 ? a : 0.0f) - a * b + gen_log1p_unit_approx(gen_exp_approx(-fabsf(a)));
}

/* Elements are summed in blocks of LOSS_BLOCK, each in double, and the blocks in order: the same
 * total for any thread count. Within a block, runs of 64 values are computed into a buffer (one
 * vectorized loop per loss) and added into eight double partial sums. */
#define LOSS_BLOCK 4096
__attribute__((always_inline)) static inline double fast_block_of(pointwise k, const float *a, const float *b, float *el,
                                                                  int64_t lo, int64_t hi) {
  double part[8] = {0};
  float v[64];
  for (int64_t i = lo; i < hi; i += 64) {
    int n = hi - i < 64 ? (int)(hi - i) : 64;
    if (n == 64)
      for (int j = 0; j < 64; j++) v[j] = fast_value(k, a[i + j], b[i + j]);
    else
      for (int j = 0; j < 64; j++) v[j] = j < n ? fast_value(k, a[i + j], b[i + j]) : 0.0f;
    if (el) memcpy(el + i, v, sizeof(float) * (size_t)n);
    for (int r = 0; r < 8; r++)
      for (int l = 0; l < 8; l++) part[l] += v[r * 8 + l];
  }
  return ((part[0] + part[1]) + (part[2] + part[3])) + ((part[4] + part[5]) + (part[6] + part[7]));
}
GEN_SIMD_CLONES static double mse_block(const float *a, const float *b, float *el, int64_t lo, int64_t hi) {
  return fast_block_of(PW_MSE, a, b, el, lo, hi);
}
GEN_SIMD_CLONES static double bce_logits_block(const float *a, const float *b, float *el, int64_t lo, int64_t hi) {
  return fast_block_of(PW_BCE_LOGITS, a, b, el, lo, hi);
}
static double fast_block(pointwise k, const float *a, const float *b, float *el, int64_t lo, int64_t hi) {
  return k == PW_MSE ? mse_block(a, b, el, lo, hi) : bce_logits_block(a, b, el, lo, hi);
}
static double generic_block(pointwise k, const char *a, gen_dtype ta, const char *b, gen_dtype tb, char *el, gen_dtype dt,
                            int64_t lo, int64_t hi) {
  double sum = 0;
  for (int64_t i = lo; i < hi; i++) {
    double v = pointwise_value(k, gen_float_at(a, ta, i), gen_float_at(b, tb, i));
    if (el) gen_float_put(el, dt, i, v);
    sum += v;
  }
  return sum;
}

/* Block bi of pointwise_forward. */
static void pointwise_forward_block(double *block_sums, pointwise k, bool fast, char *pe, gen_dtype dt, const char *pa,
                                    gen_dtype adt, const char *pb, gen_dtype bdt, int64_t count, int64_t bi) {
  int64_t lo = bi * LOSS_BLOCK, hi = lo + LOSS_BLOCK < count ? lo + LOSS_BLOCK : count;
  block_sums[bi] = fast ? fast_block(k, (const float *)pa, (const float *)pb, (float *)pe, lo, hi)
                        : generic_block(k, pa, adt, pb, bdt, pe, dt, lo, hi);
}

/* el[i] = loss of element i (when el is not NULL); returns the sum of all of them */
static double pointwise_forward(pointwise k, const gen_tensor *a, const gen_tensor *b, gen_tensor *el, double *block_sums) {
  int64_t count = gen_numel(a), nblocks = (count + LOSS_BLOCK - 1) / LOSS_BLOCK;
  const char *pa = gen_data_ptr(a), *pb = gen_data_ptr(b);
  char *pe = el ? gen_data_ptr(el) : NULL;
  bool fast = fast_kind(k) && a->dtype == GEN_FLOAT32 && b->dtype == GEN_FLOAT32;
  gen_dtype dt = gen_promote(a->dtype, b->dtype);
  if (count > GEN_PARALLEL_GRAIN / 8) {
#pragma omp parallel for
    for (int64_t bi = 0; bi < nblocks; bi++)
      pointwise_forward_block(block_sums, k, fast, pe, dt, pa, a->dtype, pb, b->dtype, count, bi);
  } else {
    for (int64_t bi = 0; bi < nblocks; bi++)
      pointwise_forward_block(block_sums, k, fast, pe, dt, pa, a->dtype, pb, b->dtype, count, bi);
  }
  double total = 0;
  for (int64_t bi = 0; bi < nblocks; bi++) total += block_sums[bi];
  return total;
}

/* out = (g or scale) * d loss / d input over [lo, hi), one loop per case so that each vectorizes */
GEN_SIMD_CLONES static void fast_grad_range(pointwise k, bool wrt_b, const float *a, const float *b, const float *g, float scale,
                                            float *out, int64_t lo, int64_t hi) {
  if (k == PW_BCE_LOGITS && !wrt_b) {
    if (g)
      for (int64_t i = lo; i < hi; i++) out[i] = g[i] * (gen_sigmoid_approx(a[i]) - b[i]);
    else
      for (int64_t i = lo; i < hi; i++) out[i] = scale * (gen_sigmoid_approx(a[i]) - b[i]);
  } else if (k == PW_BCE_LOGITS) {
    for (int64_t i = lo; i < hi; i++) out[i] = (g ? g[i] : scale) * -a[i];
  } else {
    float sign = wrt_b ? -2.0f : 2.0f;
    if (g)
      for (int64_t i = lo; i < hi; i++) out[i] = g[i] * sign * (a[i] - b[i]);
    else
      for (int64_t i = lo; i < hi; i++) out[i] = scale * sign * (a[i] - b[i]);
  }
}

/* Block bi of pointwise_backward: (g or scalar) * d loss / d a (or b when wrt_b). */
static void pointwise_grad_block(pointwise k, bool wrt_b, bool fast_g, char *po, gen_dtype dt, const char *pa, gen_dtype adt,
                                 const char *pb, gen_dtype bdt, const char *pg, gen_dtype gdt, double scalar, int64_t count,
                                 int64_t bi) {
  int64_t lo = bi * LOSS_BLOCK, hi = lo + LOSS_BLOCK < count ? lo + LOSS_BLOCK : count;
  if (fast_g) {
    fast_grad_range(k, wrt_b, (const float *)pa, (const float *)pb, (const float *)pg, (float)scalar, (float *)po, lo, hi);
  } else {
    for (int64_t e = lo; e < hi; e++)
      gen_float_put(po, dt, e,
                    (pg ? gen_float_at(pg, gdt, e) : scalar) *
                        pointwise_grad(k, wrt_b, gen_float_at(pa, adt, e), gen_float_at(pb, bdt, e)));
  }
}

typedef struct {
  gen_reduction reduction;
  pointwise kind;
  double divisor; /* of the sum, for reduction "mean" */
} pointwise_attrs;

/* saved: a, b (contiguous). The derivatives are recomputed from the inputs, for the inputs that
 * need them. */
static int pointwise_backward(gen_node *n, gen_tensor *g, gen_tensor **grad_in) {
  const pointwise_attrs *at = GEN_NODE_ATTRS(n, pointwise_attrs);
  pointwise k = at->kind;
  gen_reduction r = at->reduction;
  gen_tensor *a = gen_node_saved(n, 0), *b = a ? gen_node_saved(n, 1) : NULL;
  if (!b) return -1;
  gen_dtype dt = gen_promote(a->dtype, b->dtype);
  bool fast = fast_kind(k) && dt == GEN_FLOAT32;
  for (int i = 0; i < 2; i++) {
    if (!gen_edge_live(&n->edges[i])) continue;
    gen_tensor *out = gen_empty(dt, a->ndim, a->shape), *cg = out ? gen_contiguous_raw(g) : NULL;
    if (!cg) {
      gen_release(out);
      return -1;
    }
    int64_t count = gen_numel(a), nblocks = (count + LOSS_BLOCK - 1) / LOSS_BLOCK;
    double scalar =
        r == GEN_REDUCE_NONE ? 0 : gen_read_f64(gen_data_ptr(cg), cg->dtype) / (r == GEN_REDUCE_MEAN ? at->divisor : 1);
    const char *pa = gen_data_ptr(a), *pb = gen_data_ptr(b), *pg = r == GEN_REDUCE_NONE ? gen_data_ptr(cg) : NULL;
    char *po = gen_data_ptr(out);
    bool wrt_b = i == 1, fast_g = fast && (!pg || cg->dtype == GEN_FLOAT32);
    if (count > GEN_PARALLEL_GRAIN / 8) {
#pragma omp parallel for
      for (int64_t bi = 0; bi < nblocks; bi++)
        pointwise_grad_block(k, wrt_b, fast_g, po, dt, pa, a->dtype, pb, b->dtype, pg, cg->dtype, scalar, count, bi);
    } else {
      for (int64_t bi = 0; bi < nblocks; bi++)
        pointwise_grad_block(k, wrt_b, fast_g, po, dt, pa, a->dtype, pb, b->dtype, pg, cg->dtype, scalar, count, bi);
    }
    gen_release(cg);
    grad_in[i] = out;
  }
  return 0;
}

/* create_graph: the partial derivatives in differentiable ops, times g (a 0-d g broadcasts; "mean"
 * divides it). binary_cross_entropy, with its clamped logs, has none. */
static int pointwise_graph_backward(gen_node *n, gen_tensor *g, gen_tensor **grad_in) {
  const pointwise_attrs *at = GEN_NODE_ATTRS(n, pointwise_attrs);
  gen_arena ar = {0}, *A = &ar;
  gen_tensor *a = GEN_KEEP(A, gen_node_saved_input(n, 0, 0)), *b = GEN_KEEP(A, gen_node_saved_input(n, 1, 1));
  gen_tensor *gs = at->reduction == GEN_REDUCE_MEAN ? GEN_KEEP(A, gen_scale(g, 1.0 / at->divisor)) : g;
  for (int i = 0; i < 2 && !ar.failed; i++) {
    if (!gen_edge_live(&n->edges[i])) continue;
    gen_tensor *d = NULL; /* d loss / d input i */
    switch (at->kind) {
    case PW_MSE: d = GEN_KEEP(A, gen_scale(GEN_KEEP(A, gen_sub(a, b)), i == 0 ? 2.0 : -2.0)); break;
    case PW_L1: { /* sign(a - b), a constant */
      gen_tensor *diff = GEN_KEEP(A, gen_binary_raw(GEN_BIN_SUB, a, b));
      gen_tensor *sg = GEN_KEEP(A, diff ? gen_empty(diff->dtype, diff->ndim, diff->shape) : NULL);
      for (int64_t e = 0; sg && e < gen_numel(sg); e++) {
        double v = gen_get_flat(diff, e);
        gen_float_put(gen_data_ptr(sg), sg->dtype, e, (i == 0 ? 1 : -1) * (v > 0 ? 1.0 : v < 0 ? -1.0 : 0.0));
      }
      d = sg;
      break;
    }
    case PW_BCE_LOGITS:
      d = i == 0 ? GEN_KEEP(A, gen_sub(GEN_KEEP(A, gen_unary(GEN_UN_SIGMOID, a, 0, 0)), b)) : GEN_KEEP(A, gen_neg(a));
      break;
    case PW_KL: /* mu; (exp(lv) - 1) / 2 */
      d = i == 0 ? a
                 : GEN_KEEP(A, gen_scale(GEN_KEEP(A, gen_add_scalar(GEN_KEEP(A, gen_unary(GEN_UN_EXP, b, 0, 0)), -1.0)), 0.5));
      break;
    default: gen_arena_free(A); return gen_fail_int("create_graph is not supported through %s", gen_op_name(n->op));
    }
    if ((grad_in[i] = GEN_KEEP(A, gen_mul(gs, d)))) gen_retain(grad_in[i]);
  }
  bool failed = ar.failed;
  gen_arena_free(A);
  return failed ? -1 : 0;
}

static gen_tensor *pointwise_loss(pointwise k, gen_tensor *a, gen_tensor *b, gen_reduction r) {
  if (!gen_same_shape(a, b)) {
    char sa[GEN_SHAPE_STR_MAX], sb[GEN_SHAPE_STR_MAX];
    return gen_fail("%s %s and %s %s must have the same shape", k == PW_KL ? "mu" : "input",
                    gen_shape_str(sa, sizeof sa, a->ndim, a->shape), k == PW_KL ? "logvar" : "target",
                    gen_shape_str(sb, sizeof sb, b->ndim, b->shape));
  }
  if (!gen_dtype_is_float(a->dtype) || !gen_dtype_is_float(b->dtype))
    return gen_fail("needs float tensors, got %s and %s", gen_dtype_name(a->dtype), gen_dtype_name(b->dtype));
  if (k == PW_KL && a->ndim == 0) return gen_fail("mu must have a batch dimension");
  gen_dtype dt = gen_promote(a->dtype, b->dtype);
  int64_t count = gen_numel(a);
  gen_tensor *ca = gen_contiguous_raw(a), *cb = ca ? gen_contiguous_raw(b) : NULL;
  gen_tensor *el = cb && r == GEN_REDUCE_NONE ? gen_empty(dt, a->ndim, a->shape) : NULL;
  gen_tensor *sums =
      cb && (el || r != GEN_REDUCE_NONE) ? gen_empty(GEN_FLOAT64, 1, (int64_t[1]){(count + LOSS_BLOCK - 1) / LOSS_BLOCK}) : NULL;
  double divisor = k == PW_KL ? (double)a->shape[0] : (double)(count ? count : 1);
  gen_tensor *out = NULL;
  if (sums) {
    double total = pointwise_forward(k, ca, cb, el, (double *)gen_data_ptr(sums));
    out = el ? el : gen_scalar(dt, r == GEN_REDUCE_MEAN ? total / divisor : total);
    if (el) gen_retain(el);
  }
  pointwise_attrs at = {r, k, divisor};
  out = gen_record(out, &(gen_record_args){.op = pointwise_ops[k],
                                           .backward = pointwise_backward,
                                           .graph_backward = k == PW_BCE ? NULL : pointwise_graph_backward,
                                           .inputs = GEN_TENSORS(a, b),
                                           .saved = GEN_TENSORS(ca, cb),
                                           .attrs = GEN_ATTRS(&at)});
  gen_release(sums);
  gen_release(ca);
  gen_release(cb);
  gen_release(el);
  return out;
}

gen_tensor *gen_mse_loss(gen_tensor *x, gen_tensor *y, gen_reduction r) { return pointwise_loss(PW_MSE, x, y, r); }
gen_tensor *gen_l1_loss(gen_tensor *x, gen_tensor *y, gen_reduction r) { return pointwise_loss(PW_L1, x, y, r); }
gen_tensor *gen_bce_with_logits(gen_tensor *x, gen_tensor *y, gen_reduction r) { return pointwise_loss(PW_BCE_LOGITS, x, y, r); }
gen_tensor *gen_binary_cross_entropy(gen_tensor *p, gen_tensor *y, gen_reduction r) {
  int64_t count = gen_numel(p);
  for (int64_t i = 0; i < count; i++) {
    double v = gen_get_flat(p, i);
    if (!(v >= 0 && v <= 1)) return gen_fail("input probabilities must be in [0, 1], found %g", v);
  }
  return pointwise_loss(PW_BCE, p, y, r);
}
gen_tensor *gen_kl_normal(gen_tensor *mu, gen_tensor *logvar, gen_reduction r) { return pointwise_loss(PW_KL, mu, logvar, r); }

/* Reduces per-element values to the requested form. */
static gen_tensor *reduce_loss(gen_tensor *elems, gen_reduction r, double mean_divisor) {
  if (r == GEN_REDUCE_NONE) {
    gen_retain(elems);
    return elems;
  }
  gen_tensor *s = gen_sum_dim_raw(elems, GEN_DIM_ALL, false);
  if (s && r == GEN_REDUCE_MEAN) gen_write_f64(gen_data_ptr(s), s->dtype, gen_read_f64(gen_data_ptr(s), s->dtype) / mean_divisor);
  return s;
}

/* ---------------------------------------------------------------- class losses
 * Legend: logits {N, C, S...} seen contiguous as [N, C, S] (S = prod of spatial dims, 1 for {N, C});
 * targets {N, S...} hold 1-based classes. */

static int check_targets(const gen_tensor *x, const gen_tensor *t, int64_t *nb, int64_t *c, int64_t *s) {
  char sx[GEN_SHAPE_STR_MAX], st[GEN_SHAPE_STR_MAX];
  if (x->ndim < 2) return gen_fail_int("input must be {N, C, ...}, got %s", gen_shape_str(sx, sizeof sx, x->ndim, x->shape));
  if (!gen_dtype_is_float(x->dtype)) return gen_fail_int("input must be float, got %s", gen_dtype_name(x->dtype));
  if (t->dtype != GEN_INT64)
    return gen_fail_int("targets must be int64 class indices (1-based), got %s", gen_dtype_name(t->dtype));
  bool ok = t->ndim == x->ndim - 1 && t->shape[0] == x->shape[0];
  for (int d = 1; ok && d < t->ndim; d++) ok = t->shape[d] == x->shape[d + 1];
  if (!ok)
    return gen_fail_int("targets %s do not match input %s (expected the input's shape without dimension 2)",
                        gen_shape_str(st, sizeof st, t->ndim, t->shape), gen_shape_str(sx, sizeof sx, x->ndim, x->shape));
  *nb = x->shape[0];
  *c = x->shape[1];
  *s = gen_numel_of(x->ndim - 2, x->shape + 2);
  int64_t count = gen_numel(t);
  for (int64_t i = 0; i < count; i++) {
    int64_t v = gen_get_flat_i64(t, i);
    if (v < 1 || v > *c)
      return gen_fail_int("target %lld is out of range 1..%lld (at position %lld)", (long long)v, (long long)*c,
                          (long long)i + 1);
  }
  return 0;
}

typedef struct {
  gen_reduction reduction;
  double count; /* of the loss elements, for reduction "mean" */
} class_attrs;

/* Image i of class_backward in float32: out = g * d, g one number or one per position. */
static void class_backward_image_f32(float *out, const float *d, const float *g, float scalar, bool per_position, int64_t c,
                                     int64_t s, int64_t i) {
  for (int64_t k = 0; k < c; k++) {
    int64_t base = (i * c + k) * s;
    if (per_position)
      for (int64_t j = 0; j < s; j++) out[base + j] = g[i * s + j] * d[base + j];
    else
      for (int64_t j = 0; j < s; j++) out[base + j] = scalar * d[base + j];
  }
}

/* saved: dx (input shape: softmax - onehot, or -onehot) */
static int class_backward(gen_node *n, gen_tensor *g, gen_tensor **grad_in) {
  gen_tensor *d = gen_node_saved(n, 0);
  if (!d) return -1;
  const class_attrs *at = GEN_NODE_ATTRS(n, class_attrs);
  gen_reduction r = at->reduction;
  gen_tensor *out = gen_empty(d->dtype, d->ndim, d->shape), *cg = out ? gen_contiguous_raw(g) : NULL;
  if (!cg) {
    gen_release(out);
    return -1;
  }
  int64_t nb = d->shape[0], c = d->shape[1], s = gen_numel_of(d->ndim - 2, d->shape + 2);
  double scalar = r == GEN_REDUCE_NONE ? 0 : gen_read_f64(gen_data_ptr(cg), cg->dtype) / (r == GEN_REDUCE_MEAN ? at->count : 1);
  size_t es = gen_dtype_size(d->dtype);
  if (d->dtype == GEN_FLOAT32 && cg->dtype == GEN_FLOAT32) { /* the float32 models' path: no dtype switch per element */
    float *o = (float *)gen_data_ptr(out);
    const float *dd = (const float *)gen_data_ptr(d), *gg = (const float *)gen_data_ptr(cg);
    float sc = (float)scalar;
    if (nb * c * s > GEN_PARALLEL_GRAIN) {
#pragma omp parallel for
      for (int64_t i = 0; i < nb; i++) class_backward_image_f32(o, dd, gg, sc, r == GEN_REDUCE_NONE, c, s, i);
    } else {
      for (int64_t i = 0; i < nb; i++) class_backward_image_f32(o, dd, gg, sc, r == GEN_REDUCE_NONE, c, s, i);
    }
    gen_release(cg);
    grad_in[0] = out;
    return 0;
  }
  for (int64_t i = 0; i < nb; i++)
    for (int64_t k = 0; k < c; k++)
      for (int64_t j = 0; j < s; j++) {
        int64_t e = (i * c + k) * s + j;
        double gk = r == GEN_REDUCE_NONE
                        ? gen_read_f64(gen_data_ptr(cg) + (size_t)(i * s + j) * gen_dtype_size(cg->dtype), cg->dtype)
                        : scalar;
        gen_write_f64(gen_data_ptr(out) + (size_t)e * es, d->dtype,
                      gk * gen_read_f64(gen_data_ptr(d) + (size_t)e * es, d->dtype));
      }
  gen_release(cg);
  grad_in[0] = out;
  return 0;
}

/* Row row = (i, j) of class_loss: its loss into el, d loss / d x into dx. */
static void class_loss_row(const gen_tensor *x, const gen_tensor *cx, gen_tensor *dx, gen_tensor *el, const int64_t *tv,
                           int64_t c, int64_t s, size_t es, bool from_logits, int64_t row) {
  int64_t i = row / s, j = row % s, target = tv[row] - 1;
  const char *xb = gen_data_ptr(cx);
  char *db = gen_data_ptr(dx);
#define X(k)  gen_read_f64(xb + (size_t)((i * c + (k)) * s + j) * es, x->dtype)
#define DX(k) (db + (size_t)((i * c + (k)) * s + j) * es)
  double loss;
  if (from_logits) {
    double m = -INFINITY, sum = 0;
    for (int64_t k = 0; k < c; k++) m = fmax(m, X(k));
    for (int64_t k = 0; k < c; k++) sum += exp(X(k) - m);
    double lse = m + log(sum);
    loss = lse - X(target);
    for (int64_t k = 0; k < c; k++) gen_write_f64(DX(k), x->dtype, exp(X(k) - lse) - (k == target));
  } else {
    loss = -X(target);
    gen_write_f64(DX(target), x->dtype, -1);
  }
#undef X
#undef DX
  gen_write_f64(gen_data_ptr(el) + (size_t)row * es, x->dtype, loss);
}

static gen_tensor *class_loss(gen_tensor *x, gen_tensor *t, gen_reduction r, bool from_logits) {
  int64_t nb, c, s;
  if (check_targets(x, t, &nb, &c, &s) < 0) return NULL;
  gen_tensor *cx = gen_contiguous_raw(x), *ct = cx ? gen_contiguous_raw(t) : NULL;
  int64_t eshape[GEN_MAX_DIMS];
  memcpy(eshape, t->shape, sizeof(int64_t) * (size_t)t->ndim);
  gen_tensor *el = ct ? gen_empty(x->dtype, t->ndim, eshape) : NULL, *dx = el ? gen_zeros(x->dtype, x->ndim, x->shape) : NULL;
  gen_tensor *out = NULL;
  if (dx) {
    size_t es = gen_dtype_size(x->dtype);
    const int64_t *tv = (const int64_t *)gen_data_ptr(ct);
    if (from_logits && x->dtype == GEN_FLOAT32) {
      gen_cross_entropy_f32((float *)gen_data_ptr(el), (float *)gen_data_ptr(dx), (const float *)gen_data_ptr(cx), tv, nb, c, s);
    } else if (nb * c * s > GEN_PARALLEL_GRAIN) {
#pragma omp parallel for
      for (int64_t row = 0; row < nb * s; row++) class_loss_row(x, cx, dx, el, tv, c, s, es, from_logits, row);
    } else {
      for (int64_t row = 0; row < nb * s; row++) class_loss_row(x, cx, dx, el, tv, c, s, es, from_logits, row);
    }
    double count = (double)(nb * s > 0 ? nb * s : 1);
    out = reduce_loss(el, r, count);
    class_attrs at = {r, count};
    out = gen_record(out, &(gen_record_args){.op = from_logits ? GEN_OP_CROSS_ENTROPY : GEN_OP_NLL_LOSS,
                                             .backward = class_backward,
                                             .inputs = GEN_TENSORS(x),
                                             .saved = GEN_TENSORS(dx),
                                             .attrs = GEN_ATTRS(&at)});
  }
  gen_release(cx);
  gen_release(ct);
  gen_release(el);
  gen_release(dx);
  return out;
}

gen_tensor *gen_cross_entropy(gen_tensor *logits, gen_tensor *targets, gen_reduction r) {
  return class_loss(logits, targets, r, true);
}
gen_tensor *gen_nll_loss(gen_tensor *logp, gen_tensor *targets, gen_reduction r) { return class_loss(logp, targets, r, false); }
