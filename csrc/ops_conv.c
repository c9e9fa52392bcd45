/*
 * ops_conv.c — conv2d and conv_transpose2d as GEMMs per group over chunks of the batch.
 *
 * Legend: x {N, C, H, W}; conv2d weight {O, C/G, kh, kw}; K = C/G * kh * kw; P = N * Ho * Wo.
 *   conv2d forward:   cols = im2col(x) {C*kh*kw, P};  out_g {O/G, P} = W_g {O/G, K} cols_g
 *          backward:  dW_g = dout_g cols_g^T;  dcols_g = W_g^T dout_g, dx = col2im(dcols);  db = sum dout
 * conv_transpose2d is the adjoint of conv2d (its weight {C, O/G, kh, kw} is a conv2d weight from
 * O to C channels), so its forward is conv2d's input-gradient computation and vice versa:
 *   forward:   cols_g {O/G*kh*kw, N*H*W} = W_g^T x_g, out = col2im(cols)
 *   backward:  dcols = im2col(dout);  dx_g = W_g dcols_g;  dW_g = x_g dcols_g^T;  db = sum dout
 * Matrices are row-major; the "cm" layout {C, N*S} is the batch with channels outermost. The
 * formulas hold per chunk of images (chunk_images): cols never exceed a few MB, and chunks are
 * the unit of parallel work.
 * im2col is recomputed in backward rather than saved, trading a cheap pass for memory. The bias is
 * fused into the layout change (conv2d) or the initial fill of the col2im target (transposed).
 * A 1x1, stride-1, unpadded, ungrouped convolution on images of >= 256 pixels skips im2col and
 * layout changes: one GEMM per image, each already large (see per_image_1x1).
 */
#include "ops_conv.h"

#include <omp.h>
#include <string.h>

#include "autograd.h"
#include "kernels/gemm.h"
#include "kernels/im2col.h"
#include "kernels/winograd.h"
#include "ops_reduce.h"
#include "ops_shape.h"

/* The column matrix of one image, C*kh*kw x Ho*Wo elements of up to 8 bytes (chunk_images sizes
 * chunks by it), must be computable: an empty weight or batch can carry sizes that overflow it
 * (found by fuzzing). */
static int check_cols(const gen_conv_geom *g) {
  bool ovf = false;
  int64_t k = gen_size_mul(gen_size_mul(g->c, g->kh, &ovf), g->kw, &ovf);
  gen_size_mul(gen_size_mul(gen_size_mul(k, g->ho, &ovf), g->wo, &ovf), 8, &ovf);
  gen_size_mul(g->h, g->w, &ovf);
  if (!ovf) return 0;
  return gen_fail_int("sizes overflow: %lld channels, kernel %lldx%lld, input %lldx%lld, output %lldx%lld", (long long)g->c,
                      (long long)g->kh, (long long)g->kw, (long long)g->h, (long long)g->w, (long long)g->ho, (long long)g->wo);
}

static int geometry(const gen_tensor *img, int64_t kh, int64_t kw, const gen_conv_opts *o, gen_conv_geom *g) {
  *g = (gen_conv_geom){.n = img->shape[0],
                       .c = img->shape[1],
                       .h = img->shape[2],
                       .w = img->shape[3],
                       .kh = kh,
                       .kw = kw,
                       .sh = o->stride[0],
                       .sw = o->stride[1],
                       .ph = o->padding[0],
                       .pw = o->padding[1],
                       .dh = o->dilation[0],
                       .dw = o->dilation[1]};
  bool ovf = false;
  int64_t eh = gen_size_add(gen_size_mul(g->dh, kh - 1, &ovf), 1, &ovf);
  int64_t ew = gen_size_add(gen_size_mul(g->dw, kw - 1, &ovf), 1, &ovf);
  int64_t ph = gen_size_add(g->h, gen_size_mul(2, g->ph, &ovf), &ovf);
  int64_t pw = gen_size_add(g->w, gen_size_mul(2, g->pw, &ovf), &ovf);
  if (ovf)
    return gen_fail_int("sizes overflow: input %lldx%lld, kernel %lldx%lld, padding %lldx%lld, dilation %lldx%lld",
                        (long long)g->h, (long long)g->w, (long long)kh, (long long)kw, (long long)g->ph, (long long)g->pw,
                        (long long)g->dh, (long long)g->dw);
  if (ph < eh || pw < ew)
    return gen_fail_int("kernel %lldx%lld (dilated %lldx%lld) is larger than the padded input %lldx%lld", (long long)kh,
                        (long long)kw, (long long)eh, (long long)ew, (long long)ph, (long long)pw);
  g->ho = (ph - eh) / g->sh + 1;
  g->wo = (pw - ew) / g->sw + 1;
  return check_cols(g);
}

static int check_opts(const gen_conv_opts *o) {
  for (int i = 0; i < 2; i++) {
    if (o->stride[i] < 1) return gen_fail_int("stride must be >= 1, got %lld", (long long)o->stride[i]);
    if (o->dilation[i] < 1) return gen_fail_int("dilation must be >= 1, got %lld", (long long)o->dilation[i]);
    if (o->padding[i] < 0) return gen_fail_int("padding must be >= 0, got %lld", (long long)o->padding[i]);
    if (o->output_padding[i] < 0 || (o->output_padding[i] >= o->stride[i] && o->output_padding[i] >= o->dilation[i]))
      return gen_fail_int("output_padding %lld must be smaller than the stride or the dilation", (long long)o->output_padding[i]);
  }
  if (o->groups < 1) return gen_fail_int("groups must be >= 1, got %lld", (long long)o->groups);
  return 0;
}

static int check_args(const gen_tensor *x, const gen_tensor *w, const gen_tensor *b, int64_t cin_expected_per_group,
                      bool transposed, const gen_conv_opts *o) {
  char sx[GEN_SHAPE_STR_MAX], sw[GEN_SHAPE_STR_MAX];
  if (check_opts(o) < 0) return -1;
  if (x->ndim != 4) return gen_fail_int("input must be {N, C, H, W}, got %s", gen_shape_str(sx, sizeof sx, x->ndim, x->shape));
  if (w->ndim != 4) return gen_fail_int("weight must be 4-d, got %s", gen_shape_str(sw, sizeof sw, w->ndim, w->shape));
  if (x->dtype != w->dtype || !gen_dtype_is_float(x->dtype) || (b && b->dtype != x->dtype))
    return gen_fail_int("input, weight and bias must share one float dtype (got %s and %s)", gen_dtype_name(x->dtype),
                        gen_dtype_name(w->dtype));
  int64_t c = x->shape[1], groups = o->groups;
  if (c % groups != 0)
    return gen_fail_int("groups (%lld) must divide the input's %lld channels", (long long)groups, (long long)c);
  if (!transposed && w->shape[0] % groups != 0)
    return gen_fail_int("groups (%lld) must divide the weight's %lld output channels", (long long)groups, (long long)w->shape[0]);
  bool ovf = false;
  if (gen_size_mul(cin_expected_per_group, groups, &ovf) != c || ovf)
    return gen_fail_int("input %s has %lld channels but weight %s expects %lld x groups(%lld) = %lld",
                        gen_shape_str(sx, sizeof sx, x->ndim, x->shape), (long long)c,
                        gen_shape_str(sw, sizeof sw, w->ndim, w->shape), (long long)cin_expected_per_group, (long long)groups,
                        (long long)(cin_expected_per_group * groups));
  int64_t out_channels = transposed ? gen_size_mul(w->shape[1], groups, &ovf) : w->shape[0];
  if (ovf)
    return gen_fail_int("groups %lld times the weight's %lld channels overflows", (long long)groups, (long long)w->shape[1]);
  if (b && (b->ndim != 1 || b->shape[0] != out_channels))
    return gen_fail_int("bias must be {%lld}, got %s", (long long)out_channels, gen_shape_str(sx, sizeof sx, b->ndim, b->shape));
  return 0;
}

