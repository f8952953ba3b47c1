/* SPDX-License-Identifier: Apache-2.0 */
/* Schema walk of the plant model: checks every key and value and fills struct tw_model. */
#include "model_internal.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "twin/derive.h"
#include "twin/jsonpath.h"
#include "twin/validate.h"

/* The walk's state: the JSON path of the value being checked grows and shrinks like a stack. */
struct check {
    struct tw_model *m;
    struct tw_model_errors *errs;
    long n_errors;
    bool nomem;
    struct tw_jsonpath path;
};

/* The scenario runner's part of the model; skipped here. */
static const char *const reserved_keys[] = {"stations", "buffers", "stocks",  "suppliers", "demand",
                                            "shifts",   "routing", "actions", "derived"};

static void fail_at(struct check *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void fail_at(struct check *c, const char *fmt, ...)
{
    char msg[TW_MODEL_MESSAGE_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    c->n_errors++;
    if (tw_model_errors_add(c->errs, c->path.text, msg) != 0)
        c->nomem = true;
}

static const char *key_of(const cJSON *item)
{
    return item->string ? item->string : "";
}

struct keyed {
    const char *key;
    int index;
};

static int keyed_cmp(const void *a, const void *b)
{
    const struct keyed *x = a, *y = b;
    int r = strcmp(x->key, y->key);
    return r != 0 ? r : (x->index > y->index) - (x->index < y->index);
}

/* Marks dup[i] for every child of obj whose key an earlier child already used: cJSON keeps
 * both, and silently using either one would hide a mistake. O(n log n). */
static bool mark_duplicates(const cJSON *obj, int n, bool *dup)
{
    struct keyed *keys = malloc((size_t)n * sizeof *keys);
    if (!keys)
        return false;
    int i = 0;
    for (const cJSON *it = obj->child; it && i < n; it = it->next, i++)
        keys[i] = (struct keyed){key_of(it), i};
    qsort(keys, (size_t)n, sizeof *keys, keyed_cmp);
    for (i = 1; i < n; i++)
        if (strcmp(keys[i].key, keys[i - 1].key) == 0)
            dup[keys[i].index] = true;
    free(keys);
    return true;
}

/* Reports duplicate keys anywhere in the document, except inside "description" values. The
 * depth is bounded by cJSON's nesting limit (CJSON_NESTING_LIMIT, 1000). */
static void check_duplicates(struct check *c, const cJSON *item)
{
    int n = cJSON_GetArraySize(item);
    if (n <= 0 || c->nomem)
        return;
    bool *dup = NULL;
    if (cJSON_IsObject(item)) {
        dup = calloc((size_t)n, sizeof *dup);
        if (!dup || !mark_duplicates(item, n, dup)) {
            free(dup);
            c->nomem = true;
            return;
        }
    }
    int i = 0;
    for (const cJSON *it = item->child; it && i < n; it = it->next, i++) {
        size_t saved =
            dup ? tw_jsonpath_push(&c->path, key_of(it)) : tw_jsonpath_push_index(&c->path, i);
        if (dup && dup[i])
            fail_at(c, "duplicate key");
        if (!(dup && strcmp(key_of(it), "description") == 0))
            check_duplicates(c, it);
        tw_jsonpath_pop(&c->path, saved);
    }
    free(dup);
}

static bool is_reserved(const char *key)
{
    for (size_t i = 0; i < sizeof reserved_keys / sizeof reserved_keys[0]; i++)
        if (strcmp(key, reserved_keys[i]) == 0)
            return true;
    return false;
}

/* Whether key is one of the NULL-terminated allowed list; reports it otherwise. */
static bool known_key(struct check *c, const char *key, const char *const *allowed)
{
    for (; *allowed; allowed++)
        if (strcmp(key, *allowed) == 0)
            return true;
    size_t saved = tw_jsonpath_push(&c->path, key);
    fail_at(c, "unknown key");
    tw_jsonpath_pop(&c->path, saved);
    return false;
}

static void check_keys(struct check *c, const cJSON *obj, const char *const *allowed)
{
    for (const cJSON *it = obj->child; it; it = it->next)
        known_key(c, key_of(it), allowed);
}

/* Checks that item is an object; reports "must be an object" at its path otherwise. */
static bool want_object(struct check *c, const cJSON *item)
{
    if (cJSON_IsObject(item))
        return true;
    fail_at(c, "must be an object");
    return false;
}

/* A string of at most max bytes without control characters, copied into the arena. */
static const char *want_text(struct check *c, const cJSON *item, size_t max)
{
    if (!cJSON_IsString(item) || !item->valuestring) {
        fail_at(c, "must be a string");
        return NULL;
    }
    size_t n = strlen(item->valuestring);
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)item->valuestring[i] < 0x20 || item->valuestring[i] == 0x7f) {
            fail_at(c, "must not contain control characters");
            return NULL;
        }
    if (n > max) {
        fail_at(c, "too long (%zu bytes, at most %zu)", n, max);
        return NULL;
    }
    const char *copy = model_strdup(c->m, item->valuestring);
    if (!copy)
        c->nomem = true;
    return copy;
}

