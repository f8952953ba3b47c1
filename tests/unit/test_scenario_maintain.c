/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests of the engine's maintenance and slowdown perturbations and of per-machine wear:
 * exact windows on deterministic plants, renewed machines failing less, slowed machines making
 * fewer parts and failing less, and the checks that refuse bad ones. */
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

#define H 3600.0

/* ---- one station, from the unlimited source to the sink ------------------------------ */

struct test_plant {
    struct sim_plant p;
    struct sim_station st[1];
};

static struct sim_dist dist(enum sim_dist_kind k, double a)
{
    struct sim_dist d = {.kind = k, .a = a};
    const char *why = NULL;
    assert_true(sim_dist_finish(&d, &why));
    return d;
}

/* A station "m" of `machines` machines with a fixed cycle time and no failures. */
static void one_station(struct test_plant *t, uint32_t machines, double cycle)
{
    memset(t, 0, sizeof *t);
    t->p.stations = t->st;
    t->p.n_stations = 1;
    t->p.demand.factor = 1;
    t->p.demand.backlog_cap = SIM_INFINITE_CAP;
    struct sim_station *s = &t->st[0];
    snprintf(s->name, sizeof s->name, "m");
    s->machines = machines;
    s->cycle = dist(SIM_DIST_FIXED, cycle);
    s->input = SIM_NODE_SOURCE;
    s->n_outputs = 1;
    s->outputs[0] = SIM_NODE_SINK;
    s->output_share[0] = 1;
    s->stock = -1;
    s->follows_shifts = true;
    s->mtbf_factor = 1;
}

static void failures(struct test_plant *t, enum sim_fail_basis basis, struct sim_dist ttf,
                     struct sim_dist ttr)
{
    t->st[0].fail_basis = basis;
    t->st[0].ttf = ttf;
    t->st[0].ttr = ttr;
}

static struct sim_perturb perturb(enum sim_perturb_kind kind, int machine, double start,
                                  double duration)
{
    return (struct sim_perturb){
        .kind = kind, .station = 0, .machine = machine, .start = start, .duration = duration};
}

/* ---- running ------------------------------------------------------------------------- */

struct run {
    double *kpis;
    const struct sim_plant *p;
};

/* One replication of p; the KPIs stay valid until run_free. */
static struct run run_one(const struct sim_plant *p, double warmup, double horizon,
                          const struct sim_perturb *pt, size_t n, uint32_t rep)
{
    struct sim_ctx *c = sim_ctx_new();
    struct run r = {calloc(sim_kpi_count(p), sizeof(double)), p};
    assert_non_null(c);
    assert_non_null(r.kpis);
    struct sim_opts o = {.horizon = horizon,
                         .warmup = warmup,
                         .seed = 11,
                         .replication = rep,
                         .perturb = pt,
                         .n_perturb = n};
    assert_int_equal(sim_run(c, p, &o, r.kpis, NULL), 0);
    sim_ctx_free(c);
    return r;
}

static double get(struct run r, const char *name)
{
    int i = sim_kpi_find(r.p, name);
    if (i < 0)
        fail_msg("no KPI %s", name);
    return r.kpis[i];
}

static void run_free(struct run r)
{
    free(r.kpis);
}

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

/* Every KPI of a and b the same bit for bit (NaN where both have none). */
static void assert_same_run(struct run a, struct run b)
{
    for (size_t i = 0; i < sim_kpi_count(a.p); i++)
        assert_true(memcmp(&a.kpis[i], &b.kpis[i], sizeof(double)) == 0);
}

/* ---- maintenance --------------------------------------------------------------------- */

/* Down over exactly [1005, 1505): the part begun at 1000 waits with 5 s left and ends at
 * 1510; until the maintenance ends it is the same run as a machine-down perturbation. */
