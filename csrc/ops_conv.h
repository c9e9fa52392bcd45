/* ops_conv.h — 2-d convolution and transposed convolution (ops_conv.c). */
#ifndef GEN_OPS_CONV_H
#define GEN_OPS_CONV_H

#include "gen.h"

typedef struct {
  int64_t stride[2], padding[2], dilation[2], output_padding[2], groups;
} gen_conv_opts;

/* x {N, C, H, W}, w {O, C/groups, kh, kw}, b {O} or NULL */
gen_tensor *gen_conv2d(gen_tensor *x, gen_tensor *w, gen_tensor *b, const gen_conv_opts *o);
/* x {N, C, H, W}, w {C, O/groups, kh, kw}, b {O} or NULL */
gen_tensor *gen_conv_transpose2d(gen_tensor *x, gen_tensor *w, gen_tensor *b, const gen_conv_opts *o);

/* Winograd F(4x4, 3x3) for float32 3x3 stride-1 convolutions (on by default); false forces im2col.
 * Returns the previous setting. */
bool gen_conv_set_winograd(bool enabled);

#endif
