/* SPDX-License-Identifier: Apache-2.0 */
/* Checks a tool call's arguments against the tool's JSON Schema, for the small subset the
 * twin's tools declare, so that what the schema promises and what the tool accepts agree. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "mcp.h"

__attribute__((format(printf, 3, 4))) static int fail(char *err, size_t errlen, const char *fmt,
                                                      ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return -1;
}

static bool type_is(const cJSON *schema, const char *type)
{
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(schema, "type");
    return cJSON_IsString(t) && strcmp(t->valuestring, type) == 0;
}

static int check_number(const char *name, const cJSON *schema, const cJSON *v, bool integer,
                        char *err, size_t errlen)
{
    if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble))
        return fail(err, errlen, "\"%s\" must be %s", name, integer ? "an integer" : "a number");
    if (integer && (v->valuedouble != floor(v->valuedouble) || fabs(v->valuedouble) > 9.0e15))
        return fail(err, errlen, "\"%s\" must be %s", name, "a whole number");
    const cJSON *lo = cJSON_GetObjectItemCaseSensitive(schema, "minimum");
    const cJSON *hi = cJSON_GetObjectItemCaseSensitive(schema, "maximum");
    char bound[64];
    if (cJSON_IsNumber(lo) && v->valuedouble < lo->valuedouble) {
        snprintf(bound, sizeof(bound), "%.17g", lo->valuedouble);
        return fail(err, errlen, "\"%s\" must be at least %s", name, bound);
    }
    if (cJSON_IsNumber(hi) && v->valuedouble > hi->valuedouble) {
        snprintf(bound, sizeof(bound), "%.17g", hi->valuedouble);
        return fail(err, errlen, "\"%s\" must be at most %s", name, bound);
    }
    return 0;
}

static int check_string(const char *name, const cJSON *schema, const cJSON *v, char *err,
                        size_t errlen)
{
    if (!cJSON_IsString(v))
        return fail(err, errlen, "\"%s\" must be %s", name, "a string");
    const cJSON *max = cJSON_GetObjectItemCaseSensitive(schema, "maxLength");
    const cJSON *min = cJSON_GetObjectItemCaseSensitive(schema, "minLength");
    size_t len = strlen(v->valuestring);
    if (cJSON_IsNumber(max) && (double)len > max->valuedouble)
        return fail(err, errlen, "\"%s\" is longer than %.0f characters", name, max->valuedouble);
    if (cJSON_IsNumber(min) && (double)len < min->valuedouble)
        return fail(err, errlen, "\"%s\" is shorter than %.0f characters", name, min->valuedouble);
    const cJSON *choices = cJSON_GetObjectItemCaseSensitive(schema, "enum");
    if (cJSON_IsArray(choices)) {
        const cJSON *c;
        cJSON_ArrayForEach(c, choices)
        {
            if (cJSON_IsString(c) && strcmp(c->valuestring, v->valuestring) == 0)
                return 0;
        }
        return fail(err, errlen,
                    "\"%s\" is not one of the allowed values (see the tool's inputSchema)", name);
    }
    return 0;
}

static int check_value(const char *name, const cJSON *schema, const cJSON *v, char *err,
                       size_t errlen)
{
    if (type_is(schema, "string"))
        return check_string(name, schema, v, err, errlen);
    if (type_is(schema, "integer"))
        return check_number(name, schema, v, true, err, errlen);
    if (type_is(schema, "number"))
        return check_number(name, schema, v, false, err, errlen);
    if (type_is(schema, "boolean"))
        return cJSON_IsBool(v) ? 0 : fail(err, errlen, "\"%s\" must be %s", name, "true or false");
    if (type_is(schema, "array")) {
        if (!cJSON_IsArray(v))
            return fail(err, errlen, "\"%s\" must be %s", name, "an array");
        const cJSON *items = cJSON_GetObjectItemCaseSensitive(schema, "items");
        const cJSON *max = cJSON_GetObjectItemCaseSensitive(schema, "maxItems");
        if (cJSON_IsNumber(max) && (double)cJSON_GetArraySize(v) > max->valuedouble)
            return fail(err, errlen, "\"%s\" has more than %.0f items", name, max->valuedouble);
        const cJSON *e;
        cJSON_ArrayForEach(e, v)
        {
            if (items && check_value(name, items, e, err, errlen) < 0)
                return -1;
        }
        return 0;
    }
    return 0; /* no type: anything */
}

int mcp_check_args(const cJSON *schema, const cJSON *args, char *err, size_t errlen)
{
    if (!cJSON_IsObject(args))
        return fail(err, errlen, "the arguments must be a JSON object");
    if (!schema)
        return 0;
    const cJSON *props = cJSON_GetObjectItemCaseSensitive(schema, "properties");
    const cJSON *extra = cJSON_GetObjectItemCaseSensitive(schema, "additionalProperties");
    const cJSON *a;
    cJSON_ArrayForEach(a, args)
    {
        const cJSON *p = cJSON_GetObjectItemCaseSensitive(props, a->string);
        if (!p) {
            if (cJSON_IsFalse(extra))
                return fail(err, errlen, "unknown argument \"%s\"", a->string);
            continue;
        }
        if (check_value(a->string, p, a, err, errlen) < 0)
            return -1;
    }
    const cJSON *required = cJSON_GetObjectItemCaseSensitive(schema, "required");
    const cJSON *r;
    cJSON_ArrayForEach(r, required)
    {
        if (cJSON_IsString(r) && !cJSON_GetObjectItemCaseSensitive(args, r->valuestring))
            return fail(err, errlen, "\"%s\" is required", r->valuestring);
    }
    return 0;
}
