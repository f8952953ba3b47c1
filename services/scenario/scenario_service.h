/* SPDX-License-Identifier: Apache-2.0 */
/* twin-scenario's service plumbing shared by its source files: settings, metrics, the inbox
 * between the MQTT thread and the control loop, the job queue and its workers, the snapshot. */
#ifndef SCENARIO_SERVICE_H
#define SCENARIO_SERVICE_H

/*
 * Threads.
 *  - Paho's receive thread runs the MQTT handler, which only copies a request into the inbox
 *    and returns (it never waits: a full inbox refuses the message with a Rejected `busy`, sent
 *    from the handler itself, which Paho allows).
 *  - The control loop (the main thread) decodes and checks requests, queues them, cancels,
 *    publishes Rejected messages and error results, enforces run time limits and keeps the
 *    health gauges. It owns one Redis connection.
 *  - TWIN_SCENARIO_JOBS worker threads each take the next job (struct scen_jobs picks it), read
 *    the live snapshot, run it with scn_run on TWIN_SCENARIO_THREADS threads and publish and
 *    store its result. Each owns one Redis connection.
 * Publishing happens from all of them. Paho holds a lock of its own while the handler runs,
 * so nobody may publish while holding a lock the handler waits for: the handler takes only the
 * inbox lock, and nothing is published while holding it.
 */

#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "plant.h"
#include "scenario.h"
#include "snapshot.h"
#include "twin/config.h"
#include "twin/metrics.h"
#include "twin/model.h"
#include "twin/mqtt.h"
#include "twin/msgq.h"
#include "twin/store.h"
#include "wire.h"

#define SCEN_TOPIC_MAX  256
#define SCEN_KEY_PREFIX "twin:scenario:"

/* ---- settings (main.c) ------------------------------------------------------------------- */

struct scen_settings {
    struct tw_common_config common;
    const char *group; /* shared-subscription group of the request topic */
    bool check_model;
    int64_t threads; /* per running request; 0: one per online CPU */
    int64_t jobs;    /* requests run at once */
    int64_t queue;   /* requests waiting at most */
    const char *result_ttl_text;
    const char *horizon_text;
    const char *warmup_text;
    const char *max_horizon_text;
    int64_t replications;
    int64_t max_replications;
    int64_t max_work_hours;
    int64_t max_events;
    int64_t max_run_s;
    int64_t max_payload;
    int64_t max_result_bytes;
    int64_t aging_s;
    int64_t progress_ms;
    int64_t redis_timeout_ms;
    int64_t shutdown_grace_ms;
    /* Derived by main from the text settings and the model file. */
    int64_t result_ttl_s;
    struct scen_limits limits;
    const struct tw_model *model;
    const struct sim_plant *plant;
};

/* Parses a duration as the model does ("7d", "90m") or "0". 0 or TW_EINVAL. */
int scen_parse_duration(const char *text, int64_t *ms);

/* ---- metrics (main.c registers, everything updates) ------------------------------------- */

enum scen_reject {
    SCEN_REJECT_EMPTY_PAYLOAD = 0,
    SCEN_REJECT_UNDECODABLE,
    SCEN_REJECT_OVERSIZE,
    SCEN_REJECT_RETAINED,
    SCEN_REJECT_BAD_ID,
    SCEN_REJECT_BAD_REQUEST,
    SCEN_REJECT_TOO_LARGE,
    SCEN_REJECT_DUPLICATE_ID,
    SCEN_REJECT_UNKNOWN_ID,
    SCEN_REJECT_QUEUE_FULL,
    SCEN_REJECT_BUSY,
    SCEN_REJECT_SHUTTING_DOWN,
    SCEN_REJECT__COUNT
};

/* The reason word: Rejected.reason and the metric label. */
const char *scen_reject_word(enum scen_reject r);

struct scen_metrics {
    struct tw_counter *received;
    struct tw_counter *requests[SCEN_CANCELLED + 1]; /* by enum scen_status: ok, error, cancelled */
    struct tw_counter *rejected[SCEN_REJECT__COUNT];
    struct tw_counter *events;
    struct tw_counter *replications;
    struct tw_counter *store_errors;
    struct tw_counter *publish_failed;
    struct tw_counter *cancels_forwarded;
    struct tw_gauge *queue_depth;
    struct tw_gauge *running;
    struct tw_gauge *mqtt_up;
    struct tw_gauge *redis_up;
    struct tw_histogram *run_seconds;
    struct tw_histogram *queue_seconds;
    struct tw_histogram *snapshot_seconds;
};

/* ---- jobs.c: queued and running requests ------------------------------------------------- */

enum scen_job_state { SCEN_JOB_QUEUED, SCEN_JOB_RUNNING };

enum scen_stop { SCEN_STOP_NONE = 0, SCEN_STOP_CANCEL, SCEN_STOP_TIMEOUT, SCEN_STOP_SHUTDOWN };

struct scen_job {
    struct scen_job *next;            /* every queued or running job, in submission order */
    struct scen_request req;          /* owns the sweep's value arrays */
    struct scn_spec spec;             /* borrows them */
    double work_hours;                /* its size, for the scheduler */
    uint64_t reps_total;              /* replications of every run, for progress */
    int64_t submitted_ms, started_ms; /* monotonic */
    enum scen_job_state state;
    uint32_t position;        /* last QUEUED position published */
    volatile int cancel;      /* scn_run polls it */
    int stop;                 /* enum scen_stop, atomic */
    int64_t last_progress_ms; /* atomic: monotonic time of the last RUNNING progress */
    bool claimed;             /* its id's claim in Redis is this runner's (claim.c) */
};

