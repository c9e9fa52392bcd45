/*
 * ops_matmul.c — batched, broadcasting matrix product on cblas_sgemm / cblas_dgemm.
 *
 * Legend: A [..., n, k] @ B [..., k, m] = C [..., n, m].
 * A matrix slice goes to BLAS as it lies when either of its last two strides is 1 (row-major, or a
 * transposed view passed as CblasTrans with the other stride as leading dimension); only other
 * layouts are copied. Many small products (attention heads, batched bmm) run in parallel across the
 * batch, each GEMM single-threaded; large ones are split into blocks fixed by their shape
 * (kernels/gemm.c), so the result does not depend on the thread count.
 */
#include "ops_matmul.h"

#include <cblas.h>
#include <omp.h>
#include <string.h>

#include "autograd.h"
#include "kernels/gemm.h"
#include "ops_reduce.h"
#include "ops_shape.h"

gen_tensor *gen_transpose_last2_raw(gen_tensor *t) {
  int64_t shape[GEN_MAX_DIMS], stride[GEN_MAX_DIMS];
  memcpy(shape, t->shape, sizeof shape);
  memcpy(stride, t->stride, sizeof stride);
  int d = t->ndim;
  shape[d - 2] = t->shape[d - 1];
  shape[d - 1] = t->shape[d - 2];
  stride[d - 2] = t->stride[d - 1];
  stride[d - 1] = t->stride[d - 2];
  return gen_as_strided(t, d, shape, stride, t->offset);
}

/* How BLAS sees a 2-D slice: as is (ld = row stride) or transposed (ld = column stride). */
typedef struct {
  CBLAS_TRANSPOSE trans;
  int64_t ld;
} blas_layout;

static bool blas_compatible(const gen_tensor *t, blas_layout *l) {
  int d = t->ndim;
  int64_t rows = t->shape[d - 2], cols = t->shape[d - 1], rs = t->stride[d - 2], cs = t->stride[d - 1];
  /* A stride of 0 between several rows (or columns) is a broadcast (expand), not a matrix BLAS can
   * read: such a slice is copied. */
  if ((cs == 1 || cols == 1) && !(rows > 1 && rs == 0)) {
    l->trans = CblasNoTrans;
    l->ld = rows == 1 ? (cols > 1 ? cols : 1) : rs;
    if (l->ld >= (cols > 1 ? cols : 1)) return true;
  }
  if ((rs == 1 || rows == 1) && !(cols > 1 && cs == 0)) {
    l->trans = CblasTrans;
    l->ld = cols == 1 ? (rows > 1 ? rows : 1) : cs;
    if (l->ld >= (rows > 1 ? rows : 1)) return true;
  }
  return false;
}

static int64_t batch_offset(const gen_tensor *t, int nb, const int64_t *bshape, int64_t index) {
  /* t's batch dims are right-aligned with bshape; broadcast dims contribute nothing. */
  int64_t off = 0;
  int lead = nb - (t->ndim - 2);
  for (int d = nb - 1; d >= 0; d--) {
    int64_t i = index % bshape[d];
    index /= bshape[d];
    int td = d - lead;
    if (td >= 0 && t->shape[td] != 1) off += i * t->stride[td];
  }
  return off;
}

typedef struct {
  gen_dtype dt;
  blas_layout la, lb;
  const gen_tensor *ca, *cb;
  int nb;
  const int64_t *bshape;
  char *pa, *pb, *pc;
  int64_t n, m, k;
  size_t es;
} gemm_batch;

/* product i of the batch, whole (beta 0, or 1 onto a C already filled) */
static void gemm_one(const gemm_batch *j, int64_t i, bool onto) {
  gen_gemm(j->la.trans != CblasNoTrans, j->lb.trans != CblasNoTrans, j->n, j->m, j->k, 1,
           j->pa + (size_t)batch_offset(j->ca, j->nb, j->bshape, i) * j->es, j->la.ld,
           j->pb + (size_t)batch_offset(j->cb, j->nb, j->bshape, i) * j->es, j->lb.ld, onto ? 1 : 0,
           j->pc + (size_t)(i * j->n * j->m) * j->es, j->m, j->dt);
}

/* Product i alone, on every thread: gen_gemm_blocked's blocks are fixed by the shape (the same bits
 * on any number of threads; also faster at mid sizes than OpenBLAS's own threading, which
 * synchronizes its threads inside every GEMM and costs more than the work there). */
