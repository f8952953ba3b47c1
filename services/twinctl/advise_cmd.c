/* SPDX-License-Identifier: Apache-2.0 */
/* `twinctl recommend`, `twinctl approve` and `twinctl audit`: ask twin-advisor what to do with a
 * machine, approve or reject its recommendation, and read the audit stream of its decisions. */
#include <cjson/cJSON.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "advice_json.h"
#include "twin/clock.h"
#include "twin/err.h"
#include "twin/inbox.h"
#include "twin/store.h"
#include "twin/v1/twin.pb-c.h"
#include "twin/validate.h"
#include "twinctl.h"

#define CONNECT_TIMEOUT_MS 10000
#define POLL_MS            200
#define AUDIT_KEY          "twin:audit"

/* ---- printing a Recommendation ------------------------------------------------------------- */

static void print_estimate(const Twin__V1__Estimate *e, bool with_ci, int width)
{
    if (!e || isnan(e->mean)) {
        printf("%-*s", width, "-");
        return;
    }
    char buf[64];
    if (with_ci)
        snprintf(buf, sizeof(buf), "%+.3g (%+.3g .. %+.3g)", e->mean, e->lo, e->hi);
    else
        snprintf(buf, sizeof(buf), "%.4g", e->mean);
    printf("%-*s", width, buf);
}

static void print_recommendation(const Twin__V1__Recommendation *r)
{
    char when[40];
    ctl_fmt_time(r->ts_ms, when, sizeof(when));
    printf("%s  %s  (%s, plant time %s)\n", r->asset_id, r->id, r->trigger, when);
    if (r->status != TWIN__V1__RECOMMENDATION__STATUS__OK) {
        printf("  error: %s\n", r->error);
        return;
    }
    printf("  do: %s\n", r->action ? r->action->label : "?");
    printf("  decision: %s%s%s\n", r->decision, r->command_id[0] ? ", command " : "",
           r->command_id);
    printf("  why: %s\n", r->why);
    printf("  ranked by %s (%s is better) over %.4g h, %u paired replications:\n", r->objective,
           r->maximize ? "higher" : "lower", (double)r->horizon_ms / 3600000.0, r->replications);
    printf("  %-4s %-46s %-12s %s\n", "rank", "action", "objective", "effect (95 % CI)");
    for (size_t i = 0; i < r->n_options; i++) {
        const Twin__V1__ActionOption *o = r->options[i];
        printf("  %-4u %-46.46s ", o->rank, o->action ? o->action->label : "?");
        print_estimate(o->objective, false, 12);
        printf(" ");
        print_estimate(o->effect, true, 0);
        printf("\n");
    }
}

/* ---- recommend / approve ------------------------------------------------------------------- */

/* Waits for a Recommendation on the asset's topic that `want` accepts, or a Rejected from the
 * advisor; prints it. CTL_EXIT_OK, or 1 on a rejection, a refusal or the timeout. */
static int await(struct tw_inbox *c, const char *rec_topic, const char *rej_topic,
                 const char *asset, bool (*want)(const Twin__V1__Recommendation *, const void *),
                 const void *arg, int64_t timeout_ms, bool json)
{
    int64_t deadline = tw_mono_ms() + timeout_ms;
    while (tw_mono_ms() < deadline) {
        struct tw_inbox_msg *m = tw_inbox_next(c, POLL_MS);
        if (!m)
            continue;
        int rc = -1;
        if (strcmp(m->topic, rec_topic) == 0 && !m->retained) {
            Twin__V1__Recommendation *r =
                twin__v1__recommendation__unpack(NULL, m->len, m->payload);
            if (r && want(r, arg)) {
                rc = json ? ctl_json_emit(adv_recommendation_json(m->payload, m->len))
                          : (print_recommendation(r), 0);
                bool bad = r->status != TWIN__V1__RECOMMENDATION__STATUS__OK ||
                           strncmp(r->decision, "refused", 7) == 0;
                rc = rc == 0 && !bad ? CTL_EXIT_OK : 1;
            }
            if (r)
                twin__v1__recommendation__free_unpacked(r, NULL);
        } else if (strcmp(m->topic, rej_topic) == 0) {
            Twin__V1__Rejected *j = twin__v1__rejected__unpack(NULL, m->len, m->payload);
            if (j && strstr(j->topic, asset)) {
                fprintf(stderr, "twinctl: refused by twin-advisor: %s: %s\n", j->reason, j->detail);
                rc = 1;
            }
            if (j)
                twin__v1__rejected__free_unpacked(j, NULL);
        }
        free(m);
        if (rc >= 0)
            return rc;
    }
    fprintf(stderr, "twinctl: no answer from twin-advisor within %" PRId64 " s (is it running?)\n",
            timeout_ms / 1000);
    return 1;
}

