/* SPDX-License-Identifier: Apache-2.0 */
/* `twinctl watch [FILTER]` (every message decoded to one line) and `twinctl alerts` (the
 * alerts arriving within a wait, or followed until Ctrl-C). */
#include <cjson/cJSON.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "twin/clock.h"
#include "twin/codec.h"
#include "twin/err.h"
#include "twin/signal.h"
#include "twin/validate.h"
#include "twinctl.h"

#define POLL_MS        200
#define FILTER_MAX     1024
#define ALERTS_WAIT_MS 2000

struct stream_opts {
    bool json;
    bool alerts;     /* print Alerts only, as alert lines */
    long long count; /* stop after this many; 0: no limit */
    int64_t for_ms;  /* stop after this long; 0: until Ctrl-C */
    bool quiet;      /* no note on stderr */
};

/* An MQTT topic filter: '+' and '#' only as whole levels, '#' only last. */
static bool valid_filter(const char *f)
{
    size_t len = strlen(f);
    if (len == 0 || len > FILTER_MAX)
        return false;
    for (size_t i = 0; i < len; i++) {
        bool starts = i == 0 || f[i - 1] == '/';
        bool ends = i + 1 == len || f[i + 1] == '/';
        if ((f[i] == '+' && !(starts && ends)) || (f[i] == '#' && !(starts && i + 1 == len)))
            return false;
    }
    return true;
}

static int parse_count(const char *text, long long *count)
{
    char *end;
    errno = 0;
    long long v = strtoll(text, &end, 10);
    if (!text[0] || *end || v <= 0 || errno == ERANGE)
        return ctl_usage_error("--count takes a positive number");
    *count = v;
    return 0;
}

static int parse_span(const char *flag, const char *text, int64_t *ms)
{
    if (ctl_parse_duration(text, ms) < 0 || *ms <= 0)
        return ctl_usage_error("%s takes a duration (2s, 90s, 5m, ...)", flag);
    return 0;
}

static void print_alert(const struct tw_inbox_msg *m, int64_t now, bool json)
{
    struct tw_alert_msg am;
    if (tw_codec_decode_alert(m->payload, m->len, &am) < 0) {
        fprintf(stderr, "twinctl: undecodable alert on %s (%zu bytes)\n", m->topic, m->len);
        return;
    }
    if (json) {
        cJSON *j = ctl_json_alert(&am.a);
        cJSON_AddItemToObject(j, "received_ms", ctl_json_i64(now));
        ctl_json_emit(j);
    } else {
        char line[1200];
        ctl_alert_line(&am.a, line, sizeof(line));
        puts(line);
        fflush(stdout);
    }
    tw_codec_alert_free(&am);
}

/* Prints what arrives on filter until the count, the time or Ctrl-C. The number printed in
 * *printed; 0 or a negative tw_err (the broker was not reached). */
static int stream(const struct ctl_settings *s, const char *filter, const struct stream_opts *o,
                  long long *printed)
{
    volatile sig_atomic_t *stop = tw_signal_stop_flag();
    struct tw_inbox *c = NULL;
    const char *filters[] = {filter};
    int rc = ctl_session_open(s, filters, 1, CTL_CONNECT_TIMEOUT_MS, &c);
    if (rc < 0)
        return rc;
    if (!o->quiet)
        fprintf(stderr, "twinctl: listening on %s%s\n", filter, o->for_ms ? "" : " (Ctrl-C stops)");
    int64_t deadline = o->for_ms ? tw_mono_ms() + o->for_ms : INT64_MAX;
    *printed = 0;
    while (!*stop && (o->count == 0 || *printed < o->count)) {
        int64_t left = deadline - tw_mono_ms();
        if (left <= 0)
            break;
        struct tw_inbox_msg *m = tw_inbox_next(c, left < POLL_MS ? left : POLL_MS);
        if (!m)
            continue;
        int64_t now = tw_now_ms();
        if (!o->alerts)
            ctl_msg_print(s, m, now, o->json);
        else if (strcmp(ctl_msg_type(s, m->topic), "alert") == 0)
            print_alert(m, now, o->json);
        *printed += !o->alerts || strcmp(ctl_msg_type(s, m->topic), "alert") == 0;
        free(m);
    }
    tw_inbox_close(c);
    return 0;
}

