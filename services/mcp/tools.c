/* SPDX-License-Identifier: Apache-2.0 */
/* twin-mcp's tools: the live twin read from Redis (assets, state, history downsampled to a
 * number of points, the latest prediction), each with its input and output schema. */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mcp.h"
#include "twin/codec.h"
#include "twin/model.h"
#include "twin/store.h"
#include "twin/validate.h"

#define HISTORY_READ_MAX 20000 /* history entries read for one call at most */
#define KEY_MAX          (TW_NAME_MAX + 32)

#define ASSET_PROP                                                                                 \
    "\"asset\":{\"type\":\"string\",\"minLength\":1,\"maxLength\":64,"                             \
    "\"description\":\"asset id, as list_assets returns it (letters, digits, . _ -)\"}"

/* ---- Redis ---------------------------------------------------------------------------------- */

static int redis_call(struct mcp_twin *t, struct tw_reply **r, int argc, const char *const *argv,
                      char *err, size_t errlen)
{
    if (tw_store_command(t->store, r, argc, argv, NULL) < 0) {
        snprintf(err, errlen, "the twin's store (Redis) is unreachable: %s; try again later",
                 tw_store_last_error(t->store));
        return -1;
    }
    if ((*r)->type == TW_REPLY_ERROR) {
        snprintf(err, errlen, "the twin's store refused the read: %.200s", (*r)->str);
        tw_store_replies_free(*r, 1);
        return -1;
    }
    return 0;
}

/* The asset argument, checked. */
static const char *asset_arg(const cJSON *args, char *err, size_t errlen)
{
    const cJSON *a = cJSON_GetObjectItemCaseSensitive(args, "asset");
    if (!cJSON_IsString(a) || !tw_valid_asset_id(a->valuestring, strlen(a->valuestring))) {
        snprintf(err, errlen,
                 "\"asset\" must be an asset id of 1 to %d letters, digits, '.', "
                 "'_' or '-' (list_assets shows them)",
                 TW_NAME_MAX);
        return NULL;
    }
    return a->valuestring;
}

/* The asset argument, checked, and one read of one of its keys ("twin:{<asset>}:<suffix>"). */
static int asset_read(struct mcp_twin *t, const cJSON *args, const char *command,
                      const char *suffix, const char **asset, struct tw_reply **r, char *err,
                      size_t errlen)
{
    char key[KEY_MAX];
    *asset = asset_arg(args, err, errlen);
    if (!*asset)
        return -1;
    snprintf(key, sizeof(key), "twin:{%s}:%s", *asset, suffix);
    const char *argv[] = {command, key};
    return redis_call(t, r, 2, argv, err, errlen);
}

static int64_t int_arg(const cJSON *args, const char *name, int64_t def)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(args, name);
    return cJSON_IsNumber(v) ? (int64_t)v->valuedouble : def;
}

/* Whether signal `name` is wanted: all when the "signals" argument is absent. */
static bool signal_wanted(const cJSON *args, const char *name)
{
    const cJSON *list = cJSON_GetObjectItemCaseSensitive(args, "signals"), *s;
    if (!cJSON_IsArray(list))
        return true;
    cJSON_ArrayForEach(s, list)
    {
        if (cJSON_IsString(s) && strcmp(s->valuestring, name) == 0)
            return true;
    }
    return false;
}

static bool reply_text_double(const struct tw_reply *r, double *out)
{
    char *end = NULL;
    if (r->type != TW_REPLY_STR || r->len == 0)
        return false;
    *out = strtod(r->str, &end);
    return end && *end == '\0' && isfinite(*out);
}

/* ---- list_assets ----------------------------------------------------------------------------- */

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static int tool_list_assets(void *ctx, const cJSON *args, cJSON **out, char *err, size_t errlen)
{
    struct mcp_twin *t = ctx;
    const cJSON *prefix = cJSON_GetObjectItemCaseSensitive(args, "prefix");
    size_t limit = (size_t)int_arg(args, "limit", 1000);
    const char *argv[] = {"SMEMBERS", "twin:assets"};
    struct tw_reply *r;
    if (redis_call(t, &r, 2, argv, err, errlen) < 0)
        return -1;
    const char **ids = calloc(r->n + 1, sizeof(*ids));
    size_t n = 0;
    for (size_t i = 0; ids && i < r->n; i++)
        if (r->elem[i].type == TW_REPLY_STR &&
            (!cJSON_IsString(prefix) ||
             strncmp(r->elem[i].str, prefix->valuestring, strlen(prefix->valuestring)) == 0))
            ids[n++] = r->elem[i].str;
    qsort(ids, n, sizeof(*ids), cmp_str);
    cJSON *o = cJSON_CreateObject();
    cJSON *list = cJSON_AddArrayToObject(o, "assets");
    for (size_t i = 0; i < n && i < limit; i++)
        cJSON_AddItemToArray(list, cJSON_CreateString(ids[i]));
    cJSON_AddNumberToObject(o, "matching", (double)n);
    cJSON_AddBoolToObject(o, "truncated", n > limit);
    free(ids);
    tw_store_replies_free(r, 1);
    *out = o;
    return 0;
}

/* ---- get_state ------------------------------------------------------------------------------- */

