/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests of the predictor's service plumbing without a broker or Redis: the bounded queue
 * between the MQTT and loop threads, the asset table and the engine settings. */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "predictor.h"
#include "twin/clock.h"
#include "twin/err.h"
#include "twin/metrics.h"
#include "twin/model.h"

#define BIG_PAYLOAD       300
#define MANY_ASSETS       10000 /* the table starts at 1024 slots: five doublings */
#define LISTED_ASSETS     300   /* more than a list's first allocation (256) */
#define THREAD_LIMIT_MS   3000  /* the longest any test waits for another thread */
#define CONSUMER_DELAY_MS 200

/* ---- queue ------------------------------------------------------------------------------ */

/* A queue whose depth gauge and wait counter the test can read. */
struct watched_queue {
    struct tw_metrics *reg;
    struct tw_gauge *depth;
    struct tw_counter *waits;
    struct pred_queue *q;
};

static void watched_open(struct watched_queue *w, size_t capacity)
{
    assert_int_equal(tw_metrics_create(&w->reg), 0);
    w->depth = tw_metrics_gauge(w->reg, "test_queue_depth", NULL, "depth");
    w->waits = tw_metrics_counter(w->reg, "test_queue_waits_total", NULL, "waits");
    assert_non_null(w->depth);
    assert_non_null(w->waits);
    assert_int_equal(pred_queue_create(capacity, w->depth, w->waits, &w->q), 0);
}

static void watched_close(struct watched_queue *w)
{
    pred_queue_destroy(w->q);
    tw_metrics_destroy(w->reg);
}

static void push_text(struct pred_queue *q, const char *topic, const char *text)
{
    pred_queue_push(q, topic, text, strlen(text), 1024);
}

/* Asserts that m carries topic and the whole payload text. */
static void expect_msg(const struct pred_msg *m, const char *topic, const char *text)
{
    assert_non_null(m);
    assert_string_equal(m->topic, topic);
    assert_int_equal(m->len, strlen(text));
    assert_int_equal(m->full_len, strlen(text));
    assert_false(m->oversize);
    assert_memory_equal(m->payload, text, strlen(text));
}

/* Frees a chain returned by pred_queue_take and returns how long it was. */
static size_t free_chain(struct pred_msg *m)
{
    size_t n = 0;
    while (m) {
        struct pred_msg *next = m->next;
        pred_msg_free(m);
        m = next;
        n++;
    }
    return n;
}

/* Polls flag every millisecond until it is set or limit_ms passed; returns the flag. */
static bool wait_flag(atomic_bool *flag, int64_t limit_ms)
{
    int64_t deadline = tw_mono_ms() + limit_ms;
    while (!atomic_load(flag) && tw_mono_ms() < deadline)
        tw_sleep_ms(1, NULL);
    return atomic_load(flag);
}

/* Plays the MQTT thread: after delay_ms, pushes topic "p<i>" for i in 0..n-1. */
struct pusher {
    struct pred_queue *q;
    int64_t delay_ms;
    int n;
    atomic_bool done;
};

static void *pusher_main(void *arg)
{
    struct pusher *p = arg;
    char topic[16];
    tw_sleep_ms(p->delay_ms, NULL);
    for (int i = 0; i < p->n; i++) {
        snprintf(topic, sizeof(topic), "p%d", i);
        push_text(p->q, topic, topic);
    }
    atomic_store(&p->done, true);
    return NULL;
}

