/* SPDX-License-Identifier: Apache-2.0 */
/* The layout of one signal's forecaster state, shared by the engine's source files. */
#ifndef PRED_ENGINE_INTERNAL_H
#define PRED_ENGINE_INTERNAL_H

#include <math.h>

#include "engine.h"

/* The bank. Two variants of each Holt-Winters family run side by side: the incumbent (A) and
 * a challenger (B) one search step away; see duel_step in bank.c. Models PM_NAIVE .. PM_HWM_B
 * are struct pred_es; without a season the additive pair is Holt's damped trend and the
 * multiplicative pair is not used. PM_AR is the autoregression, or, for a signal whose plant
 * model declares physics (pred_config.physics), the grey-box model, whose residual has an
 * autoregression of its own: it takes the AR's place (and memory). */
enum pred_model_id { PM_NAIVE, PM_SNAIVE, PM_HWA_A, PM_HWA_B, PM_HWM_A, PM_HWM_B, PM_AR, PM_COUNT };

#define PRED_N_SMOOTH          PM_AR
#define PRED_N_HW              4u /* PM_HWA_A .. PM_HWM_B keep a season each */
#define PRED_FAMILIES          2u /* Holt-Winters additive, multiplicative: A and B each */
#define PRED_RING              6u /* pending long-horizon forecasts per model */
#define PRED_DT_LEARN          5u /* intervals whose median becomes the step */
#define PRED_STATE_VERSION     2u /* 2: the grey-box model */
#define PRED_MIN_LONG_RECORD   3u /* long-horizon forecasts scored before that record counts */
#define PRED_MAX_SEASON_STEPS  10000000u
#define PRED_MAX_HORIZON_STEPS 1000000u
#define PRED_MAX_STEP_MS       (400LL * 24 * 3600 * 1000) /* a step longer than a year is no series */
#define PRED_MAX_TS_MS         (1LL << 60)
#define PRED_SEARCH_STEP_START 0.6 /* parameter search: logit step, start and bounds */
#define PRED_SEARCH_STEP_MIN   0.1
#define PRED_SEARCH_STEP_MAX   1.2

/* One model's record: exponentially weighted errors of its one-step forecasts (and of the
 * naive forecast at the same points, for MASE) and of its forecasts PRED's scoring horizon
 * ahead. Errors are clipped at 6 robust standard deviations so that one outlier cannot decide
 * the champion. */
struct pred_record {
    float abs1, sq1, naive1;
    float absh, sqh;
    uint32_t n1, nh;
    float ring[PRED_RING]; /* forecasts waiting for their target; NAN: none */
};

struct pred_signal {
    uint32_t version;
    uint32_t n_dt; /* intervals in dt (time grid) */
    struct pred_config cfg;

    /* time grid */
    int64_t step_ms;
    int64_t last_ts_ms;
    int64_t dt[PRED_DT_LEARN];
    uint64_t t;      /* grid step of the last observation (0 = the first) */
    uint64_t n_obs;  /* observations learnt */
    double last_x;   /* the last observation as learnt (after robust clipping) */
    double last_raw; /* the last observation as seen */

    /* season and horizons */
    struct pred_season se;
    uint32_t horizon_steps; /* forecast horizon */
    uint32_t h_score;       /* horizon at which the long-horizon record is kept */
    uint32_t ring_every;    /* a long-horizon forecast is recorded every so many steps */

    /* the bank */
    uint32_t live; /* bit per model: started */
    struct pred_es es[PRED_N_SMOOTH];
    double snaive_s[PRED_SEASON_POINTS];
    /* Until the Holt-Winters models start, their seasons hold the warm-up sums of the first
     * two seasons (hw_s[0..1] per seasonal value) and counts (hw_s[2..3]). */
    double hw_s[PRED_N_HW][PRED_SEASON_POINTS];
    union {
        struct pred_ar ar;     /* no physics */
        struct pred_grey grey; /* physics (pred_is_grey) */
    };
    struct pred_record rec[PM_COUNT];
    float duel_a[PRED_FAMILIES], duel_b[PRED_FAMILIES]; /* squared errors this duel */
    uint32_t duel_n[PRED_FAMILIES];
    float search_step[PRED_FAMILIES];  /* logit step of the parameter search */
    uint8_t search_dir[PRED_FAMILIES]; /* parameter and sign tried next */
    uint8_t search_misses[PRED_FAMILIES];
    uint8_t champion1;   /* best one-step record */
    uint8_t championh;   /* best record at h_score */
    bool warm_done;      /* Holt-Winters started (or cannot be) */
    bool season_guessed; /* the season is a guess from the step, to be confirmed */

