/* SPDX-License-Identifier: Apache-2.0 */
/* twin-mcp's resources: the plant model file (twin://plant) and one document per asset
 * (twin://asset/{asset}: what the plant model says of it, its state and its forecast). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mcp.h"
#include "twin/model.h"
#include "twin/store.h"
#include "twin/validate.h"

#define PLANT_URI    "twin://plant"
#define ASSET_PREFIX "twin://asset/"
#define LIST_MAX     10000 /* assets listed at most; the rest are reachable by the template */

static void add_resource(cJSON *out, const char *uri, const char *name, const char *title,
                         const char *description)
{
    cJSON *r = cJSON_CreateObject();
    cJSON_AddStringToObject(r, "uri", uri);
    cJSON_AddStringToObject(r, "name", name);
    cJSON_AddStringToObject(r, "title", title);
    cJSON_AddStringToObject(r, "description", description);
    cJSON_AddStringToObject(r, "mimeType", "application/json");
    cJSON_AddItemToArray(out, r);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static int res_list(void *ctx, cJSON *out, char *err, size_t errlen)
{
    struct mcp_twin *t = ctx;
    if (t->model_text)
        add_resource(out, PLANT_URI, "plant", "Plant model",
                     "The plant model (JSON): asset kinds with their signals, units and "
                     "warn/alarm limits, the assets, and the production line the scenarios "
                     "simulate (stations, buffers, suppliers, demand).");
    const char *argv[] = {"SMEMBERS", "twin:assets"};
    struct tw_reply *r = NULL;
    if (tw_store_command(t->store, &r, 2, argv, NULL) < 0) {
        snprintf(err, errlen, "the twin's store (Redis) is unreachable: %s",
                 tw_store_last_error(t->store));
        return -1;
    }
    const char **ids = calloc(r->n + 1, sizeof(*ids));
    size_t n = 0;
    for (size_t i = 0; ids && r->type == TW_REPLY_ARRAY && i < r->n; i++)
        if (r->elem[i].type == TW_REPLY_STR)
            ids[n++] = r->elem[i].str;
    if (n > 1)
        qsort(ids, n, sizeof(*ids), cmp_str);
    for (size_t i = 0; i < n && i < LIST_MAX; i++) {
        char uri[sizeof(ASSET_PREFIX) + TW_NAME_MAX];
        snprintf(uri, sizeof(uri), ASSET_PREFIX "%s", ids[i]);
        add_resource(out, uri, ids[i], ids[i],
                     "The asset: its kind, signals, units and limits from the plant model, its "
                     "current state and its latest forecast.");
    }
    free(ids);
    tw_store_replies_free(r, 1);
    return 0;
}

/* The plant model's description of the asset, or NULL when it does not list it. */
static cJSON *asset_model(const struct tw_model *m, const char *id)
{
    const struct tw_model_asset *a = m ? tw_model_asset(m, id) : NULL;
    if (!a)
        return NULL;
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "kind", a->kind->name);
    if (a->description)
        cJSON_AddStringToObject(o, "description", a->description);
    if (a->station)
        cJSON_AddStringToObject(o, "station", a->station);
    cJSON *sigs = cJSON_AddObjectToObject(o, "signals");
    for (size_t i = 0; i < a->kind->n_signals; i++) {
        const struct tw_model_signal *s = &a->kind->signals[i];
        mcp_signal_limits(cJSON_AddObjectToObject(sigs, s->name), s);
    }
    return o;
}

/* A tool's structured answer for the asset, or null when it has none. */
static cJSON *tool_answer(void *ctx, const char *tool, const char *id, int points)
{
    cJSON *args = cJSON_CreateObject(), *out = NULL;
    char err[256];
    cJSON_AddStringToObject(args, "asset", id);
    if (points > 0)
        cJSON_AddNumberToObject(args, "points", points);
    for (size_t i = 0; i < mcp_twin_n_tools; i++)
        if (strcmp(mcp_twin_tools[i].name, tool) == 0 &&
            mcp_twin_tools[i].call(ctx, args, &out, err, sizeof(err)) < 0)
            out = NULL;
    cJSON_Delete(args);
    return out ? out : cJSON_CreateNull();
}

static void add_contents(cJSON *out, const char *uri, const char *text)
{
    cJSON *c = cJSON_CreateObject();
    cJSON_AddStringToObject(c, "uri", uri);
    cJSON_AddStringToObject(c, "mimeType", "application/json");
    cJSON_AddStringToObject(c, "text", text);
    cJSON_AddItemToArray(out, c);
}

static int res_read(void *ctx, const char *uri, cJSON *out, char *err, size_t errlen)
{
    struct mcp_twin *t = ctx;
    if (strcmp(uri, PLANT_URI) == 0) {
        if (!t->model_text)
            return MCP_RESOURCE_NOT_FOUND;
        add_contents(out, uri, t->model_text);
        return 0;
    }
    size_t plen = strlen(ASSET_PREFIX);
    const char *id = uri + plen;
    if (strncmp(uri, ASSET_PREFIX, plen) != 0 || !tw_valid_asset_id(id, strlen(id)))
        return MCP_RESOURCE_NOT_FOUND;
    cJSON *doc = cJSON_CreateObject();
    cJSON_AddStringToObject(doc, "asset", id);
    cJSON *model = asset_model(t->model, id);
    cJSON_AddItemToObject(doc, "model", model ? model : cJSON_CreateNull());
    cJSON *state = tool_answer(ctx, "get_state", id, 0);
    bool known = !cJSON_IsNull(state) || model;
    cJSON_AddItemToObject(doc, "state", state);
    cJSON_AddItemToObject(doc, "prediction", tool_answer(ctx, "get_prediction", id, 3));
    if (!known) { /* neither in the model nor ever heard of (or Redis is down: say so) */
        cJSON_Delete(doc);
        if (!tw_store_is_connected(t->store)) {
            snprintf(err, errlen, "the twin's store (Redis) is unreachable: %s",
                     tw_store_last_error(t->store));
            return -1;
        }
        return MCP_RESOURCE_NOT_FOUND;
    }
    mcp_exact_numbers(doc);
    char *text = cJSON_PrintUnformatted(doc);
    cJSON_Delete(doc);
    if (!text) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    add_contents(out, uri, text);
    cJSON_free(text);
    return 0;
}

const struct mcp_resources_api mcp_twin_resources = {
    .list = res_list,
    .read = res_read,
    .templates = "[{\"uriTemplate\":\"twin://asset/{asset}\",\"name\":\"asset\",\"title\":"
                 "\"An asset of the twin\",\"description\":\"One asset by id (list_assets gives "
                 "them): its kind, signals, units and limits from the plant model, its current "
                 "state and its latest forecast.\",\"mimeType\":\"application/json\"}]",
};
