/*
 * tensor.c — storage, tensor headers, views, copies and dtype conversion.
 *
 * Storage bytes are counted (live, peak, and "pressure": bytes allocated since the binding last
 * asked), because Lua's collector cannot see them and must be told.
 */
#include <math.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "alloc.h"
#include "autograd.h"
#include "gen.h"
#include "iter.h"

/* ---- dtypes ---- */

static const size_t dtype_sizes[] = {4, 8, 8, 1};
static const char *const dtype_names[] = {"float32", "float64", "int64", "uint8"};
_Static_assert(GEN_COUNT_OF(dtype_sizes) == GEN_DTYPE_COUNT, "every dtype needs a size");
_Static_assert(GEN_COUNT_OF(dtype_names) == GEN_DTYPE_COUNT, "every dtype needs a name");

size_t gen_dtype_size(gen_dtype dt) { return dtype_sizes[dt]; }
const char *gen_dtype_name(gen_dtype dt) { return dt < GEN_DTYPE_COUNT ? dtype_names[dt] : "?"; }
bool gen_dtype_is_float(gen_dtype dt) { return dt == GEN_FLOAT32 || dt == GEN_FLOAT64; }

int gen_dtype_from_name(const char *name) {
  static const struct {
    const char *alias;
    gen_dtype dt;
  } aliases[] = {{"float32", GEN_FLOAT32}, {"float", GEN_FLOAT32}, {"float64", GEN_FLOAT64}, {"double", GEN_FLOAT64},
                 {"int64", GEN_INT64},     {"long", GEN_INT64},    {"uint8", GEN_UINT8},     {"byte", GEN_UINT8}};
  for (size_t i = 0; i < sizeof aliases / sizeof aliases[0]; i++)
    if (strcmp(name, aliases[i].alias) == 0) return (int)aliases[i].dt;
  return -1;
}

/* float64 > float32 > int64 > uint8, as PyTorch promotes. */
gen_dtype gen_promote(gen_dtype a, gen_dtype b) {
  static const int rank[] = {2, 3, 1, 0};
  _Static_assert(GEN_COUNT_OF(rank) == GEN_DTYPE_COUNT, "every dtype needs a promotion rank");
  return rank[a] >= rank[b] ? a : b;
}

double gen_read_f64(const void *p, gen_dtype dt) {
  switch (dt) {
  case GEN_FLOAT32: return *(const float *)p;
  case GEN_FLOAT64: return *(const double *)p;
  case GEN_INT64: return (double)*(const int64_t *)p;
  default: return *(const uint8_t *)p;
  }
}

/* Integer targets truncate toward zero and saturate, so NaN or huge values cannot hit UB. */
static int64_t to_int64(double v) {
  if (!(v == v)) return 0;
  if (v >= 9.2233720368547758e18) return INT64_MAX;
  if (v <= -9.2233720368547758e18) return INT64_MIN;
  return (int64_t)v;
}

void gen_write_f64(void *p, gen_dtype dt, double v) {
  switch (dt) {
  case GEN_FLOAT32: *(float *)p = (float)v; break;
  case GEN_FLOAT64: *(double *)p = v; break;
  case GEN_INT64: *(int64_t *)p = to_int64(v); break;
  default: {
    int64_t i = to_int64(v);
    *(uint8_t *)p = (uint8_t)(i < 0 ? 0 : i > 255 ? 255 : i);
  }
  }
}

/* ---- memory accounting ---- */

static _Atomic int64_t live_bytes, peak_bytes, total_allocs, pressure_bytes;

gen_memory_stats gen_memory(void) {
  return (gen_memory_stats){atomic_load(&live_bytes), atomic_load(&peak_bytes), atomic_load(&total_allocs)};
}
void gen_memory_reset_peak(void) { atomic_store(&peak_bytes, atomic_load(&live_bytes)); }
int64_t gen_memory_take_pressure(void) { return atomic_exchange(&pressure_bytes, 0); }

static void count_alloc(int64_t n) {
  int64_t now = atomic_fetch_add(&live_bytes, n) + n;
  atomic_fetch_add(&total_allocs, 1);
  atomic_fetch_add(&pressure_bytes, n);
  int64_t peak = atomic_load(&peak_bytes);
  while (now > peak && !atomic_compare_exchange_weak(&peak_bytes, &peak, now)) {}
}

