/* SPDX-License-Identifier: Apache-2.0 */
/* The plant model's "actions" section read into struct sim_actions, every problem reported with
 * its JSON path; the range check of one command; the next shift end. */
#include "plant_actions.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "plant_json_internal.h"
#include "sim.h"
#include "twin/err.h"

#define DEFAULT_HORIZON      86400.0
#define DEFAULT_REPLICATIONS 20u
#define DEFAULT_EVERY        3600.0
#define DEFAULT_DURATION     900.0
#define MAX_REPLICATIONS     1000u
#define MAX_WEAR_EXPONENT    10.0

static const char *const words[SIM_ACT_N] = {"maintain", "slow"};

const char *sim_action_word(enum sim_action_kind k)
{
    return (unsigned)k < SIM_ACT_N ? words[k] : "none";
}

int sim_action_find(const char *word)
{
    for (int k = 0; k < (int)SIM_ACT_N; k++)
        if (strcmp(word, words[k]) == 0)
            return k;
    return -1;
}

/* ---- sections ------------------------------------------------------------------------------ */

/* Whether the objective names a KPI of the plant, for every station when it says {station}. */
static bool objective_known(const struct sim_plant *p, const char *name)
{
    char kpi[SIM_NAME_MAX * 4];
    if (!strstr(name, "{station}"))
        return sim_kpi_find(p, name) >= 0;
    for (uint32_t s = 0; s < p->n_stations; s++)
        if (sim_actions_objective_of(name, p->stations[s].name, kpi, sizeof(kpi)) < 0 ||
            sim_kpi_find(p, kpi) < 0)
            return false;
    return p->n_stations > 0;
}

int sim_actions_objective_of(const char *objective, const char *station, char *out, size_t len)
{
    const char *at = strstr(objective, "{station}");
    int n = at ? snprintf(out, len, "%.*s%s%s", (int)(at - objective), objective, station,
                          at + strlen("{station}"))
               : snprintf(out, len, "%s", objective);
    return n < 0 || (size_t)n >= len ? -1 : 0;
}

static void parse_objective(struct pj *c, const cJSON *obj, void *ctx)
{
    static const char *const keys[] = {"kpi", "maximize", NULL};
    struct sim_actions *a = ctx;
    if (!pj_want_object(c, obj))
        return;
    pj_check_keys(c, obj, keys);
    const cJSON *kpi = pj_get(obj, "kpi");
    if (kpi && (!cJSON_IsString(kpi) || strlen(kpi->valuestring) >= sizeof(a->objective)))
        pj_fail_key(c, "kpi", "must be a KPI name such as \"throughput\"");
    else if (kpi && !objective_known(c->p, kpi->valuestring))
        pj_fail_key(c, "kpi",
                    "no such KPI \"%s\" for this plant (README, \"Scenarios\"; \"{station}\" "
                    "stands for the machine's station)",
                    kpi->valuestring);
    else if (kpi)
        snprintf(a->objective, sizeof(a->objective), "%s", kpi->valuestring);
    pj_get_bool(c, obj, "maximize", &a->maximize);
}

static void parse_evaluate(struct pj *c, const cJSON *obj, void *ctx)
{
    static const char *const keys[] = {"horizon", "replications", "every", NULL};
    struct sim_actions *a = ctx;
    if (!pj_want_object(c, obj))
        return;
    pj_check_keys(c, obj, keys);
    pj_get_duration(c, obj, "horizon", false, &a->horizon);
    pj_get_count(c, obj, "replications", 2, MAX_REPLICATIONS, &a->replications);
    pj_get_duration(c, obj, "every", true, &a->every);
}

static void parse_autonomy(struct pj *c, const cJSON *obj, void *ctx)
{
    static const char *const keys[] = {"allowed", "max_per_hour", "min_interval", NULL};
    struct sim_actions *a = ctx;
    if (!pj_want_object(c, obj))
        return;
    pj_check_keys(c, obj, keys);
    pj_get_bool(c, obj, "allowed", &a->autonomy_allowed);
    pj_get_count(c, obj, "max_per_hour", 0, 3600, &a->max_per_hour);
    pj_get_duration(c, obj, "min_interval", true, &a->min_interval);
}

/* "stations": a list of station names; absent: all of them. */
static void parse_stations(struct pj *c, const cJSON *obj, struct sim_action_rule *r)
{
    const cJSON *list = pj_get(obj, "stations");
    if (!list) {
        for (uint32_t s = 0; s < c->p->n_stations; s++)
            r->station[s] = true;
        return;
    }
    size_t saved = tw_jsonpath_push(&c->path, "stations");
    if (!cJSON_IsArray(list) || cJSON_GetArraySize(list) < 1)
        pj_fail(c, "must be a list of 1 or more station names");
    int i = 0;
    for (const cJSON *e = cJSON_IsArray(list) ? list->child : NULL; e; e = e->next, i++) {
        size_t inner = tw_jsonpath_push_index(&c->path, i);
        int s = cJSON_IsString(e) ? sim_plant_station(c->p, e->valuestring) : -1;
        if (s < 0)
            pj_fail(c, "must name a station of \"stations\"");
        else
            r->station[s] = true;
        tw_jsonpath_pop(&c->path, inner);
    }
    tw_jsonpath_pop(&c->path, saved);
}

