/* gemm_dnnl.c — the oneDNN GEMM backend: f32 and bf16 matmul primitives.
 *
 * A primitive is created once per (dtype, transposes, M, N, K, leading
 * dimensions, alpha, beta) and kept in a small cache, so the repeated shapes of
 * a training step (12 layers x the same 7 projections) pay creation only once;
 * each call only swaps data pointers and executes. alpha is an output scale and
 * beta a "sum" post-op, both fixed at creation. Only products of at least
 * EXACT_MIN multiply-adds seen twice get such a shape-specific primitive
 * (oneDNN's brgemm kernels, JIT-compiled per shape: ~0.5-2 ms and a few
 * hundred KB each); the rest run through one primitive per (dtype,
 * transposes, alpha, beta) with run-time dimensions (oneDNN's gemm:jit), so a
 * fine-tuning run whose sequence length changes every batch neither creates
 * primitives every step nor grows the process by hundreds of them.
 *
 * bf16: A and B are rounded (nearest-even) into bf16 scratch buffers on every
 * call (O(MK + KN) work against the product's O(MNK); one vcvtne2ps2bf16 per
 * 32 floats where the CPU has AVX512_BF16); accumulation and C stay f32. A
 * weight operand passed with a version (gemm_xwt_w/gemm_xw_w) is converted
 * once and its bf16 copy kept in the weight cache below until the version
 * changes. Products with a side under 64 (LoRA rank, decode GEMV) whose B is
 * not a cached weight run in f32: converting would cost more than the bf16
 * product saves.
 *
 * Threading: oneDNN runs its own OpenMP regions (same libgomp as hone). Calls
 * are serialised by one mutex (the cache and scratch buffers are shared). */
#include "tensor/gemm.h"

#ifdef HONE_HAVE_DNNL

#include <oneapi/dnnl/dnnl.h>

#include "base/mem.h"
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef struct dnnl_key {
    int bf16, ta, tb, M, N, K, lda, ldb, ldc; /* M..ldc all 0: run-time dimensions */
    float alpha, beta;
} dnnl_key;

enum { EXACT_MIN = 1 << 21, SEEN = 64 };

typedef struct dnnl_entry {
    dnnl_key key;
    dnnl_primitive_t prim;
    dnnl_memory_t a, b, c;
    bool used;
} dnnl_entry;

enum { DNNL_CACHE = 128 };

static struct {
    pthread_mutex_t mu;
    int state; /* 0 untried, 1 ready, -1 failed */
    dnnl_engine_t eng;
    dnnl_stream_t stream;
    dnnl_entry cache[DNNL_CACHE];
    int next_evict;
    uint16_t *abuf, *bbuf;
    size_t acap, bcap;
    dnnl_key seen[SEEN]; /* big shapes missed once: promoted on the next miss */
    int seen_next;
} g_dnnl = {.mu = PTHREAD_MUTEX_INITIALIZER};

static bool dnnl_init_locked(void) {
    if (g_dnnl.state == 0) {
        g_dnnl.state = -1;
        if (dnnl_engine_create(&g_dnnl.eng, dnnl_cpu, 0) != dnnl_success) return false;
        if (dnnl_stream_create(&g_dnnl.stream, g_dnnl.eng, dnnl_stream_default_flags) !=
            dnnl_success) {
            dnnl_engine_destroy(g_dnnl.eng);
            return false;
        }
        g_dnnl.state = 1;
    }
    return g_dnnl.state == 1;
}

bool gemm_dnnl_available(void) {
    pthread_mutex_lock(&g_dnnl.mu);
    bool ok = dnnl_init_locked();
    pthread_mutex_unlock(&g_dnnl.mu);
    return ok;
}

static void wcache_clear_locked(void);

static void entry_free(dnnl_entry *e) {
    if (!e->used) return;
    dnnl_primitive_destroy(e->prim);
    if (e->a) dnnl_memory_destroy(e->a);
    if (e->b) dnnl_memory_destroy(e->b);
    if (e->c) dnnl_memory_destroy(e->c);
    memset(e, 0, sizeof *e);
}

void gemm_dnnl_release(void) {
    pthread_mutex_lock(&g_dnnl.mu);
    for (int i = 0; i < DNNL_CACHE; i++) entry_free(&g_dnnl.cache[i]);
    free(g_dnnl.abuf);
    free(g_dnnl.bbuf);
    g_dnnl.abuf = g_dnnl.bbuf = NULL;
    g_dnnl.acap = g_dnnl.bcap = 0;
    wcache_clear_locked();
    pthread_mutex_unlock(&g_dnnl.mu);
}

