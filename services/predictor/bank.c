/* SPDX-License-Identifier: Apache-2.0 */
/* The bank of models of one signal: forecasts by model, records of their errors, the
 * champions, the parameter search, and the repairs (level shifts, runaway models). */
#include <math.h>
#include <stddef.h>
#include <string.h>

#include "engine_internal.h"

#define MIN_SCORED_TO_CHAMPION 3u
#define SWITCH_MARGIN          0.97 /* a challenger must be 3 % better to take over */
#define SEARCH_DIRS            8u   /* alpha, beta, gamma, phi; each up and down */
#define PARSIMONY_MARGIN       0.95 /* far ahead, a fitted model must beat seasonal naive by 5 % */

/* Whether model id keeps seasonal values in hw_s (not a Holt pair: without a season, or while a
 * guessed season warms up, when hw_s holds the warm-up sums). */
static bool hw_seasonal(const struct pred_signal *s, unsigned id)
{
    return s->se.m > 0 && s->es[id].season != PRED_ES_NONE;
}

double pred_bank_forecast(const struct pred_signal *s, unsigned id, uint32_t h)
{
    if (id == PM_AR)
        return pred_is_grey(s) ? pred_grey_forecast(&s->grey, &s->cfg.physics, s->step_ms, h)
                               : pred_ar_forecast(&s->ar, h);
    const double *season = NULL;
    if (id == PM_SNAIVE)
        season = s->snaive_s;
    else if (id >= PM_HWA_A)
        season = s->hw_s[id - PM_HWA_A];
    return pred_es_forecast(&s->es[id], &s->se, season, s->t, h);
}

void pred_bank_path(const struct pred_signal *s, unsigned id, const uint32_t *h, size_t n,
                    double *out)
{
    if (id == PM_AR && !pred_is_grey(s)) {
        pred_ar_path(&s->ar, h, n, out);
        return;
    }
    for (size_t i = 0; i < n; i++) /* the others forecast any horizon in constant time */
        out[i] = pred_bank_forecast(s, id, h[i]);
}

double pred_sigma1(const struct pred_signal *s)
{
    const struct pred_record *r = &s->rec[s->champion1];
    return r->n1 ? sqrt((double)r->sq1) : NAN;
}

bool pred_bank_relevel(struct pred_signal *s, double level, double min_gap)
{
    bool moved = false;
    for (unsigned id = 0; id < PM_COUNT; id++) {
        if (!pred_is_live(s, id))
            continue;
        double delta = level - pred_bank_forecast(s, id, 1);
        if (!isfinite(delta) || fabs(delta) <= min_gap)
            continue;
        moved = true;
        if (id == PM_SNAIVE)
            for (unsigned k = 0; k < PRED_SEASON_POINTS; k++)
                s->snaive_s[k] += delta;
        else if (id == PM_AR && pred_is_grey(s))
            pred_grey_shift(&s->grey, delta);
        else if (id == PM_AR)
            pred_ar_shift(&s->ar, delta);
        else if (s->es[id].season == PRED_ES_MULT && s->se.m > 0)
            s->es[id].level = s->es[id].level * (level / (level - delta)); /* keep the ratio */
        else
            pred_es_shift(&s->es[id], delta);
    }
    if (!moved && min_gap > 0)
        return false;
    /* The long-horizon forecasts still pending were made before the shift, which none of them
     * could see coming: scored, they would reward whichever model hedges towards the long-run
     * mean (a sawtooth of wear and repairs), not the one that forecasts the running process
     * best. They are dropped, as forecasts across a gap are never scored. */
    for (unsigned id = 0; id < PM_COUNT; id++)
        for (unsigned k = 0; k < PRED_RING; k++)
            s->rec[id].ring[k] = NAN;
    s->last_x = level;
    return true;
}

/* A model whose forecast ran away (non-finite, or a thousand times further from the data than
 * the data's own size and movement) restarts from the current value: level = x, no trend,
 * its season kept when finite. Nothing a signal does can make the bank diverge for good. */
void pred_bank_sanitise(struct pred_signal *s, double x)
{
    double bound = 1e3 * (fabs(x) + (double)s->rec[PM_NAIVE].abs1 + 1e-9);
    for (unsigned id = 0; id < PM_COUNT; id++) {
        if (!pred_is_live(s, id))
            continue;
        double f = pred_bank_forecast(s, id, 1);
        if (isfinite(f) && fabs(f - x) <= bound)
            continue;
        if (id == PM_AR && pred_is_grey(s)) {
            pred_grey_init(&s->grey, &s->cfg.physics, s->grey.t_ms, x);
        } else if (id == PM_AR) {
            pred_ar_init(&s->ar, s->ar.lambda, 1e-2, x, s->ar.scale);
            pred_ar_update(&s->ar, x);
        } else if (id >= PM_HWM_A && hw_seasonal(s, id)) {
            s->live &= ~(1u << id); /* a ratio model cannot restart from a value near 0 */
        } else {
            double *season = id == PM_SNAIVE                        ? s->snaive_s
                             : id >= PM_HWA_A && hw_seasonal(s, id) ? s->hw_s[id - PM_HWA_A]
                                                                    : NULL;
            for (unsigned k = 0; season && k < PRED_SEASON_POINTS; k++)
                season[k] = id == PM_SNAIVE ? x : 0.0;
            s->es[id].level = id == PM_SNAIVE ? 0.0 : x;
            s->es[id].trend = 0.0;
        }
        memset(&s->rec[id], 0, offsetof(struct pred_record, ring));
    }
}