static bool want_number(struct check *c, const cJSON *item, double *out)
{
    if (!cJSON_IsNumber(item)) {
        fail_at(c, "must be a number");
        return false;
    }
    if (!isfinite(item->valuedouble)) {
        fail_at(c, "must be a finite number");
        return false;
    }
    *out = item->valuedouble;
    return true;
}

/* "description": free text; kept when it is a string, otherwise not looked at. */
static const char *description_of(struct check *c, const cJSON *obj)
{
    const cJSON *d = cJSON_GetObjectItemCaseSensitive(obj, "description");
    if (!cJSON_IsString(d) || !d->valuestring)
        return NULL;
    size_t saved = tw_jsonpath_push(&c->path, "description");
    const char *text = want_text(c, d, TW_MODEL_TEXT_MAX);
    tw_jsonpath_pop(&c->path, saved);
    return text;
}

static const char *const limit_keys[] = {"above", "below", NULL};

/* {"above": x, "below": y}, each optional, at least one present. */
static void check_limit(struct check *c, const cJSON *obj, struct tw_model_limit *lim)
{
    if (!want_object(c, obj))
        return;
    check_keys(c, obj, limit_keys);
    const cJSON *above = cJSON_GetObjectItemCaseSensitive(obj, "above");
    const cJSON *below = cJSON_GetObjectItemCaseSensitive(obj, "below");
    if (!above && !below) {
        fail_at(c, "must set \"above\", \"below\" or both");
        return;
    }
    size_t saved = tw_jsonpath_push(&c->path, "above");
    lim->has_above = above && want_number(c, above, &lim->above);
    tw_jsonpath_pop(&c->path, saved);
    saved = tw_jsonpath_push(&c->path, "below");
    lim->has_below = below && want_number(c, below, &lim->below);
    tw_jsonpath_pop(&c->path, saved);
    if (lim->has_above && lim->has_below && !(lim->below < lim->above))
        fail_at(c, "\"below\" (%.17g) must be less than \"above\" (%.17g)", lim->below, lim->above);
}

/* An alarm is the more severe level: it must not trip before the warning does. */
static void check_levels(struct check *c, const struct tw_model_signal *s)
{
    size_t saved = tw_jsonpath_push(&c->path, "alarm");
    size_t inner = tw_jsonpath_push(&c->path, "above");
    if (s->alarm.has_above && s->warn.has_above && s->alarm.above < s->warn.above)
        fail_at(c, "must be >= warn.above (%.17g)", s->warn.above);
    tw_jsonpath_pop(&c->path, inner);
    inner = tw_jsonpath_push(&c->path, "below");
    if (s->alarm.has_below && s->warn.has_below && s->alarm.below > s->warn.below)
        fail_at(c, "must be <= warn.below (%.17g)", s->warn.below);
    tw_jsonpath_pop(&c->path, saved);
}

