/* SPDX-License-Identifier: Apache-2.0 */
/* The only file that includes Paho: an MQTT v5 client with a persistent session, a status
 * topic with Last Will, reconnect with capped backoff, and acknowledge-after-handling. */
#include "twin/mqtt.h"

#include <dirent.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <MQTTAsync.h>

#include "twin/clock.h"
#include "twin/config.h"
#include "twin/err.h"
#include "twin/log.h"
#include "twin/url.h"

#define MQTT_MAX_SUBS     8
#define MQTT_BUFFERED_MAX 10000 /* publishes buffered while disconnected */

enum mqtt_link { LINK_DOWN, LINK_CONNECTING, LINK_UP };

struct tw_mqtt {
    MQTTAsync client;
    struct tw_mqtt_config cfg;
    struct tw_mqtt_url url;
    char *client_id, *user, *password, *ca_file, *status_topic;
    tw_mqtt_handler handler;
    void *ctx;
    char *subs[MQTT_MAX_SUBS];
    int sub_qos[MQTT_MAX_SUBS];
    bool sub_retained[MQTT_MAX_SUBS]; /* retained messages on every (re)connect */
    char *drops[MQTT_MAX_SUBS];       /* filters an earlier version subscribed the session to */
    int n_drops;
    int n_subs;

    pthread_mutex_t lock; /* guards everything below */
    pthread_cond_t cond;
    enum mqtt_link link;
    int subs_acked;
    bool session_present; /* as the broker said in the last CONNACK */
    int unsubs_pending;
    bool stopping;
    int pending; /* our QoS>0 publishes awaiting completion */
    int64_t next_attempt_ms;
    struct tw_backoff backoff;
    struct tw_mqtt_stats stats;
    pthread_t connector;
    bool connector_started;
    bool end_session; /* tw_mqtt_end_session was called */
};

static char *dup_or_null(const char *s)
{
    return s && s[0] ? strdup(s) : NULL;
}

/* ---- Nagle ------------------------------------------------------------------------------- */

/* Paho offers no hook to set TCP_NODELAY, and with Nagle a small PUBACK or publish can wait
 * ~40 ms for the peer's delayed ACK (seen here at 5 k msg/s). So after each connect we find
 * our sockets to the broker's port among this process's descriptors and set it there. */
static void mqtt_set_nodelay(int port)
{
    DIR *d = opendir("/proc/self/fd");
    if (!d)
        return;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        int fd = atoi(e->d_name);
        struct stat st;
        struct sockaddr_storage peer;
        socklen_t len = sizeof(peer);
        if (fd <= 2 || fstat(fd, &st) != 0 || !S_ISSOCK(st.st_mode))
            continue;
        if (getpeername(fd, (struct sockaddr *)&peer, &len) != 0)
            continue;
        int peer_port = peer.ss_family == AF_INET ? ntohs(((struct sockaddr_in *)&peer)->sin_port)
                        : peer.ss_family == AF_INET6
                            ? ntohs(((struct sockaddr_in6 *)&peer)->sin6_port)
                            : -1;
        int one = 1;
        if (peer_port == port)
            setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    }
    closedir(d);
}

/* ---- callbacks (Paho's threads) ---------------------------------------------------------- */

static void mqtt_link_down(struct tw_mqtt *c, int64_t delay_ms)
{
    pthread_mutex_lock(&c->lock);
    c->link = LINK_DOWN;
    c->subs_acked = 0;
    c->next_attempt_ms = tw_mono_ms() + delay_ms;
    pthread_cond_broadcast(&c->cond);
    pthread_mutex_unlock(&c->lock);
}

static void on_connection_lost(void *ctx, char *cause)
{
    struct tw_mqtt *c = ctx;
    tw_log(TW_LOG_WARN, "mqtt_connection_lost", "client=%s cause=\"%s\"", c->client_id,
           cause ? cause : "unknown");
    pthread_mutex_lock(&c->lock);
    c->stats.connection_lost++;
    pthread_mutex_unlock(&c->lock);
    mqtt_link_down(c, 0);
}

