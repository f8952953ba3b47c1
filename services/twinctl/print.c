/* SPDX-License-Identifier: Apache-2.0 */
/* twinctl's output helpers: times and durations for people, JSON lines for scripts, and the
 * shared rendering of alerts and predictions. */
#include <cjson/cJSON.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "twin/codec.h"
#include "twin/err.h"
#include "twin/validate.h"
#include "twinctl.h"

void ctl_fmt_time(int64_t ms, char *buf, size_t len)
{
    if (ms == 0) {
        snprintf(buf, len, "-");
        return;
    }
    time_t secs = (time_t)(ms / 1000);
    struct tm tm;
    char day[32];
    if (!gmtime_r(&secs, &tm) || strftime(day, sizeof(day), "%Y-%m-%d %H:%M:%S", &tm) == 0) {
        snprintf(buf, len, "%" PRId64 " ms", ms);
        return;
    }
    snprintf(buf, len, "%s.%03d UTC", day, (int)((ms % 1000 + 1000) % 1000));
}

void ctl_fmt_clock(int64_t ms, char *buf, size_t len)
{
    time_t secs = (time_t)(ms / 1000);
    struct tm tm;
    if (!gmtime_r(&secs, &tm)) {
        snprintf(buf, len, "?");
        return;
    }
    snprintf(buf, len, "%02d:%02d:%02d.%03d", tm.tm_hour, tm.tm_min, tm.tm_sec,
             (int)((ms % 1000 + 1000) % 1000));
}

void ctl_fmt_span(int64_t ms, char *buf, size_t len)
{
    const char *sign = ms < 0 ? "-" : "";
    double a = fabs((double)ms);
    if (a < 1000)
        snprintf(buf, len, "%s%.0f ms", sign, a);
    else if (a < 60e3)
        snprintf(buf, len, "%s%.1f s", sign, a / 1e3);
    else if (a < 3600e3)
        snprintf(buf, len, "%s%.1f min", sign, a / 60e3);
    else if (a < 86400e3)
        snprintf(buf, len, "%s%.1f h", sign, a / 3600e3);
    else
        snprintf(buf, len, "%s%.1f d", sign, a / 86400e3);
}

bool ctl_ms_diff(int64_t a, int64_t b, int64_t *out)
{
    return !__builtin_sub_overflow(a, b, out);
}

void ctl_fmt_span_diff(int64_t a, int64_t b, char *buf, size_t len)
{
    int64_t d;
    if (ctl_ms_diff(a, b, &d))
        ctl_fmt_span(d, buf, len);
    else
        snprintf(buf, len, "?");
}

cJSON *ctl_json_diff(int64_t a, int64_t b)
{
    int64_t d;
    return ctl_ms_diff(a, b, &d) ? ctl_json_i64(d) : cJSON_CreateNull();
}

const char *ctl_esc(const char *text, char *buf, size_t len)
{
    static const char hex[] = "0123456789abcdef";
    size_t n = 0;
    if (len == 0)
        return "";
    for (const unsigned char *p = (const unsigned char *)(text ? text : ""); *p; p++) {
        bool plain = *p >= 0x20 && *p <= 0x7e && *p != '\\';
        size_t need = plain ? 1 : 4;
        if (n + need >= len)
            break; /* cut at a whole character */
        if (plain) {
            buf[n++] = (char)*p;
            continue;
        }
        buf[n++] = '\\';
        buf[n++] = 'x';
        buf[n++] = hex[*p >> 4];
        buf[n++] = hex[*p & 15];
    }
    buf[n] = '\0';
    return buf;
}

const char *ctl_alert_kind_word(int kind)
{
    static const char *const words[] = {"KIND_UNSPECIFIED", "ANOMALY", "THRESHOLD_FORECAST",
                                        "THRESHOLD_BREACH", "CLEARED"};
    return kind >= 0 && kind <= TW_ALERT_CLEARED ? words[kind] : "UNKNOWN";
}

const char *ctl_severity_word(int severity)
{
    static const char *const words[] = {"SEVERITY_UNSPECIFIED", "INFO", "WARNING", "CRITICAL"};
    return severity >= 0 && severity <= TW_SEVERITY_CRITICAL ? words[severity] : "UNKNOWN";
}

int ctl_json_emit(cJSON *j)
{
    char *text = j ? cJSON_PrintUnformatted(j) : NULL;
    cJSON_Delete(j);
    if (!text) {
        fprintf(stderr, "twinctl: out of memory\n");
        return TW_ENOMEM;
    }
    puts(text);
    fflush(stdout);
    cJSON_free(text);
    return 0;
}

cJSON *ctl_json_i64(int64_t v)
{
    char text[32];
    snprintf(text, sizeof(text), "%" PRId64, v);
    return cJSON_CreateRaw(text);
}

