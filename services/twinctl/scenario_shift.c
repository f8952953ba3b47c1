/* SPDX-License-Identifier: Apache-2.0 */
/* `--at shift`: a disruption that starts with the next shift of the plant model's calendar, so
 * that an outage asked about at night hits working time (an idle line loses nothing). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "plant_json.h"
#include "scenario_cmd.h"
#include "twin/clock.h"
#include "twin/model.h"

int64_t ctl_ms_to_next_shift(const struct sim_shifts *sh, double now_s)
{
    if (!(sh->period > 0) || sh->n == 0)
        return 0;
    double pos = fmod(now_s, sh->period), best = INFINITY;
    for (uint32_t i = 0; i < sh->n; i++) {
        if (pos >= sh->start[i] && pos < sh->end[i])
            return 0;
        double wait = sh->start[i] - pos;
        best = fmin(best, wait < 0 ? wait + sh->period : wait);
    }
    return (int64_t)ceil(best * 1000.0);
}

static void print_model_errors(const char *path, const struct tw_model_errors *errs)
{
    char line[sizeof(struct tw_model_error) + 4];
    for (size_t i = 0; i < errs->count; i++) {
        tw_model_error_format(&errs->items[i], line, sizeof(line));
        fprintf(stderr, "twinctl: %s: %s\n", path, line);
    }
}

int ctl_resolve_at_shift(struct run_opts *o)
{
    bool any = false;
    for (size_t i = 0; i < o->req.n_perturb; i++)
        any = any || o->req.perturb[i].start_ms == CTL_AT_SHIFT;
    if (!any)
        return 0;
    const char *path = o->model_path ? o->model_path : getenv("TWIN_MODEL");
    if (!path || !path[0])
        return ctl_usage_error("--at shift needs the plant model's shifts: give --model FILE or "
                               "set TWIN_MODEL");
    struct tw_model_errors errs = {0};
    struct tw_model *model = NULL;
    struct sim_plant *plant = NULL;
    int rc = tw_model_load_file(path, &model, &errs);
    if (rc == 0)
        rc = sim_plant_load_file(path, model, &plant, &errs);
    if (rc == 0 && !plant)
        rc = ctl_usage_error("--at shift: %s has no production part (no shifts)", path);
    else if (rc < 0)
        print_model_errors(path, &errs);
    if (rc == 0) {
        int64_t wait = ctl_ms_to_next_shift(&plant->shifts, (double)tw_now_ms() / 1000.0);
        for (size_t i = 0; i < o->req.n_perturb; i++)
            if (o->req.perturb[i].start_ms == CTL_AT_SHIFT)
                o->req.perturb[i].start_ms = wait;
    }
    sim_plant_free(plant);
    tw_model_free(model);
    tw_model_errors_free(&errs);
    return rc != 0 ? CTL_EXIT_USAGE : 0; /* ctl_usage_error's status is positive */
}
