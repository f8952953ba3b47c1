/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests of the scenario wire layer: a ScenarioRequest translated into a checked spec for
 * the demo plant, every kind of bad request refused with a reason, and requests and results
 * encoded and decoded without loss. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "plant.h"
#include "plant_json.h"
#include "scenario.h"
#include "twin/err.h"
#include "twin/model.h"
#include "wire.h"

#ifndef TW_DEMO_PLANT
#define TW_DEMO_PLANT "deploy/plant.json"
#endif

#define H_MS (3600 * 1000LL)
#define D_MS (24 * H_MS)

/* The demo plant, loaded once for the whole group. */
static struct tw_model *g_model;
static struct sim_plant *g_plant;

/* The service's defaults (services/scenario/main.c). */
static const struct scen_limits g_limits = {
    .default_horizon_ms = 7 * D_MS,
    .default_warmup_ms = 0,
    .default_replications = 20,
    .max_replications = 1000,
    .max_horizon_ms = 366 * D_MS,
    .max_work_hours = 2e7,
};

static int load_demo(void **state)
{
    (void)state;
    struct tw_model_errors errs = {0};
    int rc = tw_model_load_file(TW_DEMO_PLANT, &g_model, &errs);
    if (rc == 0)
        rc = sim_plant_load_file(TW_DEMO_PLANT, g_model, &g_plant, &errs);
    tw_model_errors_free(&errs);
    return rc == 0 && g_plant ? 0 : -1;
}

static int free_demo(void **state)
{
    (void)state;
    sim_plant_free(g_plant);
    tw_model_free(g_model);
    return 0;
}

/* A request with id "t", a seed and nothing else (calloc: the struct is large). */
static struct scen_request *request(void)
{
    struct scen_request *r = calloc(1, sizeof(*r));
    assert_non_null(r);
    snprintf(r->id, sizeof(r->id), "t");
    r->seed = 42;
    return r;
}

static struct scen_perturbation *add(struct scen_request *r, int kind, const char *target)
{
    assert_true(r->n_perturb < SCEN_WIRE_MAX_PERTURB);
    struct scen_perturbation *p = &r->perturb[r->n_perturb++];
    memset(p, 0, sizeof(*p));
    p->kind = kind;
    snprintf(p->target, sizeof(p->target), "%s", target);
    return p;
}

/* A one-parameter grid sweep over listed values. */
static void sweep(struct scen_request *r, const char *path, const double *values, size_t n,
                  const char *objective)
{
    r->has_sweep = true;
    r->sweep.method = SCN_SWEEP_GRID;
    r->sweep.n_params = 1;
    struct scn_range *p = &r->sweep.params[0];
    snprintf(p->path, sizeof(p->path), "%s", path);
    p->values = (double *)values;
    p->n_values = n;
    snprintf(r->sweep.objective, sizeof(r->sweep.objective), "%s", objective);
}

/* Translates r; the spec is static (large) and valid until the next call. */
static int translate(const struct scen_request *r, struct scn_spec **spec, bool *too_large,
                     char *why, size_t whylen)
{
    static struct scn_spec s;
    why[0] = '\0';
    *spec = &s;
    return scen_request_to_spec(r, g_plant, &g_limits, &s, too_large, why, whylen);
}

static struct scn_spec *translate_ok(const struct scen_request *r)
{
    struct scn_spec *s;
    bool too_large = true;
    char why[512];
    int rc = translate(r, &s, &too_large, why, sizeof(why));
    if (rc != 0)
        print_error("refused: %s\n", why);
    assert_int_equal(rc, 0);
    assert_false(too_large);
    return s;
}

/* Translation must fail with TW_EINVAL and a reason containing `text`; too_large as given. */
static void refused(const struct scen_request *r, const char *text, bool too_large_expected)
{
    struct scn_spec *s;
    bool too_large = !too_large_expected;
    char why[512];
    assert_int_equal(translate(r, &s, &too_large, why, sizeof(why)), TW_EINVAL);
    if (!strstr(why, text))
        print_error("reason \"%s\" lacks \"%s\"\n", why, text);
    assert_non_null(strstr(why, text));
    assert_int_equal(too_large, too_large_expected);
}

/* ---- request -> spec ------------------------------------------------------------------- */

static void station_target_downs_every_machine(void **state)
{
    (void)state;
    struct scen_request *r = request();
    struct scen_perturbation *p = add(r, SCEN_P_MACHINE_DOWN, "weld");
    p->start_ms = 2 * H_MS;
    p->duration_ms = 4 * H_MS + 500;
    struct scn_spec *s = translate_ok(r);
    assert_int_equal(s->n_perturb, 1);
    assert_int_equal(s->n_sets, 0);
    assert_int_equal(s->perturb[0].kind, SIM_PERTURB_DOWN);
    assert_int_equal(s->perturb[0].station, sim_plant_station(g_plant, "weld"));
    assert_int_equal(s->perturb[0].machine, -1);
    assert_true(s->perturb[0].start == 7200.0);
    assert_true(s->perturb[0].duration == 14400.5);
    free(r);
}

static void asset_id_target_downs_that_machine_only(void **state)
{
    (void)state;
    struct scen_request *r = request();
    add(r, SCEN_P_MACHINE_DOWN, "press-2");
    add(r, SCEN_P_MACHINE_DOWN, "press-1");
    add(r, SCEN_P_MACHINE_DOWN, "assembly-1");
    struct scn_spec *s = translate_ok(r);
    assert_int_equal(s->n_perturb, 3);
    int press = sim_plant_station(g_plant, "press");
    assert_int_equal(s->perturb[0].station, press);
    assert_int_equal(s->perturb[0].machine, 1);
    assert_int_equal(s->perturb[1].station, press);
    assert_int_equal(s->perturb[1].machine, 0);
    assert_int_equal(s->perturb[2].station, sim_plant_station(g_plant, "assembly"));
    assert_int_equal(s->perturb[2].machine, 0);
    free(r);
}

