/*
 * ops_pool.c — max/avg pooling, nearest/bilinear upsampling and padding; forward and backward.
 *
 * Legend: the input is contiguous planes [P, H, W] (P = N * C, or all leading dims for pad) and
 * the output [P, Ho, Wo]. Every op here is a sparse linear map from input pixels to output pixels
 * (max pooling: the map chosen in forward), so each backward scatters the output gradient back
 * through the same map. Planes are independent: parallel over planes, serial inside (deterministic).
 */
#include "ops_pool.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "autograd.h"

static inline double rd(const gen_tensor *t, int64_t i) {
  return t->dtype == GEN_FLOAT32 ? ((const float *)gen_data_ptr(t))[i] : ((const double *)gen_data_ptr(t))[i];
}
static inline void wr(gen_tensor *t, int64_t i, double v) {
  if (t->dtype == GEN_FLOAT32) ((float *)gen_data_ptr(t))[i] = (float)v;
  else ((double *)gen_data_ptr(t))[i] = v;
}
static inline void acc(gen_tensor *t, int64_t i, double v) { wr(t, i, rd(t, i) + v); }

typedef enum { MAP_MAX, MAP_AVG, MAP_NEAREST, MAP_BILINEAR, MAP_PAD } map_kind;

/* everything a map needs; stored in the node's ints/reals */
typedef struct {
  map_kind kind;
  int64_t planes, h, w, ho, wo, kh, kw, sh, sw, ph, pw;
  int64_t pad[4];
  bool include_pad;
  gen_pad_mode mode;
  double value;
} pixel_map;

/* Reflect or clamp an index into [0, n). */
static int64_t fold(int64_t i, int64_t n, gen_pad_mode mode) {
  if (mode == GEN_PAD_REPLICATE) return i < 0 ? 0 : i >= n ? n - 1 : i;
  if (n == 1) return 0;
  int64_t period = 2 * (n - 1);
  i = ((i % period) + period) % period;
  return i < n ? i : period - i;
}

/* Output pixel (y, x) = sum of weight[k] * input[src[k]] over its (at most kh*kw) sources.
 * Returns the number of sources; for max pooling only the chosen source is returned. */
static int sources(const pixel_map *m, const gen_tensor *in, int64_t plane_base, int64_t y, int64_t x, int64_t *src,
                   double *weight, const int64_t *argmax) {
  switch (m->kind) {
  case MAP_MAX:
    src[0] = argmax ? argmax[0] : 0;
    weight[0] = 1;
    return 1;
  case MAP_AVG: {
    int64_t y0 = y * m->sh - m->ph, x0 = x * m->sw - m->pw, n = 0;
    int64_t y1 = y0 + m->kh < m->h + m->ph ? y0 + m->kh : m->h + m->ph, x1 = x0 + m->kw < m->w + m->pw ? x0 + m->kw : m->w + m->pw;
    int64_t area = (y1 - y0) * (x1 - x0), valid = 0;
    for (int64_t yy = y0; yy < y0 + m->kh; yy++)
      for (int64_t xx = x0; xx < x0 + m->kw; xx++)
        if (yy >= 0 && yy < m->h && xx >= 0 && xx < m->w) src[valid++] = yy * m->w + xx;
    double div = (double)(m->include_pad ? area : valid);
    for (int64_t k = 0; k < valid; k++) weight[k] = 1 / div;
    n = valid;
    return (int)n;
  }
  case MAP_NEAREST: {
    int64_t sy = (int64_t)floor((double)y * (double)m->h / (double)m->ho), sx = (int64_t)floor((double)x * (double)m->w / (double)m->wo);
    src[0] = (sy < m->h ? sy : m->h - 1) * m->w + (sx < m->w ? sx : m->w - 1);
    weight[0] = 1;
    return 1;
  }
  case MAP_BILINEAR: {
    double fy = ((double)y + 0.5) * (double)m->h / (double)m->ho - 0.5, fx = ((double)x + 0.5) * (double)m->w / (double)m->wo - 0.5;
    if (fy < 0) fy = 0;
    if (fx < 0) fx = 0;
    int64_t y0 = (int64_t)fy, x0 = (int64_t)fx;
    int64_t y1 = y0 + 1 < m->h ? y0 + 1 : m->h - 1, x1 = x0 + 1 < m->w ? x0 + 1 : m->w - 1;
    double ly = fy - (double)y0, lx = fx - (double)x0;
    src[0] = y0 * m->w + x0, weight[0] = (1 - ly) * (1 - lx);
    src[1] = y0 * m->w + x1, weight[1] = (1 - ly) * lx;
    src[2] = y1 * m->w + x0, weight[2] = ly * (1 - lx);
    src[3] = y1 * m->w + x1, weight[3] = ly * lx;
    return 4;
  }
  default: { /* MAP_PAD */
    int64_t sy = y - m->pad[2], sx = x - m->pad[0];
    if (m->mode == GEN_PAD_CONSTANT) {
      if (sy < 0 || sy >= m->h || sx < 0 || sx >= m->w) return 0;
    } else {
      sy = fold(sy, m->h, m->mode);
      sx = fold(sx, m->w, m->mode);
    }
    src[0] = sy * m->w + sx;
    weight[0] = 1;
    return 1;
  }
  }
  (void)in;
  (void)plane_base;
}

