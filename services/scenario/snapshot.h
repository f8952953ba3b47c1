/* SPDX-License-Identifier: Apache-2.0 */
/* The live twin as a simulation's starting point (snapshot.c), shared by twin-scenario and
 * twin-advisor. */
#ifndef TWIN_SCENARIO_SNAPSHOT_H
#define TWIN_SCENARIO_SNAPSHOT_H

#include <stddef.h>
#include <stdint.h>

#include "plant.h"
#include "twin/store.h"

struct scen_snapshot_stats {
    size_t assets;         /* assets the plant reads live values from */
    size_t found;          /* of them, those with a state in Redis */
    size_t machines_down;  /* machines that start down */
    size_t values_ignored; /* non-numeric or non-finite values left at the model's default */
    int64_t snapshot_ms;   /* Redis's clock at the read, Unix ms */
};

/* Reads, in one MULTI/EXEC transaction (on a Redis Cluster: one pipeline per node), the state
 * hash of every asset the plant names and Redis's clock, and applies them to p: machines down,
 * MTBF factors from wear, buffer and stock levels, p->epoch. Only reads. 0, or a negative
 * tw_err with the reason in err (p unchanged). Any thread with its own store. */
int scen_snapshot_apply(struct tw_store *store, struct sim_plant *p, struct scen_snapshot_stats *st,
                        const char *job_id, char *err, size_t errlen);

#endif
