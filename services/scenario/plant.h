/* SPDX-License-Identifier: Apache-2.0 */
/* The production system the scenario runner simulates: stations, buffers, routing, stock,
 * suppliers, demand and shifts, as read from the plant model's production keys. */
#ifndef TWIN_SCENARIO_PLANT_H
#define TWIN_SCENARIO_PLANT_H

/*
 * Everything here is plain data: the parser (plant_json.h) fills it from JSON, scenarios and
 * sweep variants change fields of a copy (sim_plant_copy), and the engine (sim.c) only reads it.
 * Times are seconds (double) from the start of the simulation unless a field says otherwise;
 * the model file writes them as durations ("45s", "8h", "2d") or numbers of seconds.
 *
 * Indices tie the parts together: a station's input and outputs are node references (a buffer
 * index, or one of the special nodes below); a station's material is a stock index; a stock's
 * supplier is a supplier index. The parser (sim_plant_parse) checks all of them while it reads
 * the file and returns no plant that fails a check, so the engine can trust a plant it returned.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SIM_NAME_MAX      64u   /* bytes of a station, buffer, stock or supplier name */
#define SIM_MAX_STATIONS  256u
#define SIM_MAX_BUFFERS   256u
#define SIM_MAX_STOCKS    64u
#define SIM_MAX_SUPPLIERS 64u
#define SIM_MAX_MACHINES  64u   /* per station */
#define SIM_MAX_OUTPUTS   8u    /* per station (a split) */
#define SIM_MAX_SHIFTS    8u    /* working windows per calendar period */
#define SIM_MAX_WEAR_PTS  16u
#define SIM_WEIBULL_SHAPE_MIN 0.1
#define SIM_WEIBULL_SHAPE_MAX 50.0
#define SIM_INFINITE_CAP  UINT32_MAX /* a buffer without a capacity */

/* A random duration or amount. `scale` multiplies every draw (1 unless a scenario changed the
 * mean: setting a new mean m sets scale = m / mean). */
enum sim_dist_kind {
    SIM_DIST_FIXED = 0,  /* a = the value */
    SIM_DIST_EXP,        /* a = mean */
    SIM_DIST_UNIFORM,    /* a = min, b = max */
    SIM_DIST_TRIANGULAR, /* a = min, b = mode, c = max */
    SIM_DIST_NORMAL,     /* a = mean, b = sd; draws below 0 are redrawn (at most 16 times, then 0) */
    SIM_DIST_LOGNORMAL,  /* a = mean, b = sd of the value itself (not of its log) */
    SIM_DIST_WEIBULL,    /* a = shape, b = scale; shape > 1: a life that wears out */
};

struct sim_dist {
    enum sim_dist_kind kind;
    double a, b, c;
    double mean;  /* the distribution's mean before scale, set by sim_dist_finish */
    double scale; /* 1 by default */
    double mu, sigma; /* lognormal: parameters of the log, set by sim_dist_finish */
};

/* Special node references for station inputs and outputs (buffers are 0..n_buffers-1). */
#define SIM_NODE_SOURCE (-1) /* unlimited raw parts: the station is never starved */
#define SIM_NODE_DEMAND (-2) /* orders from the demand process (their own backlog queue) */
#define SIM_NODE_SINK   (-3) /* finished: leaves the system (the parts that count) */

enum sim_fail_basis {
    SIM_FAIL_NONE = 0,
    SIM_FAIL_TIME, /* time to failure runs on the clock, whatever the machine does */
    SIM_FAIL_BUSY, /* time to failure runs only while the machine is processing */
};

/* How a live signal maps to a number: piecewise-linear through (x, y) points, flat outside. */
struct sim_curve {
    uint32_t n;
    double x[SIM_MAX_WEAR_PTS], y[SIM_MAX_WEAR_PTS]; /* x strictly increasing */
};

/* Where a station reads its live condition (by machine, from the assets of that station). */
struct sim_station_live {
    char down_signal[SIM_NAME_MAX + 1]; /* "" = none: a machine is down when this signal */
    bool down_has_below, down_has_above; /* is below `down_below` or above `down_above` */
    double down_below, down_above;
    char wear_signal[SIM_NAME_MAX + 1]; /* "" = none: MTBF is multiplied by wear(value) */
    struct sim_curve wear;
    bool wear_is_age; /* the curve gives the life a machine has used (s), not an MTBF factor:
                       * a wear-out (weibull) time to failure then starts from that age */
};

struct sim_station {
    char name[SIM_NAME_MAX + 1];
    uint32_t machines;          /* parallel identical machines, 1..SIM_MAX_MACHINES */
    uint32_t staff;             /* operators: at most this many machines work at once; 0 = no limit */
    struct sim_dist cycle;      /* processing time of one part on one machine */
    struct sim_dist setup;      /* extra time before every `setup_every`-th part of a machine */
    uint32_t setup_every;       /* 0 = no setups */
    double scrap;               /* probability that a processed part is scrap (leaves, not counted) */
    enum sim_fail_basis fail_basis;
    struct sim_dist ttf;        /* time to failure (its mean is the MTBF) */
    struct sim_dist ttr;        /* time to repair (its mean is the MTTR) */
    int input;                  /* a buffer, SIM_NODE_SOURCE or SIM_NODE_DEMAND */
    uint32_t n_outputs;         /* 1..SIM_MAX_OUTPUTS */
    int outputs[SIM_MAX_OUTPUTS];      /* buffers or SIM_NODE_SINK */
    double output_share[SIM_MAX_OUTPUTS]; /* split weights, summing to 1 */
    int stock;                  /* raw material consumed when a part starts, -1 = none */
    double consume;             /* units of it per part */
    bool follows_shifts;        /* works only inside the shift calendar (default true) */
    struct sim_station_live live;
    /* Initial condition, set from the live twin (snapshot.c) or a scenario: */
    double mtbf_factor;                       /* multiplies ttf draws; 1 by default (the live
                                               * twin: its most worn machine's factor) */
    double machine_mtbf_factor[SIM_MAX_MACHINES]; /* per machine (its own live wear); 0 = use
                                                   * mtbf_factor */
    double machine_age[SIM_MAX_MACHINES]; /* life used (s of the failure basis) by each machine
                                           * at the start, from its live wear; 0 = as new */
    bool down_at_start[SIM_MAX_MACHINES];     /* machine starts broken (repair drawn from ttr) */
    char machine_asset[SIM_MAX_MACHINES][SIM_NAME_MAX + 1]; /* asset id per machine, or "" */
};

