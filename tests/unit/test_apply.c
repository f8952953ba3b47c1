/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests of twin-ingest's apply step: the EVALSHA arguments, the parsing of its reply, and the
 * derived signals' state keys in the apply script. */
#include <float.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "apply.h"
#include "twin/derive.h"
#include "twin/err.h"
#include "twin/model.h"

static uint64_t bits_of(double d)
{
    uint64_t u;
    memcpy(&u, &d, sizeof(u));
    return u;
}

static const struct ingest_apply_params default_params = {.window = 1024, .history_maxlen = 10000};
/* A kind with a derived signal: its commands name the fourth key and the kind. */
static const struct tw_model_kind derived_kind = {.name = "press", .n_derived = 1};

/* Checks argument i of c against want, byte for byte and by length. */
static void assert_arg(const struct ingest_cmd *c, int i, const char *want)
{
    assert_true(i < c->argc);
    if (c->argvlen[i] != strlen(want) || memcmp(c->argv[i], want, c->argvlen[i]) != 0)
        print_error("argv[%d] is \"%.*s\", expected \"%s\"\n", i, (int)c->argvlen[i], c->argv[i],
                    want);
    assert_int_equal(c->argvlen[i], strlen(want));
    assert_memory_equal(c->argv[i], want, c->argvlen[i]);
}

/* ---- command ------------------------------------------------------------------------------ */

static void apply_cmd_has_exact_layout(void **state)
{
    (void)state;
    struct ingest_cmd c;
    assert_int_equal(ingest_cmd_init(&c, 4), 0);
    const struct tw_sample s[] = {{"temp", 21.5}, {"line:1/rpm", -1500.0}};
    struct tw_telemetry t = {.asset_id = "press-1",
                             .ts_ms = 1700000000123,
                             .seq = UINT64_MAX,
                             .n_samples = 2,
                             .samples = (struct tw_sample *)s};
    ingest_cmd_build(&c, &t, 1700000000456, &default_params, &derived_kind);
    static const char *const want[] = {
        "4",
        "twin:{press-1}:state",
        "twin:{press-1}:history",
        "twin:{press-1}:replay",
        "twin:{press-1}:derived",
        "18446744073709551615",
        "1700000000123",
        "1700000000456",
        "1024",
        "10000",
        "press",
        "temp",
        "21.5",
        "line:1/rpm",
        "-1500",
    };
    assert_int_equal(c.argc, sizeof(want) / sizeof(want[0]));
    for (int i = 0; i < c.argc; i++)
        assert_arg(&c, i, want[i]);
    ingest_cmd_free(&c);
    assert_null(c.argv);
}

static void apply_cmd_is_rebuilt_from_scratch_on_reuse(void **state)
{
    (void)state;
    struct ingest_cmd c;
    assert_int_equal(ingest_cmd_init(&c, 3), 0);
    const struct tw_sample three[] = {{"a", 1}, {"b", 2}, {"c", 3}};
    struct tw_telemetry t = {.asset_id = "m",
                             .ts_ms = 5,
                             .seq = 9,
                             .n_samples = 3,
                             .samples = (struct tw_sample *)three};
    ingest_cmd_build(&c, &t, 6, &default_params, &derived_kind);
    assert_int_equal(c.argc, 11 + 6);
    const struct tw_sample one[] = {{"z", 0.25}};
    struct tw_telemetry u = {
        .asset_id = "n", .ts_ms = -7, .seq = 0, .n_samples = 1, .samples = (struct tw_sample *)one};
    const struct ingest_apply_params p = {.window = 1u << 20, .history_maxlen = 1};
    ingest_cmd_build(&c, &u, INT64_MIN, &p, NULL);
    static const char *const want[] = {"3",
                                       "twin:{n}:state",
                                       "twin:{n}:history",
                                       "twin:{n}:replay",
                                       "0",
                                       "-7",
                                       "-9223372036854775808",
                                       "1048576",
                                       "1",
                                       "",
                                       "z",
                                       "0.25"};
    assert_int_equal(c.argc, sizeof(want) / sizeof(want[0]));
    for (int i = 0; i < c.argc; i++)
        assert_arg(&c, i, want[i]);
    ingest_cmd_free(&c);
}

