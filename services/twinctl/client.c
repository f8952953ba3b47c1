/* SPDX-License-Identifier: Apache-2.0 */
/* twinctl's connections: a throwaway MQTT session whose messages are collected in a queue,
 * and a one-shot Redis read. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "twin/clock.h"
#include "twin/err.h"
#include "twin/store.h"
#include "twin/url.h"
#include "twinctl.h"

#define QUEUE_CAP 10000 /* messages held; more (a flood of progress) are dropped */

struct ctl_session {
    struct tw_mqtt *mqtt;
    pthread_mutex_t lock; /* guards the queue */
    pthread_cond_t changed;
    struct ctl_msg *head, *tail;
    size_t n;
};

/* Paho's thread: copy and return at once (the PUBACK follows); never waits. */
static void on_message(void *ctx, const struct tw_mqtt_msg *msg)
{
    struct ctl_session *c = ctx;
    size_t tlen = strlen(msg->topic);
    struct ctl_msg *m = malloc(sizeof(*m) + tlen + 1 + msg->len);
    if (!m)
        return;
    *m = (struct ctl_msg){.len = msg->len, .retained = msg->retained};
    m->topic = (char *)(m + 1);
    memcpy(m->topic, msg->topic, tlen + 1);
    m->payload = (uint8_t *)m->topic + tlen + 1;
    if (msg->len)
        memcpy(m->payload, msg->payload, msg->len);
    pthread_mutex_lock(&c->lock);
    bool full = c->n >= QUEUE_CAP;
    if (!full) {
        if (c->tail)
            c->tail->next = m;
        else
            c->head = m;
        c->tail = m;
        c->n++;
        pthread_cond_signal(&c->changed);
    }
    pthread_mutex_unlock(&c->lock);
    if (full)
        free(m);
}

int ctl_session_open(const struct ctl_settings *s, const char *const *filters, size_t n_filters,
                     int64_t timeout_ms, struct ctl_session **out)
{
    char client_id[64];
    struct ctl_session *c = calloc(1, sizeof(*c));
    if (!c)
        return TW_ENOMEM;
    pthread_mutex_init(&c->lock, NULL);
    tw_cond_init_monotonic(&c->changed);
    snprintf(client_id, sizeof(client_id), "twinctl-%ld-%08x", (long)getpid(),
             (unsigned)(tw_now_ms() & 0xffffffff));
    struct tw_mqtt_config cfg = {.url = s->mqtt_url,
                                 .client_id = client_id,
                                 .user = s->mqtt_user,
                                 .password = s->mqtt_password,
                                 .ca_file = s->mqtt_ca_file,
                                 .keepalive_s = 30,
                                 .session_expiry_s = 0,
                                 .clean_start = true,
                                 .max_inflight = 16,
                                 .quiet = true};
    int rc = tw_mqtt_create(&cfg, on_message, c, &c->mqtt);
    for (size_t i = 0; rc == 0 && i < n_filters; i++)
        rc = tw_mqtt_subscribe(c->mqtt, filters[i], 1);
    if (rc == 0)
        rc = tw_mqtt_start(c->mqtt);
    if (rc == 0 && tw_mqtt_wait_ready(c->mqtt, (int)timeout_ms) < 0) {
        char masked[300];
        tw_url_mask(s->mqtt_url, masked, sizeof(masked));
        fprintf(stderr, "twinctl: cannot reach the broker at %s within %lld s (TWIN_MQTT_URL)\n",
                masked, (long long)(timeout_ms / 1000));
        rc = TW_ETIMEDOUT;
    }
    if (rc < 0) {
        if (rc != TW_ETIMEDOUT)
            fprintf(stderr, "twinctl: MQTT client: %s\n", tw_strerror(rc));
        ctl_session_close(c);
        return rc;
    }
    *out = c;
    return 0;
}

struct ctl_msg *ctl_session_next(struct ctl_session *c, int64_t wait_ms)
{
    pthread_mutex_lock(&c->lock);
    if (!c->head && wait_ms > 0)
        tw_cond_wait_ms(&c->changed, &c->lock, wait_ms);
    struct ctl_msg *m = c->head;
    if (m) {
        c->head = m->next;
        if (!c->head)
            c->tail = NULL;
        c->n--;
        m->next = NULL;
    }
    pthread_mutex_unlock(&c->lock);
    return m;
}

int ctl_session_publish(struct ctl_session *c, const char *topic, const void *payload, size_t len,
                        int64_t timeout_ms)
{
    int rc = tw_mqtt_publish(c->mqtt, topic, payload, len, 1, false);
    if (rc == 0)
        rc = tw_mqtt_flush(c->mqtt, (int)timeout_ms);
    if (rc < 0)
        fprintf(stderr, "twinctl: publishing to %s: %s\n", topic, tw_strerror(rc));
    return rc;
}

void ctl_session_close(struct ctl_session *c)
{
    if (!c)
        return;
    tw_mqtt_destroy(c->mqtt, 2000);
    struct ctl_msg *m;
    while ((m = ctl_session_next(c, 0)) != NULL)
        free(m);
    pthread_mutex_destroy(&c->lock);
    pthread_cond_destroy(&c->changed);
    free(c);
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
