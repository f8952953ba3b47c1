/* SPDX-License-Identifier: Apache-2.0 */
/* twin-advisor's parts: settings, metrics, the evaluation of candidate actions, the guardrails
 * and audit, the wire messages, and the service loop. */
#ifndef ADVISOR_H
#define ADVISOR_H

/*
 * Threads. Paho's receive thread runs the MQTT handler, which only copies a message into the
 * inbox (a full inbox drops an alert, counted, and refuses a request with a Rejected `busy`);
 * the main thread decodes, evaluates with the scenario engine (scn_run on TWIN_ADVISOR_THREADS
 * threads), decides, writes Redis and publishes. Nothing publishes while holding the inbox
 * lock, the only lock the handler takes.
 *
 * Time. Recommendations and guardrails run on plant time: the device time of the alert (or of
 * the asset's state, for a request), so a plant replayed or simulated faster than real time
 * keeps its rate limits in its own hours. Approvals expire on the wall clock.
 */

#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "plant.h"
#include "plant_actions.h"
#include "scenario.h"
#include "twin/config.h"
#include "twin/metrics.h"
#include "twin/model.h"
#include "twin/mqtt.h"
#include "twin/msgq.h"
#include "twin/store.h"
#include "twin/validate.h"

#define ADV_TOPIC_MAX   256
#define ADV_ID_MAX      160 /* recommendation and command ids */
#define ADV_REQ_ID_MAX  64
#define ADV_MAX_OPTIONS (3 + SIM_ACT_MAX_SPEEDS)
#define ADV_MAX_KPIS    4
#define ADV_AUDIT_KEY   "twin:audit"
#define ADV_LIMITS_KEY  "twin:autonomy"

/* ---- settings (main.c) ------------------------------------------------------------------- */

struct adv_settings {
    struct tw_common_config common;
    const char *group;
    bool autonomy;
    int64_t threads;
    int64_t replications; /* 0: the model's */
    int64_t max_payload;
    int64_t redis_timeout_ms;
    int64_t approval_ttl_s;
    int64_t audit_maxlen;
    int64_t shutdown_grace_ms;
    /* derived by main */
    const struct tw_model *model;
    const struct sim_plant *plant;
    struct sim_actions actions;
};

/* ---- metrics ------------------------------------------------------------------------------ */

enum adv_reject {
    ADV_REJECT_UNDECODABLE = 0,
    ADV_REJECT_OVERSIZE,
    ADV_REJECT_BAD_ID,
    ADV_REJECT_ASSET_MISMATCH,
    ADV_REJECT_UNKNOWN_ASSET,
    ADV_REJECT_UNKNOWN_RECOMMENDATION,
    ADV_REJECT_RETAINED,
    ADV_REJECT_BUSY,
    ADV_REJECT__COUNT
};
const char *adv_reject_word(enum adv_reject r);

enum adv_skip { /* alerts that lead to no evaluation */
                ADV_SKIP_NOT_FORECAST = 0,
                ADV_SKIP_NO_STATION,
                ADV_SKIP_NOT_WEAR, /* not the station's wear signal: no action of the model acts on
                                      it */
                ADV_SKIP_RECENT,
                ADV_SKIP_DROPPED, /* the inbox was full */
                ADV_SKIP__COUNT
};

enum adv_decision {
    ADV_DECIDE_ADVICE = 0, /* autonomy off, or nothing to do */
    ADV_DECIDE_EXECUTED,   /* a Command went out */
    ADV_DECIDE_AWAITING,   /* the kind needs a person's approval */
    ADV_DECIDE_REFUSED,    /* a guardrail said no */
    ADV_DECIDE_REJECTED,   /* a person said no */
    ADV_DECIDE__COUNT
};
const char *adv_decision_word(enum adv_decision d);

struct adv_metrics {
    struct tw_counter *alerts, *requests, *approvals;
    struct tw_counter *skipped[ADV_SKIP__COUNT];
    struct tw_counter *rejected[ADV_REJECT__COUNT];
    struct tw_counter *recommendations[SIM_ACT_N + 2]; /* none, maintain, slow, error */
    struct tw_counter *decisions[ADV_DECIDE__COUNT];
    struct tw_counter *commands, *publish_failed, *store_errors;
    struct tw_gauge *mqtt_up, *redis_up, *inbox_depth;
    struct tw_histogram *evaluate_seconds;
};

/* ---- evaluation (evaluate.c): pure, on a plant with the live snapshot applied ------------- */

struct adv_action {
    int kind;        /* -1 = none, else enum sim_action_kind */
    double start;    /* s from the evaluation's start (plant time) */
    double duration; /* s: maintain's stop, slow's length */
    double speed;    /* slow */
    char label[128];
};

struct adv_option {
    struct adv_action action;
    struct scn_estimate objective; /* the objective with this action */
    struct scn_estimate effect;    /* minus the objective without it, paired */
    bool pays;                     /* effect's interval lies wholly on the good side of 0 */
    size_t n_kpis;
    struct scn_kpi kpis[ADV_MAX_KPIS]; /* base = no action, scen = this action */
};

struct adv_eval {
    size_t n; /* options, best first by the objective's mean */
    struct adv_option opt[ADV_MAX_OPTIONS];
    size_t best; /* the recommended one: the first that pays, or none */
    uint64_t events;
    double horizon;
    uint32_t replications;
    char objective[SCN_PATH_MAX]; /* the KPI ranked by, "{station}" replaced */
    bool maximize;
};

struct adv_target {
    const char *asset;
    int station, machine;
    double plant_s; /* plant time of the trigger, s since the epoch */
    uint64_t seed;
    bool approval_free; /* only kinds without approval may be the recommendation (autonomy) */
};