static void queue_hands_messages_over_oldest_first_as_copies(void **state)
{
    (void)state;
    struct watched_queue w;
    watched_open(&w, 8);
    char topic[PRED_TOPIC_MAX], payload[32];
    for (int i = 0; i < 3; i++) {
        snprintf(topic, sizeof(topic), "twin/v1/asset/a%d/state", i);
        snprintf(payload, sizeof(payload), "state-%d", i);
        push_text(w.q, topic, payload);
    }
    /* The caller's buffers are Paho's: they are gone once the handler returns. */
    memset(topic, 'x', sizeof(topic) - 1);
    memset(payload, 'y', sizeof(payload) - 1);
    pred_queue_push(w.q, "twin/v1/asset/e/state", "", 0, 1024);
    assert_int_equal(tw_gauge_get(w.depth), 4);

    struct pred_msg *first = pred_queue_take(w.q, 16, 0), *m = first;
    expect_msg(m, "twin/v1/asset/a0/state", "state-0");
    expect_msg(m = m->next, "twin/v1/asset/a1/state", "state-1");
    expect_msg(m = m->next, "twin/v1/asset/a2/state", "state-2");
    expect_msg(m = m->next, "twin/v1/asset/e/state", "");
    assert_null(m->next);
    assert_int_equal(free_chain(first), 4);
    assert_int_equal(tw_gauge_get(w.depth), 0);
    assert_int_equal(tw_counter_get(w.waits), 0);
    assert_null(pred_queue_take(w.q, 16, 0));
    watched_close(&w);
}

static void queue_keeps_only_the_head_of_a_payload_above_max_payload(void **state)
{
    (void)state;
    struct watched_queue w;
    watched_open(&w, 8);
    uint8_t big[BIG_PAYLOAD];
    for (size_t i = 0; i < sizeof(big); i++)
        big[i] = (uint8_t)(i * 7 + 1);
    pred_queue_push(w.q, "at", big, 100, 100);   /* exactly max_payload: whole */
    pred_queue_push(w.q, "over", big, 101, 100); /* one byte more: the head only */
    pred_queue_push(w.q, "short", big, 20, 10);  /* oversize, but shorter than a head */
    pred_queue_push(w.q, "huge", big, BIG_PAYLOAD, 0);

    struct pred_msg *first = pred_queue_take(w.q, 16, 0), *m = first;
    assert_string_equal(m->topic, "at");
    assert_false(m->oversize);
    assert_int_equal(m->len, 100);
    assert_int_equal(m->full_len, 100);
    assert_memory_equal(m->payload, big, 100);

    m = m->next;
    assert_string_equal(m->topic, "over");
    assert_true(m->oversize);
    assert_int_equal(m->len, TW_REJECTED_HEAD_BYTES);
    assert_int_equal(m->full_len, 101);
    assert_memory_equal(m->payload, big, TW_REJECTED_HEAD_BYTES);

    m = m->next;
    assert_string_equal(m->topic, "short");
    assert_true(m->oversize);
    assert_int_equal(m->len, 20);
    assert_int_equal(m->full_len, 20);
    assert_memory_equal(m->payload, big, 20);

    m = m->next;
    assert_string_equal(m->topic, "huge");
    assert_true(m->oversize);
    assert_int_equal(m->len, TW_REJECTED_HEAD_BYTES);
    assert_int_equal(m->full_len, BIG_PAYLOAD);
    assert_memory_equal(m->payload, big, TW_REJECTED_HEAD_BYTES);
    assert_null(m->next);
    assert_int_equal(free_chain(first), 4);
    watched_close(&w);
}

static void queue_take_returns_at_most_max_and_keeps_the_rest_in_order(void **state)
{
    (void)state;
    struct watched_queue w;
    watched_open(&w, 8);
    const char *names[] = {"m0", "m1", "m2", "m3", "m4"};
    for (size_t i = 0; i < 5; i++)
        push_text(w.q, names[i], names[i]);

    struct pred_msg *m = pred_queue_take(w.q, 2, 0);
    expect_msg(m, "m0", "m0");
    expect_msg(m->next, "m1", "m1");
    assert_null(m->next->next);
    assert_int_equal(free_chain(m), 2);
    assert_int_equal(tw_gauge_get(w.depth), 3);

    m = pred_queue_take(w.q, 2, 0);
    expect_msg(m, "m2", "m2");
    expect_msg(m->next, "m3", "m3");
    assert_int_equal(free_chain(m), 2);

    m = pred_queue_take(w.q, 2, 0);
    expect_msg(m, "m4", "m4");
    assert_int_equal(free_chain(m), 1);
    assert_int_equal(tw_gauge_get(w.depth), 0);

    /* Emptied by takes of exactly the rest: the tail was reset, so pushes still append. */
    push_text(w.q, "m5", "m5");
    m = pred_queue_take(w.q, 2, 0);
    expect_msg(m, "m5", "m5");
    assert_int_equal(free_chain(m), 1);
    watched_close(&w);
}

