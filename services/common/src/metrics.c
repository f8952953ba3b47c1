/* SPDX-License-Identifier: Apache-2.0 */
/* Metrics registry kept in one shared anonymous mapping, and its Prometheus text rendering. */
#include "twin/metrics.h"

#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "twin/err.h"
#include "twin/log.h"

/* A fixed number of series: the mapping cannot grow once workers have forked, and every
 * series is registered once at start-up, so running out is a programming error. */
#define METRICS_MAX_SERIES 256
#define METRICS_NAME_MAX   128
#define METRICS_LABELS_MAX 256
#define METRICS_HELP_MAX   256

/* Atomics in a mapping shared across processes must be real lock-free instructions: libatomic's
 * fallback locks live in each process's own memory and would not exclude another process. */
_Static_assert(__atomic_always_lock_free(sizeof(uint64_t), 0), "64-bit atomics must be lock-free");

enum metrics_type { METRICS_COUNTER = 1, METRICS_GAUGE, METRICS_HISTOGRAM };

struct tw_counter {
    uint64_t value;
};

struct tw_gauge {
    int64_t value;
};

/* buckets[i] counts observations in (bounds[i-1], bounds[i]]; buckets[n_bounds] is +Inf. They
 * are not cumulative, so an observation touches one bucket; rendering sums them. The sum is a
 * double whose bit pattern is updated with a compare-and-swap loop. The count is not stored:
 * rendering derives it from the same bucket snapshot, so `_count` always equals the +Inf
 * bucket even while other threads observe. */
struct tw_histogram {
    size_t n_bounds;
    double bounds[TW_HISTOGRAM_MAX_BOUNDS];
    uint64_t buckets[TW_HISTOGRAM_MAX_BOUNDS + 1];
    uint64_t sum_bits;
};

/* Everything here lives in the shared mapping, so it holds no pointers: the strings are
 * fixed arrays and `family` is the index of the first series with the same name. A name or
 * label text that does not fit is refused; a longer help text is cut. */
struct metrics_series {
    enum metrics_type type;
    uint32_t family;
    char name[METRICS_NAME_MAX];
    char labels[METRICS_LABELS_MAX];
    char help[METRICS_HELP_MAX];
    union {
        struct tw_counter counter;
        struct tw_gauge gauge;
        struct tw_histogram histogram;
    } v;
};

/* The shared part. `lock` (process-shared) serialises registrations; readers never take it:
 * a series is filled in before n_series is raised with release order. */
struct metrics_shared {
    pthread_mutex_t lock;
    uint32_t n_series;
    struct metrics_series series[METRICS_MAX_SERIES];
};

/* The process-local handle: only the pointer to the mapping. */
struct tw_metrics {
    struct metrics_shared *shm;
};

int tw_metrics_create(struct tw_metrics **out)
{
    pthread_mutexattr_t attr;
    struct tw_metrics *m;

    if (!out)
        return TW_EINVAL;
    *out = NULL;
    m = calloc(1, sizeof(*m));
    if (!m)
        return TW_ENOMEM;
    /* An anonymous mapping is zero-filled, so every value starts at 0. */
    m->shm = mmap(NULL, sizeof(*m->shm), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (m->shm == MAP_FAILED)
        goto fail;
    if (pthread_mutexattr_init(&attr) != 0)
        goto fail_unmap;
    if (pthread_mutexattr_setpshared(&attr, PTHREAD_PROCESS_SHARED) != 0 ||
        pthread_mutex_init(&m->shm->lock, &attr) != 0) {
        pthread_mutexattr_destroy(&attr);
        goto fail_unmap;
    }
    pthread_mutexattr_destroy(&attr);
    *out = m;
    return TW_OK;

fail_unmap:
    munmap(m->shm, sizeof(*m->shm));
fail:
    free(m);
    return TW_ENOMEM;
}

void tw_metrics_destroy(struct tw_metrics *m)
{
    if (!m)
        return;
    /* The mutex is not destroyed: other processes may still map it. Unmapping only ends this
     * process's view; the memory goes away with the last process that maps it. */
    munmap(m->shm, sizeof(*m->shm));
    free(m);
}

/* Prometheus metric names: [a-zA-Z_:][a-zA-Z0-9_:]*. */
static bool metrics_name_valid(const char *name)
{
    size_t i;

    if (!name || !name[0] || strlen(name) >= METRICS_NAME_MAX)
        return false;
    for (i = 0; name[i]; i++) {
        char c = name[i];
        bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':';
        if (!alpha && !(i > 0 && c >= '0' && c <= '9'))
            return false;
    }
    return true;
}

/* Skips one quoted label value starting at the opening quote; returns the character after the
 * closing quote, or NULL when it is unterminated or holds a raw newline. */
static const char *metrics_skip_value(const char *p)
{
    for (p++; *p && *p != '"'; p++) {
        if (*p == '\n')
            return NULL;
        if (*p == '\\' && !*++p)
            return NULL;
    }
    return *p == '"' ? p + 1 : NULL;
}

/* Label text must be `name="value"` pairs joined by commas, so that it can be pasted inside
 * braces (and merged with le="...") without producing an unparsable exposition. */
static bool metrics_labels_valid(const char *labels)
{
    const char *p = labels;

    if (strlen(labels) >= METRICS_LABELS_MAX)
        return false;
    while (*p) {
        const char *start = p;
        while ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || *p == '_' ||
               (p > start && *p >= '0' && *p <= '9'))
            p++;
        if (p == start || *p++ != '=' || *p != '"')
            return false;
        p = metrics_skip_value(p);
        if (!p)
            return false;
        if (*p == ',' && p[1])
            p++;
        else if (*p)
            return false;
    }
    return true;
}

