/* SPDX-License-Identifier: Apache-2.0 */
/* twin-predictor's loop: TwinStates from the queue into the signals' models, timers for
 * Predictions and persistence, and the orderly shutdown. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "predictor.h"
#include "twin/codec.h"
#include "twin/err.h"

#define LOOP_BATCH       256 /* messages taken from the queue at once */
#define LOOP_IDLE_MS     100 /* longest wait for a message when no timer is due sooner */
#define LINEAR_LOOKUP    16  /* up to this many samples a value is found by a linear scan */
#define MIN_STATE_DOUBLE 4096
#define OUTBOX_CAP       65536 /* publishes waiting for the MQTT client */
#define SETTLE_MAX_MS    5000  /* longest wait at start for the other instances' statuses */
#define RELEASE_WRITE_MS 2000  /* longest a hand-over waits to write the leaving assets */

/* ---- set-up ------------------------------------------------------------------------------- */

static void svc_on_message(void *ctx, const struct tw_mqtt_msg *msg)
{
    struct pred_service *svc = ctx;
    char instance[TW_NAME_MAX + 1];
    /* Statuses skip the queue: a membership change takes effect for the TwinStates the loop
     * has not handled yet, and a full queue cannot hold the settling back. */
    if (svc->cfg->partition == PRED_PARTITION_ASSET &&
        pred_status_instance(msg->topic, svc->cfg->common.topic_root, instance, sizeof(instance)) ==
            0) {
        if (pred_members_update(&svc->members, instance, msg->payload, msg->len, msg->retained) ==
            PRED_MEMBER_REFUSED)
            tw_log(TW_LOG_ERROR, "member_refused", "instance=%s reason=max_members max=%d",
                   instance, PRED_MEMBERS_MAX);
        return;
    }
    pred_queue_push(svc->queue, msg->topic, msg->payload, msg->len, (size_t)svc->cfg->max_payload);
}

/* Scratch for saved model state: room for what the engine saves, with a margin, since the
 * decoder refuses anything larger. */
static int svc_state_scratch(struct pred_service *svc)
{
    struct pred_config pc;
    struct pred_signal *probe = malloc(pred_signal_size());
    size_t need = 0;
    pred_table_signal_config(svc->cfg, "probe", "probe", &pc);
    if (probe && pred_signal_init(probe, &pc) == 0)
        need = pred_signal_save(probe, NULL, 0);
    free(probe);
    svc->state_cap = need * 4 > MIN_STATE_DOUBLE ? need * 4 : MIN_STATE_DOUBLE;
    svc->state_buf = calloc(svc->state_cap, sizeof(*svc->state_buf));
    return svc->state_buf ? 0 : TW_ENOMEM;
}

static int svc_create_mqtt(struct pred_service *svc)
{
    const struct pred_settings *cfg = svc->cfg;
    char client_id[128], status[PRED_TOPIC_MAX], filter[PRED_TOPIC_MAX];
    snprintf(client_id, sizeof(client_id), "twin-predictor-%s", cfg->common.instance);
    snprintf(status, sizeof(status), "%s/service/predictor/%s/status", cfg->common.topic_root,
             cfg->common.instance);
    struct tw_mqtt_config mcfg = tw_mqtt_service_config(&cfg->common, client_id, status);
    /* By asset, what the session queued while this instance was down is not needed: its
     * assets went to the others, and whatever it owns again it reads back from Redis (stored
     * model, then the history since). */
    mcfg.fresh_session = cfg->partition == PRED_PARTITION_ASSET;
    int rc = tw_mqtt_create(&mcfg, svc_on_message, svc, &svc->mqtt);
    if (rc < 0 || cfg->partition == PRED_PARTITION_SHARED) {
        snprintf(filter, sizeof(filter), "$share/%s/%s/asset/+/state", cfg->group,
                 cfg->common.topic_root);
        rc = rc < 0 ? rc : tw_mqtt_subscribe(svc->mqtt, filter, 1);
        /* What partition "asset" subscribed the session to, if it ran before. */
        snprintf(filter, sizeof(filter), "%s/asset/+/state", cfg->common.topic_root);
        if (rc == 0)
            rc = tw_mqtt_drop_subscription(svc->mqtt, filter);
        snprintf(filter, sizeof(filter), "%s/service/predictor/+/status", cfg->common.topic_root);
        return rc == 0 ? tw_mqtt_drop_subscription(svc->mqtt, filter) : rc;
    }
    /* The statuses first, with their retained messages on every connect: they are all in
     * before this instance's own "online" (published after the subscriptions) comes back. */
    snprintf(filter, sizeof(filter), "%s/service/predictor/+/status", cfg->common.topic_root);
    rc = tw_mqtt_subscribe_retained(svc->mqtt, filter, 1);
    snprintf(filter, sizeof(filter), "%s/asset/+/state", cfg->common.topic_root);
    if (rc == 0)
        rc = tw_mqtt_subscribe(svc->mqtt, filter, 1);
    return rc;
}

