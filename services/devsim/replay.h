/* SPDX-License-Identifier: Apache-2.0 */
/* twin-devsim's replay input: a CSV recording of one asset (ts_ms,signal,value), parsed and
 * checked whole before anything is sent. Pure: no I/O. */
#ifndef DEVSIM_REPLAY_H
#define DEVSIM_REPLAY_H

#include <stddef.h>
#include <stdint.h>

#include "twin/validate.h"

/* Lines: "ts_ms,signal,value" (spaces around fields and CRLF endings allowed; a UTF-8 byte order
 * mark at the start of the file, as Excel writes it, is skipped). ts_ms: integer Unix ms from 0
 * to DEVSIM_MAX_TS_MS; signal: a valid signal name; value: a finite number. A first line starting
 * with "ts_ms" is a header; empty lines and lines starting with '#' are skipped. Rows must be
 * in time order; consecutive rows with the same ts_ms form one Telemetry, which may not name a
 * signal twice nor hold more than DEVSIM_MAX_SAMPLES samples. */
#define DEVSIM_MAX_SAMPLES 256
#define DEVSIM_MAX_ROWS    (16u * 1024u * 1024u)
/* The latest device time devsim takes (a recording's ts_ms, --start-ms): 9999-12-31 23:59:59.999
 * UTC. Far enough for any use, small enough that shifts and ns conversions cannot overflow. */
#define DEVSIM_MAX_TS_MS 253402300799999LL

struct devsim_row {
    int64_t ts_ms;
    double value;
    char signal[TW_NAME_MAX + 1];
};

/* Consecutive rows [first, first + n) with one timestamp: one Telemetry. */
struct devsim_group {
    size_t first, n;
};

struct devsim_recording {
    struct devsim_row *rows;
    size_t n_rows, cap_rows;
    struct devsim_group *groups;
    size_t n_groups, cap_groups;
    size_t bad_lines; /* lines refused (each reported) */
};

/* Called for every bad line with its 1-based number and the reason. */
typedef void (*devsim_bad_line_fn)(void *ctx, size_t lineno, const char *reason);

/* Parses one line (without its '\n'). Returns 1 and *row for a data row, 0 for a line to skip
 * (blank, comment, or a header when lineno is the first line), TW_EINVAL with a reason in err
 * for a bad line. */
int devsim_csv_parse_line(const char *line, size_t len, size_t lineno, struct devsim_row *row,
                          char *err, size_t errlen);

/* Parses a whole recording. Bad lines (bad syntax, out of order, a signal repeated at one
 * timestamp, too many samples at one) are reported through bad (may be NULL), counted in
 * rec->bad_lines and left out. Returns 0, or TW_ENOMEM, or TW_EINVAL when the input holds
 * more than DEVSIM_MAX_ROWS rows. Free with devsim_recording_free. */
int devsim_recording_parse(const char *buf, size_t len, struct devsim_recording *rec,
                           devsim_bad_line_fn bad, void *ctx);
void devsim_recording_free(struct devsim_recording *rec);

#endif
