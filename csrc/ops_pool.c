/*
 * ops_pool.c — max/avg pooling, nearest/bilinear upsampling and padding; forward and backward.
 *
 * Legend: the input is contiguous planes [P, H, W] (P = N * C, or all leading dims for pad) and
 * the output [P, Ho, Wo]. Every op here is a sparse linear map from input pixels to output pixels
 * (max pooling: the map chosen in forward), so each backward scatters the output gradient back
 * through the same map. Planes are independent: parallel over planes, serial inside each plane, so
 * results do not depend on the thread count.
 *
 * Nearest upsampling and padding are both "index tables": output row y reads input row sy[y] and
 * output column x reads input column sx[x] (-1: outside, the pad value). Bilinear upsampling keeps
 * two source rows/columns and a weight per output row/column. Source coordinates follow PyTorch:
 * with a scale factor s the ratio is 1/s (not H/Ho), nearest indices are computed in float32
 * arithmetic, and bilinear uses align_corners = false, src = (dst + 0.5) * ratio - 0.5 clamped at 0.
 */
#include "ops_pool.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "autograd.h"

static inline double ld(const void *p, int64_t i, bool f32) { return f32 ? ((const float *)p)[i] : ((const double *)p)[i]; }
static inline void st(void *p, int64_t i, double v, bool f32) {
  if (f32)
    ((float *)p)[i] = (float)v;
  else
    ((double *)p)[i] = v;
}
static inline void add(void *p, int64_t i, double v, bool f32) {
  if (f32)
    ((float *)p)[i] += (float)v;
  else
    ((double *)p)[i] += v;
}

typedef enum { MAP_MAX, MAP_AVG, MAP_TABLE, MAP_BILINEAR, MAP_COUNT } map_kind;

/* Everything a map needs; lives in node->extra (tables included) until backward. */
typedef struct {
  map_kind kind;
  gen_op op;
  int64_t planes, h, w, ho, wo;
  int64_t kh, kw, sh, sw, ph, pw; /* pooling */
  bool include_pad;
  double value;     /* MAP_TABLE: the value of index -1 */
  int64_t *sy, *sx; /* MAP_TABLE: {ho}, {wo}; MAP_BILINEAR: {2*ho}, {2*wo} (lo, hi) */
  double *ly, *lx;  /* MAP_BILINEAR: weight of the hi source, {ho}, {wo} */
} pixel_map;

static void map_free(void *p) {
  pixel_map *m = p;
  if (!m) return;
  free(m->sy);
  free(m->sx);
  free(m->ly);
  free(m->lx);
  free(m);
}

/* One plane (n, c) of a map's forward or backward: src is its input (x, or dout in backward),
 * dst its output (zeroed first in backward); argmax is written by max pooling's forward and read by
 * its backward. */
typedef void (*plane_fn)(const pixel_map *m, const void *src, void *dst, int64_t *argmax, bool f32, int64_t p);

/* Every plane, in parallel when there are several and enough pixels. */
static void run_planes(const pixel_map *m, plane_fn fn, const void *src, void *dst, int64_t *argmax, bool f32) {
  if (m->planes > 1 && m->planes * m->ho * m->wo > GEN_PARALLEL_GRAIN / 4) {
#pragma omp parallel for
    for (int64_t p = 0; p < m->planes; p++) fn(m, src, dst, argmax, f32, p);
  } else {
    for (int64_t p = 0; p < m->planes; p++) fn(m, src, dst, argmax, f32, p);
  }
}

/* ---------------------------------------------------------------- max pooling */

/* out[p, y, x] = max of the window, argmax the flat in-plane index of the first maximum (or of the
 * first NaN, which wins like in PyTorch) */