static void check_season(struct check *c, const cJSON *obj, struct tw_model_signal *s)
{
    const cJSON *season = cJSON_GetObjectItemCaseSensitive(obj, "season");
    const cJSON *samples = cJSON_GetObjectItemCaseSensitive(obj, "season_samples");
    if (season && samples) {
        fail_at(c, "\"season\" and \"season_samples\" exclude each other");
        return;
    }
    if (season) {
        size_t saved = tw_jsonpath_push(&c->path, "season");
        if (!cJSON_IsString(season) || !season->valuestring ||
            tw_model_parse_duration(season->valuestring, &s->season_ms) != 0)
            fail_at(c, "must be a duration such as \"1d\", \"8h\" or \"15m\" (units ms s m h d "
                       "w, at most 366d)");
        tw_jsonpath_pop(&c->path, saved);
    }
    if (samples) {
        size_t saved = tw_jsonpath_push(&c->path, "season_samples");
        double v = cJSON_IsNumber(samples) ? samples->valuedouble : 0;
        if (!(v >= 2 && v <= TW_MODEL_SEASON_MAX_SAMP && v == floor(v)))
            fail_at(c, "must be an integer from 2 to %u", TW_MODEL_SEASON_MAX_SAMP);
        else
            s->season_samples = (uint32_t)v;
        tw_jsonpath_pop(&c->path, saved);
    }
}

static const char *const physics_keys[] = {"cycle", "drift", "memory", NULL};

/* A duration of whole seconds, at most a year, at c's path + key; 0 when absent. */
static int64_t want_seconds(struct check *c, const cJSON *obj, const char *key)
{
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(obj, key);
    int64_t ms = 0;
    if (!item)
        return 0;
    size_t saved = tw_jsonpath_push(&c->path, key);
    if (!cJSON_IsString(item) || !item->valuestring ||
        tw_model_parse_duration(item->valuestring, &ms) != 0 || ms % 1000 != 0) {
        fail_at(c, "must be a duration of whole seconds such as \"1d\", \"8h\" or \"90s\" (at "
                   "most 366d)");
        ms = 0;
    }
    tw_jsonpath_pop(&c->path, saved);
    return ms;
}

/* "physics": {"cycle": "1d", "drift": 2, "memory": "1d"}: at least a cycle or a drift. */
static void check_physics(struct check *c, const cJSON *obj, struct tw_model_signal *s)
{
    const cJSON *physics = cJSON_GetObjectItemCaseSensitive(obj, "physics");
    if (!physics)
        return;
    size_t saved = tw_jsonpath_push(&c->path, "physics");
    if (want_object(c, physics)) {
        check_keys(c, physics, physics_keys);
        s->physics_cycle_ms = want_seconds(c, physics, "cycle");
        s->physics_memory_ms = want_seconds(c, physics, "memory");
        const cJSON *drift = cJSON_GetObjectItemCaseSensitive(physics, "drift");
        if (drift) {
            size_t inner = tw_jsonpath_push(&c->path, "drift");
            double v = cJSON_IsNumber(drift) ? drift->valuedouble : -1;
            if (v == 0 || v == 1 || v == 2)
                s->physics_drift = (uint8_t)v;
            else
                fail_at(c, "must be 0 (none), 1 (linear) or 2 (quadratic)");
            tw_jsonpath_pop(&c->path, inner);
        }
        bool drift_bad =
            drift && s->physics_drift == 0 && !(cJSON_IsNumber(drift) && drift->valuedouble == 0);
        if (s->physics_cycle_ms == 0 && s->physics_drift == 0) {
            if (!cJSON_GetObjectItemCaseSensitive(physics, "cycle") && !drift_bad)
                fail_at(c, "must declare a \"cycle\", a \"drift\" (1 or 2) or both");
        } else {
            s->has_physics = true;
            if (s->physics_memory_ms == 0)
                s->physics_memory_ms = s->physics_cycle_ms ? s->physics_cycle_ms : 86400000;
        }
    }
    tw_jsonpath_pop(&c->path, saved);
}

