/* SPDX-License-Identifier: Apache-2.0 */
/* The production parser's "stations" section: machines, cycle and setup times, failures,
 * routing (input, output, splits), material use and live signals of one station. */
#include <string.h>

#include "plant_json_internal.h"

#define NODE_BAD (-1000) /* an input or output that did not resolve */

/* Machines: as many as the model's assets whose "station" names this one (their ids become
 * machine_asset[], in file order), or 1; "machines" may add machines without an asset. */
static void station_machines(struct pj *c, const cJSON *obj, struct sim_station *s)
{
    uint32_t n_assets = 0;
    size_t n = c->model ? tw_model_asset_count(c->model) : 0;
    for (size_t i = 0; i < n; i++) {
        const struct tw_model_asset *a = tw_model_asset_at(c->model, i);
        if (!a->station || strcmp(a->station, s->name) != 0)
            continue;
        if (n_assets < SIM_MAX_MACHINES)
            pj_copy_name(s->machine_asset[n_assets], a->id);
        n_assets++;
    }
    s->machines = n_assets == 0 ? 1 : n_assets < SIM_MAX_MACHINES ? n_assets : SIM_MAX_MACHINES;
    if (pj_get(obj, "machines")) {
        if (pj_get_count(c, obj, "machines", 1, SIM_MAX_MACHINES, &s->machines) &&
            s->machines < n_assets)
            pj_fail_key(c, "machines", "%u is fewer than the %u assets whose \"station\" is \"%s\"",
                        s->machines, n_assets, s->name);
    } else if (n_assets > SIM_MAX_MACHINES) {
        pj_fail(c, "%u assets have \"station\": \"%s\" (at most %u machines)", n_assets, s->name,
                SIM_MAX_MACHINES);
    }
}

static void parse_input(struct pj *c, const cJSON *item, void *ctx)
{
    struct sim_station *s = ctx;
    const char *name = cJSON_IsString(item) ? item->valuestring : NULL;
    int b = name ? sim_plant_buffer(c->p, name) : -1;
    if (!name)
        pj_fail(c, "must be a buffer name, \"demand\" or \"source\"");
    else if (strcmp(name, "demand") == 0)
        s->input = SIM_NODE_DEMAND;
    else if (strcmp(name, "source") == 0)
        s->input = SIM_NODE_SOURCE;
    else if (b >= 0)
        s->input = b;
    else if (strcmp(name, "sink") == 0)
        pj_fail(c, "\"sink\" is an output: an input is a buffer name, \"demand\" or \"source\"");
    else
        pj_fail(c, "no such buffer in \"buffers\" (an input is a buffer name, \"demand\" or "
                   "\"source\")");
}

static int output_node(struct pj *c, const cJSON *item)
{
    const char *name = cJSON_IsString(item) ? item->valuestring : NULL;
    int b = name ? sim_plant_buffer(c->p, name) : -1;
    if (!name)
        pj_fail(c, "must be a buffer name or \"sink\"");
    else if (strcmp(name, "sink") == 0)
        return SIM_NODE_SINK;
    else if (b >= 0)
        return b;
    else if (strcmp(name, "demand") == 0 || strcmp(name, "source") == 0)
        pj_fail(c, "\"%s\" is an input: an output is a buffer name or \"sink\"", name);
    else
        pj_fail(c, "no such buffer in \"buffers\" (an output is a buffer name or \"sink\")");
    return NODE_BAD;
}

static const char *const split_keys[] = {"to", "share", NULL};

/* One entry of a split: {"to": NAME, "share": x > 0}. */
static bool split_entry(struct pj *c, const cJSON *e, int *node, double *share)
{
    if (!pj_want_object(c, e))
        return false;
    pj_check_keys(c, e, split_keys);
    bool has_to = pj_require(c, e, "to");
    bool has_share = pj_require(c, e, "share") && pj_get_real(c, e, "share", PJ_GT0, share);
    if (has_to) {
        size_t saved = tw_jsonpath_push(&c->path, "to");
        *node = output_node(c, pj_get(e, "to"));
        tw_jsonpath_pop(&c->path, saved);
    }
    return has_to && has_share && *node != NODE_BAD;
}

