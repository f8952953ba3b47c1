/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests for the shared-memory metrics registry, its Prometheus rendering and the HTTP
 * endpoint. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <math.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include "twin/clock.h"
#include "twin/err.h"
#include "twin/metrics.h"

#define TEST_THREADS        8
#define TEST_ADDS_PER_THR   100000
#define TEST_CHILDREN       4
#define TEST_ADDS_PER_CHILD 10000
#define TEST_RESPONSE_MAX   65536
#define TEST_SERVED_BODY                                                                           \
    "# HELP twin_test_served_total Served.\n"                                                      \
    "# TYPE twin_test_served_total counter\n"                                                      \
    "twin_test_served_total 5\n"

static struct tw_metrics *test_registry(void)
{
    struct tw_metrics *m = NULL;

    assert_int_equal(tw_metrics_create(&m), TW_OK);
    assert_non_null(m);
    return m;
}

/* Renders and compares the whole exposition text. */
static void assert_render(struct tw_metrics *m, const char *expected)
{
    char *text = NULL;
    size_t len = 0;

    assert_int_equal(tw_metrics_render(m, &text, &len), TW_OK);
    assert_non_null(text);
    assert_string_equal(text, expected);
    assert_int_equal(len, strlen(expected));
    free(text);
}

static bool render_contains(struct tw_metrics *m, const char *needle)
{
    char *text = NULL;
    bool found;

    assert_int_equal(tw_metrics_render(m, &text, NULL), TW_OK);
    found = strstr(text, needle) != NULL;
    free(text);
    return found;
}

static void metrics_counter_and_gauge_render_exactly(void **state)
{
    struct tw_metrics *m = test_registry();
    struct tw_counter *c = tw_metrics_counter(m, "twin_test_applied_total", NULL, "Applied.");
    struct tw_gauge *g = tw_metrics_gauge(m, "twin_test_queue_depth", NULL, "Queued messages.");

    (void)state;
    assert_non_null(c);
    assert_non_null(g);
    tw_counter_add(c, 3);
    tw_counter_add(c, 4);
    tw_gauge_set(g, 7);
    tw_gauge_add(g, -10);
    assert_int_equal(tw_counter_get(c), 7);
    assert_int_equal(tw_gauge_get(g), -3);
    assert_render(m, "# HELP twin_test_applied_total Applied.\n"
                     "# TYPE twin_test_applied_total counter\n"
                     "twin_test_applied_total 7\n"
                     "# HELP twin_test_queue_depth Queued messages.\n"
                     "# TYPE twin_test_queue_depth gauge\n"
                     "twin_test_queue_depth -3\n");
    tw_metrics_destroy(m);
}

static void metrics_histogram_buckets_are_cumulative(void **state)
{
    static const double bounds[] = {0.1, 0.25, 1, 2.5};
    struct tw_metrics *m = test_registry();
    struct tw_histogram *a =
        tw_metrics_histogram(m, "twin_test_latency_seconds", "route=\"a\"", "Latency.", bounds, 4);
    struct tw_histogram *plain =
        tw_metrics_histogram(m, "twin_test_latency_seconds", NULL, "Latency.", bounds, 4);

    (void)state;
    assert_non_null(a);
    assert_non_null(plain);
    assert_ptr_not_equal(a, plain);
    tw_histogram_observe(a, 0.125);
    tw_histogram_observe(a, 0.25); /* upper bounds are inclusive */
    tw_histogram_observe(a, 0.5);
    tw_histogram_observe(a, 4);
    tw_histogram_observe(a, NAN); /* dropped */
    tw_histogram_observe(plain, 0.0625);
    assert_render(m, "# HELP twin_test_latency_seconds Latency.\n"
                     "# TYPE twin_test_latency_seconds histogram\n"
                     "twin_test_latency_seconds_bucket{route=\"a\",le=\"0.1\"} 0\n"
                     "twin_test_latency_seconds_bucket{route=\"a\",le=\"0.25\"} 2\n"
                     "twin_test_latency_seconds_bucket{route=\"a\",le=\"1\"} 3\n"
                     "twin_test_latency_seconds_bucket{route=\"a\",le=\"2.5\"} 3\n"
                     "twin_test_latency_seconds_bucket{route=\"a\",le=\"+Inf\"} 4\n"
                     "twin_test_latency_seconds_sum{route=\"a\"} 4.875\n"
                     "twin_test_latency_seconds_count{route=\"a\"} 4\n"
                     "twin_test_latency_seconds_bucket{le=\"0.1\"} 1\n"
                     "twin_test_latency_seconds_bucket{le=\"0.25\"} 1\n"
                     "twin_test_latency_seconds_bucket{le=\"1\"} 1\n"
                     "twin_test_latency_seconds_bucket{le=\"2.5\"} 1\n"
                     "twin_test_latency_seconds_bucket{le=\"+Inf\"} 1\n"
                     "twin_test_latency_seconds_sum 0.0625\n"
                     "twin_test_latency_seconds_count 1\n");
    tw_metrics_destroy(m);
}

