/* test_mem.c — base/mem.h: huge-page buffers are 2 MB aligned above the
 * threshold and usable to the last byte; arena buffers are 64-byte aligned,
 * never overlap (small ones share chunks, big ones get their own) and are all
 * released by hn_arena_free. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/mem.h"
#include "test.h"

int main(void) {
    size_t big = HN_HUGE_MIN + 12345;
    unsigned char *p = hn_calloc_huge(big);
    CHECK(p && ((uintptr_t)p & ((2u << 20) - 1)) == 0, "huge buffer aligned to 2 MB");
    size_t nz = 0;
    for (size_t i = 0; p && i < big; i++) nz += p[i] != 0;
    CHECK(nz == 0, "hn_calloc_huge zero-fills (%zu non-zero)", nz);
    if (p) memset(p, 0xab, big);
    free(p);
    unsigned char *s = hn_alloc_huge(100);
    CHECK(s && ((uintptr_t)s & 63) == 0, "small buffer 64-byte aligned");
    free(s);

    hn_arena a = {0};
    enum { N = 300 };
    unsigned char *b[N];
    size_t len[N];
    for (int i = 0; i < N; i++) {
        len[i] = i % 50 == 49 ? HN_ARENA_CHUNK / 2 + 100 : (size_t)(i * 7919 % 200000 + 1);
        b[i] = hn_arena_alloc(&a, len[i]);
        CHECK(b[i] && ((uintptr_t)b[i] & 63) == 0, "arena buffer %d aligned", i);
        if (b[i]) memset(b[i], i & 0xff, len[i]);
    }
    int bad = 0;
    for (int i = 0; i < N; i++)
        for (size_t k = 0; b[i] && k < len[i]; k += 997) bad += b[i][k] != (i & 0xff);
    CHECK(bad == 0, "arena buffers overlap (%d bytes overwritten)", bad);
    CHECK(a.n >= 7 && a.bytes >= 6 * (HN_ARENA_CHUNK / 2), "%d chunks, %zu bytes", a.n, a.bytes);
    hn_arena_free(&a);
    CHECK(a.n == 0 && a.bytes == 0 && !a.chunks, "arena reset");
    CHECK(hn_arena_alloc(&a, 10) != NULL, "arena usable after free");
    hn_arena_free(&a);
    return test_finish("test_mem");
}
