/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests for the broker and Redis URL parsers and the password mask. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "twin/err.h"
#include "twin/url.h"

static void parse_mqtt_ok(const char *text, const char *uri, const char *host, int port, bool tls)
{
    struct tw_mqtt_url u;
    char err[256] = "";

    assert_int_equal(tw_url_parse_mqtt(text, &u, err, sizeof(err)), 0);
    assert_string_equal(u.server_uri, uri);
    assert_string_equal(u.host, host);
    assert_int_equal(u.port, port);
    assert_int_equal(u.tls, tls);
}

/* Returns the reason so a test can check what it says. */
static const char *parse_mqtt_fails(const char *text, char *err, size_t errlen)
{
    struct tw_mqtt_url u;

    err[0] = '\0';
    assert_int_equal(tw_url_parse_mqtt(text, &u, err, errlen), TW_EINVAL);
    assert_true(err[0] != '\0');
    assert_null(strchr(err, '\n'));
    return err;
}

static const char *parse_redis_fails(const char *text, char *err, size_t errlen)
{
    struct tw_redis_url u;

    err[0] = '\0';
    assert_int_equal(tw_url_parse_redis(text, &u, err, errlen), TW_EINVAL);
    assert_true(err[0] != '\0');
    assert_null(strchr(err, '\n'));
    assert_string_equal(u.password, "");
    return err;
}

static void mqtt_url_maps_to_paho_tcp_uri(void **state)
{
    (void)state;
    parse_mqtt_ok("mqtt://broker.local:1884", "tcp://broker.local:1884", "broker.local", 1884,
                  false);
    parse_mqtt_ok("tcp://10.0.0.1:1885", "tcp://10.0.0.1:1885", "10.0.0.1", 1885, false);
}

static void mqtts_url_maps_to_paho_ssl_uri(void **state)
{
    (void)state;
    parse_mqtt_ok("mqtts://broker:9883", "ssl://broker:9883", "broker", 9883, true);
    parse_mqtt_ok("ssl://broker:8884", "ssl://broker:8884", "broker", 8884, true);
}

static void mqtt_url_without_port_uses_1883_or_8883(void **state)
{
    (void)state;
    parse_mqtt_ok("mqtt://127.0.0.1", "tcp://127.0.0.1:1883", "127.0.0.1", 1883, false);
    parse_mqtt_ok("mqtts://broker", "ssl://broker:8883", "broker", 8883, true);
    parse_mqtt_ok("mqtt://broker/", "tcp://broker:1883", "broker", 1883, false);
}

static void mqtt_url_scheme_is_case_insensitive(void **state)
{
    (void)state;
    parse_mqtt_ok("MQTT://broker:1", "tcp://broker:1", "broker", 1, false);
}

static void mqtt_url_keeps_ipv6_in_brackets(void **state)
{
    (void)state;
    parse_mqtt_ok("mqtt://[::1]:1883", "tcp://[::1]:1883", "::1", 1883, false);
    parse_mqtt_ok("mqtts://[2001:db8::7]", "ssl://[2001:db8::7]:8883", "2001:db8::7", 8883, true);
}

static void mqtt_url_rejects_bad_scheme_and_missing_scheme(void **state)
{
    char err[256];
    (void)state;
    assert_non_null(strstr(parse_mqtt_fails("http://broker:1883", err, sizeof(err)), "'http'"));
    assert_non_null(strstr(parse_mqtt_fails("broker:1883", err, sizeof(err)), "no scheme"));
    assert_non_null(strstr(parse_mqtt_fails("", err, sizeof(err)), "empty"));
    assert_non_null(strstr(parse_mqtt_fails(NULL, err, sizeof(err)), "empty"));
}

static void mqtt_url_rejects_bad_ports(void **state)
{
    char err[256];
    (void)state;
    assert_non_null(strstr(parse_mqtt_fails("mqtt://h:0", err, sizeof(err)), "port"));
    assert_non_null(strstr(parse_mqtt_fails("mqtt://h:65536", err, sizeof(err)), "port"));
    assert_non_null(strstr(parse_mqtt_fails("mqtt://h:", err, sizeof(err)), "port"));
    assert_non_null(strstr(parse_mqtt_fails("mqtt://h:12x", err, sizeof(err)), "port"));
    assert_non_null(strstr(parse_mqtt_fails("mqtt://h:-1", err, sizeof(err)), "port"));
    assert_non_null(strstr(parse_mqtt_fails("mqtt://[::1]:", err, sizeof(err)), "port"));
}