static void max_forward_plane(const pixel_map *m, const void *in, void *out, int64_t *argmax, bool f32, int64_t p) {
  int64_t base = p * m->h * m->w;
  for (int64_t y = 0; y < m->ho; y++) {
    int64_t y0 = y * m->sh - m->ph, ya = y0 < 0 ? 0 : y0, yb = y0 + m->kh < m->h ? y0 + m->kh : m->h;
    for (int64_t x = 0; x < m->wo; x++) {
      int64_t x0 = x * m->sw - m->pw, xa = x0 < 0 ? 0 : x0, xb = x0 + m->kw < m->w ? x0 + m->kw : m->w;
      int64_t at = ya * m->w + xa;
      double best = ld(in, base + at, f32);
      for (int64_t yy = ya; yy < yb && best == best; yy++)
        for (int64_t xx = xa; xx < xb; xx++) {
          double v = ld(in, base + yy * m->w + xx, f32);
          if (v > best || v != v) {
            best = v;
            at = yy * m->w + xx;
            if (v != v) break;
          }
        }
      int64_t o = (p * m->ho + y) * m->wo + x;
      argmax[o] = at;
      st(out, o, best, f32);
    }
  }
}

static void max_backward_plane(const pixel_map *m, const void *g, void *dx, int64_t *argmax, bool f32, int64_t p) {
  for (int64_t o = p * m->ho * m->wo; o < (p + 1) * m->ho * m->wo; o++) add(dx, p * m->h * m->w + argmax[o], ld(g, o, f32), f32);
}

/* ---------------------------------------------------------------- average pooling */

/* the window of output (y, x) clipped to the input, and its divisor */
static double avg_window(const pixel_map *m, int64_t y, int64_t x, int64_t *ya, int64_t *yb, int64_t *xa, int64_t *xb) {
  int64_t y0 = y * m->sh - m->ph, x0 = x * m->sw - m->pw;
  int64_t y1 = y0 + m->kh < m->h + m->ph ? y0 + m->kh : m->h + m->ph, x1 = x0 + m->kw < m->w + m->pw ? x0 + m->kw : m->w + m->pw;
  *ya = y0 < 0 ? 0 : y0, *xa = x0 < 0 ? 0 : x0;
  *yb = y0 + m->kh < m->h ? y0 + m->kh : m->h, *xb = x0 + m->kw < m->w ? x0 + m->kw : m->w;
  return (double)(m->include_pad ? (y1 - y0) * (x1 - x0) : (*yb - *ya) * (*xb - *xa));
}

static void avg_forward_plane(const pixel_map *m, const void *in, void *out, int64_t *argmax, bool f32, int64_t p) {
  for (int64_t y = 0; y < m->ho; y++)
    for (int64_t x = 0; x < m->wo; x++) {
      int64_t ya, yb, xa, xb;
      double div = avg_window(m, y, x, &ya, &yb, &xa, &xb), s = 0;
      for (int64_t yy = ya; yy < yb; yy++)
        for (int64_t xx = xa; xx < xb; xx++) s += ld(in, (p * m->h + yy) * m->w + xx, f32);
      st(out, (p * m->ho + y) * m->wo + x, s / div, f32);
    }
}

static void avg_backward_plane(const pixel_map *m, const void *g, void *dx, int64_t *argmax, bool f32, int64_t p) {
  for (int64_t y = 0; y < m->ho; y++)
    for (int64_t x = 0; x < m->wo; x++) {
      int64_t ya, yb, xa, xb;
      double v = ld(g, (p * m->ho + y) * m->wo + x, f32) / avg_window(m, y, x, &ya, &yb, &xa, &xb);
      for (int64_t yy = ya; yy < yb; yy++)
        for (int64_t xx = xa; xx < xb; xx++) add(dx, (p * m->h + yy) * m->w + xx, v, f32);
    }
}

/* ---------------------------------------------------------------- index tables: nearest, pad */

