/* safetensors.c — see safetensors.h. */
#include "safetensors.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAX_HEADER_BYTES (100u << 20)

static const struct {
  const char *name;
  gen_dtype dtype;
} st_dtypes[] = {{"F32", GEN_FLOAT32}, {"F64", GEN_FLOAT64}, {"I64", GEN_INT64}, {"U8", GEN_UINT8}};
_Static_assert(GEN_COUNT_OF(st_dtypes) == GEN_DTYPE_COUNT, "every dtype needs a safetensors name");

static const char *st_name_of(gen_dtype dt) {
  for (size_t i = 0; i < sizeof st_dtypes / sizeof st_dtypes[0]; i++)
    if (st_dtypes[i].dtype == dt) return st_dtypes[i].name;
  return "?";
}

/* ---------------------------------------------------------------- a strict little JSON reader
 * Only what a safetensors header holds: objects, strings, non-negative integers and arrays of them. */

typedef struct {
  const char *s, *end;
  const char *err;
} json;

static void skip_ws(json *j) {
  while (j->s < j->end && (*j->s == ' ' || *j->s == '\n' || *j->s == '\r' || *j->s == '\t')) j->s++;
}

static bool expect(json *j, char c) {
  skip_ws(j);
  if (j->s < j->end && *j->s == c) {
    j->s++;
    return true;
  }
  if (!j->err) j->err = "malformed JSON header";
  return false;
}

static bool peek(json *j, char c) {
  skip_ws(j);
  return j->s < j->end && *j->s == c;
}

/* Parses a JSON string into a new malloc'd C string (escapes decoded; \u limited to ASCII/BMP). */
static char *parse_string(json *j) {
  if (!expect(j, '"')) return NULL;
  size_t cap = 32, len = 0;
  char *out = malloc(cap);
  if (!out) {
    j->err = "out of memory";
    return NULL;
  }
  while (j->s < j->end && *j->s != '"') {
    unsigned char c = (unsigned char)*j->s++;
    char buf[4];
    size_t n = 1;
    buf[0] = (char)c;
    if (c < 0x20) {
      j->err = "control character in a JSON string";
      break;
    }
    if (c == '\\') {
      if (j->s >= j->end) break;
      char e = *j->s++;
      switch (e) {
      case '"':
      case '\\':
      case '/': buf[0] = e; break;
      case 'n': buf[0] = '\n'; break;
      case 't': buf[0] = '\t'; break;
      case 'r': buf[0] = '\r'; break;
      case 'b': buf[0] = '\b'; break;
      case 'f': buf[0] = '\f'; break;
      case 'u': {
        if (j->end - j->s < 4) {
          j->err = "bad \\u escape";
          break;
        }
        unsigned v = 0;
        for (int k = 0; k < 4; k++) {
          char h = *j->s++;
          v = v * 16 + (unsigned)(h >= '0' && h <= '9'   ? h - '0'
                                  : h >= 'a' && h <= 'f' ? h - 'a' + 10
                                  : h >= 'A' && h <= 'F' ? h - 'A' + 10
                                                         : 99);
          if (v > 0xFFFF) {
            j->err = "bad \\u escape";
            break;
          }
        }
        if (v < 0x80)
          buf[0] = (char)v;
        else if (v < 0x800) {
          buf[0] = (char)(0xC0 | (v >> 6));
          buf[1] = (char)(0x80 | (v & 0x3F));
          n = 2;
        } else {
          buf[0] = (char)(0xE0 | (v >> 12));
          buf[1] = (char)(0x80 | ((v >> 6) & 0x3F));
          buf[2] = (char)(0x80 | (v & 0x3F));
          n = 3;
        }
        break;
      }
      default: j->err = "bad escape in a JSON string";
      }
    }
    if (j->err) break;
    if (len + n + 1 > cap) {
      cap *= 2;
      char *grown = realloc(out, cap);
      if (!grown) {
        j->err = "out of memory";
        break;
      }
      out = grown;
    }
    memcpy(out + len, buf, n);
    len += n;
  }
  if (!j->err && !expect(j, '"')) j->err = "unterminated JSON string";
  if (j->err) {
    free(out);
    return NULL;
  }
  out[len] = 0;
  return out;
}