/* Paho sends the PUBACK of a QoS 1 message only after this returns, provided its own queue
 * is empty (MQTTProtocol_handlePublishes calls Protocol_processPublication, which calls us
 * directly, and only then sends PUBACK). Returning 0 would make Paho queue the message and
 * acknowledge it at once, before we handled it — so we always handle it here, fully, and
 * return 1; the queue therefore stays empty and every message takes the direct path. */
static int on_message(void *ctx, char *topic, int topic_len, MQTTAsync_message *m)
{
    struct tw_mqtt *c = ctx;
    struct tw_mqtt_msg msg = {
        .topic = topic,
        .payload = m->payload,
        .len = m->payloadlen > 0 ? (size_t)m->payloadlen : 0,
        .qos = m->qos,
        .retained = m->retained != 0,
        .dup = m->dup != 0,
    };
    (void)topic_len; /* MQTT forbids NUL in topic names; Paho NUL-terminates them */
    if (c->handler)
        c->handler(c->ctx, &msg);
    MQTTAsync_freeMessage(&m);
    MQTTAsync_free(topic);
    return 1;
}

static void on_subscribed(void *ctx, MQTTAsync_successData5 *r)
{
    struct tw_mqtt *c = ctx;
    if (r->reasonCode >= 0x80) {
        tw_log(TW_LOG_ERROR, "mqtt_subscribe_refused", "client=%s reason=%d", c->client_id,
               (int)r->reasonCode);
        return;
    }
    pthread_mutex_lock(&c->lock);
    c->subs_acked++;
    pthread_cond_broadcast(&c->cond);
    pthread_mutex_unlock(&c->lock);
}

static void on_subscribe_failed(void *ctx, MQTTAsync_failureData5 *r)
{
    struct tw_mqtt *c = ctx;
    tw_log(TW_LOG_ERROR, "mqtt_subscribe_failed", "client=%s code=%d reason=%d", c->client_id,
           r ? r->code : 0, r ? (int)r->reasonCode : 0);
}

static void mqtt_subscribe_all(struct tw_mqtt *c)
{
    for (int i = 0; i < c->n_subs; i++) {
        MQTTAsync_responseOptions opts = MQTTAsync_responseOptions_initializer;
        opts.onSuccess5 = on_subscribed;
        opts.onFailure5 = on_subscribe_failed;
        opts.context = c;
        /* Retained messages only for a new subscription, so a reconnect does not replay them,
         * unless the subscription asked for them every time. */
        opts.subscribeOptions.retainHandling = c->sub_retained[i] ? 0 : 1;
        int rc = MQTTAsync_subscribe(c->client, c->subs[i], c->sub_qos[i], &opts);
        if (rc != MQTTASYNC_SUCCESS)
            tw_log(TW_LOG_ERROR, "mqtt_subscribe_failed", "client=%s filter=%s code=%d",
                   c->client_id, c->subs[i], rc);
    }
}

static void on_connected(void *ctx, MQTTAsync_successData5 *r)
{
    struct tw_mqtt *c = ctx;
    int session = r ? r->alt.connect.sessionPresent : 0;
    mqtt_set_nodelay(c->url.port);
    pthread_mutex_lock(&c->lock);
    c->link = LINK_UP;
    c->session_present = session != 0;
    c->stats.connects++;
    tw_backoff_reset(&c->backoff);
    pthread_cond_broadcast(&c->cond);
    pthread_mutex_unlock(&c->lock);
    tw_log(c->cfg.quiet ? TW_LOG_DEBUG : TW_LOG_INFO, "mqtt_connected",
           "client=%s broker=%s session_present=%d", c->client_id, c->url.server_uri, session);
    /* A resumed session keeps what an earlier version subscribed it to: drop it. */
    for (int i = 0; session && i < c->n_drops; i++) {
        MQTTAsync_responseOptions opts = MQTTAsync_responseOptions_initializer;
        if (MQTTAsync_unsubscribe(c->client, c->drops[i], &opts) != MQTTASYNC_SUCCESS)
            tw_log(TW_LOG_WARN, "mqtt_unsubscribe_failed", "client=%s filter=%s", c->client_id,
                   c->drops[i]);
    }
    mqtt_subscribe_all(c);
    if (c->status_topic)
        tw_mqtt_publish(c, c->status_topic, "online", 6, 1, true);
}

