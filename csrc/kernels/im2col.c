/*
 * im2col.c — turning a convolution into one GEMM per group.
 *
 * Column matrix layout: row r = (c * kh + i) * kw + j (channel, kernel row, kernel column),
 * column q = (n * Ho + oy) * Wo + ox. A chunk of several images shares one matrix, so the GEMM
 * {O, C*kh*kw} x {C*kh*kw, n*Ho*Wo} is large even for small images, unlike per-image GEMMs.
 * Rows are independent, so im2col runs parallel over rows; col2im runs parallel over channels
 * (every row of a channel writes only into that channel), each channel in a fixed order.
 */
#include "im2col.h"

#include <string.h>

/* ceil(n / d) for n >= 0, d > 0, without forming n + d - 1 (a stride may be as large as int64 allows) */
static inline int64_t ceil_div(int64_t n, int64_t d) { return n / d + (n % d != 0); }

/* The output columns ox whose input column ox*sw + shift falls inside [0, w): [*lo, *hi). */
static inline void valid_cols(const gen_conv_geom *g, int64_t shift, int64_t *lo, int64_t *hi) {
  int64_t a = shift >= 0 ? 0 : ceil_div(-shift, g->sw);
  int64_t b = g->w - shift <= 0 ? 0 : ceil_div(g->w - shift, g->sw);
  if (b > g->wo) b = g->wo;
  if (a > b) a = b;
  *lo = a, *hi = b;
}

static bool is_pointwise(const gen_conv_geom *g) {
  return g->kh == 1 && g->kw == 1 && g->sh == 1 && g->sw == 1 && g->ph == 0 && g->pw == 0;
}

/* Stride 1 with the output as wide as the input ("same" 3x3 convolutions, the UNet's): output
 * (oy, ox) of kernel tap (i, j) reads input element oy * W + ox + offset of the plane, one shift
 * for the whole plane. So a tap is one copy of the span between its first and last valid
 * elements, plus zeros for the rows and the few border columns outside the image, instead of a
 * copy per output row. */
static bool is_plane_shift(const gen_conv_geom *g) { return g->sh == 1 && g->sw == 1 && g->dw == 1 && g->wo == g->w; }

/* Output rows [*y0, *y1) of tap row i that fall inside the image. */
static inline void valid_rows(const gen_conv_geom *g, int64_t i, int64_t *y0, int64_t *y1) {
  int64_t top = g->ph - i * g->dh; /* y = oy - top */
  *y0 = top > 0 ? top : 0;
  *y1 = g->h + top < g->ho ? g->h + top : g->ho;
  if (*y1 < *y0) *y1 = *y0;
}

/* Row r = (c, i, j) of im2col_plane_shift_f32. */
static void im2col_plane_shift_row(const gen_conv_geom *g, const float *img, float *cols, int64_t hw, int64_t plane,
                                   int64_t ncols, int64_t r) {
  int64_t c = r / (g->kh * g->kw), i = (r / g->kw) % g->kh, j = r % g->kw;
  int64_t shift = j * g->dw - g->pw, lo, hi, y0, y1;
  valid_cols(g, shift, &lo, &hi);
  valid_rows(g, i, &y0, &y1);
  int64_t offset = (i * g->dh - g->ph) * g->w + shift;
  bool empty = y0 == y1 || lo == hi;
  int64_t first = empty ? plane : y0 * g->wo + lo, last = empty ? plane : (y1 - 1) * g->wo + hi;
  for (int64_t n = 0; n < g->n; n++) {
    float *dst = cols + r * ncols + n * plane;
    const float *src = img + (n * g->c + c) * hw + offset;
    memset(dst, 0, sizeof(float) * (size_t)first);
    if (last > first) memcpy(dst + first, src + first, sizeof(float) * (size_t)(last - first));
    memset(dst + last, 0, sizeof(float) * (size_t)(plane - last));
    for (int64_t oy = y0; oy < y1 && (lo > 0 || hi < g->wo); oy++) {
      for (int64_t ox = 0; ox < lo; ox++) dst[oy * g->wo + ox] = 0;
      for (int64_t ox = hi; ox < g->wo; ox++) dst[oy * g->wo + ox] = 0;
    }
  }
}

