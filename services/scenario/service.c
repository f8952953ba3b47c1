/* SPDX-License-Identifier: Apache-2.0 */
/* twin-scenario's control loop: requests from the MQTT inbox checked, queued or cancelled,
 * Rejected messages and results published (results also stored in Redis), and the shutdown. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "scenario_service.h"
#include "twin/clock.h"
#include "twin/rng.h"
#include "twin/codec.h"
#include "twin/err.h"
#include "twin/log.h"
#include "twin/validate.h"

#define INBOX_CAP        1024        /* requests between the MQTT handler and the loop */
#define INBOX_MAX_BYTES  (64u << 20) /* and their bytes: 1,024 requests of 1 MiB would be 1 GiB */
#define LOOP_WAIT_MS     200
#define REDIS_PROBE_MS   5000 /* PING when Redis was not used for this long (for /healthz) */
#define STORE_ATTEMPTS   3    /* SET of a result, from a worker */
#define PUBLISH_RETRY_MS 10000
#define ERR_MAX          512

static const char *const reject_words[SCEN_REJECT__COUNT] = {
    [SCEN_REJECT_EMPTY_PAYLOAD] = "empty_payload",
    [SCEN_REJECT_UNDECODABLE] = "undecodable",
    [SCEN_REJECT_OVERSIZE] = "oversize",
    [SCEN_REJECT_RETAINED] = "retained",
    [SCEN_REJECT_BAD_ID] = "bad_id",
    [SCEN_REJECT_BAD_REQUEST] = "bad_request",
    [SCEN_REJECT_TOO_LARGE] = "too_large",
    [SCEN_REJECT_DUPLICATE_ID] = "duplicate_id",
    [SCEN_REJECT_UNKNOWN_ID] = "unknown_id",
    [SCEN_REJECT_QUEUE_FULL] = "queue_full",
    [SCEN_REJECT_BUSY] = "busy",
    [SCEN_REJECT_SHUTTING_DOWN] = "shutting_down",
};

const char *scen_reject_word(enum scen_reject r)
{
    return r < SCEN_REJECT__COUNT ? reject_words[r] : "unknown";
}

/* Log limits: the handler's and the control loop's (one struct per thread). */
static struct tw_ratelimit busy_log = {.burst = 5, .interval_ms = 10000};
static struct tw_ratelimit reject_log = {.burst = 20, .interval_ms = 10000};

/* ---- publishing (any thread) ---------------------------------------------------------------- */

static int publish_retrying(struct scen_service *svc, const char *topic, const void *payload,
                            size_t len, int qos, bool retain, int64_t budget_ms)
{
    int64_t deadline = tw_mono_ms() + budget_ms;
    int rc;
    while ((rc = tw_mqtt_publish(svc->mqtt, topic, payload, len, qos, retain)) == TW_EAGAIN &&
           tw_mono_ms() < deadline)
        tw_sleep_ms(50, NULL);
    if (rc < 0)
        tw_counter_add(svc->m->publish_failed, 1);
    return rc;
}

void scen_publish_progress(struct scen_service *svc, const struct scen_progress *p)
{
    uint8_t buf[256];
    size_t len;
    char topic[SCEN_TOPIC_MAX];
    if (scen_progress_encode(p, buf, sizeof(buf), &len) < 0)
        return;
    snprintf(topic, sizeof(topic), "%s/scenario/%s/progress", svc->cfg->common.topic_root, p->id);
    if (tw_mqtt_publish(svc->mqtt, topic, buf, len, 1, false) < 0)
        tw_counter_add(svc->m->publish_failed, 1);
}

void scen_redis_result(struct scen_service *svc, int rc)
{
    __atomic_store_n(&svc->redis_up, rc == 0, __ATOMIC_RELAXED);
    __atomic_store_n(&svc->last_redis_ms, tw_mono_ms(), __ATOMIC_RELAXED);
    tw_gauge_set(svc->m->redis_up, rc == 0);
}