static void map_forward(const pixel_map *m, const gen_tensor *in, gen_tensor *out, int64_t *argmax) {
#pragma omp parallel for if (m->planes * m->ho * m->wo > GEN_PARALLEL_GRAIN / 4)
  for (int64_t p = 0; p < m->planes; p++) {
    int64_t src[64];
    double weight[64];
    for (int64_t y = 0; y < m->ho; y++)
      for (int64_t x = 0; x < m->wo; x++) {
        int64_t o = (p * m->ho + y) * m->wo + x, base = p * m->h * m->w;
        if (m->kind == MAP_MAX) {
          double best = -INFINITY;
          int64_t at = -1;
          for (int64_t i = 0; i < m->kh; i++)
            for (int64_t j = 0; j < m->kw; j++) {
              int64_t yy = y * m->sh - m->ph + i, xx = x * m->sw - m->pw + j;
              if (yy < 0 || yy >= m->h || xx < 0 || xx >= m->w) continue;
              double v = rd(in, base + yy * m->w + xx);
              if (at < 0 || v > best || v != v) {
                best = v;
                at = yy * m->w + xx;
                if (v != v) break;
              }
            }
          argmax[o] = at;
          wr(out, o, best);
          continue;
        }
        int n = sources(m, in, base, y, x, src, weight, NULL);
        double v = n == 0 ? m->value : 0;
        for (int k = 0; k < n; k++) v += weight[k] * rd(in, base + src[k]);
        wr(out, o, v);
      }
  }
}

static void map_backward(const pixel_map *m, const gen_tensor *g, gen_tensor *dx, const int64_t *argmax) {
#pragma omp parallel for if (m->planes * m->ho * m->wo > GEN_PARALLEL_GRAIN / 4)
  for (int64_t p = 0; p < m->planes; p++) {
    int64_t src[64];
    double weight[64];
    for (int64_t y = 0; y < m->ho; y++)
      for (int64_t x = 0; x < m->wo; x++) {
        int64_t o = (p * m->ho + y) * m->wo + x, base = p * m->h * m->w;
        int n = sources(m, NULL, base, y, x, src, weight, argmax ? argmax + o : NULL);
        if (m->kind == MAP_MAX && argmax[o] < 0) continue;
        double gv = rd(g, o);
        for (int k = 0; k < n; k++) acc(dx, base + src[k], weight[k] * gv);
      }
  }
}

static const gen_op map_ops[] = {GEN_OP_MAX_POOL2D, GEN_OP_AVG_POOL2D, GEN_OP_UPSAMPLE_NEAREST, GEN_OP_UPSAMPLE_BILINEAR, GEN_OP_PAD};

/* the map lives in node->extra */
static int map_node_backward(gen_node *n, gen_tensor *g, gen_tensor **grad_in) {
  const pixel_map *m = n->extra;
  gen_tensor *argmax = m->kind == MAP_MAX ? gen_node_saved(n, 0) : NULL;
  if (m->kind == MAP_MAX && !argmax) return -1;
  gen_tensor *cg = gen_contiguous_raw(g), *dx = cg ? gen_zeros(g->dtype, n->edges[0].ndim, n->edges[0].shape) : NULL;
  if (dx) map_backward(m, cg, dx, argmax ? (const int64_t *)gen_data_ptr(argmax) : NULL);
  gen_release(cg);
  grad_in[0] = dx;
  return dx ? 0 : -1;
}

static gen_tensor *apply_map(gen_tensor *x, const pixel_map *m_in) {
  if (!gen_dtype_is_float(x->dtype)) return gen_fail("needs a float tensor, got %s", gen_dtype_name(x->dtype));
  int64_t shape[GEN_MAX_DIMS];
  memcpy(shape, x->shape, sizeof shape);
  shape[x->ndim - 2] = m_in->ho;
  shape[x->ndim - 1] = m_in->wo;
  gen_tensor *cx = gen_contiguous_raw(x), *out = cx ? gen_empty(x->dtype, x->ndim, shape) : NULL;
  gen_tensor *argmax = out && m_in->kind == MAP_MAX ? gen_empty(GEN_INT64, x->ndim, shape) : NULL;
  if (!out || (m_in->kind == MAP_MAX && !argmax)) {
    gen_release(cx);
    gen_release(out);
    return NULL;
  }
  map_forward(m_in, cx, out, argmax ? (int64_t *)gen_data_ptr(argmax) : NULL);
  gen_release(cx);
  if (gen_needs_grad(1, &x)) {
    gen_node *n = gen_node_new(map_ops[m_in->kind], map_node_backward, 1, &x);
    pixel_map *m = n ? malloc(sizeof *m) : NULL;
    if (!m || (argmax && gen_node_save(n, argmax) < 0)) {
      free(m);
      gen_node_release(n);
      gen_release(out);
      gen_release(argmax);
      return gen_fail("out of memory");
    }
    *m = *m_in;
    n->extra = m;
    n->free_extra = free;
    gen_attach(out, n);
  }
  gen_release(argmax);
  return out;
}

