/* SPDX-License-Identifier: Apache-2.0 */
/* Redis Cluster routing pieces, pure and unit-tested: key slots, redirect replies, the CLUSTER SLOTS map. */
#ifndef TWIN_CLUSTER_H
#define TWIN_CLUSTER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "twin/store.h"

#define TW_CLUSTER_SLOTS 16384

/* The slot of a key (CRC16/XMODEM mod 16384 of its hash tag: the text between the first '{'
 * and the next '}' when that is not empty, else the whole key), as Redis computes it. */
uint16_t tw_cluster_key_slot(const char *key, size_t len);

/* The slot a command's keys live in, or -1 for a command without keys (TIME, PING, MULTI,
 * EXEC, SCRIPT, ...). For a script (EVALSHA argv = numkeys key...) its first key; otherwise
 * the command's first argument. */
int tw_cluster_cmd_slot(const struct tw_cmd *cmd);

/* A MOVED or ASK error reply: "MOVED <slot> <host>:<port>". */
struct tw_cluster_redirect {
    bool ask; /* ASK (this command only) rather than MOVED (the slot has a new owner) */
    int slot;
    char host[256];
    int port;
};

/* True when r is a well-formed MOVED/ASK error; fills *out. */
bool tw_cluster_parse_redirect(const struct tw_reply *r, struct tw_cluster_redirect *out);

/* A node of the map: address as CLUSTER SLOTS gives it. */
struct tw_cluster_addr {
    char host[256];
    int port;
};

/* Reads a CLUSTER SLOTS reply: for each slot range, its master's address. `fallback_host`
 * replaces an empty or "?" address (a node that does not know its own address). Calls
 * add(ctx, addr) once per range's master, which returns a node index >= 0 (or < 0 to fail),
 * and sets slot_node[slot] to it for every slot of the range. Returns the number of slots
 * covered, or -1 for a malformed reply. */
int tw_cluster_parse_slots(const struct tw_reply *r, const char *fallback_host,
                           int (*add)(void *ctx, const struct tw_cluster_addr *addr), void *ctx,
                           int16_t *slot_node);

#endif
