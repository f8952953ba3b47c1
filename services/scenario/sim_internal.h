/* SPDX-License-Identifier: Apache-2.0 */
/* What the files of the discrete-event engine share: the runtime state of a replication, the
 * hot helpers (random streams, distributions, statistics, scheduling) inline, and the functions
 * each file offers the others: sim.c (the hot path: the heap, the loop, machines, parts and
 * orders), sim_setup.c, sim_env.c (supply, shifts, perturbations) and sim_kpi.c (statistics). */
#ifndef TWIN_SCENARIO_SIM_INTERNAL_H
#define TWIN_SCENARIO_SIM_INTERNAL_H

#include <math.h>
#include <stdbool.h>
#include <stdint.h>

#include "sim.h"
#include "twin/rng.h"

/* ---- random streams: xoshiro256** seeded through splitmix64 ---------------------------- */

/* Stream `source` of replication `rep`: the same triple always gives the same numbers. */
static inline void rng_seed(struct tw_rng *r, uint64_t seed, uint32_t rep, uint32_t source)
{
    uint64_t x = seed;
    uint64_t mix = tw_splitmix64(&x) ^ ((uint64_t)rep * 0xd1b54a32d192ed03ULL);
    mix = tw_splitmix64(&mix) ^ ((uint64_t)source * 0x8cb92ba72f3d8dd7ULL);
    tw_rng_seed(r, mix);
}

static inline double rng_exp(struct tw_rng *r, double mean)
{
    return -log(tw_rng_open(r)) * mean;
}

static inline double rng_normal(struct tw_rng *r)
{
    double u, v, s;
    do {
        u = 2.0 * tw_rng_open(r) - 1.0;
        v = 2.0 * tw_rng_open(r) - 1.0;
        s = u * u + v * v;
    } while (s >= 1.0 || s == 0.0);
    return u * sqrt(-2.0 * log(s) / s);
}

static inline double draw(const struct sim_dist *d, struct tw_rng *r)
{
    double x;
    switch (d->kind) {
    case SIM_DIST_FIXED:
        return d->a * d->scale;
    case SIM_DIST_EXP:
        return rng_exp(r, d->a) * d->scale;
    case SIM_DIST_UNIFORM:
        return (d->a + (d->b - d->a) * tw_rng_open(r)) * d->scale;
    case SIM_DIST_TRIANGULAR: {
        double u = tw_rng_open(r), w = d->c - d->a, f = (d->b - d->a) / w;
        x = u < f ? d->a + sqrt(u * w * (d->b - d->a)) : d->c - sqrt((1 - u) * w * (d->c - d->b));
        return x * d->scale;
    }
    case SIM_DIST_NORMAL:
        for (int i = 0; i < 16; i++) {
            x = d->a + d->b * rng_normal(r);
            if (x >= 0.0)
                return x * d->scale;
        }
        return 0.0;
    case SIM_DIST_LOGNORMAL:
        return exp(d->mu + d->sigma * rng_normal(r)) * d->scale;
    case SIM_DIST_WEIBULL:
        return d->b * pow(-log(tw_rng_open(r)), 1.0 / d->a) * d->scale;
    }
    return 0.0;
}

/* The life left to a weibull life that has lasted `age` already (the same units): inverting
 * the cumulative hazard, (age/λ)^k + E with E ~ Exp(1). age 0 draws a whole life, as draw(). */
static inline double draw_residual(const struct sim_dist *d, struct tw_rng *r, double age)
{
    if (d->kind != SIM_DIST_WEIBULL || !(age > 0))
        return draw(d, r);
    double scale = d->b * d->scale, e = -log(tw_rng_open(r));
    return scale * pow(pow(age / scale, d->a) + e, 1.0 / d->a) - age;
}

/* ---- events -------------------------------------------------------------------------- */

