/* SPDX-License-Identifier: Apache-2.0 */
/* The variants of a sweep (grid, random and Latin-hypercube points) and their ranking by the
 * objective under the constraints, for scn_run. */
#include "scenario_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

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

size_t scn_variant_count(const struct scn_sweep *s)
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
void scn_make_variants(const struct sim_plant *p, const struct scn_sweep *s, uint64_t seed,
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
        if (scn_param_path_int(p, s->params[k].path))
            for (size_t v = 0; v < n; v++)
                values[v * np + k] = nearbyint(values[v * np + k]);
}

/* ---- ranking ------------------------------------------------------------------------- */

struct ranked {
    size_t v;
    double objective, cost;
    double key; /* the objective, negated when maximising: smaller ranks first */
    bool feasible;
};

static int rank_cmp(const void *a, const void *b)
{
    const struct ranked *x = a, *y = b;
    if (x->feasible != y->feasible)
        return x->feasible ? -1 : 1;
    bool xn = isnan(x->key), yn = isnan(y->key);
    if (xn != yn)
        return xn ? 1 : -1;
    if (!xn && x->key != y->key)
        return x->key < y->key ? -1 : 1;
    if (x->cost != y->cost)
        return x->cost < y->cost ? -1 : 1;
    return x->v < y->v ? -1 : (x->v > y->v);
}

static double kpi_mean(const struct job_set *js, size_t cfg, int kpi)
{
    size_t nk = js->n_kpi, R = js->spec->replications;
    return scn_estimate_of(js->out + cfg * R * nk + kpi, R, nk).mean;
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

int scn_rank_variants(const struct job_set *js, const struct sim_plant *p,
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
        double o = metric(js, v + 2, obj, cost);
        rk[v] = (struct ranked){v, o, cost, w->maximize ? -o : o, true};
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
    qsort(rk, nv, sizeof *rk, rank_cmp);
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
        if (scn_fill_kpis(js, p, v + 2, &out->kpis)) {
            free(rk);
            return -1;
        }
        res->n_variants = i + 1;
    }
    res->variants_total = (uint32_t)nv;
    free(rk);
    return 0;
}
