/*
 * random.c — Philox4x32-10 (Salmon et al., "Parallel random numbers: as easy as 1, 2, 3", SC'11).
 *
 * A counter-based generator: block i of a stream is a pure function of (seed, i), so a fill of n
 * numbers reserves ceil(n/2) blocks (two 53-bit uniforms each, a Box-Muller pair) and any thread
 * can compute any element. The result never
 * depends on the thread count, and a generator's whole state is two integers (seed, offset).
 */
#include <math.h>

#include "gen.h"
#include "iter.h"

#define PHILOX_M0 0xD2511F53u
#define PHILOX_M1 0xCD9E8D57u
#define PHILOX_W0 0x9E3779B9u
#define PHILOX_W1 0xBB67AE85u

void gen_philox_block(uint64_t seed, uint64_t block, uint32_t out[4]) {
  uint32_t c0 = (uint32_t)block, c1 = (uint32_t)(block >> 32), c2 = 0, c3 = 0;
  uint32_t k0 = (uint32_t)seed, k1 = (uint32_t)(seed >> 32);
  for (int round = 0; round < 10; round++) {
    uint64_t p0 = (uint64_t)PHILOX_M0 * c0, p1 = (uint64_t)PHILOX_M1 * c2;
    uint32_t n0 = (uint32_t)(p1 >> 32) ^ c1 ^ k0, n2 = (uint32_t)(p0 >> 32) ^ c3 ^ k1;
    c1 = (uint32_t)p1;
    c3 = (uint32_t)p0;
    c0 = n0;
    c2 = n2;
    k0 += PHILOX_W0;
    k1 += PHILOX_W1;
  }
  out[0] = c0;
  out[1] = c1;
  out[2] = c2;
  out[3] = c3;
}

static gen_generator default_generator = {.seed = 0x2545F4914F6CDD1DULL, .offset = 0};

gen_generator *gen_default_generator(void) { return &default_generator; }

void gen_generator_seed(gen_generator *g, uint64_t seed) {
  g->seed = seed;
  g->offset = 0;
}

uint64_t gen_generator_reserve(gen_generator *g, uint64_t nblocks) {
  uint64_t first = g->offset;
  g->offset += nblocks;
  return first;
}

/* 24 random bits -> [0, 1) in float precision steps; 53 bits for doubles. */
static inline double u01_53(uint32_t hi, uint32_t lo) {
  return (double)(((uint64_t)hi << 21) ^ (lo >> 11)) * (1.0 / 9007199254740992.0);
}

typedef enum { FILL_UNIFORM, FILL_NORMAL, FILL_RANDINT, FILL_BERNOULLI } fill_kind;

/* Element i uses block (first + i / 2): two 64-bit draws per block, enough for Box-Muller; w holds
 * that block, odd says which half of it is element i's. */
static double draw_from(fill_kind kind, const uint32_t w[4], int odd, double a, double b) {
  double u1 = u01_53(w[0], w[1]), u2 = u01_53(w[2], w[3]);
  switch (kind) {
  case FILL_UNIFORM: return a + (b - a) * (odd ? u2 : u1);
  case FILL_NORMAL: {
    double r = sqrt(-2.0 * log(1.0 - u1)), theta = 2.0 * M_PI * u2;
    return a + b * r * (odd ? sin(theta) : cos(theta));
  }
  case FILL_RANDINT: {
    double span = b - a + 1.0;
    double v = a + floor(span * (odd ? u2 : u1));
    return v > b ? b : v;
  }
  default: return (odd ? u2 : u1) < a ? 1.0 : 0.0;
  }
}

/* Everything a row of fill() needs: where the elements are, and which numbers they draw. */
typedef struct {
  const gen_iter *it;
  char *base;
  size_t es;
  gen_dtype dt;
  int64_t s0; /* the inner stride */
  fill_kind kind;
  uint64_t seed, first;
  double a, b;
} fill_job;

/* Elements lo .. hi - 1 of row r of the iteration: element r * inner + e draws from its own
 * counter, whatever the thread. Neighbours share a block, so each block is computed once per span
 * it touches. */
static void fill_span(const fill_job *j, int64_t r, int64_t lo, int64_t hi) {
  int64_t off[1];
  gen_iter_row(j->it, r, off);
  uint32_t w[4];
  int64_t have = -1; /* the block in w */
  for (int64_t e = lo; e < hi; e++) {
    int64_t i = r * j->it->inner + e;
    if (i >> 1 != have) {
      have = i >> 1;
      gen_philox_block(j->seed, j->first + (uint64_t)have, w);
    }
    double v = draw_from(j->kind, w, (int)(i & 1), j->a, j->b);
    char *dst = j->base + (size_t)(off[0] + e * j->s0) * j->es;
    if (j->dt == GEN_FLOAT32)
      *(float *)dst = (float)v;
    else
      gen_write_f64(dst, j->dt, v);
  }
}

