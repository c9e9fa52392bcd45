/*
 * io_png.c — PNG through libpng's simplified API (png_image), which converts every input kind
 * (gray, gray+alpha, RGB, RGBA, palette, 16-bit) to 8-bit samples and reports errors in
 * image.message instead of longjmp-ing into our frames.
 */
#include <png.h>
#include <string.h>

#include "io.h"

gen_tensor *gen_png_read(const char *path, int channels) {
  png_image img;
  memset(&img, 0, sizeof img);
  img.version = PNG_IMAGE_VERSION;
  if (!png_image_begin_read_from_file(&img, path)) return gen_fail("%s: %s", path, img.message);
  int c = channels ? channels : (int)PNG_IMAGE_SAMPLE_CHANNELS(img.format);
  static const png_uint_32 formats[5] = {0, PNG_FORMAT_GRAY, PNG_FORMAT_GA, PNG_FORMAT_RGB, PNG_FORMAT_RGBA};
  img.format = formats[c];
  if ((uint64_t)img.width * img.height > (1u << 28)) {
    png_image_free(&img);
    return gen_fail("%s: %ux%u pixels is too large", path, img.width, img.height);
  }
  int64_t h = img.height, w = img.width;
  gen_tensor *hwc = gen_empty(GEN_UINT8, 3, (int64_t[3]){h, w, c});
  if (!hwc) {
    png_image_free(&img);
    return NULL;
  }
  if (!png_image_finish_read(&img, NULL, hwc->storage->data, 0, NULL)) {
    gen_release(hwc);
    return gen_fail("%s: %s", path, img.message);
  }
  gen_tensor *chw = gen_empty(GEN_UINT8, 3, (int64_t[3]){c, h, w});
  if (chw) {
    const uint8_t *src = hwc->storage->data;
    uint8_t *dst = chw->storage->data;
    for (int64_t y = 0; y < h; y++)
      for (int64_t x = 0; x < w; x++)
        for (int k = 0; k < c; k++) dst[(k * h + y) * w + x] = src[(y * w + x) * c + k];
  }
  gen_release(hwc);
  return chw;
}

int gen_png_write(const char *path, gen_tensor *t) {
  if (t->dtype != GEN_UINT8 || t->ndim != 3 || t->shape[0] < 1 || t->shape[0] > 4 || t->shape[1] < 1 || t->shape[2] < 1) {
    char s[GEN_SHAPE_STR_MAX];
    return gen_fail_int("needs a uint8 {C, H, W} image with C in 1..4, got %s %s", gen_dtype_name(t->dtype),
                        gen_shape_str(s, sizeof s, t->ndim, t->shape));
  }
  int64_t c = t->shape[0], h = t->shape[1], w = t->shape[2];
  gen_tensor *hwc = gen_empty(GEN_UINT8, 3, (int64_t[3]){h, w, c});
  if (!hwc) return -1;
  uint8_t *dst = hwc->storage->data;
  for (int64_t k = 0; k < c; k++)
    for (int64_t y = 0; y < h; y++)
      for (int64_t x = 0; x < w; x++) dst[(y * w + x) * c + k] = (uint8_t)gen_get_flat(t, (k * h + y) * w + x);
  png_image img;
  memset(&img, 0, sizeof img);
  img.version = PNG_IMAGE_VERSION;
  img.width = (png_uint_32)w;
  img.height = (png_uint_32)h;
  static const png_uint_32 formats[5] = {0, PNG_FORMAT_GRAY, PNG_FORMAT_GA, PNG_FORMAT_RGB, PNG_FORMAT_RGBA};
  img.format = formats[c];
  int ok = png_image_write_to_file(&img, path, 0, hwc->storage->data, 0, NULL);
  gen_release(hwc);
  return ok ? 0 : gen_fail_int("%s: %s", path, img.message);
}
