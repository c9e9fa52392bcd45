/*
 * ops_quantize.c — vector quantization for VQ-VAE (van den Oord et al., 2017): the nearest
 * codebook entry, the straight-through output, the codebook and commitment losses with their
 * gradients, and the EMA codebook update. Not here: the dead-code restart and usage statistics
 * (lua/gen/nn/quantize.lua), which are a few tensor ops on top of these.
 *
 * Legend: N rows of z (every leading dimension of z flattened), D the code dimension, K codes.
 *   z {N, D}, codebook e {K, D}, indices {N} int64 1-based, q = e[indices] {N, D}.
 *
 * Nearest code: ||z - e_k||^2 = ||z||^2 - 2 z.e_k + ||e_k||^2. The z.e_k for a chunk of rows
 * come from one GEMM (z_chunk e^T), so the search runs at BLAS speed instead of a per-pair loop;
 * ||z||^2 is the same for every k of a row and is left out of the argmin (adding it only rounds).
 * Chunks keep the distance scratch at about a million elements whatever N is. Ties go to the
 * lowest index (a strict < while scanning k upwards); the row scan is the same for any thread
 * count, and the GEMM's result does not depend on how the rows are chunked, so codes are
 * reproducible.
 *
 * Gradients (g the upstream gradient, s = 1 / (N D) the mean's scale):
 *   straight-through  q_st = e[idx] with d q_st / d z = I:   dz = g,  de = 0
 *   codebook loss     s sum_r ||sg[z_r] - e_idx_r||^2:       de_k = 2 s g sum_{r: idx_r = k} (e_k - z_r)
 *   commitment loss   s sum_r ||z_r - sg[e_idx_r]||^2:       dz_r = 2 s g (z_r - e_idx_r)
 * Both losses save the gathered q rather than the codebook, so the EMA update may rewrite the
 * codebook in place between forward and backward.
 */
#include "ops_quantize.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "autograd.h"
#include "kernels/gemm.h"

/* sum over c of (z[r][c] - q[r][c])^2, in order */
static double row_sq_dist(const char *pz, const char *pq, gen_dtype dt, int64_t r, int64_t d) {
  double s = 0;
  for (int64_t c = 0; c < d; c++) {
    double diff = gen_float_at(pz, dt, r * d + c) - gen_float_at(pq, dt, r * d + c);
    s += diff * diff;
  }
  return s;
}

/* Checks z against the codebook; sets N, D, K. */
static int check_codebook(const gen_tensor *z, const gen_tensor *codebook, int64_t *n, int64_t *d, int64_t *k) {
  char s1[GEN_SHAPE_STR_MAX], s2[GEN_SHAPE_STR_MAX];
  if (codebook->ndim != 2)
    return gen_fail_int("codebook must be {K, D}, got %s", gen_shape_str(s1, sizeof s1, codebook->ndim, codebook->shape));
  if (codebook->shape[0] < 1 || codebook->shape[1] < 1)
    return gen_fail_int("the codebook is empty: %s", gen_shape_str(s1, sizeof s1, codebook->ndim, codebook->shape));
  if (!gen_dtype_is_float(z->dtype)) return gen_fail_int("z must be float32 or float64, got %s", gen_dtype_name(z->dtype));
  if (codebook->dtype != z->dtype)
    return gen_fail_int("z is %s but the codebook is %s", gen_dtype_name(z->dtype), gen_dtype_name(codebook->dtype));
  if (z->ndim < 1 || z->shape[z->ndim - 1] != codebook->shape[1])
    return gen_fail_int("z %s must end in the code dimension D = %lld of the codebook %s",
                        gen_shape_str(s1, sizeof s1, z->ndim, z->shape), (long long)codebook->shape[1],
                        gen_shape_str(s2, sizeof s2, codebook->ndim, codebook->shape));
  *d = codebook->shape[1];
  *k = codebook->shape[0];
  *n = gen_numel(z) / *d;
  return 0;
}