struct sim_buffer {
    char name[SIM_NAME_MAX + 1];
    uint32_t capacity;      /* parts it holds; SIM_INFINITE_CAP = unbounded; 0 = direct handover */
    uint32_t initial;       /* parts in it at the start */
    char live_asset[SIM_NAME_MAX + 1]; /* "" = none; else initial = that asset's signal */
    char live_signal[SIM_NAME_MAX + 1];
};

enum sim_supply_policy {
    SIM_SUPPLY_REORDER = 0, /* (s, Q): order `lot` when stock on hand + on order <= reorder */
    SIM_SUPPLY_PERIODIC,    /* a delivery of `lot` every `period`, first at `first` */
};

struct sim_supplier {
    char name[SIM_NAME_MAX + 1];
    int stock;                  /* the stock it delivers to */
    enum sim_supply_policy policy;
    double lot;                 /* units per delivery */
    double reorder;             /* REORDER: the reorder point */
    double period, first;       /* PERIODIC */
    struct sim_dist lead;       /* REORDER: lead time; PERIODIC: delay after the due time (may be FIXED 0) */
    double reliability;         /* probability a delivery is on time, else it is `late` later */
    struct sim_dist late;       /* the extra delay of an unreliable delivery */
};

struct sim_stock {
    char name[SIM_NAME_MAX + 1];
    double initial;             /* units on hand at the start */
    char live_asset[SIM_NAME_MAX + 1]; /* "" = none; else initial = that asset's signal */
    char live_signal[SIM_NAME_MAX + 1];
};

enum sim_demand_kind {
    SIM_DEMAND_NONE = 0, /* no demand process (stations fed by SIM_NODE_SOURCE) */
    SIM_DEMAND_POISSON,  /* orders at `rate` per second, optionally seasonal */
    SIM_DEMAND_RENEWAL,  /* orders with inter-arrival times drawn from `interarrival` */
};

struct sim_demand {
    enum sim_demand_kind kind;
    double rate;                /* POISSON: orders per second */
    struct sim_dist interarrival; /* RENEWAL */
    double season_period;       /* 0 = none; else rate(t) = rate*(1 + amplitude*cos(2π(t_abs - peak)/period)) */
    double season_amplitude;    /* in [0, 1) */
    double season_peak;         /* seconds into the period (absolute clock, see sim_plant.epoch) */
    double due;                 /* an order is late when finished more than `due` after arrival; 0 = no due dates */
    uint32_t backlog_cap;       /* orders waiting to be started; SIM_INFINITE_CAP = unbounded */
    bool lose_when_full;        /* true: an order arriving to a full backlog is lost (counted);
                                 * false is only allowed with an unbounded backlog */
    double factor;              /* multiplies the rate; 1 by default (scenarios change it over time) */
};

/* Working windows, repeated every `period` seconds on the absolute clock. */
struct sim_shifts {
    double period;              /* 0 = always working */
    uint32_t n;
    double start[SIM_MAX_SHIFTS], end[SIM_MAX_SHIFTS]; /* seconds into the period, start < end */
};

struct sim_plant {
    uint32_t n_stations, n_buffers, n_stocks, n_suppliers;
    struct sim_station *stations;
    struct sim_buffer *buffers;
    struct sim_stock *stocks;
    struct sim_supplier *suppliers;
    struct sim_demand demand;
    struct sim_shifts shifts;
    double epoch; /* absolute time of the simulation's start, seconds since the Unix epoch
                   * (calendars and seasonality use epoch + t) */
};

/* Finishes a distribution after its kind and a, b, c are set: computes mean, mu, sigma and
 * sets scale to 1. Returns false (with a reason in why, if given) when the parameters are
 * invalid (negative, non-finite, min > max, ...). Pure. */
bool sim_dist_finish(struct sim_dist *d, const char **why);

/* Sets a new mean by changing scale (the shape stays). Returns false when mean <= 0 is asked
 * of a distribution whose mean is 0, or when m is not finite or negative. Pure. */
bool sim_dist_set_mean(struct sim_dist *d, double m);

/* Deep copy (malloc); NULL on allocation failure. Free with sim_plant_free. */
struct sim_plant *sim_plant_copy(const struct sim_plant *p);
void sim_plant_free(struct sim_plant *p);

/* Index of the station / buffer / stock / supplier with this name, or -1. */
int sim_plant_station(const struct sim_plant *p, const char *name);
int sim_plant_buffer(const struct sim_plant *p, const char *name);
int sim_plant_stock(const struct sim_plant *p, const char *name);
int sim_plant_supplier(const struct sim_plant *p, const char *name);

/* Evaluates a curve at x (flat outside its points). Pure. */
double sim_curve_eval(const struct sim_curve *c, double x);

/* Machine m's wear signal reads v: sets its MTBF factor, or with an age curve the life it has
 * used. Returns false, changing nothing, when the station has no wear curve or the reading
 * gives no usable value. */
bool sim_station_set_wear(struct sim_station *s, uint32_t m, double v);

#endif