static void im2col_plane_shift_f32(const gen_conv_geom *g, const float *img, float *cols) {
  int64_t rows = g->c * g->kh * g->kw, hw = g->h * g->w, plane = g->ho * g->wo, ncols = g->n * plane;
  if (rows * ncols > GEN_PARALLEL_GRAIN) {
#pragma omp parallel for
    for (int64_t r = 0; r < rows; r++) im2col_plane_shift_row(g, img, cols, hw, plane, ncols, r);
  } else {
    for (int64_t r = 0; r < rows; r++) im2col_plane_shift_row(g, img, cols, hw, plane, ncols, r);
  }
}

/* Row r = (c, i, j) of gen_im2col. */
static void im2col_row(void *cols, const void *img, const gen_conv_geom *g, int64_t ncols, bool f32, int64_t r) {
  int64_t c = r / (g->kh * g->kw), i = (r / g->kw) % g->kh, j = r % g->kw;
  int64_t shift = j * g->dw - g->pw, lo, hi;
  valid_cols(g, shift, &lo, &hi);
  for (int64_t n = 0; n < g->n; n++) {
    int64_t base_in = (n * g->c + c) * g->h * g->w, base_out = r * ncols + n * g->ho * g->wo;
    for (int64_t oy = 0; oy < g->ho; oy++) {
      int64_t y = oy * g->sh - g->ph + i * g->dh, o = base_out + oy * g->wo;
      bool inside = y >= 0 && y < g->h;
      int64_t a = inside ? lo : g->wo, b = inside ? hi : g->wo;
      if (f32) {
        float *dst = (float *)cols + o;
        const float *src = (const float *)img + base_in + (inside ? y * g->w : 0);
        for (int64_t ox = 0; ox < a; ox++) dst[ox] = 0;
        if (g->sw == 1)
          memcpy(dst + a, src + a + shift, sizeof(float) * (size_t)(b - a));
        else
          for (int64_t ox = a; ox < b; ox++) dst[ox] = src[ox * g->sw + shift];
        for (int64_t ox = b; ox < g->wo; ox++) dst[ox] = 0;
      } else {
        double *dst = (double *)cols + o;
        const double *src = (const double *)img + base_in + (inside ? y * g->w : 0);
        for (int64_t ox = 0; ox < a; ox++) dst[ox] = 0;
        for (int64_t ox = a; ox < b; ox++) dst[ox] = src[ox * g->sw + shift];
        for (int64_t ox = b; ox < g->wo; ox++) dst[ox] = 0;
      }
    }
  }
}

void gen_im2col(void *cols, const void *img, const gen_conv_geom *g, gen_dtype dt) {
  if (is_pointwise(g)) { /* the columns are the batch in channel-major order */
    gen_nchw_to_cm(cols, img, g->n, g->c, g->h * g->w, dt);
    return;
  }
  bool f32 = dt == GEN_FLOAT32;
  if (f32 && is_plane_shift(g)) {
    im2col_plane_shift_f32(g, img, cols);
    return;
  }
  int64_t rows = g->c * g->kh * g->kw, ncols = g->n * g->ho * g->wo;
  if (rows * ncols > GEN_PARALLEL_GRAIN) {
#pragma omp parallel for
    for (int64_t r = 0; r < rows; r++) im2col_row(cols, img, g, ncols, f32, r);
  } else {
    for (int64_t r = 0; r < rows; r++) im2col_row(cols, img, g, ncols, f32, r);
  }
}

/* Channel c of col2im_plane_shift_f32: its taps added in order. */
static void col2im_plane_shift_channel(const gen_conv_geom *g, float *cols, float *img, int64_t k2, int64_t hw, int64_t plane,
                                       int64_t ncols, int64_t c) {
  for (int64_t ij = 0; ij < k2; ij++) {
    int64_t i = ij / g->kw, j = ij % g->kw, r = c * k2 + ij;
    int64_t shift = j * g->dw - g->pw, lo, hi, y0, y1;
    valid_cols(g, shift, &lo, &hi);
    valid_rows(g, i, &y0, &y1);
    if (y0 == y1 || lo == hi) continue;
    int64_t offset = (i * g->dh - g->ph) * g->w + shift, first = y0 * g->wo + lo, last = (y1 - 1) * g->wo + hi;
    for (int64_t n = 0; n < g->n; n++) {
      float *col = cols + r * ncols + n * plane, *dst = img + (n * g->c + c) * hw + offset;
      for (int64_t oy = y0; oy < y1 && (lo > 0 || hi < g->wo); oy++) {
        for (int64_t ox = 0; ox < lo; ox++) col[oy * g->wo + ox] = 0;
        for (int64_t ox = hi; ox < g->wo; ox++) col[oy * g->wo + ox] = 0;
      }
      for (int64_t q = first; q < last; q++) dst[q] += col[q];
    }
  }
}

