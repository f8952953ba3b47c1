/* SPDX-License-Identifier: Apache-2.0 */
/* Parser of the plant model's production part: JSON to struct sim_plant, every error with its
 * JSON path. This file reads the text, walks the top-level sections and checks the whole line;
 * the sections and values are read by plant_stations.c, plant_sections.c and plant_values.c. */
#include "plant_json.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "plant_json_internal.h"
#include "twin/err.h"

/* ---- reporting ------------------------------------------------------------------------ */

static void vfail(struct pj *c, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));

static void vfail(struct pj *c, const char *fmt, va_list ap)
{
    char msg[TW_MODEL_MESSAGE_MAX];
    vsnprintf(msg, sizeof msg, fmt, ap);
    c->n_errors++;
    /* The common loader reports duplicate keys in the whole file, this part included, and a
     * caller may collect both loaders' errors in one list: do not list one twice. */
    if (tw_model_errors_has(c->errs, c->path.text, msg))
        return;
    if (tw_model_errors_add(c->errs, c->path.text, msg) != 0)
        c->nomem = true;
}

void pj_fail(struct pj *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vfail(c, fmt, ap);
    va_end(ap);
}

void pj_fail_key(struct pj *c, const char *key, const char *fmt, ...)
{
    size_t saved = tw_jsonpath_push(&c->path, key);
    va_list ap;
    va_start(ap, fmt);
    vfail(c, fmt, ap);
    va_end(ap);
    tw_jsonpath_pop(&c->path, saved);
}

/* ---- the name maps and the checks of the whole line ----------------------------------- */

struct section {
    const char *key;  /* "stations" */
    const char *noun; /* "station" */
    uint32_t cap;
    size_t size;    /* of one element; every element starts with its name */
    bool line_node; /* stations and buffers: names share one namespace with the line's ends */
    void (*parse)(struct pj *, const cJSON *, void *);
};

static bool section_name(struct pj *c, const struct section *sec, const char *name,
                         const unsigned char *arr, uint32_t k)
{
    if (!tw_valid_asset_id(name, strlen(name))) {
        pj_fail(c, "invalid %s name: 1-64 characters of [A-Za-z0-9._-]", sec->noun);
        return false;
    }
    if (sec->line_node &&
        (!strcmp(name, "demand") || !strcmp(name, "source") || !strcmp(name, "sink"))) {
        pj_fail(c, "\"%s\" is reserved: demand, source and sink are the line's ends", name);
        return false;
    }
    for (uint32_t j = 0; j < k; j++)
        if (strcmp((const char *)arr + j * sec->size, name) == 0) {
            pj_fail(c, "duplicate key");
            return false;
        }
    if (sec->line_node && c->p->buffers && sim_plant_buffer(c->p, name) >= 0 &&
        strcmp(sec->key, "buffers") != 0) {
        pj_fail(c, "a buffer has this name too: stations and buffers share one namespace");
        return false;
    }
    return true;
}

/* Parses root's member sec->key, an object of name -> element, into a new array. */
static void *parse_map(struct pj *c, const cJSON *root, const struct section *sec, uint32_t *n_out)
{
    const cJSON *obj = pj_get(root, sec->key);
    *n_out = 0;
    if (!obj)
        return NULL;
    size_t saved = tw_jsonpath_push(&c->path, sec->key);
    int n = cJSON_GetArraySize(obj);
    unsigned char *arr = NULL;
    if (!pj_want_object(c, obj))
        goto out;
    if ((unsigned)n > sec->cap) {
        pj_fail(c, "too many %s (%d, at most %u)", sec->key, n, sec->cap);
        goto out;
    }
    arr = calloc(n > 0 ? (size_t)n : 1, sec->size);
    if (!arr) {
        c->nomem = true;
        goto out;
    }
    for (const cJSON *it = obj->child; it && !c->nomem; it = it->next) {
        size_t inner = tw_jsonpath_push(&c->path, pj_key_of(it));
        unsigned char *elem = arr + *n_out * sec->size;
        if (section_name(c, sec, pj_key_of(it), arr, *n_out)) {
            pj_copy_name((char *)elem, pj_key_of(it));
            sec->parse(c, it, elem);
            (*n_out)++;
        }
        tw_jsonpath_pop(&c->path, inner);
    }
out:
    tw_jsonpath_pop(&c->path, saved);
    return arr;
}

static const struct section buffer_section = {
    "buffers", "buffer", SIM_MAX_BUFFERS, sizeof(struct sim_buffer), true, pj_parse_buffer};
static const struct section stock_section = {
    "stocks", "stock", SIM_MAX_STOCKS, sizeof(struct sim_stock), false, pj_parse_stock};
