/* fuzz_png.c — libFuzzer harness for the PNG reader (csrc/io_png.c, libpng underneath). */
#include "../csrc/gen.h"
#include "../csrc/io.h"
#include "fuzz_file.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  const char *path = fuzz_write_input(data, size, "png");
  if (!path) return 0;
  static const int channels[] = {0, 1, 3, 4};
  gen_tensor *t = gen_png_read(path, channels[size ? data[size - 1] % 4 : 0]);
  if (t) {
    int64_t n = gen_numel(t);
    if (n) gen_get_flat(t, n - 1);
    gen_release(t);
  }
  return 0;
}
