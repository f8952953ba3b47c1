/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests of twin/codec.h: round trips of the twin.v1 messages and the raw wire scanner. */
#include <float.h>
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

/* Protobuf wire tags used below: (field << 3) | wire type.
 *   Telemetry: 0x0a asset_id (1, len), 0x10 ts_ms (2, varint), 0x18 seq (3, varint),
 *              0x22 samples (4, len)
 *   Sample:    0x0a signal (1, len),   0x11 value (2, fixed64, little-endian double) */

static uint64_t bits_of(double d)
{
    uint64_t u;
    memcpy(&u, &d, sizeof(u));
    return u;
}

/* Encodes t, decodes the bytes again and checks every field, values bit for bit. */
static void assert_telemetry_round_trip(const struct tw_telemetry *t)
{
    uint8_t *buf = NULL;
    size_t len = 0;
    struct tw_telemetry back;
    assert_int_equal(tw_codec_encode_telemetry(t, &buf, &len), 0);
    assert_non_null(buf);
    int rc = tw_codec_decode_telemetry(buf, len, &back);
    free(buf);
    assert_int_equal(rc, 0);
    assert_string_equal(back.asset_id, t->asset_id ? t->asset_id : "");
    assert_true(back.ts_ms == t->ts_ms);
    assert_true(back.seq == t->seq);
    assert_int_equal(back.n_samples, t->n_samples);
    size_t differ = 0;
    for (size_t i = 0; i < t->n_samples; i++) {
        assert_string_equal(back.samples[i].signal, t->samples[i].signal);
        if (bits_of(back.samples[i].value) != bits_of(t->samples[i].value)) {
            print_error("sample %s: encoded %a (bits %016llx), decoded %a (bits %016llx)\n",
                        t->samples[i].signal, t->samples[i].value,
                        (unsigned long long)bits_of(t->samples[i].value), back.samples[i].value,
                        (unsigned long long)bits_of(back.samples[i].value));
            differ++;
        }
    }
    tw_codec_telemetry_free(&back);
    assert_null(back.impl_);
    assert_int_equal(differ, 0);
}

static void codec_telemetry_round_trip_keeps_extreme_values(void **state)
{
    (void)state;
    const struct tw_sample samples[] = {
        {"subnormal_min", 5e-324},
        {"huge", 1e308},
        {"max", DBL_MAX},
        {"min_normal", DBL_MIN},
        {"neg_max", -DBL_MAX},
        {"third", 1.0 / 3.0},
        {"two53_plus", 9007199254740993.0},
        {"tiny_neg", -4.9406564584124654e-324},
        {"plant/line:1.temp-c", 21.5},
    };
    struct tw_telemetry t = {
        .asset_id = "press-1",
        .ts_ms = 1700000000123,
        .seq = UINT64_MAX,
        .n_samples = sizeof(samples) / sizeof(samples[0]),
        .samples = (struct tw_sample *)samples,
    };
    assert_telemetry_round_trip(&t);
}

static void codec_telemetry_round_trip_keeps_negative_ts_and_seq_extremes(void **state)
{
    (void)state;
    const struct tw_sample one[] = {{"x", 1.0}};
    const int64_t ts[] = {-1, INT64_MIN, INT64_MAX, 0};
    const uint64_t seq[] = {0, 1, (1ULL << 53) + 1, UINT64_MAX};
    for (size_t i = 0; i < 4; i++) {
        struct tw_telemetry t = {.asset_id = "a",
                                 .ts_ms = ts[i],
                                 .seq = seq[i],
                                 .n_samples = 1,
                                 .samples = (struct tw_sample *)one};
        assert_telemetry_round_trip(&t);
    }
}

static void codec_telemetry_round_trip_with_no_samples_and_empty_asset(void **state)
{
    (void)state;
    struct tw_telemetry t = {.asset_id = "", .ts_ms = 0, .seq = 0, .n_samples = 0};
    assert_telemetry_round_trip(&t);
    struct tw_telemetry null_asset = {.asset_id = NULL, .ts_ms = 5, .seq = 6};
    assert_telemetry_round_trip(&null_asset);
}

/* proto3 double: a value whose bits are not all zero must be written, so -0.0 survives. */
static void codec_telemetry_round_trip_keeps_sign_of_negative_zero(void **state)
{
    (void)state;
    const struct tw_sample samples[] = {{"neg_zero", -0.0}, {"pos_zero", 0.0}};
    struct tw_telemetry t = {.asset_id = "a",
                             .ts_ms = 1,
                             .seq = 1,
                             .n_samples = 2,
                             .samples = (struct tw_sample *)samples};
    assert_telemetry_round_trip(&t);
}

static void codec_decode_keeps_negative_zero_from_wire(void **state)
{
    (void)state;
    /* 22 0c { 0a 01 'z' | 11 00 00 00 00 00 00 00 80 }: value -0.0 (sign bit only) */
    static const uint8_t wire[] = {0x22, 0x0c, 0x0a, 0x01, 'z',  0x11, 0x00,
                                   0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x80};
    struct tw_telemetry t;
    assert_int_equal(tw_codec_decode_telemetry(wire, sizeof(wire), &t), 0);
    assert_int_equal(t.n_samples, 1);
    assert_true(bits_of(t.samples[0].value) == bits_of(-0.0));
    tw_codec_telemetry_free(&t);
}

