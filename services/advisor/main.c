/* SPDX-License-Identifier: Apache-2.0 */
/* twin-advisor: settings, plant model and its actions, metrics endpoint, signals, and the
 * service's start and end around its loop (service.c). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "advisor.h"
#include "plant_json.h"
#include "twin/err.h"
#include "twin/log.h"
#include "twin/signal.h"

#define OPT(member) offsetof(struct adv_settings, member)

static const struct tw_option adv_options[] = {
    TW_COMMON_OPTIONS(struct adv_settings, common),
    {"autonomy", "TWIN_ADVISOR_AUTONOMY", "false",
     "execute recommendations by sending Commands, inside the plant model's guardrails (the "
     "model's actions.autonomy.allowed must be true too); off: advice only",
     TW_OPT_BOOL, OPT(autonomy), 0, 0, 0, NULL},
    {"group", "TWIN_ADVISOR_GROUP", "twin-advisor",
     "shared-subscription group: instances with the same group split the alerts and requests",
     TW_OPT_STR, OPT(group), 0, 0, 0, tw_check_instance},
    {"threads", "TWIN_ADVISOR_THREADS", "0",
     "threads simulating one evaluation (0: one per online CPU)", TW_OPT_INT, OPT(threads), 0, 1024,
     0, NULL},
    {"replications", "TWIN_ADVISOR_REPLICATIONS", "0",
     "replications per candidate action (0: the plant model's actions.evaluate.replications)",
     TW_OPT_INT, OPT(replications), 0, 1000, 0, NULL},
    {"approval-ttl-s", "TWIN_ADVISOR_APPROVAL_TTL", "3600",
     "seconds (wall clock) a recommendation can be approved after it was made", TW_OPT_INT,
     OPT(approval_ttl_s), 1, 30 * 86400, 0, NULL},
    {"audit-maxlen", "TWIN_ADVISOR_AUDIT_MAXLEN", "100000",
     "entries kept in the audit stream twin:audit (approximately: MAXLEN ~)", TW_OPT_INT,
     OPT(audit_maxlen), 100, 100000000, 0, NULL},
    {"max-payload", "TWIN_ADVISOR_MAX_PAYLOAD", "65536",
     "largest alert, request or approval accepted, bytes", TW_OPT_INT, OPT(max_payload), 64,
     16 << 20, 0, NULL},
    {"redis-timeout-ms", "TWIN_REDIS_TIMEOUT_MS", "5000", "Redis command timeout, ms", TW_OPT_INT,
     OPT(redis_timeout_ms), 10, 600000, 0, NULL},
    {"shutdown-grace-ms", "TWIN_ADVISOR_SHUTDOWN_GRACE_MS", "10000",
     "on SIGTERM, how long the last publishes may take", TW_OPT_INT, OPT(shutdown_grace_ms), 100,
     600000, 0, NULL},
};

static const struct tw_program adv_program = {
    .name = "twin-advisor",
    .summary = "weighs the plant model's actions with the scenario engine when a failure is "
               "forecast (or an operator asks), publishes Recommendations, and with autonomy on "
               "sends Commands inside the model's guardrails, every decision audited",
    .options = adv_options,
    .n_options = sizeof(adv_options) / sizeof(adv_options[0]),
};

static void labelled(struct tw_metrics *reg, struct tw_counter **out, const char *name,
                     const char *key, const char *value, const char *help)
{
    char labels[96];
    snprintf(labels, sizeof(labels), "%s=\"%s\"", key, value);
    *out = tw_metrics_counter(reg, name, labels, help);
}

static int register_metrics(struct tw_metrics *reg, struct adv_metrics *m)
{
    static const char *const skips[ADV_SKIP__COUNT] = {"not_forecast", "no_station", "not_wear",
                                                       "recent", "dropped"};
    static const char *const actions[SIM_ACT_N + 2] = {"none", "maintain", "slow", "error"};
    static const double secs[] = {0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30};
    memset(m, 0, sizeof(*m));
    m->alerts = tw_metrics_counter(reg, "twin_advisor_alerts_total", NULL, "Alerts received");
    m->requests = tw_metrics_counter(reg, "twin_advisor_requests_total", NULL,
                                     "RecommendationRequests received");
    m->approvals =
        tw_metrics_counter(reg, "twin_advisor_approvals_total", NULL, "Approvals received");
    for (int i = 0; i < ADV_SKIP__COUNT; i++)
        labelled(reg, &m->skipped[i], "twin_advisor_alerts_skipped_total", "reason", skips[i],
                 "alerts that led to no evaluation, by reason");
    for (int i = 0; i < ADV_REJECT__COUNT; i++)
        labelled(reg, &m->rejected[i], "twin_advisor_rejected_total", "reason",
                 adv_reject_word((enum adv_reject)i), "inputs rejected, by reason");
    for (int i = 0; i < (int)SIM_ACT_N + 2; i++)
        labelled(reg, &m->recommendations[i], "twin_advisor_recommendations_total", "action",
                 actions[i], "Recommendations published, by the action recommended");
    for (int i = 0; i < ADV_DECIDE__COUNT; i++)
        labelled(reg, &m->decisions[i], "twin_advisor_decisions_total", "decision",
                 adv_decision_word((enum adv_decision)i), "decisions on recommendations");
    m->commands = tw_metrics_counter(reg, "twin_advisor_commands_total", NULL, "Commands sent");
    m->publish_failed = tw_metrics_counter(reg, "twin_advisor_publish_failed_total", NULL,
                                           "publishes the MQTT client refused");
    m->store_errors = tw_metrics_counter(reg, "twin_advisor_store_errors_total", NULL,
                                         "failed Redis writes (recommendations, audit)");
    m->mqtt_up = tw_metrics_gauge(reg, "twin_advisor_mqtt_connected", NULL,
                                  "1 while the MQTT session is connected");
    m->redis_up = tw_metrics_gauge(reg, "twin_advisor_redis_connected", NULL,
                                   "1 while the last Redis call succeeded");
    m->inbox_depth =
        tw_metrics_gauge(reg, "twin_advisor_inbox_depth", NULL, "messages waiting for the loop");
    m->evaluate_seconds = tw_metrics_histogram(reg, "twin_advisor_evaluate_seconds", NULL,
                                               "one evaluation: snapshot and every candidate", secs,
                                               sizeof(secs) / sizeof(secs[0]));
    return m->alerts && m->evaluate_seconds && m->inbox_depth ? 0 : TW_ENOMEM;
}

/* Settings, plant model, production part and actions; -1 to go on, else the exit status. */
static int configure(int argc, char **argv, struct adv_settings *cfg, struct tw_model **model,
                     struct sim_plant **plant)
{
    enum tw_config_action action;
    char err[256];
    if (tw_config_load(&adv_program, argc, argv, cfg, &cfg->common, &action, err, sizeof(err)) <
        0) {
        fprintf(stderr, "twin-advisor: %s\n", err);
        return 2;
    }
    if (action == TW_CONFIG_HELP)
        return 0;
    if (tw_model_load_reporting("twin-advisor", cfg->common.model_path, model) < 0)
        return 2;
    struct tw_model_errors errs = {0};
    int rc = sim_plant_load_file(cfg->common.model_path, *model, plant, &errs);
    int arc =
        rc == 0 ? sim_actions_load_file(cfg->common.model_path, *plant, &cfg->actions, &errs) : 0;
    for (size_t i = 0; i < errs.count; i++) {
        char line[sizeof(struct tw_model_error) + 4];
        tw_model_error_format(&errs.items[i], line, sizeof(line));
        fprintf(stderr, "twin-advisor: %s: %s\n", cfg->common.model_path, line);
    }
    tw_model_errors_free(&errs);
    if (rc < 0 || arc < 0)
        return 2;
    if (!*plant || arc == 0) {
        fprintf(stderr,
                "twin-advisor: %s: the plant model needs a production part (\"stations\") and "
                "\"actions\" to recommend anything (README, \"Recommendations and autonomy\")\n",
                cfg->common.model_path);
        return 2;
    }
    cfg->model = *model;
    cfg->plant = *plant;
    if (action == TW_CONFIG_CHECK) {
        printf("twin-advisor: configuration is valid\n");
        return 0;
    }
    return -1;
}

