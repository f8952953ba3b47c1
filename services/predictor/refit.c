/* SPDX-License-Identifier: Apache-2.0 */
/* Batch refit of a signal's Holt-Winters parameters from its history: R's HoltWinters fit (the
 * one-step SSE from R's start values, minimised by Nelder-Mead), installed when it beats the
 * parameters the online search holds. Pure: the caller reads the history. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "engine_internal.h"
#include "twin/err.h"

#define FIT_MAX_EVALS   600u /* per Nelder-Mead run */
#define FIT_START_SIZE  0.1  /* initial simplex edge (parameters in [0, 1]) */
#define FIT_TOL         1e-9 /* relative spread of the simplex's SSEs that ends a run */
#define REFIT_MAX_STEPS 1024u
/* The first refit comes after this many seasons: five seasons of one-step errors (R's fit
 * filters from the second season), about four per parameter counting the m + 2 start values. A
 * fit to fewer overfits: on US accidental deaths, four seasons give R's fit, whose forecast two
 * seasons ahead is three times worse than the seasonal naive one. */
#define REFIT_FIRST 6u

/* ---- the fit ------------------------------------------------------------------------------ */

double pred_es_seasonal_sse(struct pred_es *e, const struct pred_season *se, double *s,
                            const double *x, size_t n, uint64_t t0)
{
    uint32_t m = se->m;
    if (m < 2 || se->nbins != m || n < 2ull * m || t0 % m != 0)
        return INFINITY;
    for (uint32_t i = 0; i < 2 * m; i++)
        if (!isfinite(x[i]))
            return INFINITY;
    if (!pred_es_start_seasonal(e, se, s, x))
        return INFINITY;
    double sse = 0;
    for (size_t i = m; i < n; i++) {
        if (isnan(x[i])) {
            pred_es_skip(e);
            continue;
        }
        double xhat = pred_es_update(e, se, s, t0 + i, x[i]);
        if (!isfinite(xhat) || !isfinite(e->level))
            return INFINITY;
        sse += (x[i] - xhat) * (x[i] - xhat);
    }
    return isfinite(sse) ? sse : INFINITY;
}

struct fit_problem {
    struct pred_es form; /* season kind and phi */
    const struct pred_season *se;
    const double *x;
    size_t n;
    uint64_t t0;
    unsigned evals;
};

/* SSE at p (alpha, beta, gamma), evaluated at p clamped into [0, 1]; outside the box the SSE
 * grows with the distance, which leads the simplex back. */
static double fit_eval(struct fit_problem *fp, const double p[3])
{
    double q[3], d2 = 0;
    for (int k = 0; k < 3; k++) {
        q[k] = fmin(fmax(p[k], 0.0), 1.0);
        d2 += (p[k] - q[k]) * (p[k] - q[k]);
    }
    struct pred_es e = fp->form;
    double season[PRED_SEASON_POINTS];
    fp->evals++;
    if (!pred_es_set_params(&e, fp->se, q[0], q[1], q[2], e.phi))
        return INFINITY;
    return pred_es_seasonal_sse(&e, fp->se, season, fp->x, fp->n, fp->t0) * (1.0 + d2);
}

/* Nelder-Mead (reflection 1, expansion 2, contraction 1/2, shrink 1/2) from p; p gets the best
 * point, its SSE is returned. */
