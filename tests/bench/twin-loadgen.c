/* SPDX-License-Identifier: Apache-2.0 */
/* twin-loadgen: publishes Telemetry through the broker alone or through twin-ingest and reports
 * loss, duplicates, throughput and publish→receipt latency, measured the same way in both. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "loadgen.h"

/* ---- coordinator ------------------------------------------------------------------------- */

static void *lg_subscriber_thread(void *arg)
{
    lg_subscriber_run(arg);
    return NULL;
}

static void *lg_publisher_thread(void *arg)
{
    lg_publisher_run(arg);
    return NULL;
}

struct lg_roles {
    pid_t pid[2];
    pthread_t thread[2];
    bool started[2];
};

/* Subscriber first, then publisher; as threads of this process or as two child processes
 * (Paho runs one receive thread per process, shared by all its clients). */
static int lg_start_roles(struct lg_shared *sh, struct lg_roles *r)
{
    void (*const run[2])(struct lg_shared *) = {lg_subscriber_run, lg_publisher_run};
    void *(*const thread[2])(void *) = {lg_subscriber_thread, lg_publisher_thread};
    for (int i = 0; i < 2; i++) {
        if (sh->opt.procs == 1) {
            if (pthread_create(&r->thread[i], NULL, thread[i], sh) != 0)
                return -1;
            r->started[i] = true;
            continue;
        }
        pid_t pid = fork();
        if (pid == 0) {
            prctl(PR_SET_PDEATHSIG, SIGKILL);
            run[i](sh);
            _exit(0);
        }
        if (pid < 0)
            return -1;
        r->pid[i] = pid;
        r->started[i] = true;
    }
    return 0;
}

static void lg_stop_roles(struct lg_shared *sh, struct lg_roles *r)
{
    atomic_store(&sh->stop_sub, 1);
    for (int i = 0; i < 2; i++) {
        if (!r->started[i])
            continue;
        if (sh->opt.procs == 1) {
            pthread_join(r->thread[i], NULL);
            continue;
        }
        int status;
        for (int tries = 0; waitpid(r->pid[i], &status, WNOHANG) == 0; tries++) {
            if (tries == 3000) /* 30 s: a role that hangs is killed, the run is reported */
                kill(r->pid[i], SIGKILL);
            lg_sleep_ms(10);
        }
    }
}

/* Waits for the publisher to finish, then for the receipts to catch up: until all that was
 * published has arrived, nothing arrived for idle_s, or drain_s has passed. */
static void lg_monitor(struct lg_shared *sh)
{
    const struct lg_options *o = &sh->opt;
    int64_t hard_stop = lg_now_ns() + 2 * LG_CONNECT_MS * 1000000LL +
                        lg_s_to_ns(2 * (o->warmup_s + o->duration_s) + 10 + o->drain_s);
    for (;;) {
        int64_t now = lg_now_ns();
        int64_t backlog =
            (int64_t)atomic_load(&sh->published) - (int64_t)atomic_load(&sh->received);
        if (backlog > (int64_t)sh->backlog_peak)
            sh->backlog_peak = (uint64_t)backlog;
        if (atomic_load(&sh->failed) || atomic_load(&sh->sub_ready) < 0 || now > hard_stop)
            return;
        if (atomic_load(&sh->pub_done)) {
            int64_t end = atomic_load(&sh->pub_end_ns), last = atomic_load(&sh->last_recv_ns);
            if (end == 0 || backlog <= 0 || now - end > lg_s_to_ns(o->drain_s))
                return;
            if (now - (last > end ? last : end) > lg_s_to_ns(o->idle_s))
                return;
        }
        lg_sleep_ms(LG_MONITOR_MS);
    }
}

struct lg_report {
    uint64_t published, received, lost, recv_in_window, sent_in_window;
    size_t n_lat;
    int64_t *lat_ns; /* latencies of messages due in the measured window, sorted */
    double throughput, pub_rate;
    int64_t drain_ns;
};

static int lg_cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* Walks every message once: received or lost, and whether it falls in the measured window
 * [t0 + warmup, t0 + warmup + duration) by due time (latency) or receipt time (throughput). */
