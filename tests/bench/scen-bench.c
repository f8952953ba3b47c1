/* SPDX-License-Identifier: Apache-2.0 */
/* Benchmarks and checks the scenario engine on a plant model file: every KPI with its 95 %
 * interval (for the SimPy agreement test), events per second on one core, and sweep wall time. */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bench_util.h"
#include "plant_json.h"
#include "scenario.h"
#include "sim.h"
#include "twin/err.h"
#include "twin/model.h"

static const char usage[] =
    "usage: scen-bench kpis   MODEL.json [--horizon D] [--warmup D] [--replications N]\n"
    "                         [--seed N] [--threads N]\n"
    "       scen-bench events MODEL.json [--horizon D] [--warmup D] [--seconds T] [--seed N]\n"
    "       scen-bench sweep  MODEL.json --param PATH=MIN:MAX:STEP|PATH=V1,V2,... ...\n"
    "                         [--horizon D] [--warmup D] [--replications N] [--threads N]\n"
    "                         [--objective KPI|cost] [--maximize|--minimize]\n"
    "                         [--constraint 'KPI>=X'|'KPI<=X' ...] [--cost PATH=W ...] [--top N]\n"
    "Durations are seconds or text with one unit: 45s, 90m, 8h, 7d.\n"
    "kpis: every KPI as JSON (name, unit, mean, lo, hi, n) on stdout.\n"
    "events: one thread, replications 0, 1, 2, ... for about T seconds (default 5, at most\n"
    "        100000 replications): events per second on one core.\n"
    "sweep: a grid of variants on N threads: wall time, variants per second, the best ones.\n";

struct bench_opts {
    const char *mode, *model;
    double horizon, warmup, seconds;
    unsigned replications, threads, top;
    unsigned long long seed;
    bool direction_given;
    struct scn_sweep sweep;
};

/* ---- options --------------------------------------------------------------------------- */

static int bad(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Prints a usage error and returns -1. */
static int bad(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "scen-bench: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n%s", usage);
    va_end(ap);
    return -1;
}

/* A number of seconds, optionally with one unit (s m h d w). */
static int parse_duration(const char *v, double *out)
{
    char *end = NULL;
    errno = 0;
    double x = strtod(v, &end);
    if (errno || end == v || !isfinite(x) || x < 0)
        return bad("not a duration: %s", v);
    static const struct {
        const char *unit;
        double s;
    } units[] = {{"", 1}, {"s", 1}, {"m", 60}, {"h", 3600}, {"d", 86400}, {"w", 604800}};
    for (size_t i = 0; i < sizeof units / sizeof units[0]; i++)
        if (strcmp(end, units[i].unit) == 0) {
            *out = x * units[i].s;
            return 0;
        }
    return bad("not a duration: %s", v);
}

static int parse_uint(const char *v, unsigned long long max, unsigned long long *out)
{
    char *end = NULL;
    errno = 0;
    unsigned long long x = strtoull(v, &end, 10);
    if (errno || end == v || *end || v[0] == '-' || x > max)
        return bad("not a count in range: %s", v);
    *out = x;
    return 0;
}

static int parse_double(const char *v, double *out)
{
    char *end = NULL;
    errno = 0;
    *out = strtod(v, &end);
    if (errno || end == v || *end || !isfinite(*out))
        return bad("not a number: %s", v);
    return 0;
}

/* "PATH=MIN:MAX:STEP" or "PATH=V1,V2,..." into a grid range. */
static int parse_param(const char *v, struct scn_range *r)
{
    const char *eq = strchr(v, '=');
    if (!eq || eq == v || (size_t)(eq - v) >= sizeof r->path)
        return bad("--param wants PATH=MIN:MAX:STEP or PATH=V1,V2,...: %s", v);
    memcpy(r->path, v, (size_t)(eq - v));
    r->path[eq - v] = '\0';
    char buf[4096];
    snprintf(buf, sizeof buf, "%s", eq + 1);
    if (strchr(buf, ':')) {
        char *a = buf, *b = strchr(a, ':'), *c;
        *b++ = '\0';
        c = strchr(b, ':');
        if (!c)
            return bad("--param wants MIN:MAX:STEP: %s", v);
        *c++ = '\0';
        if (parse_double(a, &r->min) || parse_double(b, &r->max) || parse_double(c, &r->step))
            return -1;
        return r->step > 0 && r->max >= r->min ? 0 : bad("--param: empty range: %s", v);
    }
    r->values = calloc(SCN_MAX_VALUES, sizeof *r->values);
    if (!r->values)
        return bad("%s", "out of memory");
    for (char *save = NULL, *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        if (r->n_values == SCN_MAX_VALUES || parse_double(t, &r->values[r->n_values++]))
            return bad("--param: bad list: %s", v);
    }
    return r->n_values ? 0 : bad("--param: no values: %s", v);
}