static void queue_take_on_empty_queue_times_out_within_its_wait(void **state)
{
    (void)state;
    struct watched_queue w;
    watched_open(&w, 4);
    int64_t t0 = tw_mono_ms();
    assert_null(pred_queue_take(w.q, 4, 0));
    int64_t t1 = tw_mono_ms();
    assert_null(pred_queue_take(w.q, 4, 150));
    int64_t t2 = tw_mono_ms();
    print_message("take(0) %lld ms, take(150) %lld ms\n", (long long)(t1 - t0),
                  (long long)(t2 - t1));
    assert_true(t1 - t0 < 100);
    assert_true(t2 - t1 >= 140);
    assert_true(t2 - t1 < 1000);

    /* A message pushed during the wait ends it early. */
    struct pusher p = {.q = w.q, .delay_ms = 50, .n = 1};
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, pusher_main, &p), 0);
    int64_t t3 = tw_mono_ms();
    struct pred_msg *m = pred_queue_take(w.q, 4, 5000);
    int64_t t4 = tw_mono_ms();
    pthread_join(th, NULL);
    print_message("take(5000) with a push after 50 ms: %lld ms\n", (long long)(t4 - t3));
    expect_msg(m, "p0", "p0");
    assert_int_equal(free_chain(m), 1);
    assert_true(t4 - t3 < 1000);
    watched_close(&w);
}

/* Plays the loop thread against a full queue: takes one message after CONSUMER_DELAY_MS and
 * records what the producer had done by then. Unbinds the queue if the producer's push never
 * returns, so a broken queue fails the test instead of hanging it. */
struct consumer {
    struct watched_queue *w;
    atomic_bool pushed; /* set by the producer once its push returned */
    bool pushed_before_take;
    int64_t depth_before_take;
    int64_t take_ms;
    struct pred_msg *taken;
    bool had_to_unbind;
};

static void *consumer_main(void *arg)
{
    struct consumer *c = arg;
    tw_sleep_ms(CONSUMER_DELAY_MS, NULL);
    c->pushed_before_take = atomic_load(&c->pushed);
    c->depth_before_take = tw_gauge_get(c->w->depth);
    c->take_ms = tw_mono_ms();
    c->taken = pred_queue_take(c->w->q, 1, 0);
    if (!wait_flag(&c->pushed, THREAD_LIMIT_MS)) {
        c->had_to_unbind = true;
        pred_queue_unbound(c->w->q);
    }
    return NULL;
}

static void full_queue_makes_push_wait_until_the_consumer_takes(void **state)
{
    (void)state;
    struct watched_queue w;
    watched_open(&w, 2);
    push_text(w.q, "m0", "m0");
    push_text(w.q, "m1", "m1");
    assert_int_equal(tw_counter_get(w.waits), 0);

    struct consumer c = {.w = &w};
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, consumer_main, &c), 0);
    int64_t t0 = tw_mono_ms();
    push_text(w.q, "m2", "m2"); /* the queue is full: waits for the consumer */
    int64_t t1 = tw_mono_ms();
    atomic_store(&c.pushed, true);
    pthread_join(th, NULL);
    print_message("push waited %lld ms, returned %lld ms after the take\n", (long long)(t1 - t0),
                  (long long)(t1 - c.take_ms));

    assert_false(c.had_to_unbind);
    assert_false(c.pushed_before_take);
    assert_int_equal(c.depth_before_take, 2);
    assert_true(t1 >= c.take_ms);
    assert_true(t1 - t0 >= CONSUMER_DELAY_MS - 20);
    assert_true(t1 - c.take_ms < 1000);
    assert_int_equal(tw_counter_get(w.waits), 1);
    expect_msg(c.taken, "m0", "m0");
    assert_int_equal(free_chain(c.taken), 1);

    struct pred_msg *m = pred_queue_take(w.q, 8, 0);
    expect_msg(m, "m1", "m1");
    expect_msg(m->next, "m2", "m2");
    assert_int_equal(free_chain(m), 2);
    watched_close(&w);
}

