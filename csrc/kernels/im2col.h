/* im2col.h — patch extraction and layout changes for convolutions as GEMMs (im2col.c).
 * Arguments, as in every kernel: outputs first, then inputs, then sizes. */
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
void gen_im2col(void *cols, const void *img, const gen_conv_geom *g, gen_dtype dt);
/* The adjoint: img {N, C, H, W} += scatter of cols. Parallel over channels, deterministic.
 * cols is scratch: entries that fall outside the image may be overwritten. */
void gen_col2im(void *img, void *cols, const gen_conv_geom *g, gen_dtype dt);
/* {N, C, S} <-> {C, N*S} layout changes; the way back adds bias {C} when it is not NULL */
void gen_nchw_to_cm(void *dst, const void *src, int64_t n, int64_t c, int64_t s, gen_dtype dt);
void gen_cm_to_nchw(void *dst, const void *src, const void *bias, int64_t n, int64_t c, int64_t s, gen_dtype dt);
/* dst {cols} = sum of the rows of src {rows, cols}, added in row order */
void gen_sum_rows_into(void *dst, const void *src, int64_t rows, int64_t cols, gen_dtype dt);
/* dst {N, C, S} = bias[c] (zero when bias is NULL) */
void gen_fill_planes(void *dst, const void *bias, int64_t n, int64_t c, int64_t s, gen_dtype dt);
/* Polyphase views of a 4x4 stride-2 convolution with padding 1 (float32; H, W even):
 * out {N, 4C, H/2 + 1, W/2 + 1}: out[n][4c + 2 pr + ps][i][j] = x[n][c][2i + pr - 1][2j + ps - 1] (zero outside);
 * depth_to_space2 is its adjoint on the image, x = gather of out (+ bias[c] when not NULL);
 * polyphase_weight: w2 {O, 4C, 2, 2}[o][4c + 2 pr + ps][a][b] = w {O, C, 4, 4}[o][c][2a + pr][2b + ps],
 * or back from w2 to w when inverse. */
void gen_space_to_depth2_f32(float *out, const float *x, int64_t n, int64_t c, int64_t h, int64_t w);
void gen_depth_to_space2_f32(float *x, const float *in, const float *bias, int64_t n, int64_t c, int64_t h, int64_t w);
void gen_polyphase_weight_f32(float *dst, const float *src, int64_t o, int64_t c, bool inverse);

#endif
