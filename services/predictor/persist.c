/* SPDX-License-Identifier: Apache-2.0 */
/* Model state to Redis: the back-off gate for Redis calls, SignalModelState encoding, the
 * periodic pipelined HSETs of dirty signals, and the final write at shutdown. Loop thread. */
#include <inttypes.h>
#include <malloc.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "predictor.h"
#include "twin/codec.h"
#include "twin/err.h"

#define PERSIST_BATCH_ASSETS     64 /* HSETs in one pipeline */
#define PERSIST_BATCHES_PER_TICK 4  /* then the loop takes messages again */
#define RESTORES_PER_TICK        16
#define REDIS_PROBE_MS           5000 /* an idle loop still notices Redis going away */

/* ---- the Redis gate ---------------------------------------------------------------------- */

bool pred_redis_ready(struct pred_service *svc)
{
    return tw_mono_ms() >= svc->redis_retry_ms;
}

void pred_redis_result(struct pred_service *svc, int rc, const char *what)
{
    uint32_t suppressed = 0;
    svc->last_redis_ms = tw_mono_ms();
    if (rc == 0) {
        if (!__atomic_load_n(&svc->redis_up, __ATOMIC_RELAXED))
            tw_log(TW_LOG_INFO, "redis_reachable", "after=%s", what);
        tw_backoff_reset(&svc->redis_backoff);
        svc->redis_retry_ms = 0;
        __atomic_store_n(&svc->redis_up, 1, __ATOMIC_RELAXED);
        tw_gauge_set(svc->m->redis_up, 1);
        return;
    }
    int64_t delay = tw_backoff_next(&svc->redis_backoff);
    svc->redis_retry_ms = tw_mono_ms() + delay;
    __atomic_store_n(&svc->redis_up, 0, __ATOMIC_RELAXED);
    tw_gauge_set(svc->m->redis_up, 0);
    if (tw_ratelimit_allow(&svc->redis_log, tw_mono_ms(), &suppressed))
        tw_log(TW_LOG_WARN, "redis_failed",
               "what=%s error=\"%s\" retry_ms=%" PRId64 " suppressed=%" PRIu32, what,
               rc == TW_EIO || rc == TW_ETIMEDOUT ? tw_store_last_error(svc->store)
                                                  : tw_strerror(rc),
               delay, suppressed);
}

void pred_redis_probe(struct pred_service *svc, int64_t now_ms)
{
    struct tw_reply *r = NULL;
    if (now_ms - svc->last_redis_ms < REDIS_PROBE_MS || !pred_redis_ready(svc))
        return;
    const char *argv[] = {"PING"};
    int rc = tw_store_command(svc->store, &r, 1, argv, NULL);
    tw_store_replies_free(r, 1);
    pred_redis_result(svc, rc == TW_ENOMEM ? 0 : rc, "ping");
}

/* ---- encoding ---------------------------------------------------------------------------- */

static int grow_bytes(uint8_t **buf, size_t *cap, size_t need)
{
    size_t n = *cap ? *cap : 4096;
    while (n < need)
        n *= 2;
    uint8_t *grown = realloc(*buf, n);
    if (!grown)
        return TW_ENOMEM;
    *buf = grown;
    *cap = n;
    return 0;
}

/* pred_signal_save into svc->state_buf, growing it when the engine needs more room. */
static int save_state(struct pred_service *svc, const struct pred_signal *st, size_t *n)
{
    *n = pred_signal_save(st, svc->state_buf, svc->state_cap);
    if (*n <= svc->state_cap)
        return 0;
    double *grown = realloc(svc->state_buf, *n * sizeof(*grown));
    if (!grown)
        return TW_ENOMEM;
    svc->state_buf = grown;
    svc->state_cap = *n;
    *n = pred_signal_save(st, svc->state_buf, svc->state_cap);
    return *n <= svc->state_cap ? 0 : TW_EINVAL;
}

int pred_encode_signal_state(struct pred_service *svc, const struct pred_signal *st, uint8_t **buf,
                             size_t *cap, size_t *used)
{
    size_t n = 0, len = 0;
    int rc = save_state(svc, st, &n);
    if (rc < 0)
        return rc;
    struct tw_signal_model_state ms = {.format = pred_signal_state_version(),
                                       .saved_ms = tw_now_ms(),
                                       .basis_ts_ms = pred_signal_basis_ms(st),
                                       .n_state = n,
                                       .state = svc->state_buf};
    if (tw_codec_encode_signal_model_state(&ms, NULL, 0, &len) == TW_ENOMEM && *used + len > *cap &&
        grow_bytes(buf, cap, *used + len) < 0)
        return TW_ENOMEM;
    rc = tw_codec_encode_signal_model_state(&ms, *buf + *used, *cap - *used, &len);
    if (rc == 0)
        *used += len;
    return rc;
}

/* ---- one pipeline of HSETs --------------------------------------------------------------- */

/* The commands of one batch. Values are encoded into one arena first and pointed at after,
 * since the arena may move while it grows. */