static void parse_split(struct pj *c, const cJSON *item, struct sim_station *s)
{
    int n = cJSON_GetArraySize(item);
    if (n < 1 || (unsigned)n > SIM_MAX_OUTPUTS) {
        pj_fail(c, "must list 1 to %u outputs (%d listed)", SIM_MAX_OUTPUTS, n);
        return;
    }
    int nodes[SIM_MAX_OUTPUTS];
    double shares[SIM_MAX_OUTPUTS], max = 0, sum = 0;
    bool ok = true;
    int i = 0;
    for (const cJSON *e = item->child; e && i < n; e = e->next, i++) {
        size_t saved = tw_jsonpath_push_index(&c->path, i);
        nodes[i] = NODE_BAD;
        shares[i] = 0;
        bool good = split_entry(c, e, &nodes[i], &shares[i]);
        for (int j = 0; good && j < i; j++)
            if (nodes[j] == nodes[i]) {
                pj_fail(c, "names the same output as [%d]", j);
                good = false;
            }
        ok = good && ok;
        max = shares[i] > max ? shares[i] : max;
        tw_jsonpath_pop(&c->path, saved);
    }
    if (!ok) { /* keep the targets that resolved, so the line checks add no false errors */
        for (i = 0; i < n; i++)
            if (nodes[i] != NODE_BAD)
                s->outputs[s->n_outputs++] = nodes[i];
        return;
    }
    for (i = 0; i < n; i++) /* by the largest first, so that huge shares cannot overflow */
        sum += shares[i] / max;
    for (i = 0; i < n; i++) {
        s->outputs[i] = nodes[i];
        s->output_share[i] = shares[i] / max / sum;
    }
    s->n_outputs = (uint32_t)n;
}

static void parse_output(struct pj *c, const cJSON *item, void *ctx)
{
    struct sim_station *s = ctx;
    if (cJSON_IsArray(item)) {
        parse_split(c, item, s);
        return;
    }
    if (!cJSON_IsString(item)) {
        pj_fail(c, "must be a buffer name, \"sink\", or a list of {\"to\": name, \"share\": x}");
        return;
    }
    int node = output_node(c, item);
    if (node == NODE_BAD)
        return;
    s->n_outputs = 1;
    s->outputs[0] = node;
    s->output_share[0] = 1.0;
}

static const char *const setup_keys[] = {"time", "every", NULL};

static void parse_setup(struct pj *c, const cJSON *item, void *ctx)
{
    struct sim_station *s = ctx;
    if (!pj_want_object(c, item))
        return;
    pj_check_keys(c, item, setup_keys);
    if (pj_require(c, item, "time"))
        pj_get_dist(c, item, "time", SIM_DIST_FIXED, false, &s->setup);
    s->setup_every = 1;
    pj_get_count(c, item, "every", 1, PJ_MAX_PARTS, &s->setup_every);
}

static const char *const failure_keys[] = {"mtbf", "mttr", "basis", NULL};
static const char *const bases[] = {"busy", "time", NULL};

static void parse_failures(struct pj *c, const cJSON *item, void *ctx)
{
    struct sim_station *s = ctx;
    if (!pj_want_object(c, item))
        return;
    pj_check_keys(c, item, failure_keys);
    /* A plain duration is a mean: failures and repairs without a given shape are memoryless. */
    if (pj_require(c, item, "mtbf"))
        pj_get_dist(c, item, "mtbf", SIM_DIST_EXP, true, &s->ttf);
    if (pj_require(c, item, "mttr"))
        pj_get_dist(c, item, "mttr", SIM_DIST_EXP, false, &s->ttr);
    s->fail_basis = pj_get_choice(c, item, "basis", bases, 0) == 1 ? SIM_FAIL_TIME : SIM_FAIL_BUSY;
}

static const char *const consume_keys[] = {"stock", "per_part", NULL};

static void parse_consumes(struct pj *c, const cJSON *item, void *ctx)
{
    struct sim_station *s = ctx;
    if (!pj_want_object(c, item))
        return;
    pj_check_keys(c, item, consume_keys);
    char name[SIM_NAME_MAX + 1];
    if (pj_require(c, item, "stock") && pj_get_name(c, item, "stock", name, "a stock name")) {
        s->stock = sim_plant_stock(c->p, name);
        if (s->stock < 0)
            pj_fail_key(c, "stock", "no such stock in \"stocks\"");
    }
    s->consume = 1.0;
    pj_get_real(c, item, "per_part", PJ_GT0, &s->consume);
}

/* With a model, a live signal is read from the station's machines' assets: there must be
 * some, and their kinds must declare the signal (a typo would silently read nothing). */
static void check_live_signal(struct pj *c, const struct sim_station *s, const char *signal)
{
    if (!c->model)
        return;
    if (s->machine_asset[0][0] == '\0') {
        pj_fail(c, "no asset to read it from: no asset in \"assets\" has \"station\": \"%s\"",
                s->name);
        return;
    }
    for (uint32_t i = 0; i < s->machines && s->machine_asset[i][0]; i++) {
        const struct tw_model_asset *a = tw_model_asset(c->model, s->machine_asset[i]);
        if (a && !tw_model_signal(a->kind, signal)) {
            pj_fail(c, "asset \"%s\" (kind \"%s\") has no such signal", a->id, a->kind->name);
            return;
        }
    }
}

static const char *const down_keys[] = {"signal", "below", "above", NULL};

