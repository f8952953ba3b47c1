/* SPDX-License-Identifier: Apache-2.0 */
/* The apply script for a plant model: each kind's derived signals compiled to straight-line Lua
 * from derive.lua's operator bodies, then apply.lua. Pure; tested through a real redis-server
 * (tests/integration/test_derive_ops.py, test_ingest_derived.py). */
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

/* FNV-1a of an expression's canonical text (tw_dx_lua; and of the window layout, when it has a
 * window): with the name, the key of its operator state, so that state saved for another
 * expression (the model changed) or in another layout is never fed to this one. Layout 1 keys
 * hashed the expression alone. */
static uint32_t fingerprint(const struct tw_dx *e, const char *canonical)
{
    uint32_t h = fnv1a(2166136261u, canonical);
    return has_window(e) ? fnv1a(h, "window layout " WINDOW_STATE_LAYOUT) : h;
}

/* ---- operator bodies (derive.lua) ------------------------------------------------------ */

#define BODY_MAX   40 /* bodies in derive.lua */
#define BODY_PARAM 3  /* parameters of one body, at most */

/* One operator body of derive.lua: "--@ <name> <params...>" and the lines up to the next "--@". */
struct body {
    const char *name, *param[BODY_PARAM], *text;
    int name_len, param_len[BODY_PARAM], text_len;
    unsigned n_params;
};

struct bodies {
    struct body b[BODY_MAX];
    size_t n;
};

/* Reads derive.lua's bodies into bs. Returns -1 when it does not have the expected form. */
static int bodies_load(struct bodies *bs)
{
    struct body *cur = NULL;
    bs->n = 0;
    for (const char *line = ingest_derive_lua; *line;) {
        size_t len = strcspn(line, "\n");
        if (strncmp(line, "--@", 3) == 0) {
            if (cur)
                cur->text_len = (int)(line - cur->text);
            cur = NULL;
            if (strncmp(line, "--@ ", 4) == 0) {
                if (bs->n == BODY_MAX)
                    return -1;
                cur = &bs->b[bs->n++];
                *cur = (struct body){.text = line + len + (line[len] == '\n')};
                const char *p = line + 4, *end = line + len;
                for (int word = 0; p < end; word++) {
                    int n = (int)strcspn(p, " \n");
                    if (word == 0) {
                        cur->name = p;
                        cur->name_len = n;
                    } else if (cur->n_params == BODY_PARAM) {
                        return -1;
                    } else {
                        cur->param[cur->n_params] = p;
                        cur->param_len[cur->n_params++] = n;
                    }
                    p += n;
                    while (p < end && *p == ' ')
                        p++;
                }
            }
        }
        line += len + (line[len] == '\n');
    }
    return cur || bs->n == 0 ? -1 : 0; /* the last body ends at "--@end" */
}

static const struct body *body_find(const struct bodies *bs, const char *name)
{
    size_t len = strlen(name);
    for (size_t i = 0; i < bs->n; i++)
        if ((size_t)bs->b[i].name_len == len && strncmp(bs->b[i].name, name, len) == 0)
            return &bs->b[i];
    return NULL;
}

/* The body an operator compiles to (derive.lua names bodies as the canonical text names
 * operators), and an argument it adds after the expression's (or NULL). */
static const char *body_of(enum tw_dx_op op, const char **extra)
{
    *extra = NULL;
    if (op == TW_DX_MIN_OVER || op == TW_DX_MAX_OVER) {
        *extra = op == TW_DX_MIN_OVER ? "1" : "-1";
        return "extreme_over";
    }
    return tw_dx_op_name(op);
}

/* ---- compiling a kind ------------------------------------------------------------------- */

/* Node i as an operand: a number, a signal's value, or the local holding its result. */
static void operand(const struct tw_dx *e, uint16_t i, char *buf, size_t len)
{
    const struct tw_dx_node *n = &e->node[i];
    if (n->op == TW_DX_NUM)
        snprintf(buf, len, "%.17g", n->num);
    else if (n->op == TW_DX_SIGNAL) /* names are [A-Za-z0-9._:/-]: nothing to escape */
        snprintf(buf, len, "V['%s']", tw_dx_name(e, i));
    else
        snprintf(buf, len, "v%u", i);
}

#define OPERAND_MAX (TW_NAME_MAX + 8)

/* One block running body b on the operands, its result into v<i>; slot >= 0: a stateful
 * operator, its state in s<slot + 1>. */