/* Checks that indices has z's shape without its last dimension, is int64 and holds codes 1..K. */
static int check_indices(const gen_tensor *z, const gen_tensor *indices, int64_t k) {
  char s1[GEN_SHAPE_STR_MAX], s2[GEN_SHAPE_STR_MAX];
  if (indices->dtype != GEN_INT64) return gen_fail_int("indices must be int64, got %s", gen_dtype_name(indices->dtype));
  bool same = indices->ndim == z->ndim - 1;
  for (int i = 0; same && i < indices->ndim; i++) same = indices->shape[i] == z->shape[i];
  if (!same)
    return gen_fail_int("indices %s must have the shape of z %s without its last dimension",
                        gen_shape_str(s1, sizeof s1, indices->ndim, indices->shape),
                        gen_shape_str(s2, sizeof s2, z->ndim, z->shape));
  int64_t n = gen_numel(indices);
  for (int64_t i = 0; i < n; i++) {
    int64_t v = gen_get_flat_i64(indices, i);
    if (v < 1 || v > k) return gen_fail_int("index %lld is out of range 1..%lld", (long long)v, (long long)k);
  }
  return 0;
}

/* Rows per GEMM chunk: the distance scratch (rows x K) stays near 2^20 elements. */
static int64_t chunk_rows(int64_t n, int64_t k) {
  int64_t rows = ((int64_t)1 << 20) / k;
  if (rows < 1) rows = 1;
  if (rows > 1024) rows = 1024;
  return rows < n ? rows : (n > 0 ? n : 1);
}

/* The argmin over k of enorm[k] - 2 dots[r, k] for rows [0, rows) of a chunk; idx 1-based. */
static void argmin_rows(int64_t *idx, const char *dots, gen_dtype dt, const double *enorm, int64_t rows, int64_t k) {
  for (int64_t r = 0; r < rows; r++) {
    int64_t best = 0;
    double bestd = INFINITY;
    for (int64_t j = 0; j < k; j++) {
      double dist = enorm[j] - 2 * gen_float_at(dots, dt, r * k + j);
      if (dist < bestd) { /* strict: ties keep the lower index; NaN never wins */
        bestd = dist;
        best = j;
      }
    }
    idx[r] = best + 1;
  }
}

/* idx {N} (1-based) of the nearest rows of e {K, D} to the rows of z {N, D}; both contiguous. */
static int nearest_codes(int64_t *idx, const gen_tensor *z, const gen_tensor *e, int64_t n, int64_t d, int64_t k) {
  gen_dtype dt = z->dtype;
  int64_t chunk = chunk_rows(n, k);
  gen_tensor *dots = gen_empty(dt, 1, (int64_t[]){chunk * k});
  double *enorm = dots ? malloc(sizeof(double) * (size_t)k) : NULL;
  if (!enorm) {
    gen_release(dots);
    return dots ? gen_fail_int("out of memory: needs %lld bytes for the code norms", (long long)(8 * k)) : -1;
  }
  const char *pz = gen_data_ptr(z), *pe = gen_data_ptr(e);
  char *pd = gen_data_ptr(dots);
  size_t es = gen_dtype_size(dt);
  for (int64_t j = 0; j < k; j++) {
    double s = 0;
    for (int64_t c = 0; c < d; c++) {
      double v = gen_float_at(pe, dt, j * d + c);
      s += v * v;
    }
    enorm[j] = s;
  }
  for (int64_t r0 = 0; r0 < n; r0 += chunk) {
    int64_t rows = n - r0 < chunk ? n - r0 : chunk;
    gen_gemm(false, true, rows, k, d, 1.0, pz + (size_t)(r0 * d) * es, d, pe, d, 0.0, pd, k, dt);
    if (rows * k > GEN_PARALLEL_GRAIN) {
      int64_t parts = 16, per = (rows + parts - 1) / parts;
#pragma omp parallel for
      for (int64_t p = 0; p < parts; p++) {
        int64_t lo = p * per, hi = lo + per < rows ? lo + per : rows;
        if (lo < hi) argmin_rows(idx + r0 + lo, pd + (size_t)(lo * k) * es, dt, enorm, hi - lo, k);
      }
    } else {
      argmin_rows(idx + r0, pd, dt, enorm, rows, k);
    }
  }
  free(enorm);
  gen_release(dots);
  return 0;
}

