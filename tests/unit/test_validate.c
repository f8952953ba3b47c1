/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests of twin/validate.h: every refusal of tw_telemetry_parse, its word and its limits. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "twin/codec.h"
#include "twin/err.h"
#include "twin/validate.h"

#define ROOT  "twin/v1"
#define TOPIC "twin/v1/asset/press-1/telemetry"
#define NOW   INT64_C(1700000000000)

/* 64 and 65 characters, the edges of the name rules. */
#define NAME64 "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._"
#define NAME65 NAME64 "x"
_Static_assert(sizeof(NAME64) == 65 && sizeof(NAME65) == 66, "name lengths");

static struct tw_limits default_limits(void)
{
    struct tw_limits l;
    tw_limits_default(&l);
    return l;
}

/* Encodes a Telemetry with the codec; the caller frees the buffer. */
static uint8_t *encode(const char *asset, int64_t ts_ms, uint64_t seq,
                       const struct tw_sample *samples, size_t n, size_t *len)
{
    struct tw_telemetry t = {.asset_id = asset,
                             .ts_ms = ts_ms,
                             .seq = seq,
                             .n_samples = n,
                             .samples = (struct tw_sample *)samples};
    uint8_t *buf = NULL;
    assert_int_equal(tw_codec_encode_telemetry(&t, &buf, len), 0);
    return buf;
}

static void assert_detail_printable(const struct tw_parse_result *res)
{
    size_t n = strnlen(res->detail, sizeof(res->detail));
    assert_true(n < sizeof(res->detail));
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)res->detail[i];
        if (c < 0x20 || c > 0x7e)
            print_error("detail byte %zu is 0x%02x: %s\n", i, c, res->detail);
        assert_true(c >= 0x20 && c <= 0x7e);
    }
    if (res->reject != TW_REJECT_NONE)
        assert_true(n > 0);
}

/* Runs the parser and checks what holds for every outcome; returns the reason. A refused
 * message has already been released (nothing for the caller to free). */
static enum tw_reject parse_with(const char *topic, const uint8_t *p, size_t len,
                                 const struct tw_limits *lim, struct tw_parse_result *res)
{
    assert_int_equal(tw_telemetry_parse(topic, ROOT, p, len, lim, NOW, res), 0);
    assert_detail_printable(res);
    if (res->reject != TW_REJECT_NONE) {
        assert_null(res->msg.impl_);
        assert_null(res->msg.samples);
        assert_int_equal(res->msg.n_samples, 0);
    } else {
        assert_ptr_equal(res->msg.asset_id, res->asset);
    }
    return res->reject;
}

/* Encodes the message, parses it on TOPIC with lim and returns the reason; on success the
 * decoded message stays in *res for the caller to inspect and free. */
static enum tw_reject parse_msg(const char *asset, int64_t ts_ms, const struct tw_sample *s,
                                size_t n, const struct tw_limits *lim, struct tw_parse_result *res)
{
    size_t len = 0;
    uint8_t *buf = encode(asset, ts_ms, 1, s, n, &len);
    enum tw_reject r = parse_with(TOPIC, buf, len, lim, res);
    free(buf);
    return r;
}

static enum tw_reject parse_default(const char *asset, int64_t ts_ms, const struct tw_sample *s,
                                    size_t n)
{
    struct tw_limits lim = default_limits();
    struct tw_parse_result res;
    enum tw_reject r = parse_msg(asset, ts_ms, s, n, &lim, &res);
    tw_codec_telemetry_free(&res.msg);
    return r;
}

static enum tw_reject parse_signal(const char *signal)
{
    const struct tw_sample s[] = {{"ok", 1.0}, {signal, 2.0}};
    return parse_default("", NOW, s, 2);
}

static void assert_word(enum tw_reject got, const char *want)
{
    if (strcmp(tw_reject_word(got), want) != 0)
        print_error("reason is \"%s\", expected \"%s\"\n", tw_reject_word(got), want);
    assert_string_equal(tw_reject_word(got), want);
}

/* ---- words -------------------------------------------------------------------------------- */

