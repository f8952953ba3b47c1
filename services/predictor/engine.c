/* SPDX-License-Identifier: Apache-2.0 */
/* One signal's forecaster: time grid, warm-up and start of the models, one observation's path
 * through scoring, alerts and learning, and forecast paths with intervals. */
#include <float.h>
#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "engine_internal.h"
#include "twin/err.h"

#define DEFAULT_HORIZON_STEPS 24u
#define Z_START               1.96
#define Z_RATE                0.15 /* adaptive-conformal step, in units of Z_START */

static const char *const model_names[PM_COUNT] = {
    "naive", "snaive", "hw_add", "hw_add", "hw_mult", "hw_mult", "ar",
};

/* Starting parameters (alpha, beta, gamma, phi) of each smoothing model. */
static const double start_params[PRED_N_SMOOTH][4] = {
    {1.0, 0.0, 0.0, 1.0},   /* naive: the last value */
    {0.0, 0.0, 1.0, 1.0},   /* seasonal naive: the last season (level 0, gamma 1) */
    {0.3, 0.1, 0.1, 1.0},   /* Holt-Winters additive: R's optimiser start */
    {0.5, 0.02, 0.3, 0.98}, /* … damped, faster season */
    {0.3, 0.1, 0.1, 1.0},   /* Holt-Winters multiplicative */
    {0.5, 0.02, 0.3, 0.98},
};

size_t pred_signal_size(void)
{
    return sizeof(struct pred_signal);
}

/* No physics at all, or a cycle and/or a drift with a memory, each within a year or so. */
static bool physics_valid(const struct pred_grey_spec *p)
{
    if (p->cycle_s == 0 && p->drift == 0)
        return p->memory_s == 0;
    return p->cycle_s <= PRED_MAX_STEP_MS / 1000 && p->drift <= 2 && p->memory_s > 0 &&
           p->memory_s <= PRED_MAX_STEP_MS / 1000;
}

bool pred_config_valid(const struct pred_config *c)
{
    return c->step_ms >= 0 && c->step_ms <= PRED_MAX_STEP_MS && c->season_ms >= 0 &&
           c->season_samples <= PRED_MAX_SEASON_STEPS && c->horizon_ms >= 0 &&
           c->horizon_steps <= PRED_MAX_HORIZON_STEPS && c->n_points >= 1 &&
           c->n_points <= PRED_MAX_POINTS && physics_valid(&c->physics);
}

/* Whether the smoothing pairs run without a season: when the signal has none, and also while a
 * guessed season waits for its two seasons to be confirmed (a day of minute samples is two days
 * of warm-up: a signal that may have no season at all must not go that long without a trend).
 * The additive pair is then Holt's damped trend, its parameters searched on one-step errors; the
 * multiplicative pair, which needs a season, is Holt's linear trend smoothed over the forecast
 * horizon (see signal_set_slow_params). Their seasons play no part (PRED_ES_NONE): during a
 * warm-up hw_s holds the warm-up sums. */
static bool signal_holt_mode(const struct pred_signal *s)
{
    return s->se.m == 0 || (s->season_guessed && !s->warm_done);
}

/* The slow pair forecasts what a steady drift (a filter loading, a bearing wearing) does over the
 * horizon: Brown's linear smoothing, which is a linear regression on the recent past weighted
 * by a discount of 1 − a; as Holt, alpha = a(2 − a), beta = a / (2 − a), no damping. The
 * regression spans about the scoring horizon (a = 2 / (h + 1)), and twice it for B. One-step
 * errors say nothing about how well a trend extrapolates hours ahead, so these parameters are
 * not searched: the long-horizon record decides whether the path follows them. */
static void signal_set_slow_params(struct pred_signal *s)
{
    for (unsigned k = 0; k < 2; k++) {
        double a = 2.0 / ((double)s->h_score * (k + 1) + 1.0);
        pred_es_set_params(&s->es[PM_HWM_A + k], &s->se, a * (2.0 - a), a / (2.0 - a), 0.0, 1.0);
    }
}

/* Holt's parameters for the additive pair of a signal without a season: one damped, one fast. */
static void signal_set_holt_params(struct pred_signal *s)
{
    pred_es_set_params(&s->es[PM_HWA_A], &s->se, 0.3, 0.05, 0.0, 0.98);
    pred_es_set_params(&s->es[PM_HWA_B], &s->se, 0.8, 0.1, 0.0, 1.0);
}

