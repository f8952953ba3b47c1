/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests of the plant model parser: schema, error paths, duplicates, seasons, lookups. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "twin/err.h"
#include "twin/model.h"

#ifndef TW_DEMO_PLANT
#define TW_DEMO_PLANT "deploy/plant.json"
#endif

/* A model with one kind "press" whose signal "temp" is SIG, and one asset press-1. */
#define WITH_SIGNAL(SIG)                                                                           \
    "{\"version\":1,\"asset_kinds\":{\"press\":{\"signals\":{\"temp\":" SIG "}}},"                 \
    "\"assets\":{\"press-1\":{\"kind\":\"press\"}}}"

#define SIG_PATH "$.asset_kinds.press.signals.temp"

static const char valid_model[] =
    "{\n"
    "  \"version\": 1,\n"
    "  \"plant\": \"demo\",\n"
    "  \"ingest\": {\"reject_unknown_assets\": true},\n"
    "  \"stations\": {\"press\": {\"cycle_s\": 12}, \"weld\": \"part 2\"},\n"
    "  \"routing\": [1, 2, {\"x\": null}],\n"
    "  \"asset_kinds\": {\n"
    "    \"press\": {\n"
    "      \"description\": {\"en\": \"hydraulic press\", \"en\": \"dup ignored here\"},\n"
    "      \"signals\": {\n"
    "        \"temp\": {\"unit\": \"degC\", \"warn\": {\"above\": 80}, \"alarm\": {\"above\": 95},"
    "                   \"season\": \"1d\"},\n"
    "        \"pressure\": {\"unit\": \"bar\", \"warn\": {\"below\": 50, \"above\": 210},"
    "                       \"alarm\": {\"above\": 230}, \"season_samples\": 24},\n"
    "        \"vib:x/1\": {\"unit\": \"mm/s\", \"alarm\": {\"above\": 11.2}},\n"
    "        \"count\": {}\n"
    "      }\n"
    "    },\n"
    "    \"compressor\": {\"description\": \"screw\"}\n"
    "  },\n"
    "  \"assets\": {\n"
    "    \"press-1\": {\"kind\": \"press\", \"description\": \"blanking\", \"station\": "
    "\"press\"},\n"
    "    \"comp.1\": {\"kind\": \"compressor\"}\n"
    "  }\n"
    "}\n";

/* Loads text and returns the result code; errs receives the errors. */
static int load(const char *text, struct tw_model **m, struct tw_model_errors *errs)
{
    tw_model_errors_init(errs);
    return tw_model_load_buffer(text, strlen(text), m, errs);
}

static void print_errors(const struct tw_model_errors *errs)
{
    char line[600];
    for (size_t i = 0; i < errs->count; i++) {
        tw_model_error_format(&errs->items[i], line, sizeof line);
        print_message("  error: %s\n", line);
    }
}

/* Asserts that text fails with exactly one error, "path: message" == expected. */
static void expect_one_error(const char *text, const char *expected)
{
    struct tw_model *m = (struct tw_model *)1;
    struct tw_model_errors errs;
    int rc = load(text, &m, &errs);
    if (errs.count != 1)
        print_errors(&errs);
    assert_int_equal(rc, TW_EINVAL);
    assert_null(m);
    assert_int_equal(errs.total, 1);
    assert_int_equal(errs.count, 1);
    char line[600];
    tw_model_error_format(&errs.items[0], line, sizeof line);
    assert_string_equal(line, expected);
    tw_model_errors_free(&errs);
}

