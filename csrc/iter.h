/*
 * iter.h — strided N-d iteration shared by the elementwise kernels.
 *
 * The strategy (Torch7's THTensorApply did the same): describe up to GEN_ITER_MAX_OPS operands by
 * their strides over one common shape (a broadcast operand has stride 0), merge adjacent dimensions
 * that are laid out contiguously for every operand, and then see the whole space as `rows` rows of
 * `inner` elements. A kernel runs one row at a time with the innermost strides, which are usually
 * 1 (or 0 for a broadcast scalar) so the compiler vectorizes it. Rows are independent, so they are
 * split across threads; each row computes its own start offsets, so the split never changes results.
 */
#ifndef GEN_ITER_H
#define GEN_ITER_H

#include "gen.h"

#define GEN_ITER_MAX_OPS 4

typedef struct gen_iter {
  int ndim; /* >= 1 after init */
  int n_ops;
  int64_t shape[GEN_MAX_DIMS];
  int64_t stride[GEN_ITER_MAX_OPS][GEN_MAX_DIMS];
  int64_t rows, inner; /* rows * inner == numel */
} gen_iter;

/* strides[k] are operand k's strides over (ndim, shape); operand k's data starts at its own base. */
void gen_iter_init(gen_iter *it, int ndim, const int64_t *shape, int n_ops, const int64_t *const *strides);
/* Element offsets of the first element of row r, for each operand. */
static inline void gen_iter_row(const gen_iter *it, int64_t r, int64_t *off) {
  for (int k = 0; k < it->n_ops; k++) off[k] = 0;
  for (int d = it->ndim - 2; d >= 0 && r > 0; d--) {
    int64_t i = r % it->shape[d];
    r /= it->shape[d];
    for (int k = 0; k < it->n_ops; k++) off[k] += i * it->stride[k][d];
  }
}
static inline int64_t gen_iter_inner_stride(const gen_iter *it, int k) { return it->stride[k][it->ndim - 1]; }

/* A contiguous tensor is a single row, so a parallel loop splits rows into spans of at most `span`
 * elements: gen_iter_spans work items in all, item s being elements [*lo, *hi) of row *row. */
static inline int64_t gen_iter_spans(const gen_iter *it, int64_t span) { return it->rows * ((it->inner + span - 1) / span); }
static inline void gen_iter_span(const gen_iter *it, int64_t span, int64_t s, int64_t *row, int64_t *lo, int64_t *hi) {
  int64_t per_row = (it->inner + span - 1) / span;
  *row = s / per_row, *lo = s % per_row * span;
  *hi = *lo + span < it->inner ? *lo + span : it->inner;
}

#endif
