/* SPDX-License-Identifier: Apache-2.0 */
/* twin-ingest: settings, metrics endpoint, and the parent process that runs and supervises
 * the worker processes (each one MQTT session applying telemetry to Redis). */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "apply.h"
#include "ingest.h"
#include "twin/clock.h"
#include "twin/err.h"
#include "twin/log.h"
#include "twin/signal.h"

#define OPT(member) offsetof(struct ingest_config, member)

static int check_power_of_two(const char *text, char *err, size_t errlen)
{
    long long v = atoll(text);
    if (v > 0 && (v & (v - 1)) == 0)
        return 0;
    snprintf(err, errlen, "%s is not a power of two", text);
    return TW_EINVAL;
}

static const struct tw_option ingest_options[] = {
    TW_COMMON_OPTIONS(struct ingest_config, common),
    {"workers", "TWIN_INGEST_WORKERS", "4",
     "worker processes, each with its own MQTT session and Redis connection", TW_OPT_INT,
     OPT(workers), 1, INGEST_MAX_WORKERS, 0, NULL},
    {"group", "TWIN_INGEST_GROUP", "twin-ingest",
     "shared-subscription group; instances with the same group split the telemetry", TW_OPT_STR,
     OPT(group), 0, 0, 0, tw_check_instance},
    {"max-payload", "TWIN_INGEST_MAX_PAYLOAD", "65536", "largest telemetry payload, bytes",
     TW_OPT_INT, OPT(max_payload), 16, 16 * 1024 * 1024, 0, NULL},
    {"max-samples", "TWIN_INGEST_MAX_SAMPLES", "256", "most samples in one message", TW_OPT_INT,
     OPT(max_samples), 1, 1000, 0, NULL},
    {"max-past-ms", "TWIN_INGEST_MAX_PAST_MS", "604800000",
     "oldest device time accepted, ms before now (0: no limit)", TW_OPT_INT, OPT(max_past_ms), 0,
     INT64_MAX / 4, 0, NULL},
    {"max-future-ms", "TWIN_INGEST_MAX_FUTURE_MS", "600000",
     "newest device time accepted, ms after now (0: no limit)", TW_OPT_INT, OPT(max_future_ms), 0,
     INT64_MAX / 4, 0, NULL},
    {"replay-window", "TWIN_INGEST_REPLAY_WINDOW", "1024",
     "sequence numbers remembered below the highest, for late and duplicate detection (a "
     "power of two)",
     TW_OPT_INT, OPT(replay_window), 64, 1 << 20, 0, check_power_of_two},
    {"history-maxlen", "TWIN_INGEST_HISTORY_MAXLEN", "10000",
     "history stream entries kept per asset (approximate, MAXLEN ~)", TW_OPT_INT,
     OPT(history_maxlen), 1, 1000000000, 0, NULL},
    {"redis-timeout-ms", "TWIN_REDIS_TIMEOUT_MS", "5000", "Redis command timeout, ms", TW_OPT_INT,
     OPT(redis_timeout_ms), 10, 600000, 0, NULL},
    {"redis-replicas", "TWIN_INGEST_REDIS_REPLICAS", "0",
     "Redis replicas that must hold an apply (WAIT) before the broker is told; fewer in time "
     "and the apply is retried. 0: the master's answer is enough (a failover may lose the "
     "last writes)",
     TW_OPT_INT, OPT(redis_replicas), 0, 16, 0, NULL},
    {"redis-replica-wait-ms", "TWIN_INGEST_REDIS_REPLICA_WAIT_MS", "1000",
     "how long WAIT waits for those replicas, ms", TW_OPT_INT, OPT(redis_replica_wait_ms), 1, 60000,
     0, NULL},
    {"shutdown-grace-ms", "TWIN_INGEST_SHUTDOWN_GRACE_MS", "10000",
     "on SIGTERM, how long in-flight work may take before workers are killed (unacknowledged "
     "messages stay with the broker)",
     TW_OPT_INT, OPT(shutdown_grace_ms), 100, 600000, 0, NULL},
    {"retire", "TWIN_INGEST_RETIRE", "false",
     "retire this instance name: apply what the broker still holds for every one of its "
     "sessions, end them, and exit (run once when an instance is removed for good)",
     TW_OPT_BOOL, OPT(retire), 0, 0, 0, NULL},
    {"print-script", "TWIN_INGEST_PRINT_SCRIPT", "false",
     "print the Lua apply script for the plant model (its derived signals compiled) and exit",
     TW_OPT_BOOL, OPT(print_script), 0, 0, 0, NULL},
};

