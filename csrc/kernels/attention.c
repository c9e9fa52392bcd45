/*
 * attention.c — float32 fused attention, forward and backward (FlashAttention's tiling).
 *
 * Legend: per (batch, head) slice, Q [Tq, d], K [Tk, d], V [Tk, dv], O [Tq, dv]; a tile is BQ
 * queries x BK keys; S, P, dP are one BQ x BK tile (row stride nk). ops_attention.c holds the
 * derivation summary, the autograd glue and the any-dtype reference kernel these must match.
 *
 * What makes this fast: tile GEMMs go to gen_gemm (gen's AVX-512 SGEMM or BLAS); everything between
 * them runs over contiguous float rows in loops the compiler vectorizes, one copy per ISA level
 * (isa.h), with gen_exp_approx (fastmath.h) instead of libm's scalar exp, which otherwise costs more
 * than the GEMMs; masking work is only done on tiles that need it (a causal tile entirely at or
 * below the diagonal needs none).
 *
 * Parallelism and determinism: the forward pass runs one task per (slice, query tile), the
 * backward one task per slice (it owns dK and dV of the slice and adds the key-tile contributions
 * in a fixed order). A task's arithmetic never depends on which thread runs it, so the results are
 * bitwise identical for any thread count.
 */
#if defined(__GNUC__) && !defined(__clang__)
/* Lets GCC if-convert exp_approx's clamp (it would not speculate a float multiply that might trap):
 * we never read floating-point exception flags, and the results are the same. */
#pragma GCC optimize("no-trapping-math")
#endif
#include "attention.h"

#include <math.h>
#include <omp.h>
#include <string.h>

#include "fastmath.h"
#include "gemm.h"
#include "isa.h"

#define BQ GEN_ATTN_BQ
#define BK GEN_ATTN_BK

/* ---------------------------------------------------------------- row loops, one copy per ISA level
 * Sums run in LANES partial sums (one AVX-512 vector, two AVX2 ones, four SSE ones: the compiler
 * maps the inner loop onto whatever the level has) added by a fixed tree at the end, so every level
 * rounds the same way and gives the same bits; products are never contracted into FMAs (ISO C). */
#define LANES 16

GEN_ISA_BODY float lanes_total(float part[LANES]) {
  for (int w = LANES / 2; w >= 1; w /= 2)
    for (int l = 0; l < w; l++) part[l] += part[l + w];
  return part[0];
}

GEN_ISA_BODY float dot_body(const float *x, const float *y, int64_t n) {
  float part[LANES] = {0};
  int64_t i = 0;
  for (; i + LANES <= n; i += LANES)
    for (int l = 0; l < LANES; l++) part[l] += x[i + l] * y[i + l];
  for (int l = 0; i + l < n; l++) part[l] += x[i + l] * y[i + l];
  return lanes_total(part);
}
GEN_ISA_KERNEL(float, dot, (const float *x, const float *y, int64_t n), (x, y, n))

/* max(init, row[0 .. n)): exact in any order */
GEN_ISA_BODY float row_max_body(const float *row, int64_t n, float init) {
  float mx = init;
#pragma omp simd reduction(max : mx)
  for (int64_t j = 0; j < n; j++) mx = row[j] > mx ? row[j] : mx;
  return mx;
}
GEN_ISA_KERNEL(float, row_max, (const float *row, int64_t n, float init), (row, n, init))

/* row = e^(row - shift); returns the sum of the new row */
GEN_ISA_BODY float exp_shift_sum_body(float *row, int64_t n, float shift) {
  float part[LANES] = {0};
  int64_t j = 0;
  for (; j + LANES <= n; j += LANES)
    for (int l = 0; l < LANES; l++) {
      float p = gen_exp_approx(row[j + l] - shift);
      row[j + l] = p;
      part[l] += p;
    }
  for (int l = 0; j + l < n; l++) {
    float p = gen_exp_approx(row[j + l] - shift);
    row[j + l] = p;
    part[l] += p;
  }
  return lanes_total(part);
}
GEN_ISA_KERNEL(float, exp_shift_sum, (float *row, int64_t n, float shift), (row, n, shift))

/* row = e^(row - shift) */
GEN_ISA_BODY void exp_shift_body(float *row, int64_t n, float shift) {
  for (int64_t j = 0; j < n; j++) row[j] = gen_exp_approx(row[j] - shift);
}
GEN_ISA_KERNEL(void, exp_shift, (float *row, int64_t n, float shift), (row, n, shift))

