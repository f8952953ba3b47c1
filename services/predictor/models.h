/* SPDX-License-Identifier: Apache-2.0 */
/* The forecasting models of the predictor's bank (exponential smoothing in all its forms,
 * autoregression by recursive least squares): pure arithmetic on a regular grid. */
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
/* Learns x (fits only once all lags are filled); returns the one-step forecast it had (NAN
 * before it could make one). */
double pred_ar_update(struct pred_ar *a, double x);
void pred_ar_skip(struct pred_ar *a); /* a missing step: its own forecast stands in */
void pred_ar_shift(struct pred_ar *a, double delta);

#endif