static void apply_cmd_keys_hold_a_64_char_asset_whole(void **state)
{
    (void)state;
    const char *asset = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-";
    assert_int_equal(strlen(asset), TW_NAME_MAX);
    struct ingest_cmd c;
    assert_int_equal(ingest_cmd_init(&c, 1), 0);
    const struct tw_sample s[] = {{"x", 1}};
    struct tw_telemetry t = {
        .asset_id = asset, .ts_ms = 1, .seq = 1, .n_samples = 1, .samples = (struct tw_sample *)s};
    ingest_cmd_build(&c, &t, 1, &default_params, &derived_kind);
    char want[4][128];
    snprintf(want[0], sizeof(want[0]), "twin:{%s}:state", asset);
    snprintf(want[1], sizeof(want[1]), "twin:{%s}:history", asset);
    snprintf(want[2], sizeof(want[2]), "twin:{%s}:replay", asset);
    snprintf(want[3], sizeof(want[3]), "twin:{%s}:derived", asset);
    for (int k = 0; k < 4; k++)
        assert_arg(&c, 1 + k, want[k]);
    ingest_cmd_free(&c);
}

static void apply_cmd_seq_text_is_exact_for_every_uint64(void **state)
{
    (void)state;
    const struct {
        uint64_t seq;
        const char *text;
    } cases[] = {
        {0, "0"},
        {1, "1"},
        {(1ULL << 53) + 1, "9007199254740993"}, /* not a double: must not go through one */
        {UINT64_MAX - 1, "18446744073709551614"},
        {UINT64_MAX, "18446744073709551615"},
    };
    struct ingest_cmd c;
    assert_int_equal(ingest_cmd_init(&c, 1), 0);
    const struct tw_sample s[] = {{"x", 1}};
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct tw_telemetry t = {.asset_id = "a",
                                 .ts_ms = 1,
                                 .seq = cases[i].seq,
                                 .n_samples = 1,
                                 .samples = (struct tw_sample *)s};
        ingest_cmd_build(&c, &t, 1, &default_params, NULL);
        assert_arg(&c, 4, cases[i].text); /* three keys: no derived signals */
    }
    ingest_cmd_free(&c);
}

static void apply_cmd_values_round_trip_through_text_bit_for_bit(void **state)
{
    (void)state;
    const double values[] = {
        0.0,
        -0.0,
        5e-324,
        -5e-324,
        DBL_MIN,
        -DBL_MIN,
        DBL_MAX,
        -DBL_MAX,
        1e308,
        0.1,
        1.0 / 3.0,
        2.0 / 3.0,
        M_PI,
        -M_E,
        9007199254740993.0,
        4503599627370497.5,
        123456789.123456789,
        2.2250738585072009e-308, /* largest subnormal */
        1.7976931348623155e308,  /* one below DBL_MAX */
        nextafter(1.0, 2.0),
        nextafter(1.0, 0.0),
    };
    enum { N = sizeof(values) / sizeof(values[0]) };
    struct tw_sample s[N];
    char names[N][8];
    for (size_t i = 0; i < N; i++) {
        snprintf(names[i], sizeof(names[i]), "v%zu", i);
        s[i] = (struct tw_sample){names[i], values[i]};
    }
    struct ingest_cmd c;
    assert_int_equal(ingest_cmd_init(&c, N), 0);
    struct tw_telemetry t = {.asset_id = "a", .ts_ms = 1, .seq = 1, .n_samples = N, .samples = s};
    ingest_cmd_build(&c, &t, 1, &default_params, NULL);
    assert_int_equal(c.argc, 10 + 2 * N);
    for (size_t i = 0; i < N; i++) {
        int k = 10 + 2 * (int)i;
        assert_arg(&c, k, names[i]);
        char want[64], text[64];
        snprintf(want, sizeof(want), "%.17g", values[i]);
        assert_arg(&c, k + 1, want);
        assert_true(c.argvlen[k + 1] < sizeof(text));
        memcpy(text, c.argv[k + 1], c.argvlen[k + 1]);
        text[c.argvlen[k + 1]] = '\0';
        char *end;
        double back = strtod(text, &end);
        assert_true(*end == '\0');
        if (bits_of(back) != bits_of(values[i]))
            print_error("%s: %a came back as %a\n", text, values[i], back);
        assert_true(bits_of(back) == bits_of(values[i]));
    }
    ingest_cmd_free(&c);
}

