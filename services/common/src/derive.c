/* SPDX-License-Identifier: Apache-2.0 */
/* The derived-signal expression language: a recursive-descent parser into a flat node array,
 * and its canonical text (the name under which ingest keeps its operator state). */
#include <ctype.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "twin/derive.h"
#include "twin/validate.h"

struct fn {
    const char *word;
    enum tw_dx_op op;
    uint8_t min_args, max_args;
    bool window; /* the last argument is a duration (a window or a half-life) */
};

static const struct fn fns[] = {
    {"abs", TW_DX_ABS, 1, 1, false},
    {"sqrt", TW_DX_SQRT, 1, 1, false},
    {"exp", TW_DX_EXP, 1, 1, false},
    {"log", TW_DX_LOG, 1, 1, false},
    {"min", TW_DX_MIN, 2, TW_DX_MAX_ARGS, false},
    {"max", TW_DX_MAX, 2, TW_DX_MAX_ARGS, false},
    {"clamp", TW_DX_CLAMP, 3, 3, false},
    {"delta", TW_DX_DELTA, 1, 2, false},
    {"rate", TW_DX_RATE, 1, 2, false},
    {"integral", TW_DX_INTEGRAL, 1, 1, false},
    {"total", TW_DX_TOTAL, 1, 1, false},
    {"mean_over", TW_DX_MEAN_OVER, 2, 2, true},
    {"min_over", TW_DX_MIN_OVER, 2, 2, true},
    {"max_over", TW_DX_MAX_OVER, 2, 2, true},
    {"std_over", TW_DX_STD_OVER, 2, 2, true},
    {"count_over", TW_DX_COUNT_OVER, 2, 2, true},
    {"ewma", TW_DX_EWMA, 2, 2, true},
    {"time_in", TW_DX_TIME_IN, 1, 1, false},
};

#define N_FNS (sizeof fns / sizeof fns[0])

/* Longest window or half-life: a year of device time. */
#define DURATION_MAX_S (366.0 * 86400.0)

struct parser {
    const char *text, *p;
    struct tw_dx *e;
    tw_dx_known_fn known;
    void *ctx;
    unsigned depth;
    char *err;
    size_t errlen;
    bool failed;
};