static void maintain_holds_the_machine_down_exactly_over_its_window(void **state)
{
    (void)state;
    struct test_plant t;
    one_station(&t, 1, 10);
    struct sim_perturb m = perturb(SIM_PERTURB_MAINTAIN, 0, 1005, 500);
    struct sim_perturb d = perturb(SIM_PERTURB_DOWN, 0, 1005, 500);
    struct run base = run_one(&t.p, 0, 3000, NULL, 0, 0);
    struct run r = run_one(&t.p, 0, 3000, &m, 1, 0);
    assert_true(get(base, "station.m.parts") == 299);    /* at 10, 20, ..., 2990 */
    assert_true(get(r, "station.m.parts") == 100 + 149); /* 10..1000, then 1510..2990 */
    assert_true(get(r, "station.m.downtime") == 500.0 / H);
    assert_true(fabs(get(r, "station.m.down") - 500.0 / 3000) < 1e-12);
    struct run down = run_one(&t.p, 0, 3000, &d, 1, 0);
    assert_same_run(r, down); /* no failures to renew: nothing else differs */
    run_free(base), run_free(r), run_free(down);
    /* Not yet begun before 1005, over at 1505. */
    r = run_one(&t.p, 0, 1005, &m, 1, 0);
    assert_true(get(r, "station.m.downtime") == 0);
    run_free(r);
    r = run_one(&t.p, 0, 1300, &m, 1, 0);
    assert_true(get(r, "station.m.downtime") == 295.0 / H);
    run_free(r);
    r = run_one(&t.p, 1505, 3000, &m, 1, 0);
    assert_true(get(r, "station.m.downtime") == 0);
    assert_true(get(r, "station.m.utilisation") == 1);
    run_free(r);
    /* On a station target every machine is down. */
    one_station(&t, 3, 10);
    m.machine = -1;
    r = run_one(&t.p, 0, 3000, &m, 1, 0);
    assert_true(get(r, "station.m.downtime") == 3 * 500.0 / H);
    assert_true(get(r, "station.m.parts") == 3 * 249);
    run_free(r);
}

/* Clock failures every 1000 s (x the wear factor), repairs of 100 s. A maintenance over
 * [300, 400) cancels the failure drawn at the start and draws the next from 400. */
static void maintain_cancels_the_pending_clock_failure(void **state)
{
    (void)state;
    struct test_plant t;
    one_station(&t, 1, 10);
    failures(&t, SIM_FAIL_TIME, dist(SIM_DIST_FIXED, 1000), dist(SIM_DIST_FIXED, 100));
    struct sim_perturb m = perturb(SIM_PERTURB_MAINTAIN, 0, 300, 100);
    struct run base = run_one(&t.p, 0, 1300, NULL, 0, 0);
    assert_true(get(base, "station.m.downtime") == 100.0 / H); /* the failure at 1000 */
    struct run r = run_one(&t.p, 0, 1300, &m, 1, 0);
    assert_true(get(r, "station.m.downtime") == 100.0 / H); /* the maintenance alone */
    run_free(base), run_free(r);
    r = run_one(&t.p, 0, 1600, &m, 1, 0);
    assert_true(get(r, "station.m.downtime") == 200.0 / H); /* and the new failure at 1400 */
    run_free(r);
    /* A worn machine (factor 0.5: failures at 500, 1100, ...) is as new after it. */
    t.st[0].machine_mtbf_factor[0] = 0.5;
    base = run_one(&t.p, 0, 1300, NULL, 0, 0);
    assert_true(get(base, "station.m.downtime") == 200.0 / H);
    r = run_one(&t.p, 0, 1300, &m, 1, 0);
    assert_true(get(r, "station.m.downtime") == 100.0 / H);
    run_free(base), run_free(r);
}

/* Broken when the maintenance ends: the repair goes on and draws the next failure with the
 * factor already reset. Factor 0.5: it fails at 500, is under repair over [500, 800) and
 * maintained over [600, 700) meanwhile, and fails next at 1800 (with the old factor it would
 * be 1300). */
static void maintain_of_a_broken_machine_resets_only_its_factor(void **state)
{
    (void)state;
    struct test_plant t;
    one_station(&t, 1, 10);
    failures(&t, SIM_FAIL_TIME, dist(SIM_DIST_FIXED, 1000), dist(SIM_DIST_FIXED, 300));
    t.st[0].machine_mtbf_factor[0] = 0.5;
    struct sim_perturb m = perturb(SIM_PERTURB_MAINTAIN, 0, 600, 100);
    struct run r = run_one(&t.p, 0, 1700, &m, 1, 0);
    assert_true(get(r, "station.m.downtime") == 300.0 / H); /* [500, 800) */
    run_free(r);
    r = run_one(&t.p, 0, 2000, &m, 1, 0);
    assert_true(get(r, "station.m.downtime") == 500.0 / H); /* and [1800, 2000) */
    run_free(r);
}

/* A clock failure falling due while the machine is maintained is void: the maintenance renews
 * it. Factor 0.5 with a maintenance over [400, 600): no failure at 500, the next at 1600. */
