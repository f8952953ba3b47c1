/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests of twin-devsim's CSV replay reader: lines, headers, grouping by timestamp, and
 * bad lines reported by number. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "replay.h"
#include "twin/err.h"

static int parse(const char *line, size_t lineno, struct devsim_row *row)
{
    char err[128];
    return devsim_csv_parse_line(line, strlen(line), lineno, row, err, sizeof(err));
}

static void good_lines_parse(void **state)
{
    (void)state;
    struct devsim_row r;
    assert_int_equal(parse("1700000000000,temp,71.5", 2, &r), 1);
    assert_int_equal(r.ts_ms, 1700000000000LL);
    assert_string_equal(r.signal, "temp");
    assert_true(r.value == 71.5);
    assert_int_equal(parse(" 5 , a.b:c/d-e , -1e3 \r", 2, &r), 1);
    assert_int_equal(r.ts_ms, 5);
    assert_string_equal(r.signal, "a.b:c/d-e");
    assert_true(r.value == -1000.0);
    assert_int_equal(parse("ts_ms,signal,value", 1, &r), 0); /* header */
    assert_int_equal(parse("", 3, &r), 0);
    assert_int_equal(parse("  \r", 3, &r), 0);
    assert_int_equal(parse("# comment", 3, &r), 0);
    assert_int_equal(parse("253402300799999,temp,1", 2, &r), 1); /* the last ms of year 9999 */
    assert_int_equal(r.ts_ms, DEVSIM_MAX_TS_MS);
}

static void bad_lines_are_refused(void **state)
{
    (void)state;
    struct devsim_row r;
    static const char *const bad[] = {
        "ts_ms,signal,value", /* a header after line 1 */
        "1,temp",
        "1,temp,2,3",
        "x,temp,1",
        "-5,temp,1",
        "1.5,temp,1",
        "99999999999999999999999,temp,1",
        "253402300800000,temp,1",     /* after year 9999 */
        "9223372036854775807,temp,1", /* INT64_MAX: would overflow --shift-to-now */
        "1,_meta,1",
        "1,,1",
        "1,bad signal,1",
        "1,temp,",
        "1,temp,nan",
        "1,temp,inf",
        "1,temp,1e999",
        "1,temp,12abc",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char err[128] = "";
        int rc = devsim_csv_parse_line(bad[i], strlen(bad[i]), 2, &r, err, sizeof(err));
        if (rc != TW_EINVAL)
            fail_msg("line \"%s\" gave %d", bad[i], rc);
        assert_true(err[0] != 0);
    }
}

struct bad_log {
    size_t n;
    size_t lines[16];
};

static void on_bad(void *ctx, size_t lineno, const char *reason)
{
    struct bad_log *log = ctx;
    assert_non_null(reason);
    if (log->n < 16)
        log->lines[log->n] = lineno;
    log->n++;
}

static void rows_with_one_timestamp_form_one_message(void **state)
{
    (void)state;
    const char csv[] = "ts_ms,signal,value\n"
                       "1000,a,1\n"
                       "1000,b,2\n"
                       "\n"
                       "2000,a,3\r\n"
                       "3000,a,4\n"
                       "3000,b,5\n"
                       "3000,c,6"; /* no final newline */
    struct devsim_recording rec;
    struct bad_log log = {0};
    assert_int_equal(devsim_recording_parse(csv, sizeof(csv) - 1, &rec, on_bad, &log), 0);
    assert_int_equal(log.n, 0);
    assert_int_equal(rec.n_rows, 6);
    assert_int_equal(rec.n_groups, 3);
    assert_int_equal(rec.groups[0].n, 2);
    assert_int_equal(rec.groups[1].n, 1);
    assert_int_equal(rec.groups[2].n, 3);
    assert_string_equal(rec.rows[rec.groups[2].first + 2].signal, "c");
    assert_true(rec.rows[rec.groups[2].first + 2].value == 6.0);
    devsim_recording_free(&rec);
}

static void bad_lines_are_reported_by_number_and_left_out(void **state)
{
    (void)state;
    const char csv[] = "1000,a,1\n"    /* 1: no header, data */
                       "1000,a,2\n"    /* 2: a repeated at 1000 */
                       "2000,a,3\n"    /* 3 */
                       "1500,a,4\n"    /* 4: out of order */
                       "2500,a,oops\n" /* 5: bad value */
                       "3000,b,5\n";   /* 6 */
    struct devsim_recording rec;
    struct bad_log log = {0};
    assert_int_equal(devsim_recording_parse(csv, sizeof(csv) - 1, &rec, on_bad, &log), 0);
    assert_int_equal(log.n, 3);
    assert_int_equal(rec.bad_lines, 3);
    assert_int_equal(log.lines[0], 2);
    assert_int_equal(log.lines[1], 4);
    assert_int_equal(log.lines[2], 5);
    assert_int_equal(rec.n_rows, 3);
    assert_int_equal(rec.n_groups, 3);
    devsim_recording_free(&rec);
}

static void a_utf8_bom_at_the_start_is_skipped(void **state)
{
    (void)state;
    static const char *const files[] = {"\xef\xbb\xbfts_ms,signal,value\r\n1000,a,1\r\n",
                                        "\xef\xbb\xbf"
                                        "1000,a,1\n"};
    for (size_t i = 0; i < 2; i++) {
        struct devsim_recording rec;
        struct bad_log log = {0};
        assert_int_equal(devsim_recording_parse(files[i], strlen(files[i]), &rec, on_bad, &log), 0);
        assert_int_equal(log.n, 0);
        assert_int_equal(rec.n_rows, 1);
        assert_int_equal(rec.rows[0].ts_ms, 1000);
        assert_string_equal(rec.rows[0].signal, "a");
        devsim_recording_free(&rec);
    }
    /* Only at the start of the file: elsewhere it is a bad line. */
    const char later[] = "1000,a,1\n\xef\xbb\xbf"
                         "2000,a,2\n";
    struct devsim_recording rec;
    struct bad_log log = {0};
    assert_int_equal(devsim_recording_parse(later, sizeof(later) - 1, &rec, on_bad, &log), 0);
    assert_int_equal(log.n, 1);
    assert_int_equal(log.lines[0], 2);
    devsim_recording_free(&rec);
}

static void more_than_256_samples_at_one_time_is_a_bad_line(void **state)
{
    (void)state;
    size_t cap = 300 * 32, len = 0;
    char *csv = malloc(cap);
    assert_non_null(csv);
    for (int i = 0; i < 257; i++)
        len += (size_t)snprintf(csv + len, cap - len, "7,s%d,%d\n", i, i);
    struct devsim_recording rec;
    struct bad_log log = {0};
    assert_int_equal(devsim_recording_parse(csv, len, &rec, on_bad, &log), 0);
    assert_int_equal(log.n, 1);
    assert_int_equal(log.lines[0], 257);
    assert_int_equal(rec.n_groups, 1);
    assert_int_equal(rec.groups[0].n, DEVSIM_MAX_SAMPLES);
    devsim_recording_free(&rec);
    free(csv);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(good_lines_parse),
        cmocka_unit_test(bad_lines_are_refused),
        cmocka_unit_test(rows_with_one_timestamp_form_one_message),
        cmocka_unit_test(bad_lines_are_reported_by_number_and_left_out),
        cmocka_unit_test(more_than_256_samples_at_one_time_is_a_bad_line),
        cmocka_unit_test(a_utf8_bom_at_the_start_is_skipped),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
