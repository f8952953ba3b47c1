/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests of twin-devsim's Command checks: a valid maintain and slow, every refusal with its
 * word, the start window, and the bounded set of ids acted on. Commands are encoded by hand
 * here (protobuf wire format), independent of the generated code the decoder uses. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "command.h"

#define ROOT  "twin/v1"
#define TOPIC "twin/v1/asset/press-1/command"
#define NOW   INT64_C(1700000000000)

struct wire {
    uint8_t b[1024];
    size_t n;
};

static void put_varint(struct wire *w, uint64_t v)
{
    do {
        uint8_t byte = v & 0x7f;
        v >>= 7;
        w->b[w->n++] = (uint8_t)(byte | (v ? 0x80 : 0));
    } while (v);
}

static void put_bytes(struct wire *w, int field, const void *p, size_t len)
{
    put_varint(w, (uint64_t)field << 3 | 2);
    put_varint(w, len);
    memcpy(w->b + w->n, p, len);
    w->n += len;
}

static void put_str(struct wire *w, int field, const char *s)
{
    put_bytes(w, field, s, strlen(s));
}

static void put_int(struct wire *w, int field, int64_t v)
{
    put_varint(w, (uint64_t)field << 3);
    put_varint(w, (uint64_t)v);
}

static void put_double(struct wire *w, int field, double d)
{
    put_varint(w, (uint64_t)field << 3 | 1);
    memcpy(w->b + w->n, &d, 8); /* little-endian hosts only, as the CI's */
    w->n += 8;
}

struct cmd {
    const char *id, *asset, *kind, *action_asset;
    int64_t start_ms, duration_ms;
    double setpoint;
    bool no_action;
};

static struct wire encode(const struct cmd *c)
{
    struct wire action = {0}, w = {0};
    put_str(&action, 1, c->kind);
    put_str(&action, 2, c->action_asset ? c->action_asset : c->asset);
    put_int(&action, 3, c->start_ms);
    put_int(&action, 4, c->duration_ms);
    put_double(&action, 5, c->setpoint);
    put_str(&action, 6, "a label");
    put_str(&w, 1, c->id);
    put_str(&w, 2, c->asset);
    if (!c->no_action)
        put_bytes(&w, 3, action.b, action.n);
    put_str(&w, 4, "rec-1");
    put_int(&w, 5, NOW);
    put_str(&w, 6, "twin-advisor/test\n");
    put_str(&w, 7, "filter_dp forecast to cross 400");
    return w;
}

static bool known(void *ctx, const char *asset)
{
    (void)ctx;
    return strcmp(asset, "press-1") == 0 || strcmp(asset, "press-2") == 0;
}

static enum devsim_cmd_reject parse_on(const char *topic, const struct cmd *c,
                                       struct devsim_command *out)
{
    char detail[200];
    struct wire w = encode(c);
    enum devsim_cmd_reject r =
        devsim_command_parse(topic, ROOT, w.b, w.n, known, NULL, out, detail, sizeof(detail));
    if (r != DEVSIM_CMD_OK)
        assert_true(detail[0] != '\0');
    return r;
}

static enum devsim_cmd_reject parse(const struct cmd *c)
{
    struct devsim_command out;
    return parse_on(TOPIC, c, &out);
}

static const struct cmd maintain = {.id = "cmd-1",
                                    .asset = "press-1",
                                    .kind = "maintain",
                                    .start_ms = NOW + 60000,
                                    .duration_ms = 900000};