static void a_failure_due_during_a_maintenance_is_void(void **state)
{
    (void)state;
    struct test_plant t;
    one_station(&t, 1, 10);
    failures(&t, SIM_FAIL_TIME, dist(SIM_DIST_FIXED, 1000), dist(SIM_DIST_FIXED, 300));
    t.st[0].machine_mtbf_factor[0] = 0.5;
    struct sim_perturb m = perturb(SIM_PERTURB_MAINTAIN, 0, 400, 200);
    struct run r = run_one(&t.p, 0, 1700, &m, 1, 0);
    assert_true(get(r, "station.m.downtime") == 300.0 / H); /* [400, 600) and [1600, 1700) */
    run_free(r);
    /* Held down by a DOWN perturbation instead, it does fail at 500 (repaired at 800). */
    struct sim_perturb d = perturb(SIM_PERTURB_DOWN, 0, 400, 200);
    r = run_one(&t.p, 0, 1000, &d, 1, 0);
    assert_true(get(r, "station.m.downtime") == 400.0 / H); /* [400, 800) */
    run_free(r);
}

/* Busy-time failures: factor 0.5 gives 500 s of work to the first failure; a maintenance over
 * [300, 400) replaces the 200 s left by a fresh 1000 s, so the failure comes at 1400. */
static void maintain_redraws_the_busy_time_to_failure(void **state)
{
    (void)state;
    struct test_plant t;
    one_station(&t, 1, 10);
    failures(&t, SIM_FAIL_BUSY, dist(SIM_DIST_FIXED, 1000), dist(SIM_DIST_FIXED, 100));
    t.st[0].machine_mtbf_factor[0] = 0.5;
    struct sim_perturb m = perturb(SIM_PERTURB_MAINTAIN, 0, 300, 100);
    struct run base = run_one(&t.p, 0, 1300, NULL, 0, 0);
    assert_true(get(base, "station.m.downtime") == 200.0 / H); /* at 500 and 1100 */
    struct run r = run_one(&t.p, 0, 1300, &m, 1, 0);
    assert_true(get(r, "station.m.downtime") == 100.0 / H);
    run_free(base), run_free(r);
    r = run_one(&t.p, 0, 1600, &m, 1, 0);
    assert_true(get(r, "station.m.downtime") == 200.0 / H);
    run_free(r);
}

/* A machine worn to a tenth of its MTBF (10 h -> 1 h, repairs of 30 min: down a third of the
 * time) maintained for 2 h from 1 h: over two weeks it is down far less and makes more. */
static void maintain_of_a_worn_machine_pays_off_over_a_long_horizon(void **state)
{
    (void)state;
    struct test_plant t;
    one_station(&t, 1, 60);
    failures(&t, SIM_FAIL_TIME, dist(SIM_DIST_EXP, 10 * H), dist(SIM_DIST_EXP, 0.5 * H));
    t.st[0].machine_mtbf_factor[0] = 0.1;
    struct scn_spec s = {.horizon = 14 * 24 * H, .replications = 10, .seed = 3, .n_perturb = 1};
    s.perturb[0] = perturb(SIM_PERTURB_MAINTAIN, 0, H, 2 * H);
    struct scn_result *r = run_spec(&t.p, &s);
    const struct scn_kpi *down = kpi(r, "station.m.down");
    print_message("  down fraction %.4f -> %.4f\n", down->base.mean, down->scen.mean);
    assert_true(down->base.mean > 0.25 && down->scen.mean < 0.1);
    assert_true(down->diff.hi < 0);
    assert_true(kpi(r, "throughput")->diff.lo > 0);
    scn_result_free(r);
    /* The maintenance itself is downtime: up to its end every replication has its 2 h (and
     * is the same run as a machine-down perturbation). */
    struct sim_perturb d = perturb(SIM_PERTURB_DOWN, 0, H, 2 * H);
    for (uint32_t rep = 0; rep < 10; rep++) {
        struct run m = run_one(&t.p, 0, 3 * H, s.perturb, 1, rep);
        struct run dn = run_one(&t.p, 0, 3 * H, &d, 1, rep);
        assert_true(get(m, "station.m.downtime") >= 2.0);
        assert_same_run(m, dn);
        run_free(m), run_free(dn);
    }
}

/* ---- per-machine wear ---------------------------------------------------------------- */