/* Finds the series with this name and labels; *family gets the index of the first series
 * with this name (or n when there is none). Called with the lock held. */
static struct metrics_series *metrics_find(struct metrics_shared *shm, const char *name,
                                           const char *labels, uint32_t *family)
{
    uint32_t i;

    *family = shm->n_series;
    for (i = 0; i < shm->n_series; i++) {
        struct metrics_series *s = &shm->series[i];
        if (strcmp(s->name, name) != 0)
            continue;
        if (*family == shm->n_series)
            *family = i;
        if (strcmp(s->labels, labels) == 0)
            return s;
    }
    return NULL;
}

static const char *metrics_type_name(enum metrics_type type)
{
    switch (type) {
    case METRICS_COUNTER:
        return "counter";
    case METRICS_GAUGE:
        return "gauge";
    case METRICS_HISTOGRAM:
        return "histogram";
    }
    return "untyped";
}

/* Returns a new zeroed series appended to the registry (not yet visible to readers), the
 * existing one when name and labels match, or NULL on a type clash or a full registry.
 * Called with the lock held; *is_new tells the caller to fill it in and publish it. */
static struct metrics_series *metrics_slot(struct metrics_shared *shm, const char *name,
                                           const char *labels, enum metrics_type type, bool *is_new)
{
    uint32_t family;
    struct metrics_series *s = metrics_find(shm, name, labels, &family);

    *is_new = false;
    if (family < shm->n_series && shm->series[family].type != type) {
        tw_log(TW_LOG_ERROR, "metrics_type_clash", "name=%s registered=%s requested=%s", name,
               metrics_type_name(shm->series[family].type), metrics_type_name(type));
        return NULL;
    }
    if (s)
        return s;
    if (shm->n_series >= METRICS_MAX_SERIES) {
        tw_log(TW_LOG_ERROR, "metrics_registry_full", "name=%s capacity=%d", name,
               METRICS_MAX_SERIES);
        return NULL;
    }
    s = &shm->series[shm->n_series];
    memset(s, 0, sizeof(*s));
    s->type = type;
    s->family = family;
    *is_new = true;
    return s;
}

/* Registers (or finds) a series. For a new histogram, bounds are copied in before the series
 * is published; for an existing one they must match. */
static struct metrics_series *metrics_register(struct tw_metrics *m, const char *name,
                                               const char *labels, const char *help,
                                               enum metrics_type type, const double *bounds,
                                               size_t n_bounds)
{
    struct metrics_series *s;
    bool is_new;

    if (!m || !metrics_name_valid(name) || !metrics_labels_valid(labels ? labels : "")) {
        tw_log(TW_LOG_ERROR, "metrics_invalid", "name=%s", name ? name : "(null)");
        return NULL;
    }
    labels = labels ? labels : "";
    pthread_mutex_lock(&m->shm->lock);
    s = metrics_slot(m->shm, name, labels, type, &is_new);
    if (s && is_new) {
        snprintf(s->name, sizeof(s->name), "%s", name);
        snprintf(s->labels, sizeof(s->labels), "%s", labels);
        snprintf(s->help, sizeof(s->help), "%s", help ? help : "");
        if (type == METRICS_HISTOGRAM) {
            s->v.histogram.n_bounds = n_bounds;
            if (n_bounds > 0)
                memcpy(s->v.histogram.bounds, bounds, n_bounds * sizeof(*bounds));
        }
        __atomic_store_n(&m->shm->n_series, m->shm->n_series + 1, __ATOMIC_RELEASE);
    } else if (s && type == METRICS_HISTOGRAM &&
               (s->v.histogram.n_bounds != n_bounds ||
                (n_bounds > 0 &&
                 memcmp(s->v.histogram.bounds, bounds, n_bounds * sizeof(*bounds)) != 0))) {
        tw_log(TW_LOG_ERROR, "metrics_bounds_clash", "name=%s labels=%s", name, labels);
        s = NULL;
    }
    pthread_mutex_unlock(&m->shm->lock);
    return s;
}