static void table_forward_plane(const pixel_map *m, const void *in, void *out, int64_t *argmax, bool f32, int64_t p) {
  for (int64_t y = 0; y < m->ho; y++) {
    int64_t sy = m->sy[y], o = (p * m->ho + y) * m->wo;
    if (f32) {
      float *dst = (float *)out + o, fill = (float)m->value;
      if (sy < 0) {
        for (int64_t x = 0; x < m->wo; x++) dst[x] = fill;
      } else {
        const float *src = (const float *)in + (p * m->h + sy) * m->w;
        for (int64_t x = 0; x < m->wo; x++) dst[x] = m->sx[x] < 0 ? fill : src[m->sx[x]];
      }
    } else {
      double *dst = (double *)out + o;
      const double *src = (const double *)in + (p * m->h + (sy < 0 ? 0 : sy)) * m->w;
      for (int64_t x = 0; x < m->wo; x++) dst[x] = sy < 0 || m->sx[x] < 0 ? m->value : src[m->sx[x]];
    }
  }
}

static void table_backward_plane(const pixel_map *m, const void *g, void *dx, int64_t *argmax, bool f32, int64_t p) {
  for (int64_t y = 0; y < m->ho; y++) {
    if (m->sy[y] < 0) continue;
    int64_t row = (p * m->h + m->sy[y]) * m->w, o = (p * m->ho + y) * m->wo;
    if (f32)
      for (int64_t x = 0; x < m->wo; x++) {
        if (m->sx[x] >= 0) ((float *)dx)[row + m->sx[x]] += ((const float *)g)[o + x];
      }
    else
      for (int64_t x = 0; x < m->wo; x++)
        if (m->sx[x] >= 0) ((double *)dx)[row + m->sx[x]] += ((const double *)g)[o + x];
  }
}

/* ---------------------------------------------------------------- bilinear */

static void bilinear_forward_plane(const pixel_map *m, const void *in, void *out, int64_t *argmax, bool f32, int64_t p) {
  for (int64_t y = 0; y < m->ho; y++) {
    int64_t r0 = (p * m->h + m->sy[2 * y]) * m->w, r1 = (p * m->h + m->sy[2 * y + 1]) * m->w;
    double ly = m->ly[y];
    for (int64_t x = 0; x < m->wo; x++) {
      int64_t c0 = m->sx[2 * x], c1 = m->sx[2 * x + 1];
      double lx = m->lx[x];
      double top = (1 - lx) * ld(in, r0 + c0, f32) + lx * ld(in, r0 + c1, f32);
      double bot = (1 - lx) * ld(in, r1 + c0, f32) + lx * ld(in, r1 + c1, f32);
      st(out, (p * m->ho + y) * m->wo + x, (1 - ly) * top + ly * bot, f32);
    }
  }
}

static void bilinear_backward_plane(const pixel_map *m, const void *g, void *dx, int64_t *argmax, bool f32, int64_t p) {
  for (int64_t y = 0; y < m->ho; y++) {
    int64_t r0 = (p * m->h + m->sy[2 * y]) * m->w, r1 = (p * m->h + m->sy[2 * y + 1]) * m->w;
    double ly = m->ly[y];
    for (int64_t x = 0; x < m->wo; x++) {
      int64_t c0 = m->sx[2 * x], c1 = m->sx[2 * x + 1];
      double lx = m->lx[x], v = ld(g, (p * m->ho + y) * m->wo + x, f32);
      add(dx, r0 + c0, (1 - ly) * (1 - lx) * v, f32);
      add(dx, r0 + c1, (1 - ly) * lx * v, f32);
      add(dx, r1 + c0, ly * (1 - lx) * v, f32);
      add(dx, r1 + c1, ly * lx * v, f32);
    }
  }
}

/* max pooling through a fixed argmax (the map an earlier forward chose): a gather */
static void max_gather_plane(const pixel_map *m, const void *in, void *out, int64_t *argmax, bool f32, int64_t p) {
  int64_t base = p * m->h * m->w, ob = p * m->ho * m->wo;
  for (int64_t o = ob; o < ob + m->ho * m->wo; o++) st(out, o, ld(in, base + argmax[o], f32), f32);
}

/* ---------------------------------------------------------------- the op around a map */

