/* SPDX-License-Identifier: Apache-2.0 */
/* `twinctl scenario run | cancel | show (get)`: a request published to twin-scenario and its
 * result awaited (a progress bar on a terminal, Ctrl-C cancels), a cancel, and a stored result
 * read from Redis. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "scenario_cmd.h"
#include "twin/clock.h"
#include "twin/err.h"
#include "twin/signal.h"

#define CONNECT_TIMEOUT_MS 10000
#define CANCEL_WAIT_MS     15000 /* after Ctrl-C, for the CANCELLED result */
#define POLL_MS            200
#define PROGRESS_BAR_WIDTH 30 /* characters of the bar drawn on a terminal */

static const char scenario_help[] =
    "usage: twinctl scenario run [options]\n"
    "       twinctl scenario cancel ID [--timeout D]\n"
    "       twinctl scenario show ID [--json] [--all]   (also: scenario get ID)\n"
    "\n"
    "Disruptions (each may be given several times; --at/--for/--by/--count/--wear-exponent\n"
    "apply to the one named just before):\n"
    "  --down TARGET [--at T] [--for D]   a station (all its machines) or a machine's asset id\n"
    "                                     is down from T for D (default: from 0 to the end)\n"
    "  --maintain TARGET [--at T] --for D maintained: down from T for D, then as new (its live\n"
    "                                     wear forgotten, its time to failure drawn again)\n"
    "  --slow TARGET=SPEED [--at T] [--for D] [--wear-exponent E]\n"
    "                                     runs at SPEED (0.8 = 80 %) of nominal: cycle times /\n"
    "                                     SPEED, times to failure x SPEED^-E (default E 0)\n"
    "  --supplier-late NAME --by D [--at T] [--count N]\n"
    "                                     the next N deliveries (default 1) due from T arrive D "
    "late\n"
    "  --demand FACTOR [--at T] [--for D] order rate x FACTOR (1.4 = +40 %)\n"
    "  T: a duration from now, or \"shift\": the next shift of the plant model's calendar\n"
    "     (now when one is on; the model from --model FILE or TWIN_MODEL)\n"
    "  --set PATH=VALUE                   a parameter from the start: station.<s>.machines,\n"
    "                                     .staff, .cycle_time (s), .mtbf (s), .mttr (s), .scrap,\n"
    "                                     buffer.<b>.capacity, stock.<k>.initial,\n"
    "                                     supplier.<n>.lead_time (s), demand.rate (1/h), ...\n"
    "Run:\n"
    "  --horizon D (default: the runner's, 7d)   --warmup D   --replications N (default 20)\n"
    "  --seed N   --ignore-live (start from the model file, not the live twin)\n"
    "  --id ID   --name TEXT   --timeout D (default 30m)\n"
    "Sweep (variants of the scenario, ranked):\n"
    "  --sweep PATH=MIN:MAX:STEP | PATH=V1,V2,... | PATH=MIN:MAX (with --lhs/--random)\n"
    "  --lhs N | --random N        sample N variants instead of the full grid\n"
    "  --objective KPI --maximize | --minimize    (KPI or \"cost\")\n"
    "  --constraint 'KPI>=X' | 'KPI<=X'          --cost PATH=W (cost per unit)   --top N\n"
    "Output:\n"
    "  --json (the result as JSON)   --all (every KPI)   --quiet (no progress on stderr)\n"
    "\n"
    "Durations: 0, 45s, 90m, 4h, 2d, 1w, 1h30m. Exit status: 0 when the result is OK, 1 when it\n"
    "is ERROR or CANCELLED or none came in time, 2 for bad usage.\n"
    "Examples:\n"
    "  twinctl scenario run --down press-1 --at 0 --for 4h\n"
    "  twinctl scenario run --down press-1 --at shift --for 4h --model deploy/plant.json\n"
    "  twinctl scenario run --maintain press-1 --at 2h --for 3h --horizon 14d\n"
    "  twinctl scenario run --slow press=0.8 --wear-exponent 2\n"
    "  twinctl scenario run --supplier-late steel_mill --by 2d\n"
    "  twinctl scenario run --demand 1.4\n";

static void topic_of(char *buf, size_t len, const struct ctl_settings *s, const char *id,
                     const char *leaf)
{
    snprintf(buf, len, "%s/scenario/%s/%s", s->topic_root, id, leaf);
}

/* ---- waiting for the answer ---------------------------------------------------------------- */

