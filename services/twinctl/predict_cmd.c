/* SPDX-License-Identifier: Apache-2.0 */
/* `twinctl predict ASSET`: the last Prediction of an asset (Redis twin:{asset}:prediction)
 * with each signal's model, its quality and the first forecast points. */
#include <cjson/cJSON.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "twin/clock.h"
#include "twin/codec.h"
#include "twin/err.h"
#include "twin/validate.h"
#include "twinctl.h"

#define DEFAULT_POINTS 4

static void print_forecast(const struct tw_signal_forecast *f, int64_t basis_ms, size_t points)
{
    const struct tw_forecast_quality *q = &f->quality;
    char sig[CTL_ESC_LEN(128)], model[CTL_ESC_LEN(64)];
    printf("%-24s model %-10s n %-8" PRIu64 " mase %-8.3g mae %-10.4g coverage %.3g\n",
           ctl_esc(f->signal, sig, sizeof(sig)),
           f->model && f->model[0] ? ctl_esc(f->model, model, sizeof(model)) : "-", q->n, q->mase,
           q->mae, q->coverage);
    size_t n = points && points < f->n_points ? points : f->n_points;
    for (size_t i = 0; i < n; i++) {
        const struct tw_forecast_point *p = &f->points[i];
        char off[32];
        ctl_fmt_span_diff(p->ts_ms, basis_ms, off, sizeof(off));
        printf("    +%-10s %12.6g   95 %% [%.6g, %.6g]\n", off, p->mean, p->lo, p->hi);
    }
    if (n < f->n_points)
        printf("    (%zu more points; --points 0 shows all)\n", f->n_points - n);
}

static void print_prediction(const struct tw_prediction *p, size_t points)
{
    char basis[48], age[32], asset[CTL_ESC_LEN(TW_NAME_MAX)];
    ctl_fmt_time(p->basis_ts_ms, basis, sizeof(basis));
    ctl_fmt_span_diff(tw_now_ms(), p->basis_ts_ms, age, sizeof(age));
    printf("%s  forecast from the sample of %s (%s ago), %zu signal%s\n\n",
           ctl_esc(p->asset_id, asset, sizeof(asset)), basis, age, p->n_forecasts,
           p->n_forecasts == 1 ? "" : "s");
    for (size_t i = 0; i < p->n_forecasts; i++)
        print_forecast(&p->forecasts[i], p->basis_ts_ms, points);
}

static int parse_points(const char *text, size_t *points)
{
    char *end;
    unsigned long long v = strtoull(text, &end, 10);
    if (!text[0] || *end || text[0] == '-' || v > 100000)
        return ctl_usage_error("predict: --points takes a count (0 = all)");
    *points = (size_t)v;
    return 0;
}

int ctl_predict(const struct ctl_settings *s, int argc, char **argv)
{
    const char *asset = NULL;
    bool json = false;
    size_t points = SIZE_MAX; /* not given: a few for people, all in JSON */
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--json") == 0)
            json = true;
        else if (strcmp(argv[i], "--points") == 0 && i + 1 < argc) {
            if (parse_points(argv[++i], &points) != 0)
                return CTL_EXIT_USAGE;
        } else if (!asset && argv[i][0] != '-')
            asset = argv[i];
        else
            return ctl_usage_error("predict: unexpected \"%.64s\"", argv[i]);
    }
    if (!asset || !tw_valid_asset_id(asset, strlen(asset)))
        return ctl_usage_error("predict: give an asset id (1-64 characters of [A-Za-z0-9._-])");
    char key[TW_NAME_MAX + 24];
    uint8_t *buf = NULL;
    size_t len = 0;
    int64_t pttl = -1;
    snprintf(key, sizeof(key), "twin:{%s}:prediction", asset);
    int rc = ctl_redis_get(s, key, &buf, &len, &pttl);
    if (rc == TW_ENOENT)
        fprintf(stderr,
                "twinctl: no prediction for asset \"%s\" (unknown asset, twin-predictor not "
                "running, or fewer than two samples of any signal yet)\n",
                asset);
    if (rc < 0)
        return CTL_EXIT_FAIL;
    struct tw_prediction_msg m;
    rc = tw_codec_decode_prediction(buf, len, &m);
    free(buf);
    if (rc < 0) {
        fprintf(stderr, "twinctl: %s does not hold a twin.v1.Prediction (%s)\n", key,
                tw_strerror(rc));
        return CTL_EXIT_FAIL;
    }
    if (points == SIZE_MAX)
        points = json ? 0 : DEFAULT_POINTS;
    if (json)
        rc = ctl_json_emit(ctl_json_prediction(&m.p, points));
    else
        print_prediction(&m.p, points);
    tw_codec_prediction_free(&m);
    return rc == 0 ? CTL_EXIT_OK : CTL_EXIT_FAIL;
}