static void codec_telemetry_encodes_exact_wire_bytes(void **state)
{
    (void)state;
    const struct tw_sample s[] = {{"x", 1.0}};
    struct tw_telemetry t = {
        .asset_id = "a", .ts_ms = 1, .seq = 2, .n_samples = 1, .samples = (struct tw_sample *)s};
    /* 0a 01 'a' | 10 01 | 18 02 | 22 0c { 0a 01 'x' | 11 <1.0 as LE double> } */
    static const uint8_t want[] = {0x0a, 0x01, 'a',  0x10, 0x01, 0x18, 0x02, 0x22, 0x0c, 0x0a, 0x01,
                                   'x',  0x11, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xf0, 0x3f};
    uint8_t *buf = NULL;
    size_t len = 0;
    assert_int_equal(tw_codec_encode_telemetry(&t, &buf, &len), 0);
    assert_int_equal(len, sizeof(want));
    assert_memory_equal(buf, want, sizeof(want));
    free(buf);
}

static void codec_decode_reads_hand_encoded_negative_ts(void **state)
{
    (void)state;
    /* 10 <ten-byte varint of -1> | 22 02 { 0a 00 }: ts_ms -1, one sample with empty name */
    static const uint8_t wire[] = {0x10, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
                                   0xff, 0xff, 0x01, 0x22, 0x02, 0x0a, 0x00};
    struct tw_telemetry t;
    assert_int_equal(tw_codec_decode_telemetry(wire, sizeof(wire), &t), 0);
    assert_true(t.ts_ms == -1);
    assert_string_equal(t.asset_id, "");
    assert_int_equal(t.n_samples, 1);
    assert_string_equal(t.samples[0].signal, "");
    tw_codec_telemetry_free(&t);
}

static void codec_decode_of_garbage_is_eproto(void **state)
{
    (void)state;
    static const uint8_t junk1[] = {0xff, 0xff, 0xff};             /* varint key never ends */
    static const uint8_t junk2[] = {0x0a, 0x05, 'a'};              /* asset_id longer than buffer */
    static const uint8_t junk3[] = {0x22, 0x03, 0x11, 0x00, 0x00}; /* double cut short */
    static const uint8_t junk4[] = {0x08, 0x01};                   /* asset_id sent as a varint */
    static const uint8_t junk5[] = {0x22, 0x02, 0x08, 0x01};       /* signal sent as a varint */
    static const uint8_t junk6[] = {0x0b, 0x0c};                   /* group wire types */
    const struct {
        const uint8_t *p;
        size_t n;
    } cases[] = {{junk1, sizeof(junk1)}, {junk2, sizeof(junk2)}, {junk3, sizeof(junk3)},
                 {junk4, sizeof(junk4)}, {junk5, sizeof(junk5)}, {junk6, sizeof(junk6)}};
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct tw_telemetry t;
        assert_int_equal(tw_codec_decode_telemetry(cases[i].p, cases[i].n, &t), TW_EPROTO);
        assert_null(t.impl_);
        assert_null(t.samples);
        tw_codec_telemetry_free(&t); /* harmless on a failed decode */
        struct tw_twin_state_msg m;
        assert_int_equal(tw_codec_decode_twin_state(cases[i].p, cases[i].n, &m), TW_EPROTO);
        assert_null(m.impl_);
        tw_codec_twin_state_free(&m);
    }
}

/* ---- TwinState ---------------------------------------------------------------------------- */

static void make_state(struct tw_twin_state *s, const struct tw_sample *samples, size_t n,
                       const char *const *changed, size_t n_changed)
{
    *s = (struct tw_twin_state){.asset_id = "press-1",
                                .ts_ms = -42,
                                .seq = UINT64_MAX,
                                .ingest_ms = 1700000000999,
                                .n_samples = n,
                                .samples = samples,
                                .n_changed = n_changed,
                                .changed = changed};
}

static void assert_state_equal(const struct tw_twin_state *a, const struct tw_twin_state *b)
{
    assert_string_equal(a->asset_id, b->asset_id);
    assert_true(a->ts_ms == b->ts_ms);
    assert_true(a->seq == b->seq);
    assert_true(a->ingest_ms == b->ingest_ms);
    assert_int_equal(a->n_samples, b->n_samples);
    for (size_t i = 0; i < a->n_samples; i++) {
        assert_string_equal(a->samples[i].signal, b->samples[i].signal);
        assert_true(bits_of(a->samples[i].value) == bits_of(b->samples[i].value));
    }
    assert_int_equal(a->n_changed, b->n_changed);
    for (size_t i = 0; i < a->n_changed; i++)
        assert_string_equal(a->changed[i], b->changed[i]);
}

static void codec_twin_state_too_small_buffer_is_enomem_with_needed_size(void **state)
{
    (void)state;
    const struct tw_sample samples[] = {{"temp", 21.5}, {"rpm", 1500.0}, {"tiny", 5e-324}};
    const char *const changed[] = {"temp"};
    struct tw_twin_state s;
    make_state(&s, samples, 3, changed, 1);

    size_t need = 0;
    assert_int_equal(tw_codec_encode_twin_state(&s, NULL, 0, &need), TW_ENOMEM);
    assert_true(need > 0);

    /* Exactly one byte short, in a heap block of that size: ASan sees any write past it. */
    uint8_t *small = malloc(need - 1);
    assert_non_null(small);
    size_t len = 0;
    assert_int_equal(tw_codec_encode_twin_state(&s, small, need - 1, &len), TW_ENOMEM);
    assert_int_equal(len, need);
    free(small);

    uint8_t *buf = malloc(need);
    assert_non_null(buf);
    len = 0;
    assert_int_equal(tw_codec_encode_twin_state(&s, buf, need, &len), 0);
    assert_int_equal(len, need);

    struct tw_twin_state_msg back;
    assert_int_equal(tw_codec_decode_twin_state(buf, len, &back), 0);
    assert_state_equal(&back.s, &s);
    tw_codec_twin_state_free(&back);
    assert_null(back.impl_);
    free(buf);
}

