/* SPDX-License-Identifier: Apache-2.0 */
/* twin-devsim's signal generator: levels from the model's limits, cycles, noise, wear,
 * failures, repairs, glitches, maintenance and slow-downs, from two seeded random streams per
 * asset: one for the readings, one for the machine's lives. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "gen.h"
#include "twin/err.h"

#define DAY_MS              86400000.0
#define MIN_MS              60000.0
#define HOUR_MS             3600000.0
#define NOISE_SD            0.04 /* of the headroom */
#define NOISE_TRUNC         4.0  /* sigmas */
#define SEASON_AMP          0.3
#define DAILY_AMP           0.1
#define DRIFT_MAX           0.1
#define DRIFT_STEP_SD       0.005
#define MTBF_MS             (72 * HOUR_MS) /* of a new machine; wear shortens it */
#define WEAR_HAZARD         30.0            /* hazard x (1 + WEAR_HAZARD wear^4) */
#define MTTR_MIN_MS         (20 * MIN_MS)
#define MTTR_MAX_MS         (60 * MIN_MS)
#define GLITCH_MEAN_MS      (10 * MIN_MS)    /* per device */
#define WEAR_FAIL_PAST      0.3              /* wear units past the alarm limit: certain failure */
#define HEAD_START_RATE     (0.004 / 1000.0) /* wear per ms: ~7 min from warn to alarm */
#define HEAD_START_CROSS_MS 40000.0

/* ---- random numbers: twin/rng.h, one xoshiro256** stream per asset ---------------------- */

static double rng_range(struct tw_rng *r, double lo, double hi)
{
    return lo + (hi - lo) * tw_rng_uniform(r);
}

/* Standard normal (Box-Muller), truncated to ±NOISE_TRUNC so that bounds hold exactly. */
static double rng_gauss(struct tw_rng *r)
{
    double u1 = 1.0 - tw_rng_uniform(r), u2 = tw_rng_uniform(r);
    double z = sqrt(-2.0 * log(u1)) * cos(2.0 * M_PI * u2);
    return z > NOISE_TRUNC ? NOISE_TRUNC : z < -NOISE_TRUNC ? -NOISE_TRUNC : z;
}

static uint64_t fnv1a(const char *s)
{
    uint64_t h = 0xcbf29ce484222325ULL;
    for (; *s; s++)
        h = (h ^ (uint8_t)*s) * 0x100000001b3ULL;
    return h;
}

/* ---- what a signal is ----------------------------------------------------------------------- */

static bool name_has(const char *name, const char *const *words)
{
    for (; *words; words++)
        if (strstr(name, *words))
            return true;
    return false;
}

bool devsim_is_wear_signal(const char *name)
{
    static const char *const words[] = {"vibration", "filter", "_dp", "wear", NULL};
    return name_has(name, words);
}

/* A production rate ("stroke_rate"): scaled by the speed of a slowed-down machine. */
static bool is_rate_signal(const char *name)
{
    size_t n = strlen(name);
    return n >= 5 && strcmp(name + n - 5, "_rate") == 0;
}

bool devsim_is_activity_signal(const char *name)
{
    static const char *const words[] = {"rate",   "current",  "flow", "vibration",
                                        "torque", "pressure", NULL};
    return name_has(name, words);
}

/* Base level and headroom from the warn limits (alarm limits where a warn side is missing). */
static void profile_levels(const struct tw_model_signal *s, double *base, double *headroom)
{
    const struct tw_model_limit *w = &s->warn, *al = &s->alarm;
    bool has_above = w->has_above || al->has_above, has_below = w->has_below || al->has_below;
    double above = w->has_above ? w->above : al->above;
    double below = w->has_below ? w->below : al->below;
    if (has_above && has_below && above > below) {
        *base = (above + below) / 2;
        *headroom = (above - below) / 2;
    } else if (has_above) {
        *headroom = 0.35 * (fabs(above) > 0 ? fabs(above) : 1.0);
        *base = above - *headroom;
    } else if (has_below) {
        *headroom = 0.5 * (fabs(below) > 0 ? fabs(below) : 1.0);
        *base = below + *headroom;
    } else {
        *base = 1.0;
        *headroom = 0.25;
    }
}