static void on_connect_failed(void *ctx, MQTTAsync_failureData5 *r)
{
    struct tw_mqtt *c = ctx;
    pthread_mutex_lock(&c->lock);
    int64_t delay = tw_backoff_next(&c->backoff);
    pthread_mutex_unlock(&c->lock);
    tw_log(TW_LOG_WARN, "mqtt_connect_failed",
           "client=%s broker=%s code=%d reason=%d \"%s\" retry_ms=%lld", c->client_id,
           c->url.server_uri, r ? r->code : 0, r ? (int)r->reasonCode : 0,
           r && r->message ? r->message : "", (long long)delay);
    mqtt_link_down(c, delay);
}

static void on_published(void *ctx, MQTTAsync_successData5 *r)
{
    struct tw_mqtt *c = ctx;
    (void)r;
    pthread_mutex_lock(&c->lock);
    c->pending--;
    c->stats.published++;
    pthread_cond_broadcast(&c->cond);
    pthread_mutex_unlock(&c->lock);
}

static void on_publish_failed(void *ctx, MQTTAsync_failureData5 *r)
{
    struct tw_mqtt *c = ctx;
    pthread_mutex_lock(&c->lock);
    c->pending--;
    c->stats.publish_failed++;
    pthread_cond_broadcast(&c->cond);
    pthread_mutex_unlock(&c->lock);
    tw_log(TW_LOG_WARN, "mqtt_publish_failed", "client=%s code=%d", c->client_id, r ? r->code : 0);
}

/* ---- connecting --------------------------------------------------------------------------- */

/* Paho passes OpenSSL's error queue here when a TLS handshake fails ("certificate verify
 * failed", "wrong version number"); without it the failure says only "TCP/TLS connect
 * failure". Paho checks the host name after the handshake and reports nothing here for a
 * mismatch (its trace does: MQTT_C_CLIENT_TRACE=stderr MQTT_C_CLIENT_TRACE_LEVEL=PROTOCOL). */
static int on_tls_error(const char *str, size_t len, void *u)
{
    struct tw_mqtt *c = u;
    while (len > 0 && (str[len - 1] == '\n' || str[len - 1] == '\r'))
        len--;
    tw_log(TW_LOG_WARN, "mqtt_tls_error", "client=%s broker=%s detail=\"%.*s\"", c->client_id,
           c->url.server_uri, (int)(len > 300 ? 300 : len), str);
    return 1; /* go on with the next queued error */
}