static void supplier_late_delays_the_named_supplier(void **state)
{
    (void)state;
    struct scen_request *r = request();
    struct scen_perturbation *p = add(r, SCEN_P_SUPPLIER_LATE, "steel_mill");
    p->start_ms = H_MS;
    p->delay_ms = D_MS;
    p->count = 3;
    p = add(r, SCEN_P_SUPPLIER_LATE, "paint_supplier");
    p->delay_ms = 1500; /* count 0: one delivery */
    struct scn_spec *s = translate_ok(r);
    assert_int_equal(s->n_perturb, 2);
    assert_int_equal(s->perturb[0].kind, SIM_PERTURB_SUPPLIER_LATE);
    assert_int_equal(s->perturb[0].supplier, sim_plant_supplier(g_plant, "steel_mill"));
    assert_true(s->perturb[0].start == 3600.0);
    assert_true(s->perturb[0].delay == 86400.0);
    assert_int_equal(s->perturb[0].count, 3);
    assert_int_equal(s->perturb[1].supplier, sim_plant_supplier(g_plant, "paint_supplier"));
    assert_true(s->perturb[1].delay == 1.5);
    assert_int_equal(s->perturb[1].count, 1);
    free(r);
}

static void demand_factor_scales_the_demand_over_its_window(void **state)
{
    (void)state;
    struct scen_request *r = request();
    struct scen_perturbation *p = add(r, SCEN_P_DEMAND_FACTOR, "");
    p->start_ms = 600000;
    p->duration_ms = 1800000;
    p->factor = 1.4;
    p = add(r, SCEN_P_DEMAND_FACTOR, "");
    p->factor = 0; /* no orders at all is allowed */
    struct scn_spec *s = translate_ok(r);
    assert_int_equal(s->n_perturb, 2);
    assert_int_equal(s->perturb[0].kind, SIM_PERTURB_DEMAND);
    assert_true(s->perturb[0].factor == 1.4);
    assert_true(s->perturb[0].start == 600.0);
    assert_true(s->perturb[0].duration == 1800.0);
    assert_true(s->perturb[1].factor == 0.0);
    assert_true(s->perturb[1].duration == 0.0); /* until the end */
    free(r);
}

static void set_parameter_becomes_a_parameter_change(void **state)
{
    (void)state;
    struct scen_request *r = request();
    add(r, SCEN_P_SET_PARAMETER, "station.weld.cycle_time")->value = 70;
    add(r, SCEN_P_MACHINE_DOWN, "paint");
    add(r, SCEN_P_SET_PARAMETER, "buffer.press_out.capacity")->value = 12;
    struct scn_spec *s = translate_ok(r);
    assert_int_equal(s->n_sets, 2);
    assert_int_equal(s->n_perturb, 1);
    assert_string_equal(s->sets[0].path, "station.weld.cycle_time");
    assert_true(s->sets[0].value == 70.0);
    assert_string_equal(s->sets[1].path, "buffer.press_out.capacity");
    assert_true(s->sets[1].value == 12.0);
    assert_int_equal(s->perturb[0].station, sim_plant_station(g_plant, "paint"));
    free(r);
}

static void maintain_and_slow_target_like_machine_down(void **state)
{
    (void)state;
    struct scen_request *r = request();
    struct scen_perturbation *p = add(r, SCEN_P_MAINTAIN, "press-2");
    p->start_ms = H_MS;
    p->duration_ms = 3 * H_MS;
    p = add(r, SCEN_P_SLOW, "weld");
    p->start_ms = 2 * H_MS;
    p->factor = 0.8;
    p->value = 2; /* the wear exponent */
    p = add(r, SCEN_P_SLOW, "press-1");
    p->duration_ms = H_MS;
    p->factor = 1; /* full speed and no wear exponent are allowed (a no-op) */
    struct scn_spec *s = translate_ok(r);
    assert_int_equal(s->n_perturb, 3);
    int press = sim_plant_station(g_plant, "press");
    assert_int_equal(s->perturb[0].kind, SIM_PERTURB_MAINTAIN);
    assert_int_equal(s->perturb[0].station, press);
    assert_int_equal(s->perturb[0].machine, 1);
    assert_true(s->perturb[0].start == 3600.0 && s->perturb[0].duration == 10800.0);
    assert_int_equal(s->perturb[1].kind, SIM_PERTURB_SLOW);
    assert_int_equal(s->perturb[1].station, sim_plant_station(g_plant, "weld"));
    assert_int_equal(s->perturb[1].machine, -1);
    assert_true(s->perturb[1].factor == 0.8 && s->perturb[1].exponent == 2.0);
    assert_true(s->perturb[1].start == 7200.0 && s->perturb[1].duration == 0.0);
    assert_int_equal(s->perturb[2].station, press);
    assert_int_equal(s->perturb[2].machine, 0);
    assert_true(s->perturb[2].factor == 1.0 && s->perturb[2].exponent == 0.0);
    free(r);
}

static void bad_maintain_and_slow_are_refused(void **state)
{
    (void)state;
    struct scen_request *r = request();
    struct scen_perturbation *p = add(r, SCEN_P_MAINTAIN, "press-1");
    refused(r, "perturbations[0].duration_ms must be > 0 for MAINTAIN", false);
    p->duration_ms = -H_MS;
    refused(r, "perturbations[0].duration_ms must not be negative", false);
    p->duration_ms = H_MS;
    snprintf(p->target, sizeof(p->target), "lathe-9");
    refused(r, "perturbations[0]: no station and no machine asset named 'lathe-9'", false);
    snprintf(p->target, sizeof(p->target), "steel_mill"); /* a supplier, not a machine */
    refused(r, "no station and no machine asset named 'steel_mill'", false);
    r->n_perturb = 0;
    p = add(r, SCEN_P_SLOW, "press");
    static const double bad_speeds[] = {0, -0.5, 1.0000001, 2, NAN, INFINITY};
    for (size_t i = 0; i < sizeof(bad_speeds) / sizeof(bad_speeds[0]); i++) {
        p->factor = bad_speeds[i];
        refused(r, "perturbations[0].factor must be a speed in (0, 1] for SLOW", false);
    }
    p->factor = 0.5;
    static const double bad_exponents[] = {-0.1, 10.5, NAN, INFINITY};
    for (size_t i = 0; i < sizeof(bad_exponents) / sizeof(bad_exponents[0]); i++) {
        p->value = bad_exponents[i];
        refused(r, "perturbations[0].value (the wear exponent) must be from 0 to 10 for SLOW",
                false);
    }
    p->value = 10;
    snprintf(p->target, sizeof(p->target), "demand");
    refused(r, "no station and no machine asset named 'demand'", false);
    snprintf(p->target, sizeof(p->target), "assembly-1");
    translate_ok(r);
    /* The machine must still exist after the request's own parameter changes. */
    snprintf(p->target, sizeof(p->target), "press-2");
    add(r, SCEN_P_SET_PARAMETER, "station.press.machines")->value = 1;
    refused(r, "perturbation 1: the changes leave no such machine", false);
    free(r);
}