static void metrics_histogram_without_bounds_has_only_inf(void **state)
{
    struct tw_metrics *m = test_registry();
    struct tw_histogram *h = tw_metrics_histogram(m, "twin_test_sizes", NULL, "", NULL, 0);

    (void)state;
    assert_non_null(h);
    tw_histogram_observe(h, 3);
    assert_render(m, "# TYPE twin_test_sizes histogram\n"
                     "twin_test_sizes_bucket{le=\"+Inf\"} 1\n"
                     "twin_test_sizes_sum 3\n"
                     "twin_test_sizes_count 1\n");
    tw_metrics_destroy(m);
}

static void metrics_families_grouped_under_one_header(void **state)
{
    struct tw_metrics *m = test_registry();
    struct tw_counter *r1 =
        tw_metrics_counter(m, "twin_test_rejected_total", "reason=\"oversize\"", "Rejected.");
    struct tw_gauge *g = tw_metrics_gauge(m, "twin_test_up", NULL, "Up.\nback\\slash");
    struct tw_counter *r2 =
        tw_metrics_counter(m, "twin_test_rejected_total", "reason=\"schema\",src=\"a\\\"b\"", "");

    (void)state;
    assert_non_null(r1);
    assert_non_null(g);
    assert_non_null(r2);
    tw_counter_add(r2, 2);
    tw_gauge_set(g, 1);
    assert_render(m, "# HELP twin_test_rejected_total Rejected.\n"
                     "# TYPE twin_test_rejected_total counter\n"
                     "twin_test_rejected_total{reason=\"oversize\"} 0\n"
                     "twin_test_rejected_total{reason=\"schema\",src=\"a\\\"b\"} 2\n"
                     "# HELP twin_test_up Up.\\nback\\\\slash\n"
                     "# TYPE twin_test_up gauge\n"
                     "twin_test_up 1\n");
    tw_metrics_destroy(m);
}

static void metrics_reregistration_returns_same_handle(void **state)
{
    static const double bounds[] = {1, 2};
    static const double other_bounds[] = {1, 3};
    struct tw_metrics *m = test_registry();
    struct tw_counter *c = tw_metrics_counter(m, "twin_test_total", "k=\"v\"", "Help.");
    struct tw_histogram *h = tw_metrics_histogram(m, "twin_test_seconds", NULL, "H.", bounds, 2);

    (void)state;
    assert_ptr_equal(tw_metrics_counter(m, "twin_test_total", "k=\"v\"", "Help."), c);
    assert_ptr_not_equal(tw_metrics_counter(m, "twin_test_total", "k=\"w\"", "Help."), c);
    assert_ptr_equal(tw_metrics_histogram(m, "twin_test_seconds", NULL, "H.", bounds, 2), h);
    /* Same series with other buckets would render an inconsistent histogram. */
    assert_null(tw_metrics_histogram(m, "twin_test_seconds", NULL, "H.", other_bounds, 2));
    tw_metrics_destroy(m);
}

static void metrics_type_clash_returns_null(void **state)
{
    static const double bounds[] = {1};
    struct tw_metrics *m = test_registry();

    (void)state;
    assert_non_null(tw_metrics_counter(m, "twin_test_x", NULL, "X."));
    assert_null(tw_metrics_gauge(m, "twin_test_x", NULL, "X."));
    assert_null(tw_metrics_gauge(m, "twin_test_x", "k=\"other\"", "X."));
    assert_null(tw_metrics_histogram(m, "twin_test_x", NULL, "X.", bounds, 1));
    assert_render(m, "# HELP twin_test_x X.\n# TYPE twin_test_x counter\ntwin_test_x 0\n");
    tw_metrics_destroy(m);
}