/* The down fraction of one machine of two (the other held down all along): clock failures
 * with MTBF 1000 s x its factor and MTTR 100 s are down 100 / (1000 f + 100) of the time. */
static double machine_down(const struct test_plant *t, int measured)
{
    struct sim_perturb hold = perturb(SIM_PERTURB_DOWN, 1 - measured, 0, 0);
    double sum = 0;
    for (uint32_t rep = 0; rep < 4; rep++) {
        struct run r = run_one(&t->p, 0, 2e6, &hold, 1, rep);
        sum += 2 * get(r, "station.m.down") - 1;
        run_free(r);
    }
    return sum / 4;
}

static void each_machine_fails_at_the_rate_of_its_own_wear(void **state)
{
    (void)state;
    struct test_plant t;
    one_station(&t, 2, 100);
    failures(&t, SIM_FAIL_TIME, dist(SIM_DIST_EXP, 1000), dist(SIM_DIST_EXP, 100));
    t.st[0].machine_mtbf_factor[0] = 1;
    t.st[0].machine_mtbf_factor[1] = 0.1;
    double d0 = machine_down(&t, 0), d1 = machine_down(&t, 1);
    print_message("  machine 0 down %.4f (1/11), machine 1 down %.4f (1/2)\n", d0, d1);
    assert_true(fabs(d0 - 1.0 / 11) < 0.01);
    assert_true(fabs(d1 - 0.5) < 0.02);
    /* A machine without a factor of its own has the station's. */
    t.st[0].mtbf_factor = 0.1;
    t.st[0].machine_mtbf_factor[1] = 0;
    assert_true(fabs(machine_down(&t, 0) - 1.0 / 11) < 0.01);
    assert_true(fabs(machine_down(&t, 1) - 0.5) < 0.02);
    /* Factors equal to the station's change nothing, bit for bit. */
    t.st[0].mtbf_factor = 0.3;
    t.st[0].machine_mtbf_factor[0] = t.st[0].machine_mtbf_factor[1] = 0;
    struct run a = run_one(&t.p, 0, 1e5, NULL, 0, 0);
    t.st[0].machine_mtbf_factor[0] = t.st[0].machine_mtbf_factor[1] = 0.3;
    struct run b = run_one(&t.p, 0, 1e5, NULL, 0, 0);
    assert_same_run(a, b);
    run_free(a), run_free(b);
}

/* ---- wear-out lives and their age --------------------------------------------------- */

static struct sim_dist weibull(double shape, double scale)
{
    struct sim_dist d = {.kind = SIM_DIST_WEIBULL, .a = shape, .b = scale};
    const char *why = NULL;
    assert_true(sim_dist_finish(&d, &why));
    return d;
}

/* The share of `reps` replications in which the machine fails within `horizon`: downtime
 * beyond the `planned` seconds that are not failures (a maintenance, a repair at the start). */
static double share_failing(const struct test_plant *t, double horizon,
                            const struct sim_perturb *pt, size_t n, double planned, uint32_t reps)
{
    uint32_t failed = 0;
    for (uint32_t rep = 0; rep < reps; rep++) {
        struct run r = run_one(&t->p, 0, horizon, pt, n, rep);
        failed += get(r, "station.m.downtime") > planned / H + 1e-9;
        run_free(r);
    }
    return (double)failed / reps;
}

/* A weibull life (shape 2, scale 1000 s: mean 1000 Γ(1.5) = 886.2 s) with repairs of 100 s is
 * down 100 / 986.2 of the time; the mean is the model's MTBF. */
static void weibull_lives_have_their_mean(void **state)
{
    (void)state;
    struct test_plant t;
    one_station(&t, 1, 1);
    struct sim_dist d = weibull(2, 1000);
    assert_true(fabs(d.mean - 1000 * sqrt(M_PI) / 2) < 1e-9);
    failures(&t, SIM_FAIL_TIME, d, dist(SIM_DIST_FIXED, 100));
    double sum = 0;
    for (uint32_t rep = 0; rep < 4; rep++) {
        struct run r = run_one(&t.p, 0, 2e6, NULL, 0, rep);
        sum += get(r, "station.m.down");
        run_free(r);
    }
    print_message("  down %.5f (expected %.5f)\n", sum / 4, 100 / (d.mean + 100));
    assert_true(fabs(sum / 4 - 100 / (d.mean + 100)) < 0.003);
}