static const struct tw_program ingest_program = {
    .name = "twin-ingest",
    .summary = "validates device telemetry from MQTT and applies it to the twin state in Redis",
    .options = ingest_options,
    .n_options = sizeof(ingest_options) / sizeof(ingest_options[0]),
};

static volatile sig_atomic_t *stop_requested; /* tw_signal_stop_flag() */
static volatile sig_atomic_t child_exited;

static void on_child_signal(int sig)
{
    (void)sig;
    child_exited = 1;
}

static void install_signals(void)
{
    struct sigaction sa = {0};
    stop_requested = tw_signal_stop_flag();
    sa.sa_handler = on_child_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGCHLD, &sa, NULL);
}

int ingest_metrics_register(struct tw_metrics *reg, struct ingest_metrics *m, int workers)
{
    static const double latency[] = {0.0001, 0.00025, 0.0005, 0.001, 0.002, 0.005, 0.01,
                                     0.025,  0.05,    0.1,    0.25,  1,     5};
    char labels[64];
    memset(m, 0, sizeof(*m));
    m->received =
        tw_metrics_counter(reg, "twin_ingest_received_total", NULL, "telemetry messages received");
    for (int o = INGEST_APPLIED; o <= INGEST_STALE; o++) {
        char name[64];
        snprintf(name, sizeof(name), "twin_ingest_%s_total", ingest_outcome_word(o));
        m->outcome[o] = tw_metrics_counter(reg, name, NULL, "telemetry by apply outcome");
    }
    for (int r = 1; r < TW_REJECT__COUNT; r++) {
        snprintf(labels, sizeof(labels), "reason=\"%s\"", tw_reject_word(r));
        m->rejected[r] = tw_metrics_counter(reg, "twin_ingest_rejected_total", labels,
                                            "telemetry rejected, by reason");
    }
    m->redis_errors = tw_metrics_counter(reg, "twin_ingest_redis_errors_total", NULL,
                                         "failed Redis round trips (each retried)");
    m->state_published = tw_metrics_counter(reg, "twin_ingest_state_published_total", NULL,
                                            "TwinState messages published");
    m->state_republished = tw_metrics_counter(
        reg, "twin_ingest_state_republished_total", NULL,
        "TwinStates republished after sessions raced on an asset (retained state settles)");
    m->state_publish_failed = tw_metrics_counter(reg, "twin_ingest_state_publish_failed_total",
                                                 NULL, "TwinState publishes refused");
    m->worker_restarts = tw_metrics_counter(reg, "twin_ingest_worker_restarts_total", NULL,
                                            "worker processes restarted after dying");
    m->apply_seconds = tw_metrics_histogram(reg, "twin_ingest_apply_seconds", NULL,
                                            "Redis round trip of one apply", latency, 13);
    m->handle_seconds = tw_metrics_histogram(reg, "twin_ingest_handle_seconds", NULL,
                                             "whole handling of one message", latency, 13);
    m->workers_up = tw_metrics_gauge(reg, "twin_ingest_workers_up", NULL, "live workers");
    for (int i = 0; i < workers; i++) {
        snprintf(labels, sizeof(labels), "worker=\"%d\"", i);
        m->mqtt_up[i] = tw_metrics_gauge(reg, "twin_ingest_mqtt_connected", labels,
                                         "1 while the worker's MQTT session is connected");
        m->redis_up[i] = tw_metrics_gauge(reg, "twin_ingest_redis_connected", labels,
                                          "1 while the worker's last Redis call succeeded");
    }
    return m->received && m->handle_seconds && m->mqtt_up[workers - 1] ? 0 : TW_ENOMEM;
}

/* ---- supervision ---------------------------------------------------------------------- */

struct supervisor {
    const struct ingest_config *cfg;
    struct ingest_metrics *m;
    int n;
    pid_t pid[INGEST_MAX_WORKERS]; /* written by main only; the HTTP thread reads them */
    pid_t drainer;                 /* takes over sessions left by a run with more workers */
    struct tw_http *http;          /* held idle across fork() */
    int64_t restart_at_ms[INGEST_MAX_WORKERS];
    struct tw_backoff backoff[INGEST_MAX_WORKERS];
};

/* pid[] is read by the HTTP thread's health check: stores are atomic (the main thread, the only
 * writer, reads its own values plainly). */
static void set_worker_pid(struct supervisor *sup, int i, pid_t pid)
{
    __atomic_store_n(&sup->pid[i], pid, __ATOMIC_RELAXED);
}