static bool limits_non_negative(const struct tw_model_signal *s)
{
    const struct tw_model_limit *l[2] = {&s->warn, &s->alarm};
    for (int i = 0; i < 2; i++)
        if ((l[i]->has_above && l[i]->above < 0) || (l[i]->has_below && l[i]->below < 0))
            return false;
    return true;
}

static double idle_level(const char *name, double base)
{
    static const char *const stopped[] = {"rate", "flow", "torque", NULL};
    if (name_has(name, stopped))
        return 0.0;
    if (strstr(name, "vibration"))
        return 0.05 * base;
    return (strstr(name, "current") ? 0.05 : 0.1) * base;
}

static void profile_init(struct devsim_profile *p, const struct tw_model_signal *s,
                         const struct devsim_gen_config *cfg, struct tw_rng *rng)
{
    memset(p, 0, sizeof(*p));
    p->name = s->name;
    profile_levels(s, &p->base, &p->headroom);
    double h = p->headroom;
    if (s->season_ms > 0 || (s->season_samples > 0 && cfg->period_ms > 0)) {
        p->cycle_ms = s->season_ms > 0 ? (double)s->season_ms
                                       : (double)s->season_samples * (double)cfg->period_ms;
        p->cycle_amp = SEASON_AMP * h;
    } else {
        p->daily_amp = DAILY_AMP * h;
    }
    p->phase = rng_range(rng, 0.0, 2.0 * M_PI);
    p->noise_sd = NOISE_SD * h;
    p->drift_sd = DRIFT_STEP_SD * h;
    const struct tw_model_limit *w = &s->warn, *al = &s->alarm;
    if (devsim_is_wear_signal(s->name) && (w->has_above || al->has_above)) {
        double warn = w->has_above ? w->above : al->above;
        p->wear_span = warn - p->base;
        p->wear_alarm =
            al->has_above && p->wear_span > 0 ? (al->above - p->base) / p->wear_span : 2.0;
    }
    p->activity = devsim_is_activity_signal(s->name);
    p->rate = is_rate_signal(s->name);
    p->idle_level = idle_level(s->name, p->base);
    p->non_negative = limits_non_negative(s) && p->base > 0;
}

/* ---- assets ------------------------------------------------------------------------------- */

static size_t head_start_signal(const struct tw_model_kind *k, bool filters_only)
{
    for (size_t i = 0; i < k->n_signals; i++) {
        const struct tw_model_signal *s = &k->signals[i];
        bool has_above = s->warn.has_above || s->alarm.has_above;
        if (devsim_is_wear_signal(s->name) && has_above &&
            (!filters_only || strstr(s->name, "filter")))
            return i;
    }
    return SIZE_MAX;
}

size_t devsim_head_start_index(const struct tw_model *m)
{
    for (int filters_only = 1; filters_only >= 0; filters_only--)
        for (size_t i = 0; i < tw_model_asset_count(m); i++)
            if (head_start_signal(tw_model_asset_at(m, i)->kind, filters_only) != SIZE_MAX)
                return i;
    return SIZE_MAX;
}

/* A new life's draws: when it fails (a threshold of cumulative hazard), how long that repair
 * takes, and the wear after it. */
static void new_life(struct devsim_asset *a)
{
    a->life_hazard = 0.0;
    a->life_threshold = -log(1.0 - tw_rng_uniform(&a->life_rng));
    a->life_repair_ms = (int64_t)rng_range(&a->life_rng, MTTR_MIN_MS, MTTR_MAX_MS);
    a->life_next_wear = rng_range(&a->life_rng, 0.0, 0.1);
}

static double new_wear_rate(struct devsim_asset *a)
{
    /* Time from new to the warn limit: 6-18 h of device time. */
    return 1.0 / rng_range(&a->rng, 6 * HOUR_MS, 18 * HOUR_MS);
}

