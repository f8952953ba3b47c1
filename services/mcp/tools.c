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
#include "twin/store.h"
#include "twin/validate.h"

#define HISTORY_READ_MAX 20000 /* history entries read for one call at most */
#define KEY_MAX          (TW_NAME_MAX + 32)

#define ASSET_PROP                                                                                 \
    "\"asset\":{\"type\":\"string\",\"minLength\":1,\"maxLength\":64,"                              \
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
        snprintf(err, errlen, "\"asset\" must be an asset id of 1 to %d letters, digits, '.', "
                 "'_' or '-' (list_assets shows them)", TW_NAME_MAX);
        return NULL;
    }
    return a->valuestring;
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

/* ---- get_state -------------------------------------------------------------------------------- */

static int tool_get_state(void *ctx, const cJSON *args, cJSON **out, char *err, size_t errlen)
{
    struct mcp_twin *t = ctx;
    const char *asset = asset_arg(args, err, errlen);
    if (!asset)
        return -1;
    char key[KEY_MAX];
    snprintf(key, sizeof(key), "twin:{%s}:state", asset);
    const char *argv[] = {"HGETALL", key};
    struct tw_reply *r;
    if (redis_call(t, &r, 2, argv, err, errlen) < 0)
        return -1;
    if (r->n == 0) {
        tw_store_replies_free(r, 1);
        snprintf(err, errlen, "no state for asset \"%s\": it has sent no telemetry yet, or the "
                 "id is wrong (list_assets shows the known ones)", asset);
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
                cJSON_AddNumberToObject(o, strcmp(f->str, "_seq") == 0 ? "seq"
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

/* ---- get_history ------------------------------------------------------------------------------ */

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

/* ---- get_prediction --------------------------------------------------------------------------- */

static int tool_get_prediction(void *ctx, const cJSON *args, cJSON **out, char *err,
                               size_t errlen)
{
    struct mcp_twin *t = ctx;
    const char *asset = asset_arg(args, err, errlen);
    if (!asset)
        return -1;
    char key[KEY_MAX];
    snprintf(key, sizeof(key), "twin:{%s}:prediction", asset);
    const char *argv[] = {"GET", key};
    struct tw_reply *r;
    if (redis_call(t, &r, 2, argv, err, errlen) < 0)
        return -1;
    struct tw_prediction_msg pm;
    if (r->type != TW_REPLY_STR) {
        tw_store_replies_free(r, 1);
        snprintf(err, errlen, "no prediction for asset \"%s\" yet: the predictor publishes one "
                 "once the asset has sent a few samples (list_assets shows the known ones)", asset);
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

/* ---- the table ---------------------------------------------------------------------------------- */

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
};

const size_t mcp_twin_n_tools = sizeof(mcp_twin_tools) / sizeof(mcp_twin_tools[0]);