/* SET twin:scenario:<id> <result> EX <ttl>; retried while Redis does not answer. */
static void store_result(struct scen_service *svc, struct tw_store *store, const char *id,
                         const uint8_t *buf, size_t len, int attempts)
{
    char key[sizeof(SCEN_KEY_PREFIX) + SCEN_ID_MAX], ttl[24];
    snprintf(key, sizeof(key), SCEN_KEY_PREFIX "%s", id);
    snprintf(ttl, sizeof(ttl), "%" PRId64, svc->cfg->result_ttl_s);
    const char *argv[] = {"SET", key, (const char *)buf, "EX", ttl};
    size_t argvlen[] = {3, strlen(key), len, 2, strlen(ttl)};
    struct tw_backoff backoff = {.initial_ms = 200, .max_ms = 2000};
    const char *why = "";
    for (int i = 0; i < attempts; i++) {
        struct tw_reply *r = NULL;
        if (i > 0)
            tw_sleep_ms(tw_backoff_next(&backoff), NULL);
        int rc = tw_store_command(store, &r, 5, argv, argvlen);
        scen_redis_result(svc, rc);
        bool ok = rc == 0 && r->type == TW_REPLY_STATUS;
        char refused[200] = "";
        if (rc == 0 && !ok)
            snprintf(refused, sizeof(refused), "%s", r->type == TW_REPLY_ERROR ? r->str : "?");
        tw_store_replies_free(r, 1);
        if (ok)
            return;
        if (rc == 0) { /* Redis answered with an error (NOPERM, OOM): retrying will not help */
            tw_counter_add(svc->m->store_errors, 1);
            tw_log(TW_LOG_ERROR, "result_store_failed", "id=%s error=\"%s\"", id, refused);
            return;
        }
        why = tw_store_last_error(store);
    }
    tw_counter_add(svc->m->store_errors, 1);
    tw_log(TW_LOG_ERROR, "result_store_failed", "id=%s error=\"%s\" attempts=%d", id, why,
           attempts);
}

void scen_publish_outcome(struct scen_service *svc, struct tw_store *store,
                          const struct scen_outcome *o)
{
    char topic[SCEN_TOPIC_MAX];
    uint8_t *buf = NULL;
    size_t len = 0;
    int rc = scen_outcome_encode(o, (size_t)svc->cfg->max_result_bytes, &buf, &len);
    if (rc == TW_EINVAL) { /* even trimmed, larger than the broker takes */
        struct scen_outcome small = *o;
        small.r = NULL;
        small.status = SCEN_ERROR;
        small.error = "the result is larger than TWIN_SCENARIO_MAX_RESULT even without its "
                      "variants' KPIs: ask for fewer KPIs or variants (sweep.top)";
        rc = scen_outcome_encode(&small, 0, &buf, &len);
    }
    if (rc < 0) {
        tw_log(TW_LOG_ERROR, "result_encode_failed", "id=%s error=%s", o->id, tw_strerror(rc));
        return;
    }
    /* Redis first: whoever sees the MQTT result can read the key. */
    store_result(svc, store, o->id, buf, len, store == svc->store ? 1 : STORE_ATTEMPTS);
    snprintf(topic, sizeof(topic), "%s/scenario/%s/result", svc->cfg->common.topic_root, o->id);
    rc = publish_retrying(svc, topic, buf, len, 1, true, PUBLISH_RETRY_MS);
    if (rc < 0)
        tw_log(TW_LOG_ERROR, "result_publish_failed", "id=%s error=%s", o->id, tw_strerror(rc));
    if (o->status >= SCEN_OK && o->status <= SCEN_CANCELLED)
        tw_counter_add(svc->m->requests[o->status], 1);
    free(buf);
}

void scen_finish_unrun(struct scen_service *svc, struct tw_store *store, struct scen_job *job,
                       int status, const char *error)
{
    struct scen_outcome o = {.name = job->req.name,
                             .status = status,
                             .error = error,
                             .replications = job->spec.replications,
                             .horizon_ms = (int64_t)(job->spec.horizon * 1000.0),
                             .warmup_ms = (int64_t)(job->spec.warmup * 1000.0),
                             .seed = job->spec.seed,
                             .finished_ms = tw_now_ms()};
    memcpy(o.id, job->req.id, sizeof(o.id));
    tw_log(TW_LOG_INFO, "request_finished", "id=%s status=%s error=\"%s\"", o.id,
           scen_status_word(status), error);
    scen_publish_outcome(svc, store, &o);
    if (job->claimed)
        scen_claim_release(svc, store, job->req.id);
}

/* ---- refusing ------------------------------------------------------------------------------ */