enum ev_type {
    EV_ARRIVAL = 0, /* an order arrives (gen-checked: demand changes redraw it) */
    EV_DONE,        /* a machine finishes its part (gen-checked) */
    EV_BFAIL,       /* a machine fails after its busy time to failure ran out (gen-checked) */
    EV_TFAIL,       /* a machine fails on the clock (checked against fail_gen: a maintenance
                     * cancels it) */
    EV_REPAIR,      /* a machine is repaired */
    EV_DELIVERY,    /* a supplier's delivery arrives (idx: delivery slot) */
    EV_PERIODIC,    /* a periodic supplier's delivery falls due (idx: supplier) */
    EV_SHIFT,       /* the shift calendar turns on or off */
    EV_PERTURB_ON,  /* a perturbation starts (idx: perturbation) */
    EV_PERTURB_OFF, /* a perturbation ends */
    EV_WARMUP,      /* statistics restart */
};

struct ev {
    double t;
    uint32_t seq;
    uint32_t type;
    uint32_t idx;
    uint32_t gen;
};

/* ---- the model's runtime state ------------------------------------------------------- */

struct job {
    double t_arr; /* when its order arrived, or when it was released from the source */
    double t_in;  /* when it entered the queue it is in */
    uint32_t order; /* 1 = from the demand (has a due time) */
};

/* A FIFO ring of jobs that grows on demand. */
struct queue {
    struct job *v;
    uint32_t cap, head, len;
};

enum mcat { M_BUSY = 0, M_BLOCKED, M_STARVED, M_DOWN, M_OFF, M_NCAT };

struct machine {
    uint32_t station;
    uint32_t cat;           /* enum mcat, as last accounted */
    bool busy;              /* has a part in process (running or suspended) */
    bool running;           /* the part's DONE/BFAIL event is pending */
    bool broken;
    uint32_t forced;        /* perturbations holding it down */
    uint32_t maintained;    /* of those, maintenances: a clock failure falling due meanwhile is
                             * void (the maintenance's end draws a new life) */
    bool holding;           /* blocked: a finished part waits for space */
    int hold_out;           /* the buffer it waits for */
    uint32_t next_blocked;  /* FIFO link in that buffer's blocked list (UINT32_MAX = end) */
    uint32_t gen;
    struct job job;
    double remaining;       /* processing work left of the part, in seconds at nominal speed
                             * (valid while busy) */
    double run_start;       /* when the current run of processing started */
    double ttf_left;        /* busy basis: busy time left to the next failure */
    double mtbf_factor;     /* its live wear factor (1 after a maintenance; a repair mends the
                             * failure, not the wear) */
    double age;             /* life used at the start (its live wear), until the first draw */
    double speed;           /* fraction of nominal speed (SLOW perturbations; 1 = nominal) */
    double ttf_slow;        /* multiplies ttf draws while slowed: Π factor^-exponent */
    uint32_t fail_gen;      /* the generation of its pending EV_TFAIL */
    uint32_t since_setup;
    struct tw_rng proc, fail;
};

struct station_rt {
    uint32_t first, n;      /* machines[first .. first+n) */
    uint32_t n_busy;        /* machines with a part (the staff they use) */
    uint32_t count[M_NCAT];
    double acc[M_NCAT];
    double last;
    bool mat_wait;          /* a machine waits for material */
    double wait_sum;
    uint64_t started, waited, parts;
};

struct buffer_rt {
    struct queue q;
    uint32_t cap;
    uint32_t blocked_head, blocked_tail; /* machines holding a part for it */
    double acc, last;
    uint32_t n_consumers;
    uint32_t consumers[SIM_MAX_STATIONS];
};

struct stock_rt {
    double level, on_order;
    double acc_level, acc_out, last, min_level;
    uint32_t waiting;       /* stations waiting for it */
    uint64_t outs;
};

struct delivery {
    uint32_t supplier;
    double qty;
    uint64_t delayed;       /* bit k: perturbation k already delayed it */
    bool used;
};

struct sim_ctx {
    struct ev *heap;
    uint32_t heap_len, heap_cap, seq;
    struct machine *m;
    uint32_t m_cap;
    struct station_rt *st;
    struct buffer_rt *buf; /* n_buffers + 1: the last one is the demand's backlog */
    struct stock_rt *stk;
    uint32_t st_cap, buf_cap, stk_cap;
    struct delivery *dl;
    uint32_t dl_cap;
    uint32_t *late_left;   /* per perturbation: deliveries it may still delay */
    size_t late_cap;
    struct tw_rng *sup_rng;
    uint32_t sup_cap;

