/* SPDX-License-Identifier: Apache-2.0 */
/* Internals shared by model.c (storage, lookups) and model_check.c (schema walk). */
#ifndef TWIN_MODEL_INTERNAL_H
#define TWIN_MODEL_INTERNAL_H

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "twin/model.h"

struct model_block;

struct tw_model {
    const char *plant;
    bool reject_unknown_assets;
    struct tw_model_kind *kinds; /* sorted by name, unique */
    size_t n_kinds;
    struct tw_model_asset *assets; /* file order, unique */
    size_t n_assets;
    uint32_t *slots;            /* hash table of asset index + 1; 0 is an empty slot */
    size_t n_slots;             /* a power of two, at least 2 * n_assets */
    struct model_block *blocks; /* the arena: every string and array above except slots */
};

/* Zeroed memory from the model's arena, 16-byte aligned; NULL when out of memory. */
void *model_alloc(struct tw_model *m, size_t size);

/* A copy of s in the arena; NULL when out of memory. */
char *model_strdup(struct tw_model *m, const char *s);

/* Allocates an empty asset hash table for up to max_assets assets; TW_ENOMEM or 0. */
int model_index_init(struct tw_model *m, size_t max_assets);

/* Adds m->assets[i] to the hash table; false when its id is already there. */
bool model_index_add(struct tw_model *m, size_t i);

/* Walks the parsed document, filling m and reporting every problem through errs (may be NULL).
 * Returns the number of problems found, or -1 when out of memory. */
long model_check(const cJSON *root, struct tw_model *m, struct tw_model_errors *errs);

#endif
