/* SPDX-License-Identifier: Apache-2.0 */
/* Structured logging: one line per event on stderr, "ts level service event=... key=value". */
#ifndef TWIN_LOG_H
#define TWIN_LOG_H

#include <stdbool.h>
#include <stdint.h>

enum tw_log_level { TW_LOG_DEBUG = 0, TW_LOG_INFO, TW_LOG_WARN, TW_LOG_ERROR, TW_LOG_OFF };

/* Sets the service name printed on every line and the minimum level. Call once, before
 * threads start. */
void tw_log_init(const char *service, enum tw_log_level min_level);

/* Parses "debug", "info", "warn", "error" or "off". Returns 0 or TW_EINVAL. */
int tw_log_parse_level(const char *text, enum tw_log_level *out);

bool tw_log_enabled(enum tw_log_level level);

/* Writes one line: "2026-01-01T00:00:00.000Z info ingest event=<event> <fmt...>".
 * fmt holds the key=value pairs. A whole line is written with one write(2), so lines from
 * several threads or processes never interleave. Any thread. */
void tw_log_write(enum tw_log_level level, const char *event, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Checks the level before any argument is formatted. */
#define tw_log(level, event, ...)                                                                  \
    do {                                                                                           \
        if (tw_log_enabled(level))                                                                 \
            tw_log_write(level, event, __VA_ARGS__);                                               \
    } while (0)

/* A fixed-window limit for log lines a device can trigger: at most `burst` lines per window of
 * `interval_ms`. Zero-initialise, then set burst and interval_ms. Not thread-safe: one per
 * thread. */
struct tw_ratelimit {
    uint32_t burst;
    int64_t interval_ms;
    int64_t window_start_ms;
    uint32_t used;
    uint32_t suppressed;
};

/* True when a line may be written now. When a new window opens after lines were suppressed,
 * *suppressed_out gets their count (else 0) so the caller can say how many were dropped. */
bool tw_ratelimit_allow(struct tw_ratelimit *rl, int64_t now_ms, uint32_t *suppressed_out);

#endif
