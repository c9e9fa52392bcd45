/* ops_quantize.h — vector quantization (VQ-VAE, van den Oord et al., 2017), in ops_quantize.c. */
#ifndef GEN_OPS_QUANTIZE_H
#define GEN_OPS_QUANTIZE_H

#include "gen.h"

/* The nearest codebook row of every row of z: z {..., D} (float32 or float64), codebook {K, D} of
 * the same dtype. *indices receives int64 codes shaped like z without its last dimension, 1-based,
 * ties to the lowest index. Returns the quantized rows (z's shape), whose gradient goes to z
 * unchanged (the straight-through estimator) and never to the codebook. */
gen_tensor *gen_vector_quantize(gen_tensor *z, gen_tensor *codebook, gen_tensor **indices);

/* The two VQ losses of the paper, both mean_{rows, D} ||z - e_idx||^2 in value, differing only in
 * where the gradient goes: the codebook loss ||sg[z] - e||^2 moves the codebook (gradient to
 * codebook only), the commitment loss ||z - sg[e]||^2 moves the encoder (gradient to z only). */
gen_tensor *gen_vq_codebook_loss(gen_tensor *z, gen_tensor *codebook, gen_tensor *indices);
gen_tensor *gen_vq_commitment_loss(gen_tensor *z, gen_tensor *codebook, gen_tensor *indices);

/* The EMA codebook update (appendix A.1 of the paper), in place, no autograd: with n_k the count of
 * rows assigned to code k and s_k their sum,
 *   N_k <- decay N_k + (1 - decay) n_k,   m_k <- decay m_k + (1 - decay) s_k,
 *   e_k <- m_k / N~_k,  N~_k = (N_k + eps) / (sum N + K eps) * sum N   (Laplace smoothing).
 * cluster_size {K} and embed_sum {K, D} are the running N and m (contiguous, codebook's dtype).
 * counts (optional, {K}, any float dtype) receives n_k. */
int gen_vq_ema_update_(gen_tensor *codebook, gen_tensor *cluster_size, gen_tensor *embed_sum, gen_tensor *z, gen_tensor *indices,
                       double decay, double eps, gen_tensor *counts);

#endif
