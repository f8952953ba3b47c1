/* SPDX-License-Identifier: Apache-2.0 */
/* Derived signals: the small, safe expression language of a plant-model signal's "expr",
 * parsed into a flat tree that can be checked, evaluated and turned into code. */
#ifndef TWIN_DERIVE_H
#define TWIN_DERIVE_H

/*
 * An expression computes one value from an asset's signals each time its state changes:
 *
 *   expr    := sum [cmp sum]             cmp: < <= > >= == != (1 when true, else 0)
 *   sum     := term {(+|-) term}
 *   term    := unary {(*|/) unary}
 *   unary   := - unary | power
 *   power   := primary [^ unary]         (right-associative)
 *   primary := number | name | 'quoted name' | call | ( expr )
 *   call    := function ( args )
 *
 * A name is a signal of the asset's kind, measured or derived (without cycles);
 * names holding characters an operator uses ("-", "/", ":") are written in single quotes.
 * Pure functions: abs sqrt exp log (1 argument), min max (2 to 8), clamp(x, lo, hi).
 * Stateful operators, evaluated in the order the asset's updates are applied:
 *   delta(x [, wrap])      x minus its previous value; a counter that went down was reset
 *                          (the new value is the delta) or, with wrap > 0, wrapped at wrap
 *   rate(x [, wrap])       delta per second of device time
 *   integral(x)            running total of x x seconds (trapezoids)
 *   total(x)               running total of x per update
 *   mean_over(x, W) min_over(x, W) max_over(x, W) std_over(x, W) count_over(x, W)
 *                          over the last window W of device time (a duration: 30s 5m 1h 1d)
 *   ewma(x, H)             exponentially weighted mean with half-life H (a duration)
 *   time_in(c)             seconds during which c was non-zero
 * No other name, function or construct exists: an expression cannot loop, allocate without
 * bound or reach anything but the asset's own values.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define TW_DX_TEXT_MAX  512u /* bytes of one expression */
#define TW_DX_MAX_NODES 128u
#define TW_DX_MAX_STATE 16u /* stateful operators in one expression */
#define TW_DX_MAX_DEPTH 32u
#define TW_DX_MAX_ARGS  8u

enum tw_dx_op {
    TW_DX_NUM,
    TW_DX_SIGNAL,
    TW_DX_NEG,
    TW_DX_ADD,
    TW_DX_SUB,
    TW_DX_MUL,
    TW_DX_DIV,
    TW_DX_POW,
    TW_DX_LT,
    TW_DX_LE,
    TW_DX_GT,
    TW_DX_GE,
    TW_DX_EQ,
    TW_DX_NE,
    /* pure functions */
    TW_DX_ABS,
    TW_DX_SQRT,
    TW_DX_EXP,
    TW_DX_LOG,
    TW_DX_MIN,
    TW_DX_MAX,
    TW_DX_CLAMP,
    /* stateful operators (tw_dx_op_is_stateful) */
    TW_DX_DELTA,
    TW_DX_RATE,
    TW_DX_INTEGRAL,
    TW_DX_TOTAL,
    TW_DX_MEAN_OVER,
    TW_DX_MIN_OVER,
    TW_DX_MAX_OVER,
    TW_DX_STD_OVER,
    TW_DX_COUNT_OVER,
    TW_DX_EWMA,
    TW_DX_TIME_IN,
    TW_DX__COUNT
};

struct tw_dx_node {
    enum tw_dx_op op;
    uint8_t n_args;
    uint16_t args[TW_DX_MAX_ARGS]; /* indices of the argument nodes (always lower) */
    double num;                    /* NUM: the value; windows and half-lives: seconds; wrap */
    uint16_t name;                 /* SIGNAL: offset of its name in the expression's names */
    uint8_t slot;                  /* stateful: its state slot, 0 .. n_state-1 */
};

/* A parsed expression: nodes in evaluation order (every argument before its user), the root
 * last. */
struct tw_dx {
    struct tw_dx_node node[TW_DX_MAX_NODES];
    uint16_t n;
    uint8_t n_state;
    char names[TW_DX_TEXT_MAX + 1]; /* NUL-separated signal names the nodes point into */
    uint16_t names_len;
};

/* Whether name (len bytes) may be read by the expression: a signal of the kind (measured or
 * derived; the caller checks that derived signals do not read each other in a cycle). */
typedef bool (*tw_dx_known_fn)(const char *name, size_t len, void *ctx);

/* Parses text into *out. Returns 0, or -1 with a sentence in err naming the character
 * position (from 1) of the problem. known may be NULL (any valid signal name is accepted). */
int tw_dx_parse(const char *text, tw_dx_known_fn known, void *ctx, struct tw_dx *out, char *err,
                size_t errlen);

/* The name of node i's signal (SIGNAL nodes). */
const char *tw_dx_name(const struct tw_dx *e, uint16_t i);

bool tw_dx_op_is_stateful(enum tw_dx_op op);

/* The function's or operator's name as written ("mean_over", "+"). Static text. */
const char *tw_dx_op_word(enum tw_dx_op op);

/* The operator's name in the canonical text (tw_dx_lua): the function's name, or for the
 * arithmetic and comparisons a word ("add", "neg", "ge"). Static text. */
const char *tw_dx_op_name(enum tw_dx_op op);

/* Writes e in its canonical form, one line of nested calls: V['signal'] for a read,
 * D.<op>(S, slot, ...) for a stateful operator, D.<op>(...) for the others, numbers as %.17g.
 * It names the expression (ingest keys an operator's state by its fingerprint, and shows it in
 * the compiled apply script); it was the Lua the script ran before the operators were inlined.
 * Returns the length written, or -1 when buf is too small. */
int tw_dx_lua(const struct tw_dx *e, char *buf, size_t len);

#endif