static void svc_reject(struct scen_service *svc, const struct tw_qmsg *msg, enum scen_reject r,
                       const char *id, const char *detail, struct tw_ratelimit *rl)
{
    uint8_t *buf = NULL;
    size_t len = 0;
    uint32_t suppressed = 0;
    tw_counter_add(svc->m->rejected[r], 1);
    if (tw_ratelimit_allow(rl, tw_mono_ms(), &suppressed))
        tw_log(TW_LOG_WARN, "request_rejected",
               "reason=%s id=%s detail=\"%.300s\" suppressed=%" PRIu32, scen_reject_word(r),
               id && id[0] ? id : "-", detail, suppressed);
    if (tw_codec_encode_rejected(msg->topic, scen_reject_word(r), detail, msg->payload, msg->len,
                                 &buf, &len) == 0)
        publish_retrying(svc, svc->rejected_topic, buf, len, 0, false, 0);
    free(buf);
}

/* A refusal of a request whose id is known: a Rejected and an ERROR result under the id, unless
 * a request with that id is queued or running: its client waits for that one's result. */
static void svc_refuse(struct scen_service *svc, const struct tw_qmsg *msg, enum scen_reject r,
                       const struct scen_request *req, const char *why)
{
    char dup[ERR_MAX + 96];
    if (scen_jobs_has(&svc->jobs, req->id)) {
        snprintf(dup, sizeof(dup),
                 "a request with id %s is already queued or running (and this "
                 "one is refused anyway: %s)",
                 req->id, why);
        svc_reject(svc, msg, SCEN_REJECT_DUPLICATE_ID, req->id, dup, &reject_log);
        return;
    }
    svc_reject(svc, msg, r, req->id, why, &reject_log);
    struct scen_outcome o = {.name = req->name,
                             .status = SCEN_ERROR,
                             .error = why,
                             .replications = req->replications,
                             .horizon_ms = req->horizon_ms,
                             .warmup_ms = req->warmup_ms,
                             .seed = req->seed,
                             .finished_ms = tw_now_ms()};
    memcpy(o.id, req->id, sizeof(o.id));
    scen_publish_outcome(svc, svc->store, &o);
}

/* ---- one request ----------------------------------------------------------------------------- */

static uint64_t svc_pick_seed(struct scen_service *svc)
{
    uint64_t x =
        (uint64_t)tw_now_ms() ^ (__atomic_add_fetch(&svc->seed_counter, 1, __ATOMIC_RELAXED) << 40);
    x = tw_splitmix64(&x);
    return x ? x : 1;
}

/* A cancel of a request another runner holds goes on to that runner's cancel topic. Returns
 * whether it went. */
static bool svc_forward_cancel(struct scen_service *svc, const struct tw_qmsg *msg, const char *id)
{
    char holder[TW_NAME_MAX + 1], topic[SCEN_TOPIC_MAX + TW_NAME_MAX];
    if (strcmp(msg->topic, svc->cancel_topic) == 0) /* forwarded already: never twice */
        return false;
    if (scen_claim_holder(svc, id, holder, sizeof(holder)) != 1 ||
        strcmp(holder, svc->cfg->common.instance) == 0 ||
        !tw_valid_asset_id(holder, strlen(holder)))
        return false;
    snprintf(topic, sizeof(topic), "%s/service/scenario/%s/cancel", svc->cfg->common.topic_root,
             holder);
    int rc = publish_retrying(svc, topic, msg->payload, msg->len, 1, false, PUBLISH_RETRY_MS);
    tw_log(rc == 0 ? TW_LOG_INFO : TW_LOG_ERROR, "cancel_forwarded", "id=%s runner=%s error=%s", id,
           holder, rc == 0 ? "-" : tw_strerror(rc));
    if (rc == 0)
        tw_counter_add(svc->m->cancels_forwarded, 1);
    return rc == 0;
}

static void svc_cancel(struct scen_service *svc, const struct tw_qmsg *msg, const char *id)
{
    struct scen_job *removed = NULL;
    char detail[128];
    if (scen_jobs_cancel(&svc->jobs, id, &removed) < 0) {
        if (svc_forward_cancel(svc, msg, id))
            return;
        snprintf(detail, sizeof(detail), "no queued or running request with id %s", id);
        svc_reject(svc, msg, SCEN_REJECT_UNKNOWN_ID, id, detail, &reject_log);
        return;
    }
    tw_log(TW_LOG_INFO, "cancel_requested", "id=%s state=%s", id, removed ? "queued" : "running");
    if (removed) {
        scen_finish_unrun(svc, svc->store, removed, SCEN_CANCELLED, "cancelled while queued");
        scen_job_free(removed);
    }
}

