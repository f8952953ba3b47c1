/* SPDX-License-Identifier: Apache-2.0 */
/* The predictor's forecasting models: seasonal phase, exponential smoothing (R's HoltWinters
 * form, with damping) and autoregression by recursive least squares. */
#include "models.h"

#include <math.h>
#include <string.h>

/* ---- seasons ------------------------------------------------------------------------------ */

void pred_season_init(struct pred_season *se, uint32_t m)
{
    se->m = m;
    se->nbins = m == 0 ? 0 : (m <= PRED_SEASON_POINTS ? m : PRED_SEASON_POINTS);
    se->per_bin = m == 0 ? 1.0 : (double)m / se->nbins;
}

/* Value i covers steps [i·per_bin, (i+1)·per_bin) and sits at their middle; a step between two
 * middles reads both. With one value per step the step sits exactly on its own value. */
struct pred_phase pred_season_phase(const struct pred_season *se, uint64_t t)
{
    struct pred_phase p = {0, 0, 0.0};
    if (se->m == 0)
        return p;
    uint64_t pos = t % se->m;
    if (se->nbins == se->m) {
        p.i0 = p.i1 = (uint32_t)pos;
        return p;
    }
    double v = ((double)pos + 0.5) / se->per_bin - 0.5;
    double fl = floor(v);
    p.f = v - fl;
    int64_t i0 = (int64_t)fl;
    if (i0 < 0)
        i0 += se->nbins;
    p.i0 = (uint32_t)i0;
    p.i1 = (p.i0 + 1) % se->nbins;
    return p;
}

double pred_season_get(const double *s, struct pred_phase p)
{
    return p.f == 0.0 ? s[p.i0] : (1.0 - p.f) * s[p.i0] + p.f * s[p.i1];
}

void pred_season_blend(double *s, struct pred_phase p, double target, double rate)
{
    if (p.f == 0.0) {
        s[p.i0] = rate * target + (1.0 - rate) * s[p.i0];
        return;
    }
    double err = target - pred_season_get(s, p);
    s[p.i0] += rate * (1.0 - p.f) * err;
    s[p.i1] += rate * p.f * err;
}

/* ---- exponential smoothing ---------------------------------------------------------------- */

bool pred_es_set_params(struct pred_es *e, const struct pred_season *se, double alpha, double beta,
                        double gamma, double phi)
{
    if (!(alpha >= 0 && alpha <= 1 && beta >= 0 && beta <= 1 && gamma >= 0 && gamma <= 1 &&
          phi > 0 && phi <= 1))
        return false;
    e->alpha = (float)alpha;
    e->beta = (float)beta;
    e->gamma = (float)gamma;
    e->phi = (float)phi;
    /* A value read by per_bin steps per pass moves by gamma per pass in total. */
    e->gamma_step = (float)(se->per_bin <= 1.0 ? gamma : 1.0 - pow(1.0 - gamma, 1.0 / se->per_bin));
    return true;
}

/* phi + phi^2 + … + phi^h */
static double es_damped_sum(double phi, uint32_t h)
{
    if (phi >= 1.0)
        return (double)h;
    return phi * (1.0 - pow(phi, (double)h)) / (1.0 - phi);
}

double pred_es_forecast(const struct pred_es *e, const struct pred_season *se, const double *s,
                        uint64_t t, uint32_t h)
{
    double base = e->level + (e->trended ? e->trend * es_damped_sum(e->phi, h) : 0.0);
    if (e->season == PRED_ES_NONE || !s || se->m == 0)
        return base;
    double st = pred_season_get(s, pred_season_phase(se, t + h));
    return e->season == PRED_ES_ADD ? base + st : base * st;
}

double pred_es_update(struct pred_es *e, const struct pred_season *se, double *s, uint64_t t,
                      double x)
{
    bool seasonal = e->season != PRED_ES_NONE && s && se->m > 0;
    struct pred_phase ph = seasonal ? pred_season_phase(se, t) : (struct pred_phase){0, 0, 0};
    double st = seasonal ? pred_season_get(s, ph) : (e->season == PRED_ES_MULT ? 1.0 : 0.0);
    double trend = e->trended ? e->phi * e->trend : 0.0;
    double base = e->level + trend;
    double xhat = e->season == PRED_ES_MULT ? base * st : base + st;
    /* Ratios need values well away from 0: a signal that drops to ~0 (a stopped pump) would
     * blow the level up through x / season. */
    if (e->season == PRED_ES_MULT && !(x > 0 && st > 1e-3 && st < 1e3 && base > 0))
        return NAN;
    double prev = e->level;
    double deseason = e->season == PRED_ES_MULT ? x / st : x - st;
    e->level = e->alpha * deseason + (1.0 - e->alpha) * base;
    if (e->trended)
        e->trend = e->beta * (e->level - prev) + (1.0 - e->beta) * trend;
    if (seasonal) {
        if (e->season == PRED_ES_MULT) {
            if (!(e->level > 0) || !(x / e->level < 1e3))
                return NAN;
            pred_season_blend(s, ph, x / e->level, e->gamma_step);
        } else {
            pred_season_blend(s, ph, x - e->level, e->gamma_step);
        }
    }
    return xhat;
}