/* Plain 2-D descriptor of rows x cols stored with element strides (rs, cs). */
static bool md_strided(dnnl_memory_desc_t *md, int64_t rows, int64_t cols, int64_t rs,
                       int64_t cs, dnnl_data_type_t dt) {
    dnnl_dims_t dims = {rows, cols}, strides = {rs, cs};
    return dnnl_memory_desc_init_by_strides(md, 2, dims, dt, strides) == dnnl_success;
}

/* The three descriptors of a product; with rt, every dimension and leading
 * dimension is DNNL_RUNTIME_DIM_VAL. op(A) (M,K): A stored (M,K) with lda, or
 * (K,M) with lda when transposed. */
static bool key_mds(const dnnl_key *k, bool rt, dnnl_memory_desc_t *amd, dnnl_memory_desc_t *bmd,
                    dnnl_memory_desc_t *cmd) {
    dnnl_data_type_t dt = k->bf16 ? dnnl_bf16 : dnnl_f32;
    int64_t R = DNNL_RUNTIME_DIM_VAL, M = rt ? R : k->M, N = rt ? R : k->N, K = rt ? R : k->K;
    int64_t lda = rt ? R : k->lda, ldb = rt ? R : k->ldb, ldc = rt ? R : k->ldc;
    return md_strided(amd, M, K, k->ta ? 1 : lda, k->ta ? lda : 1, dt) &&
           md_strided(bmd, K, N, k->tb ? 1 : ldb, k->tb ? ldb : 1, dt) &&
           md_strided(cmd, M, N, ldc, 1, dnnl_f32);
}

static bool entry_create(dnnl_entry *e, const dnnl_key *k) {
    bool rt = k->M == 0;
    dnnl_memory_desc_t amd, bmd, cmd;
    bool ok = key_mds(k, rt, &amd, &bmd, &cmd);
    if (!ok) return false;
    dnnl_matmul_desc_t desc;
    if (dnnl_matmul_desc_init(&desc, &amd, &bmd, NULL, &cmd) != dnnl_success) return false;
    dnnl_primitive_attr_t attr = NULL;
    dnnl_post_ops_t po = NULL;
    dnnl_primitive_desc_t pd = NULL;
    ok = dnnl_primitive_attr_create(&attr) == dnnl_success;
    if (ok && k->alpha != 1.0f)
        ok = dnnl_primitive_attr_set_output_scales(attr, 1, 0, &k->alpha) == dnnl_success;
    if (ok && k->beta != 0.0f) {
        ok = dnnl_post_ops_create(&po) == dnnl_success &&
             dnnl_post_ops_append_sum(po, k->beta) == dnnl_success &&
             dnnl_primitive_attr_set_post_ops(attr, po) == dnnl_success;
    }
    if (ok) ok = dnnl_primitive_desc_create(&pd, &desc, attr, g_dnnl.eng, NULL) == dnnl_success;
    if (ok) ok = dnnl_primitive_create(&e->prim, pd) == dnnl_success;
    if (po) dnnl_post_ops_destroy(po);
    if (attr) dnnl_primitive_attr_destroy(attr);
    if (pd) dnnl_primitive_desc_destroy(pd);
    if (!ok) return false;
    e->a = e->b = e->c = NULL;
    if (rt) { /* memory objects are made per call, with the call's dimensions */
        e->key = *k;
        e->used = true;
        return true;
    }
    if (dnnl_memory_create(&e->a, &amd, g_dnnl.eng, DNNL_MEMORY_NONE) != dnnl_success ||
        dnnl_memory_create(&e->b, &bmd, g_dnnl.eng, DNNL_MEMORY_NONE) != dnnl_success ||
        dnnl_memory_create(&e->c, &cmd, g_dnnl.eng, DNNL_MEMORY_NONE) != dnnl_success) {
        dnnl_primitive_destroy(e->prim);
        if (e->a) dnnl_memory_destroy(e->a);
        if (e->b) dnnl_memory_destroy(e->b);
        if (e->c) dnnl_memory_destroy(e->c);
        return false;
    }
    e->key = *k;
    e->used = true;
    return true;
}

static dnnl_entry *cache_find(const dnnl_key *k) {
    for (int i = 0; i < DNNL_CACHE; i++)
        if (g_dnnl.cache[i].used && !memcmp(&g_dnnl.cache[i].key, k, sizeof *k))
            return &g_dnnl.cache[i];
    return NULL;
}