static bool parse_uint(json *j, uint64_t *v) {
  skip_ws(j);
  if (j->s >= j->end || *j->s < '0' || *j->s > '9') {
    if (!j->err) j->err = "expected a non-negative integer";
    return false;
  }
  uint64_t x = 0;
  while (j->s < j->end && *j->s >= '0' && *j->s <= '9') {
    if (x > (UINT64_MAX - 9) / 10) {
      j->err = "integer too large";
      return false;
    }
    x = x * 10 + (uint64_t)(*j->s++ - '0');
  }
  *v = x;
  return true;
}

/* [a, b, ...] with at most max entries */
static int parse_uint_array(json *j, uint64_t *vals, int max) {
  if (!expect(j, '[')) return -1;
  int n = 0;
  if (peek(j, ']')) {
    j->s++;
    return 0;
  }
  for (;;) {
    if (n == max) {
      j->err = "too many entries in an array";
      return -1;
    }
    if (!parse_uint(j, &vals[n++])) return -1;
    if (peek(j, ',')) {
      j->s++;
      continue;
    }
    if (!expect(j, ']')) return -1;
    return n;
  }
}

typedef struct {
  char *name;
  gen_dtype dtype;
  int ndim;
  int64_t shape[GEN_MAX_DIMS];
  uint64_t begin, end;
} st_entry;

static int entry_cmp(const void *a, const void *b) {
  const st_entry *x = a, *y = b;
  return x->begin < y->begin ? -1 : x->begin > y->begin;
}

static int entry_name_cmp(const void *a, const void *b) {
  return strcmp((*(const st_entry *const *)a)->name, (*(const st_entry *const *)b)->name);
}

static int fail_file(const char *path, const char *msg) { return gen_fail_int("%s: %s", path, msg); }

/* Parses one tensor description object. */
static bool parse_entry(json *j, st_entry *e) {
  bool have_dtype = false, have_shape = false, have_offsets = false;
  if (!expect(j, '{')) return false;
  while (!j->err) {
    char *key = parse_string(j);
    if (!key || !expect(j, ':')) {
      free(key);
      return false;
    }
    if (strcmp(key, "dtype") == 0) {
      char *dt = parse_string(j);
      if (!dt) {
        free(key);
        return false;
      }
      int found = -1;
      for (size_t i = 0; i < sizeof st_dtypes / sizeof st_dtypes[0]; i++)
        if (strcmp(dt, st_dtypes[i].name) == 0) found = (int)st_dtypes[i].dtype;
      free(dt);
      if (found < 0) j->err = "unsupported dtype (gen reads F32, F64, I64, U8)";
      e->dtype = (gen_dtype)found;
      have_dtype = true;
    } else if (strcmp(key, "shape") == 0) {
      uint64_t dims[GEN_MAX_DIMS];
      int n = parse_uint_array(j, dims, GEN_MAX_DIMS);
      if (n >= 0) {
        e->ndim = n;
        for (int d = 0; d < n; d++) {
          if (dims[d] > (uint64_t)1 << 40) j->err = "absurd dimension size";
          e->shape[d] = (int64_t)dims[d];
        }
      }
      have_shape = true;
    } else if (strcmp(key, "data_offsets") == 0) {
      uint64_t off[2];
      if (parse_uint_array(j, off, 2) != 2) {
        if (!j->err) j->err = "data_offsets must be [begin, end]";
      } else {
        e->begin = off[0];
        e->end = off[1];
      }
      have_offsets = true;
    } else {
      j->err = "unknown field in a tensor entry";
    }
    free(key);
    if (j->err) return false;
    if (peek(j, ',')) {
      j->s++;
      continue;
    }
    if (!expect(j, '}')) return false;
    break;
  }
  if (!j->err && !(have_dtype && have_shape && have_offsets)) j->err = "tensor entry lacks dtype, shape or data_offsets";
  return !j->err;
}

