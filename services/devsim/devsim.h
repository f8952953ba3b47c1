/* SPDX-License-Identifier: Apache-2.0 */
/* twin-devsim's internals shared by its files: settings, the publisher, the three modes and
 * the demo's obedience to Commands. */
#ifndef DEVSIM_H
#define DEVSIM_H

#include <signal.h>
#include <stdbool.h>
#include <stdint.h>

#include "command.h"
#include "gen.h"
#include "replay.h"
#include "twin/codec.h"
#include "twin/config.h"
#include "twin/metrics.h"
#include "twin/model.h"
#include "twin/mqtt.h"

enum devsim_mode { DEVSIM_DEMO, DEVSIM_LOAD, DEVSIM_REPLAY };

#define DEVSIM_MAX_LOAD_ASSETS     100000
#define DEVSIM_DEFAULT_LOOKBACK_MS (6LL * 86400000) /* accelerated start: 6 days ago */

struct devsim_config {
    struct tw_common_config common;
    const char *mode_text;
    enum devsim_mode mode;
    int64_t seed;
    int64_t period_ms;
    int64_t speed;
    bool as_fast_as_possible;
    int64_t start_ms;
    int64_t count;
    int64_t duration_s;
    int64_t assets;
    int64_t rate;
    const char *replay_path;
    const char *asset;
    bool shift_to_now;
    bool skip_bad_lines;
    int64_t seq_base;
    bool json;
    int64_t max_pending;
    bool faults;
    int64_t flush_timeout_ms;
    /* derived */
    struct tw_model *model;            /* demo */
    struct devsim_recording recording; /* replay */
};

/* The label values of twin_devsim_commands_total{result=…}. */
enum devsim_command_result {
    DEVSIM_RESULT_APPLIED,
    DEVSIM_RESULT_REJECTED,
    DEVSIM_RESULT_DUPLICATE,
    DEVSIM_RESULT__COUNT
};

struct devsim_metrics {
    struct tw_counter *published, *acked, *failed, *retries, *throttled;
    struct tw_counter *failures, *repairs, *glitches, *maintenances;
    struct tw_counter *downtime_s[2]; /* by enum devsim_down_cause */
    struct tw_counter *commands[DEVSIM_RESULT__COUNT];
    struct tw_counter *command_rejects[DEVSIM_CMD__COUNT];
    struct tw_gauge *connected, *lag_ms, *assets;
};

/* What the simulated machines went through: per asset, or summed over the fleet. */
struct devsim_machine_report {
    char id[TW_NAME_MAX + 1]; /* "" for the sum */
    uint64_t failures, repairs, maintenances, maintenances_skipped;
    int64_t downtime_failure_ms, downtime_maintenance_ms; /* device time */
};

/* What a run did, for the final report. */
struct devsim_report {
    uint64_t sent, acked, failed, retries, throttled;
    int64_t start_ns, end_ns; /* monotonic: first due time, last hand-over */
    int64_t max_lag_ms;
    double target_rate; /* msg/s; 0 when not paced by rate */
    bool stopped;       /* by a signal */
    bool drained;       /* every publish acknowledged at the end */
    bool machines;      /* demo and load: the fields below are filled in */
    struct devsim_machine_report total;
    struct devsim_machine_report *assets; /* demo: one per asset; malloc'd, owned by the report */
    size_t n_assets;
    bool commands; /* demo: the demo obeys commands */
    uint64_t commands_applied, commands_rejected, commands_duplicate;
};

struct devsim_obey;

/* The publisher: one MQTT connection, client id twin-devsim-<instance>. */
struct devsim_pub {
    struct tw_mqtt *mqtt;
    const struct devsim_config *cfg;
    struct devsim_metrics *m;
    volatile sig_atomic_t *stop;
    char client_id[96];
    char status_topic[256];
    struct devsim_report rep;
    uint64_t acked_seen;      /* acked already added to the counter */
    int64_t synced_ns;        /* monotonic time of the last copy of the PUBACK count */
    struct devsim_obey *obey; /* demo: receives Commands; else NULL */
    int64_t downtime_ms[2];   /* fleet downtime by cause, device ms (for the seconds counter) */
};

