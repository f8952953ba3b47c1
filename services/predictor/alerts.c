/* SPDX-License-Identifier: Apache-2.0 */
/* Alerts of one signal: anomalies on forecast residuals (CUSUM), observed limit breaches, and
 * limit crossings forecast within the horizon, each an episode with hysteresis. */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>

#include "engine_internal.h"

/* Anomaly: standardised one-step residual z = e / sigma, sigma from the champion's robust
 * error record. Two-sided CUSUM with allowance K and decision level H: a shift of 3 sigma is
 * flagged within 6 steps and one of 13 sigma at once, while independent Gaussian residuals
 * would raise a false alarm less than once in 10^8 steps. H is that high because real
 * residuals are not independent (a champion that misses part of a slow wander leaves runs of
 * same-sign residuals): with H = 8 the synthetic plant raised 1–2 false alarms per signal in
 * 14 days, with 12 none. */
#define CUSUM_K        1.0
#define CUSUM_H        12.0
#define CRITICAL_Z     12.0 /* |z| (or CUSUM / 4) that makes an anomaly critical */
#define LEARN_CLIP_Z   4.0  /* models learn at most this far from their forecast … */
#define SHIFT_RUN      5u   /* … unless this many residuals in a row say the level moved */
#define QUIET_TO_CLEAR 5u   /* steps back to normal before CLEARED */
#define MIN_SCORED     10u  /* residual scale trusted from here */
#define BREACH_CLEAR_N 3u   /* samples back inside the limits before CLEARED */
#define FC_RAISE_N     2u   /* consecutive checks forecasting a crossing before raising */
#define FC_CLEAR_N     3u   /* … and without one before CLEARED, at least */
#define TOKENS_MAX     5.0f /* alert budget: burst, and one more per TOKEN_STEPS steps */
#define TOKEN_STEPS    10.0f

static const char *const kind_words[] = {"", "anomaly", "forecast", "breach", "cleared"};
static const char *const severity_words[] = {"", "info", "warning", "critical"};

/* Raises an alert when the budget allows; CLEARED always passes (it ends an episode that was
 * reported). */
static bool emit(struct pred_signal *s, struct pred_event *ev, size_t *n_ev,
                 const struct pred_event *e)
{
    if (*n_ev >= PRED_MAX_EVENTS)
        return false;
    if (e->kind != PRED_CLEARED) {
        if (s->tokens < 1.0f)
            return false;
        s->tokens -= 1.0f;
    }
    ev[(*n_ev)++] = *e;
    return true;
}

static double robust_sigma(const struct pred_signal *s)
{
    /* Mean absolute error × sqrt(pi/2) estimates sigma for Gaussian errors, and the record's
     * clipping keeps one outlier from inflating it. A floor keeps a flat signal from turning
     * rounding noise into anomalies. */
    double mad = (double)s->rec[s->champion1].abs1 * 1.2533;
    double floor = 1e-9 + 1e-6 * fabs(s->last_x);
    return mad > floor ? mad : floor;
}

static void anomaly_clear(struct pred_signal *s, int64_t ts_ms, double x, struct pred_event *ev,
                          size_t *n_ev)
{
    struct pred_event e = {.kind = PRED_CLEARED,
                           .severity = PRED_INFO,
                           .cleared = PRED_ANOMALY,
                           .ts_ms = ts_ms,
                           .value = x};
    snprintf(e.message, sizeof(e.message), "anomaly over: residuals back within normal range");
    emit(s, ev, n_ev, &e);
    s->anomaly = 0;
}

static void anomaly_raise(struct pred_signal *s, int64_t ts_ms, double x, double z,
                          struct pred_event *ev, size_t *n_ev)
{
    double cus = fmax(s->cusum_pos, s->cusum_neg);
    uint8_t sev = fabs(z) >= CRITICAL_Z || cus >= 4 * CUSUM_H ? PRED_CRITICAL : PRED_WARNING;
    if (sev <= s->anomaly)
        return;
    struct pred_event e = {
        .kind = PRED_ANOMALY, .severity = sev, .ts_ms = ts_ms, .value = x, .threshold = CUSUM_H};
    snprintf(e.message, sizeof(e.message),
             "%s: value %.6g is %.1f sigma from forecast (cusum %.1f > %.1f, %s)",
             severity_words[sev], x, z, cus, CUSUM_H, z > 0 ? "above" : "below");
    if (emit(s, ev, n_ev, &e) || s->anomaly == 0)
        s->anomaly = sev;
}

