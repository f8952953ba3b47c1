/* SPDX-License-Identifier: Apache-2.0 */
/* One readable line (or one JSON object) per message on the twin's topics, decoded by topic:
 * Telemetry, TwinState, Prediction, Alert, scenario messages, Rejected and service status. */
#include <cjson/cJSON.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "twin/codec.h"
#include "twin/err.h"
#include "twinctl.h"

#define LINE_MAX_BYTES    2048
#define SAMPLES_IN_LINE   12 /* more are summarised as "(+N)" */
#define FORECASTS_IN_LINE 4
#define NAME_ESC          CTL_ESC_LEN(128) /* a name from a payload, escaped */
#define TEXT_ESC          CTL_ESC_LEN(512) /* a message from a payload, escaped */

struct topic_info {
    const char *type; /* "telemetry", "state", ..., "other" */
    char subject[160];
};

/* Appends printf text to line (always terminated, silently cut at the end). */
static void add(char *line, size_t cap, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void add(char *line, size_t cap, const char *fmt, ...)
{
    size_t used = strlen(line);
    if (used + 1 >= cap)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line + used, cap - used, fmt, ap);
    va_end(ap);
}

static void classify(const char *topic, const char *root, struct topic_info *t)
{
    char segs[5][128];
    size_t n = 0, rl = strlen(root);
    t->type = "other";
    snprintf(t->subject, sizeof(t->subject), "%s", topic);
    if (strncmp(topic, root, rl) != 0 || topic[rl] != '/')
        return;
    for (const char *p = topic + rl + 1; n < 5; n++) {
        const char *slash = strchr(p, '/');
        size_t len = slash ? (size_t)(slash - p) : strlen(p);
        snprintf(segs[n], sizeof(segs[n]), "%.*s", (int)(len < 127 ? len : 127), p);
        if (!slash) {
            n++;
            break;
        }
        p = slash + 1;
    }
    static const char *const asset_leaves[] = {"telemetry", "state", "prediction", "alert"};
    if (n == 3 && strcmp(segs[0], "asset") == 0) {
        for (size_t i = 0; i < 4; i++)
            if (strcmp(segs[2], asset_leaves[i]) == 0)
                t->type = asset_leaves[i];
        snprintf(t->subject, sizeof(t->subject), "%s", segs[1]);
    } else if (n == 2 && strcmp(segs[0], "scenario") == 0 && strcmp(segs[1], "request") == 0) {
        t->type = "scenario_request";
    } else if (n == 3 && strcmp(segs[0], "scenario") == 0 &&
               (strcmp(segs[2], "progress") == 0 || strcmp(segs[2], "result") == 0)) {
        t->type = segs[2][0] == 'p' ? "scenario_progress" : "scenario_result";
        snprintf(t->subject, sizeof(t->subject), "%s", segs[1]);
    } else if (n == 2 && strcmp(segs[0], "rejected") == 0) {
        t->type = "rejected";
        snprintf(t->subject, sizeof(t->subject), "%s", segs[1]);
    } else if (n == 4 && strcmp(segs[0], "service") == 0 && strcmp(segs[3], "status") == 0) {
        t->type = "status";
        if (snprintf(t->subject, sizeof(t->subject), "%s/%s", segs[1], segs[2]) < 0)
            t->subject[0] = '\0'; /* a subject too long for the line is cut, which is fine */
    }
}

static cJSON *samples_json(const struct tw_sample *s, size_t n)
{
    cJSON *arr = cJSON_CreateArray();
    for (size_t i = 0; i < n; i++) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "signal", s[i].signal ? s[i].signal : "");
        cJSON_AddItemToObject(o, "value", cJSON_CreateNumber(s[i].value));
        cJSON_AddItemToArray(arr, o);
    }
    return arr;
}

static void samples_text(char *line, size_t cap, const struct tw_sample *s, size_t n,
                         const char *const *changed, size_t n_changed)
{
    for (size_t i = 0; i < n && i < SAMPLES_IN_LINE; i++) {
        bool mark = false;
        for (size_t k = 0; k < n_changed && !mark; k++)
            mark = strcmp(changed[k], s[i].signal) == 0;
        char name[NAME_ESC];
        add(line, cap, " %s=%.10g%s", ctl_esc(s[i].signal, name, sizeof(name)), s[i].value,
            mark ? "*" : "");
    }
    if (n > SAMPLES_IN_LINE)
        add(line, cap, " (+%zu)", n - SAMPLES_IN_LINE);
}

