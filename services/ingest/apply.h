/* SPDX-License-Identifier: Apache-2.0 */
/* twin-ingest's apply step without I/O: the EVALSHA arguments for a Telemetry and the
 * parsing of the Lua script's answer. */
#ifndef INGEST_APPLY_H
#define INGEST_APPLY_H

#include <stddef.h>
#include <stdint.h>

#include "twin/codec.h"
#include "twin/model.h"
#include "twin/store.h"
#include "twin/validate.h"

/* The Lua sources of apply.lua and derive.lua, embedded at build time. */
extern const char ingest_apply_lua[];
extern const char ingest_derive_lua[];

/* The apply script for model m (NULL: no derived signals): kind_code, each kind's derived
 * signals compiled to Lua from derive.lua's operator bodies (only when a kind has derived
 * signals), then apply.lua. *out is malloc'd.
 * Returns 0, TW_ENOMEM, or TW_EINVAL with a sentence in err (an expression the model check
 * passed but the compiler refused). */
int ingest_script_build(const struct tw_model *m, char **out, char *err, size_t errlen);

enum ingest_outcome {
    INGEST_APPLIED = 1,   /* state changed (and history appended) */
    INGEST_LATE = 2,      /* history only */
    INGEST_DUPLICATE = 3, /* seen before: dropped */
    INGEST_STALE = 4,     /* below the replay window: dropped */
};

const char *ingest_outcome_word(enum ingest_outcome o);

#define INGEST_KEYS       4
#define INGEST_FIXED_ARGS 6
#define INGEST_VALUE_TEXT 32

/* Storage for one apply command; sized once for max_samples, reused for every message. */
struct ingest_cmd {
    size_t max_samples;
    int argc;
    const char **argv;
    size_t *argvlen;
    char (*values)[INGEST_VALUE_TEXT];
    char keys[INGEST_KEYS][TW_NAME_MAX + 16];
    char fixed[INGEST_FIXED_ARGS - 1][24]; /* the kind is passed by pointer */
    char numkeys[4];
};

int ingest_cmd_init(struct ingest_cmd *c, size_t max_samples);
void ingest_cmd_free(struct ingest_cmd *c);

struct ingest_apply_params {
    uint64_t window;         /* replay window W, a power of two */
    uint64_t history_maxlen; /* MAXLEN ~ of the history stream */
};

/* Fills c with "3 <state> <history> <replay> <seq> <ts_ms> <ingest_ms> <W> <maxlen> <kind>
 * <signal> <value> …" for t (values as %.17g, which round-trips every double). kind: the
 * asset's kind in the plant model (NULL: none); when it has derived signals the command names
 * a fourth key, "<derived>" after "<replay>" (and numkeys 4), and carries the kind's name, else
 * "". An asset without derived signals keeps to three keys: a Redis Cluster slot in migration
 * answers TRYAGAIN to a script whose keys are partly moved, and a key that never exists would
 * be "partly" for good. t->asset_id must be a validated asset id and t->n_samples <=
 * c->max_samples. */
void ingest_cmd_build(struct ingest_cmd *c, const struct tw_telemetry *t, int64_t ingest_ms,
                      const struct ingest_apply_params *p, const struct tw_model_kind *kind);

/* The merged state the script returned with INGEST_APPLIED. Signal names point into the
 * reply, so the reply must outlive it. */
struct ingest_state {
    uint64_t seq;
    int64_t ts_ms;
    int64_t ingest_ms;
    int64_t previous_ingest_ms; /* when the state had changed before this apply (0: never) */
    size_t n_samples;
    size_t cap;
    struct tw_sample *samples;
    size_t n_bad; /* fields whose value was not a finite number (edited by hand?) */
    /* _changed: the signals the last update carried (pointers into changed_buf). */
    size_t n_changed;
    const char **changed;
    char *changed_buf;
};

int ingest_state_init(struct ingest_state *st, size_t cap);
void ingest_state_free(struct ingest_state *st);

/* Parses the script's reply ({1, hash, previous _ingest_ms}, {2}, {3} or {4}). Returns 0 with
 * *outcome (and, for INGEST_APPLIED, *st filled), or TW_EPROTO for a reply of the wrong shape
 * (an error reply included). */
int ingest_parse_reply(const struct tw_reply *r, enum ingest_outcome *outcome,
                       struct ingest_state *st);

/* Parses an HGETALL of twin:{a}:state into *st (meta fields and signals). 0 or TW_EPROTO. */
int ingest_parse_state(const struct tw_reply *hash, struct ingest_state *st);

#endif
