/* SPDX-License-Identifier: Apache-2.0 */
/* Candidate actions for a machine, each simulated against leaving it be on the live plant, ranked
 * by the plant model's objective; and the sentence that explains the choice. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "advisor.h"
#include "sim.h"

bool adv_locate(const struct sim_plant *p, const char *asset, int *station, int *machine)
{
    for (uint32_t s = 0; s < p->n_stations; s++)
        for (uint32_t m = 0; m < p->stations[s].machines && m < SIM_MAX_MACHINES; m++)
            if (strcmp(p->stations[s].machine_asset[m], asset) == 0) {
                *station = (int)s;
                *machine = (int)m;
                return true;
            }
    return false;
}

static void format_duration(double s, char *out, size_t len)
{
    if (s >= 3600 && fmod(s, 3600) == 0)
        snprintf(out, len, "%.0f h", s / 3600);
    else if (s >= 3600)
        snprintf(out, len, "%.1f h", s / 3600);
    else
        snprintf(out, len, "%.0f min", s / 60);
}

size_t adv_candidates(const struct sim_plant *p, const struct sim_actions *a, int station,
                      double plant_s, struct adv_action *out, size_t cap)
{
    size_t n = 0;
    char d[24], w[24];
    if (n < cap)
        out[n++] = (struct adv_action){.kind = -1, .label = "leave it running"};
    const struct sim_action_rule *mr = &a->rule[SIM_ACT_MAINTAIN];
    if (mr->declared && mr->station[station]) {
        format_duration(mr->duration, d, sizeof(d));
        if (n < cap) {
            out[n] = (struct adv_action){.kind = SIM_ACT_MAINTAIN, .duration = mr->duration};
            snprintf(out[n].label, sizeof(out[n].label), "maintain now for %s", d);
            n++;
        }
        double wait = mr->at_shift_change ? sim_actions_next_off_shift(&p->shifts, plant_s) : -1;
        if (wait > 0 && wait < a->horizon && n < cap) {
            out[n] = (struct adv_action){
                .kind = SIM_ACT_MAINTAIN, .start = wait, .duration = mr->duration};
            format_duration(wait, w, sizeof(w));
            snprintf(out[n].label, sizeof(out[n].label),
                     "maintain for %s when the shift ends, in %s", d, w);
            n++;
        }
    }
    const struct sim_action_rule *sr = &a->rule[SIM_ACT_SLOW];
    if (sr->declared && sr->station[station]) {
        format_duration(sr->slow_for, d, sizeof(d));
        for (uint32_t i = 0; i < sr->n_speeds && n < cap; i++) {
            out[n] = (struct adv_action){
                .kind = SIM_ACT_SLOW, .duration = sr->slow_for, .speed = sr->speeds[i]};
            snprintf(out[n].label, sizeof(out[n].label), "slow to %.0f %% for %s",
                     sr->speeds[i] * 100.0, d);
            n++;
        }
    }
    return n;
}

static struct sim_perturb perturb_of(const struct adv_action *x, const struct adv_target *t,
                                     const struct sim_actions *a)
{
    struct sim_perturb p = {.station = t->station,
                            .machine = t->machine,
                            .supplier = -1,
                            .start = x->start,
                            .duration = x->duration};
    if (x->kind == SIM_ACT_MAINTAIN) {
        p.kind = SIM_PERTURB_MAINTAIN;
    } else {
        p.kind = SIM_PERTURB_SLOW;
        p.factor = x->speed;
        p.exponent = a->rule[SIM_ACT_SLOW].wear_exponent;
    }
    return p;
}

static bool better(const struct adv_option *x, const struct adv_option *y, bool maximize)
{
    double a = x->objective.mean, b = y->objective.mean;
    if (isnan(a) != isnan(b))
        return !isnan(a);
    if (a != b)
        return maximize ? a > b : a < b;
    return x->action.kind < y->action.kind; /* ties: doing nothing first */
}

static void keep_kpis(struct adv_option *o, const struct scn_result *r, const char *objective,
                      const char *station)
{
    char want[ADV_MAX_KPIS][SCN_PATH_MAX];
    size_t n_want = 0;
    snprintf(want[n_want++], SCN_PATH_MAX, "%s", objective);
    snprintf(want[n_want++], SCN_PATH_MAX, "throughput");
    snprintf(want[n_want++], SCN_PATH_MAX, "station.%s.downtime", station);
    snprintf(want[n_want++], SCN_PATH_MAX, "station.%s.down", station);
    o->n_kpis = 0;
    for (size_t w = 0; w < n_want; w++) {
        bool dup = false;
        for (size_t k = 0; k < o->n_kpis; k++)
            dup = dup || strcmp(o->kpis[k].name, want[w]) == 0;
        for (size_t i = 0; i < r->n_kpis && !dup && o->n_kpis < ADV_MAX_KPIS; i++)
            if (strcmp(r->kpis[i].name, want[w]) == 0) {
                o->kpis[o->n_kpis++] = r->kpis[i];
                break;
            }
    }
}

static const struct scn_kpi *find_kpi(const struct scn_result *r, const char *name)
{
    for (size_t i = 0; i < r->n_kpis; i++)
        if (strcmp(r->kpis[i].name, name) == 0)
            return &r->kpis[i];
    return NULL;
}

