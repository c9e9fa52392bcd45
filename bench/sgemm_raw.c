/* Raw OpenBLAS sgemm, the ceiling for gen.matmul: sgemm_raw THREADS N -> "sgemmN threads seconds 0";
 * sgemm_raw THREADS linear -> "linear threads seconds 0": the three GEMMs of a linear layer's forward
 * and backward at the shapes of bench/ops.lua's linear (x {128, 784}, w {400, 784}). */
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

void openblas_set_num_threads(int);

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static int cmp(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

static int linear(int threads) {
  enum { M = 128, K = 784, N = 400 };
  float *x = calloc(M * K, sizeof(float)), *w = calloc(N * K, sizeof(float)), *y = calloc(M * N, sizeof(float));
  float *dx = calloc(M * K, sizeof(float)), *dw = calloc(N * K, sizeof(float));
  double times[11];
  for (int s = 0; s <= 10; s++) {
    double t0 = now();
    for (int k = 0; k < 20; k++) {
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, M, N, K, 1, x, K, w, K, 0, y, N);    /* y = x w^T */
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, M, K, N, 1, y, N, w, K, 0, dx, K); /* dx = g w */
      cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, N, K, M, 1, y, N, x, K, 0, dw, K);   /* dw = g^T x */
    }
    if (s > 0) times[s - 1] = (now() - t0) / 20;
  }
  qsort(times, 10, sizeof(double), cmp);
  printf("linear %d %.9g 0\n", threads, times[4]);
  free(x), free(w), free(y), free(dx), free(dw);
  return 0;
}

int main(int argc, char **argv) {
  if (argc != 3) return 2;
  int threads = atoi(argv[1]), n = atoi(argv[2]);
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
    for (int k = 0; k < calls; k++) cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1, a, n, b, n, 0, c, n);
    if (s > 0) times[s - 1] = (now() - t0) / calls;
  }
  qsort(times, 10, sizeof(double), cmp);
  printf("sgemm%d %d %.9g 0\n", n, threads, times[4]);
  free(a);
  free(b);
  free(c);
  return 0;
}
