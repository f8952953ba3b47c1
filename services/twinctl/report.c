/* SPDX-License-Identifier: Apache-2.0 */
/* A scenario result for people (what changes, in words, then every KPI with its intervals, then
 * a sweep's ranking and recommendation) and for programs (JSON). */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "twin/err.h"
#include "twinctl.h"

#define EST_W    28                        /* width of one "mean [lo, hi]" column */
#define NAME_ESC CTL_ESC_LEN(SCN_PATH_MAX) /* a KPI or parameter name, escaped */

/* The KPIs a plant engineer asks about first, in the words of the summary. */
static const struct {
    const char *kpi, *words;
} headline[] = {
    {"throughput", "throughput"},
    {"lead_time", "lead time"},
    {"service_level", "service level (on time)"},
    {"orders_late", "orders late"},
    {"orders_lost", "orders lost"},
    {"backlog_end", "order backlog at the end"},
    {"wip", "work in progress"},
};

/* ---- numbers ------------------------------------------------------------------------------- */

static bool is_fraction(const struct scn_kpi *k)
{
    return k->unit && strcmp(k->unit, "1") == 0;
}

/* A value in the KPI's display unit (fractions as percent). */
static double shown(const struct scn_kpi *k, double v)
{
    return is_fraction(k) ? 100.0 * v : v;
}

static const char *shown_unit(const struct scn_kpi *k)
{
    return is_fraction(k) ? "%" : k->unit ? k->unit : "";
}

/* Rounding noise of a sum of paired differences shows as 0. */
static double tidy(double v)
{
    return fabs(v) < 1e-9 ? 0.0 : v;
}

static void fmt_est(char *buf, size_t len, const struct scn_kpi *k, const struct scn_estimate *e)
{
    if (e->n == 0 || isnan(e->mean))
        snprintf(buf, len, "-");
    else if (e->n < 2 || (e->lo == e->mean && e->hi == e->mean))
        snprintf(buf, len, "%.4g", tidy(shown(k, e->mean)));
    else
        snprintf(buf, len, "%.4g [%.4g, %.4g]", tidy(shown(k, e->mean)), tidy(shown(k, e->lo)),
                 tidy(shown(k, e->hi)));
}

/* Whether the paired difference's 95 % interval excludes 0. */
static const struct scn_kpi *find_kpi(const struct scn_kpi *k, size_t n, const char *name)
{
    for (size_t i = 0; k && name && i < n; i++)
        if (strcmp(k[i].name, name) == 0)
            return &k[i];
    return NULL;
}

/* ---- the summary --------------------------------------------------------------------------- */

static void say_change(const struct scn_kpi *k, const char *words)
{
    double b = shown(k, k->base.mean), s = shown(k, k->scen.mean), d = shown(k, k->diff.mean);
    const char *u = shown_unit(k);
    if ((isnan(b) && isnan(s)) || (b == 0 && s == 0))
        return; /* nothing happens either way: not worth a line */
    printf("  %-28s ", words);
    if (b == s) {
        printf("unchanged: %.4g %s\n", b, u);
        return;
    }
    if (!scen_significant(&k->diff)) {
        printf("no clear change: %.4g -> %.4g %s\n", b, s, u);
        return;
    }
    printf("%s by %.3g %s", d > 0 ? "rises" : "falls", fabs(d), is_fraction(k) ? "points" : u);
    if (!is_fraction(k) && b != 0 && isfinite(b))
        printf(" (%+.1f %%)", 100.0 * d / fabs(b));
    printf(": %.4g -> %.4g %s\n", b, s, u);
}

static bool ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && strcmp(s + n - m, suffix) == 0;
}