/* q {N, D} = e[idx] (contiguous) */
static void gather_codes(char *q, const char *e, const int64_t *idx, int64_t n, int64_t d, size_t es) {
  for (int64_t r = 0; r < n; r++) memcpy(q + (size_t)(r * d) * es, e + (size_t)((idx[r] - 1) * d) * es, (size_t)d * es);
}

/* ---- the straight-through output ---- */

static int straight_through_backward(gen_node *n, gen_tensor *g, gen_tensor **grad_in) {
  (void)n;
  gen_retain(g);
  grad_in[0] = g;
  return 0;
}

gen_tensor *gen_vector_quantize(gen_tensor *z, gen_tensor *codebook, gen_tensor **indices) {
  *indices = NULL;
  int64_t n, d, k;
  if (check_codebook(z, codebook, &n, &d, &k) < 0) return NULL;
  gen_tensor *cz = gen_contiguous_raw(z), *ce = cz ? gen_contiguous_raw(codebook) : NULL;
  gen_tensor *idx = ce ? gen_empty(GEN_INT64, z->ndim - 1, z->shape) : NULL;
  gen_tensor *out = idx ? gen_empty(z->dtype, z->ndim, z->shape) : NULL;
  int rc = out ? nearest_codes((int64_t *)gen_data_ptr(idx), cz, ce, n, d, k) : -1;
  if (rc == 0)
    gather_codes(gen_data_ptr(out), gen_data_ptr(ce), (const int64_t *)gen_data_ptr(idx), n, d, gen_dtype_size(z->dtype));
  gen_release(cz);
  gen_release(ce);
  if (rc < 0) {
    gen_release(idx);
    gen_release(out);
    return NULL;
  }
  out = gen_record(
      out, &(gen_record_args){.op = GEN_OP_VECTOR_QUANTIZE, .backward = straight_through_backward, .inputs = GEN_TENSORS(z)});
  if (!out) {
    gen_release(idx);
    return NULL;
  }
  *indices = idx;
  return out;
}

/* ---- the codebook and commitment losses ---- */

typedef struct {
  double scale; /* 1 / (N D) */
  int64_t n, d;
} vq_loss_attrs;

/* saved: z (contiguous), q = e[idx], idx. The one input is the codebook (codebook loss) or z. */
static int vq_loss_backward(gen_node *nd, gen_tensor *g, gen_tensor **grad_in) {
  const vq_loss_attrs *at = GEN_NODE_ATTRS(nd, vq_loss_attrs);
  gen_tensor *z = gen_node_saved(nd, 0), *q = z ? gen_node_saved(nd, 1) : NULL, *idx = q ? gen_node_saved(nd, 2) : NULL;
  if (!idx) return -1;
  gen_tensor *out = gen_zeros(z->dtype, nd->edges[0].ndim, nd->edges[0].shape);
  if (!out) return -1;
  gen_dtype dt = z->dtype;
  double gs = 2 * at->scale * gen_get_flat(g, 0);
  const char *pz = gen_data_ptr(z), *pq = gen_data_ptr(q);
  const int64_t *pi = (const int64_t *)gen_data_ptr(idx);
  char *po = gen_data_ptr(out);
  int64_t n = at->n, d = at->d;
  if (nd->op == GEN_OP_VQ_CODEBOOK_LOSS) {
    /* rows in order into their code's row: a fixed summation order */
    for (int64_t r = 0; r < n; r++) {
      int64_t k = pi[r] - 1;
      for (int64_t c = 0; c < d; c++)
        gen_float_put(po, dt, k * d + c,
                      gen_float_at(po, dt, k * d + c) + gs * (gen_float_at(pq, dt, r * d + c) - gen_float_at(pz, dt, r * d + c)));
    }
  } else {
    int64_t count = n * d;
    if (count > GEN_PARALLEL_GRAIN) {
#pragma omp parallel for
      for (int64_t i = 0; i < count; i++) gen_float_put(po, dt, i, gs * (gen_float_at(pz, dt, i) - gen_float_at(pq, dt, i)));
    } else {
      for (int64_t i = 0; i < count; i++) gen_float_put(po, dt, i, gs * (gen_float_at(pz, dt, i) - gen_float_at(pq, dt, i)));
    }
  }
  grad_in[0] = out;
  return 0;
}