/* Tracks a run of large same-sign residuals; after SHIFT_RUN of them the level has moved:
 * every model moves to the run's mean value and the CUSUM restarts. A fast champion can also
 * catch up with a step sooner, having learnt it 4 sigma at a time (an autoregression may in one
 * or two samples): the run then ends with the value still where the run's last one was. The
 * models that learnt the step only as far as the clipping let them, more than 4 sigma from it
 * still, move there too; otherwise a slow model would take the rest of the step for a trend.
 * A lone outlier, or a burst that ends with the value back where it was, is no step; nor is a
 * run after which every model already follows the data. */
static bool anomaly_level_shift(struct pred_signal *s, double x, double z, double sigma)
{
    int32_t sign = z > LEARN_CLIP_Z ? 1 : (z < -LEARN_CLIP_Z ? -1 : 0);
    if (sign == 0 || sign != s->run_sign) {
        bool caught_up =
            sign == 0 && s->run_len > 0 && fabs(x - s->last_raw) < LEARN_CLIP_Z * sigma;
        s->run_sign = sign;
        s->run_len = sign != 0;
        s->run_sum = sign != 0 ? x : 0.0;
        if (!caught_up || !pred_bank_relevel(s, x, LEARN_CLIP_Z * sigma))
            return false;
        s->cusum_pos = s->cusum_neg = 0;
        return true;
    }
    s->run_len++;
    s->run_sum += x;
    if (s->run_len < SHIFT_RUN)
        return false;
    pred_bank_relevel(s, s->run_sum / s->run_len, 0.0);
    s->run_len = 0;
    s->run_sum = 0;
    s->run_sign = 0;
    s->cusum_pos = s->cusum_neg = 0;
    return true;
}

double pred_alert_anomaly(struct pred_signal *s, int64_t ts_ms, double x, double e1,
                          struct pred_event *ev, size_t *n_ev)
{
    s->tokens = fminf(TOKENS_MAX, s->tokens + 1.0f / TOKEN_STEPS);
    if (!isfinite(e1) || s->n_scored < MIN_SCORED)
        return x;
    double sigma = robust_sigma(s);
    double z = e1 / sigma;
    s->cusum_pos = fmax(0.0, s->cusum_pos + z - CUSUM_K);
    s->cusum_neg = fmax(0.0, s->cusum_neg - z - CUSUM_K);
    if (fmax(s->cusum_pos, s->cusum_neg) > CUSUM_H) {
        anomaly_raise(s, ts_ms, x, z, ev, n_ev);
        s->quiet = 0;
    } else if (s->anomaly && fabs(z) < 3.0 && fmax(s->cusum_pos, s->cusum_neg) < CUSUM_H / 2) {
        if (++s->quiet >= QUIET_TO_CLEAR)
            anomaly_clear(s, ts_ms, x, ev, n_ev);
    } else {
        s->quiet = 0;
    }
    if (anomaly_level_shift(s, x, z, sigma))
        return x; /* the bank has moved to the new level: x is normal there */
    /* Robust update: an outlier teaches the models only as much as a 4-sigma residual. But a
     * value within that of the last one learnt, with the champion's forecast critically far
     * from both, is no outlier: the champion is what went wrong (an autoregression thrown by
     * a restart), and clipping towards its forecast would teach every model its mistake. */
    double lim = LEARN_CLIP_Z * sigma;
    if (fabs(x - s->last_x) <= lim && fabs(z) >= CRITICAL_Z)
        return x;
    return x - e1 + (e1 > lim ? lim : (e1 < -lim ? -lim : e1));
}

/* ---- limits ------------------------------------------------------------------------------- */

/* Severity of value v against the limits moved inwards by `band` (0 inside), and the limit
 * it is beyond. */
static uint8_t limit_level(const struct pred_config *c, double v, double band, double *limit)
{
    if (c->alarm.has_above && v > c->alarm.above - band)
        return *limit = c->alarm.above, PRED_CRITICAL;
    if (c->alarm.has_below && v < c->alarm.below + band)
        return *limit = c->alarm.below, PRED_CRITICAL;
    if (c->warn.has_above && v > c->warn.above - band)
        return *limit = c->warn.above, PRED_WARNING;
    if (c->warn.has_below && v < c->warn.below + band)
        return *limit = c->warn.below, PRED_WARNING;
    return 0;
}