int devsim_asset_init(struct devsim_asset *a, const char *id, const struct tw_model_kind *kind,
                      const struct devsim_gen_config *cfg, bool head_start_target)
{
    memset(a, 0, sizeof(*a));
    a->id = id;
    a->n = kind->n_signals;
    a->prof = calloc(a->n ? a->n : 1, sizeof(*a->prof));
    if (!a->prof)
        return TW_ENOMEM;
    tw_rng_seed(&a->rng, cfg->seed ^ fnv1a(id));
    for (size_t i = 0; i < a->n; i++)
        profile_init(&a->prof[i], &kind->signals[i], cfg, &a->rng);
    a->faults = cfg->faults;
    a->last_ts_ms = INT64_MIN;
    a->speed = 1.0;
    a->wear_rate_per_ms = new_wear_rate(a);
    a->wear = cfg->faults ? rng_range(&a->rng, 0.0, 0.6) : 0.0;
    a->head_start = cfg->faults && cfg->head_start && head_start_target;
    tw_rng_seed(&a->life_rng, (cfg->seed ^ fnv1a(id)) + 0x9e3779b97f4a7c15ULL);
    new_life(a);
    return 0;
}

void devsim_asset_free(struct devsim_asset *a)
{
    free(a->prof);
    a->prof = NULL;
    a->n = 0;
}

/* The wear at which a signal's base is WEAR_FAIL_PAST past its alarm limit: the machine
 * breaks at the first such signal. */
static double wear_to_fail(const struct devsim_asset *a)
{
    double w = INFINITY;
    for (size_t i = 0; i < a->n; i++)
        if (a->prof[i].wear_span > 0 && a->prof[i].wear_alarm + WEAR_FAIL_PAST < w)
            w = a->prof[i].wear_alarm + WEAR_FAIL_PAST;
    return w;
}

static double cycle_value(const struct devsim_profile *p, int64_t ts_ms)
{
    if (p->cycle_ms > 0)
        return p->cycle_amp *
               sin(2.0 * M_PI * fmod((double)ts_ms, p->cycle_ms) / p->cycle_ms + p->phase);
    return p->daily_amp * sin(2.0 * M_PI * fmod((double)ts_ms, DAY_MS) / DAY_MS + p->phase);
}

/* The demo's head start: wear such that the head-start signal (a filter, else the first wear
 * signal) with its cycle at the first timestamp reaches the warn limit HEAD_START_CROSS_MS of
 * device time later. */
static void apply_head_start(struct devsim_asset *a, int64_t ts_ms)
{
    const struct devsim_profile *pick = NULL;
    for (size_t i = 0; i < a->n; i++) {
        const struct devsim_profile *p = &a->prof[i];
        if (p->wear_span > 0 &&
            (!pick || (strstr(p->name, "filter") && !strstr(pick->name, "filter"))))
            pick = p;
    }
    if (!pick)
        return;
    a->wear_rate_per_ms = HEAD_START_RATE;
    a->wear =
        1.0 - cycle_value(pick, ts_ms) / pick->wear_span - HEAD_START_RATE * HEAD_START_CROSS_MS;
}

/* ---- downtime and commands ------------------------------------------------------------ */

static void go_down(struct devsim_asset *a, enum devsim_down_cause cause, int64_t from_ms,
                    int64_t until_ms)
{
    a->down = true;
    a->down_cause = cause;
    a->down_since_ms = from_ms;
    a->down_until_ms = until_ms;
}

/* The end of a repair or a maintenance: the machine is as new, and a slow-down meant to last
 * until then is over. */
static void end_downtime(struct devsim_asset *a)
{
    int64_t ms = a->down_until_ms - a->down_since_ms;
    if (a->down_cause == DEVSIM_DOWN_MAINTENANCE) {
        a->downtime_maintenance_ms += ms;
    } else {
        a->downtime_failure_ms += ms;
        a->repairs++;
    }
    a->down = false;
    if (a->faults) {
        a->wear = a->life_next_wear;
        new_life(a);
        if (a->head_start) /* after the first renewal the demo's device wears normally */
            a->wear_rate_per_ms = new_wear_rate(a);
        a->head_start = false;
    }
    if (a->speed < 1.0 && a->slow_until_ms == 0 && a->failures + a->maintenances > a->slow_downs)
        a->speed = 1.0;
}

