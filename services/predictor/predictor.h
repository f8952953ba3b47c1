/* SPDX-License-Identifier: Apache-2.0 */
/* twin-predictor's service plumbing shared by its source files: settings, metrics, the message
 * queue between the MQTT thread and the loop, the asset table, and the loop's I/O steps. */
#ifndef PREDICTOR_H
#define PREDICTOR_H

/*
 * Threads. Paho's receive thread runs the MQTT handler, which only copies a TwinState into the
 * bounded queue (struct pred_queue, with its lock inside) and returns, so the broker gets its
 * PUBACK once the message is in our hands. When the queue is full the handler waits for room:
 * back-pressure, nothing is dropped. Everything else (models, the asset table, Redis, encoding)
 * belongs to the loop thread, the program's main thread. The loop never calls the MQTT client
 * to publish: a waiting handler holds a lock of the client library that a publish needs, so
 * publishes go through the outbox (struct pred_outbox, its lock inside), whose own thread
 * hands them to the client. The HTTP thread reads only metrics and the atomic redis_up flag.
 */

#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "engine.h"
#include "twin/clock.h"
#include "twin/codec.h"
#include "twin/config.h"
#include "twin/log.h"
#include "twin/metrics.h"
#include "twin/model.h"
#include "twin/mqtt.h"
#include "twin/store.h"
#include "twin/validate.h"

#define PRED_TOPIC_MAX 256
#define PRED_KEY_MAX   (TW_NAME_MAX + 32) /* "twin:{<asset>}:prediction" and the like, with room */
#define PRED_ALERT_LOG_MAX 1000 /* alerts kept per asset in twin:{<asset>}:alerts (about) */

/* ---- settings (main.c) ------------------------------------------------------------------- */

enum pred_partition {
    PRED_PARTITION_ASSET,  /* every instance sees every TwinState and keeps the assets it owns */
    PRED_PARTITION_SHARED, /* one shared subscription: the broker splits the TwinStates */
};

struct pred_settings {
    struct tw_common_config common;
    const char *group;
    const char *partition_text; /* "asset" or "shared" */
    enum pred_partition partition;
    const char *horizon_text; /* "24steps" or a duration ("6h") */
    int64_t points;
    int64_t publish_ms;
    int64_t persist_ms;
    int64_t max_assets;
    int64_t max_signals;
    int64_t queue_len;
    int64_t max_payload;
    int64_t warm_start_max;
    int64_t redis_timeout_ms;
    int64_t shutdown_grace_ms;
    /* Derived by main from the text settings. */
    int64_t horizon_ms;
    uint32_t horizon_steps;
    const struct tw_model *model; /* NULL without TWIN_MODEL */
};

/* Parses "<N>steps" (N in 1..1000000) or a duration: exactly one of *ms and *steps is set. */
int pred_parse_horizon(const char *text, int64_t *ms, uint32_t *steps);

/* ---- metrics (main.c registers, everything updates) ------------------------------------- */

enum pred_limit { PRED_LIMIT_ASSETS, PRED_LIMIT_SIGNALS, PRED_LIMIT__COUNT };
enum pred_restored { PRED_RESTORED_MODEL, PRED_RESTORED_HISTORY, PRED_RESTORED__COUNT };
/* A batch refit of one signal: parameters changed; kept (the fit was no better, or the history
 * could not be used: too short, not reaching the last observation, an anomaly open); or an
 * attempt put off (over the budget of fits per second, Redis failing, out of memory: retried
 * at the asset's next TwinState). */
enum pred_refit { PRED_REFIT_CHANGED, PRED_REFIT_KEPT, PRED_REFIT_DEFERRED, PRED_REFIT__COUNT };