static void model_loads_valid_file_with_every_field(void **state)
{
    (void)state;
    struct tw_model *m;
    struct tw_model_errors errs;
    int rc = load(valid_model, &m, &errs);
    print_errors(&errs);
    assert_int_equal(rc, 0);
    assert_int_equal(errs.total, 0);
    assert_string_equal(tw_model_plant(m), "demo");
    assert_true(tw_model_reject_unknown_assets(m));
    assert_int_equal(tw_model_asset_count(m), 2);
    assert_string_equal(tw_model_asset_at(m, 0)->id, "press-1");
    assert_string_equal(tw_model_asset_at(m, 1)->id, "comp.1");
    assert_null(tw_model_asset_at(m, 2));
    assert_int_equal(tw_model_kind_count(m), 2);
    assert_string_equal(tw_model_kind_at(m, 0)->name, "compressor"); /* sorted */

    const struct tw_model_asset *a = tw_model_asset(m, "press-1");
    assert_non_null(a);
    assert_string_equal(a->kind->name, "press");
    assert_string_equal(a->description, "blanking");
    assert_string_equal(a->station, "press");
    assert_null(a->kind->description); /* a language map is accepted, not stored */
    assert_int_equal(a->kind->n_signals, 4);
    assert_null(tw_model_asset(m, "comp.1")->station);
    assert_string_equal(tw_model_kind(m, "compressor")->description, "screw");

    const struct tw_model_signal *t = tw_model_asset_signal(m, "press-1", "temp");
    assert_non_null(t);
    assert_string_equal(t->unit, "degC");
    assert_true(t->warn.has_above && !t->warn.has_below);
    assert_true(t->warn.above == 80 && t->alarm.above == 95);
    assert_int_equal(t->season_ms, 86400000);
    assert_int_equal(t->season_samples, 0);

    const struct tw_model_signal *p = tw_model_signal(a->kind, "pressure");
    assert_true(p->warn.has_below && p->warn.below == 50 && p->warn.above == 210);
    assert_false(p->alarm.has_below);
    assert_int_equal(p->season_samples, 24);
    assert_int_equal(p->season_ms, 0);
    assert_true(tw_model_signal(a->kind, "vib:x/1")->alarm.above == 11.2);
    const struct tw_model_signal *c = tw_model_signal(a->kind, "count");
    assert_string_equal(c->unit, "");
    assert_false(c->warn.has_above || c->alarm.has_below);

    assert_null(tw_model_signal(a->kind, "nope"));
    assert_null(tw_model_asset_signal(m, "press-9", "temp"));
    assert_false(tw_model_has_asset(m, "press-2"));
    assert_null(tw_model_kind(m, "welder"));
    tw_model_free(m);
    tw_model_errors_free(&errs);
}

static void model_defaults_when_optional_parts_are_absent(void **state)
{
    (void)state;
    struct tw_model *m;
    struct tw_model_errors errs;
    assert_int_equal(load("{\"version\": 1}", &m, &errs), 0);
    assert_string_equal(tw_model_plant(m), "");
    assert_false(tw_model_reject_unknown_assets(m));
    assert_int_equal(tw_model_asset_count(m), 0);
    assert_false(tw_model_has_asset(m, "x"));
    assert_null(tw_model_kind(m, "x"));
    tw_model_free(m);
    tw_model_free(NULL);
    tw_model_errors_free(&errs);
}

