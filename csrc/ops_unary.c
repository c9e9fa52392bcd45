/*
 * ops_unary.c — elementwise math and activations, and where / masked_fill; forward and backward.
 *
 * Each op is one entry in two switch statements, its value f(x) and its derivative f'(x, y) (y =
 * f(x), cheaper for exp, tanh, sigmoid): backward is g * f'(x, y). The loops keep the switch inside
 * and let the compiler unswitch them; float32 runs in float precision, everything else in double.
 * Activation definitions follow PyTorch (gelu exact erf form by default, softplus with beta and
 * threshold, elu with alpha, clamp passing the gradient where lo <= x <= hi).
 */
#include "ops_unary.h"

#include <math.h>
#include <string.h>

#include "autograd.h"
#include "kernels/activation.h"
#include "iter.h"
#include "ops_arith.h"
#include "ops_reduce.h"

/* The autograd op of each unary op (gelu's tanh approximation records as gelu). */
static const gen_op unary_op_ids[] = {GEN_OP_EXP,     GEN_OP_LOG,  GEN_OP_SQRT, GEN_OP_RSQRT,    GEN_OP_ABS,  GEN_OP_TANH,
                                      GEN_OP_SIGMOID, GEN_OP_SIN,  GEN_OP_COS,  GEN_OP_CLAMP,    GEN_OP_RELU, GEN_OP_LEAKY_RELU,
                                      GEN_OP_SILU,    GEN_OP_GELU, GEN_OP_GELU, GEN_OP_SOFTPLUS, GEN_OP_ELU,  GEN_OP_ERF};
_Static_assert(GEN_COUNT_OF(unary_op_ids) == GEN_UN_COUNT, "every unary op needs its autograd op");

#define SQRT_HALF      0.70710678118654752440
#define SQRT_2         1.41421356237309504880
#define INV_SQRT_2PI   0.39894228040143267794
#define SQRT_2_OVER_PI 0.79788456080286535588

static inline double value(gen_unop op, double x, double p1, double p2) {
  switch (op) {
  case GEN_UN_EXP: return exp(x);
  case GEN_UN_LOG: return log(x);
  case GEN_UN_SQRT: return sqrt(x);
  case GEN_UN_RSQRT: return 1 / sqrt(x);
  case GEN_UN_ABS: return fabs(x);
  case GEN_UN_TANH: return tanh(x);
  case GEN_UN_SIGMOID: return 1 / (1 + exp(-x));
  case GEN_UN_SIN: return sin(x);
  case GEN_UN_COS: return cos(x);
  case GEN_UN_CLAMP: return x < p1 ? p1 : x > p2 ? p2 : x; /* NaN bounds compare false */
  case GEN_UN_RELU: return x > 0 ? x : 0;
  case GEN_UN_LEAKY_RELU: return x > 0 ? x : x * p1;
  case GEN_UN_SILU: return x / (1 + exp(-x));
  case GEN_UN_GELU: return 0.5 * x * (1 + erf(x * SQRT_HALF));
  case GEN_UN_GELU_TANH: return 0.5 * x * (1 + tanh(SQRT_2_OVER_PI * (x + 0.044715 * x * x * x)));
  case GEN_UN_SOFTPLUS: return p1 * x > p2 ? x : log1p(exp(p1 * x)) / p1;
  case GEN_UN_ELU: return x > 0 ? x : p1 * expm1(x);
  case GEN_UN_ERF: return erf(x);
  default: return 0;
  }
}

static inline float value_f(gen_unop op, float x, float p1, float p2) {
  switch (op) {
  case GEN_UN_EXP: return expf(x);
  case GEN_UN_LOG: return logf(x);
  case GEN_UN_SQRT: return sqrtf(x);
  case GEN_UN_RSQRT: return 1 / sqrtf(x);
  case GEN_UN_ABS: return fabsf(x);
  case GEN_UN_TANH: return tanhf(x);
  case GEN_UN_SIGMOID: return 1 / (1 + expf(-x));
  case GEN_UN_SIN: return sinf(x);
  case GEN_UN_COS: return cosf(x);
  case GEN_UN_CLAMP: return x < p1 ? p1 : x > p2 ? p2 : x;
  case GEN_UN_RELU: return x > 0 ? x : 0;
  case GEN_UN_LEAKY_RELU: return x > 0 ? x : x * p1;
  case GEN_UN_SILU: return x / (1 + expf(-x));
  case GEN_UN_GELU: return 0.5f * x * (1 + erff(x * (float)SQRT_HALF));
  case GEN_UN_GELU_TANH: return 0.5f * x * (1 + tanhf((float)SQRT_2_OVER_PI * (x + 0.044715f * x * x * x)));
  case GEN_UN_SOFTPLUS: return p1 * x > p2 ? x : log1pf(expf(p1 * x)) / p1;
  case GEN_UN_ELU: return x > 0 ? x : p1 * expm1f(x);
  case GEN_UN_ERF: return erff(x);
  default: return 0;
  }
}