static void times_are_converted_from_ms_to_s(void **state)
{
    (void)state;
    struct scen_request *r = request();
    r->horizon_ms = 2 * H_MS + 1;
    r->warmup_ms = 1500;
    r->replications = 3;
    struct scn_spec *s = translate_ok(r);
    assert_true(s->horizon == 7200.001);
    assert_true(s->warmup == 1.5);
    assert_int_equal(s->replications, 3);
    assert_true(s->seed == 42);
    free(r);
}

static void zero_fields_take_the_service_defaults(void **state)
{
    (void)state;
    struct scen_request *r = request();
    static const double machines[] = {1, 2};
    sweep(r, "station.press.machines", machines, 2, "throughput");
    struct scen_limits lim = g_limits;
    lim.default_warmup_ms = H_MS;
    struct scn_spec s;
    bool too_large = true;
    char why[512] = "";
    assert_int_equal(scen_request_to_spec(r, g_plant, &lim, &s, &too_large, why, sizeof(why)), 0);
    assert_true(s.horizon == 7 * 86400.0);
    assert_true(s.warmup == 3600.0);
    assert_int_equal(s.replications, 20);
    assert_true(s.seed == 42);
    assert_true(s.has_sweep);
    assert_int_equal(s.sweep.top, 10);
    assert_ptr_equal(s.sweep.params[0].values, machines); /* borrowed, not copied */
    assert_int_equal(scen_spec_variants(&s), 2);
    assert_int_equal(scen_spec_runs(&s), 4);
    assert_true(fabs(scen_spec_work_hours(&s) - 4 * 20 * 168.0) < 1e-9);
    free(r);
}

static void requests_beyond_the_limits_are_refused_as_too_large(void **state)
{
    (void)state;
    struct scen_request *r = request();
    r->horizon_ms = 367 * D_MS;
    refused(r, "longer than the limit of 8784 h", true);
    r->horizon_ms = 366 * D_MS; /* the limit itself is allowed */
    translate_ok(r);
    r->horizon_ms = 0;
    r->replications = 1001;
    refused(r, "1001 replications asked, at most 1000", true);
    /* 4 runs x 1000 replications x 7200 h = 28.8 million simulated hours */
    static const double machines[] = {1, 2};
    sweep(r, "station.press.machines", machines, 2, "throughput");
    r->replications = 1000;
    r->horizon_ms = 300 * D_MS;
    refused(r, "request too large: 4 runs x 1000 replications", true);
    r->replications = 600; /* 17.28 million */
    translate_ok(r);
    free(r);
}

/* ---- bad requests ---------------------------------------------------------------------- */

static void unknown_targets_are_refused(void **state)
{
    (void)state;
    struct scen_request *r = request();
    add(r, SCEN_P_MACHINE_DOWN, "lathe-9");
    refused(r, "perturbations[0]: no station and no machine asset named 'lathe-9'", false);
    r->n_perturb = 0;
    add(r, SCEN_P_MACHINE_DOWN, "compressor-1"); /* an asset, but of no station */
    refused(r, "no station and no machine asset named 'compressor-1'", false);
    r->n_perturb = 0;
    add(r, SCEN_P_MACHINE_DOWN, "");
    refused(r, "no station and no machine asset named ''", false);
    r->n_perturb = 0;
    add(r, SCEN_P_SUPPLIER_LATE, "acme")->delay_ms = 1000;
    refused(r, "perturbations[0]: no supplier named 'acme'", false);
    r->n_perturb = 0;
    add(r, SCEN_P_SET_PARAMETER, "station.press.colour")->value = 1;
    refused(r, "parameter \"station.press.colour\"", false);
    r->n_perturb = 0;
    add(r, SCEN_P_SET_PARAMETER, "station.lathe.machines")->value = 1;
    refused(r, "no station named \"lathe\"", false);
    free(r);
}

static void bad_times_are_refused(void **state)
{
    (void)state;
    struct scen_request *r = request();
    add(r, SCEN_P_MACHINE_DOWN, "press")->start_ms = -1;
    refused(r, "perturbations[0].start_ms must not be negative", false);
    r->perturb[0].start_ms = 0;
    r->perturb[0].duration_ms = -5;
    refused(r, "perturbations[0].duration_ms must not be negative", false);
    r->perturb[0].duration_ms = 0;
    r->horizon_ms = H_MS;
    r->perturb[0].start_ms = H_MS;
    refused(r, "perturbations[0] starts at 1 h, at or after the end of the horizon (1 h)", false);
    r->n_perturb = 0;
    r->horizon_ms = -H_MS;
    refused(r, "horizon_ms must be > 0", false);
    r->horizon_ms = H_MS;
    r->warmup_ms = H_MS;
    refused(r, "warmup_ms must be >= 0 and shorter than the horizon", false);
    r->warmup_ms = -1;
    refused(r, "warmup_ms must be >= 0 and shorter than the horizon", false);
    r->warmup_ms = 0;
    add(r, SCEN_P_SUPPLIER_LATE, "steel_mill")->delay_ms = 0;
    refused(r, "perturbations[0].delay_ms must be > 0", false);
    r->perturb[0].delay_ms = -D_MS;
    refused(r, "perturbations[0].delay_ms must be > 0", false);
    r->n_perturb = 0;
    add(r, SCEN_P_SET_PARAMETER, "demand.rate")->start_ms = 1000;
    r->perturb[0].value = 10;
    refused(r, "perturbations[0]: SET_PARAMETER applies from the start (start_ms 0)", false);
    free(r);
}