/* One invalid document per row and the single error it must produce. */
static const struct {
    const char *text, *error;
} error_cases[] = {
    {"{\"version\": 2}", "$.version: must be 1 (the only version this program reads)"},
    {"{\"version\": \"1\"}", "$.version: must be 1 (the only version this program reads)"},
    {"{\"plant\": \"x\"}", "$: missing \"version\" (must be 1)"},
    {"[1]", "$: must be an object"},
    {"{\"version\": 1, \"asets\": {}}", "$.asets: unknown key"},
    {"{\"version\": 1, \"a b\": 1}", "$['a b']: unknown key"},
    {"{\"version\": 1, \"plant\": 7}", "$.plant: must be a string"},
    {"{\"version\": 1, \"ingest\": {\"reject_unknown_assets\": \"yes\"}}",
     "$.ingest.reject_unknown_assets: must be true or false"},
    {"{\"version\": 1, \"ingest\": {\"reject\": true}}", "$.ingest.reject: unknown key"},
    {"{\"version\": 1, \"asset_kinds\": []}", "$.asset_kinds: must be an object"},
    {"{\"version\": 1, \"asset_kinds\": {\"pr ess\": {}}}",
     "$.asset_kinds['pr ess']: invalid kind name: 1-64 characters of [A-Za-z0-9._-]"},
    {"{\"version\": 1, \"asset_kinds\": {\"press\": {\"signal\": {}}}}",
     "$.asset_kinds.press.signal: unknown key"},
    {"{\"version\": 1, \"asset_kinds\": {\"press\": {\"signals\": 1}}}",
     "$.asset_kinds.press.signals: must be an object"},
    {"{\"version\": 1, \"asset_kinds\": {\"press\": {\"signals\": {\"_ts\": {}}}}}",
     "$.asset_kinds.press.signals._ts: invalid signal name: 1-64 characters of "
     "[A-Za-z0-9._:/-], not starting with '_'"},
    {WITH_SIGNAL("[]"), SIG_PATH ": must be an object"},
    {WITH_SIGNAL("{\"alram\": {\"above\": 1}}"), SIG_PATH ".alram: unknown key"},
    {WITH_SIGNAL("{\"warn\": {\"above\": \"80\"}}"), SIG_PATH ".warn.above: must be a number"},
    {WITH_SIGNAL("{\"warn\": {\"above\": 1e999}}"),
     SIG_PATH ".warn.above: must be a finite number"},
    {WITH_SIGNAL("{\"warn\": {\"above\": 1, \"over\": 1}}"), SIG_PATH ".warn.over: unknown key"},
    {WITH_SIGNAL("{\"warn\": {}}"), SIG_PATH ".warn: must set \"above\", \"below\" or both"},
    {WITH_SIGNAL("{\"warn\": 5}"), SIG_PATH ".warn: must be an object"},
    {WITH_SIGNAL("{\"warn\": {\"below\": 90, \"above\": 80}}"),
     SIG_PATH ".warn: \"below\" (90) must be less than \"above\" (80)"},
    {WITH_SIGNAL("{\"warn\": {\"above\": 80}, \"alarm\": {\"above\": 79.5}}"),
     SIG_PATH ".alarm.above: must be >= warn.above (80)"},
    {WITH_SIGNAL("{\"warn\": {\"below\": 50}, \"alarm\": {\"below\": 51}}"),
     SIG_PATH ".alarm.below: must be <= warn.below (50)"},
    {WITH_SIGNAL("{\"unit\": \"0123456789012345678901234567890123\"}"),
     SIG_PATH ".unit: too long (34 bytes, at most 32)"},
    {WITH_SIGNAL("{\"unit\": \"a\\u0001\"}"),
     SIG_PATH ".unit: must not contain control characters"},
    {WITH_SIGNAL("{\"season\": \"1y\"}"),
     SIG_PATH ".season: must be a duration such as \"1d\", \"8h\" or \"15m\" (units ms s m h "
              "d w, at most 366d)"},
    {WITH_SIGNAL("{\"season\": 86400}"),
     SIG_PATH ".season: must be a duration such as \"1d\", \"8h\" or \"15m\" (units ms s m h "
              "d w, at most 366d)"},
    {WITH_SIGNAL("{\"season_samples\": 1.5}"),
     SIG_PATH ".season_samples: must be an integer from 2 to 1000000"},
    {WITH_SIGNAL("{\"season\": \"1d\", \"season_samples\": 24}"),
     SIG_PATH ": \"season\" and \"season_samples\" exclude each other"},
    /* physics (the predictor's grey-box member) */
    {WITH_SIGNAL("{\"physics\": \"1d\"}"), SIG_PATH ".physics: must be an object"},
    {WITH_SIGNAL("{\"physics\": {}}"),
     SIG_PATH ".physics: must declare a \"cycle\", a \"drift\" (1 or 2) or both"},
    {WITH_SIGNAL("{\"physics\": {\"drift\": 0}}"),
     SIG_PATH ".physics: must declare a \"cycle\", a \"drift\" (1 or 2) or both"},
    {WITH_SIGNAL("{\"physics\": {\"cycle\": \"1d\", \"drfit\": 1}}"),
     SIG_PATH ".physics.drfit: unknown key"},
    {WITH_SIGNAL("{\"physics\": {\"drift\": 3}}"),
     SIG_PATH ".physics.drift: must be 0 (none), 1 (linear) or 2 (quadratic)"},
    {WITH_SIGNAL("{\"physics\": {\"drift\": 1.5}}"),
     SIG_PATH ".physics.drift: must be 0 (none), 1 (linear) or 2 (quadratic)"},
    {WITH_SIGNAL("{\"physics\": {\"cycle\": \"1500ms\"}}"),
     SIG_PATH ".physics.cycle: must be a duration of whole seconds such as \"1d\", \"8h\" or "
              "\"90s\" (at most 366d)"},
    {WITH_SIGNAL("{\"physics\": {\"cycle\": 86400}}"),
     SIG_PATH ".physics.cycle: must be a duration of whole seconds such as \"1d\", \"8h\" or "
              "\"90s\" (at most 366d)"},
    {WITH_SIGNAL("{\"physics\": {\"drift\": 2, \"memory\": \"2y\"}}"),
     SIG_PATH ".physics.memory: must be a duration of whole seconds such as \"1d\", \"8h\" or "
              "\"90s\" (at most 366d)"},
    /* derived signals */
    {WITH_SIGNAL("{\"expr\": 5}"), SIG_PATH ".expr: must be a string"},
    {WITH_SIGNAL("{\"expr\": \"temp * 2\"}"),
     SIG_PATH ": reads itself: a derived signal cannot be its own input (use an operator such as "
              "ewma for a running value)"},
    {WITH_SIGNAL("{\"expr\": \"mean_over(pressure, 1h)\"}"),
     SIG_PATH ".expr: at 11: no signal \"pressure\" in this kind"},
    {WITH_SIGNAL("{\"expr\": \"1 +\"}"), SIG_PATH ".expr: at 4: the expression ends too early"},
    {"{\"version\": 1, \"asset_kinds\": {\"k\": {\"signals\": {\"a\": {\"expr\": \"b + 1\"}, "
     "\"b\": {\"expr\": \"c\"}, \"c\": {\"expr\": \"a * 2\"}}}}}",
     "$.asset_kinds.k.signals.c: reads \"a\", which depends on it: derived signals must not "
     "form a cycle"},
    {"{\"version\": 1, \"assets\": {\"a/b\": {}}}",
     "$.assets['a/b']: invalid asset id: 1-64 characters of [A-Za-z0-9._-]"},
    {"{\"version\": 1, \"assets\": {\"p1\": {}}}", "$.assets.p1: missing \"kind\""},
    {"{\"version\": 1, \"assets\": {\"p1\": {\"kind\": \"press\"}}}",
     "$.assets.p1.kind: no such kind in \"asset_kinds\""},
    {"{\"version\": 1, \"assets\": {\"p1\": {\"kind\": 3}}}",
     "$.assets.p1.kind: must be a string naming one of \"asset_kinds\""},
    {"{\"version\": 1, \"assets\": {\"p.1\": 1}}", "$.assets['p.1']: must be an object"},
    {"{\"version\": 1,\n \"x\": tru}", "$: invalid JSON at line 2, column 7"},
    {"{\"version\": 1} x", "$: unexpected text after the JSON value at line 1, column 16"},
    {"", "$: empty: expected a JSON object"},
    {"{\"version\": 1, \"version\": 1}", "$.version: duplicate key"},
};

