/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests for option tables: precedence, flag syntax, every error path, help and checks. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "twin/config.h"
#include "twin/err.h"

#define CAPTURE_MAX 16384

struct test_config {
    struct tw_common_config common;
    int64_t max_samples;
    bool dry_run;
    const char *label;
    const char *api_token;
};

static int check_no_spaces(const char *text, char *err, size_t errlen)
{
    if (!strchr(text, ' '))
        return 0;
    snprintf(err, errlen, "must not contain spaces");
    return TW_EINVAL;
}

static const struct tw_option test_options[] = {
    TW_COMMON_OPTIONS(struct test_config, common),
    {"max-samples", "TWIN_INGEST_MAX_SAMPLES", "256", "samples per message", TW_OPT_INT,
     offsetof(struct test_config, max_samples), 1, 10000, 0, NULL},
    {"dry-run", "TWIN_TEST_DRY_RUN", "false", "validate but do not write", TW_OPT_BOOL,
     offsetof(struct test_config, dry_run), 0, 0, 0, NULL},
    {"label", "TWIN_TEST_LABEL", NULL, "free text label", TW_OPT_STR,
     offsetof(struct test_config, label), 0, 0, 0, check_no_spaces},
    {NULL, "TWIN_TEST_API_TOKEN", NULL, "API token (environment only)", TW_OPT_STR,
     offsetof(struct test_config, api_token), 0, 0, TW_OPT_SECRET, NULL},
};

static const struct tw_program test_program = {"twin-test", "Exercises the option table code.",
                                               test_options,
                                               sizeof(test_options) / sizeof(test_options[0])};

/* Clears every variable of the table so each test starts from the defaults. */
static int clear_env(void **state)
{
    (void)state;
    for (size_t i = 0; i < test_program.n_options; i++)
        unsetenv(test_options[i].env);
    return 0;
}

/* A NULL-terminated argv: "twin-test" and the arguments; ARGV(NULL) has none. */
#define ARGV(...) ((char *[]){"twin-test", __VA_ARGS__, NULL})

static int load(char **argv, struct test_config *cfg, enum tw_config_action *action, char *err,
                size_t errlen)
{
    int argc = 0;

    while (argv[argc])
        argc++;
    memset(cfg, 0, sizeof(*cfg));
    return tw_config_load(&test_program, argc, argv, cfg, &cfg->common, action, err, errlen);
}

static int load_none(struct test_config *cfg, char *err, size_t errlen)
{
    enum tw_config_action action;
    return load(ARGV(NULL), cfg, &action, err, errlen);
}

/* Loads argv, expects TW_EINVAL and a one-line reason containing `want`. */
static void load_fails_with(char **argv, const char *want)
{
    struct test_config cfg;
    enum tw_config_action action;
    char err[512] = "";

    assert_int_equal(load(argv, &cfg, &action, err, sizeof(err)), TW_EINVAL);
    assert_null(strchr(err, '\n'));
    if (!strstr(err, want))
        fail_msg("reason \"%s\" does not contain \"%s\"", err, want);
}

/* Runs tw_config_load with fd 1 redirected, returning what it printed. */
static int load_capturing_stdout(char **argv, enum tw_config_action *action, char *out,
                                 size_t outlen)
{
    struct test_config cfg;
    char err[512];
    FILE *tmp = tmpfile();
    assert_non_null(tmp);
    int saved = dup(STDOUT_FILENO);
    fflush(stdout);
    dup2(fileno(tmp), STDOUT_FILENO);
    int rc = load(argv, &cfg, action, err, sizeof(err));
    fflush(stdout);
    dup2(saved, STDOUT_FILENO);
    close(saved);
    rewind(tmp);
    size_t n = fread(out, 1, outlen - 1, tmp);
    out[n] = '\0';
    fclose(tmp);
    return rc;
}

