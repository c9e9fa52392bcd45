/*
 * ops_norm.c — batch, group and layer normalization (one fused kernel per direction) and dropout.
 *
 * Legend: x contiguous as [N, C, S] (S = prod of spatial dims). A "set" is what one mean and
 * variance describe: for group norm the (n, group) pairs, for batch norm each channel over all n
 * and s. The affine parameter of an element is indexed by its channel c. Layer norm (M rows of D
 * normalized elements, affine parameters indexed by the element) has its own row kernels below.
 *
 * Kernels walk memory in order, one (n, c) row of S elements at a time, with per-row partial sums
 * added into per-set totals in a fixed order afterwards (deterministic for any thread count).
 * Backward, per set with xhat = (x - mean) rstd and dxhat = dy w_c:
 *   dx = rstd (dxhat - mean(dxhat) - xhat mean(dxhat xhat)),  dw_c = sum dy xhat,  db_c = sum dy.
 * (Batch norm in eval mode is affine in x: dx = dy w_c rstd_c.) docs/derivations.md derives it.
 */
#include "ops_norm.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "autograd.h"
#include "ops_arith.h"
#include "ops_reduce.h"
#include "ops_shape.h"
#include "ops_unary.h"

typedef struct {
  int64_t n, c, s, groups; /* groups == 0: batch-norm sets (one per channel) */
} norm_layout;

static int64_t set_count(const norm_layout *l) { return l->groups ? l->n * l->groups : l->c; }

static inline int64_t set_of(const norm_layout *l, int64_t n, int64_t c) {
  return l->groups ? n * l->groups + c / (l->c / l->groups) : c;
}

static inline double rd(const gen_tensor *t, int64_t i) {
  return t->dtype == GEN_FLOAT32 ? ((const float *)gen_data_ptr(t))[i] : ((const double *)gen_data_ptr(t))[i];
}
static inline void wr(gen_tensor *t, int64_t i, double v) {
  if (t->dtype == GEN_FLOAT32)
    ((float *)gen_data_ptr(t))[i] = (float)v;
  else
    ((double *)gen_data_ptr(t))[i] = v;
}

/* Row sums over s of one (n, c) row: sum a, sum a*b (b may be NULL), shift subtracted from a. */
static void row_sums(const gen_tensor *a, const gen_tensor *b, int64_t base, int64_t len, double shift, double *s1, double *s2) {
  double x = 0, y = 0;
  if (a->dtype == GEN_FLOAT32) {
    const float *pa = (const float *)gen_data_ptr(a) + base, *pb = b ? (const float *)gen_data_ptr(b) + base : NULL;
    /* simd: a fixed lane-wise summation order, the same for any thread count */
    if (pb) {
#pragma omp simd reduction(+ : x, y)
      for (int64_t i = 0; i < len; i++) {
        double d = (double)pa[i] - shift;
        x += d;
        y += d * pb[i];
      }
    } else {
#pragma omp simd reduction(+ : x, y)
      for (int64_t i = 0; i < len; i++) {
        double d = (double)pa[i] - shift;
        x += d;
        y += d * d;
      }
    }
  } else {
    for (int64_t i = 0; i < len; i++) {
      double d = rd(a, base + i) - shift;
      x += d;
      y += b ? d * rd(b, base + i) : d * d;
    }
  }
  *s1 = x;
  *s2 = y;
}

/* out[base + i] = p * u[i] + q * v[i] + r (v may be NULL) over one row */
static void row_affine(gen_tensor *out, const gen_tensor *u, const gen_tensor *v, int64_t base, int64_t len, double p, double q,
                       double r) {
  if (out->dtype == GEN_FLOAT32) {
    float *o = (float *)gen_data_ptr(out) + base;
    const float *pu = (const float *)gen_data_ptr(u) + base, *pv = v ? (const float *)gen_data_ptr(v) + base : NULL;
    float fp = (float)p, fq = (float)q, fr = (float)r;
    if (pv)
      for (int64_t i = 0; i < len; i++) o[i] = fp * pu[i] + fq * pv[i] + fr;
    else
      for (int64_t i = 0; i < len; i++) o[i] = fp * pu[i] + fr;
  } else {
    for (int64_t i = 0; i < len; i++) wr(out, base + i, p * rd(u, base + i) + (v ? q * rd(v, base + i) : 0) + r);
  }
}

/* Scratch arrays of doubles from the tensor allocator: its cache hands back the same blocks every
 * step, where malloc's mmaps of a BatchNorm1d's per-element rows page-faulted on every call. */
static gen_tensor *doubles(int64_t n, bool zeroed) {
  int64_t shape[1] = {n > 0 ? n : 1};
  return zeroed ? gen_zeros(GEN_FLOAT64, 1, shape) : gen_empty(GEN_FLOAT64, 1, shape);
}

static double *dptr(gen_tensor *t) { return (double *)gen_data_ptr(t); }

/* Batch norm of a {N, C} input (S = 1, BatchNorm1d) walks columns instead of one-element rows:
 * blocks of COL_BLOCK channels are the unit of parallel work, each summing its N rows in order. */
#define COL_BLOCK 256
static bool by_columns(const norm_layout *l) { return l->groups == 0 && l->s == 1; }

/* Channels [bi COL_BLOCK, (bi + 1) COL_BLOCK) of column_sums, rows added in order. */
static void column_sums_block(const gen_tensor *x, const gen_tensor *dy, int64_t n, int64_t c, const double *shift, double *s1,
                              double *s2, int64_t bi) {
  int64_t c0 = bi * COL_BLOCK, c1 = c0 + COL_BLOCK < c ? c0 + COL_BLOCK : c;
  for (int64_t k = c0; k < c1; k++) s1[k] = s2[k] = 0;
  for (int64_t i = 0; i < n; i++) {
    if (x->dtype == GEN_FLOAT32) {
      const float *px = (const float *)gen_data_ptr(x) + i * c, *pg = dy ? (const float *)gen_data_ptr(dy) + i * c : NULL;
      for (int64_t k = c0; k < c1; k++) {
        double d = (double)px[k] - shift[k], g = pg ? (double)pg[k] : d;
        s1[k] += g;
        s2[k] += d * g;
      }
    } else {
      for (int64_t k = c0; k < c1; k++) {
        double d = rd(x, i * c + k) - shift[k], g = dy ? rd(dy, i * c + k) : d;
        s1[k] += g;
        s2[k] += d * g;
      }
    }
  }
}

