/* SPDX-License-Identifier: Apache-2.0 */
/* The discrete-event engine: one replication of a plant over a horizon, with perturbations,
 * giving a vector of KPIs. Pure: no I/O, no globals, no clock. */
#ifndef TWIN_SCENARIO_SIM_H
#define TWIN_SCENARIO_SIM_H

/*
 * Model. Parts flow from a station's input (a buffer, the demand's order backlog, or the
 * unlimited source) through the station to one of its outputs (a buffer or the sink). A station
 * has parallel identical machines; an idle machine takes the oldest part of its input as soon
 * as it is allowed to work (inside a shift, not down, an operator free, material in stock).
 * When a machine finishes and its output buffer is full it holds the part and is blocked until
 * a place frees (blocking after service); a buffer of capacity 0 hands parts over directly.
 * Failures pre-empt: the part stays on the machine and its remaining time resumes after the
 * repair. Orders arriving from the demand each release one part; a part's lead time runs from
 * its order's arrival (or, from the unlimited source, from when it started) to the sink.
 *
 * Randomness. Every random source has its own stream: each machine's processing, setups and
 * scrap; each machine's failures and repairs; the demand; each supplier. A stream's seed
 * derives from (seed, replication, source), so two runs with the same seed and replication
 * draw the same numbers for the same source even when a perturbation changes what happens:
 * common random numbers between a baseline and a scenario.
 *
 * Statistics cover [warmup, horizon): counters and time integrals restart at warmup.
 */

#include <stddef.h>
#include <stdint.h>

#include "plant.h"

/* What a scenario changes over time (parameter changes are applied to a plant copy before the
 * run instead, see scenario.h). */
enum sim_perturb_kind {
    SIM_PERTURB_DOWN = 1,      /* station (machine or all) down over [start, start+duration) */
    SIM_PERTURB_SUPPLIER_LATE, /* the next `count` deliveries of supplier due at or after start
                                * arrive `delay` later */
    SIM_PERTURB_DEMAND,        /* demand rate times `factor` over [start, start+duration) */
    SIM_PERTURB_MAINTAIN,      /* station (machine or all) down over [start, start+duration),
                                * duration > 0, then as new: see "Maintenance" below */
    SIM_PERTURB_SLOW,          /* station (machine or all) at speed `factor` over
                                * [start, start+duration): see "Slowing down" below */
};

/*
 * Maintenance. While it lasts the machine is down exactly as under SIM_PERTURB_DOWN (a part on
 * it waits; a time-basis failure may still fall due and its repair runs). When it ends the
 * machine's wear factor (the MTBF factor the live snapshot gave it) becomes 1 and, unless the
 * machine is broken at that instant, its time to failure is drawn anew: the pending time-basis
 * failure is cancelled and a new one scheduled from the end, or the busy-basis time left is
 * replaced. A machine broken at the end keeps its repair; the draw after that uses factor 1.
 *
 * Slowing down. A slowed machine works at `factor` (0, 1] of its nominal speed: a part's
 * processing (cycle and setup) takes its nominal time / factor; a part in process when the
 * speed changes keeps the work it has done, and the rest runs at the new speed. Every time to
 * failure drawn while slowed (at the start, after a repair, after a maintenance) is multiplied
 * by factor^-exponent (`exponent` 0: wear does not slow); one drawn before the slowdown runs on
 * unchanged. Slowdowns that overlap on a machine multiply. Duration <= 0 = until the end.
 */
struct sim_perturb {
    enum sim_perturb_kind kind;
    int station;      /* DOWN, MAINTAIN, SLOW */
    int machine;      /* DOWN, MAINTAIN, SLOW: machine index, or -1 for every machine */
    int supplier;     /* SUPPLIER_LATE */
    double start;     /* seconds from the simulation's start */
    double duration;  /* DOWN, DEMAND, SLOW: seconds; <= 0 or infinite = until the end;
                       * MAINTAIN: > 0 and finite */
    double delay;     /* SUPPLIER_LATE: seconds */
    uint32_t count;   /* SUPPLIER_LATE: deliveries affected (>= 1) */
    double factor;    /* DEMAND: >= 0; SLOW: the speed, in (0, 1] */
    double exponent;  /* SLOW: wear exponent in [0, SIM_MAX_WEAR_EXPONENT] */
};

#define SIM_MAX_WEAR_EXPONENT 10.0 /* 0.1^-10 = 1e10: beyond that a horizon sees no failure */