/* Season and horizons in steps, once the step is known. */
static void signal_set_horizons(struct pred_signal *s)
{
    uint32_t h = s->cfg.horizon_steps;
    if (h == 0 && s->cfg.horizon_ms > 0 && s->step_ms > 0)
        h = (uint32_t)llabs((s->cfg.horizon_ms + s->step_ms / 2) / s->step_ms);
    if (h == 0)
        h = DEFAULT_HORIZON_STEPS;
    if (h > PRED_MAX_HORIZON_STEPS)
        h = PRED_MAX_HORIZON_STEPS;
    s->horizon_steps = h;
    /* The long-horizon record is kept at the horizon, but never beyond one and a half seasons (not
     * a whole number of seasons: there the naive forecast is the seasonal one in disguise): a
     * record that far out would take too long to build. */
    uint32_t hs = h;
    if (s->se.m > 0 && hs > s->se.m + s->se.m / 2)
        hs = s->se.m + s->se.m / 2;
    s->h_score = hs < 2 ? 2 : hs;
    s->ring_every = (s->h_score + PRED_RING - 1) / PRED_RING;
    if (s->es[PM_HWM_A].season == PRED_ES_NONE) /* the slow Holt pair spans the horizon */
        signal_set_slow_params(s);
}

#define HOUR_MS (3600LL * 1000)
#define DAY_MS  (24 * HOUR_MS)

/* Without a hint, the season a signal sampled this often would most likely have: a day for
 * steps up to an hour, a week for steps up to a day, a year of months or quarters. Whether it
 * is really there is tested once two seasons are seen (signal_keep_season). */
static uint32_t season_guess(int64_t step_ms)
{
    if (step_ms <= 0)
        return 0;
    if (step_ms <= HOUR_MS)
        return (uint32_t)((DAY_MS + step_ms / 2) / step_ms);
    if (step_ms <= DAY_MS)
        return (uint32_t)((7 * DAY_MS + step_ms / 2) / step_ms);
    if (step_ms >= 25 * DAY_MS && step_ms <= 35 * DAY_MS)
        return 12;
    if (step_ms >= 80 * DAY_MS && step_ms <= 100 * DAY_MS)
        return 4;
    return 0;
}

static void signal_set_season(struct pred_signal *s)
{
    uint32_t m = s->cfg.season_samples;
    if (m == 0 && s->cfg.season_ms > 0 && s->step_ms > 0)
        m = (uint32_t)((s->cfg.season_ms + s->step_ms / 2) / s->step_ms);
    s->season_guessed = m == 0 && s->cfg.detect_season;
    if (s->season_guessed)
        m = season_guess(s->step_ms);
    if (m < 2 || m > PRED_MAX_SEASON_STEPS)
        m = 0;
    pred_season_init(&s->se, m);
    for (unsigned i = 0; i < PRED_N_SMOOTH; i++)
        pred_es_set_params(&s->es[i], &s->se, start_params[i][0], start_params[i][1],
                           start_params[i][2], start_params[i][3]);
    if (signal_holt_mode(s)) /* the additive pair is Holt */
        signal_set_holt_params(s);
    /* Seasonal naive: the last season exactly, or with a long season a season-long average
     * around each seasonal value (one sample would be noise). */
    if (s->se.m > s->se.nbins)
        pred_es_set_params(&s->es[PM_SNAIVE], &s->se, 0.0, 0.0, 0.95, 1.0);
}

int pred_signal_init(struct pred_signal *s, const struct pred_config *cfg)
{
    if (!pred_config_valid(cfg))
        return TW_EINVAL;
    memset(s, 0, sizeof(*s));
    s->version = PRED_STATE_VERSION;
    s->cfg = *cfg;
    s->step_ms = cfg->step_ms;
    s->z = Z_START;
    s->tokens = 5.0f;
    for (unsigned f = 0; f < PRED_FAMILIES; f++)
        s->search_step[f] = (float)PRED_SEARCH_STEP_START;
    static const uint8_t season_of[PRED_N_SMOOTH] = {
        PRED_ES_NONE, PRED_ES_ADD, PRED_ES_ADD, PRED_ES_ADD, PRED_ES_MULT, PRED_ES_MULT,
    };
    for (unsigned i = 0; i < PRED_N_SMOOTH; i++)
        s->es[i].season = season_of[i];
    for (unsigned i = 0; i < PM_COUNT; i++)
        for (unsigned k = 0; k < PRED_RING; k++)
            s->rec[i].ring[k] = NAN;
    signal_set_season(s);
    signal_set_horizons(s);
    return 0;
}