/* ---- storage ---- */

/* Largest single tensor we agree to allocate (a guard against absurd sizes from bad input). */
#define GEN_MAX_BYTES ((size_t)1 << 40)

/* ---- the memory limit ----
 * gen_set_memory_limit(bytes) (or GEN_MAX_MEMORY, read once: bytes with an optional K, M, G or T
 * suffix): a storage that would take the live tensor bytes past it is refused with an error, as is
 * one the system refuses (after returning the allocator's cached blocks and trying again). The
 * binding turns "out of memory: needs ..." into "out of memory: gen.OP needs ...". */
static _Atomic int64_t memory_limit = -1; /* -1: GEN_MAX_MEMORY not read yet; 0: no limit */

static int64_t parse_bytes(const char *s) {
  char *end;
  double v = strtod(s, &end);
  if (end == s || !(v >= 0)) return 0;
  switch (*end) {
  case 'k':
  case 'K': v *= 1024.0; break;
  case 'm':
  case 'M': v *= 1048576.0; break;
  case 'g':
  case 'G': v *= 1073741824.0; break;
  case 't':
  case 'T': v *= 1099511627776.0; break;
  default: break;
  }
  return v >= 9.2e18 ? 0 : (int64_t)v;
}

int64_t gen_memory_limit(void) {
  int64_t l = atomic_load(&memory_limit);
  if (l < 0) {
    const char *env = getenv("GEN_MAX_MEMORY");
    l = env ? parse_bytes(env) : 0;
    atomic_store(&memory_limit, l);
  }
  return l;
}

int64_t gen_set_memory_limit(int64_t bytes) {
  int64_t was = gen_memory_limit();
  atomic_store(&memory_limit, bytes > 0 ? bytes : 0);
  return was;
}

static void *out_of_memory(size_t nbytes, const char *why) {
  int64_t limit = gen_memory_limit();
  char lim[64];
  if (limit > 0)
    snprintf(lim, sizeof lim, "limit %.1f MB", (double)limit / 1048576.0);
  else
    snprintf(lim, sizeof lim, "no limit set");
  return gen_fail("out of memory: needs %.1f MB (live %.1f MB, %s)%s", (double)nbytes / 1048576.0,
                  (double)atomic_load(&live_bytes) / 1048576.0, lim, why);
}

/* Physical memory: no single allocation may exceed it, limit or not (with overcommit, a larger one
 * would succeed and the kernel would kill the process while it is filled). */
static int64_t physical_bytes(void) {
  static int64_t phys;
  if (!phys) {
    long pages = sysconf(_SC_PHYS_PAGES), size = sysconf(_SC_PAGESIZE);
    phys = pages > 0 && size > 0 ? (int64_t)pages * size : INT64_MAX;
  }
  return phys;
}

int gen_memory_check(int64_t bytes) {
  int64_t limit = gen_memory_limit();
  if (bytes < 0 || (size_t)bytes > GEN_MAX_BYTES) return out_of_memory(bytes < 0 ? 0 : (size_t)bytes, ""), -1;
  if (limit > 0 && atomic_load(&live_bytes) + bytes > limit) return out_of_memory((size_t)bytes, ""), -1;
  if (bytes > physical_bytes()) return out_of_memory((size_t)bytes, ": more than the machine's memory"), -1;
  return 0;
}

gen_storage *gen_storage_new(size_t nbytes) {
  if (nbytes > GEN_MAX_BYTES) return gen_fail("cannot allocate %zu bytes (more than the 1 TiB limit)", nbytes);
  if (gen_memory_check((int64_t)nbytes) < 0) return NULL;
  size_t header_cap;
  gen_storage *s = gen_alloc_block(sizeof *s, &header_cap);
  if (!s) return out_of_memory(nbytes, ": the system refused");
  s->data = gen_alloc_block(nbytes ? nbytes : 1, &s->capacity);
  if (!s->data) { /* give the cached blocks back to the system and try once more */
    gen_empty_cache();
    s->data = gen_alloc_block(nbytes ? nbytes : 1, &s->capacity);
  }
  if (!s->data) {
    gen_free_block(s, header_cap);
    return out_of_memory(nbytes, ": the system refused");
  }
  s->nbytes = nbytes;
  s->refcount = 1;
  s->version = 0;
  s->derived = NULL;
  count_alloc((int64_t)nbytes);
  return s;
}