int adv_evaluate(const struct sim_plant *live, const struct sim_actions *a,
                 const struct adv_target *t, uint32_t replications, unsigned threads,
                 const volatile int *cancel, struct adv_eval *out, char *err, size_t errlen)
{
    struct adv_action cand[ADV_MAX_OPTIONS];
    memset(out, 0, sizeof(*out));
    out->horizon = a->horizon;
    out->replications = replications;
    size_t n = adv_candidates(live, a, t->station, t->plant_s, cand, ADV_MAX_OPTIONS);
    const char *station = live->stations[t->station].name;
    char *objective = out->objective;
    out->maximize = a->maximize;
    if (sim_actions_objective_of(a->objective, station, objective, sizeof(out->objective)) < 0)
        return SIM_EINVAL;
    struct scn_estimate none = {.mean = NAN, .lo = NAN, .hi = NAN};
    struct adv_option zero = {.action = cand[0]};
    for (size_t i = 1; i < n; i++) {
        struct scn_spec spec = {.horizon = a->horizon,
                                .replications = replications,
                                .seed = t->seed,
                                .n_perturb = 1,
                                .max_events = 50000000};
        spec.perturb[0] = perturb_of(&cand[i], t, a);
        if (scn_spec_check(live, &spec, err, errlen) < 0)
            return SIM_EINVAL;
        struct scn_result *r = NULL;
        int rc = scn_run(live, &spec, threads, cancel, NULL, NULL, &r, err, errlen);
        if (rc)
            return rc;
        const struct scn_kpi *k = find_kpi(r, objective);
        struct adv_option *o = &out->opt[out->n++];
        o->action = cand[i];
        if (k) {
            o->objective = k->scen;
            o->effect = k->diff;
            none = k->base;
            o->pays = a->maximize ? k->diff.lo > 0 : k->diff.hi < 0;
        }
        keep_kpis(o, r, objective, station);
        /* "Leave it" carries the baseline under every KPI, as base and scenario. */
        if (out->n == 1) {
            keep_kpis(&zero, r, objective, station);
            for (size_t j = 0; j < zero.n_kpis; j++) {
                zero.kpis[j].scen = zero.kpis[j].base;
                zero.kpis[j].diff = (struct scn_estimate){.n = zero.kpis[j].base.n};
            }
        }
        out->events += r->events;
        scn_result_free(r);
    }
    /* No action: the baseline itself. */
    zero.objective = none;
    zero.effect = (struct scn_estimate){.n = none.n};
    zero.pays = false;
    out->opt[out->n++] = zero;
    /* Insertion sort, best first; then the first that pays, else leaving it. */
    for (size_t i = 1; i < out->n; i++) {
        struct adv_option x = out->opt[i];
        size_t j = i;
        for (; j > 0 && better(&x, &out->opt[j - 1], a->maximize); j--)
            out->opt[j] = out->opt[j - 1];
        out->opt[j] = x;
    }
    out->best = 0;
    for (size_t i = 0; i < out->n; i++) {
        const struct adv_action *x = &out->opt[i].action;
        bool allowed = x->kind < 0 || !t->approval_free || !a->rule[x->kind].approval;
        if (x->kind < 0 || (out->opt[i].pays && allowed)) {
            out->best = i;
            break;
        }
    }
    /* Nothing autonomy may do pays, but an action needing approval does: that one, to await
     * a person's approval. */
    for (size_t i = 0; t->approval_free && out->opt[out->best].action.kind < 0 && i < out->n; i++)
        if (out->opt[i].pays) {
            out->best = i;
            break;
        }
    return 0;
}

static void effect_text(const struct adv_option *o, const char *objective, char *out, size_t len)
{
    const char *unit = o->n_kpis > 0 && o->kpis[0].unit ? o->kpis[0].unit : "";
    snprintf(out, len, "%s %+.3g %s (95 %% CI %+.3g to %+.3g)", objective, o->effect.mean, unit,
             o->effect.lo, o->effect.hi);
}

void adv_explain(const struct adv_eval *e, const char *trigger, char *out, size_t len)
{
    const struct adv_option *b = &e->opt[e->best];
    char eff[SCN_PATH_MAX + 128], h[32]; /* the objective's name and four numbers */
    format_duration(e->horizon, h, sizeof(h));
    if (b->action.kind < 0) {
        const struct adv_option *top =
            e->opt[0].action.kind < 0 && e->n > 1 ? &e->opt[1] : &e->opt[0];
        if (top->action.kind < 0) {
            snprintf(out, len, "%s No action is declared for this machine.", trigger);
            return;
        }
        effect_text(top, e->objective, eff, sizeof(eff));
        snprintf(out, len,
                 "%s Leave it running: no action pays for sure over %s (%u replications); the "
                 "best, %s, gives %s.",
                 trigger, h, e->replications, top->action.label, eff);
        return;
    }
    effect_text(b, e->objective, eff, sizeof(eff));
    int w = snprintf(out, len,
                     "%s Best: %s, %s over %s against leaving it running (%u paired "
                     "replications).",
                     trigger, b->action.label, eff, h, e->replications);
    for (size_t i = 0; i < e->n && w > 0 && (size_t)w < len; i++) {
        const struct adv_option *o = &e->opt[i];
        if (o == b || o->action.kind < 0)
            continue;
        effect_text(o, e->objective, eff, sizeof(eff));
        snprintf(out + w, len - (size_t)w, " Next: %s, %s.", o->action.label, eff);
        break;
    }
}