static double fit_nelder_mead(struct fit_problem *fp, double p[3])
{
    double v[4][3], f[4];
    for (int i = 0; i < 4; i++) {
        memcpy(v[i], p, sizeof(v[i]));
        if (i > 0)
            v[i][i - 1] += p[i - 1] + FIT_START_SIZE <= 1.0 ? FIT_START_SIZE : -FIT_START_SIZE;
        f[i] = fit_eval(fp, v[i]);
    }
    unsigned start = fp->evals;
    while (fp->evals - start < FIT_MAX_EVALS) {
        for (int i = 1; i < 4; i++) /* sort by SSE (insertion: four points) */
            for (int j = i; j > 0 && f[j] < f[j - 1]; j--) {
                double tf = f[j], tv[3];
                memcpy(tv, v[j], sizeof(tv));
                f[j] = f[j - 1], memcpy(v[j], v[j - 1], sizeof(tv));
                f[j - 1] = tf, memcpy(v[j - 1], tv, sizeof(tv));
            }
        if (!isfinite(f[0]) || f[3] - f[0] <= FIT_TOL * f[0])
            break;
        double c[3], r[3], t[3];
        for (int k = 0; k < 3; k++) {
            c[k] = (v[0][k] + v[1][k] + v[2][k]) / 3.0;
            r[k] = c[k] + (c[k] - v[3][k]);
        }
        double fr = fit_eval(fp, r);
        if (fr < f[0]) {
            for (int k = 0; k < 3; k++)
                t[k] = c[k] + 2.0 * (c[k] - v[3][k]);
            double fe = fit_eval(fp, t);
            bool expand = fe < fr;
            memcpy(v[3], expand ? t : r, sizeof(t));
            f[3] = expand ? fe : fr;
            continue;
        }
        if (fr < f[2]) {
            memcpy(v[3], r, sizeof(r));
            f[3] = fr;
            continue;
        }
        bool outside = fr < f[3];
        for (int k = 0; k < 3; k++)
            t[k] = c[k] + 0.5 * ((outside ? r[k] : v[3][k]) - c[k]);
        double fc = fit_eval(fp, t);
        if (fc < (outside ? fr : f[3])) {
            memcpy(v[3], t, sizeof(t));
            f[3] = fc;
            continue;
        }
        for (int i = 1; i < 4; i++) {
            for (int k = 0; k < 3; k++)
                v[i][k] = v[0][k] + 0.5 * (v[i][k] - v[0][k]);
            f[i] = fit_eval(fp, v[i]);
        }
    }
    int best = 0;
    for (int i = 1; i < 4; i++)
        best = f[i] < f[best] ? i : best;
    for (int k = 0; k < 3; k++)
        p[k] = fmin(fmax(v[best][k], 0.0), 1.0);
    return f[best];
}

double pred_es_fit_seasonal(struct pred_es *e, const struct pred_season *se, double *s,
                            const double *x, size_t n, uint64_t t0)
{
    struct fit_problem fp = {.form = *e, .se = se, .x = x, .n = n, .t0 = t0};
    /* From R's start and from the parameters held; each run restarted once from its end, as a
     * simplex that collapsed early is common. */
    const double from[2][3] = {{0.3, 0.1, 0.1}, {e->alpha, e->beta, e->gamma}};
    double best[3] = {0}, best_sse = INFINITY;
    for (int k = 0; k < 2; k++) {
        double p[3] = {from[k][0], from[k][1], from[k][2]};
        fit_nelder_mead(&fp, p);
        double sse = fit_nelder_mead(&fp, p);
        if (sse < best_sse)
            best_sse = sse, memcpy(best, p, sizeof(best));
    }
    if (!isfinite(best_sse) || !pred_es_set_params(e, se, best[0], best[1], best[2], e->phi))
        return INFINITY;
    return pred_es_seasonal_sse(e, se, s, x, n, t0);
}

/* ---- the signal --------------------------------------------------------------------------- */

/* Whether family f runs a season with one value per step. */
static bool refit_family(const struct pred_signal *s, unsigned f)
{
    unsigned a = PM_HWA_A + 2 * f;
    return s->se.m >= 2 && s->se.nbins == s->se.m && s->warm_done && s->step_ms > 0 &&
           pred_is_live(s, a) && pred_is_live(s, a + 1) && s->es[a].season != PRED_ES_NONE;
}

bool pred_signal_refittable(const struct pred_signal *s)
{
    for (unsigned f = 0; f < PRED_FAMILIES; f++)
        if (refit_family(s, f))
            return true;
    return false;
}

bool pred_signal_refit_due(const struct pred_signal *s)
{
    if (!pred_signal_refittable(s) || (s->t + 1) % s->se.m != 0)
        return false;
    uint64_t k = (s->t + 1) / s->se.m; /* seasons completed */
    return (k >= REFIT_FIRST && k <= 12) || (k > 12 && (k & (k - 1)) == 0);
}

