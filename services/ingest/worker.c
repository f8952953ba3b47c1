/* SPDX-License-Identifier: Apache-2.0 */
/* One twin-ingest worker process: one MQTT session, one Redis connection, and the
 * validate → apply → publish path for every telemetry message it is given. */
#include <inttypes.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "apply.h"
#include "ingest.h"
#include "known.h"
#include "settle.h"
#include "twin/clock.h"
#include "twin/err.h"
#include "twin/log.h"
#include "twin/mqtt.h"
#include "twin/store.h"

#define WORKER_TOPIC_MAX 256
/* Two updates of one asset closer than this may have raced over two sessions (publish
 * latency is well below it, p99 ~1 ms at 5 k msg/s); a device sending at up to ~40 Hz never
 * triggers a republish. */
#define SETTLE_RACE_WINDOW_MS 25
/* How long after an asset's last racing update its state is republished. */
#define SETTLE_DELAY_MS      200
#define SETTLE_CAPACITY      4096
#define KNOWN_MAX_ASSETS     65536 /* assets remembered as in twin:assets (8-16 bytes each) */
#define KNOWN_TTL_MS         60000 /* then forgotten: twin:assets is written again within a minute */
#define SETTLE_BATCH         64
#define WORKER_TRIM_IDLE_MS  1000 /* idle this long after a message: memory back to the system */
#define WORKER_TRIM_EVERY_MS 5000 /* and again this often while idle */

struct worker {
    const struct ingest_config *cfg;
    int index;
    struct ingest_metrics *m;
    volatile sig_atomic_t *stop;
    struct tw_mqtt *mqtt;
    struct tw_store *store;
    struct tw_script script;
    struct tw_script *scripts[1]; /* the store keeps this array: it must live as long */
    struct tw_limits limits;
    struct ingest_apply_params params;
    struct ingest_cmd cmd;
    struct ingest_state state;
    struct ingest_settle *settle;
    struct ingest_known *known;    /* assets this worker has put in twin:assets lately */
    struct tw_store *settle_store; /* the main thread's own connection, for republishing */
    struct ingest_state settle_state;
    uint8_t *out_buf; /* the handler's encode buffer */
    size_t out_cap;
    uint8_t *settle_buf; /* the main thread's */
    size_t settle_cap;
    int64_t last_message_ms; /* monotonic; atomic: written by the handler, read by main */
    struct tw_ratelimit reject_log;
    struct tw_ratelimit redis_log;
    char rejected_topic[WORKER_TOPIC_MAX];
};

static void worker_set_redis_up(struct worker *w, bool up)
{
    tw_gauge_set(w->m->redis_up[w->index], up ? 1 : 0);
}

static void worker_reject(struct worker *w, const struct tw_mqtt_msg *msg,
                          const struct tw_parse_result *res)
{
    uint8_t *buf = NULL;
    size_t len = 0;
    uint32_t suppressed = 0;
    tw_counter_add(w->m->rejected[res->reject], 1);
    if (tw_ratelimit_allow(&w->reject_log, tw_mono_ms(), &suppressed))
        tw_log(TW_LOG_WARN, "telemetry_rejected",
               "topic=\"%.*s\" reason=%s detail=\"%s\" suppressed=%" PRIu32, 200, msg->topic,
               tw_reject_word(res->reject), res->detail, suppressed);
    if (tw_codec_encode_rejected(msg->topic, tw_reject_word(res->reject), res->detail, msg->payload,
                                 msg->len, &buf, &len) == 0)
        tw_mqtt_publish(w->mqtt, w->rejected_topic, buf, len, 0, false);
    free(buf);
}

/* One apply's pipeline and replies: [SADD twin:assets], EVALSHA apply, [WAIT replicas]. */
struct worker_applied {
    struct tw_reply *replies; /* n of them; free with tw_store_replies_free */
    size_t n;
    int sadd, apply, wait; /* index of each command's reply, -1 when not sent */
};

/* Why an answered apply is not done yet: an error reply (the SADD's too: refused by an OOM,
 * the asset would be missing from twin:assets), or too few replicas. NULL: done. */
