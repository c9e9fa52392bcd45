/*
 * ops_linalg.c — LU factorization, log |det|, inverse and triangular solves of small square
 * matrices, forward and backward. For the channel mixing of flows (Glow's 1x1 convolutions: a few
 * hundred matrices of up to ~100 rows per step), not for large dense algebra: every matrix is
 * copied into double scratch, factored by the unblocked loops of kernels/linalg.c, and written back
 * in the tensor's dtype (float32 results are the rounded double ones).
 *
 * Legend: A [..., n, n] (batch of `count` matrices), B and X [..., n, k], G the incoming gradient.
 *
 * Backward (real matrices; derivations in docs/derivations.md, "Linear algebra"):
 *   slogdet            y = log |det A|         dA = g A^-T
 *   inverse            Y = A^-1                dA = -Y^T G Y^T
 *   solve_triangular   X = A^-1 B              dB = A^-T G,  dA = -tri(dB X^T)
 *                      (tri keeps A's triangle; also drops the diagonal when it is unit)
 *   lu_factor          P^T A = L U             dA = P L^-T (tril_-1(L^T G_L) + triu(G_U U^T)) U^-T
 *                      (G_L, G_U the parts of the packed gradient below / on and above the diagonal)
 */
#include "ops_linalg.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "autograd.h"
#include "kernels/linalg.h"

/* ---- shared: checks, and moving matrices between tensors and double scratch ---- */

static bool check_float(const gen_tensor *a) {
  if (a->dtype == GEN_FLOAT32 || a->dtype == GEN_FLOAT64) return true;
  gen_fail("needs a float32 or float64 tensor, got %s", gen_dtype_name(a->dtype));
  return false;
}

/* A [..., n, n]: fails unless square; *count = the number of matrices */
static bool check_square(const gen_tensor *a, int64_t *count) {
  char buf[GEN_SHAPE_STR_MAX];
  if (!check_float(a)) return false;
  if (a->ndim < 2 || a->shape[a->ndim - 1] != a->shape[a->ndim - 2]) {
    gen_fail("needs a square matrix or a batch of them {..., n, n}, got %s", gen_shape_str(buf, sizeof buf, a->ndim, a->shape));
    return false;
  }
  int64_t n = a->shape[a->ndim - 1];
  *count = n ? gen_numel(a) / (n * n) : gen_numel_of(a->ndim - 2, a->shape);
  return true;
}

/* dst [count] doubles from a contiguous float32 / float64 buffer, starting at element `at` */
static void load(double *dst, const gen_tensor *t, int64_t at, int64_t count) {
  const char *p = gen_data_ptr(t);
  if (t->dtype == GEN_FLOAT32)
    for (int64_t i = 0; i < count; i++) dst[i] = ((const float *)p)[at + i];
  else
    memcpy(dst, (const double *)p + at, (size_t)count * sizeof *dst);
}

static void store(gen_tensor *t, int64_t at, const double *src, int64_t count) {
  char *p = gen_data_ptr(t);
  if (t->dtype == GEN_FLOAT32)
    for (int64_t i = 0; i < count; i++) ((float *)p)[at + i] = (float)src[i];
  else
    memcpy((double *)p + at, src, (size_t)count * sizeof *src);
}

/* n * n doubles per matrix, `mats` matrices of them, plus n int64 pivots */
typedef struct {
  double *m[6];
  int64_t *piv;
} scratch;

static bool scratch_new(scratch *s, int64_t n, int mats) {
  memset(s, 0, sizeof *s);
  size_t nn = (size_t)(n * n + 1);
  double *block = malloc(nn * (size_t)mats * sizeof(double) + (size_t)(n + 1) * sizeof(int64_t));
  if (!block) {
    gen_fail("out of memory for the scratch of a %lld x %lld matrix", (long long)n, (long long)n);
    return false;
  }
  for (int i = 0; i < mats; i++) s->m[i] = block + nn * (size_t)i;
  s->piv = (int64_t *)(block + nn * (size_t)mats);
  return true;
}
static void scratch_free(scratch *s) { free(s->m[0]); }

static void identity(double *m, int64_t n) {
  memset(m, 0, (size_t)(n * n) * sizeof *m);
  for (int64_t i = 0; i < n; i++) m[i * n + i] = 1;
}

static void transpose(double *dst, const double *src, int64_t n) {
  for (int64_t i = 0; i < n; i++)
    for (int64_t j = 0; j < n; j++) dst[j * n + i] = src[i * n + j];
}