struct scen_worker; /* a worker thread and its Redis connection (jobs.c) */

/* The scheduler. Every field below the lock is guarded by it. */
struct scen_jobs {
    struct scen_service *svc;
    struct scen_worker *workers;
    size_t n_workers;
    pthread_mutex_t lock;
    pthread_cond_t changed;
    struct scen_job *head;
    size_t n_queued, n_running;
    bool closed;  /* shutting down: nothing new starts */
    bool started; /* workers run (scen_jobs_start succeeded at least partly) */
};

/* What scen_jobs_admit says about a new request. */
enum scen_admit { SCEN_ADMIT_OK, SCEN_ADMIT_DUPLICATE, SCEN_ADMIT_FULL, SCEN_ADMIT_CLOSED };

/* Starts the worker threads. 0 or TW_ENOMEM. Main thread. */
int scen_jobs_start(struct scen_jobs *q, struct scen_service *svc);
/* Queues a job (owned by the queue from now on) unless its id is queued or running already,
 * the queue is full or closed; publishes its QUEUED progress. Control loop. */
enum scen_admit scen_jobs_submit(struct scen_jobs *q, struct scen_job *job);
/* Whether a job with this id is queued or running. Any thread. */
bool scen_jobs_has(struct scen_jobs *q, const char *id);
/* Cancels the job with this id: a queued one is taken out and returned in *removed (the caller
 * reports and frees it), a running one is told to stop (its worker reports it). 0, or
 * TW_ENOENT when no such job is queued or running. Control loop. */
int scen_jobs_cancel(struct scen_jobs *q, const char *id, struct scen_job **removed);
/* Stops runs that passed the time limit. Control loop. */
void scen_jobs_tick(struct scen_jobs *q, int64_t now_ms);
/* Shutdown: nothing new starts (later submits say SCEN_ADMIT_CLOSED); running jobs get until
 * deadline_ms (monotonic) to finish, then are stopped; the workers are joined. Returns the jobs
 * that never started (the caller reports and frees them). Main thread. */
struct scen_job *scen_jobs_stop(struct scen_jobs *q, int64_t deadline_ms);
/* Releases the lock and condition; after scen_jobs_stop. */
void scen_jobs_destroy(struct scen_jobs *q);
void scen_job_free(struct scen_job *job);

/* ---- the service (service.c) -------------------------------------------------------------- */

struct scen_service {
    const struct scen_settings *cfg;
    struct scen_metrics *m;
    volatile sig_atomic_t *stop;
    struct tw_mqtt *mqtt;
    struct tw_store *store; /* the control loop's */
    struct scen_jobs jobs;
    unsigned threads; /* per run */
    int redis_up;     /* atomic: read by the HTTP thread */
    int64_t last_redis_ms;
    /* The inbox (the MQTT handler appends, the control loop takes). */
    struct tw_msgq inbox;
    uint64_t seed_counter; /* atomic */
    char request_topic[SCEN_TOPIC_MAX];
    char cancel_topic[SCEN_TOPIC_MAX]; /* cancels forwarded to this runner by the others */
    char rejected_topic[SCEN_TOPIC_MAX];
};

int scen_service_init(struct scen_service *svc, const struct scen_settings *cfg,
                      struct scen_metrics *m, volatile sig_atomic_t *stop);
/* Waits for Redis, connects MQTT, runs the control loop until *stop, then shuts down. Returns
 * the exit status. Main thread. */
int scen_service_run(struct scen_service *svc);
void scen_service_free(struct scen_service *svc);
/* /healthz: MQTT connected and Redis reachable. HTTP thread. */
bool scen_service_healthy(void *ctx, char *detail, size_t len);

/* Publishes a progress message (QoS 1, not retained). Any thread. */
void scen_publish_progress(struct scen_service *svc, const struct scen_progress *p);
/* Sends a job's outcome: SET twin:scenario:<id> with the TTL (retried until Redis answers or
 * the retry budget is spent), then the retained result; counts it. Any thread, with the
 * caller's own store. */
void scen_publish_outcome(struct scen_service *svc, struct tw_store *store,
                          const struct scen_outcome *o);
/* A job that never ran (cancelled while queued, or the service is stopping): its outcome. */
void scen_finish_unrun(struct scen_service *svc, struct tw_store *store, struct scen_job *job,
                       int status, const char *error);
/* Records the outcome of a Redis round trip for /healthz. Any thread. */
void scen_redis_result(struct scen_service *svc, int rc);

/* ---- claims (claim.c): which runner holds a request id ---------------------------------- */

/* Claims the id for this runner (SET NX, with a TTL). 0: claimed (also when this runner held
 * it already); 1: another runner holds it, its instance name in holder; a negative tw_err when
 * Redis could not be asked. Control loop. */
int scen_claim_take(struct scen_service *svc, const char *id, char *holder, size_t cap);
/* The runner holding the id: 1 (holder filled), 0 none, or a negative tw_err. Control loop. */
int scen_claim_holder(struct scen_service *svc, const char *id, char *holder, size_t cap);
/* Renews the claim's TTL when the run starts. Any thread, with its own store. */
void scen_claim_renew(struct scen_service *svc, struct tw_store *store, const char *id);
/* Deletes the claim if it is still this runner's. Any thread, with its own store. */
void scen_claim_release(struct scen_service *svc, struct tw_store *store, const char *id);

/* Runs one job on a worker thread (jobs.c calls it; service.c has the I/O). */
void scen_job_run(struct scen_service *svc, struct tw_store *store, struct scen_job *job);

#endif
