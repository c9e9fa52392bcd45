/* ops_pool.h — pooling, resampling and padding on {N, C, H, W} (ops_pool.c). */
#ifndef GEN_OPS_POOL_H
#define GEN_OPS_POOL_H

#include "gen.h"

gen_tensor *gen_max_pool2d(gen_tensor *x, const int64_t k[2], const int64_t stride[2], const int64_t pad[2]);
gen_tensor *gen_avg_pool2d(gen_tensor *x, const int64_t k[2], const int64_t stride[2], const int64_t pad[2],
                           bool count_include_pad);
/* out_h, out_w: the output size; scale_h, scale_w: the scale factors it came from, or 0 when the
 * size was given (PyTorch maps coordinates by 1/scale then, else by in/out); bilinear uses
 * align_corners = false (PyTorch's default) */
gen_tensor *gen_upsample(gen_tensor *x, int64_t out_h, int64_t out_w, double scale_h, double scale_w, bool bilinear);

typedef enum { GEN_PAD_CONSTANT, GEN_PAD_REFLECT, GEN_PAD_REPLICATE } gen_pad_mode;
/* pads = {left, right, top, bottom} on the last two dims (any rank >= 2) */
gen_tensor *gen_pad(gen_tensor *x, const int64_t pads[4], gen_pad_mode mode, double value);

#endif