int pred_service_init(struct pred_service *svc, const struct pred_settings *cfg,
                      struct pred_metrics *m, volatile sig_atomic_t *stop)
{
    memset(svc, 0, sizeof(*svc));
    svc->cfg = cfg;
    svc->m = m;
    svc->stop = stop;
    pred_members_init(&svc->members, cfg->common.instance);
    svc->redis_backoff = (struct tw_backoff){.initial_ms = 200, .max_ms = 30000};
    svc->reject_log = (struct tw_ratelimit){.burst = 10, .interval_ms = 10000};
    svc->redis_log = (struct tw_ratelimit){.burst = 5, .interval_ms = 10000};
    svc->limit_log = (struct tw_ratelimit){.burst = 5, .interval_ms = 10000};
    svc->alert_log = (struct tw_ratelimit){.burst = 20, .interval_ms = 10000};
    svc->publish_log = (struct tw_ratelimit){.burst = 5, .interval_ms = 10000};
    svc->state_log = (struct tw_ratelimit){.burst = 10, .interval_ms = 10000};
    int64_t scan = cfg->publish_ms / 4;
    svc->publish_scan_ms = scan < 5 ? 5 : scan > LOOP_IDLE_MS ? LOOP_IDLE_MS : scan;
    snprintf(svc->rejected_topic, sizeof(svc->rejected_topic), "%s/rejected/predictor",
             cfg->common.topic_root);
    struct tw_store_config scfg = {.url = cfg->common.redis_url,
                                   .connect_timeout_ms = 2000,
                                   .command_timeout_ms = (int)cfg->redis_timeout_ms};
    int rc = pred_table_init(&svc->table, (size_t)cfg->max_assets, (size_t)cfg->max_signals);
    if (rc == 0)
        rc = svc_state_scratch(svc);
    if (rc == 0)
        rc =
            pred_queue_create((size_t)cfg->queue_len, m->queue_depth, m->backpressure, &svc->queue);
    if (rc == 0)
        rc = tw_store_create(&scfg, NULL, 0, &svc->store);
    if (rc == 0)
        rc = svc_create_mqtt(svc);
    if (rc == 0)
        rc = pred_outbox_create(svc->mqtt, OUTBOX_CAP, m->publish_failed, &svc->outbox);
    return rc;
}

void pred_service_free(struct pred_service *svc)
{
    pred_outbox_destroy(svc->outbox); /* before the client it publishes with */
    svc->outbox = NULL;
    tw_mqtt_destroy(svc->mqtt, 0); /* before the queue its handler pushes into */
    svc->mqtt = NULL;
    pred_publish_flush_sets(svc);
    pred_queue_destroy(svc->queue);
    tw_store_destroy(svc->store);
    pred_table_free(&svc->table);
    free(svc->state_buf);
    free(svc->fpoints);
    free(svc->forecasts);
    pred_members_destroy(&svc->members);
}

bool pred_service_healthy(void *ctx, char *detail, size_t len)
{
    struct pred_service *svc = ctx;
    /* The loop keeps the gauge current; the client itself is the loop's to use and free. */
    return tw_health_links(tw_gauge_get(svc->m->mqtt_up) == 1,
                           __atomic_load_n(&svc->redis_up, __ATOMIC_RELAXED), detail, len);
}

