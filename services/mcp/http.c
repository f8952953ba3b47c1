/* SPDX-License-Identifier: Apache-2.0 */
/* twin-mcp's Streamable HTTP transport, stateless: each POST to /mcp carries one JSON-RPC
 * message and gets its answer as application/json (or 202 for a notification); no server
 * stream (GET and DELETE answer 405); Origin checked against DNS rebinding. */
#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "mcp.h"
#include "twin/clock.h"
#include "twin/log.h"

#define HEAD_MAX       16384
#define IO_TIMEOUT_MS  10000
#define ACCEPT_POLL_MS 200

/* ---- the request head (pure) ------------------------------------------------------------- */

/* Copies header value v (trimmed) into dst; a value too long to keep is refused. */
static int keep_value(char *dst, size_t cap, const char *v)
{
    while (*v == ' ' || *v == '\t')
        v++;
    size_t n = strlen(v);
    while (n > 0 && (v[n - 1] == ' ' || v[n - 1] == '\t'))
        n--;
    if (n >= cap)
        return -1;
    memcpy(dst, v, n);
    dst[n] = '\0';
    return 0;
}

int mcp_http_parse_head(char *head, struct mcp_http_req *r)
{
    memset(r, 0, sizeof(*r));
    char *save = NULL;
    char *line = strtok_r(head, "\r\n", &save);
    if (!line)
        return -1;
    char version[16];
    if (sscanf(line, "%7s %255s %15s", r->method, r->target, version) != 3 ||
        strncmp(version, "HTTP/1.", 7) != 0 || r->target[0] != '/')
        return -1;
    while ((line = strtok_r(NULL, "\r\n", &save)) != NULL) {
        char *colon = strchr(line, ':');
        if (!colon || colon == line)
            return -1;
        *colon = '\0';
        const char *name = line, *v = colon + 1;
        int rc = 0;
        if (strcasecmp(name, "Content-Length") == 0) {
            char *end = NULL;
            while (*v == ' ')
                v++;
            errno = 0;
            unsigned long long n = strtoull(v, &end, 10);
            if (end == v || (*end && *end != ' ') || errno || r->has_length)
                return -1; /* unreadable or repeated: no guessing where the body ends */
            r->content_length = (size_t)n;
            r->has_length = true;
        } else if (strcasecmp(name, "Transfer-Encoding") == 0) {
            r->chunked = true;
        } else if (strcasecmp(name, "Content-Type") == 0) {
            rc = keep_value(r->content_type, sizeof(r->content_type), v);
        } else if (strcasecmp(name, "Accept") == 0) {
            rc = keep_value(r->accept, sizeof(r->accept), v);
        } else if (strcasecmp(name, "Origin") == 0) {
            rc = keep_value(r->origin, sizeof(r->origin), v);
            r->has_origin = true;
        } else if (strcasecmp(name, "Host") == 0) {
            rc = keep_value(r->host, sizeof(r->host), v);
        } else if (strcasecmp(name, "MCP-Protocol-Version") == 0) {
            rc = keep_value(r->protocol_version, sizeof(r->protocol_version), v);
        }
        if (rc < 0)
            return -1;
    }
    return 0;
}

/* Whether host[:port] names this machine: localhost, 127.0.0.1 or [::1]. */
static bool host_is_local(const char *host)
{
    static const char *const local[] = {"localhost", "127.0.0.1", "[::1]"};
    for (size_t i = 0; i < sizeof(local) / sizeof(local[0]); i++) {
        size_t n = strlen(local[i]);
        if (strncmp(host, local[i], n) == 0 && (host[n] == '\0' || host[n] == ':'))
            return true;
    }
    return false;
}

/* An Origin of this machine (http or https, localhost, 127.0.0.1 or [::1], any port), or one
 * of the allowed list (comma-separated, exact). */
bool mcp_http_origin_allowed(const char *origin, const char *allowed)
{
    const char *host = NULL;
    if (strncmp(origin, "http://", 7) == 0)
        host = origin + 7;
    else if (strncmp(origin, "https://", 8) == 0)
        host = origin + 8;
    if (host && host_is_local(host))
        return true;
    size_t olen = strlen(origin);
    for (const char *p = allowed; p && *p;) {
        const char *comma = strchr(p, ',');
        size_t n = comma ? (size_t)(comma - p) : strlen(p);
        if (n == olen && n > 0 && strncmp(p, origin, n) == 0)
            return true;
        p = comma ? comma + 1 : NULL;
    }
    return false;
}