struct sim_opts {
    double horizon;   /* seconds simulated, > 0 */
    double warmup;    /* seconds at the start left out of the statistics, in [0, horizon) */
    uint64_t seed;
    uint32_t replication;
    const struct sim_perturb *perturb;
    size_t n_perturb;
    uint64_t max_events; /* 0 = no cap; a run that reaches it stops with SIM_ELIMIT */
    const volatile int *cancel; /* NULL, or polled every few thousand events: non-zero stops
                                 * the run with SIM_ECANCEL */
};

/* Results. Every KPI is one double in a vector of sim_kpi_count(plant) entries; names, units
 * and positions come from the catalogue below. A KPI that has no value in a run (a mean over no
 * parts) is NaN. */
enum sim_kpi_global {
    SIM_KPI_THROUGHPUT = 0,  /* parts to the sink per hour */
    SIM_KPI_LEAD_TIME,       /* h, mean over parts finished in the window */
    SIM_KPI_WIP,             /* parts in the system (released, not finished), time average */
    SIM_KPI_ORDERS,          /* orders that arrived in the window */
    SIM_KPI_ORDERS_LOST,     /* orders turned away by a full backlog */
    SIM_KPI_LOST_FRACTION,   /* lost / arrived */
    SIM_KPI_ORDERS_LATE,     /* orders finished after their due time */
    SIM_KPI_SERVICE_LEVEL,   /* finished on time / finished (NaN without due dates) */
    SIM_KPI_BACKLOG,         /* orders waiting to be started, time average */
    SIM_KPI_BACKLOG_END,     /* orders waiting at the end of the horizon */
    SIM_KPI_SCRAP,           /* parts scrapped */
    SIM_KPI_N_GLOBAL
};

enum sim_kpi_station { /* per station, in station order, after the global ones */
    SIM_KPI_ST_UTILISATION = 0, /* fraction of machine time processing (incl. setups) */
    SIM_KPI_ST_BLOCKED,         /* fraction of machine time holding a finished part */
    SIM_KPI_ST_STARVED,         /* fraction of machine time idle and allowed to work */
    SIM_KPI_ST_DOWN,            /* fraction of machine time broken or taken down */
    SIM_KPI_ST_DOWNTIME,        /* h of machine time broken or taken down */
    SIM_KPI_ST_WAIT,            /* h, mean time a part waited in the input before starting */
    SIM_KPI_ST_WAIT_PROB,       /* fraction of parts that waited at all */
    SIM_KPI_ST_PARTS,           /* parts finished (good and scrap) */
    SIM_KPI_ST_OFF,             /* fraction of machine time idle and not allowed to work (off
                                 * shift, or no operator free); the five fractions sum to 1 */
    SIM_KPI_ST_N
};

enum sim_kpi_buffer { /* per buffer, after the stations */
    SIM_KPI_BUF_LEVEL = 0,      /* parts in the buffer, time average */
    SIM_KPI_BUF_N
};

enum sim_kpi_stock { /* per stock, after the buffers */
    SIM_KPI_STK_LEVEL = 0,      /* units on hand, time average */
    SIM_KPI_STK_STOCKOUT,       /* fraction of time a machine waited for this material */
    SIM_KPI_STK_STOCKOUTS,      /* stock-out episodes begun in the window */
    SIM_KPI_STK_MIN,            /* lowest level on hand in the window */
    SIM_KPI_STK_N
};

size_t sim_kpi_count(const struct sim_plant *p);

/* Writes KPI i's name into buf ("throughput", "station.press.utilisation",
 * "buffer.b1.level", "stock.coil.stockout", …) and returns its unit ("parts/h", "h", "1", …). */
const char *sim_kpi_name(const struct sim_plant *p, size_t i, char *buf, size_t buflen);

/* Index of the KPI with this name, or -1. */
int sim_kpi_find(const struct sim_plant *p, const char *name);

/* Return codes of sim_run besides 0. */
#define SIM_EINVAL  (-1) /* bad options or perturbations */
#define SIM_ENOMEM  (-2)
#define SIM_ELIMIT  (-3) /* max_events reached or a queue outgrew its cap */
#define SIM_ECANCEL (-4)

/* Scratch memory of one thread (event heap, part queues), reused across runs. */
struct sim_ctx;
struct sim_ctx *sim_ctx_new(void);
void sim_ctx_free(struct sim_ctx *c);

/* Runs one replication. kpis must hold sim_kpi_count(p) doubles; *events (may be NULL) gets
 * the number of events processed. The plant must have passed the parser's checks. Returns 0
 * or one of the codes above. Thread-safe with one ctx per thread. */
int sim_run(struct sim_ctx *c, const struct sim_plant *p, const struct sim_opts *o, double *kpis,
            uint64_t *events);

#endif
