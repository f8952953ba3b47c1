/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests of twin-devsim's signal generator: determinism, finite values, healthy limits,
 * cycles, wear, failures and repairs, glitches, and the demo's head start. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "gen.h"
#include "twin/model.h"

#ifndef TW_DEMO_PLANT
#define TW_DEMO_PLANT "deploy/plant.json"
#endif

#define T0      1764000000000LL /* a Unix ms start, midnight UTC plus a bit */
#define HOUR_MS 3600000LL
#define DAY_MS  (24 * HOUR_MS)

static struct tw_model *demo_plant(void)
{
    struct tw_model *m = NULL;
    assert_int_equal(tw_model_load_file(TW_DEMO_PLANT, &m, NULL), 0);
    return m;
}

static void init_asset(struct devsim_asset *a, const struct tw_model *m, size_t i, uint64_t seed,
                       bool faults)
{
    struct devsim_gen_config g = {
        .seed = seed, .period_ms = 1000, .faults = faults, .head_start = faults};
    const struct tw_model_asset *ma = tw_model_asset_at(m, i);
    assert_int_equal(devsim_asset_init(a, ma->id, ma->kind, &g, i == devsim_head_start_index(m)),
                     0);
}

static size_t signal_index(const struct devsim_asset *a, const char *name)
{
    for (size_t i = 0; i < a->n; i++)
        if (strcmp(a->prof[i].name, name) == 0)
            return i;
    fail_msg("no signal %s", name);
    return 0;
}

/* Same seed: the same values bit for bit; another seed: other values. */
static void same_seed_gives_the_same_values(void **state)
{
    (void)state;
    struct tw_model *m = demo_plant();
    double x[16], y[16], z[16];
    int differ = 0;
    for (size_t i = 0; i < tw_model_asset_count(m); i++) {
        struct devsim_asset a, b, c;
        init_asset(&a, m, i, 42, true);
        init_asset(&b, m, i, 42, true);
        init_asset(&c, m, i, 43, true);
        for (int64_t k = 0; k < 20000; k++) {
            devsim_asset_step(&a, T0 + k * 10000, x);
            devsim_asset_step(&b, T0 + k * 10000, y);
            devsim_asset_step(&c, T0 + k * 10000, z);
            assert_memory_equal(x, y, a.n * sizeof(double));
            differ += memcmp(x, z, a.n * sizeof(double)) != 0;
        }
        assert_int_equal(a.failures, b.failures);
        assert_int_equal(a.glitches, b.glitches);
        devsim_asset_free(&a);
        devsim_asset_free(&b);
        devsim_asset_free(&c);
    }
    assert_true(differ > 1000);
    tw_model_free(m);
}

/* With faults, over two weeks of device time every value is finite, wear makes machines fail,
 * they are repaired (wear nearly new again), and sensors glitch. */
static void faults_wear_fail_repair_and_glitch_with_finite_values(void **state)
{
    (void)state;
    struct tw_model *m = demo_plant();
    double v[16];
    uint64_t failures = 0, repairs = 0;
    for (size_t i = 0; i < tw_model_asset_count(m); i++) {
        struct devsim_asset a;
        init_asset(&a, m, i, 7, true);
        double prev_wear = a.wear;
        bool grew = false;
        for (int64_t k = 0; k < 14 * 8640; k++) {
            bool was_down = a.down;
            devsim_asset_step(&a, T0 + k * 10000, v);
            for (size_t s = 0; s < a.n; s++)
                assert_true(isfinite(v[s]));
            if (was_down && !a.down)
                assert_true(a.wear < 0.1);
            if (!was_down && !a.down && a.wear > prev_wear)
                grew = true;
            prev_wear = a.wear;
        }
        assert_true(grew);
        assert_true(a.glitches > 500); /* one per ~10 min: ~2000 in two weeks */
        failures += a.failures;
        repairs += a.repairs;
        devsim_asset_free(&a);
    }
    assert_true(failures >= 7 * 10); /* MTBF 8 h or less with wear: > 10 per asset */
    assert_true(repairs + 7 >= failures);
    tw_model_free(m);
}

/* While a press is down its stroke rate is 0; after the repair it runs again. */
static void stroke_rate_is_zero_while_down(void **state)
{
    (void)state;
    struct tw_model *m = demo_plant();
    struct devsim_asset a;
    double v[16];
    init_asset(&a, m, 0, 3, true); /* press-1 */
    size_t sr = signal_index(&a, "stroke_rate");
    int down_samples = 0, up_after = 0;
    for (int64_t k = 0; k < 7 * 8640; k++) {
        devsim_asset_step(&a, T0 + k * 10000, v);
        if (a.down) {
            assert_true(v[sr] == 0.0);
            down_samples++;
        } else if (a.repairs > 0 && v[sr] > 8.0) {
            up_after++;
        }
    }
    assert_true(down_samples > 0);
    assert_true(up_after > 0);
    devsim_asset_free(&a);
    tw_model_free(m);
}

