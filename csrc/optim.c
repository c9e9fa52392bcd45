/*
 * optim.c — optimizer updates, one fused pass over each parameter (read p, g and the state once,
 * write p and the state once), as in the papers:
 *   Adam  (Kingma & Ba 2015):   m = b1 m + (1-b1) g;  v = b2 v + (1-b2) g^2;
 *                               p -= lr * (m / (1-b1^t)) / (sqrt(v / (1-b2^t)) + eps)
 *   AdamW (Loshchilov & Hutter 2019): p -= lr * wd * p before the Adam step (decoupled decay)
 *   SGD with momentum / Nesterov (PyTorch's formulation, dampening on the gradient term)
 *   RMSprop (Hinton's lecture 6e; PyTorch's eps placement, optional centering and momentum)
 * Elementwise and independent, so any thread split gives identical results.
 */
#include "optim.h"

#include <math.h>

#define OPTIM_GRAIN 16384

int gen_optim_check(gen_tensor *p, gen_tensor *const *others, int n) {
  if (!gen_dtype_is_float(p->dtype))
    return gen_fail_int("parameter must be float32 or float64, got %s", gen_dtype_name(p->dtype));
  if (!gen_is_contiguous(p)) return gen_fail_int("parameter must be contiguous");
  for (int i = 0; i < n; i++) {
    gen_tensor *t = others[i];
    if (!t) continue;
    if (t->dtype != p->dtype || !gen_same_shape(t, p) || !gen_is_contiguous(t)) {
      char a[GEN_SHAPE_STR_MAX], b[GEN_SHAPE_STR_MAX];
      return gen_fail_int("state tensor %d (%s %s) does not match the parameter (%s %s) or is not contiguous", i + 1,
                          gen_dtype_name(t->dtype), gen_shape_str(a, sizeof a, t->ndim, t->shape), gen_dtype_name(p->dtype),
                          gen_shape_str(b, sizeof b, p->ndim, p->shape));
    }
  }
  return 0;
}

#define F32(t) ((float *)gen_data_ptr(t))
#define F64(t) ((double *)gen_data_ptr(t))

/* One float32 element of Adam: g + wd p into the moments, then the (shrunk) parameter update. */
static inline void adam_f32(float *p, float *m, float *v, float g, float b1, float b2, float eps, float ss, float isb, float wd,
                            float sh) {
  float grad = g + wd * *p;
  *m = b1 * *m + (1 - b1) * grad;
  *v = b2 * *v + (1 - b2) * grad * grad;
  *p = *p * sh - ss * *m / (sqrtf(*v) * isb + eps);
}

int gen_adam_step(gen_tensor *p, gen_tensor *g, gen_tensor *m, gen_tensor *v, const gen_adam_config *c) {
  if (gen_optim_check(p, (gen_tensor *[]){g, m, v}, 3) < 0) return -1;
  int64_t n = gen_numel(p);
  double bc1 = 1 - pow(c->beta1, (double)c->step), bc2 = 1 - pow(c->beta2, (double)c->step);
  double step_size = c->lr / bc1, inv_sqrt_bc2 = 1 / sqrt(bc2);
  double l2 = c->decoupled ? 0 : c->weight_decay, shrink = c->decoupled ? 1 - c->lr * c->weight_decay : 1;
  if (p->dtype == GEN_FLOAT32) {
    float *pp = F32(p), *gg = F32(g), *mm = F32(m), *vv = F32(v);
    float b1 = (float)c->beta1, b2 = (float)c->beta2, eps = (float)c->eps, ss = (float)step_size;
    float isb = (float)inv_sqrt_bc2, wd = (float)l2, sh = (float)shrink;
    if (n > OPTIM_GRAIN) {
#pragma omp parallel for
      for (int64_t i = 0; i < n; i++) adam_f32(&pp[i], &mm[i], &vv[i], gg[i], b1, b2, eps, ss, isb, wd, sh);
    } else {
      for (int64_t i = 0; i < n; i++) adam_f32(&pp[i], &mm[i], &vv[i], gg[i], b1, b2, eps, ss, isb, wd, sh);
    }
  } else {
    double *pp = F64(p), *gg = F64(g), *mm = F64(m), *vv = F64(v);
    for (int64_t i = 0; i < n; i++) {
      double grad = gg[i] + l2 * pp[i];
      mm[i] = c->beta1 * mm[i] + (1 - c->beta1) * grad;
      vv[i] = c->beta2 * vv[i] + (1 - c->beta2) * grad * grad;
      pp[i] = pp[i] * shrink - step_size * mm[i] / (sqrt(vv[i]) * inv_sqrt_bc2 + c->eps);
    }
  }
  gen_bump_version(p);
  return 0;
}