static void validate_reject_words_are_the_documented_words(void **state)
{
    (void)state;
    const struct {
        enum tw_reject r;
        const char *word;
    } table[] = {
        {TW_REJECT_NONE, "none"},
        {TW_REJECT_EMPTY_PAYLOAD, "empty_payload"},
        {TW_REJECT_OVERSIZE, "oversize"},
        {TW_REJECT_UNDECODABLE, "undecodable"},
        {TW_REJECT_BAD_TOPIC, "bad_topic"},
        {TW_REJECT_BAD_ASSET_ID, "bad_asset_id"},
        {TW_REJECT_ASSET_MISMATCH, "asset_mismatch"},
        {TW_REJECT_NO_SAMPLES, "no_samples"},
        {TW_REJECT_TOO_MANY_SAMPLES, "too_many_samples"},
        {TW_REJECT_BAD_SIGNAL, "bad_signal"},
        {TW_REJECT_DUPLICATE_SIGNAL, "duplicate_signal"},
        {TW_REJECT_NON_FINITE, "non_finite"},
        {TW_REJECT_TS_OUT_OF_WINDOW, "ts_out_of_window"},
        {TW_REJECT_UNKNOWN_ASSET, "unknown_asset"},
    };
    assert_int_equal(sizeof(table) / sizeof(table[0]), TW_REJECT__COUNT);
    for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++)
        assert_word(table[i].r, table[i].word);
    assert_string_equal(tw_reject_word(TW_REJECT__COUNT), "unknown");
    assert_string_equal(tw_reject_word((enum tw_reject) - 1), "unknown");
}

static void validate_reject_words_are_distinct_snake_case(void **state)
{
    (void)state;
    for (int i = 0; i < TW_REJECT__COUNT; i++) {
        const char *w = tw_reject_word((enum tw_reject)i);
        assert_non_null(w);
        assert_true(w[0] >= 'a' && w[0] <= 'z');
        for (const char *c = w; *c; c++)
            assert_true((*c >= 'a' && *c <= 'z') || *c == '_');
        for (int j = 0; j < i; j++)
            assert_string_not_equal(w, tw_reject_word((enum tw_reject)j));
    }
}

/* ---- accepted messages -------------------------------------------------------------------- */

static void validate_accepts_good_message_and_keeps_its_fields(void **state)
{
    (void)state;
    const struct tw_sample s[] = {{"temp", 21.5}, {"line:1/rpm", -1500.25}, {"a_b.c-d", 0.0}};
    size_t len = 0;
    uint8_t *buf = encode("press-1", NOW - 1000, UINT64_MAX, s, 3, &len);
    struct tw_limits lim = default_limits();
    struct tw_parse_result res;
    assert_int_equal(parse_with(TOPIC, buf, len, &lim, &res), TW_REJECT_NONE);
    assert_word(res.reject, "none");
    assert_string_equal(res.asset, "press-1");
    assert_string_equal(res.msg.asset_id, "press-1");
    assert_true(res.msg.ts_ms == NOW - 1000);
    assert_true(res.msg.seq == UINT64_MAX);
    assert_int_equal(res.msg.n_samples, 3);
    for (size_t i = 0; i < 3; i++) {
        assert_string_equal(res.msg.samples[i].signal, s[i].signal);
        assert_true(res.msg.samples[i].value == s[i].value);
    }
    assert_string_equal(res.detail, "");
    tw_codec_telemetry_free(&res.msg);
    free(buf);
}

static void validate_ts_zero_is_replaced_by_now(void **state)
{
    (void)state;
    const struct tw_sample s[] = {{"temp", 1.0}};
    struct tw_limits lim = default_limits();
    struct tw_parse_result res;
    assert_int_equal(parse_msg("press-1", 0, s, 1, &lim, &res), TW_REJECT_NONE);
    assert_true(res.msg.ts_ms == NOW);
    tw_codec_telemetry_free(&res.msg);
}

static void validate_empty_asset_id_means_the_topic_asset(void **state)
{
    (void)state;
    const struct tw_sample s[] = {{"temp", 1.0}};
    struct tw_limits lim = default_limits();
    struct tw_parse_result res;
    assert_int_equal(parse_msg("", NOW, s, 1, &lim, &res), TW_REJECT_NONE);
    assert_string_equal(res.msg.asset_id, "press-1");
    tw_codec_telemetry_free(&res.msg);
}

static void validate_custom_topic_root_is_honoured(void **state)
{
    (void)state;
    const struct tw_sample s[] = {{"temp", 1.0}};
    size_t len = 0;
    uint8_t *buf = encode("", NOW, 1, s, 1, &len);
    struct tw_limits lim = default_limits();
    struct tw_parse_result res;
    assert_int_equal(tw_telemetry_parse("plant7/twin/v1/asset/m-3/telemetry", "plant7/twin/v1", buf,
                                        len, &lim, NOW, &res),
                     0);
    assert_int_equal(res.reject, TW_REJECT_NONE);
    assert_string_equal(res.msg.asset_id, "m-3");
    tw_codec_telemetry_free(&res.msg);
    assert_int_equal(tw_telemetry_parse(TOPIC, "plant7/twin/v1", buf, len, &lim, NOW, &res), 0);
    assert_word(res.reject, "bad_topic");
    free(buf);
}