struct pred_metrics {
    struct tw_counter *states;
    struct tw_counter *updates;
    struct tw_counter *rejected[TW_REJECT__COUNT];
    struct tw_counter *predictions;
    struct tw_counter *publish_failed;
    struct tw_counter *alerts[PRED_CLEARED + 1]; /* by enum pred_alert_kind */
    struct tw_counter *persist;
    struct tw_counter *persist_errors;
    struct tw_counter *refused[PRED_LIMIT__COUNT];
    struct tw_counter *restored[PRED_RESTORED__COUNT];
    struct tw_counter *refits[PRED_REFIT__COUNT];
    struct tw_counter *bad_model_state;
    struct tw_counter *backpressure;
    struct tw_counter *alert_log_skipped;
    struct tw_counter *not_owned;
    struct tw_counter *released;
    struct tw_gauge *members;
    struct tw_gauge *assets;
    struct tw_gauge *signals;
    struct tw_gauge *queue_depth;
    struct tw_gauge *coverage_ppm;
    struct tw_gauge *mqtt_up;
    struct tw_gauge *redis_up;
    struct tw_histogram *observe_seconds;
};

/* ---- queue.c: TwinStates from the MQTT thread to the loop ------------------------------- */

struct pred_msg {
    struct pred_msg *next;
    char *topic;      /* NUL-terminated; stored after the struct */
    uint8_t *payload; /* the payload, or only its head for an oversize message */
    size_t len;       /* bytes at payload */
    size_t full_len;  /* bytes the message had */
    bool oversize;
};

struct pred_queue;

/* capacity: messages held at most (until pred_queue_unbound). depth and waits may be NULL. */
int pred_queue_create(size_t capacity, struct tw_gauge *depth, struct tw_counter *waits,
                      struct pred_queue **out);
void pred_queue_destroy(struct pred_queue *q);

/* MQTT thread: copies the message in (a payload above max_payload only its first
 * TW_REJECTED_HEAD_BYTES). Waits while the queue is full, in bounded steps, so the broker
 * holds back; never drops. */
void pred_queue_push(struct pred_queue *q, const char *topic, const void *payload, size_t len,
                     size_t max_payload);

/* Loop thread: takes up to max messages (oldest first, linked by next), waiting up to wait_ms
 * for the first. NULL when none came. Free each with pred_msg_free. */
struct pred_msg *pred_queue_take(struct pred_queue *q, size_t max, int64_t wait_ms);
void pred_msg_free(struct pred_msg *m);

/* Shutdown: from now on pushes never wait (the loop is about to stop draining while the MQTT
 * client disconnects). Any thread. */
void pred_queue_unbound(struct pred_queue *q);

/* ---- outbox.c: publishes from the loop, handed to the MQTT client by a thread ------------ */

struct pred_outbox;

/* Starts the publisher thread. cap: messages held at most. failed may be NULL. */
int pred_outbox_create(struct tw_mqtt *mqtt, size_t cap, struct tw_counter *failed,
                       struct pred_outbox **out);
/* Loop thread: copies the message in and returns at once. 0, TW_EAGAIN (full) or TW_ENOMEM.
 * A publish the client refuses later is counted in `failed` and logged (rate-limited). */
int pred_outbox_publish(struct pred_outbox *o, const char *topic, const void *payload, size_t len,
                        int qos, bool retain);
/* Waits up to timeout_ms until every message was handed to the client. 0 or TW_ETIMEDOUT. */
int pred_outbox_drain(struct pred_outbox *o, int64_t timeout_ms);
/* Hands what is left to the client once, stops the thread, frees. NULL is fine. */
void pred_outbox_destroy(struct pred_outbox *o);

/* ---- assets.c: assets and their signals ------------------------------------------------- */

struct pred_sig {
    char name[TW_NAME_MAX + 1];
    bool dirty;             /* learnt since its state was last written to Redis */
    bool refit;             /* a batch refit is due (pred_signal_refit_due when it learnt) */
    struct pred_signal *st; /* malloc(pred_signal_size()), owned by the table */
};

enum pred_list_kind {
    PRED_LIST_DIRTY,    /* has signals to persist (and its stored model was read) */
    PRED_LIST_PENDING,  /* a Prediction is due once publish_ms has passed */
    PRED_LIST_UNLOADED, /* its stored model could not be read yet (Redis was down) */
    PRED_LIST__COUNT
};