static void apply_cmd_fills_max_samples_exactly(void **state)
{
    (void)state;
    enum { N = 256 };
    static struct tw_sample s[N];
    static char names[N][8];
    for (size_t i = 0; i < N; i++) {
        snprintf(names[i], sizeof(names[i]), "s%zu", i);
        /* The longest %.17g texts: negative, 17 digits, three-digit negative exponent. */
        s[i] = (struct tw_sample){names[i], -2.2250738585072014e-308};
    }
    struct ingest_cmd c;
    assert_int_equal(ingest_cmd_init(&c, N), 0);
    struct tw_telemetry t = {
        .asset_id = "a", .ts_ms = INT64_MIN, .seq = UINT64_MAX, .n_samples = N, .samples = s};
    ingest_cmd_build(&c, &t, INT64_MIN, &default_params, NULL);
    assert_int_equal(c.argc, 10 + 2 * N);
    assert_arg(&c, 5, "-9223372036854775808");
    assert_arg(&c, 10 + 2 * N - 1, "-2.2250738585072014e-308");
    ingest_cmd_free(&c);
}

static void apply_outcome_words(void **state)
{
    (void)state;
    assert_string_equal(ingest_outcome_word(INGEST_APPLIED), "applied");
    assert_string_equal(ingest_outcome_word(INGEST_LATE), "late");
    assert_string_equal(ingest_outcome_word(INGEST_DUPLICATE), "duplicate");
    assert_string_equal(ingest_outcome_word(INGEST_STALE), "stale");
    assert_string_equal(ingest_outcome_word((enum ingest_outcome)0), "unknown");
}

/* ---- reply trees -------------------------------------------------------------------------- */

static struct tw_reply reply_str(const char *s)
{
    return (struct tw_reply){.type = TW_REPLY_STR, .str = s, .len = strlen(s)};
}

static struct tw_reply reply_int(long long v)
{
    return (struct tw_reply){.type = TW_REPLY_INT, .integer = v};
}

static struct tw_reply reply_arr(const struct tw_reply *elem, size_t n)
{
    return (struct tw_reply){.type = TW_REPLY_ARRAY, .elem = elem, .n = n};
}

/* Parses {1, hash, "1700000000000"} where hash holds the n_fields strings of fields (name,
 * value, …) and the last element is the previous _ingest_ms. */
static int parse_applied(const char *const *fields, size_t n_fields, struct ingest_state *st,
                         enum ingest_outcome *outcome)
{
    struct tw_reply *h = calloc(n_fields + 1, sizeof(*h));
    assert_non_null(h);
    for (size_t i = 0; i < n_fields; i++)
        h[i] = reply_str(fields[i]);
    struct tw_reply top[3] = {reply_int(1), reply_arr(h, n_fields), reply_str("1700000000000")};
    struct tw_reply r = reply_arr(top, 3);
    int rc = ingest_parse_reply(&r, outcome, st);
    free(h);
    return rc;
}

static const struct tw_sample *find_sample(const struct ingest_state *st, const char *name)
{
    for (size_t i = 0; i < st->n_samples; i++)
        if (strcmp(st->samples[i].signal, name) == 0)
            return &st->samples[i];
    return NULL;
}

static void apply_reply_applied_fills_meta_and_signals(void **state)
{
    (void)state;
    static const char *const fields[] = {
        "temp",       "21.5",
        "_seq",       "18446744073709551615",
        "line:1/rpm", "-0",
        "_ts_ms",     "-1700000000123",
        "tiny",       "4.9406564584124654e-324",
        "_ingest_ms", "1700000000456",
        "_future",    "whatever", /* a later version's meta field: ignored */
        "_changed",   "temp,line:1/rpm",
    };
    struct ingest_state st;
    assert_int_equal(ingest_state_init(&st, 8), 0);
    enum ingest_outcome outcome = 0;
    assert_int_equal(parse_applied(fields, 16, &st, &outcome), 0);
    assert_int_equal(outcome, INGEST_APPLIED);
    assert_true(st.seq == UINT64_MAX);
    assert_true(st.ts_ms == -1700000000123);
    assert_true(st.ingest_ms == 1700000000456);
    assert_true(st.previous_ingest_ms == 1700000000000);
    assert_int_equal(st.n_changed, 2);
    assert_string_equal(st.changed[0], "temp");
    assert_string_equal(st.changed[1], "line:1/rpm");
    assert_int_equal(st.n_samples, 3);
    assert_int_equal(st.n_bad, 0);
    assert_string_equal(st.samples[0].signal, "temp");
    assert_true(st.samples[0].value == 21.5);
    assert_string_equal(st.samples[1].signal, "line:1/rpm");
    assert_true(bits_of(st.samples[1].value) == bits_of(-0.0));
    assert_string_equal(st.samples[2].signal, "tiny");
    assert_true(bits_of(st.samples[2].value) == bits_of(5e-324));
    ingest_state_free(&st);
    assert_null(st.samples);
}