/* s1[c] = sum over n of (x - shift[c]) and s2[c] of its square; with dy given, s1 = sum of dy
 * and s2 = sum of dy (x - shift) instead */
static void column_sums(const gen_tensor *x, const gen_tensor *dy, int64_t n, int64_t c, const double *shift, double *s1,
                        double *s2) {
  int64_t blocks = (c + COL_BLOCK - 1) / COL_BLOCK;
  if (n * c > GEN_PARALLEL_GRAIN) {
#pragma omp parallel for
    for (int64_t bi = 0; bi < blocks; bi++) column_sums_block(x, dy, n, c, shift, s1, s2, bi);
  } else {
    for (int64_t bi = 0; bi < blocks; bi++) column_sums_block(x, dy, n, c, shift, s1, s2, bi);
  }
}

/* Row i of column_affine. */
static void column_affine_row(gen_tensor *out, const gen_tensor *u, const gen_tensor *v, int64_t c, const double *p,
                              const double *q, const double *r, int64_t i) {
  if (out->dtype == GEN_FLOAT32) {
    float *o = (float *)gen_data_ptr(out) + i * c;
    const float *pu = (const float *)gen_data_ptr(u) + i * c, *pv = v ? (const float *)gen_data_ptr(v) + i * c : NULL;
    for (int64_t k = 0; k < c; k++) o[k] = (float)(p[k] * pu[k] + (pv ? q[k] * pv[k] : 0) + r[k]);
  } else {
    for (int64_t k = 0; k < c; k++) wr(out, i * c + k, p[k] * rd(u, i * c + k) + (v ? q[k] * rd(v, i * c + k) : 0) + r[k]);
  }
}

/* out[n][c] = p[c] u[n][c] + q[c] v[n][c] + r[c] (v may be NULL) */
static void column_affine(gen_tensor *out, const gen_tensor *u, const gen_tensor *v, int64_t n, int64_t c, const double *p,
                          const double *q, const double *r) {
  if (c == 0) return; /* n may still be huge (an expanded empty input): no rows to visit */
  if (n * c > GEN_PARALLEL_GRAIN) {
#pragma omp parallel for
    for (int64_t i = 0; i < n; i++) column_affine_row(out, u, v, c, p, q, r, i);
  } else {
    for (int64_t i = 0; i < n; i++) column_affine_row(out, u, v, c, p, q, r, i);
  }
}

/* Per-set mean and rstd (and biased variance) in one pass: sums of x - shift and its square in
 * double, shift being the set's first element (close enough to the mean that nothing cancels),
 * per (n, c) row and then added per set in a fixed order. */
static int set_stats(const norm_layout *l, const gen_tensor *x, double *mean, double *rstd, double *var_out, double eps) {
  int64_t sets = set_count(l), rows = l->n * l->c, per = (l->n * l->c * l->s) / (sets ? sets : 1);
  bool cols = by_columns(l);
  gen_tensor *t1 = doubles(cols ? sets : rows, false), *t2 = t1 ? doubles(cols ? sets : rows, false) : NULL;
  gen_tensor *ts = t2 ? doubles(sets, false) : NULL;
  if (!ts) {
    gen_release(t1);
    gen_release(t2);
    return -1;
  }
  double *r1 = dptr(t1), *r2 = dptr(t2), *shift = dptr(ts);
  for (int64_t k = 0; k < sets; k++) {
    int64_t n0 = l->groups ? k / l->groups : 0, c0 = l->groups ? k % l->groups * (l->c / l->groups) : k;
    shift[k] = per > 0 ? rd(x, (n0 * l->c + c0) * l->s) : 0;
  }
  if (cols) {
    column_sums(x, NULL, l->n, l->c, shift, r1, r2);
    memcpy(mean, r1, sizeof(double) * (size_t)sets);
    memcpy(rstd, r2, sizeof(double) * (size_t)sets);
  } else {
    if (rows * l->s > GEN_PARALLEL_GRAIN) {
#pragma omp parallel for
      for (int64_t row = 0; row < rows; row++)
        row_sums(x, NULL, row * l->s, l->s, shift[set_of(l, row / l->c, row % l->c)], &r1[row], &r2[row]);
    } else {
      for (int64_t row = 0; row < rows; row++)
        row_sums(x, NULL, row * l->s, l->s, shift[set_of(l, row / l->c, row % l->c)], &r1[row], &r2[row]);
    }
    for (int64_t k = 0; k < sets; k++) mean[k] = rstd[k] = 0;
    for (int64_t row = 0; row < rows; row++) {
      int64_t k = set_of(l, row / l->c, row % l->c);
      mean[k] += r1[row];
      rstd[k] += r2[row];
    }
  }
  for (int64_t k = 0; k < sets; k++) {
    double m = mean[k] / (double)per, var = rstd[k] / (double)per - m * m;
    var = var > 0 ? var : 0;
    mean[k] = shift[k] + m;
    if (var_out) var_out[k] = var;
    rstd[k] = 1 / sqrt(var + eps);
  }
  gen_release(t1);
  gen_release(t2);
  gen_release(ts);
  return 0;
}

/* (n, c) row row of norm_forward. */
static void norm_forward_row(gen_tensor *y, const gen_tensor *x, const gen_tensor *w, const gen_tensor *b, const norm_layout *l,
                             const double *mean, const double *rstd, int64_t row) {
  int64_t c = row % l->c, k = set_of(l, row / l->c, c);
  double a = rstd[k] * (w ? rd(w, c) : 1), shift = (b ? rd(b, c) : 0) - mean[k] * a;
  row_affine(y, x, NULL, row * l->s, l->s, a, 0, shift);
}

