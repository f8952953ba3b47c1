/* SPDX-License-Identifier: Apache-2.0 */
/* The plant model's "actions": what twin-advisor may recommend, how the scenario engine weighs
 * it, and the guardrails of executing it without a person. Parsing and pure checks. */
#ifndef TWIN_SCENARIO_PLANT_ACTIONS_H
#define TWIN_SCENARIO_PLANT_ACTIONS_H

/*
 * "actions": {
 *   "objective": {"kpi": "station.{station}.downtime", "maximize": false},   the KPI candidates
 *                are ranked by; "{station}" stands for the machine's station
 *   "evaluate": {"horizon": "1d", "replications": 20, "every": "1h"},
 *   "autonomy": {"allowed": true, "max_per_hour": 4, "min_interval": "2h"},
 *   "maintain": {"stations": ["press"], "duration": "15m", "min_duration": "5m",
 *                "max_duration": "2h", "at_shift_change": true, "approval": false,
 *                "min_interval": "4h"},
 *   "slow": {"stations": ["press"], "speeds": [0.8], "min_speed": 0.7, "wear_exponent": 2,
 *            "for": "8h", "approval": true, "min_interval": "1h"}
 * }
 * Every member is optional but at least one action kind must be declared. Times are durations
 * of plant time (the devices' clock). "every": a machine's forecast alerts are evaluated again
 * only after this much plant time. "autonomy": whether the plant allows autonomous execution
 * at all (twin-advisor's own switch must be on too), how many autonomous commands the whole
 * plant takes in any hour, and the least time between two of them to one machine. Per kind:
 * the stations whose machines it applies to (default: every station), the setpoint range a
 * command must stay in, whether a person must approve it, and the least time between two
 * commands of that kind to one machine.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "plant.h"
#include "twin/model.h"

enum sim_action_kind {
    SIM_ACT_MAINTAIN = 0, /* stop the machine for a duration; it runs as new afterwards */
    SIM_ACT_SLOW,         /* run it at a fraction of its speed for a while: less wear */
    SIM_ACT_N
};

#define SIM_ACT_MAX_SPEEDS 4u

struct sim_action_rule {
    bool declared;
    bool station[SIM_MAX_STATIONS]; /* the action applies to this station's machines */
    bool approval;                  /* a person approves each command of this kind */
    double min_interval;            /* s between two commands of this kind to one machine */
    /* maintain */
    double duration, min_duration, max_duration; /* s: recommended, and the allowed range */
    bool at_shift_change;                        /* also weigh starting when the next shift ends */
    /* slow */
    uint32_t n_speeds;
    double speeds[SIM_ACT_MAX_SPEEDS]; /* candidates, in (0, 1) */
    double min_speed;                  /* lowest speed a command may set */
    double wear_exponent;              /* times to failure x speed^-exponent while slowed */
    double slow_for;                   /* s a slow-down lasts */
};

struct sim_actions {
    struct sim_action_rule rule[SIM_ACT_N];
    char objective[SIM_NAME_MAX * 2 + 32]; /* a KPI name, "{station}" for the machine's */
    bool maximize;
    double horizon;        /* s simulated per candidate */
    uint32_t replications; /* per candidate */
    double every;          /* s between two evaluations of one machine's alerts */
    bool autonomy_allowed;
    uint32_t max_per_hour; /* autonomous commands, whole plant, any hour */
    double min_interval;   /* s between two autonomous commands to one machine */
};

/* The action kind's word ("maintain", "slow") and back (-1: unknown). */
const char *sim_action_word(enum sim_action_kind k);
int sim_action_find(const char *word);

/* Reads the "actions" member of the plant model text buf (which sim_plant_parse accepted into
 * p). Returns 1 with *out filled, 0 when the model has no "actions", or TW_EINVAL with every
 * problem in errs (JSON paths as the other parsers give them). Pure. */
int sim_actions_parse(const char *buf, size_t len, const struct sim_plant *p,
                      struct sim_actions *out, struct tw_model_errors *errs);

/* The same from a file. */
int sim_actions_load_file(const char *path, const struct sim_plant *p, struct sim_actions *out,
                          struct tw_model_errors *errs);

/* The objective KPI's name for a machine of `station`: "{station}" in it replaced. 0, or -1
 * when out is too small. */
int sim_actions_objective_of(const char *objective, const char *station, char *out, size_t len);

/* Seconds from the absolute time t (s since the Unix epoch) to the next moment off shift: 0
 * when t is already off shift, -1 when the calendar never stops (no shifts). Pure. */
double sim_actions_next_off_shift(const struct sim_shifts *sh, double t);

/* Whether a command of kind k with this duration (maintain, s) or speed (slow) is inside the
 * rule's range, for a machine of `station`. Returns 0, or -1 with the reason in why (a
 * snake_case word, the audit's and the metric's) and a sentence in detail. Pure. */
int sim_action_check(const struct sim_actions *a, enum sim_action_kind k, int station,
                     double duration, double speed, const char **why, char *detail,
                     size_t detail_len);

#endif
