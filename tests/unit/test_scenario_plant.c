/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests of the production part's parser (plant_json.c): values, defaults, error paths,
 * whole-line checks, caps, and the demo plant's contents and sizing. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <math.h>

#include "plant.h"
#include "plant_json.h"
#include "twin/err.h"
#include "twin/model.h"

#ifndef TW_DEMO_PLANT
#define TW_DEMO_PLANT "deploy/plant.json"
#endif

/* The JSON below is written with ' for " (readability); q() turns it into JSON. */
static char *q(const char *text)
{
    char *s = strdup(text);
    assert_non_null(s);
    for (char *p = s; *p; p++)
        if (*p == '\'')
            *p = '"';
    return s;
}

/* One station s from the source to the sink, with more fields F (starting with a comma). */
#define ONE(F) "{'stations':{'s':{'input':'source','output':'sink','cycle_time':60" F "}}}"
/* A station with wear-out lives whose live wear is W (after "signal": "x"). */
#define WEIBULL "{'dist':'weibull','shape':3,'scale':'10h'}"
#define AGED(W)                                                                                    \
    ONE(",'failures':{'mtbf':" WEIBULL ",'mttr':60},'live':{'wear':{'signal':'x'," W "}}")
/* The same station with cycle time C. */
#define CYC(C) "{'stations':{'s':{'input':'source','output':'sink','cycle_time':" C "}}}"
/* The same station, and more top-level keys X (starting with a comma). */
#define TOP(X) "{'stations':{'s':{'input':'source','output':'sink','cycle_time':60}}" X "}"
/* Station s with input I and output O, and top-level keys X. */
#define IO(I, O, X) "{'stations':{'s':{'input':" I ",'output':" O ",'cycle_time':60}}" X "}"
/* source -> a -> buffer b (body B) -> z -> sink. */
#define BUF(B)                                                                                     \
    "{'stations':{'a':{'input':'source','output':'b','cycle_time':60},"                            \
    "'z':{'input':'b','output':'sink','cycle_time':60}},'buffers':{'b':" B "}}"
/* A station consuming stock k, delivered by supplier u (body U). */
#define SUP(U)                                                                                     \
    "{'stations':{'s':{'input':'source','output':'sink','cycle_time':60,"                          \
    "'consumes':{'stock':'k'}}},'stocks':{'k':{}},'suppliers':{'u':" U "}}"
/* A station fed by the demand (body D). */
#define DEM(D)                                                                                     \
    "{'stations':{'s':{'input':'demand','output':'sink','cycle_time':60}},'demand':" D "}"

static int parse(const char *text, const struct tw_model *m, struct sim_plant **p,
                 struct tw_model_errors *errs)
{
    char *json = q(text);
    int rc = sim_plant_parse(json, strlen(json), m, p, errs);
    free(json);
    return rc;
}

static void print_errors(const struct tw_model_errors *errs)
{
    char line[600];
    for (size_t i = 0; i < errs->count; i++) {
        tw_model_error_format(&errs->items[i], line, sizeof line);
        print_message("  error: %s\n", line);
    }
}

/* Whether some error, formatted "path: message", contains text. */
static bool has_error(const struct tw_model_errors *errs, const char *text)
{
    char line[600];
    for (size_t i = 0; i < errs->count; i++) {
        tw_model_error_format(&errs->items[i], line, sizeof line);
        if (strstr(line, text))
            return true;
    }
    return false;
}

/* Parses a valid plant (failing the test with its errors otherwise). */
static struct sim_plant *good(const char *text, const struct tw_model *m)
{
    struct sim_plant *p = NULL;
    struct tw_model_errors errs = {0};
    int rc = parse(text, m, &p, &errs);
    if (rc != 0)
        print_errors(&errs);
    assert_int_equal(rc, 0);
    assert_int_equal(errs.total, 0);
    assert_non_null(p);
    tw_model_errors_free(&errs);
    return p;
}

static struct tw_model *model_of(const char *text)
{
    char *json = q(text);
    struct tw_model *m = NULL;
    struct tw_model_errors errs = {0};
    int rc = tw_model_load_buffer(json, strlen(json), &m, &errs);
    if (rc != 0)
        print_errors(&errs);
    assert_int_equal(rc, 0);
    free(json);
    tw_model_errors_free(&errs);
    return m;
}

/* ---- the error table ------------------------------------------------------------------ */

struct bad {
    const char *json;
    const char *error; /* a substring of one "path: message" */
    size_t count;      /* problems the file has in all */
};