/* y = (x - mean) rstd w + b, per (n, c) row: one multiply-add per element */
static int norm_forward(const norm_layout *l, const gen_tensor *x, gen_tensor *y, const gen_tensor *w, const gen_tensor *b,
                        const double *mean, const double *rstd) {
  int64_t rows = l->n * l->c;
  if (rows == 0 || l->s == 0) return 0; /* nothing to write, however many empty rows there are */
  if (by_columns(l)) {
    gen_tensor *ta = doubles(l->c, false), *tb = ta ? doubles(l->c, false) : NULL;
    if (!tb) {
      gen_release(ta);
      return -1;
    }
    double *a = dptr(ta), *shift = dptr(tb);
    for (int64_t c = 0; c < l->c; c++) {
      a[c] = rstd[c] * (w ? rd(w, c) : 1);
      shift[c] = (b ? rd(b, c) : 0) - mean[c] * a[c];
    }
    column_affine(y, x, NULL, l->n, l->c, a, NULL, shift);
    gen_release(ta);
    gen_release(tb);
    return 0;
  }
  if (rows * l->s > GEN_PARALLEL_GRAIN) {
#pragma omp parallel for
    for (int64_t row = 0; row < rows; row++) norm_forward_row(y, x, w, b, l, mean, rstd, row);
  } else {
    for (int64_t row = 0; row < rows; row++) norm_forward_row(y, x, w, b, l, mean, rstd, row);
  }
  return 0;
}

/* dx of (n, c) row row in norm_backward. */
static void norm_dx_row(gen_tensor *dx, const gen_tensor *dy, const gen_tensor *x, const gen_tensor *w, const norm_layout *l,
                        const double *mean, const double *rstd, const double *sa, const double *sb, int64_t per, bool fixed,
                        int64_t row) {
  int64_t c = row % l->c, k = set_of(l, row / l->c, c);
  double r = rstd[k], wc = w ? rd(w, c) : 1;
  if (fixed) {
    row_affine(dx, dy, NULL, row * l->s, l->s, r * wc, 0, 0);
  } else { /* dx = r (dy w - a - xhat bb), xhat = (x - mean) r */
    double a = sa[k] / (double)per, bb = sb[k] / (double)per;
    row_affine(dx, dy, x, row * l->s, l->s, r * wc, -r * r * bb, -r * a + r * r * bb * mean[k]);
  }
}

/* pb[row] = sum dy and pw[row] = sum dy xhat over (n, c) row row, in norm_backward. */
static void norm_param_sums_row(double *pb, double *pw, const gen_tensor *dy, const gen_tensor *x, const norm_layout *l,
                                const double *mean, const double *rstd, int64_t row) {
  int64_t k = set_of(l, row / l->c, row % l->c);
  double s_dy, s_dyx; /* sum dy, sum dy (x - mean) */
  row_sums(dy, x, row * l->s, l->s, 0, &s_dy, &s_dyx);
  pb[row] = s_dy;
  pw[row] = rstd[k] * (s_dyx - mean[k] * s_dy);
}

typedef struct {
  norm_layout layout;
  bool fixed; /* eval-mode batch norm: the statistics are constants */
  bool has_w;
  double eps; /* for the create_graph backward, which recomputes the statistics */
} norm_attrs;

/* saved: x, stats {2, sets} float64 (mean; rstd), w (optional) */
static int norm_backward(gen_node *node, gen_tensor *g, gen_tensor **grad_in) {
  const norm_attrs *at = GEN_NODE_ATTRS(node, norm_attrs);
  gen_tensor *x = gen_node_saved(node, 0), *stats = x ? gen_node_saved(node, 1) : NULL;
  if (!stats) return -1;
  gen_tensor *w = at->has_w ? gen_node_saved(node, 2) : NULL;
  if (at->has_w && !w) return -1;
  norm_layout l = at->layout;
  bool fixed = at->fixed;
  const double *mean = (const double *)gen_data_ptr(stats), *rstd = mean + stats->shape[1];
  gen_tensor *dy = gen_contiguous_raw(g);
  if (!dy) return -1;
  int64_t sets = set_count(&l), rows = l.n * l.c, per = (rows * l.s) / (sets ? sets : 1);
  bool cols = by_columns(&l);
  gen_tensor *dx = NULL;
  int rc = -1;
  /* per (n, c) row (per channel by columns): pb = sum dy, pw = sum dy xhat, so dw_c and db_c are
   * their sums over n; sa, sb per set: the sums of dxhat = dy w and of dxhat xhat */
  int64_t partials = cols ? l.c : rows;
  gen_tensor *tpb = doubles(partials, false), *tpw = tpb ? doubles(partials, false) : NULL;
  gen_tensor *tsa = tpw ? doubles(sets, true) : NULL, *tsb = tsa ? doubles(sets, true) : NULL;
  gen_tensor *tp = tsb && cols ? doubles(3 * l.c, false) : NULL;
  if (!tsb || (cols && !tp)) goto done;
  double *pb = dptr(tpb), *pw = dptr(tpw), *sa = dptr(tsa), *sb = dptr(tsb);
  if (cols) {
    column_sums(x, dy, l.n, l.c, mean, pb, pw); /* pw = sum dy (x - mean) for now */
    for (int64_t c = 0; c < l.c; c++) pw[c] *= rstd[c];
  } else {
    if (rows * l.s > GEN_PARALLEL_GRAIN) {
#pragma omp parallel for
      for (int64_t row = 0; row < rows; row++) norm_param_sums_row(pb, pw, dy, x, &l, mean, rstd, row);
    } else {
      for (int64_t row = 0; row < rows; row++) norm_param_sums_row(pb, pw, dy, x, &l, mean, rstd, row);
    }
  }
  if (gen_edge_live(&node->edges[0])) {
    if (!(dx = gen_empty(x->dtype, x->ndim, x->shape))) goto done;
    for (int64_t row = 0; row < partials; row++) {
      int64_t c = row % l.c, k = cols ? c : set_of(&l, row / l.c, c);
      double wc = w ? rd(w, c) : 1;
      sa[k] += wc * pb[row];
      sb[k] += wc * pw[row];
    }
    if (cols) { /* dx = p dy + q x + r per channel, the row formula below */
      double *p = dptr(tp), *q = p + l.c, *r0 = q + l.c;
      for (int64_t c = 0; c < l.c; c++) {
        double r = rstd[c], wc = w ? rd(w, c) : 1, a = sa[c] / (double)per, bb = sb[c] / (double)per;
        p[c] = r * wc;
        q[c] = fixed ? 0 : -r * r * bb;
        r0[c] = fixed ? 0 : -r * a + r * r * bb * mean[c];
      }
      column_affine(dx, dy, fixed ? NULL : x, l.n, l.c, p, q, r0);
    } else {
      if (rows * l.s > GEN_PARALLEL_GRAIN) {
#pragma omp parallel for
        for (int64_t row = 0; row < rows; row++) norm_dx_row(dx, dy, x, w, &l, mean, rstd, sa, sb, per, fixed, row);
      } else {
        for (int64_t row = 0; row < rows; row++) norm_dx_row(dx, dy, x, w, &l, mean, rstd, sa, sb, per, fixed, row);
      }
    }
  }
  grad_in[0] = dx;
  dx = NULL;
  for (int i = 1; i <= 2; i++) {
    if (node->n_inputs <= i || !gen_edge_live(&node->edges[i])) continue;
    const gen_edge *e = &node->edges[i];
    gen_tensor *acc = gen_zeros(e->dtype, e->ndim, e->shape);
    if (!acc) goto done;
    const double *src = i == 1 ? pw : pb;
    for (int64_t c = 0; c < l.c; c++) {
      double sum = 0;
      for (int64_t n = 0; n < (cols ? 1 : l.n); n++) sum += src[n * l.c + c];
      wr(acc, c, sum);
    }
    grad_in[i] = acc;
  }
  rc = 0;
done:
  gen_release(dx);
  gen_release(tpb);
  gen_release(tpw);
  gen_release(tsa);
  gen_release(tsb);
  gen_release(tp);
  gen_release(dy);
  return rc;
}

