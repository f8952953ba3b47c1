/* SPDX-License-Identifier: Apache-2.0 */
/* twin-advisor's loop: forecast alerts, requests and approvals in; evaluation on the live
 * snapshot; the decision, its audit entry, the Command and the Recommendation out. */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "advisor.h"
#include "snapshot.h"
#include "twin/clock.h"
#include "twin/codec.h"
#include "twin/err.h"
#include "twin/log.h"
#include "twin/msgq.h"

#define INBOX_CAP        1024
#define INBOX_MAX_BYTES  (16u << 20)
#define PUBLISH_RETRY_MS 5000
#define ERR_MAX          512
#define WEAR_SAMPLES     5 /* history values a machine's wear is the median of */

_Static_assert(sizeof(sig_atomic_t) == sizeof(int), "the stop flag doubles as scn_run's cancel");

static const char *const reject_words[ADV_REJECT__COUNT] = {
    "undecodable",    "oversize",      "bad_id",
    "asset_mismatch", "unknown_asset", "unknown_recommendation",
    "retained",       "busy"};
static const char *const decision_words[ADV_DECIDE__COUNT] = {
    "advice", "executed", "awaiting_approval", "refused", "rejected"};

const char *adv_reject_word(enum adv_reject r)
{
    return r < ADV_REJECT__COUNT ? reject_words[r] : "unknown";
}

const char *adv_decision_word(enum adv_decision d)
{
    return d < ADV_DECIDE__COUNT ? decision_words[d] : "unknown";
}

static struct tw_ratelimit busy_log = {.burst = 5, .interval_ms = 10000};
static struct tw_ratelimit reject_log = {.burst = 20, .interval_ms = 10000};

/* ---- Redis and MQTT helpers ----------------------------------------------------------------- */

static void redis_result(struct adv_service *s, int rc)
{
    __atomic_store_n(&s->redis_up, rc >= 0, __ATOMIC_RELAXED);
    tw_gauge_set(s->m->redis_up, rc >= 0);
}

static int publish_retrying(struct adv_service *s, const char *topic, const void *payload,
                            size_t len, bool retain)
{
    int64_t deadline = tw_mono_ms() + PUBLISH_RETRY_MS;
    int rc;
    while ((rc = tw_mqtt_publish(s->mqtt, topic, payload, len, 1, retain)) == TW_EAGAIN &&
           tw_mono_ms() < deadline && !*s->stop)
        tw_sleep_ms(50, NULL);
    if (rc < 0) {
        tw_counter_add(s->m->publish_failed, 1);
        tw_log(TW_LOG_ERROR, "publish_failed", "topic=%s error=%s", topic, tw_strerror(rc));
    }
    return rc;
}

static void reject(struct adv_service *s, const struct tw_qmsg *msg, enum adv_reject r,
                   const char *detail, struct tw_ratelimit *rl)
{
    uint8_t *buf = NULL;
    size_t len = 0;
    uint32_t suppressed = 0;
    tw_counter_add(s->m->rejected[r], 1);
    if (tw_ratelimit_allow(rl, tw_mono_ms(), &suppressed))
        tw_log(TW_LOG_WARN, "input_rejected",
               "topic=%s reason=%s detail=\"%.300s\" suppressed=%" PRIu32, msg->topic,
               adv_reject_word(r), detail, suppressed);
    if (tw_codec_encode_rejected(msg->topic, adv_reject_word(r), detail, msg->payload, msg->len,
                                 &buf, &len) == 0)
        tw_mqtt_publish(s->mqtt, s->rejected_topic, buf, len, 0, false);
    free(buf);
}

static int get_key(struct adv_service *s, const char *key, uint8_t **buf, size_t *len)
{
    const char *argv[] = {"GET", key};
    struct tw_reply *r = NULL;
    int rc = tw_store_command(s->store, &r, 2, argv, NULL);
    redis_result(s, rc);
    if (rc < 0)
        return rc;
    *buf = NULL;
    *len = 0;
    if (r->type == TW_REPLY_STR) {
        *buf = malloc(r->len ? r->len : 1);
        if (*buf) {
            memcpy(*buf, r->str, r->len);
            *len = r->len;
        } else {
            rc = TW_ENOMEM;
        }
    } else if (r->type != TW_REPLY_NIL) {
        rc = TW_EIO;
    }
    tw_store_replies_free(r, 1);
    return rc;
}

