/* SPDX-License-Identifier: Apache-2.0 */
/* twin-loadgen's MQTT side: the publisher that follows the send schedule and the subscriber
 * that matches every receipt to its message, each on its own Paho MQTTAsync client. */
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>

#include <MQTTAsync.h>

#include "loadgen.h"
#include "twin/codec.h"

static const char *const lg_signal_names[LG_SIGNALS] = {"temperature", "pressure", "vibration",
                                                        "current"};

int64_t lg_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * LG_NS_PER_S + ts.tv_nsec;
}

int64_t lg_wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void lg_sleep_until(int64_t t_ns)
{
    struct timespec ts = {.tv_sec = t_ns / LG_NS_PER_S, .tv_nsec = t_ns % LG_NS_PER_S};
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
        ;
}

void lg_sleep_ms(int64_t ms)
{
    lg_sleep_until(lg_now_ns() + ms * 1000000);
}

int64_t lg_s_to_ns(double s)
{
    return (int64_t)(s * (double)LG_NS_PER_S);
}

/* ---- MQTT plumbing (one client per role) ------------------------------------------------ */

struct lg_client {
    MQTTAsync handle;
    struct lg_shared *sh;
    _Atomic int state; /* 0 connecting, 1 up, -1 failed */
    int receive_max;   /* the broker's Receive Maximum from CONNACK */
};

/* Paho has no option for TCP_NODELAY, and Nagle holds back small publishes and PUBACKs for
 * up to ~40 ms: set it on this process's sockets to the broker once connected. */
static void lg_set_nodelay(int port)
{
    DIR *d = opendir("/proc/self/fd");
    struct dirent *e;
    while (d && (e = readdir(d)) != NULL) {
        int fd = atoi(e->d_name), one = 1;
        struct stat st;
        struct sockaddr_in peer;
        socklen_t len = sizeof(peer);
        if (fd <= 2 || fstat(fd, &st) != 0 || !S_ISSOCK(st.st_mode))
            continue;
        if (getpeername(fd, (struct sockaddr *)&peer, &len) == 0 && peer.sin_family == AF_INET &&
            ntohs(peer.sin_port) == port)
            setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    }
    if (d)
        closedir(d);
}

static void lg_on_connected(void *ctx, MQTTAsync_successData5 *r)
{
    struct lg_client *c = ctx;
    c->receive_max = 65535;
    if (r && MQTTProperties_hasProperty(&r->properties, MQTTPROPERTY_CODE_RECEIVE_MAXIMUM))
        c->receive_max =
            MQTTProperties_getNumericValue(&r->properties, MQTTPROPERTY_CODE_RECEIVE_MAXIMUM);
    lg_set_nodelay(c->sh->opt.port);
    atomic_store(&c->state, 1);
}

static void lg_on_connect_failed(void *ctx, MQTTAsync_failureData5 *r)
{
    struct lg_client *c = ctx;
    fprintf(stderr, "twin-loadgen: connect failed: code=%d %s\n", r ? r->code : 0,
            r && r->message ? r->message : "");
    atomic_store(&c->state, -1);
}

static void lg_on_connection_lost(void *ctx, char *cause)
{
    struct lg_client *c = ctx;
    fprintf(stderr, "twin-loadgen: connection lost: %s\n", cause ? cause : "unknown");
    atomic_store(&c->sh->conn_lost, 1);
}

static int lg_ignore_message(void *ctx, char *topic, int topic_len, MQTTAsync_message *m)
{
    (void)ctx;
    (void)topic_len;
    MQTTAsync_freeMessage(&m);
    MQTTAsync_free(topic);
    return 1;
}

/* Waits (bounded) until *flag leaves `from`; returns its final value. */
static int lg_wait_flag(_Atomic int *flag, int from, int64_t timeout_ms)
{
    int64_t deadline = lg_now_ns() + timeout_ms * 1000000;
    while (atomic_load(flag) == from && lg_now_ns() < deadline)
        lg_sleep_ms(1);
    return atomic_load(flag);
}

