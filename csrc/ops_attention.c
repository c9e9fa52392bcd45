/*
 * ops_attention.c — scaled dot-product attention, fused and tiled (FlashAttention's scheme).
 *
 * Legend: per (batch, head) slice, Q [Tq, d], K [Tk, d], V [Tk, dv], O [Tq, dv]; tiles of BQ
 * queries x BK keys. Forward walks the key tiles of a query tile with an online softmax:
 *   S = scale Q_i K_j^T (+ mask);  m' = max(m, rowmax S);  P = exp(S - m');
 *   l = l exp(m - m') + rowsum P;  O = O exp(m - m') + P V_j;   finally O /= l, lse = m + log l.
 * Causal masking hides key j from query i when j > i + offset: offset 0 aligns the first query
 * with the first key; offset Tk - Tq aligns the last query with the last key, so the new tokens of
 * incremental decoding attend to a key/value cache (offset = tokens already cached); key tiles
 * wholly after a query tile's last visible key are skipped, so a query attends in O(offset).
 * Memory is O(T d): the T x T score matrix never exists, only one BQ x BK tile per thread. Saved
 * for backward: q, k, v, out and lse. Backward recomputes each tile's probabilities from lse:
 *   P = exp(S - lse);  dV_j += P^T dO_i;  dP = dO_i V_j^T;  dS = P (dP - D_i), D = rowsum(dO O);
 *   dQ_i += scale dS K_j;  dK_j += scale dS^T Q_i.
 * float32 runs the vectorized kernels of kernels/attention.c (forward parallel over (b, h, query
 * tile), backward over (b, h)); the any-dtype kernel here is their reference and runs float64. In
 * both, each task computes its outputs in a fixed order, so results do not depend on the thread
 * count. docs/derivations.md derives the backward.
 */
#include "ops_attention.h"

#include <math.h>
#include <omp.h>
#include <string.h>

#include "autograd.h"
#include "kernels/attention.h"
#include "kernels/gemm.h"

/* The reference kernel below works in any float dtype (reading and writing through doubles) and
 * runs float64, the gradient-check dtype; float32 goes to the fused kernels of kernels/attention.c,
 * which follow the same steps with vectorized loops. */
#define BQ GEN_ATTN_BQ
#define BK GEN_ATTN_BK

typedef gen_attn_shape attn_shape;

static inline double rd(const gen_dtype dt, const void *p, int64_t i) {
  return dt == GEN_FLOAT32 ? ((const float *)p)[i] : ((const double *)p)[i];
}
static inline void wr(const gen_dtype dt, void *p, int64_t i, double v) {
  if (dt == GEN_FLOAT32)
    ((float *)p)[i] = (float)v;
  else
    ((double *)p)[i] = v;
}

/* Adds the mask (and causality) to a score tile S [nq, nk] at query i0, key j0 of slice (b, h). */
static void mask_tile(const attn_shape *a, gen_dtype dt, void *s, int64_t bi, int64_t hi, int64_t i0, int64_t nq, int64_t j0,
                      int64_t nk) {
  for (int64_t i = 0; i < nq; i++)
    for (int64_t j = 0; j < nk; j++) {
      double add = 0;
      if (a->causal && j0 + j > i0 + i + a->offset) add = -INFINITY;
      if (a->mask && add == 0) {
        int64_t off = bi * a->mstride[0] + hi * a->mstride[1] + (i0 + i) * a->mstride[2] + (j0 + j) * a->mstride[3];
        double mv = gen_read_f64((const char *)a->mask + (size_t)off * gen_dtype_size(a->mask_dtype), a->mask_dtype);
        add = a->mask_dtype == GEN_UINT8 ? (mv != 0 ? 0 : -INFINITY) : mv;
      }
      if (add != 0) wr(dt, s, i * nk + j, rd(dt, s, i * nk + j) + add);
    }
}