static int check_affine(const gen_tensor *t, int64_t count, gen_dtype dt, const char *what) {
  if (!t) return 0;
  if (gen_numel(t) != count || !gen_is_contiguous(t))
    return gen_fail_int("%s must have %lld elements (contiguous), got %lld", what, (long long)count, (long long)gen_numel(t));
  if (t->dtype != dt) return gen_fail_int("%s is %s but the input is %s", what, gen_dtype_name(t->dtype), gen_dtype_name(dt));
  return 0;
}

/* ---- create_graph: the same backward in differentiable ops ----
 * The statistics are recomputed from x as ops (mean, rsqrt of the biased variance + eps), so the
 * second derivative sees how they depend on x. A "set" is what one mean and rstd describe: group
 * norm views x as {N, G, C/G*S} and reduces dim 3, batch norm reduces {N, C, S} over N and S,
 * layer norm {M, D} over D (no copies); then, per set,
 *   dx = rstd (dxhat - mean(dxhat) - xhat mean(dxhat xhat)),  dxhat = dy w.  */
typedef enum { SETS_GROUP, SETS_BATCH, SETS_ROWS } sets_kind;

typedef struct {
  sets_kind kind;
  int64_t n, c, s, groups; /* rows: n = M, c = D */
} sets_layout;

/* t in the [N, C, S] (or [M, D]) layout -> the sets layout: group norm's {N, G, P} (a view);
 * batch norm and layer norm keep theirs and reduce over several dims instead (set_mean). */
static gen_tensor *to_sets(gen_arena *A, gen_tensor *t, const sets_layout *l) {
  if (l->kind == SETS_GROUP) return GEN_KEEP(A, gen_reshape(t, 3, (int64_t[3]){l->n, l->groups, l->c / l->groups * l->s}));
  return t;
}

static gen_tensor *from_sets(gen_arena *A, gen_tensor *t, const sets_layout *l) {
  if (l->kind == SETS_GROUP) return GEN_KEEP(A, gen_reshape(t, 3, (int64_t[3]){l->n, l->c, l->s}));
  return t;
}

/* The mean of each set, kept broadcastable: over dim 2 of {N, G, P}, dims 2 and 0 of {N, C, S},
 * dim 1 of {M, D}. */
static gen_tensor *set_mean(gen_arena *A, gen_tensor *t, const sets_layout *l) {
  switch (l->kind) {
  case SETS_GROUP: return GEN_KEEP(A, gen_mean(t, 2, true));
  case SETS_BATCH: return GEN_KEEP(A, gen_mean(GEN_KEEP(A, gen_mean(t, 2, true)), 0, true));
  default: return GEN_KEEP(A, gen_mean(t, 1, true));
  }
}

static gen_tensor *scalar_like(gen_arena *A, const gen_tensor *t, double v) { return GEN_KEEP(A, gen_scalar(t->dtype, v)); }

