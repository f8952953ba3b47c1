/* SPDX-License-Identifier: Apache-2.0 */
/* Plant model loading, storage and lookups; the schema walk itself is in model_check.c. */
#include "twin/model.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <stdalign.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model_internal.h"
#include "twin/err.h"

#define BLOCK_MIN (64u * 1024u)
#define ALIGN     16u

/* One chunk of the arena. Everything a model owns lives in a few of these, so freeing a model
 * of 100,000 assets is a short walk, not 300,000 free() calls. */
struct model_block {
    struct model_block *next;
    size_t used, cap;
    alignas(ALIGN) unsigned char data[];
};

void *model_alloc(struct tw_model *m, size_t size)
{
    if (size > SIZE_MAX / 2)
        return NULL;
    size = (size + ALIGN - 1) & ~(size_t)(ALIGN - 1);
    struct model_block *b = m->blocks;
    if (!b || b->cap - b->used < size) {
        size_t cap = size > BLOCK_MIN ? size : BLOCK_MIN;
        b = calloc(1, sizeof *b + cap);
        if (!b)
            return NULL;
        b->cap = cap;
        b->next = m->blocks;
        m->blocks = b;
    }
    void *p = b->data + b->used;
    b->used += size;
    return p;
}

char *model_strdup(struct tw_model *m, const char *s)
{
    size_t n = strlen(s) + 1;
    char *copy = model_alloc(m, n);
    if (copy)
        memcpy(copy, s, n);
    return copy;
}

/* FNV-1a: short ids, no adversary who could pick colliding ids that the model's author would
 * not notice (the model is configuration, not wire input). */
