/* SPDX-License-Identifier: Apache-2.0 */
/* A ScenarioResult as JSON (every KPI with its intervals, the sweep's ranked variants): what
 * `twinctl scenario run --json` prints and twin-mcp returns. */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>

#include "wire.h"

bool scen_significant(const struct scn_estimate *d)
{
    return d->n >= 2 && !isnan(d->mean) && (d->lo > 0 || d->hi < 0);
}

static cJSON *json_est(const struct scn_estimate *e)
{
    cJSON *j = cJSON_CreateObject();
    cJSON_AddNumberToObject(j, "mean", e->mean);
    cJSON_AddNumberToObject(j, "lo", e->lo);
    cJSON_AddNumberToObject(j, "hi", e->hi);
    cJSON_AddNumberToObject(j, "n", e->n);
    return j;
}

static cJSON *json_kpis(const struct scn_kpi *k, size_t n)
{
    cJSON *arr = cJSON_CreateArray();
    for (size_t i = 0; i < n; i++) {
        cJSON *j = cJSON_CreateObject();
        cJSON_AddStringToObject(j, "name", k[i].name);
        cJSON_AddStringToObject(j, "unit", k[i].unit ? k[i].unit : "");
        cJSON_AddItemToObject(j, "baseline", json_est(&k[i].base));
        cJSON_AddItemToObject(j, "scenario", json_est(&k[i].scen));
        cJSON_AddItemToObject(j, "difference", json_est(&k[i].diff));
        cJSON_AddBoolToObject(j, "significant", scen_significant(&k[i].diff));
        cJSON_AddItemToArray(arr, j);
    }
    return arr;
}

static cJSON *json_variants(const struct scen_outcome *o)
{
    cJSON *arr = cJSON_CreateArray();
    for (size_t i = 0; o->r && i < o->r->n_variants; i++) {
        const struct scn_variant *v = &o->r->variants[i];
        cJSON *j = cJSON_CreateObject(), *values = cJSON_CreateObject();
        cJSON_AddNumberToObject(j, "rank", (double)(i + 1));
        for (size_t p = 0; p < o->n_sweep_params; p++)
            cJSON_AddNumberToObject(values, o->sweep_params[p], v->values[p]);
        cJSON_AddItemToObject(j, "values", values);
        cJSON_AddNumberToObject(j, "objective", v->objective);
        cJSON_AddNumberToObject(j, "cost", v->cost);
        cJSON_AddBoolToObject(j, "feasible", v->feasible);
        cJSON_AddItemToObject(j, "kpis", json_kpis(v->kpis, v->n_kpis));
        cJSON_AddItemToArray(arr, j);
    }
    return arr;
}

cJSON *scen_outcome_json(const struct scen_outcome *o)
{
    cJSON *j = cJSON_CreateObject();
    if (!j)
        return NULL;
    cJSON_AddStringToObject(j, "id", o->id);
    cJSON_AddStringToObject(j, "name", o->name ? o->name : "");
    cJSON_AddStringToObject(j, "status", scen_status_word(o->status));
    cJSON_AddStringToObject(j, "error", o->error ? o->error : "");
    cJSON_AddNumberToObject(j, "replications", o->replications);
    cJSON_AddNumberToObject(j, "horizon_ms", (double)o->horizon_ms);
    cJSON_AddNumberToObject(j, "warmup_ms", (double)o->warmup_ms);
    char seed[24]; /* a string: a double would round seeds above 2^53 */
    snprintf(seed, sizeof(seed), "%llu", (unsigned long long)o->seed);
    cJSON_AddStringToObject(j, "seed", seed);
    cJSON_AddNumberToObject(j, "snapshot_ms", (double)o->snapshot_ms);
    cJSON_AddNumberToObject(j, "events", o->r ? (double)o->r->events : 0);
    cJSON_AddNumberToObject(j, "wall_ms", (double)o->wall_ms);
    cJSON_AddNumberToObject(j, "finished_ms", (double)o->finished_ms);
    cJSON_AddItemToObject(j, "kpis", json_kpis(o->r ? o->r->kpis : NULL, o->r ? o->r->n_kpis : 0));
    cJSON *params = cJSON_CreateArray();
    for (size_t p = 0; p < o->n_sweep_params; p++)
        cJSON_AddItemToArray(params, cJSON_CreateString(o->sweep_params[p]));
    cJSON_AddItemToObject(j, "sweep_parameters", params);
    cJSON_AddNumberToObject(j, "variants_total", o->r ? o->r->variants_total : 0);
    cJSON_AddNumberToObject(j, "variants_feasible", o->r ? o->r->variants_feasible : 0);
    cJSON_AddItemToObject(j, "variants", json_variants(o));
    return j;
}
