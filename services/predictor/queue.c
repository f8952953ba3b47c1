/* SPDX-License-Identifier: Apache-2.0 */
/* The bounded queue that hands TwinStates from the MQTT receive thread to the loop thread. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "predictor.h"
#include "twin/codec.h"
#include "twin/err.h"

/* A full queue is re-checked at least this often, so the handler never sleeps unbounded. */
#define QUEUE_WAIT_STEP_MS 100

struct pred_queue {
    pthread_mutex_t lock; /* guards everything below */
    pthread_cond_t not_empty;
    pthread_cond_t not_full;
    struct pred_msg *head, *tail;
    size_t depth, capacity;
    bool unbounded;
    struct tw_gauge *depth_gauge;
    struct tw_counter *waits;
};

int pred_queue_create(size_t capacity, struct tw_gauge *depth, struct tw_counter *waits,
                      struct pred_queue **out)
{
    struct pred_queue *q = calloc(1, sizeof(*q));
    if (!q)
        return TW_ENOMEM;
    pthread_mutex_init(&q->lock, NULL);
    tw_cond_init_monotonic(&q->not_empty);
    tw_cond_init_monotonic(&q->not_full);
    q->capacity = capacity > 0 ? capacity : 1;
    q->depth_gauge = depth;
    q->waits = waits;
    *out = q;
    return 0;
}

void pred_queue_destroy(struct pred_queue *q)
{
    if (!q)
        return;
    while (q->head) {
        struct pred_msg *m = q->head;
        q->head = m->next;
        pred_msg_free(m);
    }
    pthread_mutex_destroy(&q->lock);
    pthread_cond_destroy(&q->not_empty);
    pthread_cond_destroy(&q->not_full);
    free(q);
}

void pred_msg_free(struct pred_msg *m)
{
    free(m);
}

/* One allocation holds the message, its topic and its payload (or the payload's head). */
static struct pred_msg *queue_copy(const char *topic, const void *payload, size_t len,
                                   size_t max_payload)
{
    size_t topic_len = strlen(topic);
    bool oversize = len > max_payload;
    size_t keep = oversize ? (len < TW_REJECTED_HEAD_BYTES ? len : TW_REJECTED_HEAD_BYTES) : len;
    struct pred_msg *m = malloc(sizeof(*m) + topic_len + 1 + keep);
    if (!m)
        return NULL;
    m->next = NULL;
    m->topic = (char *)(m + 1);
    memcpy(m->topic, topic, topic_len + 1);
    m->payload = (uint8_t *)m->topic + topic_len + 1;
    if (keep)
        memcpy(m->payload, payload, keep);
    m->len = keep;
    m->full_len = len;
    m->oversize = oversize;
    return m;
}

void pred_queue_push(struct pred_queue *q, const char *topic, const void *payload, size_t len,
                     size_t max_payload)
{
    struct pred_msg *m;
    /* The broker has the message only until we return: a lack of memory is waited out. */
    while ((m = queue_copy(topic, payload, len, max_payload)) == NULL) {
        tw_log(TW_LOG_ERROR, "out_of_memory", "where=queue retry_ms=%d", QUEUE_WAIT_STEP_MS);
        tw_sleep_ms(QUEUE_WAIT_STEP_MS, NULL);
    }
    pthread_mutex_lock(&q->lock);
    if (q->depth >= q->capacity && !q->unbounded)
        tw_counter_add(q->waits, 1);
    /* Back-pressure: while we wait here the broker keeps the rest for our session. The loop
     * drains continuously, and pred_queue_unbound ends any wait at shutdown. */
    while (q->depth >= q->capacity && !q->unbounded)
        tw_cond_wait_ms(&q->not_full, &q->lock, QUEUE_WAIT_STEP_MS);
    if (q->tail)
        q->tail->next = m;
    else
        q->head = m;
    q->tail = m;
    q->depth++;
    tw_gauge_set(q->depth_gauge, (int64_t)q->depth);
    pthread_cond_signal(&q->not_empty);
    pthread_mutex_unlock(&q->lock);
}

struct pred_msg *pred_queue_take(struct pred_queue *q, size_t max, int64_t wait_ms)
{
    pthread_mutex_lock(&q->lock);
    if (!q->head && wait_ms > 0)
        tw_cond_wait_ms(&q->not_empty, &q->lock, wait_ms);
    struct pred_msg *first = q->head, *last = NULL;
    size_t n = 0;
    for (struct pred_msg *m = first; m && n < max; m = m->next, n++)
        last = m;
    if (last) {
        q->head = last->next;
        if (!q->head)
            q->tail = NULL;
        last->next = NULL;
        q->depth -= n;
        tw_gauge_set(q->depth_gauge, (int64_t)q->depth);
        pthread_cond_broadcast(&q->not_full);
    }
    pthread_mutex_unlock(&q->lock);
    return last ? first : NULL;
}

void pred_queue_unbound(struct pred_queue *q)
{
    pthread_mutex_lock(&q->lock);
    q->unbounded = true;
    pthread_cond_broadcast(&q->not_full);
    pthread_mutex_unlock(&q->lock);
}
