/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests of the predictor's models: R's HoltWinters figures, RLS against a batch fit,
 * seasonal interpolation, damping, refusals, and the grey-box relation. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "models.h"
#include "testdata.h"

#define MAX_SERIES 1000

static double rel_err(double got, double want)
{
    double scale = fabs(want) > 1.0 ? fabs(want) : 1.0;
    return fabs(got - want) / scale;
}

/* Our batch fit (refit.c) of the same model, from R's start parameters, finds an SSE no higher
 * than R's optimiser did (0.1 % slack: R's L-BFGS-B and our Nelder-Mead stop differently; R
 * reports difficulties on two of these fits). */
static void check_r_optimum(const struct pred_es *form, const struct pred_season *se,
                            const double *x, long n, double sse_r)
{
    struct pred_es e = *form;
    double s[PRED_SEASON_POINTS];
    assert_true(pred_es_set_params(&e, se, 0.3, 0.1, 0.1, 1.0));
    double sse = pred_es_fit_seasonal(&e, se, s, x, (size_t)n, 0);
    printf("%14s batch fit SSE %.10g (R %.10g: %+.4f %%) alpha %.4f beta %.4f gamma %.4f\n", "",
           sse, sse_r, 100.0 * (sse / sse_r - 1.0), e.alpha, e.beta, e.gamma);
    assert_true(sse <= sse_r * 1.001);
    /* e holds the fit and its state after the last value: the SSE is the filter's. */
    struct pred_es again = *form;
    double s2[PRED_SEASON_POINTS];
    assert_true(pred_es_set_params(&again, se, e.alpha, e.beta, e.gamma, 1.0));
    assert_true(pred_es_seasonal_sse(&again, se, s2, x, (size_t)n, 0) == sse);
    assert_true(again.level == e.level && again.trend == e.trend);
    assert_memory_equal(s, s2, se->nbins * sizeof(double));
}

/* One row of reference_fits.csv: R's HoltWinters with its optimised parameters. Running our
 * filter with the same parameters from R's start values must give R's SSE, level and trend. */
static void check_r_fit(char **f)
{
    const char *series = f[0], *model = f[1];
    double alpha = strtod(f[3], NULL);
    bool has_beta = strcmp(f[4], "NA") != 0;
    double beta = has_beta ? strtod(f[4], NULL) : 0.0;
    double gamma = strcmp(f[5], "NA") ? strtod(f[5], NULL) : 0.0;
    double sse_r = strtod(f[6], NULL), a_r = strtod(f[8], NULL);
    double b_r = has_beta ? strtod(f[9], NULL) : 0.0;
    long n_fitted_r = strtol(f[7], NULL, 10);
    char rel[128];
    static int64_t ts[MAX_SERIES];
    static double x[MAX_SERIES];
    int rel_len = snprintf(rel, sizeof(rel), "series/%s.csv", series);
    assert_true(rel_len > 0 && (size_t)rel_len < sizeof(rel));
    long n = testdata_load(rel, ts, x, MAX_SERIES);
    assert_true(n > 24);

    struct pred_season se;
    struct pred_es e = {0};
    double s[PRED_SEASON_POINTS];
    long t0;
    bool seasonal = strcmp(model, "additive") == 0 || strcmp(model, "multiplicative") == 0;
    if (seasonal) {
        pred_season_init(&se, 12);
        e.season = strcmp(model, "additive") == 0 ? PRED_ES_ADD : PRED_ES_MULT;
        assert_true(pred_es_set_params(&e, &se, alpha, beta, gamma, 1.0));
        assert_true(pred_es_start_seasonal(&e, &se, s, x));
        t0 = 12;
    } else {
        pred_season_init(&se, 0);
        assert_true(pred_es_set_params(&e, &se, alpha, beta, 0.0, 1.0));
        if (has_beta)
            pred_es_start_holt(&e, x[0], x[1]);
        else
            pred_es_start_level(&e, x[0]);
        t0 = has_beta ? 2 : 1;
    }
    double sse = 0;
    for (long t = t0; t < n; t++) {
        double xhat = pred_es_update(&e, &se, seasonal ? s : NULL, (uint64_t)t, x[t]);
        sse += (x[t] - xhat) * (x[t] - xhat);
    }
    printf("%-14s %-14s SSE %.10g (R %.10g) level %.8g (R %.8g) trend %.6g (R %.6g)\n", series,
           model, sse, sse_r, e.level, a_r, e.trend, b_r);
    assert_int_equal(n - t0, n_fitted_r);
    assert_true(fabs(sse - sse_r) / sse_r < 1e-6);
    assert_true(rel_err(e.level, a_r) < 1e-6);
    assert_true(rel_err(e.trend, b_r) < 1e-6);
    if (seasonal)
        check_r_optimum(&e, &se, x, n, sse_r);
}