int devsim_metrics_register(struct tw_metrics *reg, struct devsim_metrics *m);

/* Connects (waiting, while not stopped, until the broker answers). With obey (not NULL, kept by
 * pointer) it also subscribes (QoS 1) to <root>/asset/+/command and hands what arrives to
 * devsim_obey_on_message. 0, TW_ESHUTDOWN or a setup error. Main thread. */
int devsim_pub_open(struct devsim_pub *p, const struct devsim_config *cfg, struct devsim_metrics *m,
                    volatile sig_atomic_t *stop, struct devsim_obey *obey);

/* Encodes and publishes one Telemetry (QoS 1) on <root>/asset/<asset>/telemetry; waits while
 * more than max_pending publishes are unacknowledged, retries TW_EAGAIN with a short backoff.
 * 0, TW_ESHUTDOWN (stop requested) or TW_EINVAL/TW_ENOMEM (counted as failed). */
int devsim_pub_send(struct devsim_pub *p, const char *asset, int64_t ts_ms, uint64_t seq,
                    const struct tw_sample *samples, size_t n);

/* Waits up to the flush timeout for acknowledgements, fills the report, disconnects. */
void devsim_pub_close(struct devsim_pub *p);

bool devsim_pub_healthy(void *ctx, char *detail, size_t detail_len);

/* Prints the report: one line on stderr, and JSON on stdout with --json. */
void devsim_report_print(const struct devsim_config *cfg, const struct devsim_report *r);
void devsim_report_free(struct devsim_report *r);

/* ---- Commands (obey.c) ---------------------------------------------------------------------
 * The demo's receiver: Paho's thread checks a Command (devsim_command_parse against the plant
 * model) and queues it (at most 256 waiting); the step thread applies the queue before each
 * step (start window against its device time, ids acted on once). Refusals: counted, logged
 * (rate-limited) and published as a Rejected (QoS 0) on <root>/rejected/devsim. */

/* Owned by the caller; free with devsim_obey_destroy after the MQTT client is gone. cfg (its
 * model and topic root) and m are kept by pointer. */
int devsim_obey_create(const struct devsim_config *cfg, struct devsim_metrics *m,
                       struct devsim_obey **out);
void devsim_obey_destroy(struct devsim_obey *o);

/* The client Rejecteds go out on: set before it starts, NULL after it is destroyed. */
void devsim_obey_attach(struct devsim_obey *o, struct tw_mqtt *mqtt);

/* tw_mqtt_handler: Paho's thread. */
void devsim_obey_on_message(void *ctx, const struct tw_mqtt_msg *msg);

/* Applies the queued commands to the fleet; now_device_ms: the device time of the step about
 * to be taken. Step thread. */
void devsim_obey_apply(struct devsim_obey *o, struct devsim_asset *assets, size_t n,
                       int64_t now_device_ms);

/* Commands applied, refused and duplicates so far. Any thread. */
void devsim_obey_counts(struct devsim_obey *o, uint64_t *applied, uint64_t *rejected,
                        uint64_t *duplicate);

/* Sleeps until the monotonic time t_ns (returns early when stop is set). */
void devsim_sleep_until_ns(int64_t t_ns, volatile sig_atomic_t *stop);

/* The modes; each returns 0 or a negative tw_err. */
int devsim_run_demo(const struct devsim_config *cfg, struct devsim_pub *p);
int devsim_run_load(const struct devsim_config *cfg, struct devsim_pub *p);
int devsim_run_replay(const struct devsim_config *cfg, struct devsim_pub *p);

/* seq of a run's first message: --seq-base, else Unix ms at start x 1000. */
uint64_t devsim_seq_base(const struct devsim_config *cfg);

#endif
