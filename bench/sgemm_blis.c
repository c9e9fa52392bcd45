/* BLIS's sgemm against gen's AVX-512 SGEMM, one thread, process CPU time, best of 8 alternating
 * calls: sgemm_blis M N K -> one line with both GFLOPS and the configuration BLIS chose. Not part
 * of make bench (BLIS is not a dependency); the measurements behind bench/README.md's choice of
 * float32 GEMM. Build after make, with Debian's libblis4-openmp installed:
 *   cc -O2 -o build/bench/sgemm_blis bench/sgemm_blis.c build/csrc/kernels/gemm_sgemm.o \
 *     build/csrc/kernels/isa.o /usr/lib/x86_64-linux-gnu/blis-openmp/libblis.so.4 \
 *     -Wl,-rpath,/usr/lib/x86_64-linux-gnu/blis-openmp -lm
 *   BLIS_NUM_THREADS=1 build/bench/sgemm_blis 1024 1024 1024
 * (BLIS 0.9.0 runs its generic kernels on CPUs it does not know; BLIS_ARCH_TYPE=skx forces its
 * AVX-512 ones.) */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "../csrc/kernels/gemm_sgemm.h"

/* BLIS's Fortran BLAS entry (column-major) and its configuration query */
void sgemm_(const char *ta, const char *tb, const int *m, const int *n, const int *k, const float *alpha, const float *a,
            const int *lda, const float *b, const int *ldb, const float *beta, float *c, const int *ldc);
int bli_arch_query_id(void);
const char *bli_arch_string(int id);

static double cpu(void) {
  struct timespec t;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
  return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

int main(int argc, char **argv) {
  if (argc != 4) return 2;
  int m = atoi(argv[1]), n = atoi(argv[2]), k = atoi(argv[3]);
  if (m < 1 || n < 1 || k < 1) return 2;
  if (!gen_sgemm_available()) {
    fprintf(stderr, "sgemm_blis: gen's SGEMM needs AVX-512\n");
    return 1;
  }
  float *a = malloc(sizeof(float) * (size_t)m * k), *b = malloc(sizeof(float) * (size_t)k * n);
  float *c = malloc(sizeof(float) * (size_t)m * n), *c2 = malloc(sizeof(float) * (size_t)m * n);
  for (long i = 0; i < (long)m * k; i++) a[i] = (float)(i % 7) * 0.1f;
  for (long i = 0; i < (long)k * n; i++) b[i] = (float)(i % 5) * 0.1f;
  int calls = (int)(2e8 / (2.0 * m * n * k)) + 1;
  double best[2] = {1e30, 1e30};
  float one = 1, zero = 0;
  for (int rep = 0; rep < 8; rep++)
    for (int which = 0; which < 2; which++) {
      double t0 = cpu();
      for (int i = 0; i < calls; i++)
        if (which) /* row-major C = A B */
          gen_sgemm(false, false, m, n, k, 1, a, k, b, n, 0, c2, n);
        else /* the same product as column-major C^T = B^T A^T */
          sgemm_("N", "N", &n, &m, &k, &one, b, &n, a, &k, &zero, c, &n);
      double t = (cpu() - t0) / calls;
      if (t < best[which]) best[which] = t;
    }
  double diff = 0;
  for (long i = 0; i < (long)m * n; i++) diff = fmax(diff, fabs((double)c[i] - c2[i]));
  printf("%dx%dx%d: BLIS (%s) %.1f GFLOPS, gen %.1f GFLOPS, max difference %.2g\n", m, n, k, bli_arch_string(bli_arch_query_id()),
         2.0 * m * n * k / best[0] / 1e9, 2.0 * m * n * k / best[1] / 1e9, diff);
  free(a), free(b), free(c), free(c2);
  return 0;
}
