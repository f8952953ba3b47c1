/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests for ingest's memory of the assets it has put in twin:assets (known.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>

#include "known.h"

static void remembers_until_the_ttl_then_forgets(void **state)
{
    (void)state;
    struct ingest_known *k = NULL;
    assert_int_equal(ingest_known_create(1000, 60000, &k), 0);
    assert_false(ingest_known_has(k, "press-1", 0));
    ingest_known_add(k, "press-1", 0);
    assert_true(ingest_known_has(k, "press-1", 59999));
    assert_false(ingest_known_has(k, "press-2", 59999));
    /* A new period: everything is written again once. */
    assert_false(ingest_known_has(k, "press-1", 60000));
    assert_int_equal(ingest_known_count(k), 0);
    ingest_known_add(k, "press-1", 60000);
    assert_true(ingest_known_has(k, "press-1", 60001));
    /* A clock that went back starts a new period too. */
    assert_false(ingest_known_has(k, "press-1", 1000));
    ingest_known_add(k, "press-1", 1000);
    ingest_known_clear(k, 1000);
    assert_false(ingest_known_has(k, "press-1", 1001));
    ingest_known_destroy(k);
}

static void grows_and_is_emptied_when_full(void **state)
{
    (void)state;
    struct ingest_known *k = NULL;
    char id[32];
    assert_int_equal(ingest_known_create(5000, 60000, &k), 0);
    for (int i = 0; i < 5000; i++) {
        snprintf(id, sizeof(id), "asset-%d", i);
        assert_false(ingest_known_has(k, id, 10));
        ingest_known_add(k, id, 10);
        ingest_known_add(k, id, 10); /* twice: counted once */
    }
    assert_int_equal(ingest_known_count(k), 5000);
    for (int i = 0; i < 5000; i++) {
        snprintf(id, sizeof(id), "asset-%d", i);
        assert_true(ingest_known_has(k, id, 20));
    }
    /* One more than max: the table starts over rather than growing without bound. */
    ingest_known_add(k, "asset-extra", 30);
    assert_int_equal(ingest_known_count(k), 1);
    assert_true(ingest_known_has(k, "asset-extra", 30));
    assert_false(ingest_known_has(k, "asset-0", 30));
    ingest_known_destroy(k);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(remembers_until_the_ttl_then_forgets),
        cmocka_unit_test(grows_and_is_emptied_when_full),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
