/*
 * io_idx.c — the IDX format: magic 0x00 0x00 <type> <ndims>, ndims big-endian uint32 sizes, then
 * the elements big-endian. zlib's gz* functions read gzip and plain files alike. The declared size
 * is checked against what the file can hold before allocating: the file size for plain files,
 * 1032 times the compressed size for gzip (deflate's maximum ratio), and then the bytes actually
 * read must match exactly.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zlib.h>

#include "io.h"

static int type_info(int code, gen_dtype *dt, int *bytes) {
  switch (code) {
  case 0x08:
    *dt = GEN_UINT8;
    *bytes = 1;
    return 0;
  case 0x09:
    *dt = GEN_INT64;
    *bytes = 1;
    return 0;
  case 0x0B:
    *dt = GEN_INT64;
    *bytes = 2;
    return 0;
  case 0x0C:
    *dt = GEN_INT64;
    *bytes = 4;
    return 0;
  case 0x0D:
    *dt = GEN_FLOAT32;
    *bytes = 4;
    return 0;
  case 0x0E:
    *dt = GEN_FLOAT64;
    *bytes = 8;
    return 0;
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

/* Elements of the file's type, big-endian, to the tensor's dtype. */
static void widen(void *out, const unsigned char *raw, int code, int64_t count) {
  switch (code) {
  case 0x08: memcpy(out, raw, (size_t)count); break;
  case 0x09:
    for (int64_t i = 0; i < count; i++) ((int64_t *)out)[i] = (int8_t)raw[i];
    break;
  case 0x0B:
    for (int64_t i = 0; i < count; i++) ((int64_t *)out)[i] = (int16_t)read_be(raw + 2 * i, 2);
    break;
  case 0x0C:
    for (int64_t i = 0; i < count; i++) ((int64_t *)out)[i] = (int32_t)read_be(raw + 4 * i, 4);
    break;
  case 0x0D:
    for (int64_t i = 0; i < count; i++) {
      uint32_t u = (uint32_t)read_be(raw + 4 * i, 4);
      memcpy((float *)out + i, &u, 4);
    }
    break;
  default:
    for (int64_t i = 0; i < count; i++) {
      uint64_t u = read_be(raw + 8 * i, 8);
      memcpy((double *)out + i, &u, 8);
    }
  }
}

/* Reads up to n bytes; returns how many (short only at the end of the stream or on an error). */
static uint64_t read_fully(gzFile f, unsigned char *dst, uint64_t n) {
  uint64_t got = 0;
  while (got < n) {
    unsigned chunk = n - got > (1u << 30) ? (1u << 30) : (unsigned)(n - got);
    int k = gzread(f, dst + got, chunk);
    if (k <= 0) break;
    got += (uint64_t)k;
  }
  return got;
}

/* zlib's message for the last error ("end of file" when there was none); zlib prefixes it with the
 * path, which our messages already carry. */
static const char *gz_message(gzFile f, const char *path) {
  int code;
  const char *msg = gzerror(f, &code);
  if (code == Z_OK || !msg || !*msg) return "end of file";
  size_t n = strlen(path);
  if (strncmp(msg, path, n) == 0 && msg[n] == ':' && msg[n + 1] == ' ') msg += n + 2;
  return msg;
}

/* Reads exactly n header bytes; -1 with a message naming what went wrong. */
static int read_header(gzFile f, const char *path, unsigned char *dst, unsigned n) {
  int k = gzread(f, dst, n);
  if (k == (int)n) return 0;
  if (k < 0) return gen_fail_int("%s: corrupt gzip stream (%s)", path, gz_message(f, path));
  return gen_fail_int("%s: truncated header (%d of %u bytes)", path, k, n);
}

/* gzip: the header's claim is not trusted with memory. The data is inflated into blocks of at
 * most BLOCK bytes, each allocated only once the previous one is full, so a 1 KB file that
 * declares gigabytes costs at most one block before the shortfall is found. The list of blocks
 * grows with them too: sized from the claim, it cost a 4 MB table (and a loop over it) for a file
 * declaring 2^43 bytes, which made such inputs 10x slower than a real read. */
