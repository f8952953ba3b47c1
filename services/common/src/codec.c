/* SPDX-License-Identifier: Apache-2.0 */
/* The only file that includes the generated protobuf-c code: twin.v1 messages in and out. */
#include "twin/codec.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "twin/v1/twin.pb-c.h"
#include "twin/err.h"

/* Pointer arrays up to this size live on the stack while encoding. */
#define CODEC_STACK_ITEMS 64

/* ---- wire walk (no allocation) ---------------------------------------------------------- */

struct wire {
    const uint8_t *p;
    const uint8_t *end;
};

static int wire_varint(struct wire *w, uint64_t *out)
{
    uint64_t v = 0;
    for (unsigned shift = 0; shift < 64; shift += 7) {
        if (w->p >= w->end)
            return TW_EPROTO;
        uint8_t b = *w->p++;
        v |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) {
            *out = v;
            return 0;
        }
    }
    return TW_EPROTO;
}

/* Reads one field's tag and, for length-delimited fields, its bounds; skips other values. */
static int wire_field(struct wire *w, uint32_t *field, struct wire *body)
{
    uint64_t key, n;
    if (wire_varint(w, &key) < 0 || (key >> 3) == 0 || (key >> 3) > UINT32_MAX)
        return TW_EPROTO;
    *field = (uint32_t)(key >> 3);
    body->p = body->end = NULL;
    switch (key & 7) {
    case 0:
        return wire_varint(w, &n);
    case 1:
        n = 8;
        break;
    case 5:
        n = 4;
        break;
    case 2:
        if (wire_varint(w, &n) < 0)
            return TW_EPROTO;
        body->p = w->p;
        break;
    default: /* groups (3, 4) and reserved types never appear in twin.v1 */
        return TW_EPROTO;
    }
    if (n > (uint64_t)(w->end - w->p))
        return TW_EPROTO;
    w->p += n;
    if (body->p)
        body->end = w->p;
    return 0;
}

/* Names are printable ASCII; a NUL, control or non-ASCII byte can never be valid, and a NUL
 * would be cut off silently by the decoder. */
static int wire_name_ok(const struct wire *s)
{
    for (const uint8_t *q = s->p; q < s->end; q++)
        if (*q < 0x20 || *q >= 0x7f)
            return 0;
    return 1;
}

static int scan_sample(struct wire s, enum tw_scan_fault *fault)
{
    while (s.p < s.end) {
        uint32_t field;
        struct wire body;
        if (wire_field(&s, &field, &body) < 0)
            return TW_EPROTO;
        if (field == 1 && body.p && !wire_name_ok(&body))
            *fault = TW_SCAN_BAD_SIGNAL;
    }
    return 0;
}

int tw_codec_scan_telemetry(const uint8_t *buf, size_t len, struct tw_telemetry_scan *out)
{
    out->n_samples = 0;
    out->fault = TW_SCAN_OK;
    if (len == 0)
        return 0; /* an empty message is a valid, empty Telemetry */
    struct wire w = {buf, buf + len};
    while (w.p < w.end) {
        uint32_t field;
        struct wire body;
        if (wire_field(&w, &field, &body) < 0)
            return TW_EPROTO;
        if (field == 1 && body.p && !wire_name_ok(&body) && out->fault == TW_SCAN_OK)
            out->fault = TW_SCAN_BAD_ASSET_ID;
        if (field == 4 && body.p) {
            out->n_samples++;
            enum tw_scan_fault f = TW_SCAN_OK;
            if (scan_sample(body, &f) < 0)
                return TW_EPROTO;
            if (f != TW_SCAN_OK && out->fault == TW_SCAN_OK)
                out->fault = f;
        }
    }
    return 0;
}

/* ---- Telemetry ---------------------------------------------------------------------------- */

