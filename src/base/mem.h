/* mem.h — big buffers (weights, activations, optimizer state) on transparent
 * huge pages. Streaming hundreds of MB through 4 KB pages made TLB misses,
 * not DRAM, the limit of memory-bound passes (decode GEMVs, AdamW). */
#ifndef HN_MEM_H
#define HN_MEM_H

#include <stddef.h>

/* n bytes aligned to 2 MB (n rounded up) with madvise(MADV_HUGEPAGE) — only
 * advice: without THP they are ordinary pages. Below HN_HUGE_MIN plain
 * 64-byte-aligned memory. Free with free(); NULL when out of memory. */
void *hn_alloc_huge(size_t n);
/* The same, zero-filled. */
void *hn_calloc_huge(size_t n);

#define HN_HUGE_MIN ((size_t)4 << 20)

/* Many buffers carved from huge-page chunks (at least HN_ARENA_CHUNK each),
 * freed all at once: caches of weight copies, whose entries are mostly
 * smaller than a huge page. Zero-initialise; not thread-safe. */
typedef struct hn_arena {
    void **chunks;
    int n, cap;
    char *cur;     /* where the next small buffer goes */
    size_t left;   /* bytes left in the current chunk */
    size_t bytes;  /* total allocated in chunks */
} hn_arena;

#define HN_ARENA_CHUNK ((size_t)16 << 20)

/* n bytes, 64-byte aligned; NULL when out of memory. */
void *hn_arena_alloc(hn_arena *a, size_t n);
/* Frees every buffer and resets a. */
void hn_arena_free(hn_arena *a);

#endif
