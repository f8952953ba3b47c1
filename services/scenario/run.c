/* SPDX-License-Identifier: Apache-2.0 */
/* One request on a worker thread: the live snapshot into a copy of the plant, the scenario run
 * with rate-limited progress, and the outcome (OK, ERROR or CANCELLED) published and stored. */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "scenario_service.h"
#include "twin/clock.h"
#include "twin/err.h"
#include "twin/log.h"

#define SNAPSHOT_ATTEMPTS 3
#define ERR_MAX           512

struct run_ctx {
    struct scen_service *svc;
    struct scen_job *job;
};

/* scn_run's progress callback, on its threads: one message per progress_ms at most (the
 * compare-and-swap picks one thread per interval); 100 % is sent after the run. */
static void on_progress(void *arg, double fraction, double eta_s)
{
    struct run_ctx *c = arg;
    struct scen_job *job = c->job;
    int64_t now = tw_mono_ms();
    int64_t last = __atomic_load_n(&job->last_progress_ms, __ATOMIC_RELAXED);
    if (fraction >= 1.0 || now - last < c->svc->cfg->progress_ms ||
        !__atomic_compare_exchange_n(&job->last_progress_ms, &last, now, false, __ATOMIC_RELAXED,
                                     __ATOMIC_RELAXED))
        return;
    if (!(fraction >= 0))
        fraction = 0;
    struct scen_progress p = {
        .state = SCEN_RUNNING,
        .percent = 100.0 * fraction,
        .eta_ms = eta_s >= 0 && isfinite(eta_s) ? (int64_t)(eta_s * 1000.0) : -1,
        .replications_done = (uint64_t)(fraction * (double)job->reps_total),
        .replications_total = job->reps_total,
    };
    memcpy(p.id, job->req.id, sizeof(p.id));
    scen_publish_progress(c->svc, &p);
}

/* The live snapshot, retried a few times while Redis does not answer. */
static int run_snapshot(struct scen_service *svc, struct tw_store *store, struct scen_job *job,
                        struct sim_plant *plant, int64_t *snapshot_ms, char *err, size_t errlen)
{
    struct scen_snapshot_stats st;
    struct tw_backoff backoff = {.initial_ms = 200, .max_ms = 2000};
    int rc = TW_EIO;
    for (int attempt = 0;
         attempt < SNAPSHOT_ATTEMPTS && !__atomic_load_n(&job->cancel, __ATOMIC_RELAXED);
         attempt++) {
        if (attempt > 0)
            tw_sleep_ms(tw_backoff_next(&backoff), &job->cancel);
        rc = scen_snapshot_apply(store, plant, &st, job->req.id, err, errlen);
        scen_redis_result(svc, rc == TW_EIO || rc == TW_ETIMEDOUT ? rc : 0);
        if (rc != TW_EIO && rc != TW_ETIMEDOUT)
            break;
        tw_log(TW_LOG_WARN, "snapshot_failed", "id=%s attempt=%d error=\"%s\"", job->req.id,
               attempt + 1, err);
    }
    if (rc < 0)
        return rc;
    *snapshot_ms = st.snapshot_ms;
    tw_log(TW_LOG_INFO, "snapshot",
           "id=%s assets=%zu found=%zu machines_down=%zu values_ignored=%zu snapshot_ms=%" PRId64,
           job->req.id, st.assets, st.found, st.machines_down, st.values_ignored, st.snapshot_ms);
    return 0;
}

/* What a stopped run reports: the operator's cancel, the time limit, or the shutdown. */
static int stopped_status(const struct scen_service *svc, const struct scen_job *job, char *err,
                          size_t errlen)
{
    switch (__atomic_load_n(&job->stop, __ATOMIC_SEQ_CST)) {
    case SCEN_STOP_TIMEOUT:
        snprintf(err, errlen,
                 "stopped after the run time limit of %" PRId64
                 " s (TWIN_SCENARIO_MAX_RUN_S): ask for fewer variants or "
                 "replications, or a shorter horizon",
                 svc->cfg->max_run_s);
        return SCEN_ERROR;
    case SCEN_STOP_SHUTDOWN:
        snprintf(err, errlen,
                 "the scenario runner stopped before the run finished: submit it "
                 "again");
        return SCEN_ERROR;
    default:
        snprintf(err, errlen, "cancelled");
        return SCEN_CANCELLED;
    }
}

