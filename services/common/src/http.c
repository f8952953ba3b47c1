/* SPDX-License-Identifier: Apache-2.0 */
/* A minimal HTTP/1.1 server on one background thread serving /metrics and /healthz. */
#include "twin/metrics.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "twin/clock.h"
#include "twin/err.h"
#include "twin/log.h"

/* Connections are served one at a time, so each one is bounded in time and size: a client
 * that connects and sends nothing delays the next scrape by at most HTTP_READ_TIMEOUT_MS. */
#define HTTP_HEAD_MAX         8192
#define HTTP_READ_TIMEOUT_MS  2000
#define HTTP_WRITE_TIMEOUT_MS 5000
#define HTTP_BACKOFF_MS       100
#define HTTP_DETAIL_MAX       256
#define HTTP_DRAIN_MAX        65536

struct tw_http {
    struct tw_metrics *metrics;
    tw_health_fn health;
    void *health_ctx;
    int listen_fd;
    int wake_fds[2]; /* self-pipe: tw_http_stop writes a byte and the thread sees it in poll */
    int port;
    pthread_t thread;
    struct tw_ratelimit log_limit; /* used by the HTTP thread only */
    /* Held by the thread whenever it does anything but wait (its start included), and by
     * tw_http_hold: a process that forks holds it, so no lock of the C library or the
     * sanitizer runtime is taken by this thread at the moment of fork (the child would
     * inherit it locked and deadlock). */
    pthread_mutex_t busy;
    pthread_cond_t started_cond;
    bool started;
};

/* What a request gets back; body points into small or into heap (owned, freed after send). */
struct http_response {
    int status;
    const char *content_type;
    const char *body;
    size_t body_len;
    char *heap;
    char small[HTTP_DETAIL_MAX + 2];
};

static const char *http_reason(int status)
{
    switch (status) {
    case 200:
        return "OK";
    case 400:
        return "Bad Request";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 408:
        return "Request Timeout";
    case 431:
        return "Request Header Fields Too Large";
    case 503:
        return "Service Unavailable";
    default:
        return "Internal Server Error";
    }
}

/* Logs failures a client can cause repeatedly (e.g. running us out of descriptors) at most a
 * few times a minute. */
static void http_log_errno(struct tw_http *h, const char *event, int err)
{
    uint32_t suppressed = 0;

    if (tw_ratelimit_allow(&h->log_limit, tw_mono_ms(), &suppressed))
        tw_log(TW_LOG_WARN, event, "errno=%d suppressed=%u", err, suppressed);
}

/* Waits until fd is ready for events or the deadline passes. Also watches the self-pipe so a
 * stop request ends any wait at once. Returns 0 when ready, else TW_ETIMEDOUT, TW_ESHUTDOWN or
 * TW_EIO. */
static int http_wait(const struct tw_http *h, int fd, short events, int64_t deadline_ms)
{
    for (;;) {
        struct pollfd pfd[2] = {{fd, events, 0}, {h->wake_fds[0], POLLIN, 0}};
        int64_t left_ms = deadline_ms - tw_mono_ms();
        int rc;

        if (left_ms <= 0)
            return TW_ETIMEDOUT;
        rc = poll(pfd, 2, (int)left_ms);
        if (rc < 0 && errno != EINTR)
            return TW_EIO;
        if (rc > 0 && pfd[1].revents)
            return TW_ESHUTDOWN;
        if (rc > 0)
            return TW_OK;
    }
}

/* Reads until the blank line that ends the request head. Returns 0, TW_EPROTO when the head
 * exceeds the buffer, TW_ETIMEDOUT, TW_ESHUTDOWN, or TW_EIO when the client went away. */
static int http_read_head(const struct tw_http *h, int fd, char *buf, size_t cap)
{
    int64_t deadline_ms = tw_mono_ms() + HTTP_READ_TIMEOUT_MS;
    size_t len = 0;

    while (len < cap - 1) {
        size_t from = len > 3 ? len - 3 : 0;
        ssize_t n;
        int rc = http_wait(h, fd, POLLIN, deadline_ms);

        if (rc != 0)
            return rc;
        n = recv(fd, buf + len, cap - 1 - len, 0);
        if (n < 0 && (errno == EINTR || errno == EAGAIN))
            continue;
        if (n <= 0)
            return TW_EIO;
        len += (size_t)n;
        buf[len] = '\0';
        if (memmem(buf + from, len - from, "\r\n\r\n", 4) ||
            memmem(buf + from, len - from, "\n\n", 2))
            return TW_OK;
    }
    return TW_EPROTO;
}

