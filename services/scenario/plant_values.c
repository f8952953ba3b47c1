/* SPDX-License-Identifier: Apache-2.0 */
/* The production parser's value readers: numbers, names, durations, times of day,
 * distributions and curves, each reporting a problem at the JSON path of the value. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "plant_json_internal.h"

/* Durations as numbers have the text form's limit too (tw_model_parse_duration: 366 days). */
#define MAX_DURATION_S ((double)TW_MODEL_SEASON_MAX_MS / 1000.0)

/* ---- generic readers ------------------------------------------------------------------- */

bool pj_want_object(struct pj *c, const cJSON *item)
{
    if (cJSON_IsObject(item))
        return true;
    pj_fail(c, "must be an object");
    return false;
}

/* Reports members of obj that allowed (NULL-terminated, at most 15 keys) does not list, and
 * repeated ones. "description" is allowed everywhere and never looked at (free text). */
void pj_check_keys(struct pj *c, const cJSON *obj, const char *const *allowed)
{
    unsigned seen[16] = {0};
    for (const cJSON *it = obj->child; it; it = it->next) {
        const char *k = pj_key_of(it);
        int i = 0;
        while (allowed[i] && strcmp(allowed[i], k) != 0)
            i++;
        if (!allowed[i] && strcmp(k, "description") != 0)
            pj_fail_key(c, k, "unknown key");
        else if (seen[i]++ == 1)
            pj_fail_key(c, k, "duplicate key");
    }
}

/* Reports `missing "key"` at obj's path when obj has no such member. */
bool pj_require(struct pj *c, const cJSON *obj, const char *key)
{
    if (pj_get(obj, key))
        return true;
    pj_fail(c, "missing \"%s\"", key);
    return false;
}

/* Runs fn on obj's member key, when present, with the path pointing at it. */
bool pj_member(struct pj *c, const cJSON *obj, const char *key, void *ctx,
               void (*fn)(struct pj *, const cJSON *, void *))
{
    const cJSON *item = pj_get(obj, key);
    if (!item)
        return false;
    size_t saved = tw_jsonpath_push(&c->path, key);
    fn(c, item, ctx);
    tw_jsonpath_pop(&c->path, saved);
    return true;
}

static const char *const range_text[] = {
    "must be a number",
    "must be a number >= 0",
    "must be a number > 0",
    "must be a number from 0 up to (not including) 1",
    "must be a probability: above 0, at most 1",
};

static bool in_range(double x, enum pj_range r)
{
    switch (r) {
    case PJ_GE0:
        return x >= 0;
    case PJ_GT0:
        return x > 0;
    case PJ_FRACTION:
        return x >= 0 && x < 1;
    case PJ_PROB:
        return x > 0 && x <= 1;
    default:
        return true;
    }
}

/* obj's member key as a number in range r. *out is written only when the member is present and
 * valid; returns whether it was. */
bool pj_get_real(struct pj *c, const cJSON *obj, const char *key, enum pj_range r, double *out)
{
    const cJSON *item = pj_get(obj, key);
    if (!item)
        return false;
    if (cJSON_IsNumber(item) && isfinite(item->valuedouble) && in_range(item->valuedouble, r)) {
        *out = item->valuedouble;
        return true;
    }
    pj_fail_key(c, key, "%s", range_text[r]);
    return false;
}

bool pj_get_count(struct pj *c, const cJSON *obj, const char *key, uint32_t min, uint32_t max,
                  uint32_t *out)
{
    const cJSON *item = pj_get(obj, key);
    if (!item)
        return false;
    double v = cJSON_IsNumber(item) ? item->valuedouble : -1;
    if (v >= min && v <= max && v == floor(v)) {
        *out = (uint32_t)v;
        return true;
    }
    pj_fail_key(c, key, "must be an integer from %u to %u", min, max);
    return false;
}

void pj_get_bool(struct pj *c, const cJSON *obj, const char *key, bool *out)
{
    const cJSON *item = pj_get(obj, key);
    if (!item)
        return;
    if (cJSON_IsBool(item))
        *out = cJSON_IsTrue(item);
    else
        pj_fail_key(c, key, "must be true or false");
}