static int tool_get_state(void *ctx, const cJSON *args, cJSON **out, char *err, size_t errlen)
{
    const char *asset;
    struct tw_reply *r;
    if (asset_read(ctx, args, "HGETALL", "state", &asset, &r, err, errlen) < 0)
        return -1;
    if (r->n == 0) {
        tw_store_replies_free(r, 1);
        snprintf(err, errlen,
                 "no state for asset \"%s\": it has sent no telemetry yet, or the "
                 "id is wrong (list_assets shows the known ones)",
                 asset);
        return -1;
    }
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "asset", asset);
    cJSON *signals = cJSON_AddObjectToObject(o, "signals");
    for (size_t i = 0; i + 1 < r->n; i += 2) {
        const struct tw_reply *f = &r->elem[i], *v = &r->elem[i + 1];
        double x;
        if (f->type != TW_REPLY_STR || v->type != TW_REPLY_STR)
            continue;
        if (strcmp(f->str, "_seq") == 0 || strcmp(f->str, "_ts_ms") == 0 ||
            strcmp(f->str, "_ingest_ms") == 0) {
            if (reply_text_double(v, &x))
                cJSON_AddNumberToObject(o,
                                        strcmp(f->str, "_seq") == 0     ? "seq"
                                        : strcmp(f->str, "_ts_ms") == 0 ? "ts_ms"
                                                                        : "ingest_ms",
                                        x);
        } else if (strcmp(f->str, "_changed") == 0) {
            cJSON_AddStringToObject(o, "changed", v->str);
        } else if (f->str[0] != '_' && reply_text_double(v, &x)) {
            cJSON_AddNumberToObject(signals, f->str, x);
        }
    }
    tw_store_replies_free(r, 1);
    *out = o;
    return 0;
}

/* ---- get_history ----------------------------------------------------------------------------- */

struct hist_point {
    int64_t ts_ms;
    size_t n;
    cJSON *sum, *min, *max; /* per signal */
};

static void hist_add(struct hist_point *p, const char *signal, double x)
{
    cJSON *s = cJSON_GetObjectItemCaseSensitive(p->sum, signal);
    if (!s) {
        cJSON_AddNumberToObject(p->sum, signal, x);
        cJSON_AddNumberToObject(p->min, signal, x);
        cJSON_AddNumberToObject(p->max, signal, x);
        return;
    }
    cJSON_SetNumberValue(s, s->valuedouble + x);
    cJSON *lo = cJSON_GetObjectItemCaseSensitive(p->min, signal);
    cJSON *hi = cJSON_GetObjectItemCaseSensitive(p->max, signal);
    if (x < lo->valuedouble)
        cJSON_SetNumberValue(lo, x);
    if (x > hi->valuedouble)
        cJSON_SetNumberValue(hi, x);
}

static int tool_get_history(void *ctx, const cJSON *args, cJSON **out, char *err, size_t errlen)
{
    struct mcp_twin *t = ctx;
    const char *asset = asset_arg(args, err, errlen);
    if (!asset)
        return -1;
    int64_t from = int_arg(args, "from_ms", 0), to = int_arg(args, "to_ms", 0);
    size_t max_points = (size_t)int_arg(args, "max_points", 200);
    if (from > 0 && to > 0 && from > to) {
        snprintf(err, errlen, "\"from_ms\" (%" PRId64 ") is after \"to_ms\" (%" PRId64 ")", from,
                 to);
        return -1;
    }
    char key[KEY_MAX], hi[32], lo[32], count[16];
    snprintf(key, sizeof(key), "twin:{%s}:history", asset);
    snprintf(hi, sizeof(hi), to > 0 ? "%" PRId64 : "+", to);
    snprintf(lo, sizeof(lo), from > 0 ? "%" PRId64 : "-", from);
    snprintf(count, sizeof(count), "%d", HISTORY_READ_MAX);
    const char *argv[] = {"XREVRANGE", key, hi, lo, "COUNT", count};
    struct tw_reply *r;
    if (redis_call(t, &r, 6, argv, err, errlen) < 0)
        return -1;
    size_t n = r->n; /* newest first */
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "asset", asset);
    cJSON_AddNumberToObject(o, "entries", (double)n);
    cJSON_AddBoolToObject(o, "truncated", n >= HISTORY_READ_MAX);
    cJSON *points = cJSON_AddArrayToObject(o, "points");
    if (n > 0) {
        /* Buckets of equal entry counts (newest entries last), each the mean, min and max of
         * its samples: max_points at most. */
        size_t per = (n + max_points - 1) / max_points;
        cJSON_AddNumberToObject(o, "entries_per_point", (double)per);
        for (size_t start = 0; start < n; start += per) {
            struct hist_point p = {.sum = cJSON_CreateObject(),
                                   .min = cJSON_CreateObject(),
                                   .max = cJSON_CreateObject()};
            for (size_t k = 0; k < per && start + k < n; k++) {
                const struct tw_reply *e = &r->elem[n - 1 - (start + k)]; /* oldest first */
                if (e->type != TW_REPLY_ARRAY || e->n != 2 || e->elem[1].type != TW_REPLY_ARRAY)
                    continue;
                const struct tw_reply *f = &e->elem[1];
                for (size_t i = 0; i + 1 < f->n; i += 2) {
                    double x;
                    const char *name = f->elem[i].str;
                    if (f->elem[i].type != TW_REPLY_STR || !reply_text_double(&f->elem[i + 1], &x))
                        continue;
                    if (strcmp(name, "ts_ms") == 0) {
                        if (p.n == 0)
                            p.ts_ms = (int64_t)x;
                    } else if (strcmp(name, "seq") != 0 && signal_wanted(args, name)) {
                        hist_add(&p, name, x);
                    }
                }
                p.n++;
            }
            cJSON *pt = cJSON_CreateObject();
            cJSON_AddNumberToObject(pt, "ts_ms", (double)p.ts_ms);
            cJSON_AddNumberToObject(pt, "n", (double)p.n);
            cJSON *s;
            cJSON_ArrayForEach(s, p.sum)
            {
                cJSON_SetNumberValue(s, s->valuedouble / (double)p.n);
            }
            cJSON_AddItemToObject(pt, "mean", p.sum);
            if (p.n > 1) {
                cJSON_AddItemToObject(pt, "min", p.min);
                cJSON_AddItemToObject(pt, "max", p.max);
            } else {
                cJSON_Delete(p.min);
                cJSON_Delete(p.max);
            }
            cJSON_AddItemToArray(points, pt);
        }
    }
    tw_store_replies_free(r, 1);
    *out = o;
    return 0;
}