/* inv := A^-1 from A's LU factors (lu, piv); lu must be nonsingular */
static void lu_inverse(double *inv, const double *lu, const int64_t *piv, int64_t n) {
  identity(inv, n);
  gen_lu_permute_f64(inv, piv, n, n, false);
  gen_trsm_f64(inv, lu, n, n, false, true, false);
  gen_trsm_f64(inv, lu, n, n, true, false, false);
}

static gen_tensor *batch_result(const gen_tensor *a, gen_dtype dt, int drop) { return gen_empty(dt, a->ndim - drop, a->shape); }

/* ---- lu_factor ---- */

/* saved[0] = LU (the result), saved[1] = pivots (0-based in the node: see gen_lu_factor) */
static int lu_backward(gen_node *node, gen_tensor *g, gen_tensor **grad_in) {
  gen_tensor *lu = gen_node_saved(node, 0), *pv = lu ? gen_node_saved(node, 1) : NULL;
  if (!pv) return -1;
  int64_t n = lu->shape[lu->ndim - 1], count = n ? gen_numel(lu) / (n * n) : 0, nn = n * n;
  gen_tensor *cg = gen_contiguous_raw(g), *out = cg ? gen_empty(g->dtype, lu->ndim, lu->shape) : NULL;
  scratch s;
  if (!out || !scratch_new(&s, n, 6)) {
    gen_release(cg);
    gen_release(out);
    return -1;
  }
  double *f = s.m[0], *gr = s.m[1], *l = s.m[2], *u = s.m[3], *phi = s.m[4], *t = s.m[5];
  const int64_t *pp = (const int64_t *)gen_data_ptr(pv);
  for (int64_t b = 0; b < count; b++) {
    load(f, lu, b * nn, nn);
    load(gr, cg, b * nn, nn);
    for (int64_t i = 0; i < n; i++) {
      s.piv[i] = pp[b * n + i] - 1;
      for (int64_t j = 0; j < n; j++) {
        l[i * n + j] = i > j ? f[i * n + j] : i == j;
        u[i * n + j] = i <= j ? f[i * n + j] : 0;
      }
    }
    /* phi = tril_-1(L^T G_L) + triu(G_U U^T); G_L = tril_-1(G), G_U = triu(G) */
    for (int64_t i = 0; i < n; i++)
      for (int64_t j = 0; j < n; j++) {
        double acc = 0;
        if (i > j)
          for (int64_t p = i; p < n; p++) acc += l[p * n + i] * (p > j ? gr[p * n + j] : 0); /* L^T is upper */
        else
          for (int64_t p = i; p < n; p++) acc += gr[i * n + p] * u[j * n + p] * (p >= j); /* p >= i: G_U row i */
        phi[i * n + j] = acc;
      }
    /* phi U^-T: (U^-1 phi^T)^T */
    transpose(t, phi, n);
    gen_trsm_f64(t, f, n, n, true, false, false);
    transpose(phi, t, n);
    gen_trsm_f64(phi, f, n, n, false, true, true); /* L^-T phi U^-T */
    gen_lu_permute_f64(phi, s.piv, n, n, true);    /* P (...) */
    store(out, b * nn, phi, nn);
  }
  scratch_free(&s);
  gen_release(cg);
  grad_in[0] = out;
  return 0;
}

gen_tensor *gen_lu_factor(gen_tensor *a, gen_tensor **pivots, gen_tensor **perm) {
  int64_t count;
  if (!check_square(a, &count)) return NULL;
  int64_t n = a->shape[a->ndim - 1], nn = n * n;
  gen_tensor *ca = gen_contiguous_raw(a);
  gen_tensor *out = ca ? gen_empty(a->dtype, a->ndim, a->shape) : NULL;
  gen_tensor *pv = out ? gen_empty(GEN_INT64, a->ndim - 1, a->shape) : NULL;
  gen_tensor *pm = pv ? gen_empty(a->dtype, a->ndim, a->shape) : NULL;
  scratch s;
  if (!pm || !scratch_new(&s, n, 2)) {
    gen_release(ca);
    gen_release(out);
    gen_release(pv);
    gen_release(pm);
    return NULL;
  }
  int64_t *pp = (int64_t *)gen_data_ptr(pv);
  for (int64_t b = 0; b < count; b++) {
    load(s.m[0], ca, b * nn, nn);
    gen_lu_f64(s.m[0], s.piv, n);
    store(out, b * nn, s.m[0], nn);
    for (int64_t i = 0; i < n; i++) pp[b * n + i] = s.piv[i] + 1;
    identity(s.m[1], n);
    gen_lu_permute_f64(s.m[1], s.piv, n, n, true); /* P = P I */
    store(pm, b * nn, s.m[1], nn);
  }
  scratch_free(&s);
  gen_release(ca);
  out = gen_record(out,
                   &(gen_record_args){
                       .op = GEN_OP_LU_FACTOR, .backward = lu_backward, .inputs = GEN_TENSORS(a), .saved = GEN_TENSORS(out, pv)});
  if (!out) {
    gen_release(pv);
    gen_release(pm);
    return NULL;
  }
  *pivots = pv;
  *perm = pm;
  return out;
}

