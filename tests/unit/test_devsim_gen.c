/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests of twin-devsim's signal generator: determinism, finite values, healthy limits,
 * cycles, wear, failures and repairs, glitches, the demo's head start, and the commands
 * (maintenance, slow-down) with their downtime accounting. */
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
 * time, reach the alarm limit later, and are changed (a repair, 20-60 min, resets the wear). */
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
        for (int64_t s = 0; s < 7200 && a.repairs == 0; s++) {
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
        assert_int_equal(a.failures, 1);
        assert_true(a.downtime_failure_ms >= 20 * 60000 && a.downtime_failure_ms <= 60 * 60000);
        devsim_asset_free(&a);
    }
    tw_model_free(m);
}

/* A breakdown's repair takes 20-60 min of device time: every failure over two weeks. */
static void repairs_take_20_to_60_minutes(void **state)
{
    (void)state;
    struct tw_model *m = demo_plant();
    double v[16];
    int64_t shortest = INT64_MAX, longest = 0;
    for (size_t i = 0; i < tw_model_asset_count(m); i++) {
        struct devsim_asset a;
        init_asset(&a, m, i, 17, true);
        for (int64_t k = 0; k < 14 * 8640; k++) {
            uint64_t f = a.failures;
            devsim_asset_step(&a, T0 + k * 10000, v);
            if (a.failures == f)
                continue;
            int64_t ttr = a.down_until_ms - a.down_since_ms;
            shortest = ttr < shortest ? ttr : shortest;
            longest = ttr > longest ? ttr : longest;
        }
        devsim_asset_free(&a);
    }
    assert_true(shortest >= 20 * 60000 && shortest < 25 * 60000);
    assert_true(longest <= 60 * 60000 && longest > 55 * 60000);
    tw_model_free(m);
}

/* A maintenance planned ahead takes press-1 down at exactly the steps in [start, start +
 * duration) (stroke rate 0), counts once, and leaves it as new; planned between two steps, it
 * still counts its exact duration; planned for "at once" (0), it starts at the next step. */
static void maintenance_takes_the_device_down_exactly_over_its_window(void **state)
{
    (void)state;
    struct tw_model *m = demo_plant();
    struct devsim_asset a;
    double v[16];
    init_asset(&a, m, 0, 3, true); /* press-1 */
    size_t sr = signal_index(&a, "stroke_rate");
    const int64_t start = T0 + 600000, dur = 30 * 60000;
    devsim_asset_step(&a, T0, v);
    devsim_asset_maintain(&a, start, dur);
    for (int64_t ts = T0 + 1000; ts <= start + dur + 60000; ts += 1000) {
        devsim_asset_step(&a, ts, v);
        bool inside = ts >= start && ts < start + dur;
        assert_int_equal(a.down, inside);
        if (inside) {
            assert_int_equal(a.down_cause, DEVSIM_DOWN_MAINTENANCE);
            assert_true(v[sr] == 0.0);
        }
        if (ts == start + dur)
            assert_true(a.wear < 0.1);
    }
    assert_int_equal(a.failures, 0); /* seed 3: none in this hour; the test relies on it */
    assert_int_equal(a.maintenances, 1);
    assert_int_equal(a.downtime_maintenance_ms, dur);
    assert_int_equal(a.downtime_failure_ms, 0);

    int64_t now = start + dur + 60000;
    devsim_asset_maintain(&a, now + 500, 10000); /* between two steps */
    for (int64_t ts = now + 1000; ts <= now + 20000; ts += 1000) {
        devsim_asset_step(&a, ts, v);
        assert_int_equal(a.down, ts >= now + 1000 && ts < now + 10500);
    }
    assert_int_equal(a.downtime_maintenance_ms, dur + 10000);
    now += 20000;
    devsim_asset_maintain(&a, 0, 5000);
    devsim_asset_step(&a, now + 1000, v);
    assert_true(a.down && a.down_since_ms == now + 1000 && a.down_until_ms == now + 6000);
    assert_int_equal(a.maintenances, 3);
    devsim_asset_free(&a);
    tw_model_free(m);
}

/* A newer maintenance replaces a pending one; one that comes due while the machine is broken
 * is dropped (the repair renews it), counted as skipped. */