/* ---- get_prediction -------------------------------------------------------------------------- */

static int tool_get_prediction(void *ctx, const cJSON *args, cJSON **out, char *err, size_t errlen)
{
    const char *asset;
    struct tw_reply *r;
    if (asset_read(ctx, args, "GET", "prediction", &asset, &r, err, errlen) < 0)
        return -1;
    struct tw_prediction_msg pm;
    if (r->type != TW_REPLY_STR) {
        tw_store_replies_free(r, 1);
        snprintf(err, errlen,
                 "no prediction for asset \"%s\" yet: the predictor publishes one "
                 "once the asset has sent a few samples (list_assets shows the known ones)",
                 asset);
        return -1;
    }
    if (tw_codec_decode_prediction((const uint8_t *)r->str, r->len, &pm) < 0) {
        tw_store_replies_free(r, 1);
        snprintf(err, errlen, "the stored prediction of \"%s\" could not be read", asset);
        return -1;
    }
    size_t max_points = (size_t)int_arg(args, "points", 1000);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "asset", asset);
    cJSON_AddNumberToObject(o, "basis_ts_ms", (double)pm.p.basis_ts_ms);
    cJSON *list = cJSON_AddArrayToObject(o, "forecasts");
    for (size_t i = 0; i < pm.p.n_forecasts; i++) {
        const struct tw_signal_forecast *f = &pm.p.forecasts[i];
        if (!signal_wanted(args, f->signal))
            continue;
        cJSON *fo = cJSON_CreateObject();
        cJSON_AddStringToObject(fo, "signal", f->signal);
        cJSON_AddStringToObject(fo, "model", f->model ? f->model : "");
        cJSON *q = cJSON_AddObjectToObject(fo, "quality");
        cJSON_AddNumberToObject(q, "n", (double)f->quality.n);
        cJSON_AddNumberToObject(q, "mae", f->quality.mae);
        cJSON_AddNumberToObject(q, "rmse", f->quality.rmse);
        cJSON_AddNumberToObject(q, "mase", f->quality.mase);
        cJSON_AddNumberToObject(q, "coverage", f->quality.coverage);
        cJSON *pts = cJSON_AddArrayToObject(fo, "points");
        for (size_t k = 0; k < f->n_points && k < max_points; k++) {
            cJSON *p = cJSON_CreateObject();
            cJSON_AddNumberToObject(p, "ts_ms", (double)f->points[k].ts_ms);
            cJSON_AddNumberToObject(p, "mean", f->points[k].mean);
            cJSON_AddNumberToObject(p, "lo", f->points[k].lo);
            cJSON_AddNumberToObject(p, "hi", f->points[k].hi);
            cJSON_AddItemToArray(pts, p);
        }
        cJSON_AddItemToArray(list, fo);
    }
    tw_codec_prediction_free(&pm);
    tw_store_replies_free(r, 1);
    *out = o;
    return 0;
}

/* ---- list_alerts, explain_alert ------------------------------------------------------------ */

#define ALERTS_PER_ASSET_MAX 1000
#define EXPLAIN_HISTORY      12 /* samples of the signal shown before the alert */

/* One entry of twin:{a}:alerts as an object, or NULL when it is not one (the entry's id is the
 * time the alert was logged). */
static cJSON *alert_entry(const char *asset, const struct tw_reply *e)
{
    if (e->type != TW_REPLY_ARRAY || e->n != 2 || e->elem[1].type != TW_REPLY_ARRAY)
        return NULL;
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "asset", asset);
    const struct tw_reply *f = &e->elem[1];
    for (size_t i = 0; i + 1 < f->n; i += 2) {
        const struct tw_reply *k = &f->elem[i], *v = &f->elem[i + 1];
        double x;
        if (k->type != TW_REPLY_STR || v->type != TW_REPLY_STR)
            continue;
        bool numeric = strcmp(k->str, "severity") == 0 || strcmp(k->str, "ts_ms") == 0 ||
                       strcmp(k->str, "eta_ms") == 0 || strcmp(k->str, "value") == 0 ||
                       strcmp(k->str, "threshold") == 0;
        if (numeric && reply_text_double(v, &x))
            cJSON_AddNumberToObject(o, k->str, x);
        else if (!numeric)
            cJSON_AddStringToObject(o, k->str, v->str);
    }
    return o;
}