static void holtwinters_matches_r_reference_fits(void **state)
{
    (void)state;
    char path[512], line[1024];
    snprintf(path, sizeof(path), "%s/data/series/reference_fits.csv", TWIN_SHARED_DIR);
    FILE *fp = fopen(path, "r");
    assert_non_null(fp);
    assert_non_null(fgets(line, sizeof(line), fp)); /* header */
    int rows = 0;
    while (fgets(line, sizeof(line), fp)) {
        char *f[12];
        assert_true(testdata_split(line, f, 12) >= 10);
        check_r_fit(f);
        rows++;
    }
    fclose(fp);
    assert_int_equal(rows, 18); /* every fit in the file was checked */
}

/* Solves the k×k system m·x = r by Gaussian elimination with partial pivoting. */
static void solve(double *m, double *r, int k)
{
    for (int c = 0; c < k; c++) {
        int piv = c;
        for (int i = c + 1; i < k; i++)
            if (fabs(m[i * k + c]) > fabs(m[piv * k + c]))
                piv = i;
        for (int j = 0; j < k; j++) {
            double tmp = m[c * k + j];
            m[c * k + j] = m[piv * k + j];
            m[piv * k + j] = tmp;
        }
        double tmp = r[c];
        r[c] = r[piv];
        r[piv] = tmp;
        for (int i = c + 1; i < k; i++) {
            double f = m[i * k + c] / m[c * k + c];
            for (int j = c; j < k; j++)
                m[i * k + j] -= f * m[c * k + j];
            r[i] -= f * r[c];
        }
    }
    for (int c = k - 1; c >= 0; c--) {
        for (int j = c + 1; j < k; j++)
            r[c] -= m[c * k + j] * r[j];
        r[c] /= m[c * k + c];
    }
}

/* RLS with forgetting lambda and P0 = I/delta minimises
 * sum lambda^(n-i) (z_i - phi_i theta)^2 + lambda^n delta |theta|^2 exactly: solve that
 * weighted ridge problem in one batch and compare. */
static void rls_equals_weighted_batch_fit(void **state)
{
    (void)state;
    enum { N = 400, D = PRED_AR_DIM };
    const double lambda = 0.99, delta = 0.01, centre = 10.0, scale = 2.0;
    static double x[N];
    uint64_t rng = 12345;
    x[0] = 10, x[1] = 11, x[2] = 9;
    for (int t = 3; t < N; t++) {
        rng = rng * 6364136223846793005ull + 1442695040888963407ull;
        double noise = ((double)(rng >> 11) / 9007199254740992.0 - 0.5);
        x[t] = 4.0 + 0.6 * x[t - 1] - 0.3 * x[t - 2] + 0.3 * x[t - 3] + noise;
    }
    struct pred_ar a;
    pred_ar_init(&a, lambda, delta, centre, scale);
    for (int t = 0; t < N; t++)
        pred_ar_update(&a, x[t]);

    double m[D * D] = {0}, r[D] = {0};
    int n_fit = N - PRED_AR_ORDER;
    for (int t = PRED_AR_ORDER; t < N; t++) {
        double w = pow(lambda, (double)(N - 1 - t));
        double phi[D] = {1.0};
        for (int k = 1; k < D; k++)
            phi[k] = (x[t - k] - centre) / scale;
        double z = (x[t] - centre) / scale;
        for (int i = 0; i < D; i++) {
            r[i] += w * phi[i] * z;
            for (int j = 0; j < D; j++)
                m[i * D + j] += w * phi[i] * phi[j];
        }
    }
    for (int i = 0; i < D; i++)
        m[i * D + i] += pow(lambda, (double)n_fit) * delta;
    solve(m, r, D);
    for (int i = 0; i < D; i++) {
        printf("theta[%d] rls %.12f batch %.12f\n", i, a.theta[i], r[i]);
        assert_true(fabs(a.theta[i] - r[i]) < 1e-9);
    }
    /* The fitted process is recovered (in original units: intercept and lag weights). */
    assert_true(fabs(a.theta[1] - 0.6) < 0.1 && fabs(a.theta[2] + 0.3) < 0.1);
}

