/* SPDX-License-Identifier: Apache-2.0 */
/* The live twin as the simulation's starting point: one read-only MULTI/EXEC of every state
 * hash the plant names, applied as machines down, wear-adjusted MTBF, buffer and stock levels. */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "snapshot.h"
#include "twin/err.h"
#include "twin/log.h"

/*
 * Consistency. MULTI, one HGETALL per asset, TIME, EXEC: Redis runs the queued commands one
 * after the other with nothing in between, so every hash and the clock are read at one
 * instant; ingest's apply (one Lua script per telemetry message) is either wholly before or
 * wholly after it. The transaction only reads, so the runner's Redis user needs no write right
 * for it (deploy/users.acl). In a Redis Cluster the assets' hashes live in different
 * slots and such a transaction is refused (CROSSSLOT): run the snapshot against one primary.
 */

#define SNAP_MAX_LIVE_LEVEL 1000000.0 /* parts in an unbounded buffer read from a live signal */

struct snap_asset {
    const char *id;
    const struct tw_reply *fields; /* the HGETALL reply, or NULL before the read */
};

static int asset_cmp(const void *pa, const void *pb)
{
    const struct snap_asset *a = pa, *b = pb;
    return strcmp(a->id, b->id);
}

/* Every asset the plant reads from, sorted and unique. *out owned by the caller. */
static size_t collect_assets(const struct sim_plant *p, struct snap_asset **out)
{
    size_t cap = p->n_buffers + p->n_stocks, n = 0;
    for (uint32_t s = 0; s < p->n_stations; s++)
        cap += p->stations[s].machines;
    struct snap_asset *a = calloc(cap + 1, sizeof(*a));
    if (!a)
        return SIZE_MAX;
    for (uint32_t s = 0; s < p->n_stations; s++)
        for (uint32_t m = 0; m < p->stations[s].machines && m < SIM_MAX_MACHINES; m++)
            if (p->stations[s].machine_asset[m][0])
                a[n++].id = p->stations[s].machine_asset[m];
    for (uint32_t b = 0; b < p->n_buffers; b++)
        if (p->buffers[b].live_asset[0])
            a[n++].id = p->buffers[b].live_asset;
    for (uint32_t k = 0; k < p->n_stocks; k++)
        if (p->stocks[k].live_asset[0])
            a[n++].id = p->stocks[k].live_asset;
    qsort(a, n, sizeof(*a), asset_cmp);
    size_t u = 0;
    for (size_t i = 0; i < n; i++)
        if (u == 0 || strcmp(a[u - 1].id, a[i].id) != 0)
            a[u++] = a[i];
    *out = a;
    return u;
}

static const struct snap_asset *find_asset(const struct snap_asset *a, size_t n, const char *id)
{
    struct snap_asset key = {.id = id};
    return bsearch(&key, a, n, sizeof(*a), asset_cmp);
}

/* ---- reading ------------------------------------------------------------------------------- */

static bool reply_number(const struct tw_reply *r, double *out)
{
    char *end = NULL;
    if (!r || r->type != TW_REPLY_STR || r->len == 0)
        return false;
    errno = 0;
    *out = strtod(r->str, &end);
    return end == r->str + r->len && errno != ERANGE;
}

/* TIME's [seconds, microseconds] as Unix ms and seconds. */
static bool parse_time(const struct tw_reply *r, int64_t *ms, double *s)
{
    double sec, usec;
    if (r->type != TW_REPLY_ARRAY || r->n != 2 || !reply_number(&r->elem[0], &sec) ||
        !reply_number(&r->elem[1], &usec))
        return false;
    *s = sec + usec / 1e6;
    *ms = (int64_t)sec * 1000 + (int64_t)(usec / 1000);
    return true;
}

/* The HGETALLs' and TIME's answers: EXEC's array, or on a cluster all the replies. */
static int check_exec(const struct tw_reply *exec, size_t n_assets, char *err, size_t errlen)
{
    if (exec->type == TW_REPLY_ERROR)
        return tw_fail(err, errlen, "reading the live state: %.300s", exec->str);
    if (exec->type != TW_REPLY_ARRAY || exec->n != n_assets + 1)
        return tw_fail(err, errlen, "reading the live state: unexpected answer to EXEC");
    for (size_t i = 0; i < exec->n; i++)
        if (exec->elem[i].type == TW_REPLY_ERROR)
            return tw_fail(err, errlen, "reading the live state: %.300s", exec->elem[i].str);
    return 0;
}

