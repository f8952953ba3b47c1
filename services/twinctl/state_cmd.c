/* SPDX-License-Identifier: Apache-2.0 */
/* `twinctl assets` and `twinctl state ASSET`: the twin's current state read from Redis
 * (twin:assets and twin:{asset}:state), with units and limit status from the plant model. */
#include <cjson/cJSON.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "twin/clock.h"
#include "twin/err.h"
#include "twin/model.h"
#include "twin/store.h"
#include "twin/validate.h"
#include "twinctl.h"

#define ASSET_BATCH 256 /* assets read per round trip */
#define KEY_MAX     (TW_NAME_MAX + 16)

struct asset_row {
    char id[TW_NAME_MAX + 1];
    int64_t ts_ms, ingest_ms;
    uint64_t seq;
    long long n_signals; /* -1: no state hash */
};

static int64_t reply_i64(const struct tw_reply *r)
{
    return r->type == TW_REPLY_STR ? strtoll(r->str, NULL, 10) : 0;
}

static int by_id(const void *a, const void *b)
{
    return strcmp(((const struct asset_row *)a)->id, ((const struct asset_row *)b)->id);
}

/* Reads the meta fields and field count of rows[0..n) in one round trip. */
static int read_rows(const struct ctl_settings *s, struct tw_store *st, struct asset_row *rows,
                     size_t n)
{
    static char keys[ASSET_BATCH][KEY_MAX];
    static const char *argv[ASSET_BATCH][6], *hlen[ASSET_BATCH][2];
    struct tw_cmd cmds[2 * ASSET_BATCH];
    struct tw_reply *r = NULL;
    for (size_t i = 0; i < n; i++) {
        snprintf(keys[i], KEY_MAX, "twin:{%s}:state", rows[i].id);
        const char *a[6] = {"HMGET", keys[i], "_ts_ms", "_ingest_ms", "_seq", "_changed"};
        memcpy(argv[i], a, sizeof(a));
        hlen[i][0] = "HLEN";
        hlen[i][1] = keys[i];
        cmds[2 * i] = (struct tw_cmd){.argc = 6, .argv = argv[i]};
        cmds[2 * i + 1] = (struct tw_cmd){.argc = 2, .argv = hlen[i]};
    }
    int rc = ctl_redis_run(s, st, cmds, 2 * n, &r);
    for (size_t i = 0; rc == 0 && i < n; i++) {
        const struct tw_reply *m = &r[2 * i], *l = &r[2 * i + 1];
        if (m->type != TW_REPLY_ARRAY || m->n != 4 || l->type != TW_REPLY_INT) {
            fprintf(stderr, "twinctl: Redis refused reading %s: %s\n", keys[i],
                    m->type == TW_REPLY_ERROR ? m->str : "unexpected reply");
            rc = TW_EIO;
            break;
        }
        long long metas = 0;
        for (size_t k = 0; k < 4; k++)
            metas += m->elem[k].type == TW_REPLY_STR;
        rows[i].ts_ms = reply_i64(&m->elem[0]);
        rows[i].ingest_ms = reply_i64(&m->elem[1]);
        rows[i].seq = m->elem[2].type == TW_REPLY_STR ? strtoull(m->elem[2].str, NULL, 10) : 0;
        rows[i].n_signals = l->integer == 0 ? -1 : l->integer - metas;
    }
    tw_store_replies_free(r, 2 * n);
    return rc;
}