int tw_codec_decode_telemetry(const uint8_t *buf, size_t len, struct tw_telemetry *out)
{
    memset(out, 0, sizeof(*out));
    Twin__V1__Telemetry *m = twin__v1__telemetry__unpack(NULL, len, buf);
    if (!m)
        return TW_EPROTO;
    struct tw_sample *samples = NULL;
    if (m->n_samples) {
        samples = calloc(m->n_samples, sizeof(*samples));
        if (!samples) {
            twin__v1__telemetry__free_unpacked(m, NULL);
            return TW_ENOMEM;
        }
    }
    for (size_t i = 0; i < m->n_samples; i++) {
        samples[i].signal = m->samples[i]->signal;
        samples[i].value = m->samples[i]->value;
    }
    out->asset_id = m->asset_id;
    out->ts_ms = m->ts_ms;
    out->seq = m->seq;
    out->n_samples = m->n_samples;
    out->samples = samples;
    out->impl_ = m;
    return 0;
}

void tw_codec_telemetry_free(struct tw_telemetry *t)
{
    if (!t || !t->impl_)
        return;
    free(t->samples);
    twin__v1__telemetry__free_unpacked(t->impl_, NULL);
    memset(t, 0, sizeof(*t));
}

/* protobuf-c leaves out a proto3 double that compares equal to 0, so -0.0 would arrive as
 * +0.0. Other implementations write it (its bits are not zero); so do we, as an "unknown"
 * field 2 carrying the exact 8 bytes, which every decoder reads as the value. */
static uint8_t negative_zero_bytes[8] = {0, 0, 0, 0, 0, 0, 0, 0x80};
static ProtobufCMessageUnknownField negative_zero_value = {
    .tag = 2, .wire_type = PROTOBUF_C_WIRE_TYPE_64BIT, .len = 8, .data = negative_zero_bytes};

/* Points pbs[i] at samples[i] (converted into items[i]). */
static void codec_fill_samples(Twin__V1__Sample *items, Twin__V1__Sample **pbs,
                               const struct tw_sample *samples, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        twin__v1__sample__init(&items[i]);
        items[i].signal = (char *)samples[i].signal;
        items[i].value = samples[i].value;
        if (samples[i].value == 0 && signbit(samples[i].value)) {
            items[i].base.n_unknown_fields = 1;
            items[i].base.unknown_fields = &negative_zero_value;
        }
        pbs[i] = &items[i];
    }
}

int tw_codec_encode_telemetry(const struct tw_telemetry *t, uint8_t **buf, size_t *len)
{
    int rc = TW_ENOMEM;
    Twin__V1__Telemetry m = TWIN__V1__TELEMETRY__INIT;
    Twin__V1__Sample *items = calloc(t->n_samples + 1, sizeof(*items));
    Twin__V1__Sample **pbs = calloc(t->n_samples + 1, sizeof(*pbs));
    if (!items || !pbs)
        goto out;
    codec_fill_samples(items, pbs, t->samples, t->n_samples);
    m.asset_id = (char *)(t->asset_id ? t->asset_id : "");
    m.ts_ms = t->ts_ms;
    m.seq = t->seq;
    m.n_samples = t->n_samples;
    m.samples = pbs;
    *len = twin__v1__telemetry__get_packed_size(&m);
    *buf = malloc(*len ? *len : 1);
    if (!*buf)
        goto out;
    twin__v1__telemetry__pack(&m, *buf);
    rc = 0;
out:
    free(items);
    free(pbs);
    return rc;
}

/* ---- TwinState ---------------------------------------------------------------------------- */

static int codec_pack_twin_state(const struct tw_twin_state *s, Twin__V1__Sample *items,
                                 Twin__V1__Sample **pbs, uint8_t *buf, size_t cap, size_t *len)
{
    Twin__V1__TwinState m = TWIN__V1__TWIN_STATE__INIT;
    codec_fill_samples(items, pbs, s->samples, s->n_samples);
    m.asset_id = (char *)s->asset_id;
    m.ts_ms = s->ts_ms;
    m.seq = s->seq;
    m.ingest_ms = s->ingest_ms;
    m.n_samples = s->n_samples;
    m.samples = pbs;
    m.n_changed = s->n_changed;
    m.changed = (char **)s->changed;
    *len = twin__v1__twin_state__get_packed_size(&m);
    if (*len > cap)
        return TW_ENOMEM;
    twin__v1__twin_state__pack(&m, buf);
    return 0;
}

