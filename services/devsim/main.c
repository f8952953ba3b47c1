/* SPDX-License-Identifier: Apache-2.0 */
/* twin-devsim: settings, plant model or recording, metrics endpoint, and the run of one mode
 * with its final report. */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "devsim.h"
#include "twin/err.h"
#include "twin/log.h"
#include "twin/signal.h"
#include "twin/validate.h"

#define OPT(member)         offsetof(struct devsim_config, member)
#define DEFAULT_MODEL       "deploy/plant.json"
#define MAX_RECORDING_BYTES (256u * 1024u * 1024u)
#define MAX_BAD_LINES_SHOWN 20

static int check_mode(const char *text, char *err, size_t errlen)
{
    if (strcmp(text, "demo") == 0 || strcmp(text, "load") == 0 || strcmp(text, "replay") == 0)
        return 0;
    return tw_fail(err, errlen, "%s is not a mode (demo, load or replay)", text);
}

static int check_asset(const char *text, char *err, size_t errlen)
{
    if (tw_valid_asset_id(text, strlen(text)))
        return 0;
    return tw_fail(err, errlen, "%s is not an asset id (1-64 chars of [A-Za-z0-9._-])", text);
}

static const struct tw_option devsim_options[] = {
    TW_COMMON_OPTIONS(struct devsim_config, common),
    {"mode", "TWIN_DEVSIM_MODE", "demo",
     "demo (the plant model's assets; obeys Commands on <root>/asset/+/command), load "
     "(--assets, --rate) or replay (--replay, --asset)",
     TW_OPT_STR, OPT(mode_text), 0, 0, 0, check_mode},
    {"seed", "TWIN_DEVSIM_SEED", "1", "random seed: the same seed gives the same values",
     TW_OPT_INT, OPT(seed), 0, INT64_MAX, 0, NULL},
    {"period-ms", "TWIN_DEVSIM_PERIOD_MS", "1000",
     "demo: device time between two readings of one asset, ms", TW_OPT_INT, OPT(period_ms), 1,
     86400000, 0, NULL},
    {"speed", "TWIN_DEVSIM_SPEED", "1",
     "demo, replay: device time runs N times faster than real time (demo: starting 6 days ago, "
     "until it reaches the present)",
     TW_OPT_INT, OPT(speed), 1, 1000000, 0, NULL},
    {"as-fast-as-possible", "TWIN_DEVSIM_AS_FAST_AS_POSSIBLE", "false",
     "demo, replay: no pacing (demo: until device time reaches the present)", TW_OPT_BOOL,
     OPT(as_fast_as_possible), 0, 0, 0, NULL},
    {"start-ms", "TWIN_DEVSIM_START_MS", "0",
     "demo: device time of the first reading, Unix ms, year 9999 at most (0: now, or 6 days ago "
     "when accelerated)",
     TW_OPT_INT, OPT(start_ms), 0, DEVSIM_MAX_TS_MS, 0, NULL},
    {"count", "TWIN_DEVSIM_COUNT", "0",
     "demo: readings per asset; load: messages in all (0: no limit)", TW_OPT_INT, OPT(count), 0,
     INT64_MAX / 4, 0, NULL},
    {"duration", "TWIN_DEVSIM_DURATION_S", "0", "stop after this many seconds (0: no limit)",
     TW_OPT_INT, OPT(duration_s), 0, 100LL * 365 * 86400, 0, NULL},
    {"assets", "TWIN_DEVSIM_ASSETS", "1000", "load: simulated assets load-000001, load-000002, ...",
     TW_OPT_INT, OPT(assets), 1, DEVSIM_MAX_LOAD_ASSETS, 0, NULL},
    {"rate", "TWIN_DEVSIM_RATE", "1000", "load: messages per second in all", TW_OPT_INT, OPT(rate),
     1, 10000000, 0, NULL},
    {"replay", "TWIN_DEVSIM_REPLAY", NULL, "replay: CSV file of ts_ms,signal,value lines",
     TW_OPT_STR, OPT(replay_path), 0, 0, 0, NULL},
    {"asset", "TWIN_DEVSIM_ASSET", NULL, "replay: the asset the recording is published as",
     TW_OPT_STR, OPT(asset), 0, 0, 0, check_asset},
    {"shift-to-now", "TWIN_DEVSIM_SHIFT_TO_NOW", "false",
     "replay: move the timestamps so that the last row is sent at its own time (old "
     "recordings pass ingest's time window)",
     TW_OPT_BOOL, OPT(shift_to_now), 0, 0, 0, NULL},
    {"skip-bad-lines", "TWIN_DEVSIM_SKIP_BAD_LINES", "false",
     "replay: report bad lines and send the rest (default: report them and send nothing)",
     TW_OPT_BOOL, OPT(skip_bad_lines), 0, 0, 0, NULL},
    {"seq-base", "TWIN_DEVSIM_SEQ_BASE", "0",
     "seq of every asset's first message (0: Unix ms at start x 1000, above any earlier run)",
     TW_OPT_INT, OPT(seq_base), 0, INT64_MAX, 0, NULL},
    {"faults", "TWIN_DEVSIM_FAULTS", "true", "simulate wear, failures, repairs and glitches",
     TW_OPT_BOOL, OPT(faults), 0, 0, 0, NULL},
    {"max-pending", "TWIN_DEVSIM_MAX_PENDING", "500",
     "unacknowledged publishes before the publisher waits (0: no limit); Paho's cost per "
     "message grows with the number in flight",
     TW_OPT_INT, OPT(max_pending), 0, 1000000, 0, NULL},
    {"flush-timeout-ms", "TWIN_DEVSIM_FLUSH_TIMEOUT_MS", "30000",
     "at the end, how long to wait for the last acknowledgements", TW_OPT_INT,
     OPT(flush_timeout_ms), 0, 3600000, 0, NULL},
    {"json", "TWIN_DEVSIM_JSON", "false",
     "print the final report as JSON on stdout (demo, load: also failures, maintenances and "
     "downtime by cause; demo: per asset, and the commands applied and rejected)",
     TW_OPT_BOOL, OPT(json), 0, 0, 0, NULL},
};

