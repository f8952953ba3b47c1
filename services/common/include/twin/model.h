/* SPDX-License-Identifier: Apache-2.0 */
/* The plant model (TWIN_MODEL): asset kinds, their signals and limits, and the assets. */
#ifndef TWIN_MODEL_H
#define TWIN_MODEL_H

/*
 * One JSON file describes the plant; the schema is in README.md, "Plant model". This module
 * reads the parts the ingest and the predictor need: "version", "plant", "ingest",
 * "asset_kinds" and "assets". The top-level keys "stations", "buffers", "stocks", "routing",
 * "suppliers", "demand", "shifts", "actions" and "derived" belong to the scenario runner's part
 * of the model: they are accepted and skipped here (only checked for duplicate keys) and
 * validated by that part (services/scenario/plant_json.h). Any other unknown key, anywhere, is
 * an error, so that a typo ("alram") cannot silently switch a limit off. The values of
 * "description" keys are free text (a string, or a DTDL-style language map such as
 * {"en": "...", "de": "..."}) and are not checked.
 *
 * Loading is pure (no I/O besides reading the file in tw_model_load_file) and reports every
 * error it finds, each with the JSON path of the offending value, into a caller-owned
 * struct tw_model_errors (twin/jsonpath.h).
 *
 * Threads: a loaded model is immutable. Any number of threads may call the lookups on the same
 * model at once; tw_model_free must not run concurrently with them. To reload, load a new
 * model and swap the pointer the service uses (readers of the old one must be done first).
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "twin/jsonpath.h"

/* Caps that keep a hostile or mistaken file from exhausting memory. */
#define TW_MODEL_MAX_FILE_BYTES  (16u * 1024u * 1024u)
#define TW_MODEL_MAX_ASSETS      100000u
#define TW_MODEL_MAX_KINDS       10000u
#define TW_MODEL_MAX_SIGNALS     1000u /* per kind */
#define TW_MODEL_UNIT_MAX        32u   /* bytes of "unit", UTF-8 allowed */
#define TW_MODEL_TEXT_MAX        4096u /* bytes of "plant", "description" and "station" */
#define TW_MODEL_SEASON_MAX_MS   (366LL * 24 * 3600 * 1000)
#define TW_MODEL_SEASON_MAX_SAMP 1000000u
#define TW_MODEL_MAX_DERIVED     64u /* derived signals per kind */

/* One threshold pair of a signal ("warn" or "alarm"); each side is optional. A value is out
 * of range when it is > above (has_above) or < below (has_below). */
struct tw_model_limit {
    bool has_above;
    bool has_below;
    double above;
    double below;
};

/* What a kind says about one of its signals. Strings are owned by the model. */
struct tw_model_signal {
    const char *name; /* a valid signal name (tw_valid_signal) */
    const char *unit; /* "degC", "mm/s", …; "" when not given (dimensionless) */
    struct tw_model_limit warn;
    struct tw_model_limit
        alarm; /* per side: alarm.above >= warn.above, alarm.below <= warn.below */
    /* Seasonality hint for the predictor, at most one of the two is non-zero: the season as a
     * duration ("season": "1d") or as a number of samples ("season_samples": 24); both 0 when
     * the signal has no season. */
    int64_t season_ms;
    uint32_t season_samples;
    /* NULL for a measured signal; for a derived one its expression (twin/derive.h), which
     * ingest evaluates on every update of the asset's state. */
    const char *expr;
    /* A physical relation the predictor fits as a grey-box model ("physics"): a periodic driver
     * ("cycle": "1d", e.g. the ambient temperature over a day) and/or a smooth drift with time
     * ("drift": 1 linear, 2 quadratic; heat from wear, fouling), fitted over "memory" (default
     * the cycle, or 1d). has_physics false: none (the other fields are 0). */
    bool has_physics;
    uint8_t physics_drift;
    int64_t physics_cycle_ms;
    int64_t physics_memory_ms;
};

/* An asset kind, the model's equivalent of a DTDL interface. */
struct tw_model_kind {
    const char *name;        /* same rules as an asset id */
    const char *description; /* NULL unless "description" is a string */
    size_t n_signals;
    const struct tw_model_signal *signals; /* sorted by name (strcmp) */
    size_t n_derived;
    const uint32_t *derived; /* indices into signals of the derived ones, each after every
                              * derived signal it reads */
};

/* One asset of the plant. */
struct tw_model_asset {
    const char *id; /* a valid asset id (tw_valid_asset_id) */
    const struct tw_model_kind *kind;
    const char *description; /* NULL unless "description" is a string */
    const char *station;     /* NULL when not given; checked against "stations" by part 2 */
};