static void unbound_queue_releases_a_waiting_push_and_takes_more_than_capacity(void **state)
{
    (void)state;
    struct watched_queue w;
    watched_open(&w, 1);
    push_text(w.q, "m0", "m0");

    struct pusher p = {.q = w.q, .n = 3};
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, pusher_main, &p), 0);
    /* The pusher's first push waits on the full queue (the counter shows it). */
    int64_t deadline = tw_mono_ms() + THREAD_LIMIT_MS;
    while (tw_counter_get(w.waits) == 0 && tw_mono_ms() < deadline)
        tw_sleep_ms(1, NULL);
    bool waiting = tw_counter_get(w.waits) == 1 && !atomic_load(&p.done);
    int64_t t0 = tw_mono_ms();
    pred_queue_unbound(w.q);
    bool released = wait_flag(&p.done, THREAD_LIMIT_MS);
    int64_t t1 = tw_mono_ms();
    /* A queue that ignored unbound would keep the pusher forever: drain to free it. */
    while (!atomic_load(&p.done))
        free_chain(pred_queue_take(w.q, 16, 10));
    pthread_join(th, NULL);
    print_message("pushes after unbound took %lld ms\n", (long long)(t1 - t0));

    assert_true(waiting);
    assert_true(released);
    assert_true(t1 - t0 < 1000);
    assert_int_equal(tw_counter_get(w.waits), 1); /* only the push before unbound waited */
    assert_int_equal(tw_gauge_get(w.depth), 4);
    struct pred_msg *first = pred_queue_take(w.q, 16, 0), *m = first;
    expect_msg(m, "m0", "m0");
    expect_msg(m = m->next, "p0", "p0");
    expect_msg(m = m->next, "p1", "p1");
    expect_msg(m = m->next, "p2", "p2");
    assert_int_equal(free_chain(first), 4);
    watched_close(&w);
}

/* ---- asset table ------------------------------------------------------------------------ */

static const struct pred_config plain_config = {.n_points = 4, .detect_season = true};

static bool is_power_of_two(size_t n)
{
    return n != 0 && (n & (n - 1)) == 0;
}

static void table_finds_every_asset_after_growing_through_several_resizes(void **state)
{
    (void)state;
    struct pred_table t;
    assert_int_equal(pred_table_init(&t, 100000, 8), 0);
    static struct pred_asset *added[MANY_ASSETS];
    char id[TW_NAME_MAX + 1];
    size_t resizes = 0;
    for (size_t i = 0; i < MANY_ASSETS; i++) {
        size_t slots = t.n_slots;
        snprintf(id, sizeof(id), "line-%zu/press", i);
        assert_int_equal(pred_table_add(&t, id, &added[i]), 0);
        assert_string_equal(added[i]->id, id);
        assert_false(added[i]->loaded);
        assert_int_equal(added[i]->n_sigs, 0);
        resizes += t.n_slots != slots;
        assert_ptr_equal(pred_table_find(&t, id), added[i]);
    }
    assert_true(resizes >= 4);
    assert_int_equal(t.n_assets, MANY_ASSETS);
    assert_true(is_power_of_two(t.n_slots));
    assert_true(t.n_slots >= 2 * t.n_assets);
    for (size_t i = 0; i < MANY_ASSETS; i++) {
        snprintf(id, sizeof(id), "line-%zu/press", i);
        assert_ptr_equal(pred_table_find(&t, id), added[i]); /* assets never move */
        assert_ptr_equal(t.assets[i], added[i]);             /* in order of arrival */
    }
    assert_null(pred_table_find(&t, "line-10000/press"));
    assert_null(pred_table_find(&t, "line-1/pres"));
    assert_null(pred_table_find(&t, ""));
    pred_table_free(&t);
}

