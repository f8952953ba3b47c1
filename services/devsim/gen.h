/* SPDX-License-Identifier: Apache-2.0 */
/* twin-devsim's signal generator: one simulated device per asset, pure and deterministic. */
#ifndef DEVSIM_GEN_H
#define DEVSIM_GEN_H

/*
 * A device's signals are derived from its kind's signal definitions in the plant model: each
 * signal gets a base level inside its normal band (between the warn limits) and a headroom
 * (distance from the base to the nearest warn limit). On top of the base come a cycle (the
 * model's season hint: "1d", "8h", season_samples; a weak daily cycle without one), a slow
 * bounded drift and truncated Gaussian noise. Their sum stays within 0.7 headroom of the base,
 * so a healthy device never crosses a warn limit.
 *
 * With faults on, the device also has:
 *  - wear: signals whose name says they measure it ("vibration", "filter", "_dp", "wear") and
 *    that have an "above" warn limit drift upward as wear grows; wear 1 puts the signal's base
 *    on the warn limit. Wear grows at a per-asset rate (warn reached after 6-18 h of device
 *    time from new);
 *  - failures: random, and mostly from wear (as on a P-F curve): a new machine's mean time
 *    between failures is 72 h of device time, divided by 1 + 30 wear^4 (wear 0.5: 25 h; wear 1,
 *    on the warn limit: 2.3 h; wear 1.3: 50 min), and certain once wear has taken a wear signal
 *    30 % past its alarm limit. So a machine seldom fails before its wear signal nears the warn
 *    limit, which the twin's forecasts see coming.
 *    While down, activity signals (rates, currents, flows, vibration, torque, pressure,
 *    airflow) drop to their stand-still level (stroke_rate 0). A breakdown's repair takes
 *    20-60 min of device time (parts, fitter, restart) and resets wear to nearly new;
 *  - sensor glitches: a single-sample spike of 1.5-3 headrooms on one signal, on average every
 *    10 min of device time per device.
 * With head_start (the demo), the first asset in file order with a "filter" signal (else the
 * first with any wear signal) starts just below its warn limit with fast wear: it crosses
 * the warn limit about 40 s of device time after the start and its alarm limit about 7 min
 * later, then fails and is repaired (a filter change), so the demo alerts at once. A
 * maintenance before that failure avoids it: the twin's closed loop, measurable.
 *
 * Commands (faults on or off), applied by the caller between steps:
 *  - maintenance (devsim_asset_maintain): over [start, start + duration) of device time the
 *    device is down as in a failure (activity signals at their stand-still level; no wear
 *    growth, no failure); at start + duration wear resets to nearly new, as after a repair,
 *    and the demo's head start is over. start_ms 0 or not after the last step: from the next
 *    step's time. A newer maintenance replaces a pending one. A maintenance that comes due
 *    while the device is down (broken, or in another maintenance) is dropped and counted in
 *    maintenances_skipped: the end of that downtime renews the machine anyway.
 *  - slow-down (devsim_asset_slow): from start (same rule) the device runs at `speed` of its
 *    nominal speed: wear grows at speed^2 times its rate, the random-failure hazard is
 *    multiplied by speed, and "rate" signals (name ending in "_rate") are scaled by speed.
 *    It lasts `duration_ms`, or with 0 until the end of the next downtime (repair or
 *    maintenance) that begins after it started. Speed 1 restores nominal speed. A newer
 *    slow-down replaces a pending one, and once started replaces the running one.
 * Downtime is accounted per cause in device ms: an episode counts from the time the device
 * went down (a failure's step, a maintenance's start) to its planned end; one still running
 * counts up to the last step (devsim_asset_downtime).
 *
 * Everything depends only on the seed, the asset id, the sequence of timestamps given to
 * devsim_asset_step and the commands given between steps: the same inputs give the same
 * values, bit for bit.
 *
 * Threads: an asset is used by one thread at a time.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "twin/model.h"
#include "twin/rng.h"

struct devsim_gen_config {
    uint64_t seed;
    int64_t period_ms; /* sampling period: turns a season_samples hint into a duration */
    bool faults;       /* wear, failures, glitches */
    bool head_start;   /* see above; only with faults */
};

