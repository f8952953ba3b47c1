/* SPDX-License-Identifier: Apache-2.0 */
/* The discrete-event engine (sim.h): an event heap, one random stream per source, machines,
 * buffers, stock and demand, and the statistics of one replication. */
#include "sim.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- random streams: xoshiro256** seeded through splitmix64 ---------------------------- */

struct rng {
    uint64_t s[4];
};

static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

/* Stream `source` of replication `rep`: the same triple always gives the same numbers. */
static void rng_seed(struct rng *r, uint64_t seed, uint32_t rep, uint32_t source)
{
    uint64_t x = seed;
    uint64_t mix = splitmix64(&x) ^ ((uint64_t)rep * 0xd1b54a32d192ed03ULL);
    mix = splitmix64(&mix) ^ ((uint64_t)source * 0x8cb92ba72f3d8dd7ULL);
    for (int i = 0; i < 4; i++)
        r->s[i] = splitmix64(&mix);
}

static inline uint64_t rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

static inline uint64_t rng_next(struct rng *r)
{
    uint64_t *s = r->s;
    uint64_t result = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

/* Uniform in (0, 1): never 0, so log() is finite. */
static inline double rng_u(struct rng *r)
{
    return ((double)(rng_next(r) >> 11) + 0.5) * 0x1.0p-53;
}

static inline double rng_exp(struct rng *r, double mean)
{
    return -log(rng_u(r)) * mean;
}

static double rng_normal(struct rng *r)
{
    double u, v, s;
    do {
        u = 2.0 * rng_u(r) - 1.0;
        v = 2.0 * rng_u(r) - 1.0;
        s = u * u + v * v;
    } while (s >= 1.0 || s == 0.0);
    return u * sqrt(-2.0 * log(s) / s);
}

static double draw(const struct sim_dist *d, struct rng *r)
{
    double x;
    switch (d->kind) {
    case SIM_DIST_FIXED:
        return d->a * d->scale;
    case SIM_DIST_EXP:
        return rng_exp(r, d->a) * d->scale;
    case SIM_DIST_UNIFORM:
        return (d->a + (d->b - d->a) * rng_u(r)) * d->scale;
    case SIM_DIST_TRIANGULAR: {
        double u = rng_u(r), w = d->c - d->a, f = (d->b - d->a) / w;
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
    }
    return 0.0;
}

/* ---- the event heap ------------------------------------------------------------------ */

enum ev_type {
    EV_ARRIVAL = 0, /* an order arrives (gen-checked: demand changes redraw it) */
    EV_DONE,        /* a machine finishes its part (gen-checked) */
    EV_BFAIL,       /* a machine fails after its busy time to failure ran out (gen-checked) */
    EV_TFAIL,       /* a machine fails on the clock */
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

static inline bool ev_before(const struct ev *a, const struct ev *b)
{
    return a->t < b->t || (a->t == b->t && (int32_t)(a->seq - b->seq) < 0);
}

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
    bool holding;           /* blocked: a finished part waits for space */
    int hold_out;           /* the buffer it waits for */
    uint32_t next_blocked;  /* FIFO link in that buffer's blocked list (UINT32_MAX = end) */
    uint32_t gen;
    struct job job;
    double remaining;       /* processing time left of the part (valid while busy) */
    double run_start;       /* when the current run of processing started */
    double ttf_left;        /* busy basis: busy time left to the next failure */
    uint32_t since_setup;
    struct rng proc, fail;
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
    struct rng *sup_rng;
    uint32_t sup_cap;

    /* run state */
    const struct sim_plant *p;
    const struct sim_opts *o;
    double now;
    bool on_shift;
    double demand_factor;
    uint32_t arrival_gen;
    struct rng dem;
    int err;
    /* global statistics */
    double wip, acc_wip, acc_backlog, last_glob;
    double lead_sum;
    uint64_t completed, orders, lost, late, ontime, scrap;
};

static int queue_push(struct queue *q, struct job j)
{
    if (q->len == q->cap) {
        uint32_t ncap = q->cap ? q->cap * 2 : 64;
        if (ncap > (1u << 22))
            return SIM_ELIMIT; /* 4 M parts queued (100 MB): the run stopped meaning much */
        struct job *v = malloc((size_t)ncap * sizeof *v);
        if (!v)
            return SIM_ENOMEM;
        for (uint32_t i = 0; i < q->len; i++)
            v[i] = q->v[(q->head + i) & (q->cap - 1)];
        free(q->v);
        q->v = v;
        q->cap = ncap;
        q->head = 0;
    }
    q->v[(q->head + q->len) & (q->cap - 1)] = j;
    q->len++;
    return 0;
}

static struct job queue_pop(struct queue *q)
{
    struct job j = q->v[q->head];
    q->head = (q->head + 1) & (q->cap - 1);
    q->len--;
    return j;
}

static int heap_push(struct sim_ctx *c, double t, uint32_t type, uint32_t idx, uint32_t gen)
{
    if (c->heap_len == c->heap_cap) {
        uint32_t ncap = c->heap_cap ? c->heap_cap * 2 : 256;
        struct ev *h = realloc(c->heap, (size_t)ncap * sizeof *h);
        if (!h)
            return SIM_ENOMEM;
        c->heap = h;
        c->heap_cap = ncap;
    }
    struct ev e = {t, c->seq++, type, idx, gen};
    uint32_t i = c->heap_len++;
    while (i > 0) {
        uint32_t parent = (i - 1) / 2;
        if (!ev_before(&e, &c->heap[parent]))
            break;
        c->heap[i] = c->heap[parent];
        i = parent;
    }
    c->heap[i] = e;
    return 0;
}

static struct ev heap_pop(struct sim_ctx *c)
{
    struct ev top = c->heap[0];
    struct ev last = c->heap[--c->heap_len];
    uint32_t n = c->heap_len, i = 0;
    for (;;) {
        uint32_t l = 2 * i + 1;
        if (l >= n)
            break;
        uint32_t best = l;
        if (l + 1 < n && ev_before(&c->heap[l + 1], &c->heap[l]))
            best = l + 1;
        if (!ev_before(&c->heap[best], &last))
            break;
        c->heap[i] = c->heap[best];
        i = best;
    }
    if (n > 0)
        c->heap[i] = last;
    return top;
}

/* Schedules an event; a failure is remembered in c->err and ends the run. */
static void at(struct sim_ctx *c, double t, uint32_t type, uint32_t idx, uint32_t gen)
{
    int rc = heap_push(c, t, type, idx, gen);
    if (rc && !c->err)
        c->err = rc;
}

/* ---- statistics ---------------------------------------------------------------------- */

static void glob_touch(struct sim_ctx *c)
{
    double dt = c->now - c->last_glob;
    c->acc_wip += c->wip * dt;
    c->acc_backlog += (double)c->buf[c->p->n_buffers].q.len * dt;
    c->last_glob = c->now;
}

static void buf_touch(struct sim_ctx *c, struct buffer_rt *b)
{
    b->acc += (double)b->q.len * (c->now - b->last);
    b->last = c->now;
}

static void stock_touch(struct sim_ctx *c, struct stock_rt *s)
{
    double dt = c->now - s->last;
    s->acc_level += s->level * dt;
    if (s->waiting)
        s->acc_out += dt;
    s->last = c->now;
}

static void st_touch(struct sim_ctx *c, struct station_rt *s)
{
    double dt = c->now - s->last;
    if (dt > 0) {
        for (int k = 0; k < M_NCAT; k++)
            s->acc[k] += (double)s->count[k] * dt;
        s->last = c->now;
    }
}

/* May the station start parts now (shift calendar)? */
static inline bool st_may_work(const struct sim_ctx *c, uint32_t si)
{
    return c->on_shift || !c->p->stations[si].follows_shifts;
}

/* Re-accounts a machine after any change of its state. */
static void m_account(struct sim_ctx *c, struct machine *m)
{
    uint32_t cat;
    if (m->broken || m->forced)
        cat = M_DOWN;
    else if (m->busy)
        cat = M_BUSY;
    else if (m->holding)
        cat = M_BLOCKED;
    else if (!st_may_work(c, m->station))
        cat = M_OFF;
    else {
        const struct sim_station *sp = &c->p->stations[m->station];
        const struct station_rt *s = &c->st[m->station];
        cat = (sp->staff && s->n_busy >= sp->staff) ? M_OFF : M_STARVED;
    }
    if (cat != m->cat) {
        struct station_rt *s = &c->st[m->station];
        st_touch(c, s);
        s->count[m->cat]--;
        s->count[cat]++;
        m->cat = cat;
    }
}

static void st_account_all(struct sim_ctx *c, uint32_t si)
{
    struct station_rt *s = &c->st[si];
    for (uint32_t k = 0; k < s->n; k++)
        m_account(c, &c->m[s->first + k]);
}

/* ---- parts moving -------------------------------------------------------------------- */

static void try_start(struct sim_ctx *c, uint32_t si);

static void blocked_append(struct buffer_rt *b, struct sim_ctx *c, uint32_t mi)
{
    c->m[mi].next_blocked = UINT32_MAX;
    if (b->blocked_head == UINT32_MAX)
        b->blocked_head = mi;
    else
        c->m[b->blocked_tail].next_blocked = mi;
    b->blocked_tail = mi;
}

static uint32_t blocked_pop(struct buffer_rt *b, struct sim_ctx *c)
{
    uint32_t mi = b->blocked_head;
    b->blocked_head = c->m[mi].next_blocked;
    return mi;
}

/* A blocked machine gave its part away: it is free and its station may start again. */
static void release(struct sim_ctx *c, uint32_t mi)
{
    struct machine *m = &c->m[mi];
    m->holding = false;
    m_account(c, m);
    try_start(c, m->station);
}

static bool input_has_part(const struct sim_ctx *c, int input)
{
    if (input == SIM_NODE_SOURCE)
        return true;
    const struct buffer_rt *b =
        &c->buf[input == SIM_NODE_DEMAND ? c->p->n_buffers : (uint32_t)input];
    return b->q.len > 0 || b->blocked_head != UINT32_MAX;
}

/* Takes the next part of an input (which must have one). */
static struct job take(struct sim_ctx *c, int input)
{
    if (input == SIM_NODE_SOURCE) {
        glob_touch(c);
        c->wip += 1.0;
        return (struct job){c->now, c->now, 0};
    }
    bool demand = input == SIM_NODE_DEMAND;
    struct buffer_rt *b = &c->buf[demand ? c->p->n_buffers : (uint32_t)input];
    struct job j;
    if (demand) {
        glob_touch(c);
        j = queue_pop(&b->q);
        c->wip += 1.0;
        return j;
    }
    if (b->q.len > 0) {
        buf_touch(c, b);
        j = queue_pop(&b->q);
        if (b->blocked_head != UINT32_MAX) { /* a place freed: the first blocked part moves in */
            uint32_t mi = blocked_pop(b, c);
            struct job h = c->m[mi].job;
            h.t_in = c->now;
            int rc = queue_push(&b->q, h);
            if (rc && !c->err)
                c->err = rc;
            release(c, mi);
        }
        return j;
    }
    uint32_t mi = blocked_pop(b, c); /* direct handover from a blocked machine */
    j = c->m[mi].job;
    j.t_in = c->now;
    release(c, mi);
    return j;
}

/* Processing of machine mi (re)starts now with m->remaining left. */
static void run(struct sim_ctx *c, uint32_t mi)
{
    struct machine *m = &c->m[mi];
    const struct sim_station *sp = &c->p->stations[m->station];
    m->run_start = c->now;
    m->running = true;
    m->gen++;
    if (sp->fail_basis == SIM_FAIL_BUSY && m->ttf_left < m->remaining)
        at(c, c->now + m->ttf_left, EV_BFAIL, mi, m->gen);
    else
        at(c, c->now + m->remaining, EV_DONE, mi, m->gen);
}

/* Stops processing (a failure or a forced stop): the time left is kept. */
static void suspend(struct sim_ctx *c, struct machine *m)
{
    if (!m->running)
        return;
    double ran = c->now - m->run_start;
    m->remaining -= ran;
    if (m->remaining < 0)
        m->remaining = 0;
    if (c->p->stations[m->station].fail_basis == SIM_FAIL_BUSY)
        m->ttf_left -= ran;
    m->running = false;
    m->gen++; /* its pending DONE/BFAIL is stale now */
}

static void stock_set_waiting(struct sim_ctx *c, uint32_t si, bool waiting)
{
    struct station_rt *s = &c->st[si];
    if (s->mat_wait == waiting)
        return;
    struct stock_rt *k = &c->stk[c->p->stations[si].stock];
    stock_touch(c, k);
    s->mat_wait = waiting;
    if (waiting) {
        if (k->waiting++ == 0)
            k->outs++;
    } else {
        k->waiting--;
    }
}

static void reorder_check(struct sim_ctx *c, uint32_t stock);

/* Starts parts on the station's free machines while it has input, staff and material. */
static void try_start(struct sim_ctx *c, uint32_t si)
{
    const struct sim_station *sp = &c->p->stations[si];
    struct station_rt *s = &c->st[si];
    if (!st_may_work(c, si))
        return;
    bool short_of_material = false;
    for (uint32_t k = 0; k < s->n; k++) {
        uint32_t mi = s->first + k;
        struct machine *m = &c->m[mi];
        if (m->busy || m->holding || m->broken || m->forced)
            continue;
        if (sp->staff && s->n_busy >= sp->staff)
            break;
        if (!input_has_part(c, sp->input))
            break;
        if (sp->stock >= 0) {
            struct stock_rt *st = &c->stk[sp->stock];
            if (st->level + 1e-9 < sp->consume) {
                short_of_material = true;
                break;
            }
            stock_touch(c, st);
            st->level -= sp->consume;
            if (st->level < st->min_level)
                st->min_level = st->level;
            reorder_check(c, (uint32_t)sp->stock);
        }
        /* take() may release blocked machines upstream and start them; never this station's
         * (the parser refuses loops), so m is still free afterwards. */
        struct job j = take(c, sp->input);
        double wait = c->now - j.t_in;
        s->wait_sum += wait;
        s->started++;
        if (wait > 0)
            s->waited++;
        m->job = j;
        m->busy = true;
        s->n_busy++;
        double t = draw(&sp->cycle, &m->proc);
        if (sp->setup_every && ++m->since_setup >= sp->setup_every) {
            m->since_setup = 0;
            t += draw(&sp->setup, &m->proc);
        }
        m->remaining = t;
        run(c, mi);
        m_account(c, m);
    }
    if (sp->stock >= 0) /* a stock-out lasts while a free machine has work but no material */
        stock_set_waiting(c, si, short_of_material);
    if (sp->staff) /* staff taken or freed changes whether idle machines count as starved */
        st_account_all(c, si);
}

/* A finished part goes to the sink or a buffer; a full buffer blocks the machine. */
static void put(struct sim_ctx *c, uint32_t mi, int out)
{
    struct machine *m = &c->m[mi];
    if (out == SIM_NODE_SINK) {
        glob_touch(c);
        c->wip -= 1.0;
        c->completed++;
        double lead = c->now - m->job.t_arr;
        c->lead_sum += lead;
        double due = c->p->demand.due;
        if (m->job.order && due > 0) {
            if (lead > due)
                c->late++;
            else
                c->ontime++;
        }
        return;
    }
    struct buffer_rt *b = &c->buf[out];
    if (b->q.len < b->cap) {
        buf_touch(c, b);
        struct job j = m->job;
        j.t_in = c->now;
        int rc = queue_push(&b->q, j);
        if (rc && !c->err)
            c->err = rc;
    } else {
        m->holding = true;
        m->hold_out = out;
        m->job.t_in = c->now;
        blocked_append(b, c, mi);
    }
    for (uint32_t k = 0; k < b->n_consumers; k++)
        try_start(c, b->consumers[k]);
}

static void on_done(struct sim_ctx *c, uint32_t mi)
{
    struct machine *m = &c->m[mi];
    const struct sim_station *sp = &c->p->stations[m->station];
    struct station_rt *s = &c->st[m->station];
    if (sp->fail_basis == SIM_FAIL_BUSY)
        m->ttf_left -= c->now - m->run_start;
    m->running = false;
    m->busy = false;
    s->n_busy--;
    s->parts++;
    if (sp->scrap > 0 && rng_u(&m->proc) < sp->scrap) {
        glob_touch(c);
        c->wip -= 1.0;
        c->scrap++;
    } else {
        int out = sp->outputs[0];
        if (sp->n_outputs > 1) {
            double u = rng_u(&m->proc), acc = 0;
            for (uint32_t k = 0; k < sp->n_outputs; k++) {
                acc += sp->output_share[k];
                out = sp->outputs[k];
                if (u < acc)
                    break;
            }
        }
        put(c, mi, out);
    }
    m_account(c, m);
    try_start(c, m->station);
}

static double ttf_draw(struct sim_ctx *c, struct machine *m)
{
    const struct sim_station *sp = &c->p->stations[m->station];
    return draw(&sp->ttf, &m->fail) * sp->mtbf_factor;
}

static void on_fail(struct sim_ctx *c, uint32_t mi)
{
    struct machine *m = &c->m[mi];
    const struct sim_station *sp = &c->p->stations[m->station];
    suspend(c, m);
    if (sp->fail_basis == SIM_FAIL_BUSY)
        m->ttf_left = 0;
    m->broken = true;
    m_account(c, m);
    at(c, c->now + draw(&sp->ttr, &m->fail), EV_REPAIR, mi, 0);
}

/* The machine may work again if nothing else holds it down. */
static void m_up(struct sim_ctx *c, uint32_t mi)
{
    struct machine *m = &c->m[mi];
    if (m->broken || m->forced)
        return;
    if (m->busy)
        run(c, mi);
    m_account(c, m);
    if (!m->busy && !m->holding)
        try_start(c, m->station);
}

static void on_repair(struct sim_ctx *c, uint32_t mi)
{
    struct machine *m = &c->m[mi];
    const struct sim_station *sp = &c->p->stations[m->station];
    m->broken = false;
    if (sp->fail_basis == SIM_FAIL_TIME)
        at(c, c->now + ttf_draw(c, m), EV_TFAIL, mi, 0);
    else if (sp->fail_basis == SIM_FAIL_BUSY)
        m->ttf_left = ttf_draw(c, m);
    m_up(c, mi);
}

/* ---- supply -------------------------------------------------------------------------- */

static void deliver_at(struct sim_ctx *c, uint32_t sup, double qty, double t)
{
    uint32_t slot = 0;
    while (slot < c->dl_cap && c->dl[slot].used)
        slot++;
    if (slot == c->dl_cap) {
        uint32_t ncap = c->dl_cap ? c->dl_cap * 2 : 16;
        struct delivery *d = realloc(c->dl, (size_t)ncap * sizeof *d);
        if (!d) {
            if (!c->err)
                c->err = SIM_ENOMEM;
            return;
        }
        memset(d + c->dl_cap, 0, (size_t)(ncap - c->dl_cap) * sizeof *d);
        c->dl = d;
        c->dl_cap = ncap;
    }
    c->dl[slot] = (struct delivery){sup, qty, 0, true};
    at(c, t, EV_DELIVERY, slot, 0);
}

/* The delay of one delivery: its lead time, plus a late delay when it is unreliable. */
static double supply_delay(struct sim_ctx *c, uint32_t sup)
{
    const struct sim_supplier *sp = &c->p->suppliers[sup];
    struct rng *r = &c->sup_rng[sup];
    double d = draw(&sp->lead, r);
    if (sp->reliability < 1.0 && rng_u(r) >= sp->reliability)
        d += draw(&sp->late, r);
    return d;
}

static void reorder_check(struct sim_ctx *c, uint32_t stock)
{
    for (uint32_t k = 0; k < c->p->n_suppliers; k++) {
        const struct sim_supplier *sp = &c->p->suppliers[k];
        if (sp->stock != (int)stock || sp->policy != SIM_SUPPLY_REORDER)
            continue;
        struct stock_rt *st = &c->stk[stock];
        for (int n = 0; n < 1000 && st->level + st->on_order <= sp->reorder; n++) {
            st->on_order += sp->lot;
            deliver_at(c, k, sp->lot, c->now + supply_delay(c, k));
        }
    }
}

static void on_delivery(struct sim_ctx *c, uint32_t slot)
{
    struct delivery *d = &c->dl[slot];
    /* A late-supplier perturbation delays deliveries falling due inside its reach. */
    for (size_t k = 0; k < c->o->n_perturb; k++) {
        const struct sim_perturb *pt = &c->o->perturb[k];
        if (pt->kind == SIM_PERTURB_SUPPLIER_LATE && pt->supplier == (int)d->supplier &&
            c->now >= pt->start && c->late_left[k] > 0 && !(d->delayed & (1ULL << k))) {
            c->late_left[k]--;
            d->delayed |= 1ULL << k;
            at(c, c->now + pt->delay, EV_DELIVERY, slot, 0);
            return;
        }
    }
    const struct sim_supplier *sp = &c->p->suppliers[d->supplier];
    struct stock_rt *st = &c->stk[sp->stock];
    stock_touch(c, st);
    st->level += d->qty;
    if (sp->policy == SIM_SUPPLY_REORDER)
        st->on_order -= d->qty;
    d->used = false;
    for (uint32_t si = 0; si < c->p->n_stations; si++)
        if (c->p->stations[si].stock == sp->stock)
            try_start(c, si);
    reorder_check(c, (uint32_t)sp->stock);
}

static void on_periodic(struct sim_ctx *c, uint32_t sup)
{
    const struct sim_supplier *sp = &c->p->suppliers[sup];
    deliver_at(c, sup, sp->lot, c->now + supply_delay(c, sup));
    at(c, c->now + sp->period, EV_PERIODIC, sup, 0);
}

/* ---- demand -------------------------------------------------------------------------- */

static double demand_rate_max(const struct sim_ctx *c)
{
    const struct sim_demand *d = &c->p->demand;
    return d->rate * d->factor * c->demand_factor * (1.0 + d->season_amplitude);
}

/* Draws the next order arrival from now (Poisson: thinning against the seasonal peak). */
static void next_arrival(struct sim_ctx *c)
{
    const struct sim_demand *d = &c->p->demand;
    c->arrival_gen++;
    double f = d->factor * c->demand_factor;
    if (!(f > 0))
        return; /* no orders until the factor changes */
    if (d->kind == SIM_DEMAND_RENEWAL) {
        at(c, c->now + draw(&d->interarrival, &c->dem) / f, EV_ARRIVAL, 0, c->arrival_gen);
        return;
    }
    double lmax = demand_rate_max(c), t = c->now;
    for (int n = 0; n < 100000; n++) {
        t += rng_exp(&c->dem, 1.0 / lmax);
        if (d->season_period <= 0 || d->season_amplitude <= 0)
            break;
        double ph = 2.0 * M_PI * (c->p->epoch + t - d->season_peak) / d->season_period;
        double ratio = (1.0 + d->season_amplitude * cos(ph)) / (1.0 + d->season_amplitude);
        if (rng_u(&c->dem) < ratio)
            break;
    }
    at(c, t, EV_ARRIVAL, 0, c->arrival_gen);
}

static void on_arrival(struct sim_ctx *c)
{
    const struct sim_demand *d = &c->p->demand;
    struct buffer_rt *b = &c->buf[c->p->n_buffers];
    c->orders++;
    if (b->q.len >= b->cap && d->lose_when_full) {
        c->lost++;
    } else {
        glob_touch(c);
        int rc = queue_push(&b->q, (struct job){c->now, c->now, 1});
        if (rc && !c->err)
            c->err = rc;
        for (uint32_t k = 0; k < b->n_consumers; k++)
            try_start(c, b->consumers[k]);
    }
    next_arrival(c);
}

/* ---- shifts and perturbations -------------------------------------------------------- */

/* Whether the calendar is on at absolute time ta, and the next time it changes (from now). */
static bool shift_state(const struct sim_shifts *sh, double epoch, double now, double *next)
{
    double ta = epoch + now;
    double base = floor(ta / sh->period) * sh->period, off = ta - base;
    bool on = false;
    double first = sh->start[0];
    for (uint32_t k = 1; k < sh->n; k++)
        if (sh->start[k] < first)
            first = sh->start[k];
    double nxt = base + sh->period + first; /* the first window of the next period */
    for (uint32_t k = 0; k < sh->n; k++) {
        if (off >= sh->start[k] && off < sh->end[k]) {
            on = true;
            nxt = base + sh->end[k];
            break;
        }
        if (off < sh->start[k] && base + sh->start[k] < nxt)
            nxt = base + sh->start[k];
    }
    *next = nxt - epoch;
    if (*next <= now) /* rounding at a boundary: move on by a microsecond */
        *next = now + 1e-6;
    return on;
}

static void on_shift(struct sim_ctx *c)
{
    double next;
    bool on = shift_state(&c->p->shifts, c->p->epoch, c->now, &next);
    at(c, next, EV_SHIFT, 0, 0);
    if (on == c->on_shift)
        return;
    c->on_shift = on;
    for (uint32_t si = 0; si < c->p->n_stations; si++) {
        if (!c->p->stations[si].follows_shifts)
            continue;
        st_account_all(c, si);
        if (on)
            try_start(c, si);
    }
}

static void force(struct sim_ctx *c, const struct sim_perturb *pt, bool on)
{
    const struct station_rt *s = &c->st[pt->station];
    for (uint32_t k = 0; k < s->n; k++) {
        if (pt->machine >= 0 && (uint32_t)pt->machine != k)
            continue;
        uint32_t mi = s->first + k;
        struct machine *m = &c->m[mi];
        if (on) {
            if (m->forced++ == 0 && !m->broken) {
                suspend(c, m);
                m_account(c, m);
            }
        } else if (m->forced > 0) {
            m->forced--;
            m_up(c, mi);
        }
    }
}

static void on_perturb(struct sim_ctx *c, uint32_t k, bool on)
{
    const struct sim_perturb *pt = &c->o->perturb[k];
    if (pt->kind == SIM_PERTURB_DOWN) {
        force(c, pt, on);
    } else if (pt->kind == SIM_PERTURB_DEMAND) {
        /* The product of the demand perturbations in force now (an OFF at t has ended). */
        double f = 1.0;
        for (size_t i = 0; i < c->o->n_perturb; i++) {
            const struct sim_perturb *q = &c->o->perturb[i];
            double start = q->start > 0 ? q->start : 0;
            bool open = !(q->duration > 0) || !isfinite(q->duration);
            if (q->kind == SIM_PERTURB_DEMAND && c->now >= start &&
                (open || c->now < start + q->duration))
                f *= q->factor;
        }
        c->demand_factor = f;
        (void)on;
        if (c->p->demand.kind != SIM_DEMAND_NONE)
            next_arrival(c); /* memoryless for Poisson; renewal restarts its interval */
    }
}

/* ---- statistics window --------------------------------------------------------------- */

static void stats_restart(struct sim_ctx *c)
{
    const struct sim_plant *p = c->p;
    glob_touch(c);
    c->acc_wip = c->acc_backlog = 0;
    c->lead_sum = 0;
    c->completed = c->orders = c->lost = c->late = c->ontime = c->scrap = 0;
    for (uint32_t i = 0; i < p->n_stations; i++) {
        struct station_rt *s = &c->st[i];
        st_touch(c, s);
        memset(s->acc, 0, sizeof s->acc);
        s->wait_sum = 0;
        s->started = s->waited = s->parts = 0;
    }
    for (uint32_t i = 0; i <= p->n_buffers; i++) {
        buf_touch(c, &c->buf[i]);
        c->buf[i].acc = 0;
    }
    for (uint32_t i = 0; i < p->n_stocks; i++) {
        struct stock_rt *s = &c->stk[i];
        stock_touch(c, s);
        s->acc_level = s->acc_out = 0;
        s->outs = s->waiting ? 1 : 0; /* an episode running at the restart counts */
        s->min_level = s->level;
    }
}

/* ---- set-up and the run -------------------------------------------------------------- */

static int grow(void **p, uint32_t *cap, uint32_t need, size_t size)
{
    if (need <= *cap)
        return 0;
    void *q = realloc(*p, (size_t)need * size);
    if (!q)
        return SIM_ENOMEM;
    *p = q;
    *cap = need;
    return 0;
}

struct sim_ctx *sim_ctx_new(void)
{
    return calloc(1, sizeof(struct sim_ctx));
}

void sim_ctx_free(struct sim_ctx *c)
{
    if (!c)
        return;
    for (uint32_t i = 0; i < c->buf_cap; i++)
        free(c->buf[i].q.v);
    free(c->heap);
    free(c->m);
    free(c->st);
    free(c->buf);
    free(c->stk);
    free(c->dl);
    free(c->late_left);
    free(c->sup_rng);
    free(c);
}

static int setup(struct sim_ctx *c, const struct sim_plant *p, const struct sim_opts *o)
{
    uint32_t n_m = 0;
    for (uint32_t i = 0; i < p->n_stations; i++)
        n_m += p->stations[i].machines;
    uint32_t old_buf_cap = c->buf_cap;
    if (grow((void **)&c->m, &c->m_cap, n_m ? n_m : 1, sizeof *c->m) ||
        grow((void **)&c->st, &c->st_cap, p->n_stations ? p->n_stations : 1, sizeof *c->st) ||
        grow((void **)&c->buf, &c->buf_cap, p->n_buffers + 1, sizeof *c->buf) ||
        grow((void **)&c->stk, &c->stk_cap, p->n_stocks ? p->n_stocks : 1, sizeof *c->stk) ||
        grow((void **)&c->sup_rng, &c->sup_cap, p->n_suppliers ? p->n_suppliers : 1,
             sizeof *c->sup_rng))
        return SIM_ENOMEM;
    for (uint32_t i = old_buf_cap; i < c->buf_cap; i++)
        memset(&c->buf[i].q, 0, sizeof c->buf[i].q);
    if (o->n_perturb > c->late_cap) {
        uint32_t *l = realloc(c->late_left, o->n_perturb * sizeof *l);
        if (!l)
            return SIM_ENOMEM;
        c->late_left = l;
        c->late_cap = o->n_perturb;
    }
    for (size_t k = 0; k < o->n_perturb; k++)
        c->late_left[k] = o->perturb[k].count ? o->perturb[k].count : 1;
    for (uint32_t i = 0; i < c->dl_cap; i++)
        c->dl[i].used = false;

    c->p = p;
    c->o = o;
    c->now = 0;
    c->heap_len = 0;
    c->seq = 0;
    c->err = 0;
    c->wip = c->acc_wip = c->acc_backlog = c->last_glob = 0;
    c->lead_sum = 0;
    c->completed = c->orders = c->lost = c->late = c->ontime = c->scrap = 0;
    c->demand_factor = 1.0;
    c->arrival_gen = 0;
    c->on_shift = true;

    /* Random sources: 0 demand, 1.. suppliers, then two per machine. */
    rng_seed(&c->dem, o->seed, o->replication, 0);
    for (uint32_t k = 0; k < p->n_suppliers; k++)
        rng_seed(&c->sup_rng[k], o->seed, o->replication, 1 + k);

    for (uint32_t i = 0; i <= p->n_buffers; i++) {
        struct buffer_rt *b = &c->buf[i];
        b->q.head = b->q.len = 0;
        b->blocked_head = b->blocked_tail = UINT32_MAX;
        b->acc = b->last = 0;
        b->n_consumers = 0;
        b->cap = i < p->n_buffers ? p->buffers[i].capacity : p->demand.backlog_cap;
    }
    for (uint32_t i = 0; i < p->n_stations; i++) {
        int in = p->stations[i].input;
        int bi = in == SIM_NODE_DEMAND ? (int)p->n_buffers : in;
        if (bi >= 0)
            c->buf[bi].consumers[c->buf[bi].n_consumers++] = i;
    }
    for (uint32_t i = 0; i < p->n_stocks; i++) {
        struct stock_rt *s = &c->stk[i];
        memset(s, 0, sizeof *s);
        s->level = s->min_level = p->stocks[i].initial;
    }
    /* Parts already in the buffers at the start: in the system since time 0. */
    for (uint32_t i = 0; i < p->n_buffers; i++)
        for (uint32_t k = 0; k < p->buffers[i].initial; k++) {
            int rc = queue_push(&c->buf[i].q, (struct job){0, 0, 0});
            if (rc)
                return rc;
            c->wip += 1.0;
        }

    uint32_t mi = 0;
    for (uint32_t i = 0; i < p->n_stations; i++) {
        const struct sim_station *sp = &p->stations[i];
        struct station_rt *s = &c->st[i];
        memset(s, 0, sizeof *s);
        s->first = mi;
        s->n = sp->machines;
        for (uint32_t k = 0; k < sp->machines; k++, mi++) {
            struct machine *m = &c->m[mi];
            memset(m, 0, sizeof *m);
            m->station = i;
            m->cat = M_STARVED;
            m->next_blocked = UINT32_MAX;
            m->hold_out = -1;
            s->count[M_STARVED]++;
            /* By (station, machine), so that changing one station's machines leaves every
             * other stream as it was (common random numbers across sweep variants). */
            uint32_t src = 1 + p->n_suppliers + 2 * (i * SIM_MAX_MACHINES + k);
            rng_seed(&m->proc, o->seed, o->replication, src);
            rng_seed(&m->fail, o->seed, o->replication, src + 1);
        }
    }
    return 0;
}

/* First events: failures, repairs of machines down at the start, demand, supply, shifts,
 * perturbations and the warm-up. */
static void schedule_start(struct sim_ctx *c)
{
    const struct sim_plant *p = c->p;
    const struct sim_opts *o = c->o;
    for (uint32_t mi = 0, i = 0; i < p->n_stations; i++) {
        const struct sim_station *sp = &p->stations[i];
        for (uint32_t k = 0; k < sp->machines; k++, mi++) {
            struct machine *m = &c->m[mi];
            if (k < SIM_MAX_MACHINES && sp->down_at_start[k]) {
                /* Down in the live twin: repaired after a repair time (so the station needs
                 * failure data; the parser asks for it when "live" can say "down"). */
                m->broken = true;
                m_account(c, m);
                at(c, draw(&sp->ttr, &m->fail), EV_REPAIR, mi, 0);
            } else if (sp->fail_basis == SIM_FAIL_NONE) {
                m->ttf_left = INFINITY;
            } else if (sp->fail_basis == SIM_FAIL_TIME) {
                at(c, ttf_draw(c, m), EV_TFAIL, mi, 0);
            } else {
                m->ttf_left = ttf_draw(c, m);
            }
        }
    }
    if (p->shifts.period > 0) {
        double next;
        c->on_shift = shift_state(&p->shifts, p->epoch, 0, &next);
        at(c, next, EV_SHIFT, 0, 0);
        for (uint32_t i = 0; i < p->n_stations; i++)
            st_account_all(c, i);
    }
    for (size_t k = 0; k < o->n_perturb; k++) {
        const struct sim_perturb *pt = &o->perturb[k];
        if (pt->kind == SIM_PERTURB_SUPPLIER_LATE)
            continue;
        at(c, pt->start > 0 ? pt->start : 0, EV_PERTURB_ON, (uint32_t)k, 0);
        if (pt->duration > 0 && isfinite(pt->duration))
            at(c, (pt->start > 0 ? pt->start : 0) + pt->duration, EV_PERTURB_OFF, (uint32_t)k,
               0);
    }
    for (uint32_t k = 0; k < p->n_suppliers; k++)
        if (p->suppliers[k].policy == SIM_SUPPLY_PERIODIC)
            at(c, p->suppliers[k].first, EV_PERIODIC, k, 0);
    for (uint32_t k = 0; k < p->n_stocks; k++)
        reorder_check(c, k);
    if (p->demand.kind != SIM_DEMAND_NONE)
        next_arrival(c);
    if (o->warmup > 0)
        at(c, o->warmup, EV_WARMUP, 0, 0);
    for (uint32_t i = 0; i < p->n_stations; i++)
        try_start(c, i);
}

static double ratio(double num, double den)
{
    return den > 0 ? num / den : NAN;
}

static void results(struct sim_ctx *c, double *kpis)
{
    const struct sim_plant *p = c->p;
    double T = c->o->horizon - c->o->warmup;
    glob_touch(c);
    kpis[SIM_KPI_THROUGHPUT] = (double)c->completed / T * 3600.0;
    kpis[SIM_KPI_LEAD_TIME] = ratio(c->lead_sum, (double)c->completed) / 3600.0;
    kpis[SIM_KPI_WIP] = c->acc_wip / T;
    kpis[SIM_KPI_ORDERS] = (double)c->orders;
    kpis[SIM_KPI_ORDERS_LOST] = (double)c->lost;
    kpis[SIM_KPI_LOST_FRACTION] = ratio((double)c->lost, (double)c->orders);
    kpis[SIM_KPI_ORDERS_LATE] = (double)c->late;
    kpis[SIM_KPI_SERVICE_LEVEL] = ratio((double)c->ontime, (double)(c->ontime + c->late));
    kpis[SIM_KPI_BACKLOG] = c->acc_backlog / T;
    kpis[SIM_KPI_BACKLOG_END] = (double)c->buf[p->n_buffers].q.len;
    kpis[SIM_KPI_SCRAP] = (double)c->scrap;
    double *k = kpis + SIM_KPI_N_GLOBAL;
    for (uint32_t i = 0; i < p->n_stations; i++, k += SIM_KPI_ST_N) {
        struct station_rt *s = &c->st[i];
        st_touch(c, s);
        double mt = T * (double)s->n;
        k[SIM_KPI_ST_UTILISATION] = s->acc[M_BUSY] / mt;
        k[SIM_KPI_ST_BLOCKED] = s->acc[M_BLOCKED] / mt;
        k[SIM_KPI_ST_STARVED] = s->acc[M_STARVED] / mt;
        k[SIM_KPI_ST_DOWN] = s->acc[M_DOWN] / mt;
        k[SIM_KPI_ST_DOWNTIME] = s->acc[M_DOWN] / 3600.0;
        k[SIM_KPI_ST_WAIT] = ratio(s->wait_sum, (double)s->started) / 3600.0;
        k[SIM_KPI_ST_WAIT_PROB] = ratio((double)s->waited, (double)s->started);
        k[SIM_KPI_ST_PARTS] = (double)s->parts;
    }
    for (uint32_t i = 0; i < p->n_buffers; i++, k += SIM_KPI_BUF_N) {
        buf_touch(c, &c->buf[i]);
        k[SIM_KPI_BUF_LEVEL] = c->buf[i].acc / T;
    }
    for (uint32_t i = 0; i < p->n_stocks; i++, k += SIM_KPI_STK_N) {
        struct stock_rt *s = &c->stk[i];
        stock_touch(c, s);
        k[SIM_KPI_STK_LEVEL] = s->acc_level / T;
        k[SIM_KPI_STK_STOCKOUT] = s->acc_out / T;
        k[SIM_KPI_STK_STOCKOUTS] = (double)s->outs;
        k[SIM_KPI_STK_MIN] = s->min_level;
    }
}

static bool opts_valid(const struct sim_plant *p, const struct sim_opts *o)
{
    if (!(o->horizon > 0) || !isfinite(o->horizon) || !(o->warmup >= 0) ||
        !(o->warmup < o->horizon) || o->n_perturb > 64 || (o->n_perturb && !o->perturb))
        return false;
    for (size_t k = 0; k < o->n_perturb; k++) {
        const struct sim_perturb *pt = &o->perturb[k];
        if (!(pt->start >= 0) || isnan(pt->duration))
            return false;
        switch (pt->kind) {
        case SIM_PERTURB_DOWN:
            if (pt->station < 0 || (uint32_t)pt->station >= p->n_stations || pt->machine < -1 ||
                (pt->machine >= 0 &&
                 (uint32_t)pt->machine >= p->stations[pt->station].machines))
                return false;
            break;
        case SIM_PERTURB_SUPPLIER_LATE:
            if (pt->supplier < 0 || (uint32_t)pt->supplier >= p->n_suppliers ||
                !(pt->delay >= 0) || !isfinite(pt->delay))
                return false;
            break;
        case SIM_PERTURB_DEMAND:
            if (!(pt->factor >= 0) || !isfinite(pt->factor))
                return false;
            break;
        default:
            return false;
        }
    }
    return true;
}

int sim_run(struct sim_ctx *c, const struct sim_plant *p, const struct sim_opts *o, double *kpis,
            uint64_t *events)
{
    if (events)
        *events = 0;
    if (!opts_valid(p, o))
        return SIM_EINVAL;
    int rc = setup(c, p, o);
    if (rc)
        return rc;
    schedule_start(c);
    uint64_t n = 0;
    while (c->heap_len > 0 && !c->err) {
        if (c->heap[0].t >= o->horizon)
            break;
        struct ev e = heap_pop(c);
        c->now = e.t;
        switch ((enum ev_type)e.type) {
        case EV_ARRIVAL:
            if (e.gen != c->arrival_gen)
                continue;
            on_arrival(c);
            break;
        case EV_DONE:
            if (e.gen != c->m[e.idx].gen)
                continue;
            on_done(c, e.idx);
            break;
        case EV_BFAIL:
            if (e.gen != c->m[e.idx].gen)
                continue;
            on_fail(c, e.idx);
            break;
        case EV_TFAIL:
            on_fail(c, e.idx);
            break;
        case EV_REPAIR:
            on_repair(c, e.idx);
            break;
        case EV_DELIVERY:
            on_delivery(c, e.idx);
            break;
        case EV_PERIODIC:
            on_periodic(c, e.idx);
            break;
        case EV_SHIFT:
            on_shift(c);
            break;
        case EV_PERTURB_ON:
            on_perturb(c, e.idx, true);
            break;
        case EV_PERTURB_OFF:
            on_perturb(c, e.idx, false);
            break;
        case EV_WARMUP:
            stats_restart(c);
            break;
        }
        n++;
        if ((n & 0xfff) == 0) {
            if (o->cancel && *o->cancel)
                c->err = SIM_ECANCEL;
            else if (o->max_events && n >= o->max_events)
                c->err = SIM_ELIMIT;
        }
    }
    if (events)
        *events = n;
    if (c->err)
        return c->err;
    c->now = o->horizon;
    results(c, kpis);
    return 0;
}

/* ---- the KPI catalogue --------------------------------------------------------------- */

static const char *const global_names[SIM_KPI_N_GLOBAL] = {
    "throughput", "lead_time", "wip",           "orders",  "orders_lost", "lost_fraction",
    "orders_late", "service_level", "backlog", "backlog_end", "scrap"};
static const char *const global_units[SIM_KPI_N_GLOBAL] = {
    "parts/h", "h", "parts", "orders", "orders", "1", "orders", "1", "orders", "orders", "parts"};
static const char *const station_names[SIM_KPI_ST_N] = {
    "utilisation", "blocked", "starved", "down", "downtime", "wait", "wait_probability",
    "parts"};
static const char *const station_units[SIM_KPI_ST_N] = {"1", "1", "1", "1",
                                                        "h", "h", "1", "parts"};
static const char *const stock_names[SIM_KPI_STK_N] = {"level", "stockout", "stockouts",
                                                       "min_level"};
static const char *const stock_units[SIM_KPI_STK_N] = {"units", "1", "episodes", "units"};

size_t sim_kpi_count(const struct sim_plant *p)
{
    return SIM_KPI_N_GLOBAL + (size_t)p->n_stations * SIM_KPI_ST_N +
           (size_t)p->n_buffers * SIM_KPI_BUF_N + (size_t)p->n_stocks * SIM_KPI_STK_N;
}

const char *sim_kpi_name(const struct sim_plant *p, size_t i, char *buf, size_t buflen)
{
    if (buflen)
        buf[0] = '\0';
    if (i < SIM_KPI_N_GLOBAL) {
        snprintf(buf, buflen, "%s", global_names[i]);
        return global_units[i];
    }
    i -= SIM_KPI_N_GLOBAL;
    if (i < (size_t)p->n_stations * SIM_KPI_ST_N) {
        snprintf(buf, buflen, "station.%s.%s", p->stations[i / SIM_KPI_ST_N].name,
                 station_names[i % SIM_KPI_ST_N]);
        return station_units[i % SIM_KPI_ST_N];
    }
    i -= (size_t)p->n_stations * SIM_KPI_ST_N;
    if (i < (size_t)p->n_buffers * SIM_KPI_BUF_N) {
        snprintf(buf, buflen, "buffer.%s.level", p->buffers[i].name);
        return "parts";
    }
    i -= (size_t)p->n_buffers * SIM_KPI_BUF_N;
    if (i < (size_t)p->n_stocks * SIM_KPI_STK_N) {
        snprintf(buf, buflen, "stock.%s.%s", p->stocks[i / SIM_KPI_STK_N].name,
                 stock_names[i % SIM_KPI_STK_N]);
        return stock_units[i % SIM_KPI_STK_N];
    }
    return NULL;
}

int sim_kpi_find(const struct sim_plant *p, const char *name)
{
    char buf[3 * SIM_NAME_MAX];
    size_t n = sim_kpi_count(p);
    for (size_t i = 0; i < n; i++) {
        sim_kpi_name(p, i, buf, sizeof buf);
        if (strcmp(buf, name) == 0)
            return (int)i;
    }
    return -1;
}