/* i < 0: the drainer. */
static void worker_process(struct supervisor *sup, int i, pid_t parent)
{
    /* A worker must not outlive its parent (kill -9 of the parent ends the instance). */
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent)
        _exit(1);
    /* Inherited descriptors (the metrics listener above all) belong to the parent: a
     * worker holding the listening socket would keep the port bound after the parent died. */
    close_range(3, ~0U, 0);
    signal(SIGCHLD, SIG_DFL);
    *stop_requested = 0;
    /* Names that ps and top show, and tests tell apart. */
    char name[16];
    snprintf(name, sizeof(name), i < 0 ? "ingest-drain" : "ingest-w%d", i);
    prctl(PR_SET_NAME, name);
    if (i < 0)
        exit(ingest_drain_run(sup->cfg, (int)sup->cfg->workers, sup->m, stop_requested));
    exit(ingest_worker_run(sup->cfg, i, sup->m, stop_requested));
}

/* fork() with the metrics thread held idle: the child must not inherit a lock it held. */
static pid_t fork_quietly(struct supervisor *sup)
{
    tw_http_hold(sup->http);
    pid_t pid = fork();
    if (pid != 0)
        tw_http_release(sup->http);
    return pid;
}

static void spawn_worker(struct supervisor *sup, int i)
{
    pid_t parent = getpid();
    pid_t pid = fork_quietly(sup);
    if (pid == 0)
        worker_process(sup, i, parent);
    if (pid < 0) {
        tw_log(TW_LOG_ERROR, "worker_fork_failed", "worker=%d error=\"%s\"", i, strerror(errno));
        sup->restart_at_ms[i] = tw_mono_ms() + tw_backoff_next(&sup->backoff[i]);
        return;
    }
    set_worker_pid(sup, i, pid);
}

static void reap_workers(struct supervisor *sup)
{
    int status;
    pid_t pid;
    while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
        if (pid == sup->drainer)
            sup->drainer = 0;
        for (int i = 0; i < sup->n; i++) {
            if (sup->pid[i] != pid)
                continue;
            set_worker_pid(sup, i, 0);
            tw_gauge_set(sup->m->mqtt_up[i], 0);
            tw_gauge_set(sup->m->redis_up[i], 0);
            if (*stop_requested)
                break;
            int64_t delay = tw_backoff_next(&sup->backoff[i]);
            sup->restart_at_ms[i] = tw_mono_ms() + delay;
            tw_counter_add(sup->m->worker_restarts, 1);
            tw_log(TW_LOG_ERROR, "worker_died",
                   "worker=%d pid=%d status=%d signal=%d restart_ms=%lld", i, (int)pid,
                   WIFEXITED(status) ? WEXITSTATUS(status) : -1,
                   WIFSIGNALED(status) ? WTERMSIG(status) : 0, (long long)delay);
        }
    }
}

static void spawn_drainer(struct supervisor *sup)
{
    pid_t parent = getpid();
    pid_t pid = fork_quietly(sup);
    if (pid == 0)
        worker_process(sup, -1, parent);
    sup->drainer = pid > 0 ? pid : 0;
}

static int live_workers(const struct supervisor *sup)
{
    int live = 0;
    for (int i = 0; i < sup->n; i++)
        live += sup->pid[i] > 0;
    return live;
}

static void supervise(struct supervisor *sup)
{
    while (!*stop_requested) {
        child_exited = 0;
        reap_workers(sup);
        int64_t now = tw_mono_ms();
        for (int i = 0; i < sup->n && !*stop_requested; i++) {
            if (sup->pid[i] == 0 && now >= sup->restart_at_ms[i])
                spawn_worker(sup, i);
            /* A worker that stayed up a minute has recovered: start its backoff afresh. */
            if (sup->pid[i] > 0 && now - sup->restart_at_ms[i] > 60000)
                tw_backoff_reset(&sup->backoff[i]);
        }
        tw_gauge_set(sup->m->workers_up, live_workers(sup));
        if (!child_exited)
            tw_sleep_ms(100, stop_requested);
    }
}

/* Asks every worker to finish its in-flight message and leave; one that does not within the
 * grace period is killed — its message was not acknowledged, so the broker redelivers it. */
static int shutdown_workers(struct supervisor *sup)
{
    int clean = 1;
    for (int i = 0; i < sup->n; i++)
        if (sup->pid[i] > 0)
            kill(sup->pid[i], SIGTERM);
    if (sup->drainer > 0)
        kill(sup->drainer, SIGTERM); /* ends between sessions; reaped below or by init */
    int64_t deadline = tw_mono_ms() + sup->cfg->shutdown_grace_ms + 1000;
    while (live_workers(sup) > 0) {
        int status;
        pid_t pid = waitpid(-1, &status, WNOHANG);
        for (int i = 0; pid > 0 && i < sup->n; i++) {
            if (sup->pid[i] != pid)
                continue;
            set_worker_pid(sup, i, 0);
            if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
                clean = 0;
        }
        if (pid > 0)
            continue;
        if (tw_mono_ms() > deadline) {
            for (int i = 0; i < sup->n; i++) {
                if (sup->pid[i] <= 0)
                    continue;
                tw_log(TW_LOG_ERROR, "worker_killed", "worker=%d reason=shutdown_grace_exceeded",
                       i);
                kill(sup->pid[i], SIGKILL);
            }
            clean = 0;
            deadline = INT64_MAX;
        }
        tw_sleep_ms(10, NULL);
    }
    return clean;
}