static const struct bad bad_files[] = {
    /* the document */
    {"{", "$: invalid JSON at line 1", 1},
    {"{} x", "$: unexpected text after the JSON value", 1},
    {"[]", "$: must be an object", 1},
    {"{'buffers':{}}", "$: missing \"stations\"", 1},
    {"{'stations':[]}", "$.stations: must be an object", 1},
    {"{'stations':{}}", "$.stations: must list at least one station", 1},
    {TOP(",'routing':[['a','b']]"), "$.routing: not used: the routing is given by each station", 1},
    {TOP(",'actions':1"), "$.actions: must be an object or a list", 1},
    {"{'derived':'x'}", "$.derived: must be an object or a list", 1},
    /* station names and keys */
    {ONE(",'cycle_tme':1"), "$.stations.s.cycle_tme: unknown key", 1},
    {ONE(",'scrap':0.1,'scrap':0.2"), "$.stations.s.scrap: duplicate key", 1},
    {"{'stations':{'s':{'input':'source','output':'sink','cycle_time':1},"
     "'s':{'input':'source','output':'sink','cycle_time':1}}}",
     "$.stations.s: duplicate key", 1},
    {"{'stations':{'a b':{'input':'source','output':'sink','cycle_time':1}}}",
     "$.stations['a b']: invalid station name", 2 /* and then no station is left */},
    {"{'stations':{'sink':{'input':'source','output':'sink','cycle_time':1}}}",
     "$.stations.sink: \"sink\" is reserved", 2},
    {"{'stations':{'s':{'input':'source','output':'b','cycle_time':1},"
     "'b':{'input':'b','output':'sink','cycle_time':1}},'buffers':{'b':{}}}",
     "$.stations.b: a buffer has this name too", 3 /* b is never emptied, no sink */},
    {"{'stations':{'s':7}}", "$.stations.s: must be an object", 2},
    {"{'stations':{'s':{'input':'source','output':'sink'}}}",
     "$.stations.s: missing \"cycle_time\"", 1},
    {"{'stations':{'s':{'output':'sink','cycle_time':1}}}", "$.stations.s: missing \"input\"", 1},
    {"{'stations':{'s':{'input':'source','cycle_time':1}}}", "$.stations.s: missing \"output\"", 2},
    /* durations and distributions */
    {CYC("{'dist':'normal','mean':60,'sd':-1}"),
     "$.stations.s.cycle_time.sd: must be a duration >= 0", 1},
    {CYC("'0s'"), "$.stations.s.cycle_time: must have a mean > 0", 1},
    {CYC("'5 minutes'"), "$.stations.s.cycle_time: must be a duration >= 0", 1},
    {CYC("'367d'"), "$.stations.s.cycle_time: must be a duration >= 0", 1},
    {CYC("31708800"), "$.stations.s.cycle_time: must be a duration >= 0", 1},
    {CYC("true"), "$.stations.s.cycle_time: must be a duration or a distribution", 1},
    {CYC("{'mean':1}"), "$.stations.s.cycle_time: missing \"dist\"", 1},
    {CYC("{'dist':'gamma','mean':1}"), "$.stations.s.cycle_time.dist: must be one of fixed, exp",
     1},
    {CYC("{'dist':'uniform','min':5}"), "$.stations.s.cycle_time: missing \"max\"", 1},
    {CYC("{'dist':'uniform','min':5,'max':3}"), "$.stations.s.cycle_time: needs 0 <= min <= max",
     1},
    {CYC("{'dist':'triangular','min':1,'mode':5,'max':3}"),
     "$.stations.s.cycle_time: needs 0 <= min <= mode <= max", 1},
    {CYC("{'dist':'exp','mean':5,'sd':1}"), "$.stations.s.cycle_time.sd: unknown key", 1},
    {CYC("{'dist':'lognormal','mean':0,'sd':1}"),
     "$.stations.s.cycle_time: needs a finite mean > 0", 1},
    {CYC("{'dist':'fixed','value':'1h','description':'x','dist':'exp'}"),
     "$.stations.s.cycle_time.dist: duplicate key", 1},
    /* station fields */
    {ONE(",'machines':0"), "$.stations.s.machines: must be an integer from 1 to 64", 1},
    {ONE(",'machines':65"), "$.stations.s.machines: must be an integer from 1 to 64", 1},
    {ONE(",'machines':1.5"), "$.stations.s.machines: must be an integer", 1},
    {ONE(",'staff':0"), "$.stations.s.staff: must be an integer from 1 to 64", 1},
    {ONE(",'scrap':1"), "$.stations.s.scrap: must be a number from 0 up to (not including) 1", 1},
    {ONE(",'scrap':'2%'"), "$.stations.s.scrap: must be a number from 0", 1},
    {ONE(",'setup':{'every':5}"), "$.stations.s.setup: missing \"time\"", 1},
    {ONE(",'setup':{'time':60,'every':0}"), "$.stations.s.setup.every: must be an integer from 1",
     1},
    {ONE(",'failures':{'mtbf':'8h'}"), "$.stations.s.failures: missing \"mttr\"", 1},
    {ONE(",'failures':{'mtbf':0,'mttr':60}"), "$.stations.s.failures.mtbf: mean must be", 1},
    {ONE(",'failures':{'mtbf':{'dist':'fixed','value':0},'mttr':60}"),
     "$.stations.s.failures.mtbf: must have a mean > 0", 1},
    {ONE(",'failures':{'mtbf':'8h','mttr':60,'basis':'idle'}"),
     "$.stations.s.failures.basis: must be \"busy\" or \"time\"", 1},
    {ONE(",'consumes':{'stock':'steel'}"),
     "$.stations.s.consumes.stock: no such stock in \"stocks\"", 1},
    {ONE(",'consumes':{'per_part':1}"), "$.stations.s.consumes: missing \"stock\"", 1},
    {ONE(",'shifts':'yes'"), "$.stations.s.shifts: must be true or false", 1},
    {ONE(",'live':{'down_when':{'signal':'_x','below':1}}"),
     "$.stations.s.live.down_when.signal: must be a signal name", 1},
    {ONE(",'live':{'down_when':{'signal':'x'}}"),
     "$.stations.s.live.down_when: must set \"below\", \"above\" or both", 1},
    {ONE(",'live':{'down_when':{'signal':'x','below':5,'above':1}}"),
     "$.stations.s.live.down_when: \"below\" (5) must be less than \"above\" (1)", 1},
    {ONE(",'live':{'wear':{'signal':'x','mtbf_factor':[[1,1]]}}"),
     "$.stations.s.live.wear.mtbf_factor: must be a list of 2 to 16 points", 1},
    {ONE(",'live':{'wear':{'signal':'x','mtbf_factor':[[1,1],[1,0.5]]}}"),
     "$.stations.s.live.wear.mtbf_factor[1]: value must be greater than the previous point's", 1},
    {ONE(",'live':{'wear':{'signal':'x','mtbf_factor':[[1,1],[2,0]]}}"),
     "$.stations.s.live.wear.mtbf_factor[1]: must be [value, factor]", 1},
    {ONE(",'live':{'wear':{'signal':'x','mtbf_factor':[[1,1],[2,1,3]]}}"),
     "$.stations.s.live.wear.mtbf_factor[1]: must be [value, factor]", 1},
    {ONE(",'live':{'wear':{'signal':'x'}}"), "$.stations.s.live.wear: missing \"mtbf_factor\"", 1},
    /* wear-out lives, aged by the live wear */
    {ONE(",'failures':{'mtbf':{'dist':'weibull','shape':0,'scale':'10h'},'mttr':60}"),
     "$.stations.s.failures.mtbf.shape: must be a number > 0", 1},
    {ONE(",'failures':{'mtbf':{'dist':'weibull','shape':'3h','scale':'10h'},'mttr':60}"),
     "$.stations.s.failures.mtbf.shape: must be a number > 0", 1},
    {ONE(",'failures':{'mtbf':{'dist':'weibull','shape':60,'scale':'10h'},'mttr':60}"),
     "$.stations.s.failures.mtbf: shape must be a number from 0.1 to 50", 1},
    {ONE(",'failures':{'mtbf':{'dist':'weibull','shape':3},'mttr':60}"),
     "$.stations.s.failures.mtbf: missing \"scale\"", 1},
    {ONE(",'failures':{'mtbf':{'dist':'weibull','shape':3,'scale':0},'mttr':60}"),
     "$.stations.s.failures.mtbf: scale must be a finite duration > 0", 1},
    {ONE(",'failures':{'mtbf':'8h','mttr':60},'live':{'wear':{'signal':'x','age':[[1,0],[2,1]]}}"),
     "$.stations.s.live.wear.age: needs the station's failures to have \"mtbf\": {\"dist\": "
     "\"weibull\"",
     1},
    {AGED("'age':[[1,0],[2,'8h']],'mtbf_factor':[[1,1],[2,1]]"),
     "$.stations.s.live.wear: give \"mtbf_factor\" or \"age\", not both", 1},
    {AGED("'age':[[1,'8h'],[2,'1h']]"),
     "$.stations.s.live.wear.age[1]: age must not be less than the previous point's (28800 s)", 1},
    {AGED("'age':[[1,0],[2,'soon']]"), "$.stations.s.live.wear.age[1][1]: must be a duration >= 0",
     1},
    {AGED("'age':[[1,0],['2','8h']]"),
     "$.stations.s.live.wear.age[1]: must be [value, age] with a finite number as value", 1},
    {AGED("'age':[[1,0]]"),
     "$.stations.s.live.wear.age: must be a list of 2 to 16 points [value, age]", 1},
    {ONE(",'live':{'wear':{'signal':'x','mtbf_factor':[[1,1],[2,1]]},'stop':{}}"),
     "$.stations.s.live.stop: unknown key", 1},
    /* inputs and outputs */
    {IO("'nowhere'", "'sink'", ""), "$.stations.s.input: no such buffer in \"buffers\"", 1},
    {IO("'sink'", "'sink'", ""), "$.stations.s.input: \"sink\" is an output", 1},
    {IO("'source'", "'demand'", ""), "$.stations.s.output: \"demand\" is an input", 2},
    {IO("'source'", "[]", ""), "$.stations.s.output: must list 1 to 8 outputs (0 listed)", 2},
    {IO("'source'", "[{'to':'sink','share':0}]", ""),
     "$.stations.s.output[0].share: must be a "
     "number > 0",
     1},
    {IO("'source'", "[{'to':'sink','share':1},{'to':'sink','share':2}]", ""),
     "$.stations.s.output[1]: names the same output as [0]", 1},
    {IO("'source'", "[{'to':'sink'}]", ""), "$.stations.s.output[0]: missing \"share\"", 1},
    {IO("'source'", "[{'to':'sink','share':1,'prob':1}]", ""),
     "$.stations.s.output[0].prob: unknown key", 1},
    {IO("'source'", "42", ""), "$.stations.s.output: must be a buffer name, \"sink\", or a list",
     2},
    {IO("'source'", "'bin'", ""), "$.stations: no station outputs to \"sink\"", 2},
    /* buffers */
    {BUF("{'capacity':-1}"), "$.buffers.b.capacity: must be an integer from 0 to 1000000", 1},
    {BUF("{'capacity':2,'initial':3}"), "$.buffers.b.initial: must be at most \"capacity\" (2)", 1},
    {BUF("{'size':2}"), "$.buffers.b.size: unknown key", 1},
    {BUF("{'live':{'asset':'p1'}}"), "$.buffers.b.live: missing \"signal\"", 1},
    {BUF("{'live':{'asset':'p 1','signal':'level'}}"),
     "$.buffers.b.live.asset: must be an asset id", 1},
    {TOP(",'buffers':{'b':{}}"), "$.buffers.b: no station outputs to this buffer", 2},
    {TOP(",'buffers':{'b':{}}"), "$.buffers.b: no station takes its input from this buffer", 2},
    {"{'stations':{'a':{'input':'source','output':'b','cycle_time':60},"
     "'s':{'input':'b','output':'sink','cycle_time':60}},'buffers':{'b':{},'sink':{}}}",
     "$.buffers.sink: \"sink\" is reserved", 1},
    /* stocks and suppliers */
    {TOP(",'stocks':{'k':{'initial':-1}}"), "$.stocks.k.initial: must be a number >= 0", 1},
    {TOP(",'stocks':{'k':{'unit':7}}"), "$.stocks.k.unit: must be a string of at most 32 bytes", 1},
    {TOP(",'stocks':{'k':{'unit':'kg','units':'kg'}}"), "$.stocks.k.units: unknown key", 1},
    {SUP("{'lot':1,'reorder_point':1,'lead_time':1}"), "$.suppliers.u: missing \"stock\"", 1},
    {SUP("{'stock':'z','lot':1,'reorder_point':1,'lead_time':1}"),
     "$.suppliers.u.stock: no such stock in \"stocks\"", 1},
    {SUP("{'stock':'k','lot':0,'reorder_point':1,'lead_time':1}"),
     "$.suppliers.u.lot: must be a number > 0", 1},
    {SUP("{'stock':'k','lot':5,'lead_time':1}"), "$.suppliers.u: missing \"reorder_point\"", 1},
    {SUP("{'stock':'k','lot':5,'reorder_point':1}"), "$.suppliers.u: missing \"lead_time\"", 1},
    {SUP("{'stock':'k','lot':5,'reorder_point':1,'lead_time':1,'period':'1d'}"),
     "$.suppliers.u.period: only with \"policy\": \"periodic\"", 1},
    {SUP("{'stock':'k','lot':5,'policy':'periodic'}"), "$.suppliers.u: missing \"period\"", 1},
    {SUP("{'stock':'k','lot':5,'policy':'periodic','period':'1d','reorder_point':1}"),
     "$.suppliers.u.reorder_point: only with \"policy\": \"reorder\"", 1},
    {SUP("{'stock':'k','lot':5,'policy':'periodic','period':0}"),
     "$.suppliers.u.period: must be a duration > 0", 1},
    {SUP("{'stock':'k','lot':5,'policy':'weekly'}"),
     "$.suppliers.u.policy: must be \"reorder\" or \"periodic\"", 1},
    {SUP("{'stock':'k','lot':5,'reorder_point':1,'lead_time':1,'reliability':0}"),
     "$.suppliers.u.reliability: must be a probability", 1},
    {SUP("{'stock':'k','lot':5,'reorder_point':1,'lead_time':1,'reliability':0.9}"),
     "$.suppliers.u: missing \"late\"", 1},
    /* demand */
    {DEM("{'rate_per_hour':1,'interarrival':60}"),
     "$.demand: \"rate_per_hour\" and \"interarrival\" exclude each other", 1},
    {DEM("{'due':'1d'}"), "$.demand: missing \"rate_per_hour\" or \"interarrival\"", 1},
    {DEM("{'rate_per_hour':0}"), "$.demand.rate_per_hour: must be a number > 0", 1},
    {DEM("{'interarrival':'0s'}"), "$.demand.interarrival: must have a mean > 0", 1},
    {DEM("{'rate_per_hour':1,'season':{'period':'1d','amplitude':1}}"),
     "$.demand.season.amplitude: must be a number from 0 up to", 1},
    {DEM("{'rate_per_hour':1,'season':{'amplitude':0.5}}"), "$.demand.season: missing \"period\"",
     1},
    {DEM("{'interarrival':60,'season':{'period':'1d','amplitude':0.5}}"),
     "$.demand.season: needs \"rate_per_hour\"", 1},
    {DEM("{'rate_per_hour':1,'season':{'period':'1d','amplitude':0.5,'peak':'25:00'}}"),
     "$.demand.season.peak: must be a time of day \"HH:MM\"", 1},
    {DEM("{'rate_per_hour':1,'season':{'period':'12h','amplitude':0.5,'peak':'18:00'}}"),
     "$.demand.season.peak: must be less than the season's period", 1},
    {DEM("{'rate_per_hour':1,'due':-1}"), "$.demand.due: must be a duration >= 0", 1},
    {DEM("{'rate_per_hour':1,'backlog':{'capacity':10,'when_full':'block'}}"),
     "$.demand.backlog.when_full: must be \"lose\"", 1},
    {DEM("{'rate_per_hour':1,'backlog':{'when_full':'lose'}}"),
     "$.demand.backlog.when_full: needs a \"capacity\"", 1},
    {DEM("{'rate_per_hour':1,'backlog':{'capacity':0}}"),
     "$.demand.backlog.capacity: must be an integer from 1", 1},
    {TOP(",'demand':{'rate_per_hour':1}"), "$.demand: no station takes its input from \"demand\"",
     1},
    {IO("'demand'", "'sink'", ""), "$.stations.s.input: \"demand\" needs a top-level \"demand\"",
     1},
    /* shifts */
    {TOP(",'shifts':{'period':'1d'}"), "$.shifts: missing \"windows\"", 1},
    {TOP(",'shifts':{'period':0,'windows':[['06:00','14:00']]}"),
     "$.shifts.period: must be a duration > 0", 1},
    {TOP(",'shifts':{'windows':[]}"), "$.shifts.windows: must be a list of 1 to 8", 1},
    {TOP(",'shifts':{'windows':[['06:00']]}"), "$.shifts.windows[0]: must be [start, end]", 1},
    {TOP(",'shifts':{'windows':[['6:00','14:00']]}"),
     "$.shifts.windows[0][0]: must be a time of day \"HH:MM\"", 1},
    {TOP(",'shifts':{'windows':[['06:00','24:01']]}"),
     "$.shifts.windows[0][1]: must be a time of day", 1},
    {TOP(",'shifts':{'windows':[['06:00','06:00']]}"),
     "$.shifts.windows[0]: start and end are the same", 1},
    {TOP(",'shifts':{'period':'12h','windows':[['13:00','14:00']]}"),
     "$.shifts.windows[0][0]: must lie within the period", 2},
    {TOP(",'shifts':{'windows':[['06:00','14:00'],['13:00','22:00']]}"),
     "$.shifts.windows: windows overlap", 1},
    {TOP(",'shifts':{'windows':[['22:00','06:00'],['05:00','07:00']]}"),
     "$.shifts.windows: windows overlap", 1},
};