/* Checks a decoded request, translates it and queues it; takes the job. */
static void svc_submit(struct scen_service *svc, const struct tw_qmsg *msg, struct scen_job *job)
{
    char why[ERR_MAX];
    bool too_large = false;
    if (job->req.seed == 0)
        job->req.seed = svc_pick_seed(svc);
    if (scen_request_to_spec(&job->req, svc->cfg->plant, &svc->cfg->limits, &job->spec, &too_large,
                             why, sizeof(why)) < 0) {
        svc_refuse(svc, msg, too_large ? SCEN_REJECT_TOO_LARGE : SCEN_REJECT_BAD_REQUEST, &job->req,
                   why);
        scen_job_free(job);
        return;
    }
    job->work_hours = scen_spec_work_hours(&job->spec);
    job->reps_total = scen_spec_runs(&job->spec) * job->spec.replications;
    char id[SCEN_ID_MAX + 1], holder[TW_NAME_MAX + 1];
    memcpy(id, job->req.id, sizeof(id));
    double work = job->work_hours;
    /* Several runners share the request topic: the claim refuses an id another one holds. A
     * Redis outage lets the request through unclaimed (the run needs Redis anyway). */
    int claim = scen_claim_take(svc, id, holder, sizeof(holder));
    if (claim == 1) {
        snprintf(why, sizeof(why), "a request with id %s is already queued or running on runner %s",
                 id, holder);
        svc_reject(svc, msg, SCEN_REJECT_DUPLICATE_ID, id, why, &reject_log);
        scen_job_free(job);
        return;
    }
    job->claimed = claim == 0;
    bool held_here = scen_jobs_has(&svc->jobs, id);
    switch (scen_jobs_submit(&svc->jobs, job)) {
    case SCEN_ADMIT_OK: /* the queue owns the job now */
        tw_log(TW_LOG_INFO, "request_queued", "id=%s work_h=%.6g", id, work);
        return;
    case SCEN_ADMIT_DUPLICATE:
        snprintf(why, sizeof(why), "a request with id %s is already queued or running", id);
        svc_reject(svc, msg, SCEN_REJECT_DUPLICATE_ID, id, why, &reject_log);
        break;
    case SCEN_ADMIT_FULL:
        if (job->claimed && !held_here)
            scen_claim_release(svc, svc->store, id);
        snprintf(why, sizeof(why), "the queue is full (%" PRId64 " requests wait): retry later",
                 svc->cfg->queue);
        svc_refuse(svc, msg, SCEN_REJECT_QUEUE_FULL, &job->req, why);
        break;
    case SCEN_ADMIT_CLOSED:
        if (job->claimed && !held_here)
            scen_claim_release(svc, svc->store, id);
        svc_refuse(svc, msg, SCEN_REJECT_SHUTTING_DOWN, &job->req,
                   "the scenario runner is stopping: submit it again");
        break;
    }
    scen_job_free(job);
}

static void svc_handle(struct scen_service *svc, const struct tw_qmsg *msg)
{
    char why[ERR_MAX];
    tw_counter_add(svc->m->received, 1);
    if (msg->oversize) {
        snprintf(why, sizeof(why), "payload of %zu bytes is above the limit of %" PRId64,
                 msg->full_len, svc->cfg->max_payload);
        svc_reject(svc, msg, SCEN_REJECT_OVERSIZE, NULL, why, &reject_log);
        return;
    }
    if (msg->full_len == 0) { /* also what clears a retained message: nothing to run */
        svc_reject(svc, msg, SCEN_REJECT_EMPTY_PAYLOAD, NULL, "empty payload", &reject_log);
        return;
    }
    if (msg->retained) {
        svc_reject(svc, msg, SCEN_REJECT_RETAINED, NULL,
                   "a retained request would run again at every subscribe: publish requests "
                   "without retain",
                   &reject_log);
        return;
    }
    struct scen_job *job = calloc(1, sizeof(*job));
    if (!job) {
        tw_log(TW_LOG_ERROR, "out_of_memory", "what=job");
        return;
    }
    enum scen_fault f = scen_request_decode(msg->payload, msg->len, &job->req, why, sizeof(why));
    if (f == SCEN_FAULT_UNDECODABLE || f == SCEN_FAULT_BAD_ID)
        svc_reject(svc, msg, f == SCEN_FAULT_BAD_ID ? SCEN_REJECT_BAD_ID : SCEN_REJECT_UNDECODABLE,
                   NULL, why, &reject_log);
    else if (f == SCEN_FAULT_BAD_REQUEST && !job->req.cancel)
        svc_refuse(svc, msg, SCEN_REJECT_BAD_REQUEST, &job->req, why);
    else if (job->req.cancel)
        svc_cancel(svc, msg, job->req.id);
    else if (strcmp(msg->topic, svc->cancel_topic) == 0)
        svc_reject(svc, msg, SCEN_REJECT_BAD_REQUEST, job->req.id,
                   "only cancels are forwarded between runners", &reject_log);
    else {
        svc_submit(svc, msg, job);
        return;
    }
    scen_job_free(job);
}