static void non_finite_and_negative_numbers_are_refused(void **state)
{
    (void)state;
    struct scen_request *r = request();
    add(r, SCEN_P_DEMAND_FACTOR, "")->factor = NAN;
    refused(r, "perturbations[0].factor must be a number >= 0", false);
    r->perturb[0].factor = INFINITY;
    refused(r, "perturbations[0].factor must be a number >= 0", false);
    r->perturb[0].factor = -0.5;
    refused(r, "perturbations[0].factor must be a number >= 0", false);
    r->perturb[0].factor = 1001;
    refused(r, "factor must be in [0, 1000]", false);
    r->n_perturb = 0;
    add(r, SCEN_P_SET_PARAMETER, "demand.rate")->value = NAN;
    refused(r, "perturbations[0].value must be a finite number", false);
    r->perturb[0].value = -INFINITY;
    refused(r, "perturbations[0].value must be a finite number", false);
    r->perturb[0].value = -1;
    refused(r, "parameter \"demand.rate\"", false);
    free(r);
}

static void unknown_kinds_are_refused(void **state)
{
    (void)state;
    struct scen_request *r = request();
    add(r, SCEN_P_UNSPECIFIED, "press");
    refused(r, "perturbations[0].kind 0 is not MACHINE_DOWN", false);
    r->perturb[0].kind = 9;
    refused(r, "perturbations[0].kind 9 is not", false);
    r->perturb[0].kind = 7; /* the first number after SLOW */
    refused(r, "DEMAND_FACTOR, SET_PARAMETER, MAINTAIN or SLOW", false);
    r->perturb[0].kind = -1;
    refused(r, "perturbations[0].kind -1 is not", false);
    free(r);
}

static void too_many_perturbations_are_refused(void **state)
{
    (void)state;
    struct scen_request *r = request();
    for (unsigned i = 0; i <= SCN_MAX_PERTURB; i++)
        add(r, SCEN_P_MACHINE_DOWN, "press");
    refused(r, "too many perturbations besides SET_PARAMETER (at most 64)", false);
    r->n_perturb = SCN_MAX_PERTURB;
    translate_ok(r);
    r->n_perturb = 0;
    for (unsigned i = 0; i <= SCN_MAX_SETS; i++)
        add(r, SCEN_P_SET_PARAMETER, "station.press.machines")->value = 2;
    refused(r, "too many SET_PARAMETER perturbations (at most 64)", false);
    free(r);
}

static void oversized_sweeps_are_refused(void **state)
{
    (void)state;
    struct scen_request *r = request();
    r->horizon_ms = H_MS;
    r->replications = 1;
    r->has_sweep = true;
    r->sweep.method = SCN_SWEEP_GRID;
    r->sweep.n_params = 2;
    snprintf(r->sweep.params[0].path, SCN_PATH_MAX, "demand.rate");
    r->sweep.params[0].min = 1;
    r->sweep.params[0].max = 1000;
    r->sweep.params[0].step = 1;
    snprintf(r->sweep.params[1].path, SCN_PATH_MAX, "demand.due");
    r->sweep.params[1].min = 0;
    r->sweep.params[1].max = 100;
    r->sweep.params[1].step = 1; /* 1000 x 101 = 101000 variants */
    snprintf(r->sweep.objective, SCN_PATH_MAX, "throughput");
    refused(r, "a sweep must have 1..100000 variants (this one has", false);
    r->sweep.params[1].max = 98; /* 99000 */
    translate_ok(r);
    r->sweep.method = SCN_SWEEP_RANDOM;
    r->sweep.samples = SCN_MAX_VARIANTS + 1;
    refused(r, "a sweep must have 1..100000 variants", false);
    r->sweep.samples = 0;
    refused(r, "a sweep must have 1..100000 variants (this one has 0)", false);
    r->sweep.samples = 5;
    r->sweep.top = SCEN_MAX_TOP + 1;
    refused(r, "sweep.top is 101, at most 100", false);
    r->sweep.top = SCEN_MAX_TOP;
    translate_ok(r);
    free(r);
}

static void bad_objectives_and_constraints_are_refused(void **state)
{
    (void)state;
    struct scen_request *r = request();
    static const double machines[] = {1, 2};
    sweep(r, "station.press.machines", machines, 2, "speed");
    refused(r, "objective \"speed\" is not a KPI of this plant", false);
    snprintf(r->sweep.objective, SCN_PATH_MAX, "%s", "");
    refused(r, "objective \"\" is not a KPI of this plant", false);
    snprintf(r->sweep.objective, SCN_PATH_MAX, "%s", "station.press.utilisation");
    r->sweep.n_constraints = 1;
    struct scn_constraint *c = &r->sweep.constraints[0];
    snprintf(c->kpi, sizeof(c->kpi), "nope");
    c->has_max = true;
    c->max = 1;
    refused(r, "constraint on \"nope\": not a KPI of this plant", false);
    snprintf(c->kpi, sizeof(c->kpi), "cost");
    c->has_max = false;
    refused(r, "constraint on \"cost\": needs a min or a max", false);
    c->has_min = true;
    c->min = NAN;
    refused(r, "constraint on \"cost\": bounds must be finite", false);
    c->min = 0;
    translate_ok(r);
    free(r);
}

/* ---- decoding requests ------------------------------------------------------------------ */

static enum scen_fault decode(const void *buf, size_t len, struct scen_request *out, char *why,
                              size_t whylen)
{
    why[0] = '\0';
    enum scen_fault f = scen_request_decode(buf, len, out, why, whylen);
    if (f != SCEN_FAULT_NONE)
        assert_true(why[0] != '\0');
    return f;
}

/* Encodes r (built with the helpers) and decodes it into out. */
static enum scen_fault reencode(const struct scen_request *r, struct scen_request *out, char *why,
                                size_t whylen)
{
    uint8_t *buf = NULL;
    size_t len = 0;
    assert_int_equal(scen_request_encode(r, &buf, &len), 0);
    enum scen_fault f = decode(buf, len, out, why, whylen);
    free(buf);
    return f;
}