/* "KPI>=X" or "KPI<=X"; a second bound of the same KPI joins the first. */
static int parse_constraint(const char *v, struct scn_sweep *s)
{
    const char *ge = strstr(v, ">="), *le = strstr(v, "<="), *op = ge ? ge : le;
    double x;
    if (!op || op == v || (size_t)(op - v) >= SCN_PATH_MAX || parse_double(op + 2, &x))
        return bad("--constraint wants KPI>=X or KPI<=X: %s", v);
    size_t i = 0, len = (size_t)(op - v);
    while (i < s->n_constraints &&
           (strncmp(s->constraints[i].kpi, v, len) != 0 || s->constraints[i].kpi[len] != '\0'))
        i++;
    if (i == SCN_MAX_CONSTRAINTS)
        return bad("%s", "too many constraints");
    struct scn_constraint *c = &s->constraints[i];
    if (i == s->n_constraints) {
        memset(c, 0, sizeof *c);
        memcpy(c->kpi, v, len);
        s->n_constraints++;
    }
    if (op == ge)
        c->has_min = true, c->min = x;
    else
        c->has_max = true, c->max = x;
    return 0;
}

/* "PATH=W": the cost per unit of a swept parameter. */
static int parse_cost(const char *v, struct scn_sweep *s)
{
    const char *eq = strchr(v, '=');
    for (size_t k = 0; eq && k < s->n_params; k++)
        if (strlen(s->params[k].path) == (size_t)(eq - v) &&
            strncmp(s->params[k].path, v, (size_t)(eq - v)) == 0)
            return parse_double(eq + 1, &s->params[k].cost);
    return bad("--cost names no --param given before it: %s", v);
}

static int parse_option(struct bench_opts *o, const char *name, const char *v)
{
    unsigned long long n = 0;
    struct scn_sweep *s = &o->sweep;
    if (!strcmp(name, "--horizon"))
        return parse_duration(v, &o->horizon);
    if (!strcmp(name, "--warmup"))
        return parse_duration(v, &o->warmup);
    if (!strcmp(name, "--seconds"))
        return parse_duration(v, &o->seconds);
    if (!strcmp(name, "--seed"))
        return parse_uint(v, UINT64_MAX, &o->seed);
    unsigned *count = !strcmp(name, "--replications") ? &o->replications
                      : !strcmp(name, "--threads")    ? &o->threads
                      : !strcmp(name, "--top")        ? &o->top
                                                      : NULL;
    if (count) {
        if (parse_uint(v, SCN_MAX_REPLICATIONS, &n))
            return -1;
        *count = (unsigned)n;
        return 0;
    }
    if (!strcmp(name, "--param"))
        return s->n_params == SCN_MAX_SWEEP_PARAMS ? bad("%s", "too many --param")
                                                   : parse_param(v, &s->params[s->n_params++]);
    if (!strcmp(name, "--objective")) {
        snprintf(s->objective, sizeof s->objective, "%s", v);
        return 0;
    }
    if (!strcmp(name, "--constraint"))
        return parse_constraint(v, s);
    if (!strcmp(name, "--cost"))
        return parse_cost(v, s);
    return bad("unknown option %s", name);
}

static int parse_args(int argc, char **argv, struct bench_opts *o)
{
    if (argc < 3)
        return bad("%s", "a mode and a model file are needed");
    o->mode = argv[1];
    o->model = argv[2];
    if (strcmp(o->mode, "kpis") && strcmp(o->mode, "events") && strcmp(o->mode, "sweep"))
        return bad("unknown mode %s", o->mode);
    for (int i = 3; i < argc; i++) {
        if (!strcmp(argv[i], "--maximize") || !strcmp(argv[i], "--minimize")) {
            o->sweep.maximize = argv[i][3] == 'a';
            o->direction_given = true;
            continue;
        }
        if (i + 1 >= argc)
            return bad("%s needs a value", argv[i]);
        if (parse_option(o, argv[i], argv[i + 1]))
            return -1;
        i++;
    }
    if (!(o->warmup < o->horizon))
        return bad("%s", "--warmup must be shorter than --horizon");
    if (!strcmp(o->mode, "sweep") && o->sweep.n_params == 0)
        return bad("%s", "sweep needs at least one --param");
    return 0;
}

/* ---- the plant ------------------------------------------------------------------------- */