/* MULTI, the HGETALLs' QUEUED and EXEC. */
static int check_replies(const struct tw_reply *rep, size_t n_cmds, size_t n_assets, char *err,
                         size_t errlen)
{
    for (size_t i = 0; i + 1 < n_cmds; i++)
        if (rep[i].type == TW_REPLY_ERROR)
            return tw_fail(err, errlen, "reading the live state: %.300s", rep[i].str);
    return check_exec(&rep[n_cmds - 1], n_assets, err, errlen);
}

/* ---- applying ------------------------------------------------------------------------------ */

struct snap_ctx {
    struct snap_asset *assets;
    size_t n_assets;
    struct scen_snapshot_stats *st;
    const char *job_id;
};

/* The value of signal `name` of asset `id`: true with *v when present and finite. */
static bool live_value(struct snap_ctx *c, const char *id, const char *name, double *v)
{
    const struct snap_asset *a = find_asset(c->assets, c->n_assets, id);
    if (!a || !a->fields || !name[0])
        return false;
    const struct tw_reply *f = a->fields;
    for (size_t i = 0; i + 1 < f->n; i += 2) {
        if (f->elem[i].type != TW_REPLY_STR || strcmp(f->elem[i].str, name) != 0)
            continue;
        if (reply_number(&f->elem[i + 1], v) && isfinite(*v))
            return true;
        c->st->values_ignored++;
        tw_log(TW_LOG_WARN, "snapshot_value_ignored", "id=%s asset=%s signal=%s value=\"%.40s\"",
               c->job_id, id, name, f->elem[i + 1].type == TW_REPLY_STR ? f->elem[i + 1].str : "");
        return false;
    }
    return false;
}

static bool is_down(const struct sim_station_live *l, double v)
{
    return (l->down_has_below && v < l->down_below) || (l->down_has_above && v > l->down_above);
}

static void apply_station(struct snap_ctx *c, struct sim_station *s)
{
    const struct sim_station_live *l = &s->live;
    double worst = NAN, oldest = NAN;
    for (uint32_t m = 0; m < s->machines && m < SIM_MAX_MACHINES; m++) {
        const char *asset = s->machine_asset[m];
        double v;
        if (!asset[0])
            continue;
        if (live_value(c, asset, l->down_signal, &v)) {
            s->down_at_start[m] = is_down(l, v);
            c->st->machines_down += s->down_at_start[m];
        }
        /* Its own wear: a maintenance renews one machine. */
        if (l->wear.n > 0 && live_value(c, asset, l->wear_signal, &v) &&
            sim_station_set_wear(s, m, v)) {
            if (l->wear_is_age && (isnan(oldest) || s->machine_age[m] > oldest))
                oldest = s->machine_age[m];
            else if (!l->wear_is_age && (isnan(worst) || s->machine_mtbf_factor[m] < worst))
                worst = s->machine_mtbf_factor[m];
        }
    }
    /* The station's factor is its most worn machine's: the machines without a reading of
     * their own use it, so their failures are not under-predicted. (An age is a machine's own:
     * one without a reading is taken as new.) */
    if (!isnan(worst)) {
        s->mtbf_factor = worst;
        tw_log(TW_LOG_INFO, "snapshot_wear", "id=%s station=%s signal=%s mtbf_factor=%.3g",
               c->job_id, s->name, l->wear_signal, worst);
    }
    if (!isnan(oldest))
        tw_log(TW_LOG_INFO, "snapshot_wear", "id=%s station=%s signal=%s age_s=%.0f", c->job_id,
               s->name, l->wear_signal, oldest);
}

static void apply_levels(struct snap_ctx *c, struct sim_plant *p)
{
    double v;
    for (uint32_t b = 0; b < p->n_buffers; b++) {
        struct sim_buffer *buf = &p->buffers[b];
        if (!buf->live_asset[0] || !live_value(c, buf->live_asset, buf->live_signal, &v))
            continue;
        double cap = buf->capacity == SIM_INFINITE_CAP ? SNAP_MAX_LIVE_LEVEL : buf->capacity;
        v = round(v);
        buf->initial = (uint32_t)(v < 0 ? 0 : v > cap ? cap : v);
    }
    for (uint32_t k = 0; k < p->n_stocks; k++) {
        struct sim_stock *s = &p->stocks[k];
        if (s->live_asset[0] && live_value(c, s->live_asset, s->live_signal, &v))
            s->initial = v < 0 ? 0 : v;
    }
}

