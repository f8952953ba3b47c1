/* SPDX-License-Identifier: Apache-2.0 */
/* Plant data helpers: distributions' derived parameters, deep copy, lookups by name, curves. */
#include "plant.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static bool finite_nonneg(double x)
{
    return isfinite(x) && x >= 0.0;
}

static bool dist_fail(const char **why, const char *reason)
{
    if (why)
        *why = reason;
    return false;
}

bool sim_dist_finish(struct sim_dist *d, const char **why)
{
    d->scale = 1.0;
    d->mu = d->sigma = 0.0;
    switch (d->kind) {
    case SIM_DIST_FIXED:
        if (!finite_nonneg(d->a))
            return dist_fail(why, "value must be a finite number >= 0");
        d->mean = d->a;
        return true;
    case SIM_DIST_EXP:
        if (!finite_nonneg(d->a) || d->a <= 0.0)
            return dist_fail(why, "mean must be a finite number > 0");
        d->mean = d->a;
        return true;
    case SIM_DIST_UNIFORM:
        if (!finite_nonneg(d->a) || !finite_nonneg(d->b) || d->a > d->b)
            return dist_fail(why, "needs 0 <= min <= max, finite");
        d->mean = 0.5 * (d->a + d->b);
        return true;
    case SIM_DIST_TRIANGULAR:
        if (!finite_nonneg(d->a) || !finite_nonneg(d->b) || !finite_nonneg(d->c) || d->a > d->b ||
            d->b > d->c || d->a == d->c)
            return dist_fail(why, "needs 0 <= min <= mode <= max and min < max, finite");
        d->mean = (d->a + d->b + d->c) / 3.0;
        return true;
    case SIM_DIST_NORMAL:
        if (!finite_nonneg(d->a) || !finite_nonneg(d->b))
            return dist_fail(why, "needs a finite mean >= 0 and sd >= 0");
        d->mean = d->a; /* draws below 0 are redrawn: the true mean is a little higher when
                         * sd is large against the mean, which a model should avoid */
        return true;
    case SIM_DIST_LOGNORMAL:
        if (!finite_nonneg(d->a) || d->a <= 0.0 || !finite_nonneg(d->b))
            return dist_fail(why, "needs a finite mean > 0 and sd >= 0");
        d->sigma = sqrt(log1p((d->b * d->b) / (d->a * d->a)));
        d->mu = log(d->a) - 0.5 * d->sigma * d->sigma;
        d->mean = d->a;
        return true;
    case SIM_DIST_WEIBULL:
        if (!(d->a >= SIM_WEIBULL_SHAPE_MIN && d->a <= SIM_WEIBULL_SHAPE_MAX))
            return dist_fail(why, "shape must be a number from 0.1 to 50");
        if (!finite_nonneg(d->b) || d->b <= 0.0)
            return dist_fail(why, "scale must be a finite duration > 0");
        d->mean = d->b * tgamma(1.0 + 1.0 / d->a);
        return true;
    }
    return dist_fail(why, "unknown distribution");
}

bool sim_dist_set_mean(struct sim_dist *d, double m)
{
    if (!isfinite(m) || m < 0.0)
        return false;
    if (d->mean <= 0.0) {
        if (m == 0.0) {
            d->scale = 1.0;
            return true;
        }
        /* A zero distribution (FIXED 0) becomes FIXED m: the only shape it has. */
        if (d->kind != SIM_DIST_FIXED)
            return false;
        d->a = m;
        d->mean = m;
        d->scale = 1.0;
        return true;
    }
    d->scale = m / d->mean;
    return true;
}

static void *dup_array(const void *src, size_t n, size_t size)
{
    if (n == 0)
        return NULL;
    void *p = malloc(n * size);
    if (p)
        memcpy(p, src, n * size);
    return p;
}

struct sim_plant *sim_plant_copy(const struct sim_plant *p)
{
    struct sim_plant *q = malloc(sizeof *q);
    if (!q)
        return NULL;
    *q = *p;
    q->stations = dup_array(p->stations, p->n_stations, sizeof *p->stations);
    q->buffers = dup_array(p->buffers, p->n_buffers, sizeof *p->buffers);
    q->stocks = dup_array(p->stocks, p->n_stocks, sizeof *p->stocks);
    q->suppliers = dup_array(p->suppliers, p->n_suppliers, sizeof *p->suppliers);
    if ((p->n_stations && !q->stations) || (p->n_buffers && !q->buffers) ||
        (p->n_stocks && !q->stocks) || (p->n_suppliers && !q->suppliers)) {
        sim_plant_free(q);
        return NULL;
    }
    return q;
}

void sim_plant_free(struct sim_plant *p)
{
    if (!p)
        return;
    free(p->stations);
    free(p->buffers);
    free(p->stocks);
    free(p->suppliers);
    free(p);
}

/* The structs differ but each starts with its name, so one lookup serves all four arrays. */
static int find_name(const void *base, size_t n, size_t size, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp((const char *)base + i * size, name) == 0)
            return (int)i;
    return -1;
}

int sim_plant_station(const struct sim_plant *p, const char *name)
{
    return find_name(p->stations, p->n_stations, sizeof *p->stations, name);
}

int sim_plant_buffer(const struct sim_plant *p, const char *name)
{
    return find_name(p->buffers, p->n_buffers, sizeof *p->buffers, name);
}

int sim_plant_stock(const struct sim_plant *p, const char *name)
{
    return find_name(p->stocks, p->n_stocks, sizeof *p->stocks, name);
}

int sim_plant_supplier(const struct sim_plant *p, const char *name)
{
    return find_name(p->suppliers, p->n_suppliers, sizeof *p->suppliers, name);
}

double sim_curve_eval(const struct sim_curve *c, double x)
{
    if (c->n == 0)
        return 1.0;
    if (!(x > c->x[0]))
        return c->y[0];
    for (uint32_t i = 1; i < c->n; i++)
        if (x <= c->x[i]) {
            double f = (x - c->x[i - 1]) / (c->x[i] - c->x[i - 1]);
            return c->y[i - 1] + f * (c->y[i] - c->y[i - 1]);
        }
    return c->y[c->n - 1];
}

bool sim_station_set_wear(struct sim_station *s, uint32_t m, double v)
{
    const struct sim_station_live *l = &s->live;
    if (l->wear.n == 0 || m >= s->machines || m >= SIM_MAX_MACHINES || !isfinite(v))
        return false;
    double y = sim_curve_eval(&l->wear, v);
    if (l->wear_is_age) {
        if (!isfinite(y) || y < 0)
            return false;
        s->machine_age[m] = y;
        return true;
    }
    if (!isfinite(y) || !(y > 0))
        return false;
    s->machine_mtbf_factor[m] = y;
    return true;
}
