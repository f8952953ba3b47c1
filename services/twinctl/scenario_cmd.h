/* SPDX-License-Identifier: Apache-2.0 */
/* The options of `twinctl scenario run`, parsed by scenario_opts.c and used by scenario_cmd.c. */
#ifndef TWINCTL_SCENARIO_CMD_H
#define TWINCTL_SCENARIO_CMD_H

#include "twinctl.h"

#define CTL_MAX_COSTS (2 * SCN_MAX_SWEEP_PARAMS)

struct ctl_cost {
    char path[SCN_PATH_MAX];
    double weight;
};

struct run_opts {
    struct scen_request req;        /* the request to send; owns the sweep's value arrays */
    struct scen_perturbation *last; /* the disruption --at/--for/--by/--count belong to */
    bool json, all, quiet;
    bool sampled;         /* --lhs or --random given */
    bool direction_given; /* --maximize or --minimize given */
    int64_t timeout_ms;
    size_t n_costs;
    struct ctl_cost costs[CTL_MAX_COSTS];
    const char *model_path; /* --model, for --at shift (default TWIN_MODEL) */
};

/* A perturbation's start_ms after `--at shift`, until ctl_resolve_at_shift replaces it. */
#define CTL_AT_SHIFT INT64_MIN

/* Parses the words after `scenario run` into *o (a default id and name are made up when not
 * given). 0, or CTL_EXIT_USAGE with the reason printed. Release o->req with scen_request_free
 * in any case. */
int ctl_run_opts_parse(struct run_opts *o, int argc, char **argv);

/* scenario_shift.c: milliseconds from now_s (Unix seconds) to the next start of a shift of the
 * calendar (0 while a shift is on, or without a calendar). */
struct sim_shifts;
int64_t ctl_ms_to_next_shift(const struct sim_shifts *sh, double now_s);
/* Gives every `--at shift` disruption of o the time to the next shift of the plant model
 * (--model or TWIN_MODEL). 0, or CTL_EXIT_USAGE with the reason printed. Reads the file. */
int ctl_resolve_at_shift(struct run_opts *o);

#endif