static void table_refuses_assets_at_max_assets_and_keeps_those_it_has(void **state)
{
    (void)state;
    struct pred_table t;
    enum { LIMIT = 600 }; /* past the first resize at 513 */
    assert_int_equal(pred_table_init(&t, LIMIT, 4), 0);
    static struct pred_asset *added[LIMIT];
    char id[TW_NAME_MAX + 1];
    for (size_t i = 0; i < LIMIT; i++) {
        snprintf(id, sizeof(id), "a%zu", i);
        assert_int_equal(pred_table_add(&t, id, &added[i]), 0);
    }
    struct pred_asset *refused = NULL;
    assert_int_equal(pred_table_add(&t, "one-too-many", &refused), TW_EAGAIN);
    assert_int_equal(pred_table_add(&t, "two-too-many", &refused), TW_EAGAIN);
    assert_null(refused);
    assert_int_equal(t.n_assets, LIMIT);
    assert_null(pred_table_find(&t, "one-too-many"));
    for (size_t i = 0; i < LIMIT; i++) {
        snprintf(id, sizeof(id), "a%zu", i);
        assert_ptr_equal(pred_table_find(&t, id), added[i]);
    }
    struct pred_sig *sig;
    assert_int_equal(pred_table_add_signal(&t, added[LIMIT - 1], "temp", &plain_config, &sig), 0);
    pred_table_free(&t);
}

static void asset_refuses_signals_at_max_signals_and_keeps_those_it_has(void **state)
{
    (void)state;
    struct pred_table t;
    struct pred_asset *a, *b, *c;
    struct pred_sig *sig;
    assert_int_equal(pred_table_init(&t, 8, 3), 0);
    assert_int_equal(pred_table_add(&t, "a", &a), 0);
    assert_int_equal(pred_table_add(&t, "b", &b), 0);
    assert_int_equal(pred_table_add(&t, "c", &c), 0);
    const char *names[] = {"temp", "flow", "rpm"};
    struct pred_signal *st[3];
    for (size_t i = 0; i < 3; i++) {
        assert_int_equal(pred_table_add_signal(&t, a, names[i], &plain_config, &sig), 0);
        st[i] = sig->st;
    }
    sig = NULL;
    assert_int_equal(pred_table_add_signal(&t, a, "amps", &plain_config, &sig), TW_EAGAIN);
    assert_null(sig);
    assert_int_equal(a->n_sigs, 3);
    assert_int_equal(t.n_signals, 3);
    assert_null(pred_asset_signal(a, "amps"));
    assert_string_equal(a->sigs[0].name, "flow");
    assert_string_equal(a->sigs[1].name, "rpm");
    assert_string_equal(a->sigs[2].name, "temp");
    for (size_t i = 0; i < 3; i++) {
        sig = pred_asset_signal(a, names[i]);
        assert_non_null(sig);
        assert_ptr_equal(sig->st, st[i]);
    }

    /* The limit is per asset: another asset has its own three. */
    for (size_t i = 0; i < 3; i++)
        assert_int_equal(pred_table_add_signal(&t, b, names[i], &plain_config, &sig), 0);
    assert_int_equal(pred_table_add_signal(&t, b, "amps", &plain_config, &sig), TW_EAGAIN);
    assert_int_equal(t.n_signals, 6);

    /* A configuration the engine refuses adds nothing. */
    struct pred_config bad = plain_config;
    bad.n_points = 0;
    assert_int_equal(pred_table_add_signal(&t, c, "temp", &bad, &sig), TW_EINVAL);
    assert_int_equal(c->n_sigs, 0);
    assert_null(pred_asset_signal(c, "temp"));
    assert_int_equal(t.n_signals, 6);
    pred_table_free(&t);
}