static const char *const signal_keys[] = {
    "unit", "warn", "alarm", "season", "season_samples", "description", "expr", "physics", NULL};

static void check_signal(struct check *c, const cJSON *obj, struct tw_model_signal *s)
{
    s->unit = "";
    if (!want_object(c, obj))
        return;
    check_keys(c, obj, signal_keys);
    const cJSON *unit = cJSON_GetObjectItemCaseSensitive(obj, "unit");
    if (unit) {
        size_t saved = tw_jsonpath_push(&c->path, "unit");
        const char *text = want_text(c, unit, TW_MODEL_UNIT_MAX);
        s->unit = text ? text : "";
        tw_jsonpath_pop(&c->path, saved);
    }
    const cJSON *warn = cJSON_GetObjectItemCaseSensitive(obj, "warn");
    const cJSON *alarm = cJSON_GetObjectItemCaseSensitive(obj, "alarm");
    if (warn) {
        size_t saved = tw_jsonpath_push(&c->path, "warn");
        check_limit(c, warn, &s->warn);
        tw_jsonpath_pop(&c->path, saved);
    }
    if (alarm) {
        size_t saved = tw_jsonpath_push(&c->path, "alarm");
        check_limit(c, alarm, &s->alarm);
        tw_jsonpath_pop(&c->path, saved);
    }
    check_levels(c, s);
    check_season(c, obj, s);
    check_physics(c, obj, s);
    const cJSON *expr = cJSON_GetObjectItemCaseSensitive(obj, "expr");
    if (expr) { /* parsed once all the kind's signals are known (check_derived) */
        size_t saved = tw_jsonpath_push(&c->path, "expr");
        s->expr = want_text(c, expr, TW_DX_TEXT_MAX);
        tw_jsonpath_pop(&c->path, saved);
    }
}

static int signal_cmp(const void *a, const void *b)
{
    return strcmp(((const struct tw_model_signal *)a)->name,
                  ((const struct tw_model_signal *)b)->name);
}

/* Checks one child of "signals"; returns whether it was stored at *s. */
static bool add_signal(struct check *c, const cJSON *it, struct tw_model_signal *s)
{
    const char *name = key_of(it);
    if (!tw_valid_signal(name, strlen(name))) {
        fail_at(c, "invalid signal name: 1-64 characters of [A-Za-z0-9._:/-], not starting "
                   "with '_'");
        return false;
    }
    s->name = model_strdup(c->m, name);
    if (!s->name) {
        c->nomem = true;
        return false;
    }
    check_signal(c, it, s);
    return true;
}

/* ---- derived signals ---------------------------------------------------------------- */

static const struct tw_model_signal *find_signal(const struct tw_model_kind *k, const char *name,
                                                 size_t len)
{
    for (size_t i = 0; i < k->n_signals; i++)
        if (strlen(k->signals[i].name) == len && memcmp(k->signals[i].name, name, len) == 0)
            return &k->signals[i];
    return NULL;
}

static bool reads_known(const char *name, size_t len, void *ctx)
{
    return find_signal(ctx, name, len) != NULL;
}

/* Depth-first: appends derived signal i after every derived signal it reads. state: 0 not
 * seen, 1 on the path, 2 placed. Returns false on a cycle, reported once where it closes. */
static bool place(struct check *c, const struct tw_model_kind *k, const struct tw_dx *dx,
                  uint8_t *state, uint32_t *order, size_t *n, size_t i)
{
    state[i] = 1;
    for (uint16_t j = 0; j < dx[i].n; j++) {
        if (dx[i].node[j].op != TW_DX_SIGNAL)
            continue;
        const char *name = tw_dx_name(&dx[i], j);
        const struct tw_model_signal *s = find_signal(k, name, strlen(name));
        if (!s || !s->expr)
            continue;
        size_t r = (size_t)(s - k->signals);
        if (state[r] == 1) {
            size_t saved = tw_jsonpath_push(&c->path, k->signals[i].name);
            if (r == i)
                fail_at(c, "reads itself: a derived signal cannot be its own input (use an "
                           "operator such as ewma for a running value)");
            else
                fail_at(c,
                        "reads \"%s\", which depends on it: derived signals must not form "
                        "a cycle",
                        name);
            tw_jsonpath_pop(&c->path, saved);
            return false;
        }
        if (state[r] == 0 && !place(c, k, dx, state, order, n, r))
            return false;
    }
    state[i] = 2;
    order[(*n)++] = (uint32_t)i;
    return true;
}

