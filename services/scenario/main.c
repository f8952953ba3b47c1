/* SPDX-License-Identifier: Apache-2.0 */
/* twin-scenario: settings, the plant model (common part and production part), metrics
 * endpoint, signals, and the service's start and end around its control loop (service.c). */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "plant_json.h"
#include "scenario_service.h"
#include "twin/err.h"
#include "twin/signal.h"

#define OPT(member) offsetof(struct scen_settings, member)
#define MS_PER_H    3600000.0

int scen_parse_duration(const char *text, int64_t *ms)
{
    if (strcmp(text, "0") == 0) {
        *ms = 0;
        return 0;
    }
    return tw_model_parse_duration(text, ms);
}

static int check_duration(const char *text, char *err, size_t errlen)
{
    int64_t ms;
    if (scen_parse_duration(text, &ms) == 0)
        return 0;
    return tw_fail(err, errlen, "must be 0 or a duration such as 7d, 8h or 90m (at most 366d)");
}

static int check_positive_duration(const char *text, char *err, size_t errlen)
{
    int64_t ms;
    if (scen_parse_duration(text, &ms) == 0 && ms >= 1000)
        return 0;
    return tw_fail(err, errlen, "must be a duration of at least 1s such as 7d, 8h or 90m");
}

static const struct tw_option scen_options[] = {
    TW_COMMON_OPTIONS(struct scen_settings, common),
    {"group", "TWIN_SCENARIO_GROUP", "twin-scenario",
     "shared-subscription group: instances with the same group share the request queue, each "
     "request runs on one of them",
     TW_OPT_STR, OPT(group), 0, 0, 0, tw_check_instance},
    {"check-model", "TWIN_SCENARIO_CHECK_MODEL", "false",
     "validate the plant model (TWIN_MODEL), print every problem with its JSON path, and exit "
     "(0: valid, 2: invalid)",
     TW_OPT_BOOL, OPT(check_model), 0, 0, 0, NULL},
    {"threads", "TWIN_SCENARIO_THREADS", "0",
     "simulation threads of each running request (0: one per online CPU)", TW_OPT_INT, OPT(threads),
     0, 1024, 0, NULL},
    {"jobs", "TWIN_SCENARIO_JOBS", "2",
     "requests run at once; a short what-if runs beside a long sweep", TW_OPT_INT, OPT(jobs), 1, 64,
     0, NULL},
    {"queue", "TWIN_SCENARIO_QUEUE", "100",
     "requests waiting at most; more are refused (queue_full) with an error result", TW_OPT_INT,
     OPT(queue), 1, 1000, 0, NULL},
    {"result-ttl", "TWIN_SCENARIO_RESULT_TTL", "7d",
     "how long twin:scenario:<id> keeps a result in Redis (a duration)", TW_OPT_STR,
     OPT(result_ttl_text), 0, 0, 0, check_positive_duration},
    {"horizon", "TWIN_SCENARIO_HORIZON", "7d",
     "simulated time of a request that gives none (a duration)", TW_OPT_STR, OPT(horizon_text), 0,
     0, 0, check_positive_duration},
    {"warmup", "TWIN_SCENARIO_WARMUP", "0",
     "start of the horizon left out of the statistics when a request gives none (0: none; a "
     "run from the live state needs none)",
     TW_OPT_STR, OPT(warmup_text), 0, 0, 0, check_duration},
    {"replications", "TWIN_SCENARIO_REPLICATIONS", "20",
     "replications of a request that gives none", TW_OPT_INT, OPT(replications), 1,
     SCN_MAX_REPLICATIONS, 0, NULL},
    {"max-replications", "TWIN_SCENARIO_MAX_REPLICATIONS", "1000",
     "most replications a request may ask for", TW_OPT_INT, OPT(max_replications), 1,
     SCN_MAX_REPLICATIONS, 0, NULL},
    {"max-horizon", "TWIN_SCENARIO_MAX_HORIZON", "366d", "longest horizon a request may ask for",
     TW_OPT_STR, OPT(max_horizon_text), 0, 0, 0, check_positive_duration},
    {"max-work", "TWIN_SCENARIO_MAX_WORK", "20000000",
     "largest request, in simulated hours: replications x (variants + 2) x horizon; larger "
     "ones are refused (too_large)",
     TW_OPT_INT, OPT(max_work_hours), 1, 1000000000000LL, 0, NULL},
    {"max-events", "TWIN_SCENARIO_MAX_EVENTS", "1000000000",
     "most events one replication may simulate (an absurd rate or cycle time in a request); "
     "a run that reaches it ends with an error (0: no limit)",
     TW_OPT_INT, OPT(max_events), 0, 1000000000000000LL, 0, NULL},
    {"max-run-s", "TWIN_SCENARIO_MAX_RUN_S", "3600",
     "a run still going after this many seconds is stopped with an error (0: no limit)", TW_OPT_INT,
     OPT(max_run_s), 0, 604800, 0, NULL},
    {"max-payload", "TWIN_SCENARIO_MAX_PAYLOAD", "1048576",
     "largest request accepted, bytes (larger ones are rejected as oversize)", TW_OPT_INT,
     OPT(max_payload), 64, 256 * 1024 * 1024, 0, NULL},
    {"max-result", "TWIN_SCENARIO_MAX_RESULT", "1000000",
     "largest result message, bytes (the broker's max_packet_size is 1 MiB); a larger sweep "
     "result is trimmed",
     TW_OPT_INT, OPT(max_result_bytes), 4096, 256 * 1024 * 1024, 0, NULL},
    {"aging-s", "TWIN_SCENARIO_AGING_S", "60",
     "fairness: a waiting request counts as half its size after this many seconds, a third "
     "after twice as long, ...",
     TW_OPT_INT, OPT(aging_s), 1, 86400, 0, NULL},
    {"progress-ms", "TWIN_SCENARIO_PROGRESS_MS", "500",
     "least time between two progress messages of a running request, ms", TW_OPT_INT,
     OPT(progress_ms), 50, 3600000, 0, NULL},
    {"redis-timeout-ms", "TWIN_REDIS_TIMEOUT_MS", "5000", "Redis command timeout, ms", TW_OPT_INT,
     OPT(redis_timeout_ms), 10, 600000, 0, NULL},
    {"shutdown-grace-ms", "TWIN_SCENARIO_SHUTDOWN_GRACE_MS", "10000",
     "on SIGTERM, how long running requests may take to finish before they are stopped", TW_OPT_INT,
     OPT(shutdown_grace_ms), 0, 3600000, 0, NULL},
};