int tw_codec_encode_twin_state(const struct tw_twin_state *s, uint8_t *buf, size_t cap, size_t *len)
{
    if (s->n_samples <= CODEC_STACK_ITEMS) {
        Twin__V1__Sample items[CODEC_STACK_ITEMS];
        Twin__V1__Sample *pbs[CODEC_STACK_ITEMS];
        return codec_pack_twin_state(s, items, pbs, buf, cap, len);
    }
    Twin__V1__Sample *items = calloc(s->n_samples, sizeof(*items));
    Twin__V1__Sample **pbs = calloc(s->n_samples, sizeof(*pbs));
    int rc = TW_ENOMEM;
    if (items && pbs)
        rc = codec_pack_twin_state(s, items, pbs, buf, cap, len);
    free(items);
    free(pbs);
    return rc;
}

int tw_codec_decode_twin_state(const uint8_t *buf, size_t len, struct tw_twin_state_msg *out)
{
    memset(out, 0, sizeof(*out));
    Twin__V1__TwinState *m = twin__v1__twin_state__unpack(NULL, len, buf);
    if (!m)
        return TW_EPROTO;
    struct tw_sample *samples = calloc(m->n_samples + 1, sizeof(*samples));
    if (!samples) {
        twin__v1__twin_state__free_unpacked(m, NULL);
        return TW_ENOMEM;
    }
    for (size_t i = 0; i < m->n_samples; i++) {
        samples[i].signal = m->samples[i]->signal;
        samples[i].value = m->samples[i]->value;
    }
    out->s.asset_id = m->asset_id;
    out->s.ts_ms = m->ts_ms;
    out->s.seq = m->seq;
    out->s.ingest_ms = m->ingest_ms;
    out->s.n_samples = m->n_samples;
    out->s.samples = samples;
    out->s.n_changed = m->n_changed;
    out->s.changed = (const char *const *)m->changed;
    out->impl_ = m;
    return 0;
}

void tw_codec_twin_state_free(struct tw_twin_state_msg *msg)
{
    if (!msg || !msg->impl_)
        return;
    free((void *)msg->s.samples);
    twin__v1__twin_state__free_unpacked(msg->impl_, NULL);
    memset(msg, 0, sizeof(*msg));
}

/* ---- Rejected ----------------------------------------------------------------------------- */

int tw_codec_encode_rejected(const char *topic, const char *reason, const char *detail,
                             const uint8_t *payload, size_t payload_len, uint8_t **buf, size_t *len)
{
    Twin__V1__Rejected m = TWIN__V1__REJECTED__INIT;
    m.topic = (char *)(topic ? topic : "");
    m.reason = (char *)(reason ? reason : "");
    m.detail = (char *)(detail ? detail : "");
    m.payload_head.data = (uint8_t *)payload;
    m.payload_head.len =
        payload_len < TW_REJECTED_HEAD_BYTES ? payload_len : TW_REJECTED_HEAD_BYTES;
    if (!payload)
        m.payload_head.len = 0;
    *len = twin__v1__rejected__get_packed_size(&m);
    *buf = malloc(*len ? *len : 1);
    if (!*buf)
        return TW_ENOMEM;
    twin__v1__rejected__pack(&m, *buf);
    return 0;
}

/* ---- Prediction --------------------------------------------------------------------------- */

/* The protobuf-c structs of one Prediction, allocated in as few blocks as it takes. */
struct codec_prediction {
    Twin__V1__SignalForecast *forecasts;
    Twin__V1__SignalForecast **forecast_ptrs;
    Twin__V1__ModelQuality *qualities;
    Twin__V1__ForecastPoint *points;
    Twin__V1__ForecastPoint **point_ptrs;
};

