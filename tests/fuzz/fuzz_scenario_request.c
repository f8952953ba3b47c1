/* SPDX-License-Identifier: Apache-2.0 */
/* libFuzzer target: a ScenarioRequest off the wire must decode, re-encode, translate against the
 * demo plant, run (capped to a tiny size) and come back as a ScenarioResult that round-trips,
 * or be refused with a reason, never crash, leak or corrupt what it was given (the same bytes
 * also go to the result, progress and Rejected decoders). */
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_check.h"
#include "plant.h"
#include "plant_json.h"
#include "scenario.h"
#include "scenario_internal.h"
#include "twin/err.h"
#include "twin/model.h"
#include "wire.h"

#ifndef TW_DEMO_PLANT
#error "TW_DEMO_PLANT must name deploy/plant.json (tests/fuzz/CMakeLists.txt sets it)"
#endif

/* What a fuzzed spec may run: an hour, two replications (so intervals are computed), a few
 * variants and a bounded number of events, so that every input stays fast while the engine
 * still sees fuzzed perturbations, parameter changes and sweep values. The event cap matters:
 * zero failure and repair times make a run that never advances its clock. */
#define RUN_HORIZON_S    3600.0
#define RUN_MAX_REPS     2u
#define RUN_MAX_VARIANTS 4u
#define RUN_MAX_EVENTS   20000u
#define WHY_MAX          512u

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct tw_model *g_model;
static struct sim_plant *g_plant;

/* The service's defaults (services/scenario/main.c). */
static const struct scen_limits g_limits = {
    .default_horizon_ms = 7 * 86400000LL,
    .default_warmup_ms = 0,
    .default_replications = 20,
    .max_replications = 1000,
    .max_horizon_ms = 366 * 86400000LL,
    .max_work_hours = 2e7,
};

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    struct tw_model_errors errs = {0};
    int rc = tw_model_load_file(TW_DEMO_PLANT, &g_model, &errs);
    if (rc == 0)
        rc = sim_plant_load_file(TW_DEMO_PLANT, g_model, &g_plant, &errs);
    if (rc != 0 || !g_plant) {
        fprintf(stderr, "fuzz_scenario_request: cannot load %s (%s)\n", TW_DEMO_PLANT,
                tw_strerror(rc));
        exit(1);
    }
    tw_model_errors_free(&errs);
    return 0;
}

/* Doubles compared by their bits, so NaN payloads must survive a round trip too; but -0 may
 * come back as 0 (protobuf-c leaves out a proto3 double that compares equal to 0). */
static bool same_double(double a, double b)
{
    return (a == 0 && b == 0) || memcmp(&a, &b, sizeof(a)) == 0;
}

static void check_same_perturbation(const struct scen_perturbation *a,
                                    const struct scen_perturbation *b)
{
    CHECK(a->kind == b->kind);
    CHECK(strcmp(a->target, b->target) == 0);
    CHECK(a->start_ms == b->start_ms && a->duration_ms == b->duration_ms);
    CHECK(a->delay_ms == b->delay_ms && a->count == b->count);
    CHECK(same_double(a->factor, b->factor) && same_double(a->value, b->value));
}

static void check_same_sweep(const struct scn_sweep *a, const struct scn_sweep *b)
{
    CHECK(a->method == b->method && a->n_params == b->n_params);
    CHECK(a->samples == b->samples && a->maximize == b->maximize && a->top == b->top);
    CHECK(strcmp(a->objective, b->objective) == 0);
    for (size_t i = 0; i < a->n_params; i++) {
        const struct scn_range *x = &a->params[i], *y = &b->params[i];
        CHECK(strcmp(x->path, y->path) == 0 && x->n_values == y->n_values);
        for (size_t k = 0; k < x->n_values; k++)
            CHECK(same_double(x->values[k], y->values[k]));
        CHECK(same_double(x->min, y->min) && same_double(x->max, y->max));
        CHECK(same_double(x->step, y->step) && same_double(x->cost, y->cost));
    }
    CHECK(a->n_constraints == b->n_constraints);
    for (size_t i = 0; i < a->n_constraints; i++) {
        const struct scn_constraint *x = &a->constraints[i], *y = &b->constraints[i];
        CHECK(strcmp(x->kpi, y->kpi) == 0);
        CHECK(x->has_min == y->has_min && x->has_max == y->has_max);
        CHECK(same_double(x->min, y->min) && same_double(x->max, y->max));
    }
}