static void ids_must_be_1_to_64_safe_characters(void **state)
{
    (void)state;
    assert_true(scen_valid_id("a"));
    assert_true(scen_valid_id("Run_1.b-2"));
    char id[SCEN_ID_MAX + 2];
    memset(id, 'x', sizeof(id));
    id[SCEN_ID_MAX] = '\0';
    assert_true(scen_valid_id(id));
    id[SCEN_ID_MAX] = 'x';
    id[SCEN_ID_MAX + 1] = '\0';
    assert_false(scen_valid_id(id));
    assert_false(scen_valid_id(""));
    assert_false(scen_valid_id("a b"));
    assert_false(scen_valid_id("a/b"));
    assert_false(scen_valid_id("+"));
    assert_false(scen_valid_id("caf\xc3\xa9"));

    struct scen_request *r = request(), *out = calloc(1, sizeof(*out));
    assert_non_null(out);
    char why[256];
    snprintf(r->id, sizeof(r->id), "a b");
    assert_int_equal(reencode(r, out, why, sizeof(why)), SCEN_FAULT_BAD_ID);
    assert_non_null(strstr(why, "id must be 1-64 characters of [A-Za-z0-9._-]"));
    r->id[0] = '\0';
    assert_int_equal(reencode(r, out, why, sizeof(why)), SCEN_FAULT_BAD_ID);
    /* An id the decoder would cut at an embedded NUL: "a\0b". */
    static const uint8_t nul[] = {0x0a, 0x03, 'a', 0x00, 'b'};
    assert_int_equal(decode(nul, sizeof(nul), out, why, sizeof(why)), SCEN_FAULT_BAD_ID);
    /* 65 characters. */
    uint8_t longer[2 + SCEN_ID_MAX + 1];
    longer[0] = 0x0a;
    longer[1] = SCEN_ID_MAX + 1;
    memset(longer + 2, 'x', SCEN_ID_MAX + 1);
    assert_int_equal(decode(longer, sizeof(longer), out, why, sizeof(why)), SCEN_FAULT_BAD_ID);
    scen_request_free(out);
    free(out);
    free(r);
}

static void undecodable_payloads_are_reported(void **state)
{
    (void)state;
    struct scen_request *out = calloc(1, sizeof(*out));
    assert_non_null(out);
    char why[256];
    static const uint8_t truncated[] = {0x0a, 0x05, 'a'};
    assert_int_equal(decode(truncated, sizeof(truncated), out, why, sizeof(why)),
                     SCEN_FAULT_UNDECODABLE);
    assert_string_equal(why, "not a twin.v1.ScenarioRequest");
    static const uint8_t group[] = {0x0b, 0x0c};
    assert_int_equal(decode(group, sizeof(group), out, why, sizeof(why)), SCEN_FAULT_UNDECODABLE);
    static const uint8_t id_as_varint[] = {0x08, 0x01};
    assert_int_equal(decode(id_as_varint, sizeof(id_as_varint), out, why, sizeof(why)),
                     SCEN_FAULT_UNDECODABLE);
    /* Empty: decodable, but no id. */
    assert_int_equal(decode("", 0, out, why, sizeof(why)), SCEN_FAULT_BAD_ID);
    scen_request_free(out);
    free(out);
}

/* A request "t" with n empty perturbations, as raw protobuf. */
static uint8_t *empty_perturbations(size_t n, size_t *len)
{
    uint8_t *buf = malloc(3 + 2 * n);
    assert_non_null(buf);
    memcpy(buf, "\x0a\x01t", 3);
    for (size_t i = 0; i < n; i++)
        memcpy(buf + 3 + 2 * i, "\x1a\x00", 2);
    *len = 3 + 2 * n;
    return buf;
}

static void oversized_messages_are_bad_requests_with_their_id(void **state)
{
    (void)state;
    struct scen_request *out = calloc(1, sizeof(*out));
    assert_non_null(out);
    char why[256];
    size_t len;
    uint8_t *buf = empty_perturbations(SCEN_WIRE_MAX_PERTURB + 1, &len);
    assert_int_equal(decode(buf, len, out, why, sizeof(why)), SCEN_FAULT_BAD_REQUEST);
    assert_string_equal(out->id, "t");
    assert_non_null(strstr(why, "too many perturbations (129, at most 128)"));
    free(buf);
    buf = empty_perturbations(SCEN_WIRE_MAX_PERTURB, &len);
    assert_int_equal(decode(buf, len, out, why, sizeof(why)), SCEN_FAULT_NONE);
    assert_int_equal(out->n_perturb, SCEN_WIRE_MAX_PERTURB);
    free(buf);

    /* A target of 200 bytes: perturbations { target: "xx...x" }. */
    uint8_t target[3 + 3 + 3 + 200] = {0x0a, 0x01, 't', 0x1a, 0xcb, 0x01, 0x12, 0xc8, 0x01};
    memset(target + 9, 'x', 200);
    assert_int_equal(decode(target, sizeof(target), out, why, sizeof(why)), SCEN_FAULT_BAD_REQUEST);
    assert_non_null(strstr(why, "perturbations.target[0] is longer than 159 bytes"));

    /* A name of 1025 bytes. */
    uint8_t name[3 + 3 + SCEN_NAME_MAX + 1] = {0x0a, 0x01, 't', 0x12, 0x81, 0x08};
    memset(name + 6, 'n', SCEN_NAME_MAX + 1);
    assert_int_equal(decode(name, sizeof(name), out, why, sizeof(why)), SCEN_FAULT_BAD_REQUEST);
    assert_non_null(strstr(why, "name is longer than 1024 bytes"));

    /* A sweep without parameters, and one with an unknown method. */
    static const uint8_t bare[] = {0x0a, 0x01, 't', 0x42, 0x00};
    assert_int_equal(decode(bare, sizeof(bare), out, why, sizeof(why)), SCEN_FAULT_BAD_REQUEST);
    assert_non_null(strstr(why, "sweep has no parameters"));
    static const uint8_t method[] = {0x0a, 0x01, 't',  0x42, 0x06, 0x08,
                                     0x07, 0x12, 0x02, 0x0a, 0x00};
    assert_int_equal(decode(method, sizeof(method), out, why, sizeof(why)), SCEN_FAULT_BAD_REQUEST);
    assert_non_null(strstr(why, "sweep.method 7 is not GRID, RANDOM or LATIN_HYPERCUBE"));
    scen_request_free(out);
    free(out);
}