static void asset_signals_stay_sorted_and_are_found_by_name(void **state)
{
    (void)state;
    static const char *names[] = {
        "temp", "pressure", "a",  "vib:x/1", "count", "Z", "b.2", "b.10", "flow", "level",
        "rpm",  "torque",   "a1", "amps",    "zeta",  "m", "k",   "d",    "e",    "h_2",
    };
    enum { N = sizeof(names) / sizeof(names[0]) };
    struct pred_signal *st[N];
    struct pred_table t;
    struct pred_asset *a;
    assert_int_equal(pred_table_init(&t, 4, 64), 0);
    assert_int_equal(pred_table_add(&t, "press-1", &a), 0);
    for (size_t i = 0; i < N; i++) {
        struct pred_sig *sig;
        assert_int_equal(pred_table_add_signal(&t, a, names[i], &plain_config, &sig), 0);
        assert_string_equal(sig->name, names[i]);
        assert_non_null(sig->st);
        assert_false(sig->dirty);
        assert_true(sig >= a->sigs && sig < a->sigs + a->n_sigs);
        st[i] = sig->st;
        for (size_t k = 1; k < a->n_sigs; k++)
            assert_true(strcmp(a->sigs[k - 1].name, a->sigs[k].name) < 0);
    }
    assert_int_equal(a->n_sigs, N);
    assert_int_equal(t.n_signals, N);
    assert_string_equal(a->sigs[0].name, "Z");
    assert_string_equal(a->sigs[N - 1].name, "zeta");
    for (size_t i = 0; i < N; i++) {
        struct pred_sig *sig = pred_asset_signal(a, names[i]);
        assert_non_null(sig);
        assert_string_equal(sig->name, names[i]);
        assert_ptr_equal(sig->st, st[i]); /* states follow their names through inserts */
    }
    const char *absent[] = {"", "b", "zz", "temp2", "A", "vib:x/"};
    for (size_t i = 0; i < sizeof(absent) / sizeof(absent[0]); i++)
        assert_null(pred_asset_signal(a, absent[i]));
    pred_table_free(&t);
}

static void list_holds_an_asset_once_and_unlist_fills_the_gap_with_the_last(void **state)
{
    (void)state;
    struct pred_table t;
    static struct pred_asset *as[LISTED_ASSETS];
    char id[TW_NAME_MAX + 1];
    assert_int_equal(pred_table_init(&t, LISTED_ASSETS, 4), 0);
    const struct pred_list *dirty = &t.lists[PRED_LIST_DIRTY];
    const struct pred_list *pending = &t.lists[PRED_LIST_PENDING];
    for (size_t i = 0; i < LISTED_ASSETS; i++) {
        snprintf(id, sizeof(id), "a%zu", i);
        assert_int_equal(pred_table_add(&t, id, &as[i]), 0);
        assert_false(as[i]->listed[PRED_LIST_DIRTY]);
        assert_int_equal(pred_table_list(&t, as[i], PRED_LIST_DIRTY), 0);
        assert_true(as[i]->listed[PRED_LIST_DIRTY]);
    }
    assert_int_equal(dirty->n, LISTED_ASSETS);
    for (size_t i = 0; i < LISTED_ASSETS; i++)
        assert_ptr_equal(dirty->items[i], as[i]);

    /* Listing again changes nothing; the lists are independent of each other. */
    assert_int_equal(pred_table_list(&t, as[0], PRED_LIST_DIRTY), 0);
    assert_int_equal(dirty->n, LISTED_ASSETS);
    assert_int_equal(pending->n, 0);
    assert_false(as[0]->listed[PRED_LIST_PENDING]);
    assert_int_equal(pred_table_list(&t, as[5], PRED_LIST_PENDING), 0);
    assert_int_equal(pending->n, 1);
    assert_true(as[5]->listed[PRED_LIST_PENDING]);
    assert_true(as[5]->listed[PRED_LIST_DIRTY]);

    /* Unlisting entry 0 moves the last entry into its place. */
    pred_table_unlist(&t, PRED_LIST_DIRTY, 0);
    assert_int_equal(dirty->n, LISTED_ASSETS - 1);
    assert_false(as[0]->listed[PRED_LIST_DIRTY]);
    assert_ptr_equal(dirty->items[0], as[LISTED_ASSETS - 1]);
    assert_ptr_equal(dirty->items[1], as[1]);

    /* Unlisting the last entry just shortens the list. */
    struct pred_asset *last = dirty->items[dirty->n - 1];
    pred_table_unlist(&t, PRED_LIST_DIRTY, dirty->n - 1);
    assert_int_equal(dirty->n, LISTED_ASSETS - 2);
    assert_false(last->listed[PRED_LIST_DIRTY]);
    assert_ptr_equal(dirty->items[0], as[LISTED_ASSETS - 1]);

    /* An unlisted asset can be listed again, at the end. */
    assert_int_equal(pred_table_list(&t, as[0], PRED_LIST_DIRTY), 0);
    assert_int_equal(dirty->n, LISTED_ASSETS - 1);
    assert_ptr_equal(dirty->items[dirty->n - 1], as[0]);
    assert_true(as[0]->listed[PRED_LIST_DIRTY]);

    /* Unlisting from one list leaves the other alone. */
    pred_table_unlist(&t, PRED_LIST_PENDING, 0);
    assert_int_equal(pending->n, 0);
    assert_false(as[5]->listed[PRED_LIST_PENDING]);
    assert_true(as[5]->listed[PRED_LIST_DIRTY]);
    pred_table_free(&t);
}

