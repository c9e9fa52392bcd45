/*
 * gen.h — the C core of gen: tensors, storage, reverse-mode autograd.
 *
 * This header has no Lua in it. The Lua binding (csrc/bind/) is the only code that includes lua.h.
 *
 * A short tour
 * ------------
 *   storage   a refcounted byte buffer plus a version counter (bumped by every in-place write, so
 *             that autograd can detect a saved tensor that was modified before backward).
 *   tensor    a refcounted header: dtype, ndim, shape, strides (in elements), offset (in elements)
 *             into a storage. Views share the storage, so making one is O(1).
 *   node      the autograd record of the op that produced a tensor: op id, inputs, saved tensors,
 *             the op's attribute struct and the backward function (see autograd.h).
 *
 * Ownership: every function that returns a gen_tensor* returns a new reference the caller owns
 * (release it with gen_release). Functions never steal references to their arguments.
 *
 * Errors: core functions never longjmp and never abort. A failing function returns NULL (or a
 * negative int), having freed what it allocated, and leaves a message in gen_last_error(). The
 * binding prefixes it with the Lua-visible function name, e.g. "gen.matmul: " + message.
 *
 * Dimensions and indices are 0-based here; the binding converts from Lua's 1-based ones in one place.
 */
#ifndef GEN_H
#define GEN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define GEN_MAX_DIMS 8

/* Elements of an array. Tables indexed by an enum are sized by their initializers and checked with
 * _Static_assert(GEN_COUNT_OF(table) == X_COUNT, ...), so adding an enum value without its entry
 * fails the build (an explicit [X_COUNT] size would silently zero-fill the missing entry). */
#define GEN_COUNT_OF(a) (sizeof(a) / sizeof((a)[0]))

typedef enum { GEN_FLOAT32, GEN_FLOAT64, GEN_INT64, GEN_UINT8, GEN_DTYPE_COUNT } gen_dtype;

struct gen_derived;

typedef struct gen_storage {
  void *data;
  size_t nbytes;
  size_t capacity; /* of the allocator block holding data */
  int64_t refcount;
  uint64_t version;            /* bumped by in-place writes */
  struct gen_derived *derived; /* data computed from this storage's contents (gen_derived_get) */
} gen_storage;

struct gen_node;

typedef struct gen_tensor {
  int64_t refcount;
  gen_dtype dtype;
  int ndim;
  int64_t shape[GEN_MAX_DIMS];
  int64_t stride[GEN_MAX_DIMS]; /* in elements */
  int64_t offset;               /* in elements */
  gen_storage *storage;
  bool requires_grad;       /* leaves: set by the user; non-leaves: true when grad_fn != NULL */
  struct gen_tensor *grad;  /* accumulated gradient of a leaf */
  struct gen_node *grad_fn; /* the op that produced this tensor, NULL for leaves */
  int64_t grad_hook;        /* leaves: nonzero when a gradient-ready hook watches it (autograd.h) */
  int64_t hook_pending;     /* engine scratch: contributions still to come in this backward */
} gen_tensor;

