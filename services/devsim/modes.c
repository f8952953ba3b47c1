/* SPDX-License-Identifier: Apache-2.0 */
/* twin-devsim's three modes: the demo plant, the load generator and the CSV replay, each paced
 * by an absolute schedule so that a late wake-up never slows the rate down. */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "devsim.h"
#include "twin/clock.h"
#include "twin/err.h"
#include "twin/log.h"

#define NS_PER_MS  1000000LL
#define DUE_MAX_NS 4e18 /* ~127 years: a due time further away is as good as never */

uint64_t devsim_seq_base(const struct devsim_config *cfg)
{
    /* A restart begins above every seq of earlier runs unless one sent more than 1000
     * messages per asset per millisecond: ingest never takes them for duplicates. */
    return cfg->seq_base > 0 ? (uint64_t)cfg->seq_base : (uint64_t)tw_now_ms() * 1000u;
}

/* Whether the run is over: stopped, or past --duration. */
static bool run_over(const struct devsim_config *cfg, struct devsim_pub *p, int64_t t0_ns)
{
    if (*p->stop) {
        p->rep.stopped = true;
        return true;
    }
    return cfg->duration_s > 0 && tw_mono_ns() - t0_ns >= cfg->duration_s * 1000 * NS_PER_MS;
}

/* t0_ns + offset_ns, the offset clamped to [0, DUE_MAX_NS]: device times centuries apart (up to
 * DEVSIM_MAX_TS_MS) give a far due time, never an overflow. */
static int64_t due_after(int64_t t0_ns, double offset_ns)
{
    return offset_ns > 0 ? t0_ns + (int64_t)fmin(offset_ns, DUE_MAX_NS) : t0_ns;
}

/* Waits for the due time and records how late the publish is. */
static void wait_due(struct devsim_pub *p, int64_t due_ns)
{
    devsim_sleep_until_ns(due_ns, p->stop);
    int64_t lag_ms = (tw_mono_ns() - due_ns) / NS_PER_MS;
    if (lag_ms > p->rep.max_lag_ms)
        p->rep.max_lag_ms = lag_ms;
    tw_gauge_set(p->m->lag_ms, lag_ms > 0 ? lag_ms : 0);
}

/* What an asset's step may change, taken before it to see what it did. */
struct step_marks {
    uint64_t failures, repairs, glitches, maintenances, skipped;
    int64_t maintained_ms, down_ms[2];
    double speed;
};

static void marks_take(const struct devsim_asset *a, struct step_marks *s)
{
    s->failures = a->failures;
    s->repairs = a->repairs;
    s->glitches = a->glitches;
    s->maintenances = a->maintenances;
    s->skipped = a->maintenances_skipped;
    s->maintained_ms = a->downtime_maintenance_ms;
    s->speed = a->speed;
    devsim_asset_downtime(a, &s->down_ms[DEVSIM_DOWN_FAILURE],
                          &s->down_ms[DEVSIM_DOWN_MAINTENANCE]);
}

/* Adds downtime to the fleet's sum and whole seconds of it to the counter. */
static void add_downtime(struct devsim_pub *p, int cause, int64_t delta_ms)
{
    int64_t before_s = p->downtime_ms[cause] / 1000;
    p->downtime_ms[cause] += delta_ms;
    tw_counter_add(p->m->downtime_s[cause], (uint64_t)(p->downtime_ms[cause] / 1000 - before_s));
}

static void log_machine_events(const struct devsim_asset *a, const struct step_marks *b,
                               int64_t ts_ms)
{
    if (a->failures != b->failures)
        tw_log(TW_LOG_INFO, "machine_failed", "asset=%s ts_ms=%lld down_until_ms=%lld", a->id,
               (long long)ts_ms, (long long)a->down_until_ms);
    if (a->repairs != b->repairs)
        tw_log(TW_LOG_INFO, "machine_repaired", "asset=%s ts_ms=%lld", a->id, (long long)ts_ms);
    if (a->maintenances != b->maintenances)
        tw_log(TW_LOG_INFO, "maintenance_started", "asset=%s ts_ms=%lld from_ms=%lld until_ms=%lld",
               a->id, (long long)ts_ms, (long long)a->down_since_ms, (long long)a->down_until_ms);
    if (a->downtime_maintenance_ms != b->maintained_ms)
        tw_log(TW_LOG_INFO, "maintenance_done", "asset=%s ts_ms=%lld", a->id, (long long)ts_ms);
    if (a->maintenances_skipped != b->skipped)
        tw_log(TW_LOG_INFO, "maintenance_skipped",
               "asset=%s ts_ms=%lld reason=\"down when it came due: the repair renews it\"", a->id,
               (long long)ts_ms);
    if (a->speed != b->speed)
        tw_log(TW_LOG_INFO, "speed_changed", "asset=%s ts_ms=%lld speed=%g until_ms=%lld", a->id,
               (long long)ts_ms, a->speed, (long long)a->slow_until_ms);
}

