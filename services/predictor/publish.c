/* SPDX-License-Identifier: Apache-2.0 */
/* What the predictor sends: Predictions (retained on MQTT and SET in Redis), Alerts and
 * Rejected messages. Loop thread. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "predictor.h"
#include "twin/codec.h"
#include "twin/err.h"

static const char *const alert_words[] = {"unspecified", "anomaly", "threshold_forecast",
                                          "threshold_breach", "cleared"};

static const char *alert_word(int kind)
{
    return kind >= 0 && kind <= PRED_CLEARED ? alert_words[kind] : "unknown";
}

static void publish_log_failure(struct pred_service *svc, const char *what, const char *asset,
                                int rc)
{
    uint32_t suppressed = 0;
    tw_counter_add(svc->m->publish_failed, 1);
    if (tw_ratelimit_allow(&svc->publish_log, tw_mono_ms(), &suppressed))
        tw_log(TW_LOG_WARN, "publish_failed", "what=%s asset=%s error=%s suppressed=%" PRIu32, what,
               asset, tw_strerror(rc), suppressed);
}

/* ---- Prediction ---------------------------------------------------------------------------- */

static int reserve_scratch(struct pred_service *svc, size_t n_sigs)
{
    size_t n_points = n_sigs * (size_t)svc->cfg->points;
    if (n_sigs > svc->forecasts_cap) {
        struct tw_signal_forecast *f = realloc(svc->forecasts, n_sigs * sizeof(*f));
        if (!f)
            return TW_ENOMEM;
        svc->forecasts = f;
        svc->forecasts_cap = n_sigs;
    }
    if (n_points > svc->fpoints_cap) {
        struct tw_forecast_point *p = realloc(svc->fpoints, n_points * sizeof(*p));
        if (!p)
            return TW_ENOMEM;
        svc->fpoints = p;
        svc->fpoints_cap = n_points;
    }
    return 0;
}

/* One SignalForecast per signal that can forecast; *basis gets the newest basis. */
static size_t build_forecasts(struct pred_service *svc, const struct pred_asset *a, int64_t *basis)
{
    size_t n = 0, used = 0;
    *basis = 0;
    for (size_t k = 0; k < a->n_sigs; k++) {
        const struct pred_signal *st = a->sigs[k].st;
        size_t np =
            pred_signal_ready(st) ? pred_signal_forecast(st, svc->points, PRED_MAX_POINTS) : 0;
        if (np > (size_t)svc->cfg->points)
            np = (size_t)svc->cfg->points;
        if (np == 0)
            continue;
        struct tw_forecast_point *out = svc->fpoints + used;
        for (size_t i = 0; i < np; i++)
            out[i] = (struct tw_forecast_point){svc->points[i].ts_ms, svc->points[i].mean,
                                                svc->points[i].lo, svc->points[i].hi};
        struct pred_quality q;
        pred_signal_quality(st, &q);
        svc->forecasts[n++] = (struct tw_signal_forecast){
            .signal = a->sigs[k].name,
            .n_points = np,
            .points = out,
            .quality = {q.n, q.mae, q.rmse, q.mase, q.coverage},
            .model = pred_signal_model(st),
        };
        used += np;
        int64_t b = pred_signal_basis_ms(st);
        *basis = n == 1 || b > *basis ? b : *basis;
    }
    return n;
}

/* Queues SET twin:{a}:prediction; takes buf. */
static void queue_set(struct pred_service *svc, const char *asset, uint8_t *buf, size_t len)
{
    struct pred_set_batch *b = &svc->sets;
    if (b->n == PRED_SET_BATCH)
        pred_publish_flush_sets(svc);
    snprintf(b->keys[b->n], PRED_KEY_MAX, "twin:{%s}:prediction", asset);
    b->values[b->n] = buf;
    b->lens[b->n] = len;
    b->n++;
}

/* Publishes a's Prediction. 0, or a negative tw_err when MQTT did not take it (the caller
 * keeps the asset pending). An asset with nothing to forecast yet publishes nothing. */
