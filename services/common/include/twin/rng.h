/* SPDX-License-Identifier: Apache-2.0 */
/* Reproducible pseudo-random numbers for simulations: xoshiro256** (Blackman and Vigna) seeded
 * through splitmix64, header-only so that hot loops inline it. Not for secrets. */
#ifndef TWIN_RNG_H
#define TWIN_RNG_H

#include <stdint.h>

struct tw_rng {
    uint64_t s[4];
};

/* splitmix64: advances *x and returns its next output; also a good 64-bit mixer. */
static inline uint64_t tw_splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

/* The state from four splitmix64 outputs of `mix`: any 64-bit value is a good seed. */
static inline void tw_rng_seed(struct tw_rng *r, uint64_t mix)
{
    for (int i = 0; i < 4; i++)
        r->s[i] = tw_splitmix64(&mix);
}

static inline uint64_t tw_rng_rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

static inline uint64_t tw_rng_next(struct tw_rng *r)
{
    uint64_t *s = r->s;
    uint64_t result = tw_rng_rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = tw_rng_rotl(s[3], 45);
    return result;
}

/* Uniform in [0, 1), 53 random bits. */
static inline double tw_rng_uniform(struct tw_rng *r)
{
    return (double)(tw_rng_next(r) >> 11) * 0x1.0p-53;
}

/* Uniform in (0, 1): never 0 (nor 1), so log() of it is finite. */
static inline double tw_rng_open(struct tw_rng *r)
{
    return ((double)(tw_rng_next(r) >> 11) + 0.5) * 0x1.0p-53;
}

#endif