static void each_error_is_reported_with_its_path(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof bad_files / sizeof bad_files[0]; i++) {
        struct sim_plant *p = (struct sim_plant *)&p; /* must be reset to NULL */
        struct tw_model_errors errs = {0};
        int rc = parse(bad_files[i].json, NULL, &p, &errs);
        bool found = has_error(&errs, bad_files[i].error);
        if (rc != TW_EINVAL || !found || errs.total != bad_files[i].count) {
            print_message("row %zu: %s\n  expected %zu error(s), one with: %s\n", i,
                          bad_files[i].json, bad_files[i].count, bad_files[i].error);
            print_errors(&errs);
        }
        assert_int_equal(rc, TW_EINVAL);
        assert_null(p);
        assert_true(found);
        assert_int_equal(errs.total, bad_files[i].count);
        tw_model_errors_free(&errs);
    }
}

static void every_problem_of_a_file_is_reported(void **state)
{
    (void)state;
    struct sim_plant *p;
    struct tw_model_errors errs = {0};
    int rc = parse("{'stations':{'s':{'input':'nowhere','output':'sink','cycle_time':-1,"
                   "'scrap':2,'colour':'red'}},'buffers':{'b':{'capacity':'big'}},"
                   "'demand':{'rate_per_hour':0},'routing':{}}",
                   NULL, &p, &errs);
    print_errors(&errs);
    assert_int_equal(rc, TW_EINVAL);
    assert_null(p);
    assert_true(has_error(&errs, "$.stations.s.colour: unknown key"));
    assert_true(has_error(&errs, "$.stations.s.cycle_time: must be a duration"));
    assert_true(has_error(&errs, "$.stations.s.scrap:"));
    assert_true(has_error(&errs, "$.stations.s.input: no such buffer"));
    assert_true(has_error(&errs, "$.buffers.b.capacity:"));
    assert_true(has_error(&errs, "$.buffers.b: no station outputs to this buffer"));
    assert_true(has_error(&errs, "$.buffers.b: no station takes its input from this buffer"));
    assert_true(has_error(&errs, "$.demand.rate_per_hour:"));
    assert_true(has_error(&errs, "$.demand: no station takes its input"));
    assert_true(has_error(&errs, "$.routing: not used"));
    assert_int_equal(errs.total, 10);
    tw_model_errors_free(&errs);
}