static gen_tensor *vq_loss(gen_op op, gen_tensor *z, gen_tensor *codebook, gen_tensor *indices) {
  int64_t n, d, k;
  if (check_codebook(z, codebook, &n, &d, &k) < 0 || check_indices(z, indices, k) < 0) return NULL;
  gen_tensor *cz = gen_contiguous_raw(z), *ce = cz ? gen_contiguous_raw(codebook) : NULL;
  gen_tensor *ci = ce ? gen_contiguous_raw(indices) : NULL;
  gen_tensor *q = ci ? gen_empty(z->dtype, 2, (int64_t[]){n, d}) : NULL;
  double *rowsum = q ? malloc(sizeof(double) * (size_t)(n > 0 ? n : 1)) : NULL;
  gen_tensor *out = rowsum ? gen_empty(z->dtype, 0, NULL) : NULL;
  if (out) {
    gen_dtype dt = z->dtype;
    const char *pz = gen_data_ptr(cz), *pq = gen_data_ptr(q);
    gather_codes(gen_data_ptr(q), gen_data_ptr(ce), (const int64_t *)gen_data_ptr(ci), n, d, gen_dtype_size(dt));
    if (n * d > GEN_PARALLEL_GRAIN) {
#pragma omp parallel for
      for (int64_t r = 0; r < n; r++) rowsum[r] = row_sq_dist(pz, pq, dt, r, d);
    } else {
      for (int64_t r = 0; r < n; r++) rowsum[r] = row_sq_dist(pz, pq, dt, r, d);
    }
    double total = 0;
    for (int64_t r = 0; r < n; r++) total += rowsum[r];
    /* the mean over no elements is NaN, as in mse_loss */
    gen_float_put(gen_data_ptr(out), dt, 0, n > 0 ? total / (double)(n * d) : NAN);
  } else if (q && !rowsum) {
    gen_fail("out of memory: needs %lld bytes for the row sums", (long long)(8 * n));
  }
  free(rowsum);
  gen_release(ce);
  vq_loss_attrs at = {n > 0 ? 1.0 / (double)(n * d) : 0, n, d};
  gen_tensor *input = op == GEN_OP_VQ_CODEBOOK_LOSS ? codebook : z;
  if (out)
    out = gen_record(out, &(gen_record_args){.op = op,
                                             .backward = vq_loss_backward,
                                             .inputs = GEN_TENSORS(input),
                                             .saved = GEN_TENSORS(cz, q, ci),
                                             .attrs = GEN_ATTRS(&at)});
  gen_release(cz);
  gen_release(q);
  gen_release(ci);
  return out;
}

gen_tensor *gen_vq_codebook_loss(gen_tensor *z, gen_tensor *codebook, gen_tensor *indices) {
  return vq_loss(GEN_OP_VQ_CODEBOOK_LOSS, z, codebook, indices);
}

gen_tensor *gen_vq_commitment_loss(gen_tensor *z, gen_tensor *codebook, gen_tensor *indices) {
  return vq_loss(GEN_OP_VQ_COMMITMENT_LOSS, z, codebook, indices);
}

/* ---- the EMA update ---- */