/* The adjoint of im2col_plane_shift_f32: a tap adds its span of columns to the shifted plane in
 * one vectorizable loop, after zeroing the span's entries that lie outside the image (they would
 * land on the neighbouring row's border). Taps are added in the same order as the per-row path. */
static void col2im_plane_shift_f32(const gen_conv_geom *g, float *cols, float *img) {
  int64_t k2 = g->kh * g->kw, hw = g->h * g->w, plane = g->ho * g->wo, ncols = g->n * plane;
  if (g->c * k2 * ncols > GEN_PARALLEL_GRAIN) {
#pragma omp parallel for
    for (int64_t c = 0; c < g->c; c++) col2im_plane_shift_channel(g, cols, img, k2, hw, plane, ncols, c);
  } else {
    for (int64_t c = 0; c < g->c; c++) col2im_plane_shift_channel(g, cols, img, k2, hw, plane, ncols, c);
  }
}

/* Channel c of gen_col2im: its taps added in order. */
static void col2im_channel(void *img, void *cols, const gen_conv_geom *g, int64_t ncols, int64_t k2, bool f32, int64_t c) {
  for (int64_t ij = 0; ij < k2; ij++) {
    int64_t i = ij / g->kw, j = ij % g->kw, r = c * k2 + ij;
    int64_t shift = j * g->dw - g->pw, lo, hi;
    valid_cols(g, shift, &lo, &hi);
    for (int64_t n = 0; n < g->n; n++) {
      int64_t base_img = (n * g->c + c) * g->h * g->w, base_col = r * ncols + n * g->ho * g->wo;
      for (int64_t oy = 0; oy < g->ho; oy++) {
        int64_t y = oy * g->sh - g->ph + i * g->dh;
        if (y < 0 || y >= g->h) continue;
        int64_t from = base_col + oy * g->wo, at = base_img + y * g->w + shift;
        if (f32) {
          float *dst = (float *)img + at;
          const float *src = (const float *)cols + from;
          if (g->sw == 1)
            for (int64_t ox = lo; ox < hi; ox++) dst[ox] += src[ox];
          else
            for (int64_t ox = lo; ox < hi; ox++) dst[ox * g->sw] += src[ox];
        } else {
          double *dst = (double *)img + at;
          const double *src = (const double *)cols + from;
          for (int64_t ox = lo; ox < hi; ox++) dst[ox * g->sw] += src[ox];
        }
      }
    }
  }
}

void gen_col2im(void *img, void *cols, const gen_conv_geom *g, gen_dtype dt) {
  int64_t ncols = g->n * g->ho * g->wo, k2 = g->kh * g->kw;
  bool f32 = dt == GEN_FLOAT32;
  if (f32 && is_plane_shift(g)) {
    col2im_plane_shift_f32(g, cols, img);
    return;
  }
  if (g->c * k2 * ncols > GEN_PARALLEL_GRAIN) {
#pragma omp parallel for
    for (int64_t c = 0; c < g->c; c++) col2im_channel(img, cols, g, ncols, k2, f32, c);
  } else {
    for (int64_t c = 0; c < g->c; c++) col2im_channel(img, cols, g, ncols, k2, f32, c);
  }
}

void gen_nchw_to_cm(void *dst, const void *src, int64_t n, int64_t c, int64_t s, gen_dtype dt) {
  size_t es = gen_dtype_size(dt);
  if (n * c * s > GEN_PARALLEL_GRAIN) {
#pragma omp parallel for
    for (int64_t ci = 0; ci < c; ci++)
      for (int64_t ni = 0; ni < n; ni++)
        memcpy((char *)dst + (size_t)((ci * n + ni) * s) * es, (const char *)src + (size_t)((ni * c + ci) * s) * es,
               (size_t)s * es);
  } else {
    for (int64_t ci = 0; ci < c; ci++)
      for (int64_t ni = 0; ni < n; ni++)
        memcpy((char *)dst + (size_t)((ci * n + ni) * s) * es, (const char *)src + (size_t)((ni * c + ci) * s) * es,
               (size_t)s * es);
  }
}

