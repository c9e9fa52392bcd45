/* ops_attention.h — fused scaled dot-product attention (ops_attention.c). */
#ifndef GEN_OPS_ATTENTION_H
#define GEN_OPS_ATTENTION_H

#include "gen.h"

/* q {B, H, Tq, d}, k {B, H, Tk, d}, v {B, H, Tk, dv} -> {B, H, Tq, dv}.
 * mask (optional) broadcasts to {B, H, Tq, Tk}: uint8 (1 = attend, 0 = masked out) or float
 * (added to the scores). causal masks keys after the query position (i < j). scale <= 0 means
 * 1/sqrt(d). A query with every key masked gets a zero output. */
gen_tensor *gen_attention(gen_tensor *q, gen_tensor *k, gen_tensor *v, gen_tensor *mask, bool causal, double scale);

#endif
