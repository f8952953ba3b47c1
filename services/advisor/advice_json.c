/* SPDX-License-Identifier: Apache-2.0 */
/* A Recommendation as JSON: its fields, the chosen action, and every option with its objective,
 * effect and KPIs, as numbers (NaN as null). */
#include "advice_json.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdbool.h>

#include "twin/v1/twin.pb-c.h"

static void number(cJSON *o, const char *name, double v)
{
    if (isfinite(v))
        cJSON_AddNumberToObject(o, name, v);
    else
        cJSON_AddNullToObject(o, name);
}

static cJSON *estimate(const Twin__V1__Estimate *e)
{
    cJSON *o = cJSON_CreateObject();
    if (!o || !e)
        return o;
    number(o, "mean", e->mean);
    number(o, "lo", e->lo);
    number(o, "hi", e->hi);
    cJSON_AddNumberToObject(o, "n", e->n);
    return o;
}

static cJSON *action(const Twin__V1__Action *a)
{
    cJSON *o = cJSON_CreateObject();
    if (!o)
        return NULL;
    cJSON_AddStringToObject(o, "kind", a ? a->kind : "none");
    cJSON_AddStringToObject(o, "label", a ? a->label : "");
    number(o, "start_ms", a ? (double)a->start_ms : 0);
    number(o, "duration_ms", a ? (double)a->duration_ms : 0);
    if (a && a->setpoint != 0)
        number(o, "setpoint", a->setpoint);
    return o;
}

static cJSON *option(const Twin__V1__ActionOption *x)
{
    cJSON *o = cJSON_CreateObject();
    if (!o)
        return NULL;
    cJSON_AddNumberToObject(o, "rank", x->rank);
    cJSON_AddItemToObject(o, "action", action(x->action));
    cJSON_AddItemToObject(o, "objective", estimate(x->objective));
    cJSON_AddItemToObject(o, "effect", estimate(x->effect));
    cJSON *kpis = cJSON_AddArrayToObject(o, "kpis");
    for (size_t k = 0; kpis && k < x->n_kpis; k++) {
        const Twin__V1__Kpi *q = x->kpis[k];
        cJSON *j = cJSON_CreateObject();
        if (!j)
            break;
        cJSON_AddStringToObject(j, "name", q->name);
        cJSON_AddStringToObject(j, "unit", q->unit);
        cJSON_AddItemToObject(j, "without", estimate(q->baseline));
        cJSON_AddItemToObject(j, "with", estimate(q->scenario));
        cJSON_AddItemToObject(j, "difference", estimate(q->difference));
        cJSON_AddItemToArray(kpis, j);
    }
    return o;
}

cJSON *adv_recommendation_json(const uint8_t *buf, size_t len)
{
    Twin__V1__Recommendation *r = twin__v1__recommendation__unpack(NULL, len, buf);
    if (!r)
        return NULL;
    cJSON *j = cJSON_CreateObject();
    if (j) {
        bool ok = r->status == TWIN__V1__RECOMMENDATION__STATUS__OK;
        cJSON_AddStringToObject(j, "id", r->id);
        cJSON_AddStringToObject(j, "asset_id", r->asset_id);
        cJSON_AddStringToObject(j, "status", ok ? "ok" : "error");
        cJSON_AddStringToObject(j, "error", r->error);
        cJSON_AddStringToObject(j, "trigger", r->trigger);
        cJSON_AddStringToObject(j, "request_id", r->request_id);
        cJSON_AddStringToObject(j, "signal", r->signal);
        number(j, "ts_ms", (double)r->ts_ms);
        number(j, "created_ms", (double)r->created_ms);
        cJSON_AddItemToObject(j, "action", action(r->action));
        cJSON_AddStringToObject(j, "decision", r->decision);
        cJSON_AddStringToObject(j, "command_id", r->command_id);
        cJSON_AddStringToObject(j, "why", r->why);
        cJSON_AddStringToObject(j, "objective", r->objective);
        cJSON_AddBoolToObject(j, "maximize", r->maximize);
        number(j, "horizon_hours", (double)r->horizon_ms / 3600000.0);
        cJSON_AddNumberToObject(j, "replications", r->replications);
        cJSON *opts = cJSON_AddArrayToObject(j, "options");
        for (size_t i = 0; opts && i < r->n_options; i++)
            cJSON_AddItemToArray(opts, option(r->options[i]));
    }
    twin__v1__recommendation__free_unpacked(r, NULL);
    return j;
}
