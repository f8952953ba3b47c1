/* SPDX-License-Identifier: Apache-2.0 */
/* `twinctl top`: live rates, rejects, latencies and gauges per service, from two scrapes of
 * each service's /metrics an interval apart (counter deltas over the interval). */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "prom.h"
#include "twin/clock.h"
#include "twin/err.h"
#include "twin/signal.h"
#include "twinctl.h"

#define MAX_ENDPOINTS  16
#define SCRAPE_TIMEOUT 2000
#define WRAP_COLUMNS   100
#define DEFAULT_ENDPOINTS                                                                          \
    "ingest=http://127.0.0.1:9101,predictor=http://127.0.0.1:9102,"                                \
    "scenario=http://127.0.0.1:9103,devsim=http://127.0.0.1:9104"

struct endpoint {
    char name[64];
    char url[512];
    struct prom_scrape prev, cur;
    bool has_prev, has_cur;
    int64_t prev_ms, cur_ms; /* monotonic time of each scrape */
    char error[160];
};

struct top {
    struct endpoint ep[MAX_ENDPOINTS];
    size_t n;
    bool json, once, clear;
    int64_t interval_ms;
};

/* "name=url,url,..." appended to t->ep; a bare URL is named by its host:port. */
static int add_endpoints(struct top *t, const char *list)
{
    char *copy = strdup(list), *save = NULL;
    if (!copy)
        return CTL_EXIT_FAIL;
    int rc = 0;
    for (char *item = strtok_r(copy, ", ", &save); item && rc == 0;
         item = strtok_r(NULL, ", ", &save)) {
        if (t->n == MAX_ENDPOINTS) {
            rc = ctl_usage_error("top: at most %d endpoints", MAX_ENDPOINTS);
            break;
        }
        struct endpoint *e = &t->ep[t->n];
        char *eq = strchr(item, '=');
        const char *url = eq && strncmp(item, "http://", 7) != 0 ? eq + 1 : item;
        if (strncmp(url, "http://", 7) != 0 || strlen(url) >= sizeof(e->url))
            rc = ctl_usage_error("top: \"%.64s\" is not NAME=http://HOST:PORT", item);
        else if (url != item)
            snprintf(e->name, sizeof(e->name), "%.*s", (int)(eq - item), item);
        else
            snprintf(e->name, sizeof(e->name), "%.*s", (int)strcspn(url + 7, "/"), url + 7);
        snprintf(e->url, sizeof(e->url), "%s", url);
        t->n += rc == 0;
    }
    free(copy);
    return rc;
}

static void scrape(struct endpoint *e)
{
    char *body = NULL;
    size_t len = 0;
    if (e->has_prev)
        prom_free(&e->prev);
    e->prev = e->cur;
    e->prev_ms = e->cur_ms;
    e->has_prev = e->has_cur;
    memset(&e->cur, 0, sizeof(e->cur));
    e->has_cur = false;
    e->cur_ms = tw_mono_ms();
    if (prom_http_get(e->url, SCRAPE_TIMEOUT, &body, &len, e->error, sizeof(e->error)) < 0)
        return;
    if (prom_parse(body, &e->cur) < 0) {
        snprintf(e->error, sizeof(e->error), "out of memory");
        return;
    }
    e->has_cur = true;
    e->error[0] = '\0';
}

/* "applied" for twin_ingest_applied_total, "apply" for twin_ingest_apply_seconds. */
static void short_name(const char *family, char *buf, size_t len)
{
    const char *p = family;
    if (strncmp(p, "twin_", 5) == 0 && strchr(p + 5, '_'))
        p = strchr(p + 5, '_') + 1;
    size_t n = strlen(p);
    static const char *const suffixes[] = {"_total", "_seconds"};
    for (size_t i = 0; i < 2; i++) {
        size_t sl = strlen(suffixes[i]);
        if (n > sl && strcmp(p + n - sl, suffixes[i]) == 0)
            n -= sl;
    }
    snprintf(buf, len, "%.*s", (int)n, p);
}

/* Per-second rate of one series between the scrapes (a counter reset counts from 0). */
static double series_rate(const struct endpoint *e, const struct prom_sample *s, double dt)
{
    double before = prom_value(&e->prev, s->name, s->labels);
    double d = isnan(before) || s->value < before ? s->value : s->value - before;
    return d / dt;
}

static double family_delta(const struct endpoint *e, const char *name)
{
    bool f1, f2;
    double a = prom_sum(&e->prev, name, &f1), b = prom_sum(&e->cur, name, &f2);
    return f2 ? (b >= a ? b - a : b) : NAN;
}

/* The label's value when the label text is one k="v" pair, else the whole text. */
static void label_word(const char *labels, char *buf, size_t len)
{
    const char *q = strchr(labels, '"');
    if (q && strchr(q + 1, '"') && !strchr(strchr(q + 1, '"') + 1, '"'))
        snprintf(buf, len, "%.*s", (int)(strchr(q + 1, '"') - q - 1), q + 1);
    else
        snprintf(buf, len, "%s", labels);
}

/* ---- printing ------------------------------------------------------------------------------ */