/* Every message's due time and latency, for plotting where in time the slow ones fall. */
static int lg_write_latency_log(const struct lg_shared *sh)
{
    if (!sh->opt.latency_log)
        return 0;
    FILE *f = fopen(sh->opt.latency_log, "w");
    if (!f) {
        fprintf(stderr, "twin-loadgen: %s: %s\n", sh->opt.latency_log, strerror(errno));
        return -1;
    }
    uint64_t n = atomic_load(&sh->next_idx), assets = (uint64_t)sh->opt.assets;
    int64_t t0 = atomic_load(&sh->t0_ns);
    fprintf(f, "# due_ms latency_ms asset seq\n");
    for (uint64_t idx = 0; idx < n; idx++) {
        int64_t due = atomic_load_explicit(&sh->send_ns[idx], memory_order_acquire);
        if (due == 0)
            continue;
        double lat = sh->recv_count[idx] ? (double)(sh->recv_ns[idx] - due) / 1e6 : -1;
        fprintf(f, "%.3f %.3f %" PRIu64 " %" PRIu64 "\n", (double)(due - t0) / 1e6, lat,
                idx % assets, idx / assets + 1);
    }
    return fclose(f) == 0 ? 0 : -1;
}

static int lg_collect(const struct lg_shared *sh, struct lg_report *r)
{
    uint64_t n = atomic_load(&sh->next_idx);
    int64_t from = atomic_load(&sh->t0_ns) + lg_s_to_ns(sh->opt.warmup_s);
    int64_t to = from + lg_s_to_ns(sh->opt.duration_s), last = 0;
    memset(r, 0, sizeof(*r));
    r->lat_ns = malloc((n ? n : 1) * sizeof(*r->lat_ns));
    if (!r->lat_ns)
        return -1;
    for (uint64_t idx = 0; idx < n; idx++) {
        int64_t due = atomic_load_explicit(&sh->send_ns[idx], memory_order_acquire);
        if (due == 0)
            continue;
        r->published++;
        r->sent_in_window += due >= from && due < to;
        if (sh->recv_count[idx] == 0) {
            r->lost++;
            continue;
        }
        int64_t got = sh->recv_ns[idx];
        r->received++;
        r->recv_in_window += got >= from && got < to;
        last = got > last ? got : last;
        if (due >= from && due < to)
            r->lat_ns[r->n_lat++] = got - due;
    }
    qsort(r->lat_ns, r->n_lat, sizeof(*r->lat_ns), lg_cmp_i64);
    r->throughput = (double)r->recv_in_window / sh->opt.duration_s;
    r->pub_rate = (double)r->sent_in_window / sh->opt.duration_s;
    int64_t end = atomic_load(&sh->pub_end_ns);
    r->drain_ns = end && last > end ? last - end : 0;
    return 0;
}

/* Nearest-rank percentile of the sorted latencies, in ms; 0 when there are none. */
static double lg_pct_ms(const struct lg_report *r, double pct)
{
    if (r->n_lat == 0)
        return 0;
    size_t rank = (size_t)((pct / 100.0) * (double)r->n_lat + 0.999999);
    rank = rank < 1 ? 1 : rank > r->n_lat ? r->n_lat : rank;
    return (double)r->lat_ns[rank - 1] / 1e6;
}

static void lg_print_machine(int argc, char **argv)
{
    char line[512], model[256] = "unknown";
    FILE *f = fopen("/proc/cpuinfo", "r");
    while (f && fgets(line, sizeof(line), f)) {
        char *colon = strchr(line, ':');
        if (strncmp(line, "model name", 10) == 0 && colon) {
            snprintf(model, sizeof(model), "%s", colon + 2);
            model[strcspn(model, "\n")] = '\0';
            break;
        }
    }
    if (f)
        fclose(f);
    printf("command:");
    for (int i = 0; i < argc; i++)
        printf(" %s", argv[i]);
    f = fopen("/proc/sys/kernel/osrelease", "r");
    if (!f || !fgets(line, sizeof(line), f))
        snprintf(line, sizeof(line), "unknown\n");
    if (f)
        fclose(f);
    printf("\nmachine: nproc=%ld cpu=\"%s\" kernel=%s", sysconf(_SC_NPROCESSORS_ONLN), model, line);
}

static double lg_cpu_s(void)
{
    struct rusage self, kids;
    getrusage(RUSAGE_SELF, &self);
    getrusage(RUSAGE_CHILDREN, &kids);
    double s = 0;
    const struct rusage *u[2] = {&self, &kids};
    for (int i = 0; i < 2; i++)
        s += (double)(u[i]->ru_utime.tv_sec + u[i]->ru_stime.tv_sec) +
             (double)(u[i]->ru_utime.tv_usec + u[i]->ru_stime.tv_usec) / 1e6;
    return s;
}