struct tw_model;

/* Parses and validates a model held in memory (need not be NUL-terminated). On success returns
 * 0 and *out is a new model the caller owns (tw_model_free). Otherwise *out is NULL and the
 * result is TW_EINVAL (the model is invalid: every problem is listed in errs), or TW_ENOMEM.
 * errs may be NULL; when given, it is appended to. Any thread. */
int tw_model_load_buffer(const char *buf, size_t len, struct tw_model **out,
                         struct tw_model_errors *errs);

/* As tw_model_load_buffer, reading the file at path first. Also returns TW_ENOENT (no such
 * file) or TW_EIO (unreadable), with one entry at path "$" saying why; a file larger than
 * TW_MODEL_MAX_FILE_BYTES is TW_EINVAL. Any thread (blocks on the file system). */
int tw_model_load_file(const char *path, struct tw_model **out, struct tw_model_errors *errs);

/* For a program's start: loads the model at path (NULL or "": no model, returns 0 with *out
 * NULL) and prints every error to stderr as "<program>: <path>: <json path>: <message>".
 * Returns what tw_model_load_file returns. Main thread, before other threads start. */
int tw_model_load_reporting(const char *program, const char *path, struct tw_model **out);

/* For loaders of other parts of the same file (the scenario runner's production part), so
 * that every part reads and parses the file the same way and reports the same errors at "$".
 *
 * tw_model_read_file reads the file at path (at most TW_MODEL_MAX_FILE_BYTES + 1 bytes, so an
 * oversized file is noticed without reading it all) into *buf (malloc, not terminated; free
 * it) and *len. Returns 0, TW_ENOENT or TW_EIO with an entry at "$" saying why, or
 * TW_ENOMEM.
 *
 * tw_model_parse_text parses buf as one JSON value followed by nothing but white space; a
 * file too large, empty, holding a NUL byte or with a syntax error (given by line and
 * column) is TW_EINVAL with one entry at "$". On success *root is the cJSON tree
 * (cJSON_Delete it). An entry already in errs with the same path and message is not added
 * again (two loaders reporting into one list). Any thread. */
struct cJSON;
int tw_model_read_file(const char *path, char **buf, size_t *len, struct tw_model_errors *errs);
int tw_model_parse_text(const char *buf, size_t len, struct cJSON **root,
                        struct tw_model_errors *errs);

/* Releases a model and everything it owns; NULL is a no-op. */
void tw_model_free(struct tw_model *m);

/* "plant" (a free-text name, "" when absent). */
const char *tw_model_plant(const struct tw_model *m);

/* "ingest": {"reject_unknown_assets": true}: ingest refuses telemetry of assets not in
 * "assets" (reason unknown_asset). Default false. */
bool tw_model_reject_unknown_assets(const struct tw_model *m);

/* The asset with this id, or NULL. O(1): open-addressing hash table (FNV-1a, linear probing,
 * load factor <= 1/2), because ingest calls it for every telemetry message. */
const struct tw_model_asset *tw_model_asset(const struct tw_model *m, const char *id);

/* Whether the model lists this asset. */
bool tw_model_has_asset(const struct tw_model *m, const char *id);

/* The kind with this name, or NULL. O(log n): sorted array and binary search. */
const struct tw_model_kind *tw_model_kind(const struct tw_model *m, const char *name);

/* The spec of a signal of a kind, or NULL when the kind does not declare it. O(log n). */
const struct tw_model_signal *tw_model_signal(const struct tw_model_kind *kind, const char *name);

/* Shorthand: the spec of signal `name` of the asset's kind, or NULL (unknown asset or
 * signal). */
const struct tw_model_signal *tw_model_asset_signal(const struct tw_model *m, const char *asset,
                                                    const char *name);

/* Iteration, for the simulator and the dashboard: assets in file order, kinds by name. */
size_t tw_model_asset_count(const struct tw_model *m);
const struct tw_model_asset *tw_model_asset_at(const struct tw_model *m, size_t i);
size_t tw_model_kind_count(const struct tw_model *m);
const struct tw_model_kind *tw_model_kind_at(const struct tw_model *m, size_t i);

/* Parses a duration such as "1d", "12h", "90m", "30s", "250ms", "1w" or "1h30m" (one or more
 * <digits><unit> groups, units ms s m h d w) into milliseconds. Returns 0, or TW_EINVAL when
 * the text is malformed, zero, or longer than TW_MODEL_SEASON_MAX_MS. Pure; any thread. */
int tw_model_parse_duration(const char *text, int64_t *ms);

#endif
