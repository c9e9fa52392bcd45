/* gemm.c — see gemm.h. */
#include "gemm.h"

#include <cblas.h>
#include <omp.h>

#include "gemm_sgemm.h"

const char *gen_sgemm_backend(void) { return gen_sgemm_available() ? "gen" : "openblas"; }

void gen_gemm(bool ta, bool tb, int64_t m, int64_t n, int64_t k, double alpha, const void *a, int64_t lda, const void *b,
              int64_t ldb, double beta, void *c, int64_t ldc, gen_dtype dt) {
  if (m == 0 || n == 0) return;
  CBLAS_TRANSPOSE tA = ta ? CblasTrans : CblasNoTrans, tB = tb ? CblasTrans : CblasNoTrans;
  if (dt == GEN_FLOAT32 && gen_sgemm_available()) {
    /* Outside a parallel region OpenBLAS would thread a large product itself; gen's SGEMM gets the
     * threads through gen_gemm_blocked (its bits depend on the shape alone, so any split is safe). */
    int threads = gen_get_num_threads();
    if (threads > 1 && gen_gemm_splits(m, n, k, dt) && !omp_in_parallel())
      gen_gemm_blocked(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, dt, threads);
    else
      gen_sgemm(ta, tb, m, n, k, (float)alpha, a, lda, b, ldb, (float)beta, c, ldc);
  } else if (dt == GEN_FLOAT32)
    cblas_sgemm(CblasRowMajor, tA, tB, (int)m, (int)n, (int)k, (float)alpha, a, (int)lda, b, (int)ldb, (float)beta, c, (int)ldc);
  else
    cblas_dgemm(CblasRowMajor, tA, tB, (int)m, (int)n, (int)k, alpha, a, (int)lda, b, (int)ldb, beta, c, (int)ldc);
}

#define BLOCK_MIN  64 /* rows or columns per block, at least */
#define BLOCKS_MAX 64

/* rows [lo, hi) of C (by_rows) or columns [lo, hi) */
static void gemm_part(bool by_rows, int64_t lo, int64_t hi, bool ta, bool tb, int64_t m, int64_t n, int64_t k, double alpha,
                      const char *a, int64_t lda, const char *b, int64_t ldb, double beta, char *c, int64_t ldc, gen_dtype dt) {
  size_t es = gen_dtype_size(dt);
  if (by_rows) /* rows of op(A): A's rows, or A's columns when transposed */
    gen_gemm(ta, tb, hi - lo, n, k, alpha, a + (size_t)(ta ? lo : lo * lda) * es, lda, b, ldb, beta, c + (size_t)(lo * ldc) * es,
             ldc, dt);
  else /* columns of op(B) */
    gen_gemm(ta, tb, m, hi - lo, k, alpha, a, lda, b + (size_t)(tb ? lo * ldb : lo) * es, ldb, beta, c + (size_t)lo * es, ldc,
             dt);
}

bool gen_gemm_splits(int64_t m, int64_t n, int64_t k, gen_dtype dt) {
  int64_t work = m * n * k;
  return work >= (dt == GEN_FLOAT32 && gen_sgemm_available() ? GEN_SGEMM_THREAD_WORK : GEN_GEMM_BLOCKED_WORK);
}

void gen_gemm_blocked(bool ta, bool tb, int64_t m, int64_t n, int64_t k, double alpha, const void *a, int64_t lda, const void *b,
                      int64_t ldb, double beta, void *c, int64_t ldc, gen_dtype dt, int threads) {
  if (m == 0 || n == 0) return;
  if (!gen_gemm_splits(m, n, k, dt)) {
    /* OpenBLAS keeps it on one thread; gen's SGEMM, whose bits do not depend on the split, too */
    gen_gemm(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, dt);
    return;
  }
  bool by_rows = m >= n;
  if (dt == GEN_FLOAT32 && gen_sgemm_available()) { /* one part per thread: blocks would pack op(B) again each */
    gen_sgemm_threads(ta, tb, m, n, k, (float)alpha, a, lda, b, ldb, (float)beta, c, ldc, threads);
    return;
  }
  int64_t side = by_rows ? m : n, blocks = side / BLOCK_MIN;
  blocks = blocks < 1 ? 1 : blocks > BLOCKS_MAX ? BLOCKS_MAX : blocks;
  int64_t step = ((side + blocks - 1) / blocks + 15) / 16 * 16;
  blocks = (side + step - 1) / step;
  if (threads > 1) { /* even for one block: inside the region OpenBLAS stays on one thread */
#pragma omp parallel for num_threads(threads) schedule(static)
    for (int64_t i = 0; i < blocks; i++)
      gemm_part(by_rows, i * step, i * step + step < side ? i * step + step : side, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta,
                c, ldc, dt);
  } else {
    for (int64_t i = 0; i < blocks; i++)
      gemm_part(by_rows, i * step, i * step + step < side ? i * step + step : side, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta,
                c, ldc, dt);
  }
}
