/* SPDX-License-Identifier: Apache-2.0 */
/* `twinctl model check FILE`: both parts of a plant model validated, every problem printed
 * with its JSON path, and a summary of a valid one. */
#include <stdio.h>
#include <string.h>

#include "plant_actions.h"
#include "plant_json.h"
#include "twin/err.h"
#include "twin/model.h"
#include "twinctl.h"

static void print_problems(const char *file, const struct tw_model_errors *errs)
{
    char line[sizeof(struct tw_model_error) + 4];
    for (size_t i = 0; i < errs->count; i++) {
        tw_model_error_format(&errs->items[i], line, sizeof(line));
        fprintf(stderr, "%s: %s\n", file, line);
    }
    if (errs->total > errs->count)
        fprintf(stderr, "%s: %zu more problems not shown\n", file, errs->total - errs->count);
}

static void print_summary(const char *file, const struct tw_model *m, const struct sim_plant *p)
{
    printf("%s: valid: plant \"%s\", %zu assets of %zu kinds\n", file, tw_model_plant(m),
           tw_model_asset_count(m), tw_model_kind_count(m));
    for (size_t i = 0; i < tw_model_kind_count(m); i++) {
        const struct tw_model_kind *k = tw_model_kind_at(m, i);
        for (size_t j = 0; j < k->n_derived; j++) {
            const struct tw_model_signal *s = &k->signals[k->derived[j]];
            printf("  derived %s.%s%s%s%s = %s\n", k->name, s->name, s->unit[0] ? " (" : "",
                   s->unit, s->unit[0] ? ")" : "", s->expr);
        }
        for (size_t j = 0; j < k->n_signals; j++) {
            const struct tw_model_signal *s = &k->signals[j];
            if (!s->has_physics)
                continue;
            printf("  physics %s.%s: cycle %gh, drift %s, memory %gh\n", k->name, s->name,
                   (double)s->physics_cycle_ms / 3600000.0,
                   s->physics_drift == 2   ? "quadratic"
                   : s->physics_drift == 1 ? "linear"
                                           : "none",
                   (double)s->physics_memory_ms / 3600000.0);
        }
    }
    if (!p) {
        printf("%s: no production part: twin-scenario cannot simulate this plant\n", file);
        return;
    }
    printf("%s: production: %u stations, %u buffers, %u stocks, %u suppliers\n", file,
           p->n_stations, p->n_buffers, p->n_stocks, p->n_suppliers);
    for (uint32_t i = 0; i < p->n_stations; i++) {
        const struct sim_station *s = &p->stations[i];
        printf("  station %-16s %u machine%s, cycle %.4g s, MTBF %.4g h, MTTR %.4g h\n", s->name,
               s->machines, s->machines == 1 ? "" : "s", s->cycle.mean * s->cycle.scale,
               s->fail_basis == SIM_FAIL_NONE ? 0.0 : s->ttf.mean * s->ttf.scale / 3600.0,
               s->fail_basis == SIM_FAIL_NONE ? 0.0 : s->ttr.mean * s->ttr.scale / 3600.0);
    }
    for (uint32_t i = 0; i < p->n_suppliers; i++)
        printf("  supplier %-15s delivers %.4g per lot to stock %s\n", p->suppliers[i].name,
               p->suppliers[i].lot,
               p->suppliers[i].stock >= 0 && (uint32_t)p->suppliers[i].stock < p->n_stocks
                   ? p->stocks[p->suppliers[i].stock].name
                   : "?");
}

static void print_actions(const char *file, const struct sim_plant *p, const struct sim_actions *a)
{
    printf("%s: actions ranked by %s %s over %.4g h, %u replications; autonomy %s", file,
           a->maximize ? "highest" : "lowest", a->objective, a->horizon / 3600.0, a->replications,
           a->autonomy_allowed ? "allowed" : "not allowed");
    if (a->autonomy_allowed)
        printf(" (at most %u commands an hour, %.4g h apart per machine)", a->max_per_hour,
               a->min_interval / 3600.0);
    printf("\n");
    for (int k = 0; k < (int)SIM_ACT_N; k++) {
        const struct sim_action_rule *r = &a->rule[k];
        if (!r->declared)
            continue;
        printf("  action %-10s%s on", sim_action_word((enum sim_action_kind)k),
               r->approval ? " (needs approval)" : "");
        for (uint32_t s = 0; s < p->n_stations; s++)
            if (r->station[s])
                printf(" %s", p->stations[s].name);
        printf("\n");
    }
}

int ctl_model_check(int argc, char **argv)
{
    if (argc != 3 || strcmp(argv[1], "check") != 0)
        return ctl_usage_error("usage: twinctl model check FILE");
    const char *file = argv[2];
    struct tw_model_errors errs = {0};
    struct tw_model *model = NULL;
    struct sim_plant *plant = NULL;
    int rc = tw_model_load_file(file, &model, &errs);
    /* The production part is read even when the common part failed, so every problem of the
     * file is listed at once (without a model its asset references are not checked). */
    int prc = sim_plant_load_file(file, model, &plant, &errs);
    struct sim_actions actions;
    int arc = prc == 0 ? sim_actions_load_file(file, plant, &actions, &errs) : 0;
    int status = CTL_EXIT_OK;
    if (rc < 0 || prc < 0 || arc < 0) {
        print_problems(file, &errs);
        if (errs.count == 0)
            fprintf(stderr, "%s: %s\n", file, tw_strerror(rc < 0 ? rc : prc < 0 ? prc : arc));
        fprintf(stderr, "%s: invalid (%zu problem%s)\n", file, errs.total,
                errs.total == 1 ? "" : "s");
        status = CTL_EXIT_USAGE;
    } else {
        print_summary(file, model, plant);
        if (arc > 0)
            print_actions(file, plant, &actions);
    }
    tw_model_errors_free(&errs);
    sim_plant_free(plant);
    tw_model_free(model);
    return status;
}