static bool answers_request(const Twin__V1__Recommendation *r, const void *id)
{
    return strcmp(r->request_id, (const char *)id) == 0;
}

static bool decided(const Twin__V1__Recommendation *r, const void *id)
{
    return strcmp(r->id, (const char *)id) == 0 && strcmp(r->decision, "advice") != 0 &&
           strcmp(r->decision, "awaiting_approval") != 0;
}

struct advise_opts {
    const char *asset, *rec_id, *signal, *by;
    bool json, reject;
    int64_t timeout_ms;
    size_t count;
};

static int parse_opts(int argc, char **argv, int positional, struct advise_opts *o,
                      const char *usage)
{
    int pos = 0;
    o->timeout_ms = 120000;
    o->count = 20;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        bool more = i + 1 < argc;
        if (strcmp(a, "--json") == 0)
            o->json = true;
        else if (strcmp(a, "--reject") == 0)
            o->reject = true;
        else if (strcmp(a, "--signal") == 0 && more)
            o->signal = argv[++i];
        else if (strcmp(a, "--by") == 0 && more)
            o->by = argv[++i];
        else if (strcmp(a, "--asset") == 0 && more)
            o->asset = argv[++i];
        else if (strcmp(a, "--timeout") == 0 && more) {
            if (ctl_parse_duration(argv[++i], &o->timeout_ms) < 0 || o->timeout_ms <= 0)
                return ctl_usage_error("--timeout: a duration such as 30s or 5m");
        } else if (strcmp(a, "--count") == 0 && more) {
            char *end;
            long v = strtol(argv[++i], &end, 10);
            if (*end || v < 1 || v > 100000)
                return ctl_usage_error("--count: 1 to 100000");
            o->count = (size_t)v;
        } else if (a[0] != '-' && pos < positional) {
            if (pos++ == 0)
                o->asset = a;
            else
                o->rec_id = a;
        } else {
            return ctl_usage_error("%s", usage);
        }
    }
    if (pos != positional)
        return ctl_usage_error("%s", usage);
    if (o->asset && !tw_valid_asset_id(o->asset, strlen(o->asset)))
        return ctl_usage_error("%s: not an asset id", o->asset);
    return 0;
}

static const char *who(const char *by)
{
    const char *u = by ? by : getenv("USER");
    return u && u[0] ? u : "operator";
}

/* Subscribes to the asset's recommendations and the advisor's refusals, publishes the message
 * (buf) on topic, and awaits the answer `want` accepts. */
static int ask(const struct ctl_settings *s, const struct advise_opts *o, const char *topic,
               const uint8_t *buf, size_t len,
               bool (*want)(const Twin__V1__Recommendation *, const void *), const void *arg)
{
    char rec_topic[256], rej_topic[256];
    snprintf(rec_topic, sizeof(rec_topic), "%s/asset/%s/recommendation", s->topic_root, o->asset);
    snprintf(rej_topic, sizeof(rej_topic), "%s/rejected/advisor", s->topic_root);
    const char *filters[] = {rec_topic, rej_topic};
    struct tw_inbox *c = NULL;
    if (ctl_session_open(s, filters, 2, CONNECT_TIMEOUT_MS, &c) < 0)
        return 1;
    int rc = ctl_session_publish(c, topic, buf, len, CONNECT_TIMEOUT_MS) < 0
                 ? 1
                 : await(c, rec_topic, rej_topic, o->asset, want, arg, o->timeout_ms, o->json);
    tw_inbox_close(c);
    return rc;
}

int ctl_recommend(const struct ctl_settings *s, int argc, char **argv)
{
    struct advise_opts o = {0};
    int rc = parse_opts(argc, argv, 1, &o,
                        "usage: twinctl recommend ASSET [--signal S] "
                        "[--timeout 2m] [--json]");
    if (rc)
        return rc;
    char id[64], topic[256];
    snprintf(id, sizeof(id), "ctl-%ld-%" PRId64, (long)getpid(), tw_now_ms());
    Twin__V1__RecommendationRequest m;
    twin__v1__recommendation_request__init(&m);
    m.id = id;
    m.asset_id = (char *)o.asset;
    m.signal = (char *)(o.signal ? o.signal : "");
    m.requested_by = (char *)who(o.by);
    uint8_t buf[512];
    if (twin__v1__recommendation_request__get_packed_size(&m) > sizeof(buf))
        return ctl_usage_error("--signal or --by too long");
    size_t len = twin__v1__recommendation_request__pack(&m, buf);
    snprintf(topic, sizeof(topic), "%s/recommendation/request", s->topic_root);
    return ask(s, &o, topic, buf, len, answers_request, id);
}

