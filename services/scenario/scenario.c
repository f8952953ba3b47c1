/* SPDX-License-Identifier: Apache-2.0 */
/* Scenarios and sweeps (scenario.h): checking a spec, replications on a thread pool and paired
 * 95 % intervals; parameter paths are in scenario_params.c, variants and ranking in
 * scenario_sweep.c. */
#include "scenario_internal.h"

#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* ---- checking a spec ----------------------------------------------------------------- */

static bool kpi_or_cost(const struct sim_plant *p, const char *name)
{
    return !strcmp(name, "cost") || sim_kpi_find(p, name) >= 0;
}

/* Copies src into dst's arrays (allocated for the same plant shape). */
static void plant_assign(struct sim_plant *dst, const struct sim_plant *src)
{
    struct sim_station *st = dst->stations;
    struct sim_buffer *bf = dst->buffers;
    struct sim_stock *sk = dst->stocks;
    struct sim_supplier *sp = dst->suppliers;
    *dst = *src;
    dst->stations = st, dst->buffers = bf, dst->stocks = sk, dst->suppliers = sp;
    if (src->n_stations)
        memcpy(st, src->stations, src->n_stations * sizeof *st);
    if (src->n_buffers)
        memcpy(bf, src->buffers, src->n_buffers * sizeof *bf);
    if (src->n_stocks)
        memcpy(sk, src->stocks, src->n_stocks * sizeof *sk);
    if (src->n_suppliers)
        memcpy(sp, src->suppliers, src->n_suppliers * sizeof *sp);
}

/* A DOWN, MAINTAIN or SLOW perturbation of one machine (not a whole station). */
static bool names_machine(const struct sim_perturb *pt)
{
    return (pt->kind == SIM_PERTURB_DOWN || pt->kind == SIM_PERTURB_MAINTAIN ||
            pt->kind == SIM_PERTURB_SLOW) &&
           pt->machine >= 0;
}

/* A DOWN, MAINTAIN or SLOW perturbation's station and machine. */
static int check_machine(const struct sim_plant *p, const struct sim_perturb *pt, size_t k,
                         char *err, size_t errlen)
{
    if (pt->station < 0 || (uint32_t)pt->station >= p->n_stations)
        return scn_fail(err, errlen, "perturbation %zu: no such station", k + 1);
    if (pt->machine < -1 ||
        (pt->machine >= 0 && (uint32_t)pt->machine >= p->stations[pt->station].machines))
        return scn_fail(err, errlen, "perturbation %zu: no such machine", k + 1);
    return 0;
}

/* One perturbation's own values (its targets exist, its numbers are in range). */
static int check_perturb(const struct sim_plant *p, const struct sim_perturb *pt, size_t k,
                         char *err, size_t errlen)
{
    if (!(pt->start >= 0) || !isfinite(pt->start) || isnan(pt->duration) || pt->duration < 0)
        return scn_fail(err, errlen, "perturbation %zu: start and duration must be >= 0", k + 1);
    switch (pt->kind) {
    case SIM_PERTURB_DOWN:
        return check_machine(p, pt, k, err, errlen);
    case SIM_PERTURB_MAINTAIN:
        if (!(pt->duration > 0) || !isfinite(pt->duration))
            return scn_fail(err, errlen,
                            "perturbation %zu: a maintenance needs a finite duration > 0", k + 1);
        return check_machine(p, pt, k, err, errlen);
    case SIM_PERTURB_SLOW:
        if (!(pt->factor > 0) || !(pt->factor <= 1))
            return scn_fail(err, errlen, "perturbation %zu: the speed must be in (0, 1]", k + 1);
        if (!(pt->exponent >= 0) || !(pt->exponent <= SIM_MAX_WEAR_EXPONENT))
            return scn_fail(err, errlen, "perturbation %zu: the wear exponent must be in [0, %g]",
                            k + 1, SIM_MAX_WEAR_EXPONENT);
        return check_machine(p, pt, k, err, errlen);
    case SIM_PERTURB_SUPPLIER_LATE:
        if (pt->supplier < 0 || (uint32_t)pt->supplier >= p->n_suppliers)
            return scn_fail(err, errlen, "perturbation %zu: no such supplier", k + 1);
        if (!(pt->delay > 0) || !isfinite(pt->delay))
            return scn_fail(err, errlen, "perturbation %zu: delay must be > 0", k + 1);
        return 0;
    case SIM_PERTURB_DEMAND:
        if (p->demand.kind == SIM_DEMAND_NONE)
            return scn_fail(err, errlen, "perturbation %zu: the plant has no demand", k + 1);
        if (!(pt->factor >= 0) || pt->factor > 1000)
            return scn_fail(err, errlen, "perturbation %zu: factor must be in [0, 1000]", k + 1);
        return 0;
    }
    return scn_fail(err, errlen, "perturbation %zu: unknown kind", k + 1);
}