static void print_errors(const char *path, struct tw_model_errors *errs)
{
    for (size_t i = 0; i < errs->count; i++) {
        char line[512];
        tw_model_error_format(&errs->items[i], line, sizeof line);
        fprintf(stderr, "scen-bench: %s: %s\n", path, line);
    }
}

/* Loads the file as the runner does: the common model first (its assets decide how many
 * machines a station has when the file does not say), then the production part. */
static struct sim_plant *load_plant(const char *path)
{
    struct tw_model_errors errs;
    struct tw_model *model = NULL;
    struct sim_plant *p = NULL;
    tw_model_errors_init(&errs);
    int rc = tw_model_load_file(path, &model, &errs);
    if (rc == 0)
        rc = sim_plant_load_file(path, model, &p, &errs);
    print_errors(path, &errs);
    tw_model_errors_free(&errs);
    tw_model_free(model);
    if (rc) {
        fprintf(stderr, "scen-bench: %s: %s\n", path, tw_strerror(rc));
        return NULL;
    }
    if (!p)
        fprintf(stderr, "scen-bench: %s: no production part (stations, buffers, ...)\n", path);
    return p;
}

static void base_spec(const struct bench_opts *o, struct scn_spec *s)
{
    memset(s, 0, sizeof *s);
    s->horizon = o->horizon;
    s->warmup = o->warmup;
    s->replications = o->replications;
    s->seed = o->seed;
}

static int run_spec(const struct sim_plant *p, const struct scn_spec *s, unsigned threads,
                    struct scn_result **r)
{
    char err[256] = "";
    int rc = scn_run(p, s, threads, NULL, NULL, NULL, r, err, sizeof err);
    if (rc)
        fprintf(stderr, "scen-bench: scn_run: %d: %s\n", rc, err);
    return rc;
}

/* ---- modes ----------------------------------------------------------------------------- */

static void json_number(const char *key, double x, const char *sep)
{
    if (isfinite(x))
        printf("\"%s\": %.17g%s", key, x, sep);
    else
        printf("\"%s\": null%s", key, sep);
}

static int mode_kpis(const struct bench_opts *o, const struct sim_plant *p)
{
    struct scn_spec s;
    struct scn_result *r = NULL;
    base_spec(o, &s);
    double t0 = bench_now_s();
    if (run_spec(p, &s, o->threads, &r))
        return 1;
    double wall = bench_now_s() - t0;
    printf("{\"model\": \"%s\", \"horizon\": %.17g, \"warmup\": %.17g, \"replications\": %u, "
           "\"seed\": %llu, \"events\": %llu, \"wall_s\": %.6f,\n \"kpis\": [\n",
           o->model, o->horizon, o->warmup, o->replications, o->seed, (unsigned long long)r->events,
           wall);
    for (size_t i = 0; i < r->n_kpis; i++) {
        const struct scn_kpi *k = &r->kpis[i];
        printf("  {\"name\": \"%s\", \"unit\": \"%s\", ", k->name, k->unit ? k->unit : "");
        json_number("mean", k->scen.mean, ", ");
        json_number("lo", k->scen.lo, ", ");
        json_number("hi", k->scen.hi, ", ");
        printf("\"n\": %u}%s\n", k->scen.n, i + 1 < r->n_kpis ? "," : "");
    }
    printf(" ]}\n");
    scn_result_free(r);
    return 0;
}

static int mode_events(const struct bench_opts *o, const struct sim_plant *p)
{
    struct sim_ctx *c = sim_ctx_new();
    double *kpis = malloc(sim_kpi_count(p) * sizeof *kpis);
    if (!c || !kpis) {
        fprintf(stderr, "scen-bench: out of memory\n");
        sim_ctx_free(c);
        free(kpis);
        return 1;
    }
    unsigned long long events = 0, reps = 0;
    double t0 = bench_now_s(), el = 0;
    /* Bounded in time and in count: stop after `seconds` or 100,000 replications. */
    for (; reps < 100000 && (el = bench_now_s() - t0) < o->seconds; reps++) {
        struct sim_opts so = {.horizon = o->horizon,
                              .warmup = o->warmup,
                              .seed = o->seed,
                              .replication = (uint32_t)reps};
        uint64_t ev = 0;
        int rc = sim_run(c, p, &so, kpis, &ev);
        if (rc) {
            fprintf(stderr, "scen-bench: sim_run: %d\n", rc);
            break;
        }
        events += ev;
    }
    el = bench_now_s() - t0;
    int tp = sim_kpi_find(p, "throughput");
    printf("model %s: horizon %.6g s, %llu replications in %.3f s on one thread\n", o->model,
           o->horizon, reps, el);
    printf("events: %llu (%.1f per replication), last throughput %.6g parts/h\n", events,
           reps ? (double)events / (double)reps : 0.0, tp >= 0 ? kpis[tp] : NAN);
    printf("events/s/core: %.6g (%.1f ns per event)\n", el > 0 ? (double)events / el : 0.0,
           events ? el / (double)events * 1e9 : 0.0);
    sim_ctx_free(c);
    free(kpis);
    return reps ? 0 : 1;
}