/* grad_in for inputs (x, w, b) of a norm over sets; stats (mean; rstd) are used only when fixed */
static int norm_graph_common(gen_node *node, gen_tensor *g, gen_tensor **grad_in, const sets_layout *l, double eps, bool fixed,
                             gen_tensor *stats) {
  gen_arena ar = {0}, *A = &ar;
  bool rows = l->kind == SETS_ROWS;
  int nd = rows ? 2 : 3;
  int64_t shape3[3] = {l->n, l->c, l->s};
  gen_tensor *x = GEN_KEEP(A, gen_node_saved_input(node, 0, 0));
  gen_tensor *w = NULL;
  bool has_w = node->n_saved > 2;
  if (has_w) w = GEN_KEEP(A, gen_node_saved_input(node, 2, 1));
  gen_tensor *x3 = x ? GEN_KEEP(A, gen_reshape(x, nd, shape3)) : NULL;
  gen_tensor *g3 = GEN_KEEP(A, gen_reshape(g, nd, shape3));
  /* the affine parameter, broadcastable against the [N, C, S] / [M, D] layout */
  gen_tensor *wb = has_w && w ? GEN_KEEP(A, gen_reshape(w, nd, rows ? (int64_t[3]){1, l->c} : (int64_t[3]){1, l->c, 1})) : NULL;
  gen_tensor *xhat = NULL, *dx = NULL;
  gen_tensor *dxhat = wb ? GEN_KEEP(A, gen_mul(g3, wb)) : g3;
  if (fixed && !ar.failed) { /* eval batch norm: mean and rstd are constants from stats */
    gen_tensor *m = GEN_KEEP(A, gen_empty(x->dtype, 3, (int64_t[3]){1, l->c, 1}));
    gen_tensor *r = GEN_KEEP(A, gen_empty(x->dtype, 3, (int64_t[3]){1, l->c, 1}));
    if (!ar.failed) {
      const double *pm = (const double *)gen_data_ptr(stats);
      for (int64_t k = 0; k < l->c; k++) {
        wr(m, k, pm[k]);
        wr(r, k, pm[l->c + k]);
      }
    }
    xhat = GEN_KEEP(A, gen_mul(GEN_KEEP(A, gen_sub(x3, m)), r));
    dx = GEN_KEEP(A, gen_mul(dxhat, r));
  } else if (!ar.failed) {
    gen_tensor *xs = to_sets(A, x3, l);
    gen_tensor *mu = set_mean(A, xs, l);
    gen_tensor *dev = GEN_KEEP(A, gen_sub(xs, mu));
    gen_tensor *var = set_mean(A, GEN_KEEP(A, gen_mul(dev, dev)), l);
    gen_tensor *rstd = GEN_KEEP(A, gen_unary(GEN_UN_RSQRT, GEN_KEEP(A, gen_add(var, scalar_like(A, x, eps))), 0, 0));
    gen_tensor *xh = GEN_KEEP(A, gen_mul(dev, rstd));
    gen_tensor *d = to_sets(A, dxhat, l);
    gen_tensor *md = set_mean(A, d, l);
    gen_tensor *mdx = set_mean(A, GEN_KEEP(A, gen_mul(d, xh)), l);
    gen_tensor *inner = GEN_KEEP(A, gen_sub(GEN_KEEP(A, gen_sub(d, md)), GEN_KEEP(A, gen_mul(xh, mdx))));
    dx = from_sets(A, GEN_KEEP(A, gen_mul(rstd, inner)), l);
    xhat = from_sets(A, xh, l);
  }
  if (!ar.failed && gen_edge_live(&node->edges[0]))
    if ((grad_in[0] = GEN_KEEP(A, gen_reshape(dx, node->edges[0].ndim, node->edges[0].shape)))) gen_retain(grad_in[0]);
  for (int i = 1; i <= 2 && !ar.failed; i++) { /* dw = sum dy xhat, db = sum dy over everything but the parameter's axis */
    if (node->n_inputs <= i || !gen_edge_live(&node->edges[i])) continue;
    gen_tensor *t = i == 1 ? GEN_KEEP(A, gen_mul(g3, xhat)) : g3;
    gen_tensor *r = rows ? GEN_KEEP(A, gen_sum(t, 0, false)) : GEN_KEEP(A, gen_sum(GEN_KEEP(A, gen_sum(t, 2, false)), 0, false));
    if ((grad_in[i] = GEN_KEEP(A, gen_reshape(r, node->edges[i].ndim, node->edges[i].shape)))) gen_retain(grad_in[i]);
  }
  bool failed = ar.failed;
  gen_arena_free(A);
  return failed ? -1 : 0;
}

static int norm_graph_backward(gen_node *node, gen_tensor *g, gen_tensor **grad_in) {
  const norm_attrs *at = GEN_NODE_ATTRS(node, norm_attrs);
  gen_tensor *stats = gen_node_saved(node, 1);
  if (!stats) return -1;
  sets_layout l = {at->layout.groups ? SETS_GROUP : SETS_BATCH, at->layout.n, at->layout.c, at->layout.s, at->layout.groups};
  return norm_graph_common(node, g, grad_in, &l, at->eps, at->fixed, stats);
}

/* How normalize() runs: which op, the layout, and where its statistics come from or go. */
typedef struct {
  gen_op op;
  norm_layout layout;
  double eps;
  /* fixed: normalize with given_mean and given_rstd (batch norm in eval mode); otherwise compute
   * the statistics, and copy the means and biased variances out to mean_out / var_out when they
   * are not NULL (the running-stat update). */
  bool fixed;
  const double *given_mean, *given_rstd;
  double *mean_out, *var_out;
} norm_args;

static gen_tensor *normalize(gen_tensor *x, gen_tensor *w, gen_tensor *b, const norm_args *a) {
  const norm_layout *l = &a->layout;
  int64_t sets = set_count(l);
  gen_tensor *cx = gen_contiguous_raw(x);
  gen_tensor *stats = cx ? gen_empty(GEN_FLOAT64, 2, (int64_t[2]){2, sets}) : NULL;
  gen_tensor *y = stats ? gen_empty(x->dtype, x->ndim, x->shape) : NULL;
  if (!y) {
    gen_release(cx);
    gen_release(stats);
    return NULL;
  }
  double *mean = (double *)gen_data_ptr(stats), *rstd = mean + sets;
  if (a->fixed) {
    memcpy(mean, a->given_mean, sizeof(double) * (size_t)sets);
    memcpy(rstd, a->given_rstd, sizeof(double) * (size_t)sets);
  }
  if ((!a->fixed && set_stats(l, cx, mean, rstd, a->var_out, a->eps) < 0) || norm_forward(l, cx, y, w, b, mean, rstd) < 0) {
    gen_release(cx);
    gen_release(stats);
    gen_release(y);
    return NULL;
  }
  if (a->mean_out) memcpy(a->mean_out, mean, sizeof(double) * (size_t)sets);
  norm_attrs at = {*l, a->fixed, w != NULL, a->eps};
  y = gen_record(y, &(gen_record_args){.op = a->op,
                                       .backward = norm_backward,
                                       .graph_backward = norm_graph_backward,
                                       .inputs = GEN_TENSORS(x, w, b),
                                       .saved = GEN_TENSORS(cx, stats, w),
                                       .attrs = GEN_ATTRS(&at)});
  gen_release(cx);
  gen_release(stats);
  return y;
}

static int check_input(const gen_tensor *x) {
  if (x->ndim < 2) {
    char s[GEN_SHAPE_STR_MAX];
    return gen_fail_int("input must be {N, C, ...}, got %s", gen_shape_str(s, sizeof s, x->ndim, x->shape));
  }
  if (!gen_dtype_is_float(x->dtype)) return gen_fail_int("input must be float, got %s", gen_dtype_name(x->dtype));
  return 0;
}