static void signal_start_missing_pairs(struct pred_signal *s);

int pred_signal_reconfigure(struct pred_signal *s, const struct pred_config *cfg)
{
    if (!pred_config_valid(cfg))
        return TW_EINVAL;
    struct pred_config keep = s->cfg;
    s->cfg = *cfg;
    /* What the state was learnt on stays: step and season. */
    s->cfg.step_ms = keep.step_ms;
    s->cfg.season_ms = keep.season_ms;
    s->cfg.season_samples = keep.season_samples;
    s->cfg.detect_season = keep.detect_season;
    /* Another relation (or none): model PM_AR starts again, as the grey-box model or the
     * autoregression, at the next observation. */
    if (memcmp(&keep.physics, &cfg->physics, sizeof(cfg->physics)) != 0) {
        s->live &= ~(1u << PM_AR);
        memset(&s->ar, 0, sizeof(s->ar) > sizeof(s->grey) ? sizeof(s->ar) : sizeof(s->grey));
        memset(&s->rec[PM_AR], 0, offsetof(struct pred_record, ring));
        for (unsigned k = 0; k < PRED_RING; k++)
            s->rec[PM_AR].ring[k] = NAN;
        if (s->champion1 == PM_AR)
            s->champion1 = PM_NAIVE;
        if (s->championh == PM_AR)
            s->championh = s->champion1;
    }
    uint32_t old_hs = s->h_score;
    signal_set_horizons(s);
    if (s->h_score != old_hs) /* pending long forecasts were for another horizon */
        for (unsigned i = 0; i < PM_COUNT; i++) {
            s->rec[i].nh = 0;
            for (unsigned k = 0; k < PRED_RING; k++)
                s->rec[i].ring[k] = NAN;
        }
    signal_start_missing_pairs(s);
    return 0;
}

bool pred_signal_ready(const struct pred_signal *s)
{
    return s->n_obs >= 2 && s->step_ms > 0;
}

int64_t pred_signal_basis_ms(const struct pred_signal *s)
{
    return s->last_ts_ms;
}

/* ---- learning the step and starting models ------------------------------------------------ */

static void signal_start_holt_pair(struct pred_signal *s, double x0, double x1)
{
    signal_set_holt_params(s);
    for (unsigned id = PM_HWA_A; id <= PM_HWA_B; id++) {
        s->es[id].season = PRED_ES_NONE;
        pred_es_start_holt(&s->es[id], x0, x1);
        s->live |= 1u << id;
    }
}

/* The slow pair starts flat: one interval's difference is no slope for hours. */
static void signal_start_slow_pair(struct pred_signal *s, double x)
{
    for (unsigned id = PM_HWM_A; id <= PM_HWM_B; id++) {
        s->es[id].season = PRED_ES_NONE;
        pred_es_start_holt(&s->es[id], x, x);
        s->live |= 1u << id;
    }
    signal_set_slow_params(s);
}

static void signal_start_holt_pairs(struct pred_signal *s, double x0, double x1)
{
    signal_start_holt_pair(s, x0, x1);
    signal_start_slow_pair(s, x1);
}

/* A state saved by an engine that ran neither pair without a season while a guessed one warmed
 * up, nor the slow pair, gets them from the current value (same layout: no new version). */
static void signal_start_missing_pairs(struct pred_signal *s)
{
    if (!signal_holt_mode(s) || s->n_obs < 2)
        return;
    unsigned a = 1u << PM_HWA_A | 1u << PM_HWA_B, m = 1u << PM_HWM_A | 1u << PM_HWM_B;
    if ((s->live & a) != a) {
        for (unsigned id = PM_HWA_A; id <= PM_HWA_B; id++)
            memset(&s->rec[id], 0, offsetof(struct pred_record, ring));
        signal_start_holt_pair(s, s->last_x, s->last_x);
    }
    if ((s->live & m) != m || s->es[PM_HWM_A].season != PRED_ES_NONE) {
        for (unsigned id = PM_HWM_A; id <= PM_HWM_B; id++)
            memset(&s->rec[id], 0, offsetof(struct pred_record, ring));
        signal_start_slow_pair(s, s->last_x);
    }
}