static const struct tw_program devsim_program = {
    .name = "twin-devsim",
    .summary = "a simulated plant: publishes realistic telemetry of every asset of the plant "
               "model (obeying maintain and slow Commands), load for benchmarks, or a CSV "
               "recording; the final report gives downtime by cause (failure, maintenance)",
    .options = devsim_options,
    .n_options = sizeof(devsim_options) / sizeof(devsim_options[0]),
};

/* The default model: deploy/plant.json from the working directory, else the repository's
 * next to build/bin/ (a program run from its build tree). */
static const char *default_model(char *buf, size_t len)
{
    if (access(DEFAULT_MODEL, R_OK) == 0)
        return DEFAULT_MODEL;
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
    if (n <= 0)
        return DEFAULT_MODEL;
    exe[n] = 0;
    char *slash = strrchr(exe, '/');
    if (slash)
        *slash = 0;
    snprintf(buf, len, "%s/../../%s", exe, DEFAULT_MODEL);
    return access(buf, R_OK) == 0 ? buf : DEFAULT_MODEL;
}

static void report_bad_line(void *ctx, size_t lineno, const char *reason)
{
    const struct devsim_config *cfg = ctx;
    if (cfg->recording.bad_lines <= MAX_BAD_LINES_SHOWN)
        fprintf(stderr, "twin-devsim: %s:%zu: %s\n", cfg->replay_path, lineno, reason);
}

/* Reads and checks the recording; returns -1 to go on, else the exit status. */
static int load_recording(struct devsim_config *cfg)
{
    struct tw_model_errors errs = {0};
    char *buf = NULL;
    size_t len = 0;
    if (tw_model_read_file(cfg->replay_path, &buf, &len, &errs) < 0 || len > MAX_RECORDING_BYTES) {
        fprintf(stderr, "twin-devsim: %s: cannot read it (or larger than 256 MiB)\n",
                cfg->replay_path);
        tw_model_errors_free(&errs);
        free(buf);
        return 2;
    }
    tw_model_errors_free(&errs);
    int rc = devsim_recording_parse(buf, len, &cfg->recording, report_bad_line, cfg);
    free(buf);
    if (rc < 0) {
        fprintf(stderr, "twin-devsim: %s: %s\n", cfg->replay_path,
                rc == TW_ENOMEM ? "out of memory" : "more than 16777216 rows");
        return rc == TW_ENOMEM ? 1 : 2;
    }
    size_t bad = cfg->recording.bad_lines;
    if (bad > MAX_BAD_LINES_SHOWN)
        fprintf(stderr, "twin-devsim: %s: %zu more bad lines not shown\n", cfg->replay_path,
                bad - MAX_BAD_LINES_SHOWN);
    if (bad > 0 && !cfg->skip_bad_lines) {
        fprintf(stderr,
                "twin-devsim: %s: %zu bad lines: nothing sent (--skip-bad-lines sends "
                "the rest)\n",
                cfg->replay_path, bad);
        return 2;
    }
    if (cfg->recording.n_groups == 0) {
        fprintf(stderr, "twin-devsim: %s: no data rows\n", cfg->replay_path);
        return 2;
    }
    return -1;
}