/* ---- payload and wire --------------------------------------------------------------------- */

static void validate_rejects_empty_payload(void **state)
{
    (void)state;
    struct tw_limits lim = default_limits();
    struct tw_parse_result res;
    static const uint8_t any[1] = {0};
    assert_word(parse_with(TOPIC, NULL, 0, &lim, &res), "empty_payload");
    assert_word(parse_with(TOPIC, any, 0, &lim, &res), "empty_payload");
}

/* A valid message padded with unknown field 15 (7a <3-byte length> <zeros>) to `total` bytes. */
static uint8_t *padded_message(size_t total)
{
    const struct tw_sample s[] = {{"temp", 1.0}};
    size_t len = 0;
    uint8_t *base = encode("press-1", NOW, 1, s, 1, &len);
    uint8_t *buf = calloc(total, 1);
    assert_non_null(buf);
    size_t pad = total - len - 4;
    assert_true(pad >= 16384 && pad < (1u << 21)); /* exactly three varint bytes */
    memcpy(buf, base, len);
    buf[len] = 0x7a;
    buf[len + 1] = (uint8_t)(0x80 | (pad & 0x7f));
    buf[len + 2] = (uint8_t)(0x80 | ((pad >> 7) & 0x7f));
    buf[len + 3] = (uint8_t)(pad >> 14);
    free(base);
    return buf;
}

static void validate_payload_of_exactly_max_is_accepted_one_more_is_oversize(void **state)
{
    (void)state;
    struct tw_limits lim = default_limits();
    struct tw_parse_result res;
    uint8_t *at_max = padded_message(64 * 1024);
    assert_word(parse_with(TOPIC, at_max, 64 * 1024, &lim, &res), "none");
    tw_codec_telemetry_free(&res.msg);
    free(at_max);
    uint8_t *over = padded_message(64 * 1024 + 1);
    assert_word(parse_with(TOPIC, over, 64 * 1024 + 1, &lim, &res), "oversize");
    free(over);

    /* With a custom cap, the same holds for a small message. */
    const struct tw_sample s[] = {{"temp", 1.0}};
    size_t len = 0;
    uint8_t *buf = encode("press-1", NOW, 1, s, 1, &len);
    lim.max_payload = len;
    assert_word(parse_with(TOPIC, buf, len, &lim, &res), "none");
    tw_codec_telemetry_free(&res.msg);
    lim.max_payload = len - 1;
    assert_word(parse_with(TOPIC, buf, len, &lim, &res), "oversize");
    free(buf);
}

static void validate_oversize_is_refused_before_the_wire_is_read(void **state)
{
    (void)state;
    /* 0x80 bytes only: an endless varint, so only the size check can name it. */
    size_t n = 64 * 1024 + 1;
    uint8_t *junk = malloc(n);
    assert_non_null(junk);
    memset(junk, 0x80, n);
    struct tw_limits lim = default_limits();
    struct tw_parse_result res;
    assert_word(parse_with(TOPIC, junk, n, &lim, &res), "oversize");
    assert_word(parse_with(TOPIC, junk, n - 1, &lim, &res), "undecodable");
    free(junk);
}

static void validate_rejects_undecodable_payloads(void **state)
{
    (void)state;
    static const uint8_t cut_string[] = {0x0a, 0x05, 'a'}; /* 5 bytes promised */
    static const uint8_t cut_varint[] = {0x10, 0x80};      /* ts_ms never ends */
    static const uint8_t group[] = {0x0b, 0x0c};           /* group wire type */
    static const uint8_t asset_varint[] = {0x08, 0x01};    /* asset_id as varint */
    static const uint8_t value_varint[] = {0x22, 0x05, 0x0a, 0x01, 'x', 0x10, 0x01};
    static const uint8_t text[] = "{\"asset_id\":\"press-1\"}"; /* JSON, not protobuf */
    const struct {
        const uint8_t *p;
        size_t n;
    } cases[] = {{cut_string, sizeof(cut_string)},
                 {cut_varint, sizeof(cut_varint)},
                 {group, sizeof(group)},
                 {asset_varint, sizeof(asset_varint)},
                 {value_varint, sizeof(value_varint)},
                 {text, sizeof(text) - 1}};
    struct tw_limits lim = default_limits();
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct tw_parse_result res;
        assert_word(parse_with(TOPIC, cases[i].p, cases[i].n, &lim, &res), "undecodable");
    }
}

