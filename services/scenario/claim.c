/* SPDX-License-Identifier: Apache-2.0 */
/* Which twin-scenario runner holds a request, when several share the request topic: a claim
 * key per request id in Redis, so that a duplicate id is refused and a cancel reaches the
 * runner that holds the request. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "scenario_service.h"
#include "twin/err.h"
#include "twin/validate.h"

/* A queued request may wait long; the claim outlives the longest run by an hour (a week with
 * no run limit) and is renewed when the run starts. A runner killed with -9 leaves its claims
 * to expire. */
static int64_t claim_ttl_ms(const struct scen_service *svc)
{
    int64_t run_s = svc->cfg->max_run_s > 0 ? svc->cfg->max_run_s : 7 * 86400; /* 0: no limit */
    return (run_s + 3600) * 1000;
}

static void claim_key(char *out, size_t cap, const char *id)
{
    snprintf(out, cap, SCEN_KEY_PREFIX "%s:runner", id);
}

/* GET of the claim: 1 and its holder in out, 0 when there is none, or a negative tw_err. */
static int claim_get(struct scen_service *svc, struct tw_store *store, const char *key, char *out,
                     size_t cap)
{
    const char *argv[] = {"GET", key};
    struct tw_reply *r = NULL;
    int rc = tw_store_command(store, &r, 2, argv, NULL);
    scen_redis_result(svc, rc);
    if (rc < 0)
        return rc;
    int found = 0;
    if (r->type == TW_REPLY_STR) {
        snprintf(out, cap, "%.*s", (int)r->len, r->str);
        found = 1;
    } else if (r->type == TW_REPLY_ERROR) {
        rc = TW_EIO;
    }
    tw_store_replies_free(r, 1);
    return rc < 0 ? rc : found;
}

/* SET of the claim to this runner; nx: only when there is none. 1 set, 0 not (nx and one
 * exists), or a negative tw_err. */
static int claim_set(struct scen_service *svc, struct tw_store *store, const char *key, bool nx)
{
    char ttl[24];
    snprintf(ttl, sizeof(ttl), "%" PRId64, claim_ttl_ms(svc));
    const char *argv[] = {"SET", key, svc->cfg->common.instance, "PX", ttl, "NX"};
    struct tw_reply *r = NULL;
    int rc = tw_store_command(store, &r, nx ? 6 : 5, argv, NULL);
    scen_redis_result(svc, rc);
    if (rc < 0)
        return rc;
    int set = r->type == TW_REPLY_STATUS ? 1 : 0;
    if (r->type == TW_REPLY_ERROR)
        rc = TW_EIO;
    tw_store_replies_free(r, 1);
    return rc < 0 ? rc : set;
}

int scen_claim_take(struct scen_service *svc, const char *id, char *holder, size_t cap)
{
    char key[sizeof(SCEN_KEY_PREFIX) + SCEN_ID_MAX + 16];
    claim_key(key, sizeof(key), id);
    int rc = claim_set(svc, svc->store, key, true);
    if (rc != 0)
        return rc < 0 ? rc : 0;
    rc = claim_get(svc, svc->store, key, holder, cap);
    if (rc < 0)
        return rc;
    /* Gone meanwhile, or this runner's own (queued here, or left by its previous process):
     * take it. */
    if (rc == 0 || strcmp(holder, svc->cfg->common.instance) == 0) {
        rc = claim_set(svc, svc->store, key, false);
        return rc < 0 ? rc : 0;
    }
    return 1;
}

void scen_claim_renew(struct scen_service *svc, struct tw_store *store, const char *id)
{
    char key[sizeof(SCEN_KEY_PREFIX) + SCEN_ID_MAX + 16];
    claim_key(key, sizeof(key), id);
    if (claim_set(svc, store, key, false) < 0)
        tw_log(TW_LOG_WARN, "claim_failed", "id=%s error=\"%s\"", id, tw_store_last_error(store));
}

int scen_claim_holder(struct scen_service *svc, const char *id, char *holder, size_t cap)
{
    char key[sizeof(SCEN_KEY_PREFIX) + SCEN_ID_MAX + 16];
    claim_key(key, sizeof(key), id);
    return claim_get(svc, svc->store, key, holder, cap);
}

void scen_claim_release(struct scen_service *svc, struct tw_store *store, const char *id)
{
    char key[sizeof(SCEN_KEY_PREFIX) + SCEN_ID_MAX + 16], holder[TW_NAME_MAX + 1];
    claim_key(key, sizeof(key), id);
    /* Only its own: after a claim expired another runner may hold the id again. The GET and
     * DEL are two steps; a claim taken over between them would be lost, which only lets a
     * later duplicate of that id run twice. */
    if (claim_get(svc, store, key, holder, sizeof(holder)) != 1 ||
        strcmp(holder, svc->cfg->common.instance) != 0)
        return;
    const char *argv[] = {"DEL", key};
    struct tw_reply *r = NULL;
    int rc = tw_store_command(store, &r, 2, argv, NULL);
    scen_redis_result(svc, rc);
    if (rc == 0)
        tw_store_replies_free(r, 1);
}
