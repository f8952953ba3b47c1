/* SPDX-License-Identifier: Apache-2.0 */
/* Prometheus metrics kept in memory shared by a service's processes, served over HTTP with
 * /metrics and /healthz. */
#ifndef TWIN_METRICS_H
#define TWIN_METRICS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct tw_metrics;
struct tw_counter;
struct tw_gauge;
struct tw_histogram;

/* Creates a registry in one anonymous MAP_SHARED mapping, so processes forked afterwards
 * update the same values. Owned by the caller; free with tw_metrics_destroy. */
int tw_metrics_create(struct tw_metrics **out);
void tw_metrics_destroy(struct tw_metrics *m);

/* Registration: call before forking and before threads start. `name` is the full metric
 * name ("twin_ingest_applied_total"); `labels` the label text inside the braces
 * ("reason=\"oversize\"") or NULL; `help` one line. Registering the same name and labels
 * again returns the same metric. Returns NULL when the registry is full (a fixed number of
 * series; a programming error, logged). */
struct tw_counter *tw_metrics_counter(struct tw_metrics *m, const char *name, const char *labels,
                                      const char *help);
struct tw_gauge *tw_metrics_gauge(struct tw_metrics *m, const char *name, const char *labels,
                                  const char *help);
/* `bounds`: n_bounds increasing upper bounds (in the metric's unit, e.g. seconds); +Inf is
 * added. At most TW_HISTOGRAM_MAX_BOUNDS. */
#define TW_HISTOGRAM_MAX_BOUNDS 24
struct tw_histogram *tw_metrics_histogram(struct tw_metrics *m, const char *name,
                                          const char *labels, const char *help,
                                          const double *bounds, size_t n_bounds);

/* Updates: lock-free atomics, any thread of any process sharing the registry. NULL is a
 * no-op, so a failed registration never crashes a hot path. */
void tw_counter_add(struct tw_counter *c, uint64_t n);
uint64_t tw_counter_get(const struct tw_counter *c);
void tw_gauge_set(struct tw_gauge *g, int64_t v);
void tw_gauge_add(struct tw_gauge *g, int64_t delta);
int64_t tw_gauge_get(const struct tw_gauge *g);
void tw_histogram_observe(struct tw_histogram *h, double v);

/* Renders every metric in Prometheus text format 0.0.4, families grouped with one # HELP and
 * # TYPE each. *out is owned by the caller (free()). */
int tw_metrics_render(struct tw_metrics *m, char **out, size_t *len);

/* Answers whether the service is healthy; writes a short reason into detail. Called on the
 * HTTP thread. */
typedef bool (*tw_health_fn)(void *ctx, char *detail, size_t detail_len);

/* The /healthz answer of a service with one MQTT and one Redis link: true with "ok", or false
 * with the first link that is down ("mqtt disconnected", "redis unreachable"). Any thread. */
bool tw_health_links(bool mqtt_up, bool redis_up, char *detail, size_t detail_len);

struct tw_http;

/* Serves GET /metrics (text/plain; version=0.0.4) and GET /healthz (200 "ok" or 503 with the
 * reason) on addr:port from one background thread; other paths get 404, other methods 405.
 * Requests are read with a timeout and a size cap, so a stuck or hostile client cannot hold
 * the thread. port 0 means off: returns 0 and *out = NULL. */
int tw_http_start(struct tw_metrics *m, const char *addr, int port, tw_health_fn health,
                  void *health_ctx, struct tw_http **out);

/* The port actually bound (useful when a test asked for an ephemeral one via port -1). */
int tw_http_port(const struct tw_http *h);

/* A process that forks while the HTTP thread runs brackets fork() with these: hold waits
 * until the thread is idle (in poll) and keeps it there, so the child inherits no lock that
 * the thread held. NULL is fine. */
void tw_http_hold(struct tw_http *h);
void tw_http_release(struct tw_http *h);

/* Stops the thread and closes the socket. NULL is fine. */
void tw_http_stop(struct tw_http *h);

#endif
