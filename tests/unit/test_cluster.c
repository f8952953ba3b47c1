/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests for Redis Cluster routing: key slots against Redis's own CLUSTER KEYSLOT, command keys, MOVED/ASK replies, the CLUSTER SLOTS map. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "twin/cluster.h"

static int slot_of(const char *key)
{
    return tw_cluster_key_slot(key, strlen(key));
}

/* Reference values from redis-server 7.0.15: CLUSTER KEYSLOT <key>. */
static void key_slots_match_redis(void **state)
{
    (void)state;
    assert_int_equal(slot_of("foo"), 12182);
    assert_int_equal(slot_of("bar"), 5061);
    assert_int_equal(slot_of("hello"), 866);
    assert_int_equal(slot_of("123456789"), 12739);
    assert_int_equal(slot_of("twin:{press-1}:state"), 15887);
    assert_int_equal(slot_of("twin:assets"), 8330);
    /* Hash tags: the first '{' and the next '}', not empty. */
    assert_int_equal(slot_of("{}"), 15257);
    assert_int_equal(slot_of("{}x"), 10595);
    assert_int_equal(slot_of("a{b}c"), 3300);
    assert_int_equal(slot_of("{a"), 10276);
    assert_int_equal(slot_of("a}b{"), 6027);
    assert_int_equal(slot_of("x{}{y}"), 14166);
    assert_int_equal(slot_of("{user1000}.following"), 3443);
    /* An asset's keys share its slot. */
    assert_int_equal(slot_of("twin:{press-1}:history"), slot_of("twin:{press-1}:state"));
    assert_int_equal(slot_of("twin:{press-1}:replay"), slot_of("press-1"));
    /* Binary keys: the length counts, not a NUL. */
    assert_int_equal(tw_cluster_key_slot("a\0b", 3), tw_cluster_key_slot("a\0b", 3));
    assert_int_not_equal(tw_cluster_key_slot("a\0b", 3), slot_of("a"));
}

static void command_slots(void **state)
{
    (void)state;
    struct tw_script script = {.name = "apply", .source = "return 1"};
    const char *eval[] = {"3", "twin:{m1}:state", "twin:{m1}:history", "twin:{m1}:replay", "x"};
    struct tw_cmd c = {.script = &script, .argc = 5, .argv = eval};
    assert_int_equal(tw_cluster_cmd_slot(&c), slot_of("m1"));
    const char *eval0[] = {"0", "arg"};
    c = (struct tw_cmd){.script = &script, .argc = 2, .argv = eval0};
    assert_int_equal(tw_cluster_cmd_slot(&c), -1);
    const char *eval_many[] = {"12", "twin:{m2}:state"};
    c = (struct tw_cmd){.script = &script, .argc = 2, .argv = eval_many};
    assert_int_equal(tw_cluster_cmd_slot(&c), slot_of("m2"));
    const char *sadd[] = {"SADD", "twin:assets", "m1"};
    c = (struct tw_cmd){.argc = 3, .argv = sadd};
    assert_int_equal(tw_cluster_cmd_slot(&c), 8330);
    const size_t lens[] = {7, 15};
    const char *hgetall[] = {"HGETALLxx", "twin:{m1}:statexx"};
    c = (struct tw_cmd){.argc = 2, .argv = hgetall, .argvlen = lens};
    assert_int_equal(tw_cluster_cmd_slot(&c), slot_of("m1"));
    const char *keyless[][1] = {{"TIME"}, {"ping"}, {"MULTI"}, {"EXEC"}};
    for (size_t i = 0; i < 4; i++) {
        c = (struct tw_cmd){.argc = 1, .argv = keyless[i]};
        assert_int_equal(tw_cluster_cmd_slot(&c), -1);
    }
    const char *script_load[] = {"SCRIPT", "LOAD", "return 1"};
    c = (struct tw_cmd){.argc = 3, .argv = script_load};
    assert_int_equal(tw_cluster_cmd_slot(&c), -1);
}

static struct tw_reply err_reply(const char *text)
{
    return (struct tw_reply){.type = TW_REPLY_ERROR, .str = text, .len = strlen(text)};
}

static void redirects(void **state)
{
    (void)state;
    struct tw_cluster_redirect rd;
    struct tw_reply r = err_reply("MOVED 3999 127.0.0.1:6381");
    assert_true(tw_cluster_parse_redirect(&r, &rd));
    assert_false(rd.ask);
    assert_int_equal(rd.slot, 3999);
    assert_string_equal(rd.host, "127.0.0.1");
    assert_int_equal(rd.port, 6381);
    r = err_reply("ASK 16383 ::1:7000");
    assert_true(tw_cluster_parse_redirect(&r, &rd));
    assert_true(rd.ask);
    assert_int_equal(rd.slot, 16383);
    assert_string_equal(rd.host, "::1");
    assert_int_equal(rd.port, 7000);
    const char *bad[] = {"MOVED", "MOVED 16384 h:1", "MOVED x h:1", "MOVED 1 h", "MOVED 1 h:0",
                         "MOVED 1 h:65536", "ASK 1", "NOSCRIPT No matching script", "MOVED  h:1",
                         "TRYAGAIN Multiple keys request during rehashing of slot"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        r = err_reply(bad[i]);
        if (tw_cluster_parse_redirect(&r, &rd))
            fail_msg("'%s' parsed as a redirect", bad[i]);
    }
    struct tw_reply str = {.type = TW_REPLY_STR, .str = "MOVED 1 h:1", .len = 11};
    assert_false(tw_cluster_parse_redirect(&str, &rd));
}