/* The seasonal forms of the pairs, as signal_init set them. */
static void signal_pairs_seasonal(struct pred_signal *s)
{
    for (unsigned id = PM_HWA_A; id <= PM_HWM_B; id++) {
        s->es[id].season = id >= PM_HWM_A ? PRED_ES_MULT : PRED_ES_ADD;
        pred_es_set_params(&s->es[id], &s->se, start_params[id][0], start_params[id][1],
                           start_params[id][2], start_params[id][3]);
    }
}

/* A guessed season is confirmed: the pairs leave their Holt warm-up for Holt-Winters, with R's
 * start parameters, no record and a new parameter search (what Holt learnt says nothing about
 * the seasonal forms). */
static void signal_end_holt_warmup(struct pred_signal *s)
{
    signal_pairs_seasonal(s);
    for (unsigned id = PM_HWA_A; id <= PM_HWM_B; id++) {
        memset(&s->rec[id], 0, offsetof(struct pred_record, ring));
        for (unsigned k = 0; k < PRED_RING; k++)
            s->rec[id].ring[k] = NAN;
    }
    s->live &= ~(1u << PM_HWA_A | 1u << PM_HWA_B | 1u << PM_HWM_A | 1u << PM_HWM_B);
    for (unsigned f = 0; f < PRED_FAMILIES; f++) {
        s->duel_a[f] = s->duel_b[f] = 0;
        s->duel_n[f] = 0;
        s->search_step[f] = (float)PRED_SEARCH_STEP_START;
        s->search_dir[f] = 0;
        s->search_misses[f] = 0;
    }
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

static void warm_add(struct pred_signal *s, uint64_t t, double x);

/* The step is the first interval until PRED_DT_LEARN intervals give a median (robust to one
 * odd interval); if that changes the season's length, the warm-up starts again. */
static void signal_learn_step(struct pred_signal *s, int64_t dt)
{
    s->dt[s->n_dt++] = dt;
    int64_t step = dt;
    if (s->n_dt == PRED_DT_LEARN) {
        int64_t sorted[PRED_DT_LEARN];
        memcpy(sorted, s->dt, sizeof(sorted));
        qsort(sorted, PRED_DT_LEARN, sizeof(sorted[0]), cmp_i64);
        step = sorted[PRED_DT_LEARN / 2];
    } else if (s->n_dt > 1) {
        return;
    }
    s->step_ms = step < PRED_MAX_STEP_MS ? step : PRED_MAX_STEP_MS;
    uint32_t m_before = s->se.m;
    signal_set_season(s);
    signal_set_horizons(s);
    if (s->se.m != m_before) { /* the smoothing pair ran on another season (or as Holt) */
        s->live &= ~(1u << PM_HWA_A | 1u << PM_HWA_B | 1u << PM_HWM_A | 1u << PM_HWM_B);
        signal_pairs_seasonal(s);
        if (signal_holt_mode(s) && s->n_obs >= 2) /* no season (yet): the pairs are Holt */
            signal_start_holt_pairs(s, s->last_x, s->last_x);
        memset(s->hw_s, 0, sizeof(s->hw_s));
        for (unsigned id = PM_HWA_A; id <= PM_HWM_B; id++)
            memset(&s->rec[id], 0, offsetof(struct pred_record, ring));
        if (s->n_obs == 1) /* the first value came before the season was known */
            warm_add(s, 0, s->last_x);
    }
}

/* Warm-up sums per seasonal value over the first two seasons (see engine_internal.h). */
static double *warm_sum(struct pred_signal *s)
{
    return &s->hw_s[0][0];
}

static double *warm_cnt(struct pred_signal *s)
{
    return &s->hw_s[2][0];
}

static void warm_add(struct pred_signal *s, uint64_t t, double x)
{
    if (s->warm_done || s->se.m == 0 || t >= 2ull * s->se.m)
        return;
    uint32_t bin = (uint32_t)((double)t / s->se.per_bin);
    if (bin >= 2 * s->se.nbins)
        bin = 2 * s->se.nbins - 1;
    warm_sum(s)[bin] += x;
    warm_cnt(s)[bin] += 1.0;
}

/* The seasonal value means of warm-up stretch `from` .. from + nbins; a stretch without data
 * takes its neighbour's. Returns false when no data at all. */
static bool warm_means(struct pred_signal *s, uint32_t from, uint32_t count, double *out)
{
    double last = NAN;
    for (uint32_t i = 0; i < count; i++) {
        double c = warm_cnt(s)[from + i];
        out[i] = c > 0 ? warm_sum(s)[from + i] / c : last;
        last = out[i];
    }
    for (uint32_t i = count; i-- > 0;) /* leading gaps take the first value seen */
        if (isnan(out[i]))
            out[i] = i + 1 < count ? out[i + 1] : NAN;
    return !isnan(out[0]);
}

static void signal_start_snaive(struct pred_signal *s)
{
    double first[PRED_SEASON_POINTS];
    if (!warm_means(s, 0, s->se.nbins, first))
        return;
    memcpy(s->snaive_s, first, s->se.nbins * sizeof(double));
    s->es[PM_SNAIVE].level = 0;
    s->es[PM_SNAIVE].trended = false;
    s->live |= 1u << PM_SNAIVE;
}

/* After two seasons: start the Holt-Winters models from R's decomposition and, with one value
 * per step, filter the second season through them as R does. */
/* A guessed season is kept when the two seasons seen repeat each other: after removing a
 * straight line, the season-over-season differences must vary less than half as much as the
 * seasons themselves (1 − var(b − a) / (var(a) + var(b)) > 0.5, a correlation-like measure
 * that a trend or noise alone does not pass). */
static bool season_repeats(const double *x, uint32_t nb)
{
    double n = 2.0 * nb, sx = 0, sy = 0, sxx = 0, sxy = 0;
    for (uint32_t i = 0; i < 2 * nb; i++) {
        sx += i;
        sy += x[i];
        sxx += (double)i * i;
        sxy += i * x[i];
    }
    double slope = (n * sxy - sx * sy) / (n * sxx - sx * sx), icpt = (sy - slope * sx) / n;
    double ma = 0, mb = 0, md = 0, va = 0, vb = 0, vd = 0;
    for (uint32_t i = 0; i < nb; i++) {
        double a = x[i] - icpt - slope * i, b = x[nb + i] - icpt - slope * (nb + i);
        ma += a / nb, mb += b / nb, md += (b - a) / nb;
    }
    for (uint32_t i = 0; i < nb; i++) {
        double a = x[i] - icpt - slope * i, b = x[nb + i] - icpt - slope * (nb + i);
        va += (a - ma) * (a - ma), vb += (b - mb) * (b - mb);
        vd += (b - a - md) * (b - a - md);
    }
    return va + vb > 1e-12 * (fabs(sy / n) + 1e-300) && 1.0 - vd / (va + vb) > 0.5;
}

/* The guessed season is not there: the signal runs without one. The pairs have run as Holt
 * since the start (signal_holt_mode) and go on as they were. */
static void signal_drop_season(struct pred_signal *s)
{
    uint32_t old_hs = s->h_score;
    struct pred_es holt[4];
    memcpy(holt, &s->es[PM_HWA_A], sizeof(holt));
    uint32_t pairs = 1u << PM_HWA_A | 1u << PM_HWA_B | 1u << PM_HWM_A | 1u << PM_HWM_B;
    bool holt_live = (s->live & pairs) == pairs;
    s->cfg.detect_season = false; /* decided */
    s->season_guessed = false;
    signal_set_season(s);
    signal_set_horizons(s);
    memset(s->hw_s, 0, sizeof(s->hw_s));
    s->live &= ~(1u << PM_SNAIVE | pairs);
    memset(&s->rec[PM_SNAIVE], 0, offsetof(struct pred_record, ring));
    if (holt_live) {
        memcpy(&s->es[PM_HWA_A], holt, sizeof(holt));
        if (s->h_score != old_hs)
            signal_set_slow_params(s);
        s->live |= pairs;
    } else {
        for (unsigned id = PM_HWA_A; id <= PM_HWM_B; id++)
            memset(&s->rec[id], 0, offsetof(struct pred_record, ring));
        signal_start_holt_pairs(s, s->last_x, s->last_x);
    }
    for (unsigned id = 0; id < PM_COUNT; id++) {
        if (s->h_score != old_hs || !holt_live || !pred_is_live(s, id)) { /* another horizon */
            s->rec[id].nh = 0;
            for (unsigned k = 0; k < PRED_RING; k++)
                s->rec[id].ring[k] = NAN;
        }
    }
    if (!pred_is_live(s, s->champion1))
        s->champion1 = PM_NAIVE;
    if (!pred_is_live(s, s->championh) || s->rec[s->championh].nh < PRED_MIN_LONG_RECORD)
        s->championh = s->champion1;
}

static void signal_start_hw(struct pred_signal *s)
{
    uint32_t nb = s->se.nbins;
    double x[2 * PRED_SEASON_POINTS];
    s->warm_done = true;
    if (!warm_means(s, 0, 2 * nb, x))
        return;
    if (s->season_guessed && !season_repeats(x, nb)) {
        signal_drop_season(s);
        return;
    }
    if (s->season_guessed)
        signal_end_holt_warmup(s);
    double season[PRED_SEASON_POINTS];
    for (unsigned k = 0; k < PRED_N_HW; k++) {
        unsigned id = PM_HWA_A + k;
        struct pred_es *e = &s->es[id];
        if (!pred_es_start_seasonal(e, &s->se, season, x))
            continue;
        bool ok = true;
        double *dst = s->hw_s[k]; /* the warm-up sums are in x by now */
        memcpy(dst, season, nb * sizeof(double));
        if (nb == s->se.m)
            for (uint32_t t = nb; t < 2 * nb && ok; t++)
                ok = !isnan(pred_es_update(e, &s->se, dst, t, x[t]));
        if (ok)
            s->live |= 1u << id;
    }
}

/* Model PM_AR from two values learnt (prev, then x at ts_ms): the autoregression, or the
 * grey-box model, which needs only the last. */
static void signal_start_ar(struct pred_signal *s, double prev, double x, int64_t ts_ms)
{
    if (pred_is_grey(s)) {
        pred_grey_init(&s->grey, &s->cfg.physics, ts_ms, x);
    } else {
        double scale = fmax(fabs(x - prev), 1e-3 * fabs(prev));
        pred_ar_init(&s->ar, 0.995, 1e-2, prev, scale > 0 ? scale : 1.0);
        pred_ar_update(&s->ar, prev);
        pred_ar_update(&s->ar, x);
    }
    s->live |= 1u << PM_AR;
}

/* Starts what the observations so far allow; prev and x are the last two learnt values. */
static void signal_start_models(struct pred_signal *s, double prev, double x, int64_t ts_ms)
{
    if (s->n_obs == 1) {
        pred_es_start_level(&s->es[PM_NAIVE], x);
        s->live |= 1u << PM_NAIVE;
        return;
    }
    if (s->n_obs == 2) {
        if (signal_holt_mode(s))
            signal_start_holt_pairs(s, prev, x);
        signal_start_ar(s, prev, x, ts_ms);
    }
    if (s->se.m > 0 && s->t + 1 == s->se.m && !pred_is_live(s, PM_SNAIVE))
        signal_start_snaive(s);
    if (s->se.m > 0 && !s->warm_done && s->t + 1 >= 2ull * s->se.m)
        signal_start_hw(s);
}

/* ---- one observation ---------------------------------------------------------------------- */

static void signal_cover(struct pred_signal *s, double x)
{
    if (!s->pend_valid)
        return;
    bool in = x >= s->pend_lo && x <= s->pend_hi;
    s->n_cov++;
    s->cov_ew += pred_ew_rate((uint32_t)(s->n_cov < 1000 ? s->n_cov : 1000), 1000) *
                 ((in ? 1.0f : 0.0f) - s->cov_ew);
    /* Adaptive conformal inference (Gibbs & Candès 2021): widen after a miss, narrow a little
     * after a hit, so that the long-run share of misses is 5 %. */
    s->z += Z_RATE * Z_START * ((in ? 0.0 : 1.0) - 0.05);
    s->z = fmin(fmax(s->z, 0.5), 8.0);
}

/* During an anomaly the seasons are not learnt (an outage must not become part of the daily
 * shape); levels and trends are, from the robustly clipped value. Model PM_AR, stopped when the
 * signal's physics changed, starts again here. */
static void signal_learn(struct pred_signal *s, int64_t ts_ms, double x)
{
    for (unsigned id = 0; id < PRED_N_SMOOTH; id++) {
        if (!pred_is_live(s, id) || (id == PM_SNAIVE && s->anomaly))
            continue;
        double *season = id == PM_SNAIVE  ? s->snaive_s
                         : id >= PM_HWA_A ? s->hw_s[id - PM_HWA_A]
                                          : NULL;
        float gamma_step = s->es[id].gamma_step;
        if (s->anomaly)
            s->es[id].gamma_step = 0.0f;
        double xhat = pred_es_update(&s->es[id], &s->se, season, s->t, x);
        s->es[id].gamma_step = gamma_step;
        if (isnan(xhat))
            s->live &= ~(1u << id); /* multiplicative model met a value <= 0 */
    }
    if (!pred_is_live(s, PM_AR)) {
        if (s->n_obs >= 2) /* not the start: the physics changed */
            signal_start_ar(s, s->last_x, x, ts_ms);
    } else if (pred_is_grey(s))
        pred_grey_update(&s->grey, &s->cfg.physics, ts_ms, x);
    else
        pred_ar_update(&s->ar, x);
}

/* Carries the bank over `missing` steps that had no observation. */
static void signal_bridge(struct pred_signal *s, uint64_t missing)
{
    if (missing > PRED_MAX_GAP_STEPS) {
        s->t += missing;
        s->pend_valid = false;
        return;
    }
    for (uint64_t k = 0; k < missing; k++) {
        s->t++;
        double fill =
            pred_is_live(s, s->champion1) ? pred_bank_forecast(s, s->champion1, 1) : s->last_x;
        warm_add(s, s->t, fill);
        for (unsigned id = 0; id < PRED_N_SMOOTH; id++)
            if (pred_is_live(s, id))
                pred_es_skip(&s->es[id]);
        if (pred_is_live(s, PM_AR) && pred_is_grey(s))
            pred_grey_skip(&s->grey, &s->cfg.physics, s->step_ms);
        else if (pred_is_live(s, PM_AR))
            pred_ar_skip(&s->ar);
        if (s->se.m > 0 && !s->warm_done && s->t + 1 >= 2ull * s->se.m)
            signal_start_hw(s);
    }
    s->pend_valid = false;
}

/* The published one-step interval for the step after this one (for coverage). */
static void signal_pend_interval(struct pred_signal *s)
{
    double sd = pred_sigma1(s);
    double f = pred_bank_forecast(s, s->champion1, 1);
    s->pend_valid = isfinite(sd) && isfinite(f) && s->rec[s->champion1].n1 >= 2 &&
                    isfinite(f - s->z * sd) && isfinite(f + s->z * sd);
    s->pend_lo = s->pend_valid ? f - s->z * sd : 0.0;
    s->pend_hi = s->pend_valid ? f + s->z * sd : 0.0;
}

/* Steps between the last observation and ts (0: not newer). */
static uint64_t signal_steps_to(struct pred_signal *s, int64_t ts_ms)
{
    int64_t dt = ts_ms - s->last_ts_ms;
    if (s->cfg.step_ms <= 0 && s->n_dt < PRED_DT_LEARN) {
        signal_learn_step(s, dt);
        return 1;
    }
    if (s->step_ms <= 0 || 2 * dt < 3 * s->step_ms)
        return 1;
    return (uint64_t)((dt + s->step_ms / 2) / s->step_ms);
}

size_t pred_signal_observe(struct pred_signal *s, int64_t ts_ms, double x,
                           struct pred_event ev[PRED_MAX_EVENTS])
{
    size_t n_ev = 0;
    /* Times beyond ±2^60 ms (36 million years) are no device's: refusing them keeps every
     * interval arithmetic below overflow. */
    if (!isfinite(x) || ts_ms <= -PRED_MAX_TS_MS || ts_ms >= PRED_MAX_TS_MS ||
        (s->n_obs > 0 && ts_ms <= s->last_ts_ms))
        return 0;
    double prev = s->last_x;
    if (s->n_obs > 0) {
        uint64_t steps = signal_steps_to(s, ts_ms);
        if (steps > 1)
            signal_bridge(s, steps - 1);
        /* Forecasts are made from step t (the last learnt) for t + 1, the step of x. */
        double sd = pred_sigma1(s);
        double lim = s->n_scored >= 10 && sd > 0 ? 6.0 * sd : INFINITY;
        signal_cover(s, x);
        double e1 = pred_bank_score(s, x, lim);
        s->n_scored++;
        double learn = pred_alert_anomaly(s, ts_ms, x, e1, ev, &n_ev);
        s->t++;
        signal_learn(s, ts_ms, learn);
        pred_bank_sanitise(s, learn);
        pred_bank_record_long(s, x, lim);
        warm_add(s, s->t, learn);
        s->last_x = learn;
    } else {
        warm_add(s, 0, x);
        s->last_x = x;
    }
    s->n_obs++;
    signal_start_models(s, prev, s->last_x, ts_ms);
    s->last_raw = x;
    s->last_ts_ms = ts_ms;
    pred_bank_pick_champions(s);
    signal_pend_interval(s);
    pred_alert_breach(s, ts_ms, x, ev, &n_ev);
    pred_alert_forecast(s, ts_ms, ev, &n_ev);
    return n_ev;
}

/* ---- forecasts ---------------------------------------------------------------------------- */

/* Interval half-width growth with horizon: the measured ratio of long-horizon to one-step error
 * of the champion at h_score, as a power law in h (h^0.5, a random walk, until measured). */
static double growth_exponent(const struct pred_signal *s)
{
    const struct pred_record *r = &s->rec[s->championh];
    if (r->nh < PRED_MIN_LONG_RECORD || !(r->sq1 > 0) || s->h_score < 2)
        return 0.5;
    double k = 0.5 * log((double)r->sqh / (double)r->sq1) / log((double)s->h_score);
    return fmin(fmax(k, 0.0), 1.5);
}

size_t pred_signal_forecast(const struct pred_signal *s, struct pred_point *out, size_t cap)
{
    if (!pred_signal_ready(s) || cap == 0)
        return 0;
    uint32_t n = s->cfg.n_points < cap ? s->cfg.n_points : (uint32_t)cap;
    if (n > s->horizon_steps)
        n = s->horizon_steps;
    double sd1 = pred_sigma1(s);
    if (!isfinite(sd1))
        sd1 = fabs(s->last_x - s->last_raw);
    double kexp = growth_exponent(s);
    uint32_t hs[PRED_MAX_POINTS];
    double f1[PRED_MAX_POINTS], fh[PRED_MAX_POINTS];
    if (n > PRED_MAX_POINTS)
        n = PRED_MAX_POINTS;
    for (uint32_t i = 0; i < n; i++) {
        uint32_t h = (uint32_t)(((uint64_t)(i + 1) * s->horizon_steps + n / 2) / n);
        hs[i] = h ? h : 1;
    }
    pred_bank_path(s, s->champion1, hs, n, f1);
    if (s->championh == s->champion1)
        memcpy(fh, f1, n * sizeof(double));
    else
        pred_bank_path(s, s->championh, hs, n, fh);
    for (uint32_t i = 0; i < n; i++) {
        uint32_t h = hs[i];
        /* Near points follow the one-step champion, far ones the long-horizon champion. */
        double w = fmin(log((double)h) / log((double)s->h_score), 1.0);
        double mean = isfinite(fh[i]) ? (1.0 - w) * f1[i] + w * fh[i] : f1[i];
        if (!isfinite(mean)) /* an overflowing extrapolation: nothing better than the last */
            mean = s->last_x;
        double half = s->z * sd1 * pow((double)h, kexp);
        if (!isfinite(half))
            half = DBL_MAX;
        out[i].ts_ms = s->last_ts_ms + (int64_t)h * s->step_ms;
        out[i].mean = mean;
        out[i].lo = fmax(mean - half, -DBL_MAX);
        out[i].hi = fmin(mean + half, DBL_MAX);
    }
    return n;
}

unsigned pred_signal_models_running(const struct pred_signal *s)
{
    return (unsigned)__builtin_popcount(s->live);
}

const char *pred_signal_model(const struct pred_signal *s)
{
    unsigned id = s->champion1;
    if (id >= PM_HWA_A && id <= PM_HWM_B && (s->se.m == 0 || s->es[id].season == PRED_ES_NONE))
        return "holt";
    if (id == PM_AR && pred_is_grey(s))
        return "grey";
    return model_names[id];
}

void pred_signal_quality(const struct pred_signal *s, struct pred_quality *q)
{
    const struct pred_record *r = &s->rec[s->champion1];
    q->n = s->n_scored;
    q->mae = r->abs1;
    q->rmse = sqrt((double)r->sq1);
    q->mase = r->naive1 > 0 ? r->abs1 / r->naive1 : NAN;
    q->coverage = s->n_cov ? (double)s->cov_ew : NAN;
    q->n_covered = s->n_cov;
}