/* Creates and connects a clean MQTT v5 session; returns 0 when it is up. */
static int lg_connect(struct lg_client *c, const char *role, MQTTAsync_messageArrived *on_msg)
{
    MQTTAsync_createOptions cro = MQTTAsync_createOptions_initializer5;
    MQTTAsync_connectOptions co = MQTTAsync_connectOptions_initializer5;
    char id[96];
    snprintf(id, sizeof(id), "twin-loadgen-%s%s", c->sh->opt.prefix, role);
    /* Paho refuses a publish while maxBufferedMessages commands are queued, connected or
     * not: our own window is the bound, so let Paho hold all of it. */
    cro.maxBufferedMessages = (int)c->sh->opt.window + 16;
    if (MQTTAsync_createWithOptions(&c->handle, c->sh->opt.uri, id, MQTTCLIENT_PERSISTENCE_NONE,
                                    NULL, &cro) != MQTTASYNC_SUCCESS)
        return -1;
    MQTTAsync_setCallbacks(c->handle, c, lg_on_connection_lost, on_msg, NULL);
    co.cleanstart = 1;
    co.keepAliveInterval = 30;
    co.connectTimeout = 5;
    co.maxInflight = (int)c->sh->opt.window + 16;
    co.onSuccess5 = lg_on_connected;
    co.onFailure5 = lg_on_connect_failed;
    co.context = c;
    if (MQTTAsync_connect(c->handle, &co) != MQTTASYNC_SUCCESS)
        return -1;
    return lg_wait_flag(&c->state, 0, LG_CONNECT_MS) == 1 ? 0 : -1;
}

static void lg_disconnect(struct lg_client *c)
{
    MQTTAsync_disconnectOptions dopts = MQTTAsync_disconnectOptions_initializer5;
    dopts.timeout = 1000;
    if (MQTTAsync_isConnected(c->handle))
        MQTTAsync_disconnect(c->handle, &dopts);
    for (int i = 0; i < 200 && MQTTAsync_isConnected(c->handle); i++)
        lg_sleep_ms(5);
    MQTTAsync_destroy(&c->handle);
}

/* ---- subscriber --------------------------------------------------------------------------- */

/* Finds the message index of (asset id, seq); UINT64_MAX when it is not one of ours. */
static uint64_t lg_index_of(const struct lg_shared *sh, const char *asset, uint64_t seq)
{
    size_t plen = strlen(sh->opt.prefix);
    if (!asset || strncmp(asset, sh->opt.prefix, plen) != 0 || seq == 0)
        return UINT64_MAX;
    char *end = NULL;
    unsigned long a = strtoul(asset + plen, &end, 10);
    if (end == asset + plen || *end != '\0' || a >= (unsigned long)sh->opt.assets ||
        seq > sh->opt.max_msgs)
        return UINT64_MAX;
    uint64_t idx = (seq - 1) * (uint64_t)sh->opt.assets + a;
    if (idx >= sh->opt.max_msgs ||
        atomic_load_explicit(&sh->send_ns[idx], memory_order_acquire) == 0)
        return UINT64_MAX;
    return idx;
}

/* Decodes what arrived (Telemetry as published, or ingest's TwinState) into its index. */
static uint64_t lg_decode_index(const struct lg_shared *sh, const MQTTAsync_message *m)
{
    uint64_t idx = UINT64_MAX;
    size_t len = m->payloadlen > 0 ? (size_t)m->payloadlen : 0;
    if (sh->opt.mode == LG_BROKER) {
        struct tw_telemetry t;
        if (tw_codec_decode_telemetry(m->payload, len, &t) == 0) {
            idx = lg_index_of(sh, t.asset_id, t.seq);
            tw_codec_telemetry_free(&t);
        }
    } else {
        struct tw_twin_state_msg s;
        if (tw_codec_decode_twin_state(m->payload, len, &s) == 0) {
            idx = lg_index_of(sh, s.s.asset_id, s.s.seq);
            tw_codec_twin_state_free(&s);
        }
    }
    return idx;
}

/* Paho's receive thread, one message at a time: the only writer of recv_ns and recv_count. */
static int lg_on_message(void *ctx, char *topic, int topic_len, MQTTAsync_message *m)
{
    struct lg_client *c = ctx;
    struct lg_shared *sh = c->sh;
    int64_t now = lg_now_ns();
    uint64_t idx = lg_decode_index(sh, m);
    (void)topic_len;
    if (idx == UINT64_MAX) {
        atomic_fetch_add(&sh->unmatched, 1);
    } else if (sh->recv_count[idx]++ == 0) {
        sh->recv_ns[idx] = now;
        atomic_store(&sh->last_recv_ns, now);
        atomic_fetch_add(&sh->received, 1);
        if (sh->release_on_receipt)
            sem_post(&sh->window);
    } else {
        if (sh->recv_count[idx] == 0)
            sh->recv_count[idx] = 255;
        atomic_fetch_add(&sh->duplicates, 1);
    }
    MQTTAsync_freeMessage(&m);
    MQTTAsync_free(topic);
    return 1;
}

static void lg_on_subscribed(void *ctx, MQTTAsync_successData5 *r)
{
    struct lg_client *c = ctx;
    bool granted = r && r->reasonCode == MQTTREASONCODE_GRANTED_QOS_1;
    if (!granted)
        fprintf(stderr, "twin-loadgen: subscription not granted QoS 1 (reason %d)\n",
                r ? (int)r->reasonCode : -1);
    atomic_store(&c->sh->sub_ready, granted ? 1 : -1);
}

