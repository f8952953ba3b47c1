/* SPDX-License-Identifier: Apache-2.0 */
/* Encoding and decoding of the twin.v1 wire messages, free of the protobuf library's types. */
#ifndef TWIN_CODEC_H
#define TWIN_CODEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct tw_sample {
    const char *signal;
    double value;
};

/* A decoded Telemetry. Strings and the samples array belong to the decoder: release with
 * tw_codec_telemetry_free. */
struct tw_telemetry {
    const char *asset_id; /* "" when the device left it empty */
    int64_t ts_ms;
    uint64_t seq;
    size_t n_samples;
    struct tw_sample *samples;
    void *impl_; /* decoder's storage */
};

/* What a walk over an encoded Telemetry found, before any decoding (see tw_codec_scan). */
enum tw_scan_fault {
    TW_SCAN_OK,
    TW_SCAN_BAD_ASSET_ID, /* asset_id holds a NUL, control or non-ASCII byte */
    TW_SCAN_BAD_SIGNAL,   /* a signal name does */
};

struct tw_telemetry_scan {
    size_t n_samples;
    enum tw_scan_fault fault;
};

/* Walks the wire form of a Telemetry without allocating: counts its samples (so a huge
 * message is refused before anything is allocated for it) and checks the raw bytes of every
 * string, since the decoder would silently cut a string at an embedded NUL. Returns 0 (see
 * out->fault) or TW_EPROTO when the wire is malformed. */
int tw_codec_scan_telemetry(const uint8_t *buf, size_t len, struct tw_telemetry_scan *out);

/* Decodes a Telemetry. Returns 0, TW_EPROTO (undecodable) or TW_ENOMEM. On success release
 * with tw_codec_telemetry_free. */
int tw_codec_decode_telemetry(const uint8_t *buf, size_t len, struct tw_telemetry *out);
void tw_codec_telemetry_free(struct tw_telemetry *t);

/* Encodes a Telemetry into a new buffer (*buf owned by the caller, free()). */
int tw_codec_encode_telemetry(const struct tw_telemetry *t, uint8_t **buf, size_t *len);

struct tw_twin_state {
    const char *asset_id;
    int64_t ts_ms;
    uint64_t seq;
    int64_t ingest_ms;
    size_t n_samples;
    const struct tw_sample *samples;
    size_t n_changed;
    const char *const *changed;
};

/* Encodes a TwinState into buf (capacity cap). Returns 0 and *len, TW_ENOMEM when cap is too
 * small (*len then holds the size needed). */
int tw_codec_encode_twin_state(const struct tw_twin_state *s, uint8_t *buf, size_t cap,
                               size_t *len);

/* Decodes a TwinState; release with tw_codec_twin_state_free. Strings belong to the decoder. */
struct tw_twin_state_msg {
    struct tw_twin_state s;
    void *impl_;
};
int tw_codec_decode_twin_state(const uint8_t *buf, size_t len, struct tw_twin_state_msg *out);
void tw_codec_twin_state_free(struct tw_twin_state_msg *m);

#define TW_REJECTED_HEAD_BYTES 64

/* Encodes a Rejected (topic, reason word, detail, the first 64 bytes of the payload) into a
 * new buffer (*buf owned by the caller, free()). */
int tw_codec_encode_rejected(const char *topic, const char *reason, const char *detail,
                             const uint8_t *payload, size_t payload_len, uint8_t **buf,
                             size_t *len);

/* ---- Prediction (twin-predictor → dashboards) ------------------------------------------- */

struct tw_forecast_point {
    int64_t ts_ms;
    double mean;
    double lo, hi; /* 95 % interval */
};

/* ModelQuality: the champion's record on its own one-step forecasts. */
struct tw_forecast_quality {
    uint64_t n;
    double mae, rmse, mase;
    double coverage; /* share of observations inside the published 95 % one-step interval */
};