static void defaults_apply_when_nothing_is_set(void **state)
{
    struct test_config cfg;
    char err[512];
    (void)state;
    assert_int_equal(load_none(&cfg, err, sizeof(err)), 0);
    assert_string_equal(cfg.common.mqtt_url, "mqtt://127.0.0.1:1883");
    assert_string_equal(cfg.common.redis_url, "redis://127.0.0.1:6379");
    assert_string_equal(cfg.common.topic_root, "twin/v1");
    assert_string_equal(cfg.common.log_level_text, "info");
    assert_int_equal(cfg.common.log_level, TW_LOG_INFO);
    assert_int_equal(cfg.common.metrics_port, 0);
    assert_int_equal(cfg.common.mqtt_keepalive_s, 10);
    assert_int_equal(cfg.common.mqtt_session_expiry_s, 604800);
    assert_null(cfg.common.mqtt_user);
    assert_null(cfg.common.mqtt_password);
    assert_int_equal(cfg.max_samples, 256);
    assert_false(cfg.dry_run);
    assert_null(cfg.label);
}

static void env_overrides_default(void **state)
{
    struct test_config cfg;
    char err[512];
    (void)state;
    setenv("TWIN_INGEST_MAX_SAMPLES", "17", 1);
    setenv("TWIN_TOPIC_ROOT", "plant/a", 1);
    setenv("TWIN_TEST_DRY_RUN", "yes", 1);
    assert_int_equal(load_none(&cfg, err, sizeof(err)), 0);
    assert_int_equal(cfg.max_samples, 17);
    assert_string_equal(cfg.common.topic_root, "plant/a");
    assert_true(cfg.dry_run);
}

static void flag_overrides_env_and_default(void **state)
{
    struct test_config cfg;
    enum tw_config_action action;
    char err[512];
    char **argv = ARGV("--max-samples", "99", "--topic-root=plant/b");
    (void)state;
    setenv("TWIN_INGEST_MAX_SAMPLES", "17", 1);
    setenv("TWIN_TOPIC_ROOT", "plant/a", 1);
    assert_int_equal(load(argv, &cfg, &action, err, sizeof(err)), 0);
    assert_int_equal(action, TW_CONFIG_RUN);
    assert_int_equal(cfg.max_samples, 99);
    assert_string_equal(cfg.common.topic_root, "plant/b");
}

static void bad_env_overridden_by_flag_is_not_an_error(void **state)
{
    struct test_config cfg;
    enum tw_config_action action;
    char err[512];
    char **argv = ARGV("--max-samples=5");
    (void)state;
    setenv("TWIN_INGEST_MAX_SAMPLES", "abc", 1);
    assert_int_equal(load(argv, &cfg, &action, err, sizeof(err)), 0);
    assert_int_equal(cfg.max_samples, 5);
}

static void last_flag_wins_when_repeated(void **state)
{
    struct test_config cfg;
    enum tw_config_action action;
    char err[512];
    char **argv = ARGV("--max-samples=5", "--max-samples", "6");
    (void)state;
    assert_int_equal(load(argv, &cfg, &action, err, sizeof(err)), 0);
    assert_int_equal(cfg.max_samples, 6);
}

static void empty_env_var_counts_as_unset(void **state)
{
    struct test_config cfg;
    char err[512];
    (void)state;
    setenv("TWIN_INGEST_MAX_SAMPLES", "", 1);
    setenv("TWIN_TOPIC_ROOT", "", 1);
    setenv("TWIN_INSTANCE", "", 1);
    assert_int_equal(load_none(&cfg, err, sizeof(err)), 0);
    assert_int_equal(cfg.max_samples, 256);
    assert_string_equal(cfg.common.topic_root, "twin/v1");
    assert_ptr_equal(cfg.common.instance, cfg.common.instance_buf);
}

static void bare_bool_flag_means_true(void **state)
{
    struct test_config cfg;
    enum tw_config_action action;
    char err[512];
    char **argv = ARGV("--dry-run", "--max-samples", "3");
    (void)state;
    assert_int_equal(load(argv, &cfg, &action, err, sizeof(err)), 0);
    assert_true(cfg.dry_run);
    assert_int_equal(cfg.max_samples, 3);
}

