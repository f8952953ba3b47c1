/* SPDX-License-Identifier: Apache-2.0 */
/* Readers for the shared reference data (../shared/data) used by the predictor's unit tests. */
#ifndef TWIN_TESTDATA_H
#define TWIN_TESTDATA_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef TWIN_SHARED_DIR
#define TWIN_SHARED_DIR "../shared"
#endif

/* A series file "ts_ms,value" or a plant file "ts_ms,signal,value": the last field is the
 * value. Returns the number of rows read (at most cap), or -1 when the file cannot be opened. */
static inline long testdata_load(const char *rel, int64_t *ts, double *v, long cap)
{
    char path[512], line[256];
    snprintf(path, sizeof(path), "%s/data/%s", TWIN_SHARED_DIR, rel);
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    long n = 0;
    if (!fgets(line, sizeof(line), f)) { /* header */
        fclose(f);
        return 0;
    }
    while (n < cap && fgets(line, sizeof(line), f)) {
        const char *last = strrchr(line, ',');
        if (!last)
            continue;
        ts[n] = strtoll(line, NULL, 10);
        v[n] = strtod(last + 1, NULL);
        n++;
    }
    fclose(f);
    return n;
}

/* Splits one CSV line in place at commas outside double quotes and strips the quotes; returns
 * the number of fields (at most max). */
static inline int testdata_split(char *line, char **fields, int max)
{
    int n = 0;
    char *p = line, *out = line;
    bool quoted = false;
    fields[n++] = out;
    for (; *p && *p != '\n' && *p != '\r'; p++) {
        if (*p == '"') {
            quoted = !quoted;
        } else if (*p == ',' && !quoted) {
            *out++ = '\0';
            if (n == max)
                return n;
            fields[n++] = out;
        } else {
            *out++ = *p;
        }
    }
    *out = '\0';
    return n;
}

#endif