struct pred_asset {
    char id[TW_NAME_MAX + 1];
    size_t n_sigs, cap_sigs;
    struct pred_sig *sigs; /* sorted by name; an insert may move them */
    bool loaded;           /* the stored model was read, or found absent */
    bool listed[PRED_LIST__COUNT];
    int64_t last_publish_ms; /* monotonic; 0: never */
    bool dropped;            /* pred_table_drop_unless: on its way out */
    bool refit;              /* a signal's batch refit was put off (pred_refit_asset) */
};

struct pred_list {
    struct pred_asset **items;
    size_t n, cap;
};

struct pred_table {
    size_t max_assets, max_signals;
    size_t n_assets, n_signals;
    struct pred_asset **assets; /* every asset, in order of arrival */
    size_t *slots;              /* open addressing: index + 1 into assets, 0 empty */
    size_t n_slots;             /* a power of two, at least twice n_assets */
    struct pred_list lists[PRED_LIST__COUNT];
};

int pred_table_init(struct pred_table *t, size_t max_assets, size_t max_signals);
void pred_table_free(struct pred_table *t);
struct pred_asset *pred_table_find(const struct pred_table *t, const char *id);
/* Adds an asset (not loaded yet). The id must be valid (tw_valid_asset_id, so at most
 * TW_NAME_MAX bytes) and not in the table yet: callers look it up first. TW_EAGAIN at
 * max_assets, TW_ENOMEM. */
int pred_table_add(struct pred_table *t, const char *id, struct pred_asset **out);

/* The signal's entry, or NULL. O(log n). */
struct pred_sig *pred_asset_signal(struct pred_asset *a, const char *name);
/* Adds a signal (a valid name not in the asset yet: callers look it up first) and
 * initialises its state with cfg. TW_EAGAIN at max_signals, TW_EINVAL when
 * the engine refuses cfg, TW_ENOMEM. The pointer stays valid until the next add. */
int pred_table_add_signal(struct pred_table *t, struct pred_asset *a, const char *name,
                          const struct pred_config *cfg, struct pred_sig **out);

/* Removes (and frees) every asset for which keep returns false, and takes it off every list.
 * Returns how many were removed. */
size_t pred_table_drop_unless(struct pred_table *t,
                              bool (*keep)(const struct pred_asset *a, void *ctx), void *ctx);

/* Puts a on list k unless it is there already. 0 or TW_ENOMEM. */
int pred_table_list(struct pred_table *t, struct pred_asset *a, enum pred_list_kind k);
/* Removes entry i of list k (the last entry takes its place). */
void pred_table_unlist(struct pred_table *t, enum pred_list_kind k, size_t i);

/* The engine's settings for one signal: limits and season hints from the plant model, the
 * horizon and points from the settings. */
void pred_table_signal_config(const struct pred_settings *s, const char *asset, const char *signal,
                              struct pred_config *out);

/* ---- members.c: which instance owns which asset ------------------------------------------ */

/*
 * With partition "asset", every instance subscribes to every TwinState (not shared) and to the
 * retained status topics of all predictor instances. The live instances ("online") are the
 * members; an asset belongs to the member with the highest rendezvous weight for it, so
 * instances agree without talking to each other, and a join or leave moves only the assets
 * that must move. The MQTT thread keeps struct pred_members; the loop works on a copy
 * (struct pred_view) taken when the version changed.
 */
#define PRED_MEMBERS_MAX 256

struct pred_view {
    uint64_t version; /* 0: never taken */
    size_t n, self;   /* members, and this instance's index among them */
    char names[PRED_MEMBERS_MAX][TW_NAME_MAX + 1]; /* sorted */
    uint64_t seed[PRED_MEMBERS_MAX];               /* hash state after each name */
};

