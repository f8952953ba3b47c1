/* SPDX-License-Identifier: Apache-2.0 */
/* twin-devsim's publisher: one MQTT connection, QoS 1 with a bounded window of unacknowledged
 * messages, retries when the client is full, metrics, and the final report. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "devsim.h"
#include "twin/clock.h"
#include "twin/err.h"
#include "twin/log.h"

#define RETRY_SLEEP_MS 5
#define READY_WAIT_MS  1000
#define ACK_SYNC_EVERY 256         /* messages between copies of the PUBACK count into metrics */
#define ACK_SYNC_NS    500000000LL /* … or this long, whichever comes first */
#define TOPIC_MAX      (256 + 64 + 32)
#define SLEEP_CHUNK_NS 200000000LL

int devsim_metrics_register(struct tw_metrics *reg, struct devsim_metrics *m)
{
    memset(m, 0, sizeof(*m));
    m->published = tw_metrics_counter(reg, "twin_devsim_published_total", NULL,
                                      "Telemetry handed to the MQTT client (QoS 1)");
    m->acked = tw_metrics_counter(reg, "twin_devsim_acked_total", NULL,
                                  "Telemetry acknowledged by the broker (PUBACK)");
    m->failed = tw_metrics_counter(reg, "twin_devsim_publish_failed_total", NULL,
                                   "Telemetry the client refused or the broker failed");
    m->retries = tw_metrics_counter(reg, "twin_devsim_publish_retries_total", NULL,
                                    "publishes retried because the client was full");
    m->throttled = tw_metrics_counter(reg, "twin_devsim_throttled_total", NULL,
                                      "waits because max-pending publishes were unacknowledged");
    m->failures = tw_metrics_counter(reg, "twin_devsim_machine_failures_total", NULL,
                                     "simulated machine failures");
    m->repairs = tw_metrics_counter(reg, "twin_devsim_machine_repairs_total", NULL,
                                    "simulated repairs (wear reset)");
    m->glitches = tw_metrics_counter(reg, "twin_devsim_glitches_total", NULL,
                                     "simulated sensor glitches (single-sample spikes)");
    m->maintenances = tw_metrics_counter(reg, "twin_devsim_maintenances_total", NULL,
                                         "planned maintenances started (Commands)");
    m->downtime_s[DEVSIM_DOWN_FAILURE] =
        tw_metrics_counter(reg, "twin_devsim_downtime_seconds_total", "cause=\"failure\"",
                           "device time the simulated machines stood still, by cause");
    m->downtime_s[DEVSIM_DOWN_MAINTENANCE] =
        tw_metrics_counter(reg, "twin_devsim_downtime_seconds_total", "cause=\"maintenance\"",
                           "device time the simulated machines stood still, by cause");
    static const char *const results[DEVSIM_RESULT__COUNT] = {"applied", "rejected", "duplicate"};
    char labels[64];
    for (int i = 0; i < DEVSIM_RESULT__COUNT; i++) {
        snprintf(labels, sizeof(labels), "result=\"%s\"", results[i]);
        m->commands[i] = tw_metrics_counter(reg, "twin_devsim_commands_total", labels,
                                            "Commands received by the demo, by outcome");
    }
    for (int r = 1; r < DEVSIM_CMD__COUNT; r++) {
        snprintf(labels, sizeof(labels), "reason=\"%s\"", devsim_cmd_reject_word(r));
        m->command_rejects[r] = tw_metrics_counter(reg, "twin_devsim_commands_rejected_total",
                                                   labels, "Commands refused, by reason");
    }
    m->connected = tw_metrics_gauge(reg, "twin_devsim_mqtt_connected", NULL,
                                    "1 while the MQTT connection is up");
    m->lag_ms = tw_metrics_gauge(reg, "twin_devsim_lag_ms", NULL,
                                 "how far the last publish was behind its schedule, ms");
    m->assets = tw_metrics_gauge(reg, "twin_devsim_assets", NULL, "simulated assets");
    return m->published && m->assets ? 0 : TW_ENOMEM;
}

void devsim_sleep_until_ns(int64_t t_ns, volatile sig_atomic_t *stop)
{
    for (;;) {
        int64_t now = tw_mono_ns();
        if (now >= t_ns || (stop && *stop))
            return;
        int64_t target = t_ns - now > SLEEP_CHUNK_NS ? now + SLEEP_CHUNK_NS : t_ns;
        struct timespec ts = {.tv_sec = target / 1000000000LL, .tv_nsec = target % 1000000000LL};
        clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL);
    }
}