/* The status to answer before reading any body (0: go on), with a reason. */
int mcp_http_check(const struct mcp_http_req *r, const char *allowed_origins, bool local_only,
                   size_t max_body, const char **why)
{
    const char *path_end = strchr(r->target, '?');
    size_t path_len = path_end ? (size_t)(path_end - r->target) : strlen(r->target);
    if (path_len != 4 || strncmp(r->target, "/mcp", 4) != 0)
        return *why = "the MCP endpoint is /mcp", 404;
    if (local_only && r->host[0] && !host_is_local(r->host))
        return *why = "Host must name this machine (localhost, 127.0.0.1 or [::1])", 403;
    if (r->has_origin && !mcp_http_origin_allowed(r->origin, allowed_origins))
        return *why = "Origin not allowed (TWIN_MCP_ALLOWED_ORIGINS)", 403;
    if (strcmp(r->method, "POST") != 0)
        return *why = "only POST: this server opens no stream of its own", 405;
    if (r->chunked || !r->has_length)
        return *why = "send the message with a Content-Length", 411;
    if (r->content_length > max_body)
        return *why = "message above TWIN_MCP_MAX_MESSAGE", 413;
    if (strncasecmp(r->content_type, "application/json", 16) != 0)
        return *why = "Content-Type must be application/json", 415;
    if (r->accept[0] && !strstr(r->accept, "application/json") && !strstr(r->accept, "*/*"))
        return *why = "Accept must allow application/json", 406;
    if (r->protocol_version[0] && !mcp_protocol_supported(r->protocol_version))
        return *why = "unsupported MCP-Protocol-Version", 400;
    return 0;
}

/* ---- the connection ---------------------------------------------------------------------- */

static const char *reason_of(int status)
{
    switch (status) {
    case 200:
        return "OK";
    case 202:
        return "Accepted";
    case 400:
        return "Bad Request";
    case 403:
        return "Forbidden";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 406:
        return "Not Acceptable";
    case 408:
        return "Request Timeout";
    case 411:
        return "Length Required";
    case 413:
        return "Content Too Large";
    case 415:
        return "Unsupported Media Type";
    default:
        return "Internal Server Error";
    }
}

static int wait_fd(int fd, short events, int64_t deadline_ms)
{
    for (;;) {
        int64_t left = deadline_ms - tw_mono_ms();
        if (left <= 0)
            return -1;
        struct pollfd p = {fd, events, 0};
        int rc = poll(&p, 1, (int)left);
        if (rc > 0)
            return 0;
        if (rc < 0 && errno != EINTR)
            return -1;
    }
}

static int send_all(int fd, const char *data, size_t len, int64_t deadline_ms)
{
    while (len > 0) {
        ssize_t n = send(fd, data, len, MSG_NOSIGNAL);
        if (n > 0) {
            data += n;
            len -= (size_t)n;
        } else if (n < 0 && errno != EAGAIN && errno != EINTR) {
            return -1;
        } else if (wait_fd(fd, POLLOUT, deadline_ms) < 0) {
            return -1;
        }
    }
    return 0;
}

static void respond(int fd, int status, const char *type, const char *body)
{
    char head[512];
    size_t len = body ? strlen(body) : 0;
    int n = snprintf(head, sizeof(head),
                     "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n%s"
                     "Cache-Control: no-store\r\nConnection: close\r\n\r\n",
                     status, reason_of(status), type, len, status == 405 ? "Allow: POST\r\n" : "");
    int64_t deadline = tw_mono_ms() + IO_TIMEOUT_MS;
    if (send_all(fd, head, (size_t)n, deadline) == 0 && len > 0)
        send_all(fd, body, len, deadline);
}

/* Reads into buf until the blank line after the head; returns the bytes read (the head and
 * possibly the start of the body) or -1. */
static ssize_t read_head(int fd, char *buf, size_t cap, char **body_start)
{
    int64_t deadline = tw_mono_ms() + IO_TIMEOUT_MS;
    size_t len = 0;
    while (len < cap - 1) {
        if (wait_fd(fd, POLLIN, deadline) < 0)
            return -1;
        ssize_t n = recv(fd, buf + len, cap - 1 - len, 0);
        if (n < 0 && (errno == EINTR || errno == EAGAIN))
            continue;
        if (n <= 0)
            return -1;
        len += (size_t)n;
        buf[len] = '\0';
        char *end = strstr(buf, "\r\n\r\n");
        if (end) {
            *body_start = end + 4;
            end[2] = '\0'; /* the head ends with its last line's CRLF */
            return (ssize_t)len;
        }
    }
    return -1;
}

/* Whether the answer is the JSON-RPC parse error (HTTP 400), read from its error member. */
static bool is_parse_error(const char *answer)
{
    cJSON *a = cJSON_Parse(answer);
    const cJSON *code =
        cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(a, "error"), "code");
    bool parse_error = cJSON_IsNumber(code) && code->valueint == MCP_PARSE_ERROR;
    cJSON_Delete(a);
    return parse_error;
}

