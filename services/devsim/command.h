/* SPDX-License-Identifier: Apache-2.0 */
/* twin-devsim's Commands: decoding and checking a twin.v1.Command, and the set of recent ids
 * that makes a device act on an id once. Pure: no I/O, no clock. */
#ifndef DEVSIM_COMMAND_H
#define DEVSIM_COMMAND_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "twin/validate.h"

#define DEVSIM_CMD_ID_MAX          159      /* chars of [A-Za-z0-9._-], as twin-advisor's */
#define DEVSIM_CMD_MAX_PAYLOAD     8192     /* a Command is a few hundred bytes */
#define DEVSIM_CMD_MAX_DURATION_MS 86400000 /* 24 h */
#define DEVSIM_CMD_MAX_PAST_MS     3600000LL
#define DEVSIM_CMD_MAX_AHEAD_MS    (7 * 86400000LL)
#define DEVSIM_CMD_RECENT_IDS      1024 /* ids remembered for duplicates */
#define DEVSIM_CMD_BY_MAX          64

/* Why a Command is refused: the Rejected.reason and the metric label. */
enum devsim_cmd_reject {
    DEVSIM_CMD_OK = 0,
    DEVSIM_CMD_EMPTY_PAYLOAD, /* e.g. the clearing of a retained command */
    DEVSIM_CMD_OVERSIZE,
    DEVSIM_CMD_RETAINED, /* commands are never retained: a retained one would act again */
    DEVSIM_CMD_UNDECODABLE,
    DEVSIM_CMD_BAD_TOPIC,
    DEVSIM_CMD_BAD_ID,
    DEVSIM_CMD_ASSET_MISMATCH,
    DEVSIM_CMD_UNKNOWN_ASSET,
    DEVSIM_CMD_UNKNOWN_KIND,
    DEVSIM_CMD_NON_FINITE,
    DEVSIM_CMD_OUT_OF_RANGE,
    DEVSIM_CMD_START_OUT_OF_WINDOW,
    DEVSIM_CMD_DUPLICATE,
    DEVSIM_CMD_QUEUE_FULL,
    DEVSIM_CMD__COUNT
};

/* "undecodable", "asset_mismatch", …; "none" for DEVSIM_CMD_OK. Static text. */
const char *devsim_cmd_reject_word(enum devsim_cmd_reject r);

enum devsim_cmd_kind { DEVSIM_CMD_MAINTAIN, DEVSIM_CMD_SLOW };

/* "maintain" or "slow". Static text. */
const char *devsim_cmd_kind_word(enum devsim_cmd_kind k);

/* A checked Command, copied out of the wire message. */
struct devsim_command {
    char id[DEVSIM_CMD_ID_MAX + 1];
    char asset[TW_NAME_MAX + 1]; /* the topic's */
    enum devsim_cmd_kind kind;
    int64_t start_ms;    /* device time; 0: at once */
    int64_t duration_ms; /* maintain: (0, 24 h]; slow: [0, 24 h], 0 = until the next renewal */
    double speed;        /* slow: (0, 1] */
    char by[DEVSIM_CMD_BY_MAX + 1]; /* issued_by, printable ASCII only */
};

/* Decodes the Command received on `topic` (root/asset/{asset}/command) and checks what does
 * not depend on the device's clock or on earlier commands: the topic, the id, the asset (the
 * Command's and the Action's asset_id empty or the topic's; known_asset, when not NULL, says
 * whether the plant has it), the kind and every value's range. Returns DEVSIM_CMD_OK and *out,
 * or a reason with a one-line detail. Any thread. */
enum devsim_cmd_reject devsim_command_parse(const char *topic, const char *root, const uint8_t *buf,
                                            size_t len,
                                            bool (*known_asset)(void *ctx, const char *asset),
                                            void *ctx, struct devsim_command *out, char *detail,
                                            size_t detail_len);

/* Whether the start lies in [now - 1 h, now + 7 d] of device time (0: at once, always). */
enum devsim_cmd_reject devsim_command_check_start(const struct devsim_command *c,
                                                  int64_t now_device_ms, char *detail,
                                                  size_t detail_len);

/* The last DEVSIM_CMD_RECENT_IDS ids acted on. Zero-initialised is empty. One thread. */
struct devsim_recent_ids {
    char ids[DEVSIM_CMD_RECENT_IDS][DEVSIM_CMD_ID_MAX + 1];
    size_t n, next;
};

bool devsim_recent_ids_has(const struct devsim_recent_ids *r, const char *id);
/* Adds id, forgetting the oldest when full. */
void devsim_recent_ids_add(struct devsim_recent_ids *r, const char *id);

#endif