/* Healthy devices (no faults) stay strictly inside their warn limits, on the demo plant and
 * on load mode's kind, over three days. */
static void check_inside_warn(const struct tw_model_kind *k, const double *v)
{
    for (size_t s = 0; s < k->n_signals; s++) {
        const struct tw_model_limit *w = &k->signals[s].warn;
        if (w->has_above && !(v[s] < w->above))
            fail_msg("%s = %g not below warn %g", k->signals[s].name, v[s], w->above);
        if (w->has_below && !(v[s] > w->below))
            fail_msg("%s = %g not above warn %g", k->signals[s].name, v[s], w->below);
    }
}

static void healthy_values_stay_inside_warn_limits(void **state)
{
    (void)state;
    struct tw_model *m = demo_plant();
    double v[16];
    for (size_t i = 0; i < tw_model_asset_count(m); i++) {
        struct devsim_asset a;
        init_asset(&a, m, i, 11, false);
        for (int64_t k = 0; k < 3 * 1440 * 6; k++) {
            devsim_asset_step(&a, T0 + k * 10000, v);
            check_inside_warn(tw_model_asset_at(m, i)->kind, v);
        }
        assert_int_equal(a.failures + a.glitches, 0);
        devsim_asset_free(&a);
    }
    struct devsim_gen_config g = {.seed = 5, .period_ms = 1000};
    struct devsim_asset a;
    assert_int_equal(devsim_asset_init(&a, "load-000001", devsim_load_kind(), &g, false), 0);
    for (int64_t k = 0; k < 100000; k++) {
        devsim_asset_step(&a, T0 + k * 1000, v);
        check_inside_warn(devsim_load_kind(), v);
    }
    devsim_asset_free(&a);
    tw_model_free(m);
}

/* A signal with a "1d" season swings over the day: hourly means differ by more than a third
 * of its headroom; one with an "8h" season repeats every 8 hours. */
static void seasons_show_as_cycles(void **state)
{
    (void)state;
    struct tw_model *m = demo_plant();
    double v[16], hourly[24] = {0};
    int count[24] = {0};
    struct devsim_asset a;
    init_asset(&a, m, 3, 9, false); /* paint-1 */
    size_t bt = signal_index(&a, "booth_temp");
    for (int64_t k = 0; k < 1440; k++) {
        devsim_asset_step(&a, T0 + k * 60000, v);
        hourly[(k / 60) % 24] += v[bt];
        count[(k / 60) % 24]++;
    }
    double lo = INFINITY, hi = -INFINITY;
    for (int h = 0; h < 24; h++) {
        double mean = hourly[h] / count[h];
        lo = mean < lo ? mean : lo;
        hi = mean > hi ? mean : hi;
    }
    assert_true(hi - lo > a.prof[bt].headroom / 3);
    assert_true(a.prof[bt].cycle_ms == (double)DAY_MS);
    size_t ot = signal_index(&a, "oven_temp");
    assert_true(a.prof[ot].cycle_ms == (double)(8 * HOUR_MS));
    devsim_asset_free(&a);
    tw_model_free(m);
}

/* The demo's head start: paint-1's filters cross the warn limit within a minute of device
 * time, reach the alarm limit later, and are changed (a repair resets the wear). */
static void head_start_crosses_warn_within_a_minute(void **state)
{
    (void)state;
    struct tw_model *m = demo_plant();
    size_t hs = devsim_head_start_index(m);
    assert_string_equal(tw_model_asset_at(m, hs)->id, "paint-1");
    for (uint64_t seed = 1; seed <= 20; seed++) {
        struct devsim_asset a;
        double v[16];
        init_asset(&a, m, hs, seed, true);
        size_t dp = signal_index(&a, "filter_dp");
        int64_t warn_at = -1, alarm_at = -1;
        for (int64_t s = 0; s < 3600 && a.repairs == 0; s++) {
            uint64_t glitches = a.glitches;
            devsim_asset_step(&a, T0 + s * 1000, v);
            if (a.glitches != glitches) /* a spike is not the wear we are after */
                continue;
            if (s == 0)
                assert_true(v[dp] < 250.0);
            if (warn_at < 0 && v[dp] > 250.0)
                warn_at = s;
            if (alarm_at < 0 && v[dp] > 400.0 && !a.down)
                alarm_at = s;
        }
        assert_true(warn_at >= 1 && warn_at <= 60);
        assert_true(alarm_at > 120 && alarm_at < 1200);
        assert_true(a.repairs >= 1);
        devsim_asset_free(&a);
    }
    tw_model_free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(same_seed_gives_the_same_values),
        cmocka_unit_test(faults_wear_fail_repair_and_glitch_with_finite_values),
        cmocka_unit_test(stroke_rate_is_zero_while_down),
        cmocka_unit_test(healthy_values_stay_inside_warn_limits),
        cmocka_unit_test(seasons_show_as_cycles),
        cmocka_unit_test(head_start_crosses_warn_within_a_minute),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