/* ---- derived data (gen.h) ---- */

typedef struct gen_derived {
  int64_t key[GEN_DERIVED_KEY];
  uint64_t version; /* of the storage when value was computed */
  gen_tensor *value;
  struct gen_derived *next;
} gen_derived;

static int64_t derived_bytes, derived_budget = (int64_t)256 << 20;

int64_t gen_derived_bytes(void) { return derived_bytes; }
int64_t gen_derived_budget(void) { return derived_budget; }
int64_t gen_set_derived_budget(int64_t bytes) {
  int64_t was = derived_budget;
  derived_budget = bytes > 0 ? bytes : 0;
  return was;
}

static int64_t value_bytes(const gen_tensor *v) { return (int64_t)v->storage->nbytes; }

static void derived_free(gen_derived *d) {
  derived_bytes -= value_bytes(d->value);
  gen_release(d->value);
  gen_free_block(d, gen_block_capacity(sizeof *d));
}

static gen_derived **derived_find(gen_storage *s, const int64_t *key) {
  gen_derived **at = &s->derived;
  while (*at && memcmp((*at)->key, key, sizeof(*at)->key) != 0) at = &(*at)->next;
  return at;
}

gen_tensor *gen_derived_get(const gen_tensor *t, const int64_t key[GEN_DERIVED_KEY]) {
  gen_derived *d = *derived_find(t->storage, key);
  if (!d || d->version != t->storage->version || derived_budget == 0) return NULL; /* put replaces it */
  gen_retain(d->value);
  return d->value;
}

void gen_derived_put(const gen_tensor *t, const int64_t key[GEN_DERIVED_KEY], gen_tensor *value) {
  gen_derived **at = derived_find(t->storage, key), *old = *at;
  if (old) { /* stale (or the same): the new value replaces it */
    *at = old->next;
    derived_free(old);
  }
  size_t cap;
  gen_derived *d = derived_bytes + value_bytes(value) <= derived_budget ? gen_alloc_block(sizeof *d, &cap) : NULL;
  if (!d) {
    gen_release(value);
    return;
  }
  memcpy(d->key, key, sizeof d->key);
  d->version = t->storage->version, d->value = value, d->next = t->storage->derived;
  t->storage->derived = d;
  derived_bytes += value_bytes(value);
}

void gen_storage_release(gen_storage *s) {
  if (!s || --s->refcount > 0) return;
  while (s->derived) {
    gen_derived *d = s->derived;
    s->derived = d->next;
    derived_free(d);
  }
  atomic_fetch_sub(&live_bytes, (int64_t)s->nbytes);
  gen_free_block(s->data, s->capacity);
  gen_free_block(s, gen_block_capacity(sizeof *s));
}

/* ---- tensors ---- */

int64_t gen_numel_of(int ndim, const int64_t *shape) {
  int64_t n = 1;
  for (int d = 0; d < ndim; d++) n *= shape[d];
  return n;
}
int64_t gen_numel(const gen_tensor *t) { return gen_numel_of(t->ndim, t->shape); }

void gen_contiguous_strides(int ndim, const int64_t *shape, int64_t *stride) {
  int64_t s = 1;
  for (int d = ndim - 1; d >= 0; d--) {
    stride[d] = s;
    if (d > 0) s *= shape[d] > 1 ? shape[d] : 1; /* shapes passed gen_numel_checked: no overflow */
  }
}

bool gen_is_contiguous(const gen_tensor *t) {
  int64_t s = 1;
  for (int d = t->ndim - 1; d >= 0; d--) {
    if (t->shape[d] != 1 && t->stride[d] != s) return false;
    s *= t->shape[d];
  }
  return true;
}

bool gen_same_shape(const gen_tensor *a, const gen_tensor *b) {
  if (a->ndim != b->ndim) return false;
  for (int d = 0; d < a->ndim; d++)
    if (a->shape[d] != b->shape[d]) return false;
  return true;
}

