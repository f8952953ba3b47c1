/* SPDX-License-Identifier: Apache-2.0 */
/* The job queue of twin-scenario: requests wait here, TWIN_SCENARIO_JOBS workers run them,
 * smallest estimated work first with aging, so a short what-if never waits behind a long sweep. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "scenario_service.h"
#include "twin/clock.h"
#include "twin/err.h"
#include "twin/log.h"

/*
 * Fairness. Up to TWIN_SCENARIO_JOBS requests run at once, each on all TWIN_SCENARIO_THREADS
 * threads (the kernel shares the cores between them), so a short request submitted while a
 * long sweep runs starts at once in a free slot. When every slot is busy, the next request to
 * start is the one with the least *effective* work: its size (replications x runs x horizon,
 * in simulated hours) divided by (1 + waited / TWIN_SCENARIO_AGING_S). Small what-ifs overtake
 * big sweeps, and a big sweep's effective size shrinks the longer it waits, so it cannot be
 * starved: after waiting k aging periods it beats any newcomer up to 1/(k+1) of its size.
 * Ties go to the earlier request.
 *
 * Progress ordering. QUEUED messages (with the position) and the first RUNNING message of a
 * job are published while holding the lock, so a client never sees QUEUED after RUNNING.
 * Publishing under this lock is safe: the MQTT handler never takes it.
 */

#define WAIT_STEP_MS 1000 /* longest sleep of an idle worker before it looks again */

struct scen_worker {
    struct scen_jobs *q;
    struct tw_store *store;
    pthread_t thread;
    bool started;
};

void scen_job_free(struct scen_job *job)
{
    if (!job)
        return;
    scen_request_free(&job->req);
    free(job);
}

static void jobs_gauges(struct scen_jobs *q)
{
    tw_gauge_set(q->svc->m->queue_depth, (int64_t)q->n_queued);
    tw_gauge_set(q->svc->m->running, (int64_t)q->n_running);
}

/* ---- ranking ------------------------------------------------------------------------------ */

struct ranked {
    struct scen_job *job;
    double effective;
    size_t order; /* submission order */
};

static double job_effective(const struct scen_job *j, int64_t now_ms, int64_t aging_ms)
{
    double waited = (double)(now_ms - j->submitted_ms);
    return j->work_hours / (1.0 + (waited > 0 ? waited : 0) / (double)aging_ms);
}

static int ranked_cmp(const void *pa, const void *pb)
{
    const struct ranked *a = pa, *b = pb;
    if (a->effective != b->effective)
        return a->effective < b->effective ? -1 : 1;
    return a->order < b->order ? -1 : a->order > b->order;
}

/* The queued job that starts next (NULL when none). Lock held. */
static struct scen_job *jobs_best(struct scen_jobs *q, int64_t now_ms)
{
    struct scen_job *best = NULL;
    double best_eff = 0;
    int64_t aging = q->svc->cfg->aging_s * 1000;
    for (struct scen_job *j = q->head; j; j = j->next) {
        if (j->state != SCEN_JOB_QUEUED)
            continue;
        double eff = job_effective(j, now_ms, aging);
        if (!best || eff < best_eff) {
            best = j;
            best_eff = eff;
        }
    }
    return best;
}

static void publish_queued(struct scen_jobs *q, struct scen_job *j, uint32_t position)
{
    struct scen_progress p = {.state = SCEN_QUEUED,
                              .eta_ms = -1,
                              .replications_total = j->reps_total,
                              .queue_position = position};
    memcpy(p.id, j->req.id, sizeof(p.id));
    j->position = position;
    scen_publish_progress(q->svc, &p);
}

/* Publishes the QUEUED position of every queued job whose position changed (or was never
 * published). Lock held. */
static void jobs_publish_positions(struct scen_jobs *q, int64_t now_ms)
{
    if (q->n_queued == 0)
        return;
    struct ranked *r = malloc(q->n_queued * sizeof(*r));
    if (!r)
        return; /* positions are advisory; the next change publishes them */
    size_t n = 0, order = 0;
    int64_t aging = q->svc->cfg->aging_s * 1000;
    for (struct scen_job *j = q->head; j; j = j->next, order++)
        if (j->state == SCEN_JOB_QUEUED && n < q->n_queued)
            r[n++] = (struct ranked){j, job_effective(j, now_ms, aging), order};
    qsort(r, n, sizeof(*r), ranked_cmp);
    for (size_t i = 0; i < n; i++)
        if (r[i].job->position != (uint32_t)i)
            publish_queued(q, r[i].job, (uint32_t)i);
    free(r);
}

static void jobs_unlink(struct scen_jobs *q, struct scen_job *job)
{
    for (struct scen_job **pp = &q->head; *pp; pp = &(*pp)->next) {
        if (*pp == job) {
            *pp = job->next;
            job->next = NULL;
            return;
        }
    }
}

