/* SPDX-License-Identifier: Apache-2.0 */
/* Scenarios and sweeps on top of the engine: parameter changes, replications with common random
 * numbers, 95 % intervals, variants run on every core and ranked. Pure: no I/O. */
#ifndef TWIN_SCENARIO_SCENARIO_H
#define TWIN_SCENARIO_SCENARIO_H

/*
 * A run has a baseline (the plant as given: the live snapshot applied, nothing else) and a
 * scenario (the baseline with the parameter changes and perturbations). Replication r of both
 * uses the same seed, so the difference scenario − baseline is estimated from paired
 * replications and its interval is much narrower than the two intervals suggest.
 *
 * Intervals: mean ± t(0.975, n−1)·s/√n over replications (KPIs that are NaN in a replication
 * are left out of that KPI's estimate; n < 2 gives lo = hi = mean).
 *
 * A sweep runs variants of the scenario: each variant sets the sweep's parameters to one point
 * (a grid over listed values or min..max steps, or `samples` random or Latin-hypercube points).
 * Every variant runs `replications` replications with the same seeds as the baseline. Variants
 * whose KPI means break a constraint are infeasible; the feasible ones are ranked by the
 * objective KPI's mean (ties: lower cost first), and the best `top` are returned with their
 * KPIs. The first of them is the recommendation.
 *
 * Parameters are addressed by path (times in seconds, rates per hour):
 *   station.<name>.machines | .staff | .cycle_time (mean) | .setup_time (mean) | .mtbf | .mttr
 *                   | .scrap
 *   buffer.<name>.capacity | .initial
 *   stock.<name>.initial
 *   supplier.<name>.lot | .reorder | .lead_time (mean) | .reliability | .period
 *   demand.rate | demand.due
 * Integer parameters (machines, staff, capacity, initial of a buffer) take rounded values.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "plant.h"
#include "sim.h"

#define SCN_PATH_MAX        160u
#define SCN_MAX_PERTURB     64u
#define SCN_MAX_SETS        64u
#define SCN_MAX_SWEEP_PARAMS 8u
#define SCN_MAX_VALUES      1000u  /* listed values per sweep parameter */
#define SCN_MAX_VARIANTS    100000u
#define SCN_MAX_CONSTRAINTS 16u
#define SCN_MAX_REPLICATIONS 10000u

/* Checks that path names an existing parameter of p and value is allowed there. Returns 0, or
 * -1 with a reason in err. Pure. */
int scn_param_check(const struct sim_plant *p, const char *path, double value, char *err,
                    size_t errlen);

/* Sets a parameter of p (after scn_param_check). Returns 0 or -1 with a reason. Pure. */
int scn_param_apply(struct sim_plant *p, const char *path, double value, char *err,
                    size_t errlen);

/* The current value of a parameter, or NAN when the path is unknown. Pure. */
double scn_param_get(const struct sim_plant *p, const char *path);

struct scn_set {
    char path[SCN_PATH_MAX];
    double value;
};

enum scn_sweep_method {
    SCN_SWEEP_GRID = 0,
    SCN_SWEEP_RANDOM,
    SCN_SWEEP_LHS,
};

struct scn_range {
    char path[SCN_PATH_MAX];
    size_t n_values;       /* > 0: these values (GRID only) */
    double *values;
    double min, max, step; /* n_values == 0: GRID steps min, min+step, … ≤ max; RANDOM/LHS draw
                            * uniformly in [min, max] */
    double cost;           /* cost per unit of this parameter (variant cost = Σ cost·value) */
};

struct scn_constraint {
    char kpi[SCN_PATH_MAX]; /* a KPI name, or "cost" */
    bool has_min, has_max;
    double min, max;
};

struct scn_sweep {
    enum scn_sweep_method method;
    size_t n_params;
    struct scn_range params[SCN_MAX_SWEEP_PARAMS];
    uint32_t samples;       /* RANDOM, LHS: number of variants */
    char objective[SCN_PATH_MAX]; /* a KPI name, or "cost" */
    bool maximize;
    size_t n_constraints;
    struct scn_constraint constraints[SCN_MAX_CONSTRAINTS];
    uint32_t top;           /* variants returned, best first (default 10) */
};

struct scn_spec {
    double horizon, warmup;  /* seconds */
    uint32_t replications;
    uint64_t seed;
    size_t n_perturb;
    struct sim_perturb perturb[SCN_MAX_PERTURB];
    size_t n_sets;
    struct scn_set sets[SCN_MAX_SETS];
    bool has_sweep;
    struct scn_sweep sweep;
    uint64_t max_events;     /* per replication; 0 = no cap. A run that reaches it fails with
                              * SIM_ELIMIT (a guard against event floods, e.g. absurd rates) */
};

/* The number of variants of a sweep: the grid's size (SCN_MAX_VARIANTS + 1 when larger) or
 * `samples`. The one count the run, the checks and the service's work estimate all use. */
size_t scn_variant_count(const struct scn_sweep *s);

/* Validates a spec against a plant (perturbation targets, parameter paths and values,
 * horizon, replications, sweep size ≤ SCN_MAX_VARIANTS, objective and constraint KPIs, and
 * every sweep variant applied to the plant), so that a checked spec runs. Returns 0 or -1
 * with a reason in err. Pure. */
int scn_spec_check(const struct sim_plant *p, const struct scn_spec *s, char *err,
                   size_t errlen);

struct scn_estimate {
    double mean, lo, hi; /* 95 % interval */
    uint32_t n;          /* replications that had a value */
};

struct scn_kpi {
    char name[SCN_PATH_MAX];
    const char *unit;
    struct scn_estimate base, scen, diff; /* diff = scenario − baseline, paired */
};

struct scn_variant {
    double values[SCN_MAX_SWEEP_PARAMS]; /* the sweep parameters, in sweep order */
    double objective;                    /* the objective's mean */
    double cost;
    bool feasible;
    size_t n_kpis;
    struct scn_kpi *kpis;                /* base = the baseline, scen = this variant */
};

struct scn_result {
    size_t n_kpis;
    struct scn_kpi *kpis;       /* the scenario against the baseline (without a sweep: the
                                 * scenario itself; with one: the scenario before the sweep) */
    size_t n_variants;          /* returned, best first */
    struct scn_variant *variants;
    uint32_t variants_total, variants_feasible;
    uint64_t events;            /* events processed, every replication of every run */
    uint64_t replications_run;
};

void scn_result_free(struct scn_result *r);

/* Progress: fraction done in [0, 1] and estimated seconds left (< 0: unknown yet). Called from
 * worker threads, at most once per replication finished; keep it cheap and thread-safe. */
typedef void (*scn_progress_fn)(void *arg, double fraction, double eta_s);

/* Runs a checked spec on `threads` threads (0 = one per online CPU). cancel (may be NULL) is
 * polled; when it becomes non-zero the run stops and returns SIM_ECANCEL. Returns 0 with *out
 * set, or a SIM_E* code with a reason in err. */
int scn_run(const struct sim_plant *p, const struct scn_spec *s, unsigned threads,
            const volatile int *cancel, scn_progress_fn progress, void *arg,
            struct scn_result **out, char *err, size_t errlen);

#endif