/* db[c], summed over n and s in double, in a fixed order. */
static void bias_grad_channel(const void *src, void *dst, int64_t n, int64_t o, int64_t s, bool f32, int64_t c) {
  double acc = 0;
  for (int64_t i = 0; i < n; i++) {
    if (f32) {
      const float *row = (const float *)src + (i * o + c) * s;
      for (int64_t k = 0; k < s; k++) acc += row[k];
    } else {
      const double *row = (const double *)src + (i * o + c) * s;
      for (int64_t k = 0; k < s; k++) acc += row[k];
    }
  }
  if (f32)
    ((float *)dst)[c] = (float)acc;
  else
    ((double *)dst)[c] = acc;
}

/* db[o] = sum over n, s of dout {N, O, S}: parallel over channels, each summed in double in a
 * fixed order */
static gen_tensor *bias_grad(const gen_tensor *dout, const gen_edge *e) {
  gen_tensor *db = gen_empty(e->dtype, 1, e->shape);
  if (!db) return NULL;
  int64_t n = dout->shape[0], o = dout->shape[1], s = dout->shape[2] * dout->shape[3];
  bool f32 = dout->dtype == GEN_FLOAT32;
  const void *src = gen_data_ptr(dout);
  void *dst = gen_data_ptr(db);
  if (n * o * s > GEN_PARALLEL_GRAIN) {
#pragma omp parallel for
    for (int64_t c = 0; c < o; c++) bias_grad_channel(src, dst, n, o, s, f32, c);
  } else {
    for (int64_t c = 0; c < o; c++) bias_grad_channel(src, dst, n, o, s, f32, c);
  }
  return db;
}

static gen_tensor *new_buffer(gen_dtype dt, int64_t rows, int64_t cols) { return gen_empty(dt, 2, (int64_t[2]){rows, cols}); }

/* ---------------------------------------------------------------- the two directions, shared */

/* A 1x1, stride-1, unpadded, ungrouped convolution on large enough images: each image is already
 * the {C, H*W} matrix, so one GEMM per image needs no im2col and no layout copies. On small images
 * (late layers, 4x4 DCGAN maps) the batched path's single large GEMM wins instead. */
static bool per_image_1x1(const gen_conv_geom *g, int64_t groups) {
  return g->kh == 1 && g->kw == 1 && g->sh == 1 && g->sw == 1 && g->ph == 0 && g->pw == 0 && groups == 1 && g->h * g->w >= 256;
}

/* Small per-image GEMMs (a flow's 1x1 convolutions over 4-48 channels) are below the size that
 * gen_gemm_blocked splits, so they would run on one thread, one image after another: whole images
 * go to the threads instead. Whether they do depends on the geometry alone (the weight gradient's
 * sums follow the same split at any thread count). */
#define IMAGES_PER_PART 8
static bool small_per_image(int64_t m, int64_t n, int64_t k, int64_t images, gen_dtype dt) {
  return !gen_gemm_splits(m, n, k, dt) && images >= 2 * IMAGES_PER_PART;
}

/* C_i = op(A) B_i (+ C_i when accumulate, the bias already filled in) for every image i: one
 * matrix A shared, B_i and C_i at the given strides between images */
static void per_image_gemms(bool ta, int64_t m, int64_t n, int64_t k, const char *a, int64_t lda, const char *b, int64_t b_stride,
                            char *c, int64_t c_stride, bool accumulate, int64_t images, gen_dtype dt) {
  size_t es = gen_dtype_size(dt);
  if (small_per_image(m, n, k, images, dt) && gen_get_num_threads() > 1) {
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < images; i++)
      gen_gemm(ta, false, m, n, k, 1, a, lda, b + (size_t)(i * b_stride) * es, n, accumulate ? 1 : 0,
               c + (size_t)(i * c_stride) * es, n, dt);
  } else {
    for (int64_t i = 0; i < images; i++)
      gen_gemm_blocked(ta, false, m, n, k, 1, a, lda, b + (size_t)(i * b_stride) * es, n, accumulate ? 1 : 0,
                       c + (size_t)(i * c_stride) * es, n, dt, gen_get_num_threads());
  }
}

/* Images per im2col chunk. One column matrix for the whole batch is C*kh*kw times the image
 * (226 MB for a 96-channel 3x3 conv on 64 images of 32x32): it overflowed the allocator's cache,
 * so every call paid fresh page faults, and it had left the caches before the GEMM read it. A
 * chunk of at most COLS_CHUNK_BYTES is reused from the allocator and still warm in L2/L3. A batch
 * is also cut into at least MIN_CHUNKS chunks (when it has that many images) so that threads can
 * share it. Chunk sizes depend only on the geometry, never on the thread count, so results do
 * not either. */
#define COLS_CHUNK_BYTES ((int64_t)4 << 20)
#define MIN_CHUNKS       8
static int64_t chunk_images(const gen_conv_geom *g, size_t es) {
  int64_t per_image = g->c * g->kh * g->kw * g->ho * g->wo * (int64_t)es;
  int64_t nb = per_image > 0 ? COLS_CHUNK_BYTES / per_image : g->n;
  int64_t spread = (g->n + MIN_CHUNKS - 1) / MIN_CHUNKS;
  if (nb > spread) nb = spread;
  return nb < 1 ? 1 : nb;
}
static gen_conv_geom chunk(const gen_conv_geom *g, int64_t n0, int64_t nb) {
  gen_conv_geom s = *g;
  s.n = g->n - n0 < nb ? g->n - n0 : nb;
  return s;
}

/* Everything a chunk of a convolution needs: pointers to whole tensors and the chunk layout.
 * Scratch holds one slot per thread (columns, then the channel-major output in the forward). */
typedef struct {
  const gen_conv_geom *g;
  gen_dtype dt;
  size_t es;
  int64_t groups, o, k, nb, hwo, p;
  const char *x, *w, *b, *dm;
  char *scratch, *out;
  int64_t slot_bytes;
  /* Winograd: its geometry, transformed weights, tiles per chunk and per weight-gradient segment */
  const gen_wino_geom *wg;
  const float *u;
  int64_t nt, per_segment;
} conv_job;

typedef void (*chunk_fn)(const conv_job *j, int64_t chunk_index, char *slot);

/* The part of an im2col job every direction shares: the geometry and the chunking of the batch. */
static conv_job im2col_job(const gen_conv_geom *g, gen_dtype dt, int64_t groups, int64_t o, int64_t k) {
  size_t es = gen_dtype_size(dt);
  return (conv_job){
      .g = g, .dt = dt, .es = es, .groups = groups, .o = o, .k = k, .nb = chunk_images(g, es), .hwo = g->ho * g->wo};
}

