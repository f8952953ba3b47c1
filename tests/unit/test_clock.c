/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests of clocks and capped exponential backoff with jitter. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "twin/clock.h"

static void backoff_doubles_from_initial_up_to_the_cap(void **state)
{
    (void)state;
    struct tw_backoff b = {.initial_ms = 100, .max_ms = 1000};
    int64_t expected[] = {100, 200, 400, 800, 1000, 1000, 1000};
    for (size_t i = 0; i < sizeof(expected) / sizeof(expected[0]); i++) {
        int64_t d = tw_backoff_next(&b);
        /* jitter takes off at most a quarter, never adds */
        assert_true(d <= expected[i]);
        assert_true(d >= expected[i] - expected[i] / 4);
        assert_int_equal(b.current_ms, expected[i]);
    }
}

static void backoff_reset_starts_again_from_initial(void **state)
{
    (void)state;
    struct tw_backoff b = {.initial_ms = 50, .max_ms = 5000};
    for (int i = 0; i < 10; i++)
        tw_backoff_next(&b);
    tw_backoff_reset(&b);
    int64_t d = tw_backoff_next(&b);
    assert_true(d <= 50 && d >= 38);
}

static void backoff_jitter_spreads_retries(void **state)
{
    (void)state;
    int64_t seen_min = INT64_MAX, seen_max = 0;
    for (int i = 0; i < 200; i++) {
        struct tw_backoff b = {.initial_ms = 1000, .max_ms = 1000};
        int64_t d = tw_backoff_next(&b);
        seen_min = d < seen_min ? d : seen_min;
        seen_max = d > seen_max ? d : seen_max;
    }
    assert_true(seen_max - seen_min > 50); /* 200 draws over [750, 1000] are not all alike */
}

static void sleep_returns_at_once_when_stop_is_set(void **state)
{
    (void)state;
    volatile int stop = 1;
    int64_t t0 = tw_mono_ms();
    tw_sleep_ms(5000, &stop);
    assert_true(tw_mono_ms() - t0 < 1000);
}

static void sleep_lasts_its_time(void **state)
{
    (void)state;
    int64_t t0 = tw_mono_ns();
    tw_sleep_ms(30, NULL);
    int64_t elapsed_ms = (tw_mono_ns() - t0) / 1000000;
    assert_true(elapsed_ms >= 30 && elapsed_ms < 1000);
}

static void wall_clock_is_unix_milliseconds(void **state)
{
    (void)state;
    int64_t now = tw_now_ms();
    assert_true(now > 1700000000000LL); /* after Nov 2023 */
    assert_true(now < 4102444800000LL); /* before 2100 */
    assert_true(tw_mono_ms() <= tw_mono_ms());
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(backoff_doubles_from_initial_up_to_the_cap),
        cmocka_unit_test(backoff_reset_starts_again_from_initial),
        cmocka_unit_test(backoff_jitter_spreads_retries),
        cmocka_unit_test(sleep_returns_at_once_when_stop_is_set),
        cmocka_unit_test(sleep_lasts_its_time),
        cmocka_unit_test(wall_clock_is_unix_milliseconds),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