/* ---- topic and asset ---------------------------------------------------------------------- */

static void validate_rejects_bad_topics(void **state)
{
    (void)state;
    static const char *const topics[] = {
        "",
        "twin/v1",
        "twin/v1/asset/press-1",
        "twin/v1/asset/press-1/",
        "twin/v1/asset/press-1/state",
        "twin/v1/asset/press-1/telemetry/x",
        "twin/v1/asset/press-1/x/telemetry",
        "twin/v2/asset/press-1/telemetry",
        "twin/v1x/asset/press-1/telemetry",
        "twin/v1/assets/press-1/telemetry",
        "/twin/v1/asset/press-1/telemetry",
        "twin/v1/asset/press-1/telemetryx",
    };
    const struct tw_sample s[] = {{"temp", 1.0}};
    size_t len = 0;
    uint8_t *buf = encode("", NOW, 1, s, 1, &len);
    struct tw_limits lim = default_limits();
    for (size_t i = 0; i < sizeof(topics) / sizeof(topics[0]); i++) {
        struct tw_parse_result res;
        if (parse_with(topics[i], buf, len, &lim, &res) != TW_REJECT_BAD_TOPIC)
            print_error("topic \"%s\"\n", topics[i]);
        assert_word(res.reject, "bad_topic");
    }
    free(buf);
}

static void validate_rejects_bad_asset_in_topic(void **state)
{
    (void)state;
    static const char *const topics[] = {
        "twin/v1/asset//telemetry",          "twin/v1/asset/" NAME65 "/telemetry",
        "twin/v1/asset/+/telemetry",         "twin/v1/asset/#/telemetry",
        "twin/v1/asset/a b/telemetry",       "twin/v1/asset/a:b/telemetry",
        "twin/v1/asset/a\xc3\xa9/telemetry", "twin/v1/asset/a\x01/telemetry",
    };
    const struct tw_sample s[] = {{"temp", 1.0}};
    size_t len = 0;
    uint8_t *buf = encode("", NOW, 1, s, 1, &len);
    struct tw_limits lim = default_limits();
    for (size_t i = 0; i < sizeof(topics) / sizeof(topics[0]); i++) {
        struct tw_parse_result res;
        if (parse_with(topics[i], buf, len, &lim, &res) != TW_REJECT_BAD_ASSET_ID)
            print_error("topic \"%s\"\n", topics[i]);
        assert_word(res.reject, "bad_asset_id");
    }
    struct tw_parse_result res;
    assert_word(parse_with("twin/v1/asset/" NAME64 "/telemetry", buf, len, &lim, &res), "none");
    assert_string_equal(res.msg.asset_id, NAME64);
    tw_codec_telemetry_free(&res.msg);
    free(buf);
}

static void validate_rejects_odd_bytes_in_payload_asset_id(void **state)
{
    (void)state;
    /* 0a 08 "press-1" <bad> | 22 03 { 0a 01 'x' }: the decoder would cut at the NUL and see
     * "press-1", so only the wire scan can refuse it. */
    const uint8_t bad[] = {0x00, 0x0a, 0x1f, 0x7f, 0x80, 0xff};
    struct tw_limits lim = default_limits();
    for (size_t i = 0; i < sizeof(bad); i++) {
        const uint8_t wire[] = {0x0a, 0x08,   'p',  'r',  'e',  's',  's', '-',
                                '1',  bad[i], 0x22, 0x03, 0x0a, 0x01, 'x'};
        struct tw_parse_result res;
        assert_word(parse_with(TOPIC, wire, sizeof(wire), &lim, &res), "bad_asset_id");
    }
}

static void validate_rejects_asset_mismatch(void **state)
{
    (void)state;
    static const char *const ids[] = {"press-2", "PRESS-1",  "press-1 ",
                                      "press",   "press-1.", "a\"b\\c"};
    const struct tw_sample s[] = {{"temp", 1.0}};
    for (size_t i = 0; i < sizeof(ids) / sizeof(ids[0]); i++)
        assert_word(parse_default(ids[i], NOW, s, 1), "asset_mismatch");
    assert_word(parse_default("press-1", NOW, s, 1), "none");

    /* 65 characters whose first 64 are the topic's asset. */
    size_t len = 0;
    uint8_t *buf = encode(NAME65, NOW, 1, s, 1, &len);
    struct tw_limits lim = default_limits();
    struct tw_parse_result res;
    assert_word(parse_with("twin/v1/asset/" NAME64 "/telemetry", buf, len, &lim, &res),
                "asset_mismatch");
    free(buf);
}

