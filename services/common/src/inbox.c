/* SPDX-License-Identifier: Apache-2.0 */
/* A throwaway MQTT session whose messages wait in a queue for the tool that opened it
 * (twinctl's commands, twin-mcp's scenario runs). */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "twin/clock.h"
#include "twin/err.h"
#include "twin/inbox.h"
#include "twin/mqtt.h"

#define QUEUE_CAP 10000 /* messages held; more (a flood of progress) are dropped */

struct tw_inbox {
    struct tw_mqtt *mqtt;
    pthread_mutex_t lock; /* guards the queue */
    pthread_cond_t changed;
    struct tw_inbox_msg *head, *tail;
    size_t n;
};

/* Paho's thread: copy and return at once (the PUBACK follows); never waits. */
static void on_message(void *ctx, const struct tw_mqtt_msg *msg)
{
    struct tw_inbox *c = ctx;
    size_t tlen = strlen(msg->topic);
    struct tw_inbox_msg *m = malloc(sizeof(*m) + tlen + 1 + msg->len);
    if (!m)
        return;
    *m = (struct tw_inbox_msg){.len = msg->len, .retained = msg->retained};
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

int tw_inbox_open(const struct tw_inbox_config *in, const char *const *filters, size_t n_filters,
                  int64_t timeout_ms, struct tw_inbox **out)
{
    struct tw_inbox *c = calloc(1, sizeof(*c));
    if (!c)
        return TW_ENOMEM;
    pthread_mutex_init(&c->lock, NULL);
    tw_cond_init_monotonic(&c->changed);
    struct tw_mqtt_config cfg = {.url = in->url,
                                 .client_id = in->client_id,
                                 .user = in->user,
                                 .password = in->password,
                                 .ca_file = in->ca_file,
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
    if (rc == 0 && tw_mqtt_wait_ready(c->mqtt, (int)timeout_ms) < 0)
        rc = TW_ETIMEDOUT;
    if (rc < 0) {
        tw_inbox_close(c);
        return rc;
    }
    *out = c;
    return 0;
}

struct tw_inbox_msg *tw_inbox_next(struct tw_inbox *c, int64_t wait_ms)
{
    pthread_mutex_lock(&c->lock);
    if (!c->head && wait_ms > 0)
        tw_cond_wait_ms(&c->changed, &c->lock, wait_ms);
    struct tw_inbox_msg *m = c->head;
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

int tw_inbox_publish(struct tw_inbox *c, const char *topic, const void *payload, size_t len,
                     int64_t timeout_ms)
{
    int rc = tw_mqtt_publish(c->mqtt, topic, payload, len, 1, false);
    return rc == 0 ? tw_mqtt_flush(c->mqtt, (int)timeout_ms) : rc;
}

void tw_inbox_close(struct tw_inbox *c)
{
    if (!c)
        return;
    tw_mqtt_destroy(c->mqtt, 2000);
    struct tw_inbox_msg *m;
    while ((m = tw_inbox_next(c, 0)) != NULL)
        free(m);
    pthread_mutex_destroy(&c->lock);
    pthread_cond_destroy(&c->changed);
    free(c);
}