static const char *worker_apply_problem(const struct worker *w, const struct worker_applied *a,
                                        char *buf, size_t len)
{
    const struct tw_reply *apply = &a->replies[a->apply];
    if (apply->type == TW_REPLY_ERROR)
        return apply->str;
    if (a->sadd >= 0 && a->replies[a->sadd].type == TW_REPLY_ERROR)
        return a->replies[a->sadd].str;
    if (a->wait < 0)
        return NULL;
    const struct tw_reply *wait = &a->replies[a->wait];
    if (wait->type == TW_REPLY_ERROR)
        return wait->str;
    if (wait->type == TW_REPLY_INT && wait->integer >= w->cfg->redis_replicas)
        return NULL;
    snprintf(buf, len, "WAIT: %lld of %" PRId64 " replicas within %" PRId64 " ms",
             wait->type == TW_REPLY_INT ? wait->integer : -1LL, w->cfg->redis_replicas,
             w->cfg->redis_replica_wait_ms);
    return buf;
}

static bool reply_is_duplicate(const struct tw_reply *r)
{
    return r->type == TW_REPLY_ARRAY && r->n == 1 && r->elem[0].type == TW_REPLY_INT &&
           r->elem[0].integer == INGEST_DUPLICATE;
}

/* The pipeline of one attempt in cmds[]: SADD only for an asset not added lately, WAIT only
 * with TWIN_INGEST_REDIS_REPLICAS. */
static struct worker_applied worker_apply_cmds(struct worker *w, const char *asset,
                                               const char *const *sadd, const char *const *wait,
                                               struct tw_cmd *cmds)
{
    struct worker_applied a = {.sadd = -1, .wait = -1};
    if (!ingest_known_has(w->known, asset, tw_mono_ms())) {
        a.sadd = (int)a.n;
        cmds[a.n++] = (struct tw_cmd){.argc = 3, .argv = sadd};
    }
    a.apply = (int)a.n;
    cmds[a.n++] = (struct tw_cmd){
        .script = &w->script, .argc = w->cmd.argc, .argv = w->cmd.argv, .argvlen = w->cmd.argvlen};
    if (w->cfg->redis_replicas > 0) {
        a.wait = (int)a.n;
        cmds[a.n++] = (struct tw_cmd){.argc = 3, .argv = wait};
    }
    return a;
}

/* Runs the apply until Redis answers it. A message is never dropped for a Redis fault: this
 * blocks the session (back-pressure: the broker keeps queueing for it) and retries with
 * capped backoff. The apply is idempotent for sequenced telemetry, so a retry after an
 * unknown outcome (timeout) is counted as a duplicate, never applied twice. WAIT follows the
 * apply on its connection (on a cluster: its node), so it counts the replicas that have it. */
static struct worker_applied worker_apply(struct worker *w, const char *asset)
{
    char replicas[24], wait_ms[24], problem_buf[128];
    snprintf(replicas, sizeof(replicas), "%" PRId64, w->cfg->redis_replicas);
    snprintf(wait_ms, sizeof(wait_ms), "%" PRId64, w->cfg->redis_replica_wait_ms);
    const char *sadd[] = {"SADD", "twin:assets", asset};
    const char *wait[] = {"WAIT", replicas, wait_ms};
    struct tw_backoff backoff = {.initial_ms = 10, .max_ms = 2000};
    /* The first attempt whose script ran but whose WAIT fell short: if a retry then finds
     * the message a duplicate, that attempt's apply is the one that counts (its state is
     * what to publish). */
    struct worker_applied ran = {.replies = NULL};
    for (;;) {
        struct tw_cmd cmds[3];
        struct worker_applied a = worker_apply_cmds(w, asset, sadd, wait, cmds);
        int64_t t0 = tw_mono_ns();
        int rc = tw_store_pipeline(w->store, cmds, a.n, &a.replies);
        tw_histogram_observe(w->m->apply_seconds, (double)(tw_mono_ns() - t0) / 1e9);
        const char *problem =
            rc == 0 ? worker_apply_problem(w, &a, problem_buf, sizeof(problem_buf)) : NULL;
        if (rc == 0 && a.sadd >= 0 && a.replies[a.sadd].type == TW_REPLY_INT)
            ingest_known_add(w->known, asset, tw_mono_ms());
        if (rc == 0 && !problem) {
            worker_set_redis_up(w, true);
            if (ran.replies && reply_is_duplicate(&a.replies[a.apply])) {
                tw_store_replies_free(a.replies, a.n);
                return ran;
            }
            tw_store_replies_free(ran.replies, ran.n);
            return a;
        }
        if (rc < 0) /* a new connection may meet a Redis that lost the set */
            ingest_known_clear(w->known, tw_mono_ms());
        uint32_t suppressed = 0;
        tw_counter_add(w->m->redis_errors, 1);
        worker_set_redis_up(w, false);
        int64_t delay = tw_backoff_next(&backoff);
        if (tw_ratelimit_allow(&w->redis_log, tw_mono_ms(), &suppressed))
            tw_log(TW_LOG_WARN, "redis_apply_failed",
                   "worker=%d asset=%s error=\"%s\" retry_ms=%" PRId64 " suppressed=%" PRIu32,
                   w->index, asset, rc == 0 ? problem : tw_store_last_error(w->store), delay,
                   suppressed);
        if (rc == 0 && !ran.replies && a.replies[a.apply].type != TW_REPLY_ERROR)
            ran = a;
        else
            tw_store_replies_free(a.replies, a.n);
        tw_sleep_ms(delay, NULL);
    }
}