static void slice_forward(const attn_shape *a, gen_dtype dt, const char *q, const char *k, const char *v, char *o, double *lse,
                          void *s_tile, void *o_acc, double *m, double *l, int64_t bi, int64_t hi) {
  size_t es = gen_dtype_size(dt);
  for (int64_t i0 = 0; i0 < a->tq; i0 += BQ) {
    int64_t nq = a->tq - i0 < BQ ? a->tq - i0 : BQ;
    for (int64_t i = 0; i < nq; i++) {
      m[i] = -INFINITY;
      l[i] = 0;
    }
    memset(o_acc, 0, (size_t)(nq * a->dv) * es);
    for (int64_t j0 = 0; j0 < a->tk; j0 += BK) {
      if (a->causal && j0 > i0 + a->offset + nq - 1) break; /* every later key is masked for this tile */
      int64_t nk = a->tk - j0 < BK ? a->tk - j0 : BK;
      gen_gemm(false, true, nq, nk, a->d, a->scale, q + (size_t)(i0 * a->d) * es, a->d, k + (size_t)(j0 * a->d) * es, a->d, 0,
               s_tile, nk, dt);
      mask_tile(a, dt, s_tile, bi, hi, i0, nq, j0, nk);
      for (int64_t i = 0; i < nq; i++) {
        double mx = m[i];
        for (int64_t j = 0; j < nk; j++) mx = fmax(mx, rd(dt, s_tile, i * nk + j));
        double corr = mx == -INFINITY ? 1 : exp(m[i] - mx), sum = 0;
        for (int64_t j = 0; j < nk; j++) {
          double p = mx == -INFINITY ? 0 : exp(rd(dt, s_tile, i * nk + j) - mx);
          wr(dt, s_tile, i * nk + j, p);
          sum += p;
        }
        l[i] = l[i] * corr + sum;
        m[i] = mx;
        if (corr != 1)
          for (int64_t c = 0; c < a->dv; c++) wr(dt, o_acc, i * a->dv + c, rd(dt, o_acc, i * a->dv + c) * corr);
      }
      gen_gemm(false, false, nq, a->dv, nk, 1, s_tile, nk, v + (size_t)(j0 * a->dv) * es, a->dv, 1, o_acc, a->dv, dt);
    }
    for (int64_t i = 0; i < nq; i++) {
      double inv = l[i] > 0 ? 1 / l[i] : 0;
      for (int64_t c = 0; c < a->dv; c++) wr(dt, o, (i0 + i) * a->dv + c, rd(dt, o_acc, i * a->dv + c) * inv);
      lse[i0 + i] = l[i] > 0 ? m[i] + log(l[i]) : -INFINITY;
    }
  }
}

static void slice_backward(const attn_shape *a, gen_dtype dt, const char *q, const char *k, const char *v, const char *o,
                           const char *dout, const double *lse, char *dq, char *dk, char *dv, void *p_tile, void *dp_tile,
                           double *dsum, int64_t bi, int64_t hi) {
  size_t es = gen_dtype_size(dt);
  for (int64_t i = 0; i < a->tq; i++) { /* D_i = rowsum(dO * O) */
    double s = 0;
    for (int64_t c = 0; c < a->dv; c++) s += rd(dt, dout, i * a->dv + c) * rd(dt, o, i * a->dv + c);
    dsum[i] = s;
  }
  for (int64_t j0 = 0; j0 < a->tk; j0 += BK) {
    int64_t nk = a->tk - j0 < BK ? a->tk - j0 : BK;
    for (int64_t i0 = 0; i0 < a->tq; i0 += BQ) {
      int64_t nq = a->tq - i0 < BQ ? a->tq - i0 : BQ;
      if (a->causal && j0 > i0 + a->offset + nq - 1) continue;
      gen_gemm(false, true, nq, nk, a->d, a->scale, q + (size_t)(i0 * a->d) * es, a->d, k + (size_t)(j0 * a->d) * es, a->d, 0,
               p_tile, nk, dt);
      mask_tile(a, dt, p_tile, bi, hi, i0, nq, j0, nk);
      for (int64_t i = 0; i < nq; i++)
        for (int64_t j = 0; j < nk; j++) {
          double L = lse[i0 + i];
          wr(dt, p_tile, i * nk + j, L == -INFINITY ? 0 : exp(rd(dt, p_tile, i * nk + j) - L));
        }
      /* dV_j += P^T dO_i */
      gen_gemm(true, false, nk, a->dv, nq, 1, p_tile, nk, dout + (size_t)(i0 * a->dv) * es, a->dv, 1,
               dv + (size_t)(j0 * a->dv) * es, a->dv, dt);
      /* dP = dO_i V_j^T, then dS = P (dP - D) */
      gen_gemm(false, true, nq, nk, a->dv, 1, dout + (size_t)(i0 * a->dv) * es, a->dv, v + (size_t)(j0 * a->dv) * es, a->dv, 0,
               dp_tile, nk, dt);
      for (int64_t i = 0; i < nq; i++)
        for (int64_t j = 0; j < nk; j++)
          wr(dt, dp_tile, i * nk + j, rd(dt, p_tile, i * nk + j) * (rd(dt, dp_tile, i * nk + j) - dsum[i0 + i]));
      gen_gemm(false, false, nq, a->d, nk, a->scale, dp_tile, nk, k + (size_t)(j0 * a->d) * es, a->d, 1,
               dq + (size_t)(i0 * a->d) * es, a->d, dt);
      gen_gemm(true, false, nk, a->d, nq, a->scale, dp_tile, nk, q + (size_t)(i0 * a->d) * es, a->d, 1,
               dk + (size_t)(j0 * a->d) * es, a->d, dt);
    }
  }
}

