/* SPDX-License-Identifier: Apache-2.0 */
/* Option tables: every setting is a --flag and a TWIN_* variable; --help is generated here. */
#ifndef TWIN_CONFIG_H
#define TWIN_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "twin/log.h"

enum tw_opt_kind {
    TW_OPT_STR,  /* const char * (points into argv, environ or the default; never freed) */
    TW_OPT_INT,  /* int64_t, checked against [min, max] */
    TW_OPT_BOOL, /* bool: true/false/1/0/yes/no/on/off; a bare --flag means true */
};

/* Option flags. */
#define TW_OPT_SECRET        0x1u /* a credential: no --flag (it would show in ps), never logged */
#define TW_OPT_SECRET_IN_URL 0x2u /* a URL that may carry a password: logged with it masked */

struct tw_option {
    const char *flag; /* "mqtt-url" is --mqtt-url; NULL for environment-only settings */
    const char *env;  /* "TWIN_MQTT_URL" */
    const char *def;  /* default as text; NULL means unset/empty */
    const char *help;
    enum tw_opt_kind kind;
    size_t offset; /* where the value goes in the program's config struct */
    int64_t min, max;
    unsigned flags;
    /* Optional extra check of the text; returns 0 or TW_EINVAL with a reason in err. */
    int (*check)(const char *text, char *err, size_t errlen);
};

struct tw_program {
    const char *name;    /* "twin-ingest" */
    const char *summary; /* one line for --help */
    const struct tw_option *options;
    size_t n_options;
};

/* Settings every service reads (DESIGN.md, "Running the services"). */
struct tw_common_config {
    const char *mqtt_url;
    const char *mqtt_user;
    const char *mqtt_password;
    const char *mqtt_ca_file;
    const char *redis_url;
    const char *topic_root;
    const char *model_path;
    const char *instance;
    const char *log_level_text;
    const char *metrics_addr;
    int64_t metrics_port;
    int64_t mqtt_keepalive_s;
    int64_t mqtt_session_expiry_s;
    enum tw_log_level log_level; /* derived from log_level_text by tw_config_load */
    char instance_buf[64];       /* holds the hostname when instance is not set */
};

int tw_check_mqtt_url(const char *text, char *err, size_t errlen);
int tw_check_redis_url(const char *text, char *err, size_t errlen);
int tw_check_topic_root(const char *text, char *err, size_t errlen);
int tw_check_instance(const char *text, char *err, size_t errlen);
int tw_check_log_level(const char *text, char *err, size_t errlen);

/* The common rows of an option table; `type` is the program's config struct and `field` its
 * struct tw_common_config member. */
