/* fuzz_idx.c — libFuzzer harness for the IDX reader (csrc/io_idx.c): any bytes, plain or gzip,
 * must give a tensor or an error, never a crash, a leak or an allocation past the declared size. */
#include "../csrc/gen.h"
#include "../csrc/io.h"
#include "fuzz_file.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  /* the first byte picks the file name: ".gz" makes the reader expect gzip (zlib reads plain files too) */
  const char *path = fuzz_write_input(data, size, size && (data[0] & 1) ? "idx.gz" : "idx");
  if (!path) return 0;
  gen_tensor *t = gen_idx_read(path);
  if (t) {
    int64_t n = gen_numel(t);
    if (n) gen_get_flat(t, n - 1); /* the last element is inside the storage */
    gen_release(t);
  }
  return 0;
}