/* Parses every derived signal's expression against the kind's signals and orders them so
 * that each comes after those it reads. c's path is at the kind's "signals". */
static void check_derived(struct check *c, struct tw_model_kind *k)
{
    size_t n = 0;
    for (size_t i = 0; i < k->n_signals; i++)
        n += k->signals[i].expr != NULL;
    if (n == 0)
        return;
    if (n > TW_MODEL_MAX_DERIVED) {
        fail_at(c, "too many derived signals (%zu, at most %u per kind)", n, TW_MODEL_MAX_DERIVED);
        return;
    }
    struct tw_dx *dx = calloc(k->n_signals, sizeof *dx);
    uint8_t *state = calloc(k->n_signals, 1);
    uint32_t *order = model_alloc(c->m, n * sizeof *order);
    if (!dx || !state || !order) {
        c->nomem = true;
        free(dx), free(state);
        return;
    }
    bool ok = true;
    for (size_t i = 0; i < k->n_signals; i++) {
        const struct tw_model_signal *s = &k->signals[i];
        if (!s->expr)
            continue;
        char err[256];
        if (tw_dx_parse(s->expr, reads_known, (void *)k, &dx[i], err, sizeof err) != 0) {
            size_t saved = tw_jsonpath_push(&c->path, s->name);
            size_t at = tw_jsonpath_push(&c->path, "expr");
            fail_at(c, "%s", err);
            tw_jsonpath_pop(&c->path, at);
            tw_jsonpath_pop(&c->path, saved);
            ok = false;
        }
    }
    size_t placed = 0;
    for (size_t i = 0; ok && i < k->n_signals; i++)
        if (k->signals[i].expr && state[i] == 0)
            ok = place(c, k, dx, state, order, &placed, i);
    if (ok && placed == n) {
        k->derived = order;
        k->n_derived = n;
    }
    free(dx);
    free(state);
}

static void check_signals(struct check *c, const cJSON *obj, struct tw_model_kind *k)
{
    if (!want_object(c, obj))
        return;
    int n = cJSON_GetArraySize(obj);
    if ((unsigned)n > TW_MODEL_MAX_SIGNALS) {
        fail_at(c, "too many signals (%d, at most %u per kind)", n, TW_MODEL_MAX_SIGNALS);
        return;
    }
    struct tw_model_signal *sigs = model_alloc(c->m, (size_t)n * sizeof *sigs + 1);
    if (!sigs) {
        c->nomem = true;
        return;
    }
    size_t count = 0;
    for (const cJSON *it = obj->child; it && count < (size_t)n && !c->nomem; it = it->next) {
        size_t saved = tw_jsonpath_push(&c->path, key_of(it));
        count += add_signal(c, it, &sigs[count]);
        tw_jsonpath_pop(&c->path, saved);
    }
    qsort(sigs, count, sizeof *sigs, signal_cmp);
    size_t kept = 0; /* duplicates were reported by check_duplicates; keep the first */
    for (size_t i = 0; i < count; i++)
        if (kept == 0 || strcmp(sigs[kept - 1].name, sigs[i].name) != 0)
            sigs[kept++] = sigs[i];
    k->signals = sigs;
    k->n_signals = kept;
    check_derived(c, k);
}

static const char *const kind_keys[] = {"description", "signals", NULL};