static void cycles_between_stations_are_rejected(void **state)
{
    (void)state;
    struct sim_plant *p;
    struct tw_model_errors errs = {0};
    /* a feeds b1; s1 and s2 pass parts round b1 -> b2 -> b1; z drains b2 to the sink. */
    int rc = parse("{'stations':{"
                   "'a':{'input':'source','output':'b1','cycle_time':1},"
                   "'s1':{'input':'b1','output':'b2','cycle_time':1},"
                   "'s2':{'input':'b2','output':[{'to':'b1','share':1},{'to':'sink','share':1}],"
                   "'cycle_time':1}},"
                   "'buffers':{'b1':{},'b2':{}}}",
                   NULL, &p, &errs);
    print_errors(&errs);
    assert_int_equal(rc, TW_EINVAL);
    assert_null(p);
    assert_int_equal(errs.total, 1);
    assert_true(has_error(&errs, "$.stations.s1: is on a cycle: s1 -> s2 -> s1"));
    tw_model_errors_free(&errs);

    /* A station feeding its own input. */
    tw_model_errors_init(&errs);
    rc = parse("{'stations':{'a':{'input':'source','output':'b','cycle_time':1},"
               "'s':{'input':'b','output':[{'to':'b','share':1},{'to':'sink','share':9}],"
               "'cycle_time':1}},'buffers':{'b':{}}}",
               NULL, &p, &errs);
    assert_int_equal(rc, TW_EINVAL);
    assert_true(has_error(&errs, "$.stations.s: is on a cycle: s -> s"));
    tw_model_errors_free(&errs);

    /* A diamond (split and merge) is not a cycle. */
    p = good("{'stations':{'a':{'input':'source','output':[{'to':'l','share':1},"
             "{'to':'r','share':1}],'cycle_time':1},"
             "'x':{'input':'l','output':'m','cycle_time':1},"
             "'y':{'input':'r','output':'m','cycle_time':1},"
             "'z':{'input':'m','output':'sink','cycle_time':1}},"
             "'buffers':{'l':{},'r':{},'m':{}}}",
             NULL);
    assert_int_equal(p->n_stations, 4);
    sim_plant_free(p);
}

/* ---- values ---------------------------------------------------------------------------- */

static void durations_read_numbers_and_text(void **state)
{
    (void)state;
    static const struct {
        const char *value;
        double seconds;
    } cases[] = {{"0.5", 0.5},      {"45", 45},       {"'45s'", 45},
                 {"'250ms'", 0.25}, {"'8h'", 28800},  {"'1h30m'", 5400},
                 {"'2d'", 172800},  {"'1w'", 604800}, {"'366d'", 31622400}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char text[256];
        snprintf(text, sizeof text, CYC("%s"), cases[i].value);
        struct sim_plant *p = good(text, NULL);
        assert_int_equal(p->stations[0].cycle.kind, SIM_DIST_FIXED);
        assert_true(p->stations[0].cycle.a == cases[i].seconds);
        assert_true(p->stations[0].cycle.mean == cases[i].seconds);
        assert_true(p->stations[0].cycle.scale == 1.0);
        sim_plant_free(p);
    }
    /* Zero where zero is allowed: a setup and a lead time. */
    struct sim_plant *p = good("{'stations':{'s':{'input':'source','output':'sink','cycle_time':1,"
                               "'setup':{'time':'0s'},'consumes':{'stock':'k'}}},"
                               "'stocks':{'k':{}},'suppliers':{'u':{'stock':'k','lot':1,"
                               "'reorder_point':0,'lead_time':'0'}}}",
                               NULL);
    assert_true(p->stations[0].setup.mean == 0 && p->stations[0].setup_every == 1);
    assert_true(p->suppliers[0].lead.kind == SIM_DIST_FIXED && p->suppliers[0].lead.a == 0);
    sim_plant_free(p);
}

