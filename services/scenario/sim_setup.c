/* SPDX-License-Identifier: Apache-2.0 */
/* The set-up of one replication (sim_internal.h): the scratch memory of a thread, the runtime
 * state built from the plant, the random streams seeded, the first events, and the options
 * check of sim_run. */
#include "sim_internal.h"

#include <stdlib.h>
#include <string.h>

/* ---- scratch memory ------------------------------------------------------------------ */

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

/* ---- one replication ----------------------------------------------------------------- */

/* Sizes the scratch memory for p and resets the runtime state to time 0. */
int sim_setup(struct sim_ctx *c, const struct sim_plant *p, const struct sim_opts *o)
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
            int rc = sim_queue_push(&c->buf[i].q, (struct job){0, 0, 0});
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
            m->speed = m->ttf_slow = 1.0;
            m->mtbf_factor = k < SIM_MAX_MACHINES && sp->machine_mtbf_factor[k] > 0
                                 ? sp->machine_mtbf_factor[k]
                                 : sp->mtbf_factor;
            /* A machine down at the start is repaired first: its next life is a new one. */
            m->age = k < SIM_MAX_MACHINES && !sp->down_at_start[k] && sp->machine_age[k] > 0
                         ? sp->machine_age[k]
                         : 0.0;
            s->count[M_STARVED]++;
            /* By (station, machine), so that changing one station's machines leaves every
             * other stream as it was (common random numbers across sweep variants). */
            uint32_t src = 1 + p->n_suppliers + 2 * (i * SIM_MAX_MACHINES + k);
            rng_seed(&m->proc, o->seed, o->replication, src);
            rng_seed(&m->fail, o->seed, o->replication, src + 1);
        }
    }
    /* Slowdowns in force from the start already scale the first times to failure. */
    for (size_t k = 0; k < o->n_perturb; k++)
        if (o->perturb[k].kind == SIM_PERTURB_SLOW)
            sim_on_perturb(c, (uint32_t)k, true);
    return 0;
}

/* First events: failures, repairs of machines down at the start, demand, supply, shifts,
 * perturbations and the warm-up. */
void sim_schedule_start(struct sim_ctx *c)
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
                sim_m_account(c, m);
                at(c, draw(&sp->ttr, &m->fail), EV_REPAIR, mi, 0);
            } else if (sp->fail_basis == SIM_FAIL_NONE) {
                m->ttf_left = INFINITY;
            } else if (sp->fail_basis == SIM_FAIL_TIME) {
                at(c, ttf_draw(c, m), EV_TFAIL, mi, m->fail_gen);
            } else {
                m->ttf_left = ttf_draw(c, m);
            }
        }
    }
    if (p->shifts.period > 0) {
        double next;
        c->on_shift = sim_shift_state(&p->shifts, p->epoch, 0, &next);
        at(c, next, EV_SHIFT, 0, 0);
        for (uint32_t i = 0; i < p->n_stations; i++)
            sim_st_account_all(c, i);
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
        sim_reorder_check(c, k);
    if (p->demand.kind != SIM_DEMAND_NONE)
        sim_next_arrival(c);
    if (o->warmup > 0)
        at(c, o->warmup, EV_WARMUP, 0, 0);
    for (uint32_t i = 0; i < p->n_stations; i++)
        sim_try_start(c, i);
}

/* A perturbation's station and machine (-1: all) exist. */
static bool machine_valid(const struct sim_plant *p, const struct sim_perturb *pt)
{
    return pt->station >= 0 && (uint32_t)pt->station < p->n_stations && pt->machine >= -1 &&
           (pt->machine < 0 || (uint32_t)pt->machine < p->stations[pt->station].machines);
}

/* The options and perturbations make sense for this plant. */
bool sim_opts_valid(const struct sim_plant *p, const struct sim_opts *o)
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
            if (!machine_valid(p, pt))
                return false;
            break;
        case SIM_PERTURB_MAINTAIN:
            if (!machine_valid(p, pt) || !(pt->duration > 0) || !isfinite(pt->duration))
                return false;
            break;
        case SIM_PERTURB_SLOW:
            if (!machine_valid(p, pt) || !(pt->factor > 0) || !(pt->factor <= 1) ||
                !(pt->exponent >= 0) || !(pt->exponent <= SIM_MAX_WEAR_EXPONENT))
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