int ctl_approve(const struct ctl_settings *s, int argc, char **argv)
{
    struct advise_opts o = {0};
    int rc = parse_opts(argc, argv, 2, &o,
                        "usage: twinctl approve ASSET RECOMMENDATION_ID "
                        "[--reject] [--by NAME] [--json]");
    if (rc)
        return rc;
    Twin__V1__Approval m;
    twin__v1__approval__init(&m);
    m.recommendation_id = (char *)o.rec_id;
    m.asset_id = (char *)o.asset;
    m.approved_by = (char *)who(o.by);
    m.reject = o.reject;
    uint8_t buf[512];
    if (twin__v1__approval__get_packed_size(&m) > sizeof(buf))
        return ctl_usage_error("recommendation id or name too long");
    size_t len = twin__v1__approval__pack(&m, buf);
    char topic[256];
    snprintf(topic, sizeof(topic), "%s/asset/%s/approval", s->topic_root, o.asset);
    return ask(s, &o, topic, buf, len, decided, o.rec_id);
}

/* ---- audit --------------------------------------------------------------------------------- */

static const char *field(const struct tw_reply *fields, const char *name)
{
    for (size_t i = 0; i + 1 < fields->n; i += 2)
        if (fields->elem[i].type == TW_REPLY_STR && strcmp(fields->elem[i].str, name) == 0)
            return fields->elem[i + 1].type == TW_REPLY_STR ? fields->elem[i + 1].str : "";
    return "";
}

int ctl_audit(const struct ctl_settings *s, int argc, char **argv)
{
    struct advise_opts o = {0};
    int rc = parse_opts(argc, argv, 0, &o, "usage: twinctl audit [--asset A] [--count N] [--json]");
    if (rc)
        return rc;
    struct tw_store *st = NULL;
    if (ctl_redis_open(s, &st) < 0)
        return 1;
    /* Newest first, enough to find `count` of one asset among others (bounded). */
    char count[24];
    snprintf(count, sizeof(count), "%zu", o.asset ? o.count * 50 : o.count);
    const char *av[] = {"XREVRANGE", AUDIT_KEY, "+", "-", "COUNT", count};
    struct tw_cmd cmd = {.argc = 6, .argv = av};
    struct tw_reply *r = NULL;
    if (ctl_redis_run(s, st, &cmd, 1, &r) < 0) {
        tw_store_destroy(st);
        return 1;
    }
    rc = CTL_EXIT_OK;
    if (r->type == TW_REPLY_ERROR) {
        fprintf(stderr, "twinctl: reading %s: %s\n", AUDIT_KEY, r->str);
        rc = 1;
    } else if (r->type == TW_REPLY_ARRAY) {
        const struct tw_reply **pick = calloc(o.count, sizeof(*pick));
        size_t n = 0;
        if (!pick) {
            tw_store_replies_free(r, 1);
            tw_store_destroy(st);
            return 1;
        }
        for (size_t i = 0; i < r->n && n < o.count; i++) {
            const struct tw_reply *e = &r->elem[i];
            if (e->type != TW_REPLY_ARRAY || e->n != 2 || e->elem[1].type != TW_REPLY_ARRAY)
                continue;
            if (o.asset && strcmp(field(&e->elem[1], "asset"), o.asset) != 0)
                continue;
            pick[n++] = e;
        }
        cJSON *arr = o.json ? cJSON_CreateArray() : NULL;
        for (size_t k = n; k-- > 0;) { /* oldest first */
            const struct tw_reply *f = &pick[k]->elem[1];
            if (arr) {
                cJSON *x = cJSON_CreateObject();
                cJSON_AddStringToObject(x, "id", pick[k]->elem[0].str);
                for (size_t i = 0; i + 1 < f->n; i += 2)
                    cJSON_AddStringToObject(x, f->elem[i].str, f->elem[i + 1].str);
                cJSON_AddItemToArray(arr, x);
                continue;
            }
            char when[40];
            ctl_fmt_time(strtoll(field(f, "ts_ms"), NULL, 10), when, sizeof(when));
            printf("%s  %-10s %-18s %-12s %s", when, field(f, "asset"), field(f, "event"),
                   field(f, "by"), field(f, "action"));
            if (field(f, "command")[0])
                printf("  [%s]", field(f, "command"));
            if (strcmp(field(f, "event"), "refused") == 0)
                printf("  %s", field(f, "reason"));
            printf("\n");
        }
        free(pick);
        if (arr)
            rc = ctl_json_emit(arr);
        else if (n == 0)
            printf("no audit entries%s%s\n", o.asset ? " for " : "", o.asset ? o.asset : "");
    }
    tw_store_replies_free(r, 1);
    tw_store_destroy(st);
    return rc;
}