struct pred_members {
    pthread_mutex_t lock;
    char self[TW_NAME_MAX + 1];
    char names[PRED_MEMBERS_MAX][TW_NAME_MAX + 1]; /* self first, then others as they came */
    size_t n;
    uint64_t version;  /* bumped by every join and leave */
    bool settled;      /* its own live "online" came back: the retained statuses are in */
    uint64_t overflow; /* joins refused at PRED_MEMBERS_MAX */
};

enum pred_member_change {
    PRED_MEMBER_SAME,
    PRED_MEMBER_JOINED,
    PRED_MEMBER_LEFT,
    PRED_MEMBER_SETTLED, /* this instance's own status came back */
    PRED_MEMBER_REFUSED, /* a join beyond PRED_MEMBERS_MAX */
};

void pred_members_init(struct pred_members *m, const char *self);
void pred_members_destroy(struct pred_members *m);
/* The instance named by "<root>/service/predictor/<instance>/status" into out (cap bytes).
 * 0, or -1 when the topic is not one of those or the name is not a valid id. */
int pred_status_instance(const char *topic, const char *root, char *out, size_t cap);
/* A status message: "online" joins, anything else ("offline", the Will, an empty retained
 * message that clears the topic) leaves. The instance's own status only settles it. Any
 * thread. */
enum pred_member_change pred_members_update(struct pred_members *m, const char *instance,
                                            const void *payload, size_t len, bool retained);
bool pred_members_settled(struct pred_members *m);
/* Copies the members into v when they changed since v was taken; returns whether they did. */
bool pred_members_snapshot(struct pred_members *m, struct pred_view *v);
/* The index in v of the member that owns the asset. v->n >= 1. */
size_t pred_owner_index(const struct pred_view *v, const char *asset);
/* Whether this instance owns the asset (always, when it is the only member). */
bool pred_view_owns(const struct pred_view *v, const char *asset);
/* "a,b,c" into out; -1 when it does not fit. */
int pred_view_format(const struct pred_view *v, char *out, size_t cap);

/* ---- the service (service.c) ------------------------------------------------------------ */

/* Redis SETs of Predictions waiting to be sent in one pipeline. */
#define PRED_SET_BATCH 64
struct pred_set_batch {
    size_t n;
    char keys[PRED_SET_BATCH][PRED_KEY_MAX];
    uint8_t *values[PRED_SET_BATCH];
    size_t lens[PRED_SET_BATCH];
};

struct pred_service {
    const struct pred_settings *cfg;
    struct pred_metrics *m;
    volatile sig_atomic_t *stop;
    struct tw_mqtt *mqtt;       /* NULL once disconnected during shutdown */
    struct pred_outbox *outbox; /* every publish of the loop goes here; NULL likewise */
    struct tw_store *store;
    struct pred_queue *queue;
    struct pred_table table;
    struct pred_members members; /* partition "asset": kept by the MQTT thread */
    struct pred_view view;       /* the loop's copy of the members */
    /* Redis calls pause after a failure until redis_retry_ms (monotonic), with capped backoff,
     * so a dead Redis costs one timeout per backoff step, not one per message. */
    struct tw_backoff redis_backoff;
    int64_t redis_retry_ms;
    int redis_up;          /* atomic: read by the HTTP thread's health check */
    int64_t last_redis_ms; /* monotonic time of the last Redis round trip */
    /* Timers (monotonic ms). */
    int64_t next_persist_ms;
    int64_t next_publish_scan_ms;
    bool persist_round; /* a persist round is under way (it spans several loop passes) */
    /* Scratch owned by the loop thread. */
    double *state_buf; /* pred_signal_save / decode, state_cap doubles */
    size_t state_cap;
    struct pred_point points[PRED_MAX_POINTS]; /* one signal's forecast */
    struct tw_forecast_point *fpoints;         /* every forecast point of one Prediction */
    size_t fpoints_cap;
    struct tw_signal_forecast *forecasts;
    size_t forecasts_cap;
    int64_t publish_scan_ms; /* how often pending Predictions are checked */
    struct pred_set_batch sets;
    struct tw_ratelimit reject_log, redis_log, limit_log, alert_log, publish_log, state_log;
    int64_t refit_window_ms; /* batch refits: the second counted (monotonic) … */
    uint32_t refit_used;     /* … and the fits made in it (restore.c) */
    char rejected_topic[PRED_TOPIC_MAX];
};

