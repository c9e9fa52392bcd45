/*
 * threads.c — one knob for every thread pool gen uses.
 *
 * Our kernels use OpenMP and we link the OpenMP build of OpenBLAS, so both share libgomp's pool:
 * no oversubscription, and BLAS called inside our parallel regions runs single-threaded.
 */
#include <omp.h>
#include <time.h>

#include "gen.h"

void openblas_set_num_threads(int n);

void gen_set_num_threads(int n) {
  if (n < 1) n = 1;
  omp_set_num_threads(n);
  openblas_set_num_threads(n);
}

int gen_get_num_threads(void) { return omp_get_max_threads(); }

double gen_time(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}
