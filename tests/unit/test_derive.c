/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests of the derived-signal expression language: what parses into which tree and
 * which Lua, and the clear error (with its position) for everything else. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "twin/derive.h"

/* The kind's signals in these tests. */
static bool known(const char *name, size_t len, void *ctx)
{
    (void)ctx;
    static const char *const signals[] = {"pressure",      "motor_current", "stroke_rate", "count",
                                          "motor-current", "temp",          NULL};
    for (const char *const *s = signals; *s; s++)
        if (strlen(*s) == len && memcmp(*s, name, len) == 0)
            return true;
    return false;
}

/* The Lua of a valid expression. */
static const char *lua_of(const char *text)
{
    static struct tw_dx e;
    static char buf[4096];
    char err[256];
    if (tw_dx_parse(text, known, NULL, &e, err, sizeof err) != 0)
        fail_msg("%s: %s", text, err);
    assert_true(tw_dx_lua(&e, buf, sizeof buf) > 0);
    return buf;
}

static void arithmetic_follows_the_usual_precedence(void **state)
{
    (void)state;
    assert_string_equal(lua_of("pressure * motor_current / 1000"),
                        "D.div(D.mul(V['pressure'],V['motor_current']),1000)");
    assert_string_equal(lua_of("1 + 2 * 3 - 4"), "D.sub(D.add(1,D.mul(2,3)),4)");
    assert_string_equal(lua_of("-temp ^ 2"), "D.neg(D.pow(V['temp'],2))");
    assert_string_equal(lua_of("2 ^ 3 ^ 2"), "D.pow(2,D.pow(3,2))");
    assert_string_equal(lua_of("(1 + 2) * 3"), "D.mul(D.add(1,2),3)");
    assert_string_equal(lua_of("temp > 60"), "D.gt(V['temp'],60)");
    assert_string_equal(lua_of("(temp >= 60) * (pressure != 0)"),
                        "D.mul(D.ge(V['temp'],60),D.ne(V['pressure'],0))");
    assert_string_equal(lua_of(" .5e1 "), "5");
    assert_string_equal(lua_of("'motor-current' - motor_current"),
                        "D.sub(V['motor-current'],V['motor_current'])");
}

static void functions_and_operators_take_their_arguments(void **state)
{
    (void)state;
    assert_string_equal(lua_of("clamp(abs(temp), 0, sqrt(pressure))"),
                        "D.clamp(D.abs(V['temp']),0,D.sqrt(V['pressure']))");
    assert_string_equal(lua_of("max(temp, pressure, 3)"), "D.max(V['temp'],V['pressure'],3)");
    /* Stateful operators get their slot; windows and half-lives are in seconds. */
    assert_string_equal(lua_of("mean_over(temp, 1h) - ewma(temp, 90s)"),
                        "D.sub(D.mean_over(S,1,V['temp'],3600),D.ewma(S,2,V['temp'],90))");
    assert_string_equal(lua_of("delta(count, 65536)"), "D.delta(S,1,V['count'],65536)");
    assert_string_equal(lua_of("time_in(stroke_rate > 1) / 3600"),
                        "D.div(D.time_in(S,1,D.gt(V['stroke_rate'],1)),3600)");
    assert_string_equal(lua_of("integral(pressure * 2)"), "D.integral(S,1,D.mul(V['pressure'],2))");
    assert_string_equal(lua_of("std_over(rate(count), 500ms)"),
                        "D.std_over(S,2,D.rate(S,1,V['count']),0.5)");
    struct tw_dx e;
    char err[128];
    assert_int_equal(tw_dx_parse("total(count) + count_over(temp, 1d) + min_over(temp, 2m) + "
                                 "max_over(temp, 2m) + delta(temp)",
                                 known, NULL, &e, err, sizeof err),
                     0);
    assert_int_equal(e.n_state, 5);
    /* A name read twice is stored once. */
    assert_int_equal(tw_dx_parse("temp + temp * temp", known, NULL, &e, err, sizeof err), 0);
    assert_int_equal(e.names_len, strlen("temp") + 1);
}

struct bad {
    const char *text;
    const char *error;
};