#define INDENT 16

/* Prints item after the ones before it on the line, wrapping at WRAP_COLUMNS. */
static void put_item(int *col, const char *raw)
{
    char item[CTL_ESC_LEN(160)];
    int n = (int)strlen(ctl_esc(raw, item, sizeof(item))); /* names come from the scrape */
    if (*col > INDENT && *col + 2 + n > WRAP_COLUMNS) {
        printf("\n%*s", INDENT, "");
        *col = INDENT;
    } else if (*col > INDENT) {
        fputs("  ", stdout);
        *col += 2;
    }
    fputs(item, stdout);
    *col += n;
}

static void fmt_rate(double r, char *buf, size_t len)
{
    if (r == 0)
        snprintf(buf, len, "0");
    else
        snprintf(buf, len, r >= 100 ? "%.0f" : "%.3g", r);
}

static void start_section(int *col, const char *title)
{
    printf("\n  %-*s", INDENT - 2, title);
    *col = INDENT;
}

static void print_rates(const struct endpoint *e, double dt)
{
    char item[160], word[96], name[96], r[32];
    int col = 0;
    start_section(&col, "rates/s");
    for (size_t f = 0; f < e->cur.n_families; f++) {
        const struct prom_family *fam = &e->cur.families[f];
        if (fam->type != PROM_COUNTER)
            continue;
        short_name(fam->name, name, sizeof(name));
        fmt_rate(family_delta(e, fam->name) / dt, r, sizeof(r));
        snprintf(item, sizeof(item), "%s %s", name, r);
        put_item(&col, item);
    }
    bool any = false;
    for (size_t i = 0; i < e->cur.n_samples; i++) {
        const struct prom_sample *s = &e->cur.samples[i];
        double rate = series_rate(e, s, dt);
        if (!s->labels[0] || !(rate > 0) || strstr(s->name, "_bucket"))
            continue;
        if (!any)
            start_section(&col, "by label/s");
        any = true;
        short_name(s->name, name, sizeof(name));
        label_word(s->labels, word, sizeof(word));
        fmt_rate(rate, r, sizeof(r));
        if (snprintf(item, sizeof(item), "%s{%s} %s", name, word, r) >= 0) /* may be cut */
            put_item(&col, item);
    }
}

static void print_latency_gauges(const struct endpoint *e)
{
    char item[160], name[96], key[160];
    int col = 0;
    bool latency = false, gauges = false;
    for (size_t f = 0; f < e->cur.n_families; f++) {
        const struct prom_family *fam = &e->cur.families[f];
        short_name(fam->name, name, sizeof(name));
        if (fam->type == PROM_HISTOGRAM) {
            snprintf(key, sizeof(key), "%s_count", fam->name);
            double n = family_delta(e, key);
            snprintf(key, sizeof(key), "%s_sum", fam->name);
            double sum = family_delta(e, key);
            if (!latency)
                start_section(&col, "mean latency");
            latency = true;
            if (n > 0)
                snprintf(item, sizeof(item), "%s %.3g ms", name, sum / n * 1000.0);
            else
                snprintf(item, sizeof(item), "%s -", name);
            put_item(&col, item);
        }
    }
    for (size_t f = 0; f < e->cur.n_families; f++) {
        const struct prom_family *fam = &e->cur.families[f];
        bool found;
        if (fam->type != PROM_GAUGE)
            continue;
        if (!gauges)
            start_section(&col, "now");
        gauges = true;
        short_name(fam->name, name, sizeof(name));
        snprintf(item, sizeof(item), "%s %.6g", name, prom_sum(&e->cur, fam->name, &found));
        put_item(&col, item);
    }
}

static void print_human(const struct top *t)
{
    char when[48];
    if (t->clear)
        fputs("\033[H\033[J", stdout);
    ctl_fmt_time(tw_now_ms(), when, sizeof(when));
    printf("twinctl top  %s  (rates over %.1f s)\n", when, (double)t->interval_ms / 1000.0);
    for (size_t i = 0; i < t->n; i++) {
        const struct endpoint *e = &t->ep[i];
        printf("\n%-10s %s", e->name, e->url);
        if (!e->has_cur || !e->has_prev) {
            printf("  down: %s\n", e->error[0] ? e->error : "no answer");
            continue;
        }
        double dt = (double)(e->cur_ms - e->prev_ms) / 1000.0;
        print_rates(e, dt > 0 ? dt : 1);
        print_latency_gauges(e);
        putchar('\n');
    }
    fflush(stdout);
}

/* ---- JSON ---------------------------------------------------------------------------------- */

static void add_finite(cJSON *o, const char *name, double v)
{
    if (isfinite(v))
        cJSON_AddNumberToObject(o, name, v);
    else
        cJSON_AddNullToObject(o, name);
}

