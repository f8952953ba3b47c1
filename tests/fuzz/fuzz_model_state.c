/* SPDX-License-Identifier: Apache-2.0 */
/* libFuzzer target: a stored predictor state (twin:{asset}:model) of any content is decoded,
 * refused or loaded, and a loaded one refits, forecasts finite values, never crashes. */
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "engine.h"
#include "fuzz_check.h"
#include "twin/codec.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_STATE 4096

/* With physics, so that the grey-box member's state is part of what is overwritten. */
static const struct pred_config cfg = {.season_samples = 12,
                                       .horizon_steps = 24,
                                       .n_points = 24,
                                       .physics = {.cycle_s = 3600, .memory_s = 7200, .drift = 2},
                                       .has_limits = true,
                                       .warn = {.has_above = true, .above = 80.0}};

/* A state that has learnt something real, as the base the input is written over. */
static void learnt_state(struct pred_signal *s)
{
    struct pred_event ev[PRED_MAX_EVENTS];
    CHECK(pred_signal_init(s, &cfg) == 0);
    for (int i = 0; i < 84; i++) /* seven seasons of 12: enough for a batch refit */
        pred_signal_observe(s, 1000000 + 60000LL * i, 50.0 + 10.0 * sin(i * 0.5236) + i % 3, ev);
}

static void exercise(struct pred_signal *s, bool refit)
{
    struct pred_point p[PRED_MAX_POINTS];
    struct pred_event ev[PRED_MAX_EVENTS];
    struct pred_quality q;
    /* A batch refit from a history that ends at the state's last observation, for an input that
     * ends in 'R' (rare in mutations, unlike 0): under the fuzzer's sanitizers a fit costs what
     * some thirty runs without one do. */
    int64_t ts[96];
    double x[96];
    for (int i = 0; refit && i < 96; i++) {
        ts[i] = pred_signal_basis_ms(s) - 60000LL * (95 - i);
        x[i] = 50.0 + 10.0 * sin(i * 0.5236) + i % 5;
    }
    CHECK(!refit || pred_signal_refit(s, ts, x, 96) >= 0);
    for (int round = 0; round < 3; round++) {
        size_t n = pred_signal_forecast(s, p, PRED_MAX_POINTS);
        for (size_t i = 0; i < n; i++)
            CHECK(isfinite(p[i].mean) && isfinite(p[i].lo) && isfinite(p[i].hi));
        pred_signal_quality(s, &q);
        CHECK(pred_signal_model(s) != NULL);
        size_t k = pred_signal_observe(s, pred_signal_basis_ms(s) + 60000, 55.0 + round, ev);
        CHECK(k <= PRED_MAX_EVENTS);
    }
}

/* First byte 0: the input is a SignalModelState message. Otherwise: the input overwrites the
 * bytes of a real saved state from offset (byte 1, 2) on, which reaches the validation of
 * every field. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static double state[MAX_STATE];
    struct pred_signal *s = malloc(pred_signal_size());
    CHECK(s != NULL);
    learnt_state(s);
    size_t n_state = pred_signal_save(s, NULL, 0);
    CHECK(n_state <= MAX_STATE);
    int rc;
    if (size > 0 && data[0] == 0) {
        struct tw_signal_model_state ms;
        rc = tw_codec_decode_signal_model_state(data + 1, size - 1, state, MAX_STATE, &ms);
        if (rc == 0) {
            CHECK(ms.n_state <= MAX_STATE);
            rc = pred_signal_load(s, &cfg, ms.state, ms.n_state);
        }
    } else if (size >= 3) {
        pred_signal_save(s, state, n_state);
        size_t off = ((size_t)data[1] << 8 | data[2]) % (n_state * sizeof(double));
        size_t len =
            size - 3 < n_state * sizeof(double) - off ? size - 3 : n_state * sizeof(double) - off;
        memcpy((uint8_t *)state + off, data + 3, len);
        rc = pred_signal_load(s, &cfg, state, n_state);
    } else {
        rc = -1;
    }
    (void)rc; /* refused (s unchanged) or accepted: either way it must behave */
    exercise(s, size > 0 && data[size - 1] == 'R');
    free(s);
    return 0;
}