/* Shape 4, scale 1000 s: a new machine fails within 200 s with probability 1 - e^-(0.2^4) =
 * 0.0016, one that has used 1000 s of its life with 1 - e^-(1.2^4 - 1) = 0.658; maintained at
 * once, it is new again; and a machine down at the start is repaired into a new life. */
static void an_aged_machine_fails_sooner_until_it_is_renewed(void **state)
{
    (void)state;
    struct test_plant t;
    one_station(&t, 1, 1);
    failures(&t, SIM_FAIL_TIME, weibull(4, 1000), dist(SIM_DIST_FIXED, 1e6));
    const uint32_t reps = 2000;
    double fresh = share_failing(&t, 200, NULL, 0, 0, reps);
    t.st[0].machine_age[0] = 1000;
    double aged = share_failing(&t, 200, NULL, 0, 0, reps);
    struct sim_perturb m = perturb(SIM_PERTURB_MAINTAIN, 0, 0, 1);
    double renewed = share_failing(&t, 200, &m, 1, 1, reps);
    /* The age counts once: a machine down at the start is repaired (10 s) into a new life. */
    t.st[0].down_at_start[0] = true;
    failures(&t, SIM_FAIL_TIME, weibull(4, 1000), dist(SIM_DIST_FIXED, 10));
    double repaired = share_failing(&t, 200, NULL, 0, 10, reps);
    print_message("  within 200 s: new %.4f, aged %.4f (0.658), maintained %.4f, repaired %.4f\n",
                  fresh, aged, renewed, repaired);
    assert_true(fresh < 0.01);
    assert_true(fabs(aged - (1 - exp(-(pow(1.2, 4) - 1)))) < 0.035); /* > 3 standard errors */
    assert_true(renewed < 0.01);
    assert_true(repaired < 0.01);
}

/* ---- slowing down -------------------------------------------------------------------- */

/* At half speed over [1005, 2005): the part begun at 1000 has 5 s of work left, done at 1015;
 * then one part every 20 s up to 1995; the part begun at 1995 did half its work by 2005 and
 * ends at 2010 at full speed. Setups are slowed as well (6 s cycle + 4 s setup each part). */
static void slow_halves_the_output_of_a_deterministic_station(void **state)
{
    (void)state;
    for (int with_setup = 0; with_setup <= 1; with_setup++) {
        struct test_plant t;
        one_station(&t, 1, with_setup ? 6 : 10);
        if (with_setup) {
            t.st[0].setup = dist(SIM_DIST_FIXED, 4);
            t.st[0].setup_every = 1;
        }
        struct sim_perturb sl = perturb(SIM_PERTURB_SLOW, 0, 1005, 1000);
        sl.factor = 0.5;
        struct run base = run_one(&t.p, 1005, 2005, NULL, 0, 0);
        struct run r = run_one(&t.p, 1005, 2005, &sl, 1, 0);
        assert_true(get(base, "station.m.parts") == 100);
        assert_true(get(r, "station.m.parts") == 50);
        assert_true(get(r, "throughput") == 0.5 * get(base, "throughput"));
        assert_true(get(r, "station.m.utilisation") == 1); /* slower, not idle */
        run_free(base), run_free(r);
        r = run_one(&t.p, 0, 3000, &sl, 1, 0);
        assert_true(get(r, "station.m.parts") == 100 + 50 + 99); /* ..1000, ..1995, 2010.. */
        run_free(r);
        sl.duration = 0; /* to the end */
        r = run_one(&t.p, 0, 3000, &sl, 1, 0);
        assert_true(get(r, "station.m.parts") == 100 + 100); /* 1015, 1035, ..., 2995 */
        run_free(r);
    }
}

/* Clock failures with MTBF 1000 s and MTTR 100 s at half speed for the whole run: with wear
 * exponent 2 every time to failure is 0.5^-2 = 4 times as long, so the machine is up 40 times
 * as long as down instead of 10; with exponent 0 its failures are exactly the baseline's. */
