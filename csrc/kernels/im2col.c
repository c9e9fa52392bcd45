/*
 * im2col.c — turning a convolution into one GEMM per group.
 *
 * Column matrix layout: row r = (c * kh + i) * kw + j (channel, kernel row, kernel column),
 * column q = (n * Ho + oy) * Wo + ox. The whole batch shares one matrix, so the GEMM is
 * {O, C*kh*kw} x {C*kh*kw, N*Ho*Wo}: large even for small images, unlike per-image GEMMs.
 * Rows are independent, so im2col runs parallel over rows; col2im runs parallel over channels
 * (every row of a channel writes only into that channel), each channel in a fixed order.
 */
#include "im2col.h"

#include <cblas.h>
#include <string.h>

static inline double rd(const void *p, int64_t i, gen_dtype dt) {
  return dt == GEN_FLOAT32 ? ((const float *)p)[i] : ((const double *)p)[i];
}

void gen_im2col(const gen_conv_geom *g, const void *img, void *cols, gen_dtype dt) {
  int64_t rows = g->c * g->kh * g->kw, ncols = g->n * g->ho * g->wo;
#pragma omp parallel for if (rows * ncols > GEN_PARALLEL_GRAIN)
  for (int64_t r = 0; r < rows; r++) {
    int64_t c = r / (g->kh * g->kw), i = (r / g->kw) % g->kh, j = r % g->kw;
    for (int64_t n = 0; n < g->n; n++) {
      int64_t base_in = (n * g->c + c) * g->h * g->w, base_out = r * ncols + n * g->ho * g->wo;
      for (int64_t oy = 0; oy < g->ho; oy++) {
        int64_t y = oy * g->sh - g->ph + i * g->dh;
        int64_t o = base_out + oy * g->wo;
        if (dt == GEN_FLOAT32) {
          float *dst = (float *)cols + o;
          const float *src = (const float *)img + base_in + y * g->w;
          if (y < 0 || y >= g->h) {
            memset(dst, 0, sizeof(float) * (size_t)g->wo);
            continue;
          }
          /* valid output columns: 0 <= ox*sw - pw + j*dw < w, solved for ox */
          int64_t shift = j * g->dw - g->pw;
          int64_t lo = shift >= 0 ? 0 : (-shift + g->sw - 1) / g->sw;
          int64_t hi = g->w - shift <= 0 ? 0 : (g->w - shift + g->sw - 1) / g->sw;
          if (hi > g->wo) hi = g->wo;
          if (lo > hi) lo = hi;
          for (int64_t ox = 0; ox < lo; ox++) dst[ox] = 0;
          if (g->sw == 1)
            memcpy(dst + lo, src + lo + shift, sizeof(float) * (size_t)(hi - lo));
          else
            for (int64_t ox = lo; ox < hi; ox++) dst[ox] = src[ox * g->sw + shift];
          for (int64_t ox = hi; ox < g->wo; ox++) dst[ox] = 0;
        } else {
          double *dst = (double *)cols + o;
          for (int64_t ox = 0; ox < g->wo; ox++) {
            int64_t x = ox * g->sw - g->pw + j * g->dw;
            dst[ox] = (y >= 0 && y < g->h && x >= 0 && x < g->w) ? rd(img, base_in + y * g->w + x, dt) : 0.0;
          }
        }
      }
    }
  }
}

void gen_col2im(const gen_conv_geom *g, const void *cols, void *img, gen_dtype dt) {
  int64_t ncols = g->n * g->ho * g->wo, k2 = g->kh * g->kw;
#pragma omp parallel for if (g->c * k2 * ncols > GEN_PARALLEL_GRAIN)
  for (int64_t c = 0; c < g->c; c++) {
    for (int64_t ij = 0; ij < k2; ij++) {
      int64_t i = ij / g->kw, j = ij % g->kw, r = c * k2 + ij;
      for (int64_t n = 0; n < g->n; n++) {
        int64_t base_img = (n * g->c + c) * g->h * g->w, base_col = r * ncols + n * g->ho * g->wo;
        for (int64_t oy = 0; oy < g->ho; oy++) {
          int64_t y = oy * g->sh - g->ph + i * g->dh;
          if (y < 0 || y >= g->h) continue;
          for (int64_t ox = 0; ox < g->wo; ox++) {
            int64_t x = ox * g->sw - g->pw + j * g->dw;
            if (x < 0 || x >= g->w) continue;
            int64_t at = base_img + y * g->w + x, from = base_col + oy * g->wo + ox;
            if (dt == GEN_FLOAT32) ((float *)img)[at] += ((const float *)cols)[from];
            else ((double *)img)[at] += ((const double *)cols)[from];
          }
        }
      }
    }
  }
}

void gen_nchw_to_cm(const void *src, void *dst, int64_t n, int64_t c, int64_t s, gen_dtype dt) {
  size_t es = gen_dtype_size(dt);
#pragma omp parallel for if (n * c * s > GEN_PARALLEL_GRAIN)
  for (int64_t ci = 0; ci < c; ci++)
    for (int64_t ni = 0; ni < n; ni++)
      memcpy((char *)dst + (size_t)((ci * n + ni) * s) * es, (const char *)src + (size_t)((ni * c + ci) * s) * es, (size_t)s * es);
}

void gen_cm_to_nchw(const void *src, void *dst, int64_t n, int64_t c, int64_t s, gen_dtype dt) {
  size_t es = gen_dtype_size(dt);
#pragma omp parallel for if (n * c * s > GEN_PARALLEL_GRAIN)
  for (int64_t ni = 0; ni < n; ni++)
    for (int64_t ci = 0; ci < c; ci++)
      memcpy((char *)dst + (size_t)((ni * c + ci) * s) * es, (const char *)src + (size_t)((ci * n + ni) * s) * es, (size_t)s * es);
}

void gen_gemm(bool ta, bool tb, int64_t m, int64_t n, int64_t k, double alpha, const void *a, int64_t lda,
              const void *b, int64_t ldb, double beta, void *c, int64_t ldc, gen_dtype dt) {
  if (m == 0 || n == 0) return;
  CBLAS_TRANSPOSE tA = ta ? CblasTrans : CblasNoTrans, tB = tb ? CblasTrans : CblasNoTrans;
  if (dt == GEN_FLOAT32)
    cblas_sgemm(CblasRowMajor, tA, tB, (int)m, (int)n, (int)k, (float)alpha, a, (int)lda, b, (int)ldb, (float)beta, c, (int)ldc);
  else
    cblas_dgemm(CblasRowMajor, tA, tB, (int)m, (int)n, (int)k, alpha, a, (int)lda, b, (int)ldb, beta, c, (int)ldc);
}
