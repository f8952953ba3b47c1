/* SPDX-License-Identifier: Apache-2.0 */
/* libFuzzer target: any topic and payload through tw_telemetry_parse; what it accepts must
 * survive re-encoding, the TwinState codec and the apply command unchanged. */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "apply.h"
#include "fuzz_check.h"
#include "twin/codec.h"
#include "twin/err.h"
#include "twin/validate.h"

/* Input layout: byte 0 is the topic's length (0: FUZZ_TOPIC), then the topic, then the
 * payload. A fixed clock keeps every run reproducible. */
#define FUZZ_ROOT   "twin/v1"
#define FUZZ_TOPIC  "twin/v1/asset/press-1/telemetry"
#define FUZZ_NOW_MS INT64_C(1700000000000)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);


static uint64_t bits_of(double d)
{
    uint64_t u;
    memcpy(&u, &d, sizeof(u));
    return u;
}

/* Every value, -0.0 included (codec.c writes it although protobuf-c would not), must come
 * back bit for bit. */
static int same_value_over_wire(double sent, double got)
{
    return bits_of(sent) == bits_of(got);
}

static int printable(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || (unsigned char)*s > 0x7e)
            return 0;
    return 1;
}

/* The raw codec on its own: when both the scanner and the decoder accept a payload, they
 * must agree on the sample count, and a clean scan means no odd byte reached a string. */
static void check_scan_against_decode(const uint8_t *p, size_t n)
{
    struct tw_telemetry_scan scan;
    struct tw_telemetry t;
    int scan_rc = tw_codec_scan_telemetry(p, n, &scan);
    CHECK(scan_rc == 0 || scan_rc == TW_EPROTO);
    int rc = tw_codec_decode_telemetry(p, n, &t);
    CHECK(rc == 0 || rc == TW_EPROTO || rc == TW_ENOMEM);
    if (rc != 0)
        return;
    if (scan_rc == 0) {
        CHECK(scan.n_samples == t.n_samples);
        if (scan.fault == TW_SCAN_OK) {
            CHECK(printable(t.asset_id));
            for (size_t i = 0; i < t.n_samples; i++)
                CHECK(printable(t.samples[i].signal));
        }
    }
    tw_codec_telemetry_free(&t);
}

static void check_accepted_invariants(const struct tw_parse_result *res,
                                      const struct tw_limits *lim, size_t len)
{
    const struct tw_telemetry *t = &res->msg;
    CHECK(len > 0 && len <= lim->max_payload);
    CHECK(t->asset_id == res->asset);
    CHECK(tw_valid_asset_id(res->asset, strlen(res->asset)));
    CHECK(t->n_samples >= 1 && t->n_samples <= lim->max_samples);
    CHECK(t->ts_ms >= FUZZ_NOW_MS - lim->max_past_ms);
    CHECK(t->ts_ms <= FUZZ_NOW_MS + lim->max_future_ms);
    for (size_t i = 0; i < t->n_samples; i++) {
        CHECK(tw_valid_signal(t->samples[i].signal, strlen(t->samples[i].signal)));
        CHECK(isfinite(t->samples[i].value));
        for (size_t j = 0; j < i; j++)
            CHECK(strcmp(t->samples[i].signal, t->samples[j].signal) != 0);
    }
}

static void check_telemetry_round_trip(const struct tw_telemetry *t)
{
    uint8_t *buf = NULL;
    size_t len = 0;
    struct tw_telemetry back;
    CHECK(tw_codec_encode_telemetry(t, &buf, &len) == 0);
    CHECK(tw_codec_decode_telemetry(buf, len, &back) == 0);
    CHECK(strcmp(back.asset_id, t->asset_id) == 0);
    CHECK(back.ts_ms == t->ts_ms);
    CHECK(back.seq == t->seq);
    CHECK(back.n_samples == t->n_samples);
    for (size_t i = 0; i < t->n_samples; i++) {
        CHECK(strcmp(back.samples[i].signal, t->samples[i].signal) == 0);
        CHECK(same_value_over_wire(t->samples[i].value, back.samples[i].value));
    }
    tw_codec_telemetry_free(&back);
    free(buf);
}