struct tw_counter *tw_metrics_counter(struct tw_metrics *m, const char *name, const char *labels,
                                      const char *help)
{
    struct metrics_series *s = metrics_register(m, name, labels, help, METRICS_COUNTER, NULL, 0);
    return s ? &s->v.counter : NULL;
}

struct tw_gauge *tw_metrics_gauge(struct tw_metrics *m, const char *name, const char *labels,
                                  const char *help)
{
    struct metrics_series *s = metrics_register(m, name, labels, help, METRICS_GAUGE, NULL, 0);
    return s ? &s->v.gauge : NULL;
}

static bool metrics_bounds_valid(const double *bounds, size_t n_bounds)
{
    size_t i;

    if (n_bounds > TW_HISTOGRAM_MAX_BOUNDS || (n_bounds > 0 && !bounds))
        return false;
    for (i = 0; i < n_bounds; i++) {
        if (!isfinite(bounds[i]) || (i > 0 && !(bounds[i] > bounds[i - 1])))
            return false;
    }
    return true;
}

struct tw_histogram *tw_metrics_histogram(struct tw_metrics *m, const char *name,
                                          const char *labels, const char *help,
                                          const double *bounds, size_t n_bounds)
{
    struct metrics_series *s;

    if (!metrics_bounds_valid(bounds, n_bounds)) {
        tw_log(TW_LOG_ERROR, "metrics_invalid_bounds", "name=%s n_bounds=%zu",
               name ? name : "(null)", n_bounds);
        return NULL;
    }
    s = metrics_register(m, name, labels, help, METRICS_HISTOGRAM, bounds, n_bounds);
    return s ? &s->v.histogram : NULL;
}

void tw_counter_add(struct tw_counter *c, uint64_t n)
{
    if (c)
        __atomic_fetch_add(&c->value, n, __ATOMIC_RELAXED);
}

uint64_t tw_counter_get(const struct tw_counter *c)
{
    return c ? __atomic_load_n(&c->value, __ATOMIC_RELAXED) : 0;
}

void tw_gauge_set(struct tw_gauge *g, int64_t v)
{
    if (g)
        __atomic_store_n(&g->value, v, __ATOMIC_RELAXED);
}

void tw_gauge_add(struct tw_gauge *g, int64_t delta)
{
    if (g)
        __atomic_fetch_add(&g->value, delta, __ATOMIC_RELAXED);
}

int64_t tw_gauge_get(const struct tw_gauge *g)
{
    return g ? __atomic_load_n(&g->value, __ATOMIC_RELAXED) : 0;
}

static uint64_t metrics_double_bits(double v)
{
    uint64_t bits;
    memcpy(&bits, &v, sizeof(bits));
    return bits;
}

static double metrics_bits_double(uint64_t bits)
{
    double v;
    memcpy(&v, &bits, sizeof(v));
    return v;
}

/* NaN is dropped: it belongs to no bucket and would turn the sum into NaN for good. */
void tw_histogram_observe(struct tw_histogram *h, double v)
{
    uint64_t old_bits, new_bits;
    size_t i = 0;

    if (!h || isnan(v))
        return;
    while (i < h->n_bounds && !(v <= h->bounds[i]))
        i++;
    __atomic_fetch_add(&h->buckets[i], 1, __ATOMIC_RELAXED);
    old_bits = __atomic_load_n(&h->sum_bits, __ATOMIC_RELAXED);
    do {
        new_bits = metrics_double_bits(metrics_bits_double(old_bits) + v);
    } while (!__atomic_compare_exchange_n(&h->sum_bits, &old_bits, new_bits, true, __ATOMIC_RELAXED,
                                          __ATOMIC_RELAXED));
}

/* A growable output buffer; the first failure sticks in err so callers check once. */
struct metrics_buf {
    char *data;
    size_t len;
    size_t cap;
    int err;
};

static int metrics_buf_reserve(struct metrics_buf *b, size_t extra)
{
    size_t cap = b->cap ? b->cap : 4096;
    char *data;

    while (cap - b->len <= extra)
        cap *= 2;
    if (cap == b->cap)
        return TW_OK;
    data = realloc(b->data, cap);
    if (!data)
        return TW_ENOMEM;
    b->data = data;
    b->cap = cap;
    return TW_OK;
}

/* Formats straight into the free space and grows the buffer only when the text did not fit. */
__attribute__((format(printf, 2, 3))) static void metrics_printf(struct metrics_buf *b,
                                                                 const char *fmt, ...)
{
    va_list ap;
    int n;

    if (b->err)
        return;
    va_start(ap, fmt);
    n = vsnprintf(b->data + b->len, b->cap - b->len, fmt, ap);
    va_end(ap);
    if (n < 0) {
        b->err = TW_EINVAL;
        return;
    }
    if ((size_t)n >= b->cap - b->len) {
        b->err = metrics_buf_reserve(b, (size_t)n);
        if (b->err)
            return;
        va_start(ap, fmt);
        vsnprintf(b->data + b->len, b->cap - b->len, fmt, ap);
        va_end(ap);
    }
    b->len += (size_t)n;
}

