/* ops_attention.h — fused scaled dot-product attention (ops_attention.c). */
#ifndef GEN_OPS_ATTENTION_H
#define GEN_OPS_ATTENTION_H

#include "gen.h"

/* q {B, H, Tq, d}, k {B, H, Tk, d}, v {B, H, Tk, dv} -> {B, H, Tq, dv}.
 * mask (optional) broadcasts to {B, H, Tq, Tk}: uint8 (1 = attend, 0 = masked out) or float
 * (added to the scores). causal hides key j from query i when j > i + offset (0-based; offset >= 0
 * counts the keys before the first query, e.g. a key/value cache's length; only with causal).
 * scale <= 0 means 1/sqrt(d). A query with every key masked gets a zero output. */
gen_tensor *gen_attention(gen_tensor *q, gen_tensor *k, gen_tensor *v, gen_tensor *mask, bool causal, int64_t offset,
                          double scale);

#endif
