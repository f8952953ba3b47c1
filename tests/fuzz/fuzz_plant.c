/* SPDX-License-Identifier: Apache-2.0 */
/* libFuzzer target: the production part's parser must fail cleanly or give a plant whose
 * invariants hold (indices in range, shares summing to 1, sorted shift windows), never crash. */
#include <math.h>
#include <stddef.h>
#include <stdint.h>

#include "fuzz_check.h"
#include "plant.h"
#include "plant_json.h"
#include "twin/err.h"
#include "twin/model.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static bool node_ok(const struct sim_plant *p, int node, bool input)
{
    if (node >= 0)
        return (uint32_t)node < p->n_buffers;
    return input ? node == SIM_NODE_SOURCE || node == SIM_NODE_DEMAND : node == SIM_NODE_SINK;
}

static void check_station(const struct sim_plant *p, const struct sim_station *s)
{
    CHECK(s->machines >= 1 && s->machines <= SIM_MAX_MACHINES);
    CHECK(s->n_outputs >= 1 && s->n_outputs <= SIM_MAX_OUTPUTS);
    CHECK(node_ok(p, s->input, true));
    CHECK(s->input != SIM_NODE_DEMAND || p->demand.kind != SIM_DEMAND_NONE);
    double sum = 0;
    for (uint32_t k = 0; k < s->n_outputs; k++) {
        CHECK(node_ok(p, s->outputs[k], false));
        CHECK(s->output_share[k] >= 0);
        sum += s->output_share[k];
    }
    CHECK(fabs(sum - 1) < 1e-9);
    CHECK(s->stock >= -1 && s->stock < (int)p->n_stocks);
    CHECK(s->cycle.mean > 0 && isfinite(s->cycle.mean) && s->cycle.scale == 1);
    CHECK(s->fail_basis == SIM_FAIL_NONE || s->ttf.mean > 0);
    CHECK(s->scrap >= 0 && s->scrap < 1);
    CHECK(s->live.wear.n == 0 || (s->live.wear.n >= 2 && s->live.wear.n <= SIM_MAX_WEAR_PTS));
    for (uint32_t k = 1; k < s->live.wear.n; k++)
        CHECK(s->live.wear.x[k] > s->live.wear.x[k - 1]);
}

static void check_plant(const struct sim_plant *p)
{
    CHECK(p->n_stations >= 1 && p->n_stations <= SIM_MAX_STATIONS);
    for (uint32_t i = 0; i < p->n_stations; i++)
        check_station(p, &p->stations[i]);
    for (uint32_t i = 0; i < p->n_buffers; i++)
        CHECK(p->buffers[i].initial <= p->buffers[i].capacity);
    for (uint32_t i = 0; i < p->n_suppliers; i++)
        CHECK(p->suppliers[i].stock >= 0 && (uint32_t)p->suppliers[i].stock < p->n_stocks);
    const struct sim_shifts *sh = &p->shifts;
    CHECK(sh->n <= SIM_MAX_SHIFTS && (sh->period > 0) == (sh->n > 0));
    for (uint32_t k = 0; k < sh->n; k++) {
        CHECK(sh->start[k] >= 0 && sh->start[k] < sh->end[k] && sh->end[k] <= sh->period);
        CHECK(k == 0 || sh->start[k] > sh->end[k - 1]);
    }
    CHECK(p->demand.kind != SIM_DEMAND_POISSON || p->demand.rate > 0);
    struct sim_plant *copy = sim_plant_copy(p);
    sim_plant_free(copy);
}

static void parse_once(const uint8_t *data, size_t size, const struct tw_model *m)
{
    struct sim_plant *p = NULL;
    struct tw_model_errors errs = {0};
    int rc = sim_plant_parse((const char *)data, size, m, &p, &errs);
    CHECK(rc == 0 || rc == TW_EINVAL || rc == TW_ENOMEM);
    CHECK(rc != 0 || errs.total == 0);
    CHECK(rc != TW_EINVAL || errs.total > 0);
    CHECK(rc == 0 || p == NULL);
    if (p)
        check_plant(p);
    sim_plant_free(p);
    tw_model_errors_free(&errs);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    parse_once(data, size, NULL);
    /* With the file's own assets, as the scenario runner reads it. */
    struct tw_model *m = NULL;
    if (tw_model_load_buffer((const char *)data, size, &m, NULL) == 0)
        parse_once(data, size, m);
    tw_model_free(m);
    return 0;
}
