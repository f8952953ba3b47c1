/* SPDX-License-Identifier: Apache-2.0 */
/* twin-loadgen's shared run state and the publisher and subscriber roles that fill it. */
#ifndef LOADGEN_H
#define LOADGEN_H

#include <semaphore.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#define LG_NS_PER_S   1000000000LL
#define LG_TOPIC_MAX  256
#define LG_ASSET_MAX  65
#define LG_SIGNALS    4
#define LG_CONNECT_MS 10000
#define LG_MONITOR_MS 20
#define LG_URI_MAX    256

enum lg_mode { LG_BROKER, LG_INGEST };

struct lg_options {
    enum lg_mode mode;
    char uri[LG_URI_MAX]; /* Paho form: tcp://host:port */
    int port;             /* the broker's, to find our sockets for TCP_NODELAY */
    char topic_root[128];
    char prefix[32]; /* asset ids are <prefix><index>, fresh per run so seq can start at 1 */
    double rate;     /* msg/s; 0: as fast as the window allows */
    double duration_s, warmup_s, drain_s, idle_s;
    long assets;
    long window;
    int procs; /* 1: both clients in one process; 2: publisher and subscriber forked apart */
    bool require_no_loss;
    uint64_t max_msgs;
    const char *latency_log; /* NULL: none; read by the coordinator only, after the run */
};

/* Everything the publisher, subscriber and coordinator share. It lives in one MAP_SHARED
 * mapping so the same code works whether the roles are threads or forked processes. Each
 * per-message array is indexed by idx = (seq - 1) * assets + asset: message idx is the idx-th
 * one published, so the subscriber finds a message's send time from (asset, seq) alone. */
struct lg_shared {
    struct lg_options opt;
    sem_t window;  /* rate 0: end-to-end slots, given back when the message is received */
    sem_t unacked; /* slots for publishes awaiting PUBACK, given back by the PUBACK */
    int unacked_max;
    bool release_on_receipt;
    _Atomic int sub_ready, pub_started, pub_done, stop_sub, failed, conn_lost;
    _Atomic int64_t t0_ns, pub_end_ns, last_recv_ns;
    _Atomic uint64_t next_idx, published, acked, publish_failed, received, duplicates, unmatched;
    uint64_t offered, unsent, backlog_peak;
    int64_t max_send_lag_ns;
    _Atomic int64_t *send_ns; /* scheduled send time; 0: not published */
    int64_t *recv_ns;         /* first receipt; written by the subscriber only */
    uint8_t *recv_count;      /* receipts, saturating at 255 */
};

/* Clocks (CLOCK_MONOTONIC unless said otherwise). Any thread. */
int64_t lg_now_ns(void);
int64_t lg_wall_ms(void); /* CLOCK_REALTIME, for Telemetry.ts_ms */
void lg_sleep_until(int64_t t_ns);
void lg_sleep_ms(int64_t ms);
int64_t lg_s_to_ns(double s);

/* The two roles. Each runs one MQTT client to completion, reporting through *sh only, so it
 * may run as a thread or in a forked child. The subscriber connects, subscribes, sets
 * sub_ready and receives until stop_sub; the publisher waits for sub_ready, publishes the
 * schedule, sets pub_done and waits (bounded) for its last PUBACKs. */
void lg_subscriber_run(struct lg_shared *sh);
void lg_publisher_run(struct lg_shared *sh);

#endif
