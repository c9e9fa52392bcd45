/* im2col.h — patch extraction for convolutions as GEMMs (im2col.c), and small GEMM glue. */
#ifndef GEN_KERNELS_IM2COL_H
#define GEN_KERNELS_IM2COL_H

#include <stdbool.h>
#include <stdint.h>

#include "../gen.h"

/* A convolution's geometry: an image {N, C, H, W} seen through kh x kw windows giving {Ho, Wo}. */
typedef struct {
  int64_t n, c, h, w, kh, kw, sh, sw, ph, pw, dh, dw, ho, wo;
} gen_conv_geom;

/* cols {C*kh*kw, N*Ho*Wo} (row (c, i, j), column (n, oy, ox)) from img {N, C, H, W}; zero padding. */
void gen_im2col(const gen_conv_geom *g, const void *img, void *cols, gen_dtype dt);
/* The adjoint: img {N, C, H, W} += scatter of cols. Parallel over channels, deterministic.
 * cols is scratch: entries that fall outside the image may be overwritten. */
void gen_col2im(const gen_conv_geom *g, void *cols, void *img, gen_dtype dt);
/* {N, C, S} <-> {C, N*S} layout changes; the way back adds bias {C} when it is not NULL */
void gen_nchw_to_cm(const void *src, void *dst, int64_t n, int64_t c, int64_t s, gen_dtype dt);
void gen_cm_to_nchw(const void *src, void *dst, int64_t n, int64_t c, int64_t s, const void *bias, gen_dtype dt);
/* dst {cols} = sum of the rows of src {rows, cols}, added in row order */
void gen_sum_rows_into(const void *src, int64_t rows, int64_t cols, void *dst, gen_dtype dt);
/* dst {N, C, S} = bias[c] (zero when bias is NULL) */
void gen_fill_planes(void *dst, int64_t n, int64_t c, int64_t s, const void *bias, gen_dtype dt);
/* Polyphase views of a 4x4 stride-2 convolution with padding 1 (float32; H, W even):
 * out {N, 4C, H/2 + 1, W/2 + 1}: out[n][4c + 2 pr + ps][i][j] = x[n][c][2i + pr - 1][2j + ps - 1] (zero outside);
 * depth_to_space2 is its adjoint on the image, x = gather of out (+ bias[c] when not NULL);
 * polyphase_weight: w2 {O, 4C, 2, 2}[o][4c + 2 pr + ps][a][b] = w {O, C, 4, 4}[o][c][2a + pr][2b + ps],
 * or back from w2 to w when inverse. */
void gen_space_to_depth2_f32(const float *x, int64_t n, int64_t c, int64_t h, int64_t w, float *out);
void gen_depth_to_space2_f32(const float *in, int64_t n, int64_t c, int64_t h, int64_t w, const float *bias, float *x);
void gen_polyphase_weight_f32(const float *src, int64_t o, int64_t c, float *dst, bool inverse);
/* C = alpha op(A) op(B) + beta C, row-major, float32 or float64 */
void gen_gemm(bool ta, bool tb, int64_t m, int64_t n, int64_t k, double alpha, const void *a, int64_t lda,
              const void *b, int64_t ldb, double beta, void *c, int64_t ldc, gen_dtype dt);

#endif