int main(int argc, char **argv)
{
    static struct adv_settings cfg;
    static struct adv_metrics metrics;
    static struct adv_service svc;
    struct tw_model *model = NULL;
    struct sim_plant *plant = NULL;
    struct tw_metrics *reg = NULL;
    struct tw_http *http = NULL;

    tw_log_init("advisor", TW_LOG_INFO);
    int status = configure(argc, argv, &cfg, &model, &plant);
    if (status >= 0) {
        sim_plant_free(plant);
        tw_model_free(model);
        return status;
    }
    tw_log_init("advisor", cfg.common.log_level);
    tw_config_log(&adv_program, &cfg);
    if (cfg.autonomy && !cfg.actions.autonomy_allowed)
        tw_log(TW_LOG_WARN, "autonomy_not_allowed",
               "detail=\"TWIN_ADVISOR_AUTONOMY is on but the plant model's "
               "actions.autonomy.allowed is not true: advice only\"");
    volatile sig_atomic_t *stop = tw_signal_stop_flag();
    status = 1;
    int rc = tw_metrics_create(&reg);
    if (rc == 0)
        rc = register_metrics(reg, &metrics);
    if (rc == 0)
        rc = adv_service_init(&svc, &cfg, &metrics, stop);
    if (rc < 0) {
        tw_log(TW_LOG_ERROR, "start_failed", "error=%s", tw_strerror(rc));
        goto out;
    }
    if (tw_http_start(reg, cfg.common.metrics_addr, (int)cfg.common.metrics_port,
                      adv_service_healthy, &svc, &http) < 0) {
        tw_log(TW_LOG_ERROR, "metrics_listen_failed", "addr=%s port=%lld", cfg.common.metrics_addr,
               (long long)cfg.common.metrics_port);
        goto out;
    }
    status = adv_service_run(&svc);
out:
    tw_http_stop(http);
    adv_service_free(&svc);
    tw_metrics_destroy(reg);
    sim_plant_free(plant);
    tw_model_free(model);
    return status;
}