/* d f / d x at x, with y = f(x) */
static inline double derivative(gen_unop op, double x, double y, double p1, double p2) {
  switch (op) {
  case GEN_UN_EXP: return y;
  case GEN_UN_LOG: return 1 / x;
  case GEN_UN_SQRT: return 0.5 / y;
  case GEN_UN_RSQRT: return -0.5 * y * y * y;
  case GEN_UN_ABS: return x > 0 ? 1 : x < 0 ? -1 : 0;
  case GEN_UN_TANH: return 1 - y * y;
  case GEN_UN_SIGMOID: return y * (1 - y);
  case GEN_UN_SIN: return cos(x);
  case GEN_UN_COS: return -sin(x);
  case GEN_UN_CLAMP: return (x < p1 || x > p2) ? 0 : 1;
  case GEN_UN_RELU: return x > 0 ? 1 : 0;
  case GEN_UN_LEAKY_RELU: return x > 0 ? 1 : p1;
  case GEN_UN_SILU: {
    double s = 1 / (1 + exp(-x));
    return s * (1 + x * (1 - s));
  }
  case GEN_UN_GELU: return 0.5 * (1 + erf(x * SQRT_HALF)) + x * INV_SQRT_2PI * exp(-0.5 * x * x);
  case GEN_UN_GELU_TANH: {
    double u = SQRT_2_OVER_PI * (x + 0.044715 * x * x * x), t = tanh(u);
    return 0.5 * (1 + t) + 0.5 * x * (1 - t * t) * SQRT_2_OVER_PI * (1 + 3 * 0.044715 * x * x);
  }
  case GEN_UN_SOFTPLUS: return p1 * x > p2 ? 1 : 1 / (1 + exp(-p1 * x));
  case GEN_UN_ELU: return x > 0 ? 1 : p1 * exp(x);
  case GEN_UN_ERF: return 2 * INV_SQRT_2PI * SQRT_2 * exp(-x * x);
  default: return 0;
  }
}

#define SPAN 4096

static bool keeps_integers(gen_unop op) { return op == GEN_UN_ABS || op == GEN_UN_CLAMP || op == GEN_UN_RELU; }

typedef struct {
  gen_unop op;
  double p1, p2;
  gen_iter it;
  char *po;
  const char *pa;
  gen_dtype dto, dta;
} unary_job;

/* Elements lo .. hi - 1 of iterator row r. */
static void unary_span(const unary_job *j, int64_t r, int64_t lo, int64_t hi) {
  int64_t off[2];
  gen_iter_row(&j->it, r, off);
  int64_t so = gen_iter_inner_stride(&j->it, 0), sa = gen_iter_inner_stride(&j->it, 1), n = hi - lo;
  off[0] += lo * so, off[1] += lo * sa;
  if (j->dto == GEN_FLOAT32 && j->dta == GEN_FLOAT32) {
    float *o = (float *)j->po + off[0];
    const float *a = (const float *)j->pa + off[1];
    float p1 = (float)j->p1, p2 = (float)j->p2;
    if (so == 1 && sa == 1 && (j->op == GEN_UN_RELU || j->op == GEN_UN_LEAKY_RELU)) { /* hot in every model */
      float slope = j->op == GEN_UN_RELU ? 0.0f : p1;
      for (int64_t i = 0; i < n; i++) o[i] = a[i] > 0 ? a[i] : a[i] * slope;
    } else if (so == 1 && sa == 1)
      for (int64_t i = 0; i < n; i++) o[i] = value_f(j->op, a[i], p1, p2);
    else
      for (int64_t i = 0; i < n; i++) o[i * so] = value_f(j->op, a[i * sa], p1, p2);
    return;
  }
  size_t eo = gen_dtype_size(j->dto), ea = gen_dtype_size(j->dta);
  for (int64_t i = 0; i < n; i++)
    gen_write_f64(j->po + (size_t)(off[0] + i * so) * eo, j->dto,
                  value(j->op, gen_read_f64(j->pa + (size_t)(off[1] + i * sa) * ea, j->dta), j->p1, j->p2));
}