static gen_tensor *header_new(gen_dtype dt, int ndim, const int64_t *shape) {
  size_t cap;
  gen_tensor *t = gen_alloc_block(sizeof *t, &cap);
  if (!t) return gen_fail("out of memory");
  memset(t, 0, sizeof *t);
  t->refcount = 1;
  t->dtype = dt;
  t->ndim = ndim;
  if (ndim > 0) memcpy(t->shape, shape, sizeof(int64_t) * (size_t)ndim);
  return t;
}

int64_t gen_numel_checked(int ndim, const int64_t *shape) {
  bool ovf = false;
  int64_t n = 1, strides = 1; /* strides: the product of the nonzero sizes (contiguous strides use it) */
  for (int d = 0; d < ndim; d++) {
    if (shape[d] < 0) return gen_fail_int("negative size %lld in dimension %d", (long long)shape[d], d + 1);
    n = gen_size_mul(n, shape[d], &ovf);
    strides = gen_size_mul(strides, shape[d] > 1 ? shape[d] : 1, &ovf);
  }
  if (!ovf) return n;
  char buf[GEN_SHAPE_STR_MAX];
  return gen_fail_int("shape %s has more elements than fit in 64 bits", gen_shape_str(buf, sizeof buf, ndim, shape));
}

gen_tensor *gen_empty(gen_dtype dt, int ndim, const int64_t *shape) {
  if (ndim < 0 || ndim > GEN_MAX_DIMS) return gen_fail("%d dimensions (at most %d are supported)", ndim, GEN_MAX_DIMS);
  int64_t numel = gen_numel_checked(ndim, shape);
  if (numel < 0) return NULL;
  bool ovf = false;
  int64_t bytes = gen_size_mul(numel, (int64_t)gen_dtype_size(dt), &ovf);
  if (ovf || (size_t)bytes > GEN_MAX_BYTES) {
    char buf[GEN_SHAPE_STR_MAX];
    return gen_fail("shape %s is too large (%lld elements of %zu bytes; at most %zu bytes per tensor)",
                    gen_shape_str(buf, sizeof buf, ndim, shape), (long long)numel, gen_dtype_size(dt), (size_t)GEN_MAX_BYTES);
  }
  size_t n = (size_t)numel, elem = gen_dtype_size(dt);
  gen_tensor *t = header_new(dt, ndim, shape);
  if (!t) return NULL;
  t->storage = gen_storage_new(n * elem);
  if (!t->storage) {
    gen_free_block(t, gen_block_capacity(sizeof *t));
    return NULL;
  }
  gen_contiguous_strides(ndim, shape, t->stride);
  return t;
}

gen_tensor *gen_zeros(gen_dtype dt, int ndim, const int64_t *shape) {
  gen_tensor *t = gen_empty(dt, ndim, shape);
  if (t) memset(t->storage->data, 0, t->storage->nbytes);
  return t;
}

gen_tensor *gen_full(gen_dtype dt, int ndim, const int64_t *shape, double value) {
  gen_tensor *t = gen_empty(dt, ndim, shape);
  if (!t) return NULL;
  int64_t n = gen_numel(t);
  char *p = t->storage->data;
  if (dt == GEN_FLOAT32) {
    float v = (float)value, *f = (float *)p;
    for (int64_t i = 0; i < n; i++) f[i] = v;
  } else {
    size_t es = gen_dtype_size(dt);
    for (int64_t i = 0; i < n; i++) gen_write_f64(p + (size_t)i * es, dt, value);
  }
  return t;
}

gen_tensor *gen_scalar(gen_dtype dt, double value) { return gen_full(dt, 0, NULL, value); }
gen_tensor *gen_empty_like(const gen_tensor *t) { return gen_empty(t->dtype, t->ndim, t->shape); }
gen_tensor *gen_zeros_like(const gen_tensor *t) { return gen_zeros(t->dtype, t->ndim, t->shape); }

void gen_retain(gen_tensor *t) { t->refcount++; }

void gen_release(gen_tensor *t) {
  if (!t || --t->refcount > 0) return;
  gen_storage_release(t->storage);
  gen_release(t->grad);
  if (t->grad_fn) gen_node_release(t->grad_fn);
  gen_free_block(t, gen_block_capacity(sizeof *t));
}

