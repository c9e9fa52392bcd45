/*
 * ops.h — the one table of differentiable ops (ggml's habit): an enum, and beside it in ops.c a
 * name table whose length is checked against GEN_OP_COUNT by a static_assert, so an op cannot be
 * added without a name. The names are what gradcheck coverage (spec/zz_coverage_spec.lua) reports.
 *
 * Every op here records an autograd node; non-differentiable ops (comparisons, argmax, random
 * fills, creation) have no entry.
 */
#ifndef GEN_OPS_H
#define GEN_OPS_H

/* One family of ops per line, under its comment: kept as written. */
/* clang-format off */
#define GEN_OP_LIST(X)                                                                             \
  /* arithmetic (ops_arith.c) */                                                                  \
  X(ADD, "add") X(SUB, "sub") X(MUL, "mul") X(DIV, "div") X(POW, "pow") X(NEG, "neg")              \
  /* unary math (ops_unary.c) */                                                                  \
  X(EXP, "exp") X(LOG, "log") X(SQRT, "sqrt") X(RSQRT, "rsqrt") X(ABS, "abs") X(TANH, "tanh")      \
  X(SIGMOID, "sigmoid") X(SIN, "sin") X(COS, "cos") X(CLAMP, "clamp") X(ERF, "erf")                  \
  X(RELU, "relu") X(LEAKY_RELU, "leaky_relu") X(SILU, "silu") X(GELU, "gelu")                      \
  X(SOFTPLUS, "softplus") X(ELU, "elu")                                                            \
  /* selection (ops_unary.c) */                                                                   \
  X(WHERE, "where") X(MASKED_FILL, "masked_fill")                                                  \
  /* reductions (ops_reduce.c) */                                                                 \
  X(SUM, "sum") X(MEAN, "mean") X(VAR, "var") X(STD, "std") X(MAX, "max") X(MIN, "min")            \
  X(LOGSUMEXP, "logsumexp") X(SOFTMAX, "softmax") X(LOG_SOFTMAX, "log_softmax")                    \
  X(CUMSUM, "cumsum")                                                                              \
  /* linear algebra (ops_matmul.c) */                                                             \
  X(MATMUL, "matmul") X(LINEAR, "linear")                                                          \
  /* small-matrix linear algebra (ops_linalg.c) */                                                \
  X(LU_FACTOR, "lu_factor") X(SLOGDET, "slogdet") X(INVERSE, "inverse")                            \
  X(SOLVE_TRIANGULAR, "solve_triangular")                                                          \
  /* views, shapes, copies (ops_shape.c) */                                                       \
  X(VIEW, "view") X(PERMUTE, "permute") X(NARROW, "narrow") X(SELECT, "select")                    \
  X(EXPAND, "expand") X(COPY, "copy") X(TO_DTYPE, "to_dtype") X(CAT, "cat")                        \
  /* indexing (ops_index.c) */                                                                    \
  X(INDEX_SELECT, "index_select") X(GATHER, "gather") X(SCATTER_ADD, "scatter_add")                \
  X(EMBEDDING, "embedding")                                                                        \
  /* sorting (ops_sort.c) */                                                                       \
  X(SORT, "sort")                                                                                  \
  /* convolution, pooling, resampling (ops_conv.c, ops_pool.c) */                                 \
  X(CONV2D, "conv2d") X(CONV_TRANSPOSE2D, "conv_transpose2d") X(MAX_POOL2D, "max_pool2d")          \
  X(AVG_POOL2D, "avg_pool2d") X(UPSAMPLE_NEAREST, "upsample_nearest")                              \
  X(UPSAMPLE_BILINEAR, "upsample_bilinear") X(PAD, "pad")                                          \
  X(RESAMPLE_BACKWARD, "resample_backward")                                                        \
  /* normalization, regularization (ops_norm.c) */                                                \
  X(BATCH_NORM, "batch_norm") X(GROUP_NORM, "group_norm") X(LAYER_NORM, "layer_norm")              \
  X(DROPOUT, "dropout")                                                                            \
  /* attention (ops_attention.c) */                                                               \
  X(ATTENTION, "scaled_dot_product_attention")                                                     \
  /* losses (ops_loss.c) */                                                                       \
  X(MSE_LOSS, "mse_loss") X(L1_LOSS, "l1_loss") X(BCE_WITH_LOGITS, "bce_with_logits")              \
  X(BINARY_CROSS_ENTROPY, "binary_cross_entropy") X(CROSS_ENTROPY, "cross_entropy")                \
  X(NLL_LOSS, "nll_loss") X(KL_NORMAL, "kl_normal")                                              \
  /* gradient hooks (ops_hook.c) */                                                               \
  X(GRAD_HOOK, "grad_hook")                                                                        \
  /* vector quantization (ops_quantize.c) */                                                      \
  X(VECTOR_QUANTIZE, "vector_quantize") X(VQ_CODEBOOK_LOSS, "vq_codebook_loss")                    \
  X(VQ_COMMITMENT_LOSS, "vq_commitment_loss")
/* clang-format on */

#define GEN_OP_ENUM(id, name) GEN_OP_##id,
typedef enum { GEN_OP_LIST(GEN_OP_ENUM) GEN_OP_COUNT } gen_op;
#undef GEN_OP_ENUM

extern const char *const gen_op_names[];
const char *gen_op_name(gen_op op);

#endif