static bool parse_metadata(json *j, gen_st_contents *out) {
  if (!expect(j, '{')) return false;
  if (peek(j, '}')) {
    j->s++;
    return true;
  }
  while (!j->err) {
    char *k = parse_string(j);
    if (k && expect(j, ':') && !peek(j, '"')) j->err = "metadata values must be strings";
    char *v = k && !j->err ? parse_string(j) : NULL;
    if (!v) {
      free(k);
      if (!j->err) j->err = "metadata values must be strings";
      return false;
    }
    char **nk = realloc(out->meta_keys, sizeof(char *) * (size_t)(out->meta_count + 1));
    if (nk) out->meta_keys = nk;
    char **nv = nk ? realloc(out->meta_values, sizeof(char *) * (size_t)(out->meta_count + 1)) : NULL;
    if (nv) out->meta_values = nv;
    if (!nk || !nv) {
      free(k);
      free(v);
      j->err = "out of memory";
      return false;
    }
    out->meta_keys[out->meta_count] = k;
    out->meta_values[out->meta_count] = v;
    out->meta_count++;
    if (peek(j, ',')) {
      j->s++;
      continue;
    }
    return expect(j, '}');
  }
  return false;
}

void gen_st_free(gen_st_contents *c) {
  for (int i = 0; i < c->count; i++) {
    if (c->names) free(c->names[i]);
    if (c->tensors) gen_release(c->tensors[i]);
  }
  for (int i = 0; i < c->meta_count; i++) {
    free(c->meta_keys[i]);
    free(c->meta_values[i]);
  }
  free(c->names);
  free(c->tensors);
  free(c->meta_keys);
  free(c->meta_values);
  memset(c, 0, sizeof *c);
}