static dnnl_entry *cache_get(const dnnl_key *k) {
    dnnl_entry *e = cache_find(k);
    if (e) return e;
    for (int i = 0; i < DNNL_CACHE && !e; i++)
        if (!g_dnnl.cache[i].used) e = &g_dnnl.cache[i];
    if (!e) {
        e = &g_dnnl.cache[g_dnnl.next_evict];
        g_dnnl.next_evict = (g_dnnl.next_evict + 1) % DNNL_CACHE;
        entry_free(e);
    }
    return entry_create(e, k) ? e : NULL;
}

/* ---- f32 -> bf16 conversion ---- */

static inline uint16_t f32_to_bf16(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40); /* quiet NaN */
    u += 0x7fffu + ((u >> 16) & 1u);
    return (uint16_t)(u >> 16);
}

static void row_to_bf16_c(uint16_t *d, const float *s, int n) {
    for (int j = 0; j < n; j++) d[j] = f32_to_bf16(s[j]);
}

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
/* Same rounding as f32_to_bf16 (nearest-even, NaN stays NaN); the
 * instruction also flushes denormal inputs to zero, far below bf16's use. */
__attribute__((target("avx512f,avx512bw,avx512vl,avx512bf16")))
static void row_to_bf16_avx512(uint16_t *d, const float *s, int n) {
    int j = 0;
    for (; j + 32 <= n; j += 32) {
        __m512bh v = _mm512_cvtne2ps_pbh(_mm512_loadu_ps(s + j + 16), _mm512_loadu_ps(s + j));
        _mm512_storeu_si512(d + j, (__m512i)v);
    }
    for (; j < n; j += 16) {
        __mmask16 m = n - j >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (n - j)) - 1);
        __m256bh v = _mm512_cvtneps_pbh(_mm512_maskz_loadu_ps(m, s + j));
        _mm256_mask_storeu_epi16(d + j, m, (__m256i)v);
    }
}
#endif

static void (*row_to_bf16(void))(uint16_t *, const float *, int) {
#if defined(__x86_64__) && defined(__GNUC__)
    if (__builtin_cpu_supports("avx512bf16")) return row_to_bf16_avx512;
#endif
    return row_to_bf16_c;
}

/* Rounds a rows x cols block (leading dimension ld) into dst, packed with
 * leading dimension cols. */
static void convert_bf16(uint16_t *dst, const float *src, int rows, int cols, int ld) {
    void (*conv)(uint16_t *, const float *, int) = row_to_bf16();
    #pragma omp parallel for schedule(static) if ((long)rows * cols > 1 << 17)
    for (int i = 0; i < rows; i++) conv(dst + (size_t)i * cols, src + (size_t)i * ld, cols);
}

void gemm_round_bf16(uint16_t *dst, const float *src, size_t n) {
    void (*conv)(uint16_t *, const float *, int) = row_to_bf16();
    const size_t chunk = 1 << 16;
    #pragma omp parallel for schedule(static) if (n > chunk)
    for (size_t i = 0; i < n; i += chunk) conv(dst + i, src + i, (int)(n - i < chunk ? n - i : chunk));
}

/* ---- the weight cache: bf16 copies of versioned weights ----
 * Keyed by (pointer, element count, version). A fingerprint of 16 sampled
 * values guards against a freed weight's address being reused by another
 * tensor with the same size and version (a new model in the same process);
 * callers that free weights should still call gemm_weight_cache_clear. */

enum { WCACHE = 512, WPRINT = 16 };

typedef struct wentry {
    const float *w;
    size_t n, cap; /* elements: in use, and the buffer's room (kept on eviction) */
    uint64_t version;
    float print[WPRINT];
    uint16_t *bf16;
} wentry;

/* Copies live in an arena of huge-page chunks (base/mem.h): a decode step
 * streams every copy once, and through 4 KB pages TLB misses limited it. */
static struct {
    wentry e[WCACHE];
    int next_evict;
    int hint; /* the entry after the last hit: products come in the same order */
    size_t bytes;
    hn_arena arena;
} g_wc;

static void fingerprint(float *out, const float *w, size_t n) {
    for (int i = 0; i < WPRINT; i++) out[i] = w[(size_t)((double)i / WPRINT * n)];
}

/* The bf16 copy of W (n floats) at this version, converted if missing or
 * stale; NULL on allocation failure. Caller holds g_dnnl.mu. */
