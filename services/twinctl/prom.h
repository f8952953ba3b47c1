/* SPDX-License-Identifier: Apache-2.0 */
/* A tiny HTTP/1.0 GET for loopback metrics endpoints and a reader of the Prometheus text
 * format, for `twinctl top`. */
#ifndef TWINCTL_PROM_H
#define TWINCTL_PROM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PROM_MAX_BODY (8u * 1024u * 1024u) /* a larger answer is refused */

enum prom_type { PROM_UNTYPED, PROM_COUNTER, PROM_GAUGE, PROM_HISTOGRAM, PROM_SUMMARY };

struct prom_sample {
    char *name;   /* "twin_ingest_apply_seconds_sum" */
    char *labels; /* text inside the braces, "" when none */
    double value;
};

struct prom_family {
    char *name; /* from "# TYPE name type" */
    enum prom_type type;
};

/* One scrape. Strings point into `text`, which it owns. */
struct prom_scrape {
    char *text;
    size_t n_samples, n_families;
    struct prom_sample *samples;
    struct prom_family *families; /* in the order of the text */
};

/* GETs url ("http://host[:port][/path]", path default /metrics) with HTTP/1.0, everything
 * (connect, send, receive) within timeout_ms. On success *body (malloc, NUL-terminated, owned
 * by the caller) and 0; otherwise a negative tw_err with the reason in err. */
int prom_http_get(const char *url, int timeout_ms, char **body, size_t *len, char *err,
                  size_t errlen);

/* Parses Prometheus text (takes ownership of text, a malloc'd NUL-terminated string) into
 * *out. Malformed lines are skipped. 0 or TW_ENOMEM (text is freed then). */
int prom_parse(char *text, struct prom_scrape *out);
void prom_free(struct prom_scrape *s);

/* The sum of the samples named `name` (every label set); *found says whether there was one. */
double prom_sum(const struct prom_scrape *s, const char *name, bool *found);
/* The value of the sample with this name and label text, or NAN. */
double prom_value(const struct prom_scrape *s, const char *name, const char *labels);

#endif
