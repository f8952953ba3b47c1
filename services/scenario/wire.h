/* SPDX-License-Identifier: Apache-2.0 */
/* The scenario messages of twin.v1 (ScenarioRequest, ScenarioProgress, ScenarioResult) in plain
 * C, and a request's translation into a checked scn_spec; shared by twin-scenario and twinctl. */
#ifndef TWIN_SCENARIO_WIRE_H
#define TWIN_SCENARIO_WIRE_H

/*
 * wire.c and wire_result.c are the only files of the scenario runner and twinctl that include
 * the generated protobuf-c code; request.c does the translation. Everything here is pure (no
 * I/O) and may be called from any thread.
 *
 * A request travels as written by the operator (targets are names, times are milliseconds);
 * scen_request_to_spec resolves the names against the plant, converts times to seconds, applies
 * the service's defaults and limits, and runs scn_spec_check.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "scenario.h"

#define SCEN_ID_MAX           64u   /* bytes of a request id: [A-Za-z0-9._-] */
#define SCEN_NAME_MAX         1024u /* bytes of a request's free-text name */
#define SCEN_WIRE_MAX_PERTURB (SCN_MAX_PERTURB + SCN_MAX_SETS)
#define SCEN_MAX_TOP          100u /* variants a result may return */

/* Perturbation.Kind. */
enum scen_perturb_kind {
    SCEN_P_UNSPECIFIED = 0,
    SCEN_P_MACHINE_DOWN = 1,  /* target: a station (every machine) or a machine's asset id */
    SCEN_P_SUPPLIER_LATE = 2, /* target: a supplier */
    SCEN_P_DEMAND_FACTOR = 3,
    SCEN_P_SET_PARAMETER = 4, /* target: a parameter path (scenario.h) */
    SCEN_P_MAINTAIN = 5,      /* target: as MACHINE_DOWN; duration_ms > 0, then as new */
    SCEN_P_SLOW = 6,          /* target: as MACHINE_DOWN; factor = speed in (0, 1], value = wear
                               * exponent in [0, SIM_MAX_WEAR_EXPONENT] */
};

struct scen_perturbation {
    int kind; /* enum scen_perturb_kind; a decoded message may carry other values */
    char target[SCN_PATH_MAX];
    int64_t start_ms, duration_ms, delay_ms;
    uint32_t count;
    double factor, value; /* DEMAND_FACTOR, SLOW: factor; SET_PARAMETER, SLOW: value */
};

/* A ScenarioRequest. The sweep's value arrays (sweep.params[i].values) belong to the request:
 * release a decoded one with scen_request_free. */
struct scen_request {
    char id[SCEN_ID_MAX + 1];
    char name[SCEN_NAME_MAX + 1];
    size_t n_perturb;
    struct scen_perturbation perturb[SCEN_WIRE_MAX_PERTURB];
    int64_t horizon_ms, warmup_ms; /* 0: the service's default */
    uint32_t replications;         /* 0: the service's default */
    uint64_t seed;                 /* 0: the service picks one */
    bool has_sweep;
    struct scn_sweep sweep;
    bool ignore_live;
    bool cancel;
};

/* What is wrong with a payload on the request topic. */
enum scen_fault {
    SCEN_FAULT_NONE = 0,
    SCEN_FAULT_UNDECODABLE, /* not a ScenarioRequest: nothing is known, not even the id */
    SCEN_FAULT_BAD_ID,      /* decodable, but the id is not 1-64 chars of [A-Za-z0-9._-] */
    SCEN_FAULT_BAD_REQUEST, /* the id is good (out->id), the content is not (see why) */
};

/* Decodes a ScenarioRequest into *out (zeroed first). Counts and sizes are checked against the
 * caps above before anything is copied. Release with scen_request_free whatever the result. */
enum scen_fault scen_request_decode(const uint8_t *buf, size_t len, struct scen_request *out,
                                    char *why, size_t whylen);
void scen_request_free(struct scen_request *r);

/* Encodes a request into a new buffer (*buf owned by the caller, free()). 0 or TW_ENOMEM. */
int scen_request_encode(const struct scen_request *r, uint8_t **buf, size_t *len);

/* The service's defaults and limits for requests. */
struct scen_limits {
    int64_t default_horizon_ms, default_warmup_ms;
    uint32_t default_replications;
    uint32_t max_replications;
    int64_t max_horizon_ms;
    double max_work_hours; /* replications x runs x horizon, in simulated hours */
    uint64_t max_events;   /* per replication (scn_spec.max_events); 0 = no cap */
};