/* A decoded request encodes into a message that decodes into the same request. */
static void check_request_round_trip(const struct scen_request *req)
{
    uint8_t *buf = NULL;
    size_t len = 0;
    char why[WHY_MAX] = "";
    CHECK(scen_request_encode(req, &buf, &len) == 0);
    struct scen_request *again = calloc(1, sizeof(*again));
    CHECK(again != NULL);
    CHECK(scen_request_decode(buf, len, again, why, sizeof(why)) == SCEN_FAULT_NONE);
    CHECK(strcmp(req->id, again->id) == 0 && strcmp(req->name, again->name) == 0);
    CHECK(req->n_perturb == again->n_perturb);
    for (size_t i = 0; i < req->n_perturb; i++)
        check_same_perturbation(&req->perturb[i], &again->perturb[i]);
    CHECK(req->horizon_ms == again->horizon_ms && req->warmup_ms == again->warmup_ms);
    CHECK(req->replications == again->replications && req->seed == again->seed);
    CHECK(req->ignore_live == again->ignore_live && req->cancel == again->cancel);
    CHECK(req->has_sweep == again->has_sweep);
    if (req->has_sweep)
        check_same_sweep(&req->sweep, &again->sweep);
    scen_request_free(again);
    free(again);
    free(buf);
}

/* What a spec that passed the translation promises the service. */
static void check_spec(const struct scen_request *req, const struct scn_spec *spec)
{
    char why[WHY_MAX] = "";
    CHECK(spec->horizon > 0 && spec->horizon * 1000.0 <= (double)g_limits.max_horizon_ms);
    CHECK(spec->warmup >= 0 && spec->warmup < spec->horizon);
    CHECK(spec->replications >= 1 && spec->replications <= g_limits.max_replications);
    CHECK(spec->seed == req->seed);
    CHECK(spec->n_perturb + spec->n_sets == req->n_perturb);
    CHECK(spec->has_sweep == req->has_sweep);
    CHECK(!spec->has_sweep || (spec->sweep.top >= 1 && spec->sweep.top <= SCEN_MAX_TOP));
    CHECK(scen_spec_work_hours(spec) <= g_limits.max_work_hours);
    CHECK(scen_spec_runs(spec) >= 2);
    /* The service checks the spec again against its snapshot-updated plant copy. */
    CHECK(scn_spec_check(g_plant, spec, why, sizeof(why)) == 0);
}

/* At most two points per sweep parameter for the first two, one for the rest: at most four
 * grid variants, every value still one the check accepted (a bound or a listed value). */
static void cap_grid(struct scn_sweep *w)
{
    for (size_t k = 0; k < w->n_params; k++) {
        struct scn_range *r = &w->params[k];
        size_t keep = k < 2 ? 2 : 1;
        if (r->n_values > keep)
            r->n_values = keep;
        if (r->n_values == 0)
            r->max = k < 2 && r->min + r->step <= r->max ? r->min + r->step : r->min;
    }
}

/* The spec made tiny (see RUN_*); false when it cannot be shrunk enough. The variants are
 * counted as scn_run counts them (scn_variant_count): request.c's scen_spec_variants rounds
 * grid ranges differently and can count fewer. */
static bool cap_spec(struct scn_spec *s)
{
    if (s->horizon > RUN_HORIZON_S) {
        s->horizon = RUN_HORIZON_S;
        if (s->warmup >= s->horizon)
            s->warmup = 0;
    }
    if (s->replications > RUN_MAX_REPS)
        s->replications = RUN_MAX_REPS;
    s->max_events = RUN_MAX_EVENTS;
    if (!s->has_sweep)
        return true;
    if (s->sweep.method != SCN_SWEEP_GRID) {
        if (s->sweep.samples > RUN_MAX_VARIANTS)
            s->sweep.samples = RUN_MAX_VARIANTS;
    } else if (scn_variant_count(&s->sweep) > RUN_MAX_VARIANTS) {
        cap_grid(&s->sweep);
    }
    return scn_variant_count(&s->sweep) <= RUN_MAX_VARIANTS;
}

/* The outcome decodes into the same id, status, error and KPIs; a trimmed one keeps the
 * scenario's KPIs and the recommendation's, and fewer or as many variants in the same order. */