static void check_twin_state_round_trip(const struct tw_telemetry *t)
{
    const char **changed = calloc(t->n_samples + 1, sizeof(*changed));
    CHECK(changed != NULL);
    for (size_t i = 0; i < t->n_samples; i++)
        changed[i] = t->samples[i].signal;
    struct tw_twin_state s = {.asset_id = t->asset_id,
                              .ts_ms = t->ts_ms,
                              .seq = t->seq,
                              .ingest_ms = FUZZ_NOW_MS,
                              .n_samples = t->n_samples,
                              .samples = t->samples,
                              .n_changed = t->n_samples,
                              .changed = changed};
    size_t need = 0, len = 0;
    CHECK(tw_codec_encode_twin_state(&s, NULL, 0, &need) == TW_ENOMEM);
    uint8_t *buf = malloc(need);
    CHECK(buf != NULL);
    CHECK(tw_codec_encode_twin_state(&s, buf, need, &len) == 0 && len == need);
    struct tw_twin_state_msg back;
    CHECK(tw_codec_decode_twin_state(buf, len, &back) == 0);
    CHECK(strcmp(back.s.asset_id, t->asset_id) == 0);
    CHECK(back.s.ts_ms == t->ts_ms && back.s.seq == t->seq);
    CHECK(back.s.ingest_ms == FUZZ_NOW_MS);
    CHECK(back.s.n_samples == t->n_samples && back.s.n_changed == t->n_samples);
    for (size_t i = 0; i < t->n_samples; i++) {
        CHECK(strcmp(back.s.samples[i].signal, t->samples[i].signal) == 0);
        CHECK(same_value_over_wire(t->samples[i].value, back.s.samples[i].value));
        CHECK(strcmp(back.s.changed[i], t->samples[i].signal) == 0);
    }
    tw_codec_twin_state_free(&back);
    free(buf);
    free(changed);
}

/* The apply command for an accepted message: every argument is where the script expects
 * it, and every value text reads back as the very same double. */
static void check_apply_command(const struct tw_telemetry *t, const struct tw_limits *lim)
{
    static struct ingest_cmd cmd;
    static int ready;
    if (!ready) {
        CHECK(ingest_cmd_init(&cmd, lim->max_samples) == 0);
        ready = 1;
    }
    const struct ingest_apply_params p = {.window = 1024, .history_maxlen = 10000};
    static const struct tw_model_kind kind = {.name = "k", .n_derived = 1};
    ingest_cmd_build(&cmd, t, FUZZ_NOW_MS, &p, &kind);
    CHECK(cmd.argc == 1 + INGEST_KEYS + INGEST_FIXED_ARGS + 2 * (int)t->n_samples);
    char text[TW_NAME_MAX + 32];
    snprintf(text, sizeof(text), "%" PRIu64, t->seq);
    CHECK(cmd.argvlen[1 + INGEST_KEYS] == strlen(text) &&
          memcmp(cmd.argv[1 + INGEST_KEYS], text, cmd.argvlen[1 + INGEST_KEYS]) == 0);
    snprintf(text, sizeof(text), "twin:{%s}:replay", t->asset_id);
    CHECK(cmd.argvlen[3] == strlen(text) && memcmp(cmd.argv[3], text, cmd.argvlen[3]) == 0);
    for (size_t i = 0; i < t->n_samples; i++) {
        size_t k = 1 + INGEST_KEYS + INGEST_FIXED_ARGS + 2 * i;
        CHECK(cmd.argvlen[k] == strlen(t->samples[i].signal));
        CHECK(memcmp(cmd.argv[k], t->samples[i].signal, cmd.argvlen[k]) == 0);
        CHECK(cmd.argvlen[k + 1] > 0 && cmd.argvlen[k + 1] < sizeof(text));
        memcpy(text, cmd.argv[k + 1], cmd.argvlen[k + 1]);
        text[cmd.argvlen[k + 1]] = '\0';
        char *end;
        double back = strtod(text, &end);
        CHECK(*end == '\0' && bits_of(back) == bits_of(t->samples[i].value));
    }
}

static void check_rejected(const char *topic, const struct tw_parse_result *res,
                           const uint8_t *payload, size_t len)
{
    CHECK(res->msg.impl_ == NULL && res->msg.samples == NULL);
    CHECK(res->detail[0] != '\0');
    uint8_t *buf = NULL;
    size_t out_len = 0;
    CHECK(tw_codec_encode_rejected(topic, tw_reject_word(res->reject), res->detail, payload, len,
                                   &buf, &out_len) == 0);
    free(buf);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    size_t topic_len = data[0] < size - 1 ? data[0] : size - 1;
    char topic[256];
    if (topic_len == 0) {
        memcpy(topic, FUZZ_TOPIC, sizeof(FUZZ_TOPIC));
    } else {
        memcpy(topic, data + 1, topic_len);
        topic[topic_len] = '\0';
    }
    const uint8_t *payload = data + 1 + topic_len;
    size_t len = size - 1 - topic_len;

    check_scan_against_decode(payload, len);

    struct tw_limits lim;
    tw_limits_default(&lim);
    struct tw_parse_result res;
    int rc = tw_telemetry_parse(topic, FUZZ_ROOT, payload, len, &lim, FUZZ_NOW_MS, &res);
    if (rc == TW_ENOMEM)
        return 0;
    CHECK(rc == 0);
    CHECK((unsigned)res.reject < TW_REJECT__COUNT);
    CHECK(strlen(res.detail) < sizeof(res.detail) && printable(res.detail));
    if (res.reject != TW_REJECT_NONE) {
        check_rejected(topic, &res, payload, len);
        return 0;
    }
    check_accepted_invariants(&res, &lim, len);
    check_telemetry_round_trip(&res.msg);
    check_twin_state_round_trip(&res.msg);
    check_apply_command(&res.msg, &lim);
    tw_codec_telemetry_free(&res.msg);
    return 0;
}