static const plane_fn forward_planes[] = {max_forward_plane, avg_forward_plane, table_forward_plane, bilinear_forward_plane};
static const plane_fn backward_planes[] = {max_backward_plane, avg_backward_plane, table_backward_plane, bilinear_backward_plane};
_Static_assert(GEN_COUNT_OF(forward_planes) == MAP_COUNT, "every map kind needs a forward");
_Static_assert(GEN_COUNT_OF(backward_planes) == MAP_COUNT, "every map kind needs a backward");

static void map_forward(const pixel_map *m, const gen_tensor *in, gen_tensor *out, int64_t *argmax) {
  const void *src = gen_data_ptr(in);
  void *dst = gen_data_ptr(out);
  bool f32 = in->dtype == GEN_FLOAT32;
  run_planes(m, forward_planes[m->kind], src, dst, argmax, f32);
}

static void *copy_of(const void *p, size_t bytes) {
  void *q = p ? malloc(bytes) : NULL;
  if (q) memcpy(q, p, bytes);
  return q;
}

/* A deep copy of m (its tables included), for a node recorded by a create_graph backward. */
static pixel_map *map_copy(const pixel_map *m) {
  pixel_map *c = malloc(sizeof *c);
  if (!c) return gen_fail("out of memory");
  *c = *m;
  int64_t k = m->kind == MAP_BILINEAR ? 2 : 1;
  c->sy = copy_of(m->sy, sizeof(int64_t) * (size_t)(k * m->ho));
  c->sx = copy_of(m->sx, sizeof(int64_t) * (size_t)(k * m->wo));
  c->ly = copy_of(m->ly, sizeof(double) * (size_t)m->ho);
  c->lx = copy_of(m->lx, sizeof(double) * (size_t)m->wo);
  if ((m->sy && !c->sy) || (m->sx && !c->sx) || (m->ly && !c->ly) || (m->lx && !c->lx)) {
    map_free(c);
    return gen_fail("out of memory");
  }
  return c;
}

static gen_tensor *apply_map(gen_tensor *x, pixel_map *m, gen_tensor *fixed_argmax);
static gen_tensor *apply_adjoint(gen_tensor *g, const pixel_map *m, gen_tensor *argmax, int ndim, const int64_t *shape);

/* saved: argmax (max pooling only); the map in node->extra */
static int map_node_backward(gen_node *n, gen_tensor *g, gen_tensor **grad_in) {
  const pixel_map *m = n->extra;
  gen_tensor *argmax = m->kind == MAP_MAX ? gen_node_saved(n, 0) : NULL;
  if (m->kind == MAP_MAX && !argmax) return -1;
  gen_tensor *cg = gen_contiguous_raw(g), *dx = cg ? gen_zeros(g->dtype, n->edges[0].ndim, n->edges[0].shape) : NULL;
  if (dx) {
    const void *gp = gen_data_ptr(cg);
    void *dp = gen_data_ptr(dx);
    bool f32 = g->dtype == GEN_FLOAT32;
    run_planes(m, backward_planes[m->kind], gp, dp, argmax ? (int64_t *)gen_data_ptr(argmax) : NULL, f32);
  }
  gen_release(cg);
  grad_in[0] = dx;
  return dx ? 0 : -1;
}

/* create_graph: the backward is the adjoint map, applied as a recorded op (resample_backward) */
static int map_node_graph_backward(gen_node *n, gen_tensor *g, gen_tensor **grad_in) {
  const pixel_map *m = n->extra;
  gen_tensor *argmax = m->kind == MAP_MAX ? gen_node_saved(n, 0) : NULL;
  if (m->kind == MAP_MAX && !argmax) return -1;
  grad_in[0] = apply_adjoint(g, m, argmax, n->edges[0].ndim, n->edges[0].shape);
  return grad_in[0] ? 0 : -1;
}

/* resample_backward: y = M^T g. Its backward applies M (through the saved argmax for max
 * pooling), and under create_graph records M as the original op, so every order is available. */