static int publish_prediction(struct pred_service *svc, struct pred_asset *a, int64_t now_ms)
{
    char topic[PRED_TOPIC_MAX];
    uint8_t *buf = NULL;
    size_t len = 0;
    int64_t basis = 0;
    if (reserve_scratch(svc, a->n_sigs) < 0)
        return TW_ENOMEM;
    size_t n = build_forecasts(svc, a, &basis);
    if (n == 0)
        return 0;
    a->last_publish_ms = now_ms;
    struct tw_prediction p = {
        .asset_id = a->id, .basis_ts_ms = basis, .n_forecasts = n, .forecasts = svc->forecasts};
    int rc = tw_codec_encode_prediction(&p, &buf, &len);
    if (rc == 0 && svc->outbox) {
        snprintf(topic, sizeof(topic), "%s/asset/%s/prediction", svc->cfg->common.topic_root,
                 a->id);
        rc = pred_outbox_publish(svc->outbox, topic, buf, len, 1, true);
    }
    if (rc == 0 && svc->outbox)
        tw_counter_add(svc->m->predictions, 1);
    else if (rc < 0)
        publish_log_failure(svc, "prediction", a->id, rc);
    if (buf)
        queue_set(svc, a->id, buf, len);
    return rc;
}

void pred_publish_asset(struct pred_service *svc, struct pred_asset *a, int64_t now_ms)
{
    if (publish_prediction(svc, a, now_ms) < 0)
        pred_table_list(&svc->table, a, PRED_LIST_PENDING);
}

void pred_publish_due(struct pred_service *svc, int64_t now_ms, bool force)
{
    struct pred_list *l = &svc->table.lists[PRED_LIST_PENDING];
    if (!force && now_ms < svc->next_publish_scan_ms)
        return;
    svc->next_publish_scan_ms = now_ms + svc->publish_scan_ms;
    for (size_t i = l->n; i-- > 0;) {
        struct pred_asset *a = l->items[i];
        if (!force && a->last_publish_ms != 0 && now_ms - a->last_publish_ms < svc->cfg->publish_ms)
            continue;
        if (publish_prediction(svc, a, now_ms) == 0)
            pred_table_unlist(&svc->table, PRED_LIST_PENDING, i);
    }
    pred_publish_flush_sets(svc);
}

void pred_publish_flush_sets(struct pred_service *svc)
{
    struct pred_set_batch *b = &svc->sets;
    const char *argv[PRED_SET_BATCH][3];
    size_t argvlen[PRED_SET_BATCH][3];
    struct tw_cmd cmds[PRED_SET_BATCH];
    struct tw_reply *replies = NULL;
    if (b->n == 0)
        return;
    for (size_t i = 0; i < b->n; i++) {
        argv[i][0] = "SET";
        argv[i][1] = b->keys[i];
        argv[i][2] = (const char *)b->values[i];
        argvlen[i][0] = 3;
        argvlen[i][1] = strlen(b->keys[i]);
        argvlen[i][2] = b->lens[i];
        cmds[i] = (struct tw_cmd){.argc = 3, .argv = argv[i], .argvlen = argvlen[i]};
    }
    /* With Redis down the SETs are dropped: the retained MQTT message carries the same, and
     * the asset's next Prediction writes the key again. */
    if (pred_redis_ready(svc)) {
        int rc = tw_store_pipeline(svc->store, cmds, b->n, &replies);
        if (rc == 0 || rc == TW_EIO || rc == TW_ETIMEDOUT)
            pred_redis_result(svc, rc, "prediction_write");
        tw_store_replies_free(replies, b->n);
    }
    for (size_t i = 0; i < b->n; i++)
        free(b->values[i]);
    b->n = 0;
}

/* ---- Alert and Rejected ------------------------------------------------------------------ */

static void publish_alert(struct pred_service *svc, const char *topic, const struct tw_alert *al)
{
    uint8_t *buf = NULL;
    size_t len = 0;
    int rc = tw_codec_encode_alert(al, &buf, &len);
    if (rc == 0)
        rc = pred_outbox_publish(svc->outbox, topic, buf, len, 1, false);
    if (rc < 0)
        publish_log_failure(svc, "alert", al->asset_id, rc);
    free(buf);
}

/* Appends the alert to the asset's alert log, twin:{<asset>}:alerts (a capped stream of text
 * fields, for twinctl, twin-mcp and redis-cli). Skipped while Redis is failing: the Alert was
 * published on MQTT all the same. */