    /* run state */
    const struct sim_plant *p;
    const struct sim_opts *o;
    double now;
    bool on_shift;
    double demand_factor;
    uint32_t arrival_gen;
    struct tw_rng dem;
    int err;
    /* global statistics */
    double wip, acc_wip, acc_backlog, last_glob;
    double lead_sum;
    uint64_t completed, orders, lost, late, ontime, scrap;
};

/* ---- the functions the engine's files share ------------------------------------------ */

/* sim.c: the event heap, part queues, machines and parts, order arrivals. */
int sim_heap_push(struct sim_ctx *c, double t, uint32_t type, uint32_t idx, uint32_t gen);
int sim_queue_push(struct queue *q, struct job j);
void sim_m_account(struct sim_ctx *c, struct machine *m);
void sim_st_account_all(struct sim_ctx *c, uint32_t si);
void sim_try_start(struct sim_ctx *c, uint32_t si);
void sim_suspend(struct sim_ctx *c, struct machine *m);
void sim_m_up(struct sim_ctx *c, uint32_t mi);
void sim_set_speed(struct sim_ctx *c, uint32_t mi, double speed);
void sim_next_arrival(struct sim_ctx *c);

/* sim_setup.c: the options check, the runtime state of a replication, its first events. */
bool sim_opts_valid(const struct sim_plant *p, const struct sim_opts *o);
int sim_setup(struct sim_ctx *c, const struct sim_plant *p, const struct sim_opts *o);
void sim_schedule_start(struct sim_ctx *c);

/* sim_env.c: supply, shifts and perturbations. */
void sim_reorder_check(struct sim_ctx *c, uint32_t stock);
void sim_on_delivery(struct sim_ctx *c, uint32_t slot);
void sim_on_periodic(struct sim_ctx *c, uint32_t sup);
bool sim_shift_state(const struct sim_shifts *sh, double epoch, double now, double *next);
void sim_on_shift(struct sim_ctx *c);
void sim_on_perturb(struct sim_ctx *c, uint32_t k, bool on);

/* sim_kpi.c: the statistics window and the results. */
void sim_stats_restart(struct sim_ctx *c);
void sim_results(struct sim_ctx *c, double *kpis);

/* Schedules an event; a failure is remembered in c->err and ends the run. */
static inline void at(struct sim_ctx *c, double t, uint32_t type, uint32_t idx, uint32_t gen)
{
    int rc = sim_heap_push(c, t, type, idx, gen);
    if (rc && !c->err)
        c->err = rc;
}

/* A machine's next time to failure: its failure stream, scaled by its own wear factor and by
 * a slowdown's (both 1 without them: x * 1 is exact, so plain runs keep their numbers). The
 * first draw of a machine that starts with some of its life used (its live wear as an age) is
 * what is left of that life; every later one is a new life. */
static inline double ttf_draw(struct sim_ctx *c, struct machine *m)
{
    const struct sim_station *sp = &c->p->stations[m->station];
    double age = m->age;
    m->age = 0.0;
    return draw_residual(&sp->ttf, &m->fail, age) * m->mtbf_factor * m->ttf_slow;
}

/* ---- statistics ---------------------------------------------------------------------- */

static inline void glob_touch(struct sim_ctx *c)
{
    double dt = c->now - c->last_glob;
    c->acc_wip += c->wip * dt;
    c->acc_backlog += (double)c->buf[c->p->n_buffers].q.len * dt;
    c->last_glob = c->now;
}

static inline void buf_touch(struct sim_ctx *c, struct buffer_rt *b)
{
    b->acc += (double)b->q.len * (c->now - b->last);
    b->last = c->now;
}

static inline void stock_touch(struct sim_ctx *c, struct stock_rt *s)
{
    double dt = c->now - s->last;
    s->acc_level += s->level * dt;
    if (s->waiting)
        s->acc_out += dt;
    s->last = c->now;
}

static inline void st_touch(struct sim_ctx *c, struct station_rt *s)
{
    double dt = c->now - s->last;
    if (dt > 0) {
        for (int k = 0; k < M_NCAT; k++)
            s->acc[k] += (double)s->count[k] * dt;
        s->last = c->now;
    }
}

#endif