static void slow_with_a_wear_exponent_makes_failures_rarer(void **state)
{
    (void)state;
    struct test_plant t;
    one_station(&t, 1, 100);
    failures(&t, SIM_FAIL_TIME, dist(SIM_DIST_EXP, 1000), dist(SIM_DIST_EXP, 100));
    struct scn_spec s = {.horizon = 2e6, .replications = 8, .seed = 5, .n_perturb = 1};
    s.perturb[0] = perturb(SIM_PERTURB_SLOW, 0, 0, 0);
    s.perturb[0].factor = 0.5;
    s.perturb[0].exponent = 2;
    struct scn_result *r = run_spec(&t.p, &s);
    const struct scn_kpi *down = kpi(r, "station.m.down");
    double up_base = (1 - down->base.mean) / down->base.mean;
    double up_scen = (1 - down->scen.mean) / down->scen.mean;
    print_message("  up/down %.3f -> %.3f (ratio %.3f, expected 4)\n", up_base, up_scen,
                  up_scen / up_base);
    assert_true(fabs(up_base - 10) < 0.5);
    assert_true(fabs(up_scen / up_base - 4) < 0.4);
    scn_result_free(r);
    s.perturb[0].exponent = 0;
    r = run_spec(&t.p, &s);
    down = kpi(r, "station.m.downtime");
    assert_true(down->diff.mean == 0 && down->diff.lo == 0 && down->diff.hi == 0);
    assert_true(kpi(r, "throughput")->diff.hi < 0);
    scn_result_free(r);
}

/* Full speed and no wear exponent is a no-op: the scenario is the baseline bit for bit (no
 * draw is added), busy-basis failures and setups included. */
static void slow_at_full_speed_changes_nothing(void **state)
{
    (void)state;
    struct test_plant t;
    one_station(&t, 2, 0);
    t.st[0].cycle = dist(SIM_DIST_EXP, 50);
    t.st[0].setup = dist(SIM_DIST_EXP, 20);
    t.st[0].setup_every = 3;
    failures(&t, SIM_FAIL_BUSY, dist(SIM_DIST_EXP, 2 * H), dist(SIM_DIST_EXP, 600));
    t.st[0].machine_mtbf_factor[1] = 0.4;
    struct scn_spec s = {.horizon = 7 * 24 * H, .replications = 4, .seed = 9, .n_perturb = 2};
    s.perturb[0] = perturb(SIM_PERTURB_SLOW, -1, 0, 0);
    s.perturb[0].factor = 1;
    s.perturb[1] = perturb(SIM_PERTURB_SLOW, 1, 3 * H, 5 * H);
    s.perturb[1].factor = 1;
    struct scn_result *r = run_spec(&t.p, &s);
    for (size_t i = 0; i < r->n_kpis; i++)
        if (!isnan(r->kpis[i].diff.mean))
            assert_true(r->kpis[i].diff.mean == 0 && r->kpis[i].diff.hi == 0);
    scn_result_free(r);
}

/* Valid but absurd: two overlapping slowdowns of 1e-200 (their product underflows to 0) with
 * the largest wear exponent (0.5e-200^-10 overflows): the run ends with numbers, no NaN. */
static void absurd_slowdowns_still_give_numbers(void **state)
{
    (void)state;
    struct test_plant t;
    one_station(&t, 1, 10);
    failures(&t, SIM_FAIL_TIME, dist(SIM_DIST_EXP, 1000), dist(SIM_DIST_FIXED, 100));
    struct sim_perturb sl[2] = {perturb(SIM_PERTURB_SLOW, 0, 100, 0),
                                perturb(SIM_PERTURB_SLOW, -1, 200, 300)};
    sl[0].factor = sl[1].factor = 1e-200;
    sl[0].exponent = sl[1].exponent = SIM_MAX_WEAR_EXPONENT;
    struct run base = run_one(&t.p, 0, 1e5, NULL, 0, 0);
    struct run r = run_one(&t.p, 0, 1e5, sl, 2, 0);
    for (size_t i = 0; i < sim_kpi_count(&t.p); i++) /* NaN only where it is by design */
        assert_true(!isnan(r.kpis[i]) == !isnan(base.kpis[i]));
    assert_true(get(r, "station.m.parts") < 20); /* (almost) nothing after 100 s */
    run_free(base), run_free(r);
}

/* ---- checks -------------------------------------------------------------------------- */

static void check_fails(const struct sim_plant *p, const struct scn_spec *s, const char *text)
{
    char err[256] = "";
    assert_int_equal(scn_spec_check(p, s, err, sizeof err), -1);
    if (!strstr(err, text))
        fail_msg("reason \"%s\" lacks \"%s\"", err, text);
    struct sim_ctx *c = sim_ctx_new();
    double kpis[64];
    struct sim_opts o = {.horizon = s->horizon, .perturb = s->perturb, .n_perturb = s->n_perturb};
    assert_true(sim_kpi_count(p) <= 64);
    if (s->n_sets == 0 && !s->has_sweep) /* the engine refuses it on its own too */
        assert_int_equal(sim_run(c, p, &o, kpis, NULL), SIM_EINVAL);
    sim_ctx_free(c);
}