/* RFC 9110 token characters, for the method. */
static bool http_is_tchar(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           (c && strchr("!#$%&'*+-.^_`|~", c));
}

/* Splits "METHOD SP target SP HTTP/1.x" in place. Returns 0 or TW_EPROTO. */
static int http_parse_request_line(char *head, char **method, char **target)
{
    char *line_end = head + strcspn(head, "\r\n");
    char *sp1, *sp2, *p;

    *line_end = '\0';
    sp1 = strchr(head, ' ');
    if (!sp1 || sp1 == head)
        return TW_EPROTO;
    sp2 = strchr(sp1 + 1, ' ');
    if (!sp2 || sp1[1] != '/')
        return TW_EPROTO;
    *sp1 = *sp2 = '\0';
    for (p = head; *p; p++) {
        if (!http_is_tchar(*p))
            return TW_EPROTO;
    }
    for (p = sp1 + 1; *p; p++) {
        if ((unsigned char)*p <= ' ' || *p == 0x7f)
            return TW_EPROTO;
    }
    if (strncmp(sp2 + 1, "HTTP/1.", 7) != 0 || !(sp2[8] >= '0' && sp2[8] <= '9') || sp2[9])
        return TW_EPROTO;
    *method = head;
    *target = sp1 + 1;
    return TW_OK;
}

static void http_set_text(struct http_response *r, int status, const char *text)
{
    size_t n = strlen(text);

    if (n > HTTP_DETAIL_MAX)
        n = HTTP_DETAIL_MAX;
    memcpy(r->small, text, n);
    r->small[n] = '\n';
    r->small[n + 1] = '\0';
    r->status = status;
    r->content_type = "text/plain; charset=utf-8";
    r->body = r->small;
    r->body_len = n + 1;
}

static void http_healthz(const struct tw_http *h, struct http_response *r)
{
    char detail[HTTP_DETAIL_MAX] = "";
    bool ok = true;

    if (h->health) {
        ok = h->health(h->health_ctx, detail, sizeof(detail));
        detail[sizeof(detail) - 1] = '\0';
    }
    if (ok)
        http_set_text(r, 200, "ok");
    else
        http_set_text(r, 503, detail[0] ? detail : "unhealthy");
}

static void http_metrics(const struct tw_http *h, struct http_response *r)
{
    int rc = tw_metrics_render(h->metrics, &r->heap, &r->body_len);

    if (rc != 0) {
        tw_log(TW_LOG_ERROR, "http_render_failed", "err=%s", tw_strerror(rc));
        http_set_text(r, 500, "metrics rendering failed");
        return;
    }
    r->status = 200;
    r->content_type = "text/plain; version=0.0.4; charset=utf-8";
    r->body = r->heap;
}

/* Known paths first (404 otherwise), then the method (405 for anything but GET and HEAD). */
static void http_route(const struct tw_http *h, const char *method, const char *target,
                       struct http_response *r)
{
    size_t path_len = strcspn(target, "?#");
    bool is_metrics = path_len == 8 && strncmp(target, "/metrics", 8) == 0;
    bool is_healthz = path_len == 8 && strncmp(target, "/healthz", 8) == 0;

    if (!is_metrics && !is_healthz)
        http_set_text(r, 404, "not found");
    else if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0)
        http_set_text(r, 405, "method not allowed");
    else if (is_metrics)
        http_metrics(h, r);
    else
        http_healthz(h, r);
}

/* MSG_NOSIGNAL: a client that hangs up early must cost an EPIPE, not a SIGPIPE. */
static int http_send_all(const struct tw_http *h, int fd, const char *data, size_t len,
                         int64_t deadline_ms, int flags)
{
    while (len > 0) {
        ssize_t n = send(fd, data, len, flags | MSG_NOSIGNAL);
        int rc;

        if (n > 0) {
            data += n;
            len -= (size_t)n;
            continue;
        }
        if (n < 0 && errno != EAGAIN && errno != EINTR)
            return TW_EIO;
        rc = http_wait(h, fd, POLLOUT, deadline_ms);
        if (rc != 0)
            return rc;
    }
    return TW_OK;
}

