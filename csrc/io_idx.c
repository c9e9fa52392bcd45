/*
 * io_idx.c — the IDX format: magic 0x00 0x00 <type> <ndims>, ndims big-endian uint32 sizes, then
 * the elements big-endian. zlib's gz* functions read gzip and plain files alike. The declared size
 * is checked against what the file can hold before allocating: the file size for plain files,
 * 1032 times the compressed size for gzip (deflate's maximum ratio), and then the bytes actually
 * read must match exactly.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <zlib.h>

#include "io.h"

static int type_info(int code, gen_dtype *dt, int *bytes) {
  switch (code) {
  case 0x08: *dt = GEN_UINT8; *bytes = 1; return 0;
  case 0x09: *dt = GEN_INT64; *bytes = 1; return 0;
  case 0x0B: *dt = GEN_INT64; *bytes = 2; return 0;
  case 0x0C: *dt = GEN_INT64; *bytes = 4; return 0;
  case 0x0D: *dt = GEN_FLOAT32; *bytes = 4; return 0;
  case 0x0E: *dt = GEN_FLOAT64; *bytes = 8; return 0;
  default: return -1;
  }
}

static bool is_gzip(const char *path) {
  FILE *f = fopen(path, "rb");
  unsigned char m[2] = {0, 0};
  bool gz = f && fread(m, 1, 2, f) == 2 && m[0] == 0x1f && m[1] == 0x8b;
  if (f) fclose(f);
  return gz;
}

static uint64_t read_be(const unsigned char *p, int n) {
  uint64_t v = 0;
  for (int i = 0; i < n; i++) v = v << 8 | p[i];
  return v;
}

gen_tensor *gen_idx_read(const char *path) {
  struct stat st;
  if (stat(path, &st) < 0) return gen_fail("%s: cannot open (%s)", path, strerror(errno));
  bool gz = is_gzip(path);
  gzFile f = gzopen(path, "rb");
  if (!f) return gen_fail("%s: cannot open", path);
  gen_tensor *t = NULL;
  unsigned char head[4 + 4 * GEN_MAX_DIMS];
  if (gzread(f, head, 4) != 4) {
    gen_fail("%s: truncated header", path);
    goto done;
  }
  gen_dtype dt;
  int esize, nd = head[3];
  if (head[0] != 0 || head[1] != 0) {
    gen_fail("%s: not an IDX file (bad magic %02x %02x)", path, head[0], head[1]);
    goto done;
  }
  if (type_info(head[2], &dt, &esize) < 0) {
    gen_fail("%s: unknown IDX element type 0x%02x", path, head[2]);
    goto done;
  }
  if (nd < 1 || nd > GEN_MAX_DIMS) {
    gen_fail("%s: %d dimensions (1..%d supported)", path, nd, GEN_MAX_DIMS);
    goto done;
  }
  if (gzread(f, head + 4, (unsigned)(4 * nd)) != 4 * nd) {
    gen_fail("%s: truncated header", path);
    goto done;
  }
  int64_t shape[GEN_MAX_DIMS];
  uint64_t count = 1;
  for (int d = 0; d < nd; d++) {
    shape[d] = (int64_t)read_be(head + 4 + 4 * d, 4);
    if (shape[d] > 0 && count > ((uint64_t)1 << 40) / (uint64_t)shape[d]) {
      gen_fail("%s: absurd dimensions", path);
      goto done;
    }
    count *= (uint64_t)shape[d];
  }
  uint64_t bytes = count * (uint64_t)esize, header = 4 + 4 * (uint64_t)nd;
  uint64_t can_hold = gz ? (uint64_t)st.st_size * 1032 : (uint64_t)st.st_size - header;
  if (bytes > can_hold) {
    char s[GEN_SHAPE_STR_MAX];
    gen_fail("%s: header claims %s elements (%llu bytes) but the file holds at most %llu", path,
             gen_shape_str(s, sizeof s, nd, shape), (unsigned long long)bytes, (unsigned long long)can_hold);
    goto done;
  }
  t = gen_empty(dt, nd, shape);
  if (!t) goto done;
  /* read raw big-endian bytes into the tail of the buffer, then widen front to back */
  unsigned char *raw = (unsigned char *)t->storage->data + (t->storage->nbytes - bytes);
  uint64_t got = 0;
  while (got < bytes) {
    unsigned chunk = bytes - got > (1u << 30) ? (1u << 30) : (unsigned)(bytes - got);
    int n = gzread(f, raw + got, chunk);
    if (n <= 0) break;
    got += (uint64_t)n;
  }
  if (got != bytes) {
    gen_fail("%s: truncated data: %llu of %llu bytes", path, (unsigned long long)got, (unsigned long long)bytes);
    gen_release(t);
    t = NULL;
    goto done;
  }
  char extra;
  if (gzread(f, &extra, 1) == 1) {
    gen_fail("%s: more data than the header declares", path);
    gen_release(t);
    t = NULL;
    goto done;
  }
  char *out = t->storage->data;
  for (uint64_t i = 0; i < count; i++) {
    const unsigned char *p = raw + i * (uint64_t)esize;
    switch (head[2]) {
    case 0x08: out[i] = (char)p[0]; break;
    case 0x09: ((int64_t *)out)[i] = (int8_t)p[0]; break;
    case 0x0B: ((int64_t *)out)[i] = (int16_t)read_be(p, 2); break;
    case 0x0C: ((int64_t *)out)[i] = (int32_t)read_be(p, 4); break;
    case 0x0D: {
      uint32_t u = (uint32_t)read_be(p, 4);
      float v;
      memcpy(&v, &u, 4);
      ((float *)out)[i] = v;
      break;
    }
    default: {
      uint64_t u = read_be(p, 8);
      double v;
      memcpy(&v, &u, 8);
      ((double *)out)[i] = v;
    }
    }
  }