static void unary_into(gen_unop op, gen_tensor *out, const gen_tensor *a, double p1, double p2) {
  bool dense_f32 = out->dtype == GEN_FLOAT32 && a->dtype == GEN_FLOAT32 && gen_is_contiguous(out) && gen_is_contiguous(a);
  if (dense_f32 && (op == GEN_UN_SILU || op == GEN_UN_SIGMOID || op == GEN_UN_GELU || op == GEN_UN_TANH || op == GEN_UN_RELU ||
                    op == GEN_UN_LEAKY_RELU)) { /* vectorized, split over the threads */
    const float *x = (const float *)gen_data_ptr(a);
    float *y = (float *)gen_data_ptr(out);
    if (op == GEN_UN_RELU || op == GEN_UN_LEAKY_RELU)
      gen_leaky_relu_f32(y, x, op == GEN_UN_RELU ? 0.0f : (float)p1, gen_numel(out));
    else if (op == GEN_UN_SILU)
      gen_silu_f32(y, x, gen_numel(out));
    else if (op == GEN_UN_TANH)
      gen_tanh_f32(y, x, gen_numel(out));
    else if (op == GEN_UN_GELU)
      gen_gelu_f32(y, x, gen_numel(out));
    else
      gen_sigmoid_f32(y, x, gen_numel(out));
    gen_bump_version(out);
    return;
  }
  unary_job j = {
      .op = op, .p1 = p1, .p2 = p2, .po = gen_data_ptr(out), .pa = gen_data_ptr(a), .dto = out->dtype, .dta = a->dtype};
  const int64_t *strides[2] = {out->stride, a->stride};
  gen_iter_init(&j.it, out->ndim, out->shape, 2, strides);
  if (j.it.rows * j.it.inner > GEN_PARALLEL_GRAIN / 4) {
#pragma omp parallel for
    for (int64_t s = 0; s < gen_iter_spans(&j.it, SPAN); s++) {
      int64_t r, lo, hi;
      gen_iter_span(&j.it, SPAN, s, &r, &lo, &hi);
      unary_span(&j, r, lo, hi);
    }
  } else {
    for (int64_t r = 0; r < j.it.rows; r++) unary_span(&j, r, 0, j.it.inner);
  }
  gen_bump_version(out);
}

typedef struct {
  gen_unop op;
  double p1, p2; /* the op's parameters (leaky_relu's slope, clamp's bounds ...) */
} unary_attrs;