/* Whether a request id is valid (1-64 chars of [A-Za-z0-9._-]). */
bool scen_valid_id(const char *id);

/* Translates a request into *spec for plant p: names resolved, ms to s, defaults applied,
 * limits enforced, scn_spec_check run. The spec borrows the request's sweep value arrays, so
 * keep the request while the spec is used. req->seed must be set (not 0). Returns 0, or
 * TW_EINVAL with the reason in why (*too_large tells a request refused only for its size). */
int scen_request_to_spec(const struct scen_request *req, const struct sim_plant *p,
                         const struct scen_limits *lim, struct scn_spec *spec, bool *too_large,
                         char *why, size_t whylen);

/* Variants a checked spec's sweep makes (0 without a sweep). */
uint64_t scen_spec_variants(const struct scn_spec *s);
/* Simulation runs of a spec: baseline, scenario and every variant. */
uint64_t scen_spec_runs(const struct scn_spec *s);
/* Its size in simulated hours: replications x runs x horizon. */
double scen_spec_work_hours(const struct scn_spec *s);

/* ---- progress ------------------------------------------------------------------------------ */

enum scen_progress_state { SCEN_QUEUED = 1, SCEN_RUNNING = 2 };

struct scen_progress {
    char id[SCEN_ID_MAX + 1];
    int state; /* enum scen_progress_state */
    double percent;
    int64_t eta_ms; /* -1: not known yet */
    uint64_t replications_done, replications_total;
    uint32_t queue_position; /* QUEUED: requests ahead */
};

/* Encodes into buf (capacity cap): 0 and *len, or TW_ENOMEM when cap is too small. */
int scen_progress_encode(const struct scen_progress *p, uint8_t *buf, size_t cap, size_t *len);
/* 0 or TW_EPROTO. */
int scen_progress_decode(const uint8_t *buf, size_t len, struct scen_progress *out);

/* ---- result -------------------------------------------------------------------------------- */

enum scen_status { SCEN_STATUS_UNSPECIFIED = 0, SCEN_OK = 1, SCEN_ERROR = 2, SCEN_CANCELLED = 3 };

/* A ScenarioResult. To encode, fill it (r may be NULL: no KPIs). A decoded one owns its strings
 * and KPI arrays: release with scen_outcome_free. */
struct scen_outcome {
    char id[SCEN_ID_MAX + 1];
    const char *name;  /* "" when none */
    int status;        /* enum scen_status */
    const char *error; /* "" when none; with OK, a note (the result was trimmed) */
    struct scn_result *r;
    size_t n_sweep_params;
    const char *sweep_params[SCN_MAX_SWEEP_PARAMS];
    uint32_t replications;
    int64_t horizon_ms, warmup_ms;
    uint64_t seed;
    int64_t snapshot_ms; /* 0: the run ignored the live state */
    int64_t wall_ms, finished_ms;
    void *impl_; /* decoder storage */
};

/* Encodes into a new buffer (*buf owned by the caller, free()). When the message would exceed
 * max_len bytes (0: no cap), the variants after the first lose their KPIs, then the last
 * variants are dropped, and a note saying so is put in `error`. 0, TW_ENOMEM, or TW_EINVAL
 * when even the trimmed message is too large. */
int scen_outcome_encode(const struct scen_outcome *o, size_t max_len, uint8_t **buf, size_t *len);
/* 0, TW_EPROTO or TW_ENOMEM; on success release with scen_outcome_free. */
int scen_outcome_decode(const uint8_t *buf, size_t len, struct scen_outcome *out);
void scen_outcome_free(struct scen_outcome *o);

/* "ok", "error", "cancelled" or "unspecified". */
const char *scen_status_word(int status);

/* Whether a difference's 95 % interval excludes 0 (with at least two replications). */
bool scen_significant(const struct scn_estimate *d);
/* The outcome as a JSON object (id, status, run settings, KPIs with baseline, scenario and
 * difference, sweep variants ranked): what twinctl --json prints. NULL on out-of-memory. */
struct cJSON;
struct cJSON *scen_outcome_json(const struct scen_outcome *o);

/* ---- Rejected (read by twinctl) ------------------------------------------------------------ */

struct scen_rejected {
    char reason[64];
    char detail[512];
    uint8_t head[64];
    size_t head_len;
};

/* 0 or TW_EPROTO. */
int scen_rejected_decode(const uint8_t *buf, size_t len, struct scen_rejected *out);

#endif