static void account_step(struct devsim_pub *p, const struct devsim_asset *a,
                         const struct step_marks *b, int64_t ts_ms)
{
    struct step_marks now;
    marks_take(a, &now);
    tw_counter_add(p->m->failures, now.failures - b->failures);
    tw_counter_add(p->m->repairs, now.repairs - b->repairs);
    tw_counter_add(p->m->glitches, now.glitches - b->glitches);
    tw_counter_add(p->m->maintenances, now.maintenances - b->maintenances);
    for (int c = 0; c < 2; c++)
        add_downtime(p, c, now.down_ms[c] - b->down_ms[c]);
    log_machine_events(a, b, ts_ms);
}

/* Steps one simulated device and publishes its reading. */
static int send_step(struct devsim_pub *p, struct devsim_asset *a, const struct tw_model_kind *k,
                     int64_t ts_ms, uint64_t seq, double *values, struct tw_sample *samples)
{
    struct step_marks before;
    marks_take(a, &before);
    devsim_asset_step(a, ts_ms, values);
    account_step(p, a, &before, ts_ms);
    size_t n = 0;
    for (size_t i = 0; i < a->n; i++) /* a derived signal is twin-ingest's to compute */
        if (!k->signals[i].expr)
            samples[n++] = (struct tw_sample){.signal = k->signals[i].name, .value = values[i]};
    return devsim_pub_send(p, a->id, ts_ms, seq, samples, n);
}

struct devsim_fleet {
    size_t n;
    struct devsim_asset *assets;
    const struct tw_model_kind **kinds;
    char (*ids)[TW_NAME_MAX + 1];
    double *values;
    struct tw_sample *samples;
};

static void fleet_free(struct devsim_fleet *f)
{
    for (size_t i = 0; f->assets && i < f->n; i++)
        devsim_asset_free(&f->assets[i]);
    free(f->assets);
    free(f->kinds);
    free(f->ids);
    free(f->values);
    free(f->samples);
}

/* n assets; ids and kinds filled in by the caller before fleet_init_gens. */
static int fleet_alloc(struct devsim_fleet *f, size_t n, size_t max_signals)
{
    memset(f, 0, sizeof(*f));
    f->n = n;
    f->assets = calloc(n, sizeof(*f->assets));
    f->kinds = calloc(n, sizeof(*f->kinds));
    f->ids = calloc(n, sizeof(*f->ids));
    f->values = calloc(max_signals ? max_signals : 1, sizeof(*f->values));
    f->samples = calloc(max_signals ? max_signals : 1, sizeof(*f->samples));
    return f->assets && f->kinds && f->ids && f->values && f->samples ? 0 : TW_ENOMEM;
}

/* The machines' record for the final report: the sum, and per asset when asked. */
static void fleet_report(struct devsim_report *rep, const struct devsim_fleet *f, bool per_asset)
{
    rep->machines = true;
    memset(&rep->total, 0, sizeof(rep->total));
    rep->assets = per_asset ? calloc(f->n ? f->n : 1, sizeof(*rep->assets)) : NULL;
    rep->n_assets = rep->assets ? f->n : 0;
    for (size_t i = 0; i < f->n; i++) {
        const struct devsim_asset *a = &f->assets[i];
        struct devsim_machine_report m = {.failures = a->failures,
                                          .repairs = a->repairs,
                                          .maintenances = a->maintenances,
                                          .maintenances_skipped = a->maintenances_skipped};
        snprintf(m.id, sizeof(m.id), "%s", a->id);
        devsim_asset_downtime(a, &m.downtime_failure_ms, &m.downtime_maintenance_ms);
        if (rep->assets)
            rep->assets[i] = m;
        rep->total.failures += m.failures;
        rep->total.repairs += m.repairs;
        rep->total.maintenances += m.maintenances;
        rep->total.maintenances_skipped += m.maintenances_skipped;
        rep->total.downtime_failure_ms += m.downtime_failure_ms;
        rep->total.downtime_maintenance_ms += m.downtime_maintenance_ms;
    }
}

