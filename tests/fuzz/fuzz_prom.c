/* SPDX-License-Identifier: Apache-2.0 */
/* libFuzzer target: twinctl's Prometheus text reader must cut any body into samples and
 * families that point into the body, each the start of its own line, with the value strtod
 * reads there, and never read past the body's terminating NUL. */
#include <math.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_check.h"
#include "prom.h"
#include "twin/err.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* p is a string that starts and ends (its NUL) inside text[0 .. len]. */
static bool inside(const char *text, size_t len, const char *p)
{
    return p >= text && p <= text + len && strlen(p) <= len - (size_t)(p - text);
}

/* True when off is where a line starts in the original body. */
static bool line_start(const char *orig, size_t off)
{
    return off == 0 || orig[off - 1] == '\n';
}

/* The value strtod reads at orig[off ...] up to the end of that line. */
static bool value_at(const char *orig, size_t len, size_t off, double *v)
{
    const char *nl = memchr(orig + off, '\n', len - off);
    size_t n = nl ? (size_t)(nl - orig) - off : len - off;
    char *line = malloc(n + 1), *end;
    CHECK(line);
    memcpy(line, orig + off, n);
    line[n] = '\0';
    *v = strtod(line, &end);
    bool ok = end != line;
    free(line);
    return ok;
}

static bool same_double(double a, double b)
{
    return (isnan(a) && isnan(b)) || memcmp(&a, &b, sizeof(a)) == 0;
}

static void check_sample(const struct prom_scrape *s, const char *orig, size_t len, size_t i)
{
    const struct prom_sample *x = &s->samples[i];
    CHECK(inside(s->text, len, x->name) && inside(s->text, len, x->labels));
    CHECK(x->name[0] && strcspn(x->name, "{ \t\n") == strlen(x->name));
    CHECK(!strchr(x->labels, '\n'));
    size_t off = (size_t)(x->name - s->text);
    CHECK(line_start(orig, off));
    CHECK(i == 0 || x->name > s->samples[i - 1].name);
    /* The value follows the NUL that replaced the separator or the closing brace. */
    size_t voff = (size_t)(x->labels - s->text) + strlen(x->labels) + 1;
    double v;
    CHECK(voff <= len && value_at(orig, len, voff, &v) && same_double(v, x->value));
    bool found;
    double sum = prom_sum(s, x->name, &found);
    CHECK(found);
    (void)sum;
    double first = prom_value(s, x->name, x->labels);
    for (size_t j = 0; j < i; j++)
        if (strcmp(s->samples[j].name, x->name) == 0 &&
            strcmp(s->samples[j].labels, x->labels) == 0)
            return; /* prom_value answers with the first of equal series */
    CHECK(same_double(first, x->value));
}

static void check_family(const struct prom_scrape *s, const char *orig, size_t len, size_t i)
{
    const struct prom_family *f = &s->families[i];
    CHECK(inside(s->text, len, f->name) && !strchr(f->name, ' ') && !strchr(f->name, '\n'));
    size_t off = (size_t)(f->name - s->text);
    CHECK(off >= 7 && line_start(orig, off - 7) && memcmp(orig + off - 7, "# TYPE ", 7) == 0);
    CHECK(f->type >= PROM_UNTYPED && f->type <= PROM_SUMMARY);
    CHECK(i == 0 || f->name > s->families[i - 1].name);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* prom_parse takes a NUL-terminated string, so the body gets its terminator and not one
     * byte more: ASan reports any read past it. The parser stops at the first NUL, as C
     * string handling of an HTTP body does. */
    char *text = malloc(size + 1), *orig = malloc(size + 1);
    CHECK(text && orig);
    memcpy(text, data, size);
    text[size] = '\0';
    memcpy(orig, text, size + 1);
    size_t len = strlen(orig), lines = 1;
    for (size_t i = 0; i < len; i++)
        lines += orig[i] == '\n';
    struct prom_scrape s;
    int rc = prom_parse(text, &s);
    CHECK(rc == 0 || rc == TW_ENOMEM);
    if (rc == 0) {
        CHECK(s.text == text && s.n_samples + s.n_families <= lines);
        for (size_t i = 0; i < s.n_samples; i++)
            check_sample(&s, orig, len, i);
        for (size_t i = 0; i < s.n_families; i++)
            check_family(&s, orig, len, i);
        prom_free(&s);
    }
    free(orig);
    return 0;
}