/* Snapshot and run; returns the status, *res set when OK. */
static int run_simulation(struct scen_service *svc, struct tw_store *store, struct scen_job *job,
                          struct scen_outcome *o, struct scn_result **res, char *err, size_t errlen)
{
    struct run_ctx ctx = {svc, job};
    struct sim_plant *plant = sim_plant_copy(svc->cfg->plant);
    int status = SCEN_ERROR;
    if (!plant) {
        snprintf(err, errlen, "out of memory");
        return SCEN_ERROR;
    }
    /* Without the live twin the calendar still starts now. */
    plant->epoch = (double)tw_now_ms() / 1000.0;
    if (!job->req.ignore_live) {
        int64_t t0 = tw_mono_ns();
        if (run_snapshot(svc, store, job, plant, &o->snapshot_ms, err, errlen) < 0)
            goto out;
        tw_histogram_observe(svc->m->snapshot_seconds, (double)(tw_mono_ns() - t0) / 1e9);
    }
    if (__atomic_load_n(&job->cancel, __ATOMIC_RELAXED)) {
        status = stopped_status(svc, job, err, errlen);
        goto out;
    }
    /* The snapshot changed initial conditions only, but a parameter check may depend on them
     * (a buffer's initial level against its capacity). */
    if (scn_spec_check(plant, &job->spec, err, errlen) < 0)
        goto out;
    int rc =
        scn_run(plant, &job->spec, svc->threads, &job->cancel, on_progress, &ctx, res, err, errlen);
    if (rc == 0)
        status = SCEN_OK;
    else if (rc == SIM_ECANCEL)
        status = stopped_status(svc, job, err, errlen);
    else if (!err[0])
        snprintf(err, errlen, "the simulation failed (code %d)", rc);
out:
    sim_plant_free(plant);
    return status;
}

static void run_fill_outcome(const struct scen_job *job, struct scen_outcome *o)
{
    memcpy(o->id, job->req.id, sizeof(o->id));
    o->name = job->req.name;
    o->replications = job->spec.replications;
    o->horizon_ms = (int64_t)llround(job->spec.horizon * 1000.0);
    o->warmup_ms = (int64_t)llround(job->spec.warmup * 1000.0);
    o->seed = job->spec.seed;
    o->n_sweep_params = job->spec.has_sweep ? job->spec.sweep.n_params : 0;
    for (size_t i = 0; i < o->n_sweep_params && i < SCN_MAX_SWEEP_PARAMS; i++)
        o->sweep_params[i] = job->spec.sweep.params[i].path;
}

static void run_final_progress(struct scen_service *svc, const struct scen_job *job)
{
    struct scen_progress p = {.state = SCEN_RUNNING,
                              .percent = 100.0,
                              .eta_ms = 0,
                              .replications_done = job->reps_total,
                              .replications_total = job->reps_total};
    memcpy(p.id, job->req.id, sizeof(p.id));
    scen_publish_progress(svc, &p);
}

void scen_job_run(struct scen_service *svc, struct tw_store *store, struct scen_job *job)
{
    struct scen_outcome o = {0};
    struct scn_result *res = NULL;
    char err[ERR_MAX] = "";
    int64_t t0 = tw_mono_ms();
    run_fill_outcome(job, &o);
    tw_log(TW_LOG_INFO, "run_started",
           "id=%s runs=%" PRIu64 " replications=%u horizon_h=%.6g work_h=%.6g threads=%u live=%s",
           job->req.id, scen_spec_runs(&job->spec), job->spec.replications,
           job->spec.horizon / 3600.0, job->work_hours, svc->threads,
           job->req.ignore_live ? "no" : "yes");
    o.status = run_simulation(svc, store, job, &o, &res, err, sizeof(err));
    o.r = res;
    o.error = o.status == SCEN_OK ? "" : err;
    o.wall_ms = tw_mono_ms() - t0;
    o.finished_ms = tw_now_ms();
    if (res) {
        tw_counter_add(svc->m->events, res->events);
        tw_counter_add(svc->m->replications, res->replications_run);
    }
    tw_histogram_observe(svc->m->run_seconds, (double)o.wall_ms / 1000.0);
    if (o.status == SCEN_OK)
        run_final_progress(svc, job);
    tw_log(o.status == SCEN_OK ? TW_LOG_INFO : TW_LOG_WARN, "run_finished",
           "id=%s status=%s wall_ms=%" PRId64 " events=%" PRIu64 " error=\"%s\"", job->req.id,
           scen_status_word(o.status), o.wall_ms, res ? res->events : 0, o.error);
    scen_publish_outcome(svc, store, &o);
    if (res)
        scn_result_free(res);
}