static void sweep_values_are_capped_and_freed(void **state)
{
    (void)state;
    struct scen_request *r = request(), *out = calloc(1, sizeof(*out));
    assert_non_null(out);
    char why[256];
    double *many = calloc(SCN_MAX_VALUES + 1, sizeof(*many));
    assert_non_null(many);
    sweep(r, "demand.rate", many, SCN_MAX_VALUES + 1, "throughput");
    assert_int_equal(reencode(r, out, why, sizeof(why)), SCEN_FAULT_BAD_REQUEST);
    assert_non_null(strstr(why, "sweep.parameters[0] lists 1001 values (at most 1000)"));
    scen_request_free(out);
    /* The second parameter fails after the first was copied: scen_request_free releases it. */
    r->sweep.params[0].n_values = 3;
    r->sweep.n_params = 2;
    r->sweep.params[1] = r->sweep.params[0];
    r->sweep.params[1].n_values = SCN_MAX_VALUES + 1;
    assert_int_equal(reencode(r, out, why, sizeof(why)), SCEN_FAULT_BAD_REQUEST);
    assert_int_equal(out->sweep.params[0].n_values, 3);
    scen_request_free(out);
    assert_null(out->sweep.params[0].values);
    free(many);
    free(out);
    free(r);
}

static void requests_survive_an_encode_decode_round_trip(void **state)
{
    (void)state;
    struct scen_request *r = request(), *out = calloc(1, sizeof(*out));
    assert_non_null(out);
    snprintf(r->id, sizeof(r->id), "Round.trip_1-x");
    snprintf(r->name, sizeof(r->name), "caf\xc3\xa9 at 6 o'clock");
    struct scen_perturbation *p = add(r, SCEN_P_SUPPLIER_LATE, "steel_mill");
    p->start_ms = -7;
    p->duration_ms = INT64_MAX;
    p->delay_ms = INT64_MIN;
    p->count = UINT32_MAX;
    p->factor = -2.5;
    p->value = 1e300;
    add(r, 77, "anything");
    r->horizon_ms = 5 * D_MS;
    r->warmup_ms = H_MS;
    r->replications = 7;
    r->seed = UINT64_MAX;
    r->ignore_live = true;
    static const double values[] = {1, 2.5, NAN};
    sweep(r, "station.press.machines", values, 3, "cost");
    r->sweep.method = SCN_SWEEP_LHS;
    r->sweep.n_params = 2;
    snprintf(r->sweep.params[1].path, SCN_PATH_MAX, "demand.rate");
    r->sweep.params[1].min = 1;
    r->sweep.params[1].max = 9;
    r->sweep.params[1].step = 0.5;
    r->sweep.params[1].cost = 3;
    r->sweep.samples = 12;
    r->sweep.maximize = true;
    r->sweep.top = 4;
    r->sweep.n_constraints = 1;
    r->sweep.constraints[0] = (struct scn_constraint){.kpi = "wip", .has_max = true, .max = 8};
    char why[256];
    assert_int_equal(reencode(r, out, why, sizeof(why)), SCEN_FAULT_NONE);
    assert_string_equal(out->id, r->id);
    assert_string_equal(out->name, r->name);
    assert_int_equal(out->n_perturb, 2);
    assert_int_equal(out->perturb[0].kind, SCEN_P_SUPPLIER_LATE);
    assert_string_equal(out->perturb[0].target, "steel_mill");
    assert_true(out->perturb[0].start_ms == -7);
    assert_true(out->perturb[0].duration_ms == INT64_MAX);
    assert_true(out->perturb[0].delay_ms == INT64_MIN);
    assert_int_equal(out->perturb[0].count, UINT32_MAX);
    assert_true(out->perturb[0].factor == -2.5 && out->perturb[0].value == 1e300);
    assert_int_equal(out->perturb[1].kind, 77);
    assert_true(out->horizon_ms == 5 * D_MS && out->warmup_ms == H_MS);
    assert_int_equal(out->replications, 7);
    assert_true(out->seed == UINT64_MAX);
    assert_true(out->ignore_live && !out->cancel && out->has_sweep);
    const struct scn_sweep *w = &out->sweep;
    assert_int_equal(w->method, SCN_SWEEP_LHS);
    assert_int_equal(w->n_params, 2);
    assert_string_equal(w->params[0].path, "station.press.machines");
    assert_int_equal(w->params[0].n_values, 3);
    assert_ptr_not_equal(w->params[0].values, values); /* the decoder's own copy */
    assert_true(w->params[0].values[0] == 1 && w->params[0].values[1] == 2.5);
    assert_true(isnan(w->params[0].values[2]));
    assert_string_equal(w->params[1].path, "demand.rate");
    assert_true(w->params[1].min == 1 && w->params[1].max == 9);
    assert_true(w->params[1].step == 0.5 && w->params[1].cost == 3);
    assert_int_equal(w->samples, 12);
    assert_string_equal(w->objective, "cost");
    assert_true(w->maximize);
    assert_int_equal(w->top, 4);
    assert_int_equal(w->n_constraints, 1);
    assert_string_equal(w->constraints[0].kpi, "wip");
    assert_true(w->constraints[0].has_max && !w->constraints[0].has_min);
    assert_true(w->constraints[0].max == 8);
    scen_request_free(out);
    r->cancel = true;
    r->has_sweep = false;
    assert_int_equal(reencode(r, out, why, sizeof(why)), SCEN_FAULT_NONE);
    assert_true(out->cancel && !out->has_sweep);
    scen_request_free(out);
    free(out);
    free(r);
}

static void maintain_and_slow_survive_an_encode_decode_round_trip(void **state)
{
    (void)state;
    struct scen_request *r = request(), *out = calloc(1, sizeof(*out));
    assert_non_null(out);
    struct scen_perturbation *p = add(r, SCEN_P_MAINTAIN, "press-1");
    p->start_ms = 90 * 60 * 1000;
    p->duration_ms = 2 * H_MS;
    p = add(r, SCEN_P_SLOW, "paint");
    p->duration_ms = D_MS;
    p->factor = 0.75;
    p->value = 1.5;
    char why[256];
    assert_int_equal(reencode(r, out, why, sizeof(why)), SCEN_FAULT_NONE);
    assert_int_equal(out->n_perturb, 2);
    assert_int_equal(out->perturb[0].kind, SCEN_P_MAINTAIN);
    assert_string_equal(out->perturb[0].target, "press-1");
    assert_true(out->perturb[0].start_ms == 90 * 60 * 1000 &&
                out->perturb[0].duration_ms == 2 * H_MS);
    assert_int_equal(out->perturb[1].kind, SCEN_P_SLOW);
    assert_string_equal(out->perturb[1].target, "paint");
    assert_true(out->perturb[1].factor == 0.75 && out->perturb[1].value == 1.5);
    struct scn_spec *s = translate_ok(out);
    assert_int_equal(s->perturb[0].kind, SIM_PERTURB_MAINTAIN);
    assert_int_equal(s->perturb[1].kind, SIM_PERTURB_SLOW);
    assert_true(s->perturb[1].exponent == 1.5);
    scen_request_free(out);
    free(out);
    free(r);
}