static void json_families(const struct endpoint *e, double dt, cJSON *j)
{
    cJSON *rates = cJSON_AddObjectToObject(j, "rates");
    cJSON *by = cJSON_AddObjectToObject(j, "rates_by_label");
    cJSON *lat = cJSON_AddObjectToObject(j, "latency_ms");
    cJSON *gauges = cJSON_AddObjectToObject(j, "gauges");
    char key[160];
    bool found;
    for (size_t f = 0; f < e->cur.n_families; f++) {
        const struct prom_family *fam = &e->cur.families[f];
        if (fam->type == PROM_COUNTER) {
            add_finite(rates, fam->name, family_delta(e, fam->name) / dt);
        } else if (fam->type == PROM_GAUGE) {
            add_finite(gauges, fam->name, prom_sum(&e->cur, fam->name, &found));
        } else if (fam->type == PROM_HISTOGRAM) {
            snprintf(key, sizeof(key), "%s_count", fam->name);
            double n = family_delta(e, key);
            snprintf(key, sizeof(key), "%s_sum", fam->name);
            add_finite(lat, fam->name, n > 0 ? family_delta(e, key) / n * 1000.0 : NAN);
        }
    }
    for (size_t i = 0; i < e->cur.n_samples; i++) {
        const struct prom_sample *s = &e->cur.samples[i];
        if (!s->labels[0] || !cJSON_GetObjectItemCaseSensitive(rates, s->name))
            continue;
        cJSON *fam = cJSON_GetObjectItemCaseSensitive(by, s->name);
        if (!fam)
            fam = cJSON_AddObjectToObject(by, s->name);
        add_finite(fam, s->labels, series_rate(e, s, dt));
    }
}

static void print_json(const struct top *t)
{
    int64_t now = tw_now_ms();
    for (size_t i = 0; i < t->n; i++) {
        const struct endpoint *e = &t->ep[i];
        cJSON *j = cJSON_CreateObject();
        cJSON_AddItemToObject(j, "ts_ms", ctl_json_i64(now));
        cJSON_AddStringToObject(j, "service", e->name);
        cJSON_AddStringToObject(j, "url", e->url);
        bool up = e->has_cur && e->has_prev;
        cJSON_AddBoolToObject(j, "up", up);
        if (!up) {
            cJSON_AddStringToObject(j, "error", e->error[0] ? e->error : "no answer");
        } else {
            double dt = (double)(e->cur_ms - e->prev_ms) / 1000.0;
            cJSON_AddNumberToObject(j, "interval_s", dt);
            json_families(e, dt > 0 ? dt : 1, j);
        }
        ctl_json_emit(j);
    }
}

/* ---- the command --------------------------------------------------------------------------- */

static int parse_top(struct top *t, int argc, char **argv)
{
    bool given = false;
    for (int i = 1; i < argc; i++) {
        int rc = 0;
        if (strcmp(argv[i], "--json") == 0)
            t->json = true;
        else if (strcmp(argv[i], "--once") == 0)
            t->once = true;
        else if (strcmp(argv[i], "--interval") == 0 && i + 1 < argc) {
            if (ctl_parse_duration(argv[++i], &t->interval_ms) < 0 || t->interval_ms < 100 ||
                t->interval_ms > 3600000)
                rc = ctl_usage_error("top: --interval takes a duration from 100ms to 1h");
        } else if (strcmp(argv[i], "--metrics") == 0 && i + 1 < argc) {
            if (!given)
                t->n = 0;
            given = true;
            rc = add_endpoints(t, argv[++i]);
        } else
            rc = ctl_usage_error("top: unexpected \"%.64s\"", argv[i]);
        if (rc != 0)
            return rc;
    }
    return 0;
}

static bool any_up(const struct top *t)
{
    for (size_t i = 0; i < t->n; i++)
        if (t->ep[i].has_cur && t->ep[i].has_prev)
            return true;
    return false;
}

int ctl_top(const struct ctl_settings *s, int argc, char **argv)
{
    (void)s;
    static struct top t; /* large: not on the stack */
    memset(&t, 0, sizeof(t));
    t.interval_ms = 2000;
    const char *env = getenv("TWIN_TOP_ENDPOINTS");
    int rc = add_endpoints(&t, env && env[0] ? env : DEFAULT_ENDPOINTS);
    if (rc == 0)
        rc = parse_top(&t, argc, argv);
    if (rc != 0)
        return rc;
    t.clear = !t.once && !t.json && isatty(STDOUT_FILENO) == 1;
    volatile sig_atomic_t *stop = tw_signal_stop_flag();
    for (size_t i = 0; i < t.n; i++)
        scrape(&t.ep[i]);
    bool up = false;
    while (!*stop) {
        tw_sleep_ms(t.interval_ms, (const volatile int *)stop);
        if (*stop)
            break;
        for (size_t i = 0; i < t.n; i++)
            scrape(&t.ep[i]);
        if (t.json)
            print_json(&t);
        else
            print_human(&t);
        up = any_up(&t);
        if (t.once)
            break;
    }
    for (size_t i = 0; i < t.n; i++) {
        prom_free(&t.ep[i].prev);
        prom_free(&t.ep[i].cur);
    }
    /* Ctrl-C ends top with 0, --once included; --once with no endpoint answering is 1. */
    return !t.once || up || *stop ? CTL_EXIT_OK : CTL_EXIT_FAIL;
}
