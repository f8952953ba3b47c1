/* SPDX-License-Identifier: Apache-2.0 */
/* twin-predictor: settings, plant model, metrics endpoint, signals, and the service's start and
 * end around its loop (service.c). */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "predictor.h"
#include "twin/err.h"
#include "twin/signal.h"

#define OPT(member)          offsetof(struct pred_settings, member)
#define HORIZON_MAX_STEPS    1000000
#define HORIZON_STEPS_SUFFIX "steps"

int pred_parse_horizon(const char *text, int64_t *ms, uint32_t *steps)
{
    size_t len = strlen(text), suffix = strlen(HORIZON_STEPS_SUFFIX);
    *ms = 0;
    *steps = 0;
    if (len > suffix && strcmp(text + len - suffix, HORIZON_STEPS_SUFFIX) == 0) {
        uint64_t n = 0;
        for (size_t i = 0; i < len - suffix; i++) {
            if (text[i] < '0' || text[i] > '9' || n > HORIZON_MAX_STEPS)
                return TW_EINVAL;
            n = n * 10 + (uint64_t)(text[i] - '0');
        }
        if (n == 0 || n > HORIZON_MAX_STEPS)
            return TW_EINVAL;
        *steps = (uint32_t)n;
        return 0;
    }
    return tw_model_parse_duration(text, ms);
}

static int check_horizon(const char *text, char *err, size_t errlen)
{
    int64_t ms;
    uint32_t steps;
    if (pred_parse_horizon(text, &ms, &steps) == 0)
        return 0;
    return tw_fail(err, errlen, "must be <N>steps (N from 1 to %d) or a duration such as 6h or 90m",
                   HORIZON_MAX_STEPS);
}

static int parse_partition(const char *text, enum pred_partition *out)
{
    if (strcmp(text, "asset") == 0)
        *out = PRED_PARTITION_ASSET;
    else if (strcmp(text, "shared") == 0)
        *out = PRED_PARTITION_SHARED;
    else
        return -1;
    return 0;
}

static int check_partition(const char *text, char *err, size_t errlen)
{
    enum pred_partition p;
    return parse_partition(text, &p) == 0 ? 0 : tw_fail(err, errlen, "must be asset or shared");
}

static const struct tw_option pred_options[] = {
    TW_COMMON_OPTIONS(struct pred_settings, common),
    {"partition", "TWIN_PREDICTOR_PARTITION", "asset",
     "how instances split the work: asset (each asset to one live instance, by a hash over the "
     "instances online) or shared (the group's shared subscription splits the TwinStates)",
     TW_OPT_STR, OPT(partition_text), 0, 0, 0, check_partition},
    {"group", "TWIN_PREDICTOR_GROUP", "twin-predictor",
     "shared-subscription group, with partition shared: instances with the same group split the "
     "TwinStates",
     TW_OPT_STR, OPT(group), 0, 0, 0, tw_check_instance},
    {"horizon", "TWIN_PREDICTOR_HORIZON", "24steps",
     "forecast horizon: <N>steps (grid steps of each signal) or a duration such as 6h", TW_OPT_STR,
     OPT(horizon_text), 0, 0, 0, check_horizon},
    {"points", "TWIN_PREDICTOR_POINTS", "24", "forecast points per signal in a Prediction",
     TW_OPT_INT, OPT(points), 1, PRED_MAX_POINTS, 0, NULL},
    {"publish-ms", "TWIN_PREDICTOR_PUBLISH_MS", "1000",
     "least time between two Predictions of one asset, ms (0: after every TwinState)", TW_OPT_INT,
     OPT(publish_ms), 0, 86400000, 0, NULL},
    {"persist-ms", "TWIN_PREDICTOR_PERSIST_MS", "10000",
     "how often learnt model state is written to Redis, ms (a kill -9 loses at most this much)",
     TW_OPT_INT, OPT(persist_ms), 100, 86400000, 0, NULL},
    {"max-assets", "TWIN_PREDICTOR_MAX_ASSETS", "100000",
     "assets modelled at most; further ones are refused (counted and logged)", TW_OPT_INT,
     OPT(max_assets), 1, 100000000, 0, NULL},
    {"max-signals", "TWIN_PREDICTOR_MAX_SIGNALS", "256",
     "signals modelled per asset at most; further ones are refused (counted and logged)",
     TW_OPT_INT, OPT(max_signals), 1, 100000, 0, NULL},
    {"queue-len", "TWIN_PREDICTOR_QUEUE_LEN", "1024",
     "TwinStates buffered between the MQTT client and the loop; when full the broker holds back",
     TW_OPT_INT, OPT(queue_len), 1, 1000000, 0, NULL},
    {"max-payload", "TWIN_PREDICTOR_MAX_PAYLOAD", "1048576",
     "largest TwinState accepted, bytes (larger ones are rejected as oversize)", TW_OPT_INT,
     OPT(max_payload), 64, 256 * 1024 * 1024, 0, NULL},
    {"warm-start-max", "TWIN_PREDICTOR_WARM_START_MAX", "10000",
     "history entries read at most per asset: for a warm start without stored model, the "
     "catch-up after a stored one, and (up to 4096) a batch refit (0: none of these)",
     TW_OPT_INT, OPT(warm_start_max), 0, 1000000, 0, NULL},
    {"redis-timeout-ms", "TWIN_REDIS_TIMEOUT_MS", "5000", "Redis command timeout, ms", TW_OPT_INT,
     OPT(redis_timeout_ms), 10, 600000, 0, NULL},
    {"shutdown-grace-ms", "TWIN_PREDICTOR_SHUTDOWN_GRACE_MS", "10000",
     "on SIGTERM, how long draining, publishing and the final write of model state may take",
     TW_OPT_INT, OPT(shutdown_grace_ms), 100, 600000, 0, NULL},
};