static int fleet_init_gens(struct devsim_fleet *f, const struct devsim_config *cfg, bool head_start,
                           size_t head_start_index)
{
    struct devsim_gen_config g = {.seed = (uint64_t)cfg->seed,
                                  .period_ms = cfg->period_ms,
                                  .faults = cfg->faults,
                                  .head_start = head_start};
    for (size_t i = 0; i < f->n; i++)
        if (devsim_asset_init(&f->assets[i], f->ids[i], f->kinds[i], &g, i == head_start_index) < 0)
            return TW_ENOMEM;
    return 0;
}

/* ---- demo --------------------------------------------------------------------------------- */

/* Device time of the first sample: --start-ms, else now in real time, else 6 days ago (an
 * accelerated plant catches up with the present, then runs in real time). */
static int64_t demo_start_ms(const struct devsim_config *cfg, int64_t wall0_ms)
{
    if (cfg->start_ms > 0)
        return cfg->start_ms;
    bool real_time = cfg->speed == 1 && !cfg->as_fast_as_possible;
    return real_time ? wall0_ms : wall0_ms - DEVSIM_DEFAULT_LOOKBACK_MS;
}

/* Monotonic due time of device time d: (d - d0) / speed after the start, never before the
 * wall clock reaches d (device time does not run into the future). */
static int64_t demo_due_ns(const struct devsim_config *cfg, int64_t t0_ns, int64_t wall0_ms,
                           int64_t d0_ms, int64_t d_ms)
{
    double accel_ns = cfg->as_fast_as_possible
                          ? 0
                          : (double)(d_ms - d0_ms) * (double)NS_PER_MS / (double)cfg->speed;
    double real_ns = (double)(d_ms - wall0_ms) * (double)NS_PER_MS;
    return due_after(t0_ns, fmax(accel_ns, real_ns));
}

static int demo_loop(const struct devsim_config *cfg, struct devsim_pub *p, struct devsim_fleet *f)
{
    int64_t t0_ns = tw_mono_ns(), wall0_ms = tw_now_ms();
    int64_t d0_ms = demo_start_ms(cfg, wall0_ms);
    uint64_t seq0 = devsim_seq_base(cfg);
    p->rep.start_ns = t0_ns;
    tw_log(TW_LOG_INFO, "demo_started",
           "assets=%zu period_ms=%lld speed=%lld start_ms=%lld seq_base=%" PRIu64, f->n,
           (long long)cfg->period_ms, (long long)(cfg->as_fast_as_possible ? 0 : cfg->speed),
           (long long)d0_ms, seq0);
    if (d0_ms > wall0_ms + 60000)
        tw_log(TW_LOG_WARN, "demo_start_in_future",
               "start_ms=%lld: device time does not run ahead of the clock, so the first reading "
               "waits until then",
               (long long)d0_ms);
    for (int64_t k = 0; cfg->count == 0 || k < cfg->count; k++) {
        for (size_t i = 0; i < f->n; i++) {
            /* Assets spread over the period, so the broker sees a steady stream. */
            int64_t d_ms = d0_ms + k * cfg->period_ms +
                           (int64_t)((double)cfg->period_ms * (double)i / (double)f->n);
            wait_due(p, demo_due_ns(cfg, t0_ns, wall0_ms, d0_ms, d_ms));
            if (run_over(cfg, p, t0_ns))
                return 0;
            if (p->obey)
                devsim_obey_apply(p->obey, f->assets, f->n, d_ms);
            int rc = send_step(p, &f->assets[i], f->kinds[i], d_ms, seq0 + (uint64_t)k, f->values,
                               f->samples);
            if (rc == TW_ESHUTDOWN)
                return 0;
        }
    }
    return 0;
}

int devsim_run_demo(const struct devsim_config *cfg, struct devsim_pub *p)
{
    const struct tw_model *m = cfg->model;
    size_t n = tw_model_asset_count(m), max_signals = 0;
    struct devsim_fleet f;
    int rc = fleet_alloc(&f, n, TW_MODEL_MAX_SIGNALS);
    for (size_t i = 0; rc == 0 && i < n; i++) {
        const struct tw_model_asset *a = tw_model_asset_at(m, i);
        snprintf(f.ids[i], sizeof(f.ids[i]), "%s", a->id);
        f.kinds[i] = a->kind;
        if (a->kind->n_signals > max_signals)
            max_signals = a->kind->n_signals;
    }
    if (rc == 0)
        rc = fleet_init_gens(&f, cfg, true, devsim_head_start_index(m));
    if (rc == 0) {
        tw_gauge_set(p->m->assets, (int64_t)n);
        rc = demo_loop(cfg, p, &f);
        fleet_report(&p->rep, &f, true);
    }
    fleet_free(&f);
    return rc;
}

