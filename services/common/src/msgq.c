/* SPDX-License-Identifier: Apache-2.0 */
/* The bounded handler-to-loop message queue of twin-scenario and twin-advisor: one allocation
 * per message, a count and a byte cap. */
#include "twin/msgq.h"

#include <stdlib.h>
#include <string.h>

#include "twin/clock.h"
#include "twin/codec.h"
#include "twin/err.h"
#include "twin/mqtt.h"

int tw_msgq_init(struct tw_msgq *q, size_t max_n, size_t max_bytes)
{
    memset(q, 0, sizeof(*q));
    q->max_n = max_n;
    q->max_bytes = max_bytes;
    if (pthread_mutex_init(&q->lock, NULL) != 0)
        return TW_ENOMEM;
    if (tw_cond_init_monotonic(&q->changed) != 0) {
        pthread_mutex_destroy(&q->lock);
        return TW_ENOMEM;
    }
    return 0;
}

struct tw_qmsg *tw_msgq_push(struct tw_msgq *q, const struct tw_mqtt_msg *msg, size_t max_payload)
{
    size_t topic_len = strlen(msg->topic);
    bool oversize = msg->len > max_payload;
    size_t keep = oversize ? (msg->len < TW_REJECTED_HEAD_BYTES ? msg->len : TW_REJECTED_HEAD_BYTES)
                           : msg->len;
    struct tw_qmsg *m = malloc(sizeof(*m) + topic_len + 1 + keep);
    if (!m)
        return NULL;
    *m = (struct tw_qmsg){
        .len = keep, .full_len = msg->len, .oversize = oversize, .retained = msg->retained};
    m->topic = (char *)(m + 1);
    memcpy(m->topic, msg->topic, topic_len + 1);
    m->payload = (uint8_t *)m->topic + topic_len + 1;
    if (keep)
        memcpy(m->payload, msg->payload, keep);
    pthread_mutex_lock(&q->lock);
    bool full = q->n >= q->max_n || q->bytes + keep > q->max_bytes;
    if (!full) {
        if (q->tail)
            q->tail->next = m;
        else
            q->head = m;
        q->tail = m;
        q->n++;
        q->bytes += keep;
        pthread_cond_signal(&q->changed);
    }
    pthread_mutex_unlock(&q->lock);
    return full ? m : NULL;
}

struct tw_qmsg *tw_msgq_take(struct tw_msgq *q, int64_t wait_ms)
{
    pthread_mutex_lock(&q->lock);
    if (!q->head && wait_ms > 0)
        tw_cond_wait_ms(&q->changed, &q->lock, wait_ms);
    struct tw_qmsg *m = q->head;
    if (m) {
        q->head = m->next;
        if (!q->head)
            q->tail = NULL;
        q->n--;
        q->bytes -= m->len;
    }
    pthread_mutex_unlock(&q->lock);
    return m;
}

size_t tw_msgq_len(struct tw_msgq *q)
{
    pthread_mutex_lock(&q->lock);
    size_t n = q->n;
    pthread_mutex_unlock(&q->lock);
    return n;
}

void tw_msgq_destroy(struct tw_msgq *q)
{
    struct tw_qmsg *m;
    while ((m = tw_msgq_take(q, 0)) != NULL)
        free(m);
    pthread_mutex_destroy(&q->lock);
    pthread_cond_destroy(&q->changed);
}