static void distributions_are_filled_and_finished(void **state)
{
    (void)state;
    struct sim_plant *p = good(
        "{'stations':{"
        "'a':{'input':'source','output':'b1','cycle_time':{'dist':'uniform','min':'1m','max':'3m'},"
        "'failures':{'mtbf':'8h','mttr':{'dist':'fixed','value':'15m'},'basis':'time'}},"
        "'b':{'input':'b1','output':'b2','cycle_time':{'dist':'triangular','min':1,'mode':2,'max':"
        "6},"
        "'setup':{'time':{'dist':'exp','mean':'20m'},'every':50}},"
        "'c':{'input':'b2','output':'b3','cycle_time':{'dist':'normal','mean':60,'sd':'5s'},"
        "'failures':{'mtbf':{'dist':'lognormal','mean':'10h','sd':'5h'},'mttr':'30m'}},"
        "'d':{'input':'b3','output':'sink','cycle_time':{'dist':'lognormal','mean':80,'sd':0}}},"
        "'buffers':{'b1':{},'b2':{},'b3':{}}}",
        NULL);
    const struct sim_station *s = p->stations;
    assert_int_equal(s[0].cycle.kind, SIM_DIST_UNIFORM);
    assert_true(s[0].cycle.a == 60 && s[0].cycle.b == 180 && s[0].cycle.mean == 120);
    assert_int_equal(s[0].fail_basis, SIM_FAIL_TIME);
    assert_int_equal(s[0].ttf.kind, SIM_DIST_EXP); /* a plain MTBF is exponential */
    assert_true(s[0].ttf.mean == 28800);
    assert_int_equal(s[0].ttr.kind, SIM_DIST_FIXED);
    assert_true(s[0].ttr.mean == 900);
    assert_int_equal(s[1].cycle.kind, SIM_DIST_TRIANGULAR);
    assert_true(s[1].cycle.c == 6 && s[1].cycle.mean == 3);
    assert_int_equal(s[1].fail_basis, SIM_FAIL_NONE);
    assert_int_equal(s[1].setup.kind, SIM_DIST_EXP);
    assert_true(s[1].setup.mean == 1200 && s[1].setup_every == 50);
    assert_int_equal(s[2].cycle.kind, SIM_DIST_NORMAL);
    assert_true(s[2].cycle.a == 60 && s[2].cycle.b == 5);
    assert_int_equal(s[2].fail_basis, SIM_FAIL_BUSY); /* the default basis */
    assert_int_equal(s[2].ttf.kind, SIM_DIST_LOGNORMAL);
    assert_true(s[2].ttf.sigma > 0 &&
                fabs(exp(s[2].ttf.mu + 0.5 * s[2].ttf.sigma * s[2].ttf.sigma) - 36000) < 1e-6);
    assert_int_equal(s[2].ttr.kind, SIM_DIST_EXP);
    assert_true(s[2].ttr.mean == 1800);
    assert_true(s[3].cycle.sigma == 0 && fabs(exp(s[3].cycle.mu) - 80) < 1e-9);
    sim_plant_free(p);
}

static void station_defaults_and_split_shares(void **state)
{
    (void)state;
    struct sim_plant *p =
        good("{'version':1,'plant':'x','assets':{},'stations':{"
             "'a':{'input':'source','output':[{'to':'l','share':3},{'to':'r','share':1}],"
             "'cycle_time':1,'description':{'en':'splitter'}},"
             "'x':{'input':'l','output':'sink','cycle_time':1,'machines':3,'staff':2,'scrap':0.25,"
             "'shifts':false,'consumes':{'stock':'k','per_part':2.5}},"
             "'y':{'input':'r','output':[{'to':'sink','share':1e308},{'to':'l','share':1e308}],"
             "'cycle_time':1,'consumes':{'stock':'k'}}},"
             "'buffers':{'l':{'capacity':0},'r':{'capacity':5,'initial':5}},"
             "'stocks':{'k':{'initial':12.5,'unit':'kg'}}}",
             NULL);
    const struct sim_station *a = &p->stations[0], *x = &p->stations[1], *y = &p->stations[2];
    assert_string_equal(a->name, "a");
    assert_int_equal(a->input, SIM_NODE_SOURCE);
    assert_int_equal(a->n_outputs, 2);
    assert_int_equal(a->outputs[0], sim_plant_buffer(p, "l"));
    assert_int_equal(a->outputs[1], sim_plant_buffer(p, "r"));
    assert_true(a->output_share[0] == 0.75 && a->output_share[1] == 0.25);
    assert_true(y->output_share[0] == 0.5 && y->output_share[1] == 0.5); /* no overflow */
    assert_int_equal(y->outputs[0], SIM_NODE_SINK);
    /* defaults */
    assert_int_equal(a->machines, 1);
    assert_int_equal(a->staff, 0);
    assert_true(a->scrap == 0 && a->follows_shifts && a->mtbf_factor == 1.0);
    assert_int_equal(a->stock, -1);
    assert_int_equal(a->setup_every, 0);
    assert_int_equal(a->fail_basis, SIM_FAIL_NONE);
    assert_string_equal(a->machine_asset[0], "");
    assert_string_equal(a->live.down_signal, "");
    assert_int_equal(a->live.wear.n, 0);
    for (uint32_t k = 0; k < SIM_MAX_MACHINES; k++)
        assert_false(a->down_at_start[k]);
    /* given values */
    assert_int_equal(x->machines, 3);
    assert_int_equal(x->staff, 2);
    assert_true(x->scrap == 0.25 && !x->follows_shifts);
    assert_int_equal(x->stock, 0);
    assert_true(x->consume == 2.5 && y->consume == 1.0);
    assert_int_equal(p->buffers[0].capacity, 0);
    assert_int_equal(p->buffers[1].capacity, 5);
    assert_int_equal(p->buffers[1].initial, 5);
    assert_true(p->stocks[0].initial == 12.5);
    /* no demand, no shifts, epoch left to the runner */
    assert_int_equal(p->demand.kind, SIM_DEMAND_NONE);
    assert_true(p->demand.factor == 1.0);
    assert_int_equal(p->demand.backlog_cap, SIM_INFINITE_CAP);
    assert_true(p->shifts.period == 0 && p->shifts.n == 0);
    assert_true(p->epoch == 0);
    sim_plant_free(p);
}

static void buffer_without_capacity_is_unbounded(void **state)
{
    (void)state;
    struct sim_plant *p = good(BUF("{'initial':7}"), NULL);
    assert_int_equal(p->buffers[0].capacity, SIM_INFINITE_CAP);
    assert_int_equal(p->buffers[0].initial, 7);
    sim_plant_free(p);
}

static void demand_and_suppliers_map_to_the_plant(void **state)
{
    (void)state;
    struct sim_plant *p = good(
        "{'stations':{'s':{'input':'demand','output':'sink','cycle_time':60,"
        "'consumes':{'stock':'k'}}},'stocks':{'k':{'initial':100}},"
        "'demand':{'rate_per_hour':36,'due':'1d','season':{'period':'1d','amplitude':0.3,"
        "'peak':'18:30'},'backlog':{'capacity':100,'when_full':'lose'}},"
        "'suppliers':{"
        "'r':{'stock':'k','lot':50,'reorder_point':20,'lead_time':'2d','reliability':0.9,"
        "'late':{'dist':'uniform','min':'1h','max':'1d'}},"
        "'p':{'stock':'k','policy':'periodic','lot':10,'period':'1w'},"
        "'q':{'stock':'k','policy':'periodic','lot':10,'period':'1d','first':0,'lead_time':'2h'}}}",
        NULL);
    const struct sim_demand *d = &p->demand;
    assert_int_equal(d->kind, SIM_DEMAND_POISSON);
    assert_true(fabs(d->rate - 0.01) < 1e-15); /* per second */
    assert_true(d->due == 86400 && d->factor == 1.0);
    assert_true(d->season_period == 86400 && d->season_amplitude == 0.3);
    assert_true(d->season_peak == 18 * 3600 + 30 * 60);
    assert_int_equal(d->backlog_cap, 100);
    assert_true(d->lose_when_full);
    const struct sim_supplier *r = &p->suppliers[0], *pe = &p->suppliers[1], *qq = &p->suppliers[2];
    assert_int_equal(r->policy, SIM_SUPPLY_REORDER);
    assert_int_equal(r->stock, 0);
    assert_true(r->lot == 50 && r->reorder == 20 && r->lead.mean == 172800);
    assert_true(r->reliability == 0.9 && r->late.kind == SIM_DIST_UNIFORM);
    assert_int_equal(pe->policy, SIM_SUPPLY_PERIODIC);
    assert_true(pe->period == 604800 && pe->first == 604800); /* first defaults to a period */
    assert_true(pe->lead.kind == SIM_DIST_FIXED && pe->lead.mean == 0 && pe->reliability == 1);
    assert_true(qq->first == 0 && qq->lead.mean == 7200);
    sim_plant_free(p);

    p = good(DEM("{'interarrival':{'dist':'exp','mean':'2m'}}"), NULL);
    assert_int_equal(p->demand.kind, SIM_DEMAND_RENEWAL);
    assert_true(p->demand.interarrival.mean == 120 && p->demand.due == 0);
    assert_int_equal(p->demand.backlog_cap, SIM_INFINITE_CAP);
    assert_false(p->demand.lose_when_full);
    sim_plant_free(p);
}