static const struct tw_program scen_program = {
    .name = "twin-scenario",
    .summary = "answers what-if questions: simulates the plant from its live state with "
               "disruptions, parameter changes and sweeps, and publishes KPIs with 95 % intervals",
    .options = scen_options,
    .n_options = sizeof(scen_options) / sizeof(scen_options[0]),
};

static void register_labelled(struct tw_metrics *reg, struct tw_counter **out, const char *name,
                              const char *key, const char *value, const char *help)
{
    char labels[96];
    snprintf(labels, sizeof(labels), "%s=\"%s\"", key, value);
    *out = tw_metrics_counter(reg, name, labels, help);
}

static int scen_metrics_register(struct tw_metrics *reg, struct scen_metrics *m)
{
    static const double run_s[] = {0.01, 0.05, 0.1, 0.25, 0.5, 1,   2.5,
                                   5,    10,   30,  60,   300, 900, 3600};
    static const double short_s[] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
                                     0.25,   0.5,   1,      2.5,   5,    10,    60,   300};
    memset(m, 0, sizeof(*m));
    m->received = tw_metrics_counter(reg, "twin_scenario_received_total", NULL,
                                     "messages received on the request topic");
    for (int s = SCEN_OK; s <= SCEN_CANCELLED; s++)
        register_labelled(reg, &m->requests[s], "twin_scenario_requests_total", "outcome",
                          scen_status_word(s), "requests finished, by outcome");
    for (int r = 0; r < SCEN_REJECT__COUNT; r++)
        register_labelled(reg, &m->rejected[r], "twin_scenario_rejected_total", "reason",
                          scen_reject_word((enum scen_reject)r), "requests rejected, by reason");
    m->events =
        tw_metrics_counter(reg, "twin_scenario_events_total", NULL, "simulation events processed");
    m->replications = tw_metrics_counter(reg, "twin_scenario_replications_total", NULL,
                                         "replications simulated (every run of every request)");
    m->store_errors = tw_metrics_counter(reg, "twin_scenario_store_errors_total", NULL,
                                         "results that could not be written to Redis");
    m->publish_failed = tw_metrics_counter(reg, "twin_scenario_publish_failed_total", NULL,
                                           "messages the MQTT client refused");
    m->cancels_forwarded =
        tw_metrics_counter(reg, "twin_scenario_cancels_forwarded_total", NULL,
                           "cancels passed on to the runner that holds the request");
    m->queue_depth =
        tw_metrics_gauge(reg, "twin_scenario_queue_depth", NULL, "requests waiting to run");
    m->running = tw_metrics_gauge(reg, "twin_scenario_running", NULL, "requests running");
    m->mqtt_up = tw_metrics_gauge(reg, "twin_scenario_mqtt_connected", NULL,
                                  "1 while the MQTT session is connected");
    m->redis_up = tw_metrics_gauge(reg, "twin_scenario_redis_connected", NULL,
                                   "1 while the last Redis call succeeded");
    m->run_seconds = tw_metrics_histogram(reg, "twin_scenario_run_seconds", NULL,
                                          "wall time of a request's run (snapshot included)", run_s,
                                          sizeof(run_s) / sizeof(run_s[0]));
    m->queue_seconds = tw_metrics_histogram(reg, "twin_scenario_queue_seconds", NULL,
                                            "time a request waited in the queue", short_s,
                                            sizeof(short_s) / sizeof(short_s[0]));
    m->snapshot_seconds = tw_metrics_histogram(reg, "twin_scenario_snapshot_seconds", NULL,
                                               "the read of the live state", short_s,
                                               sizeof(short_s) / sizeof(short_s[0]));
    return m->received && m->snapshot_seconds && m->run_seconds ? 0 : TW_ENOMEM;
}