static void lg_print_report(const struct lg_shared *sh, const struct lg_report *r)
{
    const struct lg_options *o = &sh->opt;
    const char *mode = o->mode == LG_BROKER ? "broker" : "ingest";
    double p50 = lg_pct_ms(r, 50), p90 = lg_pct_ms(r, 90), p99 = lg_pct_ms(r, 99);
    double p999 = lg_pct_ms(r, 99.9), max = lg_pct_ms(r, 100);
    uint64_t acked = atomic_load(&sh->acked), dups = atomic_load(&sh->duplicates);
    printf("mode %s, rate %s%.0f msg/s, %ld assets x %d signals, QoS 1, warmup %.1f s, "
           "measured %.1f s, window %ld (awaiting PUBACK <= %d), %d process(es)\n",
           mode, o->rate > 0 ? "" : "max (window-bound) ", o->rate, o->assets, LG_SIGNALS,
           o->warmup_s, o->duration_s, o->window, sh->unacked_max, o->procs);
    printf("offered %" PRIu64 "  published %" PRIu64 "  unsent %" PRIu64 "  publish_failed %" PRIu64
           "  acked %" PRIu64 "\n",
           sh->offered, r->published, sh->unsent, atomic_load(&sh->publish_failed), acked);
    printf("received %" PRIu64 "  lost %" PRIu64 "  duplicates %" PRIu64 "  unmatched %" PRIu64
           "\n",
           r->received, r->lost, dups, atomic_load(&sh->unmatched));
    printf("throughput %.0f msg/s received in the measured interval (published %.0f msg/s)\n",
           r->throughput, r->pub_rate);
    printf("latency ms (publish due -> receipt, n=%zu): p50 %.3f  p90 %.3f  p99 %.3f  "
           "p99.9 %.3f  max %.3f\n",
           r->n_lat, p50, p90, p99, p999, max);
    printf("drain after last publish %.0f ms, backlog peak %" PRIu64
           ", publisher max lag %.1f ms, loadgen cpu %.2f s\n",
           (double)r->drain_ns / 1e6, sh->backlog_peak, (double)sh->max_send_lag_ns / 1e6,
           lg_cpu_s());
    printf("RESULT mode=%s rate=%.0f assets=%ld duration_s=%.1f procs=%d offered=%" PRIu64
           " published=%" PRIu64 " acked=%" PRIu64 " received=%" PRIu64 " lost=%" PRIu64
           " duplicates=%" PRIu64 " unsent=%" PRIu64 " throughput=%.0f pub_rate=%.0f"
           " p50_ms=%.3f p90_ms=%.3f p99_ms=%.3f p999_ms=%.3f max_ms=%.3f drain_ms=%.0f"
           " backlog_peak=%" PRIu64 " conn_lost=%d\n",
           mode, o->rate, o->assets, o->duration_s, o->procs, sh->offered, r->published, acked,
           r->received, r->lost, dups, sh->unsent, r->throughput, r->pub_rate, p50, p90, p99, p999,
           max, (double)r->drain_ns / 1e6, sh->backlog_peak, atomic_load(&sh->conn_lost));
    fflush(stdout);
}

/* ---- options and main -------------------------------------------------------------------- */

static void lg_usage(FILE *f)
{
    fprintf(
        f,
        "usage: twin-loadgen [options]\n"
        "  --mode broker|ingest   broker: publisher -> broker -> subscriber on bench/<run>/...\n"
        "                         ingest: Telemetry in, TwinState out of twin-ingest (default)\n"
        "  --url URL              mqtt://host:port or tcp://host:port (default $TWIN_MQTT_URL or\n"
        "                         mqtt://127.0.0.1:1883)\n"
        "  --topic-root ROOT      default twin/v1\n"
        "  --rate R               msg/s, paced; 0 = as fast as the window allows (default 0)\n"
        "  --duration S           measured seconds (default 10)\n"
        "  --warmup S             seconds before the measured interval (default 2)\n"
        "  --assets N             assets, round robin, 4 signals each (default 1000)\n"
        "  --window W             most messages in flight: published and not yet received\n"
        "                         (rate 0) or not yet acknowledged (paced) (default 1000)\n"
        "  --drain-timeout S      most seconds to wait for receipts after publishing (30)\n"
        "  --idle-timeout S       stop waiting when nothing arrived for S seconds (5)\n"
        "  --procs 1|2            clients in one process, or publisher and subscriber forked\n"
        "                         into two processes (default 2)\n"
        "  --prefix P             asset id prefix (default: unique per run)\n"
        "  --max-msgs N           cap on messages at rate 0 (default 33554432)\n"
        "  --latency-log FILE     write one line per message: due_ms (from the start), latency_ms\n"
        "                         (-1: never received), asset index, seq\n"
        "  --require-no-loss      exit 3 when anything published was not received\n");
}

