/* SPDX-License-Identifier: Apache-2.0 */
/* The predictor's asset table: assets by id (hashed), their signals (sorted), the work lists,
 * and each signal's engine settings from the plant model. Loop thread only. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "predictor.h"
#include "twin/err.h"

#define TABLE_MIN_SLOTS   1024u
#define ASSET_MIN_SIGNALS 4u

static uint64_t table_hash(const char *id)
{
    uint64_t h = 14695981039346656037ULL;
    for (const char *p = id; *p; p++)
        h = (h ^ (unsigned char)*p) * 1099511628211ULL;
    return h;
}

int pred_table_init(struct pred_table *t, size_t max_assets, size_t max_signals)
{
    memset(t, 0, sizeof(*t));
    t->max_assets = max_assets;
    t->max_signals = max_signals;
    t->n_slots = TABLE_MIN_SLOTS;
    t->slots = calloc(t->n_slots, sizeof(*t->slots));
    t->assets = calloc(t->n_slots / 2, sizeof(*t->assets));
    return t->slots && t->assets ? 0 : TW_ENOMEM;
}

static void asset_free(struct pred_asset *a)
{
    for (size_t k = 0; k < a->n_sigs; k++)
        free(a->sigs[k].st);
    free(a->sigs);
    free(a);
}

void pred_table_free(struct pred_table *t)
{
    for (size_t i = 0; i < t->n_assets; i++)
        asset_free(t->assets[i]);
    for (int k = 0; k < PRED_LIST__COUNT; k++)
        free(t->lists[k].items);
    free(t->assets);
    free(t->slots);
    memset(t, 0, sizeof(*t));
}

/* The slot that holds id, or the empty slot where it would go. */
static size_t table_slot(const struct pred_table *t, const char *id)
{
    size_t mask = t->n_slots - 1;
    size_t i = (size_t)table_hash(id) & mask;
    while (t->slots[i] && strcmp(t->assets[t->slots[i] - 1]->id, id) != 0)
        i = (i + 1) & mask;
    return i;
}

struct pred_asset *pred_table_find(const struct pred_table *t, const char *id)
{
    size_t i = table_slot(t, id);
    return t->slots[i] ? t->assets[t->slots[i] - 1] : NULL;
}

/* Doubles the slots (and the asset array) and places every asset again. */
static int table_grow(struct pred_table *t)
{
    size_t n_slots = t->n_slots * 2;
    size_t *slots = calloc(n_slots, sizeof(*slots));
    struct pred_asset **assets = realloc(t->assets, n_slots / 2 * sizeof(*assets));
    if (assets)
        t->assets = assets;
    if (!slots || !assets) {
        free(slots);
        return TW_ENOMEM;
    }
    free(t->slots);
    t->slots = slots;
    t->n_slots = n_slots;
    for (size_t k = 0; k < t->n_assets; k++)
        t->slots[table_slot(t, t->assets[k]->id)] = k + 1;
    return 0;
}

int pred_table_add(struct pred_table *t, const char *id, struct pred_asset **out)
{
    if (t->n_assets >= t->max_assets)
        return TW_EAGAIN;
    /* Load factor at most 1/2: probes stay short, and assets[] has room for n_slots / 2. */
    if ((t->n_assets + 1) * 2 > t->n_slots && table_grow(t) < 0)
        return TW_ENOMEM;
    struct pred_asset *a = calloc(1, sizeof(*a));
    if (!a)
        return TW_ENOMEM;
    snprintf(a->id, sizeof(a->id), "%s", id);
    t->assets[t->n_assets++] = a;
    t->slots[table_slot(t, id)] = t->n_assets;
    *out = a;
    return 0;
}

