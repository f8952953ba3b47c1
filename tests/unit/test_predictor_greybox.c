/* SPDX-License-Identifier: Apache-2.0 */
/* The grey-box model against the data-driven bank on the synthetic plant's bearing (1 h- and
 * 6 h-ahead errors of every model, measured as the engine runs), and what a changed physics
 * restarts. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "engine_internal.h"
#include "testdata.h"

#define PLANT_N 120960 /* 14 days of 10 s samples */
#define N_AHEAD 2
static const uint32_t ahead[N_AHEAD] = {360, 2160}; /* 1 h, 6 h */
#define SCORE_GAP 30    /* a forecast every 5 minutes is plenty to score on */
#define FROM      25920 /* scored from day 3 on, when every model of the bank runs */

static const char *const names[PM_COUNT] = {"naive",     "snaive",    "hw_add A", "hw_add B",
                                            "hw_mult A", "hw_mult B", "ar"};

struct score {
    double abs[N_AHEAD][PM_COUNT + 1]; /* + the published path */
    long n[N_AHEAD][PM_COUNT + 1];
};

/* Runs the whole series through one signal; for every SCORE_GAP-th step, each live model's
 * forecasts 1 h and 6 h on (and the published path's points there) are scored when their
 * targets arrive. */
static void run(const char *file, const struct pred_config *cfg, struct score *out)
{
    static int64_t ts[PLANT_N];
    static double x[PLANT_N];
    static float fc[N_AHEAD][PM_COUNT + 1][PLANT_N];
    assert_int_equal(testdata_load(file, ts, x, PLANT_N), PLANT_N);
    struct pred_signal *s = malloc(pred_signal_size());
    assert_non_null(s);
    assert_int_equal(pred_signal_init(s, cfg), 0);
    for (unsigned a = 0; a < N_AHEAD; a++)
        for (unsigned m = 0; m <= PM_COUNT; m++)
            for (long i = 0; i < PLANT_N; i++)
                fc[a][m][i] = NAN;
    struct pred_event ev[PRED_MAX_EVENTS];
    static struct pred_point path[PRED_MAX_POINTS];
    for (long i = 0; i < PLANT_N; i++) {
        pred_signal_observe(s, ts[i], x[i], ev);
        if (i % SCORE_GAP || !pred_signal_ready(s))
            continue;
        size_t np = pred_signal_forecast(s, path, PRED_MAX_POINTS);
        for (unsigned a = 0; a < N_AHEAD; a++) {
            long at = i + (long)ahead[a];
            if (at >= PLANT_N)
                continue;
            for (unsigned m = 0; m < PM_COUNT; m++)
                if (pred_is_live(s, m))
                    fc[a][m][at] = (float)pred_bank_forecast(s, m, ahead[a]);
            for (size_t k = 0; k < np; k++)
                if (path[k].ts_ms == ts[at])
                    fc[a][PM_COUNT][at] = (float)path[k].mean;
        }
    }
    memset(out, 0, sizeof(*out));
    for (unsigned a = 0; a < N_AHEAD; a++)
        for (unsigned m = 0; m <= PM_COUNT; m++) {
            for (long i = FROM; i < PLANT_N; i++)
                if (!isnan(fc[a][m][i])) {
                    out->abs[a][m] += fabs(x[i] - fc[a][m][i]);
                    out->n[a][m]++;
                }
            out->abs[a][m] = out->n[a][m] ? out->abs[a][m] / (double)out->n[a][m] : NAN;
        }
    free(s);
}

/* The best data-driven model's MAE at horizon a (sc: a run without physics), and which. */
static double best_data_driven(const struct score *sc, unsigned a, unsigned *id)
{
    double best = INFINITY;
    for (unsigned m = 0; m < PM_COUNT; m++)
        if (sc->n[a][m] > 0 && sc->abs[a][m] < best)
            best = sc->abs[a][m], *id = m;
    return best;
}

/* The bearing's temperature: a daily ambient cycle, a wear drift growing as the square of time
 * from day 5, AR(1) noise (../shared/data/plant/README.md). Declared as physics (a daily cycle,
 * a quadratic drift, fitted over a day), the grey-box model's 1 h-ahead error must be at least
 * 20 % below the best data-driven model's (and further below 6 h ahead); the published path
 * must gain from it. */