static void plan(struct devsim_pending *p, const struct devsim_asset *a, int64_t start_ms,
                 int64_t duration_ms, double speed)
{
    *p = (struct devsim_pending){.set = true,
                                 .asap = start_ms <= 0 || start_ms <= a->last_ts_ms,
                                 .start_ms = start_ms,
                                 .duration_ms = duration_ms > 0 ? duration_ms : 0,
                                 .speed = speed};
}

void devsim_asset_maintain(struct devsim_asset *a, int64_t start_ms, int64_t duration_ms)
{
    plan(&a->maint, a, start_ms, duration_ms > 0 ? duration_ms : 1, 1.0);
}

void devsim_asset_slow(struct devsim_asset *a, int64_t start_ms, double speed, int64_t duration_ms)
{
    plan(&a->slow, a, start_ms, duration_ms, speed > 0 && speed < 1.0 ? speed : 1.0);
}

/* Whether a pending command starts at the step at ts_ms (prev_ts_ms: the step before, or
 * INT64_MIN); *from_ms is its start: its own time, or this step's when it was due already. */
static bool take_due(struct devsim_pending *p, int64_t prev_ts_ms, int64_t ts_ms, int64_t *from_ms)
{
    if (!p->set || (!p->asap && ts_ms < p->start_ms))
        return false;
    p->set = false;
    *from_ms = p->asap || prev_ts_ms == INT64_MIN ? ts_ms : p->start_ms;
    return true;
}

static void start_slow(struct devsim_asset *a, int64_t from_ms)
{
    a->speed = a->slow.speed;
    a->slow_until_ms =
        a->speed < 1.0 && a->slow.duration_ms > 0 ? from_ms + a->slow.duration_ms : 0;
    a->slow_downs = a->failures + a->maintenances;
}

static void start_maintenance(struct devsim_asset *a, int64_t from_ms)
{
    if (a->down) { /* that downtime's end renews the machine anyway */
        a->maintenances_skipped++;
        return;
    }
    a->maintenances++;
    go_down(a, DEVSIM_DOWN_MAINTENANCE, from_ms, from_ms + a->maint.duration_ms);
}

void devsim_asset_downtime(const struct devsim_asset *a, int64_t *failure_ms,
                           int64_t *maintenance_ms)
{
    int64_t running =
        a->down && a->last_ts_ms > a->down_since_ms ? a->last_ts_ms - a->down_since_ms : 0;
    *failure_ms = a->downtime_failure_ms + (a->down_cause == DEVSIM_DOWN_FAILURE ? running : 0);
    *maintenance_ms =
        a->downtime_maintenance_ms + (a->down_cause == DEVSIM_DOWN_MAINTENANCE ? running : 0);
}

/* Wear and failures over dt_ms of device time ending at ts_ms, for a machine that runs. */
static void wear_and_fail(struct devsim_asset *a, int64_t ts_ms, double dt_ms)
{
    a->wear += a->wear_rate_per_ms * a->speed * a->speed * dt_ms;
    /* The demo's head start fails by wear alone, so that its story (warn, alarm, filter
     * change) always plays out whole. */
    double w2 = a->wear * a->wear;
    if (!a->head_start)
        a->life_hazard += a->speed * dt_ms / MTBF_MS * (1.0 + WEAR_HAZARD * w2 * w2);
    if (a->life_hazard >= a->life_threshold || a->wear >= wear_to_fail(a)) {
        a->failures++;
        go_down(a, DEVSIM_DOWN_FAILURE, ts_ms, ts_ms + a->life_repair_ms);
    }
}