static double clip(double v, double lim)
{
    return v > lim ? lim : (v < -lim ? -lim : v);
}

static uint32_t record_window(const struct pred_signal *s)
{
    uint32_t w = 2 * s->se.m;
    return w < 24 ? 24 : (w > 200 ? 200 : w);
}

static void record_one_step(struct pred_signal *s, unsigned id, double err, double naive_err,
                            double lim)
{
    struct pred_record *r = &s->rec[id];
    double e = clip(err, lim), ne = clip(naive_err, lim);
    r->n1++;
    float a = pred_ew_rate(r->n1, record_window(s));
    r->abs1 += a * ((float)fabs(e) - r->abs1);
    r->sq1 += a * ((float)(e * e) - r->sq1);
    r->naive1 += a * ((float)fabs(ne) - r->naive1);
}

/* After learning step t: scores the long-horizon forecast that targeted t (made h_score steps
 * ago) and, when t is a recording step, records one for t + h_score. */
static void record_long(struct pred_signal *s, unsigned id, double x, double lim)
{
    struct pred_record *r = &s->rec[id];
    if (s->t >= s->h_score && (s->t - s->h_score) % s->ring_every == 0) {
        unsigned slot = (unsigned)(((s->t - s->h_score) / s->ring_every) % PRED_RING);
        float f = r->ring[slot];
        if (!isnan(f)) {
            double e = clip(x - (double)f, lim);
            r->nh++;
            float a = pred_ew_rate(r->nh, 12);
            r->absh += a * ((float)fabs(e) - r->absh);
            r->sqh += a * ((float)(e * e) - r->sqh);
        }
        r->ring[slot] = NAN;
    }
    if (s->t % s->ring_every == 0) {
        unsigned slot = (unsigned)((s->t / s->ring_every) % PRED_RING);
        double f = pred_is_live(s, id) ? pred_bank_forecast(s, id, s->h_score) : NAN;
        r->ring[slot] = isfinite(f) ? (float)f : NAN;
    }
}

void pred_bank_pick_champions(struct pred_signal *s)
{
    unsigned best1 = s->champion1, besth = s->championh;
    for (unsigned id = 0; id < PM_COUNT; id++) {
        const struct pred_record *r = &s->rec[id];
        if (!pred_is_live(s, id))
            continue;
        if (r->n1 >= MIN_SCORED_TO_CHAMPION &&
            (!pred_is_live(s, best1) || s->rec[best1].n1 < MIN_SCORED_TO_CHAMPION ||
             r->abs1 < SWITCH_MARGIN * s->rec[best1].abs1))
            best1 = id;
        if (r->nh >= PRED_MIN_LONG_RECORD &&
            (!pred_is_live(s, besth) || s->rec[besth].nh < PRED_MIN_LONG_RECORD ||
             r->absh < SWITCH_MARGIN * s->rec[besth].absh))
            besth = id;
    }
    /* Far ahead, a model with parameters has to beat the seasonal naive forecast clearly: a
     * few points of record do not tell a fit from one that will not last. */
    const struct pred_record *sn = &s->rec[PM_SNAIVE];
    if (besth != PM_SNAIVE && pred_is_live(s, PM_SNAIVE) && sn->nh >= PRED_MIN_LONG_RECORD &&
        s->rec[besth].nh >= PRED_MIN_LONG_RECORD &&
        !(s->rec[besth].absh < PARSIMONY_MARGIN * sn->absh))
        besth = PM_SNAIVE;
    if (!pred_is_live(s, best1))
        best1 = PM_NAIVE;
    s->champion1 = (uint8_t)best1;
    s->championh = (uint8_t)(s->rec[besth].nh >= PRED_MIN_LONG_RECORD ? besth : best1);
}

/* v moved by `step` in logit space, so it stays inside (lo, hi) and moves relative to its
 * margin. */
static double nudge(double v, double lo, double hi, double step)
{
    double u = (v - lo) / (hi - lo);
    u = fmin(fmax(u, 1e-4), 1.0 - 1e-4);
    double l = log(u / (1.0 - u)) + step;
    return lo + (hi - lo) / (1.0 + exp(-l));
}

/* Parameter search per smoothing family: a pattern search with paired duels. The challenger
 * (variant B) is a copy of the incumbent (variant A) with one parameter moved one step in one
 * direction; both forecast the same steps for one duel; if B's squared errors are lower, A
 * takes B's parameters and state and the search keeps going that way with a longer step;
 * otherwise it tries the next direction, and shortens the step after a full round without a
 * win. Only a challenger that won on the same data replaces the incumbent, and the search is
 * deterministic, so the same data always gives the same parameters. */