static int set_key(struct adv_service *s, const char *key, const uint8_t *buf, size_t len)
{
    const char *argv[] = {"SET", key, (const char *)buf};
    size_t argvlen[] = {3, strlen(key), len};
    struct tw_reply *r = NULL;
    int rc = tw_store_command(s->store, &r, 3, argv, argvlen);
    redis_result(s, rc);
    if (rc == 0 && r->type != TW_REPLY_STATUS) {
        tw_log(TW_LOG_ERROR, "store_failed", "key=%s error=\"%.200s\"", key,
               r->type == TW_REPLY_ERROR ? r->str : "?");
        rc = TW_EIO;
    }
    if (rc < 0)
        tw_counter_add(s->m->store_errors, 1);
    tw_store_replies_free(r, 1);
    return rc;
}

/* The plant time of the asset's state (_ts_ms), or the wall clock when it has none. */
static int64_t state_time(struct adv_service *s, const char *asset)
{
    char key[TW_NAME_MAX + 16];
    snprintf(key, sizeof(key), "twin:{%s}:state", asset);
    const char *argv[] = {"HGET", key, "_ts_ms"};
    struct tw_reply *r = NULL;
    int64_t ts = tw_now_ms();
    int rc = tw_store_command(s->store, &r, 3, argv, NULL);
    redis_result(s, rc);
    if (rc == 0 && r->type == TW_REPLY_STR) {
        char *end;
        long long v = strtoll(r->str, &end, 10);
        if (*end == '\0' && v > 0)
            ts = v;
    }
    tw_store_replies_free(r, 1);
    return ts;
}

static void audit(struct adv_service *s, const struct adv_audit *a)
{
    int rc = adv_audit(s->store, s->cfg->audit_maxlen, a);
    redis_result(s, rc);
    if (rc < 0)
        tw_counter_add(s->m->store_errors, 1);
}

/* ---- deciding and commanding ---------------------------------------------------------------- */

static uint64_t fnv1a(const char *text, uint64_t h)
{
    for (; *text; text++)
        h = (h ^ (uint8_t)*text) * 0x100000001b3ull;
    return h;
}

/* Sends a Command for the action inside the guardrails; the decision goes to rec->decision.
 * `by` is empty for an autonomous decision, else the person who approved it. */
static enum adv_decision execute(struct adv_service *s, const char *asset, int station,
                                 const struct adv_action *act, int64_t start_ms, int64_t plant_ms,
                                 const char *rec_id, const char *by, char *decision,
                                 size_t decision_len, char *command_id)
{
    const struct sim_actions *a = &s->cfg->actions;
    const char *why = "";
    char detail[256] = "";
    bool person = by && by[0];
    snprintf(command_id, ADV_ID_MAX, "cmd-%" PRId64 "-%08" PRIx32 "%" PRIu64 "-%.64s", plant_ms,
             s->id_salt, ++s->seq, asset);
    int rc = sim_action_check(a, (enum sim_action_kind)act->kind, station, act->duration,
                              act->speed, &why, detail, sizeof(detail));
    if (rc == 0 && !person && !(a->autonomy_allowed && s->cfg->autonomy)) {
        why = "autonomy_off";
        snprintf(detail, sizeof(detail), "autonomy is off");
        rc = -1;
    }
    if (rc == 0) {
        rc = adv_limit(s->store, a, act->kind, asset, command_id, plant_ms, !person, &why, detail,
                       sizeof(detail));
        redis_result(s, rc);
        if (rc < 0) {
            why = "redis_unavailable";
            snprintf(detail, sizeof(detail), "the guardrails' memory in Redis cannot be read");
        }
    }
    const char *actor = person ? by : s->instance_by;
    if (rc != 0) {
        command_id[0] = '\0';
        snprintf(decision, decision_len, "refused: %s (%s)", why, detail);
        audit(s, &(struct adv_audit){.event = "refused",
                                     .asset = asset,
                                     .ts_ms = plant_ms,
                                     .recommendation = rec_id,
                                     .action = act->label,
                                     .reason = decision,
                                     .by = actor});
        tw_counter_add(s->m->decisions[ADV_DECIDE_REFUSED], 1);
        tw_log(TW_LOG_WARN, "command_refused", "asset=%s recommendation=%s reason=%s detail=\"%s\"",
               asset, rec_id, why, detail);
        return ADV_DECIDE_REFUSED;
    }
    /* Audit first: a command that is not in the audit stream is never sent. */
    struct adv_audit entry = {.event = "command",
                              .asset = asset,
                              .ts_ms = plant_ms,
                              .recommendation = rec_id,
                              .command = command_id,
                              .action = act->label,
                              .by = actor,
                              .reason = person ? "approved" : "autonomous"};
    int arc = adv_audit(s->store, s->cfg->audit_maxlen, &entry);
    redis_result(s, arc);
    if (arc < 0) {
        command_id[0] = '\0';
        snprintf(decision, decision_len,
                 "refused: audit_unavailable (the audit stream cannot be "
                 "written)");
        tw_counter_add(s->m->decisions[ADV_DECIDE_REFUSED], 1);
        tw_log(TW_LOG_ERROR, "command_refused",
               "asset=%s recommendation=%s reason=audit_unavailable", asset, rec_id);
        return ADV_DECIDE_REFUSED;
    }
    struct adv_command cmd = {.asset = asset,
                              .action = *act,
                              .start_ms = start_ms,
                              .recommendation_id = rec_id,
                              .issued_ms = tw_now_ms(),
                              .issued_by = actor,
                              .reason = act->label};
    snprintf(cmd.id, sizeof(cmd.id), "%s", command_id);
    uint8_t *buf = NULL;
    size_t len = 0;
    char topic[ADV_TOPIC_MAX];
    snprintf(topic, sizeof(topic), "%s/asset/%s/command", s->cfg->common.topic_root, asset);
    if (adv_encode_command(&cmd, &buf, &len) == 0 &&
        publish_retrying(s, topic, buf, len, false) == 0)
        tw_counter_add(s->m->commands, 1);
    free(buf);
    snprintf(decision, decision_len, person ? "executed: approved by %s" : "executed", by);
    tw_counter_add(s->m->decisions[ADV_DECIDE_EXECUTED], 1);
    tw_log(TW_LOG_INFO, "command_sent",
           "asset=%s command=%s action=\"%s\" start_ms=%" PRId64 " by=%s", asset, command_id,
           act->label, start_ms, actor);
    return ADV_DECIDE_EXECUTED;
}