static void validate_topic_asset_extracts_the_asset(void **state)
{
    (void)state;
    char out[TW_NAME_MAX + 1];
    assert_int_equal(tw_topic_asset("r/asset/m_1.x-y/state", "r", "state", out), TW_REJECT_NONE);
    assert_string_equal(out, "m_1.x-y");
    assert_int_equal(tw_topic_asset("r/asset/m/telemetry", "r", "state", out), TW_REJECT_BAD_TOPIC);
    assert_string_equal(out, "");
    assert_int_equal(tw_topic_asset("twin/v1/asset/" NAME64 "/telemetry", ROOT, "telemetry", out),
                     TW_REJECT_NONE);
    assert_string_equal(out, NAME64);
    assert_int_equal(tw_topic_asset("twin/v1/asset/" NAME65 "/telemetry", ROOT, "telemetry", out),
                     TW_REJECT_BAD_ASSET_ID);
}

/* ---- samples ------------------------------------------------------------------------------ */

static void validate_rejects_no_samples(void **state)
{
    (void)state;
    assert_word(parse_default("press-1", NOW, NULL, 0), "no_samples");
    assert_word(parse_default("", 0, NULL, 0), "no_samples");
}

static void assert_sample_count(size_t max, size_t n, const char *want)
{
    struct tw_sample *s = calloc(n, sizeof(*s));
    char(*names)[24] = calloc(n, sizeof(*names));
    assert_non_null(s);
    assert_non_null(names);
    for (size_t i = 0; i < n; i++) {
        snprintf(names[i], sizeof(names[i]), "s%zu", i);
        s[i] = (struct tw_sample){names[i], (double)i};
    }
    struct tw_limits lim = default_limits();
    if (max)
        lim.max_samples = max;
    struct tw_parse_result res;
    assert_word(parse_msg("", NOW, s, n, &lim, &res), want);
    if (res.reject == TW_REJECT_NONE)
        assert_int_equal(res.msg.n_samples, n);
    tw_codec_telemetry_free(&res.msg);
    free(names);
    free(s);
}

static void validate_sample_count_at_limit_is_accepted_one_more_is_refused(void **state)
{
    (void)state;
    assert_sample_count(0, 256, "none"); /* the default limit */
    assert_sample_count(0, 257, "too_many_samples");
    assert_sample_count(3, 3, "none");
    assert_sample_count(3, 4, "too_many_samples");
    assert_sample_count(1, 1, "none");
    assert_sample_count(1, 2, "too_many_samples");
}

static void validate_sample_count_is_checked_on_the_wire(void **state)
{
    (void)state;
    /* 300 samples whose values are varints (undecodable): the count is refused first, from
     * the wire scan, before anything is decoded. */
    enum { N = 300 };
    uint8_t wire[N * 4];
    for (size_t i = 0; i < N; i++)
        memcpy(wire + 4 * i, "\x22\x02\x10\x01", 4);
    struct tw_limits lim = default_limits();
    struct tw_parse_result res;
    assert_word(parse_with(TOPIC, wire, sizeof(wire), &lim, &res), "too_many_samples");
}

static void validate_signal_name_rules(void **state)
{
    (void)state;
    static const char *const good[] = {
        "a",
        "Z",
        "0",
        "temp",
        "line:1/rpm",
        "a_b",
        "a.b-c",
        "a/",
        ":",
        "-",
        ".",
        "9_",
        "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789:/",
        NAME64,
    };
    static const char *const bad[] = {
        "",    "_",   "_temp", NAME65, "a b", "a+b", "a#b", "a\"b", "a\\b", "a,b", "a=b", "a{b",
        "a}b", "a*b", "a$b",   "a@b",  "a!b", "a~b", "a|b", "a'b",  "a;b",  "a?b", "a%b", "a&b",
        "a(b", "a)b", "a[b",   "a]b",  "a<b", "a>b", "a`b", "a^b",  " a",   "a ",
    };
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        if (parse_signal(good[i]) != TW_REJECT_NONE)
            print_error("signal \"%s\" should be accepted\n", good[i]);
        assert_word(parse_signal(good[i]), "none");
    }
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (parse_signal(bad[i]) != TW_REJECT_BAD_SIGNAL)
            print_error("signal \"%s\" should be refused\n", bad[i]);
        assert_word(parse_signal(bad[i]), "bad_signal");
    }
}