/* One call of the reference kernel over all (batch, head) slices: whole-tensor pointers, and a
 * scratch area of per_thread doubles for each thread (a double holds any float element). */
typedef struct {
  const attn_shape *a;
  gen_dtype dt;
  const char *q, *k, *v, *dout;
  char *o, *dq, *dk, *dv;
  double *lse, *scratch;
  int64_t per_thread;
} reference_job;

/* scratch: s_tile (BQ x BK), o_acc (BQ x dv), m (BQ), l (BQ) */
static void reference_forward_slice(const reference_job *j, int64_t s, double *scratch) {
  const attn_shape *a = j->a;
  size_t es = gen_dtype_size(j->dt);
  double *s_tile = scratch, *o_acc = s_tile + BQ * BK, *m = o_acc + BQ * (a->dv ? a->dv : 1), *l = m + BQ;
  slice_forward(a, j->dt, j->q + (size_t)(s * a->tq * a->d) * es, j->k + (size_t)(s * a->tk * a->d) * es,
                j->v + (size_t)(s * a->tk * a->dv) * es, j->o + (size_t)(s * a->tq * a->dv) * es, j->lse + s * a->tq, s_tile,
                o_acc, m, l, s / a->h, s % a->h);
}

/* scratch: p_tile, dp_tile (BQ x BK each), dsum (Tq) */
static void reference_backward_slice(const reference_job *j, int64_t s, double *scratch) {
  const attn_shape *a = j->a;
  size_t es = gen_dtype_size(j->dt);
  double *p_tile = scratch, *dp_tile = p_tile + BQ * BK, *dsum = dp_tile + BQ * BK;
  slice_backward(a, j->dt, j->q + (size_t)(s * a->tq * a->d) * es, j->k + (size_t)(s * a->tk * a->d) * es,
                 j->v + (size_t)(s * a->tk * a->dv) * es, j->o + (size_t)(s * a->tq * a->dv) * es,
                 j->dout + (size_t)(s * a->tq * a->dv) * es, j->lse + s * a->tq, j->dq + (size_t)(s * a->tq * a->d) * es,
                 j->dk + (size_t)(s * a->tk * a->d) * es, j->dv + (size_t)(s * a->tk * a->dv) * es, p_tile, dp_tile, dsum,
                 s / a->h, s % a->h);
}

/* One task per slice, in parallel when there are several (each thread on its own scratch). */
static void run_slices(const reference_job *j, int threads, void (*slice)(const reference_job *, int64_t, double *)) {
  int64_t slices = j->a->b * j->a->h;
  if (slices > 1 && threads > 1) {
#pragma omp parallel for num_threads(threads)
    for (int64_t s = 0; s < slices; s++) slice(j, s, j->scratch + omp_get_thread_num() * j->per_thread);
  } else {
    for (int64_t s = 0; s < slices; s++) slice(j, s, j->scratch);
  }
}

/* The shape the backward needs: the forward's, without the mask (saved as a tensor). */
typedef struct {
  attn_shape a; /* a.mask is NULL here: pointers do not travel in attributes */
  bool has_mask;
} attention_attrs;

