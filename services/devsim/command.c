/* SPDX-License-Identifier: Apache-2.0 */
/* twin-devsim's Commands: a twin.v1.Command decoded and checked field by field (the only
 * protobuf-c user of this folder), and the bounded set of ids already acted on. */
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "command.h"
#include "twin/v1/twin.pb-c.h"

static const char *const reject_words[DEVSIM_CMD__COUNT] = {
    [DEVSIM_CMD_OK] = "none",
    [DEVSIM_CMD_EMPTY_PAYLOAD] = "empty_payload",
    [DEVSIM_CMD_OVERSIZE] = "oversize",
    [DEVSIM_CMD_RETAINED] = "retained",
    [DEVSIM_CMD_UNDECODABLE] = "undecodable",
    [DEVSIM_CMD_BAD_TOPIC] = "bad_topic",
    [DEVSIM_CMD_BAD_ID] = "bad_id",
    [DEVSIM_CMD_ASSET_MISMATCH] = "asset_mismatch",
    [DEVSIM_CMD_UNKNOWN_ASSET] = "unknown_asset",
    [DEVSIM_CMD_UNKNOWN_KIND] = "unknown_kind",
    [DEVSIM_CMD_NON_FINITE] = "non_finite",
    [DEVSIM_CMD_OUT_OF_RANGE] = "out_of_range",
    [DEVSIM_CMD_START_OUT_OF_WINDOW] = "start_out_of_window",
    [DEVSIM_CMD_DUPLICATE] = "duplicate",
    [DEVSIM_CMD_QUEUE_FULL] = "queue_full",
};

const char *devsim_cmd_reject_word(enum devsim_cmd_reject r)
{
    return r >= 0 && r < DEVSIM_CMD__COUNT ? reject_words[r] : "unknown";
}

const char *devsim_cmd_kind_word(enum devsim_cmd_kind k)
{
    return k == DEVSIM_CMD_SLOW ? "slow" : "maintain";
}

