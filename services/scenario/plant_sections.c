/* SPDX-License-Identifier: Apache-2.0 */
/* The production parser's other sections: buffers, stocks and suppliers (name -> object), and
 * the top-level "demand" and "shifts" objects. */
#include <stdlib.h>
#include <string.h>

#include "plant_json_internal.h"

/* ---- buffers, stocks, suppliers ------------------------------------------------------- */

static const char *const live_ref_keys[] = {"asset", "signal", NULL};

/* {"asset": ID, "signal": S}: where a scenario reads the starting value from the live twin. */
static void live_ref(struct pj *c, const cJSON *obj, char *asset, char *signal)
{
    if (!pj_want_object(c, obj))
        return;
    pj_check_keys(c, obj, live_ref_keys);
    bool has_asset =
        pj_require(c, obj, "asset") && pj_get_name(c, obj, "asset", asset, "an asset id");
    bool has_signal = pj_require(c, obj, "signal") && pj_get_signal(c, obj, "signal", signal);
    const struct tw_model_asset *a = c->model && has_asset ? tw_model_asset(c->model, asset) : NULL;
    if (c->model && has_asset && !a)
        pj_fail_key(c, "asset", "no such asset in \"assets\"");
    else if (a && has_signal && !tw_model_signal(a->kind, signal))
        pj_fail_key(c, "signal", "asset kind \"%s\" has no such signal", a->kind->name);
}

static void buffer_live(struct pj *c, const cJSON *item, void *ctx)
{
    struct sim_buffer *b = ctx;
    live_ref(c, item, b->live_asset, b->live_signal);
}

static const char *const buffer_keys[] = {"capacity", "initial", "live", NULL};

void pj_parse_buffer(struct pj *c, const cJSON *obj, void *elem)
{
    struct sim_buffer *b = elem;
    b->capacity = SIM_INFINITE_CAP;
    if (!pj_want_object(c, obj))
        return;
    pj_check_keys(c, obj, buffer_keys);
    pj_get_count(c, obj, "capacity", 0, PJ_MAX_PARTS, &b->capacity);
    if (pj_get_count(c, obj, "initial", 0, PJ_MAX_PARTS, &b->initial) && b->initial > b->capacity)
        pj_fail_key(c, "initial", "must be at most \"capacity\" (%u)", b->capacity);
    pj_member(c, obj, "live", b, buffer_live);
}

static void stock_live(struct pj *c, const cJSON *item, void *ctx)
{
    struct sim_stock *s = ctx;
    live_ref(c, item, s->live_asset, s->live_signal);
}

static const char *const stock_keys[] = {"initial", "unit", "live", NULL};

void pj_parse_stock(struct pj *c, const cJSON *obj, void *elem)
{
    struct sim_stock *s = elem;
    if (!pj_want_object(c, obj))
        return;
    pj_check_keys(c, obj, stock_keys);
    pj_get_real(c, obj, "initial", PJ_GE0, &s->initial);
    /* "unit" is for people (dashboards, reports); the engine counts plain units. */
    const cJSON *unit = pj_get(obj, "unit");
    bool text = cJSON_IsString(unit) && strlen(unit->valuestring) <= TW_MODEL_UNIT_MAX;
    for (const char *p = text ? unit->valuestring : ""; *p; p++)
        text = text && (unsigned char)*p >= 0x20 && *p != 0x7f;
    if (unit && !text)
        pj_fail_key(c, "unit", "must be a string of at most %u bytes without control characters",
                    TW_MODEL_UNIT_MAX);
    pj_member(c, obj, "live", s, stock_live);
}

static void supplier_reorder(struct pj *c, const cJSON *obj, struct sim_supplier *u)
{
    if (pj_require(c, obj, "reorder_point"))
        pj_get_real(c, obj, "reorder_point", PJ_GE0, &u->reorder);
    if (pj_require(c, obj, "lead_time"))
        pj_get_dist(c, obj, "lead_time", SIM_DIST_FIXED, false, &u->lead);
    if (pj_get(obj, "period"))
        pj_fail_key(c, "period", "only with \"policy\": \"periodic\"");
    if (pj_get(obj, "first"))
        pj_fail_key(c, "first", "only with \"policy\": \"periodic\"");
}

static void supplier_periodic(struct pj *c, const cJSON *obj, struct sim_supplier *u)
{
    if (pj_require(c, obj, "period") && pj_get_duration(c, obj, "period", false, &u->period))
        u->first = u->period;
    pj_get_duration(c, obj, "first", true, &u->first);
    pj_get_dist(c, obj, "lead_time", SIM_DIST_FIXED, false, &u->lead);
    if (pj_get(obj, "reorder_point"))
        pj_fail_key(c, "reorder_point", "only with \"policy\": \"reorder\"");
}

