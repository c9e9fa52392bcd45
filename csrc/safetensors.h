/*
 * safetensors.h — reading and writing the safetensors format (safetensors.c).
 *
 * Layout: 8-byte little-endian header length N, N bytes of JSON
 *   {"name": {"dtype": "F32", "shape": [2, 3], "data_offsets": [begin, end]}, ...,
 *    "__metadata__": {"key": "value", ...}}
 * then the data buffer; offsets are relative to its start. Loading trusts nothing: the header
 * length, the JSON, dtype names, shapes against byte ranges, ranges against the file, overlaps
 * and duplicate names are all checked before any tensor is allocated.
 */
#ifndef GEN_SAFETENSORS_H
#define GEN_SAFETENSORS_H

#include "gen.h"

typedef struct {
  int count;
  char **names;
  gen_tensor **tensors;
  int meta_count;
  char **meta_keys, **meta_values;
} gen_st_contents;

/* Fills *out (zeroed by the caller) with new tensors; on error frees what it made and returns -1.
 * Either way gen_st_free(out) afterwards is safe. */
int gen_safetensors_load(const char *path, gen_st_contents *out);
void gen_st_free(gen_st_contents *c);

/* Writes tensors (any strides; written contiguous) and metadata. atomic: write a temporary file in
 * the same directory, fsync it, rename it over path, fsync the directory, so a crash leaves either
 * the old file or the new one. */
int gen_safetensors_save(const char *path, int count, const char *const *names, gen_tensor *const *tensors, int meta_count,
                         const char *const *meta_keys, const char *const *meta_values, bool atomic);

#endif