/* Creates the clients and scratch; nothing connects yet. 0 or a negative tw_err. */
int pred_service_init(struct pred_service *svc, const struct pred_settings *cfg,
                      struct pred_metrics *m, volatile sig_atomic_t *stop);
/* Waits for Redis (logging each failure), connects MQTT and runs the loop until *stop; then
 * drains, publishes, persists and disconnects. Returns the exit status. Main thread. */
int pred_service_run(struct pred_service *svc);
void pred_service_free(struct pred_service *svc);
/* /healthz: MQTT connected and Redis reachable. HTTP thread. */
bool pred_service_healthy(void *ctx, char *detail, size_t len);

/* Handles one TwinState message: validate, observe the changed signals, publish alerts. */
void pred_handle_message(struct pred_service *svc, const struct pred_msg *msg);

/* ---- Redis (persist.c, restore.c) ------------------------------------------------------- */

/* Whether Redis may be tried now (not inside a backoff pause). */
bool pred_redis_ready(struct pred_service *svc);
/* Records the outcome of a Redis round trip: rc 0 opens the gate; a failure closes it for
 * the next backoff step and logs (rate-limited) what failed. */
void pred_redis_result(struct pred_service *svc, int rc, const char *what);
/* PINGs Redis when nothing else has asked it for a while, so /healthz stays truthful. */
void pred_redis_probe(struct pred_service *svc, int64_t now_ms);

/* Reads the asset's stored model (HGETALL twin:{a}:model); with none stored, warm-starts its
 * signals from the history stream without publishing alerts. 0 (a->loaded), or a negative
 * tw_err when Redis could not be asked (a stays unloaded; pred_persist_tick retries). */
int pred_restore_asset(struct pred_service *svc, struct pred_asset *a);

/* Runs the batch refits due for a's signals (sig->refit) from its history stream (at most
 * 4096 entries, and TWIN_PREDICTOR_WARM_START_MAX), at most 20 fits per second. Over that
 * budget, or with Redis failing, they wait for the asset's next TwinState (a->refit). */
void pred_refit_asset(struct pred_service *svc, struct pred_asset *a);

/* Saves one signal's state into svc->state_buf (grown as needed) and encodes it as a
 * SignalModelState into *buf (grown as needed, *cap its size) at offset *used. 0 or
 * TW_ENOMEM. */
int pred_encode_signal_state(struct pred_service *svc, const struct pred_signal *st, uint8_t **buf,
                             size_t *cap, size_t *used);

/* Runs due timers: retries deferred model reads, then writes dirty model state, a few
 * pipelines per call so the loop keeps taking messages. */
void pred_persist_tick(struct pred_service *svc, int64_t now_ms);
/* Writes every dirty signal, retrying until deadline_ms (monotonic). 0 when all was written. */
int pred_persist_all(struct pred_service *svc, int64_t deadline_ms);

/* ---- publishing (publish.c) ------------------------------------------------------------- */

/* Publishes the Predictions that are due (all pending ones with force) and sends their SETs. */
void pred_publish_due(struct pred_service *svc, int64_t now_ms, bool force);
/* Publishes a's Prediction now and queues its SET. */
void pred_publish_asset(struct pred_service *svc, struct pred_asset *a, int64_t now_ms);
/* Sends the queued Prediction SETs in one pipeline (dropped when Redis is down: the retained
 * MQTT message has the same content, and the next Prediction overwrites the key). */
void pred_publish_flush_sets(struct pred_service *svc);
void pred_publish_alerts(struct pred_service *svc, const char *asset, const char *signal,
                         const struct pred_event *ev, size_t n);
void pred_publish_rejected(struct pred_service *svc, const struct pred_msg *msg,
                           enum tw_reject reason, const char *detail);

#endif