static void fail(struct parser *ps, const char *at, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void fail(struct parser *ps, const char *at, const char *fmt, ...)
{
    if (ps->failed)
        return;
    ps->failed = true;
    int n = snprintf(ps->err, ps->errlen, "at %d: ", (int)(at - ps->text) + 1);
    if (n < 0 || (size_t)n >= ps->errlen)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(ps->err + n, ps->errlen - (size_t)n, fmt, ap);
    va_end(ap);
}

static void skip_space(struct parser *ps)
{
    while (*ps->p == ' ' || *ps->p == '\t' || *ps->p == '\n' || *ps->p == '\r')
        ps->p++;
}

/* Adds a node; returns its index, or -1 (and fails) when the expression is too large. */
static int add(struct parser *ps, const char *at, struct tw_dx_node n)
{
    if (ps->e->n >= TW_DX_MAX_NODES) {
        fail(ps, at, "the expression is too large (at most %u terms)", TW_DX_MAX_NODES);
        return -1;
    }
    ps->e->node[ps->e->n] = n;
    return ps->e->n++;
}

static int expr(struct parser *ps);

static bool is_name_start(char c)
{
    return isalpha((unsigned char)c) || c == '_';
}

static bool is_name_char(char c)
{
    return isalnum((unsigned char)c) || c == '_' || c == '.';
}

/* A number, or with want_duration a duration: a number and a unit (ms s m h d), or seconds. */
static int number(struct parser *ps, bool want_duration)
{
    const char *at = ps->p;
    char *end;
    double v = strtod(ps->p, &end);
    if (end == ps->p || !isfinite(v)) {
        fail(ps, at, "expected a number");
        return -1;
    }
    ps->p = end;
    static const struct {
        const char *unit;
        double s;
    } units[] = {{"ms", 0.001}, {"s", 1}, {"m", 60}, {"h", 3600}, {"d", 86400}};
    bool has_unit = false;
    for (size_t i = 0; i < sizeof units / sizeof units[0]; i++) {
        size_t k = strlen(units[i].unit);
        if (strncmp(ps->p, units[i].unit, k) == 0 && !is_name_char(ps->p[k])) {
            v *= units[i].s;
            ps->p += k;
            has_unit = true;
            break;
        }
    }
    if (is_name_char(*ps->p)) {
        fail(ps, ps->p, "unexpected \"%c\" after a number (units: ms s m h d)", *ps->p);
        return -1;
    }
    if (has_unit && !want_duration) {
        fail(ps, at, "a duration is only allowed as the window or half-life of an operator");
        return -1;
    }
    if (want_duration && !(v > 0 && v <= DURATION_MAX_S)) {
        fail(ps, at, "a window or half-life must be more than 0 and at most 366d");
        return -1;
    }
    return add(ps, at, (struct tw_dx_node){.op = TW_DX_NUM, .num = v});
}

static int signal(struct parser *ps, const char *at, const char *name, size_t len)
{
    if (!tw_valid_signal(name, len)) {
        fail(ps, at, "\"%.*s\" is not a valid signal name", (int)len, name);
        return -1;
    }
    if (ps->known && !ps->known(name, len, ps->ctx)) {
        fail(ps, at, "no signal \"%.*s\" in this kind", (int)len, name);
        return -1;
    }
    struct tw_dx *e = ps->e;
    /* The same name read twice points at one copy. */
    for (uint16_t off = 0; off < e->names_len; off = (uint16_t)(off + strlen(e->names + off) + 1))
        if (strlen(e->names + off) == len && memcmp(e->names + off, name, len) == 0)
            return add(ps, at, (struct tw_dx_node){.op = TW_DX_SIGNAL, .name = off});
    uint16_t off = e->names_len;
    memcpy(e->names + off, name, len); /* fits: the names are parts of the text */
    e->names[off + len] = '\0';
    e->names_len = (uint16_t)(off + len + 1);
    return add(ps, at, (struct tw_dx_node){.op = TW_DX_SIGNAL, .name = off});
}

static const struct fn *find_fn(const char *name, size_t len)
{
    for (size_t i = 0; i < N_FNS; i++)
        if (strlen(fns[i].word) == len && memcmp(fns[i].word, name, len) == 0)
            return &fns[i];
    return NULL;
}

static int call(struct parser *ps, const char *at, const struct fn *f)
{
    struct tw_dx_node n = {.op = f->op};
    ps->p++; /* '(' */
    for (;;) {
        skip_space(ps);
        if (n.n_args == 0 && *ps->p == ')')
            break;
        if (n.n_args == f->max_args) {
            fail(ps, ps->p, "%s takes at most %u argument%s", f->word, f->max_args,
                 f->max_args == 1 ? "" : "s");
            return -1;
        }
        bool duration = f->window && n.n_args == 1;
        int a = duration ? number(ps, true) : expr(ps);
        if (a < 0)
            return -1;
        n.args[n.n_args++] = (uint16_t)a;
        skip_space(ps);
        if (*ps->p == ',') {
            ps->p++;
            continue;
        }
        if (*ps->p != ')') {
            fail(ps, ps->p, "expected \",\" or \")\" in the arguments of %s", f->word);
            return -1;
        }
        break;
    }
    ps->p++; /* ')' */
    if (n.n_args < f->min_args) {
        fail(ps, at, "%s needs %s%u argument%s%s", f->word,
             f->min_args == f->max_args ? "" : "at least ", f->min_args,
             f->min_args == 1 ? "" : "s", f->window ? " (the last a duration such as 1h)" : "");
        return -1;
    }
    if ((f->op == TW_DX_DELTA || f->op == TW_DX_RATE) && n.n_args == 2) {
        const struct tw_dx_node *w = &ps->e->node[n.args[1]];
        if (w->op != TW_DX_NUM || !(w->num > 0)) {
            fail(ps, at, "the wrap of %s must be a number > 0 (the counter's modulus)", f->word);
            return -1;
        }
    }
    if (tw_dx_op_is_stateful(f->op)) {
        if (ps->e->n_state >= TW_DX_MAX_STATE) {
            fail(ps, at, "at most %u stateful operators in one expression", TW_DX_MAX_STATE);
            return -1;
        }
        n.slot = ps->e->n_state++;
    }
    return add(ps, at, n);
}

static int primary(struct parser *ps)
{
    skip_space(ps);
    const char *at = ps->p;
    char c = *ps->p;
    if (c == '(') {
        ps->p++;
        int i = expr(ps);
        skip_space(ps);
        if (i >= 0 && *ps->p != ')') {
            fail(ps, ps->p, "expected \")\"");
            return -1;
        }
        ps->p++;
        return i;
    }
    if (isdigit((unsigned char)c) || (c == '.' && isdigit((unsigned char)ps->p[1])))
        return number(ps, false);
    if (c == '\'') {
        const char *name = ++ps->p;
        while (*ps->p && *ps->p != '\'')
            ps->p++;
        if (!*ps->p) {
            fail(ps, at, "a quoted name needs its closing \"'\"");
            return -1;
        }
        size_t len = (size_t)(ps->p++ - name);
        return signal(ps, at, name, len);
    }
    if (is_name_start(c)) {
        const char *name = ps->p;
        while (is_name_char(*ps->p))
            ps->p++;
        size_t len = (size_t)(ps->p - name);
        const char *after = ps->p;
        skip_space(ps);
        if (*ps->p == '(') {
            const struct fn *f = find_fn(name, len);
            if (!f) {
                fail(ps, at,
                     "unknown function \"%.*s\" (abs sqrt exp log min max clamp delta rate "
                     "integral total mean_over min_over max_over std_over count_over ewma "
                     "time_in)",
                     (int)len, name);
                return -1;
            }
            return call(ps, at, f);
        }
        ps->p = after;
        return signal(ps, at, name, len);
    }
    if (!c)
        fail(ps, at, "the expression ends too early");
    else
        fail(ps, at, "unexpected \"%c\"", c);
    return -1;
}

static int binary(struct parser *ps, const char *at, enum tw_dx_op op, int a, int b)
{
    if (a < 0 || b < 0)
        return -1;
    return add(ps, at,
               (struct tw_dx_node){.op = op, .n_args = 2, .args = {(uint16_t)a, (uint16_t)b}});
}

static int unary(struct parser *ps);

static int power(struct parser *ps)
{
    int a = primary(ps);
    skip_space(ps);
    if (a < 0 || *ps->p != '^')
        return a;
    const char *at = ps->p++;
    return binary(ps, at, TW_DX_POW, a, unary(ps));
}

static int unary(struct parser *ps)
{
    skip_space(ps);
    if (*ps->p != '-')
        return power(ps);
    const char *at = ps->p++;
    if (++ps->depth > TW_DX_MAX_DEPTH) {
        fail(ps, at, "the expression nests too deep (at most %u)", TW_DX_MAX_DEPTH);
        return -1;
    }
    int a = unary(ps);
    ps->depth--;
    if (a < 0)
        return -1;
    return add(ps, at, (struct tw_dx_node){.op = TW_DX_NEG, .n_args = 1, .args = {(uint16_t)a}});
}

static int term(struct parser *ps)
{
    int a = unary(ps);
    for (;;) {
        skip_space(ps);
        char c = *ps->p;
        if (a < 0 || (c != '*' && c != '/'))
            return a;
        const char *at = ps->p++;
        a = binary(ps, at, c == '*' ? TW_DX_MUL : TW_DX_DIV, a, unary(ps));
    }
}

static int sum(struct parser *ps)
{
    int a = term(ps);
    for (;;) {
        skip_space(ps);
        char c = *ps->p;
        if (a < 0 || (c != '+' && c != '-'))
            return a;
        const char *at = ps->p++;
        a = binary(ps, at, c == '+' ? TW_DX_ADD : TW_DX_SUB, a, term(ps));
    }
}

static int expr(struct parser *ps)
{
    const char *at = ps->p;
    if (++ps->depth > TW_DX_MAX_DEPTH) {
        fail(ps, at, "the expression nests too deep (at most %u)", TW_DX_MAX_DEPTH);
        return -1;
    }
    int a = sum(ps);
    skip_space(ps);
    static const struct {
        const char *word;
        enum tw_dx_op op;
    } cmps[] = {{"<=", TW_DX_LE}, {">=", TW_DX_GE}, {"==", TW_DX_EQ},
                {"!=", TW_DX_NE}, {"<", TW_DX_LT},  {">", TW_DX_GT}};
    for (size_t i = 0; a >= 0 && i < sizeof cmps / sizeof cmps[0]; i++) {
        size_t k = strlen(cmps[i].word);
        if (strncmp(ps->p, cmps[i].word, k) == 0) {
            at = ps->p;
            ps->p += k;
            a = binary(ps, at, cmps[i].op, a, sum(ps));
            skip_space(ps);
            if (a >= 0 && *ps->p && strchr("<>=!", *ps->p))
                fail(ps, ps->p, "comparisons do not chain: use parentheses and *");
            break;
        }
    }
    ps->depth--;
    return ps->failed ? -1 : a;
}

int tw_dx_parse(const char *text, tw_dx_known_fn known, void *ctx, struct tw_dx *out, char *err,
                size_t errlen)
{
    memset(out, 0, sizeof(*out));
    struct parser ps = {.text = text,
                        .p = text,
                        .e = out,
                        .known = known,
                        .ctx = ctx,
                        .err = err,
                        .errlen = errlen};
    if (errlen)
        err[0] = '\0';
    size_t len = strnlen(text, TW_DX_TEXT_MAX + 1);
    if (len > TW_DX_TEXT_MAX) {
        snprintf(err, errlen, "the expression is longer than %u bytes", TW_DX_TEXT_MAX);
        return -1;
    }
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)text[i] < 0x20 && !strchr("\t\n\r", text[i])) {
            fail(&ps, text + i, "control character in the expression");
            return -1;
        }
    int root = expr(&ps);
    skip_space(&ps);
    if (root >= 0 && *ps.p)
        fail(&ps, ps.p, "unexpected \"%c\" after the expression", *ps.p);
    if (ps.failed)
        return -1;
    /* The root is the last node: every node's arguments were added before it. */
    return 0;
}