static int lg_parse_url(struct lg_options *o, const char *url)
{
    const char *hostport = strstr(url, "://") ? strstr(url, "://") + 3 : url;
    if (strncmp(url, "mqtt://", 7) != 0 && strncmp(url, "tcp://", 6) != 0 && hostport != url)
        return -1;
    const char *colon = strrchr(hostport, ':');
    o->port = colon ? atoi(colon + 1) : 1883;
    if (o->port <= 0 || o->port > 65535)
        return -1;
    int n = snprintf(o->uri, sizeof(o->uri), "tcp://%s%s", hostport, colon ? "" : ":1883");
    return n > 0 && (size_t)n < sizeof(o->uri) ? 0 : -1;
}

static int lg_parse_num(const char *text, double lo, double hi, double *out)
{
    char *end = NULL;
    errno = 0;
    double v = strtod(text, &end);
    if (errno || end == text || *end || !(v >= lo && v <= hi))
        return -1;
    *out = v;
    return 0;
}

/* Whole-number options: assets, window, procs, max-msgs. */
static int lg_parse_count(struct lg_options *o, int key, const char *arg)
{
    double v = 0;
    if (lg_parse_num(arg, 1, 1e9, &v) < 0 || v != (double)(long)v)
        return -1;
    if (key == 'W' && v > 60000) /* QoS 1 packet ids are 16 bits */
        return -1;
    if (key == 'a')
        o->assets = (long)v;
    else if (key == 'W')
        o->window = (long)v;
    else if (key == 'M')
        o->max_msgs = (uint64_t)v;
    else if (key == 'p' && (v == 1 || v == 2))
        o->procs = (int)v;
    else
        return -1;
    return 0;
}

static int lg_parse_opt(struct lg_options *o, int key, const char *arg)
{
    switch (key) {
    case 'm':
        o->mode = strcmp(arg, "broker") == 0 ? LG_BROKER : LG_INGEST;
        return strcmp(arg, "broker") == 0 || strcmp(arg, "ingest") == 0 ? 0 : -1;
    case 'u':
        return lg_parse_url(o, arg);
    case 't':
        return strlen(arg) < sizeof(o->topic_root) && arg[0]
                   ? (snprintf(o->topic_root, sizeof(o->topic_root), "%s", arg), 0)
                   : -1;
    case 'P': /* room for the asset index within the 64-character asset id */
        return strlen(arg) < 24 ? (snprintf(o->prefix, sizeof(o->prefix), "%s", arg), 0) : -1;
    case 'r':
        return lg_parse_num(arg, 0, 1e7, &o->rate);
    case 'd':
        return lg_parse_num(arg, 0.1, 86400, &o->duration_s);
    case 'w':
        return lg_parse_num(arg, 0, 3600, &o->warmup_s);
    case 'D':
        return lg_parse_num(arg, 0.1, 3600, &o->drain_s);
    case 'l':
        o->latency_log = arg;
        return 0;
    case 'i':
        return lg_parse_num(arg, 0.1, 3600, &o->idle_s);
    default:
        return lg_parse_count(o, key, arg);
    }
}