static int on_telemetry(const struct tw_inbox_msg *m, cJSON *j, char *line, size_t cap)
{
    struct tw_telemetry t;
    int rc = tw_codec_decode_telemetry(m->payload, m->len, &t);
    if (rc < 0)
        return rc;
    if (j) {
        cJSON_AddStringToObject(j, "asset_id", t.asset_id);
        cJSON_AddItemToObject(j, "seq", ctl_json_u64(t.seq));
        cJSON_AddItemToObject(j, "ts_ms", ctl_json_i64(t.ts_ms));
        cJSON_AddItemToObject(j, "samples", samples_json(t.samples, t.n_samples));
    } else {
        char ts[32] = "unset";
        if (t.ts_ms)
            ctl_fmt_clock(t.ts_ms, ts, sizeof(ts));
        add(line, cap, "seq %" PRIu64 " ts %s:", t.seq, ts);
        samples_text(line, cap, t.samples, t.n_samples, NULL, 0);
    }
    tw_codec_telemetry_free(&t);
    return 0;
}

static int on_state(const struct tw_inbox_msg *m, cJSON *j, char *line, size_t cap)
{
    struct tw_twin_state_msg sm;
    int rc = tw_codec_decode_twin_state(m->payload, m->len, &sm);
    if (rc < 0)
        return rc;
    const struct tw_twin_state *s = &sm.s;
    if (j) {
        cJSON *ch = cJSON_CreateArray();
        cJSON_AddItemToObject(j, "seq", ctl_json_u64(s->seq));
        cJSON_AddItemToObject(j, "ts_ms", ctl_json_i64(s->ts_ms));
        cJSON_AddItemToObject(j, "ingest_ms", ctl_json_i64(s->ingest_ms));
        cJSON_AddItemToObject(j, "samples", samples_json(s->samples, s->n_samples));
        for (size_t i = 0; i < s->n_changed; i++)
            cJSON_AddItemToArray(ch, cJSON_CreateString(s->changed[i]));
        cJSON_AddItemToObject(j, "changed", ch);
    } else {
        char lag[32];
        ctl_fmt_span_diff(s->ingest_ms, s->ts_ms, lag, sizeof(lag));
        add(line, cap, "seq %" PRIu64 ":", s->seq);
        samples_text(line, cap, s->samples, s->n_samples, s->changed, s->n_changed);
        add(line, cap, "  (* changed; applied %s after device time)", lag);
    }
    tw_codec_twin_state_free(&sm);
    return 0;
}

static int on_prediction(const struct tw_inbox_msg *m, cJSON *j, char *line, size_t cap)
{
    struct tw_prediction_msg pm;
    int rc = tw_codec_decode_prediction(m->payload, m->len, &pm);
    if (rc < 0)
        return rc;
    const struct tw_prediction *p = &pm.p;
    if (j) {
        cJSON *full = ctl_json_prediction(p, 0);
        cJSON_AddItemToObject(j, "basis_ts_ms", ctl_json_i64(p->basis_ts_ms));
        cJSON_AddItemToObject(j, "forecasts",
                              cJSON_DetachItemFromObjectCaseSensitive(full, "forecasts"));
        cJSON_Delete(full);
    } else {
        char basis[32];
        ctl_fmt_clock(p->basis_ts_ms, basis, sizeof(basis));
        add(line, cap, "basis %s:", basis);
        for (size_t i = 0; i < p->n_forecasts && i < FORECASTS_IN_LINE; i++) {
            const struct tw_signal_forecast *f = &p->forecasts[i];
            char sig[NAME_ESC], model[NAME_ESC];
            add(line, cap, "%s %s %s", i ? ";" : "", ctl_esc(f->signal, sig, sizeof(sig)),
                ctl_esc(f->model, model, sizeof(model)));
            if (f->n_points > 0) {
                char off[32];
                ctl_fmt_span_diff(f->points[0].ts_ms, p->basis_ts_ms, off, sizeof(off));
                add(line, cap, " +%s %.6g [%.6g, %.6g]", off, f->points[0].mean, f->points[0].lo,
                    f->points[0].hi);
            }
        }
        if (p->n_forecasts > FORECASTS_IN_LINE)
            add(line, cap, " (+%zu signals)", p->n_forecasts - FORECASTS_IN_LINE);
    }
    tw_codec_prediction_free(&pm);
    return 0;
}