int gen_vq_ema_update_(gen_tensor *codebook, gen_tensor *cluster_size, gen_tensor *embed_sum, gen_tensor *z, gen_tensor *indices,
                       double decay, double eps, gen_tensor *counts) {
  int64_t n, d, k;
  char s1[GEN_SHAPE_STR_MAX], s2[GEN_SHAPE_STR_MAX];
  if (check_codebook(z, codebook, &n, &d, &k) < 0 || check_indices(z, indices, k) < 0) return -1;
  if (!(decay >= 0 && decay <= 1)) return gen_fail_int("decay must be in [0, 1], got %g", decay);
  if (!(eps >= 0)) return gen_fail_int("eps must be >= 0, got %g", eps);
  if (cluster_size->ndim != 1 || cluster_size->shape[0] != k || cluster_size->dtype != codebook->dtype)
    return gen_fail_int("cluster_size must be a %s {%lld} tensor, got %s %s", gen_dtype_name(codebook->dtype), (long long)k,
                        gen_dtype_name(cluster_size->dtype),
                        gen_shape_str(s1, sizeof s1, cluster_size->ndim, cluster_size->shape));
  if (!gen_same_shape(embed_sum, codebook) || embed_sum->dtype != codebook->dtype)
    return gen_fail_int("embed_sum must be a %s tensor shaped like the codebook %s, got %s %s", gen_dtype_name(codebook->dtype),
                        gen_shape_str(s1, sizeof s1, codebook->ndim, codebook->shape), gen_dtype_name(embed_sum->dtype),
                        gen_shape_str(s2, sizeof s2, embed_sum->ndim, embed_sum->shape));
  if (counts && (counts->ndim != 1 || counts->shape[0] != k || !gen_dtype_is_float(counts->dtype)))
    return gen_fail_int("counts must be a float {%lld} tensor", (long long)k);
  if (!gen_is_contiguous(codebook) || !gen_is_contiguous(cluster_size) || !gen_is_contiguous(embed_sum))
    return gen_fail_int("the codebook, cluster_size and embed_sum must be contiguous (they are updated in place)");
  if (gen_check_inplace(codebook) < 0 || gen_check_inplace(cluster_size) < 0 || gen_check_inplace(embed_sum) < 0) return -1;
  gen_tensor *cz = gen_contiguous_raw(z), *ci = cz ? gen_contiguous_raw(indices) : NULL;
  double *cnt = ci ? calloc((size_t)k, sizeof(double)) : NULL, *sum = cnt ? calloc((size_t)(k * d), sizeof(double)) : NULL;
  if (!sum) {
    free(cnt);
    gen_release(cz);
    gen_release(ci);
    return ci ? gen_fail_int("out of memory: needs %lld bytes for the code sums", (long long)(8 * k * (d + 1))) : -1;
  }
  gen_dtype dt = codebook->dtype;
  const char *pz = gen_data_ptr(cz);
  const int64_t *pi = (const int64_t *)gen_data_ptr(ci);
  for (int64_t r = 0; r < n; r++) { /* rows in order: the same sums for any thread count */
    int64_t j = pi[r] - 1;
    cnt[j] += 1;
    for (int64_t c = 0; c < d; c++) sum[j * d + c] += gen_float_at(pz, dt, r * d + c);
  }
  char *pc = gen_data_ptr(cluster_size), *pm = gen_data_ptr(embed_sum), *pe = gen_data_ptr(codebook);
  double total = 0;
  for (int64_t j = 0; j < k; j++) {
    double nk = decay * gen_float_at(pc, dt, j) + (1 - decay) * cnt[j];
    gen_float_put(pc, dt, j, nk);
    total += gen_float_at(pc, dt, j);
  }
  for (int64_t j = 0; j < k; j++) {
    double smoothed = (gen_float_at(pc, dt, j) + eps) / (total + (double)k * eps) * total;
    for (int64_t c = 0; c < d; c++) {
      double m = decay * gen_float_at(pm, dt, j * d + c) + (1 - decay) * sum[j * d + c];
      gen_float_put(pm, dt, j * d + c, m);
      if (smoothed > 0) gen_float_put(pe, dt, j * d + c, gen_float_at(pm, dt, j * d + c) / smoothed); /* no data yet: keep e_k */
    }
    if (counts) gen_float_put(gen_data_ptr(counts), counts->dtype, j, cnt[j]);
  }
  free(cnt);
  free(sum);
  gen_release(cz);
  gen_release(ci);
  gen_bump_version(codebook);
  gen_bump_version(cluster_size);
  gen_bump_version(embed_sum);
  if (counts) gen_bump_version(counts);
  return 0;
}
