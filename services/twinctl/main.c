/* SPDX-License-Identifier: Apache-2.0 */
/* twinctl, the operator's command line: connection settings from TWIN_* variables and global
 * flags, the command dispatch and the usage text. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "twin/config.h"
#include "twin/err.h"
#include "twin/log.h"
#include "twin/model.h"
#include "twin/signal.h"
#include "twinctl.h"

static const char usage_text[] =
    "usage: twinctl [global flags] <command> ...\n"
    "\n"
    "Commands:\n"
    "  model check FILE           validate a plant model (both parts); every problem is\n"
    "                             printed as FILE: <json path>: <message>; exit 0 valid, 2 not\n"
    "  scenario run [options]     ask twin-scenario a what-if question and print the answer\n"
    "  scenario cancel ID         stop a queued or running scenario\n"
    "  scenario get ID            print a stored result (Redis key twin:scenario:<ID>)\n"
    "  help                       this text; `twinctl scenario help` lists the scenario options\n"
    "\n"
    "Global flags (each also a variable; flags win):\n"
    "  --mqtt-url URL      TWIN_MQTT_URL       broker (default mqtt://127.0.0.1:1883)\n"
    "  --mqtt-user NAME    TWIN_MQTT_USER      broker user; TWIN_MQTT_PASSWORD its password\n"
    "  --mqtt-ca-file F    TWIN_MQTT_CA_FILE   CA bundle for mqtts://\n"
    "  --redis-url URL     TWIN_REDIS_URL      Redis (default redis://127.0.0.1:6379)\n"
    "  --topic-root ROOT   TWIN_TOPIC_ROOT     root of the topics (default twin/v1)\n"
    "  --log-level LEVEL   TWIN_LOG_LEVEL      client library logs (default warn)\n"
    "\n"
    "Exit status: 0 success; 1 the result says ERROR or CANCELLED, or no answer in time;\n"
    "2 bad usage, bad settings or an invalid model.\n";

int ctl_usage_error(const char *fmt, ...)
{
    va_list ap;
    fputs("twinctl: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputs(" (see twinctl help)\n", stderr);
    return CTL_EXIT_USAGE;
}

int ctl_parse_duration(const char *text, int64_t *ms)
{
    if (strcmp(text, "0") == 0) {
        *ms = 0;
        return 0;
    }
    return tw_model_parse_duration(text, ms) == 0 ? 0 : -1;
}

static const char *env_or(const char *name, const char *def)
{
    const char *v = getenv(name);
    return v && v[0] ? v : def;
}

struct global_flag {
    const char *flag;
    const char **target;
    int (*check)(const char *text, char *err, size_t errlen);
};

/* Takes the global flags out of argv (anywhere on the line), leaving the command's words. */
static int take_global_flags(struct ctl_settings *s, const char **log_level, int *argc, char **argv)
{
    const struct global_flag flags[] = {
        {"--mqtt-url", &s->mqtt_url, tw_check_mqtt_url},
        {"--mqtt-user", &s->mqtt_user, NULL},
        {"--mqtt-ca-file", &s->mqtt_ca_file, NULL},
        {"--redis-url", &s->redis_url, tw_check_redis_url},
        {"--topic-root", &s->topic_root, tw_check_topic_root},
        {"--log-level", log_level, tw_check_log_level},
    };
    int out = 1;
    for (int i = 1; i < *argc; i++) {
        size_t k = 0, nf = sizeof(flags) / sizeof(flags[0]);
        while (k < nf && strcmp(argv[i], flags[k].flag) != 0)
            k++;
        if (k == nf) {
            argv[out++] = argv[i];
            continue;
        }
        if (i + 1 >= *argc)
            return ctl_usage_error("%s: missing value", flags[k].flag);
        *flags[k].target = argv[++i];
    }
    *argc = out;
    return 0;
}

static int check_settings(const struct ctl_settings *s, const char *log_level)
{
    char err[256];
    enum tw_log_level level;
    if (tw_check_mqtt_url(s->mqtt_url, err, sizeof(err)) < 0)
        return ctl_usage_error("TWIN_MQTT_URL: %s", err);
    if (tw_check_redis_url(s->redis_url, err, sizeof(err)) < 0)
        return ctl_usage_error("TWIN_REDIS_URL: %s", err);
    if (tw_check_topic_root(s->topic_root, err, sizeof(err)) < 0)
        return ctl_usage_error("TWIN_TOPIC_ROOT: %s", err);
    if (tw_log_parse_level(log_level, &level) < 0)
        return ctl_usage_error("TWIN_LOG_LEVEL: must be debug, info, warn, error or off");
    tw_log_init("twinctl", level);
    return 0;
}

int main(int argc, char **argv)
{
    struct ctl_settings s = {
        .mqtt_url = env_or("TWIN_MQTT_URL", "mqtt://127.0.0.1:1883"),
        .mqtt_user = env_or("TWIN_MQTT_USER", NULL),
        .mqtt_password = env_or("TWIN_MQTT_PASSWORD", NULL),
        .mqtt_ca_file = env_or("TWIN_MQTT_CA_FILE", NULL),
        .redis_url = env_or("TWIN_REDIS_URL", "redis://127.0.0.1:6379"),
        .topic_root = env_or("TWIN_TOPIC_ROOT", "twin/v1"),
        .redis_timeout_ms = 5000,
    };
    const char *log_level = env_or("TWIN_LOG_LEVEL", "warn");
    tw_log_init("twinctl", TW_LOG_WARN);
    int rc = take_global_flags(&s, &log_level, &argc, argv);
    if (rc != 0)
        return rc;
    if (argc < 2 || strcmp(argv[1], "help") == 0 || strcmp(argv[1], "--help") == 0 ||
        strcmp(argv[1], "-h") == 0) {
        fputs(usage_text, argc < 2 ? stderr : stdout);
        return argc < 2 ? CTL_EXIT_USAGE : CTL_EXIT_OK;
    }
    if (strcmp(argv[1], "model") == 0)
        return ctl_model_check(argc - 1, argv + 1);
    if (strcmp(argv[1], "scenario") == 0) {
        rc = check_settings(&s, log_level);
        tw_signal_stop_flag(); /* Ctrl-C cancels a running scenario (before threads start) */
        return rc != 0 ? rc : ctl_scenario(&s, argc - 1, argv + 1);
    }
    return ctl_usage_error("unknown command \"%.64s\"", argv[1]);
}