/* With several threads and at least as many chunks, the chunks run on separate threads, each with
 * its own scratch slot and single-threaded GEMMs (OpenBLAS runs serially inside a parallel
 * region): one fork/join per convolution instead of one per GEMM, and a thread slowed by another
 * process simply takes fewer chunks (dynamic schedule). Otherwise the chunks run in order and
 * each GEMM uses the threads. */
static int chunk_threads(int64_t nchunks) {
  int t = gen_get_num_threads();
  return t > 1 && nchunks >= t ? t : 1;
}
static void run_chunks(const conv_job *j, int threads, int64_t nchunks, chunk_fn fn) {
  if (threads > 1) {
#pragma omp parallel for schedule(dynamic) num_threads(threads)
    for (int64_t i = 0; i < nchunks; i++) fn(j, i, j->scratch + (size_t)(omp_get_thread_num() * j->slot_bytes));
  } else {
    for (int64_t i = 0; i < nchunks; i++) fn(j, i, j->scratch);
  }
}
static gen_tensor *new_scratch(int threads, int64_t slot_bytes) {
  return gen_empty(GEN_UINT8, 1, (int64_t[1]){threads * slot_bytes});
}

/* ---------------------------------------------------------------- Winograd F(4x4, 3x3) and F(4x4, 2x2)
 * float32 stride-1 convolutions with 3x3 (or 2x2) kernels take 4x (2.6x) fewer multiplies this way
 * (kernels/winograd.h): the forward, and the input gradient as the forward of the flipped
 * weights, run over chunks of output tiles; the weight gradient sums fixed segments of tiles, each
 * into its own partial dU, added in segment order, so results do not depend on the thread count.
 * Layers with fewer than 8 channels on either side (a UNet's first and last convolution) keep
 * im2col: their GEMMs would be mostly padding. gen_conv_set_winograd(false) forces im2col.
 *
 * 4x4 stride-2 convolutions with padding 1 (DCGAN's, and their transposes) are 2x2 stride-1
 * convolutions of the polyphase image: X = space_to_depth(pad(x)) {N, 4C, H/2 + 1, W/2 + 1}, weight
 * w2[o][4c + 2 pr + ps][a][b] = w[o][c][2a + pr][2b + ps]. So they run through F(4x4, 2x2) too. */
#define WINO_SEGMENTS 8
#define SEGMENT_TILES 128
static bool winograd_enabled = true; /* gen_wino_available() follows the ISA level, which GEN_ISA may lower */
bool gen_conv_set_winograd(bool enabled) {
  bool was = winograd_enabled;
  winograd_enabled = enabled;
  return was;
}

static bool use_winograd(const gen_conv_geom *g, int64_t groups, int64_t out_channels, gen_dtype dt) {
  return winograd_enabled && gen_wino_available() && dt == GEN_FLOAT32 && groups == 1 && g->kh == g->kw &&
         (g->kh == 3 || g->kh == 2) && g->sh == 1 && g->sw == 1 && g->dh == 1 && g->dw == 1 && g->ph < g->kh && g->pw < g->kw &&
         g->c >= 8 && out_channels >= 8;
}

static bool use_polyphase(const gen_conv_geom *g, int64_t groups, int64_t out_channels, gen_dtype dt) {
  return winograd_enabled && gen_wino_available() && dt == GEN_FLOAT32 && groups == 1 && g->kh == 4 && g->kw == 4 && g->sh == 2 &&
         g->sw == 2 && g->ph == 1 && g->pw == 1 && g->dh == 1 && g->dw == 1 && g->h % 2 == 0 && g->w % 2 == 0 && 4 * g->c >= 8 &&
         out_channels >= 8;
}

static gen_tensor *new_floats(int64_t n) { return gen_empty(GEN_FLOAT32, 1, (int64_t[1]){n}); }

static void wino_forward_chunk(const conv_job *j, int64_t ci, char *slot) {
  int64_t t0 = ci * j->nt, left = gen_wino_tiles(j->wg) - t0;
  gen_wino_forward((float *)j->out, (const float *)j->x, j->u, (const float *)j->b, j->wg, t0, left < j->nt ? left : j->nt,
                   (float *)slot);
}

static gen_tensor *polyphase_weight(const gen_tensor *w);

/* The transformed weights U of w (with polyphase, of the 2x2 kernels w rearranges into), for the
 * geometry wg. They depend only on w and the direction, and a sampler applies the same weights at
 * every step (computing U was a third of a 25-step flow sample at batch 1), so they are kept on
 * w's storage until w changes (gen_derived_get). */
static gen_tensor *winograd_weights(const gen_tensor *w, const gen_wino_geom *wg, bool adjoint, bool polyphase) {
  const int64_t key[GEN_DERIVED_KEY] = {GEN_OP_CONV2D, 2 * polyphase + adjoint, w->offset, w->shape[0], w->shape[1], w->shape[2]};
  gen_tensor *u = gen_derived_get(w, key);
  if (u) return u;
  gen_tensor *w2 = polyphase ? polyphase_weight(w) : NULL;
  u = w2 || !polyphase ? new_floats(gen_wino_weight_floats(wg)) : NULL;
  if (u) {
    gen_wino_transform_weight((float *)gen_data_ptr(u), (const float *)gen_data_ptr(w2 ? w2 : w), wg, adjoint);
    gen_retain(u);
    gen_derived_put(w, key, u);
  }
  gen_release(w2);
  return u;
}

/* out {N, out_channels, Ho, Wo} = conv(x, w) + b with k x k kernels and padding (ph, pw); with
 * adjoint, w is {out_channels, C, k, k} and the convolution is conv2d's input gradient; with
 * polyphase, w is the 4x4 kernel of a stride-2 convolution whose polyphase image x is */
static gen_tensor *wino_conv(const gen_tensor *x, const gen_tensor *w, bool adjoint, bool polyphase, const gen_tensor *b,
                             int64_t out_channels, int64_t k, int64_t ph, int64_t pw) {
  gen_wino_geom wg = gen_wino_geometry(x->shape[0], x->shape[1], x->shape[2], x->shape[3], out_channels, k, ph, pw);
  int64_t nt = gen_wino_forward_chunk_tiles(&wg, gen_get_num_threads()), nchunks = (gen_wino_tiles(&wg) + nt - 1) / nt;
  int threads = chunk_threads(nchunks);
  conv_job j = {.wg = &wg,
                .nt = nt,
                .x = gen_data_ptr(x),
                .b = b ? gen_data_ptr(b) : NULL,
                .slot_bytes = gen_wino_forward_scratch_floats(&wg, nt) * (int64_t)sizeof(float)};
  gen_tensor *u = winograd_weights(w, &wg, adjoint, polyphase), *scratch = u ? new_scratch(threads, j.slot_bytes) : NULL;
  gen_tensor *out = scratch ? gen_empty(GEN_FLOAT32, 4, (int64_t[4]){wg.n, out_channels, wg.ho, wg.wo}) : NULL;
  if (out) {
    j.u = (const float *)gen_data_ptr(u), j.scratch = gen_data_ptr(scratch), j.out = gen_data_ptr(out);
    run_chunks(&j, threads, nchunks, wino_forward_chunk);
  }
  gen_release(u);
  gen_release(scratch);
  return out;
}