static const uint16_t *wcache_get_locked(const float *w, size_t n, uint64_t version) {
    float print[WPRINT];
    fingerprint(print, w, n);
    wentry *e = NULL, *free_e = NULL;
    for (int k = 0; k < WCACHE && !e; k++) {
        int i = (g_wc.hint + k) % WCACHE;
        if (g_wc.e[i].w == w && g_wc.e[i].n == n) e = &g_wc.e[i];
        else if (!g_wc.e[i].w && !free_e) free_e = &g_wc.e[i];
    }
    if (e) g_wc.hint = (int)(e - g_wc.e + 1) % WCACHE;
    if (e && e->version == version && !memcmp(e->print, print, sizeof print)) return e->bf16;
    if (!e) {
        e = free_e;
        if (!e) { /* full: evict round-robin; its buffer is reused if big enough */
            e = &g_wc.e[g_wc.next_evict];
            g_wc.next_evict = (g_wc.next_evict + 1) % WCACHE;
            g_wc.bytes -= e->n * sizeof(uint16_t);
            e->w = NULL;
        }
        if (e->cap < n) {
            e->bf16 = hn_arena_alloc(&g_wc.arena, n * sizeof(uint16_t));
            e->cap = e->bf16 ? n : 0;
            if (!e->bf16) return NULL;
        }
        e->w = w;
        e->n = n;
        g_wc.bytes += n * sizeof(uint16_t);
    }
    gemm_round_bf16(e->bf16, w, n);
    e->version = version;
    memcpy(e->print, print, sizeof print);
    return e->bf16;
}

const uint16_t *gemm_dnnl_weight_bf16(const float *w, size_t n, uint64_t version) {
    pthread_mutex_lock(&g_dnnl.mu);
    const uint16_t *p = wcache_get_locked(w, n, version);
    pthread_mutex_unlock(&g_dnnl.mu);
    return p;
}

static void wcache_clear_locked(void) {
    hn_arena_free(&g_wc.arena);
    memset(&g_wc, 0, sizeof g_wc);
}

void gemm_dnnl_cache_clear(void) {
    pthread_mutex_lock(&g_dnnl.mu);
    wcache_clear_locked();
    pthread_mutex_unlock(&g_dnnl.mu);
}

size_t gemm_dnnl_cache_bytes(void) {
    pthread_mutex_lock(&g_dnnl.mu);
    size_t b = g_wc.bytes;
    pthread_mutex_unlock(&g_dnnl.mu);
    return b;
}

static bool grow(uint16_t **buf, size_t *cap, size_t n) {
    if (n <= *cap) return true;
    uint16_t *p = realloc(*buf, n * sizeof *p);
    if (!p) return false;
    *buf = p;
    *cap = n;
    return true;
}

/* Whether a product with no exact primitive yet should get one: big enough,
 * and missed once before (a shape that recurs, not a one-off length). */
static bool exact_wanted(const dnnl_key *k) {
    if ((double)k->M * k->N * k->K < EXACT_MIN) return false;
    for (int i = 0; i < SEEN; i++)
        if (!memcmp(&g_dnnl.seen[i], k, sizeof *k)) return true;
    g_dnnl.seen[g_dnnl.seen_next] = *k;
    g_dnnl.seen_next = (g_dnnl.seen_next + 1) % SEEN;
    return false;
}

static bool execute(dnnl_primitive_t prim, dnnl_memory_t a, dnnl_memory_t b, dnnl_memory_t c) {
    dnnl_exec_arg_t args[3] = {{DNNL_ARG_SRC, a}, {DNNL_ARG_WEIGHTS, b}, {DNNL_ARG_DST, c}};
    return dnnl_primitive_execute(prim, g_dnnl.stream, 3, args) == dnnl_success &&
           dnnl_stream_wait(g_dnnl.stream) == dnnl_success;
}

static bool run_exact(dnnl_entry *e, const void *ap, const void *bp, float *C) {
    return dnnl_memory_set_data_handle(e->a, (void *)ap) == dnnl_success &&
           dnnl_memory_set_data_handle(e->b, (void *)bp) == dnnl_success &&
           dnnl_memory_set_data_handle(e->c, C) == dnnl_success && execute(e->prim, e->a, e->b, e->c);
}

/* Through the run-time-dimension primitive of (dtype, transposes, alpha, beta),
 * with memory objects made for this call's dimensions. */
