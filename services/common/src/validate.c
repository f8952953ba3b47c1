/* SPDX-License-Identifier: Apache-2.0 */
/* Telemetry validation: every check a device's message passes before it may touch state. */
#include "twin/validate.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "twin/err.h"

static const char *const reject_words[TW_REJECT__COUNT] = {
    [TW_REJECT_NONE] = "none",
    [TW_REJECT_EMPTY_PAYLOAD] = "empty_payload",
    [TW_REJECT_OVERSIZE] = "oversize",
    [TW_REJECT_UNDECODABLE] = "undecodable",
    [TW_REJECT_BAD_TOPIC] = "bad_topic",
    [TW_REJECT_BAD_ASSET_ID] = "bad_asset_id",
    [TW_REJECT_ASSET_MISMATCH] = "asset_mismatch",
    [TW_REJECT_NO_SAMPLES] = "no_samples",
    [TW_REJECT_TOO_MANY_SAMPLES] = "too_many_samples",
    [TW_REJECT_BAD_SIGNAL] = "bad_signal",
    [TW_REJECT_DUPLICATE_SIGNAL] = "duplicate_signal",
    [TW_REJECT_NON_FINITE] = "non_finite",
    [TW_REJECT_TS_OUT_OF_WINDOW] = "ts_out_of_window",
    [TW_REJECT_UNKNOWN_ASSET] = "unknown_asset",
};

const char *tw_reject_word(enum tw_reject r)
{
    if ((unsigned)r >= TW_REJECT__COUNT)
        return "unknown";
    return reject_words[r];
}

static bool name_char(char c, bool signal)
{
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
        return true;
    if (c == '.' || c == '_' || c == '-')
        return true;
    return signal && (c == ':' || c == '/');
}

static bool valid_chars(const char *s, size_t len, size_t max, bool signal)
{
    if (!s || len == 0 || len > max)
        return false;
    for (size_t i = 0; i < len; i++)
        if (!name_char(s[i], signal))
            return false;
    return true;
}

static bool valid_name(const char *s, size_t len, bool signal)
{
    return valid_chars(s, len, TW_NAME_MAX, signal);
}

bool tw_valid_id(const char *s, size_t len, size_t max)
{
    return valid_chars(s, len, max, false);
}

bool tw_valid_asset_id(const char *s, size_t len)
{
    return valid_name(s, len, false);
}

bool tw_valid_signal(const char *s, size_t len)
{
    return valid_name(s, len, true) && s[0] != '_';
}

void tw_limits_default(struct tw_limits *l)
{
    l->max_payload = 64 * 1024;
    l->max_samples = 256;
    l->max_past_ms = 7LL * 24 * 3600 * 1000;
    l->max_future_ms = 10LL * 60 * 1000;
}

enum tw_reject tw_topic_asset(const char *topic, const char *root, const char *leaf, char *out)
{
    size_t root_len = strlen(root);
    out[0] = '\0';
    if (strncmp(topic, root, root_len) != 0 || strncmp(topic + root_len, "/asset/", 7) != 0)
        return TW_REJECT_BAD_TOPIC;
    const char *asset = topic + root_len + 7;
    const char *slash = strchr(asset, '/');
    if (!slash || strcmp(slash + 1, leaf) != 0)
        return TW_REJECT_BAD_TOPIC;
    size_t len = (size_t)(slash - asset);
    if (!tw_valid_asset_id(asset, len))
        return TW_REJECT_BAD_ASSET_ID;
    memcpy(out, asset, len);
    out[len] = '\0';
    return TW_REJECT_NONE;
}

/* Writes a name into a detail message without letting odd bytes through. */
static void quote_name(char *dst, size_t cap, const char *s)
{
    size_t j = 0;
    for (size_t i = 0; s && s[i] && j + 5 < cap && i < TW_NAME_MAX + 8; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c < 0x7f && c != '"' && c != '\\')
            dst[j++] = (char)c;
        else
            j += (size_t)snprintf(dst + j, cap - j, "\\x%02x", c);
    }
    dst[j < cap ? j : cap - 1] = '\0';
}

/* Records the refusal; the detail is `before`, then `name` made printable, then `after`. */
static enum tw_reject reject(struct tw_parse_result *res, enum tw_reject r, const char *before,
                             const char *name, const char *after)
{
    char quoted[TW_NAME_MAX * 4 + 16];
    quote_name(quoted, sizeof(quoted), name);
    res->reject = r;
    snprintf(res->detail, sizeof(res->detail), "%s%s%s", before, quoted, after ? after : "");
    return r;
}