static const struct scn_kpi *variant_kpi(const struct scn_variant *v, const char *name)
{
    for (size_t i = 0; i < v->n_kpis; i++)
        if (!strcmp(v->kpis[i].name, name))
            return &v->kpis[i];
    return NULL;
}

/* One ranked variant: its parameter values, objective, cost and the constrained KPIs. */
static void print_variant(const struct scn_sweep *w, const struct scn_variant *v, size_t rank)
{
    printf("  #%zu", rank + 1);
    for (size_t k = 0; k < w->n_params; k++)
        printf(" %s=%g", w->params[k].path, v->values[k]);
    printf("\n      %s %.6g", w->objective, v->objective);
    if (strcmp(w->objective, "cost"))
        printf(", cost %.6g", v->cost);
    for (size_t k = 0; k < w->n_constraints; k++) {
        const struct scn_kpi *q = variant_kpi(v, w->constraints[k].kpi);
        if (q && strcmp(w->constraints[k].kpi, w->objective))
            printf(", %s %.6g [%.6g, %.6g]", q->name, q->scen.mean, q->scen.lo, q->scen.hi);
    }
    printf("%s\n", v->feasible ? "" : "  (infeasible)");
}

static int mode_sweep(const struct bench_opts *o, const struct sim_plant *p)
{
    struct scn_spec s;
    struct scn_result *r = NULL;
    base_spec(o, &s);
    s.has_sweep = true;
    s.sweep = o->sweep;
    s.sweep.method = SCN_SWEEP_GRID;
    s.sweep.top = o->top ? o->top : 5;
    if (!s.sweep.objective[0]) { /* by default the most throughput */
        snprintf(s.sweep.objective, sizeof s.sweep.objective, "throughput");
        s.sweep.maximize = s.sweep.maximize || !o->direction_given;
    }
    double t0 = bench_now_s();
    if (run_spec(p, &s, o->threads, &r))
        return 1;
    double wall = bench_now_s() - t0;
    printf("model %s: %u variants x %u replications of %.6g s (warm-up %.6g s), %u threads\n",
           o->model, r->variants_total, o->replications, o->horizon, o->warmup, o->threads);
    printf("replications run: %llu (the baseline's included); events: %llu\n",
           (unsigned long long)r->replications_run, (unsigned long long)r->events);
    printf("wall time: %.3f s; variants/s: %.1f; events/s: %.4g (%.4g per thread)\n", wall,
           r->variants_total / wall, (double)r->events / wall,
           (double)r->events / wall / (o->threads ? o->threads : 1));
    printf("feasible variants: %u of %u; %s %s, best first:\n", r->variants_feasible,
           r->variants_total, s.sweep.maximize ? "maximising" : "minimising", s.sweep.objective);
    for (size_t i = 0; i < r->n_variants; i++)
        print_variant(&s.sweep, &r->variants[i], i);
    if (r->variants_feasible == 0)
        printf("no variant meets the constraints\n");
    scn_result_free(r);
    return 0;
}

int main(int argc, char **argv)
{
    struct bench_opts o = {
        .horizon = 86400, .seconds = 5, .replications = 20, .threads = 2, .seed = 1};
    int rc = 2;
    if (argc > 1 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
        fputs(usage, stdout);
        return 0;
    }
    if (parse_args(argc, argv, &o))
        goto out;
    struct sim_plant *p = load_plant(o.model);
    if (!p)
        goto out;
    /* kpis writes JSON on stdout: the machine goes to stderr there. */
    bench_print_machine(strcmp(o.mode, "kpis") ? stdout : stderr, argc, argv);
    if (!strcmp(o.mode, "kpis"))
        rc = mode_kpis(&o, p);
    else if (!strcmp(o.mode, "events"))
        rc = mode_events(&o, p);
    else
        rc = mode_sweep(&o, p);
    sim_plant_free(p);
out:
    for (size_t k = 0; k < o.sweep.n_params; k++)
        free(o.sweep.params[k].values);
    return rc;
}