/* Every variant of a checked sweep applied to the scenario plant q: values that are fine alone
 * can clash (a buffer's initial level above the capacity the same variant sets, a machine-down
 * perturbation on a machine the variant removes). Refused here, not halfway through the run. */
static int check_variants(const struct sim_plant *q, const struct scn_spec *s, char *err,
                          size_t errlen)
{
    const struct scn_sweep *w = &s->sweep;
    size_t nv = scn_variant_count(w), np = w->n_params;
    if (nv == 0 || nv > SCN_MAX_VARIANTS)
        return 0; /* the caller reports the count */
    double *values = malloc(nv * np * sizeof *values);
    struct sim_plant *scratch = sim_plant_copy(q);
    int rc = 0;
    if (!values || !scratch) {
        rc = scn_fail(err, errlen, "out of memory");
        goto out;
    }
    scn_make_variants(q, w, s->seed, nv, values);
    for (size_t v = 0; v < nv && !rc; v++) {
        plant_assign(scratch, q);
        char why[192];
        for (size_t k = 0; k < np && !rc; k++)
            if (scn_param_apply(scratch, w->params[k].path, values[v * np + k], why, sizeof why))
                rc = scn_fail(err, errlen, "sweep variant %zu: %s", v + 1, why);
        for (size_t k = 0; k < s->n_perturb && !rc; k++) {
            const struct sim_perturb *pt = &s->perturb[k];
            if (names_machine(pt) &&
                (uint32_t)pt->machine >= scratch->stations[pt->station].machines)
                rc = scn_fail(err, errlen,
                              "sweep variant %zu: perturbation %zu names machine %d of station "
                              "\"%s\", which the variant removes",
                              v + 1, k + 1, pt->machine + 1, scratch->stations[pt->station].name);
        }
    }
out:
    free(values);
    sim_plant_free(scratch);
    return rc;
}

