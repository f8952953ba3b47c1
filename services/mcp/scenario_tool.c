/* SPDX-License-Identifier: Apache-2.0 */
/* twin-mcp's run_scenario tool: a what-if request sent to twin-scenario over MQTT (mcp_ask, which
 * recommend shares), its progress passed on as MCP progress notifications, and the KPI
 * comparison returned. */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mcp.h"
#include "twin/clock.h"
#include "twin/err.h"
#include "twin/inbox.h"
#include "wire.h"

#define H_MS             3600000.0
#define CONNECT_MS       10000
#define REFUSED_GRACE_MS 2000 /* a refusal with an ERROR result: the result follows at once */
#define POLL_MS          200

static const struct {
    const char *word;
    int kind;
} kinds[] = {
    {"machine_down", SCEN_P_MACHINE_DOWN},   {"supplier_late", SCEN_P_SUPPLIER_LATE},
    {"demand_factor", SCEN_P_DEMAND_FACTOR}, {"set_parameter", SCEN_P_SET_PARAMETER},
    {"maintain", SCEN_P_MAINTAIN},           {"slow", SCEN_P_SLOW},
};

static double num(const cJSON *o, const char *name, double def)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
    return cJSON_IsNumber(v) && isfinite(v->valuedouble) ? v->valuedouble : def;
}

/* Hours (at most ten years) into ms; -1 when out of range. */
static int64_t hours_ms(double h)
{
    return h >= 0 && h <= 87600 ? (int64_t)llround(h * H_MS) : -1;
}

/* One perturbation object into p; 0, or -1 with the problem in err. */
static int perturbation(const cJSON *o, size_t i, struct scen_perturbation *p, char *err,
                        size_t errlen)
{
    const cJSON *kind = cJSON_GetObjectItemCaseSensitive(o, "kind");
    const cJSON *target = cJSON_GetObjectItemCaseSensitive(o, "target");
    memset(p, 0, sizeof(*p));
    if (!cJSON_IsObject(o)) {
        snprintf(err, errlen, "perturbations[%zu] must be an object", i);
        return -1;
    }
    for (size_t k = 0; cJSON_IsString(kind) && k < sizeof(kinds) / sizeof(kinds[0]); k++)
        if (strcmp(kind->valuestring, kinds[k].word) == 0)
            p->kind = kinds[k].kind;
    if (p->kind == SCEN_P_UNSPECIFIED) {
        snprintf(err, errlen,
                 "perturbations[%zu].kind must be machine_down, supplier_late, "
                 "demand_factor, set_parameter, maintain or slow",
                 i);
        return -1;
    }
    if (target && (!cJSON_IsString(target) || strlen(target->valuestring) >= sizeof(p->target))) {
        snprintf(err, errlen,
                 "perturbations[%zu].target must be a station, machine, supplier or "
                 "parameter path of the plant model",
                 i);
        return -1;
    }
    if (target)
        snprintf(p->target, sizeof(p->target), "%s", target->valuestring);
    p->start_ms = hours_ms(num(o, "start_hours", 0));
    p->duration_ms = hours_ms(num(o, "duration_hours", 0));
    p->delay_ms = hours_ms(num(o, "delay_hours", 0));
    p->factor = num(o, "factor", 0);
    p->value = num(o, "value", 0);
    if (p->kind == SCEN_P_SLOW) /* named for what it is; "value" is the wire's field */
        p->value = num(o, "wear_exponent", p->value);
    if (p->start_ms < 0 || p->duration_ms < 0 || p->delay_ms < 0) {
        snprintf(err, errlen, "perturbations[%zu]: hours must be from 0 to 87600", i);
        return -1;
    }
    return 0;
}

static int build_request(const cJSON *args, struct scen_request *req, char *err, size_t errlen)
{
    static unsigned counter;
    memset(req, 0, sizeof(*req));
    snprintf(req->id, sizeof(req->id), "mcp-%" PRId64 "-%ld-%u", tw_now_ms(), (long)getpid(),
             ++counter);
    const cJSON *name = cJSON_GetObjectItemCaseSensitive(args, "name");
    snprintf(req->name, sizeof(req->name), "%s", cJSON_IsString(name) ? name->valuestring : "");
    const cJSON *list = cJSON_GetObjectItemCaseSensitive(args, "perturbations"), *o;
    cJSON_ArrayForEach(o, list)
    {
        if (req->n_perturb >= SCEN_WIRE_MAX_PERTURB) {
            snprintf(err, errlen, "at most %d perturbations", (int)SCEN_WIRE_MAX_PERTURB);
            return -1;
        }
        if (perturbation(o, req->n_perturb, &req->perturb[req->n_perturb], err, errlen) < 0)
            return -1;
        req->n_perturb++;
    }
    req->horizon_ms = hours_ms(num(args, "horizon_hours", 0));
    req->replications = (uint32_t)num(args, "replications", 0);
    req->seed = (uint64_t)num(args, "seed", 0);
    const cJSON *ignore = cJSON_GetObjectItemCaseSensitive(args, "ignore_live");
    req->ignore_live = cJSON_IsTrue(ignore);
    return 0;
}

static bool head_matches(const struct scen_rejected *rj, const uint8_t *p, size_t len)
{
    size_t n = len < sizeof(rj->head) ? len : sizeof(rj->head);
    return rj->head_len == n && memcmp(rj->head, p, n) == 0;
}