struct waiter {
    const struct ctl_settings *s;
    char result_topic[300], progress_topic[300], rejected_topic[300];
    const uint8_t *sent; /* our request's payload: a Rejected of it carries its head */
    size_t sent_len;
    const uint8_t *cancel_sent;
    size_t cancel_len;
    bool tty, quiet, running_shown, line_open;
};

static bool head_matches(const struct scen_rejected *rj, const uint8_t *p, size_t len)
{
    size_t n = len < sizeof(rj->head) ? len : sizeof(rj->head);
    return p && rj->head_len == n && memcmp(rj->head, p, n) == 0;
}

static void show_progress(struct waiter *w, const struct scen_progress *p)
{
    if (w->quiet)
        return;
    if (p->state == SCEN_QUEUED) {
        fprintf(stderr, "%squeued: %u request%s ahead\n", w->line_open ? "\n" : "",
                p->queue_position, p->queue_position == 1 ? "" : "s");
        w->line_open = false;
    } else if (w->tty) {
        char eta[32] = "";
        if (p->eta_ms >= 0)
            snprintf(eta, sizeof(eta), ", about %.0f s left", (double)p->eta_ms / 1000.0);
        char bar[PROGRESS_BAR_WIDTH + 1];
        double pct = p->percent < 0 ? 0 : p->percent > 100 ? 100 : p->percent;
        int filled = (int)(pct / 100.0 * PROGRESS_BAR_WIDTH + 0.5);
        for (int i = 0; i < PROGRESS_BAR_WIDTH; i++)
            bar[i] = i < filled ? '#' : '.';
        bar[PROGRESS_BAR_WIDTH] = '\0';
        fprintf(stderr, "\rrunning [%s] %5.1f %% (%llu of %llu replications%s)   ", bar, pct,
                (unsigned long long)p->replications_done, (unsigned long long)p->replications_total,
                eta);
        w->line_open = true;
    } else if (!w->running_shown) {
        fprintf(stderr, "running: %llu replications\n", (unsigned long long)p->replications_total);
    }
    w->running_shown |= p->state == SCEN_RUNNING;
}

/* Handles one message; returns 1 with *o filled when the result came, -1 when a Rejected
 * says no result will come, 0 otherwise. */
static int waiter_take(struct waiter *w, const struct tw_inbox_msg *m, struct scen_outcome *o)
{
    if (strcmp(m->topic, w->result_topic) == 0) {
        /* A retained result is an earlier run's under the same id: ours comes live. */
        if (m->retained || m->len == 0)
            return 0;
        if (scen_outcome_decode(m->payload, m->len, o) < 0) {
            fprintf(stderr, "twinctl: the result is not a twin.v1.ScenarioResult\n");
            return -1;
        }
        return 1;
    }
    if (strcmp(m->topic, w->progress_topic) == 0) {
        struct scen_progress p;
        if (scen_progress_decode(m->payload, m->len, &p) == 0)
            show_progress(w, &p);
        return 0;
    }
    struct scen_rejected rj;
    if (scen_rejected_decode(m->payload, m->len, &rj) < 0 ||
        !(head_matches(&rj, w->sent, w->sent_len) ||
          head_matches(&rj, w->cancel_sent, w->cancel_len)))
        return 0;
    char reason[CTL_ESC_LEN(sizeof(rj.reason))], detail[CTL_ESC_LEN(sizeof(rj.detail))];
    fprintf(stderr, "%stwinctl: rejected (%s): %s\n", w->line_open ? "\n" : "",
            ctl_esc(rj.reason, reason, sizeof(reason)), ctl_esc(rj.detail, detail, sizeof(detail)));
    w->line_open = false;
    /* These refusals come with an ERROR result under the id: wait for it. */
    const char *with_result[] = {"bad_request", "too_large", "queue_full", "shutting_down"};
    for (size_t i = 0; i < sizeof(with_result) / sizeof(with_result[0]); i++)
        if (strcmp(rj.reason, with_result[i]) == 0)
            return 0;
    return head_matches(&rj, w->sent, w->sent_len) ? -1 : 0;
}

static int send_cancel(struct tw_inbox *c, struct waiter *w, const char *id, uint8_t **buf,
                       size_t *len)
{
    static struct scen_request req; /* large: not on the stack */
    char topic[300];
    memset(&req, 0, sizeof(req));
    snprintf(req.id, sizeof(req.id), "%s", id);
    req.cancel = true;
    if (scen_request_encode(&req, buf, len) < 0)
        return TW_ENOMEM;
    w->cancel_sent = *buf;
    w->cancel_len = *len;
    snprintf(topic, sizeof(topic), "%s/scenario/request", w->s->topic_root);
    return ctl_session_publish(c, topic, *buf, *len, CONNECT_TIMEOUT_MS);
}