/* ---- recommending -------------------------------------------------------------------------- */

struct trigger {
    const char *asset;
    const char *kind; /* "threshold_forecast", "threshold_breach" or "request" */
    const char *signal, *request_id;
    int64_t ts_ms;
    double forecast_value; /* the value the signal is forecast to reach; NAN: none */
    char text[300];        /* the first sentence of why */
};

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* The machine's wear from the median of its wear signal's last WEAR_SAMPLES values in its
 * history, not the one value of the state: one glitching sample neither triggers a
 * maintenance nor hides wear. Keeps the snapshot's factor when the history has none. */
static void robust_wear(struct adv_service *s, struct sim_plant *p, int station, int machine,
                        const char *asset)
{
    struct sim_station *st = &p->stations[station];
    if (st->live.wear.n == 0)
        return;
    char key[TW_NAME_MAX + 24], count[8];
    snprintf(key, sizeof(key), "twin:{%s}:history", asset);
    snprintf(count, sizeof(count), "%d", WEAR_SAMPLES);
    const char *argv[] = {"XREVRANGE", key, "+", "-", "COUNT", count};
    struct tw_reply *r = NULL;
    int rc = tw_store_command(s->store, &r, 6, argv, NULL);
    redis_result(s, rc);
    double v[WEAR_SAMPLES];
    size_t n = 0;
    for (size_t i = 0; rc == 0 && r->type == TW_REPLY_ARRAY && i < r->n && n < WEAR_SAMPLES; i++) {
        const struct tw_reply *e = &r->elem[i];
        if (e->type != TW_REPLY_ARRAY || e->n != 2 || e->elem[1].type != TW_REPLY_ARRAY)
            continue;
        const struct tw_reply *f = &e->elem[1];
        for (size_t k = 0; k + 1 < f->n; k += 2) {
            char *end;
            if (f->elem[k].type != TW_REPLY_STR || f->elem[k + 1].type != TW_REPLY_STR ||
                strcmp(f->elem[k].str, st->live.wear_signal) != 0)
                continue;
            double x = strtod(f->elem[k + 1].str, &end);
            if (*end == '\0' && isfinite(x))
                v[n++] = x;
        }
    }
    tw_store_replies_free(r, 1);
    if (n == 0)
        return;
    qsort(v, n, sizeof(v[0]), cmp_double);
    double median = n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
    sim_station_set_wear(st, (uint32_t)machine, median);
}

/* A forecast crossing of the station's wear signal: the machine is weighed with the wear the
 * forecast says it reaches (the limit, within the horizon), not only the wear it has now. With
 * an MTBF factor the engine holds a machine's wear constant over a run, so without this a
 * machine that is still healthy but wearing fast would never be worth maintaining before it
 * fails. (With an age the engine wears the machine out itself.) */