static void codec_twin_state_with_more_samples_than_stack_round_trips(void **state)
{
    (void)state;
    enum { N = 300 };
    static char names[N][16];
    static struct tw_sample samples[N];
    static const char *changed[N];
    for (int i = 0; i < N; i++) {
        snprintf(names[i], sizeof(names[i]), "sig%d", i);
        samples[i] = (struct tw_sample){names[i], (double)i * 0.5 - 7.0};
        changed[i] = names[i];
    }
    struct tw_twin_state s;
    make_state(&s, samples, N, changed, N);
    size_t need = 0;
    assert_int_equal(tw_codec_encode_twin_state(&s, NULL, 0, &need), TW_ENOMEM);
    uint8_t *buf = malloc(need);
    assert_non_null(buf);
    size_t len = 0;
    assert_int_equal(tw_codec_encode_twin_state(&s, buf, need, &len), 0);
    struct tw_twin_state_msg back;
    assert_int_equal(tw_codec_decode_twin_state(buf, len, &back), 0);
    assert_state_equal(&back.s, &s);
    tw_codec_twin_state_free(&back);
    free(buf);
}

static void codec_twin_state_empty_round_trips(void **state)
{
    (void)state;
    struct tw_twin_state s = {.asset_id = "a"};
    uint8_t buf[16];
    size_t len = 99;
    assert_int_equal(tw_codec_encode_twin_state(&s, buf, sizeof(buf), &len), 0);
    assert_int_equal(len, 3); /* 0a 01 'a': zero scalars are not written in proto3 */
    struct tw_twin_state_msg back;
    assert_int_equal(tw_codec_decode_twin_state(buf, len, &back), 0);
    assert_state_equal(&back.s, &s);
    tw_codec_twin_state_free(&back);
}

/* ---- Rejected ----------------------------------------------------------------------------- */

/* Finds length-delimited field `field` in a flat message whose fields are all strings or
 * bytes with lengths below 128 (true for the Rejected messages built here). */
static int find_bytes_field(const uint8_t *p, size_t n, unsigned field, const uint8_t **out,
                            size_t *out_len)
{
    size_t i = 0;
    while (i + 2 <= n) {
        unsigned key = p[i], len = p[i + 1];
        assert_true(len < 0x80 && (key & 7) == 2);
        if (i + 2 + len > n)
            return -1;
        if ((key >> 3) == field) {
            *out = p + i + 2;
            *out_len = len;
            return 0;
        }
        i += 2 + len;
    }
    return -1;
}

static void codec_rejected_caps_payload_head_at_64_bytes(void **state)
{
    (void)state;
    uint8_t payload[200];
    for (size_t i = 0; i < sizeof(payload); i++)
        payload[i] = (uint8_t)i;
    const size_t lens[] = {0, 1, 63, 64, 65, 200};
    for (size_t k = 0; k < sizeof(lens) / sizeof(lens[0]); k++) {
        uint8_t *buf = NULL;
        size_t len = 0;
        assert_int_equal(tw_codec_encode_rejected("twin/v1/asset/a/telemetry", "oversize",
                                                  "too big", payload, lens[k], &buf, &len),
                         0);
        const uint8_t *head = NULL, *reason = NULL, *topic = NULL;
        size_t head_len = 0, reason_len = 0, topic_len = 0;
        assert_int_equal(find_bytes_field(buf, len, 1, &topic, &topic_len), 0);
        assert_int_equal(topic_len, strlen("twin/v1/asset/a/telemetry"));
        assert_memory_equal(topic, "twin/v1/asset/a/telemetry", topic_len);
        assert_int_equal(find_bytes_field(buf, len, 2, &reason, &reason_len), 0);
        assert_int_equal(reason_len, 8);
        assert_memory_equal(reason, "oversize", 8);
        size_t want = lens[k] < TW_REJECTED_HEAD_BYTES ? lens[k] : TW_REJECTED_HEAD_BYTES;
        if (want == 0) {
            assert_int_equal(find_bytes_field(buf, len, 4, &head, &head_len), -1);
        } else {
            assert_int_equal(find_bytes_field(buf, len, 4, &head, &head_len), 0);
            assert_int_equal(head_len, want);
            assert_memory_equal(head, payload, want);
        }
        free(buf);
    }
}

static void codec_rejected_accepts_null_fields(void **state)
{
    (void)state;
    uint8_t *buf = NULL;
    size_t len = 99;
    assert_int_equal(tw_codec_encode_rejected(NULL, NULL, NULL, NULL, 10, &buf, &len), 0);
    assert_non_null(buf);
    assert_int_equal(len, 0);
    free(buf);
}

/* ---- scanner ------------------------------------------------------------------------------ */

static int scan(const uint8_t *p, size_t n, struct tw_telemetry_scan *out)
{
    return tw_codec_scan_telemetry(p, n, out);
}