static void print_summary(const struct scn_result *r)
{
    char words[SCN_PATH_MAX + 32];
    printf("\nWhat happens (scenario against baseline; a change counts when its 95 %% interval "
           "excludes 0):\n");
    for (size_t i = 0; i < sizeof(headline) / sizeof(headline[0]); i++) {
        const struct scn_kpi *k = find_kpi(r->kpis, r->n_kpis, headline[i].kpi);
        if (k)
            say_change(k, headline[i].words);
    }
    for (size_t i = 0; i < r->n_kpis; i++) {
        const struct scn_kpi *k = &r->kpis[i];
        if (strncmp(k->name, "stock.", 6) != 0)
            continue;
        size_t stem = strlen(k->name) - 6;
        if (ends_with(k->name, ".stockouts"))
            snprintf(words, sizeof(words), "stock-outs of %.*s", (int)(stem - 10), k->name + 6);
        else if (ends_with(k->name, ".stockout"))
            snprintf(words, sizeof(words), "time short of %.*s", (int)(stem - 9), k->name + 6);
        else
            continue;
        say_change(k, words);
    }
}

/* ---- the table ----------------------------------------------------------------------------- */

/* By default the table shows the line's KPIs and whatever changed; --all shows every row. */
static bool worth_a_row(const struct scn_kpi *k)
{
    bool base = k->base.n > 0 && !isnan(k->base.mean), scen = k->scen.n > 0 && !isnan(k->scen.mean);
    if (!base && !scen)
        return false;
    return strchr(k->name, '.') == NULL || scen_significant(&k->diff);
}

static void print_kpis(const struct scn_kpi *kpis, size_t n, bool all)
{
    int w = 24;
    char b[64], s[64], d[64], name[NAME_ESC], unit[CTL_ESC_LEN(32)];
    for (size_t i = 0; i < n; i++)
        if ((int)strlen(ctl_esc(kpis[i].name, name, sizeof(name))) > w)
            w = (int)strlen(name);
    printf("\n%-*s  %-8s  %-*s  %-*s  %s\n", w, "KPI", "unit", EST_W, "baseline [95 % CI]", EST_W,
           "scenario [95 % CI]", "difference [95 % CI]");
    size_t hidden = 0;
    for (size_t i = 0; i < n; i++) {
        const struct scn_kpi *k = &kpis[i];
        if (!all && !worth_a_row(k)) {
            hidden++;
            continue;
        }
        fmt_est(b, sizeof(b), k, &k->base);
        fmt_est(s, sizeof(s), k, &k->scen);
        fmt_est(d, sizeof(d), k, &k->diff);
        printf("%-*s  %-8s  %-*s  %-*s  %s%s\n", w, ctl_esc(k->name, name, sizeof(name)),
               ctl_esc(shown_unit(k), unit, sizeof(unit)), EST_W, b, EST_W, s, d,
               scen_significant(&k->diff) ? " *" : "");
    }
    printf("(* the difference's 95 %% interval excludes 0; fractions shown in %%");
    if (hidden)
        printf("; %zu station, buffer and stock rows without a clear change are hidden: --all "
               "shows them",
               hidden);
    printf(")\n");
}

/* ---- sweeps -------------------------------------------------------------------------------- */

static void print_variant_values(const struct scen_outcome *o, const struct scn_variant *v,
                                 const char *sep)
{
    char name[NAME_ESC];
    for (size_t j = 0; j < o->n_sweep_params; j++)
        printf("%s%s = %.6g", j ? sep : "", ctl_esc(o->sweep_params[j], name, sizeof(name)),
               v->values[j]);
}

static void print_recommendation(const struct scen_outcome *o, const struct ctl_report_opts *ro)
{
    const struct scn_result *r = o->r;
    const struct scn_variant *best = &r->variants[0];
    if (!best->feasible) {
        printf("\nNo variant meets the constraints: no recommendation.\n");
        return;
    }
    printf("\nRecommendation: ");
    print_variant_values(o, best, ", ");
    const struct scn_kpi *k = find_kpi(best->kpis, best->n_kpis, ro->objective);
    char e[64], name[NAME_ESC], unit[CTL_ESC_LEN(32)];
    if (k) {
        fmt_est(e, sizeof(e), k, &k->scen);
        printf("\n  %s %s %s (baseline %.4g), cost %.6g\n", ctl_esc(k->name, name, sizeof(name)), e,
               ctl_esc(shown_unit(k), unit, sizeof(unit)), shown(k, k->base.mean), best->cost);
    } else {
        printf("\n  objective %.6g, cost %.6g\n", best->objective, best->cost);
    }
}