int scn_spec_check(const struct sim_plant *p, const struct scn_spec *s, char *err, size_t errlen)
{
    if (!(s->horizon > 0) || !isfinite(s->horizon) || s->horizon > 10 * 366 * 86400.0)
        return scn_fail(err, errlen, "horizon must be > 0 and at most 10 years");
    if (!(s->warmup >= 0) || !(s->warmup < s->horizon))
        return scn_fail(err, errlen, "warm-up must be >= 0 and shorter than the horizon");
    if (s->replications < 1 || s->replications > SCN_MAX_REPLICATIONS)
        return scn_fail(err, errlen, "replications must be 1..%u", SCN_MAX_REPLICATIONS);
    if (s->n_perturb > SCN_MAX_PERTURB || s->n_sets > SCN_MAX_SETS)
        return scn_fail(err, errlen, "at most %u perturbations and %u parameter changes",
                        SCN_MAX_PERTURB, SCN_MAX_SETS);
    for (size_t k = 0; k < s->n_perturb; k++)
        if (check_perturb(p, &s->perturb[k], k, err, errlen))
            return -1;
    struct sim_plant *q = sim_plant_copy(p);
    if (!q)
        return scn_fail(err, errlen, "out of memory");
    int rc = 0;
    for (size_t k = 0; k < s->n_sets && !rc; k++)
        rc = scn_param_apply(q, s->sets[k].path, s->sets[k].value, err, errlen);
    /* A perturbation of one machine must still name a machine after the changes. */
    for (size_t k = 0; k < s->n_perturb && !rc; k++) {
        const struct sim_perturb *pt = &s->perturb[k];
        if (names_machine(pt) && (uint32_t)pt->machine >= q->stations[pt->station].machines)
            rc = scn_fail(err, errlen, "perturbation %zu: the changes leave no such machine",
                          k + 1);
    }
    if (!rc && s->has_sweep) {
        const struct scn_sweep *w = &s->sweep;
        if (w->n_params < 1 || w->n_params > SCN_MAX_SWEEP_PARAMS)
            rc = scn_fail(err, errlen, "a sweep needs 1..%u parameters", SCN_MAX_SWEEP_PARAMS);
        for (size_t k = 0; k < w->n_params && !rc; k++) {
            const struct scn_range *r = &w->params[k];
            if (!isfinite(r->cost)) {
                rc = scn_fail(err, errlen, "sweep parameter \"%s\": cost must be finite", r->path);
                break;
            }
            if (r->n_values > SCN_MAX_VALUES) {
                rc = scn_fail(err, errlen, "sweep parameter \"%s\": at most %u values", r->path,
                              SCN_MAX_VALUES);
                break;
            }
            if (r->n_values && w->method != SCN_SWEEP_GRID) {
                rc = scn_fail(err, errlen, "sweep parameter \"%s\": listed values need a grid",
                              r->path);
                break;
            }
            if (r->n_values) {
                for (size_t i = 0; i < r->n_values && !rc; i++)
                    rc = scn_param_check(q, r->path, r->values[i], err, errlen);
                continue;
            }
            if (!(r->max >= r->min) || !isfinite(r->max - r->min)) {
                rc = scn_fail(err, errlen, "sweep parameter \"%s\": needs finite min <= max",
                              r->path);
                break;
            }
            if (w->method == SCN_SWEEP_GRID && !(r->step > 0 && isfinite(r->step))) {
                rc = scn_fail(err, errlen, "sweep parameter \"%s\": a grid range needs step > 0",
                              r->path);
                break;
            }
            rc = scn_param_check(q, r->path, r->min, err, errlen);
            if (!rc)
                rc = scn_param_check(q, r->path, r->max, err, errlen);
        }
        if (!rc) {
            size_t n = scn_variant_count(w);
            if (n < 1 || n > SCN_MAX_VARIANTS)
                rc = scn_fail(err, errlen, "a sweep must have 1..%u variants (this one has %zu)",
                              SCN_MAX_VARIANTS, n);
        }
        if (!rc && !kpi_or_cost(q, w->objective))
            rc = scn_fail(err, errlen, "objective \"%s\" is not a KPI of this plant", w->objective);
        if (!rc && w->n_constraints > SCN_MAX_CONSTRAINTS)
            rc = scn_fail(err, errlen, "at most %u constraints", SCN_MAX_CONSTRAINTS);
        for (size_t k = 0; k < w->n_constraints && !rc; k++) {
            const struct scn_constraint *c = &w->constraints[k];
            if (!kpi_or_cost(q, c->kpi))
                rc = scn_fail(err, errlen, "constraint on \"%s\": not a KPI of this plant", c->kpi);
            else if (!c->has_min && !c->has_max)
                rc = scn_fail(err, errlen, "constraint on \"%s\": needs a min or a max", c->kpi);
            else if ((c->has_min && !isfinite(c->min)) || (c->has_max && !isfinite(c->max)))
                rc = scn_fail(err, errlen, "constraint on \"%s\": bounds must be finite", c->kpi);
        }
    }
    if (!rc && s->has_sweep)
        rc = check_variants(q, s, err, errlen);
    if (!rc) {
        size_t configs = 2 + (s->has_sweep ? scn_variant_count(&s->sweep) : 0);
        double bytes = (double)configs * s->replications * (double)sim_kpi_count(p) * 8.0;
        if (bytes > 2e9)
            rc = scn_fail(err, errlen, "too big: %.0f MB of results (variants x replications)",
                          bytes / 1e6);
    }
    sim_plant_free(q);
    return rc;
}

/* ---- statistics ---------------------------------------------------------------------- */

/* Two-sided 95 % quantile of Student's t with df degrees of freedom. */
static double t975(uint32_t df)
{
    static const double table[] = {0,      12.706, 4.303, 3.182, 2.776, 2.571, 2.447,
                                   2.365,  2.306,  2.262, 2.228, 2.201, 2.179, 2.160,
                                   2.145,  2.131,  2.120, 2.110, 2.101, 2.093, 2.086};
    if (df < sizeof table / sizeof table[0])
        return table[df];
    double z = 1.959963984540054, n = df;
    double z3 = z * z * z, z5 = z3 * z * z, z7 = z5 * z * z;
    return z + (z3 + z) / (4 * n) + (5 * z5 + 16 * z3 + 3 * z) / (96 * n * n) +
           (3 * z7 + 19 * z5 + 17 * z3 - 15 * z) / (384 * n * n * n);
}

/* Mean and interval of x[0..n) (stride apart), NaNs left out. */
struct scn_estimate scn_estimate_of(const double *x, size_t n, size_t stride)
{
    double sum = 0;
    uint32_t m = 0;
    for (size_t i = 0; i < n; i++)
        if (!isnan(x[i * stride]))
            sum += x[i * stride], m++;
    struct scn_estimate e = {NAN, NAN, NAN, m};
    if (m == 0)
        return e;
    double mean = sum / m, ss = 0;
    for (size_t i = 0; i < n; i++)
        if (!isnan(x[i * stride])) {
            double d = x[i * stride] - mean;
            ss += d * d;
        }
    e.mean = mean;
    double h = m > 1 ? t975(m - 1) * sqrt(ss / (m - 1) / m) : 0;
    e.lo = mean - h;
    e.hi = mean + h;
    return e;
}