static const struct section station_section = {
    "stations", "station", SIM_MAX_STATIONS, sizeof(struct sim_station), true, pj_parse_station};
static const struct section supplier_section = {
    "suppliers", "supplier",       SIM_MAX_SUPPLIERS, sizeof(struct sim_supplier),
    false,       pj_parse_supplier};

static bool outputs_to(const struct sim_station *s, int node)
{
    for (uint32_t k = 0; k < s->n_outputs; k++)
        if (s->outputs[k] == node)
            return true;
    return false;
}

/* Every buffer is filled by some station and emptied by some station. */
static void check_buffer_use(struct pj *c)
{
    const struct sim_plant *p = c->p;
    for (uint32_t b = 0; b < p->n_buffers; b++) {
        bool filled = false, emptied = false;
        for (uint32_t i = 0; i < p->n_stations; i++) {
            filled = filled || outputs_to(&p->stations[i], (int)b);
            emptied = emptied || p->stations[i].input == (int)b;
        }
        size_t saved = tw_jsonpath_push(&c->path, "buffers");
        size_t inner = tw_jsonpath_push(&c->path, p->buffers[b].name);
        if (!filled)
            pj_fail(c, "no station outputs to this buffer");
        if (!emptied)
            pj_fail(c, "no station takes its input from this buffer");
        tw_jsonpath_pop(&c->path, inner);
        tw_jsonpath_pop(&c->path, saved);
    }
}

/* Depth-first search over station -> buffer -> station edges; a station met again while it is
 * still on the stack closes a cycle, along which parts would circulate without end. */
struct dfs {
    unsigned char *state; /* 0 new, 1 on the stack, 2 done */
    uint32_t *stack;
    uint32_t depth;
};

static void report_cycle(struct pj *c, const struct dfs *g, uint32_t t)
{
    const struct sim_plant *p = c->p;
    char msg[TW_MODEL_MESSAGE_MAX] = "is on a cycle: ";
    uint32_t from = g->depth;
    while (from > 0 && g->stack[from - 1] != t)
        from--;
    for (uint32_t k = from > 0 ? from - 1 : 0; k < g->depth; k++) {
        size_t n = strlen(msg);
        snprintf(msg + n, sizeof msg - n, "%s -> ", p->stations[g->stack[k]].name);
    }
    size_t n = strlen(msg);
    snprintf(msg + n, sizeof msg - n, "%s", p->stations[t].name);
    size_t saved = tw_jsonpath_push(&c->path, "stations");
    size_t inner = tw_jsonpath_push(&c->path, p->stations[t].name);
    pj_fail(c, "%s", msg);
    tw_jsonpath_pop(&c->path, inner);
    tw_jsonpath_pop(&c->path, saved);
}

static void dfs_visit(struct pj *c, struct dfs *g, uint32_t s)
{
    const struct sim_plant *p = c->p;
    g->state[s] = 1;
    g->stack[g->depth++] = s;
    for (uint32_t k = 0; k < p->stations[s].n_outputs; k++) {
        int b = p->stations[s].outputs[k];
        for (uint32_t t = 0; b >= 0 && t < p->n_stations; t++) {
            if (p->stations[t].input != b)
                continue;
            if (g->state[t] == 1)
                report_cycle(c, g, t);
            else if (g->state[t] == 0)
                dfs_visit(c, g, t);
        }
    }
    g->depth--;
    g->state[s] = 2;
}

static void check_cycles(struct pj *c)
{
    uint32_t n = c->p->n_stations;
    struct dfs g = {calloc(n + 1, 1), calloc(n + 1, sizeof(uint32_t)), 0};
    if (!g.state || !g.stack)
        c->nomem = true;
    for (uint32_t s = 0; s < n && !c->nomem; s++)
        if (g.state[s] == 0)
            dfs_visit(c, &g, s);
    free(g.state);
    free(g.stack);
}

/* The line's ends: some station finishes parts; "demand" exists exactly when a station takes
 * orders from it. */
static void check_ends(struct pj *c)
{
    const struct sim_plant *p = c->p;
    bool sink = false, fed = false;
    size_t saved = tw_jsonpath_push(&c->path, "stations");
    for (uint32_t i = 0; i < p->n_stations; i++) {
        sink = sink || outputs_to(&p->stations[i], SIM_NODE_SINK);
        if (p->stations[i].input != SIM_NODE_DEMAND)
            continue;
        fed = true;
        size_t inner = tw_jsonpath_push(&c->path, p->stations[i].name);
        if (!c->has_demand)
            pj_fail_key(c, "input", "\"demand\" needs a top-level \"demand\" object");
        tw_jsonpath_pop(&c->path, inner);
    }
    if (p->stations && p->n_stations == 0)
        pj_fail(c, "must list at least one station");
    else if (p->n_stations > 0 && !sink)
        pj_fail(c, "no station outputs to \"sink\": finished parts must leave the line");
    tw_jsonpath_pop(&c->path, saved);
    if (c->has_demand && !fed)
        pj_fail_key(c, "demand", "no station takes its input from \"demand\"");
}