int gen_safetensors_load(const char *path, gen_st_contents *out) {
  FILE *f = fopen(path, "rb");
  if (!f) return gen_fail_int("%s: cannot open (%s)", path, strerror(errno));
  int rc = -1;
  char *header = NULL;
  st_entry *entries = NULL;
  int n_entries = 0, cap_entries = 0;
  struct stat st;
  unsigned char lenbuf[8];
  if (fstat(fileno(f), &st) < 0 || !S_ISREG(st.st_mode)) {
    fail_file(path, "not a regular file");
    goto done;
  }
  uint64_t file_size = (uint64_t)st.st_size;
  if (fread(lenbuf, 1, 8, f) != 8) {
    fail_file(path, "truncated: no header length");
    goto done;
  }
  uint64_t hlen = 0;
  for (int i = 7; i >= 0; i--) hlen = hlen << 8 | lenbuf[i];
  if (hlen > MAX_HEADER_BYTES || hlen > file_size - 8) {
    gen_fail_int("%s: header length %llu does not fit the file (%llu bytes)", path, (unsigned long long)hlen,
                 (unsigned long long)file_size);
    goto done;
  }
  header = malloc(hlen + 1);
  if (!header) {
    fail_file(path, "out of memory");
    goto done;
  }
  if (fread(header, 1, hlen, f) != hlen) {
    fail_file(path, "truncated header");
    goto done;
  }
  header[hlen] = 0;
  uint64_t data_size = file_size - 8 - hlen;
  json j = {header, header + hlen, NULL};
  if (!expect(&j, '{')) goto bad_json;
  if (!peek(&j, '}')) {
    for (;;) {
      char *name = parse_string(&j);
      if (!name || !expect(&j, ':')) {
        free(name);
        goto bad_json;
      }
      if (strcmp(name, "__metadata__") == 0) {
        free(name);
        if (!parse_metadata(&j, out)) goto bad_json;
      } else {
        if (n_entries == cap_entries) {
          cap_entries = cap_entries ? cap_entries * 2 : 16;
          st_entry *grown = realloc(entries, sizeof *entries * (size_t)cap_entries);
          if (!grown) {
            free(name);
            fail_file(path, "out of memory");
            goto done;
          }
          entries = grown;
        }
        st_entry *e = &entries[n_entries];
        memset(e, 0, sizeof *e);
        e->name = name;
        n_entries++;
        if (!parse_entry(&j, e)) goto bad_json;
      }
      if (peek(&j, ',')) {
        j.s++;
        continue;
      }
      if (!expect(&j, '}')) goto bad_json;
      break;
    }
  } else {
    j.s++;
  }
  skip_ws(&j);
  if (j.s != j.end) {
    j.err = "trailing bytes after the JSON header";
    goto bad_json;
  }
  /* Validate every entry before allocating any tensor. Duplicate names: sorted by name, in
   * O(n log n) (a pairwise check took 14 s on 100,000 tensors). */
  {
    st_entry **by_name = malloc(sizeof *by_name * (size_t)(n_entries ? n_entries : 1));
    if (!by_name) {
      fail_file(path, "out of memory");
      goto done;
    }
    for (int i = 0; i < n_entries; i++) by_name[i] = &entries[i];
    qsort(by_name, (size_t)n_entries, sizeof *by_name, entry_name_cmp);
    for (int i = 1; i < n_entries; i++)
      if (strcmp(by_name[i - 1]->name, by_name[i]->name) == 0) {
        gen_fail_int("%s: duplicate tensor name '%s'", path, by_name[i]->name);
        free(by_name);
        goto done;
      }
    free(by_name);
  }
  for (int i = 0; i < n_entries; i++) {
    st_entry *e = &entries[i];
    int64_t numel = gen_numel_checked(e->ndim, e->shape);
    bool ovf = numel < 0;
    uint64_t bytes = (uint64_t)gen_size_mul(numel, (int64_t)gen_dtype_size(e->dtype), &ovf);
    if (ovf) {
      char s[GEN_SHAPE_STR_MAX];
      gen_fail_int("%s: tensor '%s' of shape %s is too large", path, e->name, gen_shape_str(s, sizeof s, e->ndim, e->shape));
      goto done;
    }
    if (e->end < e->begin || e->end - e->begin != bytes) {
      char s[GEN_SHAPE_STR_MAX];
      gen_fail_int("%s: tensor '%s' (%s %s) needs %llu bytes but data_offsets [%llu, %llu] give %lld", path, e->name,
                   st_name_of(e->dtype), gen_shape_str(s, sizeof s, e->ndim, e->shape), (unsigned long long)bytes,
                   (unsigned long long)e->begin, (unsigned long long)e->end, (long long)(e->end - e->begin));
      goto done;
    }
    if (e->end > data_size) {
      gen_fail_int("%s: tensor '%s' ends at byte %llu of a %llu-byte data section (truncated file?)", path, e->name,
                   (unsigned long long)e->end, (unsigned long long)data_size);
      goto done;
    }
  }
  st_entry *sorted = malloc(sizeof *sorted * (size_t)(n_entries ? n_entries : 1));
  if (!sorted) {
    fail_file(path, "out of memory");
    goto done;
  }
  if (n_entries) memcpy(sorted, entries, sizeof *sorted * (size_t)n_entries);
  qsort(sorted, (size_t)n_entries, sizeof *sorted, entry_cmp);
  for (int i = 1; i < n_entries; i++)
    if (sorted[i].begin < sorted[i - 1].end && sorted[i].begin != sorted[i].end && sorted[i - 1].begin != sorted[i - 1].end) {
      gen_fail_int("%s: tensors '%s' and '%s' overlap", path, sorted[i - 1].name, sorted[i].name);
      free(sorted);
      goto done;
    }
  free(sorted);
  out->names = calloc((size_t)(n_entries ? n_entries : 1), sizeof(char *));
  out->tensors = calloc((size_t)(n_entries ? n_entries : 1), sizeof(gen_tensor *));
  if (!out->names || !out->tensors) {
    fail_file(path, "out of memory");
    goto done;
  }
  for (int i = 0; i < n_entries; i++) {
    st_entry *e = &entries[i];
    gen_tensor *t = gen_empty(e->dtype, e->ndim, e->shape);
    if (!t) goto done;
    out->names[i] = e->name;
    e->name = NULL;
    out->tensors[i] = t;
    out->count = i + 1;
    if (e->end > e->begin && (fseeko(f, (off_t)(8 + hlen + e->begin), SEEK_SET) != 0 ||
                              fread(t->storage->data, 1, e->end - e->begin, f) != e->end - e->begin)) {
      gen_fail_int("%s: cannot read tensor '%s'", path, out->names[i]);
      goto done;
    }
  }
  rc = 0;
  goto done;
bad_json:
  gen_fail_int("%s: bad header: %s (at byte %ld of %llu)", path, j.err ? j.err : "malformed JSON", (long)(j.s - header),
               (unsigned long long)hlen);
done:
  for (int i = 0; i < n_entries; i++) free(entries[i].name);
  free(entries);
  free(header);
  fclose(f);
  if (rc < 0) {
    char keep[1024];
    snprintf(keep, sizeof keep, "%s", gen_last_error());
    gen_st_free(out);
    gen_fail_int("%s", keep);
  }
  return rc;
}