static struct scen_job *jobs_find(struct scen_jobs *q, const char *id)
{
    for (struct scen_job *j = q->head; j; j = j->next)
        if (strcmp(j->req.id, id) == 0)
            return j;
    return NULL;
}

/* ---- the control loop's side ---------------------------------------------------------------- */

enum scen_admit scen_jobs_submit(struct scen_jobs *q, struct scen_job *job)
{
    enum scen_admit verdict = SCEN_ADMIT_OK;
    pthread_mutex_lock(&q->lock);
    if (q->closed)
        verdict = SCEN_ADMIT_CLOSED;
    else if (jobs_find(q, job->req.id))
        verdict = SCEN_ADMIT_DUPLICATE;
    else if (q->n_queued >= (size_t)q->svc->cfg->queue)
        verdict = SCEN_ADMIT_FULL;
    if (verdict == SCEN_ADMIT_OK) {
        struct scen_job **pp = &q->head;
        while (*pp)
            pp = &(*pp)->next;
        *pp = job;
        job->next = NULL;
        job->state = SCEN_JOB_QUEUED;
        job->submitted_ms = tw_mono_ms();
        job->position = UINT32_MAX;
        q->n_queued++;
        jobs_publish_positions(q, job->submitted_ms);
        jobs_gauges(q);
        pthread_cond_broadcast(&q->changed);
    }
    pthread_mutex_unlock(&q->lock);
    return verdict;
}

bool scen_jobs_has(struct scen_jobs *q, const char *id)
{
    if (!q->svc)
        return false;
    pthread_mutex_lock(&q->lock);
    bool found = jobs_find(q, id) != NULL;
    pthread_mutex_unlock(&q->lock);
    return found;
}

int scen_jobs_cancel(struct scen_jobs *q, const char *id, struct scen_job **removed)
{
    int rc = 0;
    *removed = NULL;
    pthread_mutex_lock(&q->lock);
    struct scen_job *j = jobs_find(q, id);
    if (!j) {
        rc = TW_ENOENT;
    } else if (j->state == SCEN_JOB_QUEUED) {
        jobs_unlink(q, j);
        q->n_queued--;
        *removed = j;
        jobs_publish_positions(q, tw_mono_ms());
        jobs_gauges(q);
    } else {
        int none = SCEN_STOP_NONE;
        __atomic_compare_exchange_n(&j->stop, &none, SCEN_STOP_CANCEL, false, __ATOMIC_SEQ_CST,
                                    __ATOMIC_SEQ_CST);
        __atomic_store_n(&j->cancel, 1, __ATOMIC_SEQ_CST);
    }
    pthread_mutex_unlock(&q->lock);
    return rc;
}

void scen_jobs_tick(struct scen_jobs *q, int64_t now_ms)
{
    int64_t limit_ms = q->svc->cfg->max_run_s * 1000;
    if (limit_ms <= 0)
        return;
    pthread_mutex_lock(&q->lock);
    for (struct scen_job *j = q->head; j; j = j->next) {
        if (j->state != SCEN_JOB_RUNNING || now_ms - j->started_ms < limit_ms)
            continue;
        int none = SCEN_STOP_NONE;
        if (__atomic_compare_exchange_n(&j->stop, &none, SCEN_STOP_TIMEOUT, false, __ATOMIC_SEQ_CST,
                                        __ATOMIC_SEQ_CST)) {
            tw_log(TW_LOG_WARN, "run_time_limit", "id=%s limit_s=%" PRId64, j->req.id,
                   q->svc->cfg->max_run_s);
            __atomic_store_n(&j->cancel, 1, __ATOMIC_SEQ_CST);
        }
    }
    pthread_mutex_unlock(&q->lock);
}

/* ---- workers -------------------------------------------------------------------------------- */

/* The next job to run (NULL once the queue is closed). */
static struct scen_job *jobs_take(struct scen_jobs *q)
{
    struct scen_job *job = NULL;
    pthread_mutex_lock(&q->lock);
    while (!q->closed && !(job = jobs_best(q, tw_mono_ms())))
        tw_cond_wait_ms(&q->changed, &q->lock, WAIT_STEP_MS);
    if (job && !q->closed) {
        int64_t now = tw_mono_ms();
        job->state = SCEN_JOB_RUNNING;
        job->started_ms = now;
        q->n_queued--;
        q->n_running++;
        tw_histogram_observe(q->svc->m->queue_seconds, (double)(now - job->submitted_ms) / 1000.0);
        struct scen_progress p = {
            .state = SCEN_RUNNING, .eta_ms = -1, .replications_total = job->reps_total};
        memcpy(p.id, job->req.id, sizeof(p.id));
        scen_publish_progress(q->svc, &p);
        __atomic_store_n(&job->last_progress_ms, now, __ATOMIC_RELAXED);
        jobs_publish_positions(q, now);
        jobs_gauges(q);
    } else {
        job = NULL;
    }
    pthread_mutex_unlock(&q->lock);
    return job;
}

