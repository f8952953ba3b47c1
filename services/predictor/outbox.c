/* SPDX-License-Identifier: Apache-2.0 */
/* The outbox: the loop's publishes handed to the MQTT client by a thread of their own, so the
 * loop never waits on the client while the client waits on the loop. */
#include <inttypes.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "predictor.h"
#include "twin/err.h"

/*
 * Why a thread. While the MQTT handler waits for room in the full queue it runs inside Paho's
 * receive thread, which holds a lock of the library that every publish from another thread
 * also takes (seen with Paho 1.3.12: the loop blocked in MQTTAsync_sendMessage while the
 * handler waited for the loop). The loop therefore only appends to this list and goes on; the
 * publisher thread may wait on Paho, but nothing waits on it, so there is no cycle.
 */

#define OUTBOX_RETRY_MS 50 /* after the client refused a publish (its own buffer is full) */

struct outbox_msg {
    struct outbox_msg *next;
    char *topic;
    uint8_t *payload;
    size_t len;
    int qos;
    bool retain;
};

struct pred_outbox {
    struct tw_mqtt *mqtt;
    struct tw_counter *failed;
    struct tw_ratelimit fail_log; /* the publisher thread's */
    pthread_t thread;
    pthread_mutex_t lock; /* guards everything below */
    pthread_cond_t changed;
    struct outbox_msg *head, *tail;
    size_t n, cap;
    bool busy; /* the thread holds a message it took */
    bool stopping;
};

/* Takes the first message (NULL when stopping and empty). */
static struct outbox_msg *outbox_take(struct pred_outbox *o)
{
    pthread_mutex_lock(&o->lock);
    while (!o->head && !o->stopping)
        tw_cond_wait_ms(&o->changed, &o->lock, 100);
    struct outbox_msg *m = o->head;
    if (m) {
        o->head = m->next;
        if (!o->head)
            o->tail = NULL;
        o->busy = true;
    }
    pthread_mutex_unlock(&o->lock);
    return m;
}

/* Puts back a message the client could not take now, or marks it done. */
static void outbox_settle(struct pred_outbox *o, struct outbox_msg *m, bool retry)
{
    pthread_mutex_lock(&o->lock);
    o->busy = false;
    if (retry) {
        m->next = o->head;
        o->head = m;
        if (!o->tail)
            o->tail = m;
    } else {
        o->n--;
    }
    pthread_cond_broadcast(&o->changed);
    pthread_mutex_unlock(&o->lock);
    if (!retry)
        free(m);
}

static void *outbox_thread(void *arg)
{
    struct pred_outbox *o = arg;
    struct outbox_msg *m;
    while ((m = outbox_take(o)) != NULL) {
        int rc = tw_mqtt_publish(o->mqtt, m->topic, m->payload, m->len, m->qos, m->retain);
        bool stopping = __atomic_load_n(&o->stopping, __ATOMIC_RELAXED);
        bool retry = rc == TW_EAGAIN && !stopping;
        if (rc < 0 && !retry) {
            uint32_t suppressed = 0;
            tw_counter_add(o->failed, 1);
            if (tw_ratelimit_allow(&o->fail_log, tw_mono_ms(), &suppressed))
                tw_log(TW_LOG_WARN, "publish_failed",
                       "topic=\"%.200s\" error=%s suppressed=%" PRIu32, m->topic, tw_strerror(rc),
                       suppressed);
        }
        outbox_settle(o, m, retry);
        if (retry)
            tw_sleep_ms(OUTBOX_RETRY_MS, NULL);
    }
    return NULL;
}

int pred_outbox_create(struct tw_mqtt *mqtt, size_t cap, struct tw_counter *failed,
                       struct pred_outbox **out)
{
    struct pred_outbox *o = calloc(1, sizeof(*o));
    if (!o)
        return TW_ENOMEM;
    o->mqtt = mqtt;
    o->cap = cap;
    o->failed = failed;
    o->fail_log = (struct tw_ratelimit){.burst = 5, .interval_ms = 10000};
    pthread_mutex_init(&o->lock, NULL);
    tw_cond_init_monotonic(&o->changed);
    if (pthread_create(&o->thread, NULL, outbox_thread, o) != 0) {
        pthread_mutex_destroy(&o->lock);
        pthread_cond_destroy(&o->changed);
        free(o);
        return TW_ENOMEM;
    }
    *out = o;
    return 0;
}

int pred_outbox_publish(struct pred_outbox *o, const char *topic, const void *payload, size_t len,
                        int qos, bool retain)
{
    size_t topic_len = strlen(topic);
    struct outbox_msg *m = malloc(sizeof(*m) + topic_len + 1 + len);
    if (!m)
        return TW_ENOMEM;
    *m = (struct outbox_msg){.qos = qos, .retain = retain, .len = len};
    m->topic = (char *)(m + 1);
    memcpy(m->topic, topic, topic_len + 1);
    m->payload = (uint8_t *)m->topic + topic_len + 1;
    if (len)
        memcpy(m->payload, payload, len);
    pthread_mutex_lock(&o->lock);
    bool full = o->n >= o->cap;
    if (!full) {
        if (o->tail)
            o->tail->next = m;
        else
            o->head = m;
        o->tail = m;
        o->n++;
        pthread_cond_broadcast(&o->changed);
    }
    pthread_mutex_unlock(&o->lock);
    if (full)
        free(m);
    return full ? TW_EAGAIN : 0;
}

int pred_outbox_drain(struct pred_outbox *o, int64_t timeout_ms)
{
    int64_t deadline = tw_mono_ms() + timeout_ms;
    pthread_mutex_lock(&o->lock);
    while ((o->n > 0 || o->busy) && tw_mono_ms() < deadline)
        tw_cond_wait_ms(&o->changed, &o->lock, 50);
    bool done = o->n == 0 && !o->busy;
    pthread_mutex_unlock(&o->lock);
    return done ? 0 : TW_ETIMEDOUT;
}

void pred_outbox_destroy(struct pred_outbox *o)
{
    if (!o)
        return;
    pthread_mutex_lock(&o->lock);
    __atomic_store_n(&o->stopping, true, __ATOMIC_RELAXED);
    pthread_cond_broadcast(&o->changed);
    pthread_mutex_unlock(&o->lock);
    /* The thread hands over what is left once (the client buffers it or refuses it) and ends. */
    pthread_join(o->thread, NULL);
    pthread_mutex_destroy(&o->lock);
    pthread_cond_destroy(&o->changed);
    free(o);
}