static const char *const supplier_keys[] = {"stock",     "policy", "lot",   "reorder_point",
                                            "lead_time", "period", "first", "reliability",
                                            "late",      NULL};
static const char *const policies[] = {"reorder", "periodic", NULL};

void pj_parse_supplier(struct pj *c, const cJSON *obj, void *elem)
{
    struct sim_supplier *u = elem;
    u->stock = -1;
    u->reliability = 1.0;
    pj_dist_zero(&u->lead);
    pj_dist_zero(&u->late);
    if (!pj_want_object(c, obj))
        return;
    pj_check_keys(c, obj, supplier_keys);
    char name[SIM_NAME_MAX + 1];
    if (pj_require(c, obj, "stock") && pj_get_name(c, obj, "stock", name, "a stock name")) {
        u->stock = sim_plant_stock(c->p, name);
        if (u->stock < 0)
            pj_fail_key(c, "stock", "no such stock in \"stocks\"");
    }
    if (pj_require(c, obj, "lot"))
        pj_get_real(c, obj, "lot", PJ_GT0, &u->lot);
    int policy = pj_get_choice(c, obj, "policy", policies, 0);
    if (policy == 0)
        supplier_reorder(c, obj, u);
    else if (policy == 1)
        supplier_periodic(c, obj, u);
    u->policy = policy == 1 ? SIM_SUPPLY_PERIODIC : SIM_SUPPLY_REORDER;
    pj_get_real(c, obj, "reliability", PJ_PROB, &u->reliability);
    if (pj_get(obj, "late"))
        pj_get_dist(c, obj, "late", SIM_DIST_FIXED, false, &u->late);
    else if (u->reliability < 1)
        pj_fail(c, "missing \"late\" (the delay of a late delivery, needed with \"reliability\" "
                   "below 1)");
}

/* ---- demand and shifts ---------------------------------------------------------------- */

static const char *const season_keys[] = {"period", "amplitude", "peak", NULL};

static void parse_season(struct pj *c, const cJSON *item, void *ctx)
{
    struct sim_demand *d = ctx;
    if (!pj_want_object(c, item))
        return;
    pj_check_keys(c, item, season_keys);
    if (pj_require(c, item, "period"))
        pj_get_duration(c, item, "period", false, &d->season_period);
    if (pj_require(c, item, "amplitude"))
        pj_get_real(c, item, "amplitude", PJ_FRACTION, &d->season_amplitude);
    const cJSON *peak = pj_get(item, "peak");
    if (!peak)
        return;
    size_t saved = tw_jsonpath_push(&c->path, "peak");
    if (pj_item_clock(c, peak, &d->season_peak) && d->season_period > 0 &&
        d->season_peak >= d->season_period)
        pj_fail(c, "must be less than the season's period");
    tw_jsonpath_pop(&c->path, saved);
}

static const char *const backlog_keys[] = {"capacity", "when_full", NULL};

static void parse_backlog(struct pj *c, const cJSON *item, void *ctx)
{
    struct sim_demand *d = ctx;
    if (!pj_want_object(c, item))
        return;
    pj_check_keys(c, item, backlog_keys);
    /* The engine turns orders away from a full backlog; there is no other choice yet, but the
     * key says so where a reader expects it. */
    d->lose_when_full = pj_get_count(c, item, "capacity", 1, PJ_MAX_PARTS, &d->backlog_cap);
    const cJSON *wf = pj_get(item, "when_full");
    if (wf && !(cJSON_IsString(wf) && strcmp(wf->valuestring, "lose") == 0))
        pj_fail_key(c, "when_full",
                    "must be \"lose\" (orders arriving to a full backlog are lost)");
    else if (wf && !pj_get(item, "capacity"))
        pj_fail_key(c, "when_full", "needs a \"capacity\": an unbounded backlog is never full");
}

static const char *const demand_keys[] = {"rate_per_hour", "interarrival", "season",
                                          "due",           "backlog",      NULL};

void pj_parse_demand(struct pj *c, const cJSON *obj, void *ctx)
{
    struct sim_demand *d = ctx;
    if (!pj_want_object(c, obj))
        return;
    pj_check_keys(c, obj, demand_keys);
    const cJSON *rate = pj_get(obj, "rate_per_hour"), *ia = pj_get(obj, "interarrival");
    double per_hour;
    if (rate && ia)
        pj_fail(c, "\"rate_per_hour\" and \"interarrival\" exclude each other");
    else if (!rate && !ia)
        pj_fail(c, "missing \"rate_per_hour\" or \"interarrival\"");
    else if (rate && pj_get_real(c, obj, "rate_per_hour", PJ_GT0, &per_hour)) {
        d->kind = SIM_DEMAND_POISSON;
        d->rate = per_hour / 3600.0;
    } else if (ia && pj_get_dist(c, obj, "interarrival", SIM_DIST_FIXED, true, &d->interarrival))
        d->kind = SIM_DEMAND_RENEWAL;
    if (pj_member(c, obj, "season", d, parse_season) && ia)
        pj_fail_key(c, "season", "needs \"rate_per_hour\": only a Poisson rate is seasonal");
    pj_get_duration(c, obj, "due", true, &d->due);
    pj_member(c, obj, "backlog", d, parse_backlog);
}