static void metrics_invalid_registrations_return_null(void **state)
{
    static const double decreasing[] = {2, 1};
    static const double with_nan[] = {1, NAN};
    double many[TW_HISTOGRAM_MAX_BOUNDS + 1];
    struct tw_metrics *m = test_registry();
    size_t i;

    (void)state;
    for (i = 0; i < TW_HISTOGRAM_MAX_BOUNDS + 1; i++)
        many[i] = (double)i;
    assert_null(tw_metrics_counter(NULL, "twin_test_a", NULL, ""));
    assert_null(tw_metrics_counter(m, NULL, NULL, ""));
    assert_null(tw_metrics_counter(m, "", NULL, ""));
    assert_null(tw_metrics_counter(m, "9twin", NULL, ""));
    assert_null(tw_metrics_counter(m, "twin-test", NULL, ""));
    assert_null(tw_metrics_counter(m, "twin_test_a", "k=v", ""));
    assert_null(tw_metrics_counter(m, "twin_test_a", "k=\"v", ""));
    assert_null(tw_metrics_counter(m, "twin_test_a", "k=\"v\",", ""));
    assert_null(tw_metrics_counter(m, "twin_test_a", "k=\"v\"}", ""));
    assert_null(tw_metrics_counter(m, "twin_test_a", "k=\"a\nb\"", ""));
    assert_null(tw_metrics_histogram(m, "twin_test_h", NULL, "", decreasing, 2));
    assert_null(tw_metrics_histogram(m, "twin_test_h", NULL, "", with_nan, 2));
    assert_null(
        tw_metrics_histogram(m, "twin_test_h", NULL, "", many, TW_HISTOGRAM_MAX_BOUNDS + 1));
    assert_non_null(
        tw_metrics_histogram(m, "twin_test_h", NULL, "", many, TW_HISTOGRAM_MAX_BOUNDS));
    assert_non_null(tw_metrics_counter(m, "twin_test:a_1", "k_1=\"\",k2=\"x\"", ""));
    tw_metrics_destroy(m);
}

static void metrics_full_registry_returns_null(void **state)
{
    struct tw_metrics *m = test_registry();
    struct tw_counter *first = NULL, *c = NULL;
    char labels[32], line[64];
    int n;

    (void)state;
    for (n = 0; n < 100000; n++) {
        snprintf(labels, sizeof(labels), "n=\"%d\"", n);
        c = tw_metrics_counter(m, "twin_test_fill_total", labels, "Fill.");
        if (!c)
            break;
        first = first ? first : c;
    }
    assert_null(c);
    assert_true(n > 0 && n < 100000);
    /* Existing series still resolve, and the last one registered renders. */
    assert_ptr_equal(tw_metrics_counter(m, "twin_test_fill_total", "n=\"0\"", "Fill."), first);
    snprintf(line, sizeof(line), "twin_test_fill_total{n=\"%d\"} 0\n", n - 1);
    assert_true(render_contains(m, line));
    tw_metrics_destroy(m);
}

static void metrics_null_handles_are_noops(void **state)
{
    char *text = NULL;

    (void)state;
    tw_counter_add(NULL, 1);
    tw_gauge_set(NULL, 1);
    tw_gauge_add(NULL, 1);
    tw_histogram_observe(NULL, 1.0);
    assert_int_equal(tw_counter_get(NULL), 0);
    assert_int_equal(tw_gauge_get(NULL), 0);
    assert_int_equal(tw_metrics_render(NULL, &text, NULL), TW_EINVAL);
    assert_int_equal(tw_metrics_create(NULL), TW_EINVAL);
    tw_metrics_destroy(NULL);
}

static void metrics_forked_children_update_parent_values(void **state)
{
    static const double bounds[] = {1, 2};
    struct tw_metrics *m = test_registry();
    struct tw_counter *c = tw_metrics_counter(m, "twin_test_forked_total", NULL, "F.");
    struct tw_gauge *g = tw_metrics_gauge(m, "twin_test_forked", NULL, "F.");
    struct tw_histogram *h =
        tw_metrics_histogram(m, "twin_test_forked_seconds", NULL, "F.", bounds, 2);
    pid_t pids[TEST_CHILDREN];
    int i, status;

    (void)state;
    for (i = 0; i < TEST_CHILDREN; i++) {
        pids[i] = fork();
        assert_true(pids[i] >= 0);
        if (pids[i] == 0) {
            for (int k = 0; k < TEST_ADDS_PER_CHILD; k++)
                tw_counter_add(c, 1);
            tw_gauge_add(g, 10);
            tw_histogram_observe(h, 1.5);
            _exit(0);
        }
    }
    for (i = 0; i < TEST_CHILDREN; i++) {
        assert_int_equal(waitpid(pids[i], &status, 0), pids[i]);
        assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    }
    assert_int_equal(tw_counter_get(c), TEST_CHILDREN * TEST_ADDS_PER_CHILD);
    assert_int_equal(tw_gauge_get(g), TEST_CHILDREN * 10);
    assert_true(render_contains(m, "twin_test_forked_seconds_bucket{le=\"2\"} 4\n"
                                   "twin_test_forked_seconds_bucket{le=\"+Inf\"} 4\n"
                                   "twin_test_forked_seconds_sum 6\n"));
    tw_metrics_destroy(m);
}