static bool alert_kind_wanted(const cJSON *args, const cJSON *alert)
{
    const cJSON *kinds = cJSON_GetObjectItemCaseSensitive(args, "kinds"), *k;
    const cJSON *kind = cJSON_GetObjectItemCaseSensitive(alert, "kind");
    if (!cJSON_IsArray(kinds))
        return true;
    cJSON_ArrayForEach(k, kinds)
    {
        if (cJSON_IsString(kind) && cJSON_IsString(k) &&
            strcmp(k->valuestring, kind->valuestring) == 0)
            return true;
    }
    return false;
}

static double alert_ts(const cJSON *a)
{
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(a, "ts_ms");
    return cJSON_IsNumber(t) ? t->valuedouble : 0;
}

static int cmp_alert_newest_first(const void *pa, const void *pb)
{
    double a = alert_ts(*(cJSON *const *)pa), b = alert_ts(*(cJSON *const *)pb);
    return a < b ? 1 : a > b ? -1 : 0;
}

static int tool_list_alerts(void *ctx, const cJSON *args, cJSON **out, char *err, size_t errlen)
{
    struct mcp_twin *t = ctx;
    const cJSON *one = cJSON_GetObjectItemCaseSensitive(args, "asset");
    size_t limit = (size_t)int_arg(args, "limit", 50);
    int64_t since = int_arg(args, "since_ms", 0);
    struct tw_reply *ids = NULL;
    const char **assets = NULL;
    size_t n_assets = 0;
    if (one) {
        const char *a = asset_arg(args, err, errlen);
        if (!a)
            return -1;
        assets = malloc(sizeof(*assets));
        if (assets)
            assets[n_assets++] = a;
    } else {
        const char *argv[] = {"SMEMBERS", "twin:assets"};
        if (redis_call(t, &ids, 2, argv, err, errlen) < 0)
            return -1;
        assets = calloc(ids->n + 1, sizeof(*assets));
        for (size_t i = 0; assets && i < ids->n; i++)
            if (ids->elem[i].type == TW_REPLY_STR)
                assets[n_assets++] = ids->elem[i].str;
    }
    /* One XREVRANGE per asset, in one pipeline (one round trip to each node). The stream ids
     * are the times the alerts were logged, close to their ts_ms. */
    char(*keys)[KEY_MAX] = calloc(n_assets + 1, sizeof(*keys));
    char count[16], lo[32];
    snprintf(count, sizeof(count), "%zu",
             limit < ALERTS_PER_ASSET_MAX ? limit : ALERTS_PER_ASSET_MAX);
    /* All of each log's newest entries: the ids are when the alerts were logged, ts_ms the
     * device's time (hours apart for a replayed or accelerated recording), filtered below. */
    snprintf(lo, sizeof(lo), "-");
    const char *(*argvs)[6] = calloc(n_assets + 1, sizeof(*argvs));
    struct tw_cmd *cmds = calloc(n_assets + 1, sizeof(*cmds));
    struct tw_reply *replies = NULL;
    int rc = assets && keys && argvs && cmds ? 0 : -1;
    for (size_t i = 0; rc == 0 && i < n_assets; i++) {
        snprintf(keys[i], KEY_MAX, "twin:{%s}:alerts", assets[i]);
        const char *argv[6] = {"XREVRANGE", keys[i], "+", lo, "COUNT", count};
        memcpy(argvs[i], argv, sizeof(argv));
        cmds[i] = (struct tw_cmd){.argc = 6, .argv = argvs[i]};
    }
    if (rc == 0 && n_assets > 0 && tw_store_pipeline(t->store, cmds, n_assets, &replies) < 0) {
        snprintf(err, errlen, "the twin's store (Redis) is unreachable: %s; try again later",
                 tw_store_last_error(t->store));
        rc = -1;
    }
    cJSON **found = NULL;
    size_t n_found = 0, cap = 0;
    for (size_t i = 0; rc == 0 && replies && i < n_assets; i++) {
        const struct tw_reply *r = &replies[i];
        for (size_t k = 0; r->type == TW_REPLY_ARRAY && k < r->n; k++) {
            cJSON *a = alert_entry(assets[i], &r->elem[k]);
            if (!a)
                continue;
            if (!alert_kind_wanted(args, a) || (since > 0 && alert_ts(a) < (double)since)) {
                cJSON_Delete(a);
                continue;
            }
            if (n_found == cap) {
                cap = cap ? cap * 2 : 64;
                cJSON **more = realloc(found, cap * sizeof(*found));
                if (!more) {
                    cJSON_Delete(a);
                    break;
                }
                found = more;
            }
            found[n_found++] = a;
        }
    }
    if (rc == 0) {
        if (n_found > 1)
            qsort(found, n_found, sizeof(*found), cmp_alert_newest_first);
        cJSON *o = cJSON_CreateObject();
        cJSON *list = cJSON_AddArrayToObject(o, "alerts");
        for (size_t i = 0; i < n_found; i++) {
            if (i < limit)
                cJSON_AddItemToArray(list, found[i]);
            else
                cJSON_Delete(found[i]);
        }
        cJSON_AddNumberToObject(o, "matching", (double)n_found);
        cJSON_AddBoolToObject(o, "truncated", n_found > limit);
        *out = o;
    } else {
        for (size_t i = 0; i < n_found; i++)
            cJSON_Delete(found[i]);
        if (!err[0])
            snprintf(err, errlen, "out of memory");
    }
    free(found);
    if (replies)
        tw_store_replies_free(replies, n_assets);
    free(cmds);
    free(argvs);
    free(keys);
    free(assets);
    if (ids)
        tw_store_replies_free(ids, 1);
    return rc;
}