static bool add_kind(struct check *c, const cJSON *it, struct tw_model_kind *k)
{
    const char *name = key_of(it);
    if (!tw_valid_asset_id(name, strlen(name))) {
        fail_at(c, "invalid kind name: 1-64 characters of [A-Za-z0-9._-]");
        return false;
    }
    if (!want_object(c, it))
        return false;
    check_keys(c, it, kind_keys);
    k->name = model_strdup(c->m, name);
    if (!k->name) {
        c->nomem = true;
        return false;
    }
    k->description = description_of(c, it);
    const cJSON *sigs = cJSON_GetObjectItemCaseSensitive(it, "signals");
    if (sigs) {
        size_t saved = tw_jsonpath_push(&c->path, "signals");
        check_signals(c, sigs, k);
        tw_jsonpath_pop(&c->path, saved);
    }
    return true;
}

static int kind_cmp(const void *a, const void *b)
{
    return strcmp(((const struct tw_model_kind *)a)->name, ((const struct tw_model_kind *)b)->name);
}

static void check_kinds(struct check *c, const cJSON *obj)
{
    if (!want_object(c, obj))
        return;
    int n = cJSON_GetArraySize(obj);
    if ((unsigned)n > TW_MODEL_MAX_KINDS) {
        fail_at(c, "too many kinds (%d, at most %u)", n, TW_MODEL_MAX_KINDS);
        return;
    }
    struct tw_model_kind *kinds = model_alloc(c->m, (size_t)n * sizeof *kinds + 1);
    if (!kinds) {
        c->nomem = true;
        return;
    }
    size_t count = 0;
    for (const cJSON *it = obj->child; it && count < (size_t)n && !c->nomem; it = it->next) {
        size_t saved = tw_jsonpath_push(&c->path, key_of(it));
        count += add_kind(c, it, &kinds[count]);
        tw_jsonpath_pop(&c->path, saved);
    }
    qsort(kinds, count, sizeof *kinds, kind_cmp);
    size_t kept = 0;
    for (size_t i = 0; i < count; i++)
        if (kept == 0 || strcmp(kinds[kept - 1].name, kinds[i].name) != 0)
            kinds[kept++] = kinds[i];
    c->m->kinds = kinds;
    c->m->n_kinds = kept;
}

static const char *const asset_keys[] = {"kind", "description", "station", NULL};

static const struct tw_model_kind *asset_kind(struct check *c, const cJSON *it)
{
    const cJSON *kind = cJSON_GetObjectItemCaseSensitive(it, "kind");
    if (!kind) {
        fail_at(c, "missing \"kind\"");
        return NULL;
    }
    size_t saved = tw_jsonpath_push(&c->path, "kind");
    const struct tw_model_kind *k = NULL;
    if (!cJSON_IsString(kind) || !kind->valuestring)
        fail_at(c, "must be a string naming one of \"asset_kinds\"");
    else if (!(k = tw_model_kind(c->m, kind->valuestring)))
        fail_at(c, "no such kind in \"asset_kinds\"");
    tw_jsonpath_pop(&c->path, saved);
    return k;
}

static bool add_asset(struct check *c, const cJSON *it, struct tw_model_asset *a)
{
    const char *id = key_of(it);
    if (!tw_valid_asset_id(id, strlen(id))) {
        fail_at(c, "invalid asset id: 1-64 characters of [A-Za-z0-9._-]");
        return false;
    }
    if (!want_object(c, it))
        return false;
    check_keys(c, it, asset_keys);
    a->kind = asset_kind(c, it);
    a->description = description_of(c, it);
    const cJSON *station = cJSON_GetObjectItemCaseSensitive(it, "station");
    if (station) {
        size_t saved = tw_jsonpath_push(&c->path, "station");
        if (!cJSON_IsString(station) || !station->valuestring ||
            !tw_valid_asset_id(station->valuestring, strlen(station->valuestring)))
            fail_at(c, "must be a station name: 1-64 characters of [A-Za-z0-9._-]");
        else if (!(a->station = model_strdup(c->m, station->valuestring)))
            c->nomem = true;
        tw_jsonpath_pop(&c->path, saved);
    }
    a->id = model_strdup(c->m, id);
    if (!a->id)
        c->nomem = true;
    return a->id != NULL && a->kind != NULL;
}