static void mqtt_url_rejects_bad_hosts(void **state)
{
    char err[256];
    char long_url[400];
    (void)state;
    assert_non_null(strstr(parse_mqtt_fails("mqtt://", err, sizeof(err)), "no host"));
    assert_non_null(strstr(parse_mqtt_fails("mqtt://:1883", err, sizeof(err)), "no host"));
    assert_non_null(strstr(parse_mqtt_fails("mqtt://::1:1883", err, sizeof(err)), "brackets"));
    assert_non_null(strstr(parse_mqtt_fails("mqtt://[::1", err, sizeof(err)), "']'"));
    parse_mqtt_fails("mqtt://[::1]x", err, sizeof(err));
    parse_mqtt_fails("mqtt://[zz]:1", err, sizeof(err));
    parse_mqtt_fails("mqtt://bro ker", err, sizeof(err));
    parse_mqtt_fails("mqtt://h/topic", err, sizeof(err));
    memset(long_url, 'a', sizeof(long_url) - 1);
    memcpy(long_url, "mqtt://", 7);
    long_url[sizeof(long_url) - 1] = '\0';
    assert_non_null(strstr(parse_mqtt_fails(long_url, err, sizeof(err)), "longer"));
}

static void mqtt_url_refuses_credentials_without_echoing_them(void **state)
{
    char err[256];
    (void)state;
    parse_mqtt_fails("mqtt://bob:hunter2@broker:1883", err, sizeof(err));
    assert_non_null(strstr(err, "TWIN_MQTT_PASSWORD"));
    assert_null(strstr(err, "hunter2"));
}

static void url_error_is_truncated_safely_to_small_buffer(void **state)
{
    char err[8];
    (void)state;
    parse_mqtt_fails("http://x", err, sizeof(err));
    assert_int_equal(strlen(err), sizeof(err) - 1);
}

static void redis_url_defaults_port_6379_and_db_0(void **state)
{
    struct tw_redis_url u;
    char err[256];
    (void)state;
    assert_int_equal(tw_url_parse_redis("redis://127.0.0.1", &u, err, sizeof(err)), 0);
    assert_string_equal(u.host, "127.0.0.1");
    assert_int_equal(u.port, 6379);
    assert_int_equal(u.db, 0);
    assert_string_equal(u.user, "");
    assert_string_equal(u.password, "");
    assert_int_equal(tw_url_parse_redis("redis://h:6380/", &u, err, sizeof(err)), 0);
    assert_int_equal(u.port, 6380);
    assert_int_equal(u.db, 0);
}

static void redis_url_parses_user_password_port_and_db(void **state)
{
    struct tw_redis_url u;
    char err[256];
    (void)state;
    assert_int_equal(
        tw_url_parse_redis("redis://ingest:s3cret@redis.local:6380/3", &u, err, sizeof(err)), 0);
    assert_string_equal(u.user, "ingest");
    assert_string_equal(u.password, "s3cret");
    assert_string_equal(u.host, "redis.local");
    assert_int_equal(u.port, 6380);
    assert_int_equal(u.db, 3);
}

static void redis_url_accepts_password_without_user(void **state)
{
    struct tw_redis_url u;
    char err[256];
    (void)state;
    assert_int_equal(tw_url_parse_redis("redis://:pw@h", &u, err, sizeof(err)), 0);
    assert_string_equal(u.user, "");
    assert_string_equal(u.password, "pw");
}

static void redis_url_percent_decodes_user_and_password(void **state)
{
    struct tw_redis_url u;
    char err[256];
    (void)state;
    assert_int_equal(
        tw_url_parse_redis("redis://us%65r:p%40ss%3Aw%2Fd@h:1/2", &u, err, sizeof(err)), 0);
    assert_string_equal(u.user, "user");
    assert_string_equal(u.password, "p@ss:w/d");
    assert_string_equal(u.host, "h");
    assert_int_equal(u.db, 2);
}

static void redis_url_password_may_hold_raw_at_and_slash(void **state)
{
    struct tw_redis_url u;
    char err[256];
    (void)state;
    assert_int_equal(tw_url_parse_redis("redis://u:a@b/c:d@h:7/1", &u, err, sizeof(err)), 0);
    assert_string_equal(u.password, "a@b/c:d");
    assert_string_equal(u.host, "h");
    assert_int_equal(u.port, 7);
    assert_int_equal(u.db, 1);
}