/* The members of twin:assets, sorted, into *rows (malloc). */
static int list_assets(const struct ctl_settings *s, struct tw_store *st, struct asset_row **rows,
                       size_t *n)
{
    const char *argv[] = {"SMEMBERS", "twin:assets"};
    struct tw_cmd cmd = {.argc = 2, .argv = argv};
    struct tw_reply *r = NULL;
    int rc = ctl_redis_run(s, st, &cmd, 1, &r);
    if (rc < 0)
        return rc;
    if (r->type != TW_REPLY_ARRAY) {
        fprintf(stderr, "twinctl: Redis refused SMEMBERS twin:assets: %s\n",
                r->type == TW_REPLY_ERROR ? r->str : "not a set");
        tw_store_replies_free(r, 1);
        return TW_EIO;
    }
    *rows = calloc(r->n ? r->n : 1, sizeof(**rows));
    *n = 0;
    for (size_t i = 0; *rows && i < r->n; i++)
        if (r->elem[i].type == TW_REPLY_STR && r->elem[i].len <= TW_NAME_MAX)
            memcpy((*rows)[(*n)++].id, r->elem[i].str, r->elem[i].len + 1);
    tw_store_replies_free(r, 1);
    if (!*rows)
        return TW_ENOMEM;
    qsort(*rows, *n, sizeof(**rows), by_id);
    return 0;
}

static void print_asset_row(const struct asset_row *a, int64_t now, bool json)
{
    char ingested[48], age[32], id[CTL_ESC_LEN(TW_NAME_MAX)];
    if (json) {
        cJSON *j = cJSON_CreateObject();
        cJSON_AddStringToObject(j, "asset", a->id);
        cJSON_AddItemToObject(j, "signals", ctl_json_i64(a->n_signals < 0 ? 0 : a->n_signals));
        cJSON_AddItemToObject(j, "seq", ctl_json_u64(a->seq));
        cJSON_AddItemToObject(j, "ts_ms", ctl_json_i64(a->ts_ms));
        cJSON_AddItemToObject(j, "ingest_ms", ctl_json_i64(a->ingest_ms));
        cJSON_AddItemToObject(j, "age_ms",
                              a->ingest_ms ? ctl_json_diff(now, a->ingest_ms) : cJSON_CreateNull());
        ctl_json_emit(j);
        return;
    }
    ctl_fmt_time(a->ingest_ms, ingested, sizeof(ingested));
    if (a->ingest_ms)
        ctl_fmt_span_diff(now, a->ingest_ms, age, sizeof(age));
    else
        snprintf(age, sizeof(age), a->n_signals < 0 ? "no state" : "-");
    printf("%-24s %7lld %12" PRIu64 "  %-27s  %s\n", ctl_esc(a->id, id, sizeof(id)),
           a->n_signals < 0 ? 0LL : a->n_signals, a->seq, ingested, age);
}

int ctl_assets(const struct ctl_settings *s, int argc, char **argv)
{
    bool json = false;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--json") == 0)
            json = true;
        else
            return ctl_usage_error("assets: unexpected \"%.64s\"", argv[i]);
    }
    struct tw_store *st = NULL;
    struct asset_row *rows = NULL;
    size_t n = 0;
    int rc = ctl_redis_open(s, &st);
    if (rc == 0)
        rc = list_assets(s, st, &rows, &n);
    for (size_t i = 0; rc == 0 && i < n; i += ASSET_BATCH)
        rc = read_rows(s, st, rows + i, n - i < ASSET_BATCH ? n - i : ASSET_BATCH);
    if (rc == 0) {
        int64_t now = tw_now_ms();
        if (!json)
            printf("%-24s %7s %12s  %-27s  %s\n", "ASSET", "SIGNALS", "SEQ", "LAST UPDATE (ingest)",
                   "AGE");
        for (size_t i = 0; i < n; i++)
            print_asset_row(&rows[i], now, json);
        if (!json)
            printf("%zu asset%s\n", n, n == 1 ? "" : "s");
    }
    free(rows);
    tw_store_destroy(st);
    return rc == 0 ? CTL_EXIT_OK : CTL_EXIT_FAIL;
}

/* ---- state --------------------------------------------------------------------------------- */

struct field {
    const char *name;
    const char *value;
};

static int by_name(const void *a, const void *b)
{
    return strcmp(((const struct field *)a)->name, ((const struct field *)b)->name);
}

/* "OK", "WARN", "ALARM" for a value against the signal's limits, or NULL without limits;
 * *limit says which limit it is beyond (or the alarm limits when OK). */