gen_tensor *gen_group_norm(gen_tensor *x, int64_t groups, gen_tensor *w, gen_tensor *b, double eps) {
  if (check_input(x) < 0) return NULL;
  if (groups < 1 || x->shape[1] % groups != 0)
    return gen_fail("%lld groups do not divide %lld channels", (long long)groups, (long long)x->shape[1]);
  if (check_affine(w, x->shape[1], x->dtype, "weight") < 0 || check_affine(b, x->shape[1], x->dtype, "bias") < 0) return NULL;
  norm_layout l = {x->shape[0], x->shape[1], gen_numel_of(x->ndim - 2, x->shape + 2), groups};
  return normalize(x, w, b, &(norm_args){.op = GEN_OP_GROUP_NORM, .layout = l, .eps = eps});
}

/* ---------------------------------------------------------------- layer norm
 * Legend: x as [M, D], D = prod(normalized shape) contiguous; w, b [D]. Its own kernels rather than
 * the [N, C, S] ones above: there the affine parameters follow the channel, here the element, and
 * rows of D elements are what one mean and rstd describe. Forward and dx are parallel over rows;
 * dw and db are sums over rows, parallel over column blocks, each adding its rows in order. */

#define LN_COLS 256

static void ln_row_stats(const gen_tensor *x, int64_t row, int64_t dsize, double eps, double *mean, double *rstd) {
  double s1, s2, unused;
  row_sums(x, NULL, row * dsize, dsize, 0, &s1, &unused);
  double mu = s1 / (double)dsize;
  row_sums(x, NULL, row * dsize, dsize, mu, &unused, &s2);
  *mean = mu;
  *rstd = 1 / sqrt(s2 / (double)dsize + eps);
}

static void ln_row_forward(gen_tensor *y, const gen_tensor *x, const gen_tensor *w, const gen_tensor *b, int64_t row,
                           int64_t dsize, double mean, double rstd) {
  int64_t base = row * dsize;
  if (x->dtype == GEN_FLOAT32) {
    const float *px = (const float *)gen_data_ptr(x) + base, *pw = w ? (const float *)gen_data_ptr(w) : NULL;
    const float *pb = b ? (const float *)gen_data_ptr(b) : NULL;
    float *py = (float *)gen_data_ptr(y) + base, m = (float)mean, r = (float)rstd;
    for (int64_t d = 0; d < dsize; d++) {
      float v = (px[d] - m) * r;
      py[d] = (pw ? v * pw[d] : v) + (pb ? pb[d] : 0.0f);
    }
  } else {
    for (int64_t d = 0; d < dsize; d++) {
      double v = (rd(x, base + d) - mean) * rstd;
      wr(y, base + d, (w ? v * rd(w, d) : v) + (b ? rd(b, d) : 0));
    }
  }
}

/* dx = r (dxhat - mean(dxhat) - xhat mean(dxhat xhat)), dxhat = dy w, over one row */
static void ln_row_backward(gen_tensor *dx, const gen_tensor *dy, const gen_tensor *x, const gen_tensor *w, int64_t row,
                            int64_t dsize, double mean, double rstd) {
  int64_t base = row * dsize;
  double sa = 0, sb = 0;
  if (x->dtype == GEN_FLOAT32) {
    const float *px = (const float *)gen_data_ptr(x) + base, *pg = (const float *)gen_data_ptr(dy) + base;
    const float *pw = w ? (const float *)gen_data_ptr(w) : NULL;
    float *po = (float *)gen_data_ptr(dx) + base, m = (float)mean, r = (float)rstd;
#pragma omp simd reduction(+ : sa, sb)
    for (int64_t d = 0; d < dsize; d++) {
      float gx = pw ? pg[d] * pw[d] : pg[d];
      sa += gx;
      sb += gx * ((px[d] - m) * r);
    }
    float a = (float)(sa / (double)dsize), bb = (float)(sb / (double)dsize);
    for (int64_t d = 0; d < dsize; d++) {
      float gx = pw ? pg[d] * pw[d] : pg[d];
      po[d] = r * (gx - a - (px[d] - m) * r * bb);
    }
  } else {
    for (int64_t d = 0; d < dsize; d++) {
      double gx = rd(dy, base + d) * (w ? rd(w, d) : 1);
      sa += gx;
      sb += gx * (rd(x, base + d) - mean) * rstd;
    }
    double a = sa / (double)dsize, bb = sb / (double)dsize;
    for (int64_t d = 0; d < dsize; d++) {
      double gx = rd(dy, base + d) * (w ? rd(w, d) : 1);
      wr(dx, base + d, rstd * (gx - a - (rd(x, base + d) - mean) * rstd * bb));
    }
  }
}

/* Columns [blk LN_COLS, (blk + 1) LN_COLS) of dw and db (either may be NULL), rows added in order. */
static void ln_param_grad_block(gen_tensor *dw, gen_tensor *db, const gen_tensor *x, const gen_tensor *dy, const double *mean,
                                const double *rstd, int64_t rows, int64_t dsize, int64_t blk) {
  int64_t d0 = blk * LN_COLS, nd = dsize - d0 < LN_COLS ? dsize - d0 : LN_COLS;
  double aw[LN_COLS] = {0}, ab[LN_COLS] = {0};
  for (int64_t row = 0; row < rows; row++) {
    int64_t base = row * dsize + d0;
    double m = mean[row], r = rstd[row];
    if (x->dtype == GEN_FLOAT32) {
      const float *px = (const float *)gen_data_ptr(x) + base, *pg = (const float *)gen_data_ptr(dy) + base;
      for (int64_t d = 0; d < nd; d++) {
        aw[d] += (double)pg[d] * (((double)px[d] - m) * r);
        ab[d] += pg[d];
      }
    } else {
      for (int64_t d = 0; d < nd; d++) {
        aw[d] += rd(dy, base + d) * (rd(x, base + d) - m) * r;
        ab[d] += rd(dy, base + d);
      }
    }
  }
  for (int64_t d = 0; d < nd; d++) {
    if (dw) wr(dw, d0 + d, aw[d]);
    if (db) wr(db, d0 + d, ab[d]);
  }
}