const char *tw_dx_name(const struct tw_dx *e, uint16_t i)
{
    return e->names + e->node[i].name;
}

bool tw_dx_op_is_stateful(enum tw_dx_op op)
{
    return op >= TW_DX_DELTA && op < TW_DX__COUNT;
}

const char *tw_dx_op_word(enum tw_dx_op op)
{
    static const char *const words[TW_DX__COUNT] = {
        [TW_DX_NUM] = "number", [TW_DX_SIGNAL] = "signal", [TW_DX_NEG] = "-", [TW_DX_ADD] = "+",
        [TW_DX_SUB] = "-",      [TW_DX_MUL] = "*",         [TW_DX_DIV] = "/", [TW_DX_POW] = "^",
        [TW_DX_LT] = "<",       [TW_DX_LE] = "<=",         [TW_DX_GT] = ">",  [TW_DX_GE] = ">=",
        [TW_DX_EQ] = "==",      [TW_DX_NE] = "!=",
    };
    if ((unsigned)op < TW_DX__COUNT && words[op])
        return words[op];
    for (size_t i = 0; i < N_FNS; i++)
        if (fns[i].op == op)
            return fns[i].word;
    return "?";
}

/* ---- canonical text -------------------------------------------------------------------------- */

struct out {
    char *buf;
    size_t len, at;
    bool full;
};