#define TW_OPT_(type, member) offsetof(type, member)
#define TW_COMMON_OPTIONS(type, field)                                                             \
    {"mqtt-url",                                                                                   \
     "TWIN_MQTT_URL",                                                                              \
     "mqtt://127.0.0.1:1883",                                                                      \
     "broker URL: mqtt://, mqtts:// (TLS), tcp:// or ssl://",                                      \
     TW_OPT_STR,                                                                                   \
     TW_OPT_(type, field.mqtt_url),                                                                \
     0,                                                                                            \
     0,                                                                                            \
     0,                                                                                            \
     tw_check_mqtt_url},                                                                           \
        {"mqtt-user", "TWIN_MQTT_USER",                                                            \
         NULL,        "broker user name",                                                          \
         TW_OPT_STR,  TW_OPT_(type, field.mqtt_user),                                              \
         0,           0,                                                                           \
         0,           NULL},                                                                       \
        {NULL,                                                                                     \
         "TWIN_MQTT_PASSWORD",                                                                     \
         NULL,                                                                                     \
         "broker password (environment only)",                                                     \
         TW_OPT_STR,                                                                               \
         TW_OPT_(type, field.mqtt_password),                                                       \
         0,                                                                                        \
         0,                                                                                        \
         TW_OPT_SECRET,                                                                            \
         NULL},                                                                                    \
        {"mqtt-ca-file",                                                                           \
         "TWIN_MQTT_CA_FILE",                                                                      \
         NULL,                                                                                     \
         "CA certificates for mqtts:// (default: the system's)",                                   \
         TW_OPT_STR,                                                                               \
         TW_OPT_(type, field.mqtt_ca_file),                                                        \
         0,                                                                                        \
         0,                                                                                        \
         0,                                                                                        \
         NULL},                                                                                    \
        {"mqtt-keepalive",                                                                         \
         "TWIN_MQTT_KEEPALIVE_S",                                                                  \
         "10",                                                                                     \
         "MQTT keepalive, seconds",                                                                \
         TW_OPT_INT,                                                                               \
         TW_OPT_(type, field.mqtt_keepalive_s),                                                    \
         2,                                                                                        \
         3600,                                                                                     \
         0,                                                                                        \
         NULL},                                                                                    \
        {"mqtt-session-expiry",                                                                    \
         "TWIN_MQTT_SESSION_EXPIRY_S",                                                             \
         "604800",                                                                                 \
         "how long the broker keeps this service's session while it is away, seconds",             \
         TW_OPT_INT,                                                                               \
         TW_OPT_(type, field.mqtt_session_expiry_s),                                               \
         0,                                                                                        \
         4294967295LL,                                                                             \
         0,                                                                                        \
         NULL},                                                                                    \
        {"redis-url",                                                                              \
         "TWIN_REDIS_URL",                                                                         \
         "redis://127.0.0.1:6379",                                                                 \
         "Redis URL: redis://[user:password@]host:port[/db]",                                      \
         TW_OPT_STR,                                                                               \
         TW_OPT_(type, field.redis_url),                                                           \
         0,                                                                                        \
         0,                                                                                        \
         TW_OPT_SECRET_IN_URL,                                                                     \
         tw_check_redis_url},                                                                      \
        {"topic-root",                                                                             \
         "TWIN_TOPIC_ROOT",                                                                        \
         "twin/v1",                                                                                \
         "root of every topic",                                                                    \
         TW_OPT_STR,                                                                               \
         TW_OPT_(type, field.topic_root),                                                          \
         0,                                                                                        \
         0,                                                                                        \
         0,                                                                                        \
         tw_check_topic_root},                                                                     \
        {"model",    "TWIN_MODEL",                                                                 \
         NULL,       "plant model file (JSON)",                                                    \
         TW_OPT_STR, TW_OPT_(type, field.model_path),                                              \
         0,          0,                                                                            \
         0,          NULL},                                                                        \
        {"instance", "TWIN_INSTANCE",                                                              \
         NULL,       "instance name; names the persistent MQTT session (default: the hostname)",   \
         TW_OPT_STR, TW_OPT_(type, field.instance),                                                \
         0,          0,                                                                            \
         0,          tw_check_instance},                                                           \
        {"log-level", "TWIN_LOG_LEVEL",                                                            \
         "info",      "debug, info, warn, error or off",                                           \
         TW_OPT_STR,  TW_OPT_(type, field.log_level_text),                                         \
         0,           0,                                                                           \
         0,           tw_check_log_level},                                                         \
        {"metrics-addr",                                                                           \
         "TWIN_METRICS_ADDR",                                                                      \
         "127.0.0.1",                                                                              \
         "address the /metrics and /healthz endpoint listens on",                                  \
         TW_OPT_STR,                                                                               \
         TW_OPT_(type, field.metrics_addr),                                                        \
         0,                                                                                        \
         0,                                                                                        \
         0,                                                                                        \
         NULL},                                                                                    \
    {                                                                                              \
        "metrics-port", "TWIN_METRICS_PORT", "0", "HTTP port for /metrics and /healthz (0: off)",  \
            TW_OPT_INT, TW_OPT_(type, field.metrics_port), 0, 65535, 0, NULL                       \
    }

enum tw_config_action {
    TW_CONFIG_RUN,   /* start the program */
    TW_CONFIG_HELP,  /* --help was given: help printed to stdout, exit 0 */
    TW_CONFIG_CHECK, /* --check-config: settings are valid, exit 0 */
};

/* Fills cfg from defaults, then TWIN_* variables, then --flags (each later one wins), checks
 * every value, and for --help prints the help. `common` (may be NULL) is cfg's common part:
 * its derived fields (log_level, instance default) are filled in.
 * Returns 0, or TW_EINVAL with a one-line reason in err (the caller exits 2). Main thread,
 * before other threads start. */
int tw_config_load(const struct tw_program *prog, int argc, char **argv, void *cfg,
                   struct tw_common_config *common, enum tw_config_action *action, char *err,
                   size_t errlen);

/* Prints --help: every option with its flag, variable, default and help text. */
void tw_config_print_help(const struct tw_program *prog, FILE *out);

/* Logs the effective settings at info level, secrets masked. */
void tw_config_log(const struct tw_program *prog, const void *cfg);

#endif