/* ---------------------------------------------------------------- writing */

/* An atomic save writes PATH.tmp-PID and renames it over PATH. A save killed before the rename
 * leaves its temporary behind; the next save of PATH removes every PATH.tmp-PID whose process no
 * longer exists (kill(pid, 0) fails with ESRCH). A live process's file is left alone: it may be
 * another process saving the same path right now. */
static void remove_stale_temporaries(const char *path) {
  char dir[4096], base[4096];
  snprintf(dir, sizeof dir, "%s", path);
  snprintf(base, sizeof base, "%s", path);
  const char *d = dirname(dir), *b = basename(base);
  size_t blen = strlen(b);
  DIR *dp = opendir(d);
  if (!dp) return;
  struct dirent *e;
  while ((e = readdir(dp)) != NULL) {
    const char *name = e->d_name;
    if (strncmp(name, b, blen) != 0 || strncmp(name + blen, ".tmp-", 5) != 0) continue;
    const char *digits = name + blen + 5;
    char *end;
    errno = 0;
    long pid = strtol(digits, &end, 10);
    if (end == digits || *end != 0 || errno || pid <= 0 || pid == (long)getpid()) continue;
    if (kill((pid_t)pid, 0) == 0 || errno != ESRCH) continue;
    char stale[8192];
    snprintf(stale, sizeof stale, "%s/%s", d, name);
    unlink(stale);
  }
  closedir(dp);
}

typedef struct {
  char *s;
  size_t len, cap;
  bool oom;
} sbuf;

static void put(sbuf *b, const char *s, size_t n) {
  if (b->oom) return;
  if (b->len + n + 1 > b->cap) {
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->len + n + 1) cap *= 2;
    char *g = realloc(b->s, cap);
    if (!g) {
      b->oom = true;
      return;
    }
    b->s = g;
    b->cap = cap;
  }
  memcpy(b->s + b->len, s, n);
  b->len += n;
  b->s[b->len] = 0;
}
static void puts_(sbuf *b, const char *s) { put(b, s, strlen(s)); }

static void put_json_string(sbuf *b, const char *s) {
  put(b, "\"", 1);
  for (; *s; s++) {
    unsigned char c = (unsigned char)*s;
    char esc[8];
    if (c == '"' || c == '\\') {
      esc[0] = '\\';
      esc[1] = (char)c;
      put(b, esc, 2);
    } else if (c < 0x20) {
      snprintf(esc, sizeof esc, "\\u%04x", c);
      put(b, esc, 6);
    } else
      put(b, (const char *)&c, 1);
  }
  put(b, "\"", 1);
}

