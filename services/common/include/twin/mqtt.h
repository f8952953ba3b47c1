/* SPDX-License-Identifier: Apache-2.0 */
/* MQTT v5 client for services: persistent session, Last-Will status topic, automatic
 * reconnect, and delivery that acknowledges a message only after the handler returns. */
#ifndef TWIN_MQTT_H
#define TWIN_MQTT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct tw_mqtt;

struct tw_mqtt_msg {
    const char *topic; /* NUL-terminated */
    const void *payload;
    size_t len;
    int qos;
    bool retained;
    bool dup;
};

/* Called on the client library's receive thread, one message at a time, in arrival order.
 * For a QoS 1 message the PUBACK goes to the broker only after this returns: the handler
 * must finish (or durably hand off) its work before returning. Nothing is queued inside
 * the library, so there is never an acknowledged message that the service has not seen.
 * The message and its buffers are only valid during the call. */
typedef void (*tw_mqtt_handler)(void *ctx, const struct tw_mqtt_msg *msg);

struct tw_mqtt_config {
    const char *url;          /* mqtt://, mqtts://, tcp://, ssl:// */
    const char *client_id;    /* stable: names the persistent session */
    const char *user;         /* may be NULL */
    const char *password;     /* may be NULL */
    const char *ca_file;      /* mqtts: CA bundle; NULL: the system's default paths */
    const char *status_topic; /* retained "online"; Last Will "offline"; NULL: none */
    int keepalive_s;
    uint32_t session_expiry_s; /* 0 with clean_start: a throwaway session */
    bool clean_start;
    /* Clean start on this process's first connect only, persistent after: what the session
     * queued while no process used it is dropped (for a client that reads it elsewhere). */
    bool fresh_session;
    int max_inflight; /* QoS 1/2 publishes of ours in flight at once */
    bool quiet;       /* log connects at debug level (short-lived helper clients) */
};

struct tw_common_config;

/* A service's persistent-session configuration from its common settings (URL, credentials, CA
 * file, keepalive, session expiry; clean start off; the largest in-flight window, see
 * mqtt.c). client_id and status_topic (may be NULL) are kept by pointer. */
struct tw_mqtt_config tw_mqtt_service_config(const struct tw_common_config *common,
                                             const char *client_id, const char *status_topic);

/* Creates a client; nothing is sent until tw_mqtt_start. The handler may be NULL for a
 * publish-only client. Returns 0 and *out (owned by the caller, free with tw_mqtt_destroy). */
int tw_mqtt_create(const struct tw_mqtt_config *cfg, tw_mqtt_handler handler, void *ctx,
                   struct tw_mqtt **out);

/* Adds a subscription, made on every (re)connect. Call before tw_mqtt_start. `filter` may be
 * a shared subscription ("$share/group/…"). */
int tw_mqtt_subscribe(struct tw_mqtt *c, const char *filter, int qos);

/* Like tw_mqtt_subscribe, but the broker sends the filter's retained messages on every
 * (re)connect, not only when the subscription is new: for state kept in retained topics
 * (service status) that the client must read afresh after a restart. */
int tw_mqtt_subscribe_retained(struct tw_mqtt *c, const char *filter, int qos);

/* A filter an earlier version of the program subscribed its persistent session to and this
 * one does not want: unsubscribed on every connect that resumes the session (the broker keeps a
 * session's subscriptions across restarts, so a changed filter would otherwise add to the old
 * one, and every message would come twice). Call before tw_mqtt_start. */
int tw_mqtt_drop_subscription(struct tw_mqtt *c, const char *filter);

/* Starts connecting in the background; failed attempts are retried with capped backoff
 * forever (each failure logged). Returns 0 or a setup error. */
int tw_mqtt_start(struct tw_mqtt *c);

/* Waits until connected and subscribed, up to timeout_ms. 0 or TW_ETIMEDOUT. */
int tw_mqtt_wait_ready(struct tw_mqtt *c, int timeout_ms);

bool tw_mqtt_is_connected(struct tw_mqtt *c);

/* Queues a publish. QoS 1/2 messages are retransmitted by the library after a reconnect.
 * Returns 0, TW_EAGAIN when the client cannot take it now (not connected and its buffer is
 * full), or TW_EINVAL. From inside the handler, or from another thread while the handler is
 * not blocked: Paho 1.3.12 holds a lock while the handler runs, so a publish from a thread that
 * the handler is waiting for deadlocks (twin-predictor's outbox.c publishes from a thread of
 * its own for that reason). */
int tw_mqtt_publish(struct tw_mqtt *c, const char *topic, const void *payload, size_t len, int qos,
                    bool retain);

/* Publishes QoS 1 messages still waiting for PUBACK (ours). */
int tw_mqtt_pending(struct tw_mqtt *c);

/* Waits up to timeout_ms for our in-flight publishes to complete. 0 or TW_ETIMEDOUT. */
int tw_mqtt_flush(struct tw_mqtt *c, int timeout_ms);

/* Whether the broker still had this client's session at the last connect. */
bool tw_mqtt_session_present(struct tw_mqtt *c);

/* Removes a subscription from the session now; meant for a filter the session already holds
 * but this client did not add with tw_mqtt_subscribe (which would make it again on the next
 * reconnect). Waits up to timeout_ms for the broker's answer: 0, TW_EIO or TW_ETIMEDOUT. */
int tw_mqtt_unsubscribe(struct tw_mqtt *c, const char *filter, int timeout_ms);

/* Makes tw_mqtt_destroy end the session on the broker (Session Expiry 0 on DISCONNECT), so
 * nothing more is queued for this client id. */
void tw_mqtt_end_session(struct tw_mqtt *c);

/* Publishes "offline" on the status topic, disconnects cleanly (the session stays on the
 * broker) and frees the client. NULL is fine. Not from inside the handler. */
void tw_mqtt_destroy(struct tw_mqtt *c, int timeout_ms);

/* Counts kept by the client, for metrics. */
struct tw_mqtt_stats {
    uint64_t connects;
    uint64_t connection_lost;
    uint64_t published;
    uint64_t publish_failed;
};
void tw_mqtt_get_stats(struct tw_mqtt *c, struct tw_mqtt_stats *out);

#endif
