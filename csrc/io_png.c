/*
 * io_png.c — PNG through libpng: every input kind (gray, gray+alpha, RGB, RGBA, palette, 16-bit)
 * is read as 8-bit samples in {C, H, W}; writing uses the simplified API (png_image), which
 * reports errors in image.message.
 */
#include <errno.h>
#include <png.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io.h"

/* The classic API, for control over the conversions (16-bit samples are stripped to their high
 * byte, not gamma-converted as the simplified API would). libpng reports errors by longjmp to
 * the setjmp below; only this function's frames lie in between, and everything it allocated is
 * reachable from `volatile` locals, so the error path frees it all. */
static void on_error(png_structp png, png_const_charp msg) {
  char *buf = png_get_error_ptr(png);
  snprintf(buf, 256, "%s", msg);
  png_longjmp(png, 1);
}

static void on_warning(png_structp png, png_const_charp msg) {
  (void)png;
  (void)msg; /* warnings (e.g. unknown chunks) do not stop a read */
}

/* libpng's own reader says only "Read Error" at a premature end of file. */
static void read_data(png_structp png, png_bytep data, size_t n) {
  FILE *f = png_get_io_ptr(png);
  if (fread(data, 1, n, f) != n) png_error(png, ferror(f) ? "read error" : "truncated file (unexpected end of data)");
}

gen_tensor *gen_png_read(const char *path, int channels) {
  char message[256] = "corrupt or unsupported PNG";
  FILE *f = fopen(path, "rb");
  if (!f) return gen_fail("%s: cannot open (%s)", path, strerror(errno));
  unsigned char sig[8];
  if (fread(sig, 1, 8, f) != 8 || png_sig_cmp(sig, 0, 8) != 0) {
    fclose(f);
    return gen_fail("%s: not a PNG file (bad signature)", path);
  }
  fseek(f, 0, SEEK_END);
  long file_size = ftell(f);
  fseek(f, 8, SEEK_SET);
  png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, message, on_error, on_warning);
  png_infop info = png ? png_create_info_struct(png) : NULL;
  if (!info) {
    png_destroy_read_struct(&png, NULL, NULL);
    fclose(f);
    return gen_fail("out of memory");
  }
  uint8_t *volatile pixels = NULL;
  png_bytep *volatile rows = NULL;
  gen_tensor *volatile chw = NULL;
  if (setjmp(png_jmpbuf(png))) {
    free(pixels);
    free(rows);
    gen_release(chw);
    png_destroy_read_struct(&png, &info, NULL);
    fclose(f);
    return gen_fail("%s: %s", path, message);
  }
  png_set_read_fn(png, f, read_data);
  png_set_sig_bytes(png, 8);
  png_set_user_limits(png, 1u << 15, 1u << 15);
  png_read_info(png, info);
  /* A header may claim a huge image over a few bytes of data. Deflate expands at most about
   * 1032:1, so the filtered rows (one filter byte each) must fit in ~1100 times the file size:
   * checked before the pixel buffer is allocated. */
  uint64_t raw_bytes = ((uint64_t)png_get_rowbytes(png, info) + 1) * png_get_image_height(png, info);
  if (raw_bytes > (uint64_t)file_size * 1100 + (1u << 20)) {
    char claim[200];
    snprintf(claim, sizeof claim, "header claims %ux%u pixels but the file has only %ld bytes",
             (unsigned)png_get_image_width(png, info), (unsigned)png_get_image_height(png, info), file_size);
    png_error(png, claim);
  }
  int color = png_get_color_type(png, info);
  png_set_expand(png); /* palette -> RGB, gray < 8 bits -> 8, tRNS -> alpha */
  png_set_strip_16(png);
  bool has_alpha = (color & PNG_COLOR_MASK_ALPHA) || png_get_valid(png, info, PNG_INFO_tRNS);
  bool is_color = color & PNG_COLOR_MASK_COLOR;
  int c = channels ? channels : (is_color ? 3 : 1) + (has_alpha ? 1 : 0);
  if (c >= 3 && !is_color) png_set_gray_to_rgb(png);
  if (c <= 2 && is_color) png_set_rgb_to_gray(png, 1, -1, -1);
  if ((c == 1 || c == 3) && has_alpha) png_set_strip_alpha(png);
  if ((c == 2 || c == 4) && !has_alpha) png_set_add_alpha(png, 0xFF, PNG_FILLER_AFTER);
  png_read_update_info(png, info);
  int64_t w = png_get_image_width(png, info), h = png_get_image_height(png, info);
  if ((int)png_get_channels(png, info) != c) png_error(png, "unexpected channel count");
  bool ovf = false;
  int64_t bytes = gen_size_mul(gen_size_mul(w, h, &ovf), c, &ovf);
  if (ovf || bytes > GEN_MAX_SIZE) png_error(png, "image dimensions too large");
  pixels = malloc((size_t)(bytes ? bytes : 1));
  rows = malloc(sizeof(png_bytep) * (size_t)h);
  if (!pixels || !rows) png_error(png, "out of memory");
  for (int64_t y = 0; y < h; y++) rows[y] = pixels + y * w * c;
  png_read_image(png, rows);
  png_read_end(png, NULL);
  chw = gen_empty(GEN_UINT8, 3, (int64_t[3]){c, h, w});
  if (chw) {
    uint8_t *dst = chw->storage->data;
    for (int64_t y = 0; y < h; y++)
      for (int64_t x = 0; x < w; x++)
        for (int k = 0; k < c; k++) dst[(k * h + y) * w + x] = pixels[(y * w + x) * c + k];
  }
  gen_tensor *result = chw;
  free(pixels);
  free(rows);
  png_destroy_read_struct(&png, &info, NULL);
  fclose(f);
  return result;
}

int gen_png_write(const char *path, gen_tensor *t) {
  if (t->dtype != GEN_UINT8 || t->ndim != 3 || t->shape[0] < 1 || t->shape[0] > 4 || t->shape[1] < 1 || t->shape[2] < 1) {
    char s[GEN_SHAPE_STR_MAX];
    return gen_fail_int("needs a uint8 {C, H, W} image with C in 1..4, got %s %s", gen_dtype_name(t->dtype),
                        gen_shape_str(s, sizeof s, t->ndim, t->shape));
  }
  int64_t c = t->shape[0], h = t->shape[1], w = t->shape[2];
  if (w > 0x7fffffff / 4 || h > 0x7fffffff)
    return gen_fail_int("image of %lldx%lld pixels is too large for PNG", (long long)h, (long long)w);
  gen_tensor *chw = gen_contiguous_raw(t);
  gen_tensor *hwc = chw ? gen_empty(GEN_UINT8, 3, (int64_t[3]){h, w, c}) : NULL;
  if (!hwc) {
    gen_release(chw);
    return -1;
  }
  const uint8_t *src = (const uint8_t *)gen_data_ptr(chw);
  uint8_t *dst = hwc->storage->data;
  for (int64_t k = 0; k < c; k++)
    for (int64_t y = 0; y < h; y++)
      for (int64_t x = 0; x < w; x++) dst[(y * w + x) * c + k] = src[(k * h + y) * w + x];
  gen_release(chw);
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
