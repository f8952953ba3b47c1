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

/* Whether the fitted recursion is explosive (a root outside the unit circle): its impulse
 * response still grows by half between steps 64 and 128, which a stable recursion's does not
 * (and a unit root's, a trend, only grows linearly). A fit thrown by a restart after a flat
 * stretch can be: iterated far ahead it runs off to 1e18 within the hour. */
#define EXPLOSIVE_GROWTH 1.5

static bool ar_explosive(const struct pred_ar *a)
{
    double v[PRED_AR_ORDER] = {1.0}, at64 = 0, at128 = 0;
    for (uint32_t k = 1; k <= 128; k++) {
        double y = 0;
        for (uint32_t i = 0; i < PRED_AR_ORDER; i++)
            y += a->theta[i + 1] * v[i];
        memmove(v + 1, v, (PRED_AR_ORDER - 1) * sizeof(double));
        v[0] = y;
        for (uint32_t i = 0; k % 64 == 0 && i < PRED_AR_ORDER; i++)
            *(k == 64 ? &at64 : &at128) += fabs(v[i]);
    }
    return !(at128 <= EXPLOSIVE_GROWTH * at64 + 1.0);
}

void pred_ar_path(const struct pred_ar *a, const uint32_t *h, size_t n, double *out)
{
    double lag[PRED_AR_ORDER], phi[PRED_AR_DIM], y = 0;
    if (a->n_lags < PRED_AR_ORDER) {
        for (size_t i = 0; i < n; i++)
            out[i] = a->n_lags ? a->lag[0] * a->scale + a->centre : NAN;
        return;
    }
    bool explosive = false, checked = false;
    uint32_t k = UINT32_MAX; /* steps iterated into lag and y: none yet */
    for (size_t i = 0; i < n; i++) {
        if (h[i] > 1 && !checked) {
            explosive = ar_explosive(a);
            checked = true;
        }
        if (h[i] > 1 && explosive) { /* no forecast beyond the next step */
            out[i] = NAN;
            continue;
        }
        if (k > h[i]) { /* the first point, or one nearer than the last: from the start */
            memcpy(lag, a->lag, sizeof(lag));
            k = 0;
        }
        for (; k < h[i]; k++) {
            ar_regressor(lag, phi);
            y = ar_dot(a->theta, phi);
            memmove(lag + 1, lag, (PRED_AR_ORDER - 1) * sizeof(double));
            lag[0] = y;
        }
        out[i] = y * a->scale + a->centre;
    }
}

