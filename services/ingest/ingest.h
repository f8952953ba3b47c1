/* SPDX-License-Identifier: Apache-2.0 */
/* twin-ingest's settings, metrics and worker entry point, shared by its source files. */
#ifndef INGEST_H
#define INGEST_H

#include <signal.h>
#include <stdbool.h>
#include <stdint.h>

#include "twin/config.h"
#include "twin/model.h"
#include "twin/metrics.h"
#include "twin/validate.h"

#define INGEST_MAX_WORKERS 16 /* per instance; run more instances for more */

struct ingest_config {
    struct tw_common_config common;
    int64_t workers;
    const char *group;
    int64_t max_payload;
    int64_t max_samples;
    int64_t max_past_ms;
    int64_t max_future_ms;
    int64_t replay_window;
    int64_t history_maxlen;
    int64_t redis_timeout_ms;
    int64_t redis_replicas;  /* WAIT for this many replicas before acknowledging; 0: off */
    int64_t redis_replica_wait_ms;
    int64_t shutdown_grace_ms;
    bool retire;       /* drain every session of this instance, end them, exit */
    bool print_script; /* print the apply script for the model and exit */
    const struct tw_model *model; /* loaded from common.model_path; NULL without one */
    const char *script;           /* the apply script for that model (ingest_script_build) */
};

/* Handles into the shared registry; registered by the parent before any worker is forked. */
struct ingest_metrics {
    struct tw_counter *received;
    struct tw_counter *outcome[5]; /* by enum ingest_outcome */
    struct tw_counter *rejected[TW_REJECT__COUNT];
    struct tw_counter *redis_errors;
    struct tw_counter *state_published;
    struct tw_counter *state_republished;
    struct tw_counter *state_publish_failed;
    struct tw_counter *worker_restarts;
    struct tw_histogram *apply_seconds;
    struct tw_histogram *handle_seconds;
    struct tw_gauge *workers_up;
    struct tw_gauge *mqtt_up[INGEST_MAX_WORKERS];
    struct tw_gauge *redis_up[INGEST_MAX_WORKERS];
};

int ingest_metrics_register(struct tw_metrics *reg, struct ingest_metrics *m, int workers);

/* Runs worker `index` until SIGTERM/SIGINT sets *stop; returns the process exit status. */
int ingest_worker_run(const struct ingest_config *cfg, int index, struct ingest_metrics *m,
                      volatile sig_atomic_t *stop);

/* Sessions of worker numbers from `first` up belong to an earlier run with more workers (or,
 * with first 0, to an instance being retired); the broker keeps queueing their share of
 * telemetry. This takes each one over, applies its queue, and ends it. Returns the process
 * exit status. */
int ingest_drain_run(const struct ingest_config *cfg, int first, struct ingest_metrics *m,
                     volatile sig_atomic_t *stop);

#endif