static void codec_scan_counts_samples_and_skips_other_fields(void **state)
{
    (void)state;
    static const uint8_t wire[] = {
        0x0a, 0x01, 'a',                              /* asset_id "a" */
        0x10, 0x96, 0x01,                             /* ts_ms 150 (two-byte varint) */
        0x22, 0x05, 0x0a, 0x03, 'r',  'p', 'm',       /* sample {signal "rpm"} */
        0x22, 0x00,                                   /* sample {} */
        0x7d, 0x01, 0x02, 0x03, 0x04,                 /* unknown field 15, fixed32 */
        0x22, 0x02, 0x0a, 0x00,                       /* sample {signal ""} */
        0x79, 1,    2,    3,    4,    5,   6,   7, 8, /* unknown field 15, fixed64 */
    };
    struct tw_telemetry_scan s;
    assert_int_equal(scan(wire, sizeof(wire), &s), 0);
    assert_int_equal(s.n_samples, 3);
    assert_int_equal(s.fault, TW_SCAN_OK);

    assert_int_equal(scan(NULL, 0, &s), 0);
    assert_int_equal(s.n_samples, 0);
    assert_int_equal(s.fault, TW_SCAN_OK);
}

static void codec_scan_counts_many_samples_without_decoding(void **state)
{
    (void)state;
    /* 5000 empty samples (22 00 each) followed by a sample whose value is a varint, which the
     * decoder would refuse: the scanner only walks the wire. */
    enum { N = 5000 };
    uint8_t *wire = malloc(2 * N + 4);
    assert_non_null(wire);
    for (size_t i = 0; i < N; i++) {
        wire[2 * i] = 0x22;
        wire[2 * i + 1] = 0x00;
    }
    memcpy(wire + 2 * N, "\x22\x02\x10\x01", 4); /* sample { 10 01 }: value as varint */
    struct tw_telemetry_scan s;
    assert_int_equal(scan(wire, 2 * N + 4, &s), 0);
    assert_int_equal(s.n_samples, N + 1);
    struct tw_telemetry t;
    assert_int_equal(tw_codec_decode_telemetry(wire, 2 * N + 4, &t), TW_EPROTO);
    free(wire);
}

static void codec_scan_flags_bad_bytes_in_asset_id(void **state)
{
    (void)state;
    /* 0a 03 'a' <bad> 'b': asset_id of three bytes with a bad middle byte */
    const uint8_t bad[] = {0x00, 0x01, 0x09, 0x0a, 0x1f, 0x7f, 0x80, 0xc3, 0xff};
    for (size_t i = 0; i < sizeof(bad); i++) {
        const uint8_t wire[] = {0x0a, 0x03, 'a', bad[i], 'b'};
        struct tw_telemetry_scan s;
        assert_int_equal(scan(wire, sizeof(wire), &s), 0);
        assert_int_equal(s.fault, TW_SCAN_BAD_ASSET_ID);
    }
    /* The printable edges 0x20 and 0x7e are the name rules' business, not the scanner's. */
    const uint8_t edges[] = {0x0a, 0x02, 0x20, 0x7e};
    struct tw_telemetry_scan s;
    assert_int_equal(scan(edges, sizeof(edges), &s), 0);
    assert_int_equal(s.fault, TW_SCAN_OK);
}

static void codec_scan_flags_bad_bytes_in_signal(void **state)
{
    (void)state;
    const uint8_t bad[] = {0x00, 0x07, 0x1b, 0x7f, 0xe2, 0xff};
    for (size_t i = 0; i < sizeof(bad); i++) {
        /* 0a 01 'a' | 22 05 { 0a 03 'x' <bad> 'y' } */
        const uint8_t wire[] = {0x0a, 0x01, 'a', 0x22, 0x05, 0x0a, 0x03, 'x', bad[i], 'y'};
        struct tw_telemetry_scan s;
        assert_int_equal(scan(wire, sizeof(wire), &s), 0);
        assert_int_equal(s.n_samples, 1);
        assert_int_equal(s.fault, TW_SCAN_BAD_SIGNAL);
    }
}

static void codec_scan_flags_nul_in_second_signal_after_good_one(void **state)
{
    (void)state;
    /* 22 03 { 0a 01 'x' } | 22 04 { 0a 02 'y' 00 }: the decoder would read "y" */
    static const uint8_t wire[] = {0x22, 0x03, 0x0a, 0x01, 'x', 0x22, 0x04, 0x0a, 0x02, 'y', 0x00};
    struct tw_telemetry_scan s;
    assert_int_equal(scan(wire, sizeof(wire), &s), 0);
    assert_int_equal(s.n_samples, 2);
    assert_int_equal(s.fault, TW_SCAN_BAD_SIGNAL);
}

static void codec_scan_reports_first_fault(void **state)
{
    (void)state;
    /* 0a 01 00 (bad asset_id) | 22 03 { 0a 01 01 } (bad signal): the asset's fault is kept */
    static const uint8_t wire[] = {0x0a, 0x01, 0x00, 0x22, 0x03, 0x0a, 0x01, 0x01};
    struct tw_telemetry_scan s;
    assert_int_equal(scan(wire, sizeof(wire), &s), 0);
    assert_int_equal(s.fault, TW_SCAN_BAD_ASSET_ID);
    /* 22 03 { 0a 01 01 } | 0a 01 00: now the signal's fault comes first */
    static const uint8_t wire2[] = {0x22, 0x03, 0x0a, 0x01, 0x01, 0x0a, 0x01, 0x00};
    assert_int_equal(scan(wire2, sizeof(wire2), &s), 0);
    assert_int_equal(s.fault, TW_SCAN_BAD_SIGNAL);
}