cJSON *ctl_json_u64(uint64_t v)
{
    char text[32];
    snprintf(text, sizeof(text), "%" PRIu64, v);
    return cJSON_CreateRaw(text);
}

/* A double, or null when it is not finite (JSON has no NaN). */
static void add_number(cJSON *o, const char *name, double v)
{
    if (isfinite(v))
        cJSON_AddNumberToObject(o, name, v);
    else
        cJSON_AddNullToObject(o, name);
}

cJSON *ctl_json_alert(const struct tw_alert *a)
{
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "asset", a->asset_id ? a->asset_id : "");
    cJSON_AddStringToObject(j, "signal", a->signal ? a->signal : "");
    cJSON_AddStringToObject(j, "kind", ctl_alert_kind_word(a->kind));
    cJSON_AddStringToObject(j, "severity", ctl_severity_word(a->severity));
    cJSON_AddItemToObject(j, "ts_ms", ctl_json_i64(a->ts_ms));
    cJSON_AddItemToObject(j, "eta_ms", ctl_json_i64(a->eta_ms));
    add_number(j, "value", a->value);
    add_number(j, "threshold", a->threshold);
    cJSON_AddStringToObject(j, "message", a->message ? a->message : "");
    return j;
}

static cJSON *json_forecast(const struct tw_signal_forecast *f, int64_t basis_ms, size_t max_points)
{
    cJSON *j = cJSON_CreateObject(), *q = cJSON_CreateObject(), *pts = cJSON_CreateArray();
    cJSON_AddStringToObject(j, "signal", f->signal ? f->signal : "");
    cJSON_AddStringToObject(j, "model", f->model ? f->model : "");
    cJSON_AddItemToObject(q, "n", ctl_json_u64(f->quality.n));
    add_number(q, "mae", f->quality.mae);
    add_number(q, "rmse", f->quality.rmse);
    add_number(q, "mase", f->quality.mase);
    add_number(q, "coverage", f->quality.coverage);
    cJSON_AddItemToObject(j, "quality", q);
    size_t n = max_points && max_points < f->n_points ? max_points : f->n_points;
    for (size_t i = 0; i < n; i++) {
        const struct tw_forecast_point *p = &f->points[i];
        cJSON *pj = cJSON_CreateObject();
        cJSON_AddItemToObject(pj, "ts_ms", ctl_json_i64(p->ts_ms));
        cJSON_AddItemToObject(pj, "offset_ms", ctl_json_diff(p->ts_ms, basis_ms));
        add_number(pj, "mean", p->mean);
        add_number(pj, "lo", p->lo);
        add_number(pj, "hi", p->hi);
        cJSON_AddItemToArray(pts, pj);
    }
    cJSON_AddItemToObject(j, "points", pts);
    return j;
}

cJSON *ctl_json_prediction(const struct tw_prediction *p, size_t max_points)
{
    cJSON *j = cJSON_CreateObject(), *arr = cJSON_CreateArray();
    cJSON_AddStringToObject(j, "asset", p->asset_id ? p->asset_id : "");
    cJSON_AddItemToObject(j, "basis_ts_ms", ctl_json_i64(p->basis_ts_ms));
    for (size_t i = 0; i < p->n_forecasts; i++)
        cJSON_AddItemToArray(arr, json_forecast(&p->forecasts[i], p->basis_ts_ms, max_points));
    cJSON_AddItemToObject(j, "forecasts", arr);
    return j;
}

void ctl_alert_line(const struct tw_alert *a, char *buf, size_t len)
{
    char when[48], extra[160] = "", asset[CTL_ESC_LEN(TW_NAME_MAX)], sig[CTL_ESC_LEN(TW_NAME_MAX)];
    char msg[CTL_ESC_LEN(256)];
    ctl_fmt_time(a->ts_ms, when, sizeof(when));
    if (a->kind == TW_ALERT_THRESHOLD_FORECAST && a->eta_ms != 0) {
        char eta[48], in[32];
        ctl_fmt_time(a->eta_ms, eta, sizeof(eta));
        ctl_fmt_span_diff(a->eta_ms, a->ts_ms, in, sizeof(in));
        snprintf(extra, sizeof(extra), "  crossing %.6g expected %s (%s after the sample)",
                 a->threshold, eta, in);
    } else if (a->kind != TW_ALERT_CLEARED) {
        snprintf(extra, sizeof(extra), "  value %.6g vs threshold %.6g", a->value, a->threshold);
    }
    snprintf(buf, len, "%s  %s  %s  %s %s%s%s%s", when, ctl_esc(a->asset_id, asset, sizeof(asset)),
             ctl_esc(a->signal, sig, sizeof(sig)), ctl_alert_kind_word(a->kind),
             ctl_severity_word(a->severity), extra, a->message && a->message[0] ? "  " : "",
             ctl_esc(a->message, msg, sizeof(msg)));
}