static int on_alert(const struct tw_inbox_msg *m, cJSON *j, char *line, size_t cap)
{
    struct tw_alert_msg am;
    int rc = tw_codec_decode_alert(m->payload, m->len, &am);
    if (rc < 0)
        return rc;
    if (j) {
        cJSON *full = ctl_json_alert(&am.a);
        cJSON_DeleteItemFromObjectCaseSensitive(full, "asset");
        while (full->child) {
            cJSON *c = cJSON_DetachItemViaPointer(full, full->child);
            cJSON_AddItemToObject(j, c->string, c);
        }
        cJSON_Delete(full);
    } else {
        char text[1024];
        ctl_alert_line(&am.a, text, sizeof(text));
        add(line, cap, "%s", text);
    }
    tw_codec_alert_free(&am);
    return 0;
}

static int on_request(const struct tw_inbox_msg *m, cJSON *j, char *line, size_t cap)
{
    static struct scen_request req; /* large: not on the stack */
    char why[256] = "";
    enum scen_fault f = scen_request_decode(m->payload, m->len, &req, why, sizeof(why));
    int rc = f == SCEN_FAULT_UNDECODABLE ? TW_EPROTO : 0;
    if (rc == 0 && j) {
        cJSON_AddStringToObject(j, "id", req.id);
        cJSON_AddStringToObject(j, "name", req.name);
        cJSON_AddBoolToObject(j, "cancel", req.cancel);
        if (f != SCEN_FAULT_NONE)
            cJSON_AddStringToObject(j, "problem", why[0] ? why : "bad id");
    } else if (rc == 0) {
        char id[NAME_ESC], name[TEXT_ESC], why_esc[CTL_ESC_LEN(sizeof(why))];
        add(line, cap, "%s %s%s%s%s", req.cancel ? "cancel" : "run",
            ctl_esc(req.id, id, sizeof(id)), req.name[0] ? " \"" : "",
            ctl_esc(req.name, name, sizeof(name)), req.name[0] ? "\"" : "");
        if (f != SCEN_FAULT_NONE)
            add(line, cap, "  (invalid: %s)",
                why[0] ? ctl_esc(why, why_esc, sizeof(why_esc)) : "bad id");
    }
    scen_request_free(&req);
    return rc;
}

static int on_progress(const struct tw_inbox_msg *m, cJSON *j, char *line, size_t cap)
{
    struct scen_progress p;
    if (scen_progress_decode(m->payload, m->len, &p) < 0)
        return TW_EPROTO;
    bool queued = p.state == SCEN_QUEUED;
    if (j) {
        cJSON_AddStringToObject(j, "state", queued ? "queued" : "running");
        cJSON_AddNumberToObject(j, "percent", p.percent);
        cJSON_AddItemToObject(j, "eta_ms", ctl_json_i64(p.eta_ms));
        cJSON_AddItemToObject(j, "replications_done", ctl_json_u64(p.replications_done));
        cJSON_AddItemToObject(j, "replications_total", ctl_json_u64(p.replications_total));
        cJSON_AddNumberToObject(j, "queue_position", p.queue_position);
    } else if (queued) {
        add(line, cap, "queued, %u ahead", p.queue_position);
    } else {
        add(line, cap, "running %.1f %% (%" PRIu64 " of %" PRIu64 " replications)", p.percent,
            p.replications_done, p.replications_total);
    }
    return 0;
}

static int on_result(const struct tw_inbox_msg *m, cJSON *j, char *line, size_t cap)
{
    struct scen_outcome o;
    if (m->len == 0) { /* a retained result being cleared */
        if (!j)
            add(line, cap, "(cleared)");
        return 0;
    }
    int rc = scen_outcome_decode(m->payload, m->len, &o);
    if (rc < 0)
        return rc;
    size_t kpis = o.r ? o.r->n_kpis : 0, variants = o.r ? o.r->n_variants : 0;
    if (j) {
        cJSON_AddStringToObject(j, "status", scen_status_word(o.status));
        cJSON_AddStringToObject(j, "name", o.name);
        cJSON_AddStringToObject(j, "error", o.error);
        cJSON_AddNumberToObject(j, "replications", o.replications);
        cJSON_AddNumberToObject(j, "kpis", (double)kpis);
        cJSON_AddNumberToObject(j, "variants", (double)variants);
    } else {
        char name[TEXT_ESC], error[TEXT_ESC];
        add(line, cap, "%s \"%s\": %zu KPIs, %zu variants, %u replications",
            scen_status_word(o.status), ctl_esc(o.name, name, sizeof(name)), kpis, variants,
            o.replications);
        if (o.error[0])
            add(line, cap, "  %s", ctl_esc(o.error, error, sizeof(error)));
    }
    scen_outcome_free(&o);
    return 0;
}