static void apply_reply_grows_beyond_initial_capacity(void **state)
{
    (void)state;
    enum { N = 1000 };
    static char names[N][16], values[N][32];
    static const char *fields[2 * N + 6];
    size_t n = 0;
    fields[n++] = "_seq";
    fields[n++] = "7";
    for (size_t i = 0; i < N; i++) {
        snprintf(names[i], sizeof(names[i]), "sig%zu", i);
        snprintf(values[i], sizeof(values[i]), "%.17g", (double)i / 7.0);
        fields[n++] = names[i];
        fields[n++] = values[i];
    }
    fields[n++] = "_ts_ms";
    fields[n++] = "11";
    struct ingest_state st;
    assert_int_equal(ingest_state_init(&st, 1), 0);
    enum ingest_outcome outcome = 0;
    assert_int_equal(parse_applied(fields, n, &st, &outcome), 0);
    assert_int_equal(outcome, INGEST_APPLIED);
    assert_int_equal(st.n_samples, N);
    assert_true(st.cap >= N);
    assert_true(st.seq == 7 && st.ts_ms == 11);
    for (size_t i = 0; i < N; i++) {
        assert_string_equal(st.samples[i].signal, names[i]);
        assert_true(st.samples[i].value == (double)i / 7.0);
    }
    /* Reused for a smaller state: counts start again from zero. */
    static const char *const small[] = {"a", "1", "b", "x"};
    assert_int_equal(parse_applied(small, 4, &st, &outcome), 0);
    assert_int_equal(st.n_samples, 1);
    assert_int_equal(st.n_bad, 1);
    assert_true(st.seq == 0 && st.ts_ms == 0 && st.ingest_ms == 0);
    ingest_state_free(&st);
}

static void apply_reply_grows_by_a_few_signals(void **state)
{
    (void)state;
    static const char *const fields[] = {"a", "1", "b", "2", "c", "3", "d", "4", "e", "5"};
    struct ingest_state st;
    assert_int_equal(ingest_state_init(&st, 2), 0);
    enum ingest_outcome outcome = 0;
    assert_int_equal(parse_applied(fields, 10, &st, &outcome), 0);
    assert_int_equal(st.n_samples, 5);
    assert_true(st.cap >= 5);
    for (size_t i = 0; i < 5; i++) {
        assert_string_equal(st.samples[i].signal, fields[2 * i]);
        assert_true(st.samples[i].value == (double)(i + 1));
    }
    ingest_state_free(&st);
}

static void apply_reply_skips_and_counts_values_that_are_not_finite_numbers(void **state)
{
    (void)state;
    static const char *const fields[] = {
        "good1", "1.5",   "word",  "abc", "inf",   "inf", "ninf",  "-Infinity", "nan",   "nan",
        "huge",  "1e999", "empty", "",    "trail", "12x", "good2", "-2e-3",     "space", "1 2",
    };
    struct ingest_state st;
    assert_int_equal(ingest_state_init(&st, 4), 0);
    enum ingest_outcome outcome = 0;
    assert_int_equal(parse_applied(fields, 20, &st, &outcome), 0);
    assert_int_equal(outcome, INGEST_APPLIED);
    assert_int_equal(st.n_bad, 8);
    assert_int_equal(st.n_samples, 2);
    assert_non_null(find_sample(&st, "good1"));
    assert_true(find_sample(&st, "good1")->value == 1.5);
    assert_true(find_sample(&st, "good2")->value == -2e-3);
    for (size_t i = 0; i < st.n_samples; i++)
        assert_true(isfinite(st.samples[i].value));
    ingest_state_free(&st);
}

static void apply_reply_codes_late_duplicate_stale(void **state)
{
    (void)state;
    const long long codes[] = {2, 3, 4};
    const enum ingest_outcome want[] = {INGEST_LATE, INGEST_DUPLICATE, INGEST_STALE};
    struct ingest_state st;
    assert_int_equal(ingest_state_init(&st, 2), 0);
    for (size_t i = 0; i < 3; i++) {
        struct tw_reply one[1] = {reply_int(codes[i])};
        struct tw_reply r = reply_arr(one, 1);
        enum ingest_outcome outcome = 0;
        assert_int_equal(ingest_parse_reply(&r, &outcome, &st), 0);
        assert_int_equal(outcome, want[i]);
        assert_int_equal(st.n_samples, 0);
    }
    ingest_state_free(&st);
}