static void gemm_alone(const gemm_batch *j, int64_t i, bool onto) {
  gen_gemm_blocked(j->la.trans != CblasNoTrans, j->lb.trans != CblasNoTrans, j->n, j->m, j->k, 1,
                   j->pa + (size_t)batch_offset(j->ca, j->nb, j->bshape, i) * j->es, j->la.ld,
                   j->pb + (size_t)batch_offset(j->cb, j->nb, j->bshape, i) * j->es, j->lb.ld, onto ? 1 : 0,
                   j->pc + (size_t)(i * j->n * j->m) * j->es, j->m, j->dt, gen_get_num_threads());
}

/* a @ b, with bias {m} (or NULL) added to every row of the result */
static gen_tensor *matmul_bias(gen_tensor *a, gen_tensor *b, const gen_tensor *bias) {
  char sa[GEN_SHAPE_STR_MAX], sb[GEN_SHAPE_STR_MAX];
  int da = a->ndim, db = b->ndim;
  if (a->shape[da - 1] != b->shape[db - 2])
    return gen_fail("shapes %s and %s do not align (%lld ~= %lld)", gen_shape_str(sa, sizeof sa, da, a->shape),
                    gen_shape_str(sb, sizeof sb, db, b->shape), (long long)a->shape[da - 1], (long long)b->shape[db - 2]);
  if (a->dtype != b->dtype || !gen_dtype_is_float(a->dtype))
    return gen_fail("needs two float32 or two float64 tensors, got %s and %s", gen_dtype_name(a->dtype),
                    gen_dtype_name(b->dtype));
  int64_t bshape[GEN_MAX_DIMS];
  int nb = gen_broadcast_shapes(da - 2, a->shape, db - 2, b->shape, bshape);
  if (nb < 0) {
    return gen_fail("batch dimensions of %s and %s do not broadcast", gen_shape_str(sa, sizeof sa, da, a->shape),
                    gen_shape_str(sb, sizeof sb, db, b->shape));
  }
  int64_t n = a->shape[da - 2], k = a->shape[da - 1], m = b->shape[db - 1];
  int64_t oshape[GEN_MAX_DIMS];
  memcpy(oshape, bshape, sizeof(int64_t) * (size_t)nb);
  oshape[nb] = n;
  oshape[nb + 1] = m;
  if (nb + 2 > GEN_MAX_DIMS) return gen_fail("too many dimensions");
  gen_tensor *out = gen_empty(a->dtype, nb + 2, oshape);
  if (!out) return NULL;
  blas_layout la, lb;
  gen_tensor *ca = blas_compatible(a, &la) ? (gen_retain(a), a) : gen_contiguous_raw(a);
  gen_tensor *cb = ca && blas_compatible(b, &lb) ? (gen_retain(b), b) : (ca ? gen_contiguous_raw(b) : NULL);
  if (!cb) {
    gen_release(ca);
    gen_release(out);
    return NULL;
  }
  blas_compatible(ca, &la);
  blas_compatible(cb, &lb);
  int64_t batches = gen_numel_of(nb, bshape);
  bool onto = bias != NULL; /* C starts as the bias rows, and BLAS adds onto it (beta 1) */
  if (bias) {
    size_t es = gen_dtype_size(a->dtype), row = (size_t)m * es;
    char *pc = gen_data_ptr(out);
    for (int64_t r = 0; r < batches * n; r++) memcpy(pc + r * row, gen_data_ptr(bias), row);
  }
  if (k == 0) {
    if (!bias) memset(out->storage->data, 0, out->storage->nbytes);
  } else if (n > 0 && m > 0) {
    size_t es = gen_dtype_size(a->dtype);
    char *pa = gen_data_ptr(ca), *pb = gen_data_ptr(cb), *pc = gen_data_ptr(out);
    /* Small products in a batch: one GEMM per thread; otherwise one product after the other, each
     * on every thread. */
    bool across_batches = batches > 1 && n * m * k < 64 * 64 * 64 * 8 && batches * n * m * k > 32768;
    gemm_batch job = {a->dtype, la, lb, ca, cb, nb, bshape, pa, pb, pc, n, m, k, es};
    if (across_batches) {
#pragma omp parallel for
      for (int64_t i = 0; i < batches; i++) gemm_one(&job, i, onto);
    } else {
      for (int64_t i = 0; i < batches; i++) gemm_alone(&job, i, onto);
    }
  }
  gen_release(ca);
  gen_release(cb);
  return out;
}

gen_tensor *gen_matmul_raw(gen_tensor *a, gen_tensor *b) { return matmul_bias(a, b, NULL); }