static void shift_windows_are_split_sorted_and_merged(void **state)
{
    (void)state;
    struct sim_plant *p = good(TOP(",'shifts':{'windows':[['22:00','06:00']]}"), NULL);
    assert_true(p->shifts.period == 86400);
    assert_int_equal(p->shifts.n, 2);
    assert_true(p->shifts.start[0] == 0 && p->shifts.end[0] == 6 * 3600);
    assert_true(p->shifts.start[1] == 22 * 3600 && p->shifts.end[1] == 86400);
    sim_plant_free(p);

    p = good(TOP(",'shifts':{'windows':[['14:00','22:00'],['06:00','14:00'],['23:00','24:00']]}"),
             NULL);
    assert_int_equal(p->shifts.n, 2);
    assert_true(p->shifts.start[0] == 6 * 3600 && p->shifts.end[0] == 22 * 3600);
    assert_true(p->shifts.start[1] == 23 * 3600 && p->shifts.end[1] == 86400);
    sim_plant_free(p);

    /* A weekly calendar written with durations: Monday to Friday, 06:00-14:00 (the epoch,
     * 1970-01-01, was a Thursday; the runner's epoch decides what day 0 is). */
    p = good(TOP(",'shifts':{'period':'1w','windows':[['6h','14h'],['1d6h','1d14h'],"
                 "['2d6h','2d14h'],['3d6h','3d14h'],['4d6h','4d14h']]}"),
             NULL);
    assert_true(p->shifts.period == 604800);
    assert_int_equal(p->shifts.n, 5);
    assert_true(p->shifts.start[4] == 4 * 86400 + 6 * 3600 &&
                p->shifts.end[4] == 4 * 86400 + 14 * 3600);
    sim_plant_free(p);
}

static void file_without_production_keys_gives_no_plant(void **state)
{
    (void)state;
    static const char *const files[] = {
        "{'version':1,'asset_kinds':{},'assets':{}}",
        "{'version':1,'actions':{},'derived':[]}",
        "{}",
    };
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        struct sim_plant *p = (struct sim_plant *)&p;
        struct tw_model_errors errs = {0};
        assert_int_equal(parse(files[i], NULL, &p, &errs), 0);
        assert_null(p);
        assert_int_equal(errs.total, 0);
    }
}

/* ---- caps ------------------------------------------------------------------------------ */

/* A chain of n stations s0..s{n-1} through n-1 buffers b1..b{n-1}: caller frees. */
static char *chain(unsigned n_stations, unsigned n_extra_buffers)
{
    size_t cap = 200 + (size_t)(n_stations + n_extra_buffers) * 120, len = 0;
    char *s = malloc(cap);
    assert_non_null(s);
    len += (size_t)snprintf(s + len, cap - len, "{\"stations\":{");
    for (unsigned i = 0; i < n_stations; i++) {
        char in[16], out[16];
        snprintf(in, sizeof in, i == 0 ? "source" : "b%u", i);
        snprintf(out, sizeof out, i + 1 == n_stations ? "sink" : "b%u", i + 1);
        len += (size_t)snprintf(s + len, cap - len,
                                "%s\"s%u\":{\"input\":\"%s\",\"output\":\"%s\",\"cycle_time\":1}",
                                i ? "," : "", i, in, out);
    }
    len += (size_t)snprintf(s + len, cap - len, "},\"buffers\":{");
    for (unsigned i = 1; i < n_stations + n_extra_buffers; i++)
        len += (size_t)snprintf(s + len, cap - len, "%s\"b%u\":{}", i > 1 ? "," : "", i);
    snprintf(s + len, cap - len, "}}");
    return s;
}

static void expect_cap_error(const char *json, const char *error)
{
    struct sim_plant *p;
    struct tw_model_errors errs = {0};
    int rc = sim_plant_parse(json, strlen(json), NULL, &p, &errs);
    if (!has_error(&errs, error))
        print_errors(&errs);
    assert_int_equal(rc, TW_EINVAL);
    assert_true(has_error(&errs, error));
    tw_model_errors_free(&errs);
}

static void caps_are_enforced(void **state)
{
    (void)state;
    char *s = chain(SIM_MAX_STATIONS, 0);
    struct sim_plant *p = NULL;
    assert_int_equal(sim_plant_parse(s, strlen(s), NULL, &p, NULL), 0);
    assert_int_equal(p->n_stations, SIM_MAX_STATIONS);
    assert_int_equal(p->n_buffers, SIM_MAX_STATIONS - 1);
    assert_int_equal(p->stations[SIM_MAX_STATIONS - 1].outputs[0], SIM_NODE_SINK);
    sim_plant_free(p);
    free(s);
    s = chain(SIM_MAX_STATIONS + 1, 0);
    expect_cap_error(s, "$.stations: too many stations (257, at most 256)");
    free(s);
    s = chain(2, SIM_MAX_BUFFERS + 1);
    expect_cap_error(s, "$.buffers: too many buffers (258, at most 256)");
    free(s);

    char *j = q(IO("'source'",
                   "[{'to':'sink','share':1},{'to':'b1','share':1},{'to':'b2','share':1},"
                   "{'to':'b3','share':1},{'to':'b4','share':1},{'to':'b5','share':1},"
                   "{'to':'b6','share':1},{'to':'b7','share':1},{'to':'b8','share':1}]",
                   ""));
    expect_cap_error(j, "$.stations.s.output: must list 1 to 8 outputs (9 listed)");
    free(j);
    j = q(ONE(",'live':{'wear':{'signal':'v','mtbf_factor':[[1,1],[2,1],[3,1],[4,1],[5,1],[6,1],"
              "[7,1],[8,1],[9,1],[10,1],[11,1],[12,1],[13,1],[14,1],[15,1],[16,1],[17,1]]}}"));
    expect_cap_error(j, "$.stations.s.live.wear.mtbf_factor: must be a list of 2 to 16 points");
    free(j);
    j = q(TOP(",'shifts':{'windows':[['00:00','01:00'],['02:00','03:00'],['04:00','05:00'],"
              "['06:00','07:00'],['08:00','09:00'],['10:00','11:00'],['12:00','13:00'],"
              "['14:00','15:00'],['16:00','17:00']]}"));
    expect_cap_error(j, "$.shifts.windows: must be a list of 1 to 8");
    free(j);
    /* Eight windows, one of them wrapping midnight: nine once split. */
    j = q(TOP(",'shifts':{'windows':[['23:00','01:00'],['02:00','03:00'],['04:00','05:00'],"
              "['06:00','07:00'],['08:00','09:00'],['10:00','11:00'],['12:00','13:00'],"
              "['14:00','15:00']]}"));
    expect_cap_error(j, "$.shifts.windows: too many windows once those that wrap");
    free(j);
    j = q(ONE(",'machines':65"));
    expect_cap_error(j, "$.stations.s.machines: must be an integer from 1 to 64");
    free(j);
}