static void bool_flag_takes_explicit_value(void **state)
{
    struct test_config cfg;
    enum tw_config_action action;
    char err[512];
    char **eq = ARGV("--dry-run=false");
    char **sep = ARGV("--dry-run", "off");
    char **upper = ARGV("--dry-run=TRUE");
    (void)state;
    setenv("TWIN_TEST_DRY_RUN", "true", 1);
    assert_int_equal(load(eq, &cfg, &action, err, sizeof(err)), 0);
    assert_false(cfg.dry_run);
    assert_int_equal(load(sep, &cfg, &action, err, sizeof(err)), 0);
    assert_false(cfg.dry_run);
    unsetenv("TWIN_TEST_DRY_RUN");
    assert_int_equal(load(upper, &cfg, &action, err, sizeof(err)), 0);
    assert_true(cfg.dry_run);
}

static void int_flag_rejects_non_numeric_text(void **state)
{
    (void)state;
    load_fails_with(ARGV("--max-samples", "abc"), "--max-samples: \"abc\" is not an integer");
    load_fails_with(ARGV("--max-samples=12abc"), "--max-samples: \"12abc\" is not an integer");
    load_fails_with(ARGV("--max-samples="), "--max-samples: \"\" is not an integer");
    load_fails_with(ARGV("--max-samples= 5"), "is not an integer");
    load_fails_with(ARGV("--max-samples=0x10"), "is not an integer");
    load_fails_with(ARGV("--max-samples=1.5"), "is not an integer");
    load_fails_with(ARGV("--max-samples=-"), "is not an integer");
}

static void int_env_below_minimum_is_rejected(void **state)
{
    (void)state;
    setenv("TWIN_INGEST_MAX_SAMPLES", "0", 1);
    load_fails_with(ARGV(NULL), "TWIN_INGEST_MAX_SAMPLES: 0 is below the minimum 1");
}

static void int_above_maximum_is_rejected(void **state)
{
    (void)state;
    load_fails_with(ARGV("--metrics-port=65536"),
                    "--metrics-port: 65536 is above the maximum 65535");
    load_fails_with(ARGV("--max-samples=-5"), "--max-samples: -5 is below the minimum 1");
}

static void int_overflow_is_rejected_as_out_of_range(void **state)
{
    (void)state;
    load_fails_with(ARGV("--max-samples=99999999999999999999999"), "above the maximum");
    load_fails_with(ARGV("--max-samples=-99999999999999999999999"), "below the minimum");
}

static void int_negative_value_is_taken_after_flag(void **state)
{
    (void)state;
    load_fails_with(ARGV("--max-samples", "-3"), "--max-samples: -3 is below the minimum 1");
}

static void bad_bool_is_rejected(void **state)
{
    (void)state;
    load_fails_with(ARGV("--dry-run=maybe"), "--dry-run: \"maybe\" is not a boolean");
    setenv("TWIN_TEST_DRY_RUN", "2", 1);
    load_fails_with(ARGV(NULL), "TWIN_TEST_DRY_RUN: \"2\" is not a boolean");
}

static void failing_check_names_the_flag(void **state)
{
    (void)state;
    load_fails_with(ARGV("--label=a b"), "--label: must not contain spaces");
    load_fails_with(ARGV("--topic-root=twin/+/x"), "--topic-root: ");
}

static void failing_check_names_the_env_var(void **state)
{
    (void)state;
    setenv("TWIN_MQTT_URL", "http://broker", 1);
    load_fails_with(ARGV(NULL), "TWIN_MQTT_URL: unsupported scheme 'http'");
    unsetenv("TWIN_MQTT_URL");
    setenv("TWIN_LOG_LEVEL", "verbose", 1);
    load_fails_with(ARGV(NULL), "TWIN_LOG_LEVEL: \"verbose\" is not a log level");
    unsetenv("TWIN_LOG_LEVEL");
    setenv("TWIN_INSTANCE", "a b", 1);
    load_fails_with(ARGV(NULL), "TWIN_INSTANCE: ");
}

static void bad_redis_url_error_does_not_echo_password(void **state)
{
    struct test_config cfg;
    char err[512];
    (void)state;
    setenv("TWIN_REDIS_URL", "redis://u:hunter2@host:0", 1);
    assert_int_equal(load_none(&cfg, err, sizeof(err)), TW_EINVAL);
    assert_non_null(strstr(err, "TWIN_REDIS_URL: "));
    assert_null(strstr(err, "hunter2"));
}

