/* Raw float32 GEMM, the ceiling for gen.matmul: sgemm_raw THREADS N [BACKEND] -> "sgemmN threads seconds
 * 0"; sgemm_raw THREADS linear [BACKEND] -> "linear threads seconds 0": the three GEMMs of a linear
 * layer's forward and backward at the shapes of bench/ops.lua's linear (x {128, 784}, w {400, 784}).
 * BACKEND: openblas (default; pinned to its Haswell AVX2 kernels by OPENBLAS_CORETYPE here) or gen
 * (gen's AVX-512 SGEMM, csrc/kernels/gemm_sgemm.c, one part of C per thread, gen_sgemm_threads, as gen_gemm_blocked
 * uses it; AVX-512 CPUs only). */
#include <cblas.h>
#include <omp.h>
#include <stdbool.h>

#include "../csrc/kernels/gemm_sgemm.h"
#include "../csrc/kernels/isa.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

void openblas_set_num_threads(int);

/* SGEMM_RAW_CLOCK=cpu: process CPU time instead of wall-clock time, for one thread on a host
 * loaded by other jobs (time spent preempted is not counted; their cache pressure still is) */
static double now(void) {
  struct timespec t;
  const char *clock = getenv("SGEMM_RAW_CLOCK");
  clock_gettime(clock && strcmp(clock, "cpu") == 0 ? CLOCK_PROCESS_CPUTIME_ID : CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static int cmp(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

static bool use_gen;
static int nthreads;

/* row-major C = op(A) op(B) on the chosen backend */
static void sgemm(bool ta, bool tb, int m, int n, int k, const float *a, int lda, const float *b, int ldb, float *c, int ldc) {
  if (!use_gen) {
    cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, m, n, k, 1, a, lda, b, ldb, 0, c,
                ldc);
    return;
  }
  gen_sgemm_threads(ta, tb, m, n, k, 1, a, lda, b, ldb, 0, c, ldc, nthreads);
}

static int linear(int threads) {
  enum { M = 128, K = 784, N = 400 };
  float *x = calloc(M * K, sizeof(float)), *w = calloc(N * K, sizeof(float)), *y = calloc(M * N, sizeof(float));
  float *dx = calloc(M * K, sizeof(float)), *dw = calloc(N * K, sizeof(float));
  double times[11];
  for (int s = 0; s <= 10; s++) {
    double t0 = now();
    for (int k = 0; k < 20; k++) {
      sgemm(false, true, M, N, K, x, K, w, K, y, N);   /* y = x w^T */
      sgemm(false, false, M, K, N, y, N, w, K, dx, K); /* dx = g w */
      sgemm(true, false, N, K, M, y, N, x, K, dw, K);  /* dw = g^T x */
    }
    if (s > 0) times[s - 1] = (now() - t0) / 20;
  }
  qsort(times, 10, sizeof(double), cmp);
  printf("linear %d %.9g 0\n", threads, times[4]);
  free(x), free(w), free(y), free(dx), free(dw);
  return 0;
}

int main(int argc, char **argv) {
  if (argc != 3 && argc != 4) return 2;
  int threads = atoi(argv[1]), n = atoi(argv[2]);
  use_gen = argc == 4 && strcmp(argv[3], "gen") == 0, nthreads = threads;
  if (use_gen && gen_isa_best() < GEN_ISA_AVX512) {
    fprintf(stderr, "sgemm_raw: gen's SGEMM needs AVX-512, this CPU has %s\n", gen_isa_name(gen_isa_best()));
    return 1;
  }
  openblas_set_num_threads(threads);
  if (strcmp(argv[2], "linear") == 0) return linear(threads);
  float *a = malloc(sizeof(float) * (size_t)n * n), *b = malloc(sizeof(float) * (size_t)n * n),
        *c = malloc(sizeof(float) * (size_t)n * n);
  for (long i = 0; i < (long)n * n; i++) a[i] = b[i] = (float)(i % 7) * 0.1f;
  int calls = (int)(2e9 / (2.0 * n * n * n));
  if (calls < 1) calls = 1;
  double times[11];
  for (int s = 0; s <= 10; s++) {
    double t0 = now();
    for (int k = 0; k < calls; k++) sgemm(false, false, n, n, n, a, n, b, n, c, n);
    if (s > 0) times[s - 1] = (now() - t0) / calls;
  }
  qsort(times, 10, sizeof(double), cmp);
  printf("sgemm%d %d %.9g 0\n", n, threads, times[4]);
  free(a);
  free(b);
  free(c);
  return 0;
}
