/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests for log level parsing, the log line format and the log rate limiter. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <regex.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "twin/err.h"
#include "twin/log.h"

#define CAPTURE_MAX 16384

/* Runs fn with fd 2 redirected to a temporary file and returns what it wrote. cmocka reports
 * failures on stderr, so asserting happens only after fd 2 is restored. */
static size_t capture_stderr(void (*fn)(void), char *buf, size_t len)
{
    FILE *tmp = tmpfile();
    assert_non_null(tmp);
    int saved = dup(STDERR_FILENO);
    assert_true(saved >= 0);
    fflush(stderr);
    assert_true(dup2(fileno(tmp), STDERR_FILENO) >= 0);
    fn();
    fflush(stderr);
    assert_true(dup2(saved, STDERR_FILENO) >= 0);
    close(saved);
    rewind(tmp);
    size_t n = fread(buf, 1, len - 1, tmp);
    buf[n] = '\0';
    fclose(tmp);
    return n;
}

static void count_lines_equal(const char *text, size_t want)
{
    size_t lines = 0;
    for (const char *p = text; *p; p++)
        lines += *p == '\n';
    assert_int_equal(lines, want);
}

static void parse_level_accepts_every_level_name(void **state)
{
    enum tw_log_level level;
    (void)state;
    assert_int_equal(tw_log_parse_level("debug", &level), 0);
    assert_int_equal(level, TW_LOG_DEBUG);
    assert_int_equal(tw_log_parse_level("info", &level), 0);
    assert_int_equal(level, TW_LOG_INFO);
    assert_int_equal(tw_log_parse_level("warn", &level), 0);
    assert_int_equal(level, TW_LOG_WARN);
    assert_int_equal(tw_log_parse_level("error", &level), 0);
    assert_int_equal(level, TW_LOG_ERROR);
    assert_int_equal(tw_log_parse_level("off", &level), 0);
    assert_int_equal(level, TW_LOG_OFF);
}

static void parse_level_ignores_case(void **state)
{
    enum tw_log_level level;
    (void)state;
    assert_int_equal(tw_log_parse_level("WARN", &level), 0);
    assert_int_equal(level, TW_LOG_WARN);
}

static void parse_level_rejects_unknown_text_and_keeps_output(void **state)
{
    enum tw_log_level level = TW_LOG_ERROR;
    (void)state;
    assert_int_equal(tw_log_parse_level("verbose", &level), TW_EINVAL);
    assert_int_equal(tw_log_parse_level("", &level), TW_EINVAL);
    assert_int_equal(tw_log_parse_level("info ", &level), TW_EINVAL);
    assert_int_equal(tw_log_parse_level(NULL, &level), TW_EINVAL);
    assert_int_equal(level, TW_LOG_ERROR);
}

static void enabled_honours_minimum_level_and_off(void **state)
{
    (void)state;
    tw_log_init("test", TW_LOG_WARN);
    assert_false(tw_log_enabled(TW_LOG_DEBUG));
    assert_false(tw_log_enabled(TW_LOG_INFO));
    assert_true(tw_log_enabled(TW_LOG_WARN));
    assert_true(tw_log_enabled(TW_LOG_ERROR));
    assert_false(tw_log_enabled(TW_LOG_OFF));
    tw_log_init("test", TW_LOG_OFF);
    assert_false(tw_log_enabled(TW_LOG_ERROR));
}

static void write_sample_line(void)
{
    tw_log_init("ingest", TW_LOG_INFO);
    tw_log(TW_LOG_INFO, "applied", "asset=%s seq=%d", "press-1", 42);
}

static void line_has_timestamp_level_service_event_and_fields(void **state)
{
    char out[CAPTURE_MAX];
    regex_t re;
    (void)state;
    capture_stderr(write_sample_line, out, sizeof(out));
    assert_int_equal(regcomp(&re,
                             "^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\\.[0-9]{3}Z "
                             "info ingest event=applied asset=press-1 seq=42\n$",
                             REG_EXTENDED),
                     0);
    int match = regexec(&re, out, 0, NULL, 0);
    regfree(&re);
    if (match != 0)
        fail_msg("unexpected line: %s", out);
}

static void write_without_fields(void)
{
    tw_log_init("ingest", TW_LOG_DEBUG);
    tw_log_write(TW_LOG_ERROR, "stopped", NULL);
    tw_log_write(TW_LOG_DEBUG, "idle", "%s", "");
}

static void line_without_fields_has_no_trailing_space(void **state)
{
    char out[CAPTURE_MAX];
    (void)state;
    capture_stderr(write_without_fields, out, sizeof(out));
    assert_non_null(strstr(out, " error ingest event=stopped\n"));
    assert_non_null(strstr(out, " debug ingest event=idle\n"));
}

static void write_below_level(void)
{
    tw_log_init("ingest", TW_LOG_WARN);
    tw_log(TW_LOG_INFO, "hidden", "k=%d", 1);
    tw_log_write(TW_LOG_DEBUG, "hidden", "k=%d", 2);
    tw_log(TW_LOG_WARN, "shown", "k=%d", 3);
}

static void lines_below_minimum_level_are_not_written(void **state)
{
    char out[CAPTURE_MAX];
    (void)state;
    capture_stderr(write_below_level, out, sizeof(out));
    assert_null(strstr(out, "hidden"));
    assert_non_null(strstr(out, "warn ingest event=shown k=3\n"));
    count_lines_equal(out, 1);
}

static void write_with_newlines(void)
{
    tw_log_init("ingest", TW_LOG_INFO);
    tw_log(TW_LOG_WARN, "bad_payload", "reason=\"%s\"", "line1\nfake 2026 error x event=forged\r");
}