static int on_rejected(const struct tw_inbox_msg *m, cJSON *j, char *line, size_t cap)
{
    struct scen_rejected r;
    if (scen_rejected_decode(m->payload, m->len, &r) < 0)
        return TW_EPROTO;
    if (j) {
        cJSON_AddStringToObject(j, "reason", r.reason);
        cJSON_AddStringToObject(j, "detail", r.detail);
    } else {
        char reason[NAME_ESC], detail[TEXT_ESC];
        add(line, cap, "%s: %s", ctl_esc(r.reason, reason, sizeof(reason)),
            ctl_esc(r.detail, detail, sizeof(detail)));
    }
    return 0;
}

static int on_text(const struct tw_inbox_msg *m, cJSON *j, char *line, size_t cap)
{
    char text[128];
    size_t n = m->len < sizeof(text) - 1 ? m->len : sizeof(text) - 1;
    for (size_t i = 0; i < n; i++)
        text[i] = m->payload[i] >= 0x20 && m->payload[i] < 0x7f ? (char)m->payload[i] : '?';
    text[n] = '\0';
    if (j)
        cJSON_AddStringToObject(j, "text", text);
    else
        add(line, cap, "%s", text[0] ? text : "(empty)");
    return 0;
}

static int on_other(const struct tw_inbox_msg *m, cJSON *j, char *line, size_t cap)
{
    if (j)
        cJSON_AddNumberToObject(j, "bytes", (double)m->len);
    else
        add(line, cap, "%zu bytes", m->len);
    return 0;
}

struct handler {
    const char *type;
    int (*fn)(const struct tw_inbox_msg *m, cJSON *j, char *line, size_t cap);
};

static const struct handler handlers[] = {
    {"telemetry", on_telemetry},
    {"state", on_state},
    {"prediction", on_prediction},
    {"alert", on_alert},
    {"scenario_request", on_request},
    {"scenario_progress", on_progress},
    {"scenario_result", on_result},
    {"rejected", on_rejected},
    {"status", on_text},
    {"other", on_other},
};

const char *ctl_msg_type(const struct ctl_settings *s, const char *topic)
{
    struct topic_info t;
    classify(topic, s->topic_root, &t);
    return t.type;
}

int ctl_msg_print(const struct ctl_settings *s, const struct tw_inbox_msg *m, int64_t arrived_ms,
                  bool json)
{
    struct topic_info t;
    classify(m->topic, s->topic_root, &t);
    const struct handler *h = &handlers[sizeof(handlers) / sizeof(handlers[0]) - 1];
    for (size_t i = 0; i < sizeof(handlers) / sizeof(handlers[0]); i++)
        if (strcmp(handlers[i].type, t.type) == 0)
            h = &handlers[i];
    if (json) {
        cJSON *j = cJSON_CreateObject();
        cJSON_AddItemToObject(j, "received_ms", ctl_json_i64(arrived_ms));
        cJSON_AddStringToObject(j, "topic", m->topic);
        cJSON_AddStringToObject(j, "type", t.type);
        cJSON_AddStringToObject(j, strcmp(t.type, "status") == 0 ? "service" : "subject",
                                t.subject);
        cJSON_AddBoolToObject(j, "retained", m->retained);
        if ((m->len == 0 && h->fn != on_result) || h->fn(m, j, NULL, 0) < 0)
            cJSON_AddStringToObject(j, "error", m->len ? "undecodable" : "empty payload");
        return ctl_json_emit(j);
    }
    char line[LINE_MAX_BYTES] = "", clock[32], subject[CTL_ESC_LEN(sizeof(t.subject))];
    ctl_fmt_clock(arrived_ms, clock, sizeof(clock));
    if (m->len == 0 && h->fn != on_result && h->fn != on_other)
        add(line, sizeof(line), "(empty payload)");
    else if (h->fn(m, NULL, line, sizeof(line)) < 0)
        snprintf(line, sizeof(line), "undecodable (%zu bytes)", m->len);
    printf("%s %-17s %-20s %s%s\n", clock, t.type, ctl_esc(t.subject, subject, sizeof(subject)),
           line, m->retained ? "  (retained)" : "");
    fflush(stdout);
    return 0;
}
