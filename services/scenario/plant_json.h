/* SPDX-License-Identifier: Apache-2.0 */
/* Reads the production part of the plant model file (stations, buffers, stocks, suppliers,
 * demand, shifts) into a struct sim_plant, reporting every problem with its JSON path. */
#ifndef TWIN_SCENARIO_PLANT_JSON_H
#define TWIN_SCENARIO_PLANT_JSON_H

/*
 * The schema is in README.md, "Plant model" / "Production". The file is the same one the
 * common loader (twin/model.h) reads: this parser looks only at the top-level keys "stations",
 * "buffers", "stocks", "suppliers", "demand", "shifts" and "routing" (which it rejects: routing
 * is given by each station's "input" and "output"), checks that "actions" and "derived"
 * (reserved for later features) are objects or arrays, and ignores every other key.
 *
 * Like the common loader it reports every problem, not just the first, each as a JSON path and
 * a message ("$.stations.press.cycle_time.sd: must be a duration >= 0 ..."): unknown keys,
 * wrong types, out-of-range values, names that do not resolve, and the checks of the whole
 * line (every buffer is filled and emptied by some station, no station feeds itself through a
 * cycle, some station outputs to "sink", "demand" exists exactly when a station takes its
 * input from it, every live asset and signal exists in the common model). An error already
 * listed in errs with the same path and message (a duplicate key the common loader reported
 * first) is not added twice.
 *
 * The result passes the plant's own invariants (indices in range, shares summing to 1,
 * distributions finished, shift windows sorted and disjoint) with plant->epoch = 0: the runner
 * sets the epoch. Touching shift windows are merged, so ["06:00", "14:00"] and ["14:00",
 * "22:00"] become one window 06:00-22:00 (the engine sees working time, not shift names).
 *
 * Pure apart from reading the file in sim_plant_load_file; any thread.
 */

#include <stddef.h>

#include "plant.h"
#include "twin/model.h"

/* Reads the production part of a plant model file held in memory (the whole model JSON; need
 * not be NUL-terminated). model (may be NULL) gives the assets: a station's machines default
 * to the assets whose "station" names it, in file order, and machine_asset[] gets their ids;
 * without a model no asset is checked or assigned. Returns 0 with *out = a new plant the
 * caller owns (sim_plant_free), or 0 with *out = NULL when the file has no production keys at
 * all, or TW_EINVAL with every problem appended to errs (may be NULL), or TW_ENOMEM. */
int sim_plant_parse(const char *buf, size_t len, const struct tw_model *model,
                    struct sim_plant **out, struct tw_model_errors *errs);

/* As sim_plant_parse, reading the file at path first. Also returns TW_ENOENT (no such file) or
 * TW_EIO (unreadable), with one entry at path "$" saying why; a file larger than
 * TW_MODEL_MAX_FILE_BYTES is TW_EINVAL. Blocks on the file system. */
int sim_plant_load_file(const char *path, const struct tw_model *model, struct sim_plant **out,
                        struct tw_model_errors *errs);

#endif