static void bad_default_is_named_as_default(void **state)
{
    static const struct tw_option opts[] = {
        {"retries", "TWIN_TEST_RETRIES", "lots", "retry count", TW_OPT_INT, 0, 0, 10, 0, NULL},
    };
    static const struct tw_program prog = {"twin-bad", "bad default", opts, 1};
    int64_t value = 0;
    char *argv[] = {"twin-bad", NULL};
    enum tw_config_action action;
    char err[512];
    (void)state;
    unsetenv("TWIN_TEST_RETRIES");
    assert_int_equal(tw_config_load(&prog, 1, argv, &value, NULL, &action, err, sizeof(err)),
                     TW_EINVAL);
    assert_string_equal(err, "default of --retries: \"lots\" is not an integer");
}

static void unknown_flag_is_rejected(void **state)
{
    (void)state;
    load_fails_with(ARGV("--max-sample=3"), "unknown flag --max-sample");
    load_fails_with(ARGV("--bogus"), "unknown flag --bogus");
    load_fails_with(ARGV("-x"), "unknown flag -x");
}

static void flag_without_value_is_rejected(void **state)
{
    (void)state;
    load_fails_with(ARGV("--max-samples"), "--max-samples: missing value");
    load_fails_with(ARGV("--topic-root", "--max-samples=3"), "--topic-root: missing value");
}

static void positional_arguments_are_rejected(void **state)
{
    (void)state;
    load_fails_with(ARGV("extra"), "unexpected argument \"extra\"");
    load_fails_with(ARGV("--", "extra"), "unexpected argument \"extra\"");
    load_fails_with(ARGV("-"), "unexpected argument \"-\"");
    load_fails_with(ARGV("--max-samples", "3", "4"), "unexpected argument \"4\"");
}

static void double_dash_alone_is_accepted(void **state)
{
    struct test_config cfg;
    enum tw_config_action action;
    char err[512];
    (void)state;
    assert_int_equal(load(ARGV("--"), &cfg, &action, err, sizeof(err)), 0);
}

static void secret_flag_is_refused_with_env_hint(void **state)
{
    struct test_config cfg;
    enum tw_config_action action;
    char err[512];
    (void)state;
    load_fails_with(ARGV("--mqtt-password", "hunter2"), "set TWIN_MQTT_PASSWORD");
    load_fails_with(ARGV("--api-token=abc"), "set TWIN_TEST_API_TOKEN");
    assert_int_equal(load(ARGV("--mqtt-password=hunter2"), &cfg, &action, err, sizeof(err)),
                     TW_EINVAL);
    assert_non_null(strstr(err, "--mqtt-password: secrets are not accepted as flags"));
    assert_null(strstr(err, "hunter2"));
}

static void secret_is_read_from_env(void **state)
{
    struct test_config cfg;
    char err[512];
    (void)state;
    setenv("TWIN_MQTT_PASSWORD", "hunter2", 1);
    setenv("TWIN_TEST_API_TOKEN", "tok", 1);
    assert_int_equal(load_none(&cfg, err, sizeof(err)), 0);
    assert_string_equal(cfg.common.mqtt_password, "hunter2");
    assert_string_equal(cfg.api_token, "tok");
}

static void env_only_setting_refuses_flag_with_env_hint(void **state)
{
    static const struct tw_option opts[] = {
        {NULL, "TWIN_TEST_ZONE", "eu", "deployment zone", TW_OPT_STR, 0, 0, 0, 0, NULL},
    };
    static const struct tw_program prog = {"twin-zone", "env only", opts, 1};
    const char *zone = NULL;
    char *argv[] = {"twin-zone", "--test-zone=us", NULL};
    enum tw_config_action action;
    char err[512];
    (void)state;
    assert_int_equal(tw_config_load(&prog, 2, argv, &zone, NULL, &action, err, sizeof(err)),
                     TW_EINVAL);
    assert_string_equal(err, "--test-zone: this setting has no flag; set TWIN_TEST_ZONE instead");
}

static void help_flag_prints_help_and_returns_help_action(void **state)
{
    static char out[CAPTURE_MAX];
    enum tw_config_action action;
    (void)state;
    assert_int_equal(load_capturing_stdout(ARGV("--help"), &action, out, sizeof(out)), 0);
    assert_int_equal(action, TW_CONFIG_HELP);
    assert_non_null(strstr(out, "Usage: twin-test"));
    assert_non_null(strstr(out, "Exercises the option table code."));
    assert_int_equal(load_capturing_stdout(ARGV("-h"), &action, out, sizeof(out)), 0);
    assert_int_equal(action, TW_CONFIG_HELP);
    assert_non_null(strstr(out, "Usage: twin-test"));
}