static uint64_t hash_id(const char *s)
{
    uint64_t h = 14695981039346656037ull;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

int model_index_init(struct tw_model *m, size_t max_assets)
{
    size_t n = 8;
    while (n < 2 * max_assets)
        n *= 2;
    free(m->slots);
    m->slots = calloc(n, sizeof *m->slots);
    m->n_slots = m->slots ? n : 0;
    return m->slots ? 0 : TW_ENOMEM;
}

/* The slot holding id, or the empty slot where it would go. The table is at most half full, so
 * probing ends. */
static size_t find_slot(const struct tw_model *m, const char *id)
{
    size_t mask = m->n_slots - 1;
    size_t i = (size_t)hash_id(id) & mask;
    while (m->slots[i] != 0 && strcmp(m->assets[m->slots[i] - 1].id, id) != 0)
        i = (i + 1) & mask;
    return i;
}

bool model_index_add(struct tw_model *m, size_t i)
{
    size_t slot = find_slot(m, m->assets[i].id);
    if (m->slots[slot] != 0)
        return false;
    m->slots[slot] = (uint32_t)(i + 1);
    return true;
}

void tw_model_free(struct tw_model *m)
{
    if (!m)
        return;
    struct model_block *b = m->blocks;
    while (b) {
        struct model_block *next = b->next;
        free(b);
        b = next;
    }
    free(m->slots);
    free(m);
}

int tw_model_load_buffer(const char *buf, size_t len, struct tw_model **out,
                         struct tw_model_errors *errs)
{
    *out = NULL;
    cJSON *root = NULL;
    int rc = tw_model_parse_text(buf, len, &root, errs);
    struct tw_model *m = rc == 0 ? calloc(1, sizeof *m) : NULL;
    if (rc == 0 && !m)
        rc = TW_ENOMEM;
    if (rc == 0) {
        long n = model_check(root, m, errs);
        rc = n < 0 ? TW_ENOMEM : n > 0 ? TW_EINVAL : 0;
    }
    cJSON_Delete(root);
    if (rc != 0) {
        tw_model_free(m);
        return rc;
    }
    if (!m->plant)
        m->plant = "";
    *out = m;
    return 0;
}

int tw_model_load_file(const char *path, struct tw_model **out, struct tw_model_errors *errs)
{
    char *buf = NULL;
    size_t len = 0;
    *out = NULL;
    int rc = tw_model_read_file(path, &buf, &len, errs);
    if (rc != 0)
        return rc;
    rc = tw_model_load_buffer(buf, len, out, errs);
    free(buf);
    return rc;
}

const char *tw_model_plant(const struct tw_model *m)
{
    return m->plant;
}

bool tw_model_reject_unknown_assets(const struct tw_model *m)
{
    return m->reject_unknown_assets;
}

const struct tw_model_asset *tw_model_asset(const struct tw_model *m, const char *id)
{
    if (m->n_slots == 0 || !id)
        return NULL;
    uint32_t slot = m->slots[find_slot(m, id)];
    return slot ? &m->assets[slot - 1] : NULL;
}

bool tw_model_has_asset(const struct tw_model *m, const char *id)
{
    return tw_model_asset(m, id) != NULL;
}

static int kind_key_cmp(const void *key, const void *elem)
{
    return strcmp(key, ((const struct tw_model_kind *)elem)->name);
}

static int signal_key_cmp(const void *key, const void *elem)
{
    return strcmp(key, ((const struct tw_model_signal *)elem)->name);
}

const struct tw_model_kind *tw_model_kind(const struct tw_model *m, const char *name)
{
    if (!m->kinds || !name)
        return NULL;
    return bsearch(name, m->kinds, m->n_kinds, sizeof *m->kinds, kind_key_cmp);
}

const struct tw_model_signal *tw_model_signal(const struct tw_model_kind *kind, const char *name)
{
    if (!kind || !kind->signals || !name)
        return NULL;
    return bsearch(name, kind->signals, kind->n_signals, sizeof *kind->signals, signal_key_cmp);
}

const struct tw_model_signal *tw_model_asset_signal(const struct tw_model *m, const char *asset,
                                                    const char *name)
{
    const struct tw_model_asset *a = tw_model_asset(m, asset);
    return a ? tw_model_signal(a->kind, name) : NULL;
}

size_t tw_model_asset_count(const struct tw_model *m)
{
    return m->n_assets;
}

const struct tw_model_asset *tw_model_asset_at(const struct tw_model *m, size_t i)
{
    return i < m->n_assets ? &m->assets[i] : NULL;
}

size_t tw_model_kind_count(const struct tw_model *m)
{
    return m->n_kinds;
}

const struct tw_model_kind *tw_model_kind_at(const struct tw_model *m, size_t i)
{
    return i < m->n_kinds ? &m->kinds[i] : NULL;
}

/* Milliseconds per unit at *p ("ms" before "m"), advancing *p; 0 for an unknown unit. */
static int64_t unit_ms(const char **p)
{
    static const struct {
        const char *name;
        int64_t ms;
    } units[] = {{"ms", 1},      {"s", 1000},     {"m", 60000},
                 {"h", 3600000}, {"d", 86400000}, {"w", 604800000}};
    for (size_t i = 0; i < sizeof units / sizeof units[0]; i++) {
        size_t n = strlen(units[i].name);
        if (strncmp(*p, units[i].name, n) == 0) {
            *p += n;
            return units[i].ms;
        }
    }
    return 0;
}

int tw_model_parse_duration(const char *text, int64_t *ms)
{
    if (!text || !*text)
        return TW_EINVAL;
    int64_t total = 0;
    for (const char *p = text; *p;) {
        if (*p < '0' || *p > '9')
            return TW_EINVAL;
        int64_t n = 0;
        for (; *p >= '0' && *p <= '9'; p++) {
            n = n * 10 + (*p - '0');
            if (n > TW_MODEL_SEASON_MAX_MS)
                return TW_EINVAL;
        }
        int64_t unit = unit_ms(&p);
        if (unit == 0 || n > (TW_MODEL_SEASON_MAX_MS - total) / unit)
            return TW_EINVAL;
        total += n * unit;
    }
    if (total == 0)
        return TW_EINVAL;
    *ms = total;
    return 0;
}

int tw_model_load_reporting(const char *program, const char *path, struct tw_model **out)
{
    struct tw_model_errors errs;
    char line[sizeof(struct tw_model_error) + 4]; /* "path: message", never cut */
    *out = NULL;
    if (!path || !path[0])
        return 0;
    tw_model_errors_init(&errs);
    int rc = tw_model_load_file(path, out, &errs);
    for (size_t i = 0; i < errs.count; i++) {
        tw_model_error_format(&errs.items[i], line, sizeof(line));
        fprintf(stderr, "%s: %s: %s\n", program, path, line);
    }
    if (errs.total > errs.count)
        fprintf(stderr, "%s: %s: %zu more errors\n", program, path, errs.total - errs.count);
    tw_model_errors_free(&errs);
    return rc;
}