static void forecast_wear(struct sim_plant *p, int station, int machine, const struct trigger *t)
{
    struct sim_station *st = &p->stations[station];
    if (!t->signal || isnan(t->forecast_value) || st->live.wear.n == 0 || st->live.wear_is_age ||
        strcmp(t->signal, st->live.wear_signal) != 0)
        return;
    double f = sim_curve_eval(&st->live.wear, t->forecast_value);
    double now =
        st->machine_mtbf_factor[machine] > 0 ? st->machine_mtbf_factor[machine] : st->mtbf_factor;
    if (isfinite(f) && f > 0 && f < now) {
        st->machine_mtbf_factor[machine] = f;
        tw_log(TW_LOG_DEBUG, "forecast_wear", "asset=%s signal=%s value=%.6g mtbf_factor=%.3g",
               t->asset, t->signal, t->forecast_value, f);
    }
}

static void publish_recommendation(struct adv_service *s, struct adv_rec *r)
{
    uint8_t *buf = NULL;
    size_t len = 0;
    char topic[ADV_TOPIC_MAX], key[TW_NAME_MAX + 32];
    if (adv_encode_recommendation(r, &buf, &len) < 0) {
        tw_log(TW_LOG_ERROR, "encode_failed", "what=recommendation id=%s", r->id);
        return;
    }
    snprintf(key, sizeof(key), "twin:{%s}:recommendation", r->asset);
    set_key(s, key, buf, len); /* Redis first: whoever sees the message can read the key */
    snprintf(topic, sizeof(topic), "%s/asset/%s/recommendation", s->cfg->common.topic_root,
             r->asset);
    publish_retrying(s, topic, buf, len, true);
    free(buf);
}

/* Evaluates, decides, publishes; returns whether an action (not "leave it") was recommended. */
static bool recommend(struct adv_service *s, const struct trigger *t)
{
    bool acted = false;
    const struct adv_settings *cfg = s->cfg;
    const struct sim_actions *a = &cfg->actions;
    struct adv_rec *r = calloc(1, sizeof(*r));
    struct adv_eval *e = calloc(1, sizeof(*e));
    struct sim_plant *live = NULL;
    if (!r || !e) {
        tw_log(TW_LOG_ERROR, "out_of_memory", "what=recommendation");
        goto out;
    }
    r->asset = t->asset;
    r->trigger = t->kind;
    r->actions = a;
    r->ts_ms = t->ts_ms;
    r->created_ms = tw_now_ms();
    snprintf(r->request_id, sizeof(r->request_id), "%s", t->request_id ? t->request_id : "");
    snprintf(r->signal, sizeof(r->signal), "%s", t->signal ? t->signal : "");
    snprintf(r->id, sizeof(r->id), "rec-%" PRId64 "-%08" PRIx32 "%" PRIu64 "-%.64s", t->ts_ms,
             s->id_salt, ++s->seq, t->asset);
    snprintf(r->decision, sizeof(r->decision), "advice");
    int station = -1, machine = -1;
    int64_t t0 = tw_mono_ms();
    if (!adv_locate(cfg->plant, t->asset, &station, &machine)) {
        snprintf(r->error, sizeof(r->error),
                 "asset %s is in no station of the plant model: there is nothing to simulate",
                 t->asset);
        tw_counter_add(s->m->recommendations[SIM_ACT_N + 1], 1);
        publish_recommendation(s, r);
        goto out;
    }
    live = sim_plant_copy(cfg->plant);
    struct scen_snapshot_stats st;
    char err[ERR_MAX] = "";
    int rc = live ? scen_snapshot_apply(s->store, live, &st, r->id, err, sizeof(err)) : TW_ENOMEM;
    redis_result(s, rc);
    if (rc == 0) {
        live->epoch = (double)t->ts_ms / 1000.0; /* the calendar of plant time */
        robust_wear(s, live, station, machine, t->asset);
        forecast_wear(live, station, machine, t);
        r->snapshot_ms = st.snapshot_ms;
        struct adv_target target = {.asset = t->asset,
                                    .station = station,
                                    .machine = machine,
                                    .plant_s = live->epoch,
                                    .seed =
                                        fnv1a(t->asset, 0xcbf29ce484222325ull) ^ (uint64_t)t->ts_ms,
                                    .approval_free = cfg->autonomy && a->autonomy_allowed};
        uint32_t reps = cfg->replications > 0 ? (uint32_t)cfg->replications : a->replications;
        rc = adv_evaluate(live, a, &target, reps, (unsigned)cfg->threads,
                          (const volatile int *)s->stop, e, err, sizeof(err));
    } else if (!err[0]) {
        snprintf(err, sizeof(err), "%s", tw_strerror(rc));
    }
    tw_histogram_observe(s->m->evaluate_seconds, (double)(tw_mono_ms() - t0) / 1000.0);
    if (rc != 0) {
        snprintf(r->error, sizeof(r->error), "evaluation failed: %.230s", err);
        tw_counter_add(s->m->recommendations[SIM_ACT_N + 1], 1);
        tw_log(TW_LOG_ERROR, "evaluation_failed", "asset=%s id=%s error=\"%s\"", t->asset, r->id,
               err);
        publish_recommendation(s, r);
        goto out;
    }
    r->ok = true;
    r->eval = e;
    adv_explain(e, t->text, r->why, sizeof(r->why));
    const struct adv_option *best = &e->opt[e->best];
    tw_counter_add(s->m->recommendations[best->action.kind < 0 ? 0 : best->action.kind + 1], 1);
    int64_t start_ms =
        best->action.start > 0 ? t->ts_ms + (int64_t)(best->action.start * 1000.0 + 0.5) : 0;
    enum adv_decision d = ADV_DECIDE_ADVICE;
    if (best->action.kind >= 0 && cfg->autonomy && a->autonomy_allowed) {
        if (a->rule[best->action.kind].approval) {
            d = ADV_DECIDE_AWAITING;
            snprintf(r->decision, sizeof(r->decision), "awaiting_approval");
            tw_counter_add(s->m->decisions[d], 1);
        } else {
            d = execute(s, t->asset, station, &best->action, start_ms, t->ts_ms, r->id, NULL,
                        r->decision, sizeof(r->decision), r->command_id);
        }
    } else {
        tw_counter_add(s->m->decisions[d], 1);
    }
    if (d != ADV_DECIDE_EXECUTED && d != ADV_DECIDE_REFUSED)
        audit(s, &(struct adv_audit){.event = adv_decision_word(d),
                                     .asset = t->asset,
                                     .ts_ms = t->ts_ms,
                                     .recommendation = r->id,
                                     .action = best->action.label,
                                     .reason = r->why,
                                     .by = s->instance_by});
    for (size_t i = 0; i < e->n; i++)
        tw_log(TW_LOG_DEBUG, "option",
               "id=%s rank=%zu action=\"%s\" objective=%.4g effect=%.4g "
               "lo=%.4g hi=%.4g pays=%d",
               r->id, i + 1, e->opt[i].action.label, e->opt[i].objective.mean,
               e->opt[i].effect.mean, e->opt[i].effect.lo, e->opt[i].effect.hi, e->opt[i].pays);
    tw_log(TW_LOG_INFO, "recommendation",
           "asset=%s id=%s trigger=%s signal=%s action=\"%s\" decision=\"%s\" "
           "effect=%.4g lo=%.4g hi=%.4g events=%" PRIu64 " ms=%" PRId64,
           t->asset, r->id, t->kind, r->signal, best->action.label, r->decision, best->effect.mean,
           best->effect.lo, best->effect.hi, e->events, tw_mono_ms() - t0);
    publish_recommendation(s, r);
    acted = best->action.kind >= 0;
out:
    sim_plant_free(live);
    free(e);
    free(r);
    return acted;
}