static void lg_on_subscribe_failed(void *ctx, MQTTAsync_failureData5 *r)
{
    struct lg_client *c = ctx;
    fprintf(stderr, "twin-loadgen: subscribe failed: code=%d\n", r ? r->code : 0);
    atomic_store(&c->sh->sub_ready, -1);
}

void lg_subscriber_run(struct lg_shared *sh)
{
    struct lg_client c = {.sh = sh};
    MQTTAsync_responseOptions ro = MQTTAsync_responseOptions_initializer;
    char filter[LG_TOPIC_MAX];
    if (sh->opt.mode == LG_BROKER)
        snprintf(filter, sizeof(filter), "bench/%s/asset/+", sh->opt.prefix);
    else
        snprintf(filter, sizeof(filter), "%s/asset/+/state", sh->opt.topic_root);
    if (lg_connect(&c, "sub", lg_on_message) < 0) {
        atomic_store(&sh->sub_ready, -1);
        goto out;
    }
    ro.onSuccess5 = lg_on_subscribed;
    ro.onFailure5 = lg_on_subscribe_failed;
    ro.context = &c;
    /* States are retained: skip those of earlier runs, they are not ours to count. */
    ro.subscribeOptions.retainHandling = 2;
    if (MQTTAsync_subscribe(c.handle, filter, 1, &ro) != MQTTASYNC_SUCCESS)
        atomic_store(&sh->sub_ready, -1);
    while (atomic_load(&sh->sub_ready) >= 0 && !atomic_load(&sh->stop_sub))
        lg_sleep_ms(10);
out:
    if (c.handle)
        lg_disconnect(&c);
}

/* ---- publisher ---------------------------------------------------------------------------- */

static void lg_on_acked(void *ctx, MQTTAsync_successData5 *r)
{
    struct lg_shared *sh = ctx;
    (void)r;
    atomic_fetch_add(&sh->acked, 1);
    sem_post(&sh->unacked);
}

static void lg_on_publish_failed(void *ctx, MQTTAsync_failureData5 *r)
{
    struct lg_shared *sh = ctx;
    (void)r;
    atomic_fetch_add(&sh->publish_failed, 1);
    sem_post(&sh->unacked);
}

/* Encodes and sends message idx (asset idx % assets, seq idx / assets + 1) stamped sched_ns. */
static int lg_publish(MQTTAsync handle, struct lg_shared *sh, uint64_t idx, int64_t sched_ns)
{
    const struct lg_options *o = &sh->opt;
    struct tw_sample samples[LG_SIGNALS];
    char asset[LG_ASSET_MAX], topic[LG_TOPIC_MAX];
    uint64_t a = idx % (uint64_t)o->assets, seq = idx / (uint64_t)o->assets + 1;
    for (int i = 0; i < LG_SIGNALS; i++)
        samples[i] = (struct tw_sample){lg_signal_names[i],
                                        20.0 + (double)((idx + (uint64_t)i) % 100) * 0.25};
    snprintf(asset, sizeof(asset), "%s%" PRIu64, o->prefix, a);
    if (o->mode == LG_BROKER)
        snprintf(topic, sizeof(topic), "bench/%s/asset/%s", o->prefix, asset);
    else
        snprintf(topic, sizeof(topic), "%s/asset/%s/telemetry", o->topic_root, asset);
    struct tw_telemetry t = {.asset_id = asset,
                             .ts_ms = lg_wall_ms(),
                             .seq = seq,
                             .n_samples = LG_SIGNALS,
                             .samples = samples};
    uint8_t *buf = NULL;
    size_t len = 0;
    if (tw_codec_encode_telemetry(&t, &buf, &len) != 0)
        return -1;
    MQTTAsync_message msg = MQTTAsync_message_initializer;
    MQTTAsync_responseOptions ro = MQTTAsync_responseOptions_initializer;
    msg.payload = buf;
    msg.payloadlen = (int)len;
    msg.qos = 1;
    ro.onSuccess5 = lg_on_acked;
    ro.onFailure5 = lg_on_publish_failed;
    ro.context = sh;
    /* Stamp before sending: the receipt may come back before MQTTAsync_sendMessage returns. */
    atomic_store_explicit(&sh->send_ns[idx], sched_ns, memory_order_release);
    int rc = MQTTAsync_sendMessage(handle, topic, &msg, &ro);
    free(buf);
    if (rc != MQTTASYNC_SUCCESS) {
        atomic_store_explicit(&sh->send_ns[idx], 0, memory_order_release);
        if (atomic_load(&sh->publish_failed) < 5)
            fprintf(stderr, "twin-loadgen: publish refused: %s\n", MQTTAsync_strerror(rc));
    }
    return rc == MQTTASYNC_SUCCESS ? 0 : -1;
}