static void newer_maintenance_replaces_and_one_due_while_broken_is_skipped(void **state)
{
    (void)state;
    struct tw_model *m = demo_plant();
    struct devsim_asset a;
    double v[16];
    init_asset(&a, m, 0, 3, true);
    devsim_asset_step(&a, T0, v);
    devsim_asset_maintain(&a, T0 + 100000, 60000);
    devsim_asset_maintain(&a, T0 + 200000, 60000);
    int64_t ts = T0;
    while (ts < T0 + 300000) {
        ts += 1000;
        devsim_asset_step(&a, ts, v);
        if (ts < T0 + 200000)
            assert_false(a.down);
    }
    assert_int_equal(a.maintenances, 1);
    assert_int_equal(a.downtime_maintenance_ms, 60000);
    /* Run until a failure, then plan a maintenance inside the repair. */
    while (a.failures == 0) {
        ts += 1000;
        devsim_asset_step(&a, ts, v);
    }
    devsim_asset_maintain(&a, ts + 60000, 60000);
    int64_t repaired = a.down_until_ms;
    while (ts < repaired + 120000) {
        ts += 1000;
        devsim_asset_step(&a, ts, v);
    }
    assert_int_equal(a.maintenances, 1);
    assert_int_equal(a.maintenances_skipped, 1);
    assert_int_equal(a.repairs, 1);
    devsim_asset_free(&a);
    tw_model_free(m);
}

/* Runs the head-start asset (paint-1) for an hour; with `maintain`, a 15-minute filter change
 * is planned as soon as filter_dp crosses its warn limit (what the twin would recommend). */
static void run_head_start(const struct tw_model *m, uint64_t seed, bool maintain,
                           struct devsim_asset *a)
{
    double v[16];
    init_asset(a, m, devsim_head_start_index(m), seed, true);
    size_t dp = signal_index(a, "filter_dp");
    bool planned = false;
    for (int64_t s = 0; s < 3600; s++) {
        devsim_asset_step(a, T0 + s * 1000, v);
        if (maintain && !planned && v[dp] > 250.0) {
            devsim_asset_maintain(a, T0 + (s + 60) * 1000, 15 * 60000);
            planned = true;
        }
    }
}

/* The closed loop: the head start's filters fail by wear within the hour unless maintained;
 * maintained when the warn limit is crossed, the failure is avoided (same seeds). */
static void maintenance_before_wear_failure_avoids_it(void **state)
{
    (void)state;
    struct tw_model *m = demo_plant();
    uint64_t without = 0, with = 0;
    int64_t down_without = 0, down_with = 0;
    for (uint64_t seed = 1; seed <= 20; seed++) {
        struct devsim_asset a, b;
        run_head_start(m, seed, false, &a);
        run_head_start(m, seed, true, &b);
        assert_true(a.failures >= 1);
        assert_int_equal(a.maintenances, 0);
        assert_int_equal(b.maintenances, 1);
        assert_int_equal(b.downtime_maintenance_ms, 15 * 60000);
        int64_t fa, fb, ma, mb;
        devsim_asset_downtime(&a, &fa, &ma);
        devsim_asset_downtime(&b, &fb, &mb);
        without += a.failures;
        with += b.failures;
        down_without += fa;
        down_with += fb;
        devsim_asset_free(&a);
        devsim_asset_free(&b);
    }
    assert_true(with * 4 < without); /* only random failures are left: ~1 in 8 per hour */
    assert_true(down_with * 4 < down_without);
    tw_model_free(m);
}

/* Slowed to 0.5, press-1's wear grows 4x slower and its stroke rate halves; with a duration
 * the slow-down ends on time, without one at the end of the next maintenance. */
static void slow_half_makes_wear_grow_four_times_slower(void **state)
{
    (void)state;
    struct tw_model *m = demo_plant();
    struct devsim_asset a, b;
    double va[16], vb[16], rate_a = 0, rate_b = 0;
    init_asset(&a, m, 0, 3, true);
    init_asset(&b, m, 0, 3, true);
    size_t sr = signal_index(&a, "stroke_rate");
    devsim_asset_step(&a, T0, va);
    devsim_asset_step(&b, T0, vb);
    double w0 = a.wear;
    devsim_asset_slow(&b, 0, 0.5, 0);
    for (int64_t s = 1; s <= 1800; s++) {
        devsim_asset_step(&a, T0 + s * 1000, va);
        devsim_asset_step(&b, T0 + s * 1000, vb);
        rate_a += va[sr];
        rate_b += vb[sr];
    }
    assert_int_equal(a.failures + b.failures, 0);
    assert_true(b.speed == 0.5);
    double ratio = (b.wear - w0) / (a.wear - w0);
    assert_true(fabs(ratio - 0.25) < 1e-6);
    assert_true(fabs(rate_b / rate_a - 0.5) < 0.02);

    int64_t ts = T0 + 1800 * 1000;
    devsim_asset_maintain(&b, ts + 10000, 60000);
    while (b.down || b.maintenances == 0) {
        ts += 1000;
        devsim_asset_step(&b, ts, vb);
        assert_true(b.speed == (b.maintenances == 0 || b.down ? 0.5 : 1.0));
    }
    devsim_asset_slow(&b, ts + 5000, 0.8, 60000);
    for (int64_t s = 1; s <= 70; s++) {
        devsim_asset_step(&b, ts + s * 1000, vb);
        bool slowed = s >= 5 && s < 65;
        assert_true(b.speed == (slowed ? 0.8 : 1.0));
    }
    devsim_asset_free(&a);
    devsim_asset_free(&b);
    tw_model_free(m);
}

