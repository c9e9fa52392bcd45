/* fuzz_safetensors.c — libFuzzer harness for the safetensors reader (csrc/safetensors.c): header
 * JSON, offsets, sizes and truncation. A file that loads is saved again and must load again. */
#include <stdlib.h>

#include "../csrc/gen.h"
#include "../csrc/safetensors.h"
#include "fuzz_file.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  const char *path = fuzz_write_input(data, size, "safetensors");
  if (!path) return 0;
  gen_st_contents c = {0};
  if (gen_safetensors_load(path, &c) < 0) return 0;
  for (int i = 0; i < c.count; i++) {
    int64_t n = gen_numel(c.tensors[i]);
    if (n) gen_get_flat(c.tensors[i], n - 1);
  }
  char again[300];
  snprintf(again, sizeof again, "%s.out", path);
  if (gen_safetensors_save(again, c.count, (const char *const *)c.names, c.tensors, c.meta_count,
                           (const char *const *)c.meta_keys, (const char *const *)c.meta_values, false) == 0) {
    gen_st_contents d = {0};
    if (gen_safetensors_load(again, &d) < 0 || d.count != c.count) abort(); /* what we write, we read */
    gen_st_free(&d);
  }
  gen_st_free(&c);
  return 0;
}