static void assert_reply_eproto(const struct tw_reply *r)
{
    struct ingest_state st;
    assert_int_equal(ingest_state_init(&st, 2), 0);
    enum ingest_outcome outcome = 0;
    assert_int_equal(ingest_parse_reply(r, &outcome, &st), TW_EPROTO);
    assert_int_equal(outcome, 0);
    ingest_state_free(&st);
}

static void apply_reply_of_wrong_shape_is_eproto(void **state)
{
    (void)state;
    struct tw_reply r;
    r = reply_int(1);
    assert_reply_eproto(&r);
    r = reply_str("1");
    assert_reply_eproto(&r);
    r = (struct tw_reply){.type = TW_REPLY_ERROR, .str = "ERR boom", .len = 8};
    assert_reply_eproto(&r);
    r = (struct tw_reply){.type = TW_REPLY_STATUS, .str = "OK", .len = 2};
    assert_reply_eproto(&r);
    r = (struct tw_reply){.type = TW_REPLY_NIL};
    assert_reply_eproto(&r);
    r = reply_arr(NULL, 0); /* {} */
    assert_reply_eproto(&r);

    struct tw_reply code_str[1] = {reply_str("2")}; /* {"2"}: the code must be an integer */
    r = reply_arr(code_str, 1);
    assert_reply_eproto(&r);
    const long long bad_codes[] = {0, 5, -1, 1LL << 32, LLONG_MIN, LLONG_MAX};
    for (size_t i = 0; i < sizeof(bad_codes) / sizeof(bad_codes[0]); i++) {
        struct tw_reply one[1] = {reply_int(bad_codes[i])};
        r = reply_arr(one, 1);
        assert_reply_eproto(&r);
    }
    struct tw_reply late_extra[2] = {reply_int(2), reply_int(0)}; /* {2, 0} */
    r = reply_arr(late_extra, 2);
    assert_reply_eproto(&r);
    struct tw_reply nested_err[1] = {{.type = TW_REPLY_ERROR, .str = "ERR in script", .len = 13}};
    r = reply_arr(nested_err, 1);
    assert_reply_eproto(&r);
}

static void apply_reply_applied_without_proper_hash_is_eproto(void **state)
{
    (void)state;
    struct tw_reply r;
    struct tw_reply alone[1] = {reply_int(1)}; /* {1} */
    r = reply_arr(alone, 1);
    assert_reply_eproto(&r);

    struct tw_reply pair[2] = {reply_str("a"), reply_str("1")};
    struct tw_reply extra[3] = {reply_int(1), reply_arr(pair, 2), reply_int(0)}; /* {1, hash, 0} */
    r = reply_arr(extra, 3);
    assert_reply_eproto(&r);

    struct tw_reply hash_str[2] = {reply_int(1), reply_str("a")}; /* {1, "a"} */
    r = reply_arr(hash_str, 2);
    assert_reply_eproto(&r);

    struct tw_reply hash_nil[2] = {reply_int(1), {.type = TW_REPLY_NIL}}; /* {1, nil} */
    r = reply_arr(hash_nil, 2);
    assert_reply_eproto(&r);

    struct tw_reply odd[3] = {reply_str("a"), reply_str("1"), reply_str("b")}; /* odd-length hash */
    struct tw_reply odd_top[2] = {reply_int(1), reply_arr(odd, 3)};
    r = reply_arr(odd_top, 2);
    assert_reply_eproto(&r);

    struct tw_reply int_value[2] = {reply_str("a"), reply_int(1)}; /* a value that is no string */
    struct tw_reply int_value_top[2] = {reply_int(1), reply_arr(int_value, 2)};
    r = reply_arr(int_value_top, 2);
    assert_reply_eproto(&r);

    struct tw_reply int_key[2] = {reply_int(1),
                                  reply_str("1")}; /* a field name that is no string */
    struct tw_reply int_key_top[2] = {reply_int(1), reply_arr(int_key, 2)};
    r = reply_arr(int_key_top, 2);
    assert_reply_eproto(&r);

    struct tw_reply nil_value[2] = {reply_str("a"), {.type = TW_REPLY_NIL}};
    struct tw_reply nil_value_top[2] = {reply_int(1), reply_arr(nil_value, 2)};
    r = reply_arr(nil_value_top, 2);
    assert_reply_eproto(&r);

    struct tw_reply nested[2] = {reply_str("a"), reply_arr(pair, 2)}; /* a value that is an array */
    struct tw_reply nested_top[2] = {reply_int(1), reply_arr(nested, 2)};
    r = reply_arr(nested_top, 2);
    assert_reply_eproto(&r);
}

