/* SPDX-License-Identifier: Apache-2.0 */
/* twin-mcp's recommend tool: a RecommendationRequest sent to twin-advisor over MQTT, and its
 * Recommendation (every candidate action simulated and ranked, and why) returned. */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "advice_json.h"
#include "mcp.h"
#include "twin/clock.h"
#include "twin/err.h"
#include "twin/inbox.h"
#include "twin/v1/twin.pb-c.h"
#include "twin/validate.h"

#define POLL_MS 200

/* Waits for the Recommendation answering id (1, *out set), a refusal of the request (-1, the
 * reason in err) or the deadline (0). */
static int await_answer(struct tw_inbox *in, const char *rec_topic, const char *rej_topic,
                        const char *id, const uint8_t *sent, size_t sent_len, int64_t deadline,
                        cJSON **out, char *err, size_t errlen)
{
    while (tw_mono_ms() < deadline) {
        struct tw_inbox_msg *m = tw_inbox_next(in, POLL_MS);
        if (!m)
            continue;
        int rc = 0;
        if (strcmp(m->topic, rec_topic) == 0 && !m->retained) {
            Twin__V1__Recommendation *r =
                twin__v1__recommendation__unpack(NULL, m->len, m->payload);
            if (r && strcmp(r->request_id, id) == 0) {
                *out = adv_recommendation_json(m->payload, m->len);
                rc = *out ? 1 : -1;
                if (!*out)
                    snprintf(err, errlen, "out of memory");
            }
            if (r)
                twin__v1__recommendation__free_unpacked(r, NULL);
        } else if (strcmp(m->topic, rej_topic) == 0) {
            Twin__V1__Rejected *j = twin__v1__rejected__unpack(NULL, m->len, m->payload);
            size_t n = sent_len < 64 ? sent_len : 64;
            if (j && j->payload_head.len == n && memcmp(j->payload_head.data, sent, n) == 0) {
                snprintf(err, errlen, "twin-advisor refused the request (%s): %s", j->reason,
                         j->detail);
                rc = -1;
            }
            if (j)
                twin__v1__rejected__free_unpacked(j, NULL);
        }
        free(m);
        if (rc)
            return rc;
    }
    return 0;
}

int mcp_tool_recommend(void *ctx, const cJSON *args, cJSON **out, char *err, size_t errlen)
{
    struct mcp_twin *t = ctx;
    static unsigned counter;
    const cJSON *asset = cJSON_GetObjectItemCaseSensitive(args, "asset");
    const cJSON *signal = cJSON_GetObjectItemCaseSensitive(args, "signal");
    const cJSON *timeout = cJSON_GetObjectItemCaseSensitive(args, "timeout_s");
    if (!cJSON_IsString(asset) ||
        !tw_valid_asset_id(asset->valuestring, strlen(asset->valuestring))) {
        snprintf(err, errlen, "asset must be an asset id: 1-64 chars of [A-Za-z0-9._-]");
        return -1;
    }
    char id[64], client_id[128], by[96], rec_topic[300], rej_topic[300], req_topic[300];
    snprintf(id, sizeof(id), "mcp-%" PRId64 "-%ld-%u", tw_now_ms(), (long)getpid(), ++counter);
    const char *user = t->mqtt_user && t->mqtt_user[0] ? t->mqtt_user : "twin-mcp";
    snprintf(client_id, sizeof(client_id), "%s-%s", user, id);
    snprintf(by, sizeof(by), "%s via twin-mcp", user);
    snprintf(rec_topic, sizeof(rec_topic), "%s/asset/%s/recommendation", t->topic_root,
             asset->valuestring);
    snprintf(rej_topic, sizeof(rej_topic), "%s/rejected/advisor", t->topic_root);
    snprintf(req_topic, sizeof(req_topic), "%s/recommendation/request", t->topic_root);
    Twin__V1__RecommendationRequest m;
    twin__v1__recommendation_request__init(&m);
    m.id = id;
    m.asset_id = asset->valuestring;
    m.signal = (char *)(cJSON_IsString(signal) ? signal->valuestring : "");
    m.requested_by = by;
    uint8_t buf[512];
    size_t len = twin__v1__recommendation_request__pack(&m, buf);
    const char *f[] = {rec_topic, rej_topic};
    double wait_s = cJSON_IsNumber(timeout) ? timeout->valuedouble : 120;
    int64_t deadline = tw_mono_ms() + (int64_t)(wait_s * 1000);
    struct tw_inbox *in =
        mcp_ask(t, client_id, f, 2, req_topic, buf, len, "twin-advisor", err, errlen);
    if (!in)
        return -1;
    mcp_progress(t->server, 0, 100, "asked twin-advisor: simulating every candidate action");
    int got = await_answer(in, rec_topic, rej_topic, id, buf, len, deadline, out, err, errlen);
    tw_inbox_close(in);
    if (got == 0)
        snprintf(err, errlen,
                 "no recommendation for %s in time: is twin-advisor running? (its answer, if "
                 "late, is in twin:{%s}:recommendation)",
                 asset->valuestring, asset->valuestring);
    if (got != 1)
        return -1;
    const cJSON *status = cJSON_GetObjectItemCaseSensitive(*out, "status");
    if (cJSON_IsString(status) && strcmp(status->valuestring, "ok") != 0) {
        const cJSON *e = cJSON_GetObjectItemCaseSensitive(*out, "error");
        snprintf(err, errlen, "no recommendation for %s: %s", asset->valuestring,
                 cJSON_IsString(e) ? e->valuestring : "no reason given");
        cJSON_Delete(*out);
        *out = NULL;
        return -1;
    }
    return 0;
}