static int lg_parse_args(int argc, char **argv, struct lg_options *o)
{
    static const struct option longopts[] = {{"mode", 1, NULL, 'm'},
                                             {"url", 1, NULL, 'u'},
                                             {"topic-root", 1, NULL, 't'},
                                             {"rate", 1, NULL, 'r'},
                                             {"duration", 1, NULL, 'd'},
                                             {"warmup", 1, NULL, 'w'},
                                             {"assets", 1, NULL, 'a'},
                                             {"window", 1, NULL, 'W'},
                                             {"drain-timeout", 1, NULL, 'D'},
                                             {"idle-timeout", 1, NULL, 'i'},
                                             {"procs", 1, NULL, 'p'},
                                             {"prefix", 1, NULL, 'P'},
                                             {"max-msgs", 1, NULL, 'M'},
                                             {"require-no-loss", 0, NULL, 'L'},
                                             {"latency-log", 1, NULL, 'l'},
                                             {"help", 0, NULL, 'h'},
                                             {NULL, 0, NULL, 0}};
    const char *env_url = getenv("TWIN_MQTT_URL");
    *o = (struct lg_options){.mode = LG_INGEST,
                             .duration_s = 10,
                             .warmup_s = 2,
                             .drain_s = 30,
                             .idle_s = 5,
                             .assets = 1000,
                             .window = 1000,
                             .procs = 2,
                             .max_msgs = 32u * 1024 * 1024};
    snprintf(o->topic_root, sizeof(o->topic_root), "twin/v1");
    snprintf(o->prefix, sizeof(o->prefix), "lg%x%x-", (unsigned)getpid() & 0xfffff,
             (unsigned)(lg_wall_ms() / 1000) & 0xfffff);
    if (lg_parse_url(o, env_url && env_url[0] ? env_url : "mqtt://127.0.0.1:1883") < 0)
        return -1;
    int key;
    int at = 0;
    while ((key = getopt_long(argc, argv, "", longopts, &at)) != -1) {
        if (key == 'h') {
            lg_usage(stdout);
            exit(0);
        }
        if (key == '?')
            return -1; /* getopt_long has said why */
        if (key == 'L') {
            o->require_no_loss = true;
        } else if (lg_parse_opt(o, key, optarg) < 0) {
            fprintf(stderr, "twin-loadgen: bad value for --%s: %s\n", longopts[at].name, optarg);
            return -1;
        }
    }
    return optind == argc ? 0 : -1;
}

/* Maps the shared state and its per-message arrays. MAP_NORESERVE: only the pages of the
 * messages actually sent become resident. */
static struct lg_shared *lg_map_shared(const struct lg_options *o)
{
    size_t head = (sizeof(struct lg_shared) + 63) & ~(size_t)63;
    size_t n = (size_t)o->max_msgs;
    size_t total = head + n * (sizeof(int64_t) * 2 + 1);
    void *p = mmap(NULL, total, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS | MAP_NORESERVE,
                   -1, 0);
    if (p == MAP_FAILED)
        return NULL;
    struct lg_shared *sh = p;
    sh->opt = *o;
    sh->send_ns = (_Atomic int64_t *)((char *)p + head);
    sh->recv_ns = (int64_t *)((char *)p + head + n * sizeof(int64_t));
    sh->recv_count = (uint8_t *)((char *)p + head + 2 * n * sizeof(int64_t));
    sh->release_on_receipt = o->rate <= 0;
    sh->offered = o->rate > 0 ? n : 0;
    if (sem_init(&sh->window, 1, (unsigned)o->window) != 0) {
        munmap(p, total);
        return NULL;
    }
    return sh;
}

int main(int argc, char **argv)
{
    struct lg_options o;
    struct lg_roles roles = {0};
    struct lg_report r;
    if (lg_parse_args(argc, argv, &o) < 0) {
        lg_usage(stderr);
        return 2;
    }
    if (o.rate > 0) /* paced: exactly the messages due in warmup + duration */
        o.max_msgs = (uint64_t)(o.rate * (o.warmup_s + o.duration_s));
    if (o.max_msgs == 0) {
        fprintf(stderr, "twin-loadgen: nothing to send\n");
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    struct lg_shared *sh = lg_map_shared(&o);
    if (!sh) {
        fprintf(stderr, "twin-loadgen: cannot map shared state: %s\n", strerror(errno));
        return 1;
    }
    lg_print_machine(argc, argv);
    if (lg_start_roles(sh, &roles) < 0)
        atomic_store(&sh->failed, 1);
    lg_monitor(sh);
    lg_stop_roles(sh, &roles);
    if (atomic_load(&sh->failed) || atomic_load(&sh->sub_ready) != 1 ||
        !atomic_load(&sh->pub_started)) {
        fprintf(stderr, "twin-loadgen: run failed (connect or subscribe)\n");
        return 1;
    }
    if (lg_collect(sh, &r) < 0 || lg_write_latency_log(sh) < 0)
        return 1;
    lg_print_report(sh, &r);
    free(r.lat_ns);
    if (atomic_load(&sh->conn_lost))
        return 1;
    return o.require_no_loss && r.lost > 0 ? 3 : 0;
}