/* segment si: its tiles in chunks of at most nt, accumulated into its own dU {planes, opad, cpad} */
static void wino_weight_segment(const conv_job *j, int64_t si, char *slot) {
  float *du = (float *)j->out + si * gen_wino_du_floats(j->wg);
  int64_t first = si * j->per_segment, end = first + j->per_segment, tiles = gen_wino_tiles(j->wg);
  if (end > tiles) end = tiles;
  for (int64_t t0 = first; t0 < end; t0 += j->nt) {
    int64_t nt = end - t0 < j->nt ? end - t0 : j->nt;
    gen_wino_weight_grad(du, (const float *)j->x, (const float *)j->dm, j->wg, t0, nt, t0 > first, (float *)slot);
  }
}

/* dW {O, C, k, k} (given shape) of x {N, C, H, W} and dout {N, O, Ho, Wo}, padding (ph, pw).
 * Segments of equal tile counts (at least SEGMENT_TILES each, at most WINO_SEGMENTS of them), each
 * in equal chunks: a split that depends only on the geometry. */
static gen_tensor *wino_weight_grad(const gen_tensor *x, const gen_tensor *dout, int64_t k, int64_t ph, int64_t pw, int ndim,
                                    const int64_t *shape) {
  gen_wino_geom wg = gen_wino_geometry(x->shape[0], x->shape[1], x->shape[2], x->shape[3], dout->shape[1], k, ph, pw);
  int64_t tiles = gen_wino_tiles(&wg), most = gen_wino_weight_grad_chunk_tiles(&wg);
  int64_t want = tiles / SEGMENT_TILES < 1 ? 1 : tiles / SEGMENT_TILES < WINO_SEGMENTS ? tiles / SEGMENT_TILES : WINO_SEGMENTS;
  int64_t per_segment = (tiles + want - 1) / want, nseg = tiles > 0 ? (tiles + per_segment - 1) / per_segment : 0;
  int64_t chunks = (per_segment + most - 1) / most, nt = chunks > 0 ? ((per_segment + chunks - 1) / chunks + 15) / 16 * 16 : most;
  int64_t du_floats = gen_wino_du_floats(&wg);
  int threads = chunk_threads(nseg);
  conv_job j = {.wg = &wg,
                .nt = nt,
                .per_segment = per_segment,
                .x = gen_data_ptr(x),
                .dm = gen_data_ptr(dout),
                .slot_bytes = gen_wino_weight_grad_scratch_floats(&wg) * (int64_t)sizeof(float)};
  gen_tensor *parts = new_floats(nseg > 0 ? nseg * du_floats : du_floats),
             *scratch = parts ? new_scratch(threads, j.slot_bytes) : NULL;
  gen_tensor *du = scratch && nseg > 1 ? new_floats(du_floats) : NULL;
  gen_tensor *dw = scratch && (du || nseg <= 1) ? gen_empty(GEN_FLOAT32, ndim, shape) : NULL;
  if (dw) {
    if (nseg == 0) memset(gen_data_ptr(parts), 0, sizeof(float) * (size_t)du_floats);
    j.scratch = gen_data_ptr(scratch), j.out = gen_data_ptr(parts);
    run_chunks(&j, threads, nseg, wino_weight_segment);
    if (du) gen_sum_rows_into(gen_data_ptr(du), gen_data_ptr(parts), nseg, du_floats, GEN_FLOAT32);
    gen_wino_weight_grad_finish((float *)gen_data_ptr(dw), (const float *)gen_data_ptr(du ? du : parts), &wg);
  }
  gen_release(du);
  gen_release(scratch);
  gen_release(parts);
  return dw;
}

/* x {N, C, H, W} as its polyphase image {N, 4C, H/2 + 1, W/2 + 1} */
static gen_tensor *polyphase_image(const gen_tensor *x) {
  int64_t n = x->shape[0], c = x->shape[1], h = x->shape[2], w = x->shape[3];
  gen_tensor *xs = gen_empty(GEN_FLOAT32, 4, (int64_t[4]){n, 4 * c, h / 2 + 1, w / 2 + 1});
  if (xs) gen_space_to_depth2_f32((float *)gen_data_ptr(xs), (const float *)gen_data_ptr(x), n, c, h, w);
  return xs;
}

/* w {O, C, 4, 4} as the polyphase weight {O, 4C, 2, 2} */
static gen_tensor *polyphase_weight(const gen_tensor *w) {
  int64_t o = w->shape[0], c = w->shape[1];
  gen_tensor *w2 = gen_empty(GEN_FLOAT32, 4, (int64_t[4]){o, 4 * c, 2, 2});
  if (w2) gen_polyphase_weight_f32((float *)gen_data_ptr(w2), (const float *)gen_data_ptr(w), o, c, false);
  return w2;
}

/* conv2d forward of a polyphase-shaped convolution */
static gen_tensor *polyphase_apply(const gen_tensor *x, const gen_tensor *w, const gen_tensor *b) {
  gen_tensor *xs = polyphase_image(x);
  gen_tensor *out = xs ? wino_conv(xs, w, false, true, b, w->shape[0], 2, 0, 0) : NULL;
  gen_release(xs);
  return out;
}

/* its input gradient (conv_transpose2d's forward): dx {N, C, H, W} of dout {N, O, H/2, W/2} */
static gen_tensor *polyphase_adjoint(const gen_tensor *dout, const gen_tensor *w, const gen_tensor *b, const gen_conv_geom *g) {
  gen_tensor *dxs = wino_conv(dout, w, true, true, NULL, 4 * g->c, 2, 1, 1);
  gen_tensor *dx = dxs ? gen_empty(GEN_FLOAT32, 4, (int64_t[4]){g->n, g->c, g->h, g->w}) : NULL;
  if (dx)
    gen_depth_to_space2_f32((float *)gen_data_ptr(dx), (const float *)gen_data_ptr(dxs),
                            b ? (const float *)gen_data_ptr(b) : NULL, g->n, g->c, g->h, g->w);
  gen_release(dxs);
  return dx;
}

/* its weight gradient dW {O, C, 4, 4} */
static gen_tensor *polyphase_weight_grad(const gen_tensor *x, const gen_tensor *dout, const gen_edge *we) {
  int64_t o = dout->shape[1], c = x->shape[1];
  gen_tensor *xs = polyphase_image(x);
  gen_tensor *dw2 = xs ? wino_weight_grad(xs, dout, 2, 0, 0, 4, (int64_t[4]){o, 4 * c, 2, 2}) : NULL;
  gen_tensor *dw = dw2 ? gen_empty(GEN_FLOAT32, we->ndim, we->shape) : NULL;
  if (dw) gen_polyphase_weight_f32((float *)gen_data_ptr(dw), (const float *)gen_data_ptr(dw2), o, c, true);
  gen_release(xs);
  gen_release(dw2);
  return dw;
}

/* A chunk's per-group GEMMs, C_g = op(A_g) op(B_g), group g's operands at g times the strides
 * (in elements) from the first group's. */
