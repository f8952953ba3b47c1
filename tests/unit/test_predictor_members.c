/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests of how twin-predictor instances split the assets: status topics, the member set,
 * the rendezvous hash (agreement, balance, least movement) and handing assets over. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "predictor.h"
#include "twin/err.h"

#define ASSETS      12000
#define BALANCE_TOL 0.03 /* share of the assets a member may be off its fair share */

static const struct pred_config plain_config = {
    .horizon_steps = 4, .n_points = 4, .detect_season = false};

static void online(struct pred_members *m, const char *who)
{
    pred_members_update(m, who, "online", 6, true);
}

static void offline(struct pred_members *m, const char *who)
{
    pred_members_update(m, who, "offline", 7, false);
}

/* Whether `got` of ASSETS is within BALANCE_TOL of the share. */
static bool near_share(size_t got, double share)
{
    double f = (double)got / (double)ASSETS;
    return f > share - BALANCE_TOL && f < share + BALANCE_TOL;
}

static void asset_name(size_t i, char *out, size_t cap)
{
    snprintf(out, cap, "line-%zu.press-%zu", i / 40, i % 40);
}

/* ---- status topics ------------------------------------------------------------------------ */

static void status_topic_names_the_instance_and_nothing_else_passes(void **state)
{
    (void)state;
    char name[TW_NAME_MAX + 1];
    assert_int_equal(
        pred_status_instance("twin/v1/service/predictor/c1/status", "twin/v1", name, sizeof(name)),
        0);
    assert_string_equal(name, "c1");
    assert_int_equal(pred_status_instance("plant7/twin/service/predictor/host-a.2_x/status",
                                          "plant7/twin", name, sizeof(name)),
                     0);
    assert_string_equal(name, "host-a.2_x");
    static const char *const bad[] = {
        "twin/v1/service/ingest/c1/status",      /* another service */
        "twin/v1/service/predictor//status",     /* no name */
        "twin/v1/service/predictor/c1/state",    /* another leaf */
        "twin/v1/service/predictor/a/b/status",  /* a slash in the name */
        "twin/v1/service/predictor/c 1/status",  /* not an id */
        "twin/v2/service/predictor/c1/status",   /* another root */
        "twin/v1/service/predictor/status",      /* too short */
        "twin/v1/asset/c1/state",                /* a TwinState */
        "twin/v1/service/predictor/c1/status/x", /* longer */
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(pred_status_instance(bad[i], "twin/v1", name, sizeof(name)), -1);
    char longest[200];
    snprintf(longest, sizeof(longest), "twin/v1/service/predictor/%065d/status", 1);
    assert_int_equal(pred_status_instance(longest, "twin/v1", name, sizeof(name)), -1);
}

/* ---- members ------------------------------------------------------------------------------ */

static void members_join_on_online_and_leave_on_anything_else(void **state)
{
    (void)state;
    struct pred_members m;
    struct pred_view v = {0};
    pred_members_init(&m, "c2");
    assert_true(pred_members_snapshot(&m, &v));
    assert_int_equal(v.n, 1);
    assert_string_equal(v.names[v.self], "c2");
    assert_false(pred_members_snapshot(&m, &v)); /* nothing changed */

    assert_int_equal(pred_members_update(&m, "c3", "online", 6, true), PRED_MEMBER_JOINED);
    assert_int_equal(pred_members_update(&m, "c1", "online", 6, false), PRED_MEMBER_JOINED);
    assert_int_equal(pred_members_update(&m, "c1", "online", 6, false), PRED_MEMBER_SAME);
    assert_true(pred_members_snapshot(&m, &v));
    assert_int_equal(v.n, 3);
    assert_string_equal(v.names[0], "c1"); /* sorted, whatever the order they came in */
    assert_string_equal(v.names[1], "c2");
    assert_string_equal(v.names[2], "c3");
    assert_int_equal(v.self, 1);
    char text[64];
    assert_int_equal(pred_view_format(&v, text, sizeof(text)), 0);
    assert_string_equal(text, "c1,c2,c3");
    assert_int_equal(pred_view_format(&v, text, 5), -1);

    /* The Will, a cleared retained status (empty payload), anything not "online". */
    assert_int_equal(pred_members_update(&m, "c3", "offline", 7, false), PRED_MEMBER_LEFT);
    assert_int_equal(pred_members_update(&m, "c3", "offline", 7, true), PRED_MEMBER_SAME);
    assert_int_equal(pred_members_update(&m, "c1", "", 0, true), PRED_MEMBER_LEFT);
    online(&m, "c4");
    assert_int_equal(pred_members_update(&m, "c4", "onlinex", 7, false), PRED_MEMBER_LEFT);
    assert_true(pred_members_snapshot(&m, &v));
    assert_int_equal(v.n, 1);
    assert_string_equal(v.names[0], "c2");
    pred_members_destroy(&m);
}

static void own_status_settles_only_when_it_comes_back_live(void **state)
{
    (void)state;
    struct pred_members m;
    struct pred_view v = {0};
    pred_members_init(&m, "c1");
    pred_members_snapshot(&m, &v);
    /* The retained copy from an earlier run, online or offline, settles nothing and never
     * takes the instance out of its own view. */
    assert_int_equal(pred_members_update(&m, "c1", "offline", 7, true), PRED_MEMBER_SAME);
    assert_int_equal(pred_members_update(&m, "c1", "online", 6, true), PRED_MEMBER_SAME);
    assert_false(pred_members_settled(&m));
    assert_int_equal(pred_members_update(&m, "c1", "online", 6, false), PRED_MEMBER_SETTLED);
    assert_true(pred_members_settled(&m));
    assert_int_equal(pred_members_update(&m, "c1", "online", 6, false), PRED_MEMBER_SAME);
    assert_int_equal(pred_members_update(&m, "c1", "offline", 7, false), PRED_MEMBER_SAME);
    assert_false(pred_members_snapshot(&m, &v));
    assert_int_equal(v.n, 1);
    pred_members_destroy(&m);
}

static void members_beyond_the_maximum_are_refused_and_counted(void **state)
{
    (void)state;
    static struct pred_members m;
    static struct pred_view v;
    char name[16];
    pred_members_init(&m, "self");
    for (int i = 1; i < PRED_MEMBERS_MAX; i++) {
        snprintf(name, sizeof(name), "p%d", i);
        assert_int_equal(pred_members_update(&m, name, "online", 6, true), PRED_MEMBER_JOINED);
    }
    assert_int_equal(pred_members_update(&m, "late", "online", 6, true), PRED_MEMBER_REFUSED);
    assert_int_equal(m.overflow, 1);
    pred_members_snapshot(&m, &v);
    assert_int_equal(v.n, PRED_MEMBERS_MAX);
    assert_string_equal(v.names[v.self], "self");
    offline(&m, "p1"); /* room again */
    assert_int_equal(pred_members_update(&m, "late", "online", 6, true), PRED_MEMBER_JOINED);
    pred_members_destroy(&m);
}

/* ---- ownership ---------------------------------------------------------------------------- */

/* The view of instance `self` among the given members, joined in the given order. */
static void view_of(const char *self, const char *const *names, size_t n, struct pred_view *v)
{
    struct pred_members m;
    pred_members_init(&m, self);
    for (size_t i = 0; i < n; i++)
        online(&m, names[i]);
    memset(v, 0, sizeof(*v));
    pred_members_snapshot(&m, v);
    pred_members_destroy(&m);
}

static void every_instance_agrees_and_exactly_one_owns_each_asset(void **state)
{
    (void)state;
    static const char *const fwd[] = {"alpha", "beta", "gamma"};
    static const char *const rev[] = {"gamma", "beta", "alpha"};
    static struct pred_view views[3];
    view_of("alpha", rev, 3, &views[0]);
    view_of("beta", fwd, 3, &views[1]);
    view_of("gamma", rev, 3, &views[2]);
    char asset[TW_NAME_MAX + 1];
    size_t owned[3] = {0};
    for (size_t i = 0; i < ASSETS; i++) {
        asset_name(i, asset, sizeof(asset));
        int owners = 0;
        for (int k = 0; k < 3; k++) {
            bool own = pred_view_owns(&views[k], asset);
            owners += own;
            owned[k] += own;
            assert_int_equal(pred_owner_index(&views[k], asset),
                             pred_owner_index(&views[0], asset));
        }
        assert_int_equal(owners, 1);
    }
    for (int k = 0; k < 3; k++) /* balanced: each near a third */
        assert_true(near_share(owned[k], 1.0 / 3));
    /* Alone, an instance owns everything. */
    static struct pred_view alone;
    view_of("alpha", NULL, 0, &alone);
    assert_true(pred_view_owns(&alone, "anything"));
}

static void a_join_moves_only_its_share_and_a_leave_only_the_leavers(void **state)
{
    (void)state;
    static const char *const two[] = {"c1", "c2"};
    static const char *const three[] = {"c1", "c2", "c3"};
    static struct pred_view before, after;
    view_of("c1", two, 2, &before);
    view_of("c1", three, 3, &after);
    char asset[TW_NAME_MAX + 1];
    size_t moved = 0, share_c1 = 0;
    for (size_t i = 0; i < ASSETS; i++) {
        asset_name(i, asset, sizeof(asset));
        const char *was = before.names[pred_owner_index(&before, asset)];
        const char *now = after.names[pred_owner_index(&after, asset)];
        share_c1 += strcmp(was, "c1") == 0;
        if (strcmp(was, now) != 0) {
            assert_string_equal(now, "c3"); /* a join takes from the others, never shuffles */
            moved++;
        }
        /* c3 leaving again: exactly its assets go back, each to its earlier owner. */
        if (strcmp(now, "c3") != 0)
            assert_string_equal(was, now);
    }
    assert_true(near_share(moved, 1.0 / 3));
    assert_true(near_share(share_c1, 0.5));
}

/* ---- handing assets over ------------------------------------------------------------------ */

static bool keep_even(const struct pred_asset *a, void *ctx)
{
    (void)ctx;
    size_t n = strlen(a->id);
    return (a->id[n - 1] - '0') % 2 == 0;
}

static void dropped_assets_leave_the_table_and_every_list(void **state)
{
    (void)state;
    enum { N = 1500 }; /* past the first resize */
    struct pred_table t;
    struct pred_asset *a;
    struct pred_sig *sig;
    char id[TW_NAME_MAX + 1];
    assert_int_equal(pred_table_init(&t, N, 4), 0);
    for (size_t i = 0; i < N; i++) {
        snprintf(id, sizeof(id), "m%zu", i);
        assert_int_equal(pred_table_add(&t, id, &a), 0);
        assert_int_equal(pred_table_add_signal(&t, a, "temp", &plain_config, &sig), 0);
        if (i % 3 == 0)
            assert_int_equal(pred_table_add_signal(&t, a, "flow", &plain_config, &sig), 0);
        pred_table_list(&t, a, PRED_LIST_DIRTY);
        if (i % 2 == 1)
            pred_table_list(&t, a, PRED_LIST_PENDING);
    }
    size_t signals_kept = 0;
    for (size_t i = 0; i < N; i += 2)
        signals_kept += 1 + (i % 3 == 0);
    assert_int_equal(pred_table_drop_unless(&t, keep_even, NULL), N / 2);
    assert_int_equal(t.n_assets, N / 2);
    assert_int_equal(t.n_signals, signals_kept);
    for (size_t i = 0; i < N; i++) {
        snprintf(id, sizeof(id), "m%zu", i);
        a = pred_table_find(&t, id);
        if (i % 2 == 0) {
            assert_non_null(a);
            assert_string_equal(a->id, id);
            assert_non_null(pred_asset_signal(a, "temp"));
        } else {
            assert_null(a);
        }
    }
    assert_int_equal(t.lists[PRED_LIST_DIRTY].n, N / 2);
    for (size_t i = 0; i < t.lists[PRED_LIST_DIRTY].n; i++)
        assert_true(keep_even(t.lists[PRED_LIST_DIRTY].items[i], NULL));
    assert_int_equal(t.lists[PRED_LIST_PENDING].n, 0); /* only odd ones were pending */
    /* Nothing more to drop; the table takes new assets again. */
    assert_int_equal(pred_table_drop_unless(&t, keep_even, NULL), 0);
    assert_int_equal(pred_table_add(&t, "m1", &a), 0);
    assert_ptr_equal(pred_table_find(&t, "m1"), a);
    pred_table_free(&t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(status_topic_names_the_instance_and_nothing_else_passes),
        cmocka_unit_test(members_join_on_online_and_leave_on_anything_else),
        cmocka_unit_test(own_status_settles_only_when_it_comes_back_live),
        cmocka_unit_test(members_beyond_the_maximum_are_refused_and_counted),
        cmocka_unit_test(every_instance_agrees_and_exactly_one_owns_each_asset),
        cmocka_unit_test(a_join_moves_only_its_share_and_a_leave_only_the_leavers),
        cmocka_unit_test(dropped_assets_leave_the_table_and_every_list),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