static int http_send_response(const struct tw_http *h, int fd, const struct http_response *r,
                              bool head_only)
{
    int64_t deadline_ms = tw_mono_ms() + HTTP_WRITE_TIMEOUT_MS;
    char head[512];
    int n;

    n = snprintf(head, sizeof(head),
                 "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n%s"
                 "Connection: close\r\n\r\n",
                 r->status, http_reason(r->status), r->content_type, r->body_len,
                 r->status == 405 ? "Allow: GET, HEAD\r\n" : "");
    if (n < 0 || (size_t)n >= sizeof(head))
        return TW_EINVAL;
    if (head_only || r->body_len == 0)
        return http_send_all(h, fd, head, (size_t)n, deadline_ms, 0);
    n = http_send_all(h, fd, head, (size_t)n, deadline_ms, MSG_MORE);
    return n != 0 ? n : http_send_all(h, fd, r->body, r->body_len, deadline_ms, 0);
}

/* Half-closes, then discards what the client already sent beyond the head (a body, a pipelined
 * request): closing with unread data makes the kernel send a reset, which can destroy the
 * response before the client has read it. */
static void http_close(int fd)
{
    char sink[4096];
    size_t drained = 0;
    ssize_t n;

    shutdown(fd, SHUT_WR);
    while (drained < HTTP_DRAIN_MAX && (n = recv(fd, sink, sizeof(sink), MSG_DONTWAIT)) > 0)
        drained += (size_t)n;
    close(fd);
}

static void http_serve(struct tw_http *h, int fd)
{
    struct http_response r = {0};
    char head[HTTP_HEAD_MAX + 1];
    char *method = NULL, *target = NULL;
    int rc = http_read_head(h, fd, head, sizeof(head));

    if (rc == TW_ETIMEDOUT)
        http_set_text(&r, 408, "request timeout");
    else if (rc == TW_EPROTO)
        http_set_text(&r, 431, "request head too large");
    else if (rc != 0)
        goto out; /* the client left, or we are stopping */
    else if (http_parse_request_line(head, &method, &target) != 0)
        http_set_text(&r, 400, "bad request");
    else
        http_route(h, method, target, &r);
    http_send_response(h, fd, &r, method && strcmp(method, "HEAD") == 0);
out:
    free(r.heap);
    http_close(fd);
}

static void http_handle_ready(struct tw_http *h, int rc);

/* Waits for connections or the stop byte. The listening socket is non-blocking, so a
 * connection reset between poll and accept costs EAGAIN, not a stuck thread. */
static void *http_thread(void *arg)
{
    struct tw_http *h = arg;

    pthread_mutex_lock(&h->busy);
    h->started = true;
    pthread_cond_signal(&h->started_cond);
    pthread_mutex_unlock(&h->busy);
    for (;;) {
        /* No timeout needed: tw_http_stop ends the wait through the self-pipe. */
        struct pollfd pfd[2] = {{h->listen_fd, POLLIN, 0}, {h->wake_fds[0], POLLIN, 0}};
        int rc = poll(pfd, 2, -1);

        if (rc < 0 && errno == EINTR)
            continue;
        if (rc > 0 && pfd[1].revents)
            break;
        pthread_mutex_lock(&h->busy);
        http_handle_ready(h, rc);
        pthread_mutex_unlock(&h->busy);
    }
    return NULL;
}

/* One turn of the loop after poll: accept and serve a connection, or back off. */
static void http_handle_ready(struct tw_http *h, int rc)
{
    int fd = rc > 0 ? accept4(h->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC) : -1;
    if (fd >= 0) {
        http_serve(h, fd);
    } else if (rc < 0 || (errno != EAGAIN && errno != ECONNABORTED && errno != EINTR)) {
        /* EMFILE and friends leave the connection queued; back off instead of spinning
         * (a stop during the backoff is seen by the next poll). */
        http_log_errno(h, rc < 0 ? "http_poll_failed" : "http_accept_failed", errno);
        http_wait(h, -1, 0, tw_mono_ms() + HTTP_BACKOFF_MS);
    }
}

/* Binds a listening socket to an IPv4 or IPv6 literal ("[::1]" works too); port -1 asks the
 * kernel for a free port. *port_out gets the port actually bound. */