static void ar_forecast_iterates_and_shift_moves_it(void **state)
{
    (void)state;
    struct pred_ar a;
    pred_ar_init(&a, 1.0, 1e-6, 0.0, 1.0);
    for (int t = 0; t < 200; t++) /* x_t = 0.5 x_{t-1} + 1, settles at 2 */
        pred_ar_update(&a, t < 3 ? (double)t : 0.5 * (t % 7) + 1.0);
    double f1 = pred_ar_forecast(&a, 1), f5 = pred_ar_forecast(&a, 5);
    assert_true(isfinite(f1) && isfinite(f5));
    pred_ar_shift(&a, 10.0);
    assert_true(fabs(pred_ar_forecast(&a, 1) - (f1 + 10.0)) < 1e-6);
    assert_true(fabs(pred_ar_forecast(&a, 5) - (f5 + 10.0)) < 1e-6);
}

/* A forecast path iterates the recursion once (pred_ar_path); each of its points is what the
 * recursion iterated that far by hand gives, for ascending, repeated and nearer horizons; a
 * fit that is explosive forecasts only the next step. */
static void ar_path_equals_the_recursion_iterated_to_each_point(void **state)
{
    (void)state;
    struct pred_ar a;
    pred_ar_init(&a, 0.995, 1e-2, 5.0, 2.0);
    for (int t = 0; t < 300; t++)
        pred_ar_update(&a, 5.0 + 2.0 * sin(0.3 * t) + 0.1 * (t % 5));
    const uint32_t h[] = {1, 2, 5, 5, 40, 3, 1000};
    enum { N_H = sizeof(h) / sizeof(h[0]) };
    double out[N_H];
    pred_ar_path(&a, h, N_H, out);
    for (int i = 0; i < N_H; i++) {
        double lag[PRED_AR_ORDER], y = 0;
        memcpy(lag, a.lag, sizeof(lag));
        for (uint32_t k = 0; k < h[i]; k++) {
            y = 0;
            y += a.theta[0] * 1.0;
            for (uint32_t j = 0; j < PRED_AR_ORDER; j++)
                y += a.theta[j + 1] * lag[j];
            memmove(lag + 1, lag, (PRED_AR_ORDER - 1) * sizeof(double));
            lag[0] = y;
        }
        assert_true(isfinite(out[i]));
        assert_true(out[i] == y * a.scale + a.centre);
        assert_true(out[i] == pred_ar_forecast(&a, h[i]));
    }
    /* x_t = 2 x_{t-1}: the next step only. */
    memset(a.theta, 0, sizeof(a.theta));
    a.theta[1] = 2.0;
    pred_ar_path(&a, h, N_H, out);
    assert_true(out[0] == 2.0 * a.lag[0] * a.scale + a.centre);
    for (int i = 1; i < N_H; i++)
        assert_true(isnan(out[i]));
}

/* ---- grey-box ---------------------------------------------------------------------------- */

#define DAY_MS   86400000LL
#define EPOCH_MS 1704067200000LL /* 2024-01-01T00:00Z */

/* A daily cycle on the wall clock plus a quadratic drift in days since EPOCH_MS. */
static double grey_truth(int64_t t_ms)
{
    double w = 2.0 * M_PI * (double)(t_ms % DAY_MS) / (double)DAY_MS;
    double d = (double)(t_ms - EPOCH_MS) / (double)DAY_MS;
    return 50.0 + 3.0 * cos(w) - 2.0 * sin(w) + 0.8 * d + 0.3 * d * d;
}

/* Noise-free data of the relation's own form are fitted exactly, and forecast exactly hours
 * ahead, across the re-expansions of the drift around a moving origin (every memory). */