/* ---- the three inputs ----------------------------------------------------------------------- */

static struct adv_recent *recent_slot(struct adv_service *s, const char *asset)
{
    if (s->n_recent * 2 >= s->cap_recent) {
        size_t cap = s->cap_recent ? s->cap_recent * 2 : 64;
        struct adv_recent *n = calloc(cap, sizeof(*n));
        if (!n)
            return NULL;
        for (size_t i = 0; i < s->cap_recent; i++)
            if (s->recent[i].asset[0]) {
                size_t h = fnv1a(s->recent[i].asset, 0xcbf29ce484222325ull) & (cap - 1);
                while (n[h].asset[0])
                    h = (h + 1) & (cap - 1);
                n[h] = s->recent[i];
            }
        free(s->recent);
        s->recent = n;
        s->cap_recent = cap;
    }
    size_t h = fnv1a(asset, 0xcbf29ce484222325ull) & (s->cap_recent - 1);
    while (s->recent[h].asset[0] && strcmp(s->recent[h].asset, asset) != 0)
        h = (h + 1) & (s->cap_recent - 1);
    if (!s->recent[h].asset[0]) {
        snprintf(s->recent[h].asset, sizeof(s->recent[h].asset), "%s", asset);
        s->recent[h].ts_ms = INT64_MIN;
        s->n_recent++;
    }
    return &s->recent[h];
}