static void bad_maintain_and_slow_are_refused(void **state)
{
    (void)state;
    struct test_plant t;
    one_station(&t, 2, 10);
    struct scn_spec s = {.horizon = 1e4, .replications = 2, .seed = 1, .n_perturb = 1};
    s.perturb[0] = perturb(SIM_PERTURB_MAINTAIN, 0, 100, 0);
    check_fails(&t.p, &s, "perturbation 1: a maintenance needs a finite duration > 0");
    s.perturb[0].duration = INFINITY;
    check_fails(&t.p, &s, "a maintenance needs a finite duration > 0");
    s.perturb[0] = perturb(SIM_PERTURB_MAINTAIN, 2, 100, 50);
    check_fails(&t.p, &s, "perturbation 1: no such machine");
    s.perturb[0].station = 1;
    check_fails(&t.p, &s, "perturbation 1: no such station");
    static const double speeds[] = {0, -1, 1.5, NAN};
    for (size_t i = 0; i < sizeof speeds / sizeof speeds[0]; i++) {
        s.perturb[0] = perturb(SIM_PERTURB_SLOW, -1, 0, 0);
        s.perturb[0].factor = speeds[i];
        check_fails(&t.p, &s, "perturbation 1: the speed must be in (0, 1]");
    }
    static const double exponents[] = {-0.5, 10.01, NAN};
    for (size_t i = 0; i < sizeof exponents / sizeof exponents[0]; i++) {
        s.perturb[0].factor = 0.5;
        s.perturb[0].exponent = exponents[i];
        check_fails(&t.p, &s, "perturbation 1: the wear exponent must be in [0, 10]");
    }
    s.perturb[0].exponent = 10;
    s.perturb[0].machine = 5;
    check_fails(&t.p, &s, "no such machine");
    /* Fine alone, but the parameter change or a sweep variant removes the machine. */
    s.perturb[0].machine = 1;
    char err[256];
    assert_int_equal(scn_spec_check(&t.p, &s, err, sizeof err), 0);
    s.n_sets = 1;
    snprintf(s.sets[0].path, SCN_PATH_MAX, "station.m.machines");
    s.sets[0].value = 1;
    check_fails(&t.p, &s, "perturbation 1: the changes leave no such machine");
    s.n_sets = 0;
    s.perturb[1] = perturb(SIM_PERTURB_MAINTAIN, 1, 10, 10);
    s.perturb[0].machine = -1;
    s.n_perturb = 2;
    static const double one[] = {1};
    s.has_sweep = true;
    s.sweep.n_params = 1;
    s.sweep.params[0] = (struct scn_range){.values = (double *)one, .n_values = 1};
    snprintf(s.sweep.params[0].path, SCN_PATH_MAX, "station.m.machines");
    snprintf(s.sweep.objective, SCN_PATH_MAX, "throughput");
    check_fails(&t.p, &s,
                "perturbation 2 names machine 2 of station \"m\", which the variant "
                "removes");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(maintain_holds_the_machine_down_exactly_over_its_window),
        cmocka_unit_test(maintain_cancels_the_pending_clock_failure),
        cmocka_unit_test(maintain_of_a_broken_machine_resets_only_its_factor),
        cmocka_unit_test(a_failure_due_during_a_maintenance_is_void),
        cmocka_unit_test(maintain_redraws_the_busy_time_to_failure),
        cmocka_unit_test(maintain_of_a_worn_machine_pays_off_over_a_long_horizon),
        cmocka_unit_test(each_machine_fails_at_the_rate_of_its_own_wear),
        cmocka_unit_test(weibull_lives_have_their_mean),
        cmocka_unit_test(an_aged_machine_fails_sooner_until_it_is_renewed),
        cmocka_unit_test(slow_halves_the_output_of_a_deterministic_station),
        cmocka_unit_test(slow_with_a_wear_exponent_makes_failures_rarer),
        cmocka_unit_test(slow_at_full_speed_changes_nothing),
        cmocka_unit_test(absurd_slowdowns_still_give_numbers),
        cmocka_unit_test(bad_maintain_and_slow_are_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