static void assert_meta_eproto(const char *name, const char *value)
{
    const char *const fields[] = {"temp", "1", name, value};
    struct ingest_state st;
    assert_int_equal(ingest_state_init(&st, 2), 0);
    enum ingest_outcome outcome = 0;
    int rc = parse_applied(fields, 4, &st, &outcome);
    if (rc != TW_EPROTO)
        print_error("%s=\"%s\" was accepted (seq %" PRIu64 ", ts_ms %" PRId64 ")\n", name, value,
                    st.seq, st.ts_ms);
    ingest_state_free(&st);
    assert_int_equal(rc, TW_EPROTO);
}

static void apply_reply_bad_seq_is_eproto(void **state)
{
    (void)state;
    assert_meta_eproto("_seq", "");
    assert_meta_eproto("_seq", "abc");
    assert_meta_eproto("_seq", "12x");
    assert_meta_eproto("_seq", "1.5");
    assert_meta_eproto("_seq", "-1");
    assert_meta_eproto("_seq", "18446744073709551616"); /* 2^64: out of range */
    assert_meta_eproto("_seq", "99999999999999999999999");
}

/* strtoull skips leading blanks and then takes a sign, so " -1" would wrap to 2^64-1. */
static void apply_reply_seq_with_blank_before_minus_is_eproto(void **state)
{
    (void)state;
    assert_meta_eproto("_seq", " -1");
    assert_meta_eproto("_seq", "\t-5");
}

static void apply_reply_bad_ts_is_eproto(void **state)
{
    (void)state;
    assert_meta_eproto("_ts_ms", "");
    assert_meta_eproto("_ts_ms", "x");
    assert_meta_eproto("_ts_ms", "1.5");
    assert_meta_eproto("_ts_ms", "9223372036854775808"); /* INT64_MAX + 1 */
    assert_meta_eproto("_ingest_ms", "");
    assert_meta_eproto("_ingest_ms", "7y");
    assert_meta_eproto("_ingest_ms", "-9223372036854775809");
}

static void apply_reply_meta_extremes_are_exact(void **state)
{
    (void)state;
    static const char *const fields[] = {"_seq",       "9007199254740993",
                                         "_ts_ms",     "-9223372036854775808",
                                         "_ingest_ms", "9223372036854775807"};
    struct ingest_state st;
    assert_int_equal(ingest_state_init(&st, 0), 0);
    enum ingest_outcome outcome = 0;
    assert_int_equal(parse_applied(fields, 6, &st, &outcome), 0);
    assert_true(st.seq == (1ULL << 53) + 1);
    assert_true(st.ts_ms == INT64_MIN);
    assert_true(st.ingest_ms == INT64_MAX);
    assert_int_equal(st.n_samples, 0);
    ingest_state_free(&st);
}

/* FNV-1a, as the script's state keys use it. */
static uint32_t fnv(const char *text, size_t len)
{
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < len; i++)
        h = (h ^ (unsigned char)text[i]) * 16777619u;
    return h;
}

/* The state key the script gives derived signal `name` (one with operator state), and the
 * FNV-1a of its canonical expression alone (the key of layout 1), which the compiled code
 * names in a comment. */
static void state_key_of(const char *script, const char *name, char *key, size_t keylen,
                         uint32_t *expr_fnv)
{
    char head[64], state[64];
    snprintf(head, sizeof head, "do -- %s: ", name);
    snprintf(state, sizeof state, "all['%s#", name);
    const char *at = strstr(script, head);
    assert_non_null(at);
    at += strlen(head);
    *expr_fnv = fnv(at, strcspn(at, "\n"));
    const char *k = strstr(at, state);
    assert_non_null(k);
    k += strlen("all['");
    size_t n = strcspn(k, "'");
    assert_true(n < keylen);
    memcpy(key, k, n);
    key[n] = '\0';
}