void mcp_signal_limits(cJSON *o, const struct tw_model_signal *spec)
{
    cJSON_AddStringToObject(o, "unit", spec->unit);
    if (spec->warn.has_above)
        cJSON_AddNumberToObject(o, "warn_above", spec->warn.above);
    if (spec->warn.has_below)
        cJSON_AddNumberToObject(o, "warn_below", spec->warn.below);
    if (spec->alarm.has_above)
        cJSON_AddNumberToObject(o, "alarm_above", spec->alarm.above);
    if (spec->alarm.has_below)
        cJSON_AddNumberToObject(o, "alarm_below", spec->alarm.below);
}

/* The plant model's word on the signal: unit and limits. */
static void add_limits(cJSON *o, const struct tw_model *m, const char *asset, const char *signal)
{
    const struct tw_model_signal *spec = m ? tw_model_asset_signal(m, asset, signal) : NULL;
    if (spec)
        mcp_signal_limits(cJSON_AddObjectToObject(o, "limits"), spec);
}

/* The signal's forecast from the stored Prediction: model, quality, and the points. */
static void add_forecast(struct mcp_twin *t, cJSON *o, const char *asset, const char *signal)
{
    char key[KEY_MAX];
    snprintf(key, sizeof(key), "twin:{%s}:prediction", asset);
    const char *argv[] = {"GET", key};
    struct tw_reply *r;
    char err[256];
    struct tw_prediction_msg pm;
    if (redis_call(t, &r, 2, argv, err, sizeof(err)) < 0)
        return;
    if (r->type == TW_REPLY_STR &&
        tw_codec_decode_prediction((const uint8_t *)r->str, r->len, &pm) == 0) {
        for (size_t i = 0; i < pm.p.n_forecasts; i++) {
            const struct tw_signal_forecast *f = &pm.p.forecasts[i];
            if (strcmp(f->signal, signal) != 0)
                continue;
            cJSON *fo = cJSON_AddObjectToObject(o, "forecast");
            cJSON_AddNumberToObject(fo, "basis_ts_ms", (double)pm.p.basis_ts_ms);
            cJSON_AddStringToObject(fo, "model", f->model ? f->model : "");
            cJSON *q = cJSON_AddObjectToObject(fo, "quality");
            cJSON_AddNumberToObject(q, "n", (double)f->quality.n);
            cJSON_AddNumberToObject(q, "mase", f->quality.mase);
            cJSON_AddNumberToObject(q, "coverage", f->quality.coverage);
            cJSON *pts = cJSON_AddArrayToObject(fo, "points");
            for (size_t k = 0; k < f->n_points; k++) {
                cJSON *p = cJSON_CreateObject();
                cJSON_AddNumberToObject(p, "ts_ms", (double)f->points[k].ts_ms);
                cJSON_AddNumberToObject(p, "mean", f->points[k].mean);
                cJSON_AddNumberToObject(p, "lo", f->points[k].lo);
                cJSON_AddNumberToObject(p, "hi", f->points[k].hi);
                cJSON_AddItemToArray(pts, p);
            }
        }
        tw_codec_prediction_free(&pm);
    }
    tw_store_replies_free(r, 1);
}

/* The signal's last samples up to the alert's time (newest last). */
static void add_recent(struct mcp_twin *t, cJSON *o, const char *asset, const char *signal)
{
    char key[KEY_MAX], count[16], err[256];
    snprintf(key, sizeof(key), "twin:{%s}:history", asset);
    snprintf(count, sizeof(count), "%d", EXPLAIN_HISTORY * 4);
    const char *argv[] = {"XREVRANGE", key, "+", "-", "COUNT", count};
    struct tw_reply *r;
    if (redis_call(t, &r, 6, argv, err, sizeof(err)) < 0)
        return;
    cJSON *list = cJSON_AddArrayToObject(o, "recent_samples");
    size_t taken = 0;
    for (size_t k = r->n; k-- > 0 && taken < EXPLAIN_HISTORY * 4;) {
        const struct tw_reply *e = &r->elem[k];
        if (e->type != TW_REPLY_ARRAY || e->n != 2 || e->elem[1].type != TW_REPLY_ARRAY)
            continue;
        const struct tw_reply *f = &e->elem[1];
        double ts = -1, value = 0;
        bool has = false;
        for (size_t i = 0; i + 1 < f->n; i += 2) {
            if (f->elem[i].type != TW_REPLY_STR)
                continue;
            if (strcmp(f->elem[i].str, "ts_ms") == 0)
                reply_text_double(&f->elem[i + 1], &ts);
            else if (strcmp(f->elem[i].str, signal) == 0)
                has = reply_text_double(&f->elem[i + 1], &value);
        }
        if (!has)
            continue;
        cJSON *p = cJSON_CreateObject();
        cJSON_AddNumberToObject(p, "ts_ms", ts);
        cJSON_AddNumberToObject(p, "value", value);
        cJSON_AddItemToArray(list, p);
        taken++;
    }
    while (cJSON_GetArraySize(list) > EXPLAIN_HISTORY)
        cJSON_DeleteItemFromArray(list, 0);
    tw_store_replies_free(r, 1);
}