static void duel_restart(struct pred_signal *s, unsigned f)
{
    unsigned a = PM_HWA_A + 2 * f, b = a + 1;
    struct pred_es *inc = &s->es[a], *ch = &s->es[b];
    *ch = *inc;
    if (hw_seasonal(s, a))
        memcpy(s->hw_s[b - PM_HWA_A], s->hw_s[a - PM_HWA_A], sizeof(s->hw_s[0]));
    s->rec[b] = s->rec[a];
    s->duel_a[f] = s->duel_b[f] = 0;
    s->duel_n[f] = 0;
    double p[4] = {inc->alpha, inc->beta, inc->gamma, inc->phi};
    unsigned dir = s->search_dir[f] % SEARCH_DIRS, k = dir / 2;
    if (k == 2 && !hw_seasonal(s, a)) /* no season: no gamma to move */
        dir = s->search_dir[f] = (uint8_t)((dir + 2) % SEARCH_DIRS), k = dir / 2;
    double step = (dir % 2 ? -1.0 : 1.0) * s->search_step[f];
    p[k] = k == 3 ? nudge(p[k], 0.8, 1.0, step) : nudge(p[k], 0.0, 1.0, step);
    pred_es_set_params(ch, &s->se, p[0], p[1], p[2], p[3]);
}

static void search_next(struct pred_signal *s, unsigned f, bool won)
{
    if (won) {
        s->search_step[f] = fminf(s->search_step[f] * 1.25f, (float)PRED_SEARCH_STEP_MAX);
        s->search_misses[f] = 0;
        return;
    }
    s->search_dir[f] = (uint8_t)((s->search_dir[f] + 1) % SEARCH_DIRS);
    if (++s->search_misses[f] >= SEARCH_DIRS) {
        s->search_step[f] = fmaxf(s->search_step[f] * 0.7f, (float)PRED_SEARCH_STEP_MIN);
        s->search_misses[f] = 0;
    }
}

void pred_bank_refit(struct pred_signal *s, unsigned f, const struct pred_es *e,
                     const double *season)
{
    unsigned a = PM_HWA_A + 2 * f;
    s->es[a] = *e;
    memcpy(s->hw_s[a - PM_HWA_A], season, s->se.nbins * sizeof(double));
    s->search_step[f] = (float)PRED_SEARCH_STEP_START;
    s->search_dir[f] = 0;
    s->search_misses[f] = 0;
    duel_restart(s, f);
}

/* A duel spans two seasons, so that both variants meet every part of the season twice and
 * one noisy month cannot decide; 24 to 200 steps. */
static uint32_t duel_length(const struct pred_signal *s)
{
    uint32_t n = 2 * s->se.m;
    return n < 24 ? 24 : (n > 200 ? 200 : n);
}

/* Called after both variants of family f were scored on this step (errors ea, eb). */
static void duel_step(struct pred_signal *s, unsigned f, double ea, double eb)
{
    unsigned a = PM_HWA_A + 2 * f, b = a + 1;
    if (!pred_is_live(s, a) || !pred_is_live(s, b) || !isfinite(ea) || !isfinite(eb))
        return;
    if (a == PM_HWM_A && !hw_seasonal(s, a)) /* the slow Holt pair: parameters from the horizon */
        return;
    s->duel_a[f] += (float)(ea * ea);
    s->duel_b[f] += (float)(eb * eb);
    if (++s->duel_n[f] < duel_length(s))
        return;
    bool won = s->duel_b[f] < s->duel_a[f];
    if (won) {
        s->es[a] = s->es[b];
        if (hw_seasonal(s, a))
            memcpy(s->hw_s[a - PM_HWA_A], s->hw_s[b - PM_HWA_A], sizeof(s->hw_s[0]));
        s->rec[a] = s->rec[b];
    }
    search_next(s, f, won);
    duel_restart(s, f);
}

double pred_bank_score(struct pred_signal *s, double x, double lim)
{
    double naive_err = x - s->last_raw;
    double err[PM_COUNT];
    for (unsigned id = 0; id < PM_COUNT; id++) {
        bool scored = pred_is_live(s, id);
        double f = scored || id == s->champion1 ? pred_bank_forecast(s, id, 1) : NAN;
        err[id] = x - f;
        if (scored && isfinite(f))
            record_one_step(s, id, err[id], naive_err, lim);
    }
    double e1 = err[s->champion1]; /* before the duels move any state */
    for (unsigned f = 0; f < PRED_FAMILIES; f++)
        duel_step(s, f, clip(err[PM_HWA_A + 2 * f], lim), clip(err[PM_HWA_B + 2 * f], lim));
    return e1;
}

void pred_bank_record_long(struct pred_signal *s, double x, double lim)
{
    for (unsigned id = 0; id < PM_COUNT; id++)
        record_long(s, id, x, lim);
}