/* ---- errors (error.c) ---- */
const char *gen_last_error(void);
/* Formats the message and returns NULL, so failing paths can `return gen_fail(...)`. */
void *gen_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Same, for int-returning functions: returns -1. */
int gen_fail_int(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Writes "{2,3,4}" into buf (1-based users read shapes the same way). */
const char *gen_shape_str(char *buf, size_t n, int ndim, const int64_t *shape);
#define GEN_SHAPE_STR_MAX 160

/* ---- checked size arithmetic ----
 * The one way sizes, offsets, counts and stride products computed from user input are added and
 * multiplied (shapes, views, layer output sizes, file headers, element ranges). Each returns the
 * exact result, or sets *overflow (which stays set: chain a whole formula, then test once) and
 * returns 0 when the result does not fit in int64:
 *
 *     bool ovf = false;
 *     int64_t ho = gen_size_add(gen_size_mul(h - 1, stride, &ovf), k, &ovf);
 *     if (ovf) return gen_fail("output height overflows (h %lld, stride %lld)", ...);
 */
static inline int64_t gen_size_add(int64_t a, int64_t b, bool *overflow) {
  int64_t r;
  if (__builtin_add_overflow(a, b, &r)) *overflow = true;
  return *overflow ? 0 : r;
}
static inline int64_t gen_size_sub(int64_t a, int64_t b, bool *overflow) {
  int64_t r;
  if (__builtin_sub_overflow(a, b, &r)) *overflow = true;
  return *overflow ? 0 : r;
}
static inline int64_t gen_size_mul(int64_t a, int64_t b, bool *overflow) {
  int64_t r;
  if (__builtin_mul_overflow(a, b, &r)) *overflow = true;
  return *overflow ? 0 : r;
}
/* No single size (a dimension, a table of source indices) may exceed this: a tensor holds at most
 * 2^40 bytes anyway (tensor.c), so larger sizes are input errors, refused before any allocation. */
#define GEN_MAX_SIZE ((int64_t)1 << 40)
/* The element count of a shape, or -1 (with an error set naming the shape) when a size is
 * negative or the product of the sizes (of the nonzero ones, which give the strides) overflows. */
int64_t gen_numel_checked(int ndim, const int64_t *shape);

/* ---- dtypes (tensor.c) ---- */
size_t gen_dtype_size(gen_dtype dt);
const char *gen_dtype_name(gen_dtype dt);
int gen_dtype_from_name(const char *name); /* -1 when unknown */
bool gen_dtype_is_float(gen_dtype dt);
gen_dtype gen_promote(gen_dtype a, gen_dtype b);

/* ---- memory accounting (tensor.c) ---- */
typedef struct {
  int64_t live_bytes, peak_bytes, total_allocs;
} gen_memory_stats;
gen_memory_stats gen_memory(void);
void gen_memory_reset_peak(void);
/* The memory limit on live tensor bytes (0: none; GEN_MAX_MEMORY sets the initial value). Setting
 * returns the previous limit. An allocation past it fails with "out of memory: needs ...". */
int64_t gen_memory_limit(void);
int64_t gen_set_memory_limit(int64_t bytes);
/* 0 when `bytes` more would fit (under the 1 TiB per-tensor cap and the memory limit), else -1 with
 * the "out of memory: needs ..." error: for ops that build large scratch before their result. */
int gen_memory_check(int64_t bytes);
/* Bytes allocated since the last call to gen_memory_take_pressure(); the binding uses it to pace
 * Lua's collector, which cannot see C allocations. */
int64_t gen_memory_take_pressure(void);

/* ---- data derived from a tensor's contents, cached on its storage (tensor.c) ----
 * A convolution's transformed weights cost as much as the convolution itself at batch 1, and a
 * sampler applies the same weights hundreds of times: such data is kept beside the storage it was
 * computed from, under a key the op chooses (what it is and which view of the storage it read),
 * and is valid while the storage's version is the one it was computed at (every in-place write
 * bumps it, so an optimizer step or a load invalidates it). It is freed with the storage. All
 * entries together hold at most gen_derived_budget() bytes; past that, put releases the value
 * instead (the op computes it again next time). Main thread only, like every op. */
#define GEN_DERIVED_KEY 6
gen_tensor *gen_derived_get(const gen_tensor *t, const int64_t key[GEN_DERIVED_KEY]);             /* a new reference, or NULL */
void gen_derived_put(const gen_tensor *t, const int64_t key[GEN_DERIVED_KEY], gen_tensor *value); /* takes value's reference */
int64_t gen_derived_bytes(void);
int64_t gen_derived_budget(void);
int64_t gen_set_derived_budget(int64_t bytes); /* returns the previous budget; 0 turns the cache off */

/* ---- storage and tensors (tensor.c) ---- */
gen_storage *gen_storage_new(size_t nbytes);
void gen_storage_release(gen_storage *s);

/* Contiguous, uninitialized. ndim may be 0 (a scalar). */
gen_tensor *gen_empty(gen_dtype dt, int ndim, const int64_t *shape);
gen_tensor *gen_zeros(gen_dtype dt, int ndim, const int64_t *shape);
gen_tensor *gen_full(gen_dtype dt, int ndim, const int64_t *shape, double value);
gen_tensor *gen_scalar(gen_dtype dt, double value); /* 0-d */
gen_tensor *gen_empty_like(const gen_tensor *t);
gen_tensor *gen_zeros_like(const gen_tensor *t);

void gen_retain(gen_tensor *t);
void gen_release(gen_tensor *t); /* NULL-safe */

int64_t gen_numel(const gen_tensor *t);
int64_t gen_numel_of(int ndim, const int64_t *shape);
bool gen_is_contiguous(const gen_tensor *t);
bool gen_same_shape(const gen_tensor *a, const gen_tensor *b);
void gen_contiguous_strides(int ndim, const int64_t *shape, int64_t *stride);
static inline char *gen_data_ptr(const gen_tensor *t) {
  return (char *)t->storage->data + (size_t)t->offset * gen_dtype_size(t->dtype);
}
/* A new header over the same storage (no autograd record; see gen_view_op in autograd.h). */
gen_tensor *gen_as_strided(gen_tensor *base, int ndim, const int64_t *shape, const int64_t *stride, int64_t offset);
/* Returns t itself (retained) when already contiguous, else a contiguous copy (no autograd). */
gen_tensor *gen_contiguous_raw(gen_tensor *t);
/* A contiguous tensor with t's elements in row-major order and the given shape: a view when t is
 * contiguous, else a copy (no autograd). */
gen_tensor *gen_reshape_raw(gen_tensor *t, int ndim, const int64_t *shape);
/* Copies src into dst elementwise, broadcasting src to dst's shape and converting dtypes. */
int gen_copy_raw(gen_tensor *dst, const gen_tensor *src);
gen_tensor *gen_to_dtype_raw(gen_tensor *t, gen_dtype dt);      /* always a new tensor */
double gen_get_flat(const gen_tensor *t, int64_t linear_index); /* row-major index, any strides */
/* The same element as an integer: int64 read exactly (a double holds only 53 bits), others
 * converted with saturation and NaN as INT64_MIN, never an out-of-range conversion. For indices. */
int64_t gen_get_flat_i64(const gen_tensor *t, int64_t linear_index);
double gen_read_f64(const void *p, gen_dtype dt);
/* Element i of a float32 or float64 buffer p of dtype dt, the pointer taken once outside the loops. */
static inline double gen_float_at(const char *p, gen_dtype dt, int64_t i) {
  return dt == GEN_FLOAT32 ? ((const float *)p)[i] : ((const double *)p)[i];
}
static inline void gen_float_put(char *p, gen_dtype dt, int64_t i, double v) {
  if (dt == GEN_FLOAT32)
    ((float *)p)[i] = (float)v;
  else
    ((double *)p)[i] = v;
}
void gen_write_f64(void *p, gen_dtype dt, double v);
/* Broadcast shapes a and b into out (ndim returned), or -1 with an error set. */
int gen_broadcast_shapes(int na, const int64_t *a, int nb, const int64_t *b, int64_t *out);
/* Strides of t broadcast to (ndim, shape): 0 along broadcast dims; -1 with an error if it cannot. */
int gen_broadcast_strides(const gen_tensor *t, int ndim, const int64_t *shape, int64_t *stride);
/* A view of t expanded to (ndim, shape) with stride 0 along broadcast dimensions. */
gen_tensor *gen_expand_raw(gen_tensor *t, int ndim, const int64_t *shape);
/* Mark an in-place write on t's storage (autograd uses versions to catch stale saved tensors). */
static inline void gen_bump_version(gen_tensor *t) { t->storage->version++; }

/* ---- threads (threads.c) ---- */
void gen_set_num_threads(int n);
int gen_get_num_threads(void);
/* Elementwise loops go parallel above this many elements. Test the size with a plain `if` rather
 * than OpenMP's if-clause: entering a parallel region costs about a microsecond even when its
 * if-clause is false, which is most of a tiny op's time. */
#define GEN_PARALLEL_GRAIN 32768
double gen_time(void);

/* ---- random numbers (random.c): Philox4x32-10, counter-based ---- */
typedef struct gen_generator {
  uint64_t seed;
  uint64_t offset; /* counter: how many 128-bit blocks have been consumed */
} gen_generator;
gen_generator *gen_default_generator(void);
void gen_generator_seed(gen_generator *g, uint64_t seed);
/* Fills t (any strides) with U[lo, hi), N(mean, std), or integers in [lo, hi] (inclusive). The
 * stream depends only on the seed and offset, never on the thread count. */
int gen_fill_uniform(gen_tensor *t, gen_generator *g, double lo, double hi);
int gen_fill_normal(gen_tensor *t, gen_generator *g, double mean, double std);
int gen_fill_randint(gen_tensor *t, gen_generator *g, int64_t lo, int64_t hi);
int gen_fill_bernoulli(gen_tensor *t, gen_generator *g, double p);
/* Raw access for code that draws its own numbers (randperm's shuffle): returns the 4 uniform
 * 32-bit words of block `block` of seed's stream. */
void gen_philox_block(uint64_t seed, uint64_t block, uint32_t out[4]);
/* Reserves nblocks blocks and returns the first block index. */
uint64_t gen_generator_reserve(gen_generator *g, uint64_t nblocks);
/* n category indices (int64, 1-based) per row of nonnegative weights probs {V} or {B, V} (not
 * necessarily normalized): -> {n} or {B, n}. Without replacement a row gives n distinct ones. */
gen_tensor *gen_multinomial(gen_tensor *probs, int64_t n, bool replacement, gen_generator *g);

#endif