static enum devsim_cmd_reject refuse(enum devsim_cmd_reject r, char *detail, size_t detail_len,
                                     const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static enum devsim_cmd_reject refuse(enum devsim_cmd_reject r, char *detail, size_t detail_len,
                                     const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(detail, detail_len, fmt, ap);
    va_end(ap);
    return r;
}

/* Copies text for a log line: printable ASCII, anything else as '?', cut at cap - 1. */
static void copy_printable(char *dst, size_t cap, const char *src)
{
    size_t j = 0;
    for (; src && src[j] && j + 1 < cap; j++)
        dst[j] = src[j] >= 0x20 && src[j] < 0x7f && src[j] != '"' ? src[j] : '?';
    dst[j] = '\0';
}

/* An asset_id of the message: empty (the topic's) or the topic's. */
static bool same_asset(const char *id, const char *topic_asset)
{
    return !id || !id[0] || strcmp(id, topic_asset) == 0;
}

static enum devsim_cmd_reject check_ids(const Twin__V1__Command *m, const char *asset, char *detail,
                                        size_t detail_len)
{
    if (!tw_valid_id(m->id, strlen(m->id), DEVSIM_CMD_ID_MAX))
        return refuse(DEVSIM_CMD_BAD_ID, detail, detail_len,
                      "id must be 1-%d chars of [A-Za-z0-9._-]", DEVSIM_CMD_ID_MAX);
    if (!same_asset(m->asset_id, asset) || (m->action && !same_asset(m->action->asset_id, asset)))
        return refuse(DEVSIM_CMD_ASSET_MISMATCH, detail, detail_len,
                      "asset_id differs from the topic's asset %s", asset);
    return DEVSIM_CMD_OK;
}

static enum devsim_cmd_reject check_action(const Twin__V1__Action *a, struct devsim_command *out,
                                           char *detail, size_t detail_len)
{
    if (!a)
        return refuse(DEVSIM_CMD_UNKNOWN_KIND, detail, detail_len, "the command has no action");
    if (strcmp(a->kind, "maintain") != 0 && strcmp(a->kind, "slow") != 0)
        return refuse(DEVSIM_CMD_UNKNOWN_KIND, detail, detail_len,
                      "kind '%.32s' is not one devsim obeys (maintain, slow)",
                      strspn(a->kind, "abcdefghijklmnopqrstuvwxyz_") == strlen(a->kind) ? a->kind
                                                                                        : "?");
    out->kind = strcmp(a->kind, "slow") == 0 ? DEVSIM_CMD_SLOW : DEVSIM_CMD_MAINTAIN;
    bool slow = out->kind == DEVSIM_CMD_SLOW;
    if (slow && !isfinite(a->setpoint))
        return refuse(DEVSIM_CMD_NON_FINITE, detail, detail_len, "setpoint is not finite");
    if (slow && !(a->setpoint > 0 && a->setpoint <= 1))
        return refuse(DEVSIM_CMD_OUT_OF_RANGE, detail, detail_len,
                      "setpoint %g is not a speed in (0, 1]", a->setpoint);
    int64_t least = slow ? 0 : 1;
    if (a->duration_ms < least || a->duration_ms > DEVSIM_CMD_MAX_DURATION_MS)
        return refuse(DEVSIM_CMD_OUT_OF_RANGE, detail, detail_len,
                      "duration_ms %" PRId64 " is not in %s0, 86400000]", a->duration_ms,
                      slow ? "[" : "(");
    out->start_ms = a->start_ms;
    out->duration_ms = a->duration_ms;
    out->speed = slow ? a->setpoint : 1.0;
    return DEVSIM_CMD_OK;
}

static enum devsim_cmd_reject check_command(const Twin__V1__Command *m,
                                            bool (*known_asset)(void *, const char *), void *ctx,
                                            struct devsim_command *out, char *detail,
                                            size_t detail_len)
{
    enum devsim_cmd_reject r = check_ids(m, out->asset, detail, detail_len);
    if (r != DEVSIM_CMD_OK)
        return r;
    if (known_asset && !known_asset(ctx, out->asset))
        return refuse(DEVSIM_CMD_UNKNOWN_ASSET, detail, detail_len,
                      "asset %s is not one of the simulated plant's", out->asset);
    r = check_action(m->action, out, detail, detail_len);
    if (r != DEVSIM_CMD_OK)
        return r;
    snprintf(out->id, sizeof(out->id), "%s", m->id);
    copy_printable(out->by, sizeof(out->by), m->issued_by);
    return DEVSIM_CMD_OK;
}

enum devsim_cmd_reject devsim_command_parse(const char *topic, const char *root, const uint8_t *buf,
                                            size_t len,
                                            bool (*known_asset)(void *ctx, const char *asset),
                                            void *ctx, struct devsim_command *out, char *detail,
                                            size_t detail_len)
{
    memset(out, 0, sizeof(*out));
    detail[0] = '\0';
    if (tw_topic_asset(topic, root, "command", out->asset) != TW_REJECT_NONE)
        return refuse(DEVSIM_CMD_BAD_TOPIC, detail, detail_len,
                      "the topic does not name a valid asset");
    if (len == 0)
        return refuse(DEVSIM_CMD_EMPTY_PAYLOAD, detail, detail_len, "no bytes");
    if (len > DEVSIM_CMD_MAX_PAYLOAD)
        return refuse(DEVSIM_CMD_OVERSIZE, detail, detail_len, "%zu bytes, at most %d", len,
                      DEVSIM_CMD_MAX_PAYLOAD);
    Twin__V1__Command *m = twin__v1__command__unpack(NULL, len, buf);
    if (!m)
        return refuse(DEVSIM_CMD_UNDECODABLE, detail, detail_len, "not a twin.v1.Command");
    enum devsim_cmd_reject r = check_command(m, known_asset, ctx, out, detail, detail_len);
    twin__v1__command__free_unpacked(m, NULL);
    return r;
}

enum devsim_cmd_reject devsim_command_check_start(const struct devsim_command *c,
                                                  int64_t now_device_ms, char *detail,
                                                  size_t detail_len)
{
    if (c->start_ms == 0)
        return DEVSIM_CMD_OK;
    /* Compared as differences: no sum can overflow whatever start_ms the wire carried. */
    if (c->start_ms < 0 || (now_device_ms - c->start_ms > DEVSIM_CMD_MAX_PAST_MS) ||
        (c->start_ms > now_device_ms && c->start_ms - now_device_ms > DEVSIM_CMD_MAX_AHEAD_MS))
        return refuse(DEVSIM_CMD_START_OUT_OF_WINDOW, detail, detail_len,
                      "start_ms %" PRId64 " is not within [now - 1 h, now + 7 d] of device time "
                      "(now %" PRId64 ")",
                      c->start_ms, now_device_ms);
    return DEVSIM_CMD_OK;
}

bool devsim_recent_ids_has(const struct devsim_recent_ids *r, const char *id)
{
    for (size_t i = 0; i < r->n; i++)
        if (strcmp(r->ids[i], id) == 0)
            return true;
    return false;
}

void devsim_recent_ids_add(struct devsim_recent_ids *r, const char *id)
{
    snprintf(r->ids[r->next], sizeof(r->ids[r->next]), "%s", id);
    r->next = (r->next + 1) % DEVSIM_CMD_RECENT_IDS;
    if (r->n < DEVSIM_CMD_RECENT_IDS)
        r->n++;
}