gen_tensor *gen_addmm_raw(const gen_tensor *bias, gen_tensor *a, gen_tensor *b) {
  if (bias->ndim != 1 || bias->shape[0] != b->shape[b->ndim - 1] || bias->dtype != a->dtype || !gen_is_contiguous(bias))
    return gen_fail("internal: bias of %lld elements for a product with %lld columns", (long long)gen_numel(bias),
                    (long long)b->shape[b->ndim - 1]);
  return matmul_bias(a, b, bias);
}

/* 1-D operands as matrices: a [k] -> [1, k], b [k] -> [k, 1]. */
static gen_tensor *as_matrix(gen_tensor *t, bool left) {
  if (t->ndim >= 2) {
    gen_retain(t);
    return t;
  }
  int64_t shape[2] = {left ? 1 : t->shape[0], left ? t->shape[0] : 1};
  int64_t stride[2] = {left ? 0 : t->stride[0], left ? t->stride[0] : 0};
  return gen_as_strided(t, 2, shape, stride, t->offset);
}

/* The shape matmul returns: the 2-D product shape minus the dims added for 1-D operands. */
static int result_shape(const gen_tensor *a, const gen_tensor *b, const gen_tensor *full, int64_t *shape) {
  int nd = 0;
  for (int d = 0; d < full->ndim - 2; d++) shape[nd++] = full->shape[d];
  if (a->ndim >= 2) shape[nd++] = full->shape[full->ndim - 2];
  if (b->ndim >= 2) shape[nd++] = full->shape[full->ndim - 1];
  return nd;
}

typedef struct {
  int batch_dims; /* of the result */
} matmul_attrs;

static int matmul_backward(gen_node *node, gen_tensor *g, gen_tensor **grad_in) {
  gen_tensor *a = gen_node_saved(node, 0), *b = a ? gen_node_saved(node, 1) : NULL;
  if (!b) return -1;
  gen_tensor *a2 = as_matrix(a, true), *b2 = as_matrix(b, false);
  int rc = -1;
  gen_tensor *g2 = NULL, *bt = NULL, *at = NULL, *ga = NULL, *gb = NULL;
  if (!a2 || !b2) goto done;
  /* g has the squeezed shape; restore [..., n, m]. */
  int64_t gshape[GEN_MAX_DIMS];
  int nb = GEN_NODE_ATTRS(node, matmul_attrs)->batch_dims;
  for (int d = 0; d < nb; d++) gshape[d] = g->shape[d];
  gshape[nb] = a2->shape[a2->ndim - 2];
  gshape[nb + 1] = b2->shape[b2->ndim - 1];
  if (!(g2 = gen_reshape_raw(g, nb + 2, gshape))) goto done;
  if (gen_edge_live(&node->edges[0])) {
    if (!(bt = gen_transpose_last2_raw(b2)) || !(ga = gen_matmul_raw(g2, bt))) goto done;
    gen_tensor *r = gen_sum_to_shape(ga, a2->ndim, a2->shape);
    if (!r) goto done;
    grad_in[0] = gen_reshape_raw(r, a->ndim, a->shape);
    gen_release(r);
    if (!grad_in[0]) goto done;
  }
  if (gen_edge_live(&node->edges[1])) {
    if (!(at = gen_transpose_last2_raw(a2)) || !(gb = gen_matmul_raw(at, g2))) goto done;
    gen_tensor *r = gen_sum_to_shape(gb, b2->ndim, b2->shape);
    if (!r) goto done;
    grad_in[1] = gen_reshape_raw(r, b->ndim, b->shape);
    gen_release(r);
    if (!grad_in[1]) goto done;
  }
  rc = 0;
done:
  gen_release(a2);
  gen_release(b2);
  gen_release(g2);
  gen_release(bt);
  gen_release(at);
  gen_release(ga);
  gen_release(gb);
  return rc;
}

gen_tensor *gen_transpose_last2(gen_tensor *t) {
  int dims[GEN_MAX_DIMS];
  for (int d = 0; d < t->ndim; d++) dims[d] = d;
  dims[t->ndim - 2] = t->ndim - 1;
  dims[t->ndim - 1] = t->ndim - 2;
  return gen_permute(t, dims);
}

/* as_matrix with a recorded reshape */
static gen_tensor *as_matrix_graph(gen_tensor *t, bool left) {
  if (t->ndim >= 2) {
    gen_retain(t);
    return t;
  }
  return gen_reshape(t, 2, (int64_t[2]){left ? 1 : t->shape[0], left ? t->shape[0] : 1});
}

