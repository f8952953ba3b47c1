/* SPDX-License-Identifier: Apache-2.0 */
/* `twinctl publish ASSET signal=value...`: one Telemetry sent by hand (QoS 1, PUBACK
 * awaited), checked first with the same rules ingest applies. */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "twin/clock.h"
#include "twin/codec.h"
#include "twin/err.h"
#include "twin/validate.h"
#include "twinctl.h"

struct publish_opts {
    const char *asset;
    uint64_t seq;
    int64_t ts_ms;
    bool quiet;
    size_t n;
    struct tw_sample samples[256]; /* DESIGN.md's default max_samples */
    char *names[256];
};

static int parse_u64(const char *flag, const char *text, uint64_t *out)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(text, &end, 10);
    if (!text[0] || text[0] == '-' || *end || errno == ERANGE)
        return ctl_usage_error("publish: %s takes a whole number", flag);
    *out = v;
    return 0;
}

/* "signal=value": a valid, not repeated name and a finite number. */
static int parse_sample(struct publish_opts *o, const char *arg)
{
    const char *eq = strchr(arg, '=');
    if (!eq)
        return ctl_usage_error("publish: \"%.64s\" is not signal=value", arg);
    size_t len = (size_t)(eq - arg);
    if (!tw_valid_signal(arg, len))
        return ctl_usage_error("publish: bad signal name \"%.*s\" (1-64 characters of "
                               "[A-Za-z0-9._:/-], not starting with _)",
                               (int)(len < 64 ? len : 64), arg);
    char *end;
    errno = 0;
    double v = strtod(eq + 1, &end);
    if (!eq[1] || *end || errno == ERANGE || !isfinite(v))
        return ctl_usage_error("publish: %.*s: \"%.32s\" is not a finite number", (int)len, arg,
                               eq + 1);
    for (size_t i = 0; i < o->n; i++)
        if (strlen(o->names[i]) == len && memcmp(o->names[i], arg, len) == 0)
            return ctl_usage_error("publish: signal %.*s given twice", (int)len, arg);
    if (o->n == sizeof(o->samples) / sizeof(o->samples[0]))
        return ctl_usage_error("publish: at most 256 samples per message");
    o->names[o->n] = strndup(arg, len);
    if (!o->names[o->n])
        return CTL_EXIT_FAIL;
    o->samples[o->n] = (struct tw_sample){.signal = o->names[o->n], .value = v};
    o->n++;
    return 0;
}

static int parse_args(struct publish_opts *o, int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        int rc = 0;
        uint64_t ts = 0;
        if (strcmp(argv[i], "--seq") == 0 && i + 1 < argc)
            rc = parse_u64("--seq", argv[++i], &o->seq);
        else if (strcmp(argv[i], "--ts-ms") == 0 && i + 1 < argc) {
            rc = parse_u64("--ts-ms", argv[++i], &ts);
            if (rc == 0 && ts > (uint64_t)INT64_MAX)
                rc = ctl_usage_error("publish: --ts-ms is too large");
            o->ts_ms = (int64_t)ts;
        } else if (strcmp(argv[i], "--quiet") == 0)
            o->quiet = true;
        else if (!o->asset && argv[i][0] != '-')
            o->asset = argv[i];
        else if (o->asset && argv[i][0] != '-')
            rc = parse_sample(o, argv[i]);
        else
            rc = ctl_usage_error("publish: unexpected \"%.64s\"", argv[i]);
        if (rc != 0)
            return rc;
    }
    if (!o->asset || !tw_valid_asset_id(o->asset, strlen(o->asset)))
        return ctl_usage_error("publish: give an asset id (1-64 characters of [A-Za-z0-9._-])");
    if (o->n == 0)
        return ctl_usage_error("publish: give at least one signal=value");
    return 0;
}

/* The encoded message through ingest's own checks (twin/validate.h). The device-time window is
 * a setting of ingest (0 = off, for replays), so falling outside the default one only warns. */
static int check_like_ingest(const struct ctl_settings *s, const char *topic, const uint8_t *buf,
                             size_t len)
{
    static struct tw_parse_result res; /* large: not on the stack */
    struct tw_limits lim;
    tw_limits_default(&lim);
    int64_t past = lim.max_past_ms, future = lim.max_future_ms, now = tw_now_ms();
    lim.max_past_ms = lim.max_future_ms = 0;
    if (tw_telemetry_parse(topic, s->topic_root, buf, len, &lim, now, &res) < 0)
        return CTL_EXIT_FAIL;
    int rc = 0;
    if (res.reject != TW_REJECT_NONE)
        rc = ctl_usage_error("publish: ingest would reject this (%s): %s",
                             tw_reject_word(res.reject), res.detail);
    else if (res.msg.ts_ms < now - past || res.msg.ts_ms > now + future)
        fprintf(stderr, "twinctl: warning: the device time is outside ingest's default window "
                        "(7 days back, 10 minutes ahead): refused unless its limits are off\n");
    if (res.reject == TW_REJECT_NONE)
        tw_codec_telemetry_free(&res.msg);
    return rc;
}

static int send_telemetry(const struct ctl_settings *s, const struct publish_opts *o)
{
    struct tw_telemetry t = {.asset_id = o->asset,
                             .ts_ms = o->ts_ms,
                             .seq = o->seq,
                             .n_samples = o->n,
                             .samples = (struct tw_sample *)o->samples};
    uint8_t *buf = NULL;
    size_t len = 0;
    char topic[400];
    struct tw_inbox *c = NULL;
    snprintf(topic, sizeof(topic), "%s/asset/%s/telemetry", s->topic_root, o->asset);
    int rc = tw_codec_encode_telemetry(&t, &buf, &len);
    if (rc == 0 && (rc = check_like_ingest(s, topic, buf, len)) != 0) {
        free(buf);
        return rc;
    }
    if (rc == 0)
        rc = ctl_session_open(s, NULL, 0, CTL_CONNECT_TIMEOUT_MS, &c);
    if (rc == 0)
        rc = ctl_session_publish(c, topic, buf, len, CTL_CONNECT_TIMEOUT_MS);
    if (rc == 0 && !o->quiet)
        printf("published %zu sample%s to %s (seq %" PRIu64 ", %zu bytes, acknowledged)\n", o->n,
               o->n == 1 ? "" : "s", topic, o->seq, len);
    tw_inbox_close(c);
    free(buf);
    return rc;
}

int ctl_publish(const struct ctl_settings *s, int argc, char **argv)
{
    static struct publish_opts o; /* 6 KiB: not on the stack */
    memset(&o, 0, sizeof(o));
    int rc = parse_args(&o, argc, argv);
    if (rc == 0) {
        rc = send_telemetry(s, &o);
        rc = rc == CTL_EXIT_USAGE ? rc : rc == 0 ? CTL_EXIT_OK : CTL_EXIT_FAIL;
    }
    for (size_t i = 0; i < o.n; i++)
        free(o.names[i]);
    return rc;
}
