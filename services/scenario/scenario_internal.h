/* SPDX-License-Identifier: Apache-2.0 */
/* What the files of the scenario layer share: error reporting, the state of one scn_run (its
 * replications and their results) and the functions each file offers the others:
 * scenario_params.c (parameter paths), scenario_sweep.c (variants and ranking) and scenario.c
 * (spec check, statistics, the thread pool). */
#ifndef TWIN_SCENARIO_SCENARIO_INTERNAL_H
#define TWIN_SCENARIO_SCENARIO_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "scenario.h"

/* Writes a reason into err (may be NULL) and returns -1. */
int scn_fail(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* One scn_run as its workers share it: the configs (baseline, scenario, variants), the next
 * task to take, and every replication's KPIs. */
struct job_set {
    const struct sim_plant *base;   /* the baseline plant */
    const struct sim_plant *scen;   /* the scenario plant (base + sets) */
    const struct scn_spec *spec;
    size_t n_kpi;
    size_t n_configs;               /* 0 baseline, 1 scenario, 2.. variants */
    bool same_scenario;             /* no perturbation and no change: config 1 = config 0 */
    size_t n_tasks;                 /* replications of every config that runs */
    const double *values;           /* variant values, n_params per variant */
    double *out;                    /* [config][rep][kpi] */
    atomic_size_t next, done;
    atomic_ullong events;
    atomic_int error;
    const volatile int *cancel;
    scn_progress_fn progress;
    void *arg;
    double t0;
    char err[256];
    pthread_mutex_t err_lock;
};

/* scenario_params.c: whether path names an integer parameter (rounded values). */
bool scn_param_path_int(const struct sim_plant *p, const char *path);

/* scenario_sweep.c: the values of a sweep's variants, and their ranking into res. */
void scn_make_variants(const struct sim_plant *p, const struct scn_sweep *s, uint64_t seed,
                       size_t n, double *values);
int scn_rank_variants(const struct job_set *js, const struct sim_plant *p,
                      struct scn_result *res);

/* scenario.c: the estimate of x[0..n) (stride apart), and the KPIs of config cfg. */
struct scn_estimate scn_estimate_of(const double *x, size_t n, size_t stride);
int scn_fill_kpis(const struct job_set *js, const struct sim_plant *p, size_t cfg,
                  struct scn_kpi **out);

#endif