static void serve_connection(struct mcp_server *srv, int fd, const struct mcp_http_config *cfg)
{
    char *buf = malloc(HEAD_MAX), *body_start = NULL, *body = NULL;
    ssize_t got = buf ? read_head(fd, buf, HEAD_MAX, &body_start) : -1;
    struct mcp_http_req r;
    const char *why = NULL;
    if (got < 0) {
        free(buf);
        return; /* nothing sensible came: no answer */
    }
    size_t already = (size_t)got - (size_t)(body_start - buf);
    if (mcp_http_parse_head(buf, &r) < 0) {
        respond(fd, 400, "text/plain", "malformed HTTP request\n");
        free(buf);
        return;
    }
    int status = mcp_http_check(&r, cfg->allowed_origins, cfg->local_only, cfg->max_message, &why);
    if (status == 0) {
        body = malloc(r.content_length + 1);
        size_t have = already < r.content_length ? already : r.content_length;
        if (body)
            memcpy(body, body_start, have);
        int64_t deadline = tw_mono_ms() + IO_TIMEOUT_MS;
        while (body && have < r.content_length) {
            if (wait_fd(fd, POLLIN, deadline) < 0)
                break;
            ssize_t n = recv(fd, body + have, r.content_length - have, 0);
            if (n < 0 && (errno == EINTR || errno == EAGAIN))
                continue;
            if (n <= 0)
                break;
            have += (size_t)n;
        }
        if (!body || have < r.content_length) {
            status = 408;
            why = "the message did not arrive in time";
        } else {
            char *answer = mcp_handle(srv, body, r.content_length);
            if (!answer)
                respond(fd, 202, "text/plain", NULL); /* a notification or a response */
            else
                respond(fd, is_parse_error(answer) ? 400 : 200, "application/json", answer);
            cJSON_free(answer);
        }
    }
    if (status != 0) {
        char text[160];
        snprintf(text, sizeof(text), "%s\n", why);
        respond(fd, status, "text/plain", text);
        tw_log(TW_LOG_DEBUG, "http_refused", "status=%d method=%s target=%.64s reason=\"%s\"",
               status, r.method, r.target, why);
    }
    free(body);
    free(buf);
}

/* Half-closes and drains what the client still sends, so that the close is not a reset that
 * could destroy the answer before the client read it. */
static void close_gently(int fd)
{
    char sink[4096];
    shutdown(fd, SHUT_WR);
    for (int i = 0; i < 64 && recv(fd, sink, sizeof(sink), MSG_DONTWAIT) > 0; i++)
        ;
    close(fd);
}

static int listen_on(const char *addr, int port, int *port_out)
{
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_NUMERICHOST | AI_NUMERICSERV | AI_PASSIVE};
    struct addrinfo *ai = NULL;
    char serv[16];
    snprintf(serv, sizeof(serv), "%d", port);
    if (getaddrinfo(addr, serv, &hints, &ai) != 0)
        return -1;
    int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;
    struct sockaddr_storage ss;
    socklen_t ss_len = sizeof(ss);
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
        bind(fd, ai->ai_addr, ai->ai_addrlen) != 0 || listen(fd, 64) != 0 ||
        getsockname(fd, (struct sockaddr *)&ss, &ss_len) != 0) {
        if (fd >= 0)
            close(fd);
        freeaddrinfo(ai);
        return -1;
    }
    freeaddrinfo(ai);
    char host[64];
    if (getnameinfo((struct sockaddr *)&ss, ss_len, host, sizeof(host), serv, sizeof(serv),
                    NI_NUMERICHOST | NI_NUMERICSERV) == 0)
        *port_out = atoi(serv);
    return fd;
}

int mcp_serve_http(struct mcp_server *srv, const struct mcp_http_config *cfg,
                   volatile sig_atomic_t *stop)
{
    int port = 0;
    int lfd = listen_on(cfg->addr, cfg->port, &port);
    if (lfd < 0) {
        tw_log(TW_LOG_ERROR, "http_listen_failed", "addr=%s port=%d errno=%d", cfg->addr, cfg->port,
               errno);
        return 1;
    }
    struct mcp_http_config local = *cfg;
    local.local_only = strncmp(cfg->addr, "127.", 4) == 0 || strcmp(cfg->addr, "::1") == 0;
    cfg = &local;
    tw_log(TW_LOG_INFO, "http_listening", "url=http://%s%s%s:%d/mcp",
           strchr(cfg->addr, ':') ? "[" : "", cfg->addr, strchr(cfg->addr, ':') ? "]" : "", port);
    while (!*stop) {
        struct pollfd p = {lfd, POLLIN, 0};
        if (poll(&p, 1, ACCEPT_POLL_MS) <= 0)
            continue;
        int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
        if (fd < 0)
            continue;
        serve_connection(srv, fd, cfg);
        close_gently(fd);
    }
    close(lfd);
    return 0;
}