void pred_es_skip(struct pred_es *e)
{
    if (e->trended) {
        e->trend *= (double)e->phi;
        e->level += e->trend;
    }
}

void pred_es_shift(struct pred_es *e, double delta)
{
    e->level += delta;
}

void pred_es_start_level(struct pred_es *e, double x0)
{
    e->level = x0;
    e->trend = 0.0;
    e->trended = false;
}

void pred_es_start_holt(struct pred_es *e, double x0, double x1)
{
    e->level = x1;
    e->trend = x1 - x0;
    e->trended = true;
}

/* R's decompose() on two seasons: centred moving average over one season (weights 1/2 at both
 * ends for an even season), then the mean detrended value per position, centred. Writes the
 * moving average's defined values into ma (count returned) and the figure into fig. */
static size_t es_decompose(const double *x, uint32_t m, bool mult, double *ma, double *fig)
{
    uint32_t n = 2 * m, half = m / 2;
    size_t n_ma = 0;
    double sum[PRED_SEASON_POINTS] = {0};
    uint32_t cnt[PRED_SEASON_POINTS] = {0};
    for (uint32_t i = half; i + half < n; i++) {
        double acc = 0;
        if (m % 2 == 0) {
            acc = 0.5 * x[i - half] + 0.5 * x[i + half];
            for (uint32_t j = i - half + 1; j < i + half; j++)
                acc += x[j];
        } else {
            for (uint32_t j = i - half; j <= i + half; j++)
                acc += x[j];
        }
        double tr = acc / m;
        ma[n_ma++] = tr;
        sum[i % m] += mult ? x[i] / tr : x[i] - tr;
        cnt[i % m]++;
    }
    double mean = 0;
    for (uint32_t k = 0; k < m; k++) {
        fig[k] = sum[k] / cnt[k];
        mean += fig[k] / m;
    }
    for (uint32_t k = 0; k < m; k++)
        fig[k] = mult ? fig[k] / mean : fig[k] - mean;
    return n_ma;
}

bool pred_es_start_seasonal(struct pred_es *e, const struct pred_season *se, double *s,
                            const double *x)
{
    uint32_t nb = se->nbins;
    if (nb < 2)
        return false;
    bool mult = e->season == PRED_ES_MULT;
    for (uint32_t i = 0; mult && i < 2 * nb; i++)
        if (!(x[i] > 0))
            return false;
    double ma[2 * PRED_SEASON_POINTS];
    double n = (double)es_decompose(x, nb, mult, ma, s);
    /* Straight line through the moving average, against 1..n (R: .lm.fit(cbind(1,
     * seq_along(dat)))). */
    double sx = 0, sy = 0, sxx = 0, sxy = 0;
    for (size_t i = 0; i < (size_t)n; i++) {
        double xi = (double)(i + 1);
        sx += xi;
        sy += ma[i];
        sxx += xi * xi;
        sxy += xi * ma[i];
    }
    double slope = (n * sxy - sx * sy) / (n * sxx - sx * sx);
    double icpt = (sy - slope * sx) / n;
    e->trended = true;
    if (nb == se->m) { /* R's start: the caller filters the second season from step m */
        e->level = icpt;
        e->trend = slope;
        return true;
    }
    /* Long season: no step-level replay is possible from means, so start where the data ends:
     * the line at the last value's middle (index 2·nb − 1 of x is position 2·nb − nb/2 − … of
     * the line, which starts at value nb/2). */
    double at = (double)(2 * nb - 1) - (double)(nb / 2) + 1.0;
    e->level = icpt + slope * at;
    e->trend = slope / se->per_bin;
    return true;
}

/* ---- autoregression by recursive least squares ------------------------------------------- */