static void control_characters_cannot_forge_a_second_line(void **state)
{
    char out[CAPTURE_MAX];
    (void)state;
    capture_stderr(write_with_newlines, out, sizeof(out));
    count_lines_equal(out, 1);
    assert_non_null(strstr(out, "reason=\"line1 fake 2026 error x event=forged \"\n"));
}

static void write_huge_line(void)
{
    static char big[10000];
    memset(big, 'x', sizeof(big) - 1);
    tw_log_init("ingest", TW_LOG_INFO);
    tw_log(TW_LOG_INFO, "huge", "blob=%s", big);
}

static void overlong_line_is_truncated_with_marker_and_newline(void **state)
{
    char out[CAPTURE_MAX];
    (void)state;
    size_t n = capture_stderr(write_huge_line, out, sizeof(out));
    assert_true(n <= 4096);
    assert_true(n > 4000);
    count_lines_equal(out, 1);
    assert_int_equal(out[n - 1], '\n');
    assert_memory_equal(out + n - 4, "...\n", 4);
}

static void write_huge_event(void)
{
    static char big[6000];
    memset(big, 'e', sizeof(big) - 1);
    tw_log_init("ingest", TW_LOG_INFO);
    tw_log(TW_LOG_INFO, big, "k=%d", 1);
}

static void overlong_event_name_is_truncated_safely(void **state)
{
    char out[CAPTURE_MAX];
    (void)state;
    size_t n = capture_stderr(write_huge_event, out, sizeof(out));
    assert_true(n <= 4096);
    count_lines_equal(out, 1);
    assert_memory_equal(out + n - 4, "...\n", 4);
}

static void ratelimit_allows_burst_then_suppresses(void **state)
{
    struct tw_ratelimit rl = {.burst = 3, .interval_ms = 1000};
    uint32_t dropped = 99;
    (void)state;
    for (int i = 0; i < 3; i++) {
        assert_true(tw_ratelimit_allow(&rl, 5000 + i, &dropped));
        assert_int_equal(dropped, 0);
    }
    assert_false(tw_ratelimit_allow(&rl, 5100, &dropped));
    assert_false(tw_ratelimit_allow(&rl, 5999, &dropped));
    assert_int_equal(dropped, 0);
}

static void ratelimit_new_window_reports_suppressed_count(void **state)
{
    struct tw_ratelimit rl = {.burst = 2, .interval_ms = 1000};
    uint32_t dropped = 0;
    (void)state;
    assert_true(tw_ratelimit_allow(&rl, 10000, &dropped));
    assert_true(tw_ratelimit_allow(&rl, 10001, &dropped));
    for (int i = 0; i < 5; i++)
        assert_false(tw_ratelimit_allow(&rl, 10002 + i, &dropped));
    assert_true(tw_ratelimit_allow(&rl, 11000, &dropped));
    assert_int_equal(dropped, 5);
    assert_true(tw_ratelimit_allow(&rl, 11001, &dropped));
    assert_int_equal(dropped, 0);
}

static void ratelimit_quiet_window_reports_zero(void **state)
{
    struct tw_ratelimit rl = {.burst = 1, .interval_ms = 100};
    uint32_t dropped = 7;
    (void)state;
    assert_true(tw_ratelimit_allow(&rl, 1000, &dropped));
    assert_true(tw_ratelimit_allow(&rl, 5000, &dropped));
    assert_int_equal(dropped, 0);
}

static void ratelimit_accepts_null_suppressed_out(void **state)
{
    struct tw_ratelimit rl = {.burst = 1, .interval_ms = 100};
    (void)state;
    assert_true(tw_ratelimit_allow(&rl, 1000, NULL));
    assert_false(tw_ratelimit_allow(&rl, 1001, NULL));
}

static void ratelimit_zero_burst_allows_nothing(void **state)
{
    struct tw_ratelimit rl = {.burst = 0, .interval_ms = 100};
    (void)state;
    assert_false(tw_ratelimit_allow(&rl, 1000, NULL));
    assert_false(tw_ratelimit_allow(&rl, 2000, NULL));
}

static void ratelimit_clock_going_back_opens_new_window(void **state)
{
    struct tw_ratelimit rl = {.burst = 1, .interval_ms = 60000};
    uint32_t dropped = 0;
    (void)state;
    assert_true(tw_ratelimit_allow(&rl, 100000, &dropped));
    assert_false(tw_ratelimit_allow(&rl, 100001, &dropped));
    assert_true(tw_ratelimit_allow(&rl, 50, &dropped));
    assert_int_equal(dropped, 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(parse_level_accepts_every_level_name),
        cmocka_unit_test(parse_level_ignores_case),
        cmocka_unit_test(parse_level_rejects_unknown_text_and_keeps_output),
        cmocka_unit_test(enabled_honours_minimum_level_and_off),
        cmocka_unit_test(line_has_timestamp_level_service_event_and_fields),
        cmocka_unit_test(line_without_fields_has_no_trailing_space),
        cmocka_unit_test(lines_below_minimum_level_are_not_written),
        cmocka_unit_test(control_characters_cannot_forge_a_second_line),
        cmocka_unit_test(overlong_line_is_truncated_with_marker_and_newline),
        cmocka_unit_test(overlong_event_name_is_truncated_safely),
        cmocka_unit_test(ratelimit_allows_burst_then_suppresses),
        cmocka_unit_test(ratelimit_new_window_reports_suppressed_count),
        cmocka_unit_test(ratelimit_quiet_window_reports_zero),
        cmocka_unit_test(ratelimit_accepts_null_suppressed_out),
        cmocka_unit_test(ratelimit_zero_burst_allows_nothing),
        cmocka_unit_test(ratelimit_clock_going_back_opens_new_window),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