static void parse_down(struct pj *c, const cJSON *item, void *ctx)
{
    struct sim_station *s = ctx;
    struct sim_station_live *l = &s->live;
    if (!pj_want_object(c, item))
        return;
    pj_check_keys(c, item, down_keys);
    if (pj_require(c, item, "signal") && pj_get_signal(c, item, "signal", l->down_signal)) {
        size_t saved = tw_jsonpath_push(&c->path, "signal");
        check_live_signal(c, s, l->down_signal);
        tw_jsonpath_pop(&c->path, saved);
    }
    l->down_has_below = pj_get_real(c, item, "below", PJ_ANY, &l->down_below);
    l->down_has_above = pj_get_real(c, item, "above", PJ_ANY, &l->down_above);
    if (!pj_get(item, "below") && !pj_get(item, "above"))
        pj_fail(c, "must set \"below\", \"above\" or both");
    else if (l->down_has_below && l->down_has_above && !(l->down_below < l->down_above))
        pj_fail(c, "\"below\" (%.17g) must be less than \"above\" (%.17g)", l->down_below,
                l->down_above);
}

static const char *const wear_keys[] = {"signal", "mtbf_factor", "age", NULL};

static void parse_wear(struct pj *c, const cJSON *item, void *ctx)
{
    struct sim_station *s = ctx;
    struct sim_station_live *l = &s->live;
    if (!pj_want_object(c, item))
        return;
    pj_check_keys(c, item, wear_keys);
    if (pj_require(c, item, "signal") && pj_get_signal(c, item, "signal", l->wear_signal)) {
        size_t saved = tw_jsonpath_push(&c->path, "signal");
        check_live_signal(c, s, l->wear_signal);
        tw_jsonpath_pop(&c->path, saved);
    }
    /* Either the wear scales a memoryless MTBF, or it says how much of a wearing-out life the
     * machine has used: then its time to failure is drawn given that it has lasted that long. */
    bool factor = pj_get(item, "mtbf_factor") != NULL, age = pj_get(item, "age") != NULL;
    if (factor && age) {
        pj_fail(c, "give \"mtbf_factor\" or \"age\", not both");
    } else if (age) {
        l->wear_is_age = true;
        pj_member(c, item, "age", &l->wear, pj_parse_age_curve);
        if (s->ttf.kind != SIM_DIST_WEIBULL) {
            size_t saved = tw_jsonpath_push(&c->path, "age");
            pj_fail(c, "needs the station's failures to have \"mtbf\": {\"dist\": \"weibull\", "
                       "...}: a remaining life from an age is drawn for weibull lives only");
            tw_jsonpath_pop(&c->path, saved);
        }
    } else if (pj_require(c, item, "mtbf_factor")) {
        pj_member(c, item, "mtbf_factor", &l->wear, pj_parse_curve);
    }
}

static const char *const live_keys[] = {"down_when", "wear", NULL};

static void parse_live(struct pj *c, const cJSON *item, void *ctx)
{
    if (!pj_want_object(c, item))
        return;
    pj_check_keys(c, item, live_keys);
    pj_member(c, item, "down_when", ctx, parse_down);
    pj_member(c, item, "wear", ctx, parse_wear);
}

static void station_defaults(struct sim_station *s)
{
    s->machines = 1;
    pj_dist_zero(&s->cycle);
    pj_dist_zero(&s->setup);
    pj_dist_zero(&s->ttf);
    pj_dist_zero(&s->ttr);
    s->fail_basis = SIM_FAIL_NONE;
    s->input = NODE_BAD;
    s->stock = -1;
    s->follows_shifts = true;
    s->mtbf_factor = 1.0;
}

static const char *const station_keys[] = {"machines", "staff",    "cycle_time", "setup",
                                           "scrap",    "failures", "input",      "output",
                                           "consumes", "shifts",   "live",       NULL};

void pj_parse_station(struct pj *c, const cJSON *obj, void *elem)
{
    struct sim_station *s = elem;
    station_defaults(s);
    if (!pj_want_object(c, obj))
        return;
    pj_check_keys(c, obj, station_keys);
    station_machines(c, obj, s);
    pj_get_count(c, obj, "staff", 1, SIM_MAX_MACHINES, &s->staff);
    if (pj_require(c, obj, "cycle_time"))
        pj_get_dist(c, obj, "cycle_time", SIM_DIST_FIXED, true, &s->cycle);
    pj_member(c, obj, "setup", s, parse_setup);
    pj_get_real(c, obj, "scrap", PJ_FRACTION, &s->scrap);
    pj_member(c, obj, "failures", s, parse_failures);
    if (pj_require(c, obj, "input"))
        pj_member(c, obj, "input", s, parse_input);
    if (pj_require(c, obj, "output"))
        pj_member(c, obj, "output", s, parse_output);
    pj_member(c, obj, "consumes", s, parse_consumes);
    pj_get_bool(c, obj, "shifts", &s->follows_shifts);
    pj_member(c, obj, "live", s, parse_live);
}