/* The add() callback of tw_cluster_parse_slots: nodes by address. */
struct nodes {
    struct tw_cluster_addr addr[8];
    int n;
};

static int add_node(void *ctx, const struct tw_cluster_addr *a)
{
    struct nodes *ns = ctx;
    for (int i = 0; i < ns->n; i++)
        if (ns->addr[i].port == a->port && strcmp(ns->addr[i].host, a->host) == 0)
            return i;
    ns->addr[ns->n] = *a;
    return ns->n++;
}

#define INT_R(v) {.type = TW_REPLY_INT, .integer = (v)}
#define STR_R(s) {.type = TW_REPLY_STR, .str = (s), .len = sizeof(s) - 1}

static void slots_map(void **state)
{
    (void)state;
    /* Three masters, the second with a replica, the third without an address of its own. */
    const struct tw_reply m0[] = {STR_R("10.0.0.1"), INT_R(7000), STR_R("id0")};
    const struct tw_reply m1[] = {STR_R("10.0.0.2"), INT_R(7001), STR_R("id1")};
    const struct tw_reply r1[] = {STR_R("10.0.0.4"), INT_R(7004), STR_R("id4")};
    const struct tw_reply m2[] = {STR_R(""), INT_R(7002), STR_R("id2")};
    const struct tw_reply ranges[][4] = {
        {INT_R(0), INT_R(5460), {.type = TW_REPLY_ARRAY, .n = 3, .elem = m0}},
        {INT_R(5461), INT_R(10922), {.type = TW_REPLY_ARRAY, .n = 3, .elem = m1},
         {.type = TW_REPLY_ARRAY, .n = 3, .elem = r1}},
        {INT_R(10923), INT_R(16383), {.type = TW_REPLY_ARRAY, .n = 3, .elem = m2}},
    };
    const struct tw_reply range_r[] = {{.type = TW_REPLY_ARRAY, .n = 3, .elem = ranges[0]},
                                       {.type = TW_REPLY_ARRAY, .n = 4, .elem = ranges[1]},
                                       {.type = TW_REPLY_ARRAY, .n = 3, .elem = ranges[2]}};
    const struct tw_reply r = {.type = TW_REPLY_ARRAY, .n = 3, .elem = range_r};
    static int16_t map[TW_CLUSTER_SLOTS];
    for (int i = 0; i < TW_CLUSTER_SLOTS; i++)
        map[i] = -1;
    struct nodes ns = {.n = 0};
    assert_int_equal(tw_cluster_parse_slots(&r, "seed.example", add_node, &ns, map),
                     TW_CLUSTER_SLOTS);
    assert_int_equal(ns.n, 3); /* the replica is not a node to write to */
    assert_int_equal(map[0], 0);
    assert_int_equal(map[5460], 0);
    assert_int_equal(map[5461], 1);
    assert_int_equal(map[16383], 2);
    assert_string_equal(ns.addr[2].host, "seed.example");
    assert_int_equal(ns.addr[2].port, 7002);

    /* Malformed: not an array, a range past the last slot, a master without a port. */
    const struct tw_reply not_array = INT_R(1);
    assert_int_equal(tw_cluster_parse_slots(&not_array, "h", add_node, &ns, map), -1);
    const struct tw_reply past[] = {INT_R(0), INT_R(16384),
                                    {.type = TW_REPLY_ARRAY, .n = 3, .elem = m0}};
    const struct tw_reply past_r = {.type = TW_REPLY_ARRAY, .n = 3, .elem = past};
    const struct tw_reply bad1 = {.type = TW_REPLY_ARRAY, .n = 1, .elem = &past_r};
    assert_int_equal(tw_cluster_parse_slots(&bad1, "h", add_node, &ns, map), -1);
    const struct tw_reply noport[] = {STR_R("h")};
    const struct tw_reply rng[] = {INT_R(0), INT_R(1),
                                   {.type = TW_REPLY_ARRAY, .n = 1, .elem = noport}};
    const struct tw_reply rng_r = {.type = TW_REPLY_ARRAY, .n = 3, .elem = rng};
    const struct tw_reply bad2 = {.type = TW_REPLY_ARRAY, .n = 1, .elem = &rng_r};
    assert_int_equal(tw_cluster_parse_slots(&bad2, "h", add_node, &ns, map), -1);
    /* An empty map (a cluster with no slots assigned yet) covers nothing. */
    const struct tw_reply empty = {.type = TW_REPLY_ARRAY, .n = 0};
    assert_int_equal(tw_cluster_parse_slots(&empty, "h", add_node, &ns, map), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(key_slots_match_redis),
        cmocka_unit_test(command_slots),
        cmocka_unit_test(redirects),
        cmocka_unit_test(slots_map),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