static void help_wins_over_bad_settings(void **state)
{
    static char out[CAPTURE_MAX];
    enum tw_config_action action;
    (void)state;
    setenv("TWIN_INGEST_MAX_SAMPLES", "abc", 1);
    assert_int_equal(load_capturing_stdout(ARGV("--bogus", "--help"), &action, out, sizeof(out)),
                     0);
    assert_int_equal(action, TW_CONFIG_HELP);
    assert_non_null(strstr(out, "--max-samples"));
}

static const char *line_start(const char *text, const char *p)
{
    while (p > text && p[-1] != '\n')
        p--;
    return p;
}

static void help_lists_every_option_with_env_default_and_help(void **state)
{
    static char out[CAPTURE_MAX];
    FILE *tmp = tmpfile();
    (void)state;
    assert_non_null(tmp);
    tw_config_print_help(&test_program, tmp);
    rewind(tmp);
    out[fread(out, 1, sizeof(out) - 1, tmp)] = '\0';
    fclose(tmp);
    for (size_t i = 0; i < test_program.n_options; i++) {
        const struct tw_option *opt = &test_options[i];
        char flag[128];
        if (opt->flag) {
            snprintf(flag, sizeof(flag), "--%s", opt->flag);
            assert_non_null(strstr(out, flag));
        }
        assert_non_null(strstr(out, opt->env));
        assert_non_null(strstr(out, opt->help));
        if (opt->def) {
            snprintf(flag, sizeof(flag), "default: %s", opt->def);
            assert_non_null(strstr(out, flag));
        }
    }
    const char *secret = strstr(out, "TWIN_MQTT_PASSWORD");
    assert_non_null(secret);
    assert_memory_equal(line_start(out, secret), "  (env only) ", 13);
    assert_non_null(strstr(out, "range 1..10000"));
    assert_non_null(strstr(out, "--check-config"));
    assert_non_null(strstr(out, "--version"));
}

static void help_columns_are_aligned(void **state)
{
    static char out[CAPTURE_MAX];
    FILE *tmp = tmpfile();
    (void)state;
    tw_config_print_help(&test_program, tmp);
    rewind(tmp);
    out[fread(out, 1, sizeof(out) - 1, tmp)] = '\0';
    fclose(tmp);
    const char *a = strstr(out, "TWIN_MQTT_URL");
    const char *b = strstr(out, "TWIN_TEST_API_TOKEN");
    assert_non_null(a);
    assert_non_null(b);
    assert_int_equal(a - line_start(out, a), b - line_start(out, b));
}

static void version_flag_prints_name_and_version(void **state)
{
    static char out[CAPTURE_MAX];
    enum tw_config_action action;
    (void)state;
    assert_int_equal(load_capturing_stdout(ARGV("--version"), &action, out, sizeof(out)), 0);
    assert_int_equal(action, TW_CONFIG_HELP);
    assert_string_equal(out, "twin-test 0.1.0\n");
}

static void check_config_validates_and_returns_check_action(void **state)
{
    struct test_config cfg;
    enum tw_config_action action;
    char err[512];
    (void)state;
    assert_int_equal(load(ARGV("--check-config"), &cfg, &action, err, sizeof(err)), 0);
    assert_int_equal(action, TW_CONFIG_CHECK);
    setenv("TWIN_REDIS_URL", "rediss://h", 1);
    assert_int_equal(load(ARGV("--check-config"), &cfg, &action, err, sizeof(err)), TW_EINVAL);
    assert_non_null(strstr(err, "TWIN_REDIS_URL: rediss://"));
}

static void log_level_is_derived_from_text(void **state)
{
    struct test_config cfg;
    enum tw_config_action action;
    char err[512];
    (void)state;
    setenv("TWIN_LOG_LEVEL", "debug", 1);
    assert_int_equal(load_none(&cfg, err, sizeof(err)), 0);
    assert_int_equal(cfg.common.log_level, TW_LOG_DEBUG);
    assert_int_equal(load(ARGV("--log-level=off"), &cfg, &action, err, sizeof(err)), 0);
    assert_int_equal(cfg.common.log_level, TW_LOG_OFF);
}

