/* mem.c — huge-page allocations (see mem.h). */
#include "base/mem.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#define HUGE_PAGE ((size_t)2 << 20)

void *hn_alloc_huge(size_t n) {
    if (n < HN_HUGE_MIN) return aligned_alloc(64, (n + 63) & ~(size_t)63);
    size_t size = (n + HUGE_PAGE - 1) & ~(HUGE_PAGE - 1);
    void *p = aligned_alloc(HUGE_PAGE, size);
#ifdef MADV_HUGEPAGE
    if (p) madvise(p, size, MADV_HUGEPAGE);
#endif
    return p;
}

void *hn_arena_alloc(hn_arena *a, size_t n) {
    n = (n + 63) & ~(size_t)63;
    bool own = n > HN_ARENA_CHUNK / 2; /* big: a chunk of its own, the current one stays */
    if (!own && n <= a->left) {
        void *p = a->cur;
        a->cur += n, a->left -= n;
        return p;
    }
    if (a->n == a->cap) {
        int cap = a->cap ? 2 * a->cap : 16;
        void **c = realloc(a->chunks, sizeof *c * (size_t)cap);
        if (!c) return NULL;
        a->chunks = c, a->cap = cap;
    }
    size_t size = own ? n : HN_ARENA_CHUNK;
    char *p = hn_alloc_huge(size < HN_HUGE_MIN ? HN_HUGE_MIN : size);
    if (!p) return NULL;
    a->chunks[a->n++] = p;
    a->bytes += size;
    if (own) return p;
    a->cur = p + n, a->left = size - n;
    return p;
}

void hn_arena_free(hn_arena *a) {
    for (int i = 0; i < a->n; i++) free(a->chunks[i]);
    free(a->chunks);
    memset(a, 0, sizeof *a);
}

void *hn_calloc_huge(size_t n) {
    void *p = hn_alloc_huge(n);
    if (p) memset(p, 0, n);
    return p;
}