/* saved: q, k, v (contiguous), out alias, lse {B*H*Tq} float64, mask (optional) */
static int attention_backward(gen_node *n, gen_tensor *g, gen_tensor **grad_in) {
  const attention_attrs *at = GEN_NODE_ATTRS(n, attention_attrs);
  gen_tensor *q = gen_node_saved(n, 0), *k = q ? gen_node_saved(n, 1) : NULL, *v = k ? gen_node_saved(n, 2) : NULL;
  gen_tensor *o = v ? gen_node_saved(n, 3) : NULL, *lse = o ? gen_node_saved(n, 4) : NULL;
  gen_tensor *mask = lse && at->has_mask ? gen_node_saved(n, 5) : NULL;
  if (!lse || (at->has_mask && !mask)) return -1;
  attn_shape a = at->a;
  if (mask) {
    a.mask = gen_data_ptr(mask);
    a.mask_dtype = mask->dtype;
  }
  gen_dtype dt = q->dtype;
  gen_tensor *co = gen_contiguous_raw(o), *cg = co ? gen_contiguous_raw(g) : NULL;
  gen_tensor *dq = cg ? gen_zeros(dt, q->ndim, q->shape) : NULL, *dk = dq ? gen_zeros(dt, k->ndim, k->shape) : NULL;
  gen_tensor *dv = dk ? gen_zeros(dt, v->ndim, v->shape) : NULL;
  int threads = gen_get_num_threads();
  int64_t per_thread = dt == GEN_FLOAT32 ? gen_attention_backward_scratch_floats(&a) : 2 * BQ * BK + (a.tq ? a.tq : 1);
  gen_tensor *scratch =
      dv ? gen_empty(dt == GEN_FLOAT32 ? GEN_FLOAT32 : GEN_FLOAT64, 1, (int64_t[1]){threads * per_thread}) : NULL;
  int rc = scratch ? 0 : -1;
  if (rc == 0 && dt == GEN_FLOAT32) {
    gen_attention_backward_f32((float *)gen_data_ptr(dq), (float *)gen_data_ptr(dk), (float *)gen_data_ptr(dv),
                               (const float *)gen_data_ptr(cg), (const float *)gen_data_ptr(q), (const float *)gen_data_ptr(k),
                               (const float *)gen_data_ptr(v), (const float *)gen_data_ptr(co), (const double *)gen_data_ptr(lse),
                               &a, (float *)gen_data_ptr(scratch), threads);
  } else if (rc == 0) {
    reference_job j = {.a = &a,
                       .dt = dt,
                       .q = gen_data_ptr(q),
                       .k = gen_data_ptr(k),
                       .v = gen_data_ptr(v),
                       .o = gen_data_ptr(co),
                       .dout = gen_data_ptr(cg),
                       .lse = (double *)gen_data_ptr(lse),
                       .dq = gen_data_ptr(dq),
                       .dk = gen_data_ptr(dk),
                       .dv = gen_data_ptr(dv),
                       .scratch = (double *)gen_data_ptr(scratch),
                       .per_thread = per_thread};
    run_slices(&j, threads, reference_backward_slice);
  }
  gen_release(scratch);
  gen_release(co);
  gen_release(cg);
  if (rc < 0) {
    gen_release(dq);
    gen_release(dk);
    gen_release(dv);
    return -1;
  }
  grad_in[0] = dq;
  grad_in[1] = dk;
  grad_in[2] = dv;
  return 0;
}

