/* io.h — IDX and PNG files (io_idx.c, io_png.c). Every reader validates before it allocates. */
#ifndef GEN_IO_H
#define GEN_IO_H

#include "gen.h"

/* IDX (MNIST's format), gzip-compressed or plain: ubyte -> uint8, sbyte/short/int -> int64,
 * float -> float32, double -> float64. */
gen_tensor *gen_idx_read(const char *path);
/* uint8 -> ubyte, int64 -> int (values must fit 32 bits), float32 -> float, float64 -> double */
int gen_idx_write(const char *path, gen_tensor *t, bool gzip);

/* PNG of any kind (gray, gray+alpha, RGB, RGBA, palette, 16-bit) -> uint8 {C, H, W}; channels 0
 * keeps the file's own (1, 2, 3 or 4), or 1, 3, 4 converts. */
gen_tensor *gen_png_read(const char *path, int channels);
/* uint8 {C, H, W} with C in 1..4 */
int gen_png_write(const char *path, gen_tensor *t);

/* A training batch from an image dataset (io_pixels.c): images {N, C, H, W} (uint8 scaled to
 * [lo, hi]; float32/float64 copied as they are), rows[0..b) 0-based, flip NULL or one flag per
 * sample (mirror left-right), pad pixels of pad_value on every side -> float32 {b, C, H+2p, W+2p}. */
gen_tensor *gen_batch_images(gen_tensor *images, const int64_t *rows, int64_t b, const uint8_t *flip, int64_t pad, double lo,
                             double hi, double pad_value);

/* Pixels of any dtype -> uint8 (io_pixels.c): lo -> 0, hi -> 255, rounded, clamped, NaN -> 0. */
gen_tensor *gen_to_uint8_range(gen_tensor *t, double lo, double hi);

#endif