done:
  gzclose(f);
  return t;
}

int gen_idx_write(const char *path, gen_tensor *t, bool gzip) {
  int code, esize;
  switch (t->dtype) {
  case GEN_UINT8: code = 0x08; esize = 1; break;
  case GEN_INT64: code = 0x0C; esize = 4; break;
  case GEN_FLOAT32: code = 0x0D; esize = 4; break;
  default: code = 0x0E; esize = 8;
  }
  if (t->ndim < 1) return gen_fail_int("IDX needs at least one dimension");
  int64_t n = gen_numel(t);
  if (t->dtype == GEN_INT64)
    for (int64_t i = 0; i < n; i++) {
      double v = gen_get_flat(t, i);
      if (v < -2147483648.0 || v > 2147483647.0) return gen_fail_int("value %.0f does not fit IDX's 32-bit int", v);
    }
  gzFile f = gzopen(path, gzip ? "wb6" : "wbT");
  if (!f) return gen_fail_int("%s: cannot open for writing (%s)", path, strerror(errno));
  unsigned char head[4 + 4 * GEN_MAX_DIMS] = {0, 0, (unsigned char)code, (unsigned char)t->ndim};
  for (int d = 0; d < t->ndim; d++)
    for (int k = 0; k < 4; k++) head[4 + 4 * d + k] = (unsigned char)((uint64_t)t->shape[d] >> (24 - 8 * k));
  bool ok = gzwrite(f, head, (unsigned)(4 + 4 * t->ndim)) == 4 + 4 * t->ndim;
  unsigned char buf[8192];
  int64_t fill = 0;
  for (int64_t i = 0; ok && i < n; i++) {
    double v = gen_get_flat(t, i);
    uint64_t u = 0;
    if (code == 0x08) u = (uint64_t)v;
    else if (code == 0x0C) u = (uint32_t)(int32_t)v;
    else if (code == 0x0D) {
      float fv = (float)v;
      uint32_t w;
      memcpy(&w, &fv, 4);
      u = w;
    } else memcpy(&u, &v, 8);
    for (int k = 0; k < esize; k++) buf[fill + k] = (unsigned char)(u >> (8 * (esize - 1 - k)));
    fill += esize;
    if (fill + 8 > (int64_t)sizeof buf) {
      ok = gzwrite(f, buf, (unsigned)fill) == fill;
      fill = 0;
    }
  }
  if (ok && fill) ok = gzwrite(f, buf, (unsigned)fill) == fill;
  if (gzclose(f) != Z_OK) ok = false;
  return ok ? 0 : gen_fail_int("%s: write failed", path);
}
