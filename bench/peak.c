/* The FMA peak of this CPU per ISA: peak [THREADS] -> one line per ISA the CPU has,
 * "peak ISA threads GFLOPS_per_core", and "cpu MODEL". Each thread runs twelve independent chains of
 * vector FMAs (10 YMM or 20 ZMM chains: more than latency x pipes on current cores) with no loads, so the loop is bound by
 * the FMA units alone; the best of 7 runs is kept. bench/run.sh divides GEMM-bound layers' GFLOPS by it. */
#include <immintrin.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define CHAINS2 10 /* 16 YMM registers: ten chains, the factors and no spills */
#define CHAINS5 20 /* 32 ZMM registers */
#define ITERS   20000000L

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

/* returns the sum of the chains so the loop is not optimized away */
__attribute__((target("avx2,fma"))) static float run_avx2(long iters) {
  __m256 acc[CHAINS2], x = _mm256_set1_ps(0.999999f), y = _mm256_set1_ps(1e-7f);
  for (int i = 0; i < CHAINS2; i++) acc[i] = _mm256_set1_ps((float)i);
  for (long it = 0; it < iters; it++)
#pragma GCC unroll 10
    for (int i = 0; i < CHAINS2; i++) acc[i] = _mm256_fmadd_ps(acc[i], x, y);
  __m256 s = acc[0];
  for (int i = 1; i < CHAINS2; i++) s = _mm256_add_ps(s, acc[i]);
  float out[8];
  _mm256_storeu_ps(out, s);
  return out[0];
}

__attribute__((target("avx512f"))) static float run_avx512(long iters) {
  __m512 acc[CHAINS5], x = _mm512_set1_ps(0.999999f), y = _mm512_set1_ps(1e-7f);
  for (int i = 0; i < CHAINS5; i++) acc[i] = _mm512_set1_ps((float)i);
  for (long it = 0; it < iters; it++)
#pragma GCC unroll 20
    for (int i = 0; i < CHAINS5; i++) acc[i] = _mm512_fmadd_ps(acc[i], x, y);
  __m512 s = acc[0];
  for (int i = 1; i < CHAINS5; i++) s = _mm512_add_ps(s, acc[i]);
  return _mm512_reduce_add_ps(s);
}

/* GFLOPS per core: 2 flops x lanes x chains per iteration, on each of `threads` threads; the best
 * of 15 short runs, which on a shared machine is the one least disturbed */
static double measure(int lanes, int threads) {
  double best = 0;
  volatile float sink = 0;
  long iters = ITERS / 20;
  for (int rep = 0; rep < 15; rep++) {
    double t0 = now();
#pragma omp parallel num_threads(threads) reduction(+ : sink)
    sink += lanes == 16 ? run_avx512(iters) : run_avx2(iters);
    double g = 2.0 * lanes * (lanes == 16 ? CHAINS5 : CHAINS2) * iters / (now() - t0) / 1e9;
    if (g > best) best = g;
  }
  return best;
}

int main(int argc, char **argv) {
  int threads = argc > 1 ? atoi(argv[1]) : 1;
  if (threads < 1) return 2;
  char model[256] = "unknown";
  FILE *f = fopen("/proc/cpuinfo", "r");
  if (f) {
    char line[512];
    while (fgets(line, sizeof line, f))
      if (!strncmp(line, "model name", 10)) {
        char *v = strchr(line, ':');
        if (v) snprintf(model, sizeof model, "%s", v + 2);
        model[strcspn(model, "\n")] = 0;
        break;
      }
    fclose(f);
  }
  printf("cpu %s\n", model);
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512f")) printf("peak avx512 %d %.1f\n", threads, measure(16, threads));
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
    printf("peak avx2 %d %.1f\n", threads, measure(8, threads));
  return 0;
}