static void parse_common(struct pj *c, const cJSON *obj, struct sim_action_rule *r)
{
    r->declared = true;
    parse_stations(c, obj, r);
    pj_get_bool(c, obj, "approval", &r->approval);
    pj_get_duration(c, obj, "min_interval", true, &r->min_interval);
}

static void parse_maintain(struct pj *c, const cJSON *obj, void *ctx)
{
    static const char *const keys[] = {
        "stations",        "duration", "min_duration", "max_duration",
        "at_shift_change", "approval", "min_interval", NULL};
    struct sim_action_rule *r = ctx;
    if (!pj_want_object(c, obj))
        return;
    pj_check_keys(c, obj, keys);
    parse_common(c, obj, r);
    r->duration = DEFAULT_DURATION;
    pj_get_duration(c, obj, "duration", false, &r->duration);
    r->min_duration = r->duration;
    r->max_duration = r->duration;
    pj_get_duration(c, obj, "min_duration", false, &r->min_duration);
    pj_get_duration(c, obj, "max_duration", false, &r->max_duration);
    if (!(r->min_duration <= r->duration && r->duration <= r->max_duration))
        pj_fail(c, "must have min_duration <= duration <= max_duration");
    pj_get_bool(c, obj, "at_shift_change", &r->at_shift_change);
}

static void parse_speeds(struct pj *c, const cJSON *obj, struct sim_action_rule *r)
{
    const cJSON *list = pj_get(obj, "speeds");
    if (!pj_require(c, obj, "speeds"))
        return;
    size_t saved = tw_jsonpath_push(&c->path, "speeds");
    int n = cJSON_GetArraySize(list);
    if (!cJSON_IsArray(list) || n < 1 || (unsigned)n > SIM_ACT_MAX_SPEEDS)
        pj_fail(c, "must be a list of 1 to %u speeds, fractions of nominal such as 0.8",
                SIM_ACT_MAX_SPEEDS);
    int i = 0;
    for (const cJSON *e = cJSON_IsArray(list) ? list->child : NULL;
         e && r->n_speeds < SIM_ACT_MAX_SPEEDS; e = e->next, i++) {
        size_t inner = tw_jsonpath_push_index(&c->path, i);
        if (!cJSON_IsNumber(e) || !(e->valuedouble > 0 && e->valuedouble < 1))
            pj_fail(c, "must be a number above 0 and below 1");
        else
            r->speeds[r->n_speeds++] = e->valuedouble;
        tw_jsonpath_pop(&c->path, inner);
    }
    tw_jsonpath_pop(&c->path, saved);
}

static void parse_slow(struct pj *c, const cJSON *obj, void *ctx)
{
    static const char *const keys[] = {"stations", "speeds",   "min_speed",    "wear_exponent",
                                       "for",      "approval", "min_interval", NULL};
    struct sim_action_rule *r = ctx;
    if (!pj_want_object(c, obj))
        return;
    pj_check_keys(c, obj, keys);
    parse_common(c, obj, r);
    parse_speeds(c, obj, r);
    r->min_speed = 1.0;
    for (uint32_t i = 0; i < r->n_speeds; i++)
        r->min_speed = fmin(r->min_speed, r->speeds[i]);
    if (pj_get_real(c, obj, "min_speed", PJ_FRACTION, &r->min_speed)) {
        for (uint32_t i = 0; i < r->n_speeds; i++)
            if (r->speeds[i] < r->min_speed)
                pj_fail_key(c, "min_speed", "must not be above a speed of \"speeds\"");
        if (!(r->min_speed > 0))
            pj_fail_key(c, "min_speed", "must be above 0");
    }
    r->wear_exponent = 2.0;
    if (pj_get_real(c, obj, "wear_exponent", PJ_GE0, &r->wear_exponent) &&
        r->wear_exponent > MAX_WEAR_EXPONENT)
        pj_fail_key(c, "wear_exponent", "must be at most %g", MAX_WEAR_EXPONENT);
    r->slow_for = 8 * 3600.0;
    pj_get_duration(c, obj, "for", false, &r->slow_for);
}