/* Checks what depends on the mode; returns -1 to go on, else the exit status. */
static int configure_mode(struct devsim_config *cfg, char *model_buf, size_t model_len)
{
    cfg->mode = strcmp(cfg->mode_text, "load") == 0     ? DEVSIM_LOAD
                : strcmp(cfg->mode_text, "replay") == 0 ? DEVSIM_REPLAY
                                                        : DEVSIM_DEMO;
    if (cfg->mode == DEVSIM_REPLAY) {
        if (!cfg->replay_path || !cfg->asset) {
            fprintf(stderr, "twin-devsim: --mode replay needs --replay FILE and --asset ID\n");
            return 2;
        }
        return load_recording(cfg);
    }
    if (cfg->mode == DEVSIM_DEMO) {
        const char *path = cfg->common.model_path && cfg->common.model_path[0]
                               ? cfg->common.model_path
                               : default_model(model_buf, model_len);
        if (tw_model_load_reporting("twin-devsim", path, &cfg->model) < 0)
            return 2;
        if (tw_model_asset_count(cfg->model) == 0) {
            fprintf(stderr, "twin-devsim: %s: the model has no assets to simulate\n", path);
            return 2;
        }
    }
    return -1;
}

/* Parses the settings; returns -1 to go on, else the exit status. */
static int devsim_configure(int argc, char **argv, struct devsim_config *cfg)
{
    enum tw_config_action action;
    char err[256], model_buf[PATH_MAX + 32];
    if (tw_config_load(&devsim_program, argc, argv, cfg, &cfg->common, &action, err, sizeof(err)) <
        0) {
        fprintf(stderr, "twin-devsim: %s\n", err);
        return 2;
    }
    if (action == TW_CONFIG_HELP)
        return 0;
    int status = configure_mode(cfg, model_buf, sizeof(model_buf));
    if (status >= 0)
        return status;
    if (action == TW_CONFIG_CHECK) {
        printf("twin-devsim: configuration is valid\n");
        return 0;
    }
    return -1;
}

static int run_mode(const struct devsim_config *cfg, struct devsim_pub *p)
{
    switch (cfg->mode) {
    case DEVSIM_LOAD:
        return devsim_run_load(cfg, p);
    case DEVSIM_REPLAY:
        return devsim_run_replay(cfg, p);
    default:
        return devsim_run_demo(cfg, p);
    }
}

int main(int argc, char **argv)
{
    static struct devsim_config cfg;
    static struct devsim_metrics metrics;
    static struct devsim_pub pub;
    struct devsim_obey *obey = NULL;
    struct tw_metrics *reg = NULL;
    struct tw_http *http = NULL;

    tw_log_init("devsim", TW_LOG_INFO);
    int status = devsim_configure(argc, argv, &cfg);
    if (status >= 0)
        goto out;
    tw_log_init("devsim", cfg.common.log_level);
    tw_config_log(&devsim_program, &cfg);
    volatile sig_atomic_t *stop = tw_signal_stop_flag();
    status = 1;
    int rc = tw_metrics_create(&reg);
    if (rc == 0)
        rc = devsim_metrics_register(reg, &metrics);
    if (rc == 0 && tw_http_start(reg, cfg.common.metrics_addr, (int)cfg.common.metrics_port,
                                 devsim_pub_healthy, &pub, &http) < 0) {
        tw_log(TW_LOG_ERROR, "metrics_listen_failed", "addr=%s port=%lld", cfg.common.metrics_addr,
               (long long)cfg.common.metrics_port);
        goto out;
    }
    if (rc == 0 && cfg.mode == DEVSIM_DEMO)
        rc = devsim_obey_create(&cfg, &metrics, &obey);
    if (rc == 0)
        rc = devsim_pub_open(&pub, &cfg, &metrics, stop, obey);
    if (rc == 0)
        rc = run_mode(&cfg, &pub);
    devsim_pub_close(&pub);
    if (obey) {
        pub.rep.commands = true;
        devsim_obey_counts(obey, &pub.rep.commands_applied, &pub.rep.commands_rejected,
                           &pub.rep.commands_duplicate);
    }
    if (rc == 0 || rc == TW_ESHUTDOWN) {
        pub.rep.stopped = pub.rep.stopped || rc == TW_ESHUTDOWN;
        devsim_report_print(&cfg, &pub.rep);
        status = pub.rep.failed == 0 && pub.rep.drained ? 0 : 1;
    } else {
        tw_log(TW_LOG_ERROR, "run_failed", "error=%s", tw_strerror(rc));
    }
out:
    devsim_report_free(&pub.rep);
    devsim_obey_destroy(obey);
    tw_http_stop(http);
    tw_metrics_destroy(reg);
    tw_model_free(cfg.model);
    devsim_recording_free(&cfg.recording);
    return status;
}