    /* intervals */
    double z;                /* interval multiplier, adapted to hit 95 % coverage */
    double pend_lo, pend_hi; /* the published one-step interval for the next step */
    uint64_t n_cov;          /* observations scored for coverage */
    float cov_ew;
    bool pend_valid;

    /* anomaly */
    double cusum_pos, cusum_neg;
    double run_sum; /* sum of the observations in the run */
    uint64_t n_scored;
    uint32_t run_len;
    int32_t run_sign;
    uint32_t quiet;
    uint8_t anomaly; /* 0 none, else the severity raised */

    /* limits */
    uint8_t breach; /* 0, PRED_WARNING, PRED_CRITICAL */
    uint8_t fc;     /* threshold-forecast episode severity (0: none) */
    uint8_t fc_hits, fc_miss;
    uint32_t breach_inside; /* consecutive samples back inside */
    uint64_t next_check_t;
    float tokens; /* alert budget */
};

static inline bool pred_is_live(const struct pred_signal *s, unsigned id)
{
    return (s->live >> id) & 1u;
}

static inline bool pred_all_finite(const double *v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!isfinite(v[i]))
            return false;
    return true;
}

/* Whether the configuration declares a physical relation. */
static inline bool pred_has_physics(const struct pred_config *c)
{
    return c->physics.cycle_s > 0 || c->physics.drift > 0;
}

/* Whether model PM_AR is the grey-box model. */
static inline bool pred_is_grey(const struct pred_signal *s)
{
    return pred_has_physics(&s->cfg);
}

/* Weight of a new value in an exponentially weighted mean over about `window` points (an
 * equal-weight mean until there are that many). */
static inline float pred_ew_rate(uint32_t n, uint32_t window)
{
    return 1.0f / (float)(n < window ? n : window);
}

/* engine.c */
bool pred_config_valid(const struct pred_config *c);

/* bank.c: the models, their records, the champions and the parameter search. */
double pred_bank_forecast(const struct pred_signal *s, unsigned id, uint32_t h);
/* out[i] = pred_bank_forecast(s, id, h[i]), h ascending (see pred_ar_path). */
void pred_bank_path(const struct pred_signal *s, unsigned id, const uint32_t *h, size_t n,
                    double *out);
double pred_sigma1(const struct pred_signal *s);
/* Scores every live model's one-step forecast of x (made from the last step), errors clipped
 * at lim, and runs the parameter duels. Returns the champion's error x - forecast. */
double pred_bank_score(struct pred_signal *s, double x, double lim);
/* After learning step t: scores the long-horizon forecasts that targeted t and records new
 * ones when t is a recording step. */
void pred_bank_record_long(struct pred_signal *s, double x, double lim);
void pred_bank_pick_champions(struct pred_signal *s);
/* Restarts any model whose forecast ran away from x. */
void pred_bank_sanitise(struct pred_signal *s, double x);
/* A confirmed level shift: moves every model whose one-step forecast is more than min_gap from
 * `level` so that it is `level`, and drops the pending long-horizon forecasts. Returns false
 * (and changes nothing) when min_gap > 0 and no model was that far. */
bool pred_bank_relevel(struct pred_signal *s, double level, double min_gap);

/* Family f's incumbent becomes model e with its season (a batch fit, refit.c); its record is
 * kept and the parameter search starts again from there. */
void pred_bank_refit(struct pred_signal *s, unsigned f, const struct pred_es *e,
                     const double *season);

/* alerts.c: anomaly and limits, called by pred_signal_observe. `e1` is the champion's
 * one-step error (NAN when there was none); returns the value the models should learn. */
double pred_alert_anomaly(struct pred_signal *s, int64_t ts_ms, double x, double e1,
                          struct pred_event *ev, size_t *n_ev);
void pred_alert_breach(struct pred_signal *s, int64_t ts_ms, double x, struct pred_event *ev,
                       size_t *n_ev);
void pred_alert_forecast(struct pred_signal *s, int64_t ts_ms, struct pred_event *ev, size_t *n_ev);

#endif