static bool run_runtime(const dnnl_key *k, const void *ap, const void *bp, float *C) {
    dnnl_key rk = {k->bf16, k->ta, k->tb, 0, 0, 0, 0, 0, 0, k->alpha, k->beta};
    dnnl_entry *e = cache_get(&rk);
    dnnl_memory_desc_t amd, bmd, cmd;
    if (!e || !key_mds(k, false, &amd, &bmd, &cmd)) return false;
    dnnl_memory_t a = NULL, b = NULL, c = NULL;
    bool ok = dnnl_memory_create(&a, &amd, g_dnnl.eng, (void *)ap) == dnnl_success &&
              dnnl_memory_create(&b, &bmd, g_dnnl.eng, (void *)bp) == dnnl_success &&
              dnnl_memory_create(&c, &cmd, g_dnnl.eng, C) == dnnl_success &&
              execute(e->prim, a, b, c);
    if (a) dnnl_memory_destroy(a);
    if (b) dnnl_memory_destroy(b);
    if (c) dnnl_memory_destroy(c);
    return ok;
}

bool gemm_dnnl_run(bool bf16, bool ta, bool tb, int M, int N, int K, float alpha, const float *A,
                   int lda, const float *B, int ldb, float beta, float *C, int ldc) {
    return gemm_dnnl_run_w(bf16, ta, tb, M, N, K, alpha, A, lda, B, ldb, 0, false, beta, C, ldc);
}

bool gemm_dnnl_run_w(bool bf16, bool ta, bool tb, int M, int N, int K, float alpha,
                     const float *A, int lda, const float *B, int ldb, uint64_t b_version,
                     bool b_cached, float beta, float *C, int ldc) {
    pthread_mutex_lock(&g_dnnl.mu);
    bool ok = dnnl_init_locked();
    const void *ap = A, *bp = B;
    /* stored shapes: A (ta ? K : M, ta ? M : K), B (tb ? N : K, tb ? K : N) */
    int ar = ta ? K : M, ac = ta ? M : K, br = tb ? N : K, bc = tb ? K : N;
    const uint16_t *wb = NULL;
    if (ok && bf16 && b_cached && bc == ldb) wb = wcache_get_locked(B, (size_t)br * bc, b_version);
    if (!wb && (M < 64 || N < 64 || K < 64)) bf16 = false; /* conversion would dominate */
    if (ok && bf16) {
        ok = grow(&g_dnnl.abuf, &g_dnnl.acap, (size_t)ar * ac) &&
             (wb || grow(&g_dnnl.bbuf, &g_dnnl.bcap, (size_t)br * bc));
        if (ok) {
            convert_bf16(g_dnnl.abuf, A, ar, ac, lda);
            if (!wb) convert_bf16(g_dnnl.bbuf, B, br, bc, ldb);
            ap = g_dnnl.abuf;
            bp = wb ? wb : g_dnnl.bbuf;
            lda = ac;
            ldb = bc;
        }
    }
    if (ok) {
        dnnl_key k = {bf16, ta, tb, M, N, K, lda, ldb, ldc, alpha, beta};
        dnnl_entry *e = cache_find(&k);
        if (!e && exact_wanted(&k)) e = cache_get(&k);
        ok = e ? run_exact(e, ap, bp, C) : run_runtime(&k, ap, bp, C);
    }
    pthread_mutex_unlock(&g_dnnl.mu);
    return ok;
}

#else /* !HONE_HAVE_DNNL */

#include <string.h>

bool gemm_dnnl_available(void) { return false; }
void gemm_dnnl_release(void) {}
bool gemm_dnnl_run(bool bf16, bool ta, bool tb, int M, int N, int K, float alpha, const float *A,
                   int lda, const float *B, int ldb, float beta, float *C, int ldc) {
    (void)bf16, (void)ta, (void)tb, (void)M, (void)N, (void)K, (void)alpha, (void)A;
    (void)lda, (void)B, (void)ldb, (void)beta, (void)C, (void)ldc;
    return false;
}
bool gemm_dnnl_run_w(bool bf16, bool ta, bool tb, int M, int N, int K, float alpha,
                     const float *A, int lda, const float *B, int ldb, uint64_t b_version,
                     bool b_cached, float beta, float *C, int ldc) {
    (void)b_version, (void)b_cached;
    return gemm_dnnl_run(bf16, ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}
void gemm_dnnl_cache_clear(void) {}
size_t gemm_dnnl_cache_bytes(void) { return 0; }
const uint16_t *gemm_dnnl_weight_bf16(const float *w, size_t n, uint64_t version) {
    (void)w, (void)n, (void)version;
    return NULL;
}
void gemm_round_bf16(uint16_t *dst, const float *src, size_t n) {
    for (size_t i = 0; i < n; i++) {
        uint32_t u;
        memcpy(&u, &src[i], 4);
        if ((u & 0x7fffffffu) > 0x7f800000u) dst[i] = (uint16_t)((u >> 16) | 0x40);
        else dst[i] = (uint16_t)((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
    }
}

#endif