/* obj's member key as the index of one of choices (NULL-terminated); dflt when absent, -1 when
 * it is none of them. */
int pj_get_choice(struct pj *c, const cJSON *obj, const char *key, const char *const *choices,
                  int dflt)
{
    const cJSON *item = pj_get(obj, key);
    if (!item)
        return dflt;
    char list[TW_MODEL_MESSAGE_MAX] = "";
    for (int i = 0; choices[i]; i++) {
        if (cJSON_IsString(item) && strcmp(item->valuestring, choices[i]) == 0)
            return i;
        size_t n = strlen(list);
        snprintf(list + n, sizeof list - n, "%s\"%s\"", i ? " or " : "", choices[i]);
    }
    pj_fail_key(c, key, "must be %s", list);
    return -1;
}

/* Copies a name already checked to be at most SIM_NAME_MAX bytes. */
void pj_copy_name(char *dst, const char *src)
{
    size_t n = strnlen(src, SIM_NAME_MAX);
    memcpy(dst, src, n);
    dst[n] = '\0';
}

/* obj's member key as a name of 1-64 characters of [A-Za-z0-9._-], copied to out. */
bool pj_get_name(struct pj *c, const cJSON *obj, const char *key, char *out, const char *what)
{
    const cJSON *item = pj_get(obj, key);
    if (!item)
        return false;
    if (cJSON_IsString(item) && tw_valid_asset_id(item->valuestring, strlen(item->valuestring))) {
        pj_copy_name(out, item->valuestring);
        return true;
    }
    pj_fail_key(c, key, "must be %s: 1-64 characters of [A-Za-z0-9._-]", what);
    return false;
}

bool pj_get_signal(struct pj *c, const cJSON *obj, const char *key, char *out)
{
    const cJSON *item = pj_get(obj, key);
    if (!item)
        return false;
    if (cJSON_IsString(item) && tw_valid_signal(item->valuestring, strlen(item->valuestring))) {
        pj_copy_name(out, item->valuestring);
        return true;
    }
    pj_fail_key(c, key,
                "must be a signal name: 1-64 characters of [A-Za-z0-9._:/-], not starting "
                "with '_'");
    return false;
}

/* ---- durations, times of day, distributions, curves ------------------------------------ */

/* tw_model_parse_duration refuses zero (a season cannot be 0); zero is read here. */
static bool zero_text(const char *s)
{
    static const char *const zeros[] = {"0", "0s", "0ms", "0m", "0h", "0d", "0w"};
    for (size_t i = 0; i < sizeof zeros / sizeof zeros[0]; i++)
        if (strcmp(s, zeros[i]) == 0)
            return true;
    return false;
}

/* A duration in seconds: a number, or text such as "45s", "8h" or "1h30m". */
static bool item_duration(struct pj *c, const cJSON *item, bool zero_ok, double *out)
{
    double s = -1;
    int64_t ms = 0;
    if (cJSON_IsNumber(item))
        s = item->valuedouble;
    else if (cJSON_IsString(item) && zero_text(item->valuestring))
        s = 0;
    else if (cJSON_IsString(item) && tw_model_parse_duration(item->valuestring, &ms) == 0)
        s = (double)ms / 1000.0;
    if (isfinite(s) && s <= MAX_DURATION_S && (zero_ok ? s >= 0 : s > 0)) {
        *out = s;
        return true;
    }
    pj_fail(c,
            "must be a duration %s: seconds, or text such as \"45s\", \"8h\", \"1h30m\" (units ms "
            "s m h d w, at most 366d)",
            zero_ok ? ">= 0" : "> 0");
    return false;
}

bool pj_get_duration(struct pj *c, const cJSON *obj, const char *key, bool zero_ok, double *out)
{
    const cJSON *item = pj_get(obj, key);
    if (!item)
        return false;
    size_t saved = tw_jsonpath_push(&c->path, key);
    bool ok = item_duration(c, item, zero_ok, out);
    tw_jsonpath_pop(&c->path, saved);
    return ok;
}