static void instance_defaults_to_sanitised_hostname(void **state)
{
    struct test_config cfg;
    char err[512];
    char host[256] = "";
    (void)state;
    assert_int_equal(load_none(&cfg, err, sizeof(err)), 0);
    assert_ptr_equal(cfg.common.instance, cfg.common.instance_buf);
    assert_int_equal(tw_check_instance(cfg.common.instance, err, sizeof(err)), 0);
    assert_int_equal(gethostname(host, sizeof(host) - 1), 0);
    for (size_t i = 0; host[i] && i < 48; i++) {
        bool keep = strchr("._-", host[i]) || (host[i] >= 'a' && host[i] <= 'z') ||
                    (host[i] >= 'A' && host[i] <= 'Z') || (host[i] >= '0' && host[i] <= '9');
        assert_int_equal(cfg.common.instance[i], keep ? host[i] : '-');
    }
}

static void explicit_instance_is_kept(void **state)
{
    struct test_config cfg;
    enum tw_config_action action;
    char err[512];
    (void)state;
    assert_int_equal(load(ARGV("--instance=ingest-2"), &cfg, &action, err, sizeof(err)), 0);
    assert_string_equal(cfg.common.instance, "ingest-2");
}

static void log_config(void)
{
    struct test_config cfg;
    char err[512];
    setenv("TWIN_MQTT_PASSWORD", "hunter2", 1);
    setenv("TWIN_REDIS_URL", "redis://ingest:s3cret@db:6379/1", 1);
    setenv("TWIN_TEST_LABEL", "quoted\"label", 1);
    tw_log_init("twin-test", TW_LOG_INFO);
    if (load_none(&cfg, err, sizeof(err)) == 0)
        tw_config_log(&test_program, &cfg);
}

static void config_log_masks_secrets_in_one_info_line(void **state)
{
    static char out[CAPTURE_MAX];
    FILE *tmp = tmpfile();
    int saved = dup(STDERR_FILENO);
    (void)state;
    fflush(stderr);
    dup2(fileno(tmp), STDERR_FILENO);
    log_config();
    dup2(saved, STDERR_FILENO);
    close(saved);
    rewind(tmp);
    out[fread(out, 1, sizeof(out) - 1, tmp)] = '\0';
    fclose(tmp);
    assert_non_null(strstr(out, " info twin-test event=config "));
    assert_non_null(strstr(out, " mqtt_url=mqtt://127.0.0.1:1883 "));
    assert_non_null(strstr(out, " mqtt_password=*** "));
    assert_non_null(strstr(out, " redis_url=redis://ingest:***@db:6379/1 "));
    assert_non_null(strstr(out, " max_samples=256 dry_run=false "));
    assert_non_null(strstr(out, " label=\"quoted\\\"label\" "));
    assert_non_null(strstr(out, " test_api_token=\n"));
    assert_null(strstr(out, "hunter2"));
    assert_null(strstr(out, "s3cret"));
    assert_int_equal(strchr(out, '\n') - out + 1, (long)strlen(out));
}

static void check_topic_root_accepts_and_rejects(void **state)
{
    char err[256];
    char long_root[200];
    (void)state;
    assert_int_equal(tw_check_topic_root("twin/v1", err, sizeof(err)), 0);
    assert_int_equal(tw_check_topic_root("site-a/twin/v1", err, sizeof(err)), 0);
    assert_int_equal(tw_check_topic_root("", err, sizeof(err)), TW_EINVAL);
    assert_int_equal(tw_check_topic_root(NULL, err, sizeof(err)), TW_EINVAL);
    assert_int_equal(tw_check_topic_root("twin/+", err, sizeof(err)), TW_EINVAL);
    assert_int_equal(tw_check_topic_root("twin/#", err, sizeof(err)), TW_EINVAL);
    assert_int_equal(tw_check_topic_root("/twin", err, sizeof(err)), TW_EINVAL);
    assert_int_equal(tw_check_topic_root("twin/", err, sizeof(err)), TW_EINVAL);
    assert_int_equal(tw_check_topic_root("$SYS/twin", err, sizeof(err)), TW_EINVAL);
    assert_int_equal(tw_check_topic_root("tw\nin", err, sizeof(err)), TW_EINVAL);
    memset(long_root, 'a', sizeof(long_root));
    long_root[128] = '\0';
    assert_int_equal(tw_check_topic_root(long_root, err, sizeof(err)), 0);
    long_root[128] = 'a';
    long_root[129] = '\0';
    assert_int_equal(tw_check_topic_root(long_root, err, sizeof(err)), TW_EINVAL);
}