static int adjoint_backward(gen_node *n, gen_tensor *gg, gen_tensor **grad_in) {
  const pixel_map *m = n->extra;
  gen_tensor *argmax = m->kind == MAP_MAX ? gen_node_saved(n, 0) : NULL;
  if (m->kind == MAP_MAX && !argmax) return -1;
  gen_tensor *cg = gen_contiguous_raw(gg), *out = cg ? gen_empty(gg->dtype, n->edges[0].ndim, n->edges[0].shape) : NULL;
  if (out)
    run_planes(m, m->kind == MAP_MAX ? max_gather_plane : forward_planes[m->kind], gen_data_ptr(cg), gen_data_ptr(out),
               argmax ? (int64_t *)gen_data_ptr(argmax) : NULL, gg->dtype == GEN_FLOAT32);
  gen_release(cg);
  grad_in[0] = out;
  return out ? 0 : -1;
}

static int adjoint_graph_backward(gen_node *n, gen_tensor *gg, gen_tensor **grad_in) {
  const pixel_map *m = n->extra;
  gen_tensor *argmax = m->kind == MAP_MAX ? gen_node_saved(n, 0) : NULL;
  if (m->kind == MAP_MAX && !argmax) return -1;
  pixel_map *c = map_copy(m);
  grad_in[0] = c ? apply_map(gg, c, argmax) : NULL;
  return grad_in[0] ? 0 : -1;
}

static gen_tensor *apply_adjoint(gen_tensor *g, const pixel_map *m, gen_tensor *argmax, int ndim, const int64_t *shape) {
  pixel_map *c = map_copy(m);
  if (!c) return NULL;
  gen_tensor *cg = gen_contiguous_raw(g), *dx = cg ? gen_zeros(g->dtype, ndim, shape) : NULL;
  if (dx)
    run_planes(c, backward_planes[c->kind], gen_data_ptr(cg), gen_data_ptr(dx), argmax ? (int64_t *)gen_data_ptr(argmax) : NULL,
               g->dtype == GEN_FLOAT32);
  gen_release(cg);
  return gen_record(dx, &(gen_record_args){.op = GEN_OP_RESAMPLE_BACKWARD,
                                           .backward = adjoint_backward,
                                           .graph_backward = adjoint_graph_backward,
                                           .inputs = GEN_TENSORS(g),
                                           .saved = GEN_TENSORS(argmax),
                                           .extra = c,
                                           .free_extra = map_free});
}

/* Runs the map (which it takes ownership of) and records it for backward. With fixed_argmax,
 * max pooling gathers through it instead of searching the windows. */
static gen_tensor *apply_map(gen_tensor *x, pixel_map *m, gen_tensor *fixed_argmax) {
  if (!gen_dtype_is_float(x->dtype)) {
    map_free(m);
    return gen_fail("needs a float tensor, got %s", gen_dtype_name(x->dtype));
  }
  int64_t shape[GEN_MAX_DIMS];
  memcpy(shape, x->shape, sizeof shape);
  shape[x->ndim - 2] = m->ho;
  shape[x->ndim - 1] = m->wo;
  gen_tensor *cx = gen_contiguous_raw(x), *out = cx ? gen_empty(x->dtype, x->ndim, shape) : NULL;
  gen_tensor *argmax = NULL;
  if (out && m->kind == MAP_MAX) {
    if (fixed_argmax) gen_retain(fixed_argmax);
    argmax = fixed_argmax ? fixed_argmax : gen_empty(GEN_INT64, x->ndim, shape);
  }
  if (!out || (m->kind == MAP_MAX && !argmax)) {
    gen_release(cx);
    gen_release(out);
    map_free(m);
    return NULL;
  }
  if (fixed_argmax)
    run_planes(m, max_gather_plane, gen_data_ptr(cx), gen_data_ptr(out), (int64_t *)gen_data_ptr(argmax),
               x->dtype == GEN_FLOAT32);
  else
    map_forward(m, cx, out, argmax ? (int64_t *)gen_data_ptr(argmax) : NULL);
  gen_release(cx);
  out = gen_record(out, &(gen_record_args){.op = m->op,
                                           .backward = map_node_backward,
                                           .graph_backward = map_node_graph_backward,
                                           .inputs = GEN_TENSORS(x),
                                           .saved = GEN_TENSORS(argmax),
                                           .extra = m,
                                           .free_extra = map_free});
  gen_release(argmax);
  return out;
}

