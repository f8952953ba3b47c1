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
