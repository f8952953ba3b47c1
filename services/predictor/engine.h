/* SPDX-License-Identifier: Apache-2.0 */
/* One signal's online forecaster: a bank of models on a regular time grid, scored on their own
 * forecasts, with intervals, anomaly detection and limit forecasts. Pure: no I/O. */
#ifndef PRED_ENGINE_H
#define PRED_ENGINE_H

/*
 * How time is handled. Every signal is put on a regular grid whose step is the signal's
 * sampling period: given in the configuration, or learnt as the median of its first
 * intervals. A sample one step after the last one (anything from half a step to one and a
 * half steps: months of 28–31 days are all "one step") advances the grid by one; a longer
 * interval is a gap of round(interval / step) − 1 missing steps, which the models bridge with
 * their own forecasts (no learning, no scoring over a gap). A gap longer than
 * PRED_MAX_GAP_STEPS restarts the level (the seasonal state is kept). A sample not newer than
 * the last one is ignored (ingest republishes a state, or a late reading).
 *
 * Seasons: a season of m steps comes from the plant model (season or season_samples) or is
 * detected (see detect_season). With m <= PRED_SEASON_POINTS each step has its own seasonal value
 * (exactly as R's HoltWinters); a longer season (a daily cycle sampled every 10 s is 8640 steps) is
 * held as PRED_SEASON_POINTS values interpolated linearly around the cycle, which keeps every
 * signal's state a fixed, small size.
 *
 * Threads: a struct pred_signal is plain data owned by one thread at a time.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "models.h"
#include "twin/model.h"

#define PRED_MAX_GAP_STEPS  10000u
#define PRED_MAX_POINTS     256u /* forecast points per signal in one Prediction */
#define PRED_MAX_EVENTS     4u   /* alerts one observation can raise */
#define PRED_MODEL_NAME_MAX 24u

/* Settings of one signal. Zero means "not given" for every field but the limits. */
struct pred_config {
    int64_t step_ms;         /* sampling period; 0: learn it */
    int64_t season_ms;       /* season as a duration ("1d") */
    uint32_t season_samples; /* season as a number of steps; wins over season_ms */
    bool detect_season;      /* no hint: guess the season from the step (a day for steps up to
                              * an hour, a week up to a day, a year of months or quarters) and
                              * keep it only if the first two seasons repeat each other */
    bool has_limits;
    int64_t horizon_ms;     /* forecast horizon as a duration, or … */
    uint32_t horizon_steps; /* … as a number of steps (wins when non-zero); default 24 */
    uint32_t n_points;      /* forecast points over the horizon, 1..PRED_MAX_POINTS */
    /* A physical relation for the grey-box member (models.h, struct pred_grey): all zero when
     * none; otherwise a cycle and/or a drift, and the memory its parameters are fitted over. */
    struct pred_grey_spec physics;
    struct tw_model_limit warn;
    struct tw_model_limit alarm;
};

struct pred_point {
    int64_t ts_ms;
    double mean, lo, hi; /* 95 % interval */
};

/* The champion's record: one-step forecasts scored against what then happened, weighted
 * towards the recent past (see README "Predictor"). */
struct pred_quality {
    uint64_t n;         /* one-step forecasts scored for this signal, ever */
    double mae, rmse;   /* of the champion's one-step forecasts */
    double mase;        /* mae / MAE of the naive last-value forecast over the same points */
    double coverage;    /* share of observations inside the published 95 % one-step interval */
    uint64_t n_covered; /* observations scored for coverage, ever */
};

enum pred_alert_kind {
    PRED_ANOMALY = 1,
    PRED_THRESHOLD_FORECAST = 2,
    PRED_THRESHOLD_BREACH = 3,
    PRED_CLEARED = 4,
};

enum pred_severity { PRED_INFO = 1, PRED_WARNING = 2, PRED_CRITICAL = 3 };

/* An Alert to publish (field for field the wire message, minus the asset and signal). */
struct pred_event {
    enum pred_alert_kind kind;
    enum pred_severity severity;
    enum pred_alert_kind cleared; /* for PRED_CLEARED: the kind of episode that ended */
    int64_t ts_ms;
    int64_t eta_ms;
    double value;
    double threshold;
    char message[160];
};