static const char *limit_status(const struct tw_model_signal *sig, double v, char *limit,
                                size_t len)
{
    const struct tw_model_limit *lv[] = {&sig->alarm, &sig->warn};
    const char *words[] = {"ALARM", "WARN"};
    limit[0] = '\0';
    for (int k = 0; k < 2; k++) {
        if (lv[k]->has_above && v > lv[k]->above) {
            snprintf(limit, len, "> %.6g", lv[k]->above);
            return words[k];
        }
        if (lv[k]->has_below && v < lv[k]->below) {
            snprintf(limit, len, "< %.6g", lv[k]->below);
            return words[k];
        }
    }
    bool any =
        sig->alarm.has_above || sig->alarm.has_below || sig->warn.has_above || sig->warn.has_below;
    return any ? "OK" : NULL;
}

struct state_view {
    const char *asset;
    const struct tw_model *model;
    struct field *sig; /* signals, sorted */
    size_t n;
    int64_t ts_ms, ingest_ms;
    const char *seq, *changed;
};

static void print_state_json(const struct state_view *v)
{
    cJSON *j = cJSON_CreateObject(), *arr = cJSON_CreateArray();
    cJSON_AddStringToObject(j, "asset", v->asset);
    cJSON_AddItemToObject(j, "seq", cJSON_CreateRaw(v->seq));
    cJSON_AddItemToObject(j, "ts_ms", ctl_json_i64(v->ts_ms));
    cJSON_AddItemToObject(j, "ingest_ms", ctl_json_i64(v->ingest_ms));
    for (size_t i = 0; i < v->n; i++) {
        cJSON *o = cJSON_CreateObject();
        char limit[48];
        double x = strtod(v->sig[i].value, NULL);
        const struct tw_model_signal *spec =
            v->model ? tw_model_asset_signal(v->model, v->asset, v->sig[i].name) : NULL;
        const char *status = spec ? limit_status(spec, x, limit, sizeof(limit)) : NULL;
        cJSON_AddStringToObject(o, "signal", v->sig[i].name);
        cJSON_AddNumberToObject(o, "value", x);
        cJSON_AddStringToObject(o, "text", v->sig[i].value);
        if (spec)
            cJSON_AddStringToObject(o, "unit", spec->unit);
        if (status) {
            cJSON_AddStringToObject(o, "status", status);
            if (limit[0])
                cJSON_AddStringToObject(o, "limit", limit);
        }
        cJSON_AddItemToArray(arr, o);
    }
    cJSON_AddItemToObject(j, "signals", arr);
    ctl_json_emit(j);
}

static void print_state_text(const struct state_view *v)
{
    char dev[48], ing[48], age[32], lag[32], seq[CTL_ESC_LEN(24)], name[CTL_ESC_LEN(128)];
    char changed[CTL_ESC_LEN(1024)];
    int64_t now = tw_now_ms();
    ctl_fmt_time(v->ts_ms, dev, sizeof(dev));
    ctl_fmt_time(v->ingest_ms, ing, sizeof(ing));
    ctl_fmt_span_diff(now, v->ingest_ms, age, sizeof(age));
    ctl_fmt_span_diff(v->ingest_ms, v->ts_ms, lag, sizeof(lag));
    printf("%s  seq %s\n  device time %s\n  ingested    %s (%s ago; %s after device time)\n",
           v->asset, ctl_esc(v->seq, seq, sizeof(seq)), dev, ing, age, lag);
    if (v->changed)
        printf("  last update carried: %s\n", ctl_esc(v->changed, changed, sizeof(changed)));
    printf("\n%-32s %-20s %-10s %s\n", "SIGNAL", "VALUE", "UNIT", v->model ? "STATUS" : "");
    for (size_t i = 0; i < v->n; i++) {
        char limit[48] = "";
        const struct tw_model_signal *spec =
            v->model ? tw_model_asset_signal(v->model, v->asset, v->sig[i].name) : NULL;
        const char *status =
            spec ? limit_status(spec, strtod(v->sig[i].value, NULL), limit, sizeof(limit)) : NULL;
        printf("%-32s %-20.10g %-10s %s%s%s%s\n", ctl_esc(v->sig[i].name, name, sizeof(name)),
               strtod(v->sig[i].value, NULL), spec && spec->unit[0] ? spec->unit : "-",
               status ? status : (v->model ? (spec ? "-" : "not in model") : ""),
               limit[0] ? " (" : "", limit, limit[0] ? ")" : "");
    }
}