static void bearing_grey_box_beats_the_data_driven_models_an_hour_ahead(void **state)
{
    (void)state;
    /* The published path spans 6 h in 36 points, one of them exactly 1 h ahead. */
    struct pred_config cfg = {.season_ms = 86400000LL, .horizon_ms = 6 * 3600000LL, .n_points = 36};
    struct score plain, grey;
    run("plant/bearing_temp.csv", &cfg, &plain);
    cfg.physics = (struct pred_grey_spec){.cycle_s = 86400, .memory_s = 86400, .drift = 2};
    run("plant/bearing_temp.csv", &cfg, &grey);
    static const char *const label[N_AHEAD] = {"1 h", "6 h"};
    for (unsigned a = 0; a < N_AHEAD; a++) {
        /* The grey-box model takes the autoregression's place; the others learn as before but
         * for the robust update, which clips towards the champion's forecast. */
        for (unsigned m = 0; m < PM_COUNT; m++)
            if (m == PM_AR)
                printf("bearing %s ahead: %-9s MAE %.4f (%ld forecasts)\n", label[a], names[m],
                       plain.abs[a][m], plain.n[a][m]);
            else
                printf("bearing %s ahead: %-9s MAE %.4f (%ld forecasts; %.4f beside the "
                       "grey-box)\n",
                       label[a], names[m], plain.abs[a][m], plain.n[a][m], grey.abs[a][m]);
        unsigned id = 0;
        double best = best_data_driven(&plain, a, &id);
        printf("bearing %s ahead: grey      MAE %.4f (%ld forecasts): %.1f %% below %s\n", label[a],
               grey.abs[a][PM_AR], grey.n[a][PM_AR], 100.0 * (1.0 - grey.abs[a][PM_AR] / best),
               names[id]);
        printf("bearing %s ahead: published path MAE %.4f without physics, %.4f with\n", label[a],
               plain.abs[a][PM_COUNT], grey.abs[a][PM_COUNT]);
        assert_true(grey.n[a][PM_AR] > 3000);
        assert_true(grey.abs[a][PM_AR] <= (a == 0 ? 0.8 : 0.6) * best);
        assert_true(grey.abs[a][PM_COUNT] < plain.abs[a][PM_COUNT]);
    }
}

/* Where the declared physics does not hold (the vibration has no drift; its step is a regime
 * change), the grey-box model costs the published path nothing: the bank's records keep the
 * better models in charge. */
static void a_wrong_relation_does_not_spoil_the_published_path(void **state)
{
    (void)state;
    struct pred_config cfg = {.season_ms = 86400000LL, .horizon_ms = 6 * 3600000LL, .n_points = 36};
    struct score plain, grey;
    run("plant/vibration.csv", &cfg, &plain);
    cfg.physics = (struct pred_grey_spec){.cycle_s = 3 * 3600, .memory_s = 7 * 86400, .drift = 2};
    run("plant/vibration.csv", &cfg, &grey);
    printf("vibration 1 h ahead (a 3 h cycle, a week's memory): grey MAE %.4f, published %.4f "
           "without, %.4f with\n",
           grey.abs[0][PM_AR], plain.abs[0][PM_COUNT], grey.abs[0][PM_COUNT]);
    assert_true(grey.abs[0][PM_COUNT] <= 1.05 * plain.abs[0][PM_COUNT]);
}

/* A changed physics restarts model PM_AR as what the new configuration makes it (the grey-box
 * model, or the autoregression when physics is removed); the other models keep what they
 * learnt, and a saved state comes back as it was. */
static void changed_physics_restarts_only_that_model(void **state)
{
    (void)state;
    struct pred_config cfg = {.horizon_steps = 12, .n_points = 12};
    cfg.physics = (struct pred_grey_spec){.cycle_s = 3600, .memory_s = 7200, .drift = 1};
    struct pred_signal *s = malloc(pred_signal_size());
    assert_non_null(s);
    assert_int_equal(pred_signal_init(s, &cfg), 0);
    struct pred_event ev[PRED_MAX_EVENTS];
    int64_t t = 1704067200000LL;
    for (int i = 0; i < 400; i++, t += 60000)
        pred_signal_observe(s, t, 20.0 + 2.0 * sin(2.0 * M_PI * i / 60.0) + 0.01 * i, ev);
    assert_true(pred_is_grey(s) && pred_is_live(s, PM_AR));
    struct pred_es naive = s->es[PM_NAIVE];

    /* Saved and loaded with the same configuration: the same state. */
    double saved[4096];
    size_t n = pred_signal_save(s, saved, 4096);
    struct pred_signal *back = malloc(pred_signal_size());
    assert_non_null(back);
    assert_int_equal(pred_signal_load(back, &cfg, saved, n), 0);
    assert_memory_equal(&back->grey, &s->grey, sizeof(s->grey));

    struct pred_config plain = cfg;
    plain.physics = (struct pred_grey_spec){0};
    assert_int_equal(pred_signal_reconfigure(s, &plain), 0);
    assert_false(pred_is_grey(s) || pred_is_live(s, PM_AR));
    assert_true(s->champion1 != PM_AR && s->rec[PM_AR].n1 == 0);
    assert_true(s->es[PM_NAIVE].level == naive.level); /* the others keep what they learnt */
    pred_signal_observe(s, t, 21.0, ev);
    t += 60000;
    assert_true(pred_is_live(s, PM_AR)); /* the autoregression, from the next value */
    for (int i = 0; i < 10; i++, t += 60000)
        pred_signal_observe(s, t, 21.0 + 0.1 * i, ev);
    assert_true(isfinite(pred_bank_forecast(s, PM_AR, 1)));
    assert_string_not_equal(pred_signal_model(s), "grey");

    assert_int_equal(pred_signal_reconfigure(s, &cfg), 0); /* and back */
    assert_false(pred_is_live(s, PM_AR));
    pred_signal_observe(s, t, 22.0, ev);
    assert_true(pred_is_grey(s) && pred_is_live(s, PM_AR));
    assert_true(fabs(pred_bank_forecast(s, PM_AR, 1) - 22.0) < 1e-6); /* starts at the value */
    free(back);
    free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(bearing_grey_box_beats_the_data_driven_models_an_hour_ahead),
        cmocka_unit_test(a_wrong_relation_does_not_spoil_the_published_path),
        cmocka_unit_test(changed_physics_restarts_only_that_model),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