static const struct tw_program pred_program = {
    .name = "twin-predictor",
    .summary = "forecasts every signal of every asset from its TwinStates, scores itself, and "
               "raises anomaly and limit alerts",
    .options = pred_options,
    .n_options = sizeof(pred_options) / sizeof(pred_options[0]),
};

static void register_labelled(struct tw_metrics *reg, struct tw_counter **out, const char *name,
                              const char *key, const char *value, const char *help)
{
    char labels[96];
    snprintf(labels, sizeof(labels), "%s=\"%s\"", key, value);
    *out = tw_metrics_counter(reg, name, labels, help);
}

static void register_counters(struct tw_metrics *reg, struct pred_metrics *m)
{
    static const char *const kinds[] = {"", "anomaly", "threshold_forecast", "threshold_breach",
                                        "cleared"};
    m->states = tw_metrics_counter(reg, "twin_predictor_states_total", NULL, "TwinStates received");
    m->updates = tw_metrics_counter(reg, "twin_predictor_updates_total", NULL,
                                    "signal observations learnt (warm start included)");
    for (int r = 1; r < TW_REJECT__COUNT; r++)
        register_labelled(reg, &m->rejected[r], "twin_predictor_rejected_total", "reason",
                          tw_reject_word(r), "TwinStates rejected, by reason");
    m->predictions = tw_metrics_counter(reg, "twin_predictor_predictions_published_total", NULL,
                                        "Predictions published");
    m->publish_failed = tw_metrics_counter(reg, "twin_predictor_publish_failed_total", NULL,
                                           "Predictions and Alerts the MQTT client refused");
    for (int k = PRED_ANOMALY; k <= PRED_CLEARED; k++)
        register_labelled(reg, &m->alerts[k], "twin_predictor_alerts_total", "kind", kinds[k],
                          "Alerts raised, by kind");
    m->persist = tw_metrics_counter(reg, "twin_predictor_persist_total", NULL,
                                    "signal model states written to Redis");
    m->persist_errors = tw_metrics_counter(reg, "twin_predictor_persist_errors_total", NULL,
                                           "failed writes of model state (each retried)");
    register_labelled(reg, &m->refused[PRED_LIMIT_ASSETS], "twin_predictor_refused_total", "limit",
                      "max_assets", "new assets or signals refused at a limit");
    register_labelled(reg, &m->refused[PRED_LIMIT_SIGNALS], "twin_predictor_refused_total", "limit",
                      "max_signals", "new assets or signals refused at a limit");
    register_labelled(reg, &m->restored[PRED_RESTORED_MODEL],
                      "twin_predictor_restored_signals_total", "from", "model",
                      "signals whose learning was restored, by source");
    register_labelled(reg, &m->restored[PRED_RESTORED_HISTORY],
                      "twin_predictor_restored_signals_total", "from", "history",
                      "signals whose learning was restored, by source");
    static const char *const refits[] = {"changed", "kept", "deferred"};
    for (int r = 0; r < PRED_REFIT__COUNT; r++)
        register_labelled(reg, &m->refits[r], "twin_predictor_refits_total", "result", refits[r],
                          "batch refits of Holt-Winters parameters from history, by result");
    m->bad_model_state = tw_metrics_counter(reg, "twin_predictor_model_state_invalid_total", NULL,
                                            "stored model states refused (the signal restarts)");
    m->backpressure = tw_metrics_counter(reg, "twin_predictor_backpressure_waits_total", NULL,
                                         "times the MQTT handler waited for room in the queue");
    m->alert_log_skipped =
        tw_metrics_counter(reg, "twin_predictor_alert_log_skipped_total", NULL,
                           "Alerts not appended to twin:{<asset>}:alerts (Redis failing)");
    m->not_owned =
        tw_metrics_counter(reg, "twin_predictor_not_owned_total", NULL,
                           "TwinStates skipped: their asset belongs to another instance");
    m->released = tw_metrics_counter(reg, "twin_predictor_released_assets_total", NULL,
                                     "assets handed over to another instance that joined");
}

