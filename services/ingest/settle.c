/* SPDX-License-Identifier: Apache-2.0 */
/* A small locked table of assets waiting for their settle republish (see settle.h). */
#include "settle.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "twin/err.h"

struct settle_entry {
    char asset[TW_NAME_MAX + 1];
    int64_t due_ms;
};

/* Entries exist only for assets updated in quick succession, and only for the settle delay,
 * so the table stays short and a linear scan is cheaper than hashing. */
struct ingest_settle {
    pthread_mutex_t lock;
    size_t n, cap;
    struct settle_entry *entries;
};

int ingest_settle_create(size_t capacity, struct ingest_settle **out)
{
    struct ingest_settle *s = calloc(1, sizeof(*s));
    if (!s)
        return TW_ENOMEM;
    s->entries = calloc(capacity, sizeof(*s->entries));
    if (!s->entries) {
        free(s);
        return TW_ENOMEM;
    }
    s->cap = capacity;
    pthread_mutex_init(&s->lock, NULL);
    *out = s;
    return 0;
}

void ingest_settle_destroy(struct ingest_settle *s)
{
    if (!s)
        return;
    pthread_mutex_destroy(&s->lock);
    free(s->entries);
    free(s);
}

int ingest_settle_note(struct ingest_settle *s, const char *asset, int64_t due_ms)
{
    int noted = 0;
    pthread_mutex_lock(&s->lock);
    for (size_t i = 0; i < s->n; i++) {
        if (strcmp(s->entries[i].asset, asset) == 0) {
            s->entries[i].due_ms = due_ms;
            noted = 1;
            break;
        }
    }
    if (!noted && s->n < s->cap && strlen(asset) <= TW_NAME_MAX) {
        strcpy(s->entries[s->n].asset, asset);
        s->entries[s->n++].due_ms = due_ms;
        noted = 1;
    }
    pthread_mutex_unlock(&s->lock);
    return noted;
}

size_t ingest_settle_take_due(struct ingest_settle *s, int64_t now_ms, char (*out)[TW_NAME_MAX + 1],
                              size_t max)
{
    size_t taken = 0, kept = 0;
    pthread_mutex_lock(&s->lock);
    for (size_t i = 0; i < s->n; i++) {
        if (s->entries[i].due_ms <= now_ms && taken < max)
            memcpy(out[taken++], s->entries[i].asset, TW_NAME_MAX + 1);
        else
            s->entries[kept++] = s->entries[i];
    }
    s->n = kept;
    pthread_mutex_unlock(&s->lock);
    return taken;
}
