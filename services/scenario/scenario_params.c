/* SPDX-License-Identifier: Apache-2.0 */
/* Parameter paths of scenario.h: "station.press.machines" and the like resolved to a field of
 * the plant, checked, set (scn_param_apply) and read (scn_param_get). */
#include "scenario_internal.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

int scn_fail(char *err, size_t errlen, const char *fmt, ...)
{
    if (err && errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return -1;
}

/* ---- parameter paths ----------------------------------------------------------------- */

enum ptype { P_REAL, P_INT, P_FRACTION, P_PROB };

struct pref {
    enum { T_STATION, T_BUFFER, T_STOCK, T_SUPPLIER, T_DEMAND } table;
    int index;
    char field[32];
};

/* Splits "<table>.<name>.<field>" (names may contain dots: the field is after the last one)
 * or "demand.<field>". */
static int parse_path(const struct sim_plant *p, const char *path, struct pref *r, char *err,
                      size_t errlen)
{
    const char *dot = strchr(path, '.'), *last = strrchr(path, '.');
    if (!dot || !last[1] || strlen(last + 1) >= sizeof r->field)
        return scn_fail(err, errlen, "parameter \"%s\": expected <kind>.<name>.<field>", path);
    snprintf(r->field, sizeof r->field, "%s", last + 1);
    size_t kind_len = (size_t)(dot - path);
    if (kind_len == 6 && strncmp(path, "demand", 6) == 0) {
        if (dot != last)
            return scn_fail(err, errlen, "parameter \"%s\": expected demand.<field>", path);
        if (p->demand.kind == SIM_DEMAND_NONE)
            return scn_fail(err, errlen, "parameter \"%s\": the plant has no demand", path);
        r->table = T_DEMAND;
        r->index = 0;
        return 0;
    }
    if (dot == last)
        return scn_fail(err, errlen, "parameter \"%s\": expected <kind>.<name>.<field>", path);
    char name[SIM_NAME_MAX + 1];
    size_t name_len = (size_t)(last - dot - 1);
    if (name_len == 0 || name_len > SIM_NAME_MAX)
        return scn_fail(err, errlen, "parameter \"%s\": bad name", path);
    memcpy(name, dot + 1, name_len);
    name[name_len] = '\0';
    if (kind_len == 7 && strncmp(path, "station", 7) == 0) {
        r->table = T_STATION;
        r->index = sim_plant_station(p, name);
    } else if (kind_len == 6 && strncmp(path, "buffer", 6) == 0) {
        r->table = T_BUFFER;
        r->index = sim_plant_buffer(p, name);
    } else if (kind_len == 5 && strncmp(path, "stock", 5) == 0) {
        r->table = T_STOCK;
        r->index = sim_plant_stock(p, name);
    } else if (kind_len == 8 && strncmp(path, "supplier", 8) == 0) {
        r->table = T_SUPPLIER;
        r->index = sim_plant_supplier(p, name);
    } else {
        return scn_fail(err, errlen,
                        "parameter \"%s\": kind must be station, buffer, stock, supplier or demand",
                        path);
    }
    if (r->index < 0)
        return scn_fail(err, errlen, "parameter \"%s\": no %.*s named \"%s\"", path, (int)kind_len,
                        path, name);
    return 0;
}

/* The parameter a path names: a pointer to its value (a distribution's mean goes through
 * `dist`), its type, and whether it exists. */
struct param {
    double *real;
    uint32_t *u32;
    struct sim_dist *dist;
    enum ptype type;
    double min;    /* smallest allowed value */
    bool positive; /* and it must be above min (a cycle time, an MTBF) */
};

static int resolve(struct sim_plant *p, const char *path, struct param *out, char *err,
                   size_t errlen)
{
    struct pref r;
    if (parse_path(p, path, &r, err, errlen))
        return -1;
    memset(out, 0, sizeof *out);
    const char *f = r.field;
    switch (r.table) {
    case T_STATION: {
        struct sim_station *s = &p->stations[r.index];
        if (!strcmp(f, "machines")) {
            out->u32 = &s->machines, out->type = P_INT, out->min = 1;
        } else if (!strcmp(f, "staff")) {
            out->u32 = &s->staff, out->type = P_INT, out->min = 1;
        } else if (!strcmp(f, "cycle_time")) {
            out->dist = &s->cycle, out->min = 0, out->positive = true;
        } else if (!strcmp(f, "setup_time")) {
            if (!s->setup_every)
                return scn_fail(err, errlen, "parameter \"%s\": the station has no setups", path);
            out->dist = &s->setup, out->min = 0;
        } else if (!strcmp(f, "mtbf") || !strcmp(f, "mttr")) {
            if (s->fail_basis == SIM_FAIL_NONE)
                return scn_fail(err, errlen, "parameter \"%s\": the station has no failures", path);
            out->dist = f[2] == 'b' ? &s->ttf : &s->ttr, out->min = 0;
            out->positive = f[2] == 'b'; /* a zero MTBF would fail forever at one instant */
        } else if (!strcmp(f, "scrap")) {
            out->real = &s->scrap, out->type = P_FRACTION;
        } else {
            return scn_fail(err, errlen,
                            "parameter \"%s\": a station has machines, staff, cycle_time, "
                            "setup_time, mtbf, mttr, scrap",
                            path);
        }
        break;
    }
    case T_BUFFER: {
        struct sim_buffer *b = &p->buffers[r.index];
        if (!strcmp(f, "capacity"))
            out->u32 = &b->capacity, out->type = P_INT, out->min = 0;
        else if (!strcmp(f, "initial"))
            out->u32 = &b->initial, out->type = P_INT, out->min = 0;
        else
            return scn_fail(err, errlen, "parameter \"%s\": a buffer has capacity, initial", path);
        break;
    }
    case T_STOCK:
        if (strcmp(f, "initial"))
            return scn_fail(err, errlen, "parameter \"%s\": a stock has initial", path);
        out->real = &p->stocks[r.index].initial, out->min = 0;
        break;
    case T_SUPPLIER: {
        struct sim_supplier *s = &p->suppliers[r.index];
        if (!strcmp(f, "lot"))
            out->real = &s->lot, out->min = 0;
        else if (!strcmp(f, "reorder") && s->policy == SIM_SUPPLY_REORDER)
            out->real = &s->reorder, out->min = 0;
        else if (!strcmp(f, "period") && s->policy == SIM_SUPPLY_PERIODIC)
            out->real = &s->period, out->min = 0;
        else if (!strcmp(f, "lead_time"))
            out->dist = &s->lead, out->min = 0;
        else if (!strcmp(f, "reliability"))
            out->real = &s->reliability, out->type = P_PROB;
        else
            return scn_fail(err, errlen,
                            "parameter \"%s\": a supplier has lot, lead_time, reliability, and "
                            "reorder (reorder policy) or period (periodic policy)",
                            path);
        break;
    }
    case T_DEMAND:
        if (!strcmp(f, "rate") && p->demand.kind == SIM_DEMAND_POISSON)
            out->real = &p->demand.rate, out->min = 0;
        else if (!strcmp(f, "due"))
            out->real = &p->demand.due, out->min = 0;
        else
            return scn_fail(err, errlen,
                            "parameter \"%s\": the demand has rate (Poisson demand) and due", path);
        break;
    }
    return 0;
}

static bool param_is_int(const struct param *q)
{
    return q->u32 != NULL;
}

/* Checks a value for a resolved parameter; rates are per hour, times in seconds. */
static int check_value(const struct param *q, const char *path, double v, char *err,
                       size_t errlen)
{
    if (!isfinite(v))
        return scn_fail(err, errlen, "parameter \"%s\": value must be finite", path);
    switch (q->type) {
    case P_FRACTION:
        if (v < 0 || v >= 1)
            return scn_fail(err, errlen, "parameter \"%s\": must be in [0, 1)", path);
        return 0;
    case P_PROB:
        if (v <= 0 || v > 1)
            return scn_fail(err, errlen, "parameter \"%s\": must be in (0, 1]", path);
        return 0;
    default:
        break;
    }
    if (q->u32) {
        double r = nearbyint(v);
        if (r < q->min || r > (q->u32 && strstr(path, "station.") == path ? SIM_MAX_MACHINES
                                                                          : 1e9))
            return scn_fail(err, errlen, "parameter \"%s\": %g is out of range", path, v);
        return 0;
    }
    if (v < q->min)
        return scn_fail(err, errlen, "parameter \"%s\": must be >= %g", path, q->min);
    if (q->positive && !(v > q->min))
        return scn_fail(err, errlen, "parameter \"%s\": must be > %g", path, q->min);
    if (q->dist && q->dist->mean <= 0 && v > 0 && q->dist->kind != SIM_DIST_FIXED)
        return scn_fail(err, errlen, "parameter \"%s\": cannot rescale a zero-mean distribution",
                        path);
    if ((q->real || q->dist) && v <= 0 && strstr(path, ".period") != NULL)
        return scn_fail(err, errlen, "parameter \"%s\": must be > 0", path);
    return 0;
}

int scn_param_check(const struct sim_plant *p, const char *path, double value, char *err,
                    size_t errlen)
{
    struct param q;
    /* resolve() only takes addresses: the cast lets one function serve get and set. */
    if (resolve((struct sim_plant *)p, path, &q, err, errlen))
        return -1;
    if (check_value(&q, path, value, err, errlen))
        return -1;
    /* Cross-field rules that a single value can break. */
    struct pref r;
    parse_path(p, path, &r, NULL, 0);
    if (r.table == T_BUFFER && !strcmp(r.field, "initial") &&
        nearbyint(value) > (double)p->buffers[r.index].capacity)
        return scn_fail(err, errlen, "parameter \"%s\": more than the buffer's capacity", path);
    if (r.table == T_DEMAND && !strcmp(r.field, "rate") && !(value > 0))
        return scn_fail(err, errlen, "parameter \"%s\": must be > 0", path);
    if (r.table == T_SUPPLIER && !strcmp(r.field, "lot") && !(value > 0))
        return scn_fail(err, errlen, "parameter \"%s\": must be > 0", path);
    return 0;
}

int scn_param_apply(struct sim_plant *p, const char *path, double value, char *err,
                    size_t errlen)
{
    struct param q;
    if (scn_param_check(p, path, value, err, errlen) || resolve(p, path, &q, err, errlen))
        return -1;
    struct pref r;
    parse_path(p, path, &r, NULL, 0);
    if (q.u32) {
        uint32_t v = (uint32_t)nearbyint(value);
        *q.u32 = v;
        if (r.table == T_BUFFER && !strcmp(r.field, "capacity") &&
            p->buffers[r.index].initial > v)
            p->buffers[r.index].initial = v; /* a smaller buffer starts at most full */
        return 0;
    }
    if (q.dist) {
        if (!sim_dist_set_mean(q.dist, value))
            return scn_fail(err, errlen, "parameter \"%s\": cannot set mean %g", path, value);
        return 0;
    }
    if (r.table == T_DEMAND && !strcmp(r.field, "rate"))
        value /= 3600.0;
    *q.real = value;
    return 0;
}

double scn_param_get(const struct sim_plant *p, const char *path)
{
    struct param q;
    if (resolve((struct sim_plant *)p, path, &q, NULL, 0))
        return NAN;
    if (q.u32)
        return (double)*q.u32;
    if (q.dist)
        return q.dist->mean * q.dist->scale;
    struct pref r;
    parse_path(p, path, &r, NULL, 0);
    if (r.table == T_DEMAND && !strcmp(r.field, "rate"))
        return *q.real * 3600.0;
    return *q.real;
}

bool scn_param_path_int(const struct sim_plant *p, const char *path)
{
    struct param q;
    return resolve((struct sim_plant *)p, path, &q, NULL, 0) == 0 && param_is_int(&q);
}