/* ---- load --------------------------------------------------------------------------------- */

static int load_loop(const struct devsim_config *cfg, struct devsim_pub *p, struct devsim_fleet *f)
{
    const double ns_per_msg = 1e9 / (double)cfg->rate;
    uint64_t total = cfg->count > 0        ? (uint64_t)cfg->count
                     : cfg->duration_s > 0 ? (uint64_t)(cfg->rate * cfg->duration_s)
                                           : UINT64_MAX;
    uint64_t seq0 = devsim_seq_base(cfg);
    int64_t t0_ns = tw_mono_ns();
    p->rep.start_ns = t0_ns;
    p->rep.target_rate = (double)cfg->rate;
    tw_log(TW_LOG_INFO, "load_started",
           "assets=%zu rate=%lld messages=%" PRIu64 " seq_base=%" PRIu64, f->n,
           (long long)cfg->rate, total, seq0);
    for (uint64_t j = 0; j < total; j++) {
        int64_t due_ns = t0_ns + (int64_t)((double)j * ns_per_msg);
        if (tw_mono_ns() < due_ns)
            wait_due(p, due_ns);
        else if ((j & 1023) == 0)
            wait_due(p, due_ns); /* records the lag now and then without a clock call each */
        if (*p->stop) {
            p->rep.stopped = true;
            return 0;
        }
        size_t i = (size_t)(j % f->n);
        int rc = send_step(p, &f->assets[i], f->kinds[i], tw_now_ms(), seq0 + j / f->n, f->values,
                           f->samples);
        if (rc == TW_ESHUTDOWN) {
            p->rep.stopped = true;
            return 0;
        }
    }
    return 0;
}

int devsim_run_load(const struct devsim_config *cfg, struct devsim_pub *p)
{
    size_t n = (size_t)cfg->assets;
    const struct tw_model_kind *kind = devsim_load_kind();
    struct devsim_fleet f;
    int rc = fleet_alloc(&f, n, kind->n_signals);
    for (size_t i = 0; rc == 0 && i < n; i++) {
        snprintf(f.ids[i], sizeof(f.ids[i]), "load-%06zu", i + 1);
        f.kinds[i] = kind;
    }
    if (rc == 0)
        rc = fleet_init_gens(&f, cfg, false, SIZE_MAX);
    if (rc == 0) {
        tw_gauge_set(p->m->assets, (int64_t)n);
        rc = load_loop(cfg, p, &f);
        fleet_report(&p->rep, &f, false);
    }
    fleet_free(&f);
    return rc;
}

/* ---- replay ------------------------------------------------------------------------------- */

int devsim_run_replay(const struct devsim_config *cfg, struct devsim_pub *p)
{
    const struct devsim_recording *rec = &cfg->recording;
    struct tw_sample samples[DEVSIM_MAX_SAMPLES];
    int64_t first = rec->rows[rec->groups[0].first].ts_ms;
    int64_t last = rec->rows[rec->groups[rec->n_groups - 1].first].ts_ms;
    bool paced = !cfg->as_fast_as_possible;
    int64_t span_wall_ms = paced ? (last - first) / cfg->speed : 0;
    /* Shifted, the last row lands when the replay ends: every row is then in the past. */
    int64_t shift = cfg->shift_to_now ? tw_now_ms() + span_wall_ms - last : 0;
    uint64_t seq0 = devsim_seq_base(cfg);
    int64_t t0_ns = tw_mono_ns();
    p->rep.start_ns = t0_ns;
    tw_gauge_set(p->m->assets, 1);
    tw_log(TW_LOG_INFO, "replay_started",
           "asset=%s messages=%zu rows=%zu shift_ms=%lld seq_base=%" PRIu64, cfg->asset,
           rec->n_groups, rec->n_rows, (long long)shift, seq0);
    for (size_t g = 0; g < rec->n_groups; g++) {
        const struct devsim_group *grp = &rec->groups[g];
        int64_t ts = rec->rows[grp->first].ts_ms;
        if (paced)
            wait_due(
                p, due_after(t0_ns, (double)(ts - first) * (double)NS_PER_MS / (double)cfg->speed));
        if (run_over(cfg, p, t0_ns))
            return 0;
        for (size_t i = 0; i < grp->n; i++)
            samples[i] = (struct tw_sample){.signal = rec->rows[grp->first + i].signal,
                                            .value = rec->rows[grp->first + i].value};
        if (devsim_pub_send(p, cfg->asset, ts + shift, seq0 + g, samples, grp->n) == TW_ESHUTDOWN) {
            p->rep.stopped = true;
            return 0;
        }
    }
    return 0;
}
