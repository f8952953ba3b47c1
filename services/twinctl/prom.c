/* SPDX-License-Identifier: Apache-2.0 */
/* HTTP/1.0 GET over a plain socket with one overall deadline, and a reader of the Prometheus
 * text exposition format (0.0.4), for `twinctl top`. */
#include <errno.h>
#include <math.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "prom.h"
#include "twin/clock.h"
#include "twin/err.h"

struct http_url {
    char host[256], port[8], path[512];
};

static int parse_url(const char *url, struct http_url *u, char *err, size_t errlen)
{
    if (strncmp(url, "http://", 7) != 0)
        return tw_fail(err, errlen, "not an http:// URL");
    const char *h = url + 7, *end;
    size_t hl;
    if (*h == '[') { /* [IPv6] */
        end = strchr(h, ']');
        if (!end)
            return tw_fail(err, errlen, "unclosed [ in the host");
        hl = (size_t)(end - h - 1);
        h++;
        end++;
    } else {
        end = h + strcspn(h, ":/");
        hl = (size_t)(end - h);
    }
    if (hl == 0 || hl >= sizeof(u->host))
        return tw_fail(err, errlen, "no host");
    memcpy(u->host, h, hl);
    u->host[hl] = '\0';
    snprintf(u->port, sizeof(u->port), "80");
    if (*end == ':') {
        char *pe;
        long p = strtol(end + 1, &pe, 10);
        if (pe == end + 1 || p < 1 || p > 65535 || (*pe && *pe != '/'))
            return tw_fail(err, errlen, "bad port");
        snprintf(u->port, sizeof(u->port), "%ld", p);
        end = pe;
    }
    if (strlen(end) >= sizeof(u->path) || strpbrk(end, " \r\n"))
        return tw_fail(err, errlen, "bad path");
    snprintf(u->path, sizeof(u->path), "%s", *end ? end : "/metrics");
    return 0;
}

/* Waits until fd is ready for `events` or the deadline passes. */
static int wait_fd(int fd, short events, int64_t deadline)
{
    for (;;) {
        int64_t left = deadline - tw_mono_ms();
        if (left <= 0)
            return TW_ETIMEDOUT;
        struct pollfd p = {.fd = fd, .events = events};
        int n = poll(&p, 1, (int)left);
        if (n > 0)
            return 0;
        if (n < 0 && errno != EINTR)
            return TW_EIO;
    }
}

static int connect_to(const struct http_url *u, int64_t deadline, int *fd_out, char *err,
                      size_t errlen)
{
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *ai = NULL;
    int g = getaddrinfo(u->host, u->port, &hints, &ai);
    if (g != 0)
        return tw_fail(err, errlen, "%s: %s", u->host, gai_strerror(g));
    int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int rc = fd < 0 ? TW_EIO : 0;
    if (rc == 0 && connect(fd, ai->ai_addr, ai->ai_addrlen) < 0) {
        rc = errno == EINPROGRESS ? wait_fd(fd, POLLOUT, deadline) : TW_EIO;
        int soerr = 0;
        socklen_t sl = sizeof(soerr);
        if (rc == 0 && getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) == 0 && soerr) {
            errno = soerr;
            rc = TW_EIO;
        }
    }
    freeaddrinfo(ai);
    if (rc < 0) {
        tw_fail(err, errlen, "%s", rc == TW_ETIMEDOUT ? "timed out" : strerror(errno));
        if (fd >= 0)
            close(fd);
        return rc == TW_ETIMEDOUT ? rc : TW_EIO;
    }
    *fd_out = fd;
    return 0;
}

static int send_all(int fd, const char *buf, size_t len, int64_t deadline)
{
    while (len > 0) {
        ssize_t n = send(fd, buf, len, MSG_NOSIGNAL);
        if (n > 0) {
            buf += n;
            len -= (size_t)n;
        } else if (n < 0 && errno != EAGAIN && errno != EINTR) {
            return TW_EIO;
        } else if (wait_fd(fd, POLLOUT, deadline) < 0) {
            return TW_ETIMEDOUT;
        }
    }
    return 0;
}

#define HEADERS_MAX 4096u                              /* the status line and headers */
#define ANSWER_MAX  (PROM_MAX_BODY + HEADERS_MAX + 2u) /* the buffer never grows past this */

/* Reads to EOF into a growing buffer; an answer longer than PROM_MAX_BODY + HEADERS_MAX is
 * TW_EPROTO (the body alone is checked against PROM_MAX_BODY by the caller). */
static int recv_all(int fd, int64_t deadline, char **out, size_t *len)
{
    size_t cap = 65536, n = 0;
    char *buf = malloc(cap);
    while (buf) {
        if (n + 1 >= cap) {
            size_t want = cap * 2 < ANSWER_MAX ? cap * 2 : ANSWER_MAX;
            char *nb = cap >= ANSWER_MAX ? NULL : realloc(buf, want);
            if (!nb) {
                free(buf);
                return cap >= ANSWER_MAX ? TW_EPROTO : TW_ENOMEM;
            }
            buf = nb;
            cap = want;
        }
        ssize_t r = recv(fd, buf + n, cap - n - 1, 0);
        if (r == 0) {
            buf[n] = '\0';
            *out = buf;
            *len = n;
            return 0;
        }
        if (r > 0)
            n += (size_t)r;
        else if ((errno != EAGAIN && errno != EINTR) || wait_fd(fd, POLLIN, deadline) < 0) {
            free(buf);
            return errno == EAGAIN ? TW_ETIMEDOUT : TW_EIO;
        }
    }
    return TW_ENOMEM;
}