static void check_assets(struct check *c, const cJSON *obj)
{
    if (!want_object(c, obj))
        return;
    int n = cJSON_GetArraySize(obj);
    if ((unsigned)n > TW_MODEL_MAX_ASSETS) {
        fail_at(c, "too many assets (%d, at most %u)", n, TW_MODEL_MAX_ASSETS);
        return;
    }
    struct tw_model_asset *assets = model_alloc(c->m, (size_t)n * sizeof *assets + 1);
    if (!assets || model_index_init(c->m, (size_t)n) != 0) {
        c->nomem = true;
        return;
    }
    c->m->assets = assets;
    for (const cJSON *it = obj->child; it && c->m->n_assets < (size_t)n && !c->nomem;
         it = it->next) {
        size_t saved = tw_jsonpath_push(&c->path, key_of(it));
        /* A duplicate id was reported by check_duplicates; the first one stays. */
        if (add_asset(c, it, &assets[c->m->n_assets]) && model_index_add(c->m, c->m->n_assets))
            c->m->n_assets++;
        tw_jsonpath_pop(&c->path, saved);
    }
}

static const char *const top_keys[] = {"version", "plant", "ingest", "asset_kinds", "assets", NULL};
static const char *const ingest_keys[] = {"reject_unknown_assets", NULL};

static void check_version(struct check *c, const cJSON *root)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, "version");
    if (!v) {
        fail_at(c, "missing \"version\" (must be 1)");
        return;
    }
    size_t saved = tw_jsonpath_push(&c->path, "version");
    if (!cJSON_IsNumber(v) || v->valuedouble != 1)
        fail_at(c, "must be 1 (the only version this program reads)");
    tw_jsonpath_pop(&c->path, saved);
}

static void check_ingest(struct check *c, const cJSON *obj)
{
    if (!want_object(c, obj))
        return;
    check_keys(c, obj, ingest_keys);
    const cJSON *rej = cJSON_GetObjectItemCaseSensitive(obj, "reject_unknown_assets");
    if (!rej)
        return;
    size_t saved = tw_jsonpath_push(&c->path, "reject_unknown_assets");
    if (!cJSON_IsBool(rej))
        fail_at(c, "must be true or false");
    else
        c->m->reject_unknown_assets = cJSON_IsTrue(rej);
    tw_jsonpath_pop(&c->path, saved);
}

/* Runs fn on root's member `key` when present, with the path pointing at it. */
static void check_member(struct check *c, const cJSON *root, const char *key,
                         void (*fn)(struct check *, const cJSON *))
{
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(root, key);
    if (!item || c->nomem)
        return;
    size_t saved = tw_jsonpath_push(&c->path, key);
    fn(c, item);
    tw_jsonpath_pop(&c->path, saved);
}

static void check_plant(struct check *c, const cJSON *item)
{
    const char *plant = want_text(c, item, TW_MODEL_TEXT_MAX);
    if (plant)
        c->m->plant = plant;
}

long model_check(const cJSON *root, struct tw_model *m, struct tw_model_errors *errs)
{
    struct check c = {.m = m, .errs = errs};
    tw_jsonpath_init(&c.path);
    if (!want_object(&c, root))
        return c.n_errors;
    check_duplicates(&c, root);
    for (const cJSON *it = root->child; it; it = it->next)
        if (!is_reserved(key_of(it)))
            known_key(&c, key_of(it), top_keys);
    check_version(&c, root);
    check_member(&c, root, "plant", check_plant);
    check_member(&c, root, "ingest", check_ingest);
    /* Kinds first, whatever the key order in the file: assets refer to them. */
    check_member(&c, root, "asset_kinds", check_kinds);
    check_member(&c, root, "assets", check_assets);
    return c.nomem ? -1 : c.n_errors;
}