static int emit_block(struct text *t, const struct body *b, char (*ops)[OPERAND_MAX], unsigned n,
                      uint16_t i, int slot)
{
    if (n > b->n_params)
        return -1;
    add(t, "            do\n                local ");
    for (unsigned k = 0; k < b->n_params; k++)
        add(t, "%.*s, ", b->param_len[k], b->param[k]);
    add(t, "r");
    for (unsigned k = 0; k < n; k++)
        add(t, "%s%s", k ? ", " : " = ", ops[k]);
    add(t, "\n");
    if (slot >= 0)
        add(t, "                local st = s%d\n", slot + 1);
    for (const char *line = b->text; line < b->text + b->text_len;) {
        size_t len = strcspn(line, "\n");
        size_t lead = strspn(line, " ");
        if (lead < len && strncmp(line + lead, "--", 2) != 0) /* no blank or comment lines */
            add(t, "                %.*s\n", (int)len, line);
        line += len + (line[len] == '\n');
    }
    add(t, "                v%u = r\n", i);
    if (slot >= 0)
        add(t, "                s%d = st\n", slot + 1);
    add(t, "            end\n");
    return 0;
}

/* The nodes the root reads, directly or not (every node's arguments come before it). */
static void mark_used(const struct tw_dx *e, bool *used)
{
    memset(used, 0, TW_DX_MAX_NODES * sizeof *used);
    used[e->n - 1] = true;
    for (int i = (int)e->n - 1; i >= 0; i--)
        if (used[i])
            for (uint8_t k = 0; k < e->node[i].n_args; k++)
                used[e->node[i].args[k]] = true;
}

/* Expression e's nodes as blocks, in evaluation order. min and max of more than two arguments
 * run their body once for each argument after the first. */
static int emit_nodes(struct text *t, const struct bodies *bs, const struct tw_dx *e)
{
    bool used[TW_DX_MAX_NODES];
    char ops[TW_DX_MAX_ARGS + 1][OPERAND_MAX];
    mark_used(e, used);
    for (uint16_t i = 0; i < e->n; i++) {
        const struct tw_dx_node *n = &e->node[i];
        if (!used[i] || n->op == TW_DX_NUM || n->op == TW_DX_SIGNAL)
            continue;
        const char *extra;
        const struct body *b = body_find(bs, body_of(n->op, &extra));
        if (!b)
            return -1;
        int slot = tw_dx_op_is_stateful(n->op) ? n->slot : -1;
        add(t, "            local v%u\n", i);
        unsigned n_ops = n->n_args;
        for (unsigned k = 0; k < n_ops; k++)
            operand(e, n->args[k], ops[k], sizeof ops[k]);
        if (extra)
            snprintf(ops[n_ops++], sizeof ops[0], "%s", extra);
        if (n->op == TW_DX_MIN || n->op == TW_DX_MAX) {
            for (unsigned k = 1; k < n_ops; k++) { /* a: the result so far; b: argument k */
                if (k > 1)
                    snprintf(ops[k - 1], sizeof ops[0], "v%u", i);
                if (emit_block(t, b, &ops[k - 1], 2, i, -1) < 0)
                    return -1;
            }
        } else if (emit_block(t, b, ops, n_ops, i, slot) < 0) {
            return -1;
        }
    }
    return 0;
}

/* One derived signal: its operators' state from `all` (keyed by name and fingerprint, `key`),
 * its nodes, its state into `kept`, and its value into V and, when it has one, kv. */
static int emit_signal(struct text *t, const struct bodies *bs, const char *name,
                       const struct tw_dx *e, const char *canonical, const char *key)
{
    add(t, "        do -- %s: %s\n", name, canonical);
    /* One stateful operator (the usual case) stores its state as it is; more, the table of
     * them by slot. (Before, one operator's state too was wrapped: {state}. Operator state
     * never holds a table, so such a wrapper is recognised and unwrapped.) */
    if (e->n_state == 1) {
        add(t, "            local s1 = all['%s']\n", key);
        add(t, "            if type(s1) ~= 'table' then s1 = nil elseif type(s1[1]) == 'table' "
               "then s1 = s1[1] end\n");
    } else if (e->n_state > 1) {
        add(t, "            local S = all['%s']\n", key);
        add(t, "            if type(S) ~= 'table' then S = {} end\n");
        for (unsigned k = 1; k <= e->n_state; k++)
            add(t,
                "            local s%u = S[%u]\n            if type(s%u) ~= 'table' then s%u = "
                "nil end\n",
                k, k, k, k);
    }
    if (emit_nodes(t, bs, e) < 0)
        return -1;
    if (e->n_state == 1) {
        add(t, "            kept['%s'] = s1\n", key);
    } else if (e->n_state > 1) {
        add(t, "            kept['%s'] = {", key);
        for (unsigned k = 1; k <= e->n_state; k++)
            add(t, "%ss%u", k > 1 ? ", " : "", k);
        add(t, "}\n");
    }
    char root[OPERAND_MAX];
    operand(e, (uint16_t)(e->n - 1), root, sizeof root);
    add(t,
        "            local value = %s\n"
        "            V['%s'] = value\n"
        "            if value ~= nil then\n"
        "                kv[nkv + 1], kv[nkv + 2] = '%s', format('%%.17g', value)\n"
        "                nkv = nkv + 2\n"
        "            end\n"
        "        end\n",
        root, name, name);
    return 0;
}