static void model_reports_each_error_kind_with_its_path(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof error_cases / sizeof error_cases[0]; i++) {
        print_message("case %zu: %s\n", i, error_cases[i].text);
        expect_one_error(error_cases[i].text, error_cases[i].error);
    }
}

/* "physics" gives the grey-box relation; memory defaults to the cycle, or a day. */
static void physics_is_parsed_with_its_defaults(void **state)
{
    (void)state;
    struct tw_model *m;
    struct tw_model_errors errs;
    assert_int_equal(load("{\"version\": 1, \"asset_kinds\": {\"k\": {\"signals\": {"
                          "\"a\": {\"physics\": {\"cycle\": \"12h\", \"drift\": 2}},"
                          "\"b\": {\"physics\": {\"drift\": 1}},"
                          "\"c\": {\"physics\": {\"cycle\": \"1d\", \"drift\": 0, "
                          "\"memory\": \"3h\"}},"
                          "\"d\": {}}}}}",
                          &m, &errs),
                     0);
    const struct tw_model_kind *k = tw_model_kind(m, "k");
    assert_non_null(k);
    assert_int_equal(k->n_signals, 4);
    const struct tw_model_signal *a = &k->signals[0], *b = &k->signals[1], *c = &k->signals[2],
                                 *d = &k->signals[3];
    assert_true(a->has_physics);
    assert_int_equal(a->physics_cycle_ms, 12 * 3600000LL);
    assert_int_equal(a->physics_drift, 2);
    assert_int_equal(a->physics_memory_ms, 12 * 3600000LL);
    assert_true(b->has_physics);
    assert_int_equal(b->physics_cycle_ms, 0);
    assert_int_equal(b->physics_drift, 1);
    assert_int_equal(b->physics_memory_ms, 86400000LL);
    assert_true(c->has_physics);
    assert_int_equal(c->physics_cycle_ms, 86400000LL);
    assert_int_equal(c->physics_drift, 0);
    assert_int_equal(c->physics_memory_ms, 3 * 3600000LL);
    assert_false(d->has_physics);
    assert_int_equal(d->physics_memory_ms, 0);
    tw_model_free(m);
    tw_model_errors_free(&errs);
}