static void parse_actions(struct pj *c, const cJSON *obj, struct sim_actions *a)
{
    static const char *const keys[] = {"objective", "evaluate", "autonomy",
                                       "maintain",  "slow",     NULL};
    pj_check_keys(c, obj, keys);
    snprintf(a->objective, sizeof(a->objective), "throughput");
    a->maximize = true;
    a->horizon = DEFAULT_HORIZON;
    a->replications = DEFAULT_REPLICATIONS;
    a->every = DEFAULT_EVERY;
    a->max_per_hour = 4;
    pj_member(c, obj, "objective", a, parse_objective);
    pj_member(c, obj, "evaluate", a, parse_evaluate);
    pj_member(c, obj, "autonomy", a, parse_autonomy);
    bool any = pj_member(c, obj, "maintain", &a->rule[SIM_ACT_MAINTAIN], parse_maintain);
    any = pj_member(c, obj, "slow", &a->rule[SIM_ACT_SLOW], parse_slow) || any;
    if (!any)
        pj_fail(c, "must declare at least one action kind: \"maintain\" or \"slow\"");
}

int sim_actions_parse(const char *buf, size_t len, const struct sim_plant *p,
                      struct sim_actions *out, struct tw_model_errors *errs)
{
    struct pj c = {.p = (struct sim_plant *)p, .errs = errs};
    cJSON *root = NULL;
    memset(out, 0, sizeof(*out));
    tw_jsonpath_init(&c.path);
    int rc = tw_model_parse_text(buf, len, &root, errs);
    if (rc != 0)
        return rc;
    const cJSON *obj = cJSON_IsObject(root) ? pj_get(root, "actions") : NULL;
    if (!obj) {
        cJSON_Delete(root);
        return 0;
    }
    size_t saved = tw_jsonpath_push(&c.path, "actions");
    if (!p)
        pj_fail(&c, "needs the production part (\"stations\", ...): actions are weighed by "
                    "simulating the line");
    else if (pj_want_object(&c, obj))
        parse_actions(&c, obj, out);
    tw_jsonpath_pop(&c.path, saved);
    cJSON_Delete(root);
    if (c.nomem)
        return TW_ENOMEM;
    return c.n_errors > 0 ? TW_EINVAL : 1;
}

int sim_actions_load_file(const char *path, const struct sim_plant *p, struct sim_actions *out,
                          struct tw_model_errors *errs)
{
    char *buf = NULL;
    size_t len = 0;
    memset(out, 0, sizeof(*out));
    int rc = tw_model_read_file(path, &buf, &len, errs);
    if (rc != 0)
        return rc;
    rc = sim_actions_parse(buf, len, p, out, errs);
    free(buf);
    return rc;
}

/* ---- checks -------------------------------------------------------------------------------- */

static bool on_shift(const struct sim_shifts *sh, double t, double *end)
{
    double base = floor(t / sh->period) * sh->period, in = t - base;
    for (uint32_t w = 0; w < sh->n; w++)
        if (in >= sh->start[w] && in < sh->end[w]) {
            *end = base + sh->end[w];
            return true;
        }
    return false;
}

double sim_actions_next_off_shift(const struct sim_shifts *sh, double t)
{
    if (!(sh->period > 0) || sh->n == 0 || !isfinite(t))
        return -1;
    double x = t, end;
    /* Windows end inside their period; back-to-back ones (06-14, 14-22) are walked through. */
    for (uint32_t i = 0; i <= 2 * sh->n + 1; i++) {
        if (!on_shift(sh, x, &end))
            return x - t;
        x = end;
    }
    return -1; /* the windows cover the whole period */
}

int sim_action_check(const struct sim_actions *a, enum sim_action_kind k, int station,
                     double duration, double speed, const char **why, char *detail,
                     size_t detail_len)
{
    const struct sim_action_rule *r = (unsigned)k < SIM_ACT_N ? &a->rule[k] : NULL;
    if (!r || !r->declared) {
        *why = "kind_not_allowed";
        snprintf(detail, detail_len, "the plant model declares no action \"%s\"",
                 sim_action_word(k));
        return -1;
    }
    if (station < 0 || (unsigned)station >= SIM_MAX_STATIONS || !r->station[station]) {
        *why = "station_not_allowed";
        snprintf(detail, detail_len, "\"%s\" is not declared for this machine's station",
                 sim_action_word(k));
        return -1;
    }
    if (k == SIM_ACT_MAINTAIN && !(duration >= r->min_duration && duration <= r->max_duration)) {
        *why = "out_of_range";
        snprintf(detail, detail_len, "maintenance of %.0f s is outside [%.0f, %.0f] s", duration,
                 r->min_duration, r->max_duration);
        return -1;
    }
    if (k == SIM_ACT_SLOW && !(speed >= r->min_speed && speed <= 1.0)) {
        *why = "out_of_range";
        snprintf(detail, detail_len, "speed %.3g is outside [%.3g, 1]", speed, r->min_speed);
        return -1;
    }
    if (k == SIM_ACT_SLOW && !(duration > 0 && duration <= r->slow_for)) {
        *why = "out_of_range";
        snprintf(detail, detail_len, "a slow-down of %.0f s is outside (0, %.0f] s", duration,
                 r->slow_for);
        return -1;
    }
    return 0;
}