static struct tw_model *model_of(const char *json)
{
    struct tw_model *m = NULL;
    struct tw_model_errors errs;
    tw_model_errors_init(&errs);
    assert_int_equal(tw_model_load_buffer(json, strlen(json), &m, &errs), 0);
    tw_model_errors_free(&errs);
    return m;
}

/* A change of the windows' state layout (derive.lua) changes the state key of the expressions
 * that have a window, so no window is fed a state of the old layout; the others keep theirs. */
static void script_state_keys_carry_the_window_layout(void **state)
{
    (void)state;
    struct tw_model *m = model_of(
        "{\"version\":1,\"asset_kinds\":{\"meter\":{\"signals\":{\"amps\":{},"
        "\"power\":{\"expr\":\"amps * 230\"},\"kwh\":{\"expr\":\"integral(power) / 3.6e6\"},"
        "\"peak\":{\"expr\":\"1 + max_over(amps, 1h)\"}}}},"
        "\"assets\":{\"m-1\":{\"kind\":\"meter\"}}}");
    char *script = NULL, err[256], key[96], want[96];
    assert_int_equal(ingest_script_build(m, &script, err, sizeof err), 0);
    uint32_t h;
    state_key_of(script, "kwh", key, sizeof key, &h);
    snprintf(want, sizeof want, "kwh#%08x", h);
    assert_string_equal(key, want);
    state_key_of(script, "peak", key, sizeof key, &h);
    snprintf(want, sizeof want, "peak#%08x", h);
    assert_string_not_equal(key, want);
    assert_int_equal(strncmp(key, "peak#", 5), 0);
    assert_int_equal(strlen(key), strlen(want));
    assert_null(strstr(script, "all['power#")); /* no operator state: nothing kept */
    free(script);
    tw_model_free(m);
}

/* Occurrences of needle in the text before end. */
static size_t count_before(const char *text, const char *end, const char *needle)
{
    size_t n = 0;
    for (const char *p = strstr(text, needle); p && p < end; p = strstr(p + 1, needle))
        n++;
    return n;
}

/* Every call runs the whole script and makes each function in it anew, so the derived signals
 * are compiled to straight-line code: one function per kind that has derived signals, made
 * only for an update of that kind, with each operator's body from derive.lua inlined; a model
 * without derived signals adds nothing to apply.lua but `local kind_code`. */
static void script_inlines_the_operators_of_each_kind(void **state)
{
    (void)state;
    static const char plain[] = "{\"version\":1,\"asset_kinds\":{\"meter\":{\"signals\":{"
                                "\"amps\":{}}}},\"assets\":{\"m-1\":{\"kind\":\"meter\"}}}";
    static const char derived[] =
        "{\"version\":1,\"asset_kinds\":{\"meter\":{\"signals\":{\"amps\":{}}},"
        "\"pump\":{\"signals\":{\"amps\":{},\"kw\":{\"expr\":\"amps * 0.4\"},"
        "\"kwh\":{\"expr\":\"integral(kw) / 3600\"},\"peak\":{\"expr\":\"max_over(amps, 1h)\"},"
        "\"lo\":{\"expr\":\"min(amps, kw, 2)\"}}}},\"assets\":{\"m-1\":{\"kind\":\"meter\"}}}";
    const char *models[] = {NULL, plain, derived};
    for (size_t i = 0; i < 3; i++) {
        struct tw_model *m = models[i] ? model_of(models[i]) : NULL;
        char *script = NULL, err[256];
        assert_int_equal(ingest_script_build(m, &script, err, sizeof err), 0);
        const char *apply = strstr(script, ingest_apply_lua); /* apply.lua whole, last */
        assert_non_null(apply);
        assert_string_equal(apply, ingest_apply_lua);
        if (i < 2) {
            static const char none[] = "local kind_code -- no kind has derived signals\n";
            assert_int_equal(apply - script, strlen(none));
            assert_int_equal(strncmp(script, none, strlen(none)), 0);
        } else {
            assert_int_equal(count_before(script, apply, "function("), 1);
            assert_int_equal(count_before(script, apply, "local function"), 1);
            assert_non_null(strstr(script, "local function kind_code(kind)\n"));
            assert_non_null(strstr(script, "    if kind == 'pump' then\n"
                                           "        return function(kv, V, all, kept, t)\n"));
            assert_null(strstr(script, "kind == 'meter'"));
            /* the bodies, with their arguments; min of three runs twice */
            assert_non_null(strstr(script, "local x, w, sign, r = V['amps'], 3600, -1\n"));
            assert_non_null(strstr(script, "st[1] = st[1] + (st[2] + x) / 2 * (t - st[3])\n"));
            assert_non_null(strstr(script, "local a, b, r = V['amps'], V['kw']\n"));
            assert_non_null(strstr(script, "local a, b, r = v3, 2\n"));
            /* the measured signals read, for updates that do not carry them */
            assert_non_null(strstr(script, "end, {'amps', }\n"));
            /* derive.lua's comments stay out */
            assert_int_equal(count_before(script, apply, "-- Windows"), 0);
            assert_int_equal(count_before(script, apply, "--@"), 0);
        }
        free(script);
        tw_model_free(m);
    }
}