struct tw_signal_forecast {
    const char *signal;
    size_t n_points;
    const struct tw_forecast_point *points;
    struct tw_forecast_quality quality;
    const char *model; /* the champion's name */
};

struct tw_prediction {
    const char *asset_id;
    int64_t basis_ts_ms;
    size_t n_forecasts;
    const struct tw_signal_forecast *forecasts;
};

/* Encodes a Prediction into a new buffer (*buf owned by the caller, free()). 0 or TW_ENOMEM.
 * Any thread. */
int tw_codec_encode_prediction(const struct tw_prediction *p, uint8_t **buf, size_t *len);

/* Decodes a Prediction; release with tw_codec_prediction_free. Strings and arrays belong to
 * the decoder. Returns 0, TW_EPROTO (undecodable) or TW_ENOMEM. */
struct tw_prediction_msg {
    struct tw_prediction p;
    void *impl_;
    void *arrays_;
};
int tw_codec_decode_prediction(const uint8_t *buf, size_t len, struct tw_prediction_msg *out);
void tw_codec_prediction_free(struct tw_prediction_msg *m);

/* ---- Alert -------------------------------------------------------------------------------- */

/* The values of the wire enums Alert.Kind and Alert.Severity. */
enum tw_alert_kind {
    TW_ALERT_KIND_UNSPECIFIED = 0,
    TW_ALERT_ANOMALY = 1,
    TW_ALERT_THRESHOLD_FORECAST = 2,
    TW_ALERT_THRESHOLD_BREACH = 3,
    TW_ALERT_CLEARED = 4,
};

enum tw_alert_severity {
    TW_SEVERITY_UNSPECIFIED = 0,
    TW_SEVERITY_INFO = 1,
    TW_SEVERITY_WARNING = 2,
    TW_SEVERITY_CRITICAL = 3,
};

struct tw_alert {
    const char *asset_id;
    const char *signal;
    int kind;     /* enum tw_alert_kind; a decoded message may carry other values */
    int severity; /* enum tw_alert_severity; likewise */
    int64_t ts_ms;
    int64_t eta_ms;
    double value;
    double threshold;
    const char *message;
};

/* Encodes an Alert into a new buffer (*buf owned by the caller, free()). NULL strings are
 * written as empty. 0 or TW_ENOMEM. Any thread. */
int tw_codec_encode_alert(const struct tw_alert *a, uint8_t **buf, size_t *len);

/* Decodes an Alert; release with tw_codec_alert_free. 0, TW_EPROTO or TW_ENOMEM. */
struct tw_alert_msg {
    struct tw_alert a;
    void *impl_;
};
int tw_codec_decode_alert(const uint8_t *buf, size_t len, struct tw_alert_msg *out);
void tw_codec_alert_free(struct tw_alert_msg *m);

/* ---- SignalModelState (predictor-internal: one field of twin:{asset}:model) ------------- */

struct tw_signal_model_state {
    uint32_t format;     /* version of the layout of `state` */
    int64_t saved_ms;    /* wall clock at save, Unix ms */
    int64_t basis_ts_ms; /* device time of the newest observation learnt */
    size_t n_state;
    const double *state;
};

/* Encodes into buf (capacity cap). Returns 0 and *len, or TW_ENOMEM when cap is too small
 * (*len then holds the size needed; buf may be NULL with cap 0 to ask). Any thread. */
int tw_codec_encode_signal_model_state(const struct tw_signal_model_state *s, uint8_t *buf,
                                       size_t cap, size_t *len);

/* Decodes without allocating: the doubles go into `state` (capacity max_state) and
 * out->state points there. A message with more than max_state values, a malformed wire or a
 * known field with the wrong wire type is TW_EPROTO; nothing is trusted before it is checked
 * against the buffer and the cap. Packed and unpacked encodings of `state` are both read, as
 * protobuf requires. Any thread. */
int tw_codec_decode_signal_model_state(const uint8_t *buf, size_t len, double *state,
                                       size_t max_state, struct tw_signal_model_state *out);

#endif
