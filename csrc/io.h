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

#endif