gen_tensor *gen_as_strided(gen_tensor *base, int ndim, const int64_t *shape, const int64_t *stride, int64_t offset) {
  if (ndim < 0 || ndim > GEN_MAX_DIMS) return gen_fail("%d dimensions (at most %d are supported)", ndim, GEN_MAX_DIMS);
  /* A view must stay inside its storage: the lowest and highest elements it can reach are checked
   * (with checked arithmetic), so no later loop can read or write outside the buffer. */
  int64_t numel = gen_numel_checked(ndim, shape);
  if (numel < 0) return NULL;
  if (numel > 0) {
    bool ovf = false;
    int64_t lo = offset, hi = offset;
    for (int d = 0; d < ndim; d++) {
      int64_t span = gen_size_mul(shape[d] - 1, stride[d], &ovf);
      if (span < 0)
        lo = gen_size_add(lo, span, &ovf);
      else
        hi = gen_size_add(hi, span, &ovf);
    }
    int64_t capacity = (int64_t)(base->storage->nbytes / gen_dtype_size(base->dtype));
    if (ovf || lo < 0 || hi >= capacity) {
      char buf[GEN_SHAPE_STR_MAX];
      return gen_fail("view %s at offset %lld reaches outside its storage of %lld elements",
                      gen_shape_str(buf, sizeof buf, ndim, shape), (long long)offset, (long long)capacity);
    }
  }
  gen_tensor *t = header_new(base->dtype, ndim, shape);
  if (!t) return NULL;
  if (ndim > 0) memcpy(t->stride, stride, sizeof(int64_t) * (size_t)ndim);
  t->offset = offset;
  t->storage = base->storage;
  t->storage->refcount++;
  return t;
}

int gen_broadcast_shapes(int na, const int64_t *a, int nb, const int64_t *b, int64_t *out) {
  int n = na > nb ? na : nb;
  for (int i = 0; i < n; i++) {
    int64_t da = i < n - na ? 1 : a[i - (n - na)];
    int64_t db = i < n - nb ? 1 : b[i - (n - nb)];
    if (da != db && da != 1 && db != 1) {
      char sa[GEN_SHAPE_STR_MAX], sb[GEN_SHAPE_STR_MAX];
      return gen_fail_int("shapes %s and %s do not broadcast (dimension %d: %lld vs %lld)", gen_shape_str(sa, sizeof sa, na, a),
                          gen_shape_str(sb, sizeof sb, nb, b), i + 1, (long long)da, (long long)db);
    }
    out[i] = da == 1 ? db : da;
  }
  return n;
}

int gen_broadcast_strides(const gen_tensor *t, int ndim, const int64_t *shape, int64_t *stride) {
  int lead = ndim - t->ndim;
  bool ok = lead >= 0;
  for (int d = 0; ok && d < ndim; d++) {
    int64_t have = d < lead ? 1 : t->shape[d - lead];
    if (d < lead || (have == 1 && shape[d] != 1))
      stride[d] = 0;
    else if (have == shape[d])
      stride[d] = t->stride[d - lead];
    else
      ok = false;
  }
  if (ok) return 0;
  char sa[GEN_SHAPE_STR_MAX], sb[GEN_SHAPE_STR_MAX];
  return gen_fail_int("cannot expand shape %s to %s", gen_shape_str(sa, sizeof sa, t->ndim, t->shape),
                      gen_shape_str(sb, sizeof sb, ndim, shape));
}

gen_tensor *gen_expand_raw(gen_tensor *t, int ndim, const int64_t *shape) {
  int64_t stride[GEN_MAX_DIMS];
  if (gen_broadcast_strides(t, ndim, shape, stride) < 0) return NULL;
  return gen_as_strided(t, ndim, shape, stride, t->offset);
}

/* ---- copies ---- */

typedef struct {
  gen_iter it;
  char *dp;
  const char *sp;
  gen_dtype dd, sd;
} copy_job;