static void redis_url_accepts_ipv6_host(void **state)
{
    struct tw_redis_url u;
    char err[256];
    (void)state;
    assert_int_equal(tw_url_parse_redis("redis://[::1]:6390/4", &u, err, sizeof(err)), 0);
    assert_string_equal(u.host, "::1");
    assert_int_equal(u.port, 6390);
    assert_int_equal(u.db, 4);
}

static void redis_url_accepts_db_up_to_int_max(void **state)
{
    struct tw_redis_url u;
    char err[256];
    (void)state;
    assert_int_equal(tw_url_parse_redis("redis://h/2147483647", &u, err, sizeof(err)), 0);
    assert_int_equal(u.db, 2147483647);
}

static void redis_url_rejects_bad_db(void **state)
{
    char err[256];
    (void)state;
    assert_non_null(strstr(parse_redis_fails("redis://h/x", err, sizeof(err)), "database"));
    parse_redis_fails("redis://h/1x", err, sizeof(err));
    parse_redis_fails("redis://h/-1", err, sizeof(err));
    parse_redis_fails("redis://h/2147483648", err, sizeof(err));
    parse_redis_fails("redis://h/99999999999999999999999", err, sizeof(err));
    parse_redis_fails("redis://h/1/2", err, sizeof(err));
    parse_redis_fails("redis://h/0?timeout=1", err, sizeof(err));
}

static void redis_url_rejects_rediss_with_clear_reason(void **state)
{
    char err[256];
    (void)state;
    parse_redis_fails("rediss://h:6379", err, sizeof(err));
    assert_non_null(strstr(err, "rediss://"));
    assert_non_null(strstr(err, "not supported"));
}

static void redis_url_rejects_other_schemes_and_bad_hosts(void **state)
{
    char err[256];
    (void)state;
    assert_non_null(strstr(parse_redis_fails("mqtt://h", err, sizeof(err)), "'mqtt'"));
    parse_redis_fails("h:6379", err, sizeof(err));
    parse_redis_fails("redis://", err, sizeof(err));
    parse_redis_fails("redis://h:0", err, sizeof(err));
    parse_redis_fails("redis://h:70000", err, sizeof(err));
    parse_redis_fails("redis://h h", err, sizeof(err));
}

static void redis_cluster_url_lists_its_nodes(void **state)
{
    (void)state;
    struct tw_redis_url u;
    char err[256] = "";

    assert_int_equal(tw_url_parse_redis("redis+cluster://twin-ingest:s3cret@h1:7000,h2,[::1]:7002",
                                        &u, err, sizeof(err)),
                     0);
    assert_true(u.cluster);
    assert_int_equal(u.n_seeds, 3);
    assert_string_equal(u.seeds[0].host, "h1");
    assert_int_equal(u.seeds[0].port, 7000);
    assert_string_equal(u.seeds[1].host, "h2");
    assert_int_equal(u.seeds[1].port, 6379);
    assert_string_equal(u.seeds[2].host, "::1");
    assert_int_equal(u.seeds[2].port, 7002);
    assert_string_equal(u.host, "h1"); /* the first node */
    assert_string_equal(u.user, "twin-ingest");
    assert_string_equal(u.password, "s3cret");
    assert_int_equal(u.db, 0);
    assert_int_equal(tw_url_parse_redis("redis://h:1", &u, err, sizeof(err)), 0);
    assert_false(u.cluster);

    const char *bad[][2] = {
        {"redis+cluster://h1:7000/1", "database 0 only"},
        {"redis+cluster://h1:7000,,h2", "no host"},
        {"redis+cluster://h1:7000,", "no host"},
        {"redis+cluster://h1:0", "port '0'"},
        {"redis+cluster://a,b,c,d,e,f,g,h,i,j,k,l,m,n,o,p,q", "at most 16 nodes"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        err[0] = '\0';
        assert_int_equal(tw_url_parse_redis(bad[i][0], &u, err, sizeof(err)), TW_EINVAL);
        if (!strstr(err, bad[i][1]))
            fail_msg("%s: error '%s' lacks '%s'", bad[i][0], err, bad[i][1]);
    }
}

static void redis_url_errors_never_echo_the_password(void **state)
{
    static const char *const bad[] = {
        "redis://u:topsecret@h:0",  "redis://u:topsecret@h/x", "redis://u:topsecret%zz@h",
        "redis://u:topsecret@",     "rediss://u:topsecret@h",  "topsecret://h",
        "redis:topsecret@h",        "u:topsecret://h",         "redis://u:topsecret@[::1",
        "redis://u:topsecret%00@h", "redis://topsecret@h",     "redis://u:topsecret@bad host",
    };
    char err[256];
    (void)state;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        parse_redis_fails(bad[i], err, sizeof(err));
        if (strstr(bad[i], "topsecret://") != bad[i])
            assert_null(strstr(err, "topsecret"));
    }
}