int devsim_pub_open(struct devsim_pub *p, const struct devsim_config *cfg, struct devsim_metrics *m,
                    volatile sig_atomic_t *stop, struct devsim_obey *obey)
{
    char filter[TOPIC_MAX];
    memset(p, 0, sizeof(*p));
    p->cfg = cfg;
    p->m = m;
    p->stop = stop;
    p->obey = obey;
    snprintf(p->client_id, sizeof(p->client_id), "twin-devsim-%s", cfg->common.instance);
    snprintf(p->status_topic, sizeof(p->status_topic), "%s/service/devsim/%s/status",
             cfg->common.topic_root, cfg->common.instance);
    snprintf(filter, sizeof(filter), "%s/asset/+/command", cfg->common.topic_root);
    struct tw_mqtt_config mc = tw_mqtt_service_config(&cfg->common, p->client_id, p->status_topic);
    int rc = tw_mqtt_create(&mc, obey ? devsim_obey_on_message : NULL, obey, &p->mqtt);
    if (rc == 0 && obey) {
        rc = tw_mqtt_subscribe(p->mqtt, filter, 1);
        devsim_obey_attach(obey, p->mqtt);
    } else if (rc == 0) {
        /* The same session in another mode must not keep a demo's subscription. */
        rc = tw_mqtt_drop_subscription(p->mqtt, filter);
    }
    if (rc == 0)
        rc = tw_mqtt_start(p->mqtt);
    if (rc < 0)
        return rc;
    while (tw_mqtt_wait_ready(p->mqtt, READY_WAIT_MS) < 0) {
        if (*stop)
            return TW_ESHUTDOWN;
        tw_log(TW_LOG_INFO, "waiting_for_broker", "url=%s", cfg->common.mqtt_url);
    }
    tw_gauge_set(m->connected, 1);
    return 0;
}

static void sync_acked(struct devsim_pub *p)
{
    struct tw_mqtt_stats st;
    tw_mqtt_get_stats(p->mqtt, &st);
    /* The client's count includes the retained "online" it publishes on every connect. */
    uint64_t acked = st.published > st.connects ? st.published - st.connects : 0;
    if (acked > p->rep.sent)
        acked = p->rep.sent;
    if (acked > p->acked_seen) {
        tw_counter_add(p->m->acked, acked - p->acked_seen);
        p->acked_seen = acked;
    }
    p->rep.acked = acked;
    tw_gauge_set(p->m->connected, tw_mqtt_is_connected(p->mqtt) ? 1 : 0);
}

/* Waits while the window of unacknowledged publishes is full. */
static int wait_window(struct devsim_pub *p)
{
    if (p->cfg->max_pending <= 0)
        return 0;
    bool counted = false;
    while (tw_mqtt_pending(p->mqtt) >= p->cfg->max_pending) {
        if (*p->stop)
            return TW_ESHUTDOWN;
        if (!counted) {
            counted = true;
            p->rep.throttled++;
            tw_counter_add(p->m->throttled, 1);
        }
        tw_sleep_ms(1, NULL);
    }
    return 0;
}

static int publish_retrying(struct devsim_pub *p, const char *topic, const uint8_t *buf, size_t len)
{
    for (;;) {
        int rc = tw_mqtt_publish(p->mqtt, topic, buf, len, 1, false);
        if (rc != TW_EAGAIN)
            return rc;
        p->rep.retries++;
        tw_counter_add(p->m->retries, 1);
        if (*p->stop)
            return TW_ESHUTDOWN;
        tw_sleep_ms(RETRY_SLEEP_MS, NULL);
    }
}

int devsim_pub_send(struct devsim_pub *p, const char *asset, int64_t ts_ms, uint64_t seq,
                    const struct tw_sample *samples, size_t n)
{
    char topic[TOPIC_MAX];
    struct tw_telemetry t = {.asset_id = asset,
                             .ts_ms = ts_ms,
                             .seq = seq,
                             .n_samples = n,
                             .samples = (struct tw_sample *)samples};
    uint8_t *buf = NULL;
    size_t len = 0;
    snprintf(topic, sizeof(topic), "%s/asset/%s/telemetry", p->cfg->common.topic_root, asset);
    int rc = wait_window(p);
    if (rc == 0)
        rc = tw_codec_encode_telemetry(&t, &buf, &len);
    if (rc == 0)
        rc = publish_retrying(p, topic, buf, len);
    free(buf);
    if (rc == 0) {
        p->rep.sent++;
        tw_counter_add(p->m->published, 1);
    } else if (rc != TW_ESHUTDOWN) {
        p->rep.failed++;
        tw_counter_add(p->m->failed, 1);
        tw_log(TW_LOG_WARN, "publish_failed", "asset=%s seq=%" PRIu64 " error=%s", asset, seq,
               tw_strerror(rc));
    }
    p->rep.end_ns = tw_mono_ns();
    if (p->rep.sent % ACK_SYNC_EVERY == 0 || p->rep.end_ns - p->synced_ns > ACK_SYNC_NS) {
        p->synced_ns = p->rep.end_ns;
        sync_acked(p);
    }
    return rc;
}