/* Publishes st as the asset's retained TwinState; `changed` names the signals the update
 * carried; `published` is the counter to count it in. Any thread: the MQTT client is thread-safe,
 * and each caller passes its own state. */
static void worker_publish_state(struct worker *w, const char *asset, const struct ingest_state *st,
                                 const char *const *changed, size_t n_changed, uint8_t **buf,
                                 size_t *cap, struct tw_counter *published)
{
    char topic[WORKER_TOPIC_MAX];
    struct tw_twin_state s = {
        .asset_id = asset,
        .ts_ms = st->ts_ms,
        .seq = st->seq,
        .ingest_ms = st->ingest_ms,
        .n_samples = st->n_samples,
        .samples = st->samples,
        .n_changed = n_changed,
        .changed = changed,
    };
    size_t len = 0;
    int rc = tw_codec_encode_twin_state(&s, *buf, *cap, &len);
    if (rc == TW_ENOMEM && len > *cap) {
        uint8_t *grown = realloc(*buf, len);
        if (grown) {
            *buf = grown;
            *cap = len;
            rc = tw_codec_encode_twin_state(&s, *buf, *cap, &len);
        }
    }
    snprintf(topic, sizeof(topic), "%s/asset/%s/state", w->cfg->common.topic_root, asset);
    if (rc == 0)
        rc = tw_mqtt_publish(w->mqtt, topic, *buf, len, 1, true);
    tw_counter_add(rc == 0 ? published : w->m->state_publish_failed, 1);
}

/* kind: the asset's kind in the plant model, NULL when it has none. */
static void worker_apply_and_publish(struct worker *w, struct tw_parse_result *res,
                                     const struct tw_model_kind *kind)
{
    enum ingest_outcome outcome;
    ingest_cmd_build(&w->cmd, &res->msg, tw_now_ms(), &w->params, kind);
    struct worker_applied a = worker_apply(w, res->asset);
    int rc = ingest_parse_reply(&a.replies[a.apply], &outcome, &w->state);
    if (rc < 0) {
        /* The script ran (Redis answered), so retrying would not help: say so loudly. */
        tw_counter_add(w->m->redis_errors, 1);
        tw_log(TW_LOG_ERROR, "apply_reply_invalid", "asset=%s error=%s", res->asset,
               tw_strerror(rc));
    } else {
        tw_counter_add(w->m->outcome[outcome], 1);
        if (outcome == INGEST_APPLIED) {
            /* `changed`: what the update carried and what it derived, as the script stored. */
            worker_publish_state(w, res->asset, &w->state, w->state.changed, w->state.n_changed,
                                 &w->out_buf, &w->out_cap, w->m->state_published);
            if (w->state.previous_ingest_ms > 0 &&
                w->state.ingest_ms - w->state.previous_ingest_ms < SETTLE_RACE_WINDOW_MS)
                ingest_settle_note(w->settle, res->asset, tw_mono_ms() + SETTLE_DELAY_MS);
        }
    }
    tw_store_replies_free(a.replies, a.n);
}

/* A device must not send a value for a derived signal: ingest computes it. */
static void reject_derived(const struct tw_model_asset *a, struct tw_parse_result *res)
{
    if (!a || a->kind->n_derived == 0)
        return;
    for (size_t i = 0; i < res->msg.n_samples; i++) {
        const struct tw_model_signal *s = tw_model_signal(a->kind, res->msg.samples[i].signal);
        if (s && s->expr) {
            snprintf(res->detail, sizeof(res->detail),
                     "signal \"%s\" is derived (%s): twin-ingest computes it, a device may not "
                     "send it",
                     s->name, s->expr);
            tw_codec_telemetry_free(&res->msg);
            res->reject = TW_REJECT_BAD_SIGNAL;
            return;
        }
    }
}