/* Finds the station and machine an asset is in; false when it is in none. */
bool adv_locate(const struct sim_plant *p, const char *asset, int *station, int *machine);

/* The candidates for a machine: no action, maintain now, maintain when the shift ends (when
 * the rule asks and that is later than now), slow at each speed. Returns how many. */
size_t adv_candidates(const struct sim_plant *p, const struct sim_actions *a, int station,
                      double plant_s, struct adv_action *out, size_t cap);

/* Simulates every candidate against no action (paired replications) and ranks them; the
 * recommendation is the best that pays (of the kinds needing no approval, with
 * t->approval_free), else no action. 0, or a SIM_E* code with a reason in err. */
int adv_evaluate(const struct sim_plant *live, const struct sim_actions *a,
                 const struct adv_target *t, uint32_t replications, unsigned threads,
                 const volatile int *cancel, struct adv_eval *out, char *err, size_t errlen);

/* One or two sentences on the choice, for Recommendation.why. */
void adv_explain(const struct adv_eval *e, const char *trigger, char *out, size_t len);

/* ---- wire (wire.c) ------------------------------------------------------------------------- */

struct adv_rec {
    char id[ADV_ID_MAX];
    const char *asset;
    bool ok;
    char error[256];
    const char *trigger; /* "threshold_forecast", "threshold_breach" or "request" */
    char request_id[ADV_REQ_ID_MAX + 1];
    char signal[65];
    int64_t ts_ms, created_ms, snapshot_ms;
    const struct adv_eval *eval; /* NULL when !ok */
    const struct sim_actions *actions;
    char why[768];
    char decision[200];
    char command_id[ADV_ID_MAX];
};

struct adv_command {
    char id[ADV_ID_MAX];
    const char *asset;
    struct adv_action action;
    int64_t start_ms; /* plant time; 0 = at once */
    const char *recommendation_id;
    int64_t issued_ms;
    const char *issued_by;
    const char *reason;
};

int adv_encode_recommendation(const struct adv_rec *r, uint8_t **buf, size_t *len);
int adv_encode_command(const struct adv_command *c, uint8_t **buf, size_t *len);

/* What the stored Recommendation says, for an approval. */
struct adv_stored {
    char id[ADV_ID_MAX];
    char decision[200];
    int64_t created_ms, ts_ms;
    struct adv_action action;
    int64_t start_ms;
};
int adv_decode_stored(const uint8_t *buf, size_t len, struct adv_stored *out);
/* Rewrites the decision (and command id) of a stored Recommendation; *out malloc'd. */
int adv_redecide(const uint8_t *buf, size_t len, const char *decision, const char *command_id,
                 uint8_t **out, size_t *out_len);

struct adv_request {
    char id[ADV_REQ_ID_MAX + 1];
    char asset[TW_NAME_MAX + 1];
    char signal[65];
    char by[65];
};
int adv_decode_request(const uint8_t *buf, size_t len, struct adv_request *out, char *err,
                       size_t errlen);

struct adv_approval {
    char recommendation_id[ADV_ID_MAX];
    char asset[TW_NAME_MAX + 1];
    char by[65];
    bool reject;
};
int adv_decode_approval(const uint8_t *buf, size_t len, struct adv_approval *out, char *err,
                        size_t errlen);

/* ---- guardrails and audit (guard.c) --------------------------------------------------------- */

struct adv_audit {
    const char *event; /* a decision word, or "command" */
    const char *asset;
    int64_t ts_ms; /* plant time */
    const char *recommendation, *command, *action, *reason, *by;
};

/* XADD twin:audit MAXLEN ~ n ... : 0, or a negative tw_err / TW_EIO when Redis refused. */
int adv_audit(struct tw_store *store, int64_t maxlen, const struct adv_audit *a);

/* The rate limits, checked and (when they pass) recorded in one Lua call on twin:autonomy:
 * at most max_per_hour autonomous commands in any hour of plant time (0: no cap, for approved
 * ones), and the machine's least intervals. 0 = allowed; 1 = refused with the reason word in
 * *why and a sentence in detail; a negative tw_err when Redis failed. */
int adv_limit(struct tw_store *store, const struct sim_actions *a, int kind, const char *asset,
              const char *command_id, int64_t plant_ms, bool count_hourly, const char **why,
              char *detail, size_t detail_len);

extern struct tw_script adv_limit_script;

/* ---- the service (service.c) --------------------------------------------------------------- */

struct adv_service {
    const struct adv_settings *cfg;
    struct adv_metrics *m;
    volatile sig_atomic_t *stop;
    struct tw_mqtt *mqtt;
    struct tw_store *store;
    char client_id[128], status_topic[ADV_TOPIC_MAX], rejected_topic[ADV_TOPIC_MAX];
    char instance_by[128]; /* "twin-advisor/<instance>" */
    struct tw_msgq inbox;
    bool redis_up;
    /* plant time of the last evaluation per asset (open addressing on the asset id) */
    size_t n_recent, cap_recent;
    struct adv_recent {
        char asset[TW_NAME_MAX + 1];
        int64_t ts_ms;
    } * recent;
    uint64_t seq;     /* makes ids unique within a process … */
    uint32_t id_salt; /* … and across restarts and instances */
};

int adv_service_init(struct adv_service *s, const struct adv_settings *cfg, struct adv_metrics *m,
                     volatile sig_atomic_t *stop);
int adv_service_run(struct adv_service *s);
void adv_service_free(struct adv_service *s);
bool adv_service_healthy(void *ctx, char *detail, size_t detail_len);

#endif
