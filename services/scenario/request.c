/* SPDX-License-Identifier: Apache-2.0 */
/* A ScenarioRequest as the operator wrote it (names, milliseconds) turned into a checked
 * scn_spec for the plant: targets resolved, defaults applied, size limits enforced. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "twin/err.h"
#include "wire.h"

#define MS_PER_S    1000.0
#define S_PER_H     3600.0
#define DEFAULT_TOP 10u

/* The station and machine a MACHINE_DOWN, MAINTAIN or SLOW target names: a station (machine
 * -1: all of them) or the asset id of one machine. */
static bool find_machine(const struct sim_plant *p, const char *target, int *station, int *machine)
{
    *station = sim_plant_station(p, target);
    *machine = -1;
    if (*station >= 0)
        return true;
    for (uint32_t s = 0; s < p->n_stations; s++) {
        const struct sim_station *st = &p->stations[s];
        for (uint32_t m = 0; m < st->machines && m < SIM_MAX_MACHINES; m++) {
            if (st->machine_asset[m][0] && strcmp(st->machine_asset[m], target) == 0) {
                *station = (int)s;
                *machine = (int)m;
                return true;
            }
        }
    }
    return false;
}

static int check_times(const struct scen_perturbation *in, size_t i, double horizon_s, char *why,
                       size_t whylen)
{
    if (in->start_ms < 0)
        return tw_fail(why, whylen, "perturbations[%zu].start_ms must not be negative", i);
    if ((double)in->start_ms / MS_PER_S >= horizon_s)
        return tw_fail(why, whylen,
                       "perturbations[%zu] starts at %.6g h, at or after the end of the horizon "
                       "(%.6g h)",
                       i, (double)in->start_ms / MS_PER_S / S_PER_H, horizon_s / S_PER_H);
    if (in->duration_ms < 0)
        return tw_fail(why, whylen,
                       "perturbations[%zu].duration_ms must not be negative (0: until the end)", i);
    return 0;
}

static int add_set(const struct scen_perturbation *in, size_t i, struct scn_spec *spec, char *why,
                   size_t whylen)
{
    if (spec->n_sets == SCN_MAX_SETS)
        return tw_fail(why, whylen, "too many SET_PARAMETER perturbations (at most %u)",
                       SCN_MAX_SETS);
    if (in->start_ms != 0)
        return tw_fail(why, whylen,
                       "perturbations[%zu]: SET_PARAMETER applies from the start (start_ms 0)", i);
    if (!isfinite(in->value))
        return tw_fail(why, whylen, "perturbations[%zu].value must be a finite number", i);
    struct scn_set *set = &spec->sets[spec->n_sets++];
    snprintf(set->path, sizeof(set->path), "%s", in->target);
    set->value = in->value;
    return 0;
}

/* MACHINE_DOWN, MAINTAIN and SLOW: a station or one machine, and their own values. */
static int machine_perturbation(const struct scen_perturbation *in, size_t i,
                                const struct sim_plant *p, struct sim_perturb *d, char *why,
                                size_t whylen)
{
    if (in->kind == SCEN_P_MACHINE_DOWN) {
        d->kind = SIM_PERTURB_DOWN;
    } else if (in->kind == SCEN_P_MAINTAIN) {
        d->kind = SIM_PERTURB_MAINTAIN;
        if (in->duration_ms <= 0)
            return tw_fail(why, whylen,
                           "perturbations[%zu].duration_ms must be > 0 for MAINTAIN (how long "
                           "the machine is down for it)",
                           i);
    } else {
        d->kind = SIM_PERTURB_SLOW;
        if (!isfinite(in->factor) || !(in->factor > 0) || in->factor > 1)
            return tw_fail(why, whylen,
                           "perturbations[%zu].factor must be a speed in (0, 1] for SLOW (0.8: "
                           "80 %% of nominal)",
                           i);
        if (!isfinite(in->value) || in->value < 0 || in->value > SIM_MAX_WEAR_EXPONENT)
            return tw_fail(why, whylen,
                           "perturbations[%zu].value (the wear exponent) must be from 0 to %g "
                           "for SLOW",
                           i, SIM_MAX_WEAR_EXPONENT);
        d->factor = in->factor;
        d->exponent = in->value;
    }
    if (!find_machine(p, in->target, &d->station, &d->machine))
        return tw_fail(why, whylen,
                       "perturbations[%zu]: no station and no machine asset named '%.64s'", i,
                       in->target);
    return 0;
}