/* ---- the inbox ------------------------------------------------------------------------------ */

static void svc_on_message(void *ctx, const struct tw_mqtt_msg *msg)
{
    struct scen_service *svc = ctx;
    struct tw_qmsg *m = tw_msgq_push(&svc->inbox, msg, (size_t)svc->cfg->max_payload);
    if (m) { /* full; never wait here: the loop may be publishing, which needs Paho's lock */
        tw_counter_add(svc->m->received, 1);
        svc_reject(svc, m, SCEN_REJECT_BUSY, NULL, "the runner's inbox is full: retry later",
                   &busy_log);
        free(m);
    }
}

/* ---- set-up, loop, shutdown ----------------------------------------------------------------- */

int scen_service_init(struct scen_service *svc, const struct scen_settings *cfg,
                      struct scen_metrics *m, volatile sig_atomic_t *stop)
{
    char client_id[128], status[SCEN_TOPIC_MAX], filter[SCEN_TOPIC_MAX + 64];
    memset(svc, 0, sizeof(*svc));
    svc->cfg = cfg;
    svc->m = m;
    svc->stop = stop;
    svc->threads = (unsigned)cfg->threads;
    if (tw_msgq_init(&svc->inbox, INBOX_CAP, INBOX_MAX_BYTES) < 0)
        return TW_ENOMEM;
    snprintf(svc->request_topic, sizeof(svc->request_topic), "%s/scenario/request",
             cfg->common.topic_root);
    snprintf(svc->rejected_topic, sizeof(svc->rejected_topic), "%s/rejected/scenario",
             cfg->common.topic_root);
    snprintf(svc->cancel_topic, sizeof(svc->cancel_topic), "%s/service/scenario/%s/cancel",
             cfg->common.topic_root, cfg->common.instance);
    snprintf(client_id, sizeof(client_id), "twin-scenario-%s", cfg->common.instance);
    snprintf(status, sizeof(status), "%s/service/scenario/%s/status", cfg->common.topic_root,
             cfg->common.instance);
    struct tw_store_config scfg = {.url = cfg->common.redis_url,
                                   .connect_timeout_ms = 2000,
                                   .command_timeout_ms = (int)cfg->redis_timeout_ms};
    struct tw_mqtt_config mcfg = tw_mqtt_service_config(&cfg->common, client_id, status);
    int rc = tw_store_create(&scfg, NULL, 0, &svc->store);
    if (rc == 0)
        rc = tw_mqtt_create(&mcfg, svc_on_message, svc, &svc->mqtt);
    /* Shared: with several instances each request runs once, on whichever the broker picks. */
    snprintf(filter, sizeof(filter), "$share/%s/%s", cfg->group, svc->request_topic);
    if (rc == 0)
        rc = tw_mqtt_subscribe(svc->mqtt, filter, 1);
    if (rc == 0) /* earlier runners subscribed to the request topic itself, not shared */
        rc = tw_mqtt_drop_subscription(svc->mqtt, svc->request_topic);
    if (rc == 0)
        rc = tw_mqtt_subscribe(svc->mqtt, svc->cancel_topic, 1);
    return rc;
}

void scen_service_free(struct scen_service *svc)
{
    if (!svc->cfg)
        return; /* never initialised */
    struct scen_job *left = scen_jobs_stop(&svc->jobs, 0);
    while (left) {
        struct scen_job *next = left->next;
        scen_job_free(left);
        left = next;
    }
    tw_mqtt_destroy(svc->mqtt, 0); /* before the inbox its handler appends to */
    scen_jobs_destroy(&svc->jobs);
    svc->mqtt = NULL;
    tw_msgq_destroy(&svc->inbox);
    tw_store_destroy(svc->store);
    svc->store = NULL;
}

