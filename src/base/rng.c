/* rng.c — PCG32 (O'Neill), XSH-RR output. */
#include "base/rng.h"

#include <math.h>

void hn_rng_seed(hn_rng *r, uint64_t seed) {
    r->state = 0;
    r->inc = (seed << 1) | 1u;
    hn_rng_u32(r);
    r->state += 0x853c49e6748fea9bULL ^ seed;
    hn_rng_u32(r);
}

uint32_t hn_rng_u32(hn_rng *r) {
    uint64_t old = r->state;
    r->state = old * 6364136223846793005ULL + r->inc;
    uint32_t xs = (uint32_t)(((old >> 18u) ^ old) >> 27u);
    uint32_t rot = (uint32_t)(old >> 59u);
    return (xs >> rot) | (xs << ((-rot) & 31));
}

float hn_rng_uniform(hn_rng *r) { return (float)(hn_rng_u32(r) >> 8) / 16777216.0f; }

uint32_t hn_rng_below(hn_rng *r, uint32_t n) {
    uint32_t threshold = (uint32_t)(-n) % n;
    for (;;) {
        uint32_t x = hn_rng_u32(r);
        if (x >= threshold) return x % n;
    }
}

float hn_rng_normal(hn_rng *r) {
    float u1 = hn_rng_uniform(r), u2 = hn_rng_uniform(r);
    if (u1 < 1e-7f) u1 = 1e-7f;
    return sqrtf(-2.0f * logf(u1)) * cosf(6.28318530718f * u2);
}