typedef struct {
  bool ta, tb;
  int64_t m, n, k;
  const char *a, *b;
  char *c;
  int64_t lda, ldb, ldc, sa, sb, sc;
} group_gemms;

static void group_gemm(const group_gemms *q, int64_t gi, gen_dtype dt) {
  size_t es = gen_dtype_size(dt);
  gen_gemm(q->ta, q->tb, q->m, q->n, q->k, 1, q->a + (size_t)(gi * q->sa) * es, q->lda, q->b + (size_t)(gi * q->sb) * es, q->ldb,
           0, q->c + (size_t)(gi * q->sc) * es, q->ldc, dt);
}

/* A chunk that runs alone (a single image, as a StyleGAN2 modulated convolution written as a
 * grouped one over the batch) spreads its groups over the threads: each group's GEMM is small,
 * and threading each one in turn cost more than it saved. A GEMM on one thread gives the bits it
 * gives on several. */
static void run_group_gemms(const group_gemms *q, int64_t groups, gen_dtype dt) {
  if (groups > 1 && gen_get_num_threads() > 1 && !omp_in_parallel()) {
#pragma omp parallel for schedule(static)
    for (int64_t gi = 0; gi < groups; gi++) group_gemm(q, gi, dt);
  } else {
    for (int64_t gi = 0; gi < groups; gi++) group_gemm(q, gi, dt);
  }
}

/* out chunk = W cols(x chunk), through the channel-major layout, bias added on the way back */
static void apply_chunk(const conv_job *j, int64_t ci, char *slot) {
  const gen_conv_geom *g = j->g;
  int64_t n0 = ci * j->nb, og = j->o / j->groups;
  gen_conv_geom s = chunk(g, n0, j->nb);
  int64_t qs = s.n * j->hwo;
  char *cols = slot, *om = slot + (size_t)(g->c * g->kh * g->kw * j->nb * j->hwo) * j->es;
  gen_im2col(cols, j->x + (size_t)(n0 * g->c * g->h * g->w) * j->es, &s, j->dt);
  run_group_gemms(&(group_gemms){.m = og,
                                 .n = qs,
                                 .k = j->k,
                                 .a = j->w,
                                 .lda = j->k,
                                 .sa = og * j->k,
                                 .b = cols,
                                 .ldb = qs,
                                 .sb = j->k * qs,
                                 .c = om,
                                 .ldc = qs,
                                 .sc = og * qs},
                  j->groups, j->dt);
  gen_cm_to_nchw(j->out + (size_t)(n0 * j->o * j->hwo) * j->es, om, j->b, s.n, j->o, j->hwo, j->dt);
}

/* dx chunk += col2im(W^T dout chunk) */
static void adjoint_chunk(const conv_job *j, int64_t ci, char *slot) {
  const gen_conv_geom *g = j->g;
  int64_t n0 = ci * j->nb, og = j->o / j->groups;
  gen_conv_geom s = chunk(g, n0, j->nb);
  int64_t qs = s.n * j->hwo;
  run_group_gemms(&(group_gemms){.ta = true,
                                 .m = j->k,
                                 .n = qs,
                                 .k = og,
                                 .a = j->w,
                                 .lda = j->k,
                                 .sa = og * j->k,
                                 .b = j->dm + (size_t)(n0 * j->hwo) * j->es,
                                 .ldb = j->p,
                                 .sb = og * j->p,
                                 .c = slot,
                                 .ldc = qs,
                                 .sc = j->k * qs},
                  j->groups, j->dt);
  gen_col2im(j->out + (size_t)(n0 * g->c * g->h * g->w) * j->es, slot, &s, j->dt);
}

/* partial dW of a chunk (its own block of j->out) = dout chunk cols(x chunk)^T */
static void weight_grad_chunk(const conv_job *j, int64_t ci, char *slot) {
  const gen_conv_geom *g = j->g;
  int64_t n0 = ci * j->nb, og = j->o / j->groups;
  gen_conv_geom s = chunk(g, n0, j->nb);
  int64_t qs = s.n * j->hwo;
  char *dw = j->out + (size_t)(ci * j->o * j->k) * j->es;
  gen_im2col(slot, j->x + (size_t)(n0 * g->c * g->h * g->w) * j->es, &s, j->dt);
  run_group_gemms(&(group_gemms){.tb = true,
                                 .m = og,
                                 .n = j->k,
                                 .k = qs,
                                 .a = j->dm + (size_t)(n0 * j->hwo) * j->es,
                                 .lda = j->p,
                                 .sa = og * j->p,
                                 .b = slot,
                                 .ldb = qs,
                                 .sb = j->k * qs,
                                 .c = dw,
                                 .ldc = j->k,
                                 .sc = og * j->k},
                  j->groups, j->dt);
}

/* out {N, O, Ho, Wo} = conv(x, w) + b: the conv2d forward (b contiguous {O} or NULL) */
static gen_tensor *conv_apply(const gen_tensor *x, const gen_tensor *w, const gen_tensor *b, const gen_conv_geom *g,
                              int64_t groups) {
  gen_dtype dt = x->dtype;
  size_t es = gen_dtype_size(dt);
  int64_t o = w->shape[0], k = (g->c / groups) * g->kh * g->kw;
  if (use_winograd(g, groups, o, dt)) return wino_conv(x, w, false, false, b, o, g->kh, g->ph, g->pw);
  if (use_polyphase(g, groups, o, dt)) return polyphase_apply(x, w, b);
  if (per_image_1x1(g, groups)) {
    gen_tensor *out = gen_empty(dt, 4, (int64_t[4]){g->n, o, g->ho, g->wo});
    int64_t hw = g->h * g->w;
    if (out && b) gen_fill_planes(gen_data_ptr(out), gen_data_ptr(b), g->n, o, hw, dt);
    if (out)
      per_image_gemms(false, o, hw, g->c, gen_data_ptr(w), g->c, gen_data_ptr(x), g->c * hw, gen_data_ptr(out), o * hw, b, g->n,
                      dt);
    return out;
  }
  conv_job j = im2col_job(g, dt, groups, o, k);
  int64_t nchunks = (g->n + j.nb - 1) / j.nb;
  int threads = chunk_threads(nchunks);
  j.x = gen_data_ptr(x), j.w = gen_data_ptr(w), j.b = b ? gen_data_ptr(b) : NULL;
  j.slot_bytes = (g->c * g->kh * g->kw + o) * j.nb * j.hwo * (int64_t)es;
  gen_tensor *scratch = new_scratch(threads, j.slot_bytes);
  gen_tensor *out = scratch ? gen_empty(dt, 4, (int64_t[4]){g->n, o, g->ho, g->wo}) : NULL;
  if (out) {
    j.scratch = gen_data_ptr(scratch), j.out = gen_data_ptr(out);
    run_chunks(&j, threads, nchunks, apply_chunk);
  }
  gen_release(scratch);
  return out;
}

static gen_tensor *retained(const gen_tensor *t) {
  gen_retain((gen_tensor *)t);
  return (gen_tensor *)t;
}