static pixel_map *new_map(map_kind kind, gen_op op) {
  pixel_map *m = calloc(1, sizeof *m);
  if (!m) return gen_fail("out of memory");
  m->kind = kind;
  m->op = op;
  return m;
}

static int check_4d(const gen_tensor *x) {
  if (x->ndim == 4) return 0;
  char s[GEN_SHAPE_STR_MAX];
  return gen_fail_int("input must be {N, C, H, W}, got %s", gen_shape_str(s, sizeof s, x->ndim, x->shape));
}

static gen_tensor *pool(map_kind kind, gen_tensor *x, const int64_t k[2], const int64_t stride[2], const int64_t pad[2],
                        bool inc) {
  if (check_4d(x) < 0) return NULL;
  for (int i = 0; i < 2; i++) {
    if (k[i] < 1 || stride[i] < 1 || pad[i] < 0)
      return gen_fail("kernel %lld, stride %lld and padding %lld must be positive (padding >= 0)", (long long)k[i],
                      (long long)stride[i], (long long)pad[i]);
    if (pad[i] > k[i] / 2) /* pad * 2 > k, without overflow */
      return gen_fail("padding %lld must be at most half the kernel size %lld", (long long)pad[i], (long long)k[i]);
  }
  int64_t h = x->shape[2], w = x->shape[3];
  bool ovf = false; /* padding <= k / 2, but k itself comes from the user */
  int64_t hp = gen_size_add(h, gen_size_mul(2, pad[0], &ovf), &ovf), wp = gen_size_add(w, gen_size_mul(2, pad[1], &ovf), &ovf);
  if (ovf) return gen_fail("padding %lldx%lld overflows the input size", (long long)pad[0], (long long)pad[1]);
  if (hp < k[0] || wp < k[1])
    return gen_fail("kernel %lldx%lld is larger than the padded input %lldx%lld", (long long)k[0], (long long)k[1], (long long)hp,
                    (long long)wp);
  pixel_map *m = new_map(kind, kind == MAP_MAX ? GEN_OP_MAX_POOL2D : GEN_OP_AVG_POOL2D);
  if (!m) return NULL;
  m->planes = x->shape[0] * x->shape[1], m->h = h, m->w = w;
  m->ho = (hp - k[0]) / stride[0] + 1, m->wo = (wp - k[1]) / stride[1] + 1;
  m->kh = k[0], m->kw = k[1], m->sh = stride[0], m->sw = stride[1], m->ph = pad[0], m->pw = pad[1], m->include_pad = inc;
  return apply_map(x, m, NULL);
}

gen_tensor *gen_max_pool2d(gen_tensor *x, const int64_t k[2], const int64_t stride[2], const int64_t pad[2]) {
  return pool(MAP_MAX, x, k, stride, pad, false);
}

gen_tensor *gen_avg_pool2d(gen_tensor *x, const int64_t k[2], const int64_t stride[2], const int64_t pad[2],
                           bool count_include_pad) {
  return pool(MAP_AVG, x, k, stride, pad, count_include_pad);
}

/* PyTorch's source-index ratio: 1/scale when a scale factor was given, else in/out */
static double ratio(int64_t in, int64_t out, double scale) { return scale > 0 ? 1.0 / scale : (double)in / (double)out; }