static void assert_scan_eproto(const uint8_t *p, size_t n)
{
    struct tw_telemetry_scan s;
    assert_int_equal(scan(p, n, &s), TW_EPROTO);
}

static void codec_scan_truncated_varints_are_eproto(void **state)
{
    (void)state;
    static const uint8_t key_cut[] = {0x80};                /* key varint never ends */
    static const uint8_t ts_cut[] = {0x10, 0x80, 0x80};     /* ts_ms varint never ends */
    static const uint8_t len_cut[] = {0x0a, 0x80};          /* length varint never ends */
    static const uint8_t ts_missing[] = {0x0a, 0x00, 0x10}; /* tag, then nothing */
    /* 18 then eleven continuation bytes: longer than the ten a uint64 may take */
    static const uint8_t too_long[] = {0x18, 0x80, 0x80, 0x80, 0x80, 0x80,
                                       0x80, 0x80, 0x80, 0x80, 0x80, 0x01};
    /* 22 02 { 10 80 }: a varint cut short inside a sample */
    static const uint8_t nested_cut[] = {0x22, 0x02, 0x10, 0x80};
    assert_scan_eproto(key_cut, sizeof(key_cut));
    assert_scan_eproto(ts_cut, sizeof(ts_cut));
    assert_scan_eproto(len_cut, sizeof(len_cut));
    assert_scan_eproto(ts_missing, sizeof(ts_missing));
    assert_scan_eproto(too_long, sizeof(too_long));
    assert_scan_eproto(nested_cut, sizeof(nested_cut));
}

static void codec_scan_lengths_beyond_buffer_are_eproto(void **state)
{
    (void)state;
    static const uint8_t str_long[] = {0x0a, 0x05, 'a'};                 /* 5 bytes promised, 1 */
    static const uint8_t sample_long[] = {0x22, 0x10, 0x0a, 0x00};       /* 16 promised, 2 */
    static const uint8_t inner_long[] = {0x22, 0x03, 0x0a, 0x05, 'x'};   /* inside the sample */
    static const uint8_t fixed64_cut[] = {0x22, 0x05, 0x11, 0, 0, 0, 0}; /* double: 4 of 8 */
    static const uint8_t fixed32_cut[] = {0x7d, 0x01, 0x02};             /* fixed32: 2 of 4 */
    /* 0a <varint 2^63-1>: a length that would wrap a pointer if added unchecked */
    static const uint8_t huge[] = {0x0a, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f, 'a'};
    assert_scan_eproto(str_long, sizeof(str_long));
    assert_scan_eproto(sample_long, sizeof(sample_long));
    assert_scan_eproto(inner_long, sizeof(inner_long));
    assert_scan_eproto(fixed64_cut, sizeof(fixed64_cut));
    assert_scan_eproto(fixed32_cut, sizeof(fixed32_cut));
    assert_scan_eproto(huge, sizeof(huge));
    /* One byte short, and exactly enough */
    static const uint8_t str_one_short[] = {0x0a, 0x02, 'a'};
    static const uint8_t fixed64_one_short[] = {0x22, 0x08, 0x11, 0, 0, 0, 0, 0, 0, 0};
    static const uint8_t str_exact[] = {0x0a, 0x01, 'a'};
    static const uint8_t fixed64_exact[] = {0x22, 0x09, 0x11, 0, 0, 0, 0, 0, 0, 0, 0};
    assert_scan_eproto(str_one_short, sizeof(str_one_short));
    assert_scan_eproto(fixed64_one_short, sizeof(fixed64_one_short));
    struct tw_telemetry_scan s;
    assert_int_equal(scan(str_exact, sizeof(str_exact), &s), 0);
    assert_int_equal(scan(fixed64_exact, sizeof(fixed64_exact), &s), 0);
    assert_int_equal(s.n_samples, 1);
}

static void codec_scan_group_and_reserved_wire_types_are_eproto(void **state)
{
    (void)state;
    static const uint8_t start_group[] = {0x0b, 0x0c}; /* field 1 start/end group */
    static const uint8_t end_group[] = {0x0c};
    /* wire types 6 and 7 followed by eight bytes, enough for any fixed-size misreading */
    static const uint8_t wt6[] = {0x0e, 0x0a, 0x00, 0x0a, 0x00, 0x0a, 0x00, 0x0a, 0x00};
    static const uint8_t wt7[] = {0x0f, 0x0a, 0x00, 0x0a, 0x00, 0x0a, 0x00, 0x0a, 0x00};
    static const uint8_t nested_group[] = {0x22, 0x02, 0x13, 0x14}; /* group inside sample */
    /* A group tag followed by well-formed fields: no reading of it as another wire type may
     * let it pass. */
    static const uint8_t group_body[] = {0x0b, 0x0a, 0x00, 0x0a, 0x00};
    static const uint8_t group_tail[] = {0x0a, 0x00, 0x0c, 0x0a, 0x00, 0x0a, 0x00};
    assert_scan_eproto(group_body, sizeof(group_body));
    assert_scan_eproto(group_tail, sizeof(group_tail));
    assert_scan_eproto(start_group, sizeof(start_group));
    assert_scan_eproto(end_group, sizeof(end_group));
    assert_scan_eproto(wt6, sizeof(wt6));
    assert_scan_eproto(wt7, sizeof(wt7));
    assert_scan_eproto(nested_group, sizeof(nested_group));
}

