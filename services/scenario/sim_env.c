/* SPDX-License-Identifier: Apache-2.0 */
/* The engine's surroundings (sim_internal.h): supply (deliveries, reorder points, periodic
 * lots), the shift calendar and the perturbations of a scenario. */
#include "sim_internal.h"

#include <float.h>
#include <stdlib.h>
#include <string.h>

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
    struct tw_rng *r = &c->sup_rng[sup];
    double d = draw(&sp->lead, r);
    if (sp->reliability < 1.0 && tw_rng_open(r) >= sp->reliability)
        d += draw(&sp->late, r);
    return d;
}

void sim_reorder_check(struct sim_ctx *c, uint32_t stock)
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

void sim_on_delivery(struct sim_ctx *c, uint32_t slot)
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
            sim_try_start(c, si);
    sim_reorder_check(c, (uint32_t)sp->stock);
}

void sim_on_periodic(struct sim_ctx *c, uint32_t sup)
{
    const struct sim_supplier *sp = &c->p->suppliers[sup];
    deliver_at(c, sup, sp->lot, c->now + supply_delay(c, sup));
    at(c, c->now + sp->period, EV_PERIODIC, sup, 0);
}

/* ---- shifts and perturbations -------------------------------------------------------- */

/* Whether the calendar is on at absolute time ta, and the next time it changes (from now). */
bool sim_shift_state(const struct sim_shifts *sh, double epoch, double now, double *next)
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

void sim_on_shift(struct sim_ctx *c)
{
    double next;
    bool on = sim_shift_state(&c->p->shifts, c->p->epoch, c->now, &next);
    at(c, next, EV_SHIFT, 0, 0);
    if (on == c->on_shift)
        return;
    c->on_shift = on;
    for (uint32_t si = 0; si < c->p->n_stations; si++) {
        if (!c->p->stations[si].follows_shifts)
            continue;
        sim_st_account_all(c, si);
        if (on)
            sim_try_start(c, si);
    }
}

/* Whether perturbation q is in force now (one that ends at t is over at t). */
static bool in_force(const struct sim_ctx *c, const struct sim_perturb *q)
{
    double start = q->start > 0 ? q->start : 0;
    bool open = !(q->duration > 0) || !isfinite(q->duration);
    return c->now >= start && (open || c->now < start + q->duration);
}

/* Whether perturbation q names machine k of station si (itself or its whole station). */
static bool targets(const struct sim_perturb *q, uint32_t si, uint32_t k)
{
    return q->station == (int)si && (q->machine < 0 || (uint32_t)q->machine == k);
}

/* The end of a maintenance: the machine is as new. Its wear factor goes back to 1, and unless
 * it is broken (then the repair draws the next time to failure, with factor 1), the time to
 * failure is drawn again: the pending clock failure is cancelled by its generation, or the
 * busy time left replaced (the machine is held down here, so no busy-basis event is pending). */
static void renew(struct sim_ctx *c, uint32_t mi)
{
    struct machine *m = &c->m[mi];
    m->mtbf_factor = 1.0;
    if (m->broken)
        return;
    enum sim_fail_basis basis = c->p->stations[m->station].fail_basis;
    if (basis == SIM_FAIL_TIME) {
        m->fail_gen++;
        at(c, c->now + ttf_draw(c, m), EV_TFAIL, mi, m->fail_gen);
    } else if (basis == SIM_FAIL_BUSY) {
        m->ttf_left = ttf_draw(c, m);
    }
}

/* DOWN and MAINTAIN: the machines are held down while the perturbation lasts. */
static void force(struct sim_ctx *c, const struct sim_perturb *pt, bool on)
{
    const struct station_rt *s = &c->st[pt->station];
    for (uint32_t k = 0; k < s->n; k++) {
        if (!targets(pt, (uint32_t)pt->station, k))
            continue;
        uint32_t mi = s->first + k;
        struct machine *m = &c->m[mi];
        if (on) {
            m->maintained += pt->kind == SIM_PERTURB_MAINTAIN;
            if (m->forced++ == 0 && !m->broken) {
                sim_suspend(c, m);
                sim_m_account(c, m);
            }
        } else if (m->forced > 0) {
            if (pt->kind == SIM_PERTURB_MAINTAIN && m->maintained > 0) {
                m->maintained--;
                renew(c, mi); /* before sim_m_up restarts its part with the new ttf_left */
            }
            m->forced--;
            sim_m_up(c, mi);
        }
    }
}

/* Absurd but valid slowdowns stay numbers: a speed that underflowed to 0 would make 0 / 0 of a
 * part without work, and an infinite multiplier times a zero draw is NaN. */
#define SLOW_MIN_SPEED 1e-12

/* SLOW: each machine the perturbation names gets the product of the slowdowns in force on it
 * now, recomputed from all of them (no drift from dividing an ended one back out). */
static void slow(struct sim_ctx *c, const struct sim_perturb *pt)
{
    const struct station_rt *s = &c->st[pt->station];
    for (uint32_t k = 0; k < s->n; k++) {
        if (!targets(pt, (uint32_t)pt->station, k))
            continue;
        double speed = 1.0, ttf = 1.0;
        for (size_t i = 0; i < c->o->n_perturb; i++) {
            const struct sim_perturb *q = &c->o->perturb[i];
            if (q->kind == SIM_PERTURB_SLOW && targets(q, (uint32_t)pt->station, k) &&
                in_force(c, q)) {
                speed *= q->factor;
                ttf *= pow(q->factor, -q->exponent);
            }
        }
        c->m[s->first + k].ttf_slow = fmin(ttf, DBL_MAX);
        sim_set_speed(c, s->first + k, fmax(speed, SLOW_MIN_SPEED));
    }
}

void sim_on_perturb(struct sim_ctx *c, uint32_t k, bool on)
{
    const struct sim_perturb *pt = &c->o->perturb[k];
    if (pt->kind == SIM_PERTURB_DOWN || pt->kind == SIM_PERTURB_MAINTAIN) {
        force(c, pt, on);
    } else if (pt->kind == SIM_PERTURB_SLOW) {
        slow(c, pt);
    } else if (pt->kind == SIM_PERTURB_DEMAND) {
        /* The product of the demand perturbations in force now (an OFF at t has ended). */
        double f = 1.0;
        for (size_t i = 0; i < c->o->n_perturb; i++) {
            const struct sim_perturb *q = &c->o->perturb[i];
            if (q->kind == SIM_PERTURB_DEMAND && in_force(c, q))
                f *= q->factor;
        }
        c->demand_factor = f;
        (void)on;
        if (c->p->demand.kind != SIM_DEMAND_NONE)
            sim_next_arrival(c); /* memoryless for Poisson; renewal restarts its interval */
    }
}