/* Takes a slot of `sem`; false when none came free for idle_s (the pipeline stalled). */
static bool lg_take(sem_t *sem, double idle_s)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    ts.tv_sec += (time_t)idle_s;
    for (;;) {
        if (sem_clockwait(sem, CLOCK_MONOTONIC, &ts) == 0)
            return true;
        if (errno != EINTR)
            return false;
    }
}

/* Two bounds. At rate 0 the end-to-end window keeps the publisher from running ahead of what
 * comes out (no unbounded queue in the broker). Always, publishes awaiting PUBACK stay within
 * the broker's Receive Maximum: Paho 1.3.12 holds a publish beyond it in its queue and its
 * send thread is not woken by the PUBACK that frees room, only by the next publish or a 1 s
 * timer, so a publisher that waits for room would stall for a second at a time. */
static bool lg_take_slot(struct lg_shared *sh)
{
    if (sh->release_on_receipt && !lg_take(&sh->window, sh->opt.idle_s))
        return false;
    if (lg_take(&sh->unacked, sh->opt.idle_s))
        return true;
    if (sh->release_on_receipt)
        sem_post(&sh->window);
    return false;
}

/* The send schedule: message i is due at t0 + i / rate (paced) or as soon as a slot is free.
 * Latency counts from the due time, so a stalled publisher cannot hide the stall. */
static void lg_publish_loop(MQTTAsync handle, struct lg_shared *sh, int64_t t0)
{
    const struct lg_options *o = &sh->opt;
    int64_t run_ns = lg_s_to_ns(o->warmup_s + o->duration_s);
    int64_t give_up = t0 + 2 * run_ns + 10 * LG_NS_PER_S; /* bounded even when far behind */
    uint64_t idx = 0;
    for (;; idx++) {
        int64_t due = t0 + (int64_t)((double)idx * 1e9 / (o->rate > 0 ? o->rate : 1));
        if (o->rate > 0) {
            if (idx >= sh->offered || lg_now_ns() > give_up)
                break;
            if (lg_now_ns() < due)
                lg_sleep_until(due);
        } else if (idx >= o->max_msgs || lg_now_ns() - t0 >= run_ns) {
            break;
        }
        if (!lg_take_slot(sh)) {
            fprintf(stderr, "twin-loadgen: no window slot for %.0f s, stopping publisher\n",
                    o->idle_s);
            break;
        }
        int64_t sent = lg_now_ns();
        if (o->rate <= 0)
            due = sent;
        if (sent - due > sh->max_send_lag_ns)
            sh->max_send_lag_ns = sent - due;
        if (lg_publish(handle, sh, idx, due) == 0) {
            atomic_fetch_add(&sh->published, 1);
        } else { /* refused at once: no callback will give the slots back */
            atomic_fetch_add(&sh->publish_failed, 1);
            sem_post(&sh->unacked);
            if (sh->release_on_receipt)
                sem_post(&sh->window);
        }
        atomic_store(&sh->next_idx, idx + 1);
    }
    if (o->rate > 0)
        sh->offered = sh->offered > idx ? sh->offered : idx;
    else
        sh->offered = idx;
    sh->unsent = sh->offered - idx;
}

void lg_publisher_run(struct lg_shared *sh)
{
    struct lg_client c = {.sh = sh};
    prctl(PR_SET_TIMERSLACK, 1UL); /* wake at the due time, not up to 50 µs after it */
    if (lg_connect(&c, "pub", lg_ignore_message) < 0 ||
        lg_wait_flag(&sh->sub_ready, 0, LG_CONNECT_MS) != 1) {
        atomic_store(&sh->failed, 1);
        goto out;
    }
    sh->unacked_max = (int)(sh->opt.window < c.receive_max ? sh->opt.window : c.receive_max);
    if (sem_init(&sh->unacked, 1, (unsigned)sh->unacked_max) != 0) {
        atomic_store(&sh->failed, 1);
        goto out;
    }
    int64_t t0 = lg_now_ns();
    atomic_store(&sh->t0_ns, t0);
    atomic_store(&sh->pub_started, 1);
    lg_publish_loop(c.handle, sh, t0);
    atomic_store(&sh->pub_end_ns, lg_now_ns());
    atomic_store(&sh->pub_done, 1);
    /* Let the last PUBACKs arrive so `acked` is complete (bounded). */
    int64_t deadline = lg_now_ns() + lg_s_to_ns(sh->opt.drain_s);
    while (atomic_load(&sh->acked) + atomic_load(&sh->publish_failed) <
               atomic_load(&sh->next_idx) &&
           lg_now_ns() < deadline)
        lg_sleep_ms(5);
out:
    atomic_store(&sh->pub_done, 1);
    if (c.handle)
        lg_disconnect(&c);
}