/* ---- slogdet ---- */

/* saved[0] = A */
static int slogdet_backward(gen_node *node, gen_tensor *g, gen_tensor **grad_in) {
  gen_tensor *a = gen_node_saved(node, 0);
  if (!a) return -1;
  int64_t n = a->shape[a->ndim - 1], nn = n * n, count = gen_numel(g);
  gen_tensor *ca = gen_contiguous_raw(a), *cg = ca ? gen_contiguous_raw(g) : NULL;
  gen_tensor *out = cg ? gen_empty(a->dtype, a->ndim, a->shape) : NULL;
  scratch s;
  if (!out || !scratch_new(&s, n, 3)) {
    gen_release(ca);
    gen_release(cg);
    gen_release(out);
    return -1;
  }
  int rc = 0;
  for (int64_t b = 0; b < count && rc == 0; b++) {
    double gb;
    load(&gb, cg, b, 1);
    load(s.m[0], ca, b * nn, nn);
    if (gen_lu_f64(s.m[0], s.piv, n)) {
      rc = gen_fail_int("the gradient of log |det A| is undefined for a singular matrix (matrix %lld of the batch)",
                        (long long)b + 1);
      break;
    }
    lu_inverse(s.m[1], s.m[0], s.piv, n);
    for (int64_t i = 0; i < n; i++)
      for (int64_t j = 0; j < n; j++) s.m[2][i * n + j] = gb * s.m[1][j * n + i];
    store(out, b * nn, s.m[2], nn);
  }
  scratch_free(&s);
  gen_release(ca);
  gen_release(cg);
  if (rc) {
    gen_release(out);
    return -1;
  }
  grad_in[0] = out;
  return 0;
}

gen_tensor *gen_slogdet(gen_tensor *a, gen_tensor **sign) {
  int64_t count;
  if (!check_square(a, &count)) return NULL;
  int64_t n = a->shape[a->ndim - 1], nn = n * n;
  gen_tensor *ca = gen_contiguous_raw(a);
  gen_tensor *out = ca ? batch_result(a, a->dtype, 2) : NULL;
  gen_tensor *sg = out ? batch_result(a, a->dtype, 2) : NULL;
  scratch s;
  if (!sg || !scratch_new(&s, n, 1)) {
    gen_release(ca);
    gen_release(out);
    gen_release(sg);
    return NULL;
  }
  for (int64_t b = 0; b < count; b++) {
    load(s.m[0], ca, b * nn, nn);
    double logabs = 0, sgn = 1;
    if (gen_lu_f64(s.m[0], s.piv, n)) {
      logabs = -INFINITY;
      sgn = 0;
    } else {
      for (int64_t i = 0; i < n; i++) {
        double d = s.m[0][i * n + i];
        logabs += log(fabs(d));
        if ((d < 0) != (s.piv[i] != i)) sgn = -sgn; /* each row swap and each negative pivot flips it */
      }
    }
    store(out, b, &logabs, 1);
    store(sg, b, &sgn, 1);
  }
  scratch_free(&s);
  gen_release(ca);
  out = gen_record(
      out,
      &(gen_record_args){.op = GEN_OP_SLOGDET, .backward = slogdet_backward, .inputs = GEN_TENSORS(a), .saved = GEN_TENSORS(a)});
  if (!out) {
    gen_release(sg);
    return NULL;
  }
  *sign = sg;
  return out;
}

/* ---- inverse ---- */