static int stream_exit(int rc, const struct stream_opts *o, long long printed)
{
    if (rc < 0)
        return CTL_EXIT_FAIL;
    /* Asked for N messages and fewer came within --for: no (full) answer. */
    return o->count && printed < o->count && !*tw_signal_stop_flag() ? CTL_EXIT_FAIL : CTL_EXIT_OK;
}

int ctl_watch(const struct ctl_settings *s, int argc, char **argv)
{
    struct stream_opts o = {0};
    const char *filter = NULL;
    for (int i = 1; i < argc; i++) {
        int rc = 0;
        if (strcmp(argv[i], "--json") == 0)
            o.json = true;
        else if (strcmp(argv[i], "--quiet") == 0)
            o.quiet = true;
        else if (strcmp(argv[i], "--count") == 0 && i + 1 < argc)
            rc = parse_count(argv[++i], &o.count);
        else if (strcmp(argv[i], "--for") == 0 && i + 1 < argc)
            rc = parse_span("--for", argv[++i], &o.for_ms);
        else if (!filter && argv[i][0] != '-')
            filter = argv[i];
        else
            rc = ctl_usage_error("watch: unexpected \"%.64s\"", argv[i]);
        if (rc != 0)
            return rc;
    }
    char def[300];
    snprintf(def, sizeof(def), "%s/#", s->topic_root);
    if (!filter)
        filter = def;
    if (!valid_filter(filter))
        return ctl_usage_error("watch: \"%.64s\" is not an MQTT topic filter", filter);
    long long printed = 0;
    int rc = stream(s, filter, &o, &printed);
    return stream_exit(rc, &o, printed);
}

int ctl_alerts(const struct ctl_settings *s, int argc, char **argv)
{
    struct stream_opts o = {.alerts = true, .for_ms = -1};
    const char *asset = "+";
    bool follow = false;
    for (int i = 1; i < argc; i++) {
        int rc = 0;
        if (strcmp(argv[i], "--json") == 0)
            o.json = true;
        else if (strcmp(argv[i], "--follow") == 0 || strcmp(argv[i], "-f") == 0)
            follow = true;
        else if (strcmp(argv[i], "--quiet") == 0)
            o.quiet = true;
        else if (strcmp(argv[i], "--asset") == 0 && i + 1 < argc)
            asset = argv[++i];
        else if (strcmp(argv[i], "--count") == 0 && i + 1 < argc)
            rc = parse_count(argv[++i], &o.count);
        else if (strcmp(argv[i], "--wait") == 0 && i + 1 < argc)
            rc = parse_span("--wait", argv[++i], &o.for_ms);
        else
            rc = ctl_usage_error("alerts: unexpected \"%.64s\"", argv[i]);
        if (rc != 0)
            return rc;
    }
    if (strcmp(asset, "+") != 0 && !tw_valid_asset_id(asset, strlen(asset)))
        return ctl_usage_error("alerts: --asset takes an asset id (1-64 of [A-Za-z0-9._-])");
    if (o.for_ms < 0)
        o.for_ms = follow ? 0 : ALERTS_WAIT_MS;
    char filter[300];
    snprintf(filter, sizeof(filter), "%s/asset/%s/alert", s->topic_root, asset);
    long long printed = 0;
    int rc = stream(s, filter, &o, &printed);
    if (rc == 0 && !follow && !o.quiet)
        fprintf(stderr,
                "twinctl: %lld alert%s in %.1f s (alerts are not retained: --follow "
                "keeps listening)\n",
                printed, printed == 1 ? "" : "s", (double)o.for_ms / 1000.0);
    return stream_exit(rc, &o, printed);
}