/* ---- one TwinState ------------------------------------------------------------------------ */

static void svc_limit(struct pred_service *svc, enum pred_limit which, const char *asset,
                      const char *signal)
{
    uint32_t suppressed = 0;
    tw_counter_add(svc->m->refused[which], 1);
    if (tw_ratelimit_allow(&svc->limit_log, tw_mono_ms(), &suppressed))
        tw_log(TW_LOG_WARN, which == PRED_LIMIT_ASSETS ? "asset_refused" : "signal_refused",
               "asset=%s signal=%s reason=%s suppressed=%" PRIu32, asset, signal ? signal : "-",
               which == PRED_LIMIT_ASSETS ? "max_assets" : "max_signals", suppressed);
}

/* The asset's entry; a new one has its stored learning read first. NULL when refused. */
static struct pred_asset *svc_asset(struct pred_service *svc, const char *id)
{
    struct pred_asset *a = pred_table_find(&svc->table, id);
    if (a)
        return a;
    int rc = pred_table_add(&svc->table, id, &a);
    if (rc < 0) {
        if (rc == TW_EAGAIN)
            svc_limit(svc, PRED_LIMIT_ASSETS, id, NULL);
        else
            tw_log(TW_LOG_ERROR, "asset_add_failed", "asset=%s error=%s", id, tw_strerror(rc));
        return NULL;
    }
    /* Until the stored model could be read, the asset learns afresh but writes nothing, so
     * that a Redis outage never overwrites stored learning. */
    if (pred_restore_asset(svc, a) < 0)
        pred_table_list(&svc->table, a, PRED_LIST_UNLOADED);
    return a;
}

static struct pred_sig *svc_signal(struct pred_service *svc, struct pred_asset *a, const char *name)
{
    struct pred_sig *sig = pred_asset_signal(a, name);
    if (sig)
        return sig;
    struct pred_config pc;
    pred_table_signal_config(svc->cfg, a->id, name, &pc);
    int rc = pred_table_add_signal(&svc->table, a, name, &pc, &sig);
    if (rc == TW_EAGAIN)
        svc_limit(svc, PRED_LIMIT_SIGNALS, a->id, name);
    else if (rc < 0)
        tw_log(TW_LOG_ERROR, "signal_init_failed", "asset=%s signal=%s error=%s", a->id, name,
               tw_strerror(rc));
    return rc == 0 ? sig : NULL;
}

static int sample_cmp(const void *pa, const void *pb)
{
    const struct tw_sample *a = pa, *b = pb;
    return strcmp(a->signal, b->signal);
}

/* The value of signal `name` among the state's samples (sorted when there are many). */
static const struct tw_sample *svc_find_sample(const struct tw_sample *samples, size_t n,
                                               bool sorted, const char *name)
{
    if (sorted) {
        struct tw_sample key = {.signal = name};
        return bsearch(&key, samples, n, sizeof(*samples), sample_cmp);
    }
    for (size_t i = 0; i < n; i++)
        if (strcmp(samples[i].signal, name) == 0)
            return &samples[i];
    return NULL;
}

static void svc_observe(struct pred_service *svc, struct pred_asset *a, const char *name,
                        int64_t ts_ms, double value)
{
    struct pred_event ev[PRED_MAX_EVENTS];
    struct pred_sig *sig = svc_signal(svc, a, name);
    if (!sig)
        return;
    int64_t t0 = tw_mono_ns(), basis = pred_signal_basis_ms(sig->st);
    size_t n = pred_signal_observe(sig->st, ts_ms, value, ev);
    tw_histogram_observe(svc->m->observe_seconds, (double)(tw_mono_ns() - t0) / 1e9);
    /* A sample not newer than the last (a republished state) teaches nothing: neither counted
     * nor worth a write. */
    if (pred_signal_basis_ms(sig->st) == basis)
        return;
    tw_counter_add(svc->m->updates, 1);
    sig->dirty = true;
    if (svc->cfg->warm_start_max > 0 && pred_signal_refit_due(sig->st))
        sig->refit = a->refit = true;
    if (a->loaded)
        pred_table_list(&svc->table, a, PRED_LIST_DIRTY);
    if (n > PRED_MAX_EVENTS)
        n = PRED_MAX_EVENTS;
    pred_publish_alerts(svc, a->id, sig->name, ev, n);
}