/* Derived signals come in an order where each follows the derived signals it reads. */
static void derived_signals_are_ordered_by_what_they_read(void **state)
{
    (void)state;
    struct tw_model *m;
    struct tw_model_errors errs;
    assert_int_equal(
        load("{\"version\": 1, \"asset_kinds\": {\"k\": {\"signals\": {"
             "\"a_total\": {\"expr\": \"integral(b_power) / 3600\", \"unit\": \"kWh\"},"
             "\"b_power\": {\"expr\": \"volts * amps / 1000\", \"unit\": \"kW\"},"
             "\"c_mean\": {\"expr\": \"mean_over(a_total, 1h) + b_power\"},"
             "\"volts\": {}, \"amps\": {\"unit\": \"A\"}}}}}",
             &m, &errs),
        0);
    const struct tw_model_kind *k = tw_model_kind(m, "k");
    assert_non_null(k);
    assert_int_equal(k->n_signals, 5);
    assert_int_equal(k->n_derived, 3);
    const char *order[3];
    for (size_t i = 0; i < 3; i++)
        order[i] = k->signals[k->derived[i]].name;
    assert_string_equal(order[0], "b_power"); /* a_total reads it */
    assert_string_equal(order[1], "a_total");
    assert_string_equal(order[2], "c_mean");
    assert_null(k->signals[1].expr); /* amps: measured */
    assert_string_equal(k->signals[2].expr, "volts * amps / 1000");
    tw_model_free(m);
    tw_model_errors_free(&errs);
}

static void model_reports_station_and_nul_errors(void **state)
{
    (void)state;
    expect_one_error("{\"version\": 1, \"asset_kinds\": {\"k\": {}}, \"assets\": {\"p1\": "
                     "{\"kind\": \"k\", \"station\": \"a b\"}}}",
                     "$.assets.p1.station: must be a station name: 1-64 characters of "
                     "[A-Za-z0-9._-]");
    struct tw_model *m;
    struct tw_model_errors errs;
    tw_model_errors_init(&errs);
    assert_int_equal(tw_model_load_buffer("{\"version\":1}\0", 14, &m, &errs), TW_EINVAL);
    assert_string_equal(errs.items[0].message, "contains a NUL byte at offset 13");
    tw_model_errors_free(&errs);
}