/* ---- engine settings ------------------------------------------------------------------- */

static const char plant_json[] =
    "{\"version\": 1,"
    " \"asset_kinds\": {\"press\": {\"signals\": {"
    "   \"temp\": {\"unit\": \"degC\", \"warn\": {\"above\": 80},"
    "              \"alarm\": {\"above\": 95, \"below\": -10}, \"season\": \"1d\"},"
    "   \"pressure\": {\"warn\": {\"below\": 50}, \"season_samples\": 24,"
    "                  \"physics\": {\"cycle\": \"8h\", \"drift\": 1}},"
    "   \"count\": {}}}},"
    " \"assets\": {\"press-1\": {\"kind\": \"press\"}, \"press-2\": {\"kind\": \"press\"}}}";

/* Asserts what every config gets from the settings alone. */
static void expect_from_settings(const struct pred_config *c, const struct pred_settings *s)
{
    assert_int_equal(c->step_ms, 0);
    assert_int_equal(c->horizon_ms, s->horizon_ms);
    assert_int_equal(c->horizon_steps, s->horizon_steps);
    assert_int_equal(c->n_points, s->points);
}

/* Asserts a config with no hint from the plant model: detect the season, no limits. */
static void expect_no_model_hint(const struct pred_config *c)
{
    assert_true(c->detect_season);
    assert_int_equal(c->season_ms, 0);
    assert_int_equal(c->season_samples, 0);
    assert_false(c->has_limits);
    assert_false(c->warn.has_above || c->warn.has_below);
    assert_false(c->alarm.has_above || c->alarm.has_below);
    assert_true(c->physics.cycle_s == 0 && c->physics.memory_s == 0 && c->physics.drift == 0);
}

/* The config must be one the engine accepts, since the service initialises signals with it. */
static void expect_engine_accepts(const struct pred_config *c)
{
    struct pred_signal *st = malloc(pred_signal_size());
    assert_non_null(st);
    int rc = pred_signal_init(st, c);
    free(st);
    assert_int_equal(rc, 0);
}