/* dout {N, O, Ho, Wo} in the channel-major layout {O, N*Ho*Wo} */
static gen_tensor *to_cm(const gen_tensor *dout) {
  int64_t n = dout->shape[0], o = dout->shape[1], s = dout->shape[2] * dout->shape[3];
  gen_tensor *dm = new_buffer(dout->dtype, o, n * s);
  if (dm) gen_nchw_to_cm(gen_data_ptr(dm), gen_data_ptr(dout), n, o, s, dout->dtype);
  return dm;
}

/* dx {N, C, H, W} = conv^T(dout, w) + b: conv2d's input gradient and conv_transpose2d's forward.
 * dm: dout already in channel-major layout, or NULL; b contiguous {C} or NULL. */
static gen_tensor *conv_adjoint(const gen_tensor *dout, const gen_tensor *dm_in, const gen_tensor *w, const gen_tensor *b,
                                const gen_conv_geom *g, int64_t groups) {
  gen_dtype dt = dout->dtype;
  size_t es = gen_dtype_size(dt);
  int64_t o = w->shape[0], k = (g->c / groups) * g->kh * g->kw, p = g->n * g->ho * g->wo;
  if (use_winograd(g, groups, o, dt))
    return wino_conv(dout, w, true, false, b, g->c, g->kh, g->kh - 1 - g->ph, g->kw - 1 - g->pw);
  if (use_polyphase(g, groups, o, dt)) return polyphase_adjoint(dout, w, b, g);
  if (per_image_1x1(g, groups)) {
    gen_tensor *dx = gen_empty(dt, 4, (int64_t[4]){g->n, g->c, g->h, g->w});
    int64_t hw = g->h * g->w;
    if (dx && b) gen_fill_planes(gen_data_ptr(dx), gen_data_ptr(b), g->n, g->c, hw, dt);
    if (dx)
      per_image_gemms(true, g->c, hw, o, gen_data_ptr(w), g->c, gen_data_ptr(dout), o * hw, gen_data_ptr(dx), g->c * hw, b, g->n,
                      dt);
    return dx;
  }
  gen_tensor *dm = dm_in ? retained(dm_in) : to_cm(dout);
  conv_job j = im2col_job(g, dt, groups, o, k);
  int64_t nchunks = (g->n + j.nb - 1) / j.nb;
  int threads = chunk_threads(nchunks);
  j.p = p, j.w = gen_data_ptr(w);
  j.slot_bytes = g->c * g->kh * g->kw * j.nb * j.hwo * (int64_t)es;
  gen_tensor *scratch = dm ? new_scratch(threads, j.slot_bytes) : NULL;
  gen_tensor *dx = scratch ? gen_empty(dt, 4, (int64_t[4]){g->n, g->c, g->h, g->w}) : NULL;
  if (dx) {
    gen_fill_planes(gen_data_ptr(dx), b ? gen_data_ptr(b) : NULL, g->n, g->c, g->h * g->w, dt);
    j.dm = gen_data_ptr(dm), j.scratch = gen_data_ptr(scratch), j.out = gen_data_ptr(dx);
    run_chunks(&j, threads, nchunks, adjoint_chunk);
  }
  gen_release(dm);
  gen_release(scratch);
  return dx;
}

/* dw_part = sum of dout_i x_i^T over images first .. first + count - 1 (of a 1x1 convolution), in order */
static void weight_grad_1x1_part(const gen_tensor *x, const gen_tensor *dout, int64_t o, const gen_conv_geom *g, int64_t first,
                                 int64_t count, char *dw_part) {
  size_t es = gen_dtype_size(x->dtype);
  int64_t hw = g->h * g->w, end = first + count < g->n ? first + count : g->n;
  for (int64_t i = first; i < end; i++)
    gen_gemm_blocked(false, true, o, g->c, hw, 1, gen_data_ptr(dout) + (size_t)(i * o * hw) * es, hw,
                     gen_data_ptr(x) + (size_t)(i * g->c * hw) * es, hw, i > first ? 1 : 0, dw_part, g->c, x->dtype,
                     omp_in_parallel() ? 1 : gen_get_num_threads());
}

/* dW {O, C/G, kh, kw} = dout_g cols(x)_g^T: the weight gradient of both directions.
 * dm: dout already in channel-major layout, or NULL. */
static gen_tensor *conv_weight_grad(const gen_tensor *x, const gen_tensor *dout, const gen_tensor *dm_in, const gen_conv_geom *g,
                                    int64_t groups, const gen_edge *we) {
  gen_dtype dt = x->dtype;
  size_t es = gen_dtype_size(dt);
  int64_t o = dout->shape[1], k = (g->c / groups) * g->kh * g->kw, p = g->n * g->ho * g->wo;
  if (use_winograd(g, groups, o, dt)) return wino_weight_grad(x, dout, g->kh, g->ph, g->pw, we->ndim, we->shape);
  if (use_polyphase(g, groups, o, dt)) return polyphase_weight_grad(x, dout, we);
  if (per_image_1x1(g, groups)) {
    /* dW = sum over images of dout_n x_n^T, accumulated in image order; small ones in parts of
     * IMAGES_PER_PART images (on any thread), the parts then added in order */
    int64_t hw = g->h * g->w,
            nparts = small_per_image(o, g->c, hw, g->n, dt) ? (g->n + IMAGES_PER_PART - 1) / IMAGES_PER_PART : 1;
    int64_t per = nparts > 1 ? IMAGES_PER_PART : g->n;
    gen_tensor *parts = nparts > 1 ? new_buffer(dt, nparts, o * g->c) : NULL;
    gen_tensor *dw = parts || nparts == 1 ? gen_empty(dt, we->ndim, we->shape) : NULL;
    if (dw && g->n == 0) memset(gen_data_ptr(dw), 0, (size_t)gen_numel(dw) * es);
    if (dw && g->n > 0) {
      char *out = gen_data_ptr(parts ? parts : dw);
      if (parts && gen_get_num_threads() > 1) {
#pragma omp parallel for schedule(static)
        for (int64_t pi = 0; pi < nparts; pi++)
          weight_grad_1x1_part(x, dout, o, g, pi * per, per, out + (size_t)(pi * o * g->c) * es);
      } else {
        for (int64_t pi = 0; pi < nparts; pi++)
          weight_grad_1x1_part(x, dout, o, g, pi * per, per, out + (size_t)(pi * o * g->c) * es);
      }
      if (parts) gen_sum_rows_into(gen_data_ptr(dw), gen_data_ptr(parts), nparts, o * g->c, dt);
    }
    gen_release(parts);
    return dw;
  }
  gen_tensor *dm = dm_in ? retained(dm_in) : to_cm(dout);
  conv_job j = im2col_job(g, dt, groups, o, k);
  int64_t nchunks = p > 0 ? (g->n + j.nb - 1) / j.nb : 0;
  int threads = chunk_threads(nchunks);
  j.p = p, j.x = gen_data_ptr(x);
  j.slot_bytes = g->c * g->kh * g->kw * j.nb * j.hwo * (int64_t)es;
  gen_tensor *scratch = dm ? new_scratch(threads, j.slot_bytes) : NULL;
  /* one partial dW per chunk, summed in chunk order: the same result for any thread count */
  gen_tensor *parts = scratch && nchunks > 1 ? new_buffer(dt, nchunks, o * k) : NULL;
  gen_tensor *dw = scratch && (parts || nchunks <= 1) ? gen_empty(dt, we->ndim, we->shape) : NULL;
  if (dw && nchunks == 0) memset(gen_data_ptr(dw), 0, (size_t)gen_numel(dw) * es);
  if (dw && nchunks > 0) {
    j.dm = gen_data_ptr(dm), j.scratch = gen_data_ptr(scratch), j.out = gen_data_ptr(parts ? parts : dw);
    run_chunks(&j, threads, nchunks, weight_grad_chunk);
    if (parts) gen_sum_rows_into(gen_data_ptr(dw), gen_data_ptr(parts), nchunks, o * k, dt);
  }
  gen_release(parts);
  gen_release(scratch);
  gen_release(dm);
  return dw;
}