static int http_listen(const char *addr, int port, int *fd_out, int *port_out)
{
    struct addrinfo hints = {0}, *ai = NULL;
    struct sockaddr_storage ss;
    socklen_t ss_len = sizeof(ss);
    char host[64], serv[16];
    int fd = -1, one = 1, rc;

    if (!addr || !addr[0])
        addr = "0.0.0.0";
    rc = snprintf(host, sizeof(host), "%s", addr[0] == '[' ? addr + 1 : addr);
    if (rc < 0 || (size_t)rc >= sizeof(host))
        return TW_EINVAL;
    if (addr[0] == '[' && rc > 0 && host[rc - 1] == ']')
        host[rc - 1] = '\0';
    snprintf(serv, sizeof(serv), "%d", port < 0 ? 0 : port);
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV | AI_PASSIVE;
    if (getaddrinfo(host, serv, &hints, &ai) != 0)
        return TW_EINVAL;
    rc = TW_EIO;
    fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        goto out;
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
        bind(fd, ai->ai_addr, ai->ai_addrlen) != 0 || listen(fd, 64) != 0 ||
        getsockname(fd, (struct sockaddr *)&ss, &ss_len) != 0) {
        tw_log(TW_LOG_ERROR, "http_listen_failed", "addr=%s port=%d errno=%d", addr, port, errno);
        close(fd);
        goto out;
    }
    *port_out = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                               : ((struct sockaddr_in *)&ss)->sin_port);
    *fd_out = fd;
    rc = TW_OK;
out:
    freeaddrinfo(ai);
    return rc;
}

/* Starts the thread with every signal blocked, so process signals (SIGTERM, SIGINT) are
 * delivered to the service's own threads and never interrupt this one. */
static int http_spawn(struct tw_http *h)
{
    sigset_t all, old;
    int rc;

    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    rc = pthread_create(&h->thread, NULL, http_thread, h);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    return rc == 0 ? TW_OK : TW_ENOMEM;
}

bool tw_health_links(bool mqtt_up, bool redis_up, char *detail, size_t detail_len)
{
    const char *why = !mqtt_up ? "mqtt disconnected" : !redis_up ? "redis unreachable" : NULL;
    snprintf(detail, detail_len, "%s", why ? why : "ok");
    return why == NULL;
}

int tw_http_start(struct tw_metrics *m, const char *addr, int port, tw_health_fn health,
                  void *health_ctx, struct tw_http **out)
{
    struct tw_http *h;
    int rc;

    if (!out || !m || port < -1 || port > 65535)
        return TW_EINVAL;
    *out = NULL;
    if (port == 0)
        return TW_OK;
    h = calloc(1, sizeof(*h));
    if (!h)
        return TW_ENOMEM;
    h->metrics = m;
    h->health = health;
    h->health_ctx = health_ctx;
    h->log_limit.burst = 5;
    h->log_limit.interval_ms = 60000;
    rc = http_listen(addr, port, &h->listen_fd, &h->port);
    if (rc != 0)
        goto fail;
    rc = TW_EIO;
    if (pipe2(h->wake_fds, O_CLOEXEC | O_NONBLOCK) != 0)
        goto fail_listen;
    pthread_mutex_init(&h->busy, NULL);
    pthread_cond_init(&h->started_cond, NULL);
    rc = http_spawn(h);
    if (rc != 0)
        goto fail_pipe;
    /* Return only once the thread runs, so a fork right after this sees it idle in poll. */
    pthread_mutex_lock(&h->busy);
    while (!h->started)
        pthread_cond_wait(&h->started_cond, &h->busy);
    pthread_mutex_unlock(&h->busy);
    tw_log(TW_LOG_INFO, "http_listening", "addr=%s port=%d", addr && addr[0] ? addr : "0.0.0.0",
           h->port);
    *out = h;
    return TW_OK;

fail_pipe:
    close(h->wake_fds[0]);
    close(h->wake_fds[1]);
fail_listen:
    close(h->listen_fd);
fail:
    free(h);
    return rc;
}

void tw_http_hold(struct tw_http *h)
{
    if (h)
        pthread_mutex_lock(&h->busy);
}

void tw_http_release(struct tw_http *h)
{
    if (h)
        pthread_mutex_unlock(&h->busy);
}

int tw_http_port(const struct tw_http *h)
{
    return h ? h->port : 0;
}

void tw_http_stop(struct tw_http *h)
{
    if (!h)
        return;
    while (write(h->wake_fds[1], "x", 1) < 0 && errno == EINTR)
        ;
    pthread_join(h->thread, NULL);
    pthread_mutex_destroy(&h->busy);
    pthread_cond_destroy(&h->started_cond);
    close(h->wake_fds[0]);
    close(h->wake_fds[1]);
    close(h->listen_fd);
    free(h);
}
