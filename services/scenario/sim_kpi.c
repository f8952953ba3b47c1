/* SPDX-License-Identifier: Apache-2.0 */
/* The engine's statistics (sim_internal.h): the restart at the end of the warm-up, the KPI
 * vector of a run, and the KPI catalogue of sim.h (names, units, positions). */
#include "sim_internal.h"

#include <stdio.h>
#include <string.h>

/* ---- statistics window --------------------------------------------------------------- */

void sim_stats_restart(struct sim_ctx *c)
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

/* ---- results ------------------------------------------------------------------------- */

static double ratio(double num, double den)
{
    return den > 0 ? num / den : NAN;
}

void sim_results(struct sim_ctx *c, double *kpis)
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
        k[SIM_KPI_ST_OFF] = s->acc[M_OFF] / mt;
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

/* ---- the KPI catalogue --------------------------------------------------------------- */

static const char *const global_names[SIM_KPI_N_GLOBAL] = {
    "throughput", "lead_time", "wip",           "orders",  "orders_lost", "lost_fraction",
    "orders_late", "service_level", "backlog", "backlog_end", "scrap"};
static const char *const global_units[SIM_KPI_N_GLOBAL] = {
    "parts/h", "h", "parts", "orders", "orders", "1", "orders", "1", "orders", "orders", "parts"};
static const char *const station_names[SIM_KPI_ST_N] = {
    "utilisation", "blocked", "starved", "down", "downtime", "wait", "wait_probability",
    "parts", "off"};
static const char *const station_units[SIM_KPI_ST_N] = {"1", "1", "1", "1",
                                                        "h", "h", "1", "parts", "1"};
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
