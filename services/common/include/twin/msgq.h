/* SPDX-License-Identifier: Apache-2.0 */
/* A bounded queue of copied MQTT messages from a service's MQTT handler to its loop, in which
 * the handler never waits: a full queue hands the copy back, to be refused. */
#ifndef TWIN_MSGQ_H
#define TWIN_MSGQ_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct tw_mqtt_msg;

struct tw_qmsg {
    struct tw_qmsg *next;
    char *topic;      /* NUL-terminated, stored after the struct */
    uint8_t *payload; /* the payload, or only its head for an oversize message */
    size_t len, full_len;
    bool oversize, retained;
};

struct tw_msgq {
    pthread_mutex_t lock;
    pthread_cond_t changed; /* monotonic clock */
    struct tw_qmsg *head, *tail;
    size_t n, bytes, max_n, max_bytes;
};

/* 0, or TW_ENOMEM. */
int tw_msgq_init(struct tw_msgq *q, size_t max_n, size_t max_bytes);

/* Copies msg into a new tw_qmsg (a payload above max_payload: only its first
 * TW_REJECTED_HEAD_BYTES, with oversize set) and queues it. Returns NULL when it is queued (or
 * memory ran out: the message is dropped), else the copy, which did not fit: the caller
 * refuses it and free()s it. Never waits beyond the queue's lock. */
struct tw_qmsg *tw_msgq_push(struct tw_msgq *q, const struct tw_mqtt_msg *msg, size_t max_payload);

/* The oldest message (free() it), waiting up to wait_ms for one; NULL when none came. */
struct tw_qmsg *tw_msgq_take(struct tw_msgq *q, int64_t wait_ms);

size_t tw_msgq_len(struct tw_msgq *q);

/* Frees what is left and the lock; after the handler can no longer push. */
void tw_msgq_destroy(struct tw_msgq *q);

#endif
