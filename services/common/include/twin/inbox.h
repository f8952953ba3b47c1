/* SPDX-License-Identifier: Apache-2.0 */
/* A throwaway MQTT session for tools (twinctl, twin-mcp): subscribe to a few filters, publish,
 * and take the messages that came from a queue, oldest first. */
#ifndef TWIN_INBOX_H
#define TWIN_INBOX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct tw_inbox_msg {
    struct tw_inbox_msg *next;
    char *topic;      /* NUL-terminated; stored after the struct */
    uint8_t *payload; /* len bytes; stored after the topic */
    size_t len;
    bool retained;
};

struct tw_inbox;

struct tw_inbox_config {
    const char *url, *user, *password, *ca_file; /* user and password may be NULL */
    const char *client_id;                       /* must be allowed for the user */
};

/* Connects (clean start, the session ends with the connection), subscribes to the filters and
 * waits until the broker confirmed them, at most timeout_ms. 0, TW_ETIMEDOUT (the broker did
 * not answer in time), or another negative tw_err. At most 10,000 messages wait in the queue;
 * more (a flood) are dropped. */
int tw_inbox_open(const struct tw_inbox_config *cfg, const char *const *filters, size_t n_filters,
                  int64_t timeout_ms, struct tw_inbox **out);
/* The oldest message, waiting up to wait_ms for one; NULL when none came. free() it. */
struct tw_inbox_msg *tw_inbox_next(struct tw_inbox *c, int64_t wait_ms);
/* Publishes with QoS 1 and waits up to timeout_ms for the broker's acknowledgement. 0 or a
 * negative tw_err. */
int tw_inbox_publish(struct tw_inbox *c, const char *topic, const void *payload, size_t len,
                     int64_t timeout_ms);
/* Disconnects and frees; NULL is fine. */
void tw_inbox_close(struct tw_inbox *c);

#endif