static void codec_prediction_release(struct codec_prediction *c)
{
    free(c->forecasts);
    free(c->forecast_ptrs);
    free(c->qualities);
    free(c->points);
    free(c->point_ptrs);
}

static int codec_prediction_alloc(struct codec_prediction *c, size_t n_forecasts, size_t n_points)
{
    memset(c, 0, sizeof(*c));
    c->forecasts = calloc(n_forecasts + 1, sizeof(*c->forecasts));
    c->forecast_ptrs = calloc(n_forecasts + 1, sizeof(*c->forecast_ptrs));
    c->qualities = calloc(n_forecasts + 1, sizeof(*c->qualities));
    c->points = calloc(n_points + 1, sizeof(*c->points));
    c->point_ptrs = calloc(n_points + 1, sizeof(*c->point_ptrs));
    if (c->forecasts && c->forecast_ptrs && c->qualities && c->points && c->point_ptrs)
        return 0;
    codec_prediction_release(c);
    return TW_ENOMEM;
}

static void codec_fill_forecast(Twin__V1__SignalForecast *f, Twin__V1__ModelQuality *q,
                                Twin__V1__ForecastPoint *points, Twin__V1__ForecastPoint **ptrs,
                                const struct tw_signal_forecast *in)
{
    twin__v1__signal_forecast__init(f);
    twin__v1__model_quality__init(q);
    for (size_t i = 0; i < in->n_points; i++) {
        twin__v1__forecast_point__init(&points[i]);
        points[i].ts_ms = in->points[i].ts_ms;
        points[i].mean = in->points[i].mean;
        points[i].lo = in->points[i].lo;
        points[i].hi = in->points[i].hi;
        ptrs[i] = &points[i];
    }
    q->n = in->quality.n;
    q->mae = in->quality.mae;
    q->rmse = in->quality.rmse;
    q->mase = in->quality.mase;
    q->coverage = in->quality.coverage;
    f->signal = (char *)(in->signal ? in->signal : "");
    f->model = (char *)(in->model ? in->model : "");
    f->n_points = in->n_points;
    f->points = ptrs;
    f->quality = q;
}

int tw_codec_encode_prediction(const struct tw_prediction *p, uint8_t **buf, size_t *len)
{
    struct codec_prediction c;
    size_t n_points = 0;
    for (size_t i = 0; i < p->n_forecasts; i++)
        n_points += p->forecasts[i].n_points;
    if (codec_prediction_alloc(&c, p->n_forecasts, n_points) < 0)
        return TW_ENOMEM;
    Twin__V1__Prediction m = TWIN__V1__PREDICTION__INIT;
    size_t used = 0;
    for (size_t i = 0; i < p->n_forecasts; i++) {
        codec_fill_forecast(&c.forecasts[i], &c.qualities[i], c.points + used, c.point_ptrs + used,
                            &p->forecasts[i]);
        c.forecast_ptrs[i] = &c.forecasts[i];
        used += p->forecasts[i].n_points;
    }
    m.asset_id = (char *)(p->asset_id ? p->asset_id : "");
    m.basis_ts_ms = p->basis_ts_ms;
    m.n_forecasts = p->n_forecasts;
    m.forecasts = c.forecast_ptrs;
    int rc = TW_ENOMEM;
    *len = twin__v1__prediction__get_packed_size(&m);
    *buf = malloc(*len ? *len : 1);
    if (*buf) {
        twin__v1__prediction__pack(&m, *buf);
        rc = 0;
    }
    codec_prediction_release(&c);
    return rc;
}

/* Converts the unpacked forecasts into our structs: one block for the forecasts, then all
 * their points. */
