/* SPDX-License-Identifier: Apache-2.0 */
/* The discrete-event engine's hot path (sim.h): the event heap, the event loop of sim_run, and
 * parts from the order's arrival through the machines to the sink, in one file so that the
 * compiler inlines the handlers of the frequent events into the loop. */
#include "sim_internal.h"

#include <stdlib.h>

/* ---- the event heap ------------------------------------------------------------------ */

static inline bool ev_before(const struct ev *a, const struct ev *b)
{
    return a->t < b->t || (a->t == b->t && (int32_t)(a->seq - b->seq) < 0);
}

int sim_heap_push(struct sim_ctx *c, double t, uint32_t type, uint32_t idx, uint32_t gen)
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

/* ---- part queues and machine accounting ---------------------------------------------- */

int sim_queue_push(struct queue *q, struct job j)
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

/* May the station start parts now (shift calendar)? */
static inline bool st_may_work(const struct sim_ctx *c, uint32_t si)
{
    return c->on_shift || !c->p->stations[si].follows_shifts;
}

/* Re-accounts a machine after any change of its state. */
void sim_m_account(struct sim_ctx *c, struct machine *m)
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

void sim_st_account_all(struct sim_ctx *c, uint32_t si)
{
    struct station_rt *s = &c->st[si];
    for (uint32_t k = 0; k < s->n; k++)
        sim_m_account(c, &c->m[s->first + k]);
}

/* ---- parts moving -------------------------------------------------------------------- */

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
    sim_m_account(c, m);
    sim_try_start(c, m->station);
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
            int rc = sim_queue_push(&b->q, h);
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

/* Processing of machine mi (re)starts now with m->remaining left, at the machine's speed. */
static void run(struct sim_ctx *c, uint32_t mi)
{
    struct machine *m = &c->m[mi];
    const struct sim_station *sp = &c->p->stations[m->station];
    double left = m->remaining / m->speed; /* exact at speed 1 */
    m->run_start = c->now;
    m->running = true;
    m->gen++;
    if (sp->fail_basis == SIM_FAIL_BUSY && m->ttf_left < left)
        at(c, c->now + m->ttf_left, EV_BFAIL, mi, m->gen);
    else
        at(c, c->now + left, EV_DONE, mi, m->gen);
}

/* Stops processing (a failure, a forced stop, a change of speed): the work left is kept. */
void sim_suspend(struct sim_ctx *c, struct machine *m)
{
    if (!m->running)
        return;
    double ran = c->now - m->run_start;
    m->remaining -= ran * m->speed;
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

/* Starts parts on the station's free machines while it has input, staff and material. */
void sim_try_start(struct sim_ctx *c, uint32_t si)
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
            sim_reorder_check(c, (uint32_t)sp->stock);
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
        sim_m_account(c, m);
    }
    if (sp->stock >= 0) /* a stock-out lasts while a free machine has work but no material */
        stock_set_waiting(c, si, short_of_material);
    if (sp->staff) /* staff taken or freed changes whether idle machines count as starved */
        sim_st_account_all(c, si);
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
        int rc = sim_queue_push(&b->q, j);
        if (rc && !c->err)
            c->err = rc;
    } else {
        m->holding = true;
        m->hold_out = out;
        m->job.t_in = c->now;
        blocked_append(b, c, mi);
    }
    for (uint32_t k = 0; k < b->n_consumers; k++)
        sim_try_start(c, b->consumers[k]);
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
    if (sp->scrap > 0 && tw_rng_open(&m->proc) < sp->scrap) {
        glob_touch(c);
        c->wip -= 1.0;
        c->scrap++;
    } else {
        int out = sp->outputs[0];
        if (sp->n_outputs > 1) {
            double u = tw_rng_open(&m->proc), acc = 0;
            for (uint32_t k = 0; k < sp->n_outputs; k++) {
                acc += sp->output_share[k];
                out = sp->outputs[k];
                if (u < acc)
                    break;
            }
        }
        put(c, mi, out);
    }
    sim_m_account(c, m);
    sim_try_start(c, m->station);
}