static int mqtt_connect_once(struct tw_mqtt *c)
{
    MQTTAsync_connectOptions opts = MQTTAsync_connectOptions_initializer5;
    MQTTAsync_willOptions will = MQTTAsync_willOptions_initializer;
    MQTTAsync_SSLOptions ssl = MQTTAsync_SSLOptions_initializer;
    MQTTProperties props = MQTTProperties_initializer;
    MQTTProperty expiry = {.identifier = MQTTPROPERTY_CODE_SESSION_EXPIRY_INTERVAL};

    expiry.value.integer4 = c->cfg.session_expiry_s;
    MQTTProperties_add(&props, &expiry);
    opts.connectProperties = &props;
    opts.keepAliveInterval = c->cfg.keepalive_s;
    pthread_mutex_lock(&c->lock);
    opts.cleanstart = c->cfg.clean_start || (c->cfg.fresh_session && c->stats.connects == 0);
    pthread_mutex_unlock(&c->lock);
    opts.connectTimeout = 5;
    opts.maxInflight = c->cfg.max_inflight > 0 ? c->cfg.max_inflight : 64;
    opts.username = c->user;
    opts.password = c->password;
    opts.onSuccess5 = on_connected;
    opts.onFailure5 = on_connect_failed;
    opts.context = c;
    if (c->status_topic) {
        will.topicName = c->status_topic;
        will.message = "offline";
        will.retained = 1;
        will.qos = 1;
        opts.will = &will;
    }
    if (c->url.tls) {
        /* Paho 1.3.12 (src/SSLSocket.c): trustStore is loaded with
         * SSL_CTX_load_verify_locations, and only it (NULL: OpenSSL's default paths);
         * enableServerCertAuth sets SSL_VERIFY_PEER, so an untrusted chain fails the
         * handshake; verify makes Paho check the URL's host against the certificate after
         * the handshake (X509_check_host, then X509_check_ip_asc). Both are always on: there
         * is no setting to turn them off. sslVersion is ignored with OpenSSL >= 1.1: Paho
         * uses TLS_client_method at security level 1, where OpenSSL 3 refuses the SHA-1/MD5
         * signatures of TLS 1.0 and 1.1. tests/integration/test_tls.py checks the refusals. */
        ssl.trustStore = c->ca_file;
        ssl.enableServerCertAuth = 1;
        ssl.verify = 1;
        ssl.ssl_error_cb = on_tls_error;
        ssl.ssl_error_context = c;
        opts.ssl = &ssl;
    }
    int rc = MQTTAsync_connect(c->client, &opts);
    MQTTProperties_free(&props);
    return rc;
}

/* Owns (re)connecting: Paho's own automatic reconnect does not cover a first connect that
 * fails, so one loop handles both, with capped backoff. */
static void *mqtt_connector(void *arg)
{
    struct tw_mqtt *c = arg;
    pthread_mutex_lock(&c->lock);
    while (!c->stopping) {
        int64_t now = tw_mono_ms();
        if (c->link != LINK_DOWN || now < c->next_attempt_ms) {
            int64_t wait_ms = c->link == LINK_DOWN ? c->next_attempt_ms - now : 1000;
            tw_cond_wait_ms(&c->cond, &c->lock, wait_ms > 1000 ? 1000 : wait_ms);
            continue;
        }
        c->link = LINK_CONNECTING;
        pthread_mutex_unlock(&c->lock);
        int rc = mqtt_connect_once(c);
        pthread_mutex_lock(&c->lock);
        if (rc != MQTTASYNC_SUCCESS) {
            int64_t delay = tw_backoff_next(&c->backoff);
            tw_log(TW_LOG_WARN, "mqtt_connect_failed", "client=%s code=%d retry_ms=%lld",
                   c->client_id, rc, (long long)delay);
            c->link = LINK_DOWN;
            c->next_attempt_ms = tw_mono_ms() + delay;
        }
    }
    pthread_mutex_unlock(&c->lock);
    return NULL;
}

/* ---- public API --------------------------------------------------------------------------- */

static int mqtt_copy_config(struct tw_mqtt *c, const struct tw_mqtt_config *cfg)
{
    c->cfg = *cfg;
    c->client_id = strdup(cfg->client_id);
    c->user = dup_or_null(cfg->user);
    c->password = dup_or_null(cfg->password);
    c->ca_file = dup_or_null(cfg->ca_file);
    c->status_topic = dup_or_null(cfg->status_topic);
    if (!c->client_id || (cfg->user && cfg->user[0] && !c->user) ||
        (cfg->password && cfg->password[0] && !c->password) ||
        (cfg->status_topic && cfg->status_topic[0] && !c->status_topic))
        return TW_ENOMEM;
    return 0;
}

