/* SPDX-License-Identifier: Apache-2.0 */
/* twinctl's connections: its MQTT sessions (twin/inbox.h, with twinctl's client ids and error
 * messages) and Redis reads. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "twin/clock.h"
#include "twin/err.h"
#include "twin/inbox.h"
#include "twin/store.h"
#include "twin/url.h"
#include "twinctl.h"

/* twinctl's client ids: "twinctl-<pid>-<time>", in the operator's space (deploy/mosquitto.conf). */
int ctl_session_open(const struct ctl_settings *s, const char *const *filters, size_t n_filters,
                     int64_t timeout_ms, struct tw_inbox **out)
{
    char client_id[64];
    snprintf(client_id, sizeof(client_id), "twinctl-%ld-%08x", (long)getpid(),
             (unsigned)(tw_now_ms() & 0xffffffff));
    struct tw_inbox_config cfg = {.url = s->mqtt_url,
                                  .user = s->mqtt_user,
                                  .password = s->mqtt_password,
                                  .ca_file = s->mqtt_ca_file,
                                  .client_id = client_id};
    int rc = tw_inbox_open(&cfg, filters, n_filters, timeout_ms, out);
    if (rc == TW_ETIMEDOUT) {
        char masked[300];
        tw_url_mask(s->mqtt_url, masked, sizeof(masked));
        fprintf(stderr, "twinctl: cannot reach the broker at %s within %lld s (TWIN_MQTT_URL)\n",
                masked, (long long)(timeout_ms / 1000));
    } else if (rc < 0) {
        fprintf(stderr, "twinctl: MQTT client: %s\n", tw_strerror(rc));
    }
    return rc;
}

int ctl_session_publish(struct tw_inbox *c, const char *topic, const void *payload, size_t len,
                        int64_t timeout_ms)
{
    int rc = tw_inbox_publish(c, topic, payload, len, timeout_ms);
    if (rc < 0)
        fprintf(stderr, "twinctl: publishing to %s: %s\n", topic, tw_strerror(rc));
    return rc;
}

/* ---- Redis --------------------------------------------------------------------------------- */

int ctl_redis_get(const struct ctl_settings *s, const char *key, uint8_t **buf, size_t *len,
                  int64_t *pttl_ms)
{
    struct tw_store_config cfg = {.url = s->redis_url,
                                  .connect_timeout_ms = 5000,
                                  .command_timeout_ms = (int)s->redis_timeout_ms};
    struct tw_store *st = NULL;
    struct tw_reply *r = NULL;
    const char *get[] = {"GET", key}, *pttl[] = {"PTTL", key};
    struct tw_cmd cmds[] = {{.argc = 2, .argv = get}, {.argc = 2, .argv = pttl}};
    int rc = tw_store_create(&cfg, NULL, 0, &st);
    if (rc == 0)
        rc = tw_store_pipeline(st, cmds, 2, &r);
    if (rc < 0) {
        char masked[300];
        tw_url_mask(s->redis_url, masked, sizeof(masked));
        fprintf(stderr, "twinctl: cannot read %s from Redis at %s: %s\n", key, masked,
                st ? tw_store_last_error(st) : tw_strerror(rc));
    } else if (r[0].type == TW_REPLY_ERROR) {
        fprintf(stderr, "twinctl: Redis refused GET %s: %s\n", key, r[0].str);
        rc = TW_EIO;
    } else if (r[0].type != TW_REPLY_STR) {
        rc = TW_ENOENT;
    } else {
        *buf = malloc(r[0].len ? r[0].len : 1);
        rc = *buf ? 0 : TW_ENOMEM;
        if (*buf)
            memcpy(*buf, r[0].str, r[0].len);
        *len = r[0].len;
        *pttl_ms = r[1].type == TW_REPLY_INT ? r[1].integer : -1;
    }
    tw_store_replies_free(r, 2);
    tw_store_destroy(st);
    return rc;
}

static void redis_failed(const struct ctl_settings *s, const struct tw_store *st, int rc)
{
    char masked[300];
    tw_url_mask(s->redis_url, masked, sizeof(masked));
    fprintf(stderr, "twinctl: cannot use Redis at %s (TWIN_REDIS_URL): %s\n", masked,
            st && tw_store_last_error(st)[0] ? tw_store_last_error(st) : tw_strerror(rc));
}

int ctl_redis_open(const struct ctl_settings *s, struct tw_store **out)
{
    struct tw_store_config cfg = {.url = s->redis_url,
                                  .connect_timeout_ms = 5000,
                                  .command_timeout_ms = (int)s->redis_timeout_ms};
    struct tw_store *st = NULL;
    int rc = tw_store_create(&cfg, NULL, 0, &st);
    if (rc == 0)
        rc = tw_store_connect(st);
    if (rc < 0) {
        redis_failed(s, st, rc);
        tw_store_destroy(st);
        return rc;
    }
    *out = st;
    return 0;
}

int ctl_redis_run(const struct ctl_settings *s, struct tw_store *st, const struct tw_cmd *cmds,
                  size_t n, struct tw_reply **replies)
{
    int rc = tw_store_pipeline(st, cmds, n, replies);
    if (rc < 0)
        redis_failed(s, st, rc);
    return rc;
}