/* Index of P(i, j) in the packed upper half, for any order of i and j. */
static uint32_t ar_at(uint32_t i, uint32_t j)
{
    if (i > j) {
        uint32_t t = i;
        i = j;
        j = t;
    }
    return i * PRED_AR_DIM - i * (i - 1u) / 2u + (j - i);
}

void pred_ar_init(struct pred_ar *a, double lambda, double delta, double centre, double scale)
{
    memset(a, 0, sizeof(*a));
    a->lambda = lambda;
    a->centre = centre;
    a->scale = scale > 0 ? scale : 1.0;
    for (uint32_t i = 0; i < PRED_AR_DIM; i++)
        a->p[ar_at(i, i)] = 1.0 / delta;
}

static double ar_dot(const double *theta, const double *phi)
{
    double y = 0;
    for (uint32_t i = 0; i < PRED_AR_DIM; i++)
        y += theta[i] * phi[i];
    return y;
}

static void ar_regressor(const double *lag, double *phi)
{
    phi[0] = 1.0;
    for (uint32_t i = 0; i < PRED_AR_ORDER; i++)
        phi[i + 1] = lag[i];
}

double pred_ar_forecast(const struct pred_ar *a, uint32_t h)
{
    double lag[PRED_AR_ORDER], phi[PRED_AR_DIM], y = 0;
    if (a->n_lags < PRED_AR_ORDER)
        return a->n_lags ? a->lag[0] * a->scale + a->centre : NAN;
    memcpy(lag, a->lag, sizeof(lag));
    for (uint32_t k = 0; k < h; k++) {
        ar_regressor(lag, phi);
        y = ar_dot(a->theta, phi);
        memmove(lag + 1, lag, (PRED_AR_ORDER - 1) * sizeof(double));
        lag[0] = y;
    }
    return y * a->scale + a->centre;
}

static void ar_push(struct pred_ar *a, double z)
{
    memmove(a->lag + 1, a->lag, (PRED_AR_ORDER - 1) * sizeof(double));
    a->lag[0] = z;
    if (a->n_lags < PRED_AR_ORDER)
        a->n_lags++;
}

/* P is kept symmetric; its trace is capped so that a signal that stops moving (no excitation)
 * cannot blow it up through 1/lambda^n. */
#define AR_TRACE_MAX 1e8

static void ar_rls_step(struct pred_ar *a, const double *phi, double y)
{
    enum { D = PRED_AR_DIM };
    double pphi[D], k[D];
    double denom = a->lambda;
    for (uint32_t i = 0; i < D; i++) {
        pphi[i] = 0;
        for (uint32_t j = 0; j < D; j++)
            pphi[i] += a->p[ar_at(i, j)] * phi[j];
        denom += phi[i] * pphi[i];
    }
    double err = y - ar_dot(a->theta, phi);
    double trace = 0;
    for (uint32_t i = 0; i < D; i++) {
        k[i] = pphi[i] / denom;
        a->theta[i] += k[i] * err;
    }
    for (uint32_t i = 0; i < D; i++) {
        for (uint32_t j = i; j < D; j++) {
            uint32_t at = ar_at(i, j);
            a->p[at] = (a->p[at] - k[i] * pphi[j]) / a->lambda;
        }
        trace += a->p[ar_at(i, i)];
    }
    if (trace > AR_TRACE_MAX)
        for (uint32_t i = 0; i < PRED_AR_PSIZE; i++)
            a->p[i] *= AR_TRACE_MAX / trace;
}

double pred_ar_update(struct pred_ar *a, double x)
{
    double z = (x - a->centre) / a->scale;
    double xhat = NAN;
    if (a->n_lags == PRED_AR_ORDER) {
        double phi[PRED_AR_DIM];
        ar_regressor(a->lag, phi);
        xhat = ar_dot(a->theta, phi) * a->scale + a->centre;
        ar_rls_step(a, phi, z);
    }
    ar_push(a, z);
    return xhat;
}

void pred_ar_skip(struct pred_ar *a)
{
    if (a->n_lags == 0)
        return;
    double y = (pred_ar_forecast(a, 1) - a->centre) / a->scale;
    ar_push(a, y);
}

void pred_ar_shift(struct pred_ar *a, double delta)
{
    double d = delta / a->scale;
    double sum_phi = 0;
    for (uint32_t i = 0; i < a->n_lags; i++) {
        a->lag[i] += d;
        sum_phi += a->theta[i + 1];
    }
    /* Keep the fitted mean in step with the lags: intercept moves by d·(1 − Σphi). */
    a->theta[0] += d * (1.0 - sum_phi);
}