/* nearest: src = min(floor(dst * ratio), in - 1), in float32 arithmetic as PyTorch does */
static void nearest_table(int64_t *t, int64_t in, int64_t out, double scale) {
  float r = (float)ratio(in, out, scale);
  for (int64_t i = 0; i < out; i++) {
    int64_t s = out == in ? i : out == 2 * in ? i / 2 : (int64_t)floorf((float)i * r);
    t[i] = s < in - 1 ? s : in - 1;
  }
}

/* bilinear, align_corners = false: lo/hi sources and the hi weight */
static void bilinear_table(int64_t *t, double *l, int64_t in, int64_t out, double scale) {
  double r = ratio(in, out, scale);
  for (int64_t i = 0; i < out; i++) {
    double src = ((double)i + 0.5) * r - 0.5;
    if (src < 0) src = 0;
    int64_t lo = (int64_t)src;
    if (lo > in - 1) lo = in - 1;
    t[2 * i] = lo;
    t[2 * i + 1] = lo < in - 1 ? lo + 1 : lo;
    l[i] = lo < in - 1 ? src - (double)lo : 0;
  }
}

/* pad and upsample build source-index tables of ho + wo entries (malloc'd, outside the memory
 * limit). For a non-empty output they are smaller than it; an empty one (no planes, or a zero
 * size) must not ask for tables of billions of entries (found by fuzzing: 16 GB for {0, 1, 2, 2}
 * padded by 2^31). */
static int check_tables(int64_t numel_out, size_t es, int64_t ho, int64_t wo) {
  int64_t cap = numel_out > 65536 ? numel_out : 65536;
  if (ho > cap || wo > cap)
    return gen_fail_int("output size %lldx%lld is too large for an output of %lld elements", (long long)ho, (long long)wo,
                        (long long)numel_out);
  bool ovf = false; /* the result and the tables (at most two int64 and a double per entry) must fit */
  int64_t bytes = gen_size_add(gen_size_mul(numel_out, (int64_t)es, &ovf), gen_size_mul(ho + wo, 24, &ovf), &ovf);
  return gen_memory_check(ovf ? -1 : bytes);
}

gen_tensor *gen_upsample(gen_tensor *x, int64_t out_h, int64_t out_w, double scale_h, double scale_w, bool bilinear) {
  if (check_4d(x) < 0) return NULL;
  if (out_h < 1 || out_w < 1) return gen_fail("output size %lldx%lld must be positive", (long long)out_h, (long long)out_w);
  if (x->shape[2] < 1 || x->shape[3] < 1)
    return gen_fail("cannot upsample an empty %lldx%lld image", (long long)x->shape[2], (long long)x->shape[3]);
  if (out_h > GEN_MAX_SIZE || out_w > GEN_MAX_SIZE)
    return gen_fail("output size %lldx%lld is too large", (long long)out_h, (long long)out_w);
  int64_t numel_out = gen_numel_checked(4, (int64_t[4]){x->shape[0], x->shape[1], out_h, out_w});
  if (numel_out < 0 || check_tables(numel_out, gen_dtype_size(x->dtype), out_h, out_w) < 0) return NULL;
  pixel_map *m = new_map(bilinear ? MAP_BILINEAR : MAP_TABLE, bilinear ? GEN_OP_UPSAMPLE_BILINEAR : GEN_OP_UPSAMPLE_NEAREST);
  if (!m) return NULL;
  m->planes = x->shape[0] * x->shape[1], m->h = x->shape[2], m->w = x->shape[3], m->ho = out_h, m->wo = out_w;
  int64_t k = bilinear ? 2 : 1;
  m->sy = malloc(sizeof(int64_t) * (size_t)(k * out_h));
  m->sx = malloc(sizeof(int64_t) * (size_t)(k * out_w));
  if (bilinear) {
    m->ly = malloc(sizeof(double) * (size_t)out_h);
    m->lx = malloc(sizeof(double) * (size_t)out_w);
  }
  if (!m->sy || !m->sx || (bilinear && (!m->ly || !m->lx))) {
    map_free(m);
    return gen_fail("out of memory");
  }
  if (bilinear) {
    bilinear_table(m->sy, m->ly, m->h, out_h, scale_h);
    bilinear_table(m->sx, m->lx, m->w, out_w, scale_w);
  } else {
    nearest_table(m->sy, m->h, out_h, scale_h);
    nearest_table(m->sx, m->w, out_w, scale_w);
  }
  return apply_map(x, m, NULL);
}