/* Checks what ingest sent: the asset, and the names of the signals to learn (only those are
 * used). Returns the reject reason. */
static enum tw_reject svc_check(const struct tw_twin_state *s, const char *topic_asset,
                                char *detail, size_t len)
{
    if (strcmp(s->asset_id, topic_asset) != 0) {
        snprintf(detail, len, "asset_id differs from the topic's asset");
        return TW_REJECT_ASSET_MISMATCH;
    }
    for (size_t i = 0; i < s->n_changed; i++) {
        if (!tw_valid_signal(s->changed[i], strlen(s->changed[i]))) {
            snprintf(detail, len, "changed[%zu] is not a valid signal name", i);
            return TW_REJECT_BAD_SIGNAL;
        }
    }
    return TW_REJECT_NONE;
}

/* Feeds the signals the update carried (and only those) with their new values. */
static void svc_apply(struct pred_service *svc, struct tw_twin_state *s, struct pred_asset *a)
{
    bool sorted = s->n_samples > LINEAR_LOOKUP;
    if (sorted) /* the decoder's array is ours to reorder */
        qsort((void *)s->samples, s->n_samples, sizeof(*s->samples), sample_cmp);
    for (size_t i = 0; i < s->n_changed; i++) {
        const struct tw_sample *smp =
            svc_find_sample(s->samples, s->n_samples, sorted, s->changed[i]);
        if (smp)
            svc_observe(svc, a, s->changed[i], s->ts_ms, smp->value);
    }
    if (a->refit) /* before the Prediction, which then comes from the refitted models */
        pred_refit_asset(svc, a);
    int64_t now = tw_mono_ms();
    if (a->last_publish_ms == 0 || now - a->last_publish_ms >= svc->cfg->publish_ms)
        pred_publish_asset(svc, a, now);
    else
        pred_table_list(&svc->table, a, PRED_LIST_PENDING);
}

void pred_handle_message(struct pred_service *svc, const struct pred_msg *msg)
{
    char asset[TW_NAME_MAX + 1], detail[160];
    struct tw_twin_state_msg st;
    tw_counter_add(svc->m->states, 1);
    enum tw_reject r = tw_topic_asset(msg->topic, svc->cfg->common.topic_root, "state", asset);
    /* Another instance's asset (or, for a malformed topic, the topic's owner rejects it). */
    if (!pred_view_owns(&svc->view, r == TW_REJECT_NONE ? asset : msg->topic)) {
        tw_counter_add(svc->m->not_owned, 1);
        return;
    }
    if (msg->oversize) {
        snprintf(detail, sizeof(detail), "payload of %zu bytes is above the limit of %" PRId64,
                 msg->full_len, svc->cfg->max_payload);
        pred_publish_rejected(svc, msg, TW_REJECT_OVERSIZE, detail);
        return;
    }
    if (r != TW_REJECT_NONE) {
        pred_publish_rejected(svc, msg, r, "topic does not name a valid asset");
        return;
    }
    int rc = tw_codec_decode_twin_state(msg->payload, msg->len, &st);
    if (rc < 0) {
        pred_publish_rejected(svc, msg, TW_REJECT_UNDECODABLE,
                              rc == TW_ENOMEM ? "out of memory" : "not a twin.v1.TwinState");
        return;
    }
    r = svc_check(&st.s, asset, detail, sizeof(detail));
    if (r != TW_REJECT_NONE) {
        pred_publish_rejected(svc, msg, r, detail);
    } else if (st.s.n_changed > 0) {
        struct pred_asset *a = svc_asset(svc, asset);
        if (a)
            svc_apply(svc, &st.s, a);
    }
    tw_codec_twin_state_free(&st);
}

/* ---- the loop ----------------------------------------------------------------------------- */

/* Handles a chain of messages; returns how many. */
static size_t svc_handle_chain(struct pred_service *svc, struct pred_msg *m)
{
    size_t n = 0;
    while (m) {
        struct pred_msg *next = m->next;
        pred_handle_message(svc, m);
        pred_msg_free(m);
        m = next;
        n++;
    }
    return n;
}