/* Drives every asset of the demo plant for two weeks, with a 30-minute maintenance every 12 h
 * and a slow-down every day; the step index decides the command, so the run is repeatable. */
static void run_with_commands(const struct tw_model *m, size_t i, uint64_t seed,
                              struct devsim_asset *a, double *out_sum)
{
    double v[16];
    init_asset(a, m, i, seed, true);
    *out_sum = 0;
    for (int64_t k = 0; k < 14 * 8640; k++) {
        int64_t ts = T0 + k * 10000;
        if (k % 4320 == 100)
            devsim_asset_maintain(a, ts + 600000, 30 * 60000);
        if (k % 8640 == 2000)
            devsim_asset_slow(a, 0, 0.7, 4 * 3600000);
        devsim_asset_step(a, ts, v);
        for (size_t s = 0; s < a->n; s++)
            *out_sum += v[s];
    }
}

/* The same seed, timestamps and commands give the same values and counts, bit for bit. */
static void commands_keep_the_generator_deterministic(void **state)
{
    (void)state;
    struct tw_model *m = demo_plant();
    for (size_t i = 0; i < tw_model_asset_count(m); i++) {
        struct devsim_asset a, b;
        double sa, sb;
        run_with_commands(m, i, 21, &a, &sa);
        run_with_commands(m, i, 21, &b, &sb);
        assert_memory_equal(&sa, &sb, sizeof(double));
        assert_true(a.wear == b.wear);
        assert_int_equal(a.failures, b.failures);
        assert_int_equal(a.maintenances, b.maintenances);
        assert_int_equal(a.downtime_failure_ms, b.downtime_failure_ms);
        assert_int_equal(a.downtime_maintenance_ms, b.downtime_maintenance_ms);
        assert_true(a.maintenances + a.maintenances_skipped == 28);
        devsim_asset_free(&a);
        devsim_asset_free(&b);
    }
    tw_model_free(m);
}

/* Downtime by cause is the sum of its episodes (a failure's repair time, a maintenance's
 * duration), and matches the steps seen down to within one step per episode. */
static void downtime_accounting_sums_match(void **state)
{
    (void)state;
    struct tw_model *m = demo_plant();
    double v[16];
    for (size_t i = 0; i < tw_model_asset_count(m); i++) {
        struct devsim_asset a;
        init_asset(&a, m, i, 33, true);
        int64_t episodes_ms[2] = {0, 0}, steps_down[2] = {0, 0}, ts = T0;
        uint64_t episodes = 0;
        for (int64_t k = 0; k < 14 * 8640; k++) {
            ts = T0 + k * 10000;
            if (k % 4320 == 100)
                devsim_asset_maintain(&a, ts + 600000, 30 * 60000);
            bool was_down = a.down;
            enum devsim_down_cause cause = a.down_cause;
            int64_t since = a.down_since_ms;
            devsim_asset_step(&a, ts, v);
            if (was_down)
                steps_down[cause] += 10000;
            bool new_episode = a.down && (!was_down || a.down_since_ms != since);
            if (new_episode) {
                episodes_ms[a.down_cause] += a.down_until_ms - a.down_since_ms;
                episodes++;
            }
        }
        int64_t f_ms, m_ms;
        devsim_asset_downtime(&a, &f_ms, &m_ms);
        if (a.down) { /* the running episode counts up to the last step */
            int64_t rest = a.down_until_ms - ts;
            episodes_ms[a.down_cause] -= rest;
        }
        assert_int_equal(f_ms, episodes_ms[DEVSIM_DOWN_FAILURE]);
        assert_int_equal(m_ms, episodes_ms[DEVSIM_DOWN_MAINTENANCE]);
        assert_true(a.failures == a.repairs + (a.down && a.down_cause == DEVSIM_DOWN_FAILURE));
        assert_int_equal(a.maintenances + a.maintenances_skipped, 28);
        assert_true(a.maintenances >= 20);
        assert_true(a.failures >= 5);
        int64_t seen = steps_down[0] + steps_down[1], counted = f_ms + m_ms;
        assert_true(llabs(seen - counted) <= (int64_t)episodes * 10000);
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
        cmocka_unit_test(repairs_take_20_to_60_minutes),
        cmocka_unit_test(maintenance_takes_the_device_down_exactly_over_its_window),
        cmocka_unit_test(newer_maintenance_replaces_and_one_due_while_broken_is_skipped),
        cmocka_unit_test(maintenance_before_wear_failure_avoids_it),
        cmocka_unit_test(slow_half_makes_wear_grow_four_times_slower),
        cmocka_unit_test(commands_keep_the_generator_deterministic),
        cmocka_unit_test(downtime_accounting_sums_match),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
