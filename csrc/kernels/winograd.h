/* winograd.h — float32 stride-1 convolutions with k x k kernels, k = 3 or 2, by Winograd's minimal
 * filtering F(4x4, kxk) (winograd.c; Lavin and Gray, "Fast Algorithms for Convolutional Neural
 * Networks", 2015).
 *
 * Legend: x {N, C, H, W}, w {O, C, k, k}, out {N, O, Ho, Wo} with Ho = H + 2 ph - k + 1. The output
 * is cut into 4x4 tiles, each computed from an alpha x alpha input patch (alpha = k + 3):
 *   out_tile = A^T [ sum_c (G w_oc G^T) . (B^T patch_c B) ] A      ("." elementwise)
 * so the alpha^2 positions xi of the transformed domain are independent GEMMs
 * M_xi {O, tiles} = U_xi {O, C} V_xi {C, tiles}: 36 multiplies per 4x4 tile and channel pair where
 * direct convolution needs 144 (k = 3), 25 where it needs 64 (k = 2). Tiles are numbered
 * t = (n * th + ty) * tw + tx; work is done on chunks of consecutive tiles, the caller's unit of
 * parallel work.
 *
 * Backward: the input gradient is the forward convolution of dout with the flipped, transposed
 * weight and padding k - 1 - p (adjoint = true below); the weight gradient is, per position xi,
 *   dU_xi {O, C} = sum over tiles (A dout_tile A^T)_xi (B^T patch B)_xi,   dw = G^T dU G.
 *
 * Arguments, as in every kernel: outputs first, then inputs, then the geometry and sizes, scratch last.
 */
#ifndef GEN_KERNELS_WINOGRAD_H
#define GEN_KERNELS_WINOGRAD_H

#include <stdbool.h>
#include <stdint.h>

typedef struct {
  int64_t n, c, h, w; /* input {N, C, H, W} */
  int64_t o;          /* output channels */
  int64_t k;          /* kernel size, 3 or 2 */
  int64_t alpha;      /* transformed points per dimension, k + 3; planes = alpha^2 */
  int64_t planes;
  int64_t ph, pw;     /* zero padding, each 0..k-1 */
  int64_t ho, wo;     /* output {N, O, Ho, Wo} */
  int64_t th, tw;     /* 4x4 output tiles per image, ceil(Ho / 4) x ceil(Wo / 4) */
  int64_t opad, cpad; /* O rounded up to the GEMMs' row panels, C to their column panels */
  int64_t zw;         /* row length of the vertically transformed input bands */
} gen_wino_geom;

/* The kernels need AVX2 and FMA; callers use im2col where this is false. */
bool gen_wino_available(void);

gen_wino_geom gen_wino_geometry(int64_t n, int64_t c, int64_t h, int64_t w, int64_t o, int64_t k, int64_t ph, int64_t pw);
static inline int64_t gen_wino_tiles(const gen_wino_geom *g) { return g->n * g->th * g->tw; }

/* The transformed weights U, as the forward GEMMs' A panels: gen_wino_weight_floats(g) floats.
 * w is {O, C, k, k}; with adjoint it is {C, O, k, k} and the convolution uses its flipped
 * transpose (the input gradient of a conv2d whose weight w maps O channels to C). */
int64_t gen_wino_weight_floats(const gen_wino_geom *g);
void gen_wino_transform_weight(float *u, const float *w, const gen_wino_geom *g, bool adjoint);

/* Forward: tiles per chunk (balanced over `threads`), scratch floats for a chunk of nt tiles, and
 * one chunk [t0, t0 + nt) of out (out = conv(x) + bias; bias {O} or NULL). */
int64_t gen_wino_forward_chunk_tiles(const gen_wino_geom *g, int threads);
int64_t gen_wino_forward_scratch_floats(const gen_wino_geom *g, int64_t nt);
void gen_wino_forward(float *out, const float *x, const float *u, const float *bias, const gen_wino_geom *g, int64_t t0,
                      int64_t nt, float *scratch);

/* Weight gradient: dU of tiles [t0, t0 + nt) written to (or, with accumulate, added to) du
 * {planes, opad, cpad}; gen_wino_weight_grad_finish turns a summed dU into dw {O, C, k, k}. */
int64_t gen_wino_weight_grad_chunk_tiles(const gen_wino_geom *g);
int64_t gen_wino_weight_grad_scratch_floats(const gen_wino_geom *g);
int64_t gen_wino_du_floats(const gen_wino_geom *g);
void gen_wino_weight_grad(float *du, const float *x, const float *dout, const gen_wino_geom *g, int64_t t0, int64_t nt,
                          bool accumulate, float *scratch);
void gen_wino_weight_grad_finish(float *dw, const float *du, const gen_wino_geom *g);

#endif