/* Prints every problem of a model load as "<prefix><json path>: <message>". */
static void print_errors(const char *prefix, const struct tw_model_errors *errs)
{
    char line[600];
    for (size_t i = 0; i < errs->count; i++) {
        tw_model_error_format(&errs->items[i], line, sizeof(line));
        fprintf(stderr, "%s%s\n", prefix, line);
    }
    if (errs->total > errs->count)
        fprintf(stderr, "%s(%zu more problems not shown)\n", prefix, errs->total - errs->count);
}

/* Loads both parts of the model, reporting the problems of both; returns 0 or 2 (the exit
 * status for a bad model). */
static int scen_load_model(struct scen_settings *cfg, struct tw_model **model,
                           struct sim_plant **plant)
{
    char prefix[512];
    const char *path = cfg->common.model_path;
    struct tw_model_errors errs = {0};
    if (!path || !path[0]) {
        fprintf(stderr, "twin-scenario: TWIN_MODEL (--model) is required: the plant to "
                        "simulate\n");
        return 2;
    }
    int rc = tw_model_load_file(path, model, &errs);
    /* The production part is checked even when the common part failed (its asset references
     * are then not checked), so one run lists every problem. */
    int prc = sim_plant_load_file(path, *model, plant, &errs);
    snprintf(prefix, sizeof(prefix), "twin-scenario: %s: ", path);
    if (rc < 0 || prc < 0) {
        print_errors(prefix, &errs);
        if (errs.count == 0)
            fprintf(stderr, "%s%s\n", prefix, tw_strerror(rc < 0 ? rc : prc));
        rc = TW_EINVAL;
    } else if (!*plant) {
        fprintf(stderr,
                "%sno production part (stations, buffers, suppliers, demand): nothing to "
                "simulate\n",
                prefix);
        rc = TW_EINVAL;
    }
    tw_model_errors_free(&errs);
    return rc < 0 ? 2 : 0;
}