/* Index of the first signal whose name is not below name. */
static size_t asset_lower_bound(const struct pred_asset *a, const char *name)
{
    size_t lo = 0, hi = a->n_sigs;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (strcmp(a->sigs[mid].name, name) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

struct pred_sig *pred_asset_signal(struct pred_asset *a, const char *name)
{
    size_t i = asset_lower_bound(a, name);
    return i < a->n_sigs && strcmp(a->sigs[i].name, name) == 0 ? &a->sigs[i] : NULL;
}

static int asset_reserve(struct pred_asset *a)
{
    if (a->n_sigs < a->cap_sigs)
        return 0;
    size_t cap = a->cap_sigs ? a->cap_sigs * 2 : ASSET_MIN_SIGNALS;
    struct pred_sig *sigs = realloc(a->sigs, cap * sizeof(*sigs));
    if (!sigs)
        return TW_ENOMEM;
    a->sigs = sigs;
    a->cap_sigs = cap;
    return 0;
}

int pred_table_add_signal(struct pred_table *t, struct pred_asset *a, const char *name,
                          const struct pred_config *cfg, struct pred_sig **out)
{
    if (a->n_sigs >= t->max_signals)
        return TW_EAGAIN;
    if (asset_reserve(a) < 0)
        return TW_ENOMEM;
    struct pred_signal *st = malloc(pred_signal_size());
    if (!st)
        return TW_ENOMEM;
    int rc = pred_signal_init(st, cfg);
    if (rc < 0) {
        free(st);
        return rc;
    }
    size_t i = asset_lower_bound(a, name);
    memmove(&a->sigs[i + 1], &a->sigs[i], (a->n_sigs - i) * sizeof(*a->sigs));
    memset(&a->sigs[i], 0, sizeof(a->sigs[i]));
    snprintf(a->sigs[i].name, sizeof(a->sigs[i].name), "%s", name);
    a->sigs[i].st = st;
    a->n_sigs++;
    t->n_signals++;
    *out = &a->sigs[i];
    return 0;
}

int pred_table_list(struct pred_table *t, struct pred_asset *a, enum pred_list_kind k)
{
    struct pred_list *l = &t->lists[k];
    if (a->listed[k])
        return 0;
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 256;
        struct pred_asset **items = realloc(l->items, cap * sizeof(*items));
        if (!items)
            return TW_ENOMEM;
        l->items = items;
        l->cap = cap;
    }
    l->items[l->n++] = a;
    a->listed[k] = true;
    return 0;
}

void pred_table_unlist(struct pred_table *t, enum pred_list_kind k, size_t i)
{
    struct pred_list *l = &t->lists[k];
    l->items[i]->listed[k] = false;
    l->items[i] = l->items[--l->n];
}

size_t pred_table_drop_unless(struct pred_table *t,
                              bool (*keep)(const struct pred_asset *a, void *ctx), void *ctx)
{
    size_t kept = 0, dropped = 0;
    for (size_t i = 0; i < t->n_assets; i++) {
        struct pred_asset *a = t->assets[i];
        a->dropped = !keep(a, ctx);
        dropped += a->dropped;
    }
    if (dropped == 0)
        return 0;
    for (int k = 0; k < PRED_LIST__COUNT; k++) {
        struct pred_list *l = &t->lists[k];
        size_t n = 0;
        for (size_t i = 0; i < l->n; i++)
            if (!l->items[i]->dropped)
                l->items[n++] = l->items[i];
        l->n = n;
    }
    for (size_t i = 0; i < t->n_assets; i++) {
        struct pred_asset *a = t->assets[i];
        if (a->dropped) {
            t->n_signals -= a->n_sigs;
            asset_free(a);
        } else {
            t->assets[kept++] = a;
        }
    }
    t->n_assets = kept;
    /* Open addressing has no cheap delete: place the ones left again. */
    memset(t->slots, 0, t->n_slots * sizeof(*t->slots));
    for (size_t k = 0; k < t->n_assets; k++)
        t->slots[table_slot(t, t->assets[k]->id)] = k + 1;
    return dropped;
}

static bool limit_given(const struct tw_model_limit *l)
{
    return l->has_above || l->has_below;
}

void pred_table_signal_config(const struct pred_settings *s, const char *asset, const char *signal,
                              struct pred_config *out)
{
    const struct tw_model_signal *spec =
        s->model ? tw_model_asset_signal(s->model, asset, signal) : NULL;
    memset(out, 0, sizeof(*out));
    out->horizon_ms = s->horizon_ms;
    out->horizon_steps = s->horizon_steps;
    out->n_points = (uint32_t)s->points;
    out->detect_season = true;
    if (!spec)
        return;
    out->season_ms = spec->season_ms;
    out->season_samples = spec->season_samples;
    /* The model gives a season only when it knows one; otherwise it is detected. */
    out->detect_season = spec->season_ms == 0 && spec->season_samples == 0;
    out->has_limits = limit_given(&spec->warn) || limit_given(&spec->alarm);
    if (spec->has_physics) { /* whole seconds, at most 366 days: checked by the model */
        out->physics.cycle_s = (uint32_t)(spec->physics_cycle_ms / 1000);
        out->physics.memory_s = (uint32_t)(spec->physics_memory_ms / 1000);
        out->physics.drift = spec->physics_drift;
    }
    out->warn = spec->warn;
    out->alarm = spec->alarm;
}