static void check_outcome(const struct scen_outcome *o, const uint8_t *buf, size_t len,
                          bool trimmed)
{
    struct scen_outcome back;
    CHECK(scen_outcome_decode(buf, len, &back) == 0);
    CHECK(strcmp(back.id, o->id) == 0 && back.status == o->status);
    CHECK(strcmp(back.name, o->name) == 0);
    CHECK(strcmp(back.error, o->error) == 0 || (trimmed && strncmp(back.error, "note:", 5) == 0));
    CHECK(back.replications == o->replications && back.seed == o->seed);
    CHECK(back.horizon_ms == o->horizon_ms && back.warmup_ms == o->warmup_ms);
    CHECK(back.n_sweep_params == o->n_sweep_params);
    for (size_t i = 0; i < o->n_sweep_params; i++)
        CHECK(strcmp(back.sweep_params[i], o->sweep_params[i]) == 0);
    size_t n_kpis = o->r ? o->r->n_kpis : 0, n_var = o->r ? o->r->n_variants : 0;
    CHECK(back.r != NULL && back.r->n_kpis == n_kpis);
    CHECK(trimmed ? back.r->n_variants <= n_var && (n_var == 0 || back.r->n_variants >= 1)
                  : back.r->n_variants == n_var);
    for (size_t i = 0; i < n_kpis; i++) {
        CHECK(strcmp(back.r->kpis[i].name, o->r->kpis[i].name) == 0);
        CHECK(same_double(back.r->kpis[i].diff.mean, o->r->kpis[i].diff.mean));
    }
    for (size_t i = 0; i < back.r->n_variants; i++) {
        const struct scn_variant *v = &back.r->variants[i], *w = &o->r->variants[i];
        CHECK(same_double(v->objective, w->objective) && v->feasible == w->feasible);
        CHECK(v->n_kpis == (trimmed && i > 0 ? 0 : w->n_kpis));
    }
    scen_outcome_free(&back);
}

/* Encodes the outcome whole, then capped one byte below that (the trimming path, which may
 * also find that nothing fits), decoding what it gives. */
static void check_outcome_encoding(const struct scen_outcome *o)
{
    uint8_t *buf = NULL;
    size_t len = 0;
    CHECK(scen_outcome_encode(o, 0, &buf, &len) == 0);
    check_outcome(o, buf, len, false);
    free(buf);
    buf = NULL;
    size_t cap = len > 1 ? len - 1 : 1;
    int rc = scen_outcome_encode(o, cap, &buf, &len);
    CHECK(rc == 0 || rc == TW_EINVAL);
    if (rc == 0) {
        CHECK(len <= cap);
        check_outcome(o, buf, len, true);
    }
    free(buf);
}

static void outcome_init(struct scen_outcome *o, const struct scen_request *req,
                         const struct scn_spec *spec)
{
    memset(o, 0, sizeof(*o));
    memcpy(o->id, req->id, sizeof(o->id));
    o->name = req->name;
    o->replications = spec->replications;
    o->horizon_ms = (int64_t)llround(spec->horizon * 1000.0);
    o->warmup_ms = (int64_t)llround(spec->warmup * 1000.0);
    o->seed = spec->seed;
    o->n_sweep_params = spec->has_sweep ? spec->sweep.n_params : 0;
    for (size_t i = 0; i < o->n_sweep_params; i++)
        o->sweep_params[i] = spec->sweep.params[i].path;
}