static bool ingest_health(void *ctx, char *detail, size_t len)
{
    const struct supervisor *sup = ctx;
    for (int i = 0; i < sup->n; i++) {
        const char *why = __atomic_load_n(&sup->pid[i], __ATOMIC_RELAXED) <= 0 ? "not running"
                          : tw_gauge_get(sup->m->mqtt_up[i]) != 1              ? "mqtt disconnected"
                          : tw_gauge_get(sup->m->redis_up[i]) != 1             ? "redis unreachable"
                                                                               : NULL;
        if (why) {
            snprintf(detail, len, "worker %d: %s", i, why);
            return false;
        }
    }
    snprintf(detail, len, "ok");
    return true;
}

int main(int argc, char **argv)
{
    static struct ingest_config cfg;
    static struct ingest_metrics metrics;
    static struct supervisor sup;
    struct tw_metrics *reg = NULL;
    struct tw_http *http = NULL;
    enum tw_config_action action;
    char err[256];

    tw_log_init("ingest", TW_LOG_INFO);
    if (tw_config_load(&ingest_program, argc, argv, &cfg, &cfg.common, &action, err, sizeof(err)) <
        0) {
        fprintf(stderr, "twin-ingest: %s\n", err);
        return 2;
    }
    if (action == TW_CONFIG_HELP)
        return 0;
    static struct tw_model *model;
    if (tw_model_load_reporting("twin-ingest", cfg.common.model_path, &model) < 0)
        return 2;
    cfg.model = model;
    static char *script;
    char why[512];
    int src = ingest_script_build(model, &script, why, sizeof(why));
    if (src < 0) {
        fprintf(stderr, "twin-ingest: cannot build the apply script: %s\n",
                src == TW_ENOMEM ? tw_strerror(src) : why);
        return 2;
    }
    cfg.script = script;
    if (cfg.print_script) {
        fputs(script, stdout);
        int written = fflush(stdout) == 0;
        tw_model_free(model);
        free(script);
        return written ? 0 : 1;
    }
    if (action == TW_CONFIG_CHECK) {
        printf("twin-ingest: configuration is valid\n");
        return 0;
    }
    tw_log_init("ingest", cfg.common.log_level);
    tw_config_log(&ingest_program, &cfg);
    install_signals();
    if (tw_metrics_create(&reg) < 0 ||
        ingest_metrics_register(reg, &metrics, (int)cfg.workers) < 0) {
        tw_log(TW_LOG_ERROR, "metrics_failed", "error=%s", tw_strerror(TW_ENOMEM));
        return 1;
    }
    if (cfg.retire) {
        tw_log(TW_LOG_INFO, "retiring", "instance=%s", cfg.common.instance);
        int status = ingest_drain_run(&cfg, 0, &metrics, stop_requested);
        tw_metrics_destroy(reg);
        return status;
    }
    sup = (struct supervisor){.cfg = &cfg, .m = &metrics, .n = (int)cfg.workers};
    for (int i = 0; i < sup.n; i++)
        sup.backoff[i] = (struct tw_backoff){.initial_ms = 500, .max_ms = 30000};
    if (tw_http_start(reg, cfg.common.metrics_addr, (int)cfg.common.metrics_port, ingest_health,
                      &sup, &http) < 0) {
        tw_log(TW_LOG_ERROR, "metrics_listen_failed", "addr=%s port=%lld", cfg.common.metrics_addr,
               (long long)cfg.common.metrics_port);
        tw_metrics_destroy(reg);
        return 1;
    }
    sup.http = http;
    tw_log(TW_LOG_INFO, "started", "workers=%d instance=%s", sup.n, cfg.common.instance);
    spawn_drainer(&sup);
    supervise(&sup);
    tw_log(TW_LOG_INFO, "stopping", "workers=%d", live_workers(&sup));
    int clean = shutdown_workers(&sup);
    tw_http_stop(http);
    tw_metrics_destroy(reg);
    tw_model_free(model);
    free(script);
    tw_log(TW_LOG_INFO, "stopped", "clean=%d", clean);
    return clean ? 0 : 1;
}
