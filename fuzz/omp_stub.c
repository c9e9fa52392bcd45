/* omp_stub.c — the fuzz build is single-threaded (no -fopenmp: the pragmas are ignored), so the
 * four OpenMP runtime calls the core makes are answered here. */
int omp_get_max_threads(void);
int omp_get_thread_num(void);
void omp_set_num_threads(int n);
int omp_in_parallel(void);
int omp_get_max_threads(void) { return 1; }
int omp_get_thread_num(void) { return 0; }
void omp_set_num_threads(int n) { (void)n; }
int omp_in_parallel(void) { return 0; }