static void model_reports_all_errors_at_once(void **state)
{
    (void)state;
    const char *text =
        "{\"version\": 3, \"asset_kinds\": {\"press\": {\"signals\": {"
        "\"temp\": {\"warn\": {\"above\": 80}, \"alarm\": {\"above\": 70}, \"alram\": {}},"
        "\"pressure\": {\"unit\": 5}}}},"
        "\"assets\": {\"p1\": {\"kind\": \"presss\"}, \"p2\": {\"kind\": \"press\", \"x\": 1}}}";
    struct tw_model *m;
    struct tw_model_errors errs;
    assert_int_equal(load(text, &m, &errs), TW_EINVAL);
    print_errors(&errs);
    static const char *const want[] = {
        "$.version: must be 1 (the only version this program reads)",
        "$.asset_kinds.press.signals.temp.alram: unknown key",
        "$.asset_kinds.press.signals.temp.alarm.above: must be >= warn.above (80)",
        "$.asset_kinds.press.signals.pressure.unit: must be a string",
        "$.assets.p1.kind: no such kind in \"asset_kinds\"",
        "$.assets.p2.x: unknown key",
    };
    assert_int_equal(errs.count, sizeof want / sizeof want[0]);
    assert_int_equal(errs.total, errs.count);
    char line[600];
    for (size_t i = 0; i < errs.count; i++) {
        tw_model_error_format(&errs.items[i], line, sizeof line);
        assert_string_equal(line, want[i]);
    }
    tw_model_errors_free(&errs);
}

static void model_rejects_duplicate_keys_everywhere(void **state)
{
    (void)state;
    const char *text =
        "{\"version\": 1, \"asset_kinds\": {\"k\": {\"signals\": {\"a\": {}, \"b\": {}, "
        "\"a\": {\"unit\": \"x\"}}}, \"k\": {}},"
        "\"stations\": {\"s\": 1, \"s\": 2},"
        "\"assets\": {\"p1\": {\"kind\": \"k\", \"kind\": \"k\"}, \"p2\": {\"kind\": \"k\"},"
        "\"p1\": {\"kind\": \"k\"}}}";
    struct tw_model *m;
    struct tw_model_errors errs;
    assert_int_equal(load(text, &m, &errs), TW_EINVAL);
    print_errors(&errs);
    static const char *const want[] = {
        "$.asset_kinds.k.signals.a: duplicate key",
        "$.asset_kinds.k: duplicate key",
        "$.stations.s: duplicate key",
        "$.assets.p1.kind: duplicate key",
        "$.assets.p1: duplicate key",
    };
    assert_int_equal(errs.count, sizeof want / sizeof want[0]);
    char line[600];
    for (size_t i = 0; i < errs.count; i++) {
        tw_model_error_format(&errs.items[i], line, sizeof line);
        assert_string_equal(line, want[i]);
    }
    tw_model_errors_free(&errs);
}

static void season_durations_parse_to_milliseconds(void **state)
{
    (void)state;
    static const struct {
        const char *text;
        int64_t ms;
    } good[] = {{"1d", 86400000},   {"90m", 5400000}, {"12h", 43200000},    {"15m", 900000},
                {"7d", 604800000},  {"8h", 28800000}, {"1w", 604800000},    {"250ms", 250},
                {"1h30m", 5400000}, {"30s", 30000},   {"366d", 31622400000}};
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        int64_t ms = -1;
        assert_int_equal(tw_model_parse_duration(good[i].text, &ms), 0);
        assert_int_equal(ms, good[i].ms);
    }
    static const char *const bad[] = {"",    "1",   "d",    "1x",   "1 d",
                                      "-1d", "0m",  "367d", "1.5h", "1D",
                                      "1dd", "d1",  " 1d",  "1d ",  "99999999999999999999d",
                                      "1y",  "1mo", "0ms"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int64_t ms = -1;
        assert_int_equal(tw_model_parse_duration(bad[i], &ms), TW_EINVAL);
        assert_int_equal(ms, -1);
    }
    assert_int_equal(tw_model_parse_duration(NULL, NULL), TW_EINVAL);
}

/* Appends to a growing buffer; the test aborts on allocation failure. */
struct text {
    char *data;
    size_t len, cap;
};

static void text_add(struct text *t, const char *s)
{
    size_t n = strlen(s);
    if (t->len + n + 1 > t->cap) {
        t->cap = (t->len + n + 1) * 2;
        t->data = realloc(t->data, t->cap);
        assert_non_null(t->data);
    }
    memcpy(t->data + t->len, s, n + 1);
    t->len += n;
}