static enum tw_reject check_samples(struct tw_parse_result *res)
{
    const struct tw_telemetry *t = &res->msg;
    if (t->n_samples == 0)
        return reject(res, TW_REJECT_NO_SAMPLES, "message carries no samples", NULL, NULL);
    for (size_t i = 0; i < t->n_samples; i++) {
        const char *sig = t->samples[i].signal;
        if (!tw_valid_signal(sig, strlen(sig)))
            return reject(res, TW_REJECT_BAD_SIGNAL, "signal \"", sig, "\" is not a valid name");
        if (!isfinite(t->samples[i].value))
            return reject(res, TW_REJECT_NON_FINITE, "signal \"", sig, "\" is NaN or infinite");
        for (size_t j = 0; j < i; j++)
            if (strcmp(t->samples[j].signal, sig) == 0)
                return reject(res, TW_REJECT_DUPLICATE_SIGNAL, "signal \"", sig,
                              "\" appears twice in one message");
    }
    return TW_REJECT_NONE;
}

static enum tw_reject check_time(struct tw_parse_result *res, const struct tw_limits *lim,
                                 int64_t now_ms)
{
    struct tw_telemetry *t = &res->msg;
    if (t->ts_ms == 0) {
        t->ts_ms = now_ms;
        return TW_REJECT_NONE;
    }
    bool too_old = lim->max_past_ms > 0 && t->ts_ms < now_ms - lim->max_past_ms;
    bool too_new = lim->max_future_ms > 0 && t->ts_ms > now_ms + lim->max_future_ms;
    if (t->ts_ms < 0 || too_old || too_new) {
        res->reject = TW_REJECT_TS_OUT_OF_WINDOW;
        snprintf(res->detail, sizeof(res->detail),
                 "ts_ms %lld is outside [now-%lld ms, now+%lld ms] (now %lld)", (long long)t->ts_ms,
                 (long long)lim->max_past_ms, (long long)lim->max_future_ms, (long long)now_ms);
    }
    return res->reject;
}

static enum tw_reject check_wire(struct tw_parse_result *res, const uint8_t *payload, size_t len,
                                 const struct tw_limits *lim)
{
    struct tw_telemetry_scan scan;
    if (len == 0)
        return reject(res, TW_REJECT_EMPTY_PAYLOAD, "payload is empty", NULL, NULL);
    if (len > lim->max_payload) {
        res->reject = TW_REJECT_OVERSIZE;
        snprintf(res->detail, sizeof(res->detail), "payload of %zu bytes exceeds %zu", len,
                 lim->max_payload);
        return res->reject;
    }
    if (tw_codec_scan_telemetry(payload, len, &scan) < 0)
        return reject(res, TW_REJECT_UNDECODABLE, "not a twin.v1.Telemetry", NULL, NULL);
    if (scan.n_samples > lim->max_samples) {
        res->reject = TW_REJECT_TOO_MANY_SAMPLES;
        snprintf(res->detail, sizeof(res->detail), "%zu samples exceed %zu", scan.n_samples,
                 lim->max_samples);
        return res->reject;
    }
    if (scan.fault == TW_SCAN_BAD_ASSET_ID)
        return reject(res, TW_REJECT_BAD_ASSET_ID,
                      "asset_id holds a control, NUL or non-ASCII byte", NULL, NULL);
    if (scan.fault == TW_SCAN_BAD_SIGNAL)
        return reject(res, TW_REJECT_BAD_SIGNAL,
                      "a signal name holds a control, NUL or non-ASCII byte", NULL, NULL);
    return TW_REJECT_NONE;
}

int tw_telemetry_parse(const char *topic, const char *root, const uint8_t *payload, size_t len,
                       const struct tw_limits *lim, int64_t now_ms, struct tw_parse_result *res)
{
    memset(res, 0, sizeof(*res));
    enum tw_reject r = tw_topic_asset(topic, root, "telemetry", res->asset);
    if (r != TW_REJECT_NONE)
        return reject(res, r, "topic \"", topic, "\" does not name a valid asset"), 0;
    if (check_wire(res, payload, len, lim) != TW_REJECT_NONE)
        return 0;
    int rc = tw_codec_decode_telemetry(payload, len, &res->msg);
    if (rc == TW_ENOMEM)
        return rc;
    if (rc < 0)
        return reject(res, TW_REJECT_UNDECODABLE, "not a twin.v1.Telemetry", NULL, NULL), 0;
    const char *id = res->msg.asset_id;
    if (id[0] != '\0' && strcmp(id, res->asset) != 0) {
        reject(res, TW_REJECT_ASSET_MISMATCH, "asset_id \"", id,
               "\" differs from the topic's asset");
    } else if (check_samples(res) == TW_REJECT_NONE) {
        check_time(res, lim, now_ms);
    }
    if (res->reject != TW_REJECT_NONE)
        tw_codec_telemetry_free(&res->msg);
    else
        res->msg.asset_id = res->asset;
    return 0;
}
