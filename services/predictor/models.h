/* SPDX-License-Identifier: Apache-2.0 */
/* The forecasting models of the predictor's bank (exponential smoothing in all its forms,
 * autoregression by recursive least squares, grey-box physical relations): pure arithmetic. */
#ifndef PRED_MODELS_H
#define PRED_MODELS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Seasonal values a model keeps, at most. */
#define PRED_SEASON_POINTS 16u

/* How a season of m grid steps maps onto the seasonal values: with m <= PRED_SEASON_POINTS one
 * value per step; otherwise PRED_SEASON_POINTS values at evenly spaced points of the cycle,
 * read and updated with linear interpolation between the two nearest. */
struct pred_season {
    uint32_t m;     /* steps per season; 0: no season */
    uint32_t nbins; /* seasonal values in use */
    double per_bin; /* steps per value (m / nbins) */
};

/* Where one grid step falls in the season: the two values around it and the weight of i1. */
struct pred_phase {
    uint32_t i0, i1;
    double f;
};

void pred_season_init(struct pred_season *se, uint32_t m);
/* Phase of grid step t (steps counted from any fixed origin). */
struct pred_phase pred_season_phase(const struct pred_season *se, uint64_t t);
double pred_season_get(const double *s, struct pred_phase p);
/* Moves the seasonal value at p towards `target` by `rate` (split between the two values). */
void pred_season_blend(double *s, struct pred_phase p, double target, double rate);

/*
 * Exponential smoothing: one struct for simple (SES), Holt, damped-trend Holt, and
 * Holt-Winters with additive or multiplicative seasonality, in R's HoltWinters form
 * (level/trend/season updated after each observation; phi = 1 gives R's filter exactly):
 *
 *   forecast h ahead  = (level + trend·(phi + … + phi^h)) (+ or ×) season(t + h)
 *   level  = alpha·deseasonalised x + (1 − alpha)·(level + phi·trend)
 *   trend  = beta·(level − previous level) + (1 − beta)·phi·trend
 *   season = gamma·(x − level  or  x / level) + (1 − gamma)·season
 *
 * gamma is per pass of the season; with more steps than seasonal values each step moves
 * the values by the equivalent smaller rate (gamma_step).
 */
enum pred_es_season { PRED_ES_NONE, PRED_ES_ADD, PRED_ES_MULT };

struct pred_es {
    double level, trend;
    /* Parameters need no more than float's 7 digits (a difference of 1e-7 in alpha changes
     * a forecast far less than its error), and a signal runs six of these. */
    float alpha, beta, gamma, phi;
    float gamma_step;
    uint8_t season; /* enum pred_es_season */
    bool trended;   /* beta in use (false: level only, trend stays 0) */
};

/* Sets the parameters (level and trend keep their values). Returns false for parameters out
 * of range (alpha, beta, gamma in [0, 1], phi in (0, 1]). */
bool pred_es_set_params(struct pred_es *e, const struct pred_season *se, double alpha, double beta,
                        double gamma, double phi);

/* Forecast of step t + h made after observing step t (h >= 1). s: seasonal values or NULL. */
double pred_es_forecast(const struct pred_es *e, const struct pred_season *se, const double *s,
                        uint64_t t, uint32_t h);

/* Learns observation x of step t (the step after the last one learnt). Returns the one-step
 * forecast it had for x. Multiplicative models need x > 0 and level > 0: otherwise the update is
 * refused (returns NAN) and the caller retires the model. */
double pred_es_update(struct pred_es *e, const struct pred_season *se, double *s, uint64_t t,
                      double x);

/* Carries the model over a missing step t without learning (level moves along the trend). */
void pred_es_skip(struct pred_es *e);

/* Adds delta to the level (a confirmed level shift; multiplicative seasons unchanged). */
void pred_es_shift(struct pred_es *e, double delta);

/*
 * R's start values (stats::HoltWinters), so that the same parameters give R's figures:
 * seasonal models decompose the first two seasons x[0 .. 2m) (centred moving average; the
 * seasonal figure is the mean detrended value per position, centred), start the level and trend
 * from a straight line fitted to that moving average (intercept, slope), and filter from step m;
 * Holt starts at level x[1], trend x[1] − x[0] and filters from step 2; SES starts at x[0] and
 * filters from step 1. Here x holds one value per seasonal value (for a long season: the mean
 * of each value's stretch of steps), 2·nbins of them; trend is converted back to per-step.
 * Returns false when the data cannot start the model (too few values, multiplicative with a
 * value <= 0).
 */
bool pred_es_start_seasonal(struct pred_es *e, const struct pred_season *se, double *s,
                            const double *x);
void pred_es_start_holt(struct pred_es *e, double x0, double x1);
void pred_es_start_level(struct pred_es *e, double x0);

/*
 * Batch fit, as R's HoltWinters fits (refit.c). x[0 .. n) holds one value per step of a
 * season with one value per step (nbins == m), x[0] at step t0 (a multiple of m), the first
 * 2·m without gaps, NAN where a later step has no value. pred_es_seasonal_sse starts e (form and
 * parameters set) as pred_es_start_seasonal does, filters from step m on (a gap is skipped) and
 * returns the one-step SSE, leaving the state after x[n − 1] in e and s; INFINITY when the data
 * cannot run the model. pred_es_fit_seasonal minimises that SSE over alpha, beta and gamma in
 * [0, 1] (phi kept) by Nelder-Mead from R's start (0.3, 0.1, 0.1) and from e's parameters, and
 * leaves the best fit, run over x, in e and s.
 */