#define BLOCK ((uint64_t)16 << 20)

static int read_gz_body(gzFile f, const char *path, gen_tensor *out_holder[1], gen_dtype dt, int nd, const int64_t *shape,
                        int code, int in_size, uint64_t bytes) {
  uint64_t nblocks = 0, capacity = 0;
  unsigned char **blocks = NULL;
  int rc = -1;
  uint64_t got = 0;
  for (uint64_t b = 0; got < bytes; b++) {
    uint64_t want = bytes - got < BLOCK ? bytes - got : BLOCK;
    if (b == capacity) {
      uint64_t grown = capacity ? 2 * capacity : 4;
      unsigned char **more = realloc(blocks, grown * sizeof *blocks);
      if (!more) {
        gen_fail("out of memory");
        goto done;
      }
      blocks = more;
      capacity = grown;
    }
    if (!(blocks[b] = malloc(want))) {
      gen_fail("out of memory");
      goto done;
    }
    nblocks = b + 1;
    uint64_t k = read_fully(f, blocks[b], want);
    got += k;
    if (k < want) break;
  }
  if (got != bytes) {
    int code;
    gzerror(f, &code);
    if (code != Z_OK && code != Z_BUF_ERROR) /* Z_BUF_ERROR: the stream just ended early */
      gen_fail("%s: corrupt gzip stream after %llu bytes (%s)", path, (unsigned long long)got, gz_message(f, path));
    else
      gen_fail("%s: truncated data: %llu of %llu bytes (%s)", path, (unsigned long long)got, (unsigned long long)bytes,
               gz_message(f, path));
    goto done;
  }
  unsigned char extra;
  int k = gzread(f, &extra, 1);
  if (k == 1) {
    gen_fail("%s: more data than the header declares", path);
    goto done;
  }
  if (k < 0) { /* e.g. a bad CRC in the gzip trailer */
    gen_fail("%s: corrupt gzip stream (%s)", path, gz_message(f, path));
    goto done;
  }
  gen_tensor *t = gen_empty(dt, nd, shape);
  if (!t) goto done;
  /* block boundaries are multiples of 8 bytes (BLOCK is), so no element straddles two blocks */
  size_t esize = gen_dtype_size(dt);
  char *dst = t->storage->data;
  for (uint64_t b = 0, done_bytes = 0; done_bytes < bytes; b++) {
    uint64_t n = bytes - done_bytes < BLOCK ? bytes - done_bytes : BLOCK;
    widen(dst + (done_bytes / (uint64_t)in_size) * esize, blocks[b], code, (int64_t)(n / (uint64_t)in_size));
    done_bytes += n;
  }
  out_holder[0] = t;
  rc = 0;
done:
  for (uint64_t b = 0; b < nblocks; b++) free(blocks[b]);
  free(blocks);
  return rc;
}

