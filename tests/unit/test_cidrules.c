/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests for the broker plugin's client-id rules, including the rules shipped in deploy/mosquitto.conf. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cidrules.h"

/* Rules from text lines; fails the test on any error. */
static struct cid_rules *rules_of(const char *const *lines, size_t n)
{
    struct cid_rules *r = malloc(sizeof(*r));
    assert_non_null(r);
    cid_rules_init(r);
    char err[512];
    for (size_t i = 0; i < n; i++) {
        if (cid_rules_add(r, lines[i], err, sizeof(err)) != 0)
            fail_msg("rule '%s': %s", lines[i], err);
    }
    if (cid_rules_finish(r, err, sizeof(err)) != 0)
        fail_msg("rules: %s", err);
    return r;
}

/* The plugin_opt_clientid lines of the shipped broker configuration. */
static struct cid_rules *shipped_rules(void)
{
    FILE *f = fopen(TW_MOSQUITTO_CONF, "r");
    assert_non_null(f);
    struct cid_rules *r = malloc(sizeof(*r));
    assert_non_null(r);
    cid_rules_init(r);
    char line[512], err[512];
    const char *key = "plugin_opt_clientid ";
    while (fgets(line, sizeof(line), f)) {
        line[strcspn(line, "\n")] = '\0';
        if (strncmp(line, key, strlen(key)) != 0)
            continue;
        if (cid_rules_add(r, line + strlen(key), err, sizeof(err)) != 0)
            fail_msg("%s: '%s': %s", TW_MOSQUITTO_CONF, line, err);
    }
    fclose(f);
    assert_true(r->nrule >= 8);
    if (cid_rules_finish(r, err, sizeof(err)) != 0)
        fail_msg("%s: %s", TW_MOSQUITTO_CONF, err);
    return r;
}

static void shipped_rules_let_every_program_use_its_own_ids(void **state)
{
    (void)state;
    struct cid_rules *r = shipped_rules();
    /* The ids the programs make (worker.c, service.c, publish.c, client.c, net.js) and the
     * -I prefixes of make-secrets.sh and the compose healthcheck. */
    assert_int_equal(cid_rules_check(r, "twin-ingest", "twin-ingest-c1-w0"), CID_OK);
    assert_int_equal(cid_rules_check(r, "twin-ingest", "twin-ingest-host.example-w15"), CID_OK);
    assert_int_equal(cid_rules_check(r, "twin-predictor", "twin-predictor-c1"), CID_OK);
    assert_int_equal(cid_rules_check(r, "twin-scenario", "twin-scenario-c1"), CID_OK);
    assert_int_equal(cid_rules_check(r, "twin-devsim", "twin-devsim-c1"), CID_OK);
    assert_int_equal(cid_rules_check(r, "operator", "twinctl-4242-0badcafe"), CID_OK);
    assert_int_equal(cid_rules_check(r, "operator", "operator-4242"), CID_OK);
    assert_int_equal(cid_rules_check(r, "dashboard", "twin-dashboard-1a2b3c4d"), CID_OK);
    assert_int_equal(cid_rules_check(r, "healthcheck", "healthcheck-17"), CID_OK);
    assert_int_equal(cid_rules_check(r, "press-1", "press-1"), CID_OK);
    assert_int_equal(cid_rules_check(r, "press-1-b", "press-1-b"), CID_OK);
    free(r);
}

static void shipped_rules_refuse_taking_over_another_session(void **state)
{
    (void)state;
    struct cid_rules *r = shipped_rules();
    /* A device or the public dashboard user with a service's id. */
    assert_int_equal(cid_rules_check(r, "press-1", "twin-ingest-c1-w0"), CID_NO_MATCH);
    assert_int_equal(cid_rules_check(r, "dashboard", "twin-ingest-c1-w0"), CID_NO_MATCH);
    assert_int_equal(cid_rules_check(r, "dashboard", "twin-predictor-c1"), CID_NO_MATCH);
    assert_int_equal(cid_rules_check(r, "operator", "twin-scenario-c1"), CID_NO_MATCH);
    /* One service with another's id, and a device with another device's. */
    assert_int_equal(cid_rules_check(r, "twin-devsim", "twin-ingest-c1-w0"), CID_NO_MATCH);
    assert_int_equal(cid_rules_check(r, "press-1", "press-1-b"), CID_NO_MATCH);
    assert_int_equal(cid_rules_check(r, "press-1", "press-2"), CID_NO_MATCH);
    assert_int_equal(cid_rules_check(r, "press-1", ""), CID_NO_MATCH);
    assert_int_equal(cid_rules_check(r, "press-1", "auto-5D1A"), CID_NO_MATCH);
    /* A device whose asset id lies in a service's space never gets it. */
    assert_int_equal(cid_rules_check(r, "twin-ingest-c1-w0", "twin-ingest-c1-w0"), CID_RESERVED);
    assert_int_equal(cid_rules_check(r, "twinctl-1", "twinctl-1"), CID_RESERVED);
    /* The prefix alone is not enough: "twin-ingest" is not "twin-ingest-...". */
    assert_int_equal(cid_rules_check(r, "twin-ingest", "twin-ingest"), CID_NO_MATCH);
    assert_int_equal(cid_rules_check(r, "twin-ingest", "twin-ingestX"), CID_NO_MATCH);
    free(r);
}

