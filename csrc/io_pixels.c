/*
 * io_pixels.c — pixel work in one pass: training batches, and float images turned into bytes.
 *
 * Assembling training batches: rows of an image dataset picked by index, scaled to
 * floats, optionally mirrored left-right and padded, in one pass over the output. This is what a
 * DataLoader does for every batch, so it is one C loop rather than a chain of tensor ops
 * (gather -> convert -> scale -> flip -> pad would allocate and walk the batch five times).
 *
 *   images   {N, C, H, W}  uint8 (scaled: 0 -> lo, 255 -> hi) or float32/float64 (copied as is)
 *   rows     {B}           0-based indices into N
 *   flip     {B} or NULL   nonzero: mirror that sample left-right
 *   out      {B, C, H + 2 pad, W + 2 pad} float32, border filled with pad_value
 */
#include <string.h>

#include "io.h"

/* Everything one plane of gen_batch_images needs. */
typedef struct {
  float *dst;
  const char *base; /* the images, contiguous */
  gen_dtype dt;
  const int64_t *rows;
  const uint8_t *flip;
  const float *lut;
  float fill;
  int64_t c, h, w, pad, ow, plane_in, plane_out;
} batch_job;

/* Output plane p = (sample i, channel k). */
static void batch_plane(const batch_job *j, int64_t p) {
  int64_t i = p / j->c, k = p % j->c;
  bool mirror = j->flip && j->flip[i];
  float *o = j->dst + p * j->plane_out;
  size_t in_off = (size_t)((j->rows[i] * j->c + k) * j->plane_in);
  for (int64_t y = 0; y < j->pad * j->ow; y++) o[y] = j->fill;
  for (int64_t y = 0; y < j->h; y++) {
    float *orow = o + (y + j->pad) * j->ow;
    for (int64_t x = 0; x < j->pad; x++) orow[x] = orow[j->ow - 1 - x] = j->fill;
    orow += j->pad;
    if (j->dt == GEN_UINT8) {
      const uint8_t *irow = (const uint8_t *)j->base + in_off + (size_t)(y * j->w);
      if (mirror)
        for (int64_t x = 0; x < j->w; x++) orow[x] = j->lut[irow[j->w - 1 - x]];
      else
        for (int64_t x = 0; x < j->w; x++) orow[x] = j->lut[irow[x]];
    } else if (j->dt == GEN_FLOAT32) {
      const float *irow = (const float *)j->base + in_off + (size_t)(y * j->w);
      for (int64_t x = 0; x < j->w; x++) orow[x] = irow[mirror ? j->w - 1 - x : x];
    } else {
      const double *irow = (const double *)j->base + in_off + (size_t)(y * j->w);
      for (int64_t x = 0; x < j->w; x++) orow[x] = (float)irow[mirror ? j->w - 1 - x : x];
    }
  }
  for (int64_t y = (j->pad + j->h) * j->ow; y < j->plane_out; y++) o[y] = j->fill;
}

gen_tensor *gen_batch_images(gen_tensor *images, const int64_t *rows, int64_t b, const uint8_t *flip, int64_t pad, double lo,
                             double hi, double pad_value) {
  if (images->ndim != 4) {
    char s[GEN_SHAPE_STR_MAX];
    return gen_fail("images must be {N, C, H, W}, got %s", gen_shape_str(s, sizeof s, images->ndim, images->shape));
  }
  if (images->dtype == GEN_INT64) return gen_fail("images must be uint8, float32 or float64, got int64");
  if (pad < 0) return gen_fail("padding must be >= 0, got %lld", (long long)pad);
  int64_t n = images->shape[0], c = images->shape[1], h = images->shape[2], w = images->shape[3];
  for (int64_t i = 0; i < b; i++)
    if (rows[i] < 0 || rows[i] >= n)
      return gen_fail("index %lld out of range for %lld images", (long long)rows[i] + 1, (long long)n);
  gen_tensor *src = gen_contiguous_raw(images);
  if (!src) return NULL;
  int64_t oh = h + 2 * pad, ow = w + 2 * pad;
  gen_tensor *out = gen_empty(GEN_FLOAT32, 4, (int64_t[4]){b, c, oh, ow});
  if (!out) {
    gen_release(src);
    return NULL;
  }
  float *dst = (float *)out->storage->data;
  const char *base = gen_data_ptr(src);
  /* a table of the 256 values, computed in double: 0 and 255 map to exactly lo and hi */
  float lut[256];
  for (int v = 0; v < 256; v++) lut[v] = (float)(lo + (hi - lo) * v / 255.0);
  lut[255] = (float)hi;
  const float fill = (float)pad_value;
  const int64_t planes = b * c, plane_in = h * w, plane_out = oh * ow;
  const gen_dtype dt = src->dtype;
  /* a copy is memory-bound: threads only pay off for very large batches (a 64 x 32 x 32 batch takes
   * ~40 us on one core, less than waking a team costs when the machine is busy) */
  batch_job j = {.dst = dst,
                 .base = base,
                 .dt = dt,
                 .rows = rows,
                 .flip = flip,
                 .lut = lut,
                 .fill = fill,
                 .c = c,
                 .h = h,
                 .w = w,
                 .pad = pad,
                 .ow = ow,
                 .plane_in = plane_in,
                 .plane_out = plane_out};
  if (planes * plane_out > (1 << 22)) {
#pragma omp parallel for
    for (int64_t p = 0; p < planes; p++) batch_plane(&j, p);
  } else {
    for (int64_t p = 0; p < planes; p++) batch_plane(&j, p);
  }
  gen_release(src);
  return out;
}

/* Float (or any dtype) pixels -> uint8: lo maps to 0 and hi to 255, rounded to nearest, clamped;
 * NaN becomes 0 (a float -> integer cast of NaN is undefined behaviour in C). */
gen_tensor *gen_to_uint8_range(gen_tensor *t, double lo, double hi) {
  if (!(hi > lo)) return gen_fail("range must have lo < hi, got {%g, %g}", lo, hi);
  gen_tensor *src = gen_contiguous_raw(t);
  if (!src) return NULL;
  gen_tensor *out = gen_empty(GEN_UINT8, t->ndim, t->shape);
  if (!out) {
    gen_release(src);
    return NULL;
  }
  int64_t n = gen_numel(t);
  uint8_t *o = (uint8_t *)out->storage->data;
  const char *p = gen_data_ptr(src);
  const double scale = 255.0 / (hi - lo);
  if (src->dtype == GEN_FLOAT32) {
    const float *f = (const float *)p;
    for (int64_t i = 0; i < n; i++) {
      double v = ((double)f[i] - lo) * scale + 0.5;
      o[i] = v >= 1 ? (v < 255 ? (uint8_t)v : 255) : 0; /* NaN fails v >= 1 */
    }
  } else {
    for (int64_t i = 0; i < n; i++) {
      double v = (gen_read_f64(p + (size_t)i * gen_dtype_size(src->dtype), src->dtype) - lo) * scale + 0.5;
      o[i] = v >= 1 ? (v < 255 ? (uint8_t)v : 255) : 0;
    }
  }
  gen_release(src);
  return out;
}
