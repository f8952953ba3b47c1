/* SPDX-License-Identifier: Apache-2.0 */
/* Scenarios and sweeps (scenario.h): parameter paths, variants, replications on a thread pool,
 * paired 95 % intervals and the ranking of variants. */
#include "scenario.h"

#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static int fail(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static int fail(char *err, size_t errlen, const char *fmt, ...)
{
    if (err && errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return -1;
}

/* ---- parameter paths ----------------------------------------------------------------- */

enum ptype { P_REAL, P_INT, P_FRACTION, P_PROB };

struct pref {
    enum { T_STATION, T_BUFFER, T_STOCK, T_SUPPLIER, T_DEMAND } table;
    int index;
    char field[32];
};

/* Splits "<table>.<name>.<field>" (names may contain dots: the field is after the last one)
 * or "demand.<field>". */
static int parse_path(const struct sim_plant *p, const char *path, struct pref *r, char *err,
                      size_t errlen)
{
    const char *dot = strchr(path, '.'), *last = strrchr(path, '.');
    if (!dot || !last[1] || strlen(last + 1) >= sizeof r->field)
        return fail(err, errlen, "parameter \"%s\": expected <kind>.<name>.<field>", path);
    snprintf(r->field, sizeof r->field, "%s", last + 1);
    size_t kind_len = (size_t)(dot - path);
    if (kind_len == 6 && strncmp(path, "demand", 6) == 0) {
        if (dot != last)
            return fail(err, errlen, "parameter \"%s\": expected demand.<field>", path);
        if (p->demand.kind == SIM_DEMAND_NONE)
            return fail(err, errlen, "parameter \"%s\": the plant has no demand", path);
        r->table = T_DEMAND;
        r->index = 0;
        return 0;
    }
    if (dot == last)
        return fail(err, errlen, "parameter \"%s\": expected <kind>.<name>.<field>", path);
    char name[SIM_NAME_MAX + 1];
    size_t name_len = (size_t)(last - dot - 1);
    if (name_len == 0 || name_len > SIM_NAME_MAX)
        return fail(err, errlen, "parameter \"%s\": bad name", path);
    memcpy(name, dot + 1, name_len);
    name[name_len] = '\0';
    if (kind_len == 7 && strncmp(path, "station", 7) == 0) {
        r->table = T_STATION;
        r->index = sim_plant_station(p, name);
    } else if (kind_len == 6 && strncmp(path, "buffer", 6) == 0) {
        r->table = T_BUFFER;
        r->index = sim_plant_buffer(p, name);
    } else if (kind_len == 5 && strncmp(path, "stock", 5) == 0) {
        r->table = T_STOCK;
        r->index = sim_plant_stock(p, name);
    } else if (kind_len == 8 && strncmp(path, "supplier", 8) == 0) {
        r->table = T_SUPPLIER;
        r->index = sim_plant_supplier(p, name);
    } else {
        return fail(err, errlen,
                    "parameter \"%s\": kind must be station, buffer, stock, supplier or demand",
                    path);
    }
    if (r->index < 0)
        return fail(err, errlen, "parameter \"%s\": no %.*s named \"%s\"", path, (int)kind_len,
                    path, name);
    return 0;
}

/* The parameter a path names: a pointer to its value (a distribution's mean goes through
 * `dist`), its type, and whether it exists. */
struct param {
    double *real;
    uint32_t *u32;
    struct sim_dist *dist;
    enum ptype type;
    double min; /* smallest allowed value */
};

static int resolve(struct sim_plant *p, const char *path, struct param *out, char *err,
                   size_t errlen)
{
    struct pref r;
    if (parse_path(p, path, &r, err, errlen))
        return -1;
    memset(out, 0, sizeof *out);
    const char *f = r.field;
    switch (r.table) {
    case T_STATION: {
        struct sim_station *s = &p->stations[r.index];
        if (!strcmp(f, "machines")) {
            out->u32 = &s->machines, out->type = P_INT, out->min = 1;
        } else if (!strcmp(f, "staff")) {
            out->u32 = &s->staff, out->type = P_INT, out->min = 1;
        } else if (!strcmp(f, "cycle_time")) {
            out->dist = &s->cycle, out->min = 0;
        } else if (!strcmp(f, "setup_time")) {
            if (!s->setup_every)
                return fail(err, errlen, "parameter \"%s\": the station has no setups", path);
            out->dist = &s->setup, out->min = 0;
        } else if (!strcmp(f, "mtbf") || !strcmp(f, "mttr")) {
            if (s->fail_basis == SIM_FAIL_NONE)
                return fail(err, errlen, "parameter \"%s\": the station has no failures", path);
            out->dist = f[2] == 'b' ? &s->ttf : &s->ttr, out->min = 0;
        } else if (!strcmp(f, "scrap")) {
            out->real = &s->scrap, out->type = P_FRACTION;
        } else {
            return fail(err, errlen,
                        "parameter \"%s\": a station has machines, staff, cycle_time, "
                        "setup_time, mtbf, mttr, scrap",
                        path);
        }
        break;
    }
    case T_BUFFER: {
        struct sim_buffer *b = &p->buffers[r.index];
        if (!strcmp(f, "capacity"))
            out->u32 = &b->capacity, out->type = P_INT, out->min = 0;
        else if (!strcmp(f, "initial"))
            out->u32 = &b->initial, out->type = P_INT, out->min = 0;
        else
            return fail(err, errlen, "parameter \"%s\": a buffer has capacity, initial", path);
        break;
    }
    case T_STOCK:
        if (strcmp(f, "initial"))
            return fail(err, errlen, "parameter \"%s\": a stock has initial", path);
        out->real = &p->stocks[r.index].initial, out->min = 0;
        break;
    case T_SUPPLIER: {
        struct sim_supplier *s = &p->suppliers[r.index];
        if (!strcmp(f, "lot"))
            out->real = &s->lot, out->min = 0;
        else if (!strcmp(f, "reorder") && s->policy == SIM_SUPPLY_REORDER)
            out->real = &s->reorder, out->min = 0;
        else if (!strcmp(f, "period") && s->policy == SIM_SUPPLY_PERIODIC)
            out->real = &s->period, out->min = 0;
        else if (!strcmp(f, "lead_time"))
            out->dist = &s->lead, out->min = 0;
        else if (!strcmp(f, "reliability"))
            out->real = &s->reliability, out->type = P_PROB;
        else
            return fail(err, errlen,
                        "parameter \"%s\": a supplier has lot, lead_time, reliability, and "
                        "reorder (reorder policy) or period (periodic policy)",
                        path);
        break;
    }
    case T_DEMAND:
        if (!strcmp(f, "rate") && p->demand.kind == SIM_DEMAND_POISSON)
            out->real = &p->demand.rate, out->min = 0;
        else if (!strcmp(f, "due"))
            out->real = &p->demand.due, out->min = 0;
        else
            return fail(err, errlen,
                        "parameter \"%s\": the demand has rate (Poisson demand) and due", path);
        break;
    }
    return 0;
}

static bool param_is_int(const struct param *q)
{
    return q->u32 != NULL;
}

/* Checks a value for a resolved parameter; rates are per hour, times in seconds. */
static int check_value(const struct param *q, const char *path, double v, char *err,
                       size_t errlen)
{
    if (!isfinite(v))
        return fail(err, errlen, "parameter \"%s\": value must be finite", path);
    switch (q->type) {
    case P_FRACTION:
        if (v < 0 || v >= 1)
            return fail(err, errlen, "parameter \"%s\": must be in [0, 1)", path);
        return 0;
    case P_PROB:
        if (v <= 0 || v > 1)
            return fail(err, errlen, "parameter \"%s\": must be in (0, 1]", path);
        return 0;
    default:
        break;
    }
    if (q->u32) {
        double r = nearbyint(v);
        if (r < q->min || r > (q->u32 && strstr(path, "station.") == path ? SIM_MAX_MACHINES
                                                                          : 1e9))
            return fail(err, errlen, "parameter \"%s\": %g is out of range", path, v);
        return 0;
    }
    if (v < q->min)
        return fail(err, errlen, "parameter \"%s\": must be >= %g", path, q->min);
    if (q->dist && q->dist->mean <= 0 && v > 0 && q->dist->kind != SIM_DIST_FIXED)
        return fail(err, errlen, "parameter \"%s\": cannot rescale a zero-mean distribution",
                    path);
    if ((q->real || q->dist) && v <= 0 && strstr(path, ".period") != NULL)
        return fail(err, errlen, "parameter \"%s\": must be > 0", path);
    return 0;
}

int scn_param_check(const struct sim_plant *p, const char *path, double value, char *err,
                    size_t errlen)
{
    struct param q;
    /* resolve() only takes addresses: the cast lets one function serve get and set. */
    if (resolve((struct sim_plant *)p, path, &q, err, errlen))
        return -1;
    if (check_value(&q, path, value, err, errlen))
        return -1;
    /* Cross-field rules that a single value can break. */
    struct pref r;
    parse_path(p, path, &r, NULL, 0);
    if (r.table == T_BUFFER && !strcmp(r.field, "initial") &&
        nearbyint(value) > (double)p->buffers[r.index].capacity)
        return fail(err, errlen, "parameter \"%s\": more than the buffer's capacity", path);
    if (r.table == T_DEMAND && !strcmp(r.field, "rate") && !(value > 0))
        return fail(err, errlen, "parameter \"%s\": must be > 0", path);
    if (r.table == T_SUPPLIER && !strcmp(r.field, "lot") && !(value > 0))
        return fail(err, errlen, "parameter \"%s\": must be > 0", path);
    return 0;
}

int scn_param_apply(struct sim_plant *p, const char *path, double value, char *err,
                    size_t errlen)
{
    struct param q;
    if (scn_param_check(p, path, value, err, errlen) || resolve(p, path, &q, err, errlen))
        return -1;
    struct pref r;
    parse_path(p, path, &r, NULL, 0);
    if (q.u32) {
        uint32_t v = (uint32_t)nearbyint(value);
        *q.u32 = v;
        if (r.table == T_BUFFER && !strcmp(r.field, "capacity") &&
            p->buffers[r.index].initial > v)
            p->buffers[r.index].initial = v; /* a smaller buffer starts at most full */
        return 0;
    }
    if (q.dist) {
        if (!sim_dist_set_mean(q.dist, value))
            return fail(err, errlen, "parameter \"%s\": cannot set mean %g", path, value);
        return 0;
    }
    if (r.table == T_DEMAND && !strcmp(r.field, "rate"))
        value /= 3600.0;
    *q.real = value;
    return 0;
}

double scn_param_get(const struct sim_plant *p, const char *path)
{
    struct param q;
    if (resolve((struct sim_plant *)p, path, &q, NULL, 0))
        return NAN;
    if (q.u32)
        return (double)*q.u32;
    if (q.dist)
        return q.dist->mean * q.dist->scale;
    struct pref r;
    parse_path(p, path, &r, NULL, 0);
    if (r.table == T_DEMAND && !strcmp(r.field, "rate"))
        return *q.real * 3600.0;
    return *q.real;
}

static bool param_path_int(const struct sim_plant *p, const char *path)
{
    struct param q;
    return resolve((struct sim_plant *)p, path, &q, NULL, 0) == 0 && param_is_int(&q);
}

/* ---- variants ------------------------------------------------------------------------ */

/* Values of a GRID parameter: the listed ones, or min, min+step, … ≤ max. */
static size_t grid_count(const struct scn_range *r)
{
    if (r->n_values)
        return r->n_values;
    if (!(r->step > 0) || !(r->max >= r->min))
        return 0;
    double n = floor((r->max - r->min) / r->step + 1e-9) + 1;
    return n > (double)SCN_MAX_VARIANTS ? SCN_MAX_VARIANTS + 1 : (size_t)n;
}

static double grid_value(const struct scn_range *r, size_t i)
{
    return r->n_values ? r->values[i] : r->min + (double)i * r->step;
}

static size_t variant_count(const struct scn_sweep *s)
{
    if (s->method != SCN_SWEEP_GRID)
        return s->samples;
    size_t n = 1;
    for (size_t k = 0; k < s->n_params; k++) {
        size_t g = grid_count(&s->params[k]);
        if (g == 0)
            return 0;
        if (n > SCN_MAX_VARIANTS / g + 1)
            return SCN_MAX_VARIANTS + 1;
        n *= g;
    }
    return n;
}

static uint64_t mix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static double unit(uint64_t *x)
{
    return ((double)(mix64(x) >> 11) + 0.5) * 0x1.0p-53;
}

/* Fills values[v * n_params + k] for every variant v. Integer parameters are rounded. */
static void make_variants(const struct sim_plant *p, const struct scn_sweep *s, uint64_t seed,
                          size_t n, double *values)
{
    size_t np = s->n_params;
    uint64_t x = seed ^ 0x5eedULL;
    if (s->method == SCN_SWEEP_GRID) {
        for (size_t v = 0; v < n; v++) {
            size_t rest = v;
            for (size_t k = np; k-- > 0;) { /* the last parameter varies fastest */
                size_t g = grid_count(&s->params[k]);
                values[v * np + k] = grid_value(&s->params[k], rest % g);
                rest /= g;
            }
        }
    } else if (s->method == SCN_SWEEP_RANDOM) {
        for (size_t v = 0; v < n; v++)
            for (size_t k = 0; k < np; k++) {
                const struct scn_range *r = &s->params[k];
                values[v * np + k] = r->min + (r->max - r->min) * unit(&x);
            }
    } else { /* Latin hypercube: each parameter's range cut into n strata, each used once */
        size_t *perm = malloc(n * sizeof *perm);
        for (size_t k = 0; k < np && perm; k++) {
            const struct scn_range *r = &s->params[k];
            for (size_t i = 0; i < n; i++)
                perm[i] = i;
            for (size_t i = n; i > 1; i--) {
                size_t j = (size_t)(unit(&x) * (double)i);
                size_t t = perm[i - 1];
                perm[i - 1] = perm[j];
                perm[j] = t;
            }
            for (size_t v = 0; v < n; v++)
                values[v * np + k] =
                    r->min + (r->max - r->min) * ((double)perm[v] + unit(&x)) / (double)n;
        }
        free(perm);
    }
    for (size_t k = 0; k < np; k++)
        if (param_path_int(p, s->params[k].path))
            for (size_t v = 0; v < n; v++)
                values[v * np + k] = nearbyint(values[v * np + k]);
}

/* ---- checking a spec ----------------------------------------------------------------- */

static bool kpi_or_cost(const struct sim_plant *p, const char *name)
{
    return !strcmp(name, "cost") || sim_kpi_find(p, name) >= 0;
}

int scn_spec_check(const struct sim_plant *p, const struct scn_spec *s, char *err, size_t errlen)
{
    if (!(s->horizon > 0) || !isfinite(s->horizon) || s->horizon > 10 * 366 * 86400.0)
        return fail(err, errlen, "horizon must be > 0 and at most 10 years");
    if (!(s->warmup >= 0) || !(s->warmup < s->horizon))
        return fail(err, errlen, "warm-up must be >= 0 and shorter than the horizon");
    if (s->replications < 1 || s->replications > SCN_MAX_REPLICATIONS)
        return fail(err, errlen, "replications must be 1..%u", SCN_MAX_REPLICATIONS);
    if (s->n_perturb > SCN_MAX_PERTURB || s->n_sets > SCN_MAX_SETS)
        return fail(err, errlen, "at most %u perturbations and %u parameter changes",
                    SCN_MAX_PERTURB, SCN_MAX_SETS);
    for (size_t k = 0; k < s->n_perturb; k++) {
        const struct sim_perturb *pt = &s->perturb[k];
        if (!(pt->start >= 0) || !isfinite(pt->start) || isnan(pt->duration) || pt->duration < 0)
            return fail(err, errlen, "perturbation %zu: start and duration must be >= 0", k + 1);
        switch (pt->kind) {
        case SIM_PERTURB_DOWN:
            if (pt->station < 0 || (uint32_t)pt->station >= p->n_stations)
                return fail(err, errlen, "perturbation %zu: no such station", k + 1);
            if (pt->machine < -1 ||
                (pt->machine >= 0 && (uint32_t)pt->machine >= p->stations[pt->station].machines))
                return fail(err, errlen, "perturbation %zu: no such machine", k + 1);
            break;
        case SIM_PERTURB_SUPPLIER_LATE:
            if (pt->supplier < 0 || (uint32_t)pt->supplier >= p->n_suppliers)
                return fail(err, errlen, "perturbation %zu: no such supplier", k + 1);
            if (!(pt->delay > 0) || !isfinite(pt->delay))
                return fail(err, errlen, "perturbation %zu: delay must be > 0", k + 1);
            break;
        case SIM_PERTURB_DEMAND:
            if (p->demand.kind == SIM_DEMAND_NONE)
                return fail(err, errlen, "perturbation %zu: the plant has no demand", k + 1);
            if (!(pt->factor >= 0) || pt->factor > 1000)
                return fail(err, errlen, "perturbation %zu: factor must be in [0, 1000]", k + 1);
            break;
        default:
            return fail(err, errlen, "perturbation %zu: unknown kind", k + 1);
        }
    }
    struct sim_plant *q = sim_plant_copy(p);
    if (!q)
        return fail(err, errlen, "out of memory");
    int rc = 0;
    for (size_t k = 0; k < s->n_sets && !rc; k++)
        rc = scn_param_apply(q, s->sets[k].path, s->sets[k].value, err, errlen);
    /* A machine-down perturbation must still name a machine after the changes. */
    for (size_t k = 0; k < s->n_perturb && !rc; k++) {
        const struct sim_perturb *pt = &s->perturb[k];
        if (pt->kind == SIM_PERTURB_DOWN && pt->machine >= 0 &&
            (uint32_t)pt->machine >= q->stations[pt->station].machines)
            rc = fail(err, errlen, "perturbation %zu: the changes leave no such machine", k + 1);
    }
    if (!rc && s->has_sweep) {
        const struct scn_sweep *w = &s->sweep;
        if (w->n_params < 1 || w->n_params > SCN_MAX_SWEEP_PARAMS)
            rc = fail(err, errlen, "a sweep needs 1..%u parameters", SCN_MAX_SWEEP_PARAMS);
        for (size_t k = 0; k < w->n_params && !rc; k++) {
            const struct scn_range *r = &w->params[k];
            if (!isfinite(r->cost)) {
                rc = fail(err, errlen, "sweep parameter \"%s\": cost must be finite", r->path);
                break;
            }
            if (r->n_values > SCN_MAX_VALUES) {
                rc = fail(err, errlen, "sweep parameter \"%s\": at most %u values", r->path,
                          SCN_MAX_VALUES);
                break;
            }
            if (r->n_values && w->method != SCN_SWEEP_GRID) {
                rc = fail(err, errlen, "sweep parameter \"%s\": listed values need a grid",
                          r->path);
                break;
            }
            if (r->n_values) {
                for (size_t i = 0; i < r->n_values && !rc; i++)
                    rc = scn_param_check(q, r->path, r->values[i], err, errlen);
                continue;
            }
            if (!(r->max >= r->min) || !isfinite(r->min) || !isfinite(r->max)) {
                rc = fail(err, errlen, "sweep parameter \"%s\": needs min <= max", r->path);
                break;
            }
            if (w->method == SCN_SWEEP_GRID && !(r->step > 0)) {
                rc = fail(err, errlen, "sweep parameter \"%s\": a grid range needs step > 0",
                          r->path);
                break;
            }
            rc = scn_param_check(q, r->path, r->min, err, errlen);
            if (!rc)
                rc = scn_param_check(q, r->path, r->max, err, errlen);
        }
        if (!rc) {
            size_t n = variant_count(w);
            if (n < 1 || n > SCN_MAX_VARIANTS)
                rc = fail(err, errlen, "a sweep must have 1..%u variants (this one has %zu)",
                          SCN_MAX_VARIANTS, n);
        }
        if (!rc && !kpi_or_cost(q, w->objective))
            rc = fail(err, errlen, "objective \"%s\" is not a KPI of this plant", w->objective);
        if (!rc && w->n_constraints > SCN_MAX_CONSTRAINTS)
            rc = fail(err, errlen, "at most %u constraints", SCN_MAX_CONSTRAINTS);
        for (size_t k = 0; k < w->n_constraints && !rc; k++) {
            const struct scn_constraint *c = &w->constraints[k];
            if (!kpi_or_cost(q, c->kpi))
                rc = fail(err, errlen, "constraint on \"%s\": not a KPI of this plant", c->kpi);
            else if (!c->has_min && !c->has_max)
                rc = fail(err, errlen, "constraint on \"%s\": needs a min or a max", c->kpi);
            else if ((c->has_min && !isfinite(c->min)) || (c->has_max && !isfinite(c->max)))
                rc = fail(err, errlen, "constraint on \"%s\": bounds must be finite", c->kpi);
        }
    }
    if (!rc) {
        size_t configs = 2 + (s->has_sweep ? variant_count(&s->sweep) : 0);
        double bytes = (double)configs * s->replications * (double)sim_kpi_count(p) * 8.0;
        if (bytes > 2e9)
            rc = fail(err, errlen, "too big: %.0f MB of results (variants x replications)",
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
static struct scn_estimate estimate(const double *x, size_t n, size_t stride)
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
        if (atomic_load(&js->error) || (js->cancel && *js->cancel))
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
static int fill_kpis(const struct job_set *js, const struct sim_plant *p, size_t cfg,
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
        k[i].base = estimate(base + i, R, nk);
        k[i].scen = estimate(scen + i, R, nk);
        for (size_t r = 0; r < R; r++)
            d[r] = scen[r * nk + i] - base[r * nk + i];
        k[i].diff = estimate(d, R, 1);
    }
    free(d);
    *out = k;
    return 0;
}

struct ranked {
    size_t v;
    double objective, cost;
    bool feasible;
};

static bool maximize_g;

static int rank_cmp(const void *a, const void *b)
{
    const struct ranked *x = a, *y = b;
    if (x->feasible != y->feasible)
        return x->feasible ? -1 : 1;
    bool xn = isnan(x->objective), yn = isnan(y->objective);
    if (xn != yn)
        return xn ? 1 : -1;
    if (!xn && x->objective != y->objective) {
        bool better = maximize_g ? x->objective > y->objective : x->objective < y->objective;
        return better ? -1 : 1;
    }
    if (x->cost != y->cost)
        return x->cost < y->cost ? -1 : 1;
    return x->v < y->v ? -1 : (x->v > y->v);
}

static double kpi_mean(const struct job_set *js, size_t cfg, int kpi)
{
    size_t nk = js->n_kpi, R = js->spec->replications;
    return estimate(js->out + cfg * R * nk + kpi, R, nk).mean;
}

/* A KPI's index, or -1 for "cost" (checked to be one or the other by scn_spec_check). */
static int metric_index(const struct sim_plant *p, const char *name)
{
    return strcmp(name, "cost") ? sim_kpi_find(p, name) : -1;
}

static double metric(const struct job_set *js, size_t cfg, int index, double cost)
{
    return index < 0 ? cost : kpi_mean(js, cfg, index);
}

static pthread_mutex_t rank_lock = PTHREAD_MUTEX_INITIALIZER;

static int rank_variants(const struct job_set *js, const struct sim_plant *p,
                         struct scn_result *res)
{
    const struct scn_sweep *w = &js->spec->sweep;
    size_t nv = js->n_configs - 2, np = w->n_params;
    struct ranked *rk = malloc(nv * sizeof *rk);
    if (!rk)
        return -1;
    int obj = metric_index(p, w->objective), cons[SCN_MAX_CONSTRAINTS];
    for (size_t c = 0; c < w->n_constraints; c++)
        cons[c] = metric_index(p, w->constraints[c].kpi);
    for (size_t v = 0; v < nv; v++) {
        double cost = 0;
        for (size_t k = 0; k < np; k++)
            cost += w->params[k].cost * js->values[v * np + k];
        rk[v] = (struct ranked){v, metric(js, v + 2, obj, cost), cost, true};
        for (size_t c = 0; c < w->n_constraints; c++) {
            const struct scn_constraint *ct = &w->constraints[c];
            double m = metric(js, v + 2, cons[c], cost);
            if (isnan(m) || (ct->has_min && m < ct->min) || (ct->has_max && m > ct->max))
                rk[v].feasible = false;
        }
        if (isnan(rk[v].objective))
            rk[v].feasible = false;
        if (rk[v].feasible)
            res->variants_feasible++;
    }
    pthread_mutex_lock(&rank_lock); /* qsort has no context argument in C11 */
    maximize_g = w->maximize;
    qsort(rk, nv, sizeof *rk, rank_cmp);
    pthread_mutex_unlock(&rank_lock);
    size_t top = w->top ? w->top : 10;
    if (top > nv)
        top = nv;
    res->variants = calloc(top ? top : 1, sizeof *res->variants);
    if (!res->variants) {
        free(rk);
        return -1;
    }
    for (size_t i = 0; i < top; i++) {
        struct scn_variant *out = &res->variants[i];
        size_t v = rk[i].v;
        for (size_t k = 0; k < np; k++)
            out->values[k] = js->values[v * np + k];
        out->objective = rk[i].objective;
        out->cost = rk[i].cost;
        out->feasible = rk[i].feasible;
        out->n_kpis = js->n_kpi;
        if (fill_kpis(js, p, v + 2, &out->kpis)) {
            free(rk);
            return -1;
        }
        res->n_variants = i + 1;
    }
    res->variants_total = (uint32_t)nv;
    free(rk);
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
    size_t nv = s->has_sweep ? variant_count(&s->sweep) : 0;
    if (nv) {
        values = malloc(nv * s->sweep.n_params * sizeof *values);
        if (!values)
            goto done;
        make_variants(scen, &s->sweep, s->seed, nv, values);
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
    if (cancel && *cancel) {
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
    if (fill_kpis(js, p, 1, &res->kpis) || (nv && rank_variants(js, p, res)))
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