/* saved[0] = Y = A^-1 (the result) */
static int inverse_backward(gen_node *node, gen_tensor *g, gen_tensor **grad_in) {
  gen_tensor *y = gen_node_saved(node, 0);
  if (!y) return -1;
  int64_t n = y->shape[y->ndim - 1], nn = n * n, count = n ? gen_numel(y) / nn : 0;
  gen_tensor *cg = gen_contiguous_raw(g), *out = cg ? gen_empty(y->dtype, y->ndim, y->shape) : NULL;
  scratch s;
  if (!out || !scratch_new(&s, n, 4)) {
    gen_release(cg);
    gen_release(out);
    return -1;
  }
  for (int64_t b = 0; b < count; b++) {
    load(s.m[0], y, b * nn, nn);
    load(s.m[1], cg, b * nn, nn);
    gen_matmul_small_f64(s.m[2], s.m[0], s.m[1], n, n, n, true, false); /* Y^T G */
    gen_matmul_small_f64(s.m[3], s.m[2], s.m[0], n, n, n, false, true); /* (Y^T G) Y^T */
    for (int64_t i = 0; i < nn; i++) s.m[3][i] = -s.m[3][i];
    store(out, b * nn, s.m[3], nn);
  }
  scratch_free(&s);
  gen_release(cg);
  grad_in[0] = out;
  return 0;
}

gen_tensor *gen_inverse(gen_tensor *a) {
  int64_t count;
  if (!check_square(a, &count)) return NULL;
  int64_t n = a->shape[a->ndim - 1], nn = n * n;
  gen_tensor *ca = gen_contiguous_raw(a);
  gen_tensor *out = ca ? gen_empty(a->dtype, a->ndim, a->shape) : NULL;
  scratch s;
  if (!out || !scratch_new(&s, n, 2)) {
    gen_release(ca);
    gen_release(out);
    return NULL;
  }
  int64_t singular = 0, bad = 0;
  for (int64_t b = 0; b < count && !singular; b++) {
    load(s.m[0], ca, b * nn, nn);
    singular = gen_lu_f64(s.m[0], s.piv, n);
    if (singular) {
      bad = b;
      break;
    }
    lu_inverse(s.m[1], s.m[0], s.piv, n);
    store(out, b * nn, s.m[1], nn);
  }
  scratch_free(&s);
  gen_release(ca);
  if (singular) {
    gen_release(out);
    if (count > 1 || a->ndim > 2)
      return gen_fail("matrix %lld of the batch is singular (U[%lld,%lld] = 0 in its LU factorization), it has no inverse",
                      (long long)bad + 1, (long long)singular, (long long)singular);
    return gen_fail("the matrix is singular (U[%lld,%lld] = 0 in its LU factorization), it has no inverse", (long long)singular,
                    (long long)singular);
  }
  return gen_record(out,
                    &(gen_record_args){
                        .op = GEN_OP_INVERSE, .backward = inverse_backward, .inputs = GEN_TENSORS(a), .saved = GEN_TENSORS(out)});
}

/* ---- solve_triangular ---- */

typedef struct {
  bool upper, unit;
} tri_attrs;

/* copies A's triangle (the rest zero; a unit diagonal when unit), so the kernels never read the other half */
static void triangle(double *dst, const double *src, int64_t n, bool upper, bool unit) {
  for (int64_t i = 0; i < n; i++)
    for (int64_t j = 0; j < n; j++) {
      bool in = i == j ? true : (upper ? i < j : i > j);
      dst[i * n + j] = i == j && unit ? 1 : in ? src[i * n + j] : 0;
    }
}