struct persist_batch {
    size_t n_assets;
    struct pred_asset *assets[PERSIST_BATCH_ASSETS];
    char keys[PERSIST_BATCH_ASSETS][PRED_KEY_MAX];
    struct tw_cmd cmds[PERSIST_BATCH_ASSETS];
    const char **argv;
    size_t *argvlen;
    size_t *offset; /* per argument: where its value starts in the arena (values only) */
    uint8_t *arena;
    size_t arena_cap, arena_used;
    size_t n_values;
};

static void batch_free(struct persist_batch *b)
{
    free(b->argv);
    free(b->argvlen);
    free(b->offset);
    free(b->arena);
}

static size_t batch_count_args(struct persist_batch *b)
{
    size_t n = 0;
    for (size_t i = 0; i < b->n_assets; i++) {
        n += 2;
        for (size_t k = 0; k < b->assets[i]->n_sigs; k++)
            n += b->assets[i]->sigs[k].dirty ? 2 : 0;
    }
    return n;
}

/* Fills the HSET of asset i from argument `at` on; returns the next free argument. */
static int batch_add_asset(struct pred_service *svc, struct persist_batch *b, size_t i, size_t *at)
{
    struct pred_asset *a = b->assets[i];
    size_t first = *at;
    snprintf(b->keys[i], PRED_KEY_MAX, "twin:{%s}:model", a->id);
    b->argv[(*at)++] = "HSET";
    b->argv[(*at)++] = b->keys[i];
    for (size_t k = 0; k < a->n_sigs; k++) {
        if (!a->sigs[k].dirty)
            continue;
        b->argv[*at] = a->sigs[k].name;
        b->argvlen[(*at)++] = strlen(a->sigs[k].name);
        b->offset[*at] = b->arena_used;
        int rc =
            pred_encode_signal_state(svc, a->sigs[k].st, &b->arena, &b->arena_cap, &b->arena_used);
        if (rc < 0)
            return rc;
        b->argvlen[*at] = b->arena_used - b->offset[*at];
        (*at)++;
        b->n_values++;
    }
    b->argvlen[first] = 4;
    b->argvlen[first + 1] = strlen(b->keys[i]);
    b->cmds[i] = (struct tw_cmd){
        .argc = (int)(*at - first), .argv = b->argv + first, .argvlen = b->argvlen + first};
    return 0;
}

static int batch_build(struct pred_service *svc, struct persist_batch *b)
{
    size_t n_args = batch_count_args(b), at = 0;
    b->argv = calloc(n_args + 1, sizeof(*b->argv));
    b->argvlen = calloc(n_args + 1, sizeof(*b->argvlen));
    b->offset = calloc(n_args + 1, sizeof(*b->offset));
    if (!b->argv || !b->argvlen || !b->offset || grow_bytes(&b->arena, &b->arena_cap, 4096) < 0)
        return TW_ENOMEM;
    for (size_t i = 0; i < b->n_assets; i++) {
        int rc = batch_add_asset(svc, b, i, &at);
        if (rc < 0)
            return rc;
    }
    for (size_t i = 0; i < b->n_assets; i++) { /* values point into the arena, now settled */
        size_t first = (size_t)(b->cmds[i].argv - b->argv);
        for (int k = 3; k < b->cmds[i].argc; k += 2)
            b->argv[first + (size_t)k] = (const char *)b->arena + b->offset[first + (size_t)k];
    }
    return 0;
}

/* Marks what Redis accepted as clean and takes the batch off the dirty list (an asset whose
 * HSET failed too: its signals stay dirty, so its next update lists it again). */
static void batch_settle(struct pred_service *svc, struct persist_batch *b,
                         const struct tw_reply *replies, size_t base)
{
    for (size_t i = b->n_assets; i-- > 0;) {
        struct pred_asset *a = b->assets[i];
        if (replies[i].type == TW_REPLY_ERROR) {
            uint32_t suppressed = 0;
            tw_counter_add(svc->m->persist_errors, 1);
            if (tw_ratelimit_allow(&svc->redis_log, tw_mono_ms(), &suppressed))
                tw_log(TW_LOG_ERROR, "persist_refused",
                       "asset=%s error=\"%.200s\" suppressed=%" PRIu32, a->id, replies[i].str,
                       suppressed);
        } else {
            for (size_t k = 0; k < a->n_sigs; k++) {
                tw_counter_add(svc->m->persist, a->sigs[k].dirty ? 1 : 0);
                a->sigs[k].dirty = false;
            }
        }
        pred_table_unlist(&svc->table, PRED_LIST_DIRTY, base + i);
    }
}

static bool has_dirty_signal(const struct pred_asset *a)
{
    for (size_t k = 0; k < a->n_sigs; k++)
        if (a->sigs[k].dirty)
            return true;
    return false;
}

/* Gathers up to PERSIST_BATCH_ASSETS assets with something to write at the end of the dirty
 * list, taking those with nothing to write (an HSET without fields is an error) off it on the
 * way. Each step either adds the entry just below the gathered tail or removes it, so the
 * gathered ones always stay the list's last entries. Returns how many. */