static const char *const kind_meaning[][2] = {
    {"anomaly", "the signal left the band its model expected (a large standardised one-step "
                "residual, confirmed by CUSUM): something changed that the model's history did "
                "not explain"},
    {"threshold_forecast", "the forecast crosses a limit of the plant model within the horizon: "
                           "eta_ms says when, from the forecast's mean path"},
    {"threshold_breach", "the measured value crossed a limit of the plant model"},
    {"cleared", "an earlier alert of this signal is over"},
};

static int tool_explain_alert(void *ctx, const cJSON *args, cJSON **out, char *err, size_t errlen)
{
    struct mcp_twin *t = ctx;
    const char *asset = asset_arg(args, err, errlen);
    const cJSON *signal = cJSON_GetObjectItemCaseSensitive(args, "signal");
    if (!asset)
        return -1;
    if (!cJSON_IsString(signal) ||
        !tw_valid_signal(signal->valuestring, strlen(signal->valuestring))) {
        snprintf(err, errlen,
                 "\"signal\" must be a signal name of the asset (get_state lists them)");
        return -1;
    }
    int64_t at = int_arg(args, "ts_ms", 0);
    char key[KEY_MAX], count[16];
    snprintf(key, sizeof(key), "twin:{%s}:alerts", asset);
    snprintf(count, sizeof(count), "%d", ALERTS_PER_ASSET_MAX);
    const char *argv[] = {"XREVRANGE", key, "+", "-", "COUNT", count};
    struct tw_reply *r;
    if (redis_call(t, &r, 6, argv, err, errlen) < 0)
        return -1;
    cJSON *alert = NULL;
    for (size_t k = 0; k < r->n && !alert; k++) { /* newest first */
        cJSON *a = alert_entry(asset, &r->elem[k]);
        const cJSON *s = cJSON_GetObjectItemCaseSensitive(a, "signal");
        bool match = cJSON_IsString(s) && strcmp(s->valuestring, signal->valuestring) == 0 &&
                     (at == 0 || (int64_t)alert_ts(a) == at);
        if (match)
            alert = a;
        else
            cJSON_Delete(a);
    }
    tw_store_replies_free(r, 1);
    if (!alert) {
        snprintf(err, errlen, "no alert of %s / %.64s%s in the alert log (list_alerts shows them)",
                 asset, signal->valuestring, at ? " at that ts_ms" : "");
        return -1;
    }
    cJSON *o = cJSON_CreateObject();
    cJSON_AddItemToObject(o, "alert", alert);
    const cJSON *kind = cJSON_GetObjectItemCaseSensitive(alert, "kind");
    for (size_t i = 0; cJSON_IsString(kind) && i < sizeof(kind_meaning) / sizeof(kind_meaning[0]);
         i++)
        if (strcmp(kind->valuestring, kind_meaning[i][0]) == 0)
            cJSON_AddStringToObject(o, "meaning", kind_meaning[i][1]);
    add_limits(o, t->model, asset, signal->valuestring);
    add_recent(t, o, asset, signal->valuestring);
    add_forecast(t, o, asset, signal->valuestring);
    *out = o;
    return 0;
}

/* ---- the table ------------------------------------------------------------------------------- */