/* saved[0] = x, saved[1] = y */
static int unary_backward(gen_node *n, gen_tensor *g, gen_tensor **grad_in) {
  gen_tensor *x = gen_node_saved(n, 0), *y = x ? gen_node_saved(n, 1) : NULL;
  if (!y) return -1;
  gen_tensor *cx = gen_contiguous_raw(x), *cy = cx ? gen_contiguous_raw(y) : NULL, *cg = cy ? gen_contiguous_raw(g) : NULL;
  gen_tensor *out = cg ? gen_empty(g->dtype, g->ndim, g->shape) : NULL;
  if (out) {
    const unary_attrs *at = GEN_NODE_ATTRS(n, unary_attrs);
    gen_unop op = at->op;
    double p1 = at->p1, p2 = at->p2;
    int64_t count = gen_numel(out);
    if (out->dtype == GEN_FLOAT32 && cx->dtype == GEN_FLOAT32) {
      float *o = (float *)gen_data_ptr(out);
      const float *xs = (const float *)gen_data_ptr(cx), *ys = (const float *)gen_data_ptr(cy),
                  *gs = (const float *)gen_data_ptr(cg);
      if (op == GEN_UN_RELU || op == GEN_UN_LEAKY_RELU) {
        gen_leaky_relu_backward_f32(o, xs, gs, op == GEN_UN_RELU ? 0.0f : (float)p1, count);
      } else if (op == GEN_UN_TANH) {
        gen_tanh_backward_f32(o, ys, gs, count);
      } else if (op == GEN_UN_SILU) {
        gen_silu_backward_f32(o, xs, gs, count);
      } else if (op == GEN_UN_GELU) {
        gen_gelu_backward_f32(o, xs, gs, count);
      } else if (op == GEN_UN_SIGMOID) {
        gen_sigmoid_backward_f32(o, ys, gs, count);
      } else {
        if (count > GEN_PARALLEL_GRAIN / 4) {
#pragma omp parallel for
          for (int64_t i = 0; i < count; i++) o[i] = gs[i] * (float)derivative(op, xs[i], ys[i], p1, p2);
        } else {
          for (int64_t i = 0; i < count; i++) o[i] = gs[i] * (float)derivative(op, xs[i], ys[i], p1, p2);
        }
      }
    } else {
      for (int64_t i = 0; i < count; i++) {
        double xv = gen_read_f64(gen_data_ptr(cx) + (size_t)i * gen_dtype_size(cx->dtype), cx->dtype);
        double yv = gen_read_f64(gen_data_ptr(cy) + (size_t)i * gen_dtype_size(cy->dtype), cy->dtype);
        double gv = gen_read_f64(gen_data_ptr(cg) + (size_t)i * gen_dtype_size(cg->dtype), cg->dtype);
        gen_write_f64(gen_data_ptr(out) + (size_t)i * gen_dtype_size(out->dtype), out->dtype,
                      gv * derivative(op, xv, yv, p1, p2));
      }
    }
  }
  gen_release(cx);
  gen_release(cy);
  gen_release(cg);
  grad_in[0] = out;
  return out ? 0 : -1;
}

/* f'(x) as a tensor with no history, for the piecewise-linear ops whose f'' is 0 where defined. */
static gen_tensor *constant_derivative(gen_unop op, gen_tensor *x, double p1, double p2) {
  gen_tensor *cx = gen_contiguous_raw(x), *d = cx ? gen_empty(x->dtype, x->ndim, x->shape) : NULL;
  if (d) {
    int64_t k = gen_numel(d);
    const char *px = gen_data_ptr(cx);
    char *pd = gen_data_ptr(d);
    if (d->dtype == GEN_FLOAT32 && (op == GEN_UN_RELU || op == GEN_UN_LEAKY_RELU)) { /* the hot ones */
      float slope = op == GEN_UN_RELU ? 0.0f : (float)p1;
      const float *xs = (const float *)px;
      float *ds = (float *)pd;
      for (int64_t i = 0; i < k; i++) ds[i] = xs[i] > 0 ? 1.0f : slope;
    } else {
      for (int64_t i = 0; i < k; i++) gen_float_put(pd, d->dtype, i, derivative(op, gen_float_at(px, cx->dtype, i), 0, p1, p2));
    }
  }
  gen_release(cx);
  return d;
}

static gen_tensor *un(gen_unop op, gen_tensor *a) { return gen_unary(op, a, 0, 0); }

/* g f'(x, y) with f' written in differentiable ops (saved[0] = x, saved[1] = y, both carrying
 * their identity under create_graph), so the second derivative comes from these ops' backwards. */