/* Waits for the result of `id` until timeout_ms; Ctrl-C sends a cancel (once). 1 with *o, 0
 * on timeout, -1 when it was refused. */
static int wait_result(struct tw_inbox *c, struct waiter *w, const char *id, int64_t timeout_ms,
                       struct scen_outcome *o)
{
    volatile sig_atomic_t *stop = tw_signal_stop_flag();
    int64_t deadline = tw_mono_ms() + timeout_ms;
    uint8_t *cancel_buf = NULL;
    size_t cancel_len = 0;
    int got = 0;
    while (got == 0 && tw_mono_ms() < deadline) {
        if (*stop && !cancel_buf) {
            fprintf(stderr, "%stwinctl: interrupted: cancelling %s\n", w->line_open ? "\n" : "",
                    id);
            w->line_open = false;
            send_cancel(c, w, id, &cancel_buf, &cancel_len);
            deadline = tw_mono_ms() + CANCEL_WAIT_MS;
        }
        struct tw_inbox_msg *m = tw_inbox_next(c, POLL_MS);
        if (m)
            got = waiter_take(w, m, o);
        free(m);
    }
    if (w->line_open)
        fputc('\n', stderr);
    free(cancel_buf);
    return got;
}

static int open_for(const struct ctl_settings *s, struct waiter *w, const char *id,
                    struct tw_inbox **c)
{
    w->s = s;
    topic_of(w->result_topic, sizeof(w->result_topic), s, id, "result");
    topic_of(w->progress_topic, sizeof(w->progress_topic), s, id, "progress");
    snprintf(w->rejected_topic, sizeof(w->rejected_topic), "%s/rejected/scenario", s->topic_root);
    const char *filters[] = {w->result_topic, w->progress_topic, w->rejected_topic};
    return ctl_session_open(s, filters, 3, CONNECT_TIMEOUT_MS, c);
}

static int outcome_exit(const struct scen_outcome *o)
{
    return o->status == SCEN_OK ? CTL_EXIT_OK : CTL_EXIT_FAIL;
}

/* ---- the commands -------------------------------------------------------------------------- */

static int scenario_run(const struct ctl_settings *s, struct run_opts *o)
{
    struct waiter w = {.tty = isatty(STDERR_FILENO) == 1, .quiet = o->quiet};
    struct scen_outcome out = {0};
    struct tw_inbox *c = NULL;
    uint8_t *buf = NULL;
    size_t len = 0;
    char topic[300];
    int status = CTL_EXIT_FAIL;
    if (scen_request_encode(&o->req, &buf, &len) < 0 || open_for(s, &w, o->req.id, &c) < 0)
        goto out;
    w.sent = buf;
    w.sent_len = len;
    snprintf(topic, sizeof(topic), "%s/scenario/request", s->topic_root);
    if (!o->quiet)
        fprintf(stderr, "scenario %s: %s\n", o->req.id, o->req.name);
    if (ctl_session_publish(c, topic, buf, len, CONNECT_TIMEOUT_MS) < 0)
        goto out;
    int got = wait_result(c, &w, o->req.id, o->timeout_ms, &out);
    if (got == 0)
        fprintf(stderr,
                "twinctl: no result for %s within %.0f s; it may still be running: "
                "twinctl scenario show %s\n",
                o->req.id, (double)o->timeout_ms / 1000.0, o->req.id);
    if (got == 1) {
        struct ctl_report_opts ro = {.all = o->all,
                                     .objective = o->req.has_sweep ? o->req.sweep.objective : NULL,
                                     .maximize = o->req.sweep.maximize};
        if (o->json)
            ctl_print_outcome_json(&out);
        else
            ctl_print_outcome(&out, &ro);
        status = outcome_exit(&out);
        scen_outcome_free(&out);
    }
out:
    tw_inbox_close(c);
    free(buf);
    return status;
}