struct pred_signal; /* defined in engine_internal.h; size pred_signal_size() */

/* Size of one signal's state in bytes (fixed; the whole state is one flat struct). */
size_t pred_signal_size(void);

/* Sets up a signal that has seen nothing yet. Returns 0 or TW_EINVAL (bad configuration). */
int pred_signal_init(struct pred_signal *s, const struct pred_config *cfg);

/* Applies new settings (limits, horizon, points) to a signal that may have history; the season
 * and step are kept once learnt. 0 or TW_EINVAL. */
int pred_signal_reconfigure(struct pred_signal *s, const struct pred_config *cfg);

/* Feeds one observation (device time, value). Non-finite values are ignored. Writes up to
 * PRED_MAX_EVENTS alerts into ev and returns how many. Returns 0 and learns nothing for a
 * sample not newer than the last one. */
size_t pred_signal_observe(struct pred_signal *s, int64_t ts_ms, double x,
                           struct pred_event ev[PRED_MAX_EVENTS]);

/* Whether the signal can forecast yet (it has seen at least two samples). */
bool pred_signal_ready(const struct pred_signal *s);

/* Device time of the newest observation used. */
int64_t pred_signal_basis_ms(const struct pred_signal *s);

/* Writes the forecast path (cfg n_points points over the horizon, each with its 95 %
 * interval) into out (capacity cap) and returns the number written (0 when not ready). */
size_t pred_signal_forecast(const struct pred_signal *s, struct pred_point *out, size_t cap);

/* How many models of the bank run for this signal (they all learn every observation). */
unsigned pred_signal_models_running(const struct pred_signal *s);

/* The champion's name ("naive", "snaive", "holt", "hw_add", "hw_mult", "ar", "grey") and
 * record. */
const char *pred_signal_model(const struct pred_signal *s);
void pred_signal_quality(const struct pred_signal *s, struct pred_quality *q);

/*
 * Batch refit of the Holt-Winters parameters (refit.c). The online search moves one parameter
 * per duel of two seasons; a series of a few seasons gives it too few duels to find, say, a
 * season that follows the data closely (gamma near 1). So, for a season of at most
 * PRED_SEASON_POINTS steps, the caller reads the signal's history when pred_signal_refit_due
 * (at the end of seasons 6 to 12, then of every power-of-two season) and hands it to
 * pred_signal_refit: each Holt-Winters family is fitted as R's HoltWinters fits (one-step SSE
 * over the history, at most the last 1024 steps), and where the fit beats the parameters held
 * on that history, the family takes the fitted parameters with the state they give at the last
 * step; its record stays, and its online search starts again from there. ts/x: the signal's
 * samples in the order they arrived (a history stream's order): as pred_signal_observe, the
 * refit skips one not newer than those before it. The last observation must be among them, no
 * anomaly may be under way and REFIT_FIRST (6) seasons must have passed; otherwise nothing
 * changes. Returns the number of families refitted (0 to 2) or TW_ENOMEM.
 */
bool pred_signal_refittable(const struct pred_signal *s);
bool pred_signal_refit_due(const struct pred_signal *s);
int pred_signal_refit(struct pred_signal *s, const int64_t *ts, const double *x, size_t n);

/* Persistence: the whole learnt state as a flat array of doubles (format version inside).
 * pred_signal_save writes at most cap values and returns the number needed. pred_signal_load
 * checks the version, sizes and every value (finite, in range) before accepting: 0, or
 * TW_EPROTO with s unchanged. The configuration is not part of the saved state: load, then
 * pred_signal_reconfigure with the current settings. */
size_t pred_signal_save(const struct pred_signal *s, double *out, size_t cap);
/* The layout version of the saved state (SignalModelState.format): a state of another version
 * or size is refused by pred_signal_load, and the signal starts fresh. */
uint32_t pred_signal_state_version(void);
int pred_signal_load(struct pred_signal *s, const struct pred_config *cfg, const double *in,
                     size_t n);

#endif