struct window {
    double start, end;
};

static int window_cmp(const void *a, const void *b)
{
    const struct window *x = a, *y = b;
    return (x->start > y->start) - (x->start < y->start);
}

/* One [start, end] entry; a window that wraps around the period's end is split in two. */
static bool shift_window(struct pj *c, const cJSON *e, double period, struct window *w, uint32_t *n)
{
    double t[2];
    if (!cJSON_IsArray(e) || cJSON_GetArraySize(e) != 2) {
        pj_fail(c, "must be [start, end], each \"HH:MM\" or a duration into the period");
        return false;
    }
    bool ok = true;
    for (int k = 0; k < 2; k++) {
        size_t saved = tw_jsonpath_push_index(&c->path, k);
        bool got = pj_item_clock(c, cJSON_GetArrayItem(e, k), &t[k]);
        if (got && (t[k] > period || (k == 0 && t[k] == period))) {
            pj_fail(c, "must lie within the period (%g s)", period);
            got = false;
        }
        ok = got && ok;
        tw_jsonpath_pop(&c->path, saved);
    }
    if (ok && t[0] == t[1]) {
        pj_fail(c, "start and end are the same: an empty window");
        ok = false;
    }
    if (!ok)
        return false;
    if (t[0] < t[1]) {
        w[(*n)++] = (struct window){t[0], t[1]};
        return true;
    }
    w[(*n)++] = (struct window){t[0], period};
    if (t[1] > 0)
        w[(*n)++] = (struct window){0, t[1]};
    return true;
}

/* Sorted, checked for overlaps, touching windows merged. */
static void store_windows(struct pj *c, struct window *w, uint32_t n, struct sim_shifts *sh)
{
    if (n > SIM_MAX_SHIFTS) {
        pj_fail(c,
                "too many windows once those that wrap around the period's end are split (%u, "
                "at most %u)",
                n, SIM_MAX_SHIFTS);
        return;
    }
    qsort(w, n, sizeof *w, window_cmp);
    for (uint32_t i = 1; i < n; i++)
        if (w[i].start < w[i - 1].end) {
            pj_fail(c, "windows overlap (at %g s into the period)", w[i].start);
            return;
        }
    sh->n = 0;
    for (uint32_t i = 0; i < n; i++) {
        if (sh->n > 0 && w[i].start <= sh->end[sh->n - 1]) {
            sh->end[sh->n - 1] = w[i].end;
            continue;
        }
        sh->start[sh->n] = w[i].start;
        sh->end[sh->n++] = w[i].end;
    }
}

static const char *const shift_keys[] = {"period", "windows", NULL};

void pj_parse_shifts(struct pj *c, const cJSON *obj, void *ctx)
{
    struct sim_shifts *sh = ctx;
    if (!pj_want_object(c, obj))
        return;
    pj_check_keys(c, obj, shift_keys);
    double period = 86400.0;
    if (pj_get(obj, "period") && !pj_get_duration(c, obj, "period", false, &period))
        return;
    const cJSON *list = pj_get(obj, "windows");
    if (!pj_require(c, obj, "windows"))
        return;
    size_t saved = tw_jsonpath_push(&c->path, "windows");
    int n = cJSON_GetArraySize(list);
    struct window w[2 * SIM_MAX_SHIFTS];
    uint32_t k = 0;
    bool ok = cJSON_IsArray(list) && n >= 1 && (unsigned)n <= SIM_MAX_SHIFTS;
    if (!ok)
        pj_fail(c, "must be a list of 1 to %u [start, end] windows such as [\"06:00\", \"14:00\"]",
                SIM_MAX_SHIFTS);
    int i = 0;
    for (const cJSON *e = ok ? list->child : NULL; e; e = e->next, i++) {
        size_t inner = tw_jsonpath_push_index(&c->path, i);
        ok = shift_window(c, e, period, w, &k) && ok;
        tw_jsonpath_pop(&c->path, inner);
    }
    if (ok) {
        store_windows(c, w, k, sh);
        sh->period = sh->n > 0 ? period : 0;
    }
    tw_jsonpath_pop(&c->path, saved);
}