void pred_alert_breach(struct pred_signal *s, int64_t ts_ms, double x, struct pred_event *ev,
                       size_t *n_ev)
{
    if (!s->cfg.has_limits)
        return;
    double limit = 0;
    uint8_t lvl = limit_level(&s->cfg, x, 0.0, &limit);
    /* Back inside means inside by a margin of noise (3 sigma), so that a signal hovering at
     * the limit makes one episode, not one per wobble. */
    double band = s->n_scored >= MIN_SCORED ? 3.0 * robust_sigma(s) : 0.0;
    double ignored;
    uint8_t lvl_band = limit_level(&s->cfg, x, band, &ignored);
    if (lvl > s->breach) {
        struct pred_event e = {.kind = PRED_THRESHOLD_BREACH,
                               .severity = lvl,
                               .ts_ms = ts_ms,
                               .value = x,
                               .threshold = limit};
        snprintf(e.message, sizeof(e.message), "%s limit %.6g crossed: value %.6g",
                 lvl == PRED_CRITICAL ? "alarm" : "warn", limit, x);
        if (emit(s, ev, n_ev, &e) || s->breach == 0)
            s->breach = lvl;
        s->breach_inside = 0;
    } else if (s->breach && lvl_band == 0) {
        if (++s->breach_inside >= BREACH_CLEAR_N) {
            struct pred_event e = {.kind = PRED_CLEARED,
                                   .severity = PRED_INFO,
                                   .cleared = PRED_THRESHOLD_BREACH,
                                   .ts_ms = ts_ms,
                                   .value = x};
            snprintf(e.message, sizeof(e.message), "back inside the limits: value %.6g", x);
            emit(s, ev, n_ev, &e);
            s->breach = 0;
        }
    } else {
        s->breach_inside = 0;
    }
}

/* First crossing of `limit` (direction: +1 above, −1 below) along the path, linearly
 * interpolated in time; INT64_MIN when the path stays inside. `which` picks mean, lo or hi. */
static int64_t path_crossing(const struct pred_signal *s, const struct pred_point *p, size_t n,
                             double limit, int dir, int which)
{
    double prev_v = s->last_x;
    int64_t prev_t = s->last_ts_ms;
    for (size_t i = 0; i < n; i++) {
        double v = which == 0 ? p[i].mean : (which < 0 ? p[i].lo : p[i].hi);
        if ((dir > 0 && v > limit) || (dir < 0 && v < limit)) {
            double f = v != prev_v ? (limit - prev_v) / (v - prev_v) : 1.0;
            f = fmin(fmax(f, 0.0), 1.0);
            return prev_t + (int64_t)(f * (double)(p[i].ts_ms - prev_t));
        }
        prev_v = v;
        prev_t = p[i].ts_ms;
    }
    return INT64_MIN;
}

struct fc_hit {
    uint8_t level;
    int dir;
    double limit;
    int64_t eta, early, late;
};

/* The most severe limit the forecast path crosses, if any. */
static bool forecast_hit(const struct pred_signal *s, const struct pred_point *p, size_t n,
                         struct fc_hit *hit)
{
    const struct tw_model_limit *lims[2] = {&s->cfg.alarm, &s->cfg.warn};
    for (int k = 0; k < 2; k++) {
        for (int side = 0; side < 2; side++) {
            bool has = side == 0 ? lims[k]->has_above : lims[k]->has_below;
            if (!has)
                continue;
            int dir = side == 0 ? 1 : -1;
            double limit = side == 0 ? lims[k]->above : lims[k]->below;
            int64_t eta = path_crossing(s, p, n, limit, dir, 0);
            if (eta == INT64_MIN)
                continue;
            *hit = (struct fc_hit){.level = k == 0 ? PRED_CRITICAL : PRED_WARNING,
                                   .dir = dir,
                                   .limit = limit,
                                   .eta = eta,
                                   .early = path_crossing(s, p, n, limit, dir, dir),
                                   .late = path_crossing(s, p, n, limit, dir, -dir)};
            return true;
        }
    }
    return false;
}