/* Elements [lo, hi) of a contiguous float32 uniform or Bernoulli fill (lo even): the numbers
 * fill_span gives, without its per-element dispatch and strides. Dropout masks take this path. */
static void fill_f32_span(float *o, int64_t lo, int64_t hi, fill_kind kind, uint64_t seed, uint64_t first, double a, double b) {
  for (int64_t i = lo; i < hi; i += 2) {
    uint32_t w[4];
    gen_philox_block(seed, first + (uint64_t)(i >> 1), w);
    double u1 = u01_53(w[0], w[1]), u2 = u01_53(w[2], w[3]);
    if (kind == FILL_BERNOULLI) {
      o[i] = u1 < a ? 1.0f : 0.0f;
      if (i + 1 < hi) o[i + 1] = u2 < a ? 1.0f : 0.0f;
    } else {
      o[i] = (float)(a + (b - a) * u1);
      if (i + 1 < hi) o[i + 1] = (float)(a + (b - a) * u2);
    }
  }
}

#define FILL_SPAN 8192 /* elements per parallel task (even) */

static int fill(gen_tensor *t, gen_generator *g, fill_kind kind, double a, double b) {
  int64_t n = gen_numel(t);
  uint64_t first = gen_generator_reserve(g, (uint64_t)(n + 1) / 2);
  uint64_t seed = g->seed;
  if (t->dtype == GEN_FLOAT32 && (kind == FILL_UNIFORM || kind == FILL_BERNOULLI) && gen_is_contiguous(t)) {
    float *o = (float *)gen_data_ptr(t);
    int64_t spans = (n + FILL_SPAN - 1) / FILL_SPAN;
    if (spans > 1 && n > GEN_PARALLEL_GRAIN) {
#pragma omp parallel for
      for (int64_t k = 0; k < spans; k++)
        fill_f32_span(o, k * FILL_SPAN, (k + 1) * FILL_SPAN < n ? (k + 1) * FILL_SPAN : n, kind, seed, first, a, b);
    } else {
      fill_f32_span(o, 0, n, kind, seed, first, a, b);
    }
    gen_bump_version(t);
    return 0;
  }
  const int64_t *strides[1] = {t->stride};
  gen_iter it;
  gen_iter_init(&it, t->ndim, t->shape, 1, strides);
  char *base = gen_data_ptr(t);
  size_t es = gen_dtype_size(t->dtype);
  int64_t s0 = gen_iter_inner_stride(&it, 0);
  fill_job j = {
      .it = &it, .base = base, .es = es, .dt = t->dtype, .s0 = s0, .kind = kind, .seed = seed, .first = first, .a = a, .b = b};
  if (n > GEN_PARALLEL_GRAIN / 8) {
#pragma omp parallel for
    for (int64_t s = 0; s < gen_iter_spans(&it, FILL_SPAN); s++) {
      int64_t r, lo, hi;
      gen_iter_span(&it, FILL_SPAN, s, &r, &lo, &hi);
      fill_span(&j, r, lo, hi);
    }
  } else {
    for (int64_t r = 0; r < it.rows; r++) fill_span(&j, r, 0, it.inner);
  }
  gen_bump_version(t);
  return 0;
}

int gen_fill_uniform(gen_tensor *t, gen_generator *g, double lo, double hi) { return fill(t, g, FILL_UNIFORM, lo, hi); }
int gen_fill_normal(gen_tensor *t, gen_generator *g, double mean, double std) { return fill(t, g, FILL_NORMAL, mean, std); }
int gen_fill_randint(gen_tensor *t, gen_generator *g, int64_t lo, int64_t hi) {
  if (hi < lo) return gen_fail_int("empty range [%lld, %lld]", (long long)lo, (long long)hi);
  return fill(t, g, FILL_RANDINT, (double)lo, (double)hi);
}
int gen_fill_bernoulli(gen_tensor *t, gen_generator *g, double p) {
  if (!(p >= 0 && p <= 1)) return gen_fail_int("probability %g is not in [0, 1]", p);
  return fill(t, g, FILL_BERNOULLI, p, 0);
}