static int scenario_cancel(const struct ctl_settings *s, const char *id, int64_t timeout_ms)
{
    struct waiter w = {.quiet = true};
    struct scen_outcome out = {0};
    struct tw_inbox *c = NULL;
    uint8_t *buf = NULL;
    size_t len = 0;
    int status = CTL_EXIT_FAIL;
    if (open_for(s, &w, id, &c) < 0 || send_cancel(c, &w, id, &buf, &len) < 0)
        goto out;
    w.sent = buf; /* an unknown_id refusal of the cancel ends the wait */
    w.sent_len = len;
    int got = wait_result(c, &w, id, timeout_ms, &out);
    if (got == 1) {
        char error[CTL_ESC_LEN(512)];
        printf("%s: %s%s%s\n", id, scen_status_word(out.status), out.error[0] ? ": " : "",
               ctl_esc(out.error, error, sizeof(error)));
        status = out.status == SCEN_CANCELLED ? CTL_EXIT_OK : CTL_EXIT_FAIL;
        scen_outcome_free(&out);
    } else if (got == 0) {
        fprintf(stderr, "twinctl: no answer to the cancel of %s within %.0f s\n", id,
                (double)timeout_ms / 1000.0);
    }
out:
    tw_inbox_close(c);
    free(buf);
    return status;
}

static int scenario_get(const struct ctl_settings *s, const char *id, bool json, bool all)
{
    char key[sizeof("twin:scenario:") + SCEN_ID_MAX];
    uint8_t *buf = NULL;
    size_t len = 0;
    int64_t pttl = -1;
    struct scen_outcome out;
    snprintf(key, sizeof(key), "twin:scenario:%s", id);
    int rc = ctl_redis_get(s, key, &buf, &len, &pttl);
    if (rc == TW_ENOENT)
        fprintf(stderr,
                "twinctl: no result stored for %s (never run, still running, or expired "
                "after its TTL)\n",
                id);
    if (rc < 0)
        return CTL_EXIT_FAIL;
    rc = scen_outcome_decode(buf, len, &out);
    free(buf);
    if (rc < 0) {
        fprintf(stderr, "twinctl: %s does not hold a twin.v1.ScenarioResult\n", key);
        return CTL_EXIT_FAIL;
    }
    struct ctl_report_opts ro = {.all = all};
    if (json) {
        ctl_print_outcome_json(&out);
    } else {
        ctl_print_outcome(&out, &ro);
        if (pttl >= 0)
            printf("(stored in %s, kept %.1f more hours)\n", key, (double)pttl / 3600000.0);
    }
    rc = outcome_exit(&out);
    scen_outcome_free(&out);
    return rc;
}

/* "ID" plus --json/--all/--timeout for cancel and get. */
static int id_args(int argc, char **argv, const char **id, bool *json, bool *all,
                   int64_t *timeout_ms)
{
    *id = NULL;
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--json") == 0)
            *json = true;
        else if (strcmp(argv[i], "--all") == 0)
            *all = true;
        else if (strcmp(argv[i], "--timeout") == 0 && i + 1 < argc) {
            if (ctl_parse_duration(argv[++i], timeout_ms) < 0 || *timeout_ms <= 0)
                return ctl_usage_error("--timeout: not a duration");
        } else if (!*id && argv[i][0] != '-')
            *id = argv[i];
        else
            return ctl_usage_error("unexpected \"%.64s\"", argv[i]);
    }
    if (!*id || !scen_valid_id(*id))
        return ctl_usage_error("give the scenario's id (1-%u characters of [A-Za-z0-9._-])",
                               SCEN_ID_MAX);
    return 0;
}

int ctl_scenario(const struct ctl_settings *s, int argc, char **argv)
{
    const char *cmd = argc >= 2 ? argv[1] : "help";
    if (strcmp(cmd, "help") == 0 || strcmp(cmd, "--help") == 0) {
        fputs(scenario_help, stdout);
        return argc >= 2 ? CTL_EXIT_OK : CTL_EXIT_USAGE;
    }
    if (strcmp(cmd, "run") == 0) {
        static struct run_opts o; /* large: not on the stack */
        int rc = ctl_run_opts_parse(&o, argc - 2, argv + 2);
        if (rc == 0)
            rc = scenario_run(s, &o);
        scen_request_free(&o.req);
        return rc;
    }
    const char *id;
    bool json = false, all = false;
    int64_t timeout_ms = 30000;
    if (strcmp(cmd, "cancel") == 0 || strcmp(cmd, "get") == 0 || strcmp(cmd, "show") == 0) {
        int rc = id_args(argc - 2, argv + 2, &id, &json, &all, &timeout_ms);
        if (rc != 0)
            return rc;
        return cmd[0] == 'c' ? scenario_cancel(s, id, timeout_ms) : scenario_get(s, id, json, all);
    }
    return ctl_usage_error("unknown scenario command \"%.64s\" (run, cancel, show, get)", cmd);
}