/* A time into a calendar period: "HH:MM" (00:00 to 24:00) or a duration (>= 0). */
bool pj_item_clock(struct pj *c, const cJSON *item, double *out)
{
    if (!cJSON_IsString(item) || !strchr(item->valuestring, ':'))
        return item_duration(c, item, true, out);
    const char *s = item->valuestring;
    unsigned h = 0, m = 0;
    bool ok = strlen(s) == 5 && s[2] == ':';
    for (int i = 0; ok && i < 5; i++)
        ok = i == 2 || (s[i] >= '0' && s[i] <= '9');
    if (ok) {
        h = (unsigned)(s[0] - '0') * 10 + (unsigned)(s[1] - '0');
        m = (unsigned)(s[3] - '0') * 10 + (unsigned)(s[4] - '0');
        ok = m < 60 && (h < 24 || (h == 24 && m == 0));
    }
    if (!ok) {
        pj_fail(c,
                "must be a time of day \"HH:MM\" (00:00 to 24:00) or a duration into the period");
        return false;
    }
    *out = h * 3600.0 + m * 60.0;
    return true;
}

struct dist_shape {
    const char *name;
    enum sim_dist_kind kind;
    const char *keys[5]; /* "dist", then the parameters a, b, c; NULL-terminated */
};

static const struct dist_shape dist_shapes[] = {
    {"fixed", SIM_DIST_FIXED, {"dist", "value", NULL}},
    {"exp", SIM_DIST_EXP, {"dist", "mean", NULL}},
    {"uniform", SIM_DIST_UNIFORM, {"dist", "min", "max", NULL}},
    {"triangular", SIM_DIST_TRIANGULAR, {"dist", "min", "mode", "max", NULL}},
    {"normal", SIM_DIST_NORMAL, {"dist", "mean", "sd", NULL}},
    {"lognormal", SIM_DIST_LOGNORMAL, {"dist", "mean", "sd", NULL}},
    {"weibull", SIM_DIST_WEIBULL, {"dist", "shape", "scale", NULL}},
};

#define N_SHAPES (sizeof dist_shapes / sizeof dist_shapes[0])

static bool finish_dist(struct pj *c, struct sim_dist *d)
{
    const char *why = "invalid parameters";
    if (sim_dist_finish(d, &why))
        return true;
    pj_fail(c, "%s", why);
    return false;
}

void pj_dist_zero(struct sim_dist *d)
{
    memset(d, 0, sizeof *d);
    d->kind = SIM_DIST_FIXED;
    sim_dist_finish(d, NULL);
}

/* {"dist": "<shape>", <its parameters as durations>}. */
static bool dist_object(struct pj *c, const cJSON *obj, struct sim_dist *d)
{
    const cJSON *kind = pj_get(obj, "dist");
    const struct dist_shape *shape = NULL;
    for (size_t i = 0; i < N_SHAPES && cJSON_IsString(kind); i++)
        if (strcmp(kind->valuestring, dist_shapes[i].name) == 0)
            shape = &dist_shapes[i];
    if (!shape) {
        if (!kind)
            pj_fail(c, "missing \"dist\"");
        else
            pj_fail_key(c, "dist",
                        "must be one of fixed, exp, uniform, triangular, normal, "
                        "lognormal, weibull");
        return false;
    }
    pj_check_keys(c, obj, shape->keys);
    double v[3] = {0, 0, 0};
    bool ok = true;
    for (int i = 0; shape->keys[i + 1]; i++) {
        const char *key = shape->keys[i + 1];
        if (strcmp(key, "shape") == 0) /* a plain number, not a duration */
            ok = pj_require(c, obj, key) && pj_get_real(c, obj, key, PJ_GT0, &v[i]) && ok;
        else
            ok = pj_require(c, obj, key) && pj_get_duration(c, obj, key, true, &v[i]) && ok;
    }
    if (!ok)
        return false;
    memset(d, 0, sizeof *d);
    d->kind = shape->kind;
    d->a = v[0];
    d->b = v[1];
    d->c = v[2];
    return finish_dist(c, d);
}

/* A distribution: an object, or a plain duration meaning `plain` with that value (FIXED: the
 * value, EXP: the mean). */
