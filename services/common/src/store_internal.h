/* SPDX-License-Identifier: Apache-2.0 */
/* Shared between store.c (connections, replies, one node) and store_cluster.c (Redis Cluster routing). */
#ifndef TWIN_STORE_INTERNAL_H
#define TWIN_STORE_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>

#include <hiredis/hiredis.h>

#include "twin/cluster.h"
#include "twin/store.h"
#include "twin/url.h"

#define STORE_NODES_MAX 64 /* cluster nodes a store keeps connections to */

struct store_node {
    char host[256];
    int port;
    redisContext *ctx; /* NULL: not connected */
};

struct tw_store {
    struct tw_redis_url url;
    int connect_timeout_ms;
    int command_timeout_ms;
    struct tw_script *const *scripts;
    size_t n_scripts;
    char last_error[512];
    /* One Redis: node[0]. A cluster: every node met (seeds, CLUSTER SLOTS, redirects), up to
     * STORE_NODES_MAX. */
    struct store_node *node;
    int n_nodes;
    int16_t *slot_node; /* cluster: TW_CLUSTER_SLOTS entries, node index or -1 */
    bool map_stale;     /* cluster: refresh the slot map before the next command */
};

/* Connects node i (AUTH, SELECT, SCRIPT LOAD) if it is not connected. */
int store_node_connect(struct tw_store *s, int i);
/* Closes node i's connection; the next use reconnects. */
void store_node_drop(struct tw_store *s, int i);
/* Marks node i dead after a client-library error and maps it to TW_EIO/TW_ETIMEDOUT. */
int store_node_fail(struct tw_store *s, int i, const char *what);
/* Appends one command to node i's output buffer; `asking` puts ASKING before it. */
int store_node_append(struct tw_store *s, int i, const struct tw_cmd *cmd, bool asking);
/* Reads one reply from node i. */
int store_node_read(struct tw_store *s, int i, struct tw_reply *out);
/* Loads the scripts on node i again (after NOSCRIPT). */
int store_node_load_scripts(struct tw_store *s, int i);
void store_reply_clear(struct tw_reply *r);
bool store_is_noscript(const struct tw_reply *r);

/* Cluster: sets up the slot map (store_cluster.c). */
int store_cluster_init(struct tw_store *s);
int store_cluster_pipeline(struct tw_store *s, const struct tw_cmd *cmds, size_t n,
                           struct tw_reply *out);

#endif