typedef struct {
  int64_t rows, dsize; /* M, D */
  bool has_w;
  double eps;
} layer_norm_attrs;

/* saved: x (contiguous), stats {2, M} float64 (mean; rstd), w (optional) */
static int layer_norm_backward(gen_node *node, gen_tensor *g, gen_tensor **grad_in) {
  const layer_norm_attrs *at = GEN_NODE_ATTRS(node, layer_norm_attrs);
  gen_tensor *x = gen_node_saved(node, 0), *stats = x ? gen_node_saved(node, 1) : NULL;
  gen_tensor *w = stats && at->has_w ? gen_node_saved(node, 2) : NULL;
  if (!stats || (at->has_w && !w)) return -1;
  int64_t rows = at->rows, dsize = at->dsize;
  const double *mean = (const double *)gen_data_ptr(stats), *rstd = mean + rows;
  gen_tensor *dy = gen_contiguous_raw(g);
  if (!dy) return -1;
  gen_tensor *dx = NULL, *dw = NULL, *db = NULL;
  if (gen_edge_live(&node->edges[0])) {
    if (!(dx = gen_empty(x->dtype, x->ndim, x->shape))) goto fail;
    if (rows * dsize > GEN_PARALLEL_GRAIN) {
#pragma omp parallel for
      for (int64_t row = 0; row < rows; row++) ln_row_backward(dx, dy, x, w, row, dsize, mean[row], rstd[row]);
    } else {
      for (int64_t row = 0; row < rows; row++) ln_row_backward(dx, dy, x, w, row, dsize, mean[row], rstd[row]);
    }
  }
  bool want_w = node->n_inputs > 1 && gen_edge_live(&node->edges[1]),
       want_b = node->n_inputs > 2 && gen_edge_live(&node->edges[2]);
  if (want_w && !(dw = gen_empty(node->edges[1].dtype, node->edges[1].ndim, node->edges[1].shape))) goto fail;
  if (want_b && !(db = gen_empty(node->edges[2].dtype, node->edges[2].ndim, node->edges[2].shape))) goto fail;
  if (dw || db) {
    int64_t blocks = (dsize + LN_COLS - 1) / LN_COLS;
    if (rows * dsize > GEN_PARALLEL_GRAIN) {
#pragma omp parallel for
      for (int64_t blk = 0; blk < blocks; blk++) ln_param_grad_block(dw, db, x, dy, mean, rstd, rows, dsize, blk);
    } else {
      for (int64_t blk = 0; blk < blocks; blk++) ln_param_grad_block(dw, db, x, dy, mean, rstd, rows, dsize, blk);
    }
  }
  gen_release(dy);
  grad_in[0] = dx;
  if (want_w) grad_in[1] = dw;
  if (want_b) grad_in[2] = db;
  return 0;
fail:
  gen_release(dy);
  gen_release(dx);
  gen_release(dw);
  gen_release(db);
  return -1;
}

static int layer_norm_graph_backward(gen_node *node, gen_tensor *g, gen_tensor **grad_in) {
  const layer_norm_attrs *at = GEN_NODE_ATTRS(node, layer_norm_attrs);
  sets_layout l = {SETS_ROWS, at->rows, at->dsize, 1, 0};
  return norm_graph_common(node, g, grad_in, &l, at->eps, false, NULL);
}

gen_tensor *gen_layer_norm(gen_tensor *x, int nd, const int64_t *shape, gen_tensor *w, gen_tensor *b, double eps) {
  char sx[GEN_SHAPE_STR_MAX], sn[GEN_SHAPE_STR_MAX];
  bool ok = nd >= 1 && nd <= x->ndim && gen_dtype_is_float(x->dtype);
  for (int d = 0; ok && d < nd; d++) ok = x->shape[x->ndim - nd + d] == shape[d];
  if (!ok)
    return gen_fail("normalized shape %s does not match the end of the input's %s %s", gen_shape_str(sn, sizeof sn, nd, shape),
                    gen_dtype_name(x->dtype), gen_shape_str(sx, sizeof sx, x->ndim, x->shape));
  int64_t dsize = gen_numel_of(nd, shape);
  if (check_affine(w, dsize, x->dtype, "weight") < 0 || check_affine(b, dsize, x->dtype, "bias") < 0) return NULL;
  int64_t rows = dsize ? gen_numel(x) / dsize : 0;
  gen_tensor *cx = gen_contiguous_raw(x);
  gen_tensor *stats = cx ? gen_empty(GEN_FLOAT64, 2, (int64_t[2]){2, rows}) : NULL;
  gen_tensor *y = stats ? gen_empty(x->dtype, x->ndim, x->shape) : NULL;
  if (y) {
    double *mean = (double *)gen_data_ptr(stats), *rstd = mean + rows;
    if (rows * dsize > GEN_PARALLEL_GRAIN) {
#pragma omp parallel for
      for (int64_t row = 0; row < rows; row++) {
        ln_row_stats(cx, row, dsize, eps, &mean[row], &rstd[row]);
        ln_row_forward(y, cx, w, b, row, dsize, mean[row], rstd[row]);
      }
    } else {
      for (int64_t row = 0; row < rows; row++) {
        ln_row_stats(cx, row, dsize, eps, &mean[row], &rstd[row]);
        ln_row_forward(y, cx, w, b, row, dsize, mean[row], rstd[row]);
      }
    }
    layer_norm_attrs at = {rows, dsize, w != NULL, eps};
    y = gen_record(y, &(gen_record_args){.op = GEN_OP_LAYER_NORM,
                                         .backward = layer_norm_backward,
                                         .graph_backward = layer_norm_graph_backward,
                                         .inputs = GEN_TENSORS(x, w, b),
                                         .saved = GEN_TENSORS(cx, stats, w),
                                         .attrs = GEN_ATTRS(&at)});
  }
  gen_release(cx);
  gen_release(stats);
  return y;
}