/* Reflect (without repeating the edge) or clamp an index into [0, n); constant: -1 outside. */
static int64_t fold(int64_t i, int64_t n, gen_pad_mode mode) {
  if (mode == GEN_PAD_CONSTANT) return i < 0 || i >= n ? -1 : i;
  if (mode == GEN_PAD_REPLICATE) return i < 0 ? 0 : i >= n ? n - 1 : i;
  if (n == 1) return 0;
  int64_t period = 2 * (n - 1);
  i = ((i % period) + period) % period;
  return i < n ? i : period - i;
}

gen_tensor *gen_pad(gen_tensor *x, const int64_t pads[4], gen_pad_mode mode, double value) {
  if (x->ndim < 2) return gen_fail("input needs at least 2 dimensions, got %d", x->ndim);
  int64_t h = x->shape[x->ndim - 2], w = x->shape[x->ndim - 1];
  for (int i = 0; i < 4; i++) {
    if (pads[i] < 0) return gen_fail("padding %lld is negative", (long long)pads[i]);
    int64_t size = i < 2 ? w : h;
    if (mode == GEN_PAD_REFLECT && pads[i] >= size)
      return gen_fail("reflect padding %lld must be smaller than the dimension size %lld", (long long)pads[i], (long long)size);
    if (mode != GEN_PAD_CONSTANT && size == 0)
      return gen_fail("cannot %s-pad an empty dimension", mode == GEN_PAD_REFLECT ? "reflect" : "replicate");
  }
  bool ovf = false;
  int64_t ho = gen_size_add(h, gen_size_add(pads[2], pads[3], &ovf), &ovf),
          wo = gen_size_add(w, gen_size_add(pads[0], pads[1], &ovf), &ovf);
  int64_t out_shape[GEN_MAX_DIMS];
  memcpy(out_shape, x->shape, sizeof(int64_t) * (size_t)x->ndim);
  out_shape[x->ndim - 2] = ho, out_shape[x->ndim - 1] = wo;
  int64_t numel_out = ovf ? -1 : gen_numel_checked(x->ndim, out_shape);
  if (numel_out >= 0 && check_tables(numel_out, gen_dtype_size(x->dtype), ho, wo) < 0) return NULL;
  if (ovf || ho > GEN_MAX_SIZE || wo > GEN_MAX_SIZE || numel_out < 0)
    return gen_fail("paddings {%lld, %lld, %lld, %lld} of a %lldx%lld image overflow", (long long)pads[0], (long long)pads[1],
                    (long long)pads[2], (long long)pads[3], (long long)h, (long long)w);
  pixel_map *m = new_map(MAP_TABLE, GEN_OP_PAD);
  if (!m) return NULL;
  m->planes = gen_numel_of(x->ndim - 2, x->shape), m->h = h, m->w = w;
  m->ho = ho, m->wo = wo, m->value = value;
  m->sy = malloc(sizeof(int64_t) * (size_t)(m->ho > 0 ? m->ho : 1));
  m->sx = malloc(sizeof(int64_t) * (size_t)(m->wo > 0 ? m->wo : 1));
  if (!m->sy || !m->sx) {
    map_free(m);
    return gen_fail("out of memory");
  }
  for (int64_t y = 0; y < m->ho; y++) m->sy[y] = fold(y - pads[2], h, mode);
  for (int64_t x0 = 0; x0 < m->wo; x0++) m->sx[x0] = fold(x0 - pads[0], w, mode);
  return apply_map(x, m, NULL);
}