static void check_instance_accepts_and_rejects(void **state)
{
    char err[256];
    char name[64];
    (void)state;
    assert_int_equal(tw_check_instance("ingest-1.host_a", err, sizeof(err)), 0);
    assert_int_equal(tw_check_instance("", err, sizeof(err)), TW_EINVAL);
    assert_int_equal(tw_check_instance(NULL, err, sizeof(err)), TW_EINVAL);
    assert_int_equal(tw_check_instance("a/b", err, sizeof(err)), TW_EINVAL);
    assert_int_equal(tw_check_instance("a b", err, sizeof(err)), TW_EINVAL);
    memset(name, 'x', sizeof(name));
    name[48] = '\0';
    assert_int_equal(tw_check_instance(name, err, sizeof(err)), 0);
    name[48] = 'x';
    name[49] = '\0';
    assert_int_equal(tw_check_instance(name, err, sizeof(err)), TW_EINVAL);
}

static void check_log_level_and_urls(void **state)
{
    char err[256];
    (void)state;
    assert_int_equal(tw_check_log_level("warn", err, sizeof(err)), 0);
    assert_int_equal(tw_check_log_level("loud", err, sizeof(err)), TW_EINVAL);
    assert_int_equal(tw_check_log_level(NULL, err, sizeof(err)), TW_EINVAL);
    assert_int_equal(tw_check_mqtt_url("mqtts://b", err, sizeof(err)), 0);
    assert_int_equal(tw_check_mqtt_url("redis://b", err, sizeof(err)), TW_EINVAL);
    assert_int_equal(tw_check_redis_url("redis://:p@b/2", err, sizeof(err)), 0);
    assert_int_equal(tw_check_redis_url("mqtt://b", err, sizeof(err)), TW_EINVAL);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, clear_env, clear_env)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(defaults_apply_when_nothing_is_set),
        T(env_overrides_default),
        T(flag_overrides_env_and_default),
        T(bad_env_overridden_by_flag_is_not_an_error),
        T(last_flag_wins_when_repeated),
        T(empty_env_var_counts_as_unset),
        T(bare_bool_flag_means_true),
        T(bool_flag_takes_explicit_value),
        T(int_flag_rejects_non_numeric_text),
        T(int_env_below_minimum_is_rejected),
        T(int_above_maximum_is_rejected),
        T(int_overflow_is_rejected_as_out_of_range),
        T(int_negative_value_is_taken_after_flag),
        T(bad_bool_is_rejected),
        T(failing_check_names_the_flag),
        T(failing_check_names_the_env_var),
        T(bad_redis_url_error_does_not_echo_password),
        T(bad_default_is_named_as_default),
        T(unknown_flag_is_rejected),
        T(flag_without_value_is_rejected),
        T(positional_arguments_are_rejected),
        T(double_dash_alone_is_accepted),
        T(secret_flag_is_refused_with_env_hint),
        T(secret_is_read_from_env),
        T(env_only_setting_refuses_flag_with_env_hint),
        T(help_flag_prints_help_and_returns_help_action),
        T(help_wins_over_bad_settings),
        T(help_lists_every_option_with_env_default_and_help),
        T(help_columns_are_aligned),
        T(version_flag_prints_name_and_version),
        T(check_config_validates_and_returns_check_action),
        T(log_level_is_derived_from_text),
        T(instance_defaults_to_sanitised_hostname),
        T(explicit_instance_is_kept),
        T(config_log_masks_secrets_in_one_info_line),
        T(check_topic_root_accepts_and_rejects),
        T(check_instance_accepts_and_rejects),
        T(check_log_level_and_urls),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