static void log_alert(struct pred_service *svc, const struct tw_alert *al)
{
    char key[PRED_KEY_MAX], cap[16], severity[8], ts[24], eta[24], value[40], threshold[40];
    if (!pred_redis_ready(svc)) {
        tw_counter_add(svc->m->alert_log_skipped, 1);
        return;
    }
    snprintf(key, sizeof(key), "twin:{%s}:alerts", al->asset_id);
    snprintf(cap, sizeof(cap), "%d", PRED_ALERT_LOG_MAX);
    snprintf(severity, sizeof(severity), "%d", al->severity);
    snprintf(ts, sizeof(ts), "%" PRId64, al->ts_ms);
    snprintf(eta, sizeof(eta), "%" PRId64, al->eta_ms);
    snprintf(value, sizeof(value), "%.17g", al->value);
    snprintf(threshold, sizeof(threshold), "%.17g", al->threshold);
    const char *argv[] = {"XADD",      key,
                          "MAXLEN",    "~",
                          cap,         "*",
                          "kind",      alert_word(al->kind),
                          "severity",  severity,
                          "signal",    al->signal,
                          "ts_ms",     ts,
                          "eta_ms",    eta,
                          "value",     value,
                          "threshold", threshold,
                          "message",   al->message ? al->message : ""};
    struct tw_reply *r = NULL;
    int rc = tw_store_command(svc->store, &r, (int)(sizeof(argv) / sizeof(argv[0])), argv, NULL);
    uint32_t suppressed = 0;
    if (rc == 0 && r->type == TW_REPLY_ERROR) {
        tw_counter_add(svc->m->alert_log_skipped, 1);
        if (tw_ratelimit_allow(&svc->redis_log, tw_mono_ms(), &suppressed))
            tw_log(TW_LOG_WARN, "alert_log_refused",
                   "asset=%s error=\"%.200s\" suppressed=%" PRIu32, al->asset_id, r->str,
                   suppressed);
    }
    if (rc == 0)
        tw_store_replies_free(r, 1);
    else
        tw_counter_add(svc->m->alert_log_skipped, 1);
    pred_redis_result(svc, rc, "alert_log");
}

void pred_publish_alerts(struct pred_service *svc, const char *asset, const char *signal,
                         const struct pred_event *ev, size_t n)
{
    char topic[PRED_TOPIC_MAX];
    snprintf(topic, sizeof(topic), "%s/asset/%s/alert", svc->cfg->common.topic_root, asset);
    for (size_t i = 0; i < n; i++) {
        uint32_t suppressed = 0;
        struct tw_alert al = {
            .asset_id = asset,
            .signal = signal,
            .kind = (int)ev[i].kind,
            .severity = (int)ev[i].severity,
            .ts_ms = ev[i].ts_ms,
            .eta_ms = ev[i].eta_ms,
            .value = ev[i].value,
            .threshold = ev[i].threshold,
            .message = ev[i].message,
        };
        if (ev[i].kind >= PRED_ANOMALY && ev[i].kind <= PRED_CLEARED)
            tw_counter_add(svc->m->alerts[ev[i].kind], 1);
        if (tw_ratelimit_allow(&svc->alert_log, tw_mono_ms(), &suppressed))
            tw_log(TW_LOG_INFO, "alert",
                   "asset=%s signal=%s kind=%s severity=%d ts_ms=%" PRId64 " eta_ms=%" PRId64
                   " value=%.6g threshold=%.6g published=%d suppressed=%" PRIu32,
                   asset, signal, alert_word(al.kind), al.severity, al.ts_ms, al.eta_ms, al.value,
                   al.threshold, svc->outbox != NULL, suppressed);
        if (svc->outbox)
            publish_alert(svc, topic, &al);
        log_alert(svc, &al);
    }
}

void pred_publish_rejected(struct pred_service *svc, const struct pred_msg *msg,
                           enum tw_reject reason, const char *detail)
{
    uint8_t *buf = NULL;
    size_t len = 0;
    uint32_t suppressed = 0;
    tw_counter_add(svc->m->rejected[reason], 1);
    if (tw_ratelimit_allow(&svc->reject_log, tw_mono_ms(), &suppressed))
        tw_log(TW_LOG_WARN, "state_rejected",
               "topic=\"%.200s\" reason=%s detail=\"%s\" suppressed=%" PRIu32, msg->topic,
               tw_reject_word(reason), detail, suppressed);
    if (svc->outbox && tw_codec_encode_rejected(msg->topic, tw_reject_word(reason), detail,
                                                msg->payload, msg->len, &buf, &len) == 0)
        pred_outbox_publish(svc->outbox, svc->rejected_topic, buf, len, 0, false);
    free(buf);
}