int gen_sgd_step(gen_tensor *p, gen_tensor *g, gen_tensor *buf, const gen_sgd_config *c) {
  if (gen_optim_check(p, (gen_tensor *[]){g, buf}, 2) < 0) return -1;
  int64_t n = gen_numel(p);
  bool mom = c->momentum != 0 && buf;
  for (int64_t i = 0; i < n; i++) { /* double math: SGD is memory-bound, the cost is the same */
    double pi = gen_read_f64(gen_data_ptr(p) + i * gen_dtype_size(p->dtype), p->dtype);
    double d = gen_read_f64(gen_data_ptr(g) + i * gen_dtype_size(p->dtype), p->dtype) + c->weight_decay * pi;
    if (mom) {
      char *bp = gen_data_ptr(buf) + i * gen_dtype_size(p->dtype);
      double b = c->first_step ? d : c->momentum * gen_read_f64(bp, p->dtype) + (1 - c->dampening) * d;
      gen_write_f64(bp, p->dtype, b);
      d = c->nesterov ? d + c->momentum * b : b;
    }
    gen_write_f64(gen_data_ptr(p) + i * gen_dtype_size(p->dtype), p->dtype, pi - c->lr * d);
  }
  gen_bump_version(p);
  return 0;
}

int gen_rmsprop_step(gen_tensor *p, gen_tensor *g, gen_tensor *sq, gen_tensor *buf, gen_tensor *gavg,
                     const gen_rmsprop_config *c) {
  if (gen_optim_check(p, (gen_tensor *[]){g, sq, buf, gavg}, 4) < 0) return -1;
  int64_t n = gen_numel(p);
  size_t es = gen_dtype_size(p->dtype);
  gen_dtype dt = p->dtype;
  for (int64_t i = 0; i < n; i++) {
    size_t o = (size_t)i * es;
    double pi = gen_read_f64(gen_data_ptr(p) + o, dt);
    double d = gen_read_f64(gen_data_ptr(g) + o, dt) + c->weight_decay * pi;
    double s = c->alpha * gen_read_f64(gen_data_ptr(sq) + o, dt) + (1 - c->alpha) * d * d;
    gen_write_f64(gen_data_ptr(sq) + o, dt, s);
    double denom = s;
    if (c->centered && gavg) {
      double a = c->alpha * gen_read_f64(gen_data_ptr(gavg) + o, dt) + (1 - c->alpha) * d;
      gen_write_f64(gen_data_ptr(gavg) + o, dt, a);
      denom = s - a * a;
    }
    denom = sqrt(denom) + c->eps;
    if (c->momentum > 0 && buf) {
      double b = c->momentum * gen_read_f64(gen_data_ptr(buf) + o, dt) + d / denom;
      gen_write_f64(gen_data_ptr(buf) + o, dt, b);
      pi -= c->lr * b;
    } else {
      pi -= c->lr * d / denom;
    }
    gen_write_f64(gen_data_ptr(p) + o, dt, pi);
  }
  gen_bump_version(p);
  return 0;
}

int gen_ema_update(gen_tensor *ema, gen_tensor *p, double decay) {
  if (gen_optim_check(ema, (gen_tensor *[]){p}, 1) < 0) return -1;
  int64_t n = gen_numel(p);
  if (p->dtype == GEN_FLOAT32) {
    float *e = F32(ema), *x = F32(p), d = (float)decay;
    if (n > OPTIM_GRAIN) {
#pragma omp parallel for
      for (int64_t i = 0; i < n; i++) e[i] = d * e[i] + (1 - d) * x[i];
    } else {
      for (int64_t i = 0; i < n; i++) e[i] = d * e[i] + (1 - d) * x[i];
    }
  } else {
    double *e = F64(ema), *x = F64(p);
    for (int64_t i = 0; i < n; i++) e[i] = decay * e[i] + (1 - decay) * x[i];
  }
  gen_bump_version(ema);
  return 0;
}

double gen_sum_squares(gen_tensor *t) {
  double s = 0;
  int64_t n = gen_numel(t);
  for (int64_t i = 0; i < n; i++) {
    double v = gen_is_contiguous(t) ? gen_read_f64(gen_data_ptr(t) + (size_t)i * gen_dtype_size(t->dtype), t->dtype)
                                    : gen_get_flat(t, i);
    s += v * v;
  }
  return s;
}