static size_t batch_pick(struct pred_service *svc)
{
    struct pred_list *dirty = &svc->table.lists[PRED_LIST_DIRTY];
    size_t picked = 0;
    for (size_t i = dirty->n; i-- > 0 && picked < PERSIST_BATCH_ASSETS;) {
        if (has_dirty_signal(dirty->items[i]))
            picked++;
        else
            pred_table_unlist(&svc->table, PRED_LIST_DIRTY, i);
    }
    return picked;
}

/* Writes up to PERSIST_BATCH_ASSETS assets of the dirty list in one round trip. */
static int persist_batch(struct pred_service *svc)
{
    struct pred_list *dirty = &svc->table.lists[PRED_LIST_DIRTY];
    struct persist_batch b = {0};
    struct tw_reply *replies = NULL;
    b.n_assets = batch_pick(svc);
    if (b.n_assets == 0)
        return 0;
    size_t base = dirty->n - b.n_assets;
    memcpy(b.assets, dirty->items + base, b.n_assets * sizeof(*b.assets));
    int rc = batch_build(svc, &b);
    if (rc == 0)
        rc = tw_store_pipeline(svc->store, b.cmds, b.n_assets, &replies);
    if (rc == 0)
        batch_settle(svc, &b, replies, base);
    else
        tw_counter_add(svc->m->persist_errors, 1);
    if (rc == TW_EIO || rc == TW_ETIMEDOUT || rc == 0)
        pred_redis_result(svc, rc, "persist");
    else
        tw_log(TW_LOG_ERROR, "persist_failed", "error=%s", tw_strerror(rc));
    tw_store_replies_free(replies, b.n_assets);
    batch_free(&b);
    return rc;
}

/* ---- timers ------------------------------------------------------------------------------ */

/* Mean coverage of the published intervals over the signals that have been scored for it. */
static void update_coverage(struct pred_service *svc)
{
    double sum = 0;
    uint64_t n = 0;
    for (size_t i = 0; i < svc->table.n_assets; i++) {
        const struct pred_asset *a = svc->table.assets[i];
        for (size_t k = 0; k < a->n_sigs; k++) {
            struct pred_quality q;
            pred_signal_quality(a->sigs[k].st, &q);
            if (q.n_covered > 0 && isfinite(q.coverage)) {
                sum += q.coverage;
                n++;
            }
        }
    }
    tw_gauge_set(svc->m->coverage_ppm, n ? (int64_t)llround(sum / (double)n * 1e6) : 0);
}

/* Assets first seen while Redis was down: read their stored model now. */
static void retry_restores(struct pred_service *svc)
{
    struct pred_list *l = &svc->table.lists[PRED_LIST_UNLOADED];
    for (int done = 0; l->n > 0 && done < RESTORES_PER_TICK && pred_redis_ready(svc); done++) {
        if (pred_restore_asset(svc, l->items[l->n - 1]) < 0)
            return;
        pred_table_unlist(&svc->table, PRED_LIST_UNLOADED, l->n - 1);
    }
}

void pred_persist_tick(struct pred_service *svc, int64_t now_ms)
{
    struct pred_list *dirty = &svc->table.lists[PRED_LIST_DIRTY];
    if (!svc->persist_round && now_ms < svc->next_persist_ms)
        return;
    if (!pred_redis_ready(svc)) { /* another call found Redis down: retry once it may be up */
        svc->persist_round = false;
        svc->next_persist_ms = svc->redis_retry_ms;
        return;
    }
    if (!svc->persist_round) {
        svc->persist_round = true;
        retry_restores(svc);
        update_coverage(svc);
    }
    for (int k = 0; k < PERSIST_BATCHES_PER_TICK && dirty->n > 0; k++) {
        if (persist_batch(svc) < 0) {
            /* The gate holds further Redis calls back for the next backoff step; the round
             * starts again once it opens. */
            svc->persist_round = false;
            svc->next_persist_ms = now_ms;
            return;
        }
    }
    if (dirty->n == 0) {
        svc->persist_round = false;
        svc->next_persist_ms = now_ms + svc->cfg->persist_ms;
        /* TwinStates are copied on the MQTT thread and freed on this one, so glibc keeps the
         * receive thread's arena as large as the largest backlog was; hand free pages back
         * once a round (a few ms at most). */
        malloc_trim(0);
    }
}

int pred_persist_all(struct pred_service *svc, int64_t deadline_ms)
{
    struct pred_list *dirty = &svc->table.lists[PRED_LIST_DIRTY];
    while (dirty->n > 0) {
        int64_t now = tw_mono_ms();
        if (now >= deadline_ms)
            return TW_ETIMEDOUT;
        if (!pred_redis_ready(svc)) {
            int64_t wait = svc->redis_retry_ms - now;
            tw_sleep_ms(wait < deadline_ms - now ? wait : deadline_ms - now, NULL);
            continue;
        }
        if (persist_batch(svc) < 0 && pred_redis_ready(svc))
            tw_sleep_ms(50, NULL); /* not Redis (out of memory): do not spin */
    }
    update_coverage(svc);
    return 0;
}
