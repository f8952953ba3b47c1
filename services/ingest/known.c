/* SPDX-License-Identifier: Apache-2.0 */
/* Assets a worker has recently added to twin:assets: an open-addressing set of id hashes, emptied every ttl. */
#include "known.h"

#include <stdlib.h>
#include <string.h>

#include "twin/err.h"

#define KNOWN_MIN_SLOTS 1024

struct ingest_known {
    uint64_t *slot; /* 0: empty */
    size_t cap;     /* a power of two */
    size_t count;
    size_t max_entries;
    int64_t ttl_ms;
    int64_t period_start_ms;
};

/* FNV-1a, 64 bits; 0 is kept for empty slots. A collision would only delay one asset's SADD
 * to the next period. */
static uint64_t known_hash(const char *s)
{
    uint64_t h = 1469598103934665603ULL;
    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 1099511628211ULL;
    }
    return h ? h : 1;
}

int ingest_known_create(size_t max_entries, int64_t ttl_ms, struct ingest_known **out)
{
    struct ingest_known *k = calloc(1, sizeof(*k));
    if (!k)
        return TW_ENOMEM;
    k->cap = KNOWN_MIN_SLOTS;
    k->slot = calloc(k->cap, sizeof(*k->slot));
    if (!k->slot) {
        free(k);
        return TW_ENOMEM;
    }
    k->max_entries = max_entries < KNOWN_MIN_SLOTS / 2 ? KNOWN_MIN_SLOTS / 2 : max_entries;
    k->ttl_ms = ttl_ms;
    *out = k;
    return 0;
}

void ingest_known_destroy(struct ingest_known *k)
{
    if (!k)
        return;
    free(k->slot);
    free(k);
}

void ingest_known_clear(struct ingest_known *k, int64_t now_ms)
{
    memset(k->slot, 0, k->cap * sizeof(*k->slot));
    k->count = 0;
    k->period_start_ms = now_ms;
}

static size_t known_find(const struct ingest_known *k, uint64_t h)
{
    size_t i = (size_t)h & (k->cap - 1);
    while (k->slot[i] && k->slot[i] != h)
        i = (i + 1) & (k->cap - 1);
    return i;
}

bool ingest_known_has(struct ingest_known *k, const char *asset, int64_t now_ms)
{
    if (now_ms - k->period_start_ms >= k->ttl_ms || now_ms < k->period_start_ms)
        ingest_known_clear(k, now_ms);
    uint64_t h = known_hash(asset);
    return k->slot[known_find(k, h)] == h;
}

/* Doubles the table; false when memory is short (the set then stays as it is). */
static bool known_grow(struct ingest_known *k)
{
    size_t cap = k->cap * 2;
    uint64_t *slot = calloc(cap, sizeof(*slot));
    if (!slot)
        return false;
    uint64_t *old = k->slot;
    size_t old_cap = k->cap;
    k->slot = slot;
    k->cap = cap;
    for (size_t i = 0; i < old_cap; i++)
        if (old[i])
            k->slot[known_find(k, old[i])] = old[i];
    free(old);
    return true;
}

void ingest_known_add(struct ingest_known *k, const char *asset, int64_t now_ms)
{
    uint64_t h = known_hash(asset);
    if (k->slot[known_find(k, h)] == h)
        return;
    if (k->count >= k->max_entries)
        ingest_known_clear(k, now_ms);
    if ((k->count + 1) * 2 > k->cap && !known_grow(k))
        ingest_known_clear(k, now_ms);
    k->slot[known_find(k, h)] = h;
    k->count++;
}

size_t ingest_known_count(const struct ingest_known *k)
{
    return k->count;
}
