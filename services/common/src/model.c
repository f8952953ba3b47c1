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

/* Reports a JSON syntax error at its line and column. */
static int syntax_error(const char *text, size_t len, const char *at, struct tw_model_errors *errs,
                        const char *what)
{
    size_t pos = at && at >= text && at <= text + len ? (size_t)(at - text) : 0;
    size_t line = 1, col = 1;
    for (size_t i = 0; i < pos; i++, col++)
        if (text[i] == '\n') {
            line++;
            col = 0;
        }
    char msg[128];
    snprintf(msg, sizeof msg, "%s at line %zu, column %zu", what, line, col);
    return tw_model_errors_add(errs, "$", msg) == 0 ? TW_EINVAL : TW_ENOMEM;
}

static int fail_whole(struct tw_model_errors *errs, const char *message)
{
    return tw_model_errors_add(errs, "$", message) == 0 ? TW_EINVAL : TW_ENOMEM;
}

/* Parses text (NUL-terminated, len bytes) into *root, checking that nothing follows the value.
 * cJSON writes its global error pointer on failure: a benign race we do not read from. */
static int parse_json(const char *text, size_t len, cJSON **root, struct tw_model_errors *errs)
{
    const char *end = NULL;
    *root = cJSON_ParseWithLengthOpts(text, len, &end, false);
    if (!*root)
        return syntax_error(text, len, end, errs, "invalid JSON");
    while (end < text + len && (*end == ' ' || *end == '\t' || *end == '\n' || *end == '\r'))
        end++;
    if (end == text + len)
        return 0;
    cJSON_Delete(*root);
    *root = NULL;
    return syntax_error(text, len, end, errs, "unexpected text after the JSON value");
}

int tw_model_load_buffer(const char *buf, size_t len, struct tw_model **out,
                         struct tw_model_errors *errs)
{
    char msg[96];
    *out = NULL;
    if (len > TW_MODEL_MAX_FILE_BYTES) {
        snprintf(msg, sizeof msg, "too large (%zu bytes, at most %u)", len,
                 TW_MODEL_MAX_FILE_BYTES);
        return fail_whole(errs, msg);
    }
    if (!buf || len == 0)
        return fail_whole(errs, "empty: expected a JSON object");
    const char *nul = memchr(buf, '\0', len);
    if (nul) {
        snprintf(msg, sizeof msg, "contains a NUL byte at offset %zu", (size_t)(nul - buf));
        return fail_whole(errs, msg);
    }
    /* cJSON reads strings up to a NUL: hand it a terminated copy. */
    char *text = malloc(len + 1);
    if (!text)
        return TW_ENOMEM;
    memcpy(text, buf, len);
    text[len] = '\0';
    cJSON *root = NULL;
    int rc = parse_json(text, len, &root, errs);
    struct tw_model *m = rc == 0 ? calloc(1, sizeof *m) : NULL;
    if (rc == 0 && !m)
        rc = TW_ENOMEM;
    if (rc == 0) {
        long n = model_check(root, m, errs);
        rc = n < 0 ? TW_ENOMEM : n > 0 ? TW_EINVAL : 0;
    }
    cJSON_Delete(root);
    free(text);
    if (rc != 0) {
        tw_model_free(m);
        return rc;
    }
    if (!m->plant)
        m->plant = "";
    *out = m;
    return 0;
}

/* Reads at most TW_MODEL_MAX_FILE_BYTES + 1 bytes, so an oversized file is noticed without
 * reading it all. */
static int read_file(FILE *f, char **buf, size_t *len)
{
    size_t cap = 64 * 1024, n = 0;
    char *data = NULL;
    for (;;) {
        char *grown = realloc(data, cap);
        if (!grown) {
            free(data);
            return TW_ENOMEM;
        }
        data = grown;
        n += fread(data + n, 1, cap - n, f);
        if (n < cap || n > TW_MODEL_MAX_FILE_BYTES)
            break;
        cap *= 2;
    }
    if (ferror(f)) {
        free(data);
        return TW_EIO;
    }
    *buf = data;
    *len = n;
    return 0;
}

int tw_model_load_file(const char *path, struct tw_model **out, struct tw_model_errors *errs)
{
    char msg[192], ebuf[96];
    *out = NULL;
    FILE *f = fopen(path, "rb");
    if (!f) {
        int e = errno;
        snprintf(msg, sizeof msg, "cannot open %s: %s", path, strerror_r(e, ebuf, sizeof ebuf));
        if (tw_model_errors_add(errs, "$", msg) != 0)
            return TW_ENOMEM;
        return e == ENOENT ? TW_ENOENT : TW_EIO;
    }
    char *buf = NULL;
    size_t len = 0;
    errno = 0;
    int rc = read_file(f, &buf, &len);
    int e = errno;
    fclose(f);
    if (rc == TW_EIO) {
        snprintf(msg, sizeof msg, "cannot read %s: %s", path,
                 strerror_r(e ? e : EIO, ebuf, sizeof ebuf));
        return tw_model_errors_add(errs, "$", msg) == 0 ? TW_EIO : TW_ENOMEM;
    }
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