/* A model with n assets "asset-<i>" of kind "k", or n signals of "k" when signals is true. */
static char *generated_model(size_t n, bool signals)
{
    struct text t = {0};
    char item[96];
    text_add(&t, "{\"version\": 1, \"asset_kinds\": {\"k\": {\"signals\": {\"s\": {}");
    for (size_t i = 0; signals && i < n; i++) {
        snprintf(item, sizeof item, ", \"s%zu\": {\"unit\": \"A\"}", i);
        text_add(&t, item);
    }
    text_add(&t, "}}}, \"assets\": {");
    for (size_t i = 0; !signals && i < n; i++) {
        snprintf(item, sizeof item, "%s\"asset-%zu\": {\"kind\": \"k\"}", i ? ", " : "", i);
        text_add(&t, item);
    }
    text_add(&t, "}}");
    return t.data;
}

static double seconds_since(const struct timespec *t0)
{
    struct timespec t1;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    return (double)(t1.tv_sec - t0->tv_sec) + (double)(t1.tv_nsec - t0->tv_nsec) / 1e9;
}

static void lookups_on_ten_thousand_assets_are_fast(void **state)
{
    (void)state;
    char *text = generated_model(10000, false);
    struct tw_model *m;
    struct tw_model_errors errs;
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    assert_int_equal(load(text, &m, &errs), 0);
    double load_s = seconds_since(&t0);
    assert_int_equal(tw_model_asset_count(m), 10000);
    char id[32];
    size_t found = 0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (size_t i = 0; i < 1000000; i++) {
        snprintf(id, sizeof id, "asset-%zu", i % 12000); /* 1 in 6 unknown */
        found += tw_model_has_asset(m, id);
    }
    double lookup_s = seconds_since(&t0);
    print_message("load %.3f s, 1e6 lookups %.3f s\n", load_s, lookup_s);
    assert_int_equal(found, 83 * 10000 + 4000); /* 83 full rounds, then asset-0..3999 */
    assert_string_equal(tw_model_asset(m, "asset-9999")->kind->name, "k");
    assert_true(lookup_s < 5.0); /* generous: sanitizers and slow CI machines */
    tw_model_free(m);
    tw_model_errors_free(&errs);
    free(text);
}

static void model_enforces_size_limits(void **state)
{
    (void)state;
    char *text = generated_model(TW_MODEL_MAX_ASSETS + 1, false);
    expect_one_error(text, "$.assets: too many assets (100001, at most 100000)");
    free(text);
    text = generated_model(TW_MODEL_MAX_SIGNALS, true); /* plus "s": one too many */
    expect_one_error(text, "$.asset_kinds.k.signals: too many signals (1001, at most 1000 per "
                           "kind)");
    free(text);
    size_t big = TW_MODEL_MAX_FILE_BYTES + 1;
    text = malloc(big);
    assert_non_null(text);
    memset(text, ' ', big);
    struct tw_model *m;
    struct tw_model_errors errs = {0};
    assert_int_equal(tw_model_load_buffer(text, big, &m, &errs), TW_EINVAL);
    assert_string_equal(errs.items[0].message, "too large (16777217 bytes, at most 16777216)");
    tw_model_errors_free(&errs);
    free(text);
}

static void model_stores_at_most_max_errors(void **state)
{
    (void)state;
    struct text t = {0};
    char item[64];
    text_add(&t, "{\"version\": 1, \"assets\": {");
    for (int i = 0; i < 300; i++) {
        snprintf(item, sizeof item, "%s\"a%d\": {}", i ? ", " : "", i);
        text_add(&t, item);
    }
    text_add(&t, "}}");
    struct tw_model *m;
    struct tw_model_errors errs;
    assert_int_equal(load(t.data, &m, &errs), TW_EINVAL);
    assert_int_equal(errs.count, TW_MODEL_MAX_ERRORS);
    assert_int_equal(errs.total, 300);
    tw_model_errors_free(&errs);
    free(t.data);
}