static void on_fail(struct sim_ctx *c, uint32_t mi)
{
    struct machine *m = &c->m[mi];
    const struct sim_station *sp = &c->p->stations[m->station];
    sim_suspend(c, m);
    if (sp->fail_basis == SIM_FAIL_BUSY)
        m->ttf_left = 0;
    m->broken = true;
    sim_m_account(c, m);
    at(c, c->now + draw(&sp->ttr, &m->fail), EV_REPAIR, mi, 0);
}

/* The machine may work again if nothing else holds it down. */
void sim_m_up(struct sim_ctx *c, uint32_t mi)
{
    struct machine *m = &c->m[mi];
    if (m->broken || m->forced)
        return;
    if (m->busy)
        run(c, mi);
    sim_m_account(c, m);
    if (!m->busy && !m->holding)
        sim_try_start(c, m->station);
}

/* A part in process keeps the work done at the old speed; the rest runs at the new one. */
void sim_set_speed(struct sim_ctx *c, uint32_t mi, double speed)
{
    struct machine *m = &c->m[mi];
    if (speed == m->speed)
        return;
    bool was_running = m->running;
    sim_suspend(c, m);
    m->speed = speed;
    if (was_running)
        run(c, mi);
}

static void on_repair(struct sim_ctx *c, uint32_t mi)
{
    struct machine *m = &c->m[mi];
    const struct sim_station *sp = &c->p->stations[m->station];
    m->broken = false;
    if (sp->fail_basis == SIM_FAIL_TIME)
        at(c, c->now + ttf_draw(c, m), EV_TFAIL, mi, m->fail_gen);
    else if (sp->fail_basis == SIM_FAIL_BUSY)
        m->ttf_left = ttf_draw(c, m);
    sim_m_up(c, mi);
}

/* ---- demand -------------------------------------------------------------------------- */

static double demand_rate_max(const struct sim_ctx *c)
{
    const struct sim_demand *d = &c->p->demand;
    return d->rate * d->factor * c->demand_factor * (1.0 + d->season_amplitude);
}

/* Draws the next order arrival from now (Poisson: thinning against the seasonal peak). */
void sim_next_arrival(struct sim_ctx *c)
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
        if (tw_rng_open(&c->dem) < ratio)
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
        int rc = sim_queue_push(&b->q, (struct job){c->now, c->now, 1});
        if (rc && !c->err)
            c->err = rc;
        for (uint32_t k = 0; k < b->n_consumers; k++)
            sim_try_start(c, b->consumers[k]);
    }
    sim_next_arrival(c);
}

/* ---- the run ------------------------------------------------------------------------- */

int sim_run(struct sim_ctx *c, const struct sim_plant *p, const struct sim_opts *o, double *kpis,
            uint64_t *events)
{
    if (events)
        *events = 0;
    if (!sim_opts_valid(p, o))
        return SIM_EINVAL;
    int rc = sim_setup(c, p, o);
    if (rc)
        return rc;
    sim_schedule_start(c);
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
            if (e.gen != c->m[e.idx].fail_gen || c->m[e.idx].maintained)
                continue;
            on_fail(c, e.idx);
            break;
        case EV_REPAIR:
            on_repair(c, e.idx);
            break;
        case EV_DELIVERY:
            sim_on_delivery(c, e.idx);
            break;
        case EV_PERIODIC:
            sim_on_periodic(c, e.idx);
            break;
        case EV_SHIFT:
            sim_on_shift(c);
            break;
        case EV_PERTURB_ON:
            sim_on_perturb(c, e.idx, true);
            break;
        case EV_PERTURB_OFF:
            sim_on_perturb(c, e.idx, false);
            break;
        case EV_WARMUP:
            sim_stats_restart(c);
            break;
        }
        n++;
        if ((n & 0xfff) == 0) {
            if (o->cancel && __atomic_load_n(o->cancel, __ATOMIC_RELAXED))
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
    sim_results(c, kpis);
    return 0;
}