static void svc_timers(struct pred_service *svc)
{
    int64_t now = tw_mono_ms();
    pred_publish_due(svc, now, false);
    pred_publish_flush_sets(svc);
    pred_persist_tick(svc, now);
    pred_redis_probe(svc, now);
    tw_gauge_set(svc->m->mqtt_up, svc->mqtt && tw_mqtt_is_connected(svc->mqtt) ? 1 : 0);
    tw_gauge_set(svc->m->assets, (int64_t)svc->table.n_assets);
    tw_gauge_set(svc->m->signals, (int64_t)svc->table.n_signals);
}

/* How long the loop may wait for a message before a timer is due. */
static int64_t svc_wait_ms(const struct pred_service *svc)
{
    int64_t now = tw_mono_ms(), wait = LOOP_IDLE_MS;
    if (svc->table.lists[PRED_LIST_PENDING].n > 0 && svc->next_publish_scan_ms - now < wait)
        wait = svc->next_publish_scan_ms - now;
    if (svc->persist_round)
        wait = 0;
    else if (svc->next_persist_ms - now < wait)
        wait = svc->next_persist_ms - now;
    return wait > 0 ? wait : 0;
}

/* Waits until Redis answers (or stop): a message taken before could not have its asset's
 * stored learning read. */
static int svc_wait_redis(struct pred_service *svc)
{
    struct tw_backoff backoff = {.initial_ms = 100, .max_ms = 5000};
    while (!*svc->stop) {
        int rc = tw_store_connect(svc->store);
        if (rc == 0) {
            pred_redis_result(svc, 0, "connect");
            return 0;
        }
        int64_t delay = tw_backoff_next(&backoff);
        tw_log(TW_LOG_WARN, "redis_unreachable", "error=\"%s\" retry_ms=%" PRId64,
               tw_store_last_error(svc->store), delay);
        tw_sleep_ms(delay, svc->stop);
    }
    return TW_ESHUTDOWN;
}

/* Drains what the queue holds now. More keeps coming until MQTT is closed, so this stops after
 * about two queues' worth, leaving the grace period to the final writes. */
static void svc_drain(struct pred_service *svc, int64_t deadline_ms)
{
    struct pred_msg *chain;
    size_t done = 0, most = 2 * (size_t)svc->cfg->queue_len + LOOP_BATCH;
    while (done < most && tw_mono_ms() < deadline_ms &&
           (chain = pred_queue_take(svc->queue, LOOP_BATCH, 0)))
        done += svc_handle_chain(svc, chain);
}

/* SIGTERM: finish every message taken, publish what is pending, write all learning, then
 * disconnect. Messages the handler takes while the client disconnects are learnt and
 * written too (their Predictions go to Redis only). */
static int svc_shutdown(struct pred_service *svc)
{
    int64_t deadline = tw_mono_ms() + svc->cfg->shutdown_grace_ms;
    tw_log(TW_LOG_INFO, "stopping", "pending_assets=%zu dirty_assets=%zu",
           svc->table.lists[PRED_LIST_PENDING].n, svc->table.lists[PRED_LIST_DIRTY].n);
    svc_drain(svc, deadline);
    pred_publish_due(svc, tw_mono_ms(), true);
    int rc = pred_persist_all(svc, deadline);
    /* From here the handler never waits, so the outbox thread gets the client's lock. */
    pred_queue_unbound(svc->queue);
    int64_t left = deadline - tw_mono_ms();
    pred_outbox_drain(svc->outbox, left > 100 ? left : 100);
    pred_outbox_destroy(svc->outbox);
    svc->outbox = NULL;
    left = deadline - tw_mono_ms();
    tw_mqtt_flush(svc->mqtt, left > 100 ? (int)left : 100);
    tw_gauge_set(svc->m->mqtt_up, 0);
    tw_mqtt_destroy(svc->mqtt, left > 100 ? (int)left : 100);
    svc->mqtt = NULL;
    size_t late = svc_handle_chain(svc, pred_queue_take(svc->queue, SIZE_MAX, 0));
    if (late > 0) {
        pred_publish_due(svc, tw_mono_ms(), true);
        rc = pred_persist_all(svc, tw_mono_ms() + 1000);
    }
    size_t unloaded = svc->table.lists[PRED_LIST_UNLOADED].n;
    tw_log(rc == 0 ? TW_LOG_INFO : TW_LOG_ERROR, "stopped",
           "persisted=%s unwritten_assets=%zu unloaded_assets=%zu late_messages=%zu",
           rc == 0 ? "all" : "partial", svc->table.lists[PRED_LIST_DIRTY].n, unloaded, late);
    return rc == 0 ? 0 : 1;
}