/* Row r = (n, c) of gen_cm_to_nchw. */
static void cm_to_nchw_row(void *dst, const void *src, const void *bias, int64_t n, int64_t c, int64_t s, size_t es, bool f32,
                           int64_t r) {
  int64_t ni = r / c, ci = r % c;
  char *d = (char *)dst + (size_t)(r * s) * es;
  const char *from = (const char *)src + (size_t)((ci * n + ni) * s) * es;
  if (!bias) {
    memcpy(d, from, (size_t)s * es);
  } else if (f32) {
    float b = ((const float *)bias)[ci];
    for (int64_t k = 0; k < s; k++) ((float *)d)[k] = ((const float *)from)[k] + b;
  } else {
    double b = ((const double *)bias)[ci];
    for (int64_t k = 0; k < s; k++) ((double *)d)[k] = ((const double *)from)[k] + b;
  }
}

void gen_cm_to_nchw(void *dst, const void *src, const void *bias, int64_t n, int64_t c, int64_t s, gen_dtype dt) {
  size_t es = gen_dtype_size(dt);
  bool f32 = dt == GEN_FLOAT32;
  if (n * c * s > GEN_PARALLEL_GRAIN) {
#pragma omp parallel for
    for (int64_t r = 0; r < n * c; r++) cm_to_nchw_row(dst, src, bias, n, c, s, es, f32, r);
  } else {
    for (int64_t r = 0; r < n * c; r++) cm_to_nchw_row(dst, src, bias, n, c, s, es, f32, r);
  }
}

/* Columns [1024 bi, 1024 (bi + 1)) of gen_sum_rows_into, rows added in order. */
static void sum_rows_block(void *dst, const void *src, int64_t rows, int64_t cols, size_t es, gen_dtype dt, int64_t bi) {
  int64_t c0 = bi * 1024, n = c0 + 1024 < cols ? 1024 : cols - c0;
  memcpy((char *)dst + (size_t)c0 * es, (const char *)src + (size_t)c0 * es, (size_t)n * es);
  for (int64_t r = 1; r < rows; r++) {
    if (dt == GEN_FLOAT32) {
      float *d = (float *)dst + c0;
      const float *s = (const float *)src + r * cols + c0;
      for (int64_t c = 0; c < n; c++) d[c] += s[c];
    } else {
      double *d = (double *)dst + c0;
      const double *s = (const double *)src + r * cols + c0;
      for (int64_t c = 0; c < n; c++) d[c] += s[c];
    }
  }
}

void gen_sum_rows_into(void *dst, const void *src, int64_t rows, int64_t cols, gen_dtype dt) {
  size_t es = gen_dtype_size(dt);
  int64_t blocks = (cols + 1023) / 1024;
  if (rows * cols > GEN_PARALLEL_GRAIN) {
#pragma omp parallel for
    for (int64_t bi = 0; bi < blocks; bi++) sum_rows_block(dst, src, rows, cols, es, dt, bi);
  } else {
    for (int64_t bi = 0; bi < blocks; bi++) sum_rows_block(dst, src, rows, cols, es, dt, bi);
  }
}

/* Plane r of gen_fill_planes. */
static void fill_plane(void *dst, const void *bias, int64_t c, int64_t s, bool f32, int64_t r) {
  if (f32) {
    float *d = (float *)dst + r * s, b = bias ? ((const float *)bias)[r % c] : 0;
    for (int64_t k = 0; k < s; k++) d[k] = b;
  } else {
    double *d = (double *)dst + r * s, b = bias ? ((const double *)bias)[r % c] : 0;
    for (int64_t k = 0; k < s; k++) d[k] = b;
  }
}

void gen_fill_planes(void *dst, const void *bias, int64_t n, int64_t c, int64_t s, gen_dtype dt) {
  bool f32 = dt == GEN_FLOAT32;
  if (n * c * s > GEN_PARALLEL_GRAIN) {
#pragma omp parallel for
    for (int64_t r = 0; r < n * c; r++) fill_plane(dst, bias, c, s, f32, r);
  } else {
    for (int64_t r = 0; r < n * c; r++) fill_plane(dst, bias, c, s, f32, r);
  }
}