bool scen_service_healthy(void *ctx, char *detail, size_t len)
{
    struct scen_service *svc = ctx;
    /* The loop keeps the gauge current; the client itself is the loop's to use and free. */
    return tw_health_links(tw_gauge_get(svc->m->mqtt_up) == 1,
                           __atomic_load_n(&svc->redis_up, __ATOMIC_RELAXED), detail, len);
}

/* PINGs Redis when nobody used it for a while, so /healthz stays truthful. */
static void svc_probe_redis(struct scen_service *svc, int64_t now_ms)
{
    if (now_ms - __atomic_load_n(&svc->last_redis_ms, __ATOMIC_RELAXED) < REDIS_PROBE_MS)
        return;
    struct tw_reply *r = NULL;
    const char *argv[] = {"PING"};
    int rc = tw_store_command(svc->store, &r, 1, argv, NULL);
    tw_store_replies_free(r, 1);
    scen_redis_result(svc, rc);
}

static int svc_wait_redis(struct scen_service *svc)
{
    struct tw_backoff backoff = {.initial_ms = 100, .max_ms = 5000};
    while (!*svc->stop) {
        int rc = tw_store_connect(svc->store);
        if (rc == 0) {
            scen_redis_result(svc, 0);
            return 0;
        }
        int64_t delay = tw_backoff_next(&backoff);
        tw_log(TW_LOG_WARN, "redis_unreachable", "error=\"%s\" retry_ms=%" PRId64,
               tw_store_last_error(svc->store), delay);
        tw_sleep_ms(delay, svc->stop);
    }
    return TW_ESHUTDOWN;
}

/* SIGTERM: running requests get the grace period, then stop; requests that never started get
 * an ERROR result (so no client waits in vain); then MQTT disconnects. */
static int svc_shutdown(struct scen_service *svc)
{
    int64_t deadline = tw_mono_ms() + svc->cfg->shutdown_grace_ms;
    struct tw_qmsg *m;
    tw_log(TW_LOG_INFO, "stopping", "queued=%" PRId64 " running=%" PRId64,
           tw_gauge_get(svc->m->queue_depth), tw_gauge_get(svc->m->running));
    struct scen_job *left = scen_jobs_stop(&svc->jobs, deadline);
    size_t unrun = 0;
    while (left) {
        struct scen_job *next = left->next;
        scen_finish_unrun(svc, svc->store, left, SCEN_ERROR,
                          "the scenario runner stopped before this request started: submit it "
                          "again");
        scen_job_free(left);
        left = next;
        unrun++;
    }
    while ((m = tw_msgq_take(&svc->inbox, 0)) !=
           NULL) { /* the queue is closed: refused with a result */
        svc_handle(svc, m);
        free(m);
    }
    int64_t left_ms = deadline - tw_mono_ms();
    tw_mqtt_flush(svc->mqtt, left_ms > 1000 ? (int)left_ms : 1000);
    tw_gauge_set(svc->m->mqtt_up, 0);
    tw_mqtt_destroy(svc->mqtt, 1000);
    svc->mqtt = NULL;
    tw_log(TW_LOG_INFO, "stopped", "unrun=%zu", unrun);
    return 0;
}

int scen_service_run(struct scen_service *svc)
{
    if (svc_wait_redis(svc) < 0)
        return 0;
    int rc = scen_jobs_start(&svc->jobs, svc);
    if (rc == 0)
        rc = tw_mqtt_start(svc->mqtt);
    if (rc < 0) {
        tw_log(TW_LOG_ERROR, "start_failed", "error=%s", tw_strerror(rc));
        return 1;
    }
    tw_log(TW_LOG_INFO, "started", "instance=%s jobs=%" PRId64 " threads=%u topic=%s group=%s",
           svc->cfg->common.instance, svc->cfg->jobs, svc->threads, svc->request_topic,
           svc->cfg->group);
    while (!*svc->stop) {
        struct tw_qmsg *m = tw_msgq_take(&svc->inbox, LOOP_WAIT_MS);
        if (m) {
            svc_handle(svc, m);
            free(m);
        }
        int64_t now = tw_mono_ms();
        scen_jobs_tick(&svc->jobs, now);
        svc_probe_redis(svc, now);
        tw_gauge_set(svc->m->mqtt_up, tw_mqtt_is_connected(svc->mqtt) ? 1 : 0);
    }
    return svc_shutdown(svc);
}