static void grey_fits_its_relation_exactly(void **state)
{
    (void)state;
    const int64_t step = 600000; /* 10 min */
    struct pred_grey_spec spec = {.cycle_s = 86400, .memory_s = 2 * 86400, .drift = 2};
    struct pred_grey g;
    pred_grey_init(&g, &spec, EPOCH_MS, grey_truth(EPOCH_MS));
    int64_t t = EPOCH_MS;
    for (int i = 1; i <= 6 * 144; i++) {
        t += step;
        pred_grey_update(&g, &spec, t, grey_truth(t));
        assert_true(pred_grey_valid(&g, &spec));
    }
    assert_true(g.tau < 1.0); /* the origin moved along */
    for (uint32_t h = 1; h <= 36; h += 7) {
        double f = pred_grey_forecast(&g, &spec, step, h);
        assert_true(fabs(f - grey_truth(t + h * step)) < 1e-6);
    }
    /* A confirmed shift moves the whole relation. */
    double f = pred_grey_forecast(&g, &spec, step, 10);
    pred_grey_shift(&g, -4.0);
    assert_true(fabs(pred_grey_forecast(&g, &spec, step, 10) - (f - 4.0)) < 1e-9);
}

/* The residual's autoregression is learnt and decays over the horizon; a missing step moves
 * time on as a forecast would. */
static void grey_residual_decays_and_skips_move_time(void **state)
{
    (void)state;
    const int64_t step = 10000;
    struct pred_grey_spec spec = {.cycle_s = 3600, .memory_s = 86400, .drift = 0};
    struct pred_grey g;
    uint64_t rng = 42;
    double r = 0;
    int64_t t = EPOCH_MS;
    pred_grey_init(&g, &spec, t, 20.0);
    for (int i = 1; i <= 20000; i++) {
        t += step;
        rng = rng * 6364136223846793005ULL + 1442695040888963407ULL;
        double u = (double)(rng >> 11) / 9007199254740992.0 - 0.5; /* uniform, sd 0.29 */
        r = 0.8 * r + u;
        double w = 2.0 * M_PI * (double)(t % 3600000) / 3600000.0;
        pred_grey_update(&g, &spec, t, 20.0 + 1.5 * sin(w) + r);
    }
    /* A cycle ahead (φ^360 ≈ 0): the relation alone, fitted through the noise. */
    double w = 2.0 * M_PI * (double)(t % 3600000) / 3600000.0;
    assert_true(fabs(pred_grey_forecast(&g, &spec, step, 360) - (20.0 + 1.5 * sin(w))) < 0.1);
    /* One step ahead: the relation (the same phase a cycle later) plus φ times the last
     * residual, φ as generated. */
    double phi =
        (pred_grey_forecast(&g, &spec, step, 1) - pred_grey_forecast(&g, &spec, step, 361)) /
        g.resid;
    assert_true(fabs(phi - 0.8) < 0.05);
    double two = pred_grey_forecast(&g, &spec, step, 2);
    pred_grey_skip(&g, &spec, step);
    assert_true(fabs(pred_grey_forecast(&g, &spec, step, 1) - two) < 1e-9);
}

static void grey_validity_refuses_damaged_state(void **state)
{
    (void)state;
    struct pred_grey_spec spec = {.cycle_s = 86400, .memory_s = 86400, .drift = 1};
    struct pred_grey g;
    pred_grey_init(&g, &spec, EPOCH_MS, 1.0);
    assert_true(pred_grey_valid(&g, &spec));
    g.theta[2] = NAN;
    assert_false(pred_grey_valid(&g, &spec));
    pred_grey_init(&g, &spec, EPOCH_MS, 1.0);
    g.p[0] = -1.0; /* P(0, 0) */
    assert_false(pred_grey_valid(&g, &spec));
    pred_grey_init(&g, &spec, EPOCH_MS, 1.0);
    g.tau = -2e9;
    assert_false(pred_grey_valid(&g, &spec));
    pred_grey_init(&g, &spec, EPOCH_MS, 1.0);
    g.rxx = -1.0f;
    assert_false(pred_grey_valid(&g, &spec));
}

