/*
 * alloc.c — a caching allocator for tensor data, storages and headers.
 *
 * Why: a training step frees and re-allocates the same buffer sizes every iteration. Through
 * malloc, large buffers are fresh mmaps (page faults and zeroing on every step) and small ones
 * cost a malloc/free pair each, which dominated the per-op overhead of tiny tensors. Blocks are
 * rounded up to size classes (four per power of two, so at most 25% slack) and freed blocks wait on
 * a per-class free list for the next request of that class.
 *
 * How much to keep: the footprint (blocks in use plus cached) may grow to twice the largest number
 * of bytes the program has had in use at once, or 512 MB if that is more; a miss that would pass
 * it first gives cached blocks of other classes back, largest first. (With a bound of once the
 * peak, the classes freed by one collection did not match the next requests often enough, and
 * evictions churned as before; a steady loop's own footprint stays well under twice.) A fixed 512 MB cap made every
 * workload whose steady state was larger (a UNet forward at batch 256 and up: 134 MB activations)
 * hand its blocks to the system at each collection and fault fresh pages back in on the next
 * requests: 1.9 million page faults for five forwards at batch 512 and 24-50 ms per image instead
 * of 3 (bench/batch_scaling.lua). Now a loop reuses its own blocks at any batch size, and memory
 * that a program never needed at once is still not held. GEN_CACHE_MB=N sets a hard cap on
 * cached bytes instead (the old behaviour, for tests and tight machines).
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
static size_t cached_bytes, cache_limit, in_use_bytes, in_use_peak;
static bool limit_read, limit_fixed;
#define FOOTPRINT_FLOOR ((size_t)512 << 20)

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
    long mb = env && *env ? atol(env) : 0;
    limit_fixed = env && *env;
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

/* The footprint bound of the adaptive policy (lock held). */
static size_t footprint_bound(void) { return 2 * in_use_peak > FOOTPRINT_FLOOR ? 2 * in_use_peak : FOOTPRINT_FLOOR; }

/* A miss of `need` bytes: give back cached blocks, largest classes first, until the footprint
 * including the new block fits the bound (lock held). The blocks are collected on `out` and freed
 * by the caller outside the lock. */
static free_block *evict_for(size_t need, size_t bound) {
  free_block *out = NULL;
  for (int c = CLASS_COUNT - 1; c >= 0 && cached_bytes > 0 && in_use_bytes + cached_bytes + need > bound; c--) {
    if (!free_lists[c]) continue; /* the top classes (capacities past 2^64) are always empty */
    size_t cap = class_capacity(c);
    while (free_lists[c] && in_use_bytes + cached_bytes + need > bound) {
      free_block *b = free_lists[c];
      free_lists[c] = b->next;
      cached_bytes -= cap;
      /* the class travels with the block: its first word after `next` */
      b->next = out;
      ((size_t *)b)[1] = cap;
      out = b;
    }
  }
  return out;
}

void *gen_alloc_block(size_t n, size_t *capacity) {
  int c = size_class(n, capacity);
  free_block *b = NULL, *evicted = NULL;
  pthread_mutex_lock(&lock);
  if (c < CLASS_COUNT && (b = free_lists[c]) != NULL) {
    free_lists[c] = b->next;
    cached_bytes -= *capacity;
  } else if ((void)limit(), !limit_fixed) {
    /* the new block may raise the peak itself: bound by what will then be in use */
    size_t bound = footprint_bound(), after = in_use_bytes + *capacity;
    evicted = evict_for(*capacity, after > bound ? after : bound);
  }
  in_use_bytes += *capacity;
  if (in_use_bytes > in_use_peak) in_use_peak = in_use_bytes;
  pthread_mutex_unlock(&lock);
  while (evicted) {
    free_block *next = evicted->next;
    sys_free(evicted, ((size_t *)evicted)[1]);
    evicted = next;
  }
  if (b) return b;
  void *p = sys_alloc(*capacity);
  if (!p) {
    pthread_mutex_lock(&lock);
    in_use_bytes -= *capacity;
    pthread_mutex_unlock(&lock);
  }
  return p;
}

void gen_free_block(void *p, size_t capacity) {
  if (!p) return;
  size_t cap;
  int c = size_class(capacity, &cap);
  pthread_mutex_lock(&lock);
  in_use_bytes -= capacity;
  if (c < CLASS_COUNT && cap == capacity) {
    size_t lim = limit();
    /* adaptive: in_use + cached never passes the bound (a miss evicts first), so every freed
     * block fits; fixed: the GEN_CACHE_MB cap */
    if (!limit_fixed || cached_bytes + capacity <= lim) {
      free_block *b = p;
      b->next = free_lists[c];
      free_lists[c] = b;
      cached_bytes += capacity;
      p = NULL;
    }
  }
  pthread_mutex_unlock(&lock);
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
  in_use_peak = in_use_bytes; /* the footprint starts again from what is in use now */
  pthread_mutex_unlock(&lock);
}
