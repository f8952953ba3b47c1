/* SPDX-License-Identifier: Apache-2.0 */
/* Structured one-line logging to stderr and the rate limiter for device-triggered lines. */
#include "twin/log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "twin/clock.h"
#include "twin/err.h"

/* Writes to a pipe of at most PIPE_BUF (4096 on Linux) bytes are atomic, so a line this size
 * never interleaves with another process's line even when stderr is a shared pipe. */
#define LOG_LINE_MAX 4096
#define LOG_ELLIPSIS "..."

static char log_service[64] = "twin";
static enum tw_log_level log_min_level = TW_LOG_INFO;

static const char *const log_level_names[] = {"debug", "info", "warn", "error", "off"};

void tw_log_init(const char *service, enum tw_log_level min_level)
{
    if (service && service[0])
        snprintf(log_service, sizeof(log_service), "%s", service);
    log_min_level = min_level;
}

int tw_log_parse_level(const char *text, enum tw_log_level *out)
{
    if (!text)
        return TW_EINVAL;
    for (int i = TW_LOG_DEBUG; i <= TW_LOG_OFF; i++) {
        if (strcasecmp(text, log_level_names[i]) == 0) {
            *out = (enum tw_log_level)i;
            return 0;
        }
    }
    return TW_EINVAL;
}

bool tw_log_enabled(enum tw_log_level level)
{
    return level >= TW_LOG_DEBUG && level < TW_LOG_OFF && level >= log_min_level;
}

/* The line being built: text in p[0, len), always NUL-terminated; cut once it overflowed. */
struct log_buf {
    char *p;
    size_t len;
    size_t cap;
    bool cut;
};

__attribute__((format(printf, 2, 0))) static void log_vappend(struct log_buf *b, const char *fmt,
                                                              va_list ap)
{
    if (b->cut)
        return;
    size_t room = b->cap - b->len;
    int n = vsnprintf(b->p + b->len, room, fmt, ap);
    if (n < 0)
        return;
    if ((size_t)n < room) {
        b->len += (size_t)n;
        return;
    }
    /* vsnprintf kept room - 1 bytes; end the cut line with "..." so readers see it. */
    b->len = b->cap - 1;
    b->cut = true;
    memcpy(b->p + b->len - strlen(LOG_ELLIPSIS), LOG_ELLIPSIS, strlen(LOG_ELLIPSIS));
}

__attribute__((format(printf, 2, 3))) static void log_append(struct log_buf *b, const char *fmt,
                                                             ...)
{
    va_list ap;

    va_start(ap, fmt);
    log_vappend(b, fmt, ap);
    va_end(ap);
}

/* "2026-11-25T18:00:00.123Z" in UTC. */
static void log_append_time(struct log_buf *b)
{
    int64_t now_ms = tw_now_ms();
    time_t secs = (time_t)(now_ms / 1000);
    struct tm tm;
    char date[32];

    if (!gmtime_r(&secs, &tm))
        memset(&tm, 0, sizeof(tm));
    if (strftime(date, sizeof(date), "%Y-%m-%dT%H:%M:%S", &tm) == 0)
        date[0] = '\0';
    log_append(b, "%s.%03dZ", date, (int)(now_ms % 1000));
}

/* A value may come from a device or a library error string: a stray newline must not forge a
 * second log line, so every control character becomes a space. */
static void log_sanitise(char *s, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x20 || c == 0x7f)
            s[i] = ' ';
    }
}

static void log_emit(const char *line, size_t len)
{
    int saved_errno = errno;
    ssize_t rc;

    /* One write(2): retry only when nothing was written (EINTR), never a partial tail, which
     * could land in the middle of another writer's line. */
    do {
        rc = write(STDERR_FILENO, line, len);
    } while (rc < 0 && errno == EINTR);
    errno = saved_errno;
}

void tw_log_write(enum tw_log_level level, const char *event, const char *fmt, ...)
{
    char line[LOG_LINE_MAX];
    struct log_buf b = {.p = line, .cap = sizeof(line)};
    va_list ap;

    if (!tw_log_enabled(level))
        return;
    log_append_time(&b);
    log_append(&b, " %s %s event=%s", log_level_names[level], log_service, event ? event : "-");
    if (fmt && fmt[0]) {
        size_t before = b.len;
        log_append(&b, " ");
        va_start(ap, fmt);
        log_vappend(&b, fmt, ap);
        va_end(ap);
        if (b.len == before + 1 && !b.cut)
            b.len = before; /* the fields came out empty: no trailing space */
    }
    log_sanitise(line, b.len);
    /* The NUL at line[len] becomes the newline, so even a cut line ends with one. */
    line[b.len++] = '\n';
    log_emit(line, b.len);
}

bool tw_ratelimit_allow(struct tw_ratelimit *rl, int64_t now_ms, uint32_t *suppressed_out)
{
    uint32_t dropped = 0;

    /* A clock that went backwards also opens a new window rather than muting for its span. */
    if (now_ms - rl->window_start_ms >= rl->interval_ms || now_ms < rl->window_start_ms) {
        dropped = rl->suppressed;
        rl->window_start_ms = now_ms;
        rl->used = 0;
        rl->suppressed = 0;
    }
    if (suppressed_out)
        *suppressed_out = dropped;
    if (rl->used < rl->burst) {
        rl->used++;
        return true;
    }
    if (rl->suppressed < UINT32_MAX)
        rl->suppressed++;
    return false;
}
