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

/* One kind's entry, made by a function so that only an update of that kind makes it:
 * function() return {{name, slots, function(V, S) return <expr> end, state key}, ...,
 * reads = {...}} end, the derived signals in the order the model gives (each after those it
 * reads), reads the measured signals their expressions read, which the script takes from the
 * state when an update does not carry them. */
static int add_kind(struct text *t, const struct tw_model_kind *k, char *err, size_t errlen)
{
    static struct tw_dx dx; /* 4 KB: not on the stack; callers run at startup, one at a time */
    static char lua[8192];
    static bool read[TW_MODEL_MAX_SIGNALS];
    memset(read, 0, sizeof read);
    add(t, "  ['%s'] = function() return {\n", k->name);
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
    add(t, "},\n  } end,\n");
    return 0;
}

/* Whether the compiled expressions (kinds) call D.<name>( (name: len bytes). Signal names
 * cannot hold '(', so only a call matches. */
static bool kinds_call(const char *kinds, const char *name, size_t len)
{
    for (const char *p = strstr(kinds, "D."); p; p = strstr(p + 2, "D."))
        if (strncmp(p + 2, name, len) == 0 && p[2 + len] == '(')
            return true;
    return false;
}

/* Whether derive.lua's definition line `line` ("function D.<name>(...") is kept: D.decode,
 * D.encode and the operators kinds calls. Sets name and len to the operator's name. */
static bool operator_kept(const char *line, const char *kinds, const char **name, size_t *len)
{
    *name = line + 11;
    *len = strcspn(*name, "(\n");
    return (*len == 6 && (strncmp(*name, "decode", 6) == 0 || strncmp(*name, "encode", 6) == 0)) ||
           kinds_call(kinds, *name, *len);
}

/* derive.lua as operators(), the function that makes D (called only for an update of a kind
 * with derived signals), without the operators no expression of kinds calls: every call runs
 * the whole script, so each definition made costs on every apply (~45 closures in all, 3.3 µs
 * of a 14 µs apply measured apart). apply.lua's D.decode and D.encode and the local helpers stay;
 * no operator calls another. A definition is "function D.<name>(...)" at the start of a line,
 * ending on that line (" end") or at the next line that is "end". derive.lua's "local D = {}"
 * becomes a constructor naming every field D gets, so that the table is made at its size
 * instead of growing through five rehashes (~0.8 µs of a 37 µs apply with 10 derived signals,
 * measured apart). */
static void add_operators(struct text *t, const char *kinds)
{
    add(t, "local D\nlocal function operators()\n");
    bool skipping = false;
    for (const char *line = ingest_derive_lua; *line;) {
        const char *nl = strchr(line, '\n');
        size_t len = nl ? (size_t)(nl - line) + 1 : strlen(line);
        size_t text_len = nl ? (size_t)(nl - line) : len;
        const char *name;
        size_t n;
        if (skipping) {
            skipping = !(text_len == 3 && strncmp(line, "end", 3) == 0);
        } else if (strncmp(line, "local D = {}\n", 13) == 0) {
            add(t, "local D = {t = 0");
            for (const char *d = strstr(ingest_derive_lua, "\nfunction D."); d;
                 d = strstr(d + 1, "\nfunction D."))
                if (operator_kept(d + 1, kinds, &name, &n))
                    add(t, ", %.*s = false", (int)n, name);
            add(t, "}\n");
        } else if (strncmp(line, "function D.", 11) == 0) {
            bool one_line = text_len >= 4 && strncmp(line + text_len - 4, " end", 4) == 0;
            if (operator_kept(line, kinds, &name, &n))
                add(t, "%.*s", (int)len, line);
            else
                skipping = !one_line;
        } else {
            add(t, "%.*s", (int)len, line);
        }
        line += len;
    }
    add(t, "\nreturn D\nend\n");
}

int ingest_script_build(const struct tw_model *m, char **out, char *err, size_t errlen)
{
    struct text kinds = {0}, t = {0};
    *out = NULL;
    for (size_t i = 0; m && i < tw_model_kind_count(m); i++) {
        const struct tw_model_kind *k = tw_model_kind_at(m, i);
        if (k->n_derived == 0)
            continue;
        int rc = add_kind(&kinds, k, err, errlen);
        if (rc < 0) {
            free(kinds.buf);
            return rc;
        }
    }
    if (kinds.len > 0)
        add_operators(&t, kinds.buf);
    else
        add(&t, "local D, operators -- no kind has derived signals\n");
    add(&t, "local KINDS = {\n%s}\n%s", kinds.len > 0 ? kinds.buf : "", ingest_apply_lua);
    bool nomem = t.nomem || kinds.nomem;
    free(kinds.buf);
    if (nomem) {
        free(t.buf);
        return TW_ENOMEM;
    }
    *out = t.buf;
    return 0;
}