static void valid_maintain_and_slow_are_taken(void **state)
{
    (void)state;
    struct devsim_command out;
    assert_int_equal(parse_on(TOPIC, &maintain, &out), DEVSIM_CMD_OK);
    assert_string_equal(out.id, "cmd-1");
    assert_string_equal(out.asset, "press-1");
    assert_int_equal(out.kind, DEVSIM_CMD_MAINTAIN);
    assert_true(out.start_ms == NOW + 60000 && out.duration_ms == 900000);
    assert_string_equal(out.by, "twin-advisor/test?"); /* control bytes never reach a log */
    struct cmd slow = {.id = "cmd-2", .asset = "press-1", .kind = "slow", .setpoint = 0.8};
    assert_int_equal(parse_on(TOPIC, &slow, &out), DEVSIM_CMD_OK);
    assert_int_equal(out.kind, DEVSIM_CMD_SLOW);
    assert_true(out.speed == 0.8 && out.duration_ms == 0 && out.start_ms == 0);
    struct cmd empty_ids = maintain;
    empty_ids.asset = "";
    empty_ids.action_asset = ""; /* empty: the topic's asset */
    assert_int_equal(parse_on(TOPIC, &empty_ids, &out), DEVSIM_CMD_OK);
    assert_string_equal(out.asset, "press-1");
}

static void every_refusal_has_its_word(void **state)
{
    (void)state;
    struct devsim_command out;
    char detail[200];
    uint8_t junk[] = {0xff, 0xff, 0xff, 0xff, 0x0f};
    assert_int_equal(devsim_command_parse(TOPIC, ROOT, junk, sizeof(junk), known, NULL, &out,
                                          detail, sizeof(detail)),
                     DEVSIM_CMD_UNDECODABLE);
    assert_int_equal(
        devsim_command_parse(TOPIC, ROOT, junk, 0, known, NULL, &out, detail, sizeof(detail)),
        DEVSIM_CMD_EMPTY_PAYLOAD);
    static uint8_t big[DEVSIM_CMD_MAX_PAYLOAD + 1];
    assert_int_equal(devsim_command_parse(TOPIC, ROOT, big, sizeof(big), known, NULL, &out, detail,
                                          sizeof(detail)),
                     DEVSIM_CMD_OVERSIZE);
    assert_int_equal(parse_on("twin/v1/asset/bad id/command", &maintain, &out),
                     DEVSIM_CMD_BAD_TOPIC);
    assert_int_equal(parse_on("twin/v1/asset/press-2/command", &maintain, &out),
                     DEVSIM_CMD_ASSET_MISMATCH);
    struct cmd c = maintain;
    c.action_asset = "press-2";
    assert_int_equal(parse(&c), DEVSIM_CMD_ASSET_MISMATCH);
    c = maintain;
    c.asset = "press-9";
    assert_int_equal(parse_on("twin/v1/asset/press-9/command", &c, &out), DEVSIM_CMD_UNKNOWN_ASSET);
    const char *bad_ids[] = {"", "a b", "cmd/1", "ü"};
    for (size_t i = 0; i < sizeof(bad_ids) / sizeof(bad_ids[0]); i++) {
        c = maintain;
        c.id = bad_ids[i];
        assert_int_equal(parse(&c), DEVSIM_CMD_BAD_ID);
    }
    char long_id[DEVSIM_CMD_ID_MAX + 2];
    memset(long_id, 'x', sizeof(long_id) - 1);
    long_id[sizeof(long_id) - 1] = '\0';
    c = maintain;
    c.id = long_id;
    assert_int_equal(parse(&c), DEVSIM_CMD_BAD_ID);
    long_id[DEVSIM_CMD_ID_MAX] = '\0';
    assert_int_equal(parse(&c), DEVSIM_CMD_OK);
    const char *kinds[] = {"none", "", "Maintain", "stop"};
    for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
        c = maintain;
        c.kind = kinds[i];
        assert_int_equal(parse(&c), DEVSIM_CMD_UNKNOWN_KIND);
    }
    c = maintain;
    c.no_action = true;
    assert_int_equal(parse(&c), DEVSIM_CMD_UNKNOWN_KIND);
}