/* dA = g B^T, dB = A^T g, each summed over broadcast batch dims, in differentiable ops */
static int matmul_graph_backward(gen_node *node, gen_tensor *g, gen_tensor **grad_in) {
  gen_tensor *a = gen_node_saved(node, 0), *b = a ? gen_node_saved(node, 1) : NULL;
  if (!b) return -1;
  gen_arena ar = {0}, *A = &ar;
  gen_tensor *a2 = GEN_KEEP(A, as_matrix_graph(a, true)), *b2 = GEN_KEEP(A, as_matrix_graph(b, false));
  if (ar.failed) return gen_arena_take(A, NULL), -1;
  int64_t gshape[GEN_MAX_DIMS];
  int nb = GEN_NODE_ATTRS(node, matmul_attrs)->batch_dims;
  for (int d = 0; d < nb; d++) gshape[d] = g->shape[d];
  gshape[nb] = a2->shape[a2->ndim - 2];
  gshape[nb + 1] = b2->shape[b2->ndim - 1];
  gen_tensor *g2 = GEN_KEEP(A, gen_reshape(g, nb + 2, gshape));
  if (gen_edge_live(&node->edges[0])) {
    gen_tensor *ga = GEN_KEEP(A, gen_matmul(g2, GEN_KEEP(A, gen_transpose_last2(b2))));
    gen_tensor *r = GEN_KEEP(A, gen_sum_to(ga, a2->ndim, a2->shape));
    grad_in[0] = GEN_KEEP(A, gen_reshape(r, a->ndim, a->shape));
    if (grad_in[0]) gen_retain(grad_in[0]);
  }
  if (gen_edge_live(&node->edges[1])) {
    gen_tensor *gb = GEN_KEEP(A, gen_matmul(GEN_KEEP(A, gen_transpose_last2(a2)), g2));
    gen_tensor *r = GEN_KEEP(A, gen_sum_to(gb, b2->ndim, b2->shape));
    grad_in[1] = GEN_KEEP(A, gen_reshape(r, b->ndim, b->shape));
    if (grad_in[1]) gen_retain(grad_in[1]);
  }
  bool failed = ar.failed;
  gen_arena_free(A);
  return failed ? -1 : 0;
}

gen_tensor *gen_matmul(gen_tensor *a, gen_tensor *b) {
  if (a->ndim == 0 || b->ndim == 0) return gen_fail("needs tensors with at least 1 dimension, got %d and %d", a->ndim, b->ndim);
  if (a->ndim == 1 && b->ndim == 1 && a->shape[0] != b->shape[0])
    return gen_fail("vectors of sizes %lld and %lld do not align", (long long)a->shape[0], (long long)b->shape[0]);
  gen_tensor *a2 = as_matrix(a, true), *b2 = a2 ? as_matrix(b, false) : NULL;
  gen_tensor *full = b2 ? gen_matmul_raw(a2, b2) : NULL;
  gen_release(a2);
  gen_release(b2);
  if (!full) {
    /* Report the user's shapes, not the promoted ones. */
    if (a->ndim == 1 || b->ndim == 1) {
      char sa[GEN_SHAPE_STR_MAX], sb[GEN_SHAPE_STR_MAX];
      const char *why = gen_last_error();
      if (strstr(why, "align"))
        return gen_fail("shapes %s and %s do not align (%lld ~= %lld)", gen_shape_str(sa, sizeof sa, a->ndim, a->shape),
                        gen_shape_str(sb, sizeof sb, b->ndim, b->shape), (long long)a->shape[a->ndim - 1],
                        (long long)b->shape[b->ndim == 1 ? 0 : b->ndim - 2]);
    }
    return NULL;
  }
  int64_t shape[GEN_MAX_DIMS];
  int nd = result_shape(a, b, full, shape);
  gen_tensor *out = full;
  if (nd != full->ndim) {
    out = gen_reshape_raw(full, nd, shape);
    gen_release(full);
    if (!out) return NULL;
  }
  matmul_attrs at = {nd - (a->ndim >= 2) - (b->ndim >= 2)};
  return gen_record(out, &(gen_record_args){.op = GEN_OP_MATMUL,
                                            .backward = matmul_backward,
                                            .graph_backward = matmul_graph_backward,
                                            .inputs = GEN_TENSORS(a, b),
                                            .saved = GEN_TENSORS(a, b),
                                            .attrs = GEN_ATTRS(&at)});
}