gen_tensor *gen_attention(gen_tensor *q, gen_tensor *k, gen_tensor *v, gen_tensor *mask, bool causal, int64_t offset,
                          double scale) {
  char s1[GEN_SHAPE_STR_MAX], s2[GEN_SHAPE_STR_MAX], s3[GEN_SHAPE_STR_MAX];
  if (q->ndim != 4 || k->ndim != 4 || v->ndim != 4)
    return gen_fail("q, k, v must be {B, heads, T, d}, got %s, %s, %s", gen_shape_str(s1, sizeof s1, q->ndim, q->shape),
                    gen_shape_str(s2, sizeof s2, k->ndim, k->shape), gen_shape_str(s3, sizeof s3, v->ndim, v->shape));
  if (q->dtype != k->dtype || q->dtype != v->dtype || !gen_dtype_is_float(q->dtype))
    return gen_fail("q, k, v must share one float dtype");
  bool ok = q->shape[0] == k->shape[0] && q->shape[0] == v->shape[0] && q->shape[1] == k->shape[1] &&
            q->shape[1] == v->shape[1] && q->shape[3] == k->shape[3] && k->shape[2] == v->shape[2];
  if (!ok)
    return gen_fail("shapes q %s, k %s, v %s do not fit (batch and heads equal, q and k widths equal, k and v lengths equal)",
                    gen_shape_str(s1, sizeof s1, q->ndim, q->shape), gen_shape_str(s2, sizeof s2, k->ndim, k->shape),
                    gen_shape_str(s3, sizeof s3, v->ndim, v->shape));
  if (offset < 0 || (offset > 0 && !causal))
    return gen_fail("offset %lld needs causal = true and must be >= 0", (long long)offset);
  attn_shape a = {q->shape[0], q->shape[1], q->shape[2], k->shape[2], q->shape[3], v->shape[3],
                  scale,       causal,      offset,      NULL,        GEN_FLOAT32, {0}};
  if (a.scale <= 0) a.scale = 1 / sqrt((double)(a.d ? a.d : 1));
  if (mask) {
    if (mask->dtype != GEN_UINT8 && mask->dtype != q->dtype)
      return gen_fail("mask must be uint8 (1 = attend) or %s (added to the scores), got %s", gen_dtype_name(q->dtype),
                      gen_dtype_name(mask->dtype));
    if (gen_broadcast_strides(mask, 4, (int64_t[4]){a.b, a.h, a.tq, a.tk}, a.mstride) < 0)
      return gen_fail("mask %s does not broadcast to {%lld,%lld,%lld,%lld}",
                      gen_shape_str(s1, sizeof s1, mask->ndim, mask->shape), (long long)a.b, (long long)a.h, (long long)a.tq,
                      (long long)a.tk);
  }
  if (mask) {
    a.mask = gen_data_ptr(mask);
    a.mask_dtype = mask->dtype;
  }
  gen_dtype dt = q->dtype;
  int threads = gen_get_num_threads();
  int64_t per_thread = dt == GEN_FLOAT32 ? gen_attention_forward_scratch_floats(&a) : BQ * BK + BQ * (a.dv ? a.dv : 1) + 2 * BQ;
  gen_tensor *cq = gen_contiguous_raw(q), *ck = cq ? gen_contiguous_raw(k) : NULL, *cv = ck ? gen_contiguous_raw(v) : NULL;
  gen_tensor *out = cv ? gen_empty(dt, 4, (int64_t[4]){a.b, a.h, a.tq, a.dv}) : NULL;
  gen_tensor *lse = out ? gen_empty(GEN_FLOAT64, 1, (int64_t[1]){a.b * a.h * a.tq}) : NULL;
  gen_tensor *scratch =
      lse ? gen_empty(dt == GEN_FLOAT32 ? GEN_FLOAT32 : GEN_FLOAT64, 1, (int64_t[1]){threads * per_thread}) : NULL;
  int failed = !scratch;
  if (scratch && dt == GEN_FLOAT32) {
    gen_attention_forward_f32((float *)gen_data_ptr(out), (double *)gen_data_ptr(lse), (const float *)gen_data_ptr(cq),
                              (const float *)gen_data_ptr(ck), (const float *)gen_data_ptr(cv), &a,
                              (float *)gen_data_ptr(scratch), threads);
  } else if (scratch) {
    reference_job j = {.a = &a,
                       .dt = dt,
                       .q = gen_data_ptr(cq),
                       .k = gen_data_ptr(ck),
                       .v = gen_data_ptr(cv),
                       .o = gen_data_ptr(out),
                       .lse = (double *)gen_data_ptr(lse),
                       .scratch = (double *)gen_data_ptr(scratch),
                       .per_thread = per_thread};
    run_slices(&j, threads, reference_forward_slice);
  }
  gen_release(scratch);
  if (!failed) {
    attention_attrs at = {a, mask != NULL};
    at.a.mask = NULL; /* the mask tensor is saved; backward points at it again */
    out = gen_record(out, &(gen_record_args){.op = GEN_OP_ATTENTION,
                                             .backward = attention_backward,
                                             .inputs = GEN_TENSORS(q, k, v),
                                             .saved = GEN_TENSORS(cq, ck, cv, out, lse, mask),
                                             .attrs = GEN_ATTRS(&at)});
  }
  gen_release(cq);
  gen_release(ck);
  gen_release(cv);
  gen_release(lse);
  if (failed) {
    gen_release(out);
    return gen_fail("out of memory in attention");
  }
  return out;
}