/* The MQTT handler, on the client library's receive thread: the PUBACK for this message is
 * sent when it returns, so it returns only once the message is applied or rejected. */
static void worker_on_message(void *ctx, const struct tw_mqtt_msg *msg)
{
    struct worker *w = ctx;
    struct tw_parse_result res;
    int64_t t0 = tw_mono_ns();
    __atomic_store_n(&w->last_message_ms, t0 / 1000000, __ATOMIC_RELAXED);
    tw_counter_add(w->m->received, 1);
    int rc = tw_telemetry_parse(msg->topic, w->cfg->common.topic_root, msg->payload, msg->len,
                                &w->limits, tw_now_ms(), &res);
    while (rc == TW_ENOMEM) { /* never drop for a transient lack of memory */
        tw_log(TW_LOG_ERROR, "out_of_memory", "worker=%d retry_ms=100", w->index);
        tw_sleep_ms(100, NULL);
        rc = tw_telemetry_parse(msg->topic, w->cfg->common.topic_root, msg->payload, msg->len,
                                &w->limits, tw_now_ms(), &res);
    }
    /* The asset in the plant model, looked up once per message. */
    const struct tw_model *model = w->cfg->model;
    const struct tw_model_asset *asset =
        res.reject == TW_REJECT_NONE && model ? tw_model_asset(model, res.asset) : NULL;
    if (res.reject == TW_REJECT_NONE && model && tw_model_reject_unknown_assets(model) && !asset) {
        tw_codec_telemetry_free(&res.msg);
        res.reject = TW_REJECT_UNKNOWN_ASSET;
        snprintf(res.detail, sizeof(res.detail), "asset \"%s\" is not in the plant model",
                 res.asset);
    }
    if (res.reject == TW_REJECT_NONE)
        reject_derived(asset, &res);
    if (res.reject != TW_REJECT_NONE) {
        worker_reject(w, msg, &res);
    } else {
        worker_apply_and_publish(w, &res, asset ? asset->kind : NULL);
        tw_codec_telemetry_free(&res.msg);
    }
    tw_histogram_observe(w->m->handle_seconds, (double)(tw_mono_ns() - t0) / 1e9);
}

static int worker_init(struct worker *w)
{
    const struct ingest_config *cfg = w->cfg;
    tw_limits_default(&w->limits);
    w->limits.max_payload = (size_t)cfg->max_payload;
    w->limits.max_samples = (size_t)cfg->max_samples;
    w->limits.max_past_ms = cfg->max_past_ms;
    w->limits.max_future_ms = cfg->max_future_ms;
    w->params.window = (uint64_t)cfg->replay_window;
    w->params.history_maxlen = (uint64_t)cfg->history_maxlen;
    w->reject_log = (struct tw_ratelimit){.burst = 10, .interval_ms = 10000};
    w->redis_log = (struct tw_ratelimit){.burst = 5, .interval_ms = 10000};
    w->script = (struct tw_script){.name = "apply", .source = cfg->script};
    snprintf(w->rejected_topic, sizeof(w->rejected_topic), "%s/rejected/ingest",
             cfg->common.topic_root);
    w->out_cap = 4096;
    w->out_buf = malloc(w->out_cap);
    if (!w->out_buf)
        return TW_ENOMEM;
    int rc = ingest_cmd_init(&w->cmd, (size_t)cfg->max_samples);
    if (rc == 0)
        rc = ingest_state_init(&w->state, 64);
    if (rc == 0)
        rc = ingest_state_init(&w->settle_state, 64);
    if (rc == 0)
        rc = ingest_settle_create(SETTLE_CAPACITY, &w->settle);
    if (rc == 0)
        rc = ingest_known_create(KNOWN_MAX_ASSETS, KNOWN_TTL_MS, &w->known);
    return rc;
}

/* Waits for Redis before taking any message: a message taken now could not be applied. */
static int worker_wait_redis(struct worker *w)
{
    struct tw_backoff backoff = {.initial_ms = 100, .max_ms = 5000};
    while (!*w->stop) {
        if (tw_store_connect(w->store) == 0) {
            worker_set_redis_up(w, true);
            return 0;
        }
        int64_t delay = tw_backoff_next(&backoff);
        tw_log(TW_LOG_WARN, "redis_unreachable", "worker=%d error=\"%s\" retry_ms=%" PRId64,
               w->index, tw_store_last_error(w->store), delay);
        tw_sleep_ms(delay, w->stop);
    }
    return TW_ESHUTDOWN;
}