static void text_limits_match_the_common_loader(void **state)
{
    (void)state;
    struct sim_plant *p;
    struct tw_model_errors errs = {0};
    const char with_nul[] = "{\"stations\":{}}\0";
    assert_int_equal(sim_plant_parse(with_nul, sizeof with_nul - 1, NULL, &p, &errs), TW_EINVAL);
    assert_true(has_error(&errs, "$: contains a NUL byte at offset 15"));
    assert_int_equal(sim_plant_parse("", 0, NULL, &p, &errs), TW_EINVAL);
    assert_true(has_error(&errs, "$: empty"));
    assert_int_equal(sim_plant_parse("{}", (size_t)TW_MODEL_MAX_FILE_BYTES + 1, NULL, &p, &errs),
                     TW_EINVAL);
    assert_true(has_error(&errs, "$: too large"));
    tw_model_errors_free(&errs);
}

/* ---- with the common model ------------------------------------------------------------ */

#define KINDS                                                                                      \
    "'asset_kinds':{'press':{'signals':{'vibration':{'warn':{'above':7.1}},'stroke_rate':{},"      \
    "'level':{}}},'bin':{'signals':{'count':{}}}}"

static const char small_model[] = "{'version':1," KINDS ",'assets':{"
                                  "'p1':{'kind':'press','station':'press'},'x9':{'kind':'bin'},"
                                  "'p2':{'kind':'press','station':'press'}}}";

static void machines_default_to_the_stations_assets(void **state)
{
    (void)state;
    struct tw_model *m = model_of(small_model);
    struct sim_plant *p =
        good("{'stations':{'press':{'input':'source','output':'b','cycle_time':1,"
             "'live':{'down_when':{'signal':'stroke_rate','below':1},"
             "'wear':{'signal':'vibration','mtbf_factor':[[4.5,1],[7.1,0.5],[11,0.1]]}}},"
             "'other':{'input':'b','output':'sink','cycle_time':1,'machines':2}},"
             "'buffers':{'b':{'live':{'asset':'x9','signal':'count'}}},"
             "'stocks':{'k':{'live':{'asset':'p2','signal':'level'}}}}",
             m);
    const struct sim_station *s = &p->stations[0];
    assert_int_equal(s->machines, 2);
    assert_string_equal(s->machine_asset[0], "p1"); /* file order */
    assert_string_equal(s->machine_asset[1], "p2");
    assert_string_equal(s->machine_asset[2], "");
    assert_string_equal(s->live.down_signal, "stroke_rate");
    assert_true(s->live.down_has_below && !s->live.down_has_above && s->live.down_below == 1);
    assert_string_equal(s->live.wear_signal, "vibration");
    assert_int_equal(s->live.wear.n, 3);
    assert_true(s->live.wear.x[1] == 7.1 && s->live.wear.y[2] == 0.1);
    assert_true(fabs(sim_curve_eval(&s->live.wear, 9.05) - 0.3) < 1e-12);
    assert_int_equal(p->stations[1].machines, 2);
    assert_string_equal(p->stations[1].machine_asset[0], "");
    assert_string_equal(p->buffers[0].live_asset, "x9");
    assert_string_equal(p->buffers[0].live_signal, "count");
    assert_string_equal(p->stocks[0].live_asset, "p2");
    sim_plant_free(p);

    /* More machines than assets: the extra ones have none. */
    p = good("{'stations':{'press':{'input':'source','output':'sink','cycle_time':1,"
             "'machines':3}}}",
             m);
    assert_int_equal(p->stations[0].machines, 3);
    assert_string_equal(p->stations[0].machine_asset[1], "p2");
    assert_string_equal(p->stations[0].machine_asset[2], "");
    sim_plant_free(p);
    tw_model_free(m);
}

static const struct bad model_bad_files[] = {
    {"{'stations':{'press':{'input':'source','output':'sink','cycle_time':1,'machines':1}}}",
     "$.stations.press.machines: 1 is fewer than the 2 assets whose \"station\" is \"press\"", 1},
    {"{'stations':{'weld':{'input':'source','output':'sink','cycle_time':1}}}",
     "$.assets.p1.station: no such station in \"stations\"", 2 /* p1 and p2 */},
    {"{'stations':{'press':{'input':'source','output':'sink','cycle_time':1,"
     "'live':{'wear':{'signal':'temp','mtbf_factor':[[1,1],[2,1]]}}}}}",
     "$.stations.press.live.wear.signal: asset \"p1\" (kind \"press\") has no such signal", 1},
    {"{'stations':{'press':{'input':'source','output':'b','cycle_time':1},"
     "'weld':{'input':'b','output':'sink','cycle_time':1,"
     "'live':{'down_when':{'signal':'stroke_rate','below':1}}}},'buffers':{'b':{}}}",
     "$.stations.weld.live.down_when.signal: no asset to read it from", 1},
    {"{'stations':{'press':{'input':'source','output':'sink','cycle_time':1}},"
     "'stocks':{'k':{'live':{'asset':'p7','signal':'level'}}}}",
     "$.stocks.k.live.asset: no such asset in \"assets\"", 1},
    {"{'stations':{'press':{'input':'source','output':'b','cycle_time':1},"
     "'z':{'input':'b','output':'sink','cycle_time':1}},"
     "'buffers':{'b':{'live':{'asset':'x9','signal':'level'}}}}",
     "$.buffers.b.live.signal: asset kind \"bin\" has no such signal", 1},
};

static void assets_and_live_signals_are_checked_against_the_model(void **state)
{
    (void)state;
    struct tw_model *m = model_of(small_model);
    for (size_t i = 0; i < sizeof model_bad_files / sizeof model_bad_files[0]; i++) {
        struct sim_plant *p;
        struct tw_model_errors errs = {0};
        int rc = parse(model_bad_files[i].json, m, &p, &errs);
        bool found = has_error(&errs, model_bad_files[i].error);
        if (!found || errs.total != model_bad_files[i].count) {
            print_message("row %zu: expected %s\n", i, model_bad_files[i].error);
            print_errors(&errs);
        }
        assert_int_equal(rc, TW_EINVAL);
        assert_null(p);
        assert_true(found);
        assert_int_equal(errs.total, model_bad_files[i].count);
        tw_model_errors_free(&errs);
    }
    tw_model_free(m);
}

static void errors_shared_with_the_common_loader_are_not_repeated(void **state)
{
    (void)state;
    char *json = q("{'version':1,'stations':{'s':{'input':'source','output':'sink','cycle_time':1},"
                   "'s':{'input':'source','output':'sink','cycle_time':2}}}");
    struct tw_model *m = NULL;
    struct sim_plant *p = NULL;
    struct tw_model_errors errs = {0};
    assert_int_equal(tw_model_load_buffer(json, strlen(json), &m, &errs), TW_EINVAL);
    assert_int_equal(errs.total, 1);
    assert_int_equal(sim_plant_parse(json, strlen(json), NULL, &p, &errs), TW_EINVAL);
    assert_int_equal(errs.total, 1);
    assert_int_equal(errs.count, 1);
    assert_string_equal(errs.items[0].path, "$.stations.s");
    assert_string_equal(errs.items[0].message, "duplicate key");
    /* The list keeps growing in the common loader's way afterwards. */
    assert_int_equal(sim_plant_parse("[]", 2, NULL, &p, &errs), TW_EINVAL);
    assert_int_equal(tw_model_load_buffer("{", 1, &m, &errs), TW_EINVAL);
    assert_int_equal(errs.count, 3);
    free(json);
    tw_model_errors_free(&errs);
}