/* ---- results ---------------------------------------------------------------------------- */

static struct scn_kpi kpi(const char *name, const char *unit, double base)
{
    struct scn_kpi k = {.unit = unit};
    snprintf(k.name, sizeof(k.name), "%s", name);
    k.base = (struct scn_estimate){base, base - 1, base + 1, 5};
    k.scen = (struct scn_estimate){base * 2, base * 2 - 1, base * 2 + 1, 5};
    k.diff = (struct scn_estimate){base, NAN, INFINITY, 4};
    return k;
}

static void assert_same_estimate(const struct scn_estimate *a, const struct scn_estimate *b)
{
    assert_true(a->mean == b->mean || (isnan(a->mean) && isnan(b->mean)));
    assert_true(a->lo == b->lo || (isnan(a->lo) && isnan(b->lo)));
    assert_true(a->hi == b->hi || (isnan(a->hi) && isnan(b->hi)));
    assert_int_equal(a->n, b->n);
}

static void assert_same_kpis(const struct scn_kpi *a, const struct scn_kpi *b, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        assert_string_equal(a[i].name, b[i].name);
        assert_string_equal(a[i].unit, b[i].unit);
        assert_same_estimate(&a[i].base, &b[i].base);
        assert_same_estimate(&a[i].scen, &b[i].scen);
        assert_same_estimate(&a[i].diff, &b[i].diff);
    }
}

/* A result of two KPIs and three variants over two sweep parameters. */
struct result_fixture {
    struct scn_kpi kpis[2];
    struct scn_kpi vkpis[3][2];
    struct scn_variant variants[3];
    struct scn_result r;
    struct scen_outcome o;
};

static void result_fixture(struct result_fixture *f)
{
    memset(f, 0, sizeof(*f));
    f->kpis[0] = kpi("throughput", "parts/h", 18.5);
    f->kpis[1] = kpi("station.press.utilisation", "1", 0.75);
    for (size_t v = 0; v < 3; v++) {
        f->vkpis[v][0] = kpi("throughput", "parts/h", 19.0 + (double)v);
        f->vkpis[v][1] = kpi("station.press.utilisation", "1", 0.5);
        f->variants[v] = (struct scn_variant){.values = {(double)v + 1, 10.0 * (double)v},
                                              .objective = 19.0 + (double)v,
                                              .cost = 100.0 * (double)v,
                                              .feasible = v != 1,
                                              .n_kpis = 2,
                                              .kpis = f->vkpis[v]};
    }
    f->r = (struct scn_result){.n_kpis = 2,
                               .kpis = f->kpis,
                               .n_variants = 3,
                               .variants = f->variants,
                               .variants_total = 12,
                               .variants_feasible = 8,
                               .events = 123456789};
    snprintf(f->o.id, sizeof(f->o.id), "res-1");
    f->o.name = "what if";
    f->o.status = SCEN_OK;
    f->o.error = "";
    f->o.r = &f->r;
    f->o.n_sweep_params = 2;
    f->o.sweep_params[0] = "station.press.machines";
    f->o.sweep_params[1] = "buffer.press_out.capacity";
    f->o.replications = 5;
    f->o.horizon_ms = 2 * D_MS;
    f->o.warmup_ms = H_MS;
    f->o.seed = 99;
    f->o.snapshot_ms = 1700000000000;
    f->o.wall_ms = 4321;
    f->o.finished_ms = 1700000004321;
}

static void results_survive_an_encode_decode_round_trip(void **state)
{
    (void)state;
    struct result_fixture f;
    result_fixture(&f);
    uint8_t *buf = NULL;
    size_t len = 0;
    assert_int_equal(scen_outcome_encode(&f.o, 0, &buf, &len), 0);
    struct scen_outcome back;
    assert_int_equal(scen_outcome_decode(buf, len, &back), 0);
    assert_string_equal(back.id, "res-1");
    assert_string_equal(back.name, "what if");
    assert_int_equal(back.status, SCEN_OK);
    assert_string_equal(back.error, "");
    assert_int_equal(back.n_sweep_params, 2);
    assert_string_equal(back.sweep_params[0], "station.press.machines");
    assert_string_equal(back.sweep_params[1], "buffer.press_out.capacity");
    assert_int_equal(back.replications, 5);
    assert_true(back.horizon_ms == 2 * D_MS && back.warmup_ms == H_MS && back.seed == 99);
    assert_true(back.snapshot_ms == 1700000000000 && back.wall_ms == 4321);
    assert_true(back.finished_ms == 1700000004321);
    assert_non_null(back.r);
    assert_int_equal(back.r->n_kpis, 2);
    assert_same_kpis(back.r->kpis, f.kpis, 2);
    assert_int_equal(back.r->n_variants, 3);
    assert_int_equal(back.r->variants_total, 12);
    assert_int_equal(back.r->variants_feasible, 8);
    assert_true(back.r->events == 123456789);
    for (size_t v = 0; v < 3; v++) {
        const struct scn_variant *a = &back.r->variants[v], *b = &f.variants[v];
        assert_true(a->values[0] == b->values[0] && a->values[1] == b->values[1]);
        assert_true(a->objective == b->objective && a->cost == b->cost);
        assert_int_equal(a->feasible, b->feasible);
        assert_int_equal(a->n_kpis, 2);
        assert_same_kpis(a->kpis, b->kpis, 2);
    }
    scen_outcome_free(&back);
    assert_null(back.r);
    free(buf);
}