static void scen_derive(struct scen_settings *cfg)
{
    int64_t ms;
    scen_parse_duration(cfg->result_ttl_text, &ms);
    cfg->result_ttl_s = ms / 1000;
    scen_parse_duration(cfg->horizon_text, &cfg->limits.default_horizon_ms);
    scen_parse_duration(cfg->warmup_text, &cfg->limits.default_warmup_ms);
    scen_parse_duration(cfg->max_horizon_text, &cfg->limits.max_horizon_ms);
    cfg->limits.default_replications = (uint32_t)cfg->replications;
    cfg->limits.max_replications = (uint32_t)cfg->max_replications;
    cfg->limits.max_work_hours = (double)cfg->max_work_hours;
    cfg->limits.max_events = (uint64_t)cfg->max_events;
    if (cfg->threads == 0) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        cfg->threads = n > 0 ? n : 1;
    }
}

/* Parses the settings and the plant model; returns -1 to go on, else the exit status. */
static int scen_configure(int argc, char **argv, struct scen_settings *cfg, struct tw_model **model,
                          struct sim_plant **plant)
{
    enum tw_config_action action;
    char err[256];
    if (tw_config_load(&scen_program, argc, argv, cfg, &cfg->common, &action, err, sizeof(err)) <
        0) {
        fprintf(stderr, "twin-scenario: %s\n", err);
        return 2;
    }
    if (action == TW_CONFIG_HELP)
        return 0;
    scen_derive(cfg);
    if (cfg->limits.default_horizon_ms > cfg->limits.max_horizon_ms ||
        cfg->limits.default_warmup_ms >= cfg->limits.default_horizon_ms ||
        cfg->replications > cfg->max_replications) {
        fprintf(stderr, "twin-scenario: the defaults break the limits: horizon <= max-horizon, "
                        "warmup < horizon and replications <= max-replications\n");
        return 2;
    }
    if (scen_load_model(cfg, model, plant) != 0)
        return 2;
    cfg->model = *model;
    cfg->plant = *plant;
    if (cfg->check_model || action == TW_CONFIG_CHECK) {
        printf("twin-scenario: %s is valid: %u stations, %u buffers, %u stocks, %u suppliers\n",
               cfg->common.model_path, (*plant)->n_stations, (*plant)->n_buffers,
               (*plant)->n_stocks, (*plant)->n_suppliers);
        return 0;
    }
    return -1;
}

int main(int argc, char **argv)
{
    static struct scen_settings cfg;
    static struct scen_metrics metrics;
    static struct scen_service svc;
    struct tw_model *model = NULL;
    struct sim_plant *plant = NULL;
    struct tw_metrics *reg = NULL;
    struct tw_http *http = NULL;

    tw_log_init("scenario", TW_LOG_INFO);
    int status = scen_configure(argc, argv, &cfg, &model, &plant);
    if (status >= 0)
        goto out_model;
    tw_log_init("scenario", cfg.common.log_level);
    tw_config_log(&scen_program, &cfg);
    volatile sig_atomic_t *stop_requested = tw_signal_stop_flag();
    status = 1;
    int rc = tw_metrics_create(&reg);
    if (rc == 0)
        rc = scen_metrics_register(reg, &metrics);
    if (rc == 0)
        rc = scen_service_init(&svc, &cfg, &metrics, stop_requested);
    if (rc < 0) {
        tw_log(TW_LOG_ERROR, "start_failed", "error=%s", tw_strerror(rc));
        goto out;
    }
    if (tw_http_start(reg, cfg.common.metrics_addr, (int)cfg.common.metrics_port,
                      scen_service_healthy, &svc, &http) < 0) {
        tw_log(TW_LOG_ERROR, "metrics_listen_failed", "addr=%s port=%lld", cfg.common.metrics_addr,
               (long long)cfg.common.metrics_port);
        goto out;
    }
    status = scen_service_run(&svc);
out:
    tw_http_stop(http);
    scen_service_free(&svc);
    tw_metrics_destroy(reg);
out_model:
    sim_plant_free(plant);
    tw_model_free(model);
    return status;
}
