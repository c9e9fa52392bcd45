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

/* Element i uses block (first + i / 2): two 64-bit draws per block, enough for Box-Muller. */
static double draw(fill_kind kind, uint64_t seed, uint64_t first, int64_t i, double a, double b) {
  uint32_t w[4];
  gen_philox_block(seed, first + (uint64_t)(i >> 1), w);
  double u1 = u01_53(w[0], w[1]), u2 = u01_53(w[2], w[3]);
  switch (kind) {
  case FILL_UNIFORM: return a + (b - a) * ((i & 1) ? u2 : u1);
  case FILL_NORMAL: {
    double r = sqrt(-2.0 * log(1.0 - u1)), theta = 2.0 * M_PI * u2;
    return a + b * r * ((i & 1) ? sin(theta) : cos(theta));
  }
  case FILL_RANDINT: {
    double span = b - a + 1.0;
    double v = a + floor(span * ((i & 1) ? u2 : u1));
    return v > b ? b : v;
  }
  default: return ((i & 1) ? u2 : u1) < a ? 1.0 : 0.0;
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

/* Row r of the iteration: element r * inner + j draws from its own counter, whatever the thread. */
static void fill_row(const fill_job *j, int64_t r) {
  int64_t off[1];
  gen_iter_row(j->it, r, off);
  for (int64_t e = 0; e < j->it->inner; e++) {
    double v = draw(j->kind, j->seed, j->first, r * j->it->inner + e, j->a, j->b);
    gen_write_f64(j->base + (size_t)(off[0] + e * j->s0) * j->es, j->dt, v);
  }
}

static int fill(gen_tensor *t, gen_generator *g, fill_kind kind, double a, double b) {
  int64_t n = gen_numel(t);
  uint64_t first = gen_generator_reserve(g, (uint64_t)(n + 1) / 2);
  uint64_t seed = g->seed;
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
    for (int64_t r = 0; r < it.rows; r++) fill_row(&j, r);
  } else {
    for (int64_t r = 0; r < it.rows; r++) fill_row(&j, r);
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
