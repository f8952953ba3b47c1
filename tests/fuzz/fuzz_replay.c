/* SPDX-License-Identifier: Apache-2.0 */
/* libFuzzer target: twin-devsim's CSV replay reader, fed a whole file as twin-devsim feeds it,
 * must keep only valid rows in time order, grouped as replay.h promises, and report every
 * other line exactly once by an in-range number. */
#include <math.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "fuzz_check.h"
#include "replay.h"
#include "twin/err.h"
#include "twin/validate.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_LOGGED 4096

struct bad_log {
    size_t n, last;
    size_t lines[MAX_LOGGED];
};

static void on_bad(void *ctx, size_t lineno, const char *reason)
{
    struct bad_log *log = ctx;
    CHECK(reason && reason[0]);
    CHECK(lineno > log->last); /* each line once, in file order */
    log->last = lineno;
    if (log->n < MAX_LOGGED)
        log->lines[log->n] = lineno;
    log->n++;
}

static void check_row(const struct devsim_row *r)
{
    size_t len = strnlen(r->signal, sizeof(r->signal));
    CHECK(len < sizeof(r->signal));
    CHECK(tw_valid_signal(r->signal, len));
    CHECK(isfinite(r->value));
    CHECK(r->ts_ms >= 0);
}

/* Groups tile the rows in order, one timestamp each, strictly increasing, no signal twice. */
static void check_groups(const struct devsim_recording *rec)
{
    size_t next = 0;
    for (size_t g = 0; g < rec->n_groups; g++) {
        const struct devsim_group *gr = &rec->groups[g];
        CHECK(gr->first == next && gr->n >= 1 && gr->n <= DEVSIM_MAX_SAMPLES);
        int64_t ts = rec->rows[gr->first].ts_ms;
        CHECK(g == 0 || ts > rec->rows[gr->first - 1].ts_ms);
        for (size_t i = gr->first; i < gr->first + gr->n; i++) {
            CHECK(rec->rows[i].ts_ms == ts);
            for (size_t j = gr->first; j < i; j++)
                CHECK(strcmp(rec->rows[i].signal, rec->rows[j].signal) != 0);
        }
        next += gr->n;
    }
    CHECK(next == rec->n_rows);
}

/* Replays the file line by line through devsim_csv_parse_line: the kept rows must be exactly
 * the data lines that were not reported, in order, and no line with a NUL byte (which the
 * number parsers would silently cut short) may be kept. A UTF-8 byte order mark at the very
 * start is not part of the first line (the reader skips it). */
static void check_lines(const uint8_t *data, size_t size, const struct devsim_recording *rec,
                        const struct bad_log *log)
{
    size_t pos = size >= 3 && memcmp(data, "\xef\xbb\xbf", 3) == 0 ? 3 : 0;
    size_t lineno = 0, row = 0, bad = 0;
    while (pos < size) {
        const uint8_t *nl = memchr(data + pos, '\n', size - pos);
        size_t end = nl ? (size_t)(nl - data) : size;
        struct devsim_row r;
        char err[128] = "";
        lineno++;
        int rc = devsim_csv_parse_line((const char *)data + pos, end - pos, lineno, &r, err,
                                       sizeof(err));
        CHECK(rc == 0 || rc == 1 || (rc == TW_EINVAL && err[0]));
        bool reported = bad < log->n && bad < MAX_LOGGED && log->lines[bad] == lineno;
        if (reported)
            bad++;
        CHECK(rc >= 0 || reported || log->n > MAX_LOGGED);
        if (rc == 1 && !reported && log->n <= MAX_LOGGED) {
            CHECK(memchr(data + pos, 0, end - pos) == NULL);
            CHECK(row < rec->n_rows);
            const struct devsim_row *k = &rec->rows[row++];
            CHECK(k->ts_ms == r.ts_ms && k->value == r.value && strcmp(k->signal, r.signal) == 0);
        }
        pos = end + 1;
    }
    CHECK(log->n == 0 || log->last <= lineno);
    CHECK(log->n > MAX_LOGGED || row == rec->n_rows);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct bad_log log;
    struct devsim_recording rec;
    memset(&log, 0, sizeof(log));
    int rc = devsim_recording_parse((const char *)data, size, &rec, on_bad, &log);
    CHECK(rc == 0 || rc == TW_ENOMEM);
    if (rc == 0) {
        CHECK(rec.bad_lines == log.n);
        CHECK(rec.n_rows <= DEVSIM_MAX_ROWS && rec.n_rows <= rec.cap_rows);
        CHECK(rec.n_groups <= rec.n_rows && rec.n_groups <= rec.cap_groups);
        for (size_t i = 0; i < rec.n_rows; i++)
            check_row(&rec.rows[i]);
        check_groups(&rec);
        check_lines(data, size, &rec, &log);
    }
    devsim_recording_free(&rec);
    return 0;
}