/* ---------------------------------------------------------------- conv2d */

/* What the backward needs besides the saved x and w (both contiguous). */
typedef struct {
  gen_conv_geom g;
  int64_t groups;
} conv_attrs;

/* Both directions: conv2d's input gradient is the adjoint of its forward, and conv_transpose2d's
 * is the forward itself; the weight gradient pairs the conv "image" with the conv "output". For
 * conv2d the output gradient's channel-major copy is made once and shared by dx and dW. */
static int conv_backward(gen_node *n, gen_tensor *gout, gen_tensor **grad_in) {
  gen_tensor *x = gen_node_saved(n, 0), *w = x ? gen_node_saved(n, 1) : NULL;
  if (!w) return -1;
  const conv_attrs *at = GEN_NODE_ATTRS(n, conv_attrs);
  gen_conv_geom g = at->g;
  int64_t groups = at->groups;
  gen_tensor *d = gen_contiguous_raw(gout);
  if (!d) return -1;
  bool transposed = n->op == GEN_OP_CONV_TRANSPOSE2D, need_x = gen_edge_live(&n->edges[0]), need_w = gen_edge_live(&n->edges[1]);
  gen_tensor *dm = NULL;
  int rc = 0;
  bool shared_cm = !transposed && need_x && need_w && !per_image_1x1(&g, groups) &&
                   !use_winograd(&g, groups, w->shape[0], d->dtype) && !use_polyphase(&g, groups, w->shape[0], d->dtype);
  if (shared_cm && !(dm = to_cm(d))) rc = -1;
  if (rc == 0 && need_x &&
      !(grad_in[0] = transposed ? conv_apply(d, w, NULL, &g, groups) : conv_adjoint(d, dm, w, NULL, &g, groups)))
    rc = -1;
  if (rc == 0 && need_w &&
      !(grad_in[1] = transposed ? conv_weight_grad(d, x, NULL, &g, groups, &n->edges[1])
                                : conv_weight_grad(x, d, dm, &g, groups, &n->edges[1])))
    rc = -1;
  if (rc == 0 && n->n_inputs > 2 && gen_edge_live(&n->edges[2]) && !(grad_in[2] = bias_grad(d, &n->edges[2]))) rc = -1;
  gen_release(dm);
  gen_release(d);
  return rc;
}

/* ---- create_graph: the same gradients as recorded ops ----
 * With g the conv2d geometry (image {N, C, H, W} -> output {N, O, Ho, Wo}, weight {O, C/G, kh, kw}):
 *   d image  = conv_transpose2d(d out, W)   (output_padding restores the rows the stride dropped)
 *   d weight = a conv2d of the image with d out as its kernel, stride and dilation swapped:
 *     dW[o, c, i, j] = sum_{n, y, x} dout[n, o, y, x] img[n, c, y sh + i dh - ph, x sw + j dw - pw]
 *     i.e. conv2d(img as {C/G, G*N, H, W}, dout as {G*O/G, N, Ho, Wo}, stride (dh, dw),
 *     dilation (sh, sw), padding (ph, pw), groups G), cut to kh x kw and transposed to {O, C/G}.
 * conv_transpose2d's gradients are the same three with the roles of its input and output swapped.
 * These backwards do not depend on the kernel (Winograd, polyphase, im2col, 1x1) that computed the
 * forward: the convolutions they record pick their own, each exact to float rounding, and their
 * own backwards are these again, so any order of derivative is available. */
static gen_conv_opts conv_opts_of(const gen_conv_geom *g, int64_t groups, int64_t oph, int64_t opw) {
  return (gen_conv_opts){.stride = {g->sh, g->sw},
                         .padding = {g->ph, g->pw},
                         .dilation = {g->dh, g->dw},
                         .output_padding = {oph, opw},
                         .groups = groups};
}

/* The conv2d image gradient: conv_transpose2d(dout, w) back to {N, C, H, W}. */
static gen_tensor *image_grad_graph(gen_tensor *dout, gen_tensor *w, const gen_conv_geom *g, int64_t groups) {
  int64_t oph = g->h - ((g->ho - 1) * g->sh - 2 * g->ph + g->dh * (g->kh - 1) + 1);
  int64_t opw = g->w - ((g->wo - 1) * g->sw - 2 * g->pw + g->dw * (g->kw - 1) + 1);
  gen_conv_opts o = conv_opts_of(g, groups, oph, opw);
  return gen_conv_transpose2d(dout, w, NULL, &o);
}

/* The conv2d weight gradient {O, C/G, kh, kw} from img {N, C, H, W} and dout {N, O, Ho, Wo}. */
static gen_tensor *weight_grad_graph(gen_tensor *img, gen_tensor *dout, const gen_conv_geom *g, int64_t groups) {
  int64_t n = g->n, cg = g->c / groups, o = dout->shape[1], og = o / groups;
  gen_arena ar = {0}, *A = &ar;
  gen_tensor *x5 = GEN_KEEP(A, gen_reshape(img, 5, (int64_t[5]){n, groups, cg, g->h, g->w}));
  gen_tensor *xp = GEN_KEEP(A, gen_permute(x5, (int[5]){2, 1, 0, 3, 4}));
  gen_tensor *xi = GEN_KEEP(A, gen_reshape(xp, 4, (int64_t[4]){cg, groups * n, g->h, g->w}));
  gen_tensor *d5 = GEN_KEEP(A, gen_reshape(dout, 5, (int64_t[5]){n, groups, og, g->ho, g->wo}));
  gen_tensor *dp = GEN_KEEP(A, gen_permute(d5, (int[5]){1, 2, 0, 3, 4}));
  gen_tensor *dk = GEN_KEEP(A, gen_reshape(dp, 4, (int64_t[4]){o, n, g->ho, g->wo}));
  gen_conv_opts co = {.stride = {g->dh, g->dw}, .padding = {g->ph, g->pw}, .dilation = {g->sh, g->sw}, .groups = groups};
  gen_tensor *full = GEN_KEEP(A, gen_conv2d(xi, dk, NULL, &co)); /* {C/G, O, >= kh, >= kw} */
  gen_tensor *cut = full && (full->shape[2] != g->kh || full->shape[3] != g->kw)
                        ? GEN_KEEP(A, gen_narrow(GEN_KEEP(A, gen_narrow(full, 2, 0, g->kh)), 3, 0, g->kw))
                        : full;
  return gen_arena_take(A, GEN_KEEP(A, gen_permute(cut, (int[4]){1, 0, 2, 3})));
}

