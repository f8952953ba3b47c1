/* SPDX-License-Identifier: Apache-2.0 */
/* twinctl's pieces shared by its source files: settings, the broker session that collects
 * messages, the commands, and the printing of scenario results. */
#ifndef TWINCTL_H
#define TWINCTL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "twin/mqtt.h"
#include "wire.h"

/* Exit statuses. */
#define CTL_EXIT_OK    0
#define CTL_EXIT_FAIL  1 /* the result says ERROR or CANCELLED, or nothing came in time */
#define CTL_EXIT_USAGE 2 /* bad usage or settings; for `model check`, an invalid model */

/* ---- settings (main.c) --------------------------------------------------------------------- */

/* The services' connection settings: TWIN_* variables, overridden by the global flags. */
struct ctl_settings {
    const char *mqtt_url;
    const char *mqtt_user;
    const char *mqtt_password; /* environment only */
    const char *mqtt_ca_file;
    const char *redis_url;
    const char *topic_root;
    int64_t redis_timeout_ms;
};

/* Prints the one-line reason of a usage error and returns CTL_EXIT_USAGE. */
int ctl_usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Parses "0" or a duration ("4h", "2d", "90m", "1h30m") into ms. 0 or -1. */
int ctl_parse_duration(const char *text, int64_t *ms);

/* ---- the broker session (client.c) --------------------------------------------------------- */

struct ctl_msg {
    struct ctl_msg *next;
    char *topic;
    uint8_t *payload;
    size_t len;
    bool retained;
};

struct ctl_session;

/* Connects a throwaway MQTT session (clean start) subscribed to `filters` (QoS 1), waiting up
 * to timeout_ms. 0, or a negative tw_err with the reason printed. */
int ctl_session_open(const struct ctl_settings *s, const char *const *filters, size_t n_filters,
                     int64_t timeout_ms, struct ctl_session **out);
/* The next message received, waiting up to wait_ms; NULL when none. Free with free(). */
struct ctl_msg *ctl_session_next(struct ctl_session *c, int64_t wait_ms);
/* Publishes with QoS 1 and waits up to timeout_ms for the PUBACK. 0 or a negative tw_err. */
int ctl_session_publish(struct ctl_session *c, const char *topic, const void *payload, size_t len,
                        int64_t timeout_ms);
void ctl_session_close(struct ctl_session *c);

/* GET key from Redis into *buf (malloc, owned by the caller). 0, TW_ENOENT (no such key), or a
 * negative tw_err with the reason printed. */
int ctl_redis_get(const struct ctl_settings *s, const char *key, uint8_t **buf, size_t *len,
                  int64_t *pttl_ms);

/* ---- commands ------------------------------------------------------------------------------ */

int ctl_model_check(int argc, char **argv);
int ctl_scenario(const struct ctl_settings *s, int argc, char **argv);

/* ---- printing (report.c) ------------------------------------------------------------------- */

struct ctl_report_opts {
    bool all;              /* every KPI, not only those with a value */
    const char *objective; /* the sweep's objective, when known */
    bool maximize;
};

/* The result as a table for people, on stdout. */
void ctl_print_outcome(const struct scen_outcome *o, const struct ctl_report_opts *opts);
/* The result as one JSON object, on stdout. 0 or TW_ENOMEM. */
int ctl_print_outcome_json(const struct scen_outcome *o);

#endif
