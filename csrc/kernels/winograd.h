/* winograd.h — float32 3x3 stride-1 convolutions by Winograd's minimal filtering F(4x4, 3x3)
 * (winograd.c; Lavin and Gray, "Fast Algorithms for Convolutional Neural Networks", 2015).
 *
 * Legend: x {N, C, H, W}, w {O, C, 3, 3}, out {N, O, Ho, Wo} with Ho = H + 2 ph - 2 (stride 1).
 * The output is cut into 4x4 tiles, each computed from a 6x6 input patch:
 *   out_tile = A^T [ sum_c (G w_oc G^T) . (B^T patch_c B) ] A      ("." elementwise, 6x6)
 * so per tile the 36 positions xi of the 6x6 transformed domain are 36 independent GEMMs
 * M_xi {O, tiles} = U_xi {O, C} V_xi {C, tiles}: 36 multiplies where direct convolution needs 144
 * per 4x4 tile and channel pair, 4x fewer. Tiles are numbered t = (n * th + ty) * tw + tx; work
 * is done on chunks of consecutive tiles, the caller's unit of parallel work.
 *
 * Backward: the input gradient is the forward convolution of dout with the flipped, transposed
 * weight and padding 2 - p (adjoint = true below); the weight gradient is, per position xi,
 *   dU_xi {O, C} = sum over tiles (A dout_tile A^T)_xi (B^T patch B)_xi,   dw = G^T dU G.
 */
#ifndef GEN_KERNELS_WINOGRAD_H
#define GEN_KERNELS_WINOGRAD_H

#include <stdbool.h>
#include <stdint.h>

typedef struct {
  int64_t n, c, h, w; /* input {N, C, H, W} */
  int64_t o;          /* output channels */
  int64_t ph, pw;     /* zero padding, each 0..2 */
  int64_t ho, wo;     /* output {N, O, Ho, Wo} */
  int64_t th, tw;     /* 4x4 output tiles per image, ceil(Ho / 4) x ceil(Wo / 4) */
  int64_t opad, cpad; /* O rounded up to the GEMMs' row panels, C to their column panels */
  int64_t zw;         /* row length of the vertically transformed input bands */
} gen_wino_geom;

/* The kernels need AVX2 and FMA; callers use im2col where this is false. */
bool gen_wino_available(void);

gen_wino_geom gen_wino_geometry(int64_t n, int64_t c, int64_t h, int64_t w, int64_t o, int64_t ph, int64_t pw);
static inline int64_t gen_wino_tiles(const gen_wino_geom *g) { return g->n * g->th * g->tw; }

/* The transformed weights U, as the forward GEMMs' A panels: gen_wino_weight_floats(g) floats.
 * w is {O, C, 3, 3}; with adjoint it is {C, O, 3, 3} and the convolution uses its flipped
 * transpose (the input gradient of a conv2d whose weight w maps O channels to C). */
int64_t gen_wino_weight_floats(const gen_wino_geom *g);
void gen_wino_transform_weight(const gen_wino_geom *g, const float *w, bool adjoint, float *u);

/* Forward: tiles per chunk, scratch floats per chunk, and one chunk [t0, t0 + nt) of out
 * (out = conv(x) + bias; bias {O} or NULL). */
int64_t gen_wino_forward_chunk_tiles(const gen_wino_geom *g);
int64_t gen_wino_forward_scratch_floats(const gen_wino_geom *g);
void gen_wino_forward(const gen_wino_geom *g, const float *x, const float *u, const float *bias, float *out, int64_t t0,
                      int64_t nt, float *scratch);

/* Weight gradient: dU of tiles [t0, t0 + nt) written to (or, with accumulate, added to) du
 * {36, opad, cpad}; gen_wino_weight_grad_finish turns a summed dU into dw {O, C, 3, 3}. */
int64_t gen_wino_weight_grad_chunk_tiles(const gen_wino_geom *g);
int64_t gen_wino_weight_grad_scratch_floats(const gen_wino_geom *g);
int64_t gen_wino_du_floats(const gen_wino_geom *g);
void gen_wino_weight_grad(const gen_wino_geom *g, const float *x, const float *dout, int64_t t0, int64_t nt, float *du,
                          bool accumulate, float *scratch);
void gen_wino_weight_grad_finish(const gen_wino_geom *g, const float *du, float *dw);

#endif
