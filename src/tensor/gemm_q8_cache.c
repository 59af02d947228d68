/* gemm_q8_cache.c — which weights compute in Q8_0, and their Q8_0 copies.
 *
 * A caller marks address ranges (a model's parameter slab) as Q8_0 weights;
 * gemm_xwt_w asks gemm_q8_xwt_w first, which runs the product on the cached
 * Q8_0 copy of a weight inside such a range. The mark is per range, not per
 * process, so one server can run a Q8_0 GGUF in Q8_0 beside an f32 model in
 * f32, and a training run in the same process (whose weights are not marked)
 * never sees quantized weights.
 *
 * Copies are keyed like the bf16 weight cache (gemm_dnnl.c): (pointer, element
 * count, version), plus a fingerprint against a freed weight's address being
 * reused by another tensor of the same size and version: here W's first 16
 * values, one cache line, not 16 values sampled across W as the bf16 cache
 * does — those are 16 cache and TLB misses per product, measured at 0.3 ms of
 * a ~5 ms decode step for Llama-110M. (model_free clears the cache anyway.) A
 * stale version is re-quantized in place. Lookups start after the
 * previous hit: a forward pass asks for the same weights in the same order
 * every token, so the search is one comparison in the steady state.
 *
 * Memory: the copies live in an arena of huge-page chunks (base/mem.h, as
 * the bf16 copies). Decode streams every copy once per token,
 * and with 4 KB pages the TLB misses (two-level page walks in a VM) cost more
 * than the kernel: Llama-110M decode at 15 -> 24 GB/s on one core and
 * 24 -> 32 GB/s on two when the same copies sit on huge pages. Entries all go
 * together with gemm_q8_cache_clear; a stale entry is re-quantized in place.
 *
 * Locking: one mutex covers the ranges, the entries and the product itself
 * (like the oneDNN backend, concurrent products are serialised), so an entry
 * cannot be freed under a running product. The range count is also kept in an
 * atomic so that processes with no Q8_0 weights never take the lock. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "base/mem.h"
#include "tensor/gemm_q8.h"

enum { RANGES = 64, PRINT = 16, MAX_ENTRIES = 1 << 16 };

typedef struct q8_entry {
    const float *w;
    size_t n;
    int rows, cols;
    uint64_t version;
    float print[PRINT];
    uint8_t *u;
    uint16_t *d;
} q8_entry;

static struct {
    pthread_mutex_t mu;
    struct {
        uintptr_t base;
        size_t n;
    } ranges[RANGES];
    atomic_int n_ranges;
    q8_entry *e;
    int n, cap, hint;
    size_t bytes;
    hn_arena arena; /* the copies, freed together by gemm_q8_cache_clear */
} g_q8 = {.mu = PTHREAD_MUTEX_INITIALIZER};

bool gemm_q8_weights_add(const float *base, size_t n) {
    pthread_mutex_lock(&g_q8.mu);
    int k = atomic_load(&g_q8.n_ranges), i = 0;
    while (i < k && g_q8.ranges[i].base != (uintptr_t)base) i++;
    bool ok = i < RANGES;
    if (ok) {
        g_q8.ranges[i].base = (uintptr_t)base;
        g_q8.ranges[i].n = n; /* already there: the new extent wins */
        if (i == k) atomic_store(&g_q8.n_ranges, k + 1);
    }
    pthread_mutex_unlock(&g_q8.mu);
    return ok;
}

void gemm_q8_weights_remove(const float *base) {
    pthread_mutex_lock(&g_q8.mu);
    int k = atomic_load(&g_q8.n_ranges);
    for (int i = 0; i < k; i++)
        if (g_q8.ranges[i].base == (uintptr_t)base) {
            g_q8.ranges[i] = g_q8.ranges[k - 1];
            atomic_store(&g_q8.n_ranges, k - 1);
            break;
        }
    pthread_mutex_unlock(&g_q8.mu);
}

static bool covered_locked(const float *w, size_t n) {
    uintptr_t p = (uintptr_t)w;
    int k = atomic_load(&g_q8.n_ranges);
    for (int i = 0; i < k; i++) {
        uintptr_t b = g_q8.ranges[i].base;
        if (p >= b && (p - b) / sizeof(float) + n <= g_q8.ranges[i].n) return true;
    }
    return false;
}

static void fingerprint(float *out, const float *w) { memcpy(out, w, sizeof(float) * PRINT); }