static int codec_convert_forecasts(const Twin__V1__Prediction *m, struct tw_signal_forecast **out)
{
    size_t n_points = 0;
    for (size_t i = 0; i < m->n_forecasts; i++)
        n_points += m->forecasts[i]->n_points;
    size_t head = (m->n_forecasts + 1) * sizeof(struct tw_signal_forecast);
    struct tw_signal_forecast *f =
        calloc(1, head + (n_points + 1) * sizeof(struct tw_forecast_point));
    if (!f)
        return TW_ENOMEM;
    struct tw_forecast_point *pt = (struct tw_forecast_point *)((char *)f + head);
    for (size_t i = 0; i < m->n_forecasts; i++) {
        const Twin__V1__SignalForecast *in = m->forecasts[i];
        f[i].signal = in->signal;
        f[i].model = in->model;
        f[i].n_points = in->n_points;
        f[i].points = pt;
        for (size_t k = 0; k < in->n_points; k++, pt++)
            *pt = (struct tw_forecast_point){in->points[k]->ts_ms, in->points[k]->mean,
                                             in->points[k]->lo, in->points[k]->hi};
        if (in->quality)
            f[i].quality =
                (struct tw_forecast_quality){in->quality->n, in->quality->mae, in->quality->rmse,
                                             in->quality->mase, in->quality->coverage};
    }
    *out = f;
    return 0;
}

int tw_codec_decode_prediction(const uint8_t *buf, size_t len, struct tw_prediction_msg *out)
{
    memset(out, 0, sizeof(*out));
    Twin__V1__Prediction *m = twin__v1__prediction__unpack(NULL, len, buf);
    if (!m)
        return TW_EPROTO;
    struct tw_signal_forecast *f = NULL;
    if (codec_convert_forecasts(m, &f) < 0) {
        twin__v1__prediction__free_unpacked(m, NULL);
        return TW_ENOMEM;
    }
    out->p.asset_id = m->asset_id;
    out->p.basis_ts_ms = m->basis_ts_ms;
    out->p.n_forecasts = m->n_forecasts;
    out->p.forecasts = f;
    out->impl_ = m;
    out->arrays_ = f;
    return 0;
}

void tw_codec_prediction_free(struct tw_prediction_msg *msg)
{
    if (!msg || !msg->impl_)
        return;
    free(msg->arrays_);
    twin__v1__prediction__free_unpacked(msg->impl_, NULL);
    memset(msg, 0, sizeof(*msg));
}

/* ---- Alert -------------------------------------------------------------------------------- */

int tw_codec_encode_alert(const struct tw_alert *a, uint8_t **buf, size_t *len)
{
    Twin__V1__Alert m = TWIN__V1__ALERT__INIT;
    m.asset_id = (char *)(a->asset_id ? a->asset_id : "");
    m.signal = (char *)(a->signal ? a->signal : "");
    m.kind = (Twin__V1__Alert__Kind)a->kind;
    m.severity = (Twin__V1__Alert__Severity)a->severity;
    m.ts_ms = a->ts_ms;
    m.eta_ms = a->eta_ms;
    m.value = a->value;
    m.threshold = a->threshold;
    m.message = (char *)(a->message ? a->message : "");
    *len = twin__v1__alert__get_packed_size(&m);
    *buf = malloc(*len ? *len : 1);
    if (!*buf)
        return TW_ENOMEM;
    twin__v1__alert__pack(&m, *buf);
    return 0;
}

int tw_codec_decode_alert(const uint8_t *buf, size_t len, struct tw_alert_msg *out)
{
    memset(out, 0, sizeof(*out));
    Twin__V1__Alert *m = twin__v1__alert__unpack(NULL, len, buf);
    if (!m)
        return TW_EPROTO;
    out->a = (struct tw_alert){
        .asset_id = m->asset_id,
        .signal = m->signal,
        .kind = (int)m->kind,
        .severity = (int)m->severity,
        .ts_ms = m->ts_ms,
        .eta_ms = m->eta_ms,
        .value = m->value,
        .threshold = m->threshold,
        .message = m->message,
    };
    out->impl_ = m;
    return 0;
}

void tw_codec_alert_free(struct tw_alert_msg *msg)
{
    if (!msg || !msg->impl_)
        return;
    twin__v1__alert__free_unpacked(msg->impl_, NULL);
    memset(msg, 0, sizeof(*msg));
}