static void codec_scan_field_number_zero_is_eproto(void **state)
{
    (void)state;
    static const uint8_t varint0[] = {0x00, 0x01};             /* field 0, varint */
    static const uint8_t len0[] = {0x02, 0x00};                /* field 0, length-delimited */
    static const uint8_t nested0[] = {0x22, 0x02, 0x00, 0x00}; /* field 0 inside a sample */
    static const uint8_t padded0[] = {0x80, 0x00, 0x00};       /* key 0 in two varint bytes */
    assert_scan_eproto(varint0, sizeof(varint0));
    assert_scan_eproto(len0, sizeof(len0));
    assert_scan_eproto(nested0, sizeof(nested0));
    assert_scan_eproto(padded0, sizeof(padded0));
}

/* ---- Prediction --------------------------------------------------------------------------- */

static void assert_forecast_equal(const struct tw_signal_forecast *a,
                                  const struct tw_signal_forecast *b)
{
    assert_string_equal(a->signal, b->signal);
    assert_string_equal(a->model, b->model);
    assert_int_equal(a->n_points, b->n_points);
    for (size_t k = 0; k < a->n_points; k++) {
        assert_true(a->points[k].ts_ms == b->points[k].ts_ms);
        assert_true(bits_of(a->points[k].mean) == bits_of(b->points[k].mean));
        assert_true(bits_of(a->points[k].lo) == bits_of(b->points[k].lo));
        assert_true(bits_of(a->points[k].hi) == bits_of(b->points[k].hi));
    }
    assert_true(a->quality.n == b->quality.n);
    assert_true(bits_of(a->quality.mae) == bits_of(b->quality.mae));
    assert_true(bits_of(a->quality.rmse) == bits_of(b->quality.rmse));
    assert_true(bits_of(a->quality.mase) == bits_of(b->quality.mase));
    assert_true(bits_of(a->quality.coverage) == bits_of(b->quality.coverage));
}

static void assert_prediction_round_trip(const struct tw_prediction *p)
{
    uint8_t *buf = NULL;
    size_t len = 0;
    struct tw_prediction_msg back;
    assert_int_equal(tw_codec_encode_prediction(p, &buf, &len), 0);
    assert_non_null(buf);
    int rc = tw_codec_decode_prediction(buf, len, &back);
    free(buf);
    assert_int_equal(rc, 0);
    assert_string_equal(back.p.asset_id, p->asset_id ? p->asset_id : "");
    assert_true(back.p.basis_ts_ms == p->basis_ts_ms);
    assert_int_equal(back.p.n_forecasts, p->n_forecasts);
    for (size_t i = 0; i < p->n_forecasts; i++)
        assert_forecast_equal(&back.p.forecasts[i], &p->forecasts[i]);
    tw_codec_prediction_free(&back);
    assert_null(back.impl_);
}

static void codec_prediction_round_trip_keeps_every_field(void **state)
{
    (void)state;
    const struct tw_forecast_point temp[] = {
        {1700000060000, 71.25, 70.0, 72.5},
        {1700000120000, 71.5, 69.5, 73.5},
        {1700000180000, -1e-300, -DBL_MAX, DBL_MAX},
    };
    const struct tw_forecast_point rpm[] = {{-5, 1500.0, 1400.0, 1600.0}};
    const struct tw_signal_forecast forecasts[] = {
        {"temp", 3, temp, {UINT64_MAX, 0.5, 0.75, 0.875, 0.95}, "hw_add"},
        {"plant/line:1.rpm", 1, rpm, {1, 1e-9, 2e-9, 1.0 / 3.0, 1.0}, "ar"},
        {"empty", 0, NULL, {0, 0, 0, 0, 0}, "naive"},
    };
    struct tw_prediction p = {.asset_id = "press-1",
                              .basis_ts_ms = 1700000000000,
                              .n_forecasts = 3,
                              .forecasts = forecasts};
    assert_prediction_round_trip(&p);
}

static void codec_prediction_round_trip_with_no_forecasts(void **state)
{
    (void)state;
    struct tw_prediction p = {.asset_id = "a", .basis_ts_ms = INT64_MIN};
    assert_prediction_round_trip(&p);
    struct tw_prediction none = {.asset_id = NULL};
    assert_prediction_round_trip(&none);
}

/* Field numbers the Python side (twin_pb2) relies on: ModelQuality.coverage is field 5. */
static void codec_prediction_writes_coverage_as_field_5(void **state)
{
    (void)state;
    const struct tw_signal_forecast f[] = {{"x", 0, NULL, {0, 0, 0, 0, 0.5}, ""}};
    struct tw_prediction p = {.asset_id = "", .n_forecasts = 1, .forecasts = f};
    /* 1a 0e { 0a 01 'x' | 1a 09 { 29 <0.5 as LE double> } } */
    static const uint8_t want[] = {0x1a, 0x0e, 0x0a, 0x01, 'x',  0x1a, 0x09, 0x29,
                                   0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xe0, 0x3f};
    uint8_t *buf = NULL;
    size_t len = 0;
    assert_int_equal(tw_codec_encode_prediction(&p, &buf, &len), 0);
    assert_int_equal(len, sizeof(want));
    assert_memory_equal(buf, want, sizeof(want));
    free(buf);
}

static void codec_prediction_decode_of_garbage_is_eproto(void **state)
{
    (void)state;
    static const uint8_t junk[] = {0x1a, 0x05, 0x0a, 0x09, 'x'}; /* signal longer than body */
    struct tw_prediction_msg m;
    assert_int_equal(tw_codec_decode_prediction(junk, sizeof(junk), &m), TW_EPROTO);
    assert_null(m.impl_);
    tw_codec_prediction_free(&m);
}

