/*
 * alloc.c — a caching allocator for tensor data, storages and headers.
 *
 * Why: a training step frees and re-allocates the same buffer sizes every iteration. Through
 * malloc, large buffers are fresh mmaps (page faults and zeroing on every step) and small ones
 * cost a malloc/free pair each, which dominated the per-op overhead of tiny tensors. Blocks are
 * rounded up to size classes (four per power of two, so at most 25% slack) and freed blocks wait on
 * a per-class free list for the next request of that class, up to a cap on cached bytes
 * (GEN_CACHE_MB, default 512); past the cap they go back to the system.
 */
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>

#include "alloc.h"

#define MIN_CLASS_BYTES 64
#define CLASS_COUNT     256

typedef struct free_block {
  struct free_block *next;
} free_block;

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static free_block *free_lists[CLASS_COUNT];
static size_t cached_bytes, cache_limit;
static bool limit_read;

/* Class index and capacity for n bytes: 64, 80, 96, 112, 128, 160, ... */
static int size_class(size_t n, size_t *capacity) {
  if (n <= MIN_CLASS_BYTES) {
    *capacity = MIN_CLASS_BYTES;
    return 0;
  }
  int log2 = 63 - __builtin_clzll((unsigned long long)(n - 1)); /* 2^log2 < n <= 2^(log2+1) */
  size_t base = (size_t)1 << log2, step = base / 4;
  size_t sub = (n - base + step - 1) / step; /* 1..4 */
  *capacity = base + sub * step;
  return (log2 - 6) * 4 + (int)sub;
}

/* The inverse of size_class: the capacity of class c. */
static size_t class_capacity(int c) {
  if (c == 0) return MIN_CLASS_BYTES;
  size_t base = (size_t)1 << ((c - 1) / 4 + 6);
  return base + (size_t)((c - 1) % 4 + 1) * (base / 4);
}

size_t gen_block_capacity(size_t n) {
  size_t cap;
  size_class(n, &cap);
  return cap;
}

static size_t limit(void) {
  if (!limit_read) {
    const char *env = getenv("GEN_CACHE_MB");
    long mb = env ? atol(env) : 512;
    cache_limit = (size_t)(mb < 0 ? 0 : mb) << 20;
    limit_read = true;
  }
  return cache_limit;
}

/* 64-byte aligned blocks from the system. Small ones are over-allocated through malloc and aligned
 * by hand (the original pointer is kept just before the block): posix_memalign splits off and frees
 * a fragment per call, and with 100,000 small live blocks (gen.load of a file of many small
 * tensors) glibc's malloc spent most of its time walking those fragments. */
#define SMALL_BLOCK 65536

static void *sys_alloc(size_t capacity) {
  if (capacity <= SMALL_BLOCK) {
    char *raw = malloc(capacity + 64);
    if (!raw) return NULL;
    char *p = (char *)(((uintptr_t)raw + 64) & ~(uintptr_t)63); /* at least 8 bytes after raw */
    ((void **)p)[-1] = raw;
    return p;
  }
  void *p = NULL; /* posix_memalign: aligned_alloc wants sizes that are multiples of 64 */
  return posix_memalign(&p, 64, capacity) == 0 ? p : NULL;
}

static void sys_free(void *p, size_t capacity) {
  if (!p) return;
  free(capacity <= SMALL_BLOCK ? ((void **)p)[-1] : p);
}

void *gen_alloc_block(size_t n, size_t *capacity) {
  int c = size_class(n, capacity);
  if (c < CLASS_COUNT) {
    pthread_mutex_lock(&lock);
    free_block *b = free_lists[c];
    if (b) {
      free_lists[c] = b->next;
      cached_bytes -= *capacity;
    }
    pthread_mutex_unlock(&lock);
    if (b) return b;
  }
  return sys_alloc(*capacity);
}

void gen_free_block(void *p, size_t capacity) {
  if (!p) return;
  size_t cap;
  int c = size_class(capacity, &cap);
  if (c < CLASS_COUNT && cap == capacity) {
    pthread_mutex_lock(&lock);
    if (cached_bytes + capacity <= limit()) {
      free_block *b = p;
      b->next = free_lists[c];
      free_lists[c] = b;
      cached_bytes += capacity;
      p = NULL;
    }
    pthread_mutex_unlock(&lock);
  }
  sys_free(p, capacity);
}

size_t gen_cached_bytes(void) {
  pthread_mutex_lock(&lock);
  size_t n = cached_bytes;
  pthread_mutex_unlock(&lock);
  return n;
}

void gen_empty_cache(void) {
  pthread_mutex_lock(&lock);
  for (int c = 0; c < CLASS_COUNT; c++) {
    while (free_lists[c]) {
      free_block *b = free_lists[c];
      free_lists[c] = b->next;
      sys_free(b, class_capacity(c));
    }
  }
  cached_bytes = 0;
  pthread_mutex_unlock(&lock);
}