/* y = a x (y may be x) */
GEN_ISA_BODY void scale_row_body(float *y, const float *x, int64_t n, float a) {
  for (int64_t j = 0; j < n; j++) y[j] = x[j] * a;
}
GEN_ISA_KERNEL(void, scale_row, (float *y, const float *x, int64_t n, float a), (y, x, n, a))

/* y += a x */
GEN_ISA_BODY void axpy_row_body(float *y, const float *x, int64_t n, float a) {
  for (int64_t j = 0; j < n; j++) y[j] += a * x[j];
}
GEN_ISA_KERNEL(void, axpy_row, (float *y, const float *x, int64_t n, float a), (y, x, n, a))

/* dS = P (dP - D_i), in place in dp */
GEN_ISA_BODY void softmax_grad_row_body(float *dp, const float *p, int64_t n, float di) {
  for (int64_t j = 0; j < n; j++) dp[j] = p[j] * (dp[j] - di);
}
GEN_ISA_KERNEL(void, softmax_grad_row, (float *dp, const float *p, int64_t n, float di), (dp, p, n, di))

/* Masks a score tile s [nq, nk] at query i0, key j0 of slice (bi, hi): -inf where causality or a
 * uint8 mask hides a key, plus a float mask's value. */
static void mask_tile(const gen_attn_shape *a, float *s, int64_t bi, int64_t hi, int64_t i0, int64_t nq, int64_t j0, int64_t nk) {
  for (int64_t i = 0; i < nq; i++) {
    float *row = s + i * nk;
    if (a->mask) {
      int64_t base = bi * a->mstride[0] + hi * a->mstride[1] + (i0 + i) * a->mstride[2] + j0 * a->mstride[3], js = a->mstride[3];
      if (a->mask_dtype == GEN_UINT8) {
        const uint8_t *mp = (const uint8_t *)a->mask + base;
        for (int64_t j = 0; j < nk; j++)
          if (!mp[j * js]) row[j] = -INFINITY;
      } else {
        const float *mp = (const float *)a->mask + base;
        for (int64_t j = 0; j < nk; j++) row[j] += mp[j * js];
      }
    }
    if (a->causal) {
      int64_t first = i0 + i + a->offset + 1 - j0; /* the first key this query may not see */
      for (int64_t j = first > 0 ? first : 0; j < nk; j++) row[j] = -INFINITY;
    }
  }
}

static inline bool tile_masked(const gen_attn_shape *a, int64_t i0, int64_t j0, int64_t nk) {
  return a->mask || (a->causal && j0 + nk - 1 > i0 + a->offset);
}

/* For a few queries (decoding with a key/value cache: one query per slice) a BLAS call's fixed
 * cost is more than its work, so the two tile products run as plain vectorized loops.
 *   s [nq, nk] = scale q [nq, d] k [nk, d]^T */
static void scores_direct(float *s, const float *q, const float *k, int64_t nq, int64_t nk, int64_t d, float scale) {
  for (int64_t i = 0; i < nq; i++)
    for (int64_t j = 0; j < nk; j++) s[i * nk + j] = scale * dot(q + i * d, k + j * d, d);
}

/* acc [nq, dv] += p [nq, nk] v [nk, dv]; hidden keys (p = 0) are skipped */
static void pv_direct(float *acc, const float *p, const float *v, int64_t nq, int64_t nk, int64_t dv) {
  for (int64_t i = 0; i < nq; i++) {
    float *ar = acc + i * dv;
    for (int64_t j = 0; j < nk; j++) {
      float pj = p[i * nk + j];
      if (pj != 0) axpy_row(ar, v + j * dv, dv, pj);
    }
  }
}

#define DIRECT_QUERIES 4

