/* rng.h — a small, seedable, serialisable random generator (PCG32).
 * Its whole state is two u64s so checkpoints can store and restore it. */
#ifndef HN_RNG_H
#define HN_RNG_H

#include <stdint.h>

typedef struct hn_rng {
    uint64_t state, inc;
} hn_rng;

void hn_rng_seed(hn_rng *r, uint64_t seed);
uint32_t hn_rng_u32(hn_rng *r);
/* uniform in [0, 1) with 24 random bits */
float hn_rng_uniform(hn_rng *r);
/* uniform integer in [0, n) without modulo bias; n > 0 */
uint32_t hn_rng_below(hn_rng *r, uint32_t n);
float hn_rng_normal(hn_rng *r);

#endif