static void demo_plant_loads(void **state)
{
    (void)state;
    struct tw_model *m;
    struct tw_model_errors errs = {0};
    int rc = tw_model_load_file(TW_DEMO_PLANT, &m, &errs);
    print_errors(&errs);
    assert_int_equal(rc, 0);
    static const char *const ids[] = {"press-1", "press-2",    "weld-1",
                                      "paint-1", "assembly-1", "compressor-1"};
    for (size_t i = 0; i < sizeof ids / sizeof ids[0]; i++)
        assert_true(tw_model_has_asset(m, ids[i]));
    assert_string_equal(tw_model_asset(m, "weld-1")->kind->name, "welder");
    const struct tw_model_signal *v = tw_model_asset_signal(m, "press-1", "vibration");
    assert_non_null(v);
    assert_string_equal(v->unit, "mm/s");
    assert_true(v->alarm.above >= v->warn.above);
    assert_int_equal(tw_model_asset_signal(m, "press-2", "oil_temp")->season_ms, 86400000);
    assert_int_equal(tw_model_asset_signal(m, "compressor-1", "motor_current")->season_ms,
                     8 * 3600000);
    tw_model_free(m);
    tw_model_errors_free(&errs);
}

static void missing_file_is_enoent(void **state)
{
    (void)state;
    struct tw_model *m;
    struct tw_model_errors errs = {0};
    assert_int_equal(tw_model_load_file("/nonexistent/plant.json", &m, &errs), TW_ENOENT);
    assert_null(m);
    assert_int_equal(errs.count, 1);
    assert_string_equal(errs.items[0].message,
                        "cannot open /nonexistent/plant.json: No such file or directory");
    tw_model_errors_free(&errs);
    assert_int_equal(tw_model_load_file("/", &m, NULL), TW_EIO);
}

/* Every prefix and many byte flips of a valid model: must fail or load cleanly, never crash
 * or leak (run under ASan/UBSan). */
static void model_survives_truncation_and_corruption(void **state)
{
    (void)state;
    size_t len = strlen(valid_model);
    char *buf = malloc(len);
    assert_non_null(buf);
    static const char flips[] = "{}[]\",:0-e\\u \x01\xff";
    unsigned seed = 12345;
    for (size_t i = 0; i <= len; i++) {
        struct tw_model *m;
        int rc = tw_model_load_buffer(valid_model, i, &m, NULL);
        assert_true(rc == TW_EINVAL || (rc == 0 && i + 1 >= len));
        tw_model_free(m);
        memcpy(buf, valid_model, len);
        for (int k = 0; k < 3; k++) {
            seed = seed * 1103515245u + 12345u;
            buf[(seed >> 8) % len] = flips[(seed >> 20) % (sizeof flips - 1)];
        }
        struct tw_model_errors errs = {0};
        rc = tw_model_load_buffer(buf, len, &m, &errs);
        assert_true(rc == 0 || rc == TW_EINVAL);
        assert_true(rc != 0 || errs.total == 0);
        tw_model_free(m);
        tw_model_errors_free(&errs);
    }
    free(buf);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(model_loads_valid_file_with_every_field),
        cmocka_unit_test(model_defaults_when_optional_parts_are_absent),
        cmocka_unit_test(model_reports_each_error_kind_with_its_path),
        cmocka_unit_test(model_reports_station_and_nul_errors),
        cmocka_unit_test(model_reports_all_errors_at_once),
        cmocka_unit_test(model_rejects_duplicate_keys_everywhere),
        cmocka_unit_test(season_durations_parse_to_milliseconds),
        cmocka_unit_test(lookups_on_ten_thousand_assets_are_fast),
        cmocka_unit_test(model_enforces_size_limits),
        cmocka_unit_test(model_stores_at_most_max_errors),
        cmocka_unit_test(derived_signals_are_ordered_by_what_they_read),
        cmocka_unit_test(physics_is_parsed_with_its_defaults),
        cmocka_unit_test(demo_plant_loads),
        cmocka_unit_test(missing_file_is_enoent),
        cmocka_unit_test(model_survives_truncation_and_corruption),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