double pred_ar_forecast(const struct pred_ar *a, uint32_t h)
{
    double y;
    pred_ar_path(a, &h, 1, &y);
    return y;
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

/* ---- grey-box ------------------------------------------------------------------------------ */

#define GREY_P_START   1e4 /* P's start: a prior worth 1e-4 observations, whatever the units */
#define GREY_TRACE_MAX 1e8 /* as AR_TRACE_MAX: no forgetting while P is this large */
#define GREY_PHI_MAX   0.999

static unsigned grey_dim(const struct pred_grey_spec *spec)
{
    return 1u + (spec->cycle_s > 0 ? 2u : 0u) + spec->drift;
}

static unsigned grey_at(unsigned i, unsigned j)
{
    if (i > j) {
        unsigned k = i;
        i = j;
        j = k;
    }
    return i * PRED_GREY_MAX - i * (i - 1) / 2 + (j - i);
}

/* The relation's regressors at t_ms, whose τ is tau: 1, the cycle's cos and sin, τ, τ². */
static void grey_features(const struct pred_grey_spec *spec, int64_t t_ms, double tau, double *f)
{
    unsigned n = 0;
    f[n++] = 1.0;
    if (spec->cycle_s > 0) {
        int64_t period = 1000 * (int64_t)spec->cycle_s, in = t_ms % period;
        if (in < 0)
            in += period;
        double w = 2.0 * M_PI * (double)in / (double)period;
        f[n++] = cos(w);
        f[n++] = sin(w);
    }
    if (spec->drift >= 1)
        f[n++] = tau;
    if (spec->drift >= 2)
        f[n++] = tau * tau;
}

static double grey_relation(const struct pred_grey *g, const double *f, unsigned n)
{
    double y = 0;
    for (unsigned i = 0; i < n; i++)
        y += g->theta[i] * f[i];
    return y;
}

static double grey_tau(const struct pred_grey *g, const struct pred_grey_spec *spec, int64_t t_ms)
{
    return g->tau + (double)(t_ms - g->t_ms) / (1e3 * spec->memory_s);
}

static double grey_phi(const struct pred_grey *g)
{
    if (!(g->rxx > 0))
        return 0.0;
    return fmin(fmax((double)g->rxy / g->rxx, 0.0), GREY_PHI_MAX);
}

void pred_grey_init(struct pred_grey *g, const struct pred_grey_spec *spec, int64_t t_ms, double x)
{
    memset(g, 0, sizeof(*g));
    g->theta[0] = x;
    for (unsigned i = 0; i < grey_dim(spec); i++)
        g->p[grey_at(i, i)] = GREY_P_START;
    g->t_ms = t_ms;
}

double pred_grey_forecast(const struct pred_grey *g, const struct pred_grey_spec *spec,
                          int64_t step_ms, uint32_t h)
{
    double f[PRED_GREY_MAX];
    int64_t t_ms = g->t_ms + (int64_t)h * step_ms;
    grey_features(spec, t_ms, grey_tau(g, spec, t_ms), f);
    return grey_relation(g, f, grey_dim(spec)) + pow(grey_phi(g), h) * g->resid;
}

/* Moves τ's origin to the last observation: the drift terms are re-expanded around it (θ' = Tθ,
 * P' = T P Tᵀ), so τ and τ² stay near 1 and P well conditioned however long the signal runs. */
static void grey_rebase(struct pred_grey *g, const struct pred_grey_spec *spec)
{
    unsigned n = grey_dim(spec);
    unsigned j1 = spec->cycle_s > 0 ? 3u : 1u, j2 = j1 + 1;
    double d = g->tau, t[PRED_GREY_MAX][PRED_GREY_MAX] = {{0}};
    for (unsigned i = 0; i < n; i++)
        t[i][i] = 1.0;
    t[0][j1] = d;
    if (spec->drift >= 2) {
        t[0][j2] = d * d;
        t[j1][j2] = 2.0 * d;
    }
    double th[PRED_GREY_MAX] = {0}, tp[PRED_GREY_MAX][PRED_GREY_MAX] = {{0}};
    for (unsigned i = 0; i < n; i++)
        for (unsigned k = 0; k < n; k++) {
            th[i] += t[i][k] * g->theta[k];
            for (unsigned j = 0; j < n; j++)
                tp[i][j] += t[i][k] * g->p[grey_at(k, j)];
        }
    for (unsigned i = 0; i < n; i++) {
        g->theta[i] = th[i];
        for (unsigned j = i; j < n; j++) {
            double v = 0;
            for (unsigned k = 0; k < n; k++)
                v += tp[i][k] * t[j][k];
            g->p[grey_at(i, j)] = v;
        }
    }
    g->tau = 0.0;
}

void pred_grey_update(struct pred_grey *g, const struct pred_grey_spec *spec, int64_t t_ms,
                      double x)
{
    unsigned n = grey_dim(spec);
    double tau = grey_tau(g, spec, t_ms), f[PRED_GREY_MAX], pf[PRED_GREY_MAX];
    /* Forgetting by the time that passed (none for a clock that did not move on). */
    double lambda = t_ms > g->t_ms ? exp(-(double)(t_ms - g->t_ms) / (1e3 * spec->memory_s)) : 1.0;
    grey_features(spec, t_ms, tau, f);
    double pre = x - grey_relation(g, f, n);
    double trace = 0;
    for (unsigned i = 0; i < n; i++)
        trace += g->p[grey_at(i, i)];
    if (trace > GREY_TRACE_MAX)
        lambda = 1.0;
    double denom = lambda;
    for (unsigned i = 0; i < n; i++) {
        pf[i] = 0;
        for (unsigned j = 0; j < n; j++)
            pf[i] += g->p[grey_at(i, j)] * f[j];
        denom += f[i] * pf[i];
    }
    for (unsigned i = 0; i < n; i++) {
        g->theta[i] += pf[i] * pre / denom;
        for (unsigned j = i; j < n; j++)
            g->p[grey_at(i, j)] = (g->p[grey_at(i, j)] - pf[i] * pf[j] / denom) / lambda;
    }
    /* The residual's autoregression: what the relation missed now against what it had left
     * unexplained at the last step. */
    g->rxy = (float)(lambda * g->rxy + pre * g->resid);
    g->rxx = (float)(lambda * g->rxx + g->resid * g->resid);
    g->resid = x - grey_relation(g, f, n);
    g->t_ms = t_ms;
    g->tau = tau;
    if (spec->drift > 0 && g->tau > 1.0)
        grey_rebase(g, spec);
}

void pred_grey_skip(struct pred_grey *g, const struct pred_grey_spec *spec, int64_t step_ms)
{
    g->resid *= grey_phi(g);
    g->tau = grey_tau(g, spec, g->t_ms + step_ms);
    g->t_ms += step_ms;
}

void pred_grey_shift(struct pred_grey *g, double delta)
{
    g->theta[0] += delta;
}

bool pred_grey_valid(const struct pred_grey *g, const struct pred_grey_spec *spec)
{
    for (unsigned i = 0; i < PRED_GREY_MAX; i++)
        if (!isfinite(g->theta[i]))
            return false;
    for (unsigned i = 0; i < PRED_GREY_PSIZE; i++)
        if (!isfinite(g->p[i]))
            return false;
    for (unsigned i = 0; i < grey_dim(spec); i++)
        if (!(g->p[grey_at(i, i)] > 0))
            return false;
    return isfinite(g->tau) && fabs(g->tau) <= 1e9 && isfinite(g->resid) && isfinite(g->rxy) &&
           isfinite(g->rxx) && g->rxx >= 0 && g->t_ms > -(1LL << 60) && g->t_ms < (1LL << 60);
}