static void jobs_done(struct scen_jobs *q, struct scen_job *job)
{
    pthread_mutex_lock(&q->lock);
    jobs_unlink(q, job);
    q->n_running--;
    jobs_gauges(q);
    pthread_cond_broadcast(&q->changed);
    pthread_mutex_unlock(&q->lock);
    scen_job_free(job);
}

static void *worker_main(void *arg)
{
    struct scen_worker *w = arg;
    struct scen_job *job;
    while ((job = jobs_take(w->q)) != NULL) {
        if (job->claimed)
            scen_claim_renew(w->q->svc, w->store, job->req.id);
        scen_job_run(w->q->svc, w->store, job);
        /* Released once the job is gone from the queue: a duplicate arriving in between is
         * refused by the queue and must not find the claim free. */
        bool claimed = job->claimed;
        char id[SCEN_ID_MAX + 1];
        memcpy(id, job->req.id, sizeof(id));
        jobs_done(w->q, job);
        if (claimed)
            scen_claim_release(w->q->svc, w->store, id);
    }
    return NULL;
}

int scen_jobs_start(struct scen_jobs *q, struct scen_service *svc)
{
    const struct scen_settings *cfg = svc->cfg;
    struct tw_store_config scfg = {.url = cfg->common.redis_url,
                                   .connect_timeout_ms = 2000,
                                   .command_timeout_ms = (int)cfg->redis_timeout_ms};
    memset(q, 0, sizeof(*q));
    q->svc = svc;
    pthread_mutex_init(&q->lock, NULL);
    tw_cond_init_monotonic(&q->changed);
    q->started = true;
    q->workers = calloc((size_t)cfg->jobs, sizeof(*q->workers));
    if (!q->workers)
        return TW_ENOMEM;
    q->n_workers = (size_t)cfg->jobs;
    for (size_t i = 0; i < q->n_workers; i++) {
        struct scen_worker *w = &q->workers[i];
        w->q = q;
        if (tw_store_create(&scfg, NULL, 0, &w->store) < 0)
            return TW_ENOMEM;
        if (pthread_create(&w->thread, NULL, worker_main, w) != 0)
            return TW_ENOMEM;
        w->started = true;
    }
    return 0;
}

/* Tells every running job to stop for the shutdown. Lock held. */
static void jobs_stop_running(struct scen_jobs *q)
{
    for (struct scen_job *j = q->head; j; j = j->next) {
        if (j->state != SCEN_JOB_RUNNING)
            continue;
        int none = SCEN_STOP_NONE;
        __atomic_compare_exchange_n(&j->stop, &none, SCEN_STOP_SHUTDOWN, false, __ATOMIC_SEQ_CST,
                                    __ATOMIC_SEQ_CST);
        __atomic_store_n(&j->cancel, 1, __ATOMIC_SEQ_CST);
    }
}

struct scen_job *scen_jobs_stop(struct scen_jobs *q, int64_t deadline_ms)
{
    if (!q->started)
        return NULL;
    pthread_mutex_lock(&q->lock);
    q->closed = true;
    pthread_cond_broadcast(&q->changed);
    while (q->n_running > 0 && tw_mono_ms() < deadline_ms)
        tw_cond_wait_ms(&q->changed, &q->lock, 100);
    if (q->n_running > 0) {
        tw_log(TW_LOG_WARN, "stopping_runs", "running=%zu reason=shutdown_grace_over",
               q->n_running);
        jobs_stop_running(q);
    }
    pthread_mutex_unlock(&q->lock);
    for (size_t i = 0; q->workers && i < q->n_workers; i++) {
        if (q->workers[i].started)
            pthread_join(q->workers[i].thread, NULL);
        tw_store_destroy(q->workers[i].store);
    }
    free(q->workers);
    q->workers = NULL;
    q->n_workers = 0;
    q->started = false;
    pthread_mutex_lock(&q->lock);
    struct scen_job *left = q->head; /* only queued jobs are left */
    q->head = NULL;
    q->n_queued = 0;
    jobs_gauges(q);
    pthread_mutex_unlock(&q->lock);
    return left;
}

void scen_jobs_destroy(struct scen_jobs *q)
{
    if (!q->svc)
        return;
    pthread_mutex_destroy(&q->lock);
    pthread_cond_destroy(&q->changed);
    q->svc = NULL;
}