/* Waits for the outcome; 1 with *o, 0 on timeout, -1 refused (reason in err). */
static int await_outcome(struct mcp_twin *t, struct tw_inbox *in, const char *id,
                         const uint8_t *sent, size_t sent_len, int64_t deadline,
                         struct scen_outcome *o, char *err, size_t errlen)
{
    char result_topic[300], progress_topic[300];
    snprintf(result_topic, sizeof(result_topic), "%s/scenario/%s/result", t->topic_root, id);
    snprintf(progress_topic, sizeof(progress_topic), "%s/scenario/%s/progress", t->topic_root, id);
    bool refused = false;
    while (tw_mono_ms() < deadline) {
        struct tw_inbox_msg *m = tw_inbox_next(in, POLL_MS);
        if (!m)
            continue;
        int got = 0;
        struct scen_progress p;
        struct scen_rejected rj;
        if (strcmp(m->topic, result_topic) == 0 && m->len > 0) {
            got = scen_outcome_decode(m->payload, m->len, o) == 0 ? 1 : 0;
        } else if (strcmp(m->topic, progress_topic) == 0 &&
                   scen_progress_decode(m->payload, m->len, &p) == 0) {
            char text[96];
            if (p.state == SCEN_QUEUED)
                snprintf(text, sizeof(text), "queued, %u request(s) ahead", p.queue_position);
            else
                snprintf(text, sizeof(text), "running: %" PRIu64 " of %" PRIu64 " replications",
                         p.replications_done, p.replications_total);
            mcp_progress(t->server, p.state == SCEN_QUEUED ? 0 : p.percent, 100, text);
        } else if (!refused && scen_rejected_decode(m->payload, m->len, &rj) == 0 &&
                   head_matches(&rj, sent, sent_len)) {
            snprintf(err, errlen, "the scenario runner refused the request (%s): %s", rj.reason,
                     rj.detail);
            refused = true; /* most refusals come with an ERROR result under the id: wait */
            int64_t grace = tw_mono_ms() + REFUSED_GRACE_MS;
            deadline = deadline < grace ? deadline : grace;
        }
        free(m);
        if (got)
            return 1;
    }
    return refused ? -1 : 0;
}

struct tw_inbox *mcp_ask(struct mcp_twin *t, const char *client_id, const char *const *filters,
                         size_t n_filters, const char *topic, const uint8_t *buf, size_t len,
                         const char *whom, char *err, size_t errlen)
{
    struct tw_inbox_config icfg = {.url = t->mqtt_url,
                                   .user = t->mqtt_user,
                                   .password = t->mqtt_password,
                                   .ca_file = t->mqtt_ca_file,
                                   .client_id = client_id};
    struct tw_inbox *in = NULL;
    int rc = tw_inbox_open(&icfg, filters, n_filters, CONNECT_MS, &in);
    if (rc == 0)
        rc = tw_inbox_publish(in, topic, buf, len, CONNECT_MS);
    if (rc == 0)
        return in;
    snprintf(err, errlen,
             "the broker could not be reached to ask %s (%s): check TWIN_MQTT_URL and the user; "
             "try again later",
             whom, tw_strerror(rc));
    tw_inbox_close(in);
    return NULL;
}

int mcp_tool_run_scenario(void *ctx, const cJSON *args, cJSON **out, char *err, size_t errlen)
{
    struct mcp_twin *t = ctx;
    static struct scen_request req; /* large: not on the stack; one call at a time */
    if (build_request(args, &req, err, errlen) < 0)
        return -1;
    uint8_t *buf = NULL;
    size_t len = 0;
    if (scen_request_encode(&req, &buf, &len) < 0) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    char client_id[96], request_topic[300], filters[3][300];
    /* "<user>-mcp-<time>-<pid>-<n>": in the user's space of client ids (deploy/mosquitto.conf:
     * operator-...), one per call. */
    snprintf(client_id, sizeof(client_id), "%s-%s",
             t->mqtt_user && t->mqtt_user[0] ? t->mqtt_user : "twin-mcp", req.id);
    snprintf(filters[0], sizeof(filters[0]), "%s/scenario/%s/result", t->topic_root, req.id);
    snprintf(filters[1], sizeof(filters[1]), "%s/scenario/%s/progress", t->topic_root, req.id);
    snprintf(filters[2], sizeof(filters[2]), "%s/rejected/scenario", t->topic_root);
    snprintf(request_topic, sizeof(request_topic), "%s/scenario/request", t->topic_root);
    const char *f[] = {filters[0], filters[1], filters[2]};
    int64_t deadline = tw_mono_ms() + (int64_t)num(args, "timeout_s", 300) * 1000;
    struct tw_inbox *in =
        mcp_ask(t, client_id, f, 3, request_topic, buf, len, "the scenario runner", err, errlen);
    if (!in) {
        free(buf);
        return -1;
    }
    struct scen_outcome o = {0};
    int got = await_outcome(t, in, req.id, buf, len, deadline, &o, err, errlen);
    tw_inbox_close(in);
    free(buf);
    if (got == 0) {
        snprintf(err, errlen,
                 "no result for %s in time: the runner may be busy or down; it may "
                 "still finish (its result is then in twin:scenario:%s)",
                 req.id, req.id);
        return -1;
    }
    if (got < 0)
        return -1;
    if (o.status != SCEN_OK) {
        snprintf(err, errlen, "the scenario %s ended %s: %s", req.id, scen_status_word(o.status),
                 o.error && o.error[0] ? o.error : "no reason given");
        scen_outcome_free(&o);
        return -1;
    }
    *out = scen_outcome_json(&o);
    scen_outcome_free(&o);
    if (!*out) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    return 0;
}