static void mqtt_free_fields(struct tw_mqtt *c)
{
    if (c->password)
        memset(c->password, 0, strlen(c->password));
    free(c->client_id);
    free(c->user);
    free(c->password);
    free(c->ca_file);
    free(c->status_topic);
    for (int i = 0; i < c->n_subs; i++)
        free(c->subs[i]);
    for (int i = 0; i < c->n_drops; i++)
        free(c->drops[i]);
    pthread_mutex_destroy(&c->lock);
    pthread_cond_destroy(&c->cond);
    free(c);
}

static pthread_once_t mqtt_init_once = PTHREAD_ONCE_INIT;

/* Paho's own OpenSSL set-up (src/SSLSocket.c: SSL_library_init, the error strings, every
 * algorithm, locking callbacks) is for OpenSSL < 1.1; OpenSSL 3 initialises itself when the
 * first TLS context is made. Skipping it keeps ~1.5 MB of libcrypto and libssl pages out of
 * every process that never speaks TLS (each twin-ingest worker: 5.6 -> 4.0 MB RSS). test_tls
 * covers TLS. */
static void mqtt_global_init(void)
{
    MQTTAsync_init_options init = MQTTAsync_init_options_initializer;
    init.do_openssl_init = 0;
    MQTTAsync_global_init(&init);
}

int tw_mqtt_create(const struct tw_mqtt_config *cfg, tw_mqtt_handler handler, void *ctx,
                   struct tw_mqtt **out)
{
    char err[160];
    pthread_once(&mqtt_init_once, mqtt_global_init);
    struct tw_mqtt *c = calloc(1, sizeof(*c));
    if (!c)
        return TW_ENOMEM;
    pthread_mutex_init(&c->lock, NULL);
    tw_cond_init_monotonic(&c->cond);
    c->backoff = (struct tw_backoff){.initial_ms = 100, .max_ms = 10000};
    c->handler = handler;
    c->ctx = ctx;
    int rc = mqtt_copy_config(c, cfg);
    if (rc == 0 && tw_url_parse_mqtt(cfg->url, &c->url, err, sizeof(err)) < 0) {
        tw_log(TW_LOG_ERROR, "mqtt_url_invalid", "reason=\"%s\"", err);
        rc = TW_EINVAL;
    }
    MQTTAsync_createOptions copts = MQTTAsync_createOptions_initializer5;
    copts.sendWhileDisconnected = 1;
    copts.maxBufferedMessages = MQTT_BUFFERED_MAX;
    if (rc == 0 &&
        MQTTAsync_createWithOptions(&c->client, c->url.server_uri, c->client_id,
                                    MQTTCLIENT_PERSISTENCE_NONE, NULL, &copts) != MQTTASYNC_SUCCESS)
        rc = TW_EINVAL;
    /* Paho refuses a NULL message callback; on_message skips a NULL handler. */
    if (rc == 0 && MQTTAsync_setCallbacks(c->client, c, on_connection_lost, on_message, NULL) !=
                       MQTTASYNC_SUCCESS)
        rc = TW_EINVAL;
    if (rc < 0) {
        if (c->client)
            MQTTAsync_destroy(&c->client);
        mqtt_free_fields(c);
        return rc;
    }
    *out = c;
    return 0;
}

static int mqtt_add_sub(struct tw_mqtt *c, const char *filter, int qos, bool retained)
{
    if (c->n_subs >= MQTT_MAX_SUBS || qos < 0 || qos > 2)
        return TW_EINVAL;
    c->subs[c->n_subs] = strdup(filter);
    if (!c->subs[c->n_subs])
        return TW_ENOMEM;
    c->sub_retained[c->n_subs] = retained;
    c->sub_qos[c->n_subs++] = qos;
    return 0;
}

int tw_mqtt_subscribe(struct tw_mqtt *c, const char *filter, int qos)
{
    return mqtt_add_sub(c, filter, qos, false);
}