static const struct bad bad[] = {
    {"", "at 1: the expression ends too early"},
    {"pressure *", "at 11: the expression ends too early"},
    {"pressure +* 2", "at 11: unexpected \"*\""},
    {"flow * 2", "at 1: no signal \"flow\" in this kind"},
    {"'no closing", "at 1: a quoted name needs its closing \"'\""},
    {"'_meta'", "at 1: \"_meta\" is not a valid signal name"},
    {"foo(temp)", "at 1: unknown function \"foo\" (abs sqrt"},
    {"os.execute(1)", "at 1: unknown function \"os.execute\""},
    {"abs(temp, 2)", "at 11: abs takes at most 1 argument"},
    {"clamp(temp, 1)", "at 1: clamp needs 3 arguments"},
    {"min(temp)", "at 1: min needs at least 2 arguments"},
    {"mean_over(temp)", "at 1: mean_over needs 2 arguments (the last a duration such as 1h)"},
    {"mean_over(temp, temp)", "at 17: expected a number"},
    {"mean_over(temp, 0s)", "at 17: a window or half-life must be more than 0 and at most 366d"},
    {"ewma(temp, 400d)", "at 12: a window or half-life must be more than 0"},
    {"temp + 5m", "at 8: a duration is only allowed as the window or half-life"},
    {"temp + 5x", "at 9: unexpected \"x\" after a number"},
    {"delta(count, -1)", "at 1: the wrap of delta must be a number > 0"},
    {"rate(count, temp)", "at 1: the wrap of rate must be a number > 0"},
    {"1 < temp < 3", "at 10: comparisons do not chain"},
    {"(temp", "at 6: expected \")\""},
    {"temp)", "at 5: unexpected \")\" after the expression"},
    {"temp; os.exit()", "at 5: unexpected \";\" after the expression"},
    {"1e999", "at 1: expected a number"},
    {"temp\x01", "at 5: control character in the expression"},
    {"abs(temp temp)", "at 10: expected \",\" or \")\" in the arguments of abs"},
};

static void bad_expressions_say_what_and_where(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct tw_dx e;
        char err[256];
        if (tw_dx_parse(bad[i].text, known, NULL, &e, err, sizeof err) == 0)
            fail_msg("accepted: %s", bad[i].text);
        if (strncmp(err, bad[i].error, strlen(bad[i].error)) != 0)
            fail_msg("%s: got \"%s\", want \"%s...\"", bad[i].text, err, bad[i].error);
    }
}

/* Sizes are bounded: text, terms, nesting and stateful operators. */
static void large_expressions_are_refused(void **state)
{
    (void)state;
    struct tw_dx e;
    char err[256], text[2048];
    memset(text, ' ', TW_DX_TEXT_MAX + 1);
    text[TW_DX_TEXT_MAX + 1] = '\0';
    text[0] = '1';
    assert_int_equal(tw_dx_parse(text, known, NULL, &e, err, sizeof err), -1);
    assert_non_null(strstr(err, "longer than 512 bytes"));
    /* 40 nested parentheses */
    snprintf(text, sizeof text, "%s1%s", "((((((((((((((((((((((((((((((((((((((((",
             "))))))))))))))))))))))))))))))))))))))))");
    assert_int_equal(tw_dx_parse(text, known, NULL, &e, err, sizeof err), -1);
    assert_non_null(strstr(err, "nests too deep"));
    /* 32 levels of unary minus */
    memset(text, '-', 40);
    snprintf(text + 40, sizeof text - 40, "1");
    assert_int_equal(tw_dx_parse(text, known, NULL, &e, err, sizeof err), -1);
    assert_non_null(strstr(err, "nests too deep"));
    /* 17 stateful operators */
    text[0] = '\0';
    for (int i = 0; i < 17; i++)
        strcat(text, i ? "+delta(temp)" : "delta(temp)");
    assert_int_equal(tw_dx_parse(text, known, NULL, &e, err, sizeof err), -1);
    assert_non_null(strstr(err, "at most 16 stateful operators"));
    /* 130 terms */
    text[0] = '\0';
    for (int i = 0; i < 130; i++)
        strcat(text, i ? "+1" : "1");
    assert_int_equal(tw_dx_parse(text, known, NULL, &e, err, sizeof err), -1);
    assert_non_null(strstr(err, "too large"));
    /* A short buffer for the Lua is an error, not a cut. */
    assert_int_equal(tw_dx_parse("pressure * motor_current", known, NULL, &e, err, sizeof err), 0);
    char small[16];
    assert_int_equal(tw_dx_lua(&e, small, sizeof small), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(arithmetic_follows_the_usual_precedence),
        cmocka_unit_test(functions_and_operators_take_their_arguments),
        cmocka_unit_test(bad_expressions_say_what_and_where),
        cmocka_unit_test(large_expressions_are_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