static void put(struct out *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void put(struct out *o, const char *fmt, ...)
{
    if (o->full)
        return;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(o->buf + o->at, o->len - o->at, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= o->len - o->at)
        o->full = true;
    else
        o->at += (size_t)n;
}

const char *tw_dx_op_name(enum tw_dx_op op)
{
    static const char *const words[] = {
        [TW_DX_NEG] = "neg", [TW_DX_ADD] = "add", [TW_DX_SUB] = "sub", [TW_DX_MUL] = "mul",
        [TW_DX_DIV] = "div", [TW_DX_POW] = "pow", [TW_DX_LT] = "lt",   [TW_DX_LE] = "le",
        [TW_DX_GT] = "gt",   [TW_DX_GE] = "ge",   [TW_DX_EQ] = "eq",   [TW_DX_NE] = "ne",
    };
    return op < sizeof words / sizeof words[0] && words[op] ? words[op] : tw_dx_op_word(op);
}

static void lua_node(const struct tw_dx *e, uint16_t i, struct out *o)
{
    const struct tw_dx_node *n = &e->node[i];
    if (n->op == TW_DX_NUM) {
        put(o, "%.17g", n->num);
        return;
    }
    if (n->op == TW_DX_SIGNAL) {
        /* Signal names are [A-Za-z0-9._:/-]: nothing to escape inside quotes. */
        put(o, "V['%s']", tw_dx_name(e, i));
        return;
    }
    put(o, "D.%s(", tw_dx_op_name(n->op));
    if (tw_dx_op_is_stateful(n->op))
        put(o, "S,%u,", n->slot + 1);
    for (uint8_t k = 0; k < n->n_args; k++) {
        if (k)
            put(o, ",");
        lua_node(e, n->args[k], o);
    }
    put(o, ")");
}

int tw_dx_lua(const struct tw_dx *e, char *buf, size_t len)
{
    if (len == 0 || e->n == 0)
        return -1;
    struct out o = {.buf = buf, .len = len};
    lua_node(e, (uint16_t)(e->n - 1), &o);
    return o.full ? -1 : (int)o.at;
}