/* One perturbation of the request into the spec. */
static int add_perturbation(const struct scen_perturbation *in, size_t i, const struct sim_plant *p,
                            struct scn_spec *spec, char *why, size_t whylen)
{
    if (in->kind == SCEN_P_SET_PARAMETER)
        return add_set(in, i, spec, why, whylen);
    if (spec->n_perturb == SCN_MAX_PERTURB)
        return tw_fail(why, whylen, "too many perturbations besides SET_PARAMETER (at most %u)",
                       SCN_MAX_PERTURB);
    if (check_times(in, i, spec->horizon, why, whylen) < 0)
        return TW_EINVAL;
    struct sim_perturb d = {.start = (double)in->start_ms / MS_PER_S,
                            .duration = (double)in->duration_ms / MS_PER_S,
                            .station = -1,
                            .machine = -1,
                            .supplier = -1};
    switch (in->kind) {
    case SCEN_P_MACHINE_DOWN:
    case SCEN_P_MAINTAIN:
    case SCEN_P_SLOW:
        if (machine_perturbation(in, i, p, &d, why, whylen) < 0)
            return TW_EINVAL;
        break;
    case SCEN_P_SUPPLIER_LATE:
        d.kind = SIM_PERTURB_SUPPLIER_LATE;
        d.supplier = sim_plant_supplier(p, in->target);
        if (d.supplier < 0)
            return tw_fail(why, whylen, "perturbations[%zu]: no supplier named '%.64s'", i,
                           in->target);
        if (in->delay_ms <= 0)
            return tw_fail(why, whylen, "perturbations[%zu].delay_ms must be > 0", i);
        d.delay = (double)in->delay_ms / MS_PER_S;
        d.count = in->count ? in->count : 1;
        break;
    case SCEN_P_DEMAND_FACTOR:
        d.kind = SIM_PERTURB_DEMAND;
        if (!isfinite(in->factor) || in->factor < 0)
            return tw_fail(why, whylen, "perturbations[%zu].factor must be a number >= 0", i);
        d.factor = in->factor;
        break;
    default:
        return tw_fail(why, whylen,
                       "perturbations[%zu].kind %d is not MACHINE_DOWN, SUPPLIER_LATE, "
                       "DEMAND_FACTOR, SET_PARAMETER, MAINTAIN or SLOW",
                       i, in->kind);
    }
    spec->perturb[spec->n_perturb++] = d;
    return 0;
}

static int spec_times(const struct scen_request *req, const struct scen_limits *lim,
                      struct scn_spec *spec, bool *too_large, char *why, size_t whylen)
{
    int64_t horizon = req->horizon_ms ? req->horizon_ms : lim->default_horizon_ms;
    int64_t warmup = req->warmup_ms ? req->warmup_ms : lim->default_warmup_ms;
    uint32_t reps = req->replications ? req->replications : lim->default_replications;
    if (horizon <= 0)
        return tw_fail(why, whylen, "horizon_ms must be > 0 (0: the default)");
    if (horizon > lim->max_horizon_ms) {
        *too_large = true;
        return tw_fail(why, whylen, "horizon of %.6g h is longer than the limit of %.6g h",
                       (double)horizon / MS_PER_S / S_PER_H,
                       (double)lim->max_horizon_ms / MS_PER_S / S_PER_H);
    }
    if (warmup < 0 || warmup >= horizon)
        return tw_fail(why, whylen, "warmup_ms must be >= 0 and shorter than the horizon");
    if (reps > lim->max_replications) {
        *too_large = true;
        return tw_fail(why, whylen, "%u replications asked, at most %u", reps,
                       lim->max_replications);
    }
    spec->horizon = (double)horizon / MS_PER_S;
    spec->warmup = (double)warmup / MS_PER_S;
    spec->replications = reps;
    spec->seed = req->seed;
    return 0;
}

int scen_request_to_spec(const struct scen_request *req, const struct sim_plant *p,
                         const struct scen_limits *lim, struct scn_spec *spec, bool *too_large,
                         char *why, size_t whylen)
{
    memset(spec, 0, sizeof(*spec));
    *too_large = false;
    if (spec_times(req, lim, spec, too_large, why, whylen) < 0)
        return TW_EINVAL;
    for (size_t i = 0; i < req->n_perturb && i < SCEN_WIRE_MAX_PERTURB; i++)
        if (add_perturbation(&req->perturb[i], i, p, spec, why, whylen) < 0)
            return TW_EINVAL;
    if (req->has_sweep) {
        spec->has_sweep = true;
        spec->sweep = req->sweep; /* borrows the value arrays */
        if (spec->sweep.top == 0)
            spec->sweep.top = DEFAULT_TOP;
        if (spec->sweep.top > SCEN_MAX_TOP)
            return tw_fail(why, whylen, "sweep.top is %u, at most %u", spec->sweep.top,
                           SCEN_MAX_TOP);
    }
    spec->max_events = lim->max_events;
    if (scn_spec_check(p, spec, why, whylen) < 0)
        return TW_EINVAL;
    double work = scen_spec_work_hours(spec);
    if (work > lim->max_work_hours) {
        *too_large = true;
        return tw_fail(why, whylen,
                       "request too large: %llu runs x %u replications x %.6g h = %.4g simulated "
                       "hours, the limit is %.4g (fewer variants or replications, or a shorter "
                       "horizon)",
                       (unsigned long long)scen_spec_runs(spec), spec->replications,
                       spec->horizon / S_PER_H, work, lim->max_work_hours);
    }
    return 0;
}

uint64_t scen_spec_variants(const struct scn_spec *s)
{
    if (!s->has_sweep)
        return 0;
    return scn_variant_count(&s->sweep);
}

uint64_t scen_spec_runs(const struct scn_spec *s)
{
    return 2 + scen_spec_variants(s);
}

double scen_spec_work_hours(const struct scn_spec *s)
{
    return (double)scen_spec_runs(s) * (double)s->replications * s->horizon / S_PER_H;
}