struct test_hot {
    struct tw_counter *counter;
    struct tw_gauge *gauge;
    struct tw_histogram *histogram;
};

static void *test_hot_loop(void *arg)
{
    struct test_hot *hot = arg;

    for (int i = 0; i < TEST_ADDS_PER_THR; i++) {
        tw_counter_add(hot->counter, 1);
        tw_gauge_add(hot->gauge, (i & 1) ? 1 : -1);
        if (i % 10 == 0)
            tw_histogram_observe(hot->histogram, 0.5);
    }
    return NULL;
}

static void metrics_concurrent_adds_sum_exactly(void **state)
{
    static const double bounds[] = {1};
    struct tw_metrics *m = test_registry();
    struct test_hot hot = {
        tw_metrics_counter(m, "twin_test_hot_total", NULL, "Hot."),
        tw_metrics_gauge(m, "twin_test_hot", NULL, "Hot."),
        tw_metrics_histogram(m, "twin_test_hot_seconds", NULL, "Hot.", bounds, 1),
    };
    pthread_t threads[TEST_THREADS];
    char expected[256];
    int i;

    (void)state;
    for (i = 0; i < TEST_THREADS; i++)
        assert_int_equal(pthread_create(&threads[i], NULL, test_hot_loop, &hot), 0);
    for (i = 0; i < TEST_THREADS; i++)
        pthread_join(threads[i], NULL);
    assert_int_equal(tw_counter_get(hot.counter), TEST_THREADS * TEST_ADDS_PER_THR);
    assert_int_equal(tw_gauge_get(hot.gauge), 0);
    /* 0.5 and its multiples up to 2^52 are exact, so a lost CAS update would show. */
    snprintf(expected, sizeof(expected),
             "twin_test_hot_seconds_sum %d\ntwin_test_hot_seconds_count %d\n",
             TEST_THREADS * TEST_ADDS_PER_THR / 10 / 2, TEST_THREADS * TEST_ADDS_PER_THR / 10);
    assert_true(render_contains(m, expected));
    tw_metrics_destroy(m);
}

/* HTTP helpers: plain blocking sockets with a receive timeout so a broken server fails the
 * test instead of hanging it. */
static int test_connect(int port)
{
    struct sockaddr_in sa = {0};
    struct timeval tv = {5, 0};
    int fd = socket(AF_INET, SOCK_STREAM, 0);

    assert_true(fd >= 0);
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)), 0);
    assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    return fd;
}

/* Reads until the server closes; returns a malloc'ed NUL-terminated response. */
static char *test_read_all(int fd)
{
    char *buf = calloc(1, TEST_RESPONSE_MAX + 1);
    size_t len = 0;
    ssize_t n;

    assert_non_null(buf);
    while (len < TEST_RESPONSE_MAX && (n = recv(fd, buf + len, TEST_RESPONSE_MAX - len, 0)) > 0)
        len += (size_t)n;
    assert_true(n == 0);
    close(fd);
    return buf;
}

static char *test_request(int port, const char *request)
{
    int fd = test_connect(port);

    assert_int_equal(send(fd, request, strlen(request), MSG_NOSIGNAL), (ssize_t)strlen(request));
    return test_read_all(fd);
}

/* Checks the status line and the framing every response must carry; returns the body. */
static const char *assert_response(const char *resp, const char *status_line)
{
    const char *body = strstr(resp, "\r\n\r\n");
    const char *cl = strstr(resp, "\r\nContent-Length: ");

    assert_non_null(body);
    assert_non_null(cl);
    assert_true(strncmp(resp, status_line, strlen(status_line)) == 0);
    assert_non_null(strstr(resp, "\r\nConnection: close\r\n"));
    body += 4;
    assert_int_equal(strtoul(cl + 18, NULL, 10), strlen(body));
    return body;
}

static bool test_health(void *ctx, char *detail, size_t detail_len)
{
    bool healthy = __atomic_load_n((const bool *)ctx, __ATOMIC_ACQUIRE);

    if (!healthy)
        snprintf(detail, detail_len, "redis unreachable");
    return healthy;
}