static void redis_url_rejects_bad_credentials(void **state)
{
    char err[256];
    char long_pw[400];
    (void)state;
    assert_non_null(strstr(parse_redis_fails("redis://u:p%4@h", err, sizeof(err)), "percent"));
    assert_non_null(strstr(parse_redis_fails("redis://u:p%00@h", err, sizeof(err)), "percent"));
    assert_non_null(strstr(parse_redis_fails("redis://u:@h", err, sizeof(err)), "empty password"));
    assert_non_null(strstr(parse_redis_fails("redis://justone@h", err, sizeof(err)), "user:"));
    snprintf(long_pw, sizeof(long_pw), "redis://u:%0300d@h", 0);
    assert_non_null(strstr(parse_redis_fails(long_pw, err, sizeof(err)), "longer"));
}

static void mask_replaces_password_and_keeps_user(void **state)
{
    char out[256];
    (void)state;
    tw_url_mask("redis://ingest:s3cret@h:6379/2", out, sizeof(out));
    assert_string_equal(out, "redis://ingest:***@h:6379/2");
    tw_url_mask("redis://:s3cret@h", out, sizeof(out));
    assert_string_equal(out, "redis://:***@h");
    tw_url_mask("redis://u:a@b/c@h/1", out, sizeof(out));
    assert_string_equal(out, "redis://u:***@h/1");
}

static void mask_hides_userinfo_without_colon_entirely(void **state)
{
    char out[256];
    (void)state;
    tw_url_mask("redis://s3cret@h", out, sizeof(out));
    assert_string_equal(out, "redis://***@h");
}

static void mask_leaves_urls_without_credentials_unchanged(void **state)
{
    char out[256];
    (void)state;
    tw_url_mask("mqtt://[::1]:1883", out, sizeof(out));
    assert_string_equal(out, "mqtt://[::1]:1883");
    tw_url_mask(NULL, out, sizeof(out));
    assert_string_equal(out, "");
}

static void mask_truncates_to_buffer_without_leaking(void **state)
{
    char out[12];
    (void)state;
    tw_url_mask("redis://user:s3cret@host", out, sizeof(out));
    assert_string_equal(out, "redis://use");
    tw_url_mask("redis://user:s3cret@host", out, 1);
    assert_string_equal(out, "");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(mqtt_url_maps_to_paho_tcp_uri),
        cmocka_unit_test(mqtts_url_maps_to_paho_ssl_uri),
        cmocka_unit_test(mqtt_url_without_port_uses_1883_or_8883),
        cmocka_unit_test(mqtt_url_scheme_is_case_insensitive),
        cmocka_unit_test(mqtt_url_keeps_ipv6_in_brackets),
        cmocka_unit_test(mqtt_url_rejects_bad_scheme_and_missing_scheme),
        cmocka_unit_test(mqtt_url_rejects_bad_ports),
        cmocka_unit_test(mqtt_url_rejects_bad_hosts),
        cmocka_unit_test(mqtt_url_refuses_credentials_without_echoing_them),
        cmocka_unit_test(url_error_is_truncated_safely_to_small_buffer),
        cmocka_unit_test(redis_url_defaults_port_6379_and_db_0),
        cmocka_unit_test(redis_cluster_url_lists_its_nodes),
        cmocka_unit_test(redis_url_parses_user_password_port_and_db),
        cmocka_unit_test(redis_url_accepts_password_without_user),
        cmocka_unit_test(redis_url_percent_decodes_user_and_password),
        cmocka_unit_test(redis_url_password_may_hold_raw_at_and_slash),
        cmocka_unit_test(redis_url_accepts_ipv6_host),
        cmocka_unit_test(redis_url_accepts_db_up_to_int_max),
        cmocka_unit_test(redis_url_rejects_bad_db),
        cmocka_unit_test(redis_url_rejects_rediss_with_clear_reason),
        cmocka_unit_test(redis_url_rejects_other_schemes_and_bad_hosts),
        cmocka_unit_test(redis_url_errors_never_echo_the_password),
        cmocka_unit_test(redis_url_rejects_bad_credentials),
        cmocka_unit_test(mask_replaces_password_and_keeps_user),
        cmocka_unit_test(mask_hides_userinfo_without_colon_entirely),
        cmocka_unit_test(mask_leaves_urls_without_credentials_unchanged),
        cmocka_unit_test(mask_truncates_to_buffer_without_leaking),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