static void error_results_carry_status_and_text(void **state)
{
    (void)state;
    static const int statuses[] = {SCEN_ERROR, SCEN_CANCELLED, SCEN_STATUS_UNSPECIFIED};
    for (size_t i = 0; i < sizeof(statuses) / sizeof(statuses[0]); i++) {
        struct scen_outcome o = {.id = "bad-1", .status = statuses[i]};
        o.error = "perturbations[0]: no supplier named 'acme'";
        uint8_t *buf = NULL;
        size_t len = 0;
        assert_int_equal(scen_outcome_encode(&o, 0, &buf, &len), 0);
        struct scen_outcome back;
        assert_int_equal(scen_outcome_decode(buf, len, &back), 0);
        assert_string_equal(back.id, "bad-1");
        assert_string_equal(back.name, "");
        assert_int_equal(back.status, statuses[i]);
        assert_string_equal(back.error, o.error);
        assert_int_equal(back.r->n_kpis, 0);
        assert_int_equal(back.r->n_variants, 0);
        scen_outcome_free(&back);
        free(buf);
    }
    assert_string_equal(scen_status_word(SCEN_OK), "ok");
    assert_string_equal(scen_status_word(SCEN_ERROR), "error");
    assert_string_equal(scen_status_word(SCEN_CANCELLED), "cancelled");
    assert_string_equal(scen_status_word(42), "unspecified");
}

static void oversized_results_are_trimmed_with_a_note(void **state)
{
    (void)state;
    struct result_fixture f;
    result_fixture(&f);
    uint8_t *buf = NULL;
    size_t full = 0, len = 0;
    assert_int_equal(scen_outcome_encode(&f.o, 0, &buf, &full), 0);
    free(buf);
    /* One byte too many: the variants after the first lose their KPIs. */
    assert_int_equal(scen_outcome_encode(&f.o, full - 1, &buf, &len), 0);
    assert_true(len <= full - 1);
    struct scen_outcome back;
    assert_int_equal(scen_outcome_decode(buf, len, &back), 0);
    assert_int_equal(back.status, SCEN_OK);
    assert_non_null(strstr(back.error, "note: result trimmed"));
    assert_null(strstr(back.error, "fewer variants"));
    assert_int_equal(back.r->n_kpis, 2);
    assert_int_equal(back.r->n_variants, 3);
    assert_int_equal(back.r->variants[0].n_kpis, 2);
    assert_int_equal(back.r->variants[1].n_kpis, 0);
    assert_int_equal(back.r->variants[2].n_kpis, 0);
    assert_true(back.r->variants[2].objective == 21.0);
    scen_outcome_free(&back);
    free(buf);
    /* Room for the recommendation and a note of 120 characters only: the other variants go. */
    struct result_fixture one;
    result_fixture(&one);
    one.r.n_variants = 1;
    one.o.error = "0123456789012345678901234567890123456789012345678901234567890123456789"
                  "01234567890123456789012345678901234567890123456789";
    assert_int_equal(scen_outcome_encode(&one.o, 0, &buf, &len), 0);
    free(buf);
    size_t cap = len;
    assert_int_equal(scen_outcome_encode(&f.o, cap, &buf, &len), 0);
    assert_true(len <= cap);
    assert_int_equal(scen_outcome_decode(buf, len, &back), 0);
    assert_non_null(strstr(back.error, "fewer variants returned"));
    assert_int_equal(back.r->n_variants, 1);
    assert_int_equal(back.r->variants[0].n_kpis, 2);
    assert_true(back.r->variants[0].objective == 19.0);
    assert_int_equal(back.r->variants_total, 12);
    scen_outcome_free(&back);
    free(buf);
    /* Far too small for anything: refused, nothing allocated. */
    buf = NULL;
    assert_int_equal(scen_outcome_encode(&f.o, 16, &buf, &len), TW_EINVAL);
    assert_null(buf);
}

static void garbage_results_do_not_decode(void **state)
{
    (void)state;
    struct scen_outcome back;
    static const uint8_t truncated[] = {0x0a, 0x09, 'x'};
    assert_int_equal(scen_outcome_decode(truncated, sizeof(truncated), &back), TW_EPROTO);
    assert_null(back.r);
    scen_outcome_free(&back); /* harmless after a failed decode */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(station_target_downs_every_machine),
        cmocka_unit_test(asset_id_target_downs_that_machine_only),
        cmocka_unit_test(supplier_late_delays_the_named_supplier),
        cmocka_unit_test(demand_factor_scales_the_demand_over_its_window),
        cmocka_unit_test(set_parameter_becomes_a_parameter_change),
        cmocka_unit_test(maintain_and_slow_target_like_machine_down),
        cmocka_unit_test(bad_maintain_and_slow_are_refused),
        cmocka_unit_test(times_are_converted_from_ms_to_s),
        cmocka_unit_test(zero_fields_take_the_service_defaults),
        cmocka_unit_test(requests_beyond_the_limits_are_refused_as_too_large),
        cmocka_unit_test(unknown_targets_are_refused),
        cmocka_unit_test(bad_times_are_refused),
        cmocka_unit_test(non_finite_and_negative_numbers_are_refused),
        cmocka_unit_test(unknown_kinds_are_refused),
        cmocka_unit_test(too_many_perturbations_are_refused),
        cmocka_unit_test(oversized_sweeps_are_refused),
        cmocka_unit_test(bad_objectives_and_constraints_are_refused),
        cmocka_unit_test(ids_must_be_1_to_64_safe_characters),
        cmocka_unit_test(undecodable_payloads_are_reported),
        cmocka_unit_test(oversized_messages_are_bad_requests_with_their_id),
        cmocka_unit_test(sweep_values_are_capped_and_freed),
        cmocka_unit_test(requests_survive_an_encode_decode_round_trip),
        cmocka_unit_test(maintain_and_slow_survive_an_encode_decode_round_trip),
        cmocka_unit_test(results_survive_an_encode_decode_round_trip),
        cmocka_unit_test(error_results_carry_status_and_text),
        cmocka_unit_test(oversized_results_are_trimmed_with_a_note),
        cmocka_unit_test(garbage_results_do_not_decode),
    };
    return cmocka_run_group_tests(tests, load_demo, free_demo);
}