/* ---- members ------------------------------------------------------------------------------ */

static bool svc_keep_owned(const struct pred_asset *a, void *ctx)
{
    return pred_view_owns(ctx, a->id);
}

/* After a join or leave: the assets that now belong to another instance have what they learnt
 * written (their new owner starts from it; its catch-up from the history would cover the
 * gap too) and leave the table. */
static void svc_rebalance(struct pred_service *svc)
{
    if (svc->cfg->partition != PRED_PARTITION_ASSET ||
        !pred_members_snapshot(&svc->members, &svc->view))
        return;
    size_t losing = 0;
    for (size_t i = 0; i < svc->table.n_assets; i++)
        losing += !pred_view_owns(&svc->view, svc->table.assets[i]->id);
    int rc = 0;
    if (losing > 0)
        rc = pred_persist_all(svc, tw_mono_ms() + RELEASE_WRITE_MS);
    size_t released = pred_table_drop_unless(&svc->table, svc_keep_owned, &svc->view);
    tw_counter_add(svc->m->released, released);
    tw_gauge_set(svc->m->members, (int64_t)svc->view.n);
    char names[1024];
    if (pred_view_format(&svc->view, names, sizeof(names)) < 0)
        snprintf(names, sizeof(names), "(%zu)", svc->view.n);
    tw_log(TW_LOG_INFO, "members", "members=%s self=%s assets=%zu released=%zu written=%s", names,
           svc->cfg->common.instance, svc->table.n_assets, released,
           losing == 0 ? "-"
           : rc == 0   ? "all"
                       : "partial");
}

/* Partition by asset: holds the TwinStates back until this instance knows the others (its own
 * "online" came back after the retained statuses), or SETTLE_MAX_MS passed. */
static void svc_settle(struct pred_service *svc)
{
    if (svc->cfg->partition != PRED_PARTITION_ASSET)
        return;
    int64_t deadline = tw_mono_ms() + SETTLE_MAX_MS;
    while (!*svc->stop && !pred_members_settled(&svc->members) && tw_mono_ms() < deadline)
        tw_sleep_ms(10, svc->stop);
    if (!pred_members_settled(&svc->members))
        tw_log(TW_LOG_WARN, "members_unsettled",
               "waited_ms=%d detail=\"own status not seen yet (broker unreachable, or the ACL does "
               "not let it read %s/service/predictor/+/status): going on with the instances "
               "known\"",
               SETTLE_MAX_MS, svc->cfg->common.topic_root);
    svc_rebalance(svc);
}

int pred_service_run(struct pred_service *svc)
{
    if (svc_wait_redis(svc) < 0)
        return 0;
    int rc = tw_mqtt_start(svc->mqtt);
    if (rc < 0) {
        tw_log(TW_LOG_ERROR, "mqtt_start_failed", "error=%s", tw_strerror(rc));
        return 1;
    }
    svc->next_persist_ms = tw_mono_ms() + svc->cfg->persist_ms;
    tw_log(TW_LOG_INFO, "started", "instance=%s partition=%s group=%s", svc->cfg->common.instance,
           svc->cfg->partition_text, svc->cfg->group);
    svc_settle(svc);
    while (!*svc->stop) {
        svc_rebalance(svc);
        struct pred_msg *chain = pred_queue_take(svc->queue, LOOP_BATCH, svc_wait_ms(svc));
        svc_handle_chain(svc, chain);
        svc_timers(svc);
    }
    return svc_shutdown(svc);
}