void devsim_pub_close(struct devsim_pub *p)
{
    if (!p->mqtt)
        return;
    p->rep.drained = tw_mqtt_flush(p->mqtt, (int)p->cfg->flush_timeout_ms) == 0;
    sync_acked(p);
    struct tw_mqtt_stats st;
    tw_mqtt_get_stats(p->mqtt, &st);
    /* Failures the broker reported after the hand-over (the client's count includes ours). */
    if (st.publish_failed > p->rep.failed + p->rep.retries) {
        uint64_t extra = st.publish_failed - p->rep.failed - p->rep.retries;
        p->rep.failed += extra;
        tw_counter_add(p->m->failed, extra);
    }
    tw_mqtt_destroy(p->mqtt, 5000);
    p->mqtt = NULL;
    if (p->obey)
        devsim_obey_attach(p->obey, NULL);
    tw_gauge_set(p->m->connected, 0);
}

bool devsim_pub_healthy(void *ctx, char *detail, size_t detail_len)
{
    struct devsim_pub *p = ctx;
    bool up = p->mqtt && tw_mqtt_is_connected(p->mqtt);
    snprintf(detail, detail_len, "%s", up ? "ok" : "mqtt not connected");
    return up;
}

static const char *mode_word(enum devsim_mode m)
{
    return m == DEVSIM_LOAD ? "load" : m == DEVSIM_REPLAY ? "replay" : "demo";
}

static void machines_json(const struct devsim_machine_report *m)
{
    printf("\"failures\":%" PRIu64 ",\"repairs\":%" PRIu64 ",\"maintenances\":%" PRIu64
           ",\"maintenances_skipped\":%" PRIu64 ",\"downtime_failure_ms\":%" PRId64
           ",\"downtime_maintenance_ms\":%" PRId64,
           m->failures, m->repairs, m->maintenances, m->maintenances_skipped,
           m->downtime_failure_ms, m->downtime_maintenance_ms);
}

/* The JSON report's machine and command fields (ids are [A-Za-z0-9._-]: no escaping). */
static void report_machines_json(const struct devsim_report *r)
{
    if (r->machines) {
        printf(",");
        machines_json(&r->total);
    }
    if (r->assets) {
        printf(",\"assets\":[");
        for (size_t i = 0; i < r->n_assets; i++) {
            printf("%s{\"asset\":\"%s\",", i ? "," : "", r->assets[i].id);
            machines_json(&r->assets[i]);
            printf("}");
        }
        printf("]");
    }
    if (r->commands)
        printf(",\"commands\":{\"applied\":%" PRIu64 ",\"rejected\":%" PRIu64
               ",\"duplicate\":%" PRIu64 "}",
               r->commands_applied, r->commands_rejected, r->commands_duplicate);
}

static void report_machines_line(const struct devsim_report *r)
{
    if (r->machines)
        fprintf(stderr,
                " failures=%" PRIu64 " maintenances=%" PRIu64 " downtime_failure_s=%.0f"
                " downtime_maintenance_s=%.0f",
                r->total.failures, r->total.maintenances,
                (double)r->total.downtime_failure_ms / 1000.0,
                (double)r->total.downtime_maintenance_ms / 1000.0);
    if (r->commands)
        fprintf(stderr, " commands_applied=%" PRIu64 " commands_rejected=%" PRIu64,
                r->commands_applied, r->commands_rejected + r->commands_duplicate);
}

void devsim_report_print(const struct devsim_config *cfg, const struct devsim_report *r)
{
    double secs = r->end_ns > r->start_ns ? (double)(r->end_ns - r->start_ns) / 1e9 : 0.0;
    /* n messages on schedule span (n - 1) intervals: count the last one's too. */
    if (r->target_rate > 0 && r->sent > 0)
        secs += 1.0 / r->target_rate;
    double rate = secs > 0 ? (double)r->sent / secs : 0.0;
    fprintf(stderr,
            "twin-devsim: mode=%s sent=%" PRIu64 " acked=%" PRIu64 " failed=%" PRIu64
            " retries=%" PRIu64 " throttled=%" PRIu64 " seconds=%.3f rate=%.0f target=%.0f"
            " max_lag_ms=%lld drained=%s",
            mode_word(cfg->mode), r->sent, r->acked, r->failed, r->retries, r->throttled, secs,
            rate, r->target_rate, (long long)r->max_lag_ms, r->drained ? "yes" : "no");
    report_machines_line(r);
    fprintf(stderr, "%s\n", r->stopped ? " stopped=signal" : "");
    if (!cfg->json)
        return;
    printf("{\"mode\":\"%s\",\"sent\":%" PRIu64 ",\"acked\":%" PRIu64 ",\"failed\":%" PRIu64
           ",\"retries\":%" PRIu64 ",\"throttled\":%" PRIu64
           ",\"seconds\":%.6f,\"rate\":%.1f,\"target_rate\":%.1f,\"max_lag_ms\":%lld,"
           "\"drained\":%s,\"stopped\":%s",
           mode_word(cfg->mode), r->sent, r->acked, r->failed, r->retries, r->throttled, secs, rate,
           r->target_rate, (long long)r->max_lag_ms, r->drained ? "true" : "false",
           r->stopped ? "true" : "false");
    report_machines_json(r);
    printf("}\n");
    fflush(stdout);
}

void devsim_report_free(struct devsim_report *r)
{
    free(r->assets);
    r->assets = NULL;
    r->n_assets = 0;
}