static void on_alert(struct adv_service *s, const struct tw_qmsg *msg, const char *asset)
{
    struct tw_alert_msg am;
    tw_counter_add(s->m->alerts, 1);
    if (tw_codec_decode_alert(msg->payload, msg->len, &am) < 0) {
        reject(s, msg, ADV_REJECT_UNDECODABLE, "not an Alert (protobuf)", &reject_log);
        return;
    }
    const struct tw_alert *al = &am.a;
    int st, mc;
    bool forecast = al->kind == TW_ALERT_THRESHOLD_FORECAST;
    if (!forecast && al->kind != TW_ALERT_THRESHOLD_BREACH) {
        tw_counter_add(s->m->skipped[ADV_SKIP_NOT_FORECAST], 1);
    } else if (strcmp(al->asset_id, asset) != 0) {
        reject(s, msg, ADV_REJECT_ASSET_MISMATCH, "the Alert's asset_id is not the topic's",
               &reject_log);
    } else if (!adv_locate(s->cfg->plant, asset, &st, &mc)) {
        tw_counter_add(s->m->skipped[ADV_SKIP_NO_STATION], 1);
    } else if (strcmp(al->signal, s->cfg->plant->stations[st].live.wear_signal) != 0) {
        tw_counter_add(s->m->skipped[ADV_SKIP_NOT_WEAR], 1);
    } else {
        struct adv_recent *last = recent_slot(s, asset);
        int64_t every = (int64_t)(s->cfg->actions.every * 1000.0);
        if (last && last->ts_ms != INT64_MIN && al->ts_ms >= last->ts_ms &&
            al->ts_ms - last->ts_ms < every) {
            tw_counter_add(s->m->skipped[ADV_SKIP_RECENT], 1);
        } else {
            /* A breach is weighed on the live state as it is (a sensor glitch has passed by
             * then), a forecast with the wear it forecasts. */
            struct trigger t = {.asset = asset,
                                .kind = forecast ? "threshold_forecast" : "threshold_breach",
                                .signal = al->signal,
                                .ts_ms = al->ts_ms,
                                .forecast_value = forecast ? al->threshold : NAN};
            double hours = (double)(al->eta_ms - al->ts_ms) / 3600000.0;
            if (forecast)
                snprintf(t.text, sizeof(t.text), "%s of %s is forecast to reach %.6g in %.2g h.",
                         al->signal, asset, al->threshold, hours > 0 ? hours : 0.0);
            else
                snprintf(t.text, sizeof(t.text), "%s of %s is past its limit %.6g (%.6g).",
                         al->signal, asset, al->threshold, al->value);
            /* Only an action starts the wait: after "leave it running" the next alert of the
             * machine is weighed again. */
            if (recommend(s, &t) && last)
                last->ts_ms = al->ts_ms;
        }
    }
    tw_codec_alert_free(&am);
}

static void on_request(struct adv_service *s, const struct tw_qmsg *msg)
{
    struct adv_request req;
    char err[256];
    tw_counter_add(s->m->requests, 1);
    if (adv_decode_request(msg->payload, msg->len, &req, err, sizeof(err)) < 0) {
        reject(s, msg, ADV_REJECT_UNDECODABLE, err, &reject_log);
        return;
    }
    if (!tw_model_has_asset(s->cfg->model, req.asset)) {
        snprintf(err, sizeof(err), "asset %s is not in the plant model", req.asset);
        reject(s, msg, ADV_REJECT_UNKNOWN_ASSET, err, &reject_log);
        return;
    }
    struct trigger t = {.asset = req.asset,
                        .kind = "request",
                        .request_id = req.id,
                        .signal = req.signal,
                        .ts_ms = state_time(s, req.asset),
                        .forecast_value = NAN};
    snprintf(t.text, sizeof(t.text), "Asked by %s (request %s).",
             req.by[0] ? req.by : "an operator", req.id);
    tw_log(TW_LOG_INFO, "request", "id=%s asset=%s by=%s", req.id, req.asset, req.by);
    recommend(s, &t);
}