/* Splits an HGETALL reply into meta fields and sorted signals, and prints them. */
static int show_state(const struct state_view *base, const struct tw_reply *r, bool json)
{
    struct state_view v = *base;
    v.seq = "0";
    v.sig = calloc(r->n / 2 + 1, sizeof(*v.sig));
    if (!v.sig)
        return TW_ENOMEM;
    for (size_t i = 0; i + 1 < r->n; i += 2) {
        const char *k = r->elem[i].str, *val = r->elem[i + 1].str;
        if (!k || !val)
            continue;
        if (strcmp(k, "_ts_ms") == 0)
            v.ts_ms = strtoll(val, NULL, 10);
        else if (strcmp(k, "_ingest_ms") == 0)
            v.ingest_ms = strtoll(val, NULL, 10);
        else if (strcmp(k, "_seq") == 0 && val[0] >= '0' && val[0] <= '9')
            v.seq = val;
        else if (strcmp(k, "_changed") == 0)
            v.changed = val;
        else if (k[0] != '_')
            v.sig[v.n++] = (struct field){k, val};
    }
    qsort(v.sig, v.n, sizeof(*v.sig), by_name);
    if (json)
        print_state_json(&v);
    else
        print_state_text(&v);
    free(v.sig);
    return 0;
}

/* The plant model of --model or TWIN_MODEL (none when neither is given). */
int ctl_load_model(const char *path, struct tw_model **out)
{
    *out = NULL;
    if (!path || !path[0])
        return 0;
    return tw_model_load_reporting("twinctl", path, out) < 0 ? CTL_EXIT_USAGE : 0;
}

int ctl_state(const struct ctl_settings *s, int argc, char **argv)
{
    const char *asset = NULL, *model_path = getenv("TWIN_MODEL");
    bool json = false;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--json") == 0)
            json = true;
        else if (strcmp(argv[i], "--model") == 0 && i + 1 < argc)
            model_path = argv[++i];
        else if (!asset && argv[i][0] != '-')
            asset = argv[i];
        else
            return ctl_usage_error("state: unexpected \"%.64s\"", argv[i]);
    }
    if (!asset || !tw_valid_asset_id(asset, strlen(asset)))
        return ctl_usage_error("state: give an asset id (1-64 characters of [A-Za-z0-9._-])");
    struct state_view v = {.asset = asset};
    struct tw_model *model = NULL;
    if (ctl_load_model(model_path, &model) != 0)
        return CTL_EXIT_USAGE;
    v.model = model;
    char key[KEY_MAX];
    snprintf(key, sizeof(key), "twin:{%s}:state", asset);
    const char *cmd_argv[] = {"HGETALL", key};
    struct tw_cmd cmd = {.argc = 2, .argv = cmd_argv};
    struct tw_store *st = NULL;
    struct tw_reply *r = NULL;
    int status = CTL_EXIT_FAIL;
    if (ctl_redis_open(s, &st) < 0 || ctl_redis_run(s, st, &cmd, 1, &r) < 0)
        goto out;
    if (r->type != TW_REPLY_ARRAY)
        fprintf(stderr, "twinctl: Redis refused HGETALL %s: %s\n", key,
                r->type == TW_REPLY_ERROR ? r->str : "not a hash");
    else if (r->n == 0)
        fprintf(stderr,
                "twinctl: no state for asset \"%s\": no telemetry applied yet "
                "(`twinctl assets` lists the known ones)\n",
                asset);
    else if (show_state(&v, r, json) == 0)
        status = CTL_EXIT_OK;
out:
    if (r)
        tw_store_replies_free(r, 1);
    tw_store_destroy(st);
    tw_model_free(model);
    return status;
}