static void long_season_interpolates_between_points(void **state)
{
    (void)state;
    struct pred_season se;
    pred_season_init(&se, 8640); /* a day of 10 s steps */
    assert_int_equal(se.nbins, PRED_SEASON_POINTS);
    double s[PRED_SEASON_POINTS];
    for (unsigned i = 0; i < PRED_SEASON_POINTS; i++)
        s[i] = (double)i;
    /* The middle of value 3's stretch reads value 3; halfway to the next middle reads 3.5. */
    double per = se.per_bin;
    struct pred_phase p = pred_season_phase(&se, (uint64_t)(3 * per + per / 2));
    assert_true(fabs(pred_season_get(s, p) - 3.0) < 0.01);
    p = pred_season_phase(&se, (uint64_t)(4 * per));
    assert_true(fabs(pred_season_get(s, p) - 3.5) < 0.01);
    /* Phase wraps: a step just before the season's end reads between the last and the first. */
    p = pred_season_phase(&se, 8639);
    assert_int_equal(p.i0, PRED_SEASON_POINTS - 1);
    assert_int_equal(p.i1, 0);
    assert_true(fabs(pred_season_phase(&se, 8640 + 5).f - pred_season_phase(&se, 5).f) < 1e-12);
    /* Blending towards a constant everywhere converges to it. */
    for (uint64_t t = 0; t < 20 * 8640; t += 7)
        pred_season_blend(s, pred_season_phase(&se, t), 42.0, 0.05);
    for (unsigned i = 0; i < PRED_SEASON_POINTS; i++)
        assert_true(fabs(s[i] - 42.0) < 1e-3);
}

static void damped_trend_levels_off(void **state)
{
    (void)state;
    struct pred_season se;
    pred_season_init(&se, 0);
    struct pred_es e = {0};
    assert_true(pred_es_set_params(&e, &se, 0.5, 0.1, 0.0, 0.9));
    pred_es_start_holt(&e, 0.0, 1.0); /* level 1, trend 1 */
    /* level + trend·(phi + … + phi^h) → 1 + 0.9/(1 − 0.9) = 10 */
    /* (phi is held as a float: 0.9 is 0.89999998) */
    assert_true(fabs(pred_es_forecast(&e, &se, NULL, 0, 1) - 1.9) < 1e-6);
    assert_true(fabs(pred_es_forecast(&e, &se, NULL, 0, 1000) - 10.0) < 1e-5);
    assert_false(pred_es_set_params(&e, &se, 1.5, 0.1, 0.0, 0.9));
    assert_false(pred_es_set_params(&e, &se, 0.5, 0.1, 0.0, 0.0));
}

static void multiplicative_refuses_non_positive_values(void **state)
{
    (void)state;
    struct pred_season se;
    pred_season_init(&se, 4);
    struct pred_es e = {.season = PRED_ES_MULT};
    double s[PRED_SEASON_POINTS];
    const double bad[8] = {1, 2, 3, 4, 1, 0, 3, 4};
    const double good[8] = {1, 2, 3, 4, 1, 2, 3, 4};
    assert_true(pred_es_set_params(&e, &se, 0.3, 0.1, 0.1, 1.0));
    assert_false(pred_es_start_seasonal(&e, &se, s, bad));
    assert_true(pred_es_start_seasonal(&e, &se, s, good));
    assert_true(isnan(pred_es_update(&e, &se, s, 4, -1.0)));
    assert_true(isfinite(pred_es_update(&e, &se, s, 4, 1.0)));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(holtwinters_matches_r_reference_fits),
        cmocka_unit_test(rls_equals_weighted_batch_fit),
        cmocka_unit_test(ar_forecast_iterates_and_shift_moves_it),
        cmocka_unit_test(ar_path_equals_the_recursion_iterated_to_each_point),
        cmocka_unit_test(long_season_interpolates_between_points),
        cmocka_unit_test(damped_trend_levels_off),
        cmocka_unit_test(multiplicative_refuses_non_positive_values),
        cmocka_unit_test(grey_fits_its_relation_exactly),
        cmocka_unit_test(grey_residual_decays_and_skips_move_time),
        cmocka_unit_test(grey_validity_refuses_damaged_state),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