/* ---------------------------------------------------------------- categorical draws
 * multinomial: each row of weights w (nonnegative, not necessarily normalized) gives n category
 * indices. Draw s of row r uses block first + r n + s (one 53-bit uniform u), so a row's draws do
 * not depend on the other rows or on threads. With replacement, the category is the first k whose
 * running sum c_k = w_1 + ... + w_k exceeds u c_V (zero weights are never chosen); without, the
 * same on the weights left after removing the earlier draws (their sum recomputed in order, so no
 * drift from subtraction). */

/* The first k with w_1 + ... + w_k > target, scanning in order; the last positive one if rounding
 * leaves target at the total. */
static int64_t pick(const double *w, int64_t v, double target) {
  double c = 0;
  int64_t last = -1;
  for (int64_t k = 0; k < v; k++) {
    if (w[k] <= 0) continue;
    c += w[k];
    last = k;
    if (c > target) return k;
  }
  return last;
}

static inline double weight(const char *base, gen_dtype dt, int64_t i) {
  return dt == GEN_FLOAT32 ? ((const float *)base)[i] : ((const double *)base)[i];
}

gen_tensor *gen_multinomial(gen_tensor *probs, int64_t n, bool replacement, gen_generator *g) {
  if (!gen_dtype_is_float(probs->dtype)) return gen_fail("probabilities must be float, got %s", gen_dtype_name(probs->dtype));
  if (probs->ndim != 1 && probs->ndim != 2)
    return gen_fail("probabilities must be {V} or {B, V}, got %d dimensions", probs->ndim);
  if (n < 0) return gen_fail("the number of samples must be >= 0, got %lld", (long long)n);
  int64_t rows = probs->ndim == 2 ? probs->shape[0] : 1, v = probs->shape[probs->ndim - 1];
  if (v == 0 && rows > 0) return gen_fail("no categories to draw from");
  gen_tensor *c = gen_contiguous_raw(probs);
  if (!c) return NULL;
  const char *base = gen_data_ptr(c);
  for (int64_t r = 0; r < rows; r++) { /* validate every row before anything else is allocated */
    double total = 0;
    int64_t positive = 0;
    for (int64_t k = 0; k < v; k++) {
      double w = weight(base, c->dtype, r * v + k);
      if (!(w >= 0) || isinf(w)) {
        gen_release(c);
        return gen_fail("probabilities must be finite and >= 0, got %g at row %lld, category %lld", w, (long long)r + 1,
                        (long long)k + 1);
      }
      total += w;
      positive += w > 0;
    }
    if (!(total > 0) || isinf(total)) {
      gen_release(c);
      return gen_fail("row %lld of the probabilities sums to %g", (long long)r + 1, total);
    }
    if (!replacement && n > positive) {
      gen_release(c);
      return gen_fail("cannot draw %lld samples without replacement from %lld categories of nonzero probability (row %lld)",
                      (long long)n, (long long)positive, (long long)r + 1);
    }
  }
  bool overflow = false;
  int64_t draws = gen_size_mul(rows, n, &overflow);
  if (overflow) {
    gen_release(c);
    return gen_fail("%lld rows x %lld samples overflow", (long long)rows, (long long)n);
  }
  int64_t shape[2] = {rows, n};
  gen_tensor *out = probs->ndim == 2 ? gen_empty(GEN_INT64, 2, shape) : gen_empty(GEN_INT64, 1, shape + 1);
  gen_tensor *w = out ? gen_empty(GEN_FLOAT64, 1, (int64_t[1]){v}) : NULL;
  if (!w) {
    gen_release(out);
    gen_release(c);
    return NULL;
  }
  uint64_t first = gen_generator_reserve(g, (uint64_t)draws);
  int64_t *idx = (int64_t *)gen_data_ptr(out);
  double *wr = (double *)gen_data_ptr(w);
  for (int64_t r = 0; r < rows; r++) {
    for (int64_t k = 0; k < v; k++) wr[k] = weight(base, c->dtype, r * v + k);
    double total = 0;
    for (int64_t s = 0; s < n; s++) {
      if (s == 0 || !replacement) {
        total = 0;
        for (int64_t k = 0; k < v; k++) total += wr[k];
      }
      uint32_t word[4];
      gen_philox_block(g->seed, first + (uint64_t)(r * n + s), word);
      int64_t k = pick(wr, v, u01_53(word[0], word[1]) * total);
      idx[r * n + s] = k + 1;
      if (!replacement) wr[k] = 0;
    }
  }
  gen_release(w);
  gen_release(c);
  return out;
}