/* Connects the worker's session; a drainer (drain) takes over an existing session as it is:
 * no status topic, no subscription of its own. */
static int worker_connect(struct worker *w, bool drain)
{
    const struct ingest_config *cfg = w->cfg;
    char client_id[128], status[WORKER_TOPIC_MAX], filter[WORKER_TOPIC_MAX];
    struct tw_store_config scfg = {.url = cfg->common.redis_url,
                                   .connect_timeout_ms = 2000,
                                   .command_timeout_ms = (int)cfg->redis_timeout_ms};
    w->scripts[0] = &w->script;
    int rc = tw_store_create(&scfg, w->scripts, 1, &w->store);
    if (rc == 0)
        rc = tw_store_create(&scfg, NULL, 0, &w->settle_store);
    if (rc < 0)
        return rc;
    snprintf(client_id, sizeof(client_id), "twin-ingest-%s-w%d", cfg->common.instance, w->index);
    /* Worker 0 carries the instance's status topic and its Last Will. */
    snprintf(status, sizeof(status), "%s/service/ingest/%s/status", cfg->common.topic_root,
             cfg->common.instance);
    struct tw_mqtt_config mcfg =
        tw_mqtt_service_config(&cfg->common, client_id, w->index == 0 && !drain ? status : NULL);
    mcfg.quiet = drain;
    rc = tw_mqtt_create(&mcfg, worker_on_message, w, &w->mqtt);
    if (rc < 0)
        return rc;
    snprintf(filter, sizeof(filter), "$share/%s/%s/asset/+/telemetry", cfg->group,
             cfg->common.topic_root);
    if (!drain)
        rc = tw_mqtt_subscribe(w->mqtt, filter, 1);
    if (rc == 0)
        rc = worker_wait_redis(w);
    if (rc == 0)
        rc = tw_mqtt_start(w->mqtt);
    return rc;
}

static void worker_free(struct worker *w)
{
    tw_store_destroy(w->store);
    tw_store_destroy(w->settle_store);
    ingest_settle_destroy(w->settle);
    ingest_known_destroy(w->known);
    ingest_cmd_free(&w->cmd);
    ingest_state_free(&w->state);
    ingest_state_free(&w->settle_state);
    free(w->settle_buf);
    free(w->out_buf);
}

/* Republishes the current state of the assets whose settle time has come (settle.h). A
 * Redis failure here only delays the republish to the next update: nothing is lost. */
static void worker_settle(struct worker *w)
{
    char assets[SETTLE_BATCH][TW_NAME_MAX + 1];
    size_t n = ingest_settle_take_due(w->settle, tw_mono_ms(), assets, SETTLE_BATCH);
    for (size_t i = 0; i < n; i++) {
        char key[TW_NAME_MAX + 16];
        struct tw_reply *r = NULL;
        snprintf(key, sizeof(key), "twin:{%.*s}:state", TW_NAME_MAX, assets[i]);
        const char *argv[] = {"HGETALL", key};
        if (tw_store_command(w->settle_store, &r, 2, argv, NULL) == 0 &&
            ingest_parse_state(r, &w->settle_state) == 0 && w->settle_state.n_samples > 0)
            worker_publish_state(w, assets[i], &w->settle_state, w->settle_state.changed,
                                 w->settle_state.n_changed, &w->settle_buf, &w->settle_cap,
                                 w->m->state_republished);
        tw_store_replies_free(r, 1);
    }
}

/* Gives the memory of a burst back to the system while the worker is idle: a second after its
 * last message, then every WORKER_TRIM_EVERY_MS while it stays idle (TwinStates published just
 * before may still await their PUBACK at the first trim). Under overload the client library
 * holds every TwinState awaiting its PUBACK (up to the broker's receive maximum): measured,
 * 44 MB per worker after 6 s at twice the sustainable rate, kept after the backlog had
 * drained, as glibc's thread arenas return freed memory only when trimmed; malloc_trim
 * brought each worker back to 4 MB. *trimmed_at: when it last trimmed (monotonic ms). */
static void worker_trim_when_idle(struct worker *w, int64_t *trimmed_at)
{
    int64_t now = tw_mono_ms();
    int64_t last = __atomic_load_n(&w->last_message_ms, __ATOMIC_RELAXED);
    if (now - last >= WORKER_TRIM_IDLE_MS &&
        (last > *trimmed_at || now - *trimmed_at >= WORKER_TRIM_EVERY_MS)) {
        malloc_trim(0);
        *trimmed_at = now;
    }
}

