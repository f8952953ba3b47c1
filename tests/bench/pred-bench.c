/* SPDX-License-Identifier: Apache-2.0 */
/* Benchmarks the predictor's engine in isolation: observations and model updates per second on
 * one core, forecast paths per second (also with the autoregression as champion), and memory
 * per (asset, signal); with "grey", every signal declares physics (a daily cycle, a quadratic
 * drift) and runs the grey-box model. */
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bench_util.h"
#include "engine.h"

static long rss_kb(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long kb = -1;
    while (f && fgets(line, sizeof(line), f))
        if (strncmp(line, "VmRSS:", 6) == 0)
            kb = strtol(line + 6, NULL, 10);
    if (f)
        fclose(f);
    return kb;
}

/* A plant-like signal: daily cycle, slow drift, noise (deterministic); signal k behaves like
 * signal k % 64, whose warmed-up state it starts from. */
static double sample(uint64_t *rng, long i, long k)
{
    *rng = *rng * 6364136223846793005ull + 1442695040888963407ull;
    double noise = (double)(*rng >> 11) / 9007199254740992.0 - 0.5;
    return 50.0 + (double)(k % 64 % 7) + 3.0 * sin(6.283185307179586 * (double)i / 8640.0) +
           1e-5 * (double)i + 0.3 * noise;
}

/* Forecast paths per second of one signal whose champion is the autoregression (an AR(2)
 * process without season), with the bench's horizon and points: a path iterates the recursion
 * out to the horizon (2,160 steps here), where the other models forecast any step directly. */
static double ar_paths_per_s(const struct pred_config *base, const char **model)
{
    struct pred_config cfg = *base;
    cfg.season_ms = 0;
    cfg.has_limits = false;
    struct pred_signal *s = malloc(pred_signal_size());
    if (!s || pred_signal_init(s, &cfg) != 0)
        return 0;
    struct pred_event ev[PRED_MAX_EVENTS];
    uint64_t rng = 7;
    double x1 = 0, x2 = 0;
    for (long i = 0; i < 20000; i++) {
        rng = rng * 6364136223846793005ull + 1442695040888963407ull;
        double x = 1.2 * x1 - 0.5 * x2 + (double)(rng >> 11) / 9007199254740992.0 - 0.5;
        x2 = x1;
        x1 = x;
        pred_signal_observe(s, 1704067200000LL + i * 10000, 50.0 + x, ev);
    }
    *model = pred_signal_model(s);
    struct pred_point pts[PRED_MAX_POINTS];
    long paths = 0;
    double a = bench_now_s(), el = 0;
    while ((el = bench_now_s() - a) < 1.0)
        paths += pred_signal_forecast(s, pts, PRED_MAX_POINTS) > 0;
    free(s);
    return (double)paths / el;
}

int main(int argc, char **argv)
{
    long n_signals = argc > 1 ? atol(argv[1]) : 10000;
    long steps = argc > 2 ? atol(argv[2]) : 2000;
    bool grey = argc > 3 && strcmp(argv[3], "grey") == 0;
    if (n_signals < 1 || steps < 10 || (argc > 3 && !grey)) {
        fprintf(stderr, "usage: %s [signals (10000)] [steps per signal (2000)] [grey]\n", argv[0]);
        return 2;
    }
    bench_print_machine(stdout, argc, argv);
    struct pred_config cfg = {
        .season_ms = 86400000LL, .horizon_ms = 6 * 3600000LL, .n_points = 24, .has_limits = true};
    cfg.warn.has_above = true;
    cfg.warn.above = 75.0;
    cfg.alarm.has_above = true;
    cfg.alarm.above = 80.0;
    if (grey)
        cfg.physics = (struct pred_grey_spec){.cycle_s = 86400, .memory_s = 86400, .drift = 2};

    long rss0 = rss_kb();
    struct pred_signal **sig = calloc((size_t)n_signals, sizeof(*sig));
    for (long k = 0; k < n_signals; k++) {
        sig[k] = malloc(pred_signal_size());
        if (!sig[k] || pred_signal_init(sig[k], &cfg) != 0)
            return 1;
    }
    long rss1 = rss_kb();

    /* Warm up past the two-season start so that every model of the bank runs. */
    struct pred_event ev[PRED_MAX_EVENTS];
    const int64_t t0 = 1704067200000LL, step_ms = 10000;
    long warm = 2 * 8640 + 100;
    uint64_t rng = 1;
    double tw = bench_now_s();
    for (long k = 0; k < n_signals && k < 64; k++)
        for (long i = 0; i < warm; i++)
            pred_signal_observe(sig[k], t0 + i * step_ms, sample(&rng, i, k), ev);
    /* The other signals start from a copy of a warmed one (same size, same work per step). */
    for (long k = 64; k < n_signals; k++)
        memcpy(sig[k], sig[k % 64], pred_signal_size());
    tw = bench_now_s() - tw;

    /* Measured: round robin over all signals, one observation each per step. */
    long alerts = 0;
    double a = bench_now_s();
    for (long i = warm; i < warm + steps; i++)
        for (long k = 0; k < n_signals; k++)
            alerts += (long)pred_signal_observe(sig[k], t0 + i * step_ms, sample(&rng, i, k), ev);
    double el = bench_now_s() - a;
    double obs = (double)n_signals * (double)steps;

    struct pred_point pts[PRED_MAX_POINTS];
    long paths = 0;
    a = bench_now_s();
    for (long r = 0; r < 10; r++)
        for (long k = 0; k < n_signals; k++)
            paths += pred_signal_forecast(sig[k], pts, PRED_MAX_POINTS) > 0;
    double elp = bench_now_s() - a;

    /* The raw limit of the loop: one exponentially weighted mean per observation. */
    double *ew = calloc((size_t)n_signals, sizeof(double));
    a = bench_now_s();
    for (long i = warm; i < warm + steps; i++)
        for (long k = 0; k < n_signals; k++)
            ew[k] += 0.01 * (sample(&rng, i, k) - ew[k]);
    double elr = bench_now_s() - a;

    printf("\nsignals %ld%s, %ld steps each (warm-up %ld steps on 64 signals: %.2f s)\n", n_signals,
           grey ? " with physics (grey-box in the autoregression's place)" : "", steps, warm, tw);
    printf("state per signal: %zu bytes (struct); RSS %.0f bytes per signal incl. malloc "
           "overhead\n",
           pred_signal_size(), (double)(rss1 - rss0) * 1024.0 / (double)n_signals);
    printf("observations: %.3g per s on one core (%.0f ns each); each runs %u models: %.3g "
           "model updates per s\n",
           obs / el, el / obs * 1e9, pred_signal_models_running(sig[0]),
           pred_signal_models_running(sig[0]) * obs / el);
    printf("raw loop limit (one EW mean per observation, same data): %.3g per s\n", obs / elr);
    printf("forecast paths (24 points with intervals): %.3g per s\n", (double)paths / elp);
    const char *ar_model = "?";
    double ar_paths = ar_paths_per_s(&cfg, &ar_model);
    printf("forecast paths of a signal whose champion is %s (the recursion iterated %ld steps): "
           "%.3g per s\n",
           ar_model, (long)(cfg.horizon_ms / step_ms), ar_paths);
    printf("alerts raised during the measured run: %ld\n", alerts);
    for (long k = 0; k < n_signals; k++)
        free(sig[k]);
    free(sig);
    free(ew);
    return 0;
}