/* A tiny run of the translated spec, its result encoded and decoded. */
static void run_spec(const struct scen_request *req, const struct scn_spec *checked)
{
    struct scn_spec *spec = malloc(sizeof(*spec));
    CHECK(spec != NULL);
    *spec = *checked; /* shares the request's sweep value arrays; only counts change */
    if (!cap_spec(spec)) {
        free(spec);
        return;
    }
    char err[WHY_MAX] = "";
    /* Capping changes a sampled sweep's points, and the check applies every variant: a capped
     * spec may clash where the request did not. Such a spec is not run. */
    if (scn_spec_check(g_plant, spec, err, sizeof(err)) != 0) {
        CHECK(spec->has_sweep && err[0] != '\0');
        free(spec);
        return;
    }
    /* The shift calendar runs on the absolute clock: start at a fuzzed time of day. */
    g_plant->epoch = 1700000000.0 + (double)(req->seed % 86400u);
    struct scn_result *res = NULL;
    int rc = scn_run(g_plant, spec, 1, NULL, NULL, NULL, &res, err, sizeof(err));
    g_plant->epoch = 0;
    /* A checked spec runs: scn_spec_check applies every sweep variant (the fuzzer once found
     * infinite grid steps, Latin hypercubes overflowing near DBL_MAX, and variants removing a
     * machine a MACHINE_DOWN names, all accepted and then failing in the run). */
    CHECK(rc == 0 || rc == SIM_ELIMIT);
    CHECK((rc == 0) == (res != NULL));
    CHECK(rc == 0 || err[0] != '\0');
    struct scen_outcome o;
    outcome_init(&o, req, spec);
    o.status = rc == 0 ? SCEN_OK : SCEN_ERROR;
    o.error = rc == 0 ? "" : err;
    o.r = res;
    if (res) {
        CHECK(res->n_kpis == sim_kpi_count(g_plant));
        CHECK(res->n_variants <= spec->sweep.top && res->n_variants <= RUN_MAX_VARIANTS);
        CHECK(res->variants_feasible <= res->variants_total);
    }
    check_outcome_encoding(&o);
    scn_result_free(res);
    free(spec);
}

/* A refused request: the error result the service sends for it. */
static void refuse(const struct scen_request *req, const char *why)
{
    struct scen_outcome o;
    memset(&o, 0, sizeof(o));
    memcpy(o.id, req->id, sizeof(o.id));
    o.name = req->name;
    o.status = SCEN_ERROR;
    o.error = why;
    check_outcome_encoding(&o);
}

static void translate(struct scen_request *req)
{
    char why[WHY_MAX] = "";
    bool too_large = false;
    if (req->seed == 0)
        req->seed = 1; /* the service picks one before translating */
    struct scn_spec *spec = malloc(sizeof(*spec));
    CHECK(spec != NULL);
    int rc = scen_request_to_spec(req, g_plant, &g_limits, spec, &too_large, why, sizeof(why));
    CHECK(rc == 0 || rc == TW_EINVAL);
    if (rc == 0) {
        CHECK(!too_large);
        check_spec(req, spec);
        run_spec(req, spec);
    } else {
        CHECK(why[0] != '\0');
        refuse(req, why);
    }
    free(spec);
}

/* The same bytes as the other scenario messages twinctl reads off the broker: each decodes
 * or fails cleanly, and a decoded result keeps its arrays within their caps. */
static void decode_others(const uint8_t *data, size_t size)
{
    struct scen_outcome o;
    if (scen_outcome_decode(data, size, &o) == 0) {
        CHECK(o.r != NULL && o.n_sweep_params <= SCN_MAX_SWEEP_PARAMS);
        CHECK(o.name != NULL && o.error != NULL);
        for (size_t i = 0; i < o.r->n_variants; i++)
            CHECK(o.r->variants[i].n_kpis == 0 || o.r->variants[i].kpis != NULL);
        scen_outcome_free(&o);
    }
    struct scen_progress pr;
    if (scen_progress_decode(data, size, &pr) == 0)
        CHECK(strlen(pr.id) <= SCEN_ID_MAX);
    struct scen_rejected rj;
    if (scen_rejected_decode(data, size, &rj) == 0)
        CHECK(rj.head_len <= sizeof(rj.head) && strlen(rj.detail) < sizeof(rj.detail));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    decode_others(data, size);
    struct scen_request *req = malloc(sizeof(*req));
    CHECK(req != NULL);
    char why[WHY_MAX] = "";
    enum scen_fault fault = scen_request_decode(data, size, req, why, sizeof(why));
    CHECK(fault >= SCEN_FAULT_NONE && fault <= SCEN_FAULT_BAD_REQUEST);
    CHECK(fault == SCEN_FAULT_NONE || why[0] != '\0');
    if (fault == SCEN_FAULT_NONE || fault == SCEN_FAULT_BAD_REQUEST)
        CHECK(scen_valid_id(req->id));
    if (fault == SCEN_FAULT_BAD_REQUEST)
        refuse(req, why);
    if (fault == SCEN_FAULT_NONE) {
        check_request_round_trip(req);
        if (!req->cancel)
            translate(req);
    }
    scen_request_free(req);
    free(req);
    return 0;
}