static int unary_graph_backward(gen_node *n, gen_tensor *g, gen_tensor **grad_in) {
  gen_tensor *x = gen_node_saved(n, 0), *y = x ? gen_node_saved(n, 1) : NULL;
  if (!y) return -1;
  const unary_attrs *at = GEN_NODE_ATTRS(n, unary_attrs);
  double p1 = at->p1, p2 = at->p2;
  gen_arena ar = {0};
  gen_arena *A = &ar;
  gen_tensor *d = NULL; /* f'(x) */
  switch (at->op) {
  case GEN_UN_EXP: d = y; break;
  case GEN_UN_LOG: d = GEN_KEEP(A, gen_div(GEN_KEEP(A, gen_scalar(x->dtype, 1.0)), x)); break;
  case GEN_UN_SQRT: d = GEN_KEEP(A, gen_div(GEN_KEEP(A, gen_scalar(x->dtype, 0.5)), y)); break;
  case GEN_UN_RSQRT: d = GEN_KEEP(A, gen_scale(GEN_KEEP(A, gen_mul(GEN_KEEP(A, gen_mul(y, y)), y)), -0.5)); break;
  case GEN_UN_TANH: d = GEN_KEEP(A, gen_add_scalar(GEN_KEEP(A, gen_neg(GEN_KEEP(A, gen_mul(y, y)))), 1.0)); break;
  case GEN_UN_SIGMOID: d = GEN_KEEP(A, gen_mul(y, GEN_KEEP(A, gen_add_scalar(GEN_KEEP(A, gen_neg(y)), 1.0)))); break;
  case GEN_UN_SIN: d = GEN_KEEP(A, un(GEN_UN_COS, x)); break;
  case GEN_UN_COS: d = GEN_KEEP(A, gen_neg(GEN_KEEP(A, un(GEN_UN_SIN, x)))); break;
  case GEN_UN_ABS:
  case GEN_UN_CLAMP:
  case GEN_UN_RELU:
  case GEN_UN_LEAKY_RELU: d = GEN_KEEP(A, constant_derivative(at->op, x, p1, p2)); break;
  case GEN_UN_SILU: { /* s (1 + x (1 - s)) */
    gen_tensor *s = GEN_KEEP(A, un(GEN_UN_SIGMOID, x));
    gen_tensor *oms = GEN_KEEP(A, gen_add_scalar(GEN_KEEP(A, gen_neg(s)), 1.0));
    d = GEN_KEEP(A, gen_mul(s, GEN_KEEP(A, gen_add_scalar(GEN_KEEP(A, gen_mul(x, oms)), 1.0))));
    break;
  }
  case GEN_UN_GELU: { /* Phi(x) + x phi(x) */
    gen_tensor *cdf = GEN_KEEP(
        A, gen_scale(GEN_KEEP(A, gen_add_scalar(GEN_KEEP(A, un(GEN_UN_ERF, GEN_KEEP(A, gen_scale(x, SQRT_HALF)))), 1.0)), 0.5));
    gen_tensor *pdf = GEN_KEEP(
        A, gen_scale(GEN_KEEP(A, un(GEN_UN_EXP, GEN_KEEP(A, gen_scale(GEN_KEEP(A, gen_mul(x, x)), -0.5)))), INV_SQRT_2PI));
    d = GEN_KEEP(A, gen_add(cdf, GEN_KEEP(A, gen_mul(x, pdf))));
    break;
  }
  case GEN_UN_GELU_TANH: { /* 0.5 (1 + t) + 0.5 x (1 - t^2) c (1 + 3 k x^2), t = tanh(c (x + k x^3)) */
    gen_tensor *x2 = GEN_KEEP(A, gen_mul(x, x));
    gen_tensor *inner = GEN_KEEP(A, gen_mul(x, GEN_KEEP(A, gen_add_scalar(GEN_KEEP(A, gen_scale(x2, 0.044715)), 1.0))));
    gen_tensor *t = GEN_KEEP(A, un(GEN_UN_TANH, GEN_KEEP(A, gen_scale(inner, SQRT_2_OVER_PI))));
    gen_tensor *sech2 = GEN_KEEP(A, gen_add_scalar(GEN_KEEP(A, gen_neg(GEN_KEEP(A, gen_mul(t, t)))), 1.0));
    gen_tensor *du =
        GEN_KEEP(A, gen_scale(GEN_KEEP(A, gen_add_scalar(GEN_KEEP(A, gen_scale(x2, 3 * 0.044715)), 1.0)), SQRT_2_OVER_PI));
    gen_tensor *right = GEN_KEEP(A, gen_scale(GEN_KEEP(A, gen_mul(GEN_KEEP(A, gen_mul(x, sech2)), du)), 0.5));
    d = GEN_KEEP(A, gen_add(GEN_KEEP(A, gen_scale(GEN_KEEP(A, gen_add_scalar(t, 1.0)), 0.5)), right));
    break;
  }
  case GEN_UN_SOFTPLUS: { /* sigmoid(beta x), 1 past the threshold */
    gen_tensor *s = GEN_KEEP(A, un(GEN_UN_SIGMOID, GEN_KEEP(A, gen_scale(x, p1))));
    gen_tensor *mask =
        GEN_KEEP(A, gen_binary_raw(GEN_BIN_GT, GEN_KEEP(A, gen_scale_raw(x, p1)), GEN_KEEP(A, gen_scalar(x->dtype, p2))));
    d = GEN_KEEP(A, gen_where(mask, GEN_KEEP(A, gen_scalar(x->dtype, 1.0)), s));
    break;
  }
  case GEN_UN_ELU: { /* 1 for x > 0, alpha exp(x) otherwise */
    gen_tensor *mask = GEN_KEEP(A, gen_binary_raw(GEN_BIN_GT, x, GEN_KEEP(A, gen_scalar(x->dtype, 0.0))));
    gen_tensor *neg = GEN_KEEP(A, gen_scale(GEN_KEEP(A, un(GEN_UN_EXP, x)), p1));
    d = GEN_KEEP(A, gen_where(mask, GEN_KEEP(A, gen_scalar(x->dtype, 1.0)), neg));
    break;
  }
  case GEN_UN_ERF:
    d = GEN_KEEP(
        A, gen_scale(GEN_KEEP(A, un(GEN_UN_EXP, GEN_KEEP(A, gen_neg(GEN_KEEP(A, gen_mul(x, x)))))), 2 * INV_SQRT_2PI * SQRT_2));
    break;
  default: gen_arena_free(A); return gen_fail_int("internal: no graph backward for unary op %d", (int)at->op);
  }
  gen_tensor *r = d ? GEN_KEEP(A, gen_mul(g, d)) : NULL;
  grad_in[0] = gen_arena_take(A, r);
  return grad_in[0] ? 0 : -1;
}

