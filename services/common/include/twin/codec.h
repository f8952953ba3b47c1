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

#endif