/* A limit the signal is already beyond is not forecast: its breach episode covers it. Beyond
 * means the level the models believe (the champion's one-step forecast), not a breach episode
 * alone: one sensor glitch past the limit opens an episode (and is learnt as a 4-sigma move at
 * most), and the episode stays open while the signal is within 3 sigma of the limit, that is
 * for the last hours of a wear ramp, just when the forecast matters. */
static bool limit_reached(const struct pred_signal *s, const struct fc_hit *h)
{
    if (h->level > s->breach)
        return false;
    double now = pred_bank_forecast(s, s->champion1, 1);
    if (!isfinite(now))
        return true;
    return h->dir > 0 ? now >= h->limit : now <= h->limit;
}

static void forecast_raise(struct pred_signal *s, int64_t ts_ms, const struct fc_hit *h,
                           struct pred_event *ev, size_t *n_ev)
{
    struct pred_event e = {.kind = PRED_THRESHOLD_FORECAST,
                           .severity = h->level,
                           .ts_ms = ts_ms,
                           .eta_ms = h->eta,
                           .value = s->last_x,
                           .threshold = h->limit};
    double in_h = (double)(h->eta - ts_ms) / 3.6e6;
    if (h->late != INT64_MIN)
        snprintf(e.message, sizeof(e.message),
                 "%s limit %.6g forecast in %.2f h (95%%: %.2f to %.2f h)",
                 h->level == PRED_CRITICAL ? "alarm" : "warn", h->limit, in_h,
                 (double)(h->early - ts_ms) / 3.6e6, (double)(h->late - ts_ms) / 3.6e6);
    else
        snprintf(e.message, sizeof(e.message),
                 "%s limit %.6g forecast in %.2f h (95%%: from %.2f h, or not within horizon)",
                 h->level == PRED_CRITICAL ? "alarm" : "warn", h->limit, in_h,
                 (double)(h->early - ts_ms) / 3.6e6);
    if (emit(s, ev, n_ev, &e) || s->fc == 0)
        s->fc = h->level;
}

/* Checked every horizon / points steps (the path's own resolution). A limit the signal already
 * breaches is not forecast (the breach episode covers it). */
void pred_alert_forecast(struct pred_signal *s, int64_t ts_ms, struct pred_event *ev, size_t *n_ev)
{
    /* No limit forecasts until the path's far end has a record of its own: an untested
     * extrapolation is no basis for an alert. */
    if (!s->cfg.has_limits || !pred_signal_ready(s) || s->t < s->next_check_t ||
        s->n_scored < MIN_SCORED || s->rec[s->championh].nh < PRED_MIN_LONG_RECORD)
        return;
    uint32_t every = s->horizon_steps / (s->cfg.n_points ? s->cfg.n_points : 1);
    s->next_check_t = s->t + (every ? every : 1);
    struct pred_point p[PRED_MAX_POINTS];
    size_t n = pred_signal_forecast(s, p, PRED_MAX_POINTS);
    struct fc_hit hit;
    bool crossing = forecast_hit(s, p, n, &hit) && !limit_reached(s, &hit);
    if (crossing) {
        s->fc_miss = 0;
        if (s->fc_hits < FC_RAISE_N)
            s->fc_hits++;
        if (s->fc_hits >= FC_RAISE_N && hit.level > s->fc)
            forecast_raise(s, ts_ms, &hit, ev, n_ev);
        return;
    }
    s->fc_hits = 0;
    /* An episode ends after half a horizon of checks without the crossing. */
    uint32_t clear_n = s->cfg.n_points / 2 > FC_CLEAR_N ? s->cfg.n_points / 2 : FC_CLEAR_N;
    if (s->fc && ++s->fc_miss >= clear_n) {
        struct pred_event e = {.kind = PRED_CLEARED,
                               .severity = PRED_INFO,
                               .cleared = PRED_THRESHOLD_FORECAST,
                               .ts_ms = ts_ms,
                               .value = s->last_x};
        snprintf(e.message, sizeof(e.message), "limit crossing no longer forecast (%s %s)",
                 kind_words[PRED_THRESHOLD_FORECAST], severity_words[s->fc]);
        emit(s, ev, n_ev, &e);
        s->fc = 0;
        s->fc_miss = 0;
    }
}