gen_tensor *gen_unary(gen_unop op, gen_tensor *a, double p1, double p2) {
  gen_dtype dt = (gen_dtype_is_float(a->dtype) || keeps_integers(op)) ? a->dtype : GEN_FLOAT32;
  gen_tensor *out = gen_empty(dt, a->ndim, a->shape);
  if (!out) return NULL;
  unary_into(op, out, a, p1, p2);
  unary_attrs at = {op, p1, p2};
  return gen_record(out, &(gen_record_args){.op = unary_op_ids[op],
                                            .backward = unary_backward,
                                            .graph_backward = unary_graph_backward,
                                            .inputs = GEN_TENSORS(a),
                                            .saved = GEN_TENSORS(a, out),
                                            .attrs = GEN_ATTRS(&at)});
}

int gen_unary_(gen_unop op, gen_tensor *a, double p1, double p2) {
  if (gen_check_inplace(a) < 0) return -1;
  if (!gen_dtype_is_float(a->dtype) && !keeps_integers(op))
    return gen_fail_int("in place on a %s tensor (this op gives floats)", gen_dtype_name(a->dtype));
  unary_into(op, a, a, p1, p2);
  return 0;
}

/* ---- where / masked_fill ---- */

typedef struct {
  gen_iter it;
  char *po;
  const char *pm, *pa, *pb;
  gen_dtype dt, dta, dtb;
} where_job;

static void where_row(const where_job *j, int64_t r) {
  int64_t off[4];
  gen_iter_row(&j->it, r, off);
  int64_t s[4];
  for (int k = 0; k < 4; k++) s[k] = gen_iter_inner_stride(&j->it, k);
  size_t eo = gen_dtype_size(j->dt), ea = gen_dtype_size(j->dta), eb = gen_dtype_size(j->dtb);
  for (int64_t i = 0; i < j->it.inner; i++) {
    bool take_a = ((const uint8_t *)j->pm)[off[1] + i * s[1]] != 0;
    double v = take_a ? gen_read_f64(j->pa + (size_t)(off[2] + i * s[2]) * ea, j->dta)
                      : gen_read_f64(j->pb + (size_t)(off[3] + i * s[3]) * eb, j->dtb);
    gen_write_f64(j->po + (size_t)(off[0] + i * s[0]) * eo, j->dt, v);
  }
}