static void on_approval(struct adv_service *s, const struct tw_qmsg *msg, const char *asset)
{
    struct adv_approval ap;
    char err[256], key[TW_NAME_MAX + 32];
    tw_counter_add(s->m->approvals, 1);
    if (adv_decode_approval(msg->payload, msg->len, &ap, err, sizeof(err)) < 0) {
        reject(s, msg, ADV_REJECT_UNDECODABLE, err, &reject_log);
        return;
    }
    if (ap.asset[0] && strcmp(ap.asset, asset) != 0) {
        reject(s, msg, ADV_REJECT_ASSET_MISMATCH, "the Approval's asset_id is not the topic's",
               &reject_log);
        return;
    }
    int station, machine;
    if (!adv_locate(s->cfg->plant, asset, &station, &machine)) {
        reject(s, msg, ADV_REJECT_UNKNOWN_ASSET, "the asset is in no station of the plant model",
               &reject_log);
        return;
    }
    uint8_t *buf = NULL, *out = NULL;
    size_t len = 0, out_len = 0;
    struct adv_stored rec;
    snprintf(key, sizeof(key), "twin:{%s}:recommendation", asset);
    int rc = get_key(s, key, &buf, &len);
    if (rc < 0 || !buf || adv_decode_stored(buf, len, &rec) < 0 ||
        strcmp(rec.id, ap.recommendation_id) != 0) {
        snprintf(err, sizeof(err), "%s is not the asset's current recommendation%s",
                 ap.recommendation_id, rc < 0 ? " (Redis cannot be read)" : "");
        reject(s, msg, ADV_REJECT_UNKNOWN_RECOMMENDATION, err, &reject_log);
        goto out;
    }
    bool open =
        strcmp(rec.decision, "awaiting_approval") == 0 || strcmp(rec.decision, "advice") == 0;
    bool fresh = tw_now_ms() - rec.created_ms <= s->cfg->approval_ttl_s * 1000;
    char decision[200], command_id[ADV_ID_MAX] = "";
    if (rec.action.kind < 0 || !open || !fresh) {
        snprintf(err, sizeof(err), "%s cannot be %s: %s", rec.id,
                 ap.reject ? "rejected" : "approved",
                 rec.action.kind < 0 ? "it recommends no action"
                 : !open             ? "it was decided already"
                                     : "it expired (TWIN_ADVISOR_APPROVAL_TTL)");
        reject(s, msg, ADV_REJECT_UNKNOWN_RECOMMENDATION, err, &reject_log);
        goto out;
    }
    if (ap.reject) {
        snprintf(decision, sizeof(decision), "rejected by %s", ap.by);
        audit(s, &(struct adv_audit){.event = "rejected",
                                     .asset = asset,
                                     .ts_ms = rec.ts_ms,
                                     .recommendation = rec.id,
                                     .action = rec.action.label,
                                     .by = ap.by});
        tw_counter_add(s->m->decisions[ADV_DECIDE_REJECTED], 1);
    } else {
        execute(s, asset, station, &rec.action, rec.start_ms, rec.ts_ms, rec.id, ap.by, decision,
                sizeof(decision), command_id);
    }
    tw_log(TW_LOG_INFO, "approval", "asset=%s recommendation=%s by=%s decision=\"%s\"", asset,
           rec.id, ap.by, decision);
    if (adv_redecide(buf, len, decision, command_id, &out, &out_len) == 0) {
        char topic[ADV_TOPIC_MAX];
        set_key(s, key, out, out_len);
        snprintf(topic, sizeof(topic), "%s/asset/%s/recommendation", s->cfg->common.topic_root,
                 asset);
        publish_retrying(s, topic, out, out_len, true);
    }
out:
    free(buf);
    free(out);
}

static void handle(struct adv_service *s, const struct tw_qmsg *msg)
{
    char asset[TW_NAME_MAX + 1], want[ADV_TOPIC_MAX];
    if (msg->oversize) {
        char why[128];
        snprintf(why, sizeof(why), "payload of %zu bytes is above the limit of %" PRId64,
                 msg->full_len, s->cfg->max_payload);
        reject(s, msg, ADV_REJECT_OVERSIZE, why, &reject_log);
        return;
    }
    snprintf(want, sizeof(want), "%s/recommendation/request", s->cfg->common.topic_root);
    if (strcmp(msg->topic, want) == 0) {
        if (msg->retained)
            reject(s, msg, ADV_REJECT_RETAINED,
                   "a retained request would be answered at every subscribe: publish requests "
                   "without retain",
                   &reject_log);
        else
            on_request(s, msg);
    } else if (tw_topic_asset(msg->topic, s->cfg->common.topic_root, "alert", asset) ==
               TW_REJECT_NONE) {
        on_alert(s, msg, asset);
    } else if (tw_topic_asset(msg->topic, s->cfg->common.topic_root, "approval", asset) ==
               TW_REJECT_NONE) {
        if (msg->retained)
            reject(s, msg, ADV_REJECT_RETAINED, "approvals must not be retained", &reject_log);
        else
            on_approval(s, msg, asset);
    }
}

/* ---- the inbox ------------------------------------------------------------------------------ */

static void on_message(void *ctx, const struct tw_mqtt_msg *msg)
{
    struct adv_service *s = ctx;
    struct tw_qmsg *m = tw_msgq_push(&s->inbox, msg, (size_t)s->cfg->max_payload);
    if (!m)
        return;
    /* Full; never wait here: the loop may be publishing, which needs Paho's lock. */
    char asset[TW_NAME_MAX + 1];
    if (tw_topic_asset(m->topic, s->cfg->common.topic_root, "alert", asset) == TW_REJECT_NONE) {
        tw_counter_add(s->m->skipped[ADV_SKIP_DROPPED], 1);
        uint32_t suppressed = 0;
        if (tw_ratelimit_allow(&busy_log, tw_mono_ms(), &suppressed))
            tw_log(TW_LOG_WARN, "alert_dropped", "asset=%s reason=inbox_full suppressed=%" PRIu32,
                   asset, suppressed);
    } else {
        reject(s, m, ADV_REJECT_BUSY, "the advisor's inbox is full: retry later", &busy_log);
    }
    free(m);
}