static gen_tensor *bias_grad_graph(gen_tensor *dout) {
  gen_arena ar = {0}, *A = &ar;
  gen_tensor *s3 = GEN_KEEP(A, gen_sum(dout, 3, false)), *s2 = GEN_KEEP(A, gen_sum(s3, 2, false));
  return gen_arena_take(A, GEN_KEEP(A, gen_sum(s2, 0, false)));
}

static int conv_graph_backward(gen_node *n, gen_tensor *gout, gen_tensor **grad_in) {
  const conv_attrs *at = GEN_NODE_ATTRS(n, conv_attrs);
  gen_conv_geom g = at->g;
  gen_arena ar = {0}, *A = &ar;
  gen_tensor *x = GEN_KEEP(A, gen_node_saved_input(n, 0, 0)), *w = GEN_KEEP(A, gen_node_saved_input(n, 1, 1));
  bool transposed = n->op == GEN_OP_CONV_TRANSPOSE2D;
  if (!ar.failed && gen_edge_live(&n->edges[0])) {
    gen_conv_opts o = conv_opts_of(&g, at->groups, 0, 0);
    grad_in[0] = transposed ? gen_conv2d(gout, w, NULL, &o) : image_grad_graph(gout, w, &g, at->groups);
    if (!grad_in[0]) ar.failed = true;
  }
  if (!ar.failed && gen_edge_live(&n->edges[1])) {
    grad_in[1] = transposed ? weight_grad_graph(gout, x, &g, at->groups) : weight_grad_graph(x, gout, &g, at->groups);
    if (!grad_in[1]) ar.failed = true;
  }
  if (!ar.failed && n->n_inputs > 2 && gen_edge_live(&n->edges[2]) && !(grad_in[2] = bias_grad_graph(gout))) ar.failed = true;
  bool failed = ar.failed;
  gen_arena_free(A);
  return failed ? -1 : 0;
}

static gen_tensor *record_conv(gen_tensor *out, gen_op op, gen_tensor *x, gen_tensor *w, gen_tensor *b, gen_tensor *cx,
                               gen_tensor *cw, const gen_conv_geom *g, int64_t groups) {
  conv_attrs at = {*g, groups};
  return gen_record(out, &(gen_record_args){.op = op,
                                            .backward = conv_backward,
                                            .graph_backward = conv_graph_backward,
                                            .inputs = b ? GEN_TENSORS(x, w, b) : GEN_TENSORS(x, w),
                                            .saved = GEN_TENSORS(cx, cw),
                                            .attrs = GEN_ATTRS(&at)});
}

gen_tensor *gen_conv2d(gen_tensor *x, gen_tensor *w, gen_tensor *b, const gen_conv_opts *o) {
  if (check_args(x, w, b, w->ndim == 4 ? w->shape[1] : 0, false, o) < 0) return NULL;
  gen_conv_geom g;
  if (geometry(x, w->shape[2], w->shape[3], o, &g) < 0) return NULL;
  gen_tensor *cx = gen_contiguous_raw(x), *cw = cx ? gen_contiguous_raw(w) : NULL;
  gen_tensor *cb = cw && b ? gen_contiguous_raw(b) : NULL;
  gen_tensor *out = cw && (cb || !b) ? conv_apply(cx, cw, cb, &g, o->groups) : NULL;
  gen_release(cb);
  out = record_conv(out, GEN_OP_CONV2D, x, w, b, cx, cw, &g, o->groups);
  gen_release(cx);
  gen_release(cw);
  return out;
}

/* ---------------------------------------------------------------- conv_transpose2d
 * The geometry g describes the equivalent conv2d: its "image" is this op's output {N, O, Ho, Wo}
 * and its "output" this op's input {N, C, H, W}. */

/* (in - 1) * stride - 2 * padding + dilation * (k - 1) + output_padding + 1, checked */
static int64_t transposed_size(int64_t in, int64_t k, const gen_conv_opts *o, int i, bool *ovf) {
  int64_t s = gen_size_mul(in - 1, o->stride[i], ovf);
  s = gen_size_sub(s, gen_size_mul(2, o->padding[i], ovf), ovf);
  s = gen_size_add(s, gen_size_mul(o->dilation[i], k - 1, ovf), ovf);
  return gen_size_add(gen_size_add(s, o->output_padding[i], ovf), 1, ovf);
}

gen_tensor *gen_conv_transpose2d(gen_tensor *x, gen_tensor *w, gen_tensor *b, const gen_conv_opts *o) {
  if (check_opts(o) < 0) return NULL; /* first: groups divides below */
  if (check_args(x, w, b, w->ndim == 4 ? w->shape[0] / o->groups : 0, true, o) < 0) return NULL;
  if (w->shape[0] != x->shape[1]) {
    char sx[GEN_SHAPE_STR_MAX], sw[GEN_SHAPE_STR_MAX];
    return gen_fail("input %s has %lld channels but weight %s expects %lld", gen_shape_str(sx, sizeof sx, x->ndim, x->shape),
                    (long long)x->shape[1], gen_shape_str(sw, sizeof sw, w->ndim, w->shape), (long long)w->shape[0]);
  }
  bool ovf = false;
  int64_t oc = gen_size_mul(w->shape[1], o->groups, &ovf), kh = w->shape[2], kw = w->shape[3];
  int64_t ho = transposed_size(x->shape[2], kh, o, 0, &ovf), wo = transposed_size(x->shape[3], kw, o, 1, &ovf);
  if (ovf)
    return gen_fail("output size overflows (input %lldx%lld, kernel %lldx%lld, stride %lldx%lld, padding %lldx%lld, dilation "
                    "%lldx%lld)",
                    (long long)x->shape[2], (long long)x->shape[3], (long long)kh, (long long)kw, (long long)o->stride[0],
                    (long long)o->stride[1], (long long)o->padding[0], (long long)o->padding[1], (long long)o->dilation[0],
                    (long long)o->dilation[1]);
  if (ho < 1 || wo < 1) return gen_fail("output size %lldx%lld is not positive", (long long)ho, (long long)wo);
  gen_conv_geom g = {.n = x->shape[0],
                     .c = oc,
                     .h = ho,
                     .w = wo,
                     .kh = kh,
                     .kw = kw,
                     .sh = o->stride[0],
                     .sw = o->stride[1],
                     .ph = o->padding[0],
                     .pw = o->padding[1],
                     .dh = o->dilation[0],
                     .dw = o->dilation[1],
                     .ho = x->shape[2],
                     .wo = x->shape[3]};
  if (check_cols(&g) < 0) return NULL;
  gen_tensor *cx = gen_contiguous_raw(x), *cw = cx ? gen_contiguous_raw(w) : NULL;
  gen_tensor *cb = cw && b ? gen_contiguous_raw(b) : NULL;
  gen_tensor *out = cw && (cb || !b) ? conv_adjoint(cx, NULL, cw, cb, &g, o->groups) : NULL;
  gen_release(cb);
  out = record_conv(out, GEN_OP_CONV_TRANSPOSE2D, x, w, b, cx, cw, &g, o->groups);
  gen_release(cx);
  gen_release(cw);
  return out;
}
