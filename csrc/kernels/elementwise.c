/* elementwise.c — see elementwise.h. */
#include "elementwise.h"

#include <math.h>
#include <string.h>

#include "../iter.h"

gen_dtype gen_binop_result_dtype(gen_binop op, gen_dtype a, gen_dtype b) {
  if (op >= GEN_BIN_EQ) return GEN_UINT8;
  gen_dtype r = gen_promote(a, b);
  if ((op == GEN_BIN_DIV || op == GEN_BIN_POW) && !gen_dtype_is_float(r)) return GEN_FLOAT32;
  return r;
}

static inline double apply_f64(gen_binop op, double x, double y) {
  switch (op) {
  case GEN_BIN_ADD: return x + y;
  case GEN_BIN_SUB: return x - y;
  case GEN_BIN_MUL: return x * y;
  case GEN_BIN_DIV: return x / y;
  case GEN_BIN_POW: return pow(x, y);
  case GEN_BIN_MAXIMUM: return (x > y || x != x) ? x : y;
  case GEN_BIN_MINIMUM: return (x < y || x != x) ? x : y;
  case GEN_BIN_EQ: return x == y;
  case GEN_BIN_NE: return x != y;
  case GEN_BIN_LT: return x < y;
  case GEN_BIN_LE: return x <= y;
  case GEN_BIN_GT: return x > y;
  case GEN_BIN_GE: return x >= y;
  default: return 0;
  }
}

/* One row of float32 arithmetic; the strides are usually 1 or 0, which the compiler specializes. */
static void row_f32(gen_binop op, float *o, const float *a, const float *b, int64_t n, int64_t so,
                    int64_t sa, int64_t sb) {
  if (so == 1 && sa == 1 && sb == 1) {
    switch (op) {
    case GEN_BIN_ADD: for (int64_t i = 0; i < n; i++) o[i] = a[i] + b[i]; return;
    case GEN_BIN_SUB: for (int64_t i = 0; i < n; i++) o[i] = a[i] - b[i]; return;
    case GEN_BIN_MUL: for (int64_t i = 0; i < n; i++) o[i] = a[i] * b[i]; return;
    case GEN_BIN_DIV: for (int64_t i = 0; i < n; i++) o[i] = a[i] / b[i]; return;
    default: break;
    }
  } else if (so == 1 && sa == 1 && sb == 0) {
    const float y = b[0];
    switch (op) {
    case GEN_BIN_ADD: for (int64_t i = 0; i < n; i++) o[i] = a[i] + y; return;
    case GEN_BIN_SUB: for (int64_t i = 0; i < n; i++) o[i] = a[i] - y; return;
    case GEN_BIN_MUL: for (int64_t i = 0; i < n; i++) o[i] = a[i] * y; return;
    case GEN_BIN_DIV: for (int64_t i = 0; i < n; i++) o[i] = a[i] / y; return;
    default: break;
    }
  }
  switch (op) {
  case GEN_BIN_ADD: for (int64_t i = 0; i < n; i++) o[i * so] = a[i * sa] + b[i * sb]; return;
  case GEN_BIN_SUB: for (int64_t i = 0; i < n; i++) o[i * so] = a[i * sa] - b[i * sb]; return;
  case GEN_BIN_MUL: for (int64_t i = 0; i < n; i++) o[i * so] = a[i * sa] * b[i * sb]; return;
  case GEN_BIN_DIV: for (int64_t i = 0; i < n; i++) o[i * so] = a[i * sa] / b[i * sb]; return;
  case GEN_BIN_POW:
    for (int64_t i = 0; i < n; i++) o[i * so] = powf(a[i * sa], b[i * sb]);
    return;
  default:
    for (int64_t i = 0; i < n; i++) o[i * so] = (float)apply_f64(op, a[i * sa], b[i * sb]);
  }
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
    row_f32(j->op, (float *)j->po + off[0], (const float *)j->pa + off[1], (const float *)j->pb + off[2],
            it->inner, so, sa, sb);
    return;
  }
  size_t eo = gen_dtype_size(j->dto), ea = gen_dtype_size(j->dta), eb = gen_dtype_size(j->dtb);
  for (int64_t i = 0; i < it->inner; i++) {
    double x = gen_read_f64(j->pa + (size_t)(off[1] + i * sa) * ea, j->dta);
    double y = gen_read_f64(j->pb + (size_t)(off[2] + i * sb) * eb, j->dtb);
    gen_write_f64(j->po + (size_t)(off[0] + i * so) * eo, j->dto, apply_f64(j->op, x, y));
  }
}

int gen_binary_into(gen_binop op, gen_tensor *out, gen_tensor *a, gen_tensor *b) {
  int64_t stride_a[GEN_MAX_DIMS], stride_b[GEN_MAX_DIMS];
  if (gen_broadcast_strides(a, out->ndim, out->shape, stride_a) < 0 ||
      gen_broadcast_strides(b, out->ndim, out->shape, stride_b) < 0)
    return -1;
  binary_job j = {.op = op, .po = gen_data_ptr(out), .pa = gen_data_ptr(a), .pb = gen_data_ptr(b),
                  .dto = out->dtype, .dta = a->dtype, .dtb = b->dtype};
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
      float *o = (float *)gen_data_ptr(out);
      const float *x = (const float *)gen_data_ptr(ca), *y = (const float *)gen_data_ptr(cb);
      float fa = (float)alpha, fb = (float)beta;
#pragma omp parallel for if (n > GEN_PARALLEL_GRAIN)
      for (int64_t i = 0; i < n; i++) o[i] = x[i] * fa + y[i] * fb;
    } else {
      for (int64_t i = 0; i < n; i++) {
        double x = gen_read_f64(gen_data_ptr(ca) + (size_t)i * gen_dtype_size(ca->dtype), ca->dtype);
        double y = gen_read_f64(gen_data_ptr(cb) + (size_t)i * gen_dtype_size(cb->dtype), cb->dtype);
        gen_write_f64(gen_data_ptr(out) + (size_t)i * gen_dtype_size(out->dtype), out->dtype,
                      x * alpha + y * beta);
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