/* saved[0] = A, saved[1] = X (the result) */
static int tri_backward(gen_node *node, gen_tensor *g, gen_tensor **grad_in) {
  const tri_attrs *at = GEN_NODE_ATTRS(node, tri_attrs);
  gen_tensor *a = gen_node_saved(node, 0), *x = a ? gen_node_saved(node, 1) : NULL;
  if (!x) return -1;
  bool want_a = gen_edge_live(&node->edges[0]), want_b = gen_edge_live(&node->edges[1]);
  int64_t n = a->shape[a->ndim - 1], k = x->shape[x->ndim - 1], nn = n * n, nk = n * k;
  int64_t count = nk ? gen_numel(x) / nk : gen_numel_of(a->ndim - 2, a->shape);
  gen_tensor *ca = gen_contiguous_raw(a), *cg = ca ? gen_contiguous_raw(g) : NULL;
  gen_tensor *da = cg && want_a ? gen_empty(a->dtype, a->ndim, a->shape) : NULL;
  gen_tensor *db = cg && want_b ? gen_empty(x->dtype, x->ndim, x->shape) : NULL;
  bool ok = cg && (da || !want_a) && (db || !want_b);
  scratch s;
  double *buf = NULL;
  if (ok && scratch_new(&s, n, 2)) {
    buf = malloc((size_t)(2 * nk + 1) * sizeof *buf);
    if (!buf) {
      scratch_free(&s);
      gen_fail("out of memory for the scratch of a %lld x %lld right-hand side", (long long)n, (long long)k);
    }
  }
  if (!buf) {
    gen_release(ca);
    gen_release(cg);
    gen_release(da);
    gen_release(db);
    return -1;
  }
  double *gb = buf, *xs = buf + nk;
  for (int64_t b = 0; b < count; b++) {
    load(s.m[0], ca, b * nn, nn);
    triangle(s.m[1], s.m[0], n, at->upper, at->unit);
    load(gb, cg, b * nk, nk);
    gen_trsm_f64(gb, s.m[1], n, k, at->upper, at->unit, true); /* dB = A^-T G */
    if (db) store(db, b * nk, gb, nk);
    if (da) {
      load(xs, x, b * nk, nk);
      gen_matmul_small_f64(s.m[0], gb, xs, n, k, n, false, true); /* dB X^T */
      for (int64_t i = 0; i < n; i++)
        for (int64_t j = 0; j < n; j++) {
          bool in = i == j ? !at->unit : (at->upper ? i < j : i > j);
          s.m[0][i * n + j] = in ? -s.m[0][i * n + j] : 0;
        }
      store(da, b * nn, s.m[0], nn);
    }
  }
  free(buf);
  scratch_free(&s);
  gen_release(ca);
  gen_release(cg);
  grad_in[0] = da;
  grad_in[1] = db;
  return 0;
}

gen_tensor *gen_solve_triangular(gen_tensor *a, gen_tensor *b, bool upper, bool unitriangular) {
  int64_t count;
  char sa[GEN_SHAPE_STR_MAX], sb[GEN_SHAPE_STR_MAX];
  if (!check_square(a, &count) || !check_float(b)) return NULL;
  if (a->dtype != b->dtype)
    return gen_fail("A and B must have the same dtype, got %s and %s", gen_dtype_name(a->dtype), gen_dtype_name(b->dtype));
  int64_t n = a->shape[a->ndim - 1];
  bool batch_same = b->ndim == a->ndim;
  for (int d = 0; batch_same && d < a->ndim - 2; d++) batch_same = a->shape[d] == b->shape[d];
  if (!batch_same || b->shape[b->ndim - 2] != n)
    return gen_fail("A %s and B %s do not align (B must be {..., %lld, k} with A's batch dimensions)",
                    gen_shape_str(sa, sizeof sa, a->ndim, a->shape), gen_shape_str(sb, sizeof sb, b->ndim, b->shape),
                    (long long)n);
  int64_t k = b->shape[b->ndim - 1], nn = n * n, nk = n * k;
  gen_tensor *ca = gen_contiguous_raw(a), *cb = ca ? gen_contiguous_raw(b) : NULL;
  gen_tensor *out = cb ? gen_empty(b->dtype, b->ndim, b->shape) : NULL;
  scratch s;
  double *xs = NULL;
  if (out && scratch_new(&s, n, 2)) {
    xs = malloc((size_t)(nk + 1) * sizeof *xs);
    if (!xs) {
      scratch_free(&s);
      gen_fail("out of memory for the scratch of a %lld x %lld right-hand side", (long long)n, (long long)k);
    }
  }
  if (!xs) {
    gen_release(ca);
    gen_release(cb);
    gen_release(out);
    return NULL;
  }
  for (int64_t m = 0; m < count; m++) {
    load(s.m[0], ca, m * nn, nn);
    triangle(s.m[1], s.m[0], n, upper, unitriangular);
    load(xs, cb, m * nk, nk);
    gen_trsm_f64(xs, s.m[1], n, k, upper, unitriangular, false);
    store(out, m * nk, xs, nk);
  }
  free(xs);
  scratch_free(&s);
  gen_release(ca);
  gen_release(cb);
  tri_attrs at = {upper, unitriangular};
  return gen_record(out, &(gen_record_args){.op = GEN_OP_SOLVE_TRIANGULAR,
                                            .backward = tri_backward,
                                            .inputs = GEN_TENSORS(a, b),
                                            .saved = GEN_TENSORS(a, out),
                                            .attrs = GEN_ATTRS(&at)});
}
