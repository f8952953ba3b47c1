/* SPDX-License-Identifier: Apache-2.0 */
/* twin-devsim's internals shared by its files: settings, the publisher and the three modes. */
#ifndef DEVSIM_H
#define DEVSIM_H

#include <signal.h>
#include <stdbool.h>
#include <stdint.h>

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

struct devsim_metrics {
    struct tw_counter *published, *acked, *failed, *retries, *throttled;
    struct tw_counter *failures, *repairs, *glitches;
    struct tw_gauge *connected, *lag_ms, *assets;
};

/* What a run did, for the final report. */
struct devsim_report {
    uint64_t sent, acked, failed, retries, throttled;
    int64_t start_ns, end_ns; /* monotonic: first due time, last hand-over */
    int64_t max_lag_ms;
    double target_rate; /* msg/s; 0 when not paced by rate */
    bool stopped;       /* by a signal */
    bool drained;       /* every publish acknowledged at the end */
};

/* The publisher: one MQTT connection, client id twin-devsim-<instance>. */
struct devsim_pub {
    struct tw_mqtt *mqtt;
    const struct devsim_config *cfg;
    struct devsim_metrics *m;
    volatile sig_atomic_t *stop;
    char client_id[96];
    char status_topic[256];
    struct devsim_report rep;
    uint64_t acked_seen; /* acked already added to the counter */
    int64_t synced_ns;   /* monotonic time of the last copy of the PUBACK count */
};

int devsim_metrics_register(struct tw_metrics *reg, struct devsim_metrics *m);

/* Connects (waiting, while not stopped, until the broker answers). 0, TW_ESHUTDOWN or a setup
 * error. Main thread. */
int devsim_pub_open(struct devsim_pub *p, const struct devsim_config *cfg, struct devsim_metrics *m,
                    volatile sig_atomic_t *stop);

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

/* Sleeps until the monotonic time t_ns (returns early when stop is set). */
void devsim_sleep_until_ns(int64_t t_ns, volatile sig_atomic_t *stop);

/* The modes; each returns 0 or a negative tw_err. */
int devsim_run_demo(const struct devsim_config *cfg, struct devsim_pub *p);
int devsim_run_load(const struct devsim_config *cfg, struct devsim_pub *p);
int devsim_run_replay(const struct devsim_config *cfg, struct devsim_pub *p);

/* seq of a run's first message: --seq-base, else Unix ms at start x 1000. */
uint64_t devsim_seq_base(const struct devsim_config *cfg);

#endif