/* Puts the samples on the signal's grid as pred_signal_observe put them. They come in the order
 * they arrived; as observe does, a sample not newer than those before it (late, or a time
 * repeated) is skipped, and so is one newer than the signal's last observation (not learnt
 * yet). An interval under one and a half steps is one step, a longer one round(interval /
 * step) steps, counted back from the last observation, which must be among the samples. g[i]
 * is step t0 + i; NAN: no sample. Returns 1, 0 when the samples do not reach the last
 * observation, or TW_ENOMEM. */
static int refit_grid(const struct pred_signal *s, const int64_t *ts, const double *x, size_t n,
                      double *g, uint64_t t0, size_t len)
{
    size_t *kept = malloc(n * sizeof(*kept)), k = 0;
    if (!kept)
        return TW_ENOMEM;
    int64_t newest = 0;
    /* Times beyond ±2^60 ms are no device's (observe refuses them): leaving them out keeps the
     * interval arithmetic below overflow. */
    for (size_t i = 0; i < n; i++) {
        if (!isfinite(x[i]) || ts[i] <= -PRED_MAX_TS_MS || ts[i] > s->last_ts_ms ||
            (k > 0 && ts[i] <= newest))
            continue;
        kept[k++] = i;
        newest = ts[i];
    }
    int rc = k > 0 && newest == s->last_ts_ms;
    for (size_t i = 0; rc && i < len; i++)
        g[i] = NAN;
    uint64_t back = 0; /* steps from the sample to the last observation */
    for (size_t j = k; rc && j-- > 0;) {
        size_t i = kept[j];
        if (j + 1 < k) {
            int64_t dt = ts[kept[j + 1]] - ts[i];
            back += 2 * dt < 3 * s->step_ms ? 1 : (uint64_t)((dt + s->step_ms / 2) / s->step_ms);
        }
        if (back > s->t || s->t - back < t0)
            break;
        if (s->t - back - t0 < len)
            g[s->t - back - t0] = x[i];
    }
    free(kept);
    return rc;
}

int pred_signal_refit(struct pred_signal *s, const int64_t *ts, const double *x, size_t n)
{
    /* Not during an anomaly (the fit would learn the outage the online models are kept from),
     * nor before REFIT_FIRST seasons. */
    if (!pred_signal_refittable(s) || n == 0 || s->anomaly || (s->t + 1) / s->se.m < REFIT_FIRST)
        return 0;
    uint32_t m = s->se.m;
    uint64_t steps = s->t + 1 < REFIT_MAX_STEPS ? s->t + 1 : REFIT_MAX_STEPS;
    uint64_t t0 = (s->t + 1 - steps + m - 1) / m * m; /* the first step of a season */
    size_t len = (size_t)(s->t + 1 - t0);
    double *g = malloc(REFIT_MAX_STEPS * sizeof(double));
    if (!g)
        return TW_ENOMEM;
    int changed = refit_grid(s, ts, x, n, g, t0, len);
    if (changed <= 0)
        goto out;
    changed = 0;
    /* R's start needs two whole seasons: skip seasons until two without a gap. */
    size_t from = 0;
    for (size_t i = 0; i < len && i < from + 2 * m; i++)
        if (isnan(g[i]))
            from = (i / m + 1) * m;
    if (len < from + 3ull * m)
        goto out;
    for (unsigned f = 0; f < PRED_FAMILIES; f++) {
        unsigned a = PM_HWA_A + 2 * f;
        if (!refit_family(s, f))
            continue;
        struct pred_es held = s->es[a], fit = s->es[a];
        double season[PRED_SEASON_POINTS], scratch[PRED_SEASON_POINTS];
        double sse_held =
            pred_es_seasonal_sse(&held, &s->se, scratch, g + from, len - from, t0 + from);
        double sse = pred_es_fit_seasonal(&fit, &s->se, season, g + from, len - from, t0 + from);
        if (!(sse < sse_held) || !isfinite(fit.level) || !isfinite(fit.trend) ||
            !pred_all_finite(season, m))
            continue;
        pred_bank_refit(s, f, &fit, season);
        changed++;
    }
out:
    free(g);
    return changed;
}