/* ---- the demo plant ------------------------------------------------------------------- */

static struct sim_plant *demo(struct tw_model **m)
{
    struct tw_model_errors errs = {0};
    struct sim_plant *p = NULL;
    int rc = tw_model_load_file(TW_DEMO_PLANT, m, &errs);
    if (rc == 0)
        rc = sim_plant_load_file(TW_DEMO_PLANT, *m, &p, &errs);
    print_errors(&errs);
    assert_int_equal(rc, 0);
    assert_non_null(p);
    tw_model_errors_free(&errs);
    return p;
}

static void demo_plant_parses_into_the_line(void **state)
{
    (void)state;
    struct tw_model *m = NULL;
    struct sim_plant *p = demo(&m);
    assert_int_equal(p->n_stations, 4);
    assert_int_equal(p->n_buffers, 3);
    assert_int_equal(p->n_stocks, 2);
    assert_int_equal(p->n_suppliers, 2);
    static const char *const names[] = {"press", "weld", "paint", "assembly"};
    static const char *const assets[] = {"press-1", "weld-1", "paint-1", "assembly-1"};
    for (uint32_t i = 0; i < 4; i++) {
        const struct sim_station *s = &p->stations[i];
        assert_string_equal(s->name, names[i]);
        assert_string_equal(s->machine_asset[0], assets[i]);
        assert_int_equal(s->machines, i == 0 ? 2 : 1);
        assert_int_equal(s->input, i == 0 ? SIM_NODE_DEMAND : (int)i - 1);
        assert_int_equal(s->n_outputs, 1);
        assert_int_equal(s->outputs[0], i == 3 ? SIM_NODE_SINK : (int)i);
        /* Wear-out lives on the clock, aged by the live wear, as twin-devsim's machines. */
        assert_int_equal(s->fail_basis, SIM_FAIL_TIME);
        assert_int_equal(s->ttf.kind, SIM_DIST_WEIBULL);
        assert_true(s->live.wear_is_age && s->live.wear.n >= 2 && s->live.wear.y[0] == 0);
        assert_true(s->follows_shifts && s->mtbf_factor == 1.0 && !s->down_at_start[0]);
    }
    assert_string_equal(p->stations[0].machine_asset[1], "press-2");
    assert_string_equal(p->stations[0].live.down_signal, "stroke_rate");
    assert_string_equal(p->stations[0].live.wear_signal, "vibration");
    assert_string_equal(p->stations[1].live.wear_signal, "vibration");
    assert_true(p->stations[0].setup_every > 0 && p->stations[2].scrap > 0);
    assert_int_equal(p->stations[0].stock, sim_plant_stock(p, "steel_blanks"));
    assert_int_equal(p->stations[2].stock, sim_plant_stock(p, "paint"));
    const struct sim_supplier *mill = &p->suppliers[sim_plant_supplier(p, "steel_mill")];
    assert_int_equal(mill->policy, SIM_SUPPLY_REORDER);
    assert_int_equal(mill->stock, sim_plant_stock(p, "steel_blanks"));
    assert_true(p->suppliers[sim_plant_supplier(p, "paint_supplier")].stock ==
                sim_plant_stock(p, "paint"));
    assert_int_equal(p->demand.kind, SIM_DEMAND_POISSON);
    assert_true(p->demand.due >= 86400 && p->demand.due <= 2 * 86400);
    assert_true(p->shifts.period == 86400 && p->shifts.n == 1);
    assert_true(p->shifts.start[0] == 6 * 3600 && p->shifts.end[0] == 22 * 3600);
    assert_true(p->epoch == 0);

    struct sim_plant *copy = sim_plant_copy(p);
    assert_non_null(copy);
    assert_memory_equal(copy->stations, p->stations, p->n_stations * sizeof *p->stations);
    sim_plant_free(copy);
    sim_plant_free(p);
    tw_model_free(m);
}

/* Seconds of bottleneck time one part takes at station s, failures and setups included. */
static double effective_seconds(const struct sim_station *s)
{
    double t = s->cycle.mean + (s->setup_every ? s->setup.mean / s->setup_every : 0);
    if (s->fail_basis != SIM_FAIL_NONE) /* on the clock: down that share of shift time too */
        t *= 1 + s->ttr.mean / s->ttf.mean;
    return t / s->machines;
}

/* The demo plant must show what README promises: a stable baseline near 80-85 % on the
 * bottleneck, overloaded by +40 % demand, and a steel stock that a 2-day delay empties. */
static void demo_plant_is_sized_for_the_what_ifs(void **state)
{
    (void)state;
    struct tw_model *m = NULL;
    struct sim_plant *p = demo(&m);
    double working = 0;
    for (uint32_t k = 0; k < p->shifts.n; k++)
        working += (p->shifts.end[k] - p->shifts.start[k]) / p->shifts.period;
    double per_day = p->demand.rate * 86400, worst = 0;
    for (uint32_t i = 0; i < p->n_stations; i++) {
        double load = per_day * effective_seconds(&p->stations[i]) / (working * 86400);
        print_message("station %s: %.1f %% of shift time\n", p->stations[i].name, 100 * load);
        worst = load > worst ? load : worst;
    }
    assert_true(worst >= 0.80 && worst <= 0.85);
    assert_true(worst * 1.4 > 1.05);
    const struct sim_station *press = &p->stations[0];
    const struct sim_supplier *mill = &p->suppliers[sim_plant_supplier(p, "steel_mill")];
    double use_per_day = per_day * press->consume;
    double safety = mill->reorder - mill->lead.mean / 86400 * use_per_day;
    print_message("steel safety stock: %.2f days\n", safety / use_per_day);
    assert_true(safety > 0.25 * use_per_day && safety < 2 * use_per_day);
    assert_true(p->stocks[press->stock].initial > mill->reorder);
    sim_plant_free(p);
    tw_model_free(m);
}

static void missing_file_is_enoent(void **state)
{
    (void)state;
    struct sim_plant *p = (struct sim_plant *)&p;
    struct tw_model_errors errs = {0};
    assert_int_equal(sim_plant_load_file("/nonexistent/plant.json", NULL, &p, &errs), TW_ENOENT);
    assert_null(p);
    assert_true(has_error(&errs, "$: cannot open /nonexistent/plant.json"));
    tw_model_errors_free(&errs);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(each_error_is_reported_with_its_path),
        cmocka_unit_test(every_problem_of_a_file_is_reported),
        cmocka_unit_test(cycles_between_stations_are_rejected),
        cmocka_unit_test(durations_read_numbers_and_text),
        cmocka_unit_test(distributions_are_filled_and_finished),
        cmocka_unit_test(station_defaults_and_split_shares),
        cmocka_unit_test(buffer_without_capacity_is_unbounded),
        cmocka_unit_test(demand_and_suppliers_map_to_the_plant),
        cmocka_unit_test(shift_windows_are_split_sorted_and_merged),
        cmocka_unit_test(file_without_production_keys_gives_no_plant),
        cmocka_unit_test(caps_are_enforced),
        cmocka_unit_test(text_limits_match_the_common_loader),
        cmocka_unit_test(machines_default_to_the_stations_assets),
        cmocka_unit_test(assets_and_live_signals_are_checked_against_the_model),
        cmocka_unit_test(errors_shared_with_the_common_loader_are_not_repeated),
        cmocka_unit_test(demo_plant_parses_into_the_line),
        cmocka_unit_test(demo_plant_is_sized_for_the_what_ifs),
        cmocka_unit_test(missing_file_is_enoent),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
