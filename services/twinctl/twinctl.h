/* SPDX-License-Identifier: Apache-2.0 */
/* twinctl's pieces shared by its source files: settings, the broker session that collects
 * messages, the commands, and the printing of scenario results. */
#ifndef TWINCTL_H
#define TWINCTL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "twin/inbox.h"
#include "twin/mqtt.h"
#include "wire.h"

/* Exit statuses. */
#define CTL_EXIT_OK    0
#define CTL_EXIT_FAIL  1 /* a failure, no answer in time, or nothing found (unknown asset) */
#define CTL_EXIT_USAGE 2 /* bad usage or settings; for `model check`, an invalid model */

#define CTL_CONNECT_TIMEOUT_MS 10000 /* reaching the broker */

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

/* Connects a throwaway MQTT session (twin/inbox.h) subscribed to `filters` (QoS 1), waiting up
 * to timeout_ms. 0, or a negative tw_err with the reason printed. Take messages with
 * tw_inbox_next, end with tw_inbox_close. */
int ctl_session_open(const struct ctl_settings *s, const char *const *filters, size_t n_filters,
                     int64_t timeout_ms, struct tw_inbox **out);
/* Publishes with QoS 1 and waits up to timeout_ms for the PUBACK. 0 or a negative tw_err with
 * the reason printed. */
int ctl_session_publish(struct tw_inbox *c, const char *topic, const void *payload, size_t len,
                        int64_t timeout_ms);

/* GET key from Redis into *buf (malloc, owned by the caller). 0, TW_ENOENT (no such key), or a
 * negative tw_err with the reason printed. */
int ctl_redis_get(const struct ctl_settings *s, const char *key, uint8_t **buf, size_t *len,
                  int64_t *pttl_ms);

struct tw_store;
struct tw_cmd;
struct tw_reply;

/* A Redis connection, made now. 0, or a negative tw_err with the reason printed. Release with
 * tw_store_destroy. */
int ctl_redis_open(const struct ctl_settings *s, struct tw_store **out);
/* Runs cmds in one round trip; *replies (n, owned by the caller: tw_store_replies_free) may
 * hold error replies. 0, or a negative tw_err with the reason printed. */
int ctl_redis_run(const struct ctl_settings *s, struct tw_store *st, const struct tw_cmd *cmds,
                  size_t n, struct tw_reply **replies);

/* ---- commands ------------------------------------------------------------------------------ */

int ctl_model_check(int argc, char **argv);
int ctl_scenario(const struct ctl_settings *s, int argc, char **argv);
int ctl_assets(const struct ctl_settings *s, int argc, char **argv);  /* state_cmd.c */
int ctl_state(const struct ctl_settings *s, int argc, char **argv);   /* state_cmd.c */
int ctl_predict(const struct ctl_settings *s, int argc, char **argv); /* predict_cmd.c */
int ctl_watch(const struct ctl_settings *s, int argc, char **argv);   /* watch_cmd.c */
int ctl_alerts(const struct ctl_settings *s, int argc, char **argv);  /* watch_cmd.c */
int ctl_publish(const struct ctl_settings *s, int argc, char **argv); /* publish_cmd.c */
int ctl_top(const struct ctl_settings *s, int argc, char **argv);     /* top_cmd.c */
int ctl_recommend(const struct ctl_settings *s, int argc, char **argv); /* advise_cmd.c */
int ctl_approve(const struct ctl_settings *s, int argc, char **argv);   /* advise_cmd.c */
int ctl_audit(const struct ctl_settings *s, int argc, char **argv);     /* advise_cmd.c */

struct tw_model;
/* Loads the plant model at path (NULL or "": none, *out NULL), printing every problem. 0, or
 * CTL_EXIT_USAGE when the file is missing or invalid. Release with tw_model_free. */
int ctl_load_model(const char *path, struct tw_model **out); /* state_cmd.c */

/* ---- output helpers (print.c) -------------------------------------------------------------- */

struct cJSON;
struct tw_alert;
struct tw_prediction;

/* "2026-01-02 03:04:05.678 UTC"; "-" for 0. */
void ctl_fmt_time(int64_t ms, char *buf, size_t len);
/* "03:04:05.678" (UTC). */
void ctl_fmt_clock(int64_t ms, char *buf, size_t len);
/* A duration for people: "850 ms", "12 s", "5.2 min", "3.1 h", "2.0 d"; negative with "-". */
void ctl_fmt_span(int64_t ms, char *buf, size_t len);
/* a - b in *out, or false when it does not fit in int64 (times from payloads and Redis can be
 * anything, INT64_MIN included). */
bool ctl_ms_diff(int64_t a, int64_t b, int64_t *out);
/* ctl_fmt_span of a - b, or "?" when the difference overflows. */
void ctl_fmt_span_diff(int64_t a, int64_t b, char *buf, size_t len);
/* a - b as an exact JSON integer, or null when the difference overflows. */
struct cJSON *ctl_json_diff(int64_t a, int64_t b);

/* Text from a payload, Redis or a scrape made safe for a terminal: every byte outside
 * 0x20-0x7e and the backslash written as \xNN, cut at a whole character to fit len. NULL is "".
 * Returns buf. JSON output needs none of this (cJSON escapes control characters). */
const char *ctl_esc(const char *text, char *buf, size_t len);
/* The buffer size that holds n bytes of text escaped. */
#define CTL_ESC_LEN(n) (4 * (n) + 1)

/* "ANOMALY", "THRESHOLD_FORECAST", ... and "INFO", "WARNING", "CRITICAL"; "UNKNOWN" for a
 * value the wire enums do not have. Static text. */
const char *ctl_alert_kind_word(int kind);
const char *ctl_severity_word(int severity);

/* Prints j as one line of JSON on stdout, flushes, and deletes j. 0 or TW_ENOMEM. */
int ctl_json_emit(struct cJSON *j);
/* An exact integer (JSON number written from its decimal text, no rounding through double). */
struct cJSON *ctl_json_i64(int64_t v);
struct cJSON *ctl_json_u64(uint64_t v);
/* Decoded messages as JSON objects (NULL on ENOMEM). max_points: points per signal, 0 = all. */
struct cJSON *ctl_json_alert(const struct tw_alert *a);
struct cJSON *ctl_json_prediction(const struct tw_prediction *p, size_t max_points);

/* The kind of message a topic carries: "telemetry", "state", "prediction", "alert",
 * "scenario_request", "scenario_progress", "scenario_result", "rejected", "status" or "other"
 * (msgline.c). Static text. */
const char *ctl_msg_type(const struct ctl_settings *s, const char *topic);
/* Prints one message decoded by its topic: a line for people, or a JSON object (json). 0 or
 * TW_ENOMEM. */
int ctl_msg_print(const struct ctl_settings *s, const struct tw_inbox_msg *m, int64_t arrived_ms,
                  bool json);

/* One line for people (no newline) describing an alert. */
void ctl_alert_line(const struct tw_alert *a, char *buf, size_t len);

/* ---- printing (report.c) ------------------------------------------------------------------- */

struct ctl_report_opts {
    bool all;              /* every KPI, not only those with a value */
    const char *objective; /* the sweep's objective, when known */
    bool maximize;
};

/* The result as a table for people, on stdout. */
void ctl_print_outcome(const struct scen_outcome *o, const struct ctl_report_opts *opts);
/* The result as one JSON object on one line, on stdout. 0 or TW_ENOMEM. */
int ctl_print_outcome_json(const struct scen_outcome *o);

#endif