static void patterns_with_user_and_suffix(void **state)
{
    (void)state;
    const char *lines[] = {"gw gw-%u-*", "* dev/%u/main dev/%u/backup"};
    struct cid_rules *r = rules_of(lines, 2);
    assert_int_equal(cid_rules_check(r, "gw", "gw-gw-1"), CID_OK);
    assert_int_equal(cid_rules_check(r, "gw", "gw-gw-"), CID_OK);
    assert_int_equal(cid_rules_check(r, "gw", "gw-gw"), CID_NO_MATCH);
    assert_int_equal(cid_rules_check(r, "a", "dev/a/main"), CID_OK);
    assert_int_equal(cid_rules_check(r, "a", "dev/a/backup"), CID_OK);
    assert_int_equal(cid_rules_check(r, "a", "dev/a/mainx"), CID_NO_MATCH);
    assert_int_equal(cid_rules_check(r, "a", "dev/b/main"), CID_NO_MATCH);
    assert_int_equal(cid_rules_check(r, "a", "dev/a"), CID_NO_MATCH);
    free(r);
}

static void without_a_star_rule_other_users_are_refused(void **state)
{
    (void)state;
    const char *lines[] = {"svc svc-*"};
    struct cid_rules *r = rules_of(lines, 1);
    assert_int_equal(cid_rules_check(r, "svc", "svc-1"), CID_OK);
    assert_int_equal(cid_rules_check(r, "other", "other"), CID_NO_RULE);
    assert_string_equal(cid_verdict_name(CID_NO_RULE), "user has no client id rule");
    free(r);
}

static void bad_rule_fails(const char *text, const char *want)
{
    struct cid_rules r;
    char err[512] = "";
    cid_rules_init(&r);
    assert_int_equal(cid_rules_add(&r, text, err, sizeof(err)), -1);
    if (!strstr(err, want))
        fail_msg("rule '%s': error '%s' lacks '%s'", text, err, want);
    assert_null(strchr(err, '\n'));
    assert_int_equal(r.nrule, 0);
}

static void bad_rules_are_refused_with_a_reason(void **state)
{
    (void)state;
    bad_rule_fails("", "empty rule");
    bad_rule_fails("   ", "empty rule");
    bad_rule_fails("svc", "no pattern");
    bad_rule_fails("svc a*b", "'*' only at the end");
    bad_rule_fails("svc *", "matches every client id");
    bad_rule_fails("svc %x", "'%' only as %u");
    bad_rule_fails("svc a%", "'%' only as %u");
    bad_rule_fails("svc %u-%u", "more than once");
    bad_rule_fails("svc a\x01", "control character");
    bad_rule_fails("svc a b c d e f g h i", "more than 8 patterns");
    char long_pat[CID_PATTERN_MAX + 10];
    memset(long_pat, 'x', sizeof(long_pat));
    memcpy(long_pat, "svc ", 4);
    long_pat[sizeof(long_pat) - 1] = '\0';
    bad_rule_fails(long_pat, "longer than");

    struct cid_rules r;
    char err[512] = "";
    cid_rules_init(&r);
    assert_int_equal(cid_rules_add(&r, "svc svc-*", err, sizeof(err)), 0);
    assert_int_equal(cid_rules_add(&r, "svc other-*", err, sizeof(err)), -1);
    assert_non_null(strstr(err, "two rules"));
    assert_int_equal(r.nrule, 1);
}

static void finish_fails(const char *const *lines, size_t n, const char *want)
{
    struct cid_rules r;
    char err[512] = "";
    cid_rules_init(&r);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(cid_rules_add(&r, lines[i], err, sizeof(err)), 0);
    assert_int_equal(cid_rules_finish(&r, err, sizeof(err)), -1);
    if (!strstr(err, want))
        fail_msg("error '%s' lacks '%s'", err, want);
}

static void overlapping_or_shareable_ids_are_refused(void **state)
{
    (void)state;
    const char *prefix_in_prefix[] = {"a svc-*", "b svc-x*"};
    finish_fails(prefix_in_prefix, 2, "overlapping");
    const char *exact_in_prefix[] = {"a svc-*", "b svc-1"};
    finish_fails(exact_in_prefix, 2, "overlapping");
    const char *same_exact[] = {"a one", "b one"};
    finish_fails(same_exact, 2, "overlapping");
    const char *user_expanded[] = {"a %u-*", "b a-1"};
    finish_fails(user_expanded, 2, "overlapping");
    const char *star_without_user[] = {"* shared"};
    finish_fails(star_without_user, 1, "must contain %u");
    const char *star_prefix[] = {"* %u*"};
    finish_fails(star_prefix, 1, "not end with '*'");
    /* Disjoint prefixes are fine. */
    const char *disjoint[] = {"a svc-a-*", "b svc-b-*", "c svc-a"};
    struct cid_rules *r = rules_of(disjoint, 3);
    assert_int_equal(cid_rules_check(r, "c", "svc-a"), CID_OK);
    assert_int_equal(cid_rules_check(r, "a", "svc-a-1"), CID_OK);
    free(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(shipped_rules_let_every_program_use_its_own_ids),
        cmocka_unit_test(shipped_rules_refuse_taking_over_another_session),
        cmocka_unit_test(patterns_with_user_and_suffix),
        cmocka_unit_test(without_a_star_rule_other_users_are_refused),
        cmocka_unit_test(bad_rules_are_refused_with_a_reason),
        cmocka_unit_test(overlapping_or_shareable_ids_are_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