static gen_tensor *where_raw(gen_tensor *mask, gen_tensor *a, gen_tensor *b) {
  if (mask->dtype != GEN_UINT8) return gen_fail("mask must be uint8 (from a comparison), got %s", gen_dtype_name(mask->dtype));
  int64_t shape[GEN_MAX_DIMS], shape2[GEN_MAX_DIMS];
  int nd = gen_broadcast_shapes(a->ndim, a->shape, b->ndim, b->shape, shape);
  if (nd < 0) return NULL;
  int nd2 = gen_broadcast_shapes(mask->ndim, mask->shape, nd, shape, shape2);
  if (nd2 < 0) return NULL;
  gen_tensor *out = gen_empty(gen_promote(a->dtype, b->dtype), nd2, shape2);
  if (!out) return NULL;
  int64_t sm[GEN_MAX_DIMS], sa[GEN_MAX_DIMS], sb[GEN_MAX_DIMS];
  gen_broadcast_strides(mask, nd2, shape2, sm);
  gen_broadcast_strides(a, nd2, shape2, sa);
  gen_broadcast_strides(b, nd2, shape2, sb);
  where_job j = {.po = gen_data_ptr(out),
                 .pm = gen_data_ptr(mask),
                 .pa = gen_data_ptr(a),
                 .pb = gen_data_ptr(b),
                 .dt = out->dtype,
                 .dta = a->dtype,
                 .dtb = b->dtype};
  const int64_t *strides[4] = {out->stride, sm, sa, sb};
  gen_iter_init(&j.it, nd2, shape2, 4, strides);
  if (j.it.rows * j.it.inner > GEN_PARALLEL_GRAIN) {
#pragma omp parallel for
    for (int64_t r = 0; r < j.it.rows; r++) where_row(&j, r);
  } else {
    for (int64_t r = 0; r < j.it.rows; r++) where_row(&j, r);
  }
  return out;
}

/* saved[0] = mask. where: inputs (a, b); masked_fill: input x only. */
static int where_backward(gen_node *n, gen_tensor *g, gen_tensor **grad_in) {
  gen_tensor *mask = gen_node_saved(n, 0);
  if (!mask) return -1;
  gen_tensor *zero = gen_scalar(g->dtype, 0);
  if (!zero) return -1;
  int rc = 0;
  int first = n->op == GEN_OP_MASKED_FILL ? 1 : 0; /* masked_fill keeps g where the mask is 0 */
  for (int i = 0; i < n->n_inputs && rc == 0; i++) {
    if (!gen_edge_live(&n->edges[i])) continue;
    bool keep_where_set = (i + first) == 0;
    gen_tensor *full = keep_where_set ? where_raw(mask, g, zero) : where_raw(mask, zero, g);
    grad_in[i] = full ? gen_sum_to_shape(full, n->edges[i].ndim, n->edges[i].shape) : NULL;
    gen_release(full);
    if (!grad_in[i]) rc = -1;
  }
  gen_release(zero);
  return rc;
}

static int where_graph_backward(gen_node *n, gen_tensor *g, gen_tensor **grad_in) {
  gen_tensor *mask = gen_node_saved(n, 0);
  if (!mask) return -1;
  int first = n->op == GEN_OP_MASKED_FILL ? 1 : 0;
  for (int i = 0; i < n->n_inputs; i++) {
    if (!gen_edge_live(&n->edges[i])) continue;
    gen_arena ar = {0};
    gen_tensor *zero = GEN_KEEP(&ar, gen_scalar(g->dtype, 0));
    gen_tensor *full = GEN_KEEP(&ar, (i + first) == 0 ? gen_where(mask, g, zero) : gen_where(mask, zero, g));
    gen_tensor *r = GEN_KEEP(&ar, gen_sum_to(full, n->edges[i].ndim, n->edges[i].shape));
    if (!(grad_in[i] = gen_arena_take(&ar, r))) return -1;
  }
  return 0;
}

static gen_tensor *record_where(gen_tensor *out, gen_op op, int n_in, gen_tensor **inputs, gen_tensor *mask) {
  return gen_record(out, &(gen_record_args){.op = op,
                                            .backward = where_backward,
                                            .graph_backward = where_graph_backward,
                                            .inputs = {n_in, inputs},
                                            .saved = GEN_TENSORS(mask)});
}

gen_tensor *gen_where(gen_tensor *mask, gen_tensor *a, gen_tensor *b) {
  gen_tensor *out = where_raw(mask, a, b);
  gen_tensor *inputs[2] = {a, b};
  return record_where(out, GEN_OP_WHERE, 2, inputs, mask);
}

gen_tensor *gen_masked_fill(gen_tensor *x, gen_tensor *mask, double value) {
  int64_t stride[GEN_MAX_DIMS];
  if (gen_broadcast_strides(mask, x->ndim, x->shape, stride) < 0) return NULL;
  gen_tensor *v = gen_scalar(x->dtype, value);
  gen_tensor *out = v ? where_raw(mask, v, x) : NULL;
  gen_release(v);
  return record_where(out, GEN_OP_MASKED_FILL, 1, &x, mask);
}