/* ---- Alert -------------------------------------------------------------------------------- */

static void codec_alert_round_trip_keeps_every_field(void **state)
{
    (void)state;
    for (int kind = TW_ALERT_KIND_UNSPECIFIED; kind <= TW_ALERT_CLEARED; kind++) {
        struct tw_alert a = {.asset_id = "press-1",
                             .signal = "bearing_temp",
                             .kind = kind,
                             .severity = kind % 4,
                             .ts_ms = 1700000000123,
                             .eta_ms = kind == TW_ALERT_THRESHOLD_FORECAST ? 1700007200000 : 0,
                             .value = 81.5,
                             .threshold = -80.0,
                             .message = "crosses warn.above 80 in 2h ± 20m"};
        uint8_t *buf = NULL;
        size_t len = 0;
        struct tw_alert_msg back;
        assert_int_equal(tw_codec_encode_alert(&a, &buf, &len), 0);
        assert_int_equal(tw_codec_decode_alert(buf, len, &back), 0);
        free(buf);
        assert_string_equal(back.a.asset_id, a.asset_id);
        assert_string_equal(back.a.signal, a.signal);
        assert_int_equal(back.a.kind, a.kind);
        assert_int_equal(back.a.severity, a.severity);
        assert_true(back.a.ts_ms == a.ts_ms);
        assert_true(back.a.eta_ms == a.eta_ms);
        assert_true(bits_of(back.a.value) == bits_of(a.value));
        assert_true(bits_of(back.a.threshold) == bits_of(a.threshold));
        assert_string_equal(back.a.message, a.message);
        tw_codec_alert_free(&back);
        assert_null(back.impl_);
    }
}

static void codec_alert_encodes_enums_with_wire_numbers(void **state)
{
    (void)state;
    struct tw_alert a = {.kind = TW_ALERT_THRESHOLD_BREACH, .severity = TW_SEVERITY_CRITICAL};
    /* 18 03 (kind, field 3) | 20 03 (severity, field 4); NULL strings are empty, not written */
    static const uint8_t want[] = {0x18, 0x03, 0x20, 0x03};
    uint8_t *buf = NULL;
    size_t len = 0;
    assert_int_equal(tw_codec_encode_alert(&a, &buf, &len), 0);
    assert_int_equal(len, sizeof(want));
    assert_memory_equal(buf, want, sizeof(want));
    free(buf);
}

/* ---- SignalModelState --------------------------------------------------------------------- */

static void codec_model_state_round_trip_keeps_values_bit_for_bit(void **state)
{
    (void)state;
    enum { N = 300 };
    static double values[N], back_values[N];
    for (int i = 0; i < N; i++)
        values[i] = i % 7 == 0 ? -0.0 : (double)i / 3.0 - 50.0;
    values[1] = DBL_MAX;
    values[2] = 5e-324;
    struct tw_signal_model_state s = {.format = UINT32_MAX,
                                      .saved_ms = 1700000000000,
                                      .basis_ts_ms = -1,
                                      .n_state = N,
                                      .state = values};
    size_t need = 0;
    assert_int_equal(tw_codec_encode_signal_model_state(&s, NULL, 0, &need), TW_ENOMEM);
    uint8_t *buf = malloc(need);
    assert_non_null(buf);
    size_t len = 0;
    assert_int_equal(tw_codec_encode_signal_model_state(&s, buf, need, &len), 0);
    assert_int_equal(len, need);
    struct tw_signal_model_state back;
    assert_int_equal(tw_codec_decode_signal_model_state(buf, len, back_values, N, &back), 0);
    assert_true(back.format == s.format);
    assert_true(back.saved_ms == s.saved_ms);
    assert_true(back.basis_ts_ms == s.basis_ts_ms);
    assert_int_equal(back.n_state, N);
    assert_ptr_equal(back.state, back_values);
    for (int i = 0; i < N; i++)
        assert_true(bits_of(back_values[i]) == bits_of(values[i]));
    /* One value more than the cap: refused, never written past the array. */
    assert_int_equal(tw_codec_decode_signal_model_state(buf, len, back_values, N - 1, &back),
                     TW_EPROTO);
    assert_int_equal(back.n_state, 0);
    free(buf);
}

static void codec_model_state_encodes_exact_wire_bytes(void **state)
{
    (void)state;
    const double one[] = {1.0};
    struct tw_signal_model_state s = {
        .format = 1, .saved_ms = 2, .basis_ts_ms = 3, .n_state = 1, .state = one};
    /* 08 01 | 10 02 | 18 03 | 22 08 <1.0>: state is packed (proto3 default) */
    static const uint8_t want[] = {0x08, 0x01, 0x10, 0x02, 0x18, 0x03, 0x22, 0x08,
                                   0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xf0, 0x3f};
    uint8_t buf[32];
    size_t len = 0;
    assert_int_equal(tw_codec_encode_signal_model_state(&s, buf, sizeof(buf), &len), 0);
    assert_int_equal(len, sizeof(want));
    assert_memory_equal(buf, want, sizeof(want));
}