/* Quantizes W's rows into e (rows are independent: split between threads). */
static void entry_fill(q8_entry *e, const float *w) {
    int rows = e->rows, cols = e->cols, nb = cols / GEMM_Q8_BLOCK;
    #pragma omp parallel for schedule(static) if (e->n > (1 << 18))
    for (int r = 0; r < rows; r++) {
        uint8_t *u = e->u + (size_t)r * cols;
        gemm_q8_quantize(w + (size_t)r * cols, (size_t)cols, e->d + (size_t)r * nb, (int8_t *)u);
        for (int j = 0; j < cols; j++) u[j] ^= 0x80; /* two's complement q -> q + 128 */
    }
}

/* W's entry at this version, quantized if missing or stale; NULL when out of
 * memory. Caller holds the lock. */
static q8_entry *entry_get_locked(const float *w, int rows, int cols, uint64_t version) {
    size_t n = (size_t)rows * cols;
    float print[PRINT];
    fingerprint(print, w);
    q8_entry *e = NULL;
    for (int k = 0; k < g_q8.n && !e; k++) {
        int i = (g_q8.hint + k) % g_q8.n;
        if (g_q8.e[i].w == w && g_q8.e[i].n == n && g_q8.e[i].cols == cols) {
            e = &g_q8.e[i];
            g_q8.hint = i + 1;
        }
    }
    if (e && e->version == version && !memcmp(e->print, print, sizeof print)) return e;
    if (!e) {
        if (g_q8.n == g_q8.cap) {
            if (g_q8.cap >= MAX_ENTRIES) return NULL;
            int cap = g_q8.cap ? 2 * g_q8.cap : 256;
            q8_entry *ne = realloc(g_q8.e, sizeof *ne * (size_t)cap);
            if (!ne) return NULL;
            g_q8.e = ne;
            g_q8.cap = cap;
        }
        e = &g_q8.e[g_q8.n];
        memset(e, 0, sizeof *e);
        e->u = hn_arena_alloc(&g_q8.arena, n);
        e->d = e->u ? hn_arena_alloc(&g_q8.arena, n / GEMM_Q8_BLOCK * sizeof(uint16_t)) : NULL;
        if (!e->d) return NULL; /* what was carved stays with the arena until the next clear */
        e->w = w;
        e->n = n;
        e->rows = rows;
        e->cols = cols;
        g_q8.bytes += n + n / GEMM_Q8_BLOCK * sizeof(uint16_t);
        g_q8.n++;
    }
    entry_fill(e, w);
    e->version = version;
    memcpy(e->print, print, sizeof print);
    return e;
}

static bool usable(int out, int in) { return out > 0 && in > 0 && in % GEMM_Q8_BLOCK == 0; }

bool gemm_q8_xwt_w(int T, int out, int in, const float *x, const float *W, uint64_t version,
                   float *y, bool accumulate) {
    if (atomic_load_explicit(&g_q8.n_ranges, memory_order_relaxed) == 0 || T <= 0 ||
        !usable(out, in))
        return false;
    pthread_mutex_lock(&g_q8.mu);
    bool ok = false;
    if (covered_locked(W, (size_t)out * in)) {
        q8_entry *e = entry_get_locked(W, out, in, version);
        gemm_q8_mat m = {out, in, e ? e->u : NULL, e ? e->d : NULL};
        ok = e && gemm_q8_xwt(T, x, &m, y, accumulate);
    }
    pthread_mutex_unlock(&g_q8.mu);
    return ok;
}

bool gemm_q8_cached_blocks(const float *W, int out, int in, uint64_t version, void *dst) {
    if (!usable(out, in)) return false;
    pthread_mutex_lock(&g_q8.mu);
    q8_entry *e = covered_locked(W, (size_t)out * in) ? entry_get_locked(W, out, in, version) : NULL;
    unsigned char *o = dst;
    for (size_t b = 0; e && b < e->n / GEMM_Q8_BLOCK; b++, o += 34) {
        o[0] = (unsigned char)(e->d[b] & 0xff);
        o[1] = (unsigned char)(e->d[b] >> 8);
        for (int j = 0; j < GEMM_Q8_BLOCK; j++)
            o[2 + j] = (unsigned char)(e->u[b * GEMM_Q8_BLOCK + (size_t)j] ^ 0x80);
    }
    pthread_mutex_unlock(&g_q8.mu);
    return e != NULL;
}

void gemm_q8_cache_clear(void) {
    pthread_mutex_lock(&g_q8.mu);
    hn_arena_free(&g_q8.arena);
    free(g_q8.e);
    g_q8.e = NULL;
    g_q8.n = g_q8.cap = g_q8.hint = 0;
    g_q8.bytes = 0;
    pthread_mutex_unlock(&g_q8.mu);
}

size_t gemm_q8_cache_bytes(void) {
    pthread_mutex_lock(&g_q8.mu);
    size_t b = g_q8.bytes;
    pthread_mutex_unlock(&g_q8.mu);
    return b;
}