static int pred_metrics_register(struct tw_metrics *reg, struct pred_metrics *m)
{
    static const double latency[] = {1e-7,   2.5e-7, 5e-7, 1e-6, 2.5e-6, 5e-6, 1e-5,
                                     2.5e-5, 5e-5,   1e-4, 1e-3, 1e-2,   1e-1};
    memset(m, 0, sizeof(*m));
    register_counters(reg, m);
    m->assets = tw_metrics_gauge(reg, "twin_predictor_assets", NULL, "assets modelled");
    m->signals = tw_metrics_gauge(reg, "twin_predictor_signals", NULL, "signals modelled");
    m->members = tw_metrics_gauge(reg, "twin_predictor_members", NULL,
                                  "live predictor instances sharing the assets (itself included)");
    m->queue_depth = tw_metrics_gauge(reg, "twin_predictor_queue_depth", NULL,
                                      "TwinStates waiting for the loop");
    m->coverage_ppm = tw_metrics_gauge(
        reg, "twin_predictor_interval_coverage_ppm", NULL,
        "mean empirical coverage of the published 95 % one-step intervals, parts per million");
    m->mqtt_up = tw_metrics_gauge(reg, "twin_predictor_mqtt_connected", NULL,
                                  "1 while the MQTT session is connected");
    m->redis_up = tw_metrics_gauge(reg, "twin_predictor_redis_connected", NULL,
                                   "1 while the last Redis call succeeded");
    m->observe_seconds =
        tw_metrics_histogram(reg, "twin_predictor_observe_seconds", NULL,
                             "one observation learnt by a signal's models", latency, 13);
    return m->states && m->backpressure && m->observe_seconds ? 0 : TW_ENOMEM;
}

/* Parses the settings and the plant model; returns -1 to go on, else the exit status. */
static int pred_configure(int argc, char **argv, struct pred_settings *cfg, struct tw_model **model)
{
    enum tw_config_action action;
    char err[256];
    if (tw_config_load(&pred_program, argc, argv, cfg, &cfg->common, &action, err, sizeof(err)) <
        0) {
        fprintf(stderr, "twin-predictor: %s\n", err);
        return 2;
    }
    if (action == TW_CONFIG_HELP)
        return 0;
    pred_parse_horizon(cfg->horizon_text, &cfg->horizon_ms, &cfg->horizon_steps);
    parse_partition(cfg->partition_text, &cfg->partition);
    if (tw_model_load_reporting("twin-predictor", cfg->common.model_path, model) < 0)
        return 2;
    cfg->model = *model;
    if (action == TW_CONFIG_CHECK) {
        printf("twin-predictor: configuration is valid\n");
        return 0;
    }
    return -1;
}

int main(int argc, char **argv)
{
    static struct pred_settings cfg;
    static struct pred_metrics metrics;
    static struct pred_service svc;
    struct tw_model *model = NULL;
    struct tw_metrics *reg = NULL;
    struct tw_http *http = NULL;

    tw_log_init("predictor", TW_LOG_INFO);
    int status = pred_configure(argc, argv, &cfg, &model);
    if (status >= 0) {
        tw_model_free(model);
        return status;
    }
    tw_log_init("predictor", cfg.common.log_level);
    tw_config_log(&pred_program, &cfg);
    volatile sig_atomic_t *stop_requested = tw_signal_stop_flag();
    status = 1;
    int rc = tw_metrics_create(&reg);
    if (rc == 0)
        rc = pred_metrics_register(reg, &metrics);
    if (rc == 0)
        rc = pred_service_init(&svc, &cfg, &metrics, stop_requested);
    if (rc < 0) {
        tw_log(TW_LOG_ERROR, "start_failed", "error=%s", tw_strerror(rc));
        goto out;
    }
    if (tw_http_start(reg, cfg.common.metrics_addr, (int)cfg.common.metrics_port,
                      pred_service_healthy, &svc, &http) < 0) {
        tw_log(TW_LOG_ERROR, "metrics_listen_failed", "addr=%s port=%lld", cfg.common.metrics_addr,
               (long long)cfg.common.metrics_port);
        goto out;
    }
    status = pred_service_run(&svc);
out:
    tw_http_stop(http);
    pred_service_free(&svc);
    tw_metrics_destroy(reg);
    tw_model_free(model);
    return status;
}