static void copy_row(const copy_job *j, int64_t r) {
  int64_t off[2], n = j->it.inner;
  gen_iter_row(&j->it, r, off);
  int64_t d0 = gen_iter_inner_stride(&j->it, 0), s0 = gen_iter_inner_stride(&j->it, 1);
  size_t des = gen_dtype_size(j->dd), ses = gen_dtype_size(j->sd);
  if (j->dd == GEN_FLOAT32 && j->sd == GEN_FLOAT32) {
    float *o = (float *)j->dp + off[0];
    const float *i = (const float *)j->sp + off[1];
    if (d0 == 1 && s0 == 1)
      memcpy(o, i, sizeof(float) * (size_t)n);
    else
      for (int64_t k = 0; k < n; k++) o[k * d0] = i[k * s0];
  } else if (j->dd == j->sd) {
    for (int64_t k = 0; k < n; k++) memcpy(j->dp + (size_t)(off[0] + k * d0) * des, j->sp + (size_t)(off[1] + k * s0) * ses, des);
  } else {
    for (int64_t k = 0; k < n; k++)
      gen_write_f64(j->dp + (size_t)(off[0] + k * d0) * des, j->dd, gen_read_f64(j->sp + (size_t)(off[1] + k * s0) * ses, j->sd));
  }
}

int gen_copy_raw(gen_tensor *dst, const gen_tensor *src) {
  int64_t sstride[GEN_MAX_DIMS];
  if (gen_broadcast_strides(src, dst->ndim, dst->shape, sstride) < 0) return -1;
  copy_job j = {.dp = gen_data_ptr(dst), .sp = gen_data_ptr(src), .dd = dst->dtype, .sd = src->dtype};
  const int64_t *strides[2] = {dst->stride, sstride};
  gen_iter_init(&j.it, dst->ndim, dst->shape, 2, strides);
  if (j.it.rows * j.it.inner > GEN_PARALLEL_GRAIN) {
#pragma omp parallel for
    for (int64_t r = 0; r < j.it.rows; r++) copy_row(&j, r);
  } else {
    for (int64_t r = 0; r < j.it.rows; r++) copy_row(&j, r);
  }
  gen_bump_version(dst);
  return 0;
}

gen_tensor *gen_contiguous_raw(gen_tensor *t) {
  if (gen_is_contiguous(t)) {
    gen_retain(t);
    return t;
  }
  gen_tensor *c = gen_empty(t->dtype, t->ndim, t->shape);
  if (c && gen_copy_raw(c, t) < 0) {
    gen_release(c);
    return NULL;
  }
  return c;
}

gen_tensor *gen_to_dtype_raw(gen_tensor *t, gen_dtype dt) {
  gen_tensor *c = gen_empty(dt, t->ndim, t->shape);
  if (c && gen_copy_raw(c, t) < 0) {
    gen_release(c);
    return NULL;
  }
  return c;
}

static const char *flat_ptr(const gen_tensor *t, int64_t index) {
  int64_t off = t->offset;
  for (int d = t->ndim - 1; d >= 0; d--) {
    off += (index % t->shape[d]) * t->stride[d];
    index /= t->shape[d];
  }
  return (const char *)t->storage->data + (size_t)off * gen_dtype_size(t->dtype);
}

double gen_get_flat(const gen_tensor *t, int64_t index) { return gen_read_f64(flat_ptr(t, index), t->dtype); }

int64_t gen_get_flat_i64(const gen_tensor *t, int64_t index) {
  const char *p = flat_ptr(t, index);
  if (t->dtype == GEN_INT64) {
    int64_t v;
    memcpy(&v, p, sizeof v);
    return v;
  }
  double v = gen_read_f64(p, t->dtype);
  if (!(v >= -0x1p63)) return INT64_MIN; /* also NaN */
  return v < 0x1p63 ? (int64_t)v : INT64_MAX;
}

gen_tensor *gen_reshape_raw(gen_tensor *t, int ndim, const int64_t *shape) {
  if (gen_numel_of(ndim, shape) != gen_numel(t)) return gen_fail("internal: reshape changes the element count");
  gen_tensor *c = gen_contiguous_raw(t);
  if (!c) return NULL;
  int64_t stride[GEN_MAX_DIMS];
  gen_contiguous_strides(ndim, shape, stride);
  gen_tensor *v = gen_as_strided(c, ndim, shape, stride, c->offset);
  gen_release(c);
  return v;
}