int prom_http_get(const char *url, int timeout_ms, char **body, size_t *len, char *err,
                  size_t errlen)
{
    struct http_url u;
    char req[900], *resp = NULL;
    size_t rlen = 0;
    int fd = -1, rc = parse_url(url, &u, err, errlen);
    int64_t deadline = tw_mono_ms() + timeout_ms;
    if (rc == 0)
        rc = connect_to(&u, deadline, &fd, err, errlen);
    if (rc < 0)
        return rc;
    snprintf(req, sizeof(req), "GET %s HTTP/1.0\r\nHost: %s\r\nConnection: close\r\n\r\n", u.path,
             u.host);
    rc = send_all(fd, req, strlen(req), deadline);
    if (rc == 0)
        rc = recv_all(fd, deadline, &resp, &rlen);
    close(fd);
    if (rc < 0) {
        tw_fail(err, errlen, "%s",
                rc == TW_ETIMEDOUT ? "no answer in time"
                : rc == TW_EPROTO  ? "answer too large"
                                   : tw_strerror(rc));
        return rc;
    }
    int status = 0;
    char *sep = strstr(resp, "\r\n\r\n");
    if (sscanf(resp, "HTTP/%*d.%*d %d", &status) != 1 || !sep || status != 200) {
        tw_fail(err, errlen, status ? "HTTP status %d" : "not an HTTP answer", status);
        free(resp);
        return TW_EPROTO;
    }
    size_t off = (size_t)(sep + 4 - resp);
    if (rlen - off > PROM_MAX_BODY) {
        tw_fail(err, errlen, "answer too large (over %u MiB)", PROM_MAX_BODY >> 20);
        free(resp);
        return TW_EPROTO;
    }
    memmove(resp, resp + off, rlen - off + 1);
    *body = resp;
    *len = rlen - off;
    return 0;
}

/* ---- the text format ----------------------------------------------------------------------- */

static enum prom_type type_of(const char *word)
{
    static const char *const words[] = {"untyped", "counter", "gauge", "histogram", "summary"};
    for (int i = 0; i < 5; i++)
        if (strcmp(word, words[i]) == 0)
            return (enum prom_type)i;
    return PROM_UNTYPED;
}

/* "# TYPE name type": the family, cut in place. */
static bool take_type(char *line, struct prom_family *f)
{
    if (strncmp(line, "# TYPE ", 7) != 0)
        return false;
    char *name = line + 7, *sp = strchr(name, ' ');
    if (!sp)
        return false;
    *sp = '\0';
    f->name = name;
    f->type = type_of(sp + 1);
    return true;
}

/* "name{labels} value [timestamp]", cut in place. Label values with '}' inside quotes are
 * handled by scanning quotes. */
static bool take_sample(char *line, struct prom_sample *s)
{
    char *p = line;
    s->name = p;
    p += strcspn(p, "{ \t");
    s->labels = p; /* "" unless braces follow */
    if (*p == '{') {
        *p++ = '\0';
        s->labels = p;
        bool quoted = false;
        for (; *p && (quoted || *p != '}'); p++) {
            if (*p == '\\' && p[1])
                p++;
            else if (*p == '"')
                quoted = !quoted;
        }
        if (*p != '}')
            return false;
        *p++ = '\0';
    } else if (*p) {
        *p++ = '\0';
        s->labels = p - 1; /* now "" */
    }
    char *end;
    s->value = strtod(p, &end);
    return end != p && s->name[0];
}

int prom_parse(char *text, struct prom_scrape *out)
{
    size_t lines = 1;
    for (const char *c = text; *c; c++)
        lines += *c == '\n';
    memset(out, 0, sizeof(*out));
    out->text = text;
    out->samples = calloc(lines, sizeof(*out->samples));
    out->families = calloc(lines, sizeof(*out->families));
    if (!out->samples || !out->families) {
        prom_free(out);
        return TW_ENOMEM;
    }
    for (char *line = text; line && *line;) {
        char *nl = strchr(line, '\n');
        if (nl)
            *nl = '\0';
        if (line[0] == '#') {
            if (take_type(line, &out->families[out->n_families]))
                out->n_families++;
        } else if (line[0] && take_sample(line, &out->samples[out->n_samples])) {
            out->n_samples++;
        }
        line = nl ? nl + 1 : NULL;
    }
    return 0;
}

void prom_free(struct prom_scrape *s)
{
    free(s->text);
    free(s->samples);
    free(s->families);
    memset(s, 0, sizeof(*s));
}

double prom_sum(const struct prom_scrape *s, const char *name, bool *found)
{
    double sum = 0;
    *found = false;
    for (size_t i = 0; i < s->n_samples; i++)
        if (strcmp(s->samples[i].name, name) == 0) {
            sum += s->samples[i].value;
            *found = true;
        }
    return sum;
}

double prom_value(const struct prom_scrape *s, const char *name, const char *labels)
{
    for (size_t i = 0; i < s->n_samples; i++)
        if (strcmp(s->samples[i].name, name) == 0 && strcmp(s->samples[i].labels, labels) == 0)
            return s->samples[i].value;
    return NAN;
}