gen_tensor *gen_batch_norm(gen_tensor *x, gen_tensor *running_mean, gen_tensor *running_var, gen_tensor *w, gen_tensor *b,
                           bool training, double momentum, double eps) {
  if (check_input(x) < 0) return NULL;
  int64_t c = x->shape[1];
  if (check_affine(w, c, x->dtype, "weight") < 0 || check_affine(b, c, x->dtype, "bias") < 0 ||
      check_affine(running_mean, c, x->dtype, "running_mean") < 0 || check_affine(running_var, c, x->dtype, "running_var") < 0)
    return NULL;
  if ((running_mean == NULL) != (running_var == NULL)) return gen_fail("give both running_mean and running_var, or neither");
  if (!training && !running_mean) return gen_fail("evaluation mode needs running statistics");
  norm_layout l = {x->shape[0], c, gen_numel_of(x->ndim - 2, x->shape + 2), 0};
  int64_t per = l.n * l.s;
  if (training && per < 2) return gen_fail("training needs more than one value per channel, got input of %lld", (long long)per);
  double stack_mean[256], stack_rstd[256], stack_var[256];
  double *mean = c <= 256 ? stack_mean : malloc(sizeof(double) * (size_t)c);
  double *rstd = c <= 256 ? stack_rstd : malloc(sizeof(double) * (size_t)c);
  double *var = c <= 256 ? stack_var : malloc(sizeof(double) * (size_t)c);
  gen_tensor *y = NULL;
  if (!mean || !rstd || !var) {
    gen_fail("out of memory");
    goto done;
  }
  if (!training)
    for (int64_t k = 0; k < c; k++) {
      mean[k] = rd(running_mean, k);
      rstd[k] = 1 / sqrt(rd(running_var, k) + eps);
    }
  y = normalize(x, w, b,
                &(norm_args){.op = GEN_OP_BATCH_NORM,
                             .layout = l,
                             .eps = eps,
                             .fixed = !training,
                             .given_mean = mean,
                             .given_rstd = rstd,
                             .mean_out = training ? mean : NULL,
                             .var_out = training ? var : NULL});
  if (y && training && running_mean) {
    for (int64_t k = 0; k < c; k++) {
      wr(running_mean, k, (1 - momentum) * rd(running_mean, k) + momentum * mean[k]);
      wr(running_var, k, (1 - momentum) * rd(running_var, k) + momentum * var[k] * (double)per / (double)(per - 1));
    }
    gen_bump_version(running_mean);
    gen_bump_version(running_var);
  }
done:
  if (c > 256) {
    free(mean);
    free(rstd);
    free(var);
  }
  return y;
}

/* ---------------------------------------------------------------- dropout */

/* saved: mask (0 or 1/(1-p), x's dtype and shape) */
static int dropout_backward(gen_node *n, gen_tensor *g, gen_tensor **grad_in) {
  gen_tensor *mask = gen_node_saved(n, 0);
  if (!mask) return -1;
  gen_tensor *cg = gen_contiguous_raw(g), *out = cg ? gen_empty(g->dtype, g->ndim, g->shape) : NULL;
  if (out) {
    int64_t k = gen_numel(out);
    if (out->dtype == GEN_FLOAT32) {
      const float *pg = (const float *)gen_data_ptr(cg), *pm = (const float *)gen_data_ptr(mask);
      float *po = (float *)gen_data_ptr(out);
      if (k > GEN_PARALLEL_GRAIN) {
#pragma omp parallel for
        for (int64_t i = 0; i < k; i++) po[i] = pg[i] * pm[i];
      } else {
        for (int64_t i = 0; i < k; i++) po[i] = pg[i] * pm[i];
      }
    } else {
      for (int64_t i = 0; i < k; i++) wr(out, i, rd(cg, i) * rd(mask, i));
    }
  }
  gen_release(cg);
  grad_in[0] = out;
  return out ? 0 : -1;
}

static int dropout_graph_backward(gen_node *n, gen_tensor *g, gen_tensor **grad_in) {
  gen_tensor *mask = gen_node_saved(n, 0);
  grad_in[0] = mask ? gen_mul(g, mask) : NULL;
  return grad_in[0] ? 0 : -1;
}

gen_tensor *gen_dropout(gen_tensor *x, double p, bool training, gen_generator *g) {
  if (!(p >= 0 && p <= 1)) return gen_fail("probability %g is not in [0, 1]", p);
  if (!gen_dtype_is_float(x->dtype)) return gen_fail("needs a float tensor, got %s", gen_dtype_name(x->dtype));
  if (!training || p == 0) return gen_clone(x); /* identity, still differentiable */
  gen_tensor *mask = gen_empty(x->dtype, x->ndim, x->shape), *cx = mask ? gen_contiguous_raw(x) : NULL;
  gen_tensor *out = cx ? gen_empty(x->dtype, x->ndim, x->shape) : NULL;
  if (out) {
    gen_fill_bernoulli(mask, g, 1 - p); /* 1 = keep */
    double scale = p < 1 ? 1 / (1 - p) : 0;
    int64_t k = gen_numel(out);
    if (out->dtype == GEN_FLOAT32) {
      float *pm = (float *)gen_data_ptr(mask), *po = (float *)gen_data_ptr(out), fs = (float)scale;
      const float *px = (const float *)gen_data_ptr(cx);
      if (k > GEN_PARALLEL_GRAIN) {
#pragma omp parallel for
        for (int64_t i = 0; i < k; i++) {
          pm[i] *= fs;
          po[i] = px[i] * pm[i];
        }
      } else {
        for (int64_t i = 0; i < k; i++) {
          pm[i] *= fs;
          po[i] = px[i] * pm[i];
        }
      }
    } else {
      for (int64_t i = 0; i < k; i++) {
        double m = rd(mask, i) * scale;
        wr(mask, i, m);
        wr(out, i, rd(cx, i) * m);
      }
    }
    out = gen_record(out, &(gen_record_args){.op = GEN_OP_DROPOUT,
                                             .backward = dropout_backward,
                                             .graph_backward = dropout_graph_backward,
                                             .inputs = GEN_TENSORS(x),
                                             .saved = GEN_TENSORS(mask)});
  }
  gen_release(mask);
  gen_release(cx);
  return out;
}