static int check_4d(const gen_tensor *x) {
  if (x->ndim == 4) return 0;
  char s[GEN_SHAPE_STR_MAX];
  return gen_fail_int("input must be {N, C, H, W}, got %s", gen_shape_str(s, sizeof s, x->ndim, x->shape));
}

static gen_tensor *pool(map_kind kind, gen_tensor *x, const int64_t k[2], const int64_t stride[2], const int64_t pad[2], bool inc) {
  if (check_4d(x) < 0) return NULL;
  for (int i = 0; i < 2; i++) {
    if (k[i] < 1 || stride[i] < 1 || pad[i] < 0)
      return gen_fail("kernel %lld, stride %lld and padding %lld must be positive (padding >= 0)", (long long)k[i],
                      (long long)stride[i], (long long)pad[i]);
    if (pad[i] * 2 > k[i]) return gen_fail("padding %lld must be at most half the kernel size %lld", (long long)pad[i], (long long)k[i]);
  }
  int64_t h = x->shape[2], w = x->shape[3];
  int64_t ho = (h + 2 * pad[0] - k[0]) / stride[0] + 1, wo = (w + 2 * pad[1] - k[1]) / stride[1] + 1;
  if (h + 2 * pad[0] < k[0] || w + 2 * pad[1] < k[1] || ho < 1 || wo < 1)
    return gen_fail("kernel %lldx%lld is larger than the padded input %lldx%lld", (long long)k[0], (long long)k[1],
                    (long long)(h + 2 * pad[0]), (long long)(w + 2 * pad[1]));
  pixel_map m = {.kind = kind, .planes = x->shape[0] * x->shape[1], .h = h, .w = w, .ho = ho, .wo = wo, .kh = k[0], .kw = k[1],
                 .sh = stride[0], .sw = stride[1], .ph = pad[0], .pw = pad[1], .include_pad = inc};
  if (k[0] * k[1] > 64 && kind == MAP_AVG) return gen_fail("average pooling kernels are limited to 64 elements");
  return apply_map(x, &m);
}

gen_tensor *gen_max_pool2d(gen_tensor *x, const int64_t k[2], const int64_t stride[2], const int64_t pad[2]) {
  return pool(MAP_MAX, x, k, stride, pad, false);
}

gen_tensor *gen_avg_pool2d(gen_tensor *x, const int64_t k[2], const int64_t stride[2], const int64_t pad[2], bool count_include_pad) {
  return pool(MAP_AVG, x, k, stride, pad, count_include_pad);
}

gen_tensor *gen_upsample(gen_tensor *x, int64_t out_h, int64_t out_w, bool bilinear) {
  if (check_4d(x) < 0) return NULL;
  if (out_h < 1 || out_w < 1) return gen_fail("output size %lldx%lld must be positive", (long long)out_h, (long long)out_w);
  pixel_map m = {.kind = bilinear ? MAP_BILINEAR : MAP_NEAREST, .planes = x->shape[0] * x->shape[1], .h = x->shape[2],
                 .w = x->shape[3], .ho = out_h, .wo = out_w};
  return apply_map(x, &m);
}

gen_tensor *gen_pad(gen_tensor *x, const int64_t pads[4], gen_pad_mode mode, double value) {
  if (x->ndim < 2) return gen_fail("input needs at least 2 dimensions, got %d", x->ndim);
  int64_t h = x->shape[x->ndim - 2], w = x->shape[x->ndim - 1];
  for (int i = 0; i < 4; i++) {
    if (pads[i] < 0) return gen_fail("padding %lld is negative", (long long)pads[i]);
    int64_t size = i < 2 ? w : h;
    if (mode == GEN_PAD_REFLECT && pads[i] >= size)
      return gen_fail("reflect padding %lld must be smaller than the dimension size %lld", (long long)pads[i], (long long)size);
    if (mode != GEN_PAD_CONSTANT && size == 0) return gen_fail("cannot %s-pad an empty dimension", mode == GEN_PAD_REFLECT ? "reflect" : "replicate");
  }
  pixel_map m = {.kind = MAP_PAD, .planes = gen_numel_of(x->ndim - 2, x->shape), .h = h, .w = w,
                 .ho = h + pads[2] + pads[3], .wo = w + pads[0] + pads[1], .mode = mode, .value = value};
  memcpy(m.pad, pads, sizeof m.pad);
  return apply_map(x, &m);
}