int ingest_worker_run(const struct ingest_config *cfg, int index, struct ingest_metrics *m,
                      volatile sig_atomic_t *stop)
{
    struct worker w = {.cfg = cfg, .index = index, .m = m, .stop = stop};
    int rc = worker_init(&w);
    if (rc == 0)
        rc = worker_connect(&w, false);
    if (rc == TW_ESHUTDOWN) {
        tw_mqtt_destroy(w.mqtt, 0);
        worker_free(&w);
        return 0;
    }
    if (rc < 0) {
        tw_log(TW_LOG_ERROR, "worker_failed", "worker=%d error=%s", index, tw_strerror(rc));
        tw_mqtt_destroy(w.mqtt, 0);
        worker_free(&w);
        return 1;
    }
    tw_log(TW_LOG_INFO, "worker_started", "worker=%d pid=%d", index, (int)getpid());
    int64_t trimmed_at = 0;
    while (!*stop) {
        tw_gauge_set(m->mqtt_up[index], tw_mqtt_is_connected(w.mqtt) ? 1 : 0);
        worker_settle(&w);
        worker_trim_when_idle(&w, &trimmed_at);
        tw_sleep_ms(50, stop);
    }
    /* Disconnecting lets a handler in progress finish and be acknowledged; the parent's
     * grace timer ends us without acknowledging anything if Redis never answers. */
    tw_mqtt_destroy(w.mqtt, (int)cfg->shutdown_grace_ms);
    tw_gauge_set(m->mqtt_up[index], 0);
    tw_gauge_set(m->redis_up[index], 0);
    worker_free(&w);
    tw_log(TW_LOG_INFO, "worker_stopped", "worker=%d", index);
    return 0;
}

/* Waits until the session has been quiet for quiet_ms (or max_ms passed, or stop). */
static void drain_wait_quiet(struct worker *w, int64_t quiet_ms, int64_t max_ms)
{
    int64_t start = tw_mono_ms();
    __atomic_store_n(&w->last_message_ms, start, __ATOMIC_RELAXED);
    while (!*w->stop && tw_mono_ms() - start < max_ms &&
           tw_mono_ms() - __atomic_load_n(&w->last_message_ms, __ATOMIC_RELAXED) < quiet_ms)
        tw_sleep_ms(50, w->stop);
}

/* Takes over the session of worker `index` if the broker still holds one, applies what was
 * queued for it, and ends it. Returns 1 when there was a session. */
static int drain_one(const struct ingest_config *cfg, int index, struct ingest_metrics *m,
                     volatile sig_atomic_t *stop)
{
    struct worker w = {.cfg = cfg, .index = index, .m = m, .stop = stop};
    char filter[WORKER_TOPIC_MAX];
    int present = 0;
    int rc = worker_init(&w);
    if (rc == 0)
        rc = worker_connect(&w, true);
    if (rc == 0 && tw_mqtt_wait_ready(w.mqtt, 10000) == 0) {
        present = tw_mqtt_session_present(w.mqtt);
        if (present) {
            tw_log(TW_LOG_INFO, "session_drain", "worker=%d state=started", index);
            drain_wait_quiet(&w, 1000, 600000);
            snprintf(filter, sizeof(filter), "$share/%s/%s/asset/+/telemetry", cfg->group,
                     cfg->common.topic_root);
            tw_mqtt_unsubscribe(w.mqtt, filter, 5000);
            drain_wait_quiet(&w, 500, 60000);
        }
        /* A probe of a session that was not there has just created it (clean start off): end
         * it even when stopping, or it is left on the broker for the next drain to find. A
         * session with a queue is kept when stopping: its messages wait for the next run. */
        if (!present || !*stop)
            tw_mqtt_end_session(w.mqtt);
    }
    tw_mqtt_destroy(w.mqtt, (int)cfg->shutdown_grace_ms);
    worker_free(&w);
    if (present && !*stop)
        tw_log(TW_LOG_INFO, "session_drain", "worker=%d state=ended", index);
    return present;
}

int ingest_drain_run(const struct ingest_config *cfg, int first, struct ingest_metrics *m,
                     volatile sig_atomic_t *stop)
{
    int drained = 0;
    for (int k = first; k < INGEST_MAX_WORKERS && !*stop; k++)
        drained += drain_one(cfg, k, m, stop);
    tw_log(TW_LOG_INFO, "session_drain_done", "sessions=%d", drained);
    return 0;
}
