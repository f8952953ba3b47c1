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
    "Reading the twin (Redis):\n"
    "  assets [--json]            every asset (twin:assets), sorted by id: signals, seq, last\n"
    "                             update (ingest time) and its age\n"
    "  state ASSET [--model F] [--json]\n"
    "                             current values of twin:{ASSET}:state, seq, device and ingest\n"
    "                             time; with a plant model (--model or TWIN_MODEL) each value's\n"
    "                             unit and limit status OK, WARN or ALARM\n"
    "  predict ASSET [--points N] [--json]\n"
    "                             the last Prediction: per signal its model, quality (n, mase,\n"
    "                             mae, coverage) and the first N forecast points (default 4;\n"
    "                             0 all; --json gives all unless --points is given)\n"
    "Live messages (MQTT):\n"
    "  watch [FILTER] [--count N] [--for D] [--json] [--quiet]\n"
    "                             every message on FILTER (default <root>/#) decoded to one\n"
    "                             line; stops after N messages, after D, or on Ctrl-C\n"
    "  alerts [--follow] [--asset A] [--wait D] [--count N] [--json] [--quiet]\n"
    "                             alerts (not retained) arriving within D (default 2s), or until\n"
    "                             Ctrl-C with --follow: time, asset, signal, kind, severity,\n"
    "                             value vs threshold, ETA of a forecast crossing, message\n"
    "  publish ASSET SIGNAL=VALUE... [--seq N] [--ts-ms T] [--quiet]\n"
    "                             send one Telemetry (QoS 1, waits for the PUBACK), checked\n"
    "                             first with ingest's rules; bad names or values exit 2\n"
    "  top [--once] [--interval D] [--metrics NAME=URL,...] [--json]\n"
    "                             rates, rejects, mean latencies and gauges per service from\n"
    "                             /metrics (TWIN_TOP_ENDPOINTS; default ingest=:9101,\n"
    "                             predictor=:9102, scenario=:9103, devsim=:9104 on 127.0.0.1);\n"
    "                             --once: one snapshot (two scrapes D apart, default 2s)\n"
    "Scenarios and models:\n"
    "  scenario run [options]     ask twin-scenario a what-if question and print the answer\n"
    "  scenario cancel ID         stop a queued or running scenario\n"
    "  scenario show ID           print a stored result (Redis key twin:scenario:<ID>; also\n"
    "                             `scenario get ID`)\n"
    "Recommendations and autonomy (twin-advisor):\n"
    "  recommend ASSET [--signal S] [--timeout D] [--json]\n"
    "                             ask what to do with a machine: every candidate action of the\n"
    "                             plant model simulated on the live state, ranked, and why\n"
    "  approve ASSET REC_ID [--reject] [--by NAME]\n"
    "                             approve (send its Command, inside the guardrails) or reject\n"
    "                             the machine's current recommendation\n"
    "  audit [--asset A] [--count N] [--json]\n"
    "                             the advisor's decisions and commands, oldest first (twin:audit)\n"
    "  model check FILE           validate a plant model (both parts); every problem is\n"
    "                             printed as FILE: <json path>: <message>; exit 0 valid, 2 not\n"
    "  help                       this text; `twinctl scenario help` lists the scenario options\n"
    "\n"
    "--json prints one JSON object per line (per asset, message, alert or service). Lines for\n"
    "people show text from messages, Redis and /metrics with bytes outside printable ASCII\n"
    "(and the backslash) as \\xNN, so a payload cannot drive the terminal; JSON keeps it exact.\n"
    "Durations: 500ms, 2s, 90s, 5m, 1h30m.\n"
    "\n"
    "Global flags (each also a variable; flags win):\n"
    "  --mqtt-url URL      TWIN_MQTT_URL       broker (default mqtt://127.0.0.1:1883)\n"
    "  --mqtt-user NAME    TWIN_MQTT_USER      broker user; TWIN_MQTT_PASSWORD its password\n"
    "  --mqtt-ca-file F    TWIN_MQTT_CA_FILE   CA bundle for mqtts://\n"
    "  --redis-url URL     TWIN_REDIS_URL      Redis (default redis://127.0.0.1:6379)\n"
    "  --topic-root ROOT   TWIN_TOPIC_ROOT     root of the topics (default twin/v1)\n"
    "  --log-level LEVEL   TWIN_LOG_LEVEL      client library logs (default warn)\n"
    "\n"
    "Exit status: 0 success; 1 failure: broker or Redis unreachable, unknown asset or nothing\n"
    "stored, fewer than --count messages in time, a scenario result ERROR or CANCELLED or none\n"
    "in time, a recommendation ERROR, refused or rejected, or none in time, `top --once` with no endpoint answering; 2 bad usage, bad settings, input that\n"
    "ingest would reject (publish) or an invalid model. Ctrl-C ends watch, alerts and top\n"
    "(--once too) with 0.\n";

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
    if (tw_model_parse_duration(text, ms) == 0)
        return 0;
    /* Zero, with or without units ("0", "0m", "0h0m"): the model's durations are positive, so
     * check the same text with each zero as a one, and every number in it zero. */
    char probe[64];
    size_t n = strlen(text);
    if (n == 0 || n >= sizeof(probe))
        return -1;
    for (size_t i = 0; i <= n; i++) {
        if (text[i] >= '1' && text[i] <= '9')
            return -1;
        probe[i] = text[i] == '0' ? '1' : text[i];
    }
    int64_t unused;
    if (strcmp(text, "0") != 0 && tw_model_parse_duration(probe, &unused) < 0)
        return -1;
    *ms = 0;
    return 0;
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
        /* A password on the command line is visible to every local user (ps): refused,
         * without repeating it, whatever command follows. */
        if (strncmp(argv[i], "--mqtt-password", 15) == 0 ||
            strncmp(argv[i], "--redis-password", 16) == 0)
            return ctl_usage_error("passwords are not taken on the command line: set "
                                   "TWIN_MQTT_PASSWORD (or the password in TWIN_REDIS_URL)");
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
    static const struct {
        const char *name;
        int (*fn)(const struct ctl_settings *s, int argc, char **argv);
    } commands[] = {{"scenario", ctl_scenario}, {"assets", ctl_assets}, {"state", ctl_state},
                    {"predict", ctl_predict},   {"watch", ctl_watch},   {"alerts", ctl_alerts},
                    {"publish", ctl_publish},   {"top", ctl_top},       {"recommend", ctl_recommend},
                    {"approve", ctl_approve},   {"audit", ctl_audit}};
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
        if (strcmp(argv[1], commands[i].name) != 0)
            continue;
        rc = check_settings(&s, log_level);
        /* Ctrl-C cancels a running scenario, ends watch, alerts --follow and top (set before
         * threads start). */
        tw_signal_stop_flag();
        return rc != 0 ? rc : commands[i].fn(&s, argc - 1, argv + 1);
    }
    return ctl_usage_error("unknown command \"%.64s\"", argv[1]);
}
