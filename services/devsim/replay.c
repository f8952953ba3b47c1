/* SPDX-License-Identifier: Apache-2.0 */
/* twin-devsim's replay input: CSV lines to rows, rows to per-timestamp groups, with every bad
 * line named by its number. */
#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "replay.h"
#include "twin/err.h"

static void trim(const char **s, size_t *len)
{
    while (*len > 0 && (**s == ' ' || **s == '\t')) {
        (*s)++;
        (*len)--;
    }
    while (*len > 0 && ((*s)[*len - 1] == ' ' || (*s)[*len - 1] == '\t' || (*s)[*len - 1] == '\r'))
        (*len)--;
}

/* Splits line into exactly three comma-separated, trimmed fields. */
static int split3(const char *line, size_t len, const char *f[3], size_t fl[3])
{
    size_t start = 0, k = 0;
    for (size_t i = 0; i <= len; i++) {
        if (i < len && line[i] != ',')
            continue;
        if (k == 3)
            return TW_EINVAL;
        f[k] = line + start;
        fl[k] = i - start;
        trim(&f[k], &fl[k]);
        k++;
        start = i + 1;
    }
    return k == 3 ? 0 : TW_EINVAL;
}

/* The field s[0 .. len) as a C string in buf (capacity cap); false when empty, too long or
 * holding a NUL byte, after which strtoll/strtod would silently ignore the rest ("1\0junk"). */
static bool field_text(const char *s, size_t len, char *buf, size_t cap)
{
    if (len == 0 || len >= cap || memchr(s, '\0', len))
        return false;
    memcpy(buf, s, len);
    buf[len] = 0;
    return true;
}

static int parse_ts(const char *s, size_t len, int64_t *out)
{
    char buf[32];
    if (!field_text(s, len, buf, sizeof(buf)))
        return TW_EINVAL;
    char *end;
    errno = 0;
    long long v = strtoll(buf, &end, 10);
    if (errno || *end || v < 0 || v > DEVSIM_MAX_TS_MS)
        return TW_EINVAL;
    *out = v;
    return 0;
}

static int parse_value(const char *s, size_t len, double *out)
{
    char buf[64];
    if (!field_text(s, len, buf, sizeof(buf)))
        return TW_EINVAL;
    char *end;
    errno = 0;
    double v = strtod(buf, &end);
    if (*end || !isfinite(v))
        return TW_EINVAL;
    *out = v;
    return 0;
}

int devsim_csv_parse_line(const char *line, size_t len, size_t lineno, struct devsim_row *row,
                          char *err, size_t errlen)
{
    const char *f[3];
    size_t fl[3];
    trim(&line, &len);
    if (len == 0 || line[0] == '#')
        return 0;
    if (lineno == 1 && len >= 5 && strncmp(line, "ts_ms", 5) == 0)
        return 0;
    if (split3(line, len, f, fl) < 0)
        return tw_fail(err, errlen, "expected 3 fields ts_ms,signal,value");
    if (parse_ts(f[0], fl[0], &row->ts_ms) < 0)
        return tw_fail(err, errlen,
                       "ts_ms is not an integer from 0 to 253402300799999 (year 9999)");
    if (!tw_valid_signal(f[1], fl[1]))
        return tw_fail(err, errlen,
                       "bad signal name (1-64 chars of [A-Za-z0-9._:/-], not starting with _)");
    if (parse_value(f[2], fl[2], &row->value) < 0)
        return tw_fail(err, errlen, "value is not a finite number");
    memcpy(row->signal, f[1], fl[1]);
    row->signal[fl[1]] = 0;
    return 1;
}

static int grow(void **arr, size_t *cap, size_t n, size_t size)
{
    if (n < *cap)
        return 0;
    size_t ncap = *cap ? *cap * 2 : 256;
    void *p = realloc(*arr, ncap * size);
    if (!p)
        return TW_ENOMEM;
    *arr = p;
    *cap = ncap;
    return 0;
}

/* Checks a row against the group it would join; returns a reason or NULL. */
static const char *row_conflict(const struct devsim_recording *rec, const struct devsim_row *row)
{
    if (rec->n_groups == 0)
        return NULL;
    const struct devsim_group *g = &rec->groups[rec->n_groups - 1];
    int64_t last_ts = rec->rows[g->first].ts_ms;
    if (row->ts_ms < last_ts)
        return "ts_ms is older than the row before (rows must be in time order)";
    if (row->ts_ms > last_ts)
        return NULL;
    if (g->n >= DEVSIM_MAX_SAMPLES)
        return "more than 256 samples at one ts_ms";
    for (size_t i = g->first; i < g->first + g->n; i++)
        if (strcmp(rec->rows[i].signal, row->signal) == 0)
            return "signal repeated at the same ts_ms";
    return NULL;
}

static int add_row(struct devsim_recording *rec, const struct devsim_row *row)
{
    bool new_group =
        rec->n_groups == 0 || rec->rows[rec->groups[rec->n_groups - 1].first].ts_ms != row->ts_ms;
    if (grow((void **)&rec->rows, &rec->cap_rows, rec->n_rows, sizeof(*row)) < 0 ||
        grow((void **)&rec->groups, &rec->cap_groups, rec->n_groups, sizeof(*rec->groups)) < 0)
        return TW_ENOMEM;
    if (new_group)
        rec->groups[rec->n_groups++] = (struct devsim_group){.first = rec->n_rows, .n = 0};
    rec->rows[rec->n_rows++] = *row;
    rec->groups[rec->n_groups - 1].n++;
    return 0;
}

int devsim_recording_parse(const char *buf, size_t len, struct devsim_recording *rec,
                           devsim_bad_line_fn bad, void *ctx)
{
    memset(rec, 0, sizeof(*rec));
    size_t lineno = 0, pos = 0;
    if (len >= 3 && memcmp(buf, "\xef\xbb\xbf", 3) == 0)
        pos = 3; /* a UTF-8 byte order mark (Excel's "CSV UTF-8") */
    while (pos < len) {
        const char *nl = memchr(buf + pos, '\n', len - pos);
        size_t end = nl ? (size_t)(nl - buf) : len;
        struct devsim_row row;
        char err[128];
        lineno++;
        int rc = devsim_csv_parse_line(buf + pos, end - pos, lineno, &row, err, sizeof(err));
        pos = end + 1;
        const char *reason = rc < 0 ? err : rc == 1 ? row_conflict(rec, &row) : NULL;
        if (reason) {
            rec->bad_lines++;
            if (bad)
                bad(ctx, lineno, reason);
            continue;
        }
        if (rc == 0)
            continue;
        if (rec->n_rows >= DEVSIM_MAX_ROWS)
            return TW_EINVAL;
        if (add_row(rec, &row) < 0)
            return TW_ENOMEM;
    }
    return 0;
}

void devsim_recording_free(struct devsim_recording *rec)
{
    free(rec->rows);
    free(rec->groups);
    memset(rec, 0, sizeof(*rec));
}