/* Every operator of the expression language has a body in derive.lua: a model whose
 * expressions use each one (checked here, so that an operator added to the language fails
 * this test until it is added below) compiles. */
static void script_compiles_every_operator(void **state)
{
    (void)state;
    static const char *const exprs[] = {
        "-a + b - a * b / 2 ^ a",
        "(a < b) + (a <= b) + (a > b) + (a >= b) + (a == b) + (a != b)",
        "abs(a) + sqrt(b) + exp(a) + log(b)",
        "min(a, b) + max(a, b, 1) + clamp(a, 0, 1)",
        "delta(a) + delta(b, 100) + rate(a) + rate(b, 100) + integral(a) + total(b)",
        "mean_over(a, 1h) + min_over(a, 1h) + max_over(a, 1h) + std_over(a, 10m)",
        "count_over(b, 5m) + ewma(a, 5m) + time_in(a > 1)",
    };
    static struct tw_dx dx;
    bool seen[TW_DX__COUNT] = {false};
    char json[2048], err[256];
    int len = snprintf(json, sizeof json,
                       "{\"version\":1,\"asset_kinds\":{\"k\":{\"signals\":{\"a\":{},\"b\":{}");
    for (size_t i = 0; i < sizeof exprs / sizeof exprs[0]; i++) {
        assert_int_equal(tw_dx_parse(exprs[i], NULL, NULL, &dx, err, sizeof err), 0);
        for (uint16_t k = 0; k < dx.n; k++)
            seen[dx.node[k].op] = true;
        len += snprintf(json + len, sizeof json - (size_t)len, ",\"d%zu\":{\"expr\":\"%s\"}", i,
                        exprs[i]);
    }
    snprintf(json + len, sizeof json - (size_t)len, "}}},\"assets\":{\"k-1\":{\"kind\":\"k\"}}}");
    for (int op = 0; op < TW_DX__COUNT; op++)
        assert_true(seen[op]);
    struct tw_model *m = model_of(json);
    char *script = NULL;
    assert_int_equal(ingest_script_build(m, &script, err, sizeof err), 0);
    free(script);
    tw_model_free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(apply_cmd_has_exact_layout),
        cmocka_unit_test(apply_cmd_is_rebuilt_from_scratch_on_reuse),
        cmocka_unit_test(apply_cmd_keys_hold_a_64_char_asset_whole),
        cmocka_unit_test(apply_cmd_seq_text_is_exact_for_every_uint64),
        cmocka_unit_test(apply_cmd_values_round_trip_through_text_bit_for_bit),
        cmocka_unit_test(apply_cmd_fills_max_samples_exactly),
        cmocka_unit_test(apply_outcome_words),
        cmocka_unit_test(apply_reply_applied_fills_meta_and_signals),
        cmocka_unit_test(apply_reply_grows_beyond_initial_capacity),
        cmocka_unit_test(apply_reply_grows_by_a_few_signals),
        cmocka_unit_test(apply_reply_skips_and_counts_values_that_are_not_finite_numbers),
        cmocka_unit_test(apply_reply_codes_late_duplicate_stale),
        cmocka_unit_test(apply_reply_of_wrong_shape_is_eproto),
        cmocka_unit_test(apply_reply_applied_without_proper_hash_is_eproto),
        cmocka_unit_test(apply_reply_bad_seq_is_eproto),
        cmocka_unit_test(apply_reply_seq_with_blank_before_minus_is_eproto),
        cmocka_unit_test(apply_reply_bad_ts_is_eproto),
        cmocka_unit_test(apply_reply_meta_extremes_are_exact),
        cmocka_unit_test(script_state_keys_carry_the_window_layout),
        cmocka_unit_test(script_inlines_the_operators_of_each_kind),
        cmocka_unit_test(script_compiles_every_operator),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