/* How one signal behaves; derived from its tw_model_signal. */
struct devsim_profile {
    const char *name; /* the model's */
    double base, headroom;
    double cycle_amp, cycle_ms; /* the season cycle (cycle_ms 0: none) */
    double daily_amp;           /* weak daily cycle of signals without a season */
    double phase;               /* radians, per asset and signal */
    double noise_sd;
    double drift, drift_sd; /* bounded random walk, ±0.1 headroom */
    double wear_span;       /* (warn.above - base): added per unit of wear; 0: not a wear signal */
    double wear_alarm;      /* wear at which the base reaches the alarm limit */
    bool activity;          /* drops to idle_level while the device is down */
    bool rate;              /* a production rate: scaled by the speed */
    double idle_level;
    bool non_negative;
};

enum devsim_down_cause { DEVSIM_DOWN_FAILURE, DEVSIM_DOWN_MAINTENANCE };

/* A command waiting for its start: asap starts it at the next step. */
struct devsim_pending {
    bool set, asap;
    int64_t start_ms, duration_ms;
    double speed; /* slow-downs */
};

struct devsim_asset {
    const char *id; /* not owned */
    size_t n;       /* signals */
    struct devsim_profile *prof;
    struct tw_rng rng;
    bool faults;
    double wear, wear_rate_per_ms;
    /* A life runs from one renewal (repair or maintenance) to the next. Its draws come from
     * their own stream, all at its start, so that two runs that differ only in the commands a
     * machine obeyed meet the same lives in the same order (common random numbers: the paired
     * comparisons of tests and benchmarks see the commands' effect, not the luck of the draw). */
    struct tw_rng life_rng;
    double life_hazard;     /* cumulative hazard since the renewal */
    double life_threshold;  /* it fails when life_hazard reaches this, an Exp(1) draw */
    int64_t life_repair_ms; /* how long its repair takes if it fails */
    double life_next_wear;  /* the wear it starts the next life with */
    bool down;
    enum devsim_down_cause down_cause;
    int64_t down_since_ms, down_until_ms;
    int64_t last_ts_ms; /* INT64_MIN before the first step */
    bool head_start;    /* the demo's head start is still to come or running */
    struct devsim_pending maint, slow;
    double speed;          /* fraction of nominal, (0, 1]; 1 unless slowed */
    int64_t slow_until_ms; /* 0: until the end of the next downtime begun after slow_downs */
    uint64_t slow_downs;   /* failures + maintenances when the slow-down started */
    /* counts and completed downtime (device ms), for metrics, reports and tests */
    uint64_t failures, repairs, glitches, maintenances, maintenances_skipped;
    int64_t downtime_failure_ms, downtime_maintenance_ms;
};

/* Sets up asset `id` (kept by pointer) of `kind`. head_start_target: this asset gets the
 * demo's head start (see devsim_head_start_index). Returns 0 or TW_ENOMEM; free with
 * devsim_asset_free. */
int devsim_asset_init(struct devsim_asset *a, const char *id, const struct tw_model_kind *kind,
                      const struct devsim_gen_config *cfg, bool head_start_target);
void devsim_asset_free(struct devsim_asset *a);

/* Index of the asset of m that gets the demo's head start, or SIZE_MAX when none has a wear
 * signal. */
size_t devsim_head_start_index(const struct tw_model *m);

/* The device's reading at device time ts_ms (not older than the previous one): one finite
 * value per signal into out[a->n], in the kind's signal order. */
void devsim_asset_step(struct devsim_asset *a, int64_t ts_ms, double *out);

/* Plans a maintenance over [start_ms, start_ms + duration_ms) of device time (start_ms 0 or
 * not after the last step: from the next step). duration_ms > 0. Replaces a pending one. */
void devsim_asset_maintain(struct devsim_asset *a, int64_t start_ms, int64_t duration_ms);

/* Plans a slow-down to speed (0, 1] from start_ms (same rule) for duration_ms (0: until the
 * end of the next downtime). Speed 1 restores nominal speed. Replaces a pending one. */
void devsim_asset_slow(struct devsim_asset *a, int64_t start_ms, double speed, int64_t duration_ms);

/* Downtime by cause in device ms: completed episodes plus a running one up to the last step. */
void devsim_asset_downtime(const struct devsim_asset *a, int64_t *failure_ms,
                           int64_t *maintenance_ms);

/* The kind load mode gives every asset: four signals (current, pressure, temperature,
 * vibration) with limits. Static. */
const struct tw_model_kind *devsim_load_kind(void);

/* Whether a signal name measures wear / activity (see above). */
bool devsim_is_wear_signal(const char *name);
bool devsim_is_activity_signal(const char *name);

#endif