/* One plane (n, 4c + phase) of gen_space_to_depth2_f32. */
static void space_to_depth2_plane(float *out, const float *x, int64_t h, int64_t w, int64_t plane) {
  int64_t hs = h / 2 + 1, ws = w / 2 + 1, half = w / 2;
  int64_t phase = plane % 4, pr = phase / 2, ps = phase % 2;
  const float *src = x + plane / 4 * h * w;
  float *dst = out + plane * hs * ws;
  for (int64_t i = 0; i < hs; i++) {
    int64_t y = 2 * i + pr - 1;
    float *row = dst + i * ws;
    if (y < 0 || y >= h) {
      memset(row, 0, sizeof(float) * (size_t)ws);
      continue;
    }
    const float *in = src + y * w + (ps ? 0 : 1);
    if (!ps) *row++ = 0.0f;
    for (int64_t j = 0; j < half; j++) row[j] = in[2 * j];
    if (ps) row[half] = 0.0f;
  }
}

/* Phase (pr, ps) row i of the polyphase image is input row y = 2i + pr - 1 read at columns
 * 2j + ps - 1: for ps = 1 columns 0, 2, .., w - 2 then one zero; for ps = 0 one zero, then
 * columns 1, 3, .., w - 1. */
void gen_space_to_depth2_f32(float *out, const float *x, int64_t n, int64_t c, int64_t h, int64_t w) {
  if (n * c * h * w > GEN_PARALLEL_GRAIN) {
#pragma omp parallel for
    for (int64_t plane = 0; plane < n * c * 4; plane++) space_to_depth2_plane(out, x, h, w, plane);
  } else {
    for (int64_t plane = 0; plane < n * c * 4; plane++) space_to_depth2_plane(out, x, h, w, plane);
  }
}

/* One plane (n, c) of gen_depth_to_space2_f32. */
static void depth_to_space2_plane(float *x, const float *in, const float *bias, int64_t c, int64_t h, int64_t w, int64_t plane) {
  int64_t hs = h / 2 + 1, ws = w / 2 + 1, half = w / 2;
  float b = bias ? bias[plane % c] : 0.0f, *dst = x + plane * h * w;
  for (int64_t y = 0; y < h; y++) {
    int64_t pr = (y + 1) % 2, i = (y + 1) / 2;
    const float *even = in + ((plane * 4 + 2 * pr + 1) * hs + i) * ws; /* columns 0, 2, .. */
    const float *odd = in + ((plane * 4 + 2 * pr) * hs + i) * ws + 1;  /* columns 1, 3, .. */
    float *row = dst + y * w;
    for (int64_t j = 0; j < half; j++) {
      row[2 * j] = even[j] + b;
      row[2 * j + 1] = odd[j] + b;
    }
  }
}

void gen_depth_to_space2_f32(float *x, const float *in, const float *bias, int64_t n, int64_t c, int64_t h, int64_t w) {
  if (n * c * h * w > GEN_PARALLEL_GRAIN) {
#pragma omp parallel for
    for (int64_t plane = 0; plane < n * c; plane++) depth_to_space2_plane(x, in, bias, c, h, w, plane);
  } else {
    for (int64_t plane = 0; plane < n * c; plane++) depth_to_space2_plane(x, in, bias, c, h, w, plane);
  }
}

/* The 16 taps of kernel oc (of gen_polyphase_weight_f32). */
static void polyphase_kernel(float *dst, const float *src, int64_t oc, bool inverse) {
  for (int64_t r = 0; r < 4; r++)
    for (int64_t s = 0; s < 4; s++) {
      int64_t w4 = oc * 16 + r * 4 + s, w2 = ((oc * 4 + 2 * (r % 2) + s % 2) * 2 + r / 2) * 2 + s / 2;
      if (inverse)
        dst[w4] = src[w2];
      else
        dst[w2] = src[w4];
    }
}

void gen_polyphase_weight_f32(float *dst, const float *src, int64_t o, int64_t c, bool inverse) {
  if (o * c * 16 > GEN_PARALLEL_GRAIN) {
#pragma omp parallel for
    for (int64_t oc = 0; oc < o * c; oc++) polyphase_kernel(dst, src, oc, inverse);
  } else {
    for (int64_t oc = 0; oc < o * c; oc++) polyphase_kernel(dst, src, oc, inverse);
  }
}