static void print_sweep(const struct scen_outcome *o, const struct ctl_report_opts *ro)
{
    const struct scn_result *r = o->r;
    printf("\nSweep: %u variants, %u meet the constraints", r->variants_total,
           r->variants_feasible);
    if (ro->objective && ro->objective[0])
        printf("; objective: %s %s", ro->maximize ? "maximize" : "minimize", ro->objective);
    char name[NAME_ESC];
    printf("\n%4s", "rank");
    for (size_t j = 0; j < o->n_sweep_params; j++)
        printf("  %*s", (int)strlen(o->sweep_params[j]) > 10 ? (int)strlen(o->sweep_params[j]) : 10,
               ctl_esc(o->sweep_params[j], name, sizeof(name)));
    printf("  %12s  %10s  %s\n", "objective", "cost", "feasible");
    for (size_t i = 0; i < r->n_variants; i++) {
        const struct scn_variant *v = &r->variants[i];
        printf("%4zu", i + 1);
        for (size_t j = 0; j < o->n_sweep_params; j++)
            printf("  %*.6g",
                   (int)strlen(o->sweep_params[j]) > 10 ? (int)strlen(o->sweep_params[j]) : 10,
                   v->values[j]);
        printf("  %12.6g  %10.6g  %s\n", v->objective, v->cost, v->feasible ? "yes" : "no");
    }
    if (r->n_variants > 0)
        print_recommendation(o, ro);
}

/* ---- the whole result ---------------------------------------------------------------------- */

static void print_header(const struct scen_outcome *o)
{
    char id[CTL_ESC_LEN(sizeof(o->id))], name[CTL_ESC_LEN(256)], error[CTL_ESC_LEN(512)];
    printf("Scenario %s%s%s: %s\n", ctl_esc(o->id, id, sizeof(id)),
           o->name && o->name[0] ? " - " : "", ctl_esc(o->name, name, sizeof(name)),
           scen_status_word(o->status));
    if (o->error && o->error[0])
        printf("  %s\n", ctl_esc(o->error, error, sizeof(error)));
    if (o->replications == 0)
        return;
    printf("  %u replications of %.4g h (warm-up %.4g h), seed %llu", o->replications,
           (double)o->horizon_ms / 3600000.0, (double)o->warmup_ms / 3600000.0,
           (unsigned long long)o->seed);
    if (o->snapshot_ms > 0) {
        char when[48];
        time_t t = (time_t)(o->snapshot_ms / 1000);
        struct tm tm;
        if (gmtime_r(&t, &tm) && strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S UTC", &tm) > 0)
            printf("; from the live twin at %s", when);
        else
            printf("; from the live twin at %lld ms", (long long)o->snapshot_ms);
    } else {
        printf("; from the model file (live state ignored)");
    }
    if (o->r)
        printf("\n  %llu events simulated in %.2f s", (unsigned long long)o->r->events,
               (double)o->wall_ms / 1000.0);
    printf("\n");
}

void ctl_print_outcome(const struct scen_outcome *o, const struct ctl_report_opts *opts)
{
    print_header(o);
    if (o->r && o->r->n_kpis > 0) {
        print_summary(o->r);
        print_kpis(o->r->kpis, o->r->n_kpis, opts->all);
    }
    if (o->r && o->n_sweep_params > 0)
        print_sweep(o, opts);
    fflush(stdout);
}

/* ---- JSON ---------------------------------------------------------------------------------- */

int ctl_print_outcome_json(const struct scen_outcome *o)
{
    cJSON *j = scen_outcome_json(o);
    if (!j)
        return TW_ENOMEM;
    char *text = cJSON_PrintUnformatted(j);
    cJSON_Delete(j);
    if (!text)
        return TW_ENOMEM;
    puts(text);
    fflush(stdout);
    cJSON_free(text);
    return 0;
}