/* One query tile of one slice: the online softmax over the key tiles. */
static void forward_tile(const gen_attn_shape *a, const float *q, const float *k, const float *v, float *o, double *lse,
                         int64_t bi, int64_t hi, int64_t i0, float *s, float *acc) {
  int64_t nq = a->tq - i0 < BQ ? a->tq - i0 : BQ, dv = a->dv;
  float m[BQ], l[BQ];
  for (int64_t i = 0; i < nq; i++) {
    m[i] = -INFINITY;
    l[i] = 0;
  }
  memset(acc, 0, sizeof(float) * (size_t)(nq * dv));
  for (int64_t j0 = 0; j0 < a->tk; j0 += BK) {
    if (a->causal && j0 > i0 + a->offset + nq - 1) break; /* this and every later key tile is hidden */
    int64_t nk = a->tk - j0 < BK ? a->tk - j0 : BK;
    if (nq <= DIRECT_QUERIES)
      scores_direct(s, q + i0 * a->d, k + j0 * a->d, nq, nk, a->d, (float)a->scale);
    else
      gen_gemm(false, true, nq, nk, a->d, a->scale, q + i0 * a->d, a->d, k + j0 * a->d, a->d, 0, s, nk, GEN_FLOAT32);
    if (tile_masked(a, i0, j0, nk)) mask_tile(a, s, bi, hi, i0, nq, j0, nk);
    for (int64_t i = 0; i < nq; i++) {
      float *row = s + i * nk, mx = row_max(row, nk, m[i]);
      if (mx == -INFINITY) { /* every key so far hidden: contributes nothing */
        memset(row, 0, sizeof(float) * (size_t)nk);
        continue;
      }
      float sum = exp_shift_sum(row, nk, mx);
      if (mx != m[i]) {
        float corr = m[i] == -INFINITY ? 0.0f : expf(m[i] - mx);
        scale_row(acc + i * dv, acc + i * dv, dv, corr);
        l[i] *= corr;
        m[i] = mx;
      }
      l[i] += sum;
    }
    if (nq <= DIRECT_QUERIES)
      pv_direct(acc, s, v + j0 * dv, nq, nk, dv);
    else
      gen_gemm(false, false, nq, dv, nk, 1, s, nk, v + j0 * dv, dv, 1, acc, dv, GEN_FLOAT32);
  }
  for (int64_t i = 0; i < nq; i++) {
    scale_row(o + (i0 + i) * dv, acc + i * dv, dv, l[i] > 0 ? 1.0f / l[i] : 0.0f);
    lse[i0 + i] = l[i] > 0 ? (double)m[i] + log((double)l[i]) : -INFINITY;
  }
}

/* Task t: query tile t % qtiles of slice t / qtiles. */
static void forward_task(const gen_attn_shape *a, const float *q, const float *k, const float *v, float *o, double *lse,
                         int64_t qtiles, int64_t t, float *s, float *acc) {
  int64_t sl = t / qtiles, i0 = (t % qtiles) * BQ;
  forward_tile(a, q + sl * a->tq * a->d, k + sl * a->tk * a->d, v + sl * a->tk * a->dv, o + sl * a->tq * a->dv, lse + sl * a->tq,
               sl / a->h, sl % a->h, i0, s, acc);
}

int64_t gen_attention_forward_scratch_floats(const gen_attn_shape *a) { return BQ * BK + BQ * (a->dv ? a->dv : 1); }

void gen_attention_forward_f32(float *o, double *lse, const float *q, const float *k, const float *v, const gen_attn_shape *a,
                               float *scratch, int threads) {
  int64_t slices = a->b * a->h, qtiles = (a->tq + BQ - 1) / BQ, tasks = slices * qtiles;
  int64_t work = tasks * (a->tq < BQ ? a->tq : BQ) * a->tk * (a->d + a->dv), per_thread = gen_attention_forward_scratch_floats(a);
  if (tasks > 1 && work > GEN_PARALLEL_GRAIN && threads > 1) {
#pragma omp parallel num_threads(threads)
    {
      float *s = scratch + omp_get_thread_num() * per_thread, *acc = s + BQ * BK;
      /* dynamic: causal tiles near the end of a slice have more keys; per-task results are the same */
#pragma omp for schedule(dynamic, 1)
      for (int64_t t = 0; t < tasks; t++) forward_task(a, q, k, v, o, lse, qtiles, t, s, acc);
    }
  } else {
    for (int64_t t = 0; t < tasks; t++) forward_task(a, q, k, v, o, lse, qtiles, t, scratch, scratch + BQ * BK);
  }
}

/* One slice: key tiles outer (dK_j, dV_j stay hot), query tiles inner; dQ accumulates across key
 * tiles in order. p, dp: BQ x BK scratch; dsum: Tq. */
