/* SPDX-License-Identifier: Apache-2.0 */
/* What the files of the production part's parser share: the walk's state, error reporting,
 * the value readers (plant_values.c) and the section parsers (plant_stations.c,
 * plant_sections.c); plant_json.c drives them. */
#ifndef TWIN_SCENARIO_PLANT_JSON_INTERNAL_H
#define TWIN_SCENARIO_PLANT_JSON_INTERNAL_H

/*
 * plant_json.c parses the text, hands each member of a top-level section ("stations": name ->
 * object, ...) to that section's parser, then checks the line as a whole. Every function here
 * reports a problem at the JSON path of the value it looks at (c->path), which the caller has
 * pointed at that value; the get_ readers look up a member of obj themselves and report at
 * that member. None of them stops at the first problem: the parser lists them all.
 */

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stdint.h>

#include "plant.h"
#include "twin/jsonpath.h"
#include "twin/model.h"
#include "twin/validate.h"

#define PJ_MAX_PARTS 1000000u /* a buffer's capacity or content, a backlog, a setup interval */

_Static_assert(SIM_NAME_MAX == TW_NAME_MAX, "plant names follow the asset-id rule");

/* The walk's state. */
struct pj {
    struct sim_plant *p;          /* being filled; NULL until the file has production keys */
    const struct tw_model *model; /* NULL: no asset is checked or assigned */
    struct tw_model_errors *errs; /* may be NULL */
    long n_errors;                /* problems found, whether or not errs stored them */
    bool nomem;
    bool has_demand;         /* the file has a top-level "demand" */
    struct tw_jsonpath path; /* of the value being read */
};

/* ---- reporting (plant_json.c) ------------------------------------------------------------ */

/* Reports a problem at c->path. One that errs already stores with the same path and message (a
 * duplicate key the common loader reported first) is counted but not stored again. */
void pj_fail(struct pj *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Reports a problem at the member `key` of the value c->path points at. */
void pj_fail_key(struct pj *c, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* ---- generic readers (plant_values.c) ---------------------------------------------------- */

static inline const char *pj_key_of(const cJSON *item)
{
    return item->string ? item->string : "";
}

static inline const cJSON *pj_get(const cJSON *obj, const char *key)
{
    return cJSON_GetObjectItemCaseSensitive(obj, key);
}

/* Reports "must be an object" unless item is one. */
bool pj_want_object(struct pj *c, const cJSON *item);

/* Reports members of obj that allowed (NULL-terminated, at most 15 keys) does not list, and
 * repeated ones. "description" is allowed everywhere and never looked at (free text). */
void pj_check_keys(struct pj *c, const cJSON *obj, const char *const *allowed);

/* Reports `missing "key"` at obj's path when obj has no such member. */
bool pj_require(struct pj *c, const cJSON *obj, const char *key);

/* Runs fn on obj's member key, when present, with the path pointing at it; returns whether it
 * was present. */
bool pj_member(struct pj *c, const cJSON *obj, const char *key, void *ctx,
               void (*fn)(struct pj *, const cJSON *, void *));

enum pj_range { PJ_ANY, PJ_GE0, PJ_GT0, PJ_FRACTION, PJ_PROB };

/* obj's member key as a number in range r. *out is written only when the member is present and
 * valid; returns whether it was. */
bool pj_get_real(struct pj *c, const cJSON *obj, const char *key, enum pj_range r, double *out);

/* obj's member key as an integer from min to max; as pj_get_real otherwise. */
bool pj_get_count(struct pj *c, const cJSON *obj, const char *key, uint32_t min, uint32_t max,
                  uint32_t *out);

/* obj's member key as true or false; *out is left alone when it is absent or not a bool. */
void pj_get_bool(struct pj *c, const cJSON *obj, const char *key, bool *out);

/* obj's member key as the index of one of choices (NULL-terminated); dflt when absent, -1 when
 * it is none of them. */
int pj_get_choice(struct pj *c, const cJSON *obj, const char *key, const char *const *choices,
                  int dflt);

/* Copies a name already checked to be at most SIM_NAME_MAX bytes. */
void pj_copy_name(char *dst, const char *src);

/* obj's member key as a name of 1-64 characters of [A-Za-z0-9._-], copied to out (at least
 * SIM_NAME_MAX + 1 bytes); `what` names it in the message ("a stock name"). */
bool pj_get_name(struct pj *c, const cJSON *obj, const char *key, char *out, const char *what);

/* obj's member key as a signal name (tw_valid_signal), copied to out. */
bool pj_get_signal(struct pj *c, const cJSON *obj, const char *key, char *out);

/* ---- durations, times of day, distributions, curves (plant_values.c) --------------------- */

/* obj's member key as a duration in seconds: a number, or text such as "45s", "8h" or "1h30m",
 * at most 366 days; zero allowed only when zero_ok. */
bool pj_get_duration(struct pj *c, const cJSON *obj, const char *key, bool zero_ok, double *out);

/* A time into a calendar period: "HH:MM" (00:00 to 24:00) or a duration (>= 0). */
bool pj_item_clock(struct pj *c, const cJSON *item, double *out);

/* A finished distribution that is always 0, the default of every optional time. */
void pj_dist_zero(struct sim_dist *d);

/* obj's member key as a distribution: {"dist": "<shape>", <its parameters as durations>}, or a
 * plain duration meaning `plain` with that value (FIXED: the value, EXP: the mean). With
 * `positive` the mean must be > 0 (cycle, time to failure, inter-arrival: a zero one would
 * repeat for ever at one instant). */
bool pj_get_dist(struct pj *c, const cJSON *obj, const char *key, enum sim_dist_kind plain,
                 bool positive, struct sim_dist *d);

/* pj_member callbacks filling the struct sim_curve at ctx from [[x, factor], ...] (factors > 0)
 * or [[x, age], ...] (durations, never decreasing): 2 to SIM_MAX_WEAR_PTS points, x strictly
 * increasing; n = 0 when invalid. */
void pj_parse_curve(struct pj *c, const cJSON *item, void *ctx);
void pj_parse_age_curve(struct pj *c, const cJSON *item, void *ctx);

/* ---- the sections -------------------------------------------------------------------------- */

/* One element of a name -> object section: obj is the object, elem the element whose name the
 * caller has already set (plant_stations.c, plant_sections.c). Stations refer to buffers and
 * stocks, suppliers to stocks: those must be parsed first. */
void pj_parse_station(struct pj *c, const cJSON *obj, void *elem);
void pj_parse_buffer(struct pj *c, const cJSON *obj, void *elem);
void pj_parse_stock(struct pj *c, const cJSON *obj, void *elem);
void pj_parse_supplier(struct pj *c, const cJSON *obj, void *elem);

/* The top-level "demand" and "shifts" objects, as pj_member callbacks filling the
 * struct sim_demand / struct sim_shifts at ctx (plant_sections.c). */
void pj_parse_demand(struct pj *c, const cJSON *obj, void *ctx);
void pj_parse_shifts(struct pj *c, const cJSON *obj, void *ctx);

#endif