static void validate_rejects_odd_bytes_in_signal_on_the_wire(void **state)
{
    (void)state;
    /* 22 06 { 0a 04 't' 'm' <bad> 'p' }: a NUL would make the decoder see "tm" */
    const uint8_t bad[] = {0x00, 0x09, 0x1f, 0x7f, 0x80, 0xc3};
    struct tw_limits lim = default_limits();
    for (size_t i = 0; i < sizeof(bad); i++) {
        const uint8_t wire[] = {0x22, 0x06, 0x0a, 0x04, 't', 'm', bad[i], 'p'};
        struct tw_parse_result res;
        assert_word(parse_with(TOPIC, wire, sizeof(wire), &lim, &res), "bad_signal");
    }
}

static bool in_set(unsigned char c, const char *extra)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           (c != 0 && strchr(extra, c) != NULL);
}

static void validate_name_predicates_follow_the_character_classes(void **state)
{
    (void)state;
    for (unsigned c = 0; c < 256; c++) {
        char mid[3] = {'a', (char)c, 'b'};
        char first[2] = {(char)c, 'b'};
        bool asset_ok = in_set((unsigned char)c, "._-");
        bool signal_ok = in_set((unsigned char)c, "._-:/");
        if (tw_valid_asset_id(mid, 3) != asset_ok || tw_valid_signal(mid, 3) != signal_ok)
            print_error("byte 0x%02x\n", c);
        assert_true(tw_valid_asset_id(mid, 3) == asset_ok);
        assert_true(tw_valid_signal(mid, 3) == signal_ok);
        assert_true(tw_valid_asset_id(first, 2) == asset_ok);
        assert_true(tw_valid_signal(first, 2) == (signal_ok && c != '_'));
    }
}

static void validate_name_predicates_length_bounds(void **state)
{
    (void)state;
    assert_false(tw_valid_asset_id("", 0));
    assert_false(tw_valid_signal("", 0));
    assert_false(tw_valid_asset_id(NULL, 0));
    assert_false(tw_valid_signal(NULL, 0));
    assert_true(tw_valid_asset_id("a", 1));
    assert_true(tw_valid_signal("a", 1));
    assert_true(tw_valid_asset_id(NAME64, 64));
    assert_true(tw_valid_signal(NAME64, 64));
    assert_false(tw_valid_asset_id(NAME65, 65));
    assert_false(tw_valid_signal(NAME65, 65));
    assert_true(tw_valid_asset_id(NAME65, 64)); /* the length given, not strlen, counts */
    assert_true(tw_valid_asset_id("_a", 2));    /* '_' is reserved for signals only */
    assert_false(tw_valid_signal("_a", 2));
    assert_true(tw_valid_signal("a_", 2));
    assert_false(tw_valid_asset_id("a:b", 3));
    assert_false(tw_valid_asset_id("a/b", 3));
}

static void validate_rejects_duplicate_signal(void **state)
{
    (void)state;
    const struct tw_sample dup[] = {{"t", 1.0}, {"p", 2.0}, {"t", 1.0}};
    assert_word(parse_default("press-1", NOW, dup, 3), "duplicate_signal");
    const struct tw_sample adjacent[] = {{"p", 2.0}, {"p", 3.0}};
    assert_word(parse_default("press-1", NOW, adjacent, 2), "duplicate_signal");
    const struct tw_sample near[] = {{"t", 1.0}, {"T", 2.0}, {"t.", 3.0}};
    assert_word(parse_default("press-1", NOW, near, 3), "none");
}

static void validate_rejects_non_finite_values(void **state)
{
    (void)state;
    const double bad[] = {NAN, -NAN, INFINITY, -INFINITY};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        const struct tw_sample s[] = {{"a", 1.0}, {"b", bad[i]}};
        assert_word(parse_default("press-1", NOW, s, 2), "non_finite");
    }
    /* 22 0c { 0a 01 'x' | 11 01 00 00 00 00 00 f0 7f }: a signalling NaN with payload 1 */
    static const uint8_t snan[] = {0x22, 0x0c, 0x0a, 0x01, 'x',  0x11, 0x01,
                                   0x00, 0x00, 0x00, 0x00, 0x00, 0xf0, 0x7f};
    struct tw_limits lim = default_limits();
    struct tw_parse_result res;
    assert_word(parse_with(TOPIC, snan, sizeof(snan), &lim, &res), "non_finite");
}