struct test_server {
    struct tw_metrics *m;
    struct tw_http *http;
    bool healthy;
    int port;
};

static int test_server_setup(void **state)
{
    struct test_server *s = calloc(1, sizeof(*s));

    assert_non_null(s);
    s->m = test_registry();
    s->healthy = true;
    tw_counter_add(tw_metrics_counter(s->m, "twin_test_served_total", NULL, "Served."), 5);
    assert_int_equal(tw_http_start(s->m, "127.0.0.1", -1, test_health, &s->healthy, &s->http),
                     TW_OK);
    assert_non_null(s->http);
    s->port = tw_http_port(s->http);
    assert_true(s->port > 0);
    *state = s;
    return 0;
}

static int test_server_teardown(void **state)
{
    struct test_server *s = *state;

    tw_http_stop(s->http);
    tw_metrics_destroy(s->m);
    free(s);
    return 0;
}

static void http_serves_metrics(void **state)
{
    struct test_server *s = *state;
    char *resp = test_request(s->port, "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
    const char *body = assert_response(resp, "HTTP/1.1 200 OK\r\n");
    char length[64];

    assert_non_null(strstr(resp, "\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\n"));
    assert_string_equal(body, TEST_SERVED_BODY);
    free(resp);
    /* A query string and HEAD are accepted; HEAD has the length but no body. */
    resp = test_request(s->port, "GET /metrics?x=1 HTTP/1.0\n\n");
    assert_response(resp, "HTTP/1.1 200 OK\r\n");
    free(resp);
    resp = test_request(s->port, "HEAD /metrics HTTP/1.1\r\n\r\n");
    assert_true(strncmp(resp, "HTTP/1.1 200 OK\r\n", 17) == 0);
    snprintf(length, sizeof(length), "\r\nContent-Length: %zu\r\n", strlen(TEST_SERVED_BODY));
    assert_non_null(strstr(resp, length));
    assert_string_equal(strstr(resp, "\r\n\r\n"), "\r\n\r\n");
    free(resp);
}

static void http_healthz_reports_health(void **state)
{
    struct test_server *s = *state;
    char *resp = test_request(s->port, "GET /healthz HTTP/1.1\r\n\r\n");

    assert_string_equal(assert_response(resp, "HTTP/1.1 200 OK\r\n"), "ok\n");
    free(resp);
    __atomic_store_n(&s->healthy, false, __ATOMIC_RELEASE);
    resp = test_request(s->port, "GET /healthz HTTP/1.1\r\n\r\n");
    assert_string_equal(assert_response(resp, "HTTP/1.1 503 Service Unavailable\r\n"),
                        "redis unreachable\n");
    free(resp);
}

static void http_rejects_bad_requests(void **state)
{
    struct test_server *s = *state;
    char *big = malloc(9001);
    char *resp;

    resp = test_request(s->port, "GET /nope HTTP/1.1\r\n\r\n");
    assert_response(resp, "HTTP/1.1 404 Not Found\r\n");
    free(resp);
    resp = test_request(s->port, "POST /metrics HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc");
    assert_response(resp, "HTTP/1.1 405 Method Not Allowed\r\n");
    assert_non_null(strstr(resp, "\r\nAllow: GET, HEAD\r\n"));
    free(resp);
    resp = test_request(s->port, "garbage\r\n\r\n");
    assert_response(resp, "HTTP/1.1 400 Bad Request\r\n");
    free(resp);
    resp = test_request(s->port, "GET /metrics HTTP/2.0\r\n\r\n");
    assert_response(resp, "HTTP/1.1 400 Bad Request\r\n");
    free(resp);
    assert_non_null(big);
    memset(big, 'a', 9000);
    big[9000] = '\0';
    resp = test_request(s->port, big);
    assert_response(resp, "HTTP/1.1 431 Request Header Fields Too Large\r\n");
    free(resp);
    free(big);
}

static void http_silent_client_does_not_block_next(void **state)
{
    struct test_server *s = *state;
    int silent = test_connect(s->port);
    int64_t start_ms = tw_mono_ms();
    char *resp = test_request(s->port, "GET /healthz HTTP/1.1\r\n\r\n");

    /* Served once the silent connection's read timeout (2 s) expires. */
    assert_string_equal(assert_response(resp, "HTTP/1.1 200 OK\r\n"), "ok\n");
    assert_true(tw_mono_ms() - start_ms < 4000);
    free(resp);
    resp = test_read_all(silent);
    assert_response(resp, "HTTP/1.1 408 Request Timeout\r\n");
    free(resp);
}

static void http_stop_is_prompt_with_client_connected(void **state)
{
    struct test_server *s = *state;
    int silent = test_connect(s->port);
    int64_t start_ms;

    tw_sleep_ms(100, NULL); /* let the thread accept it and wait for its request */
    start_ms = tw_mono_ms();
    tw_http_stop(s->http);
    s->http = NULL;
    assert_true(tw_mono_ms() - start_ms < 500);
    close(silent);
}

static void health_links_names_the_first_link_down(void **state)
{
    (void)state;
    char detail[32];
    assert_true(tw_health_links(true, true, detail, sizeof(detail)));
    assert_string_equal(detail, "ok");
    assert_false(tw_health_links(false, false, detail, sizeof(detail)));
    assert_string_equal(detail, "mqtt disconnected");
    assert_false(tw_health_links(true, false, detail, sizeof(detail)));
    assert_string_equal(detail, "redis unreachable");
}

static void http_port_zero_is_off(void **state)
{
    struct tw_metrics *m = test_registry();
    struct tw_http *http = (struct tw_http *)1;

    (void)state;
    assert_int_equal(tw_http_start(m, "127.0.0.1", 0, NULL, NULL, &http), TW_OK);
    assert_null(http);
    assert_int_equal(tw_http_port(NULL), 0);
    tw_http_stop(NULL);
    assert_int_equal(tw_http_start(m, "127.0.0.1", 70000, NULL, NULL, &http), TW_EINVAL);
    assert_int_equal(tw_http_start(m, "not-an-ip", -1, NULL, NULL, &http), TW_EINVAL);
    tw_metrics_destroy(m);
}

static void http_serves_on_ipv6_loopback(void **state)
{
    struct tw_metrics *m = test_registry();
    struct sockaddr_in6 sa = {0};
    struct tw_http *http = NULL;
    struct timeval tv = {5, 0};
    int fd;
    char *resp;

    (void)state;
    if (tw_http_start(m, "[::1]", -1, NULL, NULL, &http) != TW_OK) {
        tw_metrics_destroy(m);
        skip(); /* no IPv6 in this sandbox */
    }
    fd = socket(AF_INET6, SOCK_STREAM, 0);
    sa.sin6_family = AF_INET6;
    sa.sin6_port = htons((uint16_t)tw_http_port(http));
    sa.sin6_addr = in6addr_loopback;
    assert_int_equal(setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)), 0);
    assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    assert_int_equal(send(fd, "GET /healthz HTTP/1.1\r\n\r\n", 25, MSG_NOSIGNAL), 25);
    resp = test_read_all(fd);
    assert_string_equal(assert_response(resp, "HTTP/1.1 200 OK\r\n"), "ok\n");
    free(resp);
    tw_http_stop(http);
    tw_metrics_destroy(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(metrics_counter_and_gauge_render_exactly),
        cmocka_unit_test(metrics_histogram_buckets_are_cumulative),
        cmocka_unit_test(metrics_histogram_without_bounds_has_only_inf),
        cmocka_unit_test(metrics_families_grouped_under_one_header),
        cmocka_unit_test(metrics_reregistration_returns_same_handle),
        cmocka_unit_test(metrics_type_clash_returns_null),
        cmocka_unit_test(metrics_invalid_registrations_return_null),
        cmocka_unit_test(metrics_full_registry_returns_null),
        cmocka_unit_test(metrics_null_handles_are_noops),
        cmocka_unit_test(metrics_forked_children_update_parent_values),
        cmocka_unit_test(metrics_concurrent_adds_sum_exactly),
        cmocka_unit_test_setup_teardown(http_serves_metrics, test_server_setup,
                                        test_server_teardown),
        cmocka_unit_test_setup_teardown(http_healthz_reports_health, test_server_setup,
                                        test_server_teardown),
        cmocka_unit_test_setup_teardown(http_rejects_bad_requests, test_server_setup,
                                        test_server_teardown),
        cmocka_unit_test_setup_teardown(http_silent_client_does_not_block_next, test_server_setup,
                                        test_server_teardown),
        cmocka_unit_test_setup_teardown(http_stop_is_prompt_with_client_connected,
                                        test_server_setup, test_server_teardown),
        cmocka_unit_test(health_links_names_the_first_link_down),
        cmocka_unit_test(http_port_zero_is_off),
        cmocka_unit_test(http_serves_on_ipv6_loopback),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