static void values_out_of_range_are_refused(void **state)
{
    (void)state;
    struct cmd c = {.id = "s", .asset = "press-1", .kind = "slow", .duration_ms = 3600000};
    const double speeds[] = {0.0, -0.5, 1.0000001, 2.0};
    for (size_t i = 0; i < sizeof(speeds) / sizeof(speeds[0]); i++) {
        c.setpoint = speeds[i];
        assert_int_equal(parse(&c), DEVSIM_CMD_OUT_OF_RANGE);
    }
    c.setpoint = NAN;
    assert_int_equal(parse(&c), DEVSIM_CMD_NON_FINITE);
    c.setpoint = INFINITY;
    assert_int_equal(parse(&c), DEVSIM_CMD_NON_FINITE);
    c.setpoint = 1.0;
    assert_int_equal(parse(&c), DEVSIM_CMD_OK);
    c.duration_ms = -1;
    assert_int_equal(parse(&c), DEVSIM_CMD_OUT_OF_RANGE);
    c.duration_ms = DEVSIM_CMD_MAX_DURATION_MS + 1;
    assert_int_equal(parse(&c), DEVSIM_CMD_OUT_OF_RANGE);
    struct cmd m = maintain;
    const int64_t bad[] = {0, -1, DEVSIM_CMD_MAX_DURATION_MS + 1, INT64_MAX, INT64_MIN};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        m.duration_ms = bad[i];
        assert_int_equal(parse(&m), DEVSIM_CMD_OUT_OF_RANGE);
    }
    m.duration_ms = DEVSIM_CMD_MAX_DURATION_MS;
    assert_int_equal(parse(&m), DEVSIM_CMD_OK);
}

static void start_must_lie_within_an_hour_back_and_a_week_ahead(void **state)
{
    (void)state;
    char detail[200];
    struct devsim_command c = {.start_ms = 0};
    assert_int_equal(devsim_command_check_start(&c, NOW, detail, sizeof(detail)), DEVSIM_CMD_OK);
    const int64_t ok[] = {NOW, NOW - 3600000, NOW + 7 * 86400000LL, 1};
    const int64_t now_for_ok[] = {NOW, NOW, NOW, 1};
    for (size_t i = 0; i < 4; i++) {
        c.start_ms = ok[i];
        assert_int_equal(devsim_command_check_start(&c, now_for_ok[i], detail, sizeof(detail)),
                         DEVSIM_CMD_OK);
    }
    const int64_t bad[] = {NOW - 3600001, NOW + 7 * 86400000LL + 1, -1, INT64_MAX, INT64_MIN};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        c.start_ms = bad[i];
        assert_int_equal(devsim_command_check_start(&c, NOW, detail, sizeof(detail)),
                         DEVSIM_CMD_START_OUT_OF_WINDOW);
    }
    assert_string_equal(devsim_cmd_reject_word(DEVSIM_CMD_START_OUT_OF_WINDOW),
                        "start_out_of_window");
}

static void recent_ids_remember_the_last_1024(void **state)
{
    (void)state;
    struct devsim_recent_ids *r = calloc(1, sizeof(*r));
    char id[32];
    assert_false(devsim_recent_ids_has(r, "cmd-0"));
    for (int i = 0; i < DEVSIM_CMD_RECENT_IDS + 10; i++) {
        snprintf(id, sizeof(id), "cmd-%d", i);
        devsim_recent_ids_add(r, id);
        assert_true(devsim_recent_ids_has(r, id));
    }
    assert_false(devsim_recent_ids_has(r, "cmd-9"));
    assert_true(devsim_recent_ids_has(r, "cmd-10"));
    assert_true(devsim_recent_ids_has(r, "cmd-1033"));
    free(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(valid_maintain_and_slow_are_taken),
        cmocka_unit_test(every_refusal_has_its_word),
        cmocka_unit_test(values_out_of_range_are_refused),
        cmocka_unit_test(start_must_lie_within_an_hour_back_and_a_week_ahead),
        cmocka_unit_test(recent_ids_remember_the_last_1024),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
