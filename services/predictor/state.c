/* SPDX-License-Identifier: Apache-2.0 */
/* Saving one signal's learnt state and loading it back, refusing anything damaged. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "engine_internal.h"
#include "twin/err.h"

#define STATE_DOUBLES ((sizeof(struct pred_signal) + sizeof(double) - 1) / sizeof(double))

/* The layout's version and its size in doubles, so that a layout change that forgot to bump
 * the version is still told apart by size. */
uint32_t pred_signal_state_version(void)
{
    return PRED_STATE_VERSION << 16 | (uint32_t)STATE_DOUBLES;
}

size_t pred_signal_save(const struct pred_signal *s, double *out, size_t cap)
{
    if (cap >= STATE_DOUBLES) {
        memset(out, 0, STATE_DOUBLES * sizeof(double));
        memcpy(out, s, sizeof(*s));
    }
    return STATE_DOUBLES;
}

static bool all_finite_f(const float *v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!isfinite(v[i]))
            return false;
    return true;
}

static bool unit(double v)
{
    return v >= 0.0 && v <= 1.0;
}

/* Every index and loop bound, every parameter's range, every value a forecast reads. */
static bool state_shape_valid(const struct pred_signal *s)
{
    /* The season's fields must be exactly what its length gives: they bound seasonal indices. */
    struct pred_season se;
    pred_season_init(&se, s->se.m <= PRED_MAX_SEASON_STEPS ? s->se.m : 0);
    return s->version == PRED_STATE_VERSION && se.m == s->se.m && se.nbins == s->se.nbins &&
           se.per_bin == s->se.per_bin && s->champion1 < PM_COUNT && s->championh < PM_COUNT &&
           s->live < (1u << PM_COUNT) && s->n_dt <= PRED_DT_LEARN && s->step_ms >= 0 &&
           s->step_ms <= PRED_MAX_STEP_MS && (s->n_dt == 0 || s->step_ms > 0) &&
           s->last_ts_ms > -PRED_MAX_TS_MS && s->last_ts_ms < PRED_MAX_TS_MS &&
           s->horizon_steps > 0 && s->horizon_steps <= PRED_MAX_HORIZON_STEPS && s->h_score >= 2 &&
           s->ring_every > 0 && (pred_is_grey(s) || s->ar.n_lags <= PRED_AR_ORDER) &&
           pred_config_valid(&s->cfg);
}

/* Model PM_AR's state, read as what the configuration makes it. */
static bool state_ar_valid(const struct pred_signal *s)
{
    return pred_all_finite(s->ar.theta, PRED_AR_DIM) && pred_all_finite(s->ar.p, PRED_AR_PSIZE) &&
           pred_all_finite(s->ar.lag, PRED_AR_ORDER) && isfinite(s->ar.centre) &&
           (!pred_is_live(s, PM_AR) ||
            (s->ar.scale > 0 && isfinite(s->ar.scale) && s->ar.lambda > 0 && s->ar.lambda <= 1));
}

static bool state_grey_valid(const struct pred_signal *s)
{
    return !pred_is_live(s, PM_AR) || pred_grey_valid(&s->grey, &s->cfg.physics);
}

static bool state_models_valid(const struct pred_signal *s)
{
    for (unsigned i = 0; i < PRED_N_SMOOTH; i++) {
        const struct pred_es *e = &s->es[i];
        if (!isfinite(e->level) || !isfinite(e->trend) || !unit(e->alpha) || !unit(e->beta) ||
            !unit(e->gamma) || !unit(e->gamma_step) || !(e->phi > 0 && e->phi <= 1) ||
            e->season > PRED_ES_MULT)
            return false;
    }
    for (unsigned i = 0; i < PM_COUNT; i++) {
        const struct pred_record *r = &s->rec[i];
        if (!all_finite_f(&r->abs1, 5) || r->abs1 < 0 || r->sq1 < 0 || r->naive1 < 0 ||
            r->absh < 0 || r->sqh < 0)
            return false;
        for (unsigned k = 0; k < PRED_RING; k++) /* NAN marks an empty slot */
            if (isinf(r->ring[k]))
                return false;
    }
    return pred_all_finite(s->snaive_s, PRED_SEASON_POINTS) &&
           pred_all_finite(&s->hw_s[0][0], PRED_N_HW * PRED_SEASON_POINTS) &&
           (pred_is_grey(s) ? state_grey_valid(s) : state_ar_valid(s));
}

static bool state_tracking_valid(const struct pred_signal *s)
{
    for (unsigned f = 0; f < PRED_FAMILIES; f++)
        if (!isfinite(s->duel_a[f]) || !isfinite(s->duel_b[f]) ||
            !(s->search_step[f] >= PRED_SEARCH_STEP_MIN * 0.99 &&
              s->search_step[f] <= PRED_SEARCH_STEP_MAX * 1.01))
            return false;
    return isfinite(s->z) && s->z > 0 && isfinite(s->pend_lo) && isfinite(s->pend_hi) &&
           unit(s->cov_ew) && isfinite(s->cusum_pos) && isfinite(s->cusum_neg) &&
           isfinite(s->run_sum) && isfinite(s->last_x) && isfinite(s->last_raw) &&
           isfinite(s->tokens) && s->anomaly <= PRED_CRITICAL && s->breach <= PRED_CRITICAL &&
           s->fc <= PRED_CRITICAL;
}

/* A bool holding anything but 0 or 1 may not even be read as a bool: look at its byte. */
static bool bool_ok(const bool *b)
{
    uint8_t v;
    memcpy(&v, b, 1);
    return v <= 1;
}

static bool limit_bools_ok(const struct tw_model_limit *l)
{
    return bool_ok(&l->has_above) && bool_ok(&l->has_below);
}

static bool state_bools_ok(const struct pred_signal *s)
{
    for (unsigned i = 0; i < PRED_N_SMOOTH; i++)
        if (!bool_ok(&s->es[i].trended))
            return false;
    return bool_ok(&s->cfg.detect_season) && bool_ok(&s->cfg.has_limits) &&
           limit_bools_ok(&s->cfg.warn) && limit_bools_ok(&s->cfg.alarm) &&
           bool_ok(&s->warm_done) && bool_ok(&s->season_guessed) && bool_ok(&s->pend_valid);
}

static bool state_valid(const struct pred_signal *s)
{
    return state_bools_ok(s) && state_shape_valid(s) && state_models_valid(s) &&
           state_tracking_valid(s);
}

int pred_signal_load(struct pred_signal *s, const struct pred_config *cfg, const double *in,
                     size_t n)
{
    if (n != STATE_DOUBLES)
        return TW_EPROTO;
    struct pred_signal *tmp = malloc(sizeof(*tmp));
    if (!tmp)
        return TW_ENOMEM;
    memcpy(tmp, in, sizeof(*tmp));
    int rc = state_valid(tmp) ? 0 : TW_EPROTO;
    if (rc == 0) {
        *s = *tmp;
        rc = pred_signal_reconfigure(s, cfg);
    }
    free(tmp);
    return rc;
}