static void backward_slice(const gen_attn_shape *a, const float *q, const float *k, const float *v, const float *o,
                           const float *dout, const double *lse, float *dq, float *dk, float *dv, int64_t bi, int64_t hi,
                           float *p, float *dp, float *dsum) {
  int64_t d = a->d, w = a->dv;
  float scale = (float)a->scale;
  for (int64_t i = 0; i < a->tq; i++) dsum[i] = dot(dout + i * w, o + i * w, w); /* D_i = dO_i . O_i */
  memset(dq, 0, sizeof(float) * (size_t)(a->tq * d));
  memset(dk, 0, sizeof(float) * (size_t)(a->tk * d));
  memset(dv, 0, sizeof(float) * (size_t)(a->tk * w));
  for (int64_t j0 = 0; j0 < a->tk; j0 += BK) {
    int64_t nk = a->tk - j0 < BK ? a->tk - j0 : BK;
    for (int64_t i0 = 0; i0 < a->tq; i0 += BQ) {
      int64_t nq = a->tq - i0 < BQ ? a->tq - i0 : BQ;
      if (a->causal && j0 > i0 + a->offset + nq - 1) continue;
      gen_gemm(false, true, nq, nk, d, scale, q + i0 * d, d, k + j0 * d, d, 0, p, nk, GEN_FLOAT32);
      if (tile_masked(a, i0, j0, nk)) mask_tile(a, p, bi, hi, i0, nq, j0, nk);
      for (int64_t i = 0; i < nq; i++) { /* P = exp(S - lse) */
        float *row = p + i * nk;
        double L = lse[i0 + i];
        if (L == -INFINITY) {
          memset(row, 0, sizeof(float) * (size_t)nk);
          continue;
        }
        exp_shift(row, nk, (float)L);
      }
      /* dV_j += P^T dO_i */
      gen_gemm(true, false, nk, w, nq, 1, p, nk, dout + i0 * w, w, 1, dv + j0 * w, w, GEN_FLOAT32);
      /* dP = dO_i V_j^T, then dS = P (dP - D), the scale folded into the next two products */
      gen_gemm(false, true, nq, nk, w, 1, dout + i0 * w, w, v + j0 * w, w, 0, dp, nk, GEN_FLOAT32);
      for (int64_t i = 0; i < nq; i++) softmax_grad_row(dp + i * nk, p + i * nk, nk, dsum[i0 + i]);
      gen_gemm(false, false, nq, d, nk, scale, dp, nk, k + j0 * d, d, 1, dq + i0 * d, d, GEN_FLOAT32);
      gen_gemm(true, false, nk, d, nq, scale, dp, nk, q + i0 * d, d, 1, dk + j0 * d, d, GEN_FLOAT32);
    }
  }
}

int64_t gen_attention_backward_scratch_floats(const gen_attn_shape *a) { return 2 * BQ * BK + (a->tq ? a->tq : 1); }

/* Slice sl, with scratch p, dp (BQ x BK each), dsum (Tq) at s. */
static void backward_task(const gen_attn_shape *a, float *dq, float *dk, float *dv, const float *dout, const float *q,
                          const float *k, const float *v, const float *o, const double *lse, int64_t sl, float *s) {
  backward_slice(a, q + sl * a->tq * a->d, k + sl * a->tk * a->d, v + sl * a->tk * a->dv, o + sl * a->tq * a->dv,
                 dout + sl * a->tq * a->dv, lse + sl * a->tq, dq + sl * a->tq * a->d, dk + sl * a->tk * a->d,
                 dv + sl * a->tk * a->dv, sl / a->h, sl % a->h, s, s + BQ * BK, s + 2 * BQ * BK);
}

void gen_attention_backward_f32(float *dq, float *dk, float *dv, const float *dout, const float *q, const float *k,
                                const float *v, const float *o, const double *lse, const gen_attn_shape *a, float *scratch,
                                int threads) {
  int64_t slices = a->b * a->h, per_thread = gen_attention_backward_scratch_floats(a);
  if (slices > 1 && threads > 1) {
#pragma omp parallel num_threads(threads)
    {
      float *s = scratch + omp_get_thread_num() * per_thread;
#pragma omp for schedule(dynamic, 1)
      for (int64_t sl = 0; sl < slices; sl++) backward_task(a, dq, dk, dv, dout, q, k, v, o, lse, sl, s);
    }
  } else {
    for (int64_t sl = 0; sl < slices; sl++) backward_task(a, dq, dk, dv, dout, q, k, v, o, lse, sl, scratch);
  }
}