static void codec_model_state_reads_unpacked_split_runs_and_skips_unknown_fields(void **state)
{
    (void)state;
    /* 21 <2.0> (unpacked) | 22 08 <1.0> (packed run) | 7d 01 02 03 04 (unknown fixed32)
     * | 2a 01 'x' (unknown string) | 08 07 (format 7) | 21 <-2.0> */
    static const uint8_t wire[] = {
        0x21, 0, 0, 0, 0, 0,    0,    0x00, 0x40, 0x22, 0x08, 0, 0, 0, 0, 0, 0, 0xf0, 0x3f,
        0x7d, 1, 2, 3, 4, 0x2a, 0x01, 'x',  0x08, 0x07, 0x21, 0, 0, 0, 0, 0, 0, 0x00, 0xc0};
    double v[3];
    struct tw_signal_model_state out;
    assert_int_equal(tw_codec_decode_signal_model_state(wire, sizeof(wire), v, 3, &out), 0);
    assert_int_equal(out.n_state, 3);
    assert_true(out.format == 7);
    assert_true(v[0] == 2.0 && v[1] == 1.0 && v[2] == -2.0);
    assert_int_equal(tw_codec_decode_signal_model_state(wire, sizeof(wire), v, 2, &out), TW_EPROTO);
    /* Empty: a valid message with every field at its default. */
    assert_int_equal(tw_codec_decode_signal_model_state(NULL, 0, NULL, 0, &out), 0);
    assert_int_equal(out.n_state, 0);
}

static void codec_model_state_malformed_is_eproto(void **state)
{
    (void)state;
    static const uint8_t odd_run[] = {0x22, 0x07, 0, 0, 0, 0, 0, 0, 0};     /* 7 bytes of doubles */
    static const uint8_t run_long[] = {0x22, 0x10, 0, 0, 0, 0, 0, 0, 0, 0}; /* 16 promised */
    static const uint8_t fixed_cut[] = {0x21, 0, 0, 0};                     /* 4 of 8 bytes */
    static const uint8_t format_str[] = {0x0a, 0x01, 'x'};                  /* format as a string */
    static const uint8_t state_varint[] = {0x20, 0x01};                     /* state as a varint */
    static const uint8_t varint_cut[] = {0x10, 0xff}; /* saved_ms never ends */
    static const uint8_t field0[] = {0x00, 0x01};     /* field number 0 */
    static const uint8_t huge_len[] = {0x22, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f};
    const struct {
        const uint8_t *p;
        size_t n;
    } cases[] = {{odd_run, sizeof(odd_run)},
                 {run_long, sizeof(run_long)},
                 {fixed_cut, sizeof(fixed_cut)},
                 {format_str, sizeof(format_str)},
                 {state_varint, sizeof(state_varint)},
                 {varint_cut, sizeof(varint_cut)},
                 {field0, sizeof(field0)},
                 {huge_len, sizeof(huge_len)}};
    double v[4];
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct tw_signal_model_state out;
        assert_int_equal(tw_codec_decode_signal_model_state(cases[i].p, cases[i].n, v, 4, &out),
                         TW_EPROTO);
        assert_null(out.state);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(codec_telemetry_round_trip_keeps_extreme_values),
        cmocka_unit_test(codec_telemetry_round_trip_keeps_negative_ts_and_seq_extremes),
        cmocka_unit_test(codec_telemetry_round_trip_with_no_samples_and_empty_asset),
        cmocka_unit_test(codec_telemetry_round_trip_keeps_sign_of_negative_zero),
        cmocka_unit_test(codec_decode_keeps_negative_zero_from_wire),
        cmocka_unit_test(codec_telemetry_encodes_exact_wire_bytes),
        cmocka_unit_test(codec_decode_reads_hand_encoded_negative_ts),
        cmocka_unit_test(codec_decode_of_garbage_is_eproto),
        cmocka_unit_test(codec_twin_state_too_small_buffer_is_enomem_with_needed_size),
        cmocka_unit_test(codec_twin_state_with_more_samples_than_stack_round_trips),
        cmocka_unit_test(codec_twin_state_empty_round_trips),
        cmocka_unit_test(codec_rejected_caps_payload_head_at_64_bytes),
        cmocka_unit_test(codec_rejected_accepts_null_fields),
        cmocka_unit_test(codec_scan_counts_samples_and_skips_other_fields),
        cmocka_unit_test(codec_scan_counts_many_samples_without_decoding),
        cmocka_unit_test(codec_scan_flags_bad_bytes_in_asset_id),
        cmocka_unit_test(codec_scan_flags_bad_bytes_in_signal),
        cmocka_unit_test(codec_scan_flags_nul_in_second_signal_after_good_one),
        cmocka_unit_test(codec_scan_reports_first_fault),
        cmocka_unit_test(codec_scan_truncated_varints_are_eproto),
        cmocka_unit_test(codec_scan_lengths_beyond_buffer_are_eproto),
        cmocka_unit_test(codec_scan_group_and_reserved_wire_types_are_eproto),
        cmocka_unit_test(codec_scan_field_number_zero_is_eproto),
        cmocka_unit_test(codec_prediction_round_trip_keeps_every_field),
        cmocka_unit_test(codec_prediction_round_trip_with_no_forecasts),
        cmocka_unit_test(codec_prediction_writes_coverage_as_field_5),
        cmocka_unit_test(codec_prediction_decode_of_garbage_is_eproto),
        cmocka_unit_test(codec_alert_round_trip_keeps_every_field),
        cmocka_unit_test(codec_alert_encodes_enums_with_wire_numbers),
        cmocka_unit_test(codec_model_state_round_trip_keeps_values_bit_for_bit),
        cmocka_unit_test(codec_model_state_encodes_exact_wire_bytes),
        cmocka_unit_test(codec_model_state_reads_unpacked_split_runs_and_skips_unknown_fields),
        cmocka_unit_test(codec_model_state_malformed_is_eproto),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
