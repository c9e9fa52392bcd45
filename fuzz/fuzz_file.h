/*
 * fuzz_file.h — shared by the file-reader harnesses: the readers take a path, so each input is
 * written to a per-process file in /dev/shm (or /tmp) first.
 */
#ifndef FUZZ_FILE_H
#define FUZZ_FILE_H

#include <stdint.h>
#include <stdio.h>
#include <unistd.h>

static const char *fuzz_write_input(const uint8_t *data, size_t size, const char *ext) {
  static char path[256];
  static const char *dir;
  if (!dir) dir = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
  /* the name follows ext on every call: the IDX harness switches between plain and gzip names */
  snprintf(path, sizeof path, "%s/gen-fuzz-%ld.%s", dir, (long)getpid(), ext);
  FILE *f = fopen(path, "wb");
  if (!f) return NULL;
  if (size) fwrite(data, 1, size, f);
  fclose(f);
  return path;
}

#endif
