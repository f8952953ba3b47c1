/* SPDX-License-Identifier: Apache-2.0 */
/* Validation of telemetry: names, topic, limits; every refusal has a snake_case reason word. */
#ifndef TWIN_VALIDATE_H
#define TWIN_VALIDATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "twin/codec.h"

/* Reasons a message is refused; the word is the Rejected.reason and the metric label. */
enum tw_reject {
    TW_REJECT_NONE = 0,
    TW_REJECT_EMPTY_PAYLOAD,
    TW_REJECT_OVERSIZE,
    TW_REJECT_UNDECODABLE,
    TW_REJECT_BAD_TOPIC,
    TW_REJECT_BAD_ASSET_ID,
    TW_REJECT_ASSET_MISMATCH,
    TW_REJECT_NO_SAMPLES,
    TW_REJECT_TOO_MANY_SAMPLES,
    TW_REJECT_BAD_SIGNAL,
    TW_REJECT_DUPLICATE_SIGNAL,
    TW_REJECT_NON_FINITE,
    TW_REJECT_TS_OUT_OF_WINDOW,
    TW_REJECT_UNKNOWN_ASSET,
    TW_REJECT__COUNT
};

/* "oversize", "bad_signal", …; "none" for TW_REJECT_NONE. Static text. */
const char *tw_reject_word(enum tw_reject r);

#define TW_NAME_MAX 64

/* 1–64 chars of [A-Za-z0-9._-]. */
bool tw_valid_asset_id(const char *s, size_t len);

/* 1–max chars of [A-Za-z0-9._-]: the ids of requests, recommendations and commands. */
bool tw_valid_id(const char *s, size_t len, size_t max);

/* 1–64 chars of [A-Za-z0-9._:/-], not starting with '_' (reserved for meta fields). */
bool tw_valid_signal(const char *s, size_t len);

struct tw_limits {
    size_t max_payload;    /* bytes */
    size_t max_samples;    /* per message */
    int64_t max_past_ms;   /* device time may be at most this old; 0: no limit */
    int64_t max_future_ms; /* … and at most this far ahead; 0: no limit */
};

/* DESIGN.md's defaults: 64 KiB, 256 samples, 7 days back, 10 minutes ahead. */
void tw_limits_default(struct tw_limits *l);

/* Extracts {asset} from "<root>/asset/{asset}/telemetry" into out (TW_NAME_MAX + 1 bytes).
 * Returns TW_REJECT_NONE, TW_REJECT_BAD_TOPIC (not that shape) or TW_REJECT_BAD_ASSET_ID. */
enum tw_reject tw_topic_asset(const char *topic, const char *root, const char *leaf, char *out);

/* The outcome of tw_telemetry_parse. On success `msg` holds the decoded message (release
 * with tw_codec_telemetry_free) with asset_id set to the topic's asset and ts_ms filled in
 * from the clock when the device sent 0. */
struct tw_parse_result {
    enum tw_reject reject;
    char asset[TW_NAME_MAX + 1];
    char detail[384]; /* human-readable, for logs and Rejected.detail */
    struct tw_telemetry msg;
};

/* Checks and decodes one telemetry message as it arrived: topic, size, wire, names, values,
 * time window. Pure: no I/O; now_ms is the clock. Returns 0 (see res->reject) or TW_ENOMEM. */
int tw_telemetry_parse(const char *topic, const char *root, const uint8_t *payload, size_t len,
                       const struct tw_limits *lim, int64_t now_ms, struct tw_parse_result *res);

#endif