int tw_mqtt_subscribe_retained(struct tw_mqtt *c, const char *filter, int qos)
{
    return mqtt_add_sub(c, filter, qos, true);
}

int tw_mqtt_drop_subscription(struct tw_mqtt *c, const char *filter)
{
    if (c->n_drops >= MQTT_MAX_SUBS)
        return TW_EINVAL;
    c->drops[c->n_drops] = strdup(filter);
    return c->drops[c->n_drops] ? (c->n_drops++, 0) : TW_ENOMEM;
}

int tw_mqtt_start(struct tw_mqtt *c)
{
    if (pthread_create(&c->connector, NULL, mqtt_connector, c) != 0)
        return TW_ENOMEM;
    c->connector_started = true;
    return 0;
}

static int mqtt_wait(struct tw_mqtt *c, int timeout_ms, bool (*done)(const struct tw_mqtt *))
{
    int64_t deadline = tw_mono_ms() + timeout_ms;
    pthread_mutex_lock(&c->lock);
    while (!done(c)) {
        int64_t left = deadline - tw_mono_ms();
        if (left <= 0)
            break;
        tw_cond_wait_ms(&c->cond, &c->lock, left > 100 ? 100 : left);
    }
    bool ok = done(c);
    pthread_mutex_unlock(&c->lock);
    return ok ? 0 : TW_ETIMEDOUT;
}

static bool is_ready(const struct tw_mqtt *c)
{
    return c->link == LINK_UP && c->subs_acked >= c->n_subs;
}

static bool is_flushed(const struct tw_mqtt *c)
{
    return c->pending <= 0;
}

int tw_mqtt_wait_ready(struct tw_mqtt *c, int timeout_ms)
{
    return mqtt_wait(c, timeout_ms, is_ready);
}

int tw_mqtt_flush(struct tw_mqtt *c, int timeout_ms)
{
    return mqtt_wait(c, timeout_ms, is_flushed);
}

bool tw_mqtt_is_connected(struct tw_mqtt *c)
{
    pthread_mutex_lock(&c->lock);
    bool up = c->link == LINK_UP;
    pthread_mutex_unlock(&c->lock);
    return up;
}

int tw_mqtt_pending(struct tw_mqtt *c)
{
    pthread_mutex_lock(&c->lock);
    int n = c->pending;
    pthread_mutex_unlock(&c->lock);
    return n;
}

int tw_mqtt_publish(struct tw_mqtt *c, const char *topic, const void *payload, size_t len, int qos,
                    bool retain)
{
    MQTTAsync_message msg = MQTTAsync_message_initializer;
    MQTTAsync_responseOptions opts = MQTTAsync_responseOptions_initializer;
    if (len > INT32_MAX || qos < 0 || qos > 2)
        return TW_EINVAL;
    msg.payload = (void *)payload;
    msg.payloadlen = (int)len;
    msg.qos = qos;
    msg.retained = retain;
    opts.context = c;
    if (qos > 0) {
        opts.onSuccess5 = on_published;
        opts.onFailure5 = on_publish_failed;
        pthread_mutex_lock(&c->lock);
        c->pending++;
        pthread_mutex_unlock(&c->lock);
    }
    int rc = MQTTAsync_sendMessage(c->client, topic, &msg, &opts);
    if (rc == MQTTASYNC_SUCCESS)
        return 0;
    pthread_mutex_lock(&c->lock);
    if (qos > 0)
        c->pending--;
    c->stats.publish_failed++;
    pthread_mutex_unlock(&c->lock);
    return rc == MQTTASYNC_MAX_BUFFERED_MESSAGES || rc == MQTTASYNC_DISCONNECTED ? TW_EAGAIN
                                                                                 : TW_EINVAL;
}

bool tw_mqtt_session_present(struct tw_mqtt *c)
{
    pthread_mutex_lock(&c->lock);
    bool present = c->session_present;
    pthread_mutex_unlock(&c->lock);
    return present;
}