/* ---- life cycle ----------------------------------------------------------------------------- */

int adv_service_init(struct adv_service *s, const struct adv_settings *cfg, struct adv_metrics *m,
                     volatile sig_atomic_t *stop)
{
    memset(s, 0, sizeof(*s));
    s->cfg = cfg;
    s->m = m;
    s->stop = stop;
    if (tw_msgq_init(&s->inbox, INBOX_CAP, INBOX_MAX_BYTES) < 0)
        return TW_ENOMEM;
    const char *root = cfg->common.topic_root, *inst = cfg->common.instance;
    snprintf(s->client_id, sizeof(s->client_id), "twin-advisor-%s", inst);
    snprintf(s->instance_by, sizeof(s->instance_by), "twin-advisor/%s", inst);
    snprintf(s->status_topic, sizeof(s->status_topic), "%s/service/advisor/%s/status", root, inst);
    snprintf(s->rejected_topic, sizeof(s->rejected_topic), "%s/rejected/advisor", root);
    s->id_salt = (uint32_t)(fnv1a(inst, 0xcbf29ce484222325ull ^ (uint64_t)tw_now_ms()) >> 32);
    struct tw_store_config sc = {.url = cfg->common.redis_url,
                                 .connect_timeout_ms = (int)cfg->redis_timeout_ms,
                                 .command_timeout_ms = (int)cfg->redis_timeout_ms};
    static struct tw_script *scripts[] = {&adv_limit_script};
    int rc = tw_store_create(&sc, scripts, 1, &s->store);
    if (rc < 0)
        return rc;
    struct tw_mqtt_config mc = tw_mqtt_service_config(&cfg->common, s->client_id, s->status_topic);
    rc = tw_mqtt_create(&mc, on_message, s, &s->mqtt);
    char filter[ADV_TOPIC_MAX + 64];
    static const char *const leaves[] = {"asset/+/alert", "asset/+/approval",
                                         "recommendation/request"};
    for (size_t i = 0; rc == 0 && i < 3; i++) {
        snprintf(filter, sizeof(filter), "$share/%s/%s/%s", cfg->group, root, leaves[i]);
        rc = tw_mqtt_subscribe(s->mqtt, filter, 1);
    }
    return rc;
}

bool adv_service_healthy(void *ctx, char *detail, size_t detail_len)
{
    struct adv_service *s = ctx;
    bool mqtt = s->mqtt && tw_mqtt_is_connected(s->mqtt);
    bool redis = __atomic_load_n(&s->redis_up, __ATOMIC_RELAXED);
    snprintf(detail, detail_len, "mqtt=%s redis=%s", mqtt ? "up" : "down", redis ? "up" : "down");
    return mqtt && redis;
}

int adv_service_run(struct adv_service *s)
{
    int rc = tw_mqtt_start(s->mqtt);
    if (rc < 0) {
        tw_log(TW_LOG_ERROR, "mqtt_start_failed", "error=%s", tw_strerror(rc));
        return 1;
    }
    redis_result(s, tw_store_connect(s->store));
    tw_log(TW_LOG_INFO, "started", "autonomy=%s plant_allows=%s group=%s",
           s->cfg->autonomy ? "on" : "off", s->cfg->actions.autonomy_allowed ? "yes" : "no",
           s->cfg->group);
    int64_t last_ping = 0;
    while (!*s->stop) {
        struct tw_qmsg *m = tw_msgq_take(&s->inbox, 500);
        tw_gauge_set(s->m->inbox_depth, (int64_t)tw_msgq_len(&s->inbox));
        tw_gauge_set(s->m->mqtt_up, tw_mqtt_is_connected(s->mqtt));
        if (!m) {
            if (tw_mono_ms() - last_ping > 5000) { /* keeps /healthz honest while idle */
                last_ping = tw_mono_ms();
                redis_result(s, tw_store_connect(s->store));
            }
            continue;
        }
        handle(s, m);
        free(m);
    }
    tw_log(TW_LOG_INFO, "stopping", "inbox=%zu", tw_msgq_len(&s->inbox));
    return 0;
}

void adv_service_free(struct adv_service *s)
{
    if (s->mqtt)
        tw_mqtt_destroy(s->mqtt, (int)s->cfg->shutdown_grace_ms);
    tw_store_destroy(s->store);
    free(s->recent);
    tw_msgq_destroy(&s->inbox);
}