static void validate_one_bad_sample_rejects_the_whole_message(void **state)
{
    (void)state;
    for (size_t bad = 0; bad < 6; bad++) {
        struct tw_sample s[6] = {{"a", 1}, {"b", 2}, {"c", 3}, {"d", 4}, {"e", 5}, {"f", 6}};
        s[bad].value = NAN;
        struct tw_limits lim = default_limits();
        struct tw_parse_result res;
        assert_word(parse_msg("press-1", NOW, s, 6, &lim, &res), "non_finite");
        s[bad].value = 1.0;
        s[bad].signal = "_meta";
        assert_word(parse_msg("press-1", NOW, s, 6, &lim, &res), "bad_signal");
    }
}

/* ---- time window -------------------------------------------------------------------------- */

static enum tw_reject parse_ts(int64_t ts_ms, int64_t max_past_ms, int64_t max_future_ms)
{
    const struct tw_sample s[] = {{"temp", 1.0}};
    struct tw_limits lim = default_limits();
    lim.max_past_ms = max_past_ms;
    lim.max_future_ms = max_future_ms;
    struct tw_parse_result res;
    enum tw_reject r = parse_msg("press-1", ts_ms, s, 1, &lim, &res);
    if (r == TW_REJECT_NONE)
        assert_true(res.msg.ts_ms == ts_ms);
    tw_codec_telemetry_free(&res.msg);
    return r;
}

static void validate_ts_window_edges_are_inclusive(void **state)
{
    (void)state;
    const int64_t past = 7LL * 24 * 3600 * 1000, future = 10LL * 60 * 1000;
    assert_word(parse_ts(NOW + future, past, future), "none");
    assert_word(parse_ts(NOW + future + 1, past, future), "ts_out_of_window");
    assert_word(parse_ts(NOW - past, past, future), "none");
    assert_word(parse_ts(NOW - past - 1, past, future), "ts_out_of_window");
    assert_word(parse_ts(NOW, past, future), "none");
    assert_word(parse_ts(INT64_MAX, past, future), "ts_out_of_window");
    assert_word(parse_ts(-1, past, future), "ts_out_of_window");
    assert_word(parse_ts(INT64_MIN, past, future), "ts_out_of_window");
    assert_word(parse_ts(NOW + 2, 1, 1), "ts_out_of_window");
    assert_word(parse_ts(NOW - 2, 1, 1), "ts_out_of_window");
    assert_word(parse_ts(NOW + 1, 1, 1), "none");
    assert_word(parse_ts(NOW - 1, 1, 1), "none");
}

static void validate_ts_limits_of_zero_mean_no_limit(void **state)
{
    (void)state;
    const int64_t past = 7LL * 24 * 3600 * 1000, future = 10LL * 60 * 1000;
    assert_word(parse_ts(INT64_MAX, past, 0), "none");
    assert_word(parse_ts(NOW + future + 1, past, 0), "none");
    assert_word(parse_ts(NOW - past - 1, past, 0), "ts_out_of_window");
    assert_word(parse_ts(1, 0, future), "none");
    assert_word(parse_ts(NOW - past - 1, 0, future), "none");
    assert_word(parse_ts(NOW + future + 1, 0, future), "ts_out_of_window");
    assert_word(parse_ts(1, 0, 0), "none");
    assert_word(parse_ts(INT64_MAX, 0, 0), "none");
}

static void validate_default_limits_are_the_design_defaults(void **state)
{
    (void)state;
    struct tw_limits l = default_limits();
    assert_int_equal(l.max_payload, 65536);
    assert_int_equal(l.max_samples, 256);
    assert_true(l.max_past_ms == 604800000);
    assert_true(l.max_future_ms == 600000);
}

/* ---- detail text -------------------------------------------------------------------------- */

static void validate_detail_is_printable_for_odd_topics(void **state)
{
    (void)state;
    static const char *const topics[] = {
        "twin/v1/asset/\x01\x02\x7f\x80\xff\"\\/telemetry",
        "twin/v1/asset/a\x1b[31mred/telemetry",
        "\xff\xfe\xfd\xfc\xfb\xfa\xf9\xf8\xf7\xf6\xf5\xf4\xf3\xf2\xf1\xf0\xef\xee\xed\xec"
        "\xff\xfe\xfd\xfc\xfb\xfa\xf9\xf8\xf7\xf6\xf5\xf4\xf3\xf2\xf1\xf0\xef\xee\xed\xec"
        "\xff\xfe\xfd\xfc\xfb\xfa\xf9\xf8\xf7\xf6\xf5\xf4\xf3\xf2\xf1\xf0\xef\xee\xed\xec"
        "\xff\xfe\xfd\xfc\xfb\xfa\xf9\xf8\xf7\xf6\xf5\xf4\xf3\xf2\xf1\xf0\xef\xee\xed\xec",
        "twin/v1/asset/" NAME64 NAME64 NAME64 "/telemetry",
    };
    const struct tw_sample s[] = {{"temp", 1.0}};
    size_t len = 0;
    uint8_t *buf = encode("", NOW, 1, s, 1, &len);
    struct tw_limits lim = default_limits();
    for (size_t i = 0; i < sizeof(topics) / sizeof(topics[0]); i++) {
        struct tw_parse_result res;
        assert_true(parse_with(topics[i], buf, len, &lim, &res) != TW_REJECT_NONE);
    }
    free(buf);
}

