/* attention.h — the float32 fused attention kernels (attention.c); ops_attention.c validates,
 * allocates, handles autograd and keeps the any-dtype reference kernel. Outputs first, then
 * inputs, then the shape and the scratch (per thread, *_scratch_floats each, `threads` of them). */
#ifndef GEN_KERNELS_ATTENTION_H
#define GEN_KERNELS_ATTENTION_H

#include <stdbool.h>
#include <stdint.h>

#include "../gen.h"

/* Tiles: BQ queries x BK keys. */
#define GEN_ATTN_BQ 64
#define GEN_ATTN_BK 64

typedef struct {
  int64_t b, h, tq, tk, d, dv;
  double scale;
  bool causal;      /* key j hidden from query i when j > i + offset */
  int64_t offset;   /* keys before query 0 (causal): 0 is top-left aligned; Tk - Tq puts the queries
                       at the end of the keys, as incremental decoding with a key/value cache needs */
  const void *mask; /* NULL, or its first element: uint8 (0 = hidden) / float (added) */
  gen_dtype mask_dtype;
  int64_t mstride[4]; /* element strides of the mask broadcast to {B, H, Tq, Tk} */
} gen_attn_shape;

/* q [B*H, Tq, d], k [B*H, Tk, d], v [B*H, Tk, dv] contiguous -> o [B*H, Tq, dv], lse [B*H, Tq]
 * (log-sum-exp of each query's scaled, masked scores; -inf for a fully masked row, whose output
 * is 0). */
int64_t gen_attention_forward_scratch_floats(const gen_attn_shape *a);
void gen_attention_forward_f32(float *o, double *lse, const float *q, const float *k, const float *v, const gen_attn_shape *a,
                               float *scratch, int threads);

/* Gradients from dout [B*H, Tq, dv]: dq, dk, dv are overwritten (shapes as q, k, v). */
int64_t gen_attention_backward_scratch_floats(const gen_attn_shape *a);
void gen_attention_backward_f32(float *dq, float *dk, float *dv, const float *dout, const float *q, const float *k,
                                const float *v, const float *o, const double *lse, const gen_attn_shape *a, float *scratch,
                                int threads);

#endif