double pred_es_seasonal_sse(struct pred_es *e, const struct pred_season *se, double *s,
                            const double *x, size_t n, uint64_t t0);
double pred_es_fit_seasonal(struct pred_es *e, const struct pred_season *se, double *s,
                            const double *x, size_t n, uint64_t t0);

/*
 * Autoregression of order PRED_AR_ORDER with an intercept, fitted by recursive least squares
 * with exponential forgetting (lambda): theta minimises sum lambda^(n-i) (y_i − phi_i·theta)^2
 * + lambda^n·delta·|theta|^2. Values are centred and scaled by constants fixed at the start,
 * which keeps P well conditioned whatever the signal's units.
 */
#define PRED_AR_ORDER 3u
#define PRED_AR_DIM   (PRED_AR_ORDER + 1u)
#define PRED_AR_PSIZE (PRED_AR_DIM * (PRED_AR_DIM + 1u) / 2u) /* P is symmetric: its upper half */

struct pred_ar {
    double theta[PRED_AR_DIM];
    double p[PRED_AR_PSIZE];   /* row by row, P(i, j) for j >= i */
    double lag[PRED_AR_ORDER]; /* scaled; lag[0] newest */
    double centre, scale;
    double lambda;
    uint32_t n_lags; /* lags filled so far */
};

void pred_ar_init(struct pred_ar *a, double lambda, double delta, double centre, double scale);
double pred_ar_forecast(const struct pred_ar *a, uint32_t h);
/* out[i] = pred_ar_forecast(a, h[i]) for n horizons, iterating the recursion once when h
 * ascends (a forecast path): the cost of the farthest point instead of the sum of all. */
void pred_ar_path(const struct pred_ar *a, const uint32_t *h, size_t n, double *out);
/* Learns x (fits only once all lags are filled); returns the one-step forecast it had (NAN
 * before it could make one). */
double pred_ar_update(struct pred_ar *a, double x);
void pred_ar_skip(struct pred_ar *a); /* a missing step: its own forecast stands in */
void pred_ar_shift(struct pred_ar *a, double delta);

/*
 * Grey-box: a physical relation whose form the plant model declares ("physics") and whose
 * parameters are fitted online, plus an autoregression of what it leaves unexplained:
 *
 *   x(t) = c + a·cos(2πt/P) + b·sin(2πt/P) + d1·τ + d2·τ² + r(t),   r(t) = φ·r(t−1) + noise
 *
 * The cycle (period P) is a periodic driver such as the ambient temperature over a day or a
 * shift pattern: its amplitude and phase are fitted, its timing is the wall clock's (t mod P),
 * so it survives gaps and restarts. The drift (degree 0, 1 or 2) is heat from wear, fouling or
 * any slow process that grows smoothly with time: τ counts memories since an origin that moves
 * along with the data. Parameters by recursive least squares with exponential forgetting (an
 * observation's weight falls by e every `memory`); the residual's φ by a lag-1 regression with
 * the same forgetting. A forecast h steps ahead is the relation at that time plus φ^h·r.
 */
#define PRED_GREY_MAX   5u /* c, a, b, d1, d2 */
#define PRED_GREY_PSIZE (PRED_GREY_MAX * (PRED_GREY_MAX + 1u) / 2u)

struct pred_grey_spec {
    uint32_t cycle_s;  /* the cycle's period in seconds; 0: no cycle */
    uint32_t memory_s; /* > 0 */
    uint8_t drift;     /* 0, 1 or 2 */
};

struct pred_grey {
    double theta[PRED_GREY_MAX];
    double p[PRED_GREY_PSIZE]; /* upper half of P, row by row */
    int64_t t_ms;              /* time of the grid step the state stands at */
    double tau;                /* its τ, in memories */
    double resid;              /* x − relation at t_ms, after learning */
    float rxy, rxx;            /* lag-1 moments of the residual */
};

/* Starts from the first observation x at t_ms. */
void pred_grey_init(struct pred_grey *g, const struct pred_grey_spec *spec, int64_t t_ms, double x);
/* Forecast h grid steps of step_ms ahead. */
double pred_grey_forecast(const struct pred_grey *g, const struct pred_grey_spec *spec,
                          int64_t step_ms, uint32_t h);
/* Learns x observed at t_ms (later than the last). */
void pred_grey_update(struct pred_grey *g, const struct pred_grey_spec *spec, int64_t t_ms,
                      double x);
/* A missing step: time moves on by step_ms and the residual decays as forecast. */
void pred_grey_skip(struct pred_grey *g, const struct pred_grey_spec *spec, int64_t step_ms);
/* Adds delta to the relation (a confirmed level shift). */
void pred_grey_shift(struct pred_grey *g, double delta);
/* Whether the state is usable with spec (finite, P's diagonal positive). */
bool pred_grey_valid(const struct pred_grey *g, const struct pred_grey_spec *spec);

#endif