static void signal_config_takes_limits_and_season_of_a_listed_signal(void **state)
{
    (void)state;
    struct tw_model *model;
    struct tw_model_errors errs = {0};
    assert_int_equal(tw_model_load_buffer(plant_json, strlen(plant_json), &model, &errs), 0);
    tw_model_errors_free(&errs);
    struct pred_settings s = {.horizon_steps = 48, .points = 12, .model = model};
    struct pred_config c;

    pred_table_signal_config(&s, "press-1", "temp", &c);
    expect_from_settings(&c, &s);
    assert_int_equal(c.season_ms, 24LL * 3600 * 1000);
    assert_int_equal(c.season_samples, 0);
    assert_false(c.detect_season);
    assert_true(c.has_limits);
    assert_true(c.warn.has_above);
    assert_false(c.warn.has_below);
    assert_true(c.warn.above == 80.0);
    assert_true(c.alarm.has_above && c.alarm.has_below);
    assert_true(c.alarm.above == 95.0);
    assert_true(c.alarm.below == -10.0);
    expect_engine_accepts(&c);

    pred_table_signal_config(&s, "press-2", "pressure", &c);
    expect_from_settings(&c, &s);
    assert_int_equal(c.season_ms, 0);
    assert_int_equal(c.season_samples, 24);
    assert_false(c.detect_season);
    assert_true(c.has_limits);
    assert_true(c.warn.has_below && !c.warn.has_above);
    assert_true(c.warn.below == 50.0);
    assert_false(c.alarm.has_above || c.alarm.has_below);
    assert_int_equal(c.physics.cycle_s, 8 * 3600);
    assert_int_equal(c.physics.memory_s, 8 * 3600);
    assert_int_equal(c.physics.drift, 1);
    expect_engine_accepts(&c);

    /* Listed without limits or season: the season is detected. */
    pred_table_signal_config(&s, "press-1", "count", &c);
    expect_from_settings(&c, &s);
    expect_no_model_hint(&c);
    tw_model_free(model);
}

static void signal_config_without_a_model_entry_detects_the_season_and_has_no_limits(void **state)
{
    (void)state;
    struct tw_model *model;
    assert_int_equal(tw_model_load_buffer(plant_json, strlen(plant_json), &model, NULL), 0);
    struct pred_settings s = {.horizon_ms = 6LL * 3600 * 1000, .points = 24, .model = model};
    struct pred_config c;
    memset(&c, 0xa5, sizeof(c)); /* every field is written */

    pred_table_signal_config(&s, "press-1", "humidity", &c); /* signal not in the kind */
    expect_from_settings(&c, &s);
    expect_no_model_hint(&c);
    expect_engine_accepts(&c);

    pred_table_signal_config(&s, "press-9", "temp", &c); /* asset not in the model */
    expect_from_settings(&c, &s);
    expect_no_model_hint(&c);

    s.model = NULL; /* no TWIN_MODEL at all */
    pred_table_signal_config(&s, "press-1", "temp", &c);
    expect_from_settings(&c, &s);
    expect_no_model_hint(&c);
    expect_engine_accepts(&c);
    tw_model_free(model);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(queue_hands_messages_over_oldest_first_as_copies),
        cmocka_unit_test(queue_keeps_only_the_head_of_a_payload_above_max_payload),
        cmocka_unit_test(queue_take_returns_at_most_max_and_keeps_the_rest_in_order),
        cmocka_unit_test(queue_take_on_empty_queue_times_out_within_its_wait),
        cmocka_unit_test(full_queue_makes_push_wait_until_the_consumer_takes),
        cmocka_unit_test(unbound_queue_releases_a_waiting_push_and_takes_more_than_capacity),
        cmocka_unit_test(table_finds_every_asset_after_growing_through_several_resizes),
        cmocka_unit_test(table_refuses_assets_at_max_assets_and_keeps_those_it_has),
        cmocka_unit_test(asset_refuses_signals_at_max_signals_and_keeps_those_it_has),
        cmocka_unit_test(asset_signals_stay_sorted_and_are_found_by_name),
        cmocka_unit_test(list_holds_an_asset_once_and_unlist_fills_the_gap_with_the_last),
        cmocka_unit_test(signal_config_takes_limits_and_season_of_a_listed_signal),
        cmocka_unit_test(signal_config_without_a_model_entry_detects_the_season_and_has_no_limits),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