/* Prometheus floats: +Inf, -Inf, NaN, else the shortest of %.15g / %.17g that reads back
 * exactly, so 0.1 prints as "0.1" and not "0.10000000000000001". */
static void metrics_format_double(char *out, size_t out_len, double v)
{
    if (isnan(v)) {
        snprintf(out, out_len, "NaN");
    } else if (isinf(v)) {
        snprintf(out, out_len, "%s", v > 0 ? "+Inf" : "-Inf");
    } else {
        snprintf(out, out_len, "%.15g", v);
        if (strtod(out, NULL) != v)
            snprintf(out, out_len, "%.17g", v);
    }
}

/* HELP text escapes backslash and newline; an empty help omits the # HELP line. */
static void metrics_render_header(struct metrics_buf *b, const struct metrics_series *s)
{
    char help[2 * METRICS_HELP_MAX];
    size_t i, n = 0;

    for (i = 0; s->help[i]; i++) {
        if (s->help[i] == '\\' || s->help[i] == '\n')
            help[n++] = '\\';
        help[n++] = s->help[i] == '\n' ? 'n' : s->help[i];
    }
    help[n] = '\0';
    if (n > 0)
        metrics_printf(b, "# HELP %s %s\n", s->name, help);
    metrics_printf(b, "# TYPE %s %s\n", s->name, metrics_type_name(s->type));
}

static void metrics_render_histogram(struct metrics_buf *b, const struct metrics_series *s)
{
    const struct tw_histogram *h = &s->v.histogram;
    const char *sep = s->labels[0] ? "," : "";
    uint64_t cumulative = 0;
    char num[32];
    size_t i;

    for (i = 0; i <= h->n_bounds; i++) {
        cumulative += __atomic_load_n(&h->buckets[i], __ATOMIC_RELAXED);
        if (i < h->n_bounds)
            metrics_format_double(num, sizeof(num), h->bounds[i]);
        else
            snprintf(num, sizeof(num), "+Inf");
        metrics_printf(b, "%s_bucket{%s%sle=\"%s\"} %" PRIu64 "\n", s->name, s->labels, sep, num,
                       cumulative);
    }
    metrics_format_double(num, sizeof(num),
                          metrics_bits_double(__atomic_load_n(&h->sum_bits, __ATOMIC_RELAXED)));
    if (s->labels[0]) {
        metrics_printf(b, "%s_sum{%s} %s\n", s->name, s->labels, num);
        metrics_printf(b, "%s_count{%s} %" PRIu64 "\n", s->name, s->labels, cumulative);
    } else {
        metrics_printf(b, "%s_sum %s\n", s->name, num);
        metrics_printf(b, "%s_count %" PRIu64 "\n", s->name, cumulative);
    }
}

static void metrics_render_series(struct metrics_buf *b, const struct metrics_series *s)
{
    const char *open = s->labels[0] ? "{" : "";
    const char *close = s->labels[0] ? "}" : "";

    if (s->type == METRICS_COUNTER)
        metrics_printf(b, "%s%s%s%s %" PRIu64 "\n", s->name, open, s->labels, close,
                       tw_counter_get(&s->v.counter));
    else if (s->type == METRICS_GAUGE)
        metrics_printf(b, "%s%s%s%s %" PRId64 "\n", s->name, open, s->labels, close,
                       tw_gauge_get(&s->v.gauge));
    else
        metrics_render_histogram(b, s);
}

int tw_metrics_render(struct tw_metrics *m, char **out, size_t *len)
{
    struct metrics_buf b = {0};
    uint32_t n, i, k;

    if (!m || !out)
        return TW_EINVAL;
    *out = NULL;
    n = __atomic_load_n(&m->shm->n_series, __ATOMIC_ACQUIRE);
    b.err = metrics_buf_reserve(&b, 0);
    /* Series are stored in registration order; a family is emitted whole where its first
     * series appears, so one # HELP / # TYPE covers every label set of a name. */
    for (i = 0; i < n && !b.err; i++) {
        if (m->shm->series[i].family != i)
            continue;
        metrics_render_header(&b, &m->shm->series[i]);
        for (k = i; k < n; k++) {
            if (m->shm->series[k].family == i)
                metrics_render_series(&b, &m->shm->series[k]);
        }
    }
    if (b.err) {
        free(b.data);
        return b.err;
    }
    *out = b.data;
    if (len)
        *len = b.len;
    return TW_OK;
}