/* Every asset's "station" names a station (the common loader leaves that check to us). */
static void check_asset_stations(struct pj *c)
{
    size_t n = c->model && c->p->stations ? tw_model_asset_count(c->model) : 0;
    for (size_t i = 0; i < n; i++) {
        const struct tw_model_asset *a = tw_model_asset_at(c->model, i);
        if (!a->station || sim_plant_station(c->p, a->station) >= 0)
            continue;
        size_t saved = tw_jsonpath_push(&c->path, "assets");
        size_t inner = tw_jsonpath_push(&c->path, a->id);
        pj_fail_key(c, "station", "no such station in \"stations\"");
        tw_jsonpath_pop(&c->path, inner);
        tw_jsonpath_pop(&c->path, saved);
    }
}

static const char *const production_keys[] = {"stations", "buffers", "stocks",  "suppliers",
                                              "demand",   "shifts",  "routing", NULL};

static bool has_production(const cJSON *root)
{
    for (int i = 0; production_keys[i]; i++)
        if (pj_get(root, production_keys[i]))
            return true;
    return false;
}

/* "actions" and "derived" are reserved for later features: only their type is checked. */
static void check_later(struct pj *c, const cJSON *root, const char *key)
{
    const cJSON *item = pj_get(root, key);
    if (item && !cJSON_IsObject(item) && !cJSON_IsArray(item))
        pj_fail_key(c, key, "must be an object or a list (reserved for a later version)");
}

static void walk(struct pj *c, const cJSON *root)
{
    struct sim_plant *p = c->p;
    if (pj_get(root, "routing"))
        pj_fail_key(c, "routing",
                    "not used: the routing is given by each station's \"input\" and "
                    "\"output\"");
    /* Names first, whatever the key order in the file: stations and suppliers refer to them. */
    p->buffers = parse_map(c, root, &buffer_section, &p->n_buffers);
    p->stocks = parse_map(c, root, &stock_section, &p->n_stocks);
    if (pj_require(c, root, "stations"))
        p->stations = parse_map(c, root, &station_section, &p->n_stations);
    p->suppliers = parse_map(c, root, &supplier_section, &p->n_suppliers);
    p->demand.factor = 1.0;
    p->demand.backlog_cap = SIM_INFINITE_CAP;
    pj_dist_zero(&p->demand.interarrival);
    c->has_demand = pj_member(c, root, "demand", &p->demand, pj_parse_demand);
    pj_member(c, root, "shifts", &p->shifts, pj_parse_shifts);
    p->epoch = 0;
    if (c->nomem)
        return;
    check_buffer_use(c);
    check_cycles(c);
    check_ends(c);
    check_asset_stations(c);
}

static int result(const struct pj *c)
{
    return c->nomem ? TW_ENOMEM : c->n_errors > 0 ? TW_EINVAL : 0;
}

int sim_plant_parse(const char *buf, size_t len, const struct tw_model *model,
                    struct sim_plant **out, struct tw_model_errors *errs)
{
    struct pj c = {.model = model, .errs = errs};
    cJSON *root = NULL;
    *out = NULL;
    tw_jsonpath_init(&c.path);
    int rc = tw_model_parse_text(buf, len, &root, errs);
    if (rc != 0)
        return rc; /* the text's problem is in errs */
    if (!pj_want_object(&c, root))
        goto out;
    check_later(&c, root, "actions");
    check_later(&c, root, "derived");
    if (!has_production(root))
        goto out;
    c.p = calloc(1, sizeof *c.p);
    if (!c.p) {
        c.nomem = true;
        goto out;
    }
    walk(&c, root);
out:
    cJSON_Delete(root);
    rc = result(&c);
    if (rc == 0)
        *out = c.p;
    else
        sim_plant_free(c.p);
    return rc;
}

int sim_plant_load_file(const char *path, const struct tw_model *model, struct sim_plant **out,
                        struct tw_model_errors *errs)
{
    char *buf = NULL;
    size_t len = 0;
    *out = NULL;
    int rc = tw_model_read_file(path, &buf, &len, errs);
    if (rc != 0)
        return rc;
    rc = sim_plant_parse(buf, len, model, out, errs);
    free(buf);
    return rc;
}