/* ---- the run ------------------------------------------------------------------------- */

static double mono_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void set_error(struct job_set *js, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void set_error(struct job_set *js, int code, const char *fmt, ...)
{
    int expected = 0;
    if (!atomic_compare_exchange_strong(&js->error, &expected, code))
        return;
    pthread_mutex_lock(&js->err_lock);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(js->err, sizeof js->err, fmt, ap);
    va_end(ap);
    pthread_mutex_unlock(&js->err_lock);
}

static void *worker(void *arg)
{
    struct job_set *js = arg;
    const struct scn_spec *s = js->spec;
    struct sim_ctx *ctx = sim_ctx_new();
    struct sim_plant *scratch = sim_plant_copy(js->scen);
    if (!ctx || !scratch) {
        set_error(js, SIM_ENOMEM, "out of memory");
        sim_ctx_free(ctx);
        sim_plant_free(scratch);
        return NULL;
    }
    size_t current = SIZE_MAX; /* the config the scratch plant holds */
    for (;;) {
        if (atomic_load(&js->error) ||
            (js->cancel && __atomic_load_n(js->cancel, __ATOMIC_RELAXED)))
            break;
        size_t t = atomic_fetch_add(&js->next, 1);
        if (t >= js->n_tasks)
            break;
        size_t cfg = t / s->replications;
        uint32_t rep = (uint32_t)(t % s->replications);
        if (js->same_scenario && cfg >= 1)
            cfg++; /* the scenario is the baseline: its runs are copied afterwards */
        const struct sim_plant *plant;
        struct sim_opts o = {.horizon = s->horizon,
                             .warmup = s->warmup,
                             .seed = s->seed,
                             .replication = rep,
                             .max_events = s->max_events,
                             .cancel = js->cancel};
        if (cfg == 0) {
            plant = js->base;
        } else {
            o.perturb = s->perturb;
            o.n_perturb = s->n_perturb;
            if (cfg == 1) {
                plant = js->scen;
            } else {
                if (current != cfg) {
                    plant_assign(scratch, js->scen);
                    const struct scn_sweep *w = &s->sweep;
                    for (size_t k = 0; k < w->n_params; k++) {
                        char e[160];
                        if (scn_param_apply(scratch, w->params[k].path,
                                            js->values[(cfg - 2) * w->n_params + k], e,
                                            sizeof e)) {
                            set_error(js, SIM_EINVAL, "variant %zu: %s", cfg - 1, e);
                            break;
                        }
                    }
                    current = cfg;
                }
                plant = scratch;
            }
        }
        if (atomic_load(&js->error))
            break;
        uint64_t ev = 0;
        int rc = sim_run(ctx, plant, &o, js->out + (cfg * s->replications + rep) * js->n_kpi,
                         &ev);
        atomic_fetch_add(&js->events, ev);
        if (rc) {
            if (rc == SIM_ECANCEL)
                set_error(js, rc, "cancelled");
            else if (rc == SIM_ELIMIT && s->max_events && ev >= s->max_events)
                set_error(js, rc,
                          "%s, replication %u: more than %llu events in one replication; "
                          "shorten the horizon or check the rates",
                          cfg == 0 ? "baseline" : cfg == 1 ? "scenario" : "a variant", rep + 1,
                          (unsigned long long)s->max_events);
            else if (rc == SIM_ELIMIT)
                set_error(js, rc,
                          "%s, replication %u: more than 4 million parts queued in one place "
                          "(the line cannot keep up over this horizon)",
                          cfg == 0 ? "baseline" : cfg == 1 ? "scenario" : "a variant", rep + 1);
            else
                set_error(js, rc, "simulation failed (%d)", rc);
            break;
        }
        size_t done = atomic_fetch_add(&js->done, 1) + 1;
        if (js->progress) {
            double el = mono_s() - js->t0;
            double frac = (double)done / (double)js->n_tasks;
            js->progress(js->arg, frac, done > 0 ? el / frac - el : -1);
        }
    }
    sim_ctx_free(ctx);
    sim_plant_free(scratch);
    return NULL;
}

static unsigned online_cpus(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 && n < 1024 ? (unsigned)n : 1;
}

/* KPI estimates of config cfg against the baseline (config 0), paired by replication. */
int scn_fill_kpis(const struct job_set *js, const struct sim_plant *p, size_t cfg,
                  struct scn_kpi **out)
{
    size_t nk = js->n_kpi, R = js->spec->replications;
    struct scn_kpi *k = calloc(nk, sizeof *k);
    double *d = malloc(R * sizeof *d);
    if (!k || !d) {
        free(k);
        free(d);
        return -1;
    }
    const double *base = js->out, *scen = js->out + cfg * R * nk;
    for (size_t i = 0; i < nk; i++) {
        k[i].unit = sim_kpi_name(p, i, k[i].name, sizeof k[i].name);
        k[i].base = scn_estimate_of(base + i, R, nk);
        k[i].scen = scn_estimate_of(scen + i, R, nk);
        for (size_t r = 0; r < R; r++)
            d[r] = scen[r * nk + i] - base[r * nk + i];
        k[i].diff = scn_estimate_of(d, R, 1);
    }
    free(d);
    *out = k;
    return 0;
}

void scn_result_free(struct scn_result *r)
{
    if (!r)
        return;
    free(r->kpis);
    for (size_t i = 0; i < r->n_variants; i++)
        free(r->variants[i].kpis);
    free(r->variants);
    free(r);
}

int scn_run(const struct sim_plant *p, const struct scn_spec *s, unsigned threads,
            const volatile int *cancel, scn_progress_fn progress, void *arg,
            struct scn_result **out, char *err, size_t errlen)
{
    *out = NULL;
    if (scn_spec_check(p, s, err, errlen))
        return SIM_EINVAL;
    struct sim_plant *scen = sim_plant_copy(p);
    struct job_set *js = calloc(1, sizeof *js);
    struct scn_result *res = calloc(1, sizeof *res);
    double *values = NULL;
    pthread_t *tids = NULL;
    int rc = SIM_ENOMEM;
    if (!scen || !js || !res)
        goto done;
    for (size_t k = 0; k < s->n_sets; k++)
        if (scn_param_apply(scen, s->sets[k].path, s->sets[k].value, err, errlen)) {
            rc = SIM_EINVAL;
            goto done;
        }
    size_t nv = s->has_sweep ? scn_variant_count(&s->sweep) : 0;
    if (nv) {
        values = malloc(nv * s->sweep.n_params * sizeof *values);
        if (!values)
            goto done;
        scn_make_variants(scen, &s->sweep, s->seed, nv, values);
    }
    js->base = p;
    js->scen = scen;
    js->spec = s;
    js->n_kpi = sim_kpi_count(p);
    js->n_configs = 2 + nv;
    js->same_scenario = s->n_perturb == 0 && s->n_sets == 0;
    js->n_tasks = (js->n_configs - js->same_scenario) * s->replications;
    js->values = values;
    js->out = malloc(js->n_configs * s->replications * js->n_kpi * sizeof *js->out);
    js->cancel = cancel;
    js->progress = progress;
    js->arg = arg;
    js->t0 = mono_s();
    pthread_mutex_init(&js->err_lock, NULL);
    if (!js->out)
        goto done_lock;
    if (threads == 0)
        threads = online_cpus();
    if (threads > js->n_tasks)
        threads = (unsigned)js->n_tasks;
    tids = calloc(threads, sizeof *tids);
    if (!tids)
        goto done_lock;
    unsigned started = 0;
    for (; started < threads; started++)
        if (pthread_create(&tids[started], NULL, worker, js))
            break;
    if (started == 0)
        worker(js); /* no thread could start: run here */
    for (unsigned i = 0; i < started; i++)
        pthread_join(tids[i], NULL);
    if (atomic_load(&js->error)) {
        rc = atomic_load(&js->error);
        snprintf(err, errlen, "%s", js->err);
        goto done_lock;
    }
    if (cancel && __atomic_load_n(cancel, __ATOMIC_RELAXED)) {
        rc = SIM_ECANCEL;
        snprintf(err, errlen, "cancelled");
        goto done_lock;
    }
    if (js->same_scenario)
        memcpy(js->out + s->replications * js->n_kpi, js->out,
               s->replications * js->n_kpi * sizeof *js->out);
    res->n_kpis = js->n_kpi;
    res->events = atomic_load(&js->events);
    res->replications_run = js->n_tasks;
    if (scn_fill_kpis(js, p, 1, &res->kpis) || (nv && scn_rank_variants(js, p, res)))
        goto done_lock;
    *out = res;
    res = NULL;
    rc = 0;
done_lock:
    pthread_mutex_destroy(&js->err_lock);
done:
    if (rc == SIM_ENOMEM)
        snprintf(err, errlen, "out of memory");
    free(tids);
    if (js)
        free(js->out);
    free(js);
    free(values);
    sim_plant_free(scen);
    scn_result_free(res);
    return rc;
}