const struct mcp_tool mcp_twin_tools[] = {
    {"list_assets", "List assets",
     "The assets the twin knows (those that have sent telemetry), sorted by id. Use the ids "
     "with get_state, get_history and get_prediction.",
     "{\"type\":\"object\",\"properties\":{"
     "\"prefix\":{\"type\":\"string\",\"maxLength\":64,\"description\":\"only ids starting "
     "with this\"},"
     "\"limit\":{\"type\":\"integer\",\"minimum\":1,\"maximum\":10000,\"description\":\"most "
     "ids returned (default 1000)\"}},\"additionalProperties\":false}",
     "{\"type\":\"object\",\"properties\":{\"assets\":{\"type\":\"array\",\"items\":{\"type\":"
     "\"string\"}},\"matching\":{\"type\":\"integer\"},\"truncated\":{\"type\":\"boolean\"}},"
     "\"required\":[\"assets\",\"matching\",\"truncated\"]}",
     tool_list_assets},
    {"get_state", "Current state of an asset",
     "The asset's latest value of every signal, as last reported by its device, with the "
     "device time (ts_ms, Unix ms) and sequence number of the latest update and the signals it "
     "changed.",
     "{\"type\":\"object\",\"properties\":{" ASSET_PROP "},\"required\":[\"asset\"],"
     "\"additionalProperties\":false}",
     "{\"type\":\"object\",\"properties\":{\"asset\":{\"type\":\"string\"},\"signals\":{\"type\":"
     "\"object\",\"additionalProperties\":{\"type\":\"number\"}},\"seq\":{\"type\":\"number\"},"
     "\"ts_ms\":{\"type\":\"number\"},\"ingest_ms\":{\"type\":\"number\"},\"changed\":{\"type\":"
     "\"string\"}},\"required\":[\"asset\",\"signals\"]}",
     tool_get_state},
    {"get_history", "History of an asset's signals",
     "Past samples of an asset, oldest first, downsampled to at most max_points points: each "
     "point is the mean (and min, max) of n consecutive samples, with the device time of its "
     "first. from_ms/to_ms (Unix ms) select by the time the twin recorded the samples; without "
     "them the newest samples are used. At most 20000 samples are read per call (truncated).",
     "{\"type\":\"object\",\"properties\":{" ASSET_PROP ","
     "\"signals\":{\"type\":\"array\",\"items\":{\"type\":\"string\",\"maxLength\":64},"
     "\"maxItems\":64,\"description\":\"only these signals (default: all)\"},"
     "\"from_ms\":{\"type\":\"integer\",\"minimum\":0,\"description\":\"start, Unix ms\"},"
     "\"to_ms\":{\"type\":\"integer\",\"minimum\":0,\"description\":\"end, Unix ms\"},"
     "\"max_points\":{\"type\":\"integer\",\"minimum\":1,\"maximum\":2000,\"description\":"
     "\"points returned at most (default 200)\"}},"
     "\"required\":[\"asset\"],\"additionalProperties\":false}",
     "{\"type\":\"object\",\"properties\":{\"asset\":{\"type\":\"string\"},\"entries\":{\"type\":"
     "\"integer\"},\"truncated\":{\"type\":\"boolean\"},\"entries_per_point\":{\"type\":"
     "\"integer\"},\"points\":{\"type\":\"array\",\"items\":{\"type\":\"object\"}}},"
     "\"required\":[\"asset\",\"entries\",\"points\"]}",
     tool_get_history},
    {"get_prediction", "Forecast of an asset",
     "The twin's latest forecast for every signal of the asset: from basis_ts_ms (the last "
     "sample used) forward, each point with its mean and 95 % interval (lo, hi), the model "
     "that made it and that model's measured quality on its own one-step forecasts (mae, rmse, "
     "mase below 1 beats the naive forecast, coverage of the 95 % interval).",
     "{\"type\":\"object\",\"properties\":{" ASSET_PROP ","
     "\"signals\":{\"type\":\"array\",\"items\":{\"type\":\"string\",\"maxLength\":64},"
     "\"maxItems\":64,\"description\":\"only these signals (default: all)\"},"
     "\"points\":{\"type\":\"integer\",\"minimum\":1,\"maximum\":1000,\"description\":"
     "\"forecast points per signal at most (default all)\"}},"
     "\"required\":[\"asset\"],\"additionalProperties\":false}",
     "{\"type\":\"object\",\"properties\":{\"asset\":{\"type\":\"string\"},\"basis_ts_ms\":{"
     "\"type\":\"number\"},\"forecasts\":{\"type\":\"array\",\"items\":{\"type\":\"object\"}}},"
     "\"required\":[\"asset\",\"basis_ts_ms\",\"forecasts\"]}",
     tool_get_prediction},
    {"list_alerts", "List alerts",
     "The alerts the predictor raised, newest first, from each asset's alert log: anomaly (the "
     "signal left what its model expected), threshold_forecast (the forecast crosses a "
     "warn/alarm limit: eta_ms is when), threshold_breach (the measured value crossed a limit) "
     "and cleared. Filter by asset, time (since_ms, Unix ms) and kinds. Use explain_alert for "
     "the evidence behind one.",
     "{\"type\":\"object\",\"properties\":{"
     "\"asset\":{\"type\":\"string\",\"minLength\":1,\"maxLength\":64,\"description\":"
     "\"only this asset (default: all)\"},"
     "\"since_ms\":{\"type\":\"integer\",\"minimum\":0,\"description\":\"only alerts from "
     "this time on, Unix ms\"},"
     "\"kinds\":{\"type\":\"array\",\"items\":{\"type\":\"string\",\"enum\":[\"anomaly\","
     "\"threshold_forecast\",\"threshold_breach\",\"cleared\"]},\"maxItems\":4},"
     "\"limit\":{\"type\":\"integer\",\"minimum\":1,\"maximum\":1000,\"description\":"
     "\"most alerts returned (default 50)\"}},\"additionalProperties\":false}",
     "{\"type\":\"object\",\"properties\":{\"alerts\":{\"type\":\"array\",\"items\":{\"type\":"
     "\"object\"}},\"matching\":{\"type\":\"integer\"},\"truncated\":{\"type\":\"boolean\"}},"
     "\"required\":[\"alerts\",\"matching\",\"truncated\"]}",
     tool_list_alerts},
    {"explain_alert", "Explain an alert",
     "The evidence behind an alert of one signal (the newest, or the one at ts_ms): what the "
     "alert kind means, the plant model's unit and limits for the signal, its last samples, and "
     "its current forecast with the model that made it and that model's measured quality (MASE "
     "below 1 beats the naive forecast; coverage of the 95 % interval).",
     "{\"type\":\"object\",\"properties\":{" ASSET_PROP ","
     "\"signal\":{\"type\":\"string\",\"minLength\":1,\"maxLength\":64,\"description\":"
     "\"the alert's signal\"},"
     "\"ts_ms\":{\"type\":\"integer\",\"minimum\":0,\"description\":\"the alert's ts_ms as "
     "list_alerts gives it (default: the newest alert of the signal)\"}},"
     "\"required\":[\"asset\",\"signal\"],\"additionalProperties\":false}",
     "{\"type\":\"object\",\"properties\":{\"alert\":{\"type\":\"object\"},\"meaning\":{"
     "\"type\":\"string\"},\"limits\":{\"type\":\"object\"},\"recent_samples\":{\"type\":"
     "\"array\"},\"forecast\":{\"type\":\"object\"}},\"required\":[\"alert\"]}",
     tool_explain_alert},
    {"run_scenario", "Run a what-if scenario",
     "Simulates the plant forward from its live state (or from the plant model alone with "
     "ignore_live) with and without the given disruptions, many times over, and returns every "
     "KPI (throughput, lead_time, service_level, orders_late, backlog, per station, buffer and "
     "stock) as baseline, scenario and difference, each a mean with its 95 % interval; "
     "'significant' marks a difference whose interval excludes 0. Perturbations: machine_down "
     "(target a station or machine; start_hours from now, duration_hours), supplier_late "
     "(target a supplier; delay_hours), demand_factor (factor, e.g. 1.4 for +40 %; start_hours, "
     "duration_hours), set_parameter (target a parameter path such as station.press.machines; "
     "value), maintain (target a station or machine; start_hours, duration_hours > 0: down "
     "for that long, then as new, its live wear forgotten), slow (target a station or machine; "
     "factor = speed in (0, 1], e.g. 0.8; start_hours, duration_hours (0: to the end); "
     "wear_exponent >= 0: times to failure x factor^-wear_exponent). Sends progress "
     "notifications when the call carries a progressToken. Takes seconds to minutes.",
     "{\"type\":\"object\",\"properties\":{"
     "\"name\":{\"type\":\"string\",\"maxLength\":120,\"description\":\"a label for the "
     "run\"},"
     "\"perturbations\":{\"type\":\"array\",\"maxItems\":16,\"items\":{\"type\":\"object\","
     "\"properties\":{\"kind\":{\"type\":\"string\",\"enum\":[\"machine_down\","
     "\"supplier_late\",\"demand_factor\",\"set_parameter\",\"maintain\",\"slow\"]},"
     "\"target\":{\"type\":\"string\"},\"start_hours\":{\"type\":\"number\",\"minimum\":"
     "0},\"duration_hours\":{\"type\":\"number\",\"minimum\":0},\"delay_hours\":{\"type\":"
     "\"number\",\"minimum\":0},\"factor\":{\"type\":\"number\",\"minimum\":0,"
     "\"description\":\"demand_factor: the rate's factor; slow: the speed, in (0, 1]\"},"
     "\"value\":{\"type\":\"number\",\"description\":\"set_parameter: the new value\"},"
     "\"wear_exponent\":{\"type\":\"number\",\"minimum\":0,\"maximum\":10,"
     "\"description\":\"slow: times to failure x factor^-wear_exponent (default 0: wear does "
     "not slow)\"}},"
     "\"required\":[\"kind\"]}},"
     "\"horizon_hours\":{\"type\":\"number\",\"minimum\":1,\"maximum\":8784,"
     "\"description\":\"simulated time (default: the runner's, 7 days)\"},"
     "\"replications\":{\"type\":\"integer\",\"minimum\":2,\"maximum\":1000,"
     "\"description\":\"runs of each side (default: the runner's, 20)\"},"
     "\"seed\":{\"type\":\"integer\",\"minimum\":0},"
     "\"ignore_live\":{\"type\":\"boolean\",\"description\":\"start from the plant model, "
     "not the live state\"},"
     "\"timeout_s\":{\"type\":\"integer\",\"minimum\":1,\"maximum\":3600,\"description\":"
     "\"how long to wait for the result (default 300)\"}},\"additionalProperties\":false}",
     "{\"type\":\"object\",\"properties\":{\"id\":{\"type\":\"string\"},\"status\":{"
     "\"type\":\"string\"},\"kpis\":{\"type\":\"array\",\"items\":{\"type\":\"object\"}}},"
     "\"required\":[\"id\",\"status\",\"kpis\"]}",
     mcp_tool_run_scenario},
    {"recommend", "Recommend an action for a machine",
     "Asks twin-advisor what to do with one machine now: every candidate action the plant model "
     "declares for it (maintain now, maintain when the shift ends, slow down) is simulated from "
     "the live state against leaving it running, with paired replications, and ranked by the "
     "plant model's objective (e.g. the station's downtime). Returns the recommended action, "
     "each option's objective and effect with its 95 % interval and KPIs, the decision "
     "(advice; executed or refused when autonomy is on) and a sentence on why. An action is "
     "recommended only when its interval lies wholly on the good side of zero. Does not act: "
     "approving is for a person (twinctl approve). Takes about a second.",
     "{\"type\":\"object\",\"properties\":{" ASSET_PROP ","
     "\"signal\":{\"type\":\"string\",\"minLength\":1,\"maxLength\":64,\"description\":"
     "\"the signal of concern (optional)\"},"
     "\"timeout_s\":{\"type\":\"integer\",\"minimum\":1,\"maximum\":600,\"description\":"
     "\"how long to wait for the answer (default 120)\"}},"
     "\"required\":[\"asset\"],\"additionalProperties\":false}",
     "{\"type\":\"object\",\"properties\":{\"id\":{\"type\":\"string\"},\"asset_id\":{"
     "\"type\":\"string\"},\"action\":{\"type\":\"object\"},\"decision\":{\"type\":\"string\"},"
     "\"why\":{\"type\":\"string\"},\"objective\":{\"type\":\"string\"},\"options\":{\"type\":"
     "\"array\",\"items\":{\"type\":\"object\"}}},"
     "\"required\":[\"id\",\"asset_id\",\"action\",\"decision\",\"why\",\"options\"]}",
     mcp_tool_recommend},
};

const size_t mcp_twin_n_tools = sizeof(mcp_twin_tools) / sizeof(mcp_twin_tools[0]);