static bool item_dist(struct pj *c, const cJSON *item, enum sim_dist_kind plain, struct sim_dist *d)
{
    if (cJSON_IsObject(item))
        return dist_object(c, item, d);
    if (!cJSON_IsNumber(item) && !cJSON_IsString(item)) {
        pj_fail(c, "must be a duration or a distribution such as {\"dist\": \"exp\", \"mean\": "
                   "\"8h\"}");
        return false;
    }
    double v;
    if (!item_duration(c, item, true, &v))
        return false;
    memset(d, 0, sizeof *d);
    d->kind = plain;
    d->a = v;
    return finish_dist(c, d);
}

/* A time whose mean must be positive (cycle, time to failure, inter-arrival): a zero one
 * would repeat for ever at one instant. */
bool pj_get_dist(struct pj *c, const cJSON *obj, const char *key, enum sim_dist_kind plain,
                 bool positive, struct sim_dist *d)
{
    const cJSON *item = pj_get(obj, key);
    if (!item)
        return false;
    size_t saved = tw_jsonpath_push(&c->path, key);
    bool ok = item_dist(c, item, plain, d);
    if (ok && positive && !(d->mean > 0)) {
        pj_fail(c, "must have a mean > 0");
        ok = false;
    }
    tw_jsonpath_pop(&c->path, saved);
    return ok;
}

/* [[x, factor], ...]: 2 to SIM_MAX_WEAR_PTS points, x strictly increasing, factors > 0. */
/* A piecewise-linear curve of signal values to factors (> 0) or, with ages, to durations
 * (>= 0, never decreasing: more wear is never a younger machine). */
static void parse_curve(struct pj *c, const cJSON *item, struct sim_curve *curve, bool ages)
{
    const char *point = ages ? "[value, age]" : "[value, factor]";
    int n = cJSON_GetArraySize(item);
    if (!cJSON_IsArray(item) || n < 2 || (unsigned)n > SIM_MAX_WEAR_PTS) {
        pj_fail(c, "must be a list of 2 to %u points %s", SIM_MAX_WEAR_PTS, point);
        return;
    }
    bool ok = true;
    int i = 0;
    for (const cJSON *pt = item->child; pt && i < n; pt = pt->next, i++) {
        size_t saved = tw_jsonpath_push_index(&c->path, i);
        const cJSON *x = cJSON_GetArrayItem(pt, 0), *f = cJSON_GetArrayItem(pt, 1);
        double y = NAN;
        if (!cJSON_IsArray(pt) || cJSON_GetArraySize(pt) != 2 || !cJSON_IsNumber(x) ||
            !isfinite(x->valuedouble)) {
            pj_fail(c, "must be %s with a finite number as value", point);
            ok = false;
        } else if (ages) {
            size_t at = tw_jsonpath_push_index(&c->path, 1);
            ok = item_duration(c, f, true, &y) && ok;
            tw_jsonpath_pop(&c->path, at);
        } else if (!cJSON_IsNumber(f) || !(f->valuedouble > 0) || !isfinite(f->valuedouble)) {
            pj_fail(c, "must be [value, factor]: finite numbers, factor > 0");
            ok = false;
        } else {
            y = f->valuedouble;
        }
        if (ok && i > 0 && !(x->valuedouble > curve->x[i - 1])) {
            pj_fail(c, "value must be greater than the previous point's (%.17g)", curve->x[i - 1]);
            ok = false;
        } else if (ok && ages && i > 0 && y < curve->y[i - 1]) {
            pj_fail(c, "age must not be less than the previous point's (%.17g s)", curve->y[i - 1]);
            ok = false;
        } else if (ok) {
            curve->x[i] = x->valuedouble;
            curve->y[i] = y;
        }
        tw_jsonpath_pop(&c->path, saved);
    }
    curve->n = ok ? (uint32_t)n : 0;
}

void pj_parse_curve(struct pj *c, const cJSON *item, void *ctx)
{
    parse_curve(c, item, ctx, false);
}

void pj_parse_age_curve(struct pj *c, const cJSON *item, void *ctx)
{
    parse_curve(c, item, ctx, true);
}