int gen_safetensors_save(const char *path, int count, const char *const *names, gen_tensor *const *tensors, int meta_count,
                         const char *const *meta_keys, const char *const *meta_values, bool atomic) {
  sbuf h = {0};
  char num[64];
  uint64_t offset = 0;
  puts_(&h, "{");
  if (meta_count > 0) {
    puts_(&h, "\"__metadata__\":{");
    for (int i = 0; i < meta_count; i++) {
      if (i) puts_(&h, ",");
      put_json_string(&h, meta_keys[i]);
      puts_(&h, ":");
      put_json_string(&h, meta_values[i]);
    }
    puts_(&h, "}");
  }
  for (int i = 0; i < count; i++) {
    gen_tensor *t = tensors[i];
    if (i || meta_count > 0) puts_(&h, ",");
    put_json_string(&h, names[i]);
    puts_(&h, ":{\"dtype\":\"");
    puts_(&h, st_name_of(t->dtype));
    puts_(&h, "\",\"shape\":[");
    for (int d = 0; d < t->ndim; d++) {
      snprintf(num, sizeof num, d ? ",%lld" : "%lld", (long long)t->shape[d]);
      puts_(&h, num);
    }
    uint64_t bytes = (uint64_t)gen_numel(t) * gen_dtype_size(t->dtype);
    snprintf(num, sizeof num, "],\"data_offsets\":[%llu,%llu]}", (unsigned long long)offset,
             (unsigned long long)(offset + bytes));
    puts_(&h, num);
    offset += bytes;
  }
  puts_(&h, "}");
  while (!h.oom && h.len % 8) puts_(&h, " "); /* the data section starts 8-byte aligned */
  if (h.oom) {
    free(h.s);
    return gen_fail_int("out of memory writing %s", path);
  }

  char tmp[4096];
  if (atomic) remove_stale_temporaries(path);
  if (atomic)
    snprintf(tmp, sizeof tmp, "%s.tmp-%ld", path, (long)getpid());
  else
    snprintf(tmp, sizeof tmp, "%s", path);
  FILE *f = fopen(tmp, "wb");
  if (!f) {
    free(h.s);
    return gen_fail_int("%s: cannot open for writing (%s)", tmp, strerror(errno));
  }
  unsigned char lenbuf[8];
  for (int i = 0; i < 8; i++) lenbuf[i] = (unsigned char)((uint64_t)h.len >> (8 * i));
  bool ok = fwrite(lenbuf, 1, 8, f) == 8 && fwrite(h.s, 1, h.len, f) == h.len;
  free(h.s);
  for (int i = 0; ok && i < count; i++) {
    gen_tensor *c = gen_contiguous_raw(tensors[i]);
    if (!c) {
      ok = false;
      break;
    }
    size_t bytes = (size_t)gen_numel(c) * gen_dtype_size(c->dtype);
    ok = fwrite(gen_data_ptr(c), 1, bytes, f) == bytes;
    gen_release(c);
  }
  ok = ok && fflush(f) == 0 && (!atomic || fsync(fileno(f)) == 0);
  int saved_errno = errno;
  ok = (fclose(f) == 0) && ok;
  if (!ok) {
    if (atomic) {
      unlink(tmp);
      return gen_fail_int("%s: write failed (%s); the previous file, if any, is unchanged", path, strerror(saved_errno));
    }
    return gen_fail_int("%s: write failed (%s)", tmp, strerror(saved_errno));
  }
  if (atomic) {
    if (rename(tmp, path) != 0) {
      saved_errno = errno;
      unlink(tmp);
      return gen_fail_int("%s: rename failed (%s)", path, strerror(saved_errno));
    }
    char dir[4096];
    snprintf(dir, sizeof dir, "%s", path);
    int dfd = open(dirname(dir), O_RDONLY | O_DIRECTORY);
    if (dfd >= 0) { /* make the rename itself durable */
      fsync(dfd);
      close(dfd);
    }
  }
  return 0;
}