/* The machine's state at ts_ms: downtime ending, commands starting, wear and failures. */
static void advance(struct devsim_asset *a, int64_t prev_ts_ms, int64_t ts_ms, double dt_ms)
{
    bool was_down = a->down;
    int64_t from_ms;
    if (a->down && ts_ms >= a->down_until_ms)
        end_downtime(a);
    if (a->speed < 1.0 && a->slow_until_ms > 0 && ts_ms >= a->slow_until_ms)
        a->speed = 1.0;
    if (take_due(&a->slow, prev_ts_ms, ts_ms, &from_ms))
        start_slow(a, from_ms);
    if (take_due(&a->maint, prev_ts_ms, ts_ms, &from_ms))
        start_maintenance(a, from_ms);
    if (a->faults && !was_down && !a->down)
        wear_and_fail(a, ts_ms, dt_ms);
}

static double signal_value(struct devsim_asset *a, struct devsim_profile *p, int64_t ts_ms,
                           double glitch_p)
{
    p->drift += p->drift_sd * rng_gauss(&a->rng);
    if (p->drift > DRIFT_MAX * p->headroom)
        p->drift = DRIFT_MAX * p->headroom;
    if (p->drift < -DRIFT_MAX * p->headroom)
        p->drift = -DRIFT_MAX * p->headroom;
    double noise = p->noise_sd * rng_gauss(&a->rng);
    double v = p->base + cycle_value(p, ts_ms) + p->drift + noise;
    if (a->faults)
        v += a->wear * p->wear_span;
    if (p->rate)
        v *= a->speed;
    if (a->down && p->activity)
        v = p->idle_level + (p->idle_level > 0 ? 0.25 * fabs(noise) : 0.0);
    /* A stopped machine's idle readings are exact (stroke_rate 0): no glitch on them. */
    if (a->faults && tw_rng_uniform(&a->rng) < glitch_p && !(a->down && p->activity)) {
        double size = rng_range(&a->rng, 1.5, 3.0) * p->headroom;
        bool up = tw_rng_uniform(&a->rng) < 0.5 || (p->non_negative && v - size < 0);
        v += up ? size : -size;
        a->glitches++;
    }
    if (p->non_negative && v < 0)
        v = 0;
    return isfinite(v) ? v : p->base;
}

void devsim_asset_step(struct devsim_asset *a, int64_t ts_ms, double *out)
{
    double dt_ms = 0;
    int64_t prev_ts_ms = a->last_ts_ms;
    if (prev_ts_ms == INT64_MIN) {
        if (a->head_start)
            apply_head_start(a, ts_ms);
    } else if (ts_ms > prev_ts_ms) {
        dt_ms = (double)(ts_ms - prev_ts_ms);
    }
    a->last_ts_ms = ts_ms;
    advance(a, prev_ts_ms, ts_ms, dt_ms);
    double glitch_p = a->n ? dt_ms / (GLITCH_MEAN_MS * (double)a->n) : 0;
    for (size_t i = 0; i < a->n; i++)
        out[i] = signal_value(a, &a->prof[i], ts_ms, glitch_p);
}

/* ---- load mode's kind --------------------------------------------------------------------- */

static const struct tw_model_signal load_signals[] = {
    {.name = "current",
     .unit = "A",
     .warn = {.has_above = true, .above = 40},
     .alarm = {.has_above = true, .above = 50},
     .season_ms = 8 * 3600000LL},
    {.name = "pressure",
     .unit = "bar",
     .warn = {.has_below = true, .has_above = true, .below = 5, .above = 9},
     .alarm = {.has_below = true, .has_above = true, .below = 4, .above = 10}},
    {.name = "temperature",
     .unit = "degC",
     .warn = {.has_above = true, .above = 70},
     .alarm = {.has_above = true, .above = 85},
     .season_ms = 86400000LL},
    {.name = "vibration",
     .unit = "mm/s",
     .warn = {.has_above = true, .above = 4.5},
     .alarm = {.has_above = true, .above = 7.1}},
};

const struct tw_model_kind *devsim_load_kind(void)
{
    static const struct tw_model_kind kind = {
        .name = "load",
        .description = "twin-devsim load mode",
        .n_signals = sizeof(load_signals) / sizeof(load_signals[0]),
        .signals = load_signals,
    };
    return &kind;
}
