/* alloc.h — the caching allocator behind every storage and header (alloc.c). */
#ifndef GEN_ALLOC_H
#define GEN_ALLOC_H

#include <stdbool.h>
#include <stddef.h>

/* A 64-byte aligned block of at least n bytes; *capacity receives its real size, which must be
 * passed back to gen_free_block. NULL when out of memory. */
void *gen_alloc_block(size_t n, size_t *capacity);
void gen_free_block(void *p, size_t capacity);
size_t gen_block_capacity(size_t n);
size_t gen_cached_bytes(void);
void gen_empty_cache(void);

#endif