static void on_unsubscribed(void *ctx, MQTTAsync_successData5 *r)
{
    struct tw_mqtt *c = ctx;
    (void)r;
    pthread_mutex_lock(&c->lock);
    c->unsubs_pending--;
    pthread_cond_broadcast(&c->cond);
    pthread_mutex_unlock(&c->lock);
}

static bool is_unsubscribed(const struct tw_mqtt *c)
{
    return c->unsubs_pending <= 0;
}

int tw_mqtt_unsubscribe(struct tw_mqtt *c, const char *filter, int timeout_ms)
{
    MQTTAsync_responseOptions opts = MQTTAsync_responseOptions_initializer;
    opts.onSuccess5 = on_unsubscribed;
    opts.context = c;
    pthread_mutex_lock(&c->lock);
    c->unsubs_pending++;
    pthread_mutex_unlock(&c->lock);
    if (MQTTAsync_unsubscribe(c->client, filter, &opts) != MQTTASYNC_SUCCESS) {
        pthread_mutex_lock(&c->lock);
        c->unsubs_pending--;
        pthread_mutex_unlock(&c->lock);
        return TW_EIO;
    }
    return mqtt_wait(c, timeout_ms, is_unsubscribed);
}

void tw_mqtt_get_stats(struct tw_mqtt *c, struct tw_mqtt_stats *out)
{
    pthread_mutex_lock(&c->lock);
    *out = c->stats;
    pthread_mutex_unlock(&c->lock);
}

void tw_mqtt_end_session(struct tw_mqtt *c)
{
    c->end_session = true;
}

void tw_mqtt_destroy(struct tw_mqtt *c, int timeout_ms)
{
    if (!c)
        return;
    pthread_mutex_lock(&c->lock);
    c->stopping = true;
    pthread_cond_broadcast(&c->cond);
    pthread_mutex_unlock(&c->lock);
    if (c->connector_started)
        pthread_join(c->connector, NULL);
    if (MQTTAsync_isConnected(c->client)) {
        if (c->status_topic)
            tw_mqtt_publish(c, c->status_topic, "offline", 7, 1, true);
        tw_mqtt_flush(c, timeout_ms);
        MQTTAsync_disconnectOptions d = MQTTAsync_disconnectOptions_initializer5;
        MQTTProperties props = MQTTProperties_initializer;
        MQTTProperty expiry = {.identifier = MQTTPROPERTY_CODE_SESSION_EXPIRY_INTERVAL};
        d.timeout = timeout_ms;
        if (c->end_session) { /* the broker deletes the session with this disconnect */
            expiry.value.integer4 = 0;
            MQTTProperties_add(&props, &expiry);
            d.properties = props;
        }
        MQTTAsync_disconnect(c->client, &d);
        MQTTProperties_free(&props);
        /* disconnect is asynchronous; give it its timeout to finish the handshake */
        for (int i = 0; i < timeout_ms / 10 && MQTTAsync_isConnected(c->client); i++)
            usleep(10000);
    }
    MQTTAsync_destroy(&c->client);
    mqtt_free_fields(c);
}

struct tw_mqtt_config tw_mqtt_service_config(const struct tw_common_config *common,
                                             const char *client_id, const char *status_topic)
{
    return (struct tw_mqtt_config){
        .url = common->mqtt_url,
        .client_id = client_id,
        .user = common->mqtt_user,
        .password = common->mqtt_password,
        .ca_file = common->mqtt_ca_file,
        .status_topic = status_topic,
        .keepalive_s = (int)common->mqtt_keepalive_s,
        .session_expiry_s = (uint32_t)common->mqtt_session_expiry_s,
        .clean_start = false,
        /* Paho 1.3.12 does not wake its send thread when the in-flight window frees, so a
         * small window stalls publishing under load (the broker's is unlimited too, see
         * deploy/mosquitto.conf). */
        .max_inflight = 65535,
    };
}