/* ---- SignalModelState --------------------------------------------------------------------- */

int tw_codec_encode_signal_model_state(const struct tw_signal_model_state *s, uint8_t *buf,
                                       size_t cap, size_t *len)
{
    Twin__V1__SignalModelState m = TWIN__V1__SIGNAL_MODEL_STATE__INIT;
    m.format = s->format;
    m.saved_ms = s->saved_ms;
    m.basis_ts_ms = s->basis_ts_ms;
    m.n_state = s->n_state;
    m.state = (double *)s->state;
    *len = twin__v1__signal_model_state__get_packed_size(&m);
    if (*len > cap)
        return TW_ENOMEM;
    twin__v1__signal_model_state__pack(&m, buf);
    return 0;
}

static double wire_double(const uint8_t *p)
{
    uint64_t bits = 0;
    for (int i = 7; i >= 0; i--)
        bits = bits << 8 | p[i];
    double d;
    memcpy(&d, &bits, sizeof(d));
    return d;
}

/* Appends the doubles of one `state` field (a packed run, or one unpacked fixed64). */
static int state_append(const struct wire *body, double *state, size_t max_state, size_t *n)
{
    size_t bytes = (size_t)(body->end - body->p);
    if (bytes % 8 != 0 || bytes / 8 > max_state - *n)
        return TW_EPROTO;
    for (const uint8_t *q = body->p; q < body->end; q += 8)
        state[(*n)++] = wire_double(q);
    return 0;
}

/* Reads one field of a SignalModelState; `key` is its tag. */
static int state_field(struct wire *w, uint64_t key, double *state, size_t max_state,
                       struct tw_signal_model_state *out, size_t *n)
{
    uint64_t v = 0, field = key >> 3, type = key & 7;
    if (field >= 1 && field <= 3) {
        if (type != 0 || wire_varint(w, &v) < 0)
            return TW_EPROTO;
        if (field == 1)
            out->format = (uint32_t)v; /* protobuf truncates a uint32 read from 64 bits */
        else if (field == 2)
            out->saved_ms = (int64_t)v;
        else
            out->basis_ts_ms = (int64_t)v;
        return 0;
    }
    if (field == 4 && type == 1) { /* one unpacked value */
        if (w->end - w->p < 8)
            return TW_EPROTO;
        struct wire body = {w->p, w->p + 8};
        w->p = body.end;
        return state_append(&body, state, max_state, n);
    }
    if (field == 4 && type == 2) { /* a packed run */
        if (wire_varint(w, &v) < 0 || v > (uint64_t)(w->end - w->p))
            return TW_EPROTO;
        struct wire body = {w->p, w->p + v};
        w->p = body.end;
        return state_append(&body, state, max_state, n);
    }
    if (field == 4)
        return TW_EPROTO;
    return TW_EAGAIN; /* not ours: the caller skips it */
}

int tw_codec_decode_signal_model_state(const uint8_t *buf, size_t len, double *state,
                                       size_t max_state, struct tw_signal_model_state *out)
{
    memset(out, 0, sizeof(*out));
    if (len == 0) { /* every field at its default */
        out->state = state;
        return 0;
    }
    struct wire w = {buf, buf + len};
    size_t n = 0;
    while (w.p < w.end) {
        const uint8_t *start = w.p;
        uint64_t key;
        if (wire_varint(&w, &key) < 0 || (key >> 3) == 0 || (key >> 3) > UINT32_MAX)
            return TW_EPROTO;
        int rc = state_field(&w, key, state, max_state, out, &n);
        if (rc == TW_EAGAIN) { /* an unknown field: walk over it */
            uint32_t field;
            struct wire body;
            w.p = start;
            rc = wire_field(&w, &field, &body);
        }
        if (rc < 0) {
            memset(out, 0, sizeof(*out));
            return TW_EPROTO;
        }
    }
    out->n_state = n;
    out->state = state;
    return 0;
}