gen_tensor *gen_idx_read(const char *path) {
  struct stat st;
  if (stat(path, &st) < 0) return gen_fail("%s: cannot open (%s)", path, strerror(errno));
  if (!S_ISREG(st.st_mode)) return gen_fail("%s: not a regular file", path);
  bool gz = is_gzip(path);
  gzFile f = gzopen(path, "rb");
  if (!f) return gen_fail("%s: cannot open (%s)", path, strerror(errno));
  /* 64 KB: reading Fashion-MNIST is no faster with 1 MB, and a buffer of 1 MB (3 MB with zlib's
   * output window) allocated per open made the fuzzer spend 90% of its time in page faults */
  gzbuffer(f, 1 << 16);
  gen_tensor *t = NULL;
  unsigned char head[4 + 4 * GEN_MAX_DIMS];
  if (read_header(f, path, head, 4) < 0) goto done;
  gen_dtype dt;
  int esize, nd = head[3];
  if (head[0] != 0 || head[1] != 0) {
    gen_fail("%s: not an IDX file (bad magic %02x %02x, expected 00 00)", path, head[0], head[1]);
    goto done;
  }
  if (type_info(head[2], &dt, &esize) < 0) {
    gen_fail("%s: unknown IDX element type 0x%02x (08 09 0B 0C 0D 0E are defined)", path, head[2]);
    goto done;
  }
  if (nd < 1 || nd > GEN_MAX_DIMS) {
    gen_fail("%s: %d dimensions (1..%d supported)", path, nd, GEN_MAX_DIMS);
    goto done;
  }
  if (read_header(f, path, head + 4, (unsigned)(4 * nd)) < 0) goto done;
  int64_t shape[GEN_MAX_DIMS];
  bool absurd = false;
  int64_t nonzero = 1; /* the product of the nonzero sizes: a zero size must not hide the others */
  for (int d = 0; d < nd; d++) {
    shape[d] = (int64_t)read_be(head + 4 + 4 * d, 4);
    nonzero = gen_size_mul(nonzero, shape[d] > 1 ? shape[d] : 1, &absurd);
  }
  int64_t numel = gen_numel_checked(nd, shape);
  uint64_t count = numel < 0 ? 0 : (uint64_t)numel;
  char s[GEN_SHAPE_STR_MAX];
  if (absurd || numel < 0 || nonzero > ((int64_t)1 << 40)) {
    gen_fail("%s: absurd dimensions %s (more than 2^40 elements)", path, gen_shape_str(s, sizeof s, nd, shape));
    goto done;
  }
  uint64_t bytes = count * (uint64_t)esize, header = 4 + 4 * (uint64_t)nd;
  if (!gz) {
    /* a plain file must hold exactly the declared elements: checked before allocating */
    uint64_t body = (uint64_t)st.st_size - header;
    if (body != bytes) {
      gen_fail("%s: header declares %s elements (%llu bytes) but the file holds %llu bytes of data%s", path,
               gen_shape_str(s, sizeof s, nd, shape), (unsigned long long)bytes, (unsigned long long)body,
               body > bytes ? " (more data than the header declares)" : "");
      goto done;
    }
    t = gen_empty(dt, nd, shape);
    if (!t) goto done;
    /* raw big-endian bytes go to the tail of the buffer, then widen front to back in place */
    unsigned char *raw = (unsigned char *)t->storage->data + (t->storage->nbytes - bytes);
    uint64_t got = read_fully(f, raw, bytes);
    if (got != bytes) { /* the file shrank under us, or a read error */
      gen_fail("%s: truncated data: %llu of %llu bytes", path, (unsigned long long)got, (unsigned long long)bytes);
      gen_release(t);
      t = NULL;
      goto done;
    }
    if (head[2] != 0x08) {
      /* widening in place front to back is safe: element i's output ends at or after its input */
      char *out = t->storage->data;
      size_t osize = gen_dtype_size(dt);
      for (uint64_t i = 0; i < count; i++) {
        unsigned char tmp[8];
        memcpy(tmp, raw + i * (uint64_t)esize, (size_t)esize);
        widen(out + i * osize, tmp, head[2], 1);
      }
    }
  } else {
    gen_tensor *holder[1] = {NULL};
    if (read_gz_body(f, path, holder, dt, nd, shape, head[2], esize, bytes) == 0) t = holder[0];
  }
done:
  gzclose(f);
  return t;
}

int gen_idx_write(const char *path, gen_tensor *t, bool gzip) {
  int code, esize;
  switch (t->dtype) {
  case GEN_UINT8:
    code = 0x08;
    esize = 1;
    break;
  case GEN_INT64:
    code = 0x0C;
    esize = 4;
    break;
  case GEN_FLOAT32:
    code = 0x0D;
    esize = 4;
    break;
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
    if (code == 0x08)
      u = (uint64_t)v;
    else if (code == 0x0C)
      u = (uint32_t)(int32_t)v;
    else if (code == 0x0D) {
      float fv = (float)v;
      uint32_t w;
      memcpy(&w, &fv, 4);
      u = w;
    } else
      memcpy(&u, &v, 8);
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