/* One kind's branch of kind_code: a function computing its derived signals in the order the
 * model gives (each after those it reads), and the measured signals their expressions read,
 * which apply.lua takes from the state when an update does not carry them. */
static int add_kind(struct text *t, const struct bodies *bs, const struct tw_model_kind *k,
                    char *err, size_t errlen)
{
    static struct tw_dx dx; /* 4 KB: not on the stack; callers run at startup, one at a time */
    static char canonical[8192];
    static bool read[TW_MODEL_MAX_SIGNALS];
    memset(read, 0, sizeof read);
    add(t, "    if kind == '%s' then\n", k->name);
    add(t, "        return function(kv, V, all, kept, t)\n"
           "        local HUGE, abs, exp, floor = math.huge, math.abs, math.exp, math.floor\n"
           "        local log, max, sqrt = math.log, math.max, math.sqrt\n"
           "        local format, nkv = string.format, #kv\n");
    for (size_t i = 0; i < k->n_derived; i++) {
        const struct tw_model_signal *s = &k->signals[k->derived[i]];
        char why[256], key[TW_NAME_MAX + 16];
        const char *problem = tw_dx_parse(s->expr, NULL, NULL, &dx, why, sizeof why) != 0 ? why
                              : tw_dx_lua(&dx, canonical, sizeof canonical) < 0
                                  ? "too large to compile"
                                  : NULL;
        if (!problem) {
            snprintf(key, sizeof key, "%s#%08x", s->name, fingerprint(&dx, canonical));
            if (emit_signal(t, bs, s->name, &dx, canonical, key) < 0)
                problem = "an operator has no body in derive.lua";
        }
        if (problem) { /* the model was checked: only a changed limit could get here */
            snprintf(err, errlen, "kind %s, derived signal %s: %s", k->name, s->name, problem);
            return TW_EINVAL;
        }
        mark_reads(k, &dx, read);
    }
    add(t, "        end, {");
    for (size_t i = 0; i < k->n_signals && i < TW_MODEL_MAX_SIGNALS; i++)
        if (read[i])
            add(t, "'%s', ", k->signals[i].name);
    add(t, "}\n    end\n");
    return 0;
}

int ingest_script_build(const struct tw_model *m, char **out, char *err, size_t errlen)
{
    static struct bodies bs; /* callers run at startup, one at a time */
    struct text kinds = {0}, t = {0};
    *out = NULL;
    if (bodies_load(&bs) < 0) {
        snprintf(err, errlen, "derive.lua: an operator body without its \"--@\" header");
        return TW_EINVAL;
    }
    for (size_t i = 0; m && i < tw_model_kind_count(m); i++) {
        const struct tw_model_kind *k = tw_model_kind_at(m, i);
        if (k->n_derived == 0)
            continue;
        int rc = add_kind(&kinds, &bs, k, err, errlen);
        if (rc < 0) {
            free(kinds.buf);
            return rc;
        }
    }
    if (kinds.len > 0)
        add(&t,
            "-- The derived signals of each kind that has some, compiled from the plant model\n"
            "-- (services/ingest/derive.lua): for an update of such a kind, a function that\n"
            "-- computes them and the measured signals they read.\n"
            "local function kind_code(kind)\n%s"
            "end\n",
            kinds.buf);
    else
        add(&t, "local kind_code -- no kind has derived signals\n");
    add(&t, "%s", ingest_apply_lua);
    bool nomem = t.nomem || kinds.nomem;
    free(kinds.buf);
    if (nomem) {
        free(t.buf);
        return TW_ENOMEM;
    }
    *out = t.buf;
    return 0;
}
