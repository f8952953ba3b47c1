/* SPDX-License-Identifier: Apache-2.0 */
/* The apply script for a plant model: the derived-signal operators, each kind's derived
 * signals compiled to Lua in evaluation order, and apply.lua. Pure; tested through a real
 * redis-server (tests/integration/test_derive_ops.py, test_ingest_derived.py). */
#include "apply.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "twin/derive.h"
#include "twin/err.h"

struct text {
    char *buf;
    size_t len, cap;
    bool nomem;
};

static void add(struct text *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void add(struct text *t, const char *fmt, ...)
{
    for (int pass = 0; pass < 2 && !t->nomem; pass++) {
        va_list ap;
        va_start(ap, fmt);
        /* No buffer yet: measure only (NULL + 0 would be undefined behaviour). */
        int n = vsnprintf(t->buf ? t->buf + t->len : NULL, t->cap - t->len, fmt, ap);
        va_end(ap);
        if (n < 0) {
            t->nomem = true;
            return;
        }
        if ((size_t)n < t->cap - t->len) {
            t->len += (size_t)n;
            return;
        }
        size_t cap = (t->cap + (size_t)n + 1) * 2;
        char *grown = realloc(t->buf, cap);
        if (!grown) {
            t->nomem = true;
            return;
        }
        t->buf = grown;
        t->cap = cap;
    }
}

/* Marks in read[] the kind's measured signals that e reads (derived ones are computed before
 * they are read, so the script never fetches them). */
static void mark_reads(const struct tw_model_kind *k, const struct tw_dx *e, bool *read)
{
    for (uint16_t i = 0; i < e->n; i++) {
        if (e->node[i].op != TW_DX_SIGNAL)
            continue;
        const struct tw_model_signal *s = tw_model_signal(k, tw_dx_name(e, i));
        if (s && !s->expr)
            read[s - k->signals] = true;
    }
}

/* The layout of the windowed operators' state in derive.lua, part of the state key of every
 * expression that has one: a layout change starts those windows over, and every other
 * operator (an integral, a total) keeps its state across the upgrade. 1: six fields a bucket
 * for every window; 2: only the fields each operator merges. */
#define WINDOW_STATE_LAYOUT "2"

static bool has_window(const struct tw_dx *e)
{
    for (uint16_t i = 0; i < e->n; i++) {
        switch (e->node[i].op) {
        case TW_DX_MEAN_OVER:
        case TW_DX_MIN_OVER:
        case TW_DX_MAX_OVER:
        case TW_DX_STD_OVER:
        case TW_DX_COUNT_OVER:
            return true;
        default:
            break;
        }
    }
    return false;
}

/* FNV-1a, continued from h over text. */
static uint32_t fnv1a(uint32_t h, const char *text)
{
    for (const unsigned char *p = (const unsigned char *)text; *p; p++)
        h = (h ^ *p) * 16777619u;
    return h;
}

/* FNV-1a of a compiled expression (and of the window layout, when it has a window): with the
 * name, the key of its operator state, so that state saved for another expression (the model
 * changed) or in another layout is never fed to this one. Layout 1 keys hashed the expression
 * alone. */
static uint32_t fingerprint(const struct tw_dx *e, const char *lua)
{
    uint32_t h = fnv1a(2166136261u, lua);
    return has_window(e) ? fnv1a(h, "window layout " WINDOW_STATE_LAYOUT) : h;
}

/* One kind's entry: {{name, slots, function(V, S) return <expr> end, state key}, ...,
 * reads = {...}}, the derived signals in the order the model gives (each after those it reads),
 * reads the measured signals their expressions read, which the script takes from the state
 * when an update does not carry them. */
static int add_kind(struct text *t, const struct tw_model_kind *k, char *err, size_t errlen)
{
    static struct tw_dx dx; /* 4 KB: not on the stack; callers run at startup, one at a time */
    static char lua[8192];
    static bool read[TW_MODEL_MAX_SIGNALS];
    memset(read, 0, sizeof read);
    add(t, "  ['%s'] = {\n", k->name);
    for (size_t i = 0; i < k->n_derived; i++) {
        const struct tw_model_signal *s = &k->signals[k->derived[i]];
        char why[256];
        const char *problem = tw_dx_parse(s->expr, NULL, NULL, &dx, why, sizeof why) != 0 ? why
                              : tw_dx_lua(&dx, lua, sizeof lua) < 0 ? "too large to compile"
                                                                    : NULL;
        if (problem) { /* the model was checked: only a changed limit could get here */
            snprintf(err, errlen, "kind %s, derived signal %s: %s", k->name, s->name, problem);
            return TW_EINVAL;
        }
        add(t, "    {'%s', %u, function(V, S) return %s end, '%s#%08x'},\n", s->name, dx.n_state,
            lua, s->name, fingerprint(&dx, lua));
        mark_reads(k, &dx, read);
    }
    add(t, "    reads = {");
    for (size_t i = 0; i < k->n_signals && i < TW_MODEL_MAX_SIGNALS; i++)
        if (read[i])
            add(t, "'%s', ", k->signals[i].name);
    add(t, "},\n  },\n");
    return 0;
}

int ingest_script_build(const struct tw_model *m, char **out, char *err, size_t errlen)
{
    struct text t = {0};
    *out = NULL;
    size_t n_derived = 0;
    for (size_t i = 0; m && i < tw_model_kind_count(m); i++)
        n_derived += tw_model_kind_at(m, i)->n_derived;
    /* Every call runs the whole script, so the operators are defined anew each time (~45
     * closures, 3.3 µs of a 14 µs apply measured apart): left out when no kind needs them. */
    if (n_derived > 0)
        add(&t, "local D = (function()\n%s\nreturn D\nend)()\n", ingest_derive_lua);
    else
        add(&t, "local D -- no kind has derived signals\n");
    add(&t, "local KINDS = {\n");
    for (size_t i = 0; m && i < tw_model_kind_count(m); i++) {
        const struct tw_model_kind *k = tw_model_kind_at(m, i);
        if (k->n_derived == 0)
            continue;
        int rc = add_kind(&t, k, err, errlen);
        if (rc < 0) {
            free(t.buf);
            return rc;
        }
    }
    add(&t, "}\n%s", ingest_apply_lua);
    if (t.nomem) {
        free(t.buf);
        return TW_ENOMEM;
    }
    *out = t.buf;
    return 0;
}