static void validate_detail_is_printable_for_odd_names(void **state)
{
    (void)state;
    /* Printable but invalid names reach the detail text: quotes, backslashes, overlong. */
    const struct tw_sample quote[] = {{"a\"b\\c", 1.0}};
    const struct tw_sample long_bad[] = {{NAME64 NAME64 NAME64 " ", 1.0}};
    struct tw_limits lim = default_limits();
    struct tw_parse_result res;
    assert_word(parse_msg("", NOW, quote, 1, &lim, &res), "bad_signal");
    assert_word(parse_msg("", NOW, long_bad, 1, &lim, &res), "bad_signal");
    assert_word(parse_msg("x\"y\\z" NAME64 NAME64, NOW, quote, 1, &lim, &res), "asset_mismatch");
    assert_non_null(strstr(res.detail, "x"));
    /* Bytes only the wire scan sees: NUL, control and non-ASCII in both names. */
    static const uint8_t wire[] = {0x0a, 0x03, 0x00, 0xff, 0x1b, 0x22,
                                   0x05, 0x0a, 0x03, 0x00, 0xff, 0x1b};
    assert_word(parse_with(TOPIC, wire, sizeof(wire), &lim, &res), "bad_asset_id");
    static const uint8_t wire2[] = {0x22, 0x05, 0x0a, 0x03, 0x07, 0xc3, 0xa9};
    assert_word(parse_with(TOPIC, wire2, sizeof(wire2), &lim, &res), "bad_signal");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(validate_reject_words_are_the_documented_words),
        cmocka_unit_test(validate_reject_words_are_distinct_snake_case),
        cmocka_unit_test(validate_accepts_good_message_and_keeps_its_fields),
        cmocka_unit_test(validate_ts_zero_is_replaced_by_now),
        cmocka_unit_test(validate_empty_asset_id_means_the_topic_asset),
        cmocka_unit_test(validate_custom_topic_root_is_honoured),
        cmocka_unit_test(validate_rejects_empty_payload),
        cmocka_unit_test(validate_payload_of_exactly_max_is_accepted_one_more_is_oversize),
        cmocka_unit_test(validate_oversize_is_refused_before_the_wire_is_read),
        cmocka_unit_test(validate_rejects_undecodable_payloads),
        cmocka_unit_test(validate_rejects_bad_topics),
        cmocka_unit_test(validate_rejects_bad_asset_in_topic),
        cmocka_unit_test(validate_rejects_odd_bytes_in_payload_asset_id),
        cmocka_unit_test(validate_rejects_asset_mismatch),
        cmocka_unit_test(validate_topic_asset_extracts_the_asset),
        cmocka_unit_test(validate_rejects_no_samples),
        cmocka_unit_test(validate_sample_count_at_limit_is_accepted_one_more_is_refused),
        cmocka_unit_test(validate_sample_count_is_checked_on_the_wire),
        cmocka_unit_test(validate_signal_name_rules),
        cmocka_unit_test(validate_rejects_odd_bytes_in_signal_on_the_wire),
        cmocka_unit_test(validate_name_predicates_follow_the_character_classes),
        cmocka_unit_test(validate_name_predicates_length_bounds),
        cmocka_unit_test(validate_rejects_duplicate_signal),
        cmocka_unit_test(validate_rejects_non_finite_values),
        cmocka_unit_test(validate_one_bad_sample_rejects_the_whole_message),
        cmocka_unit_test(validate_ts_window_edges_are_inclusive),
        cmocka_unit_test(validate_ts_limits_of_zero_mean_no_limit),
        cmocka_unit_test(validate_default_limits_are_the_design_defaults),
        cmocka_unit_test(validate_detail_is_printable_for_odd_topics),
        cmocka_unit_test(validate_detail_is_printable_for_odd_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