/* ---- the read ------------------------------------------------------------------------------ */

struct snap_cmds {
    struct tw_cmd *cmds;
    char (*keys)[SIM_NAME_MAX + 16];
    const char **argv; /* 2 per HGETALL */
};

/* MULTI, an HGETALL per asset, TIME, EXEC; on a Redis Cluster, whose assets live on several
 * nodes that no transaction spans, the same without MULTI and EXEC: each asset's state is
 * still read whole (one HGETALL is atomic), in one round trip to each node. */
static int build_cmds(struct snap_cmds *b, const struct snap_asset *a, size_t n, bool cluster)
{
    static const char *const multi[] = {"MULTI"}, *const time_cmd[] = {"TIME"},
                             *const exec[] = {"EXEC"};
    size_t first = cluster ? 0 : 1;
    b->cmds = calloc(n + 3, sizeof(*b->cmds));
    b->keys = calloc(n + 1, sizeof(*b->keys));
    b->argv = calloc(2 * n + 1, sizeof(*b->argv));
    if (!b->cmds || !b->keys || !b->argv)
        return TW_ENOMEM;
    b->cmds[0] = (struct tw_cmd){.argc = 1, .argv = multi};
    for (size_t i = 0; i < n; i++) {
        snprintf(b->keys[i], sizeof(b->keys[i]), "twin:{%s}:state", a[i].id);
        b->argv[2 * i] = "HGETALL";
        b->argv[2 * i + 1] = b->keys[i];
        b->cmds[first + i] = (struct tw_cmd){.argc = 2, .argv = &b->argv[2 * i]};
    }
    b->cmds[first + n] = (struct tw_cmd){.argc = 1, .argv = time_cmd};
    if (!cluster)
        b->cmds[n + 2] = (struct tw_cmd){.argc = 1, .argv = exec};
    return 0;
}

static void free_cmds(struct snap_cmds *b)
{
    free(b->cmds);
    free(b->keys);
    free(b->argv);
}

int scen_snapshot_apply(struct tw_store *store, struct sim_plant *p, struct scen_snapshot_stats *st,
                        const char *job_id, char *err, size_t errlen)
{
    struct snap_ctx c = {.st = st, .job_id = job_id};
    struct snap_cmds b = {0};
    struct tw_reply *rep = NULL;
    memset(st, 0, sizeof(*st));
    size_t n = collect_assets(p, &c.assets);
    if (n == SIZE_MAX)
        return tw_fail(err, errlen, "out of memory");
    c.n_assets = st->assets = n;
    bool cluster = tw_store_is_cluster(store);
    size_t n_cmds = cluster ? n + 1 : n + 3;
    int rc = build_cmds(&b, c.assets, n, cluster);
    if (rc == 0)
        rc = tw_store_pipeline(store, b.cmds, n_cmds, &rep);
    if (rc < 0) {
        tw_fail(err, errlen,
                "cannot read the live state from Redis (%s); retry, or set ignore_live to "
                "start from the model file",
                rc == TW_ENOMEM ? "out of memory" : tw_store_last_error(store));
        goto out;
    }
    struct tw_reply all = {.type = TW_REPLY_ARRAY, .n = n_cmds, .elem = rep};
    const struct tw_reply *exec = cluster ? &all : &rep[n + 2];
    rc = cluster ? check_exec(exec, n, err, errlen) : check_replies(rep, n_cmds, n, err, errlen);
    double epoch_s = 0;
    if (rc == 0 && !parse_time(&exec->elem[n], &st->snapshot_ms, &epoch_s))
        rc = tw_fail(err, errlen, "reading the live state: TIME answered nonsense");
    if (rc < 0)
        goto out;
    for (size_t i = 0; i < n; i++) {
        c.assets[i].fields = &exec->elem[i];
        st->found += exec->elem[i].type == TW_REPLY_ARRAY && exec->elem[i].n > 0;
    }
    for (uint32_t s = 0; s < p->n_stations; s++)
        apply_station(&c, &p->stations[s]);
    apply_levels(&c, p);
    p->epoch = epoch_s;
out:
    tw_store_replies_free(rep, n_cmds);
    free_cmds(&b);
    free(c.assets);
    return rc;
}
