/* SPDX-License-Identifier: Apache-2.0 */
/* Redis Cluster for the store: the slot map from CLUSTER SLOTS, commands routed by key slot, MOVED/ASK/TRYAGAIN followed. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "store_internal.h"
#include "twin/err.h"
#include "twin/log.h"

/*
 * How a pipeline runs on a cluster. Each command goes to the master that serves its key's
 * slot (the map comes from CLUSTER SLOTS and is read again after any redirect or failure);
 * a command without a key goes to the node of the command before it (so WAIT follows the
 * write it waits for), or of slot 0 when it comes first, and a MULTI ... EXEC block goes
 * whole to the node of its first key (a block whose keys live on two nodes is refused:
 * TW_EINVAL).
 * All commands are written first (one buffer per node) and the replies read in the same
 * order, so a pipeline over three nodes costs one round trip to each, in parallel. Then:
 *   MOVED slot host:port  the slot has a new master: the map entry is corrected, the
 *                         command sent there, and the whole map read again next time;
 *   ASK slot host:port    the slot is being migrated and this key already moved: the
 *                         command is sent there once, after ASKING;
 *   TRYAGAIN              a multi-key command during a migration: sent again shortly;
 *   NOSCRIPT              that node lost its scripts: loaded again, command sent again;
 * up to CLUSTER_ROUNDS rounds, after which the caller gets the error reply. A command inside
 * a MULTI block is never sent alone (EXEC reports its failure). A connection error on any
 * node drops every connection and the map (replies could be out of step) and returns
 * TW_EIO/TW_ETIMEDOUT as for one Redis: whether the commands ran is unknown.
 */

#define CLUSTER_ROUNDS     5
#define CLUSTER_TRYAGAIN_MS 20

/* The index of the node at host:port, added when new; -1 when the table is full. */
static int cluster_node(struct tw_store *s, const char *host, int port)
{
    for (int i = 0; i < s->n_nodes; i++) {
        if (s->node[i].port == port && strcmp(s->node[i].host, host) == 0)
            return i;
    }
    if (s->n_nodes == STORE_NODES_MAX || strlen(host) >= sizeof(s->node[0].host))
        return -1;
    struct store_node *n = &s->node[s->n_nodes];
    memset(n, 0, sizeof(*n));
    strcpy(n->host, host);
    n->port = port;
    return s->n_nodes++;
}

static int cluster_add_addr(void *ctx, const struct tw_cluster_addr *a)
{
    return cluster_node(ctx, a->host, a->port);
}

int store_cluster_init(struct tw_store *s)
{
    s->slot_node = malloc(TW_CLUSTER_SLOTS * sizeof(*s->slot_node));
    if (!s->slot_node)
        return TW_ENOMEM;
    for (int i = 0; i < TW_CLUSTER_SLOTS; i++)
        s->slot_node[i] = -1;
    for (int i = 0; i < s->url.n_seeds; i++)
        cluster_node(s, s->url.seeds[i].host, s->url.seeds[i].port);
    s->map_stale = true;
    return 0;
}

/* Asks node i for CLUSTER SLOTS and installs the map it gives. */
static int cluster_read_map(struct tw_store *s, int i, int16_t *map)
{
    static const char *const argv[] = {"CLUSTER", "SLOTS"};
    const struct tw_cmd cmd = {.argc = 2, .argv = argv};
    struct tw_reply r = {0};
    int rc = store_node_connect(s, i);
    if (rc == 0)
        rc = store_node_append(s, i, &cmd, false);
    if (rc == 0)
        rc = store_node_read(s, i, &r);
    if (rc < 0)
        return rc;
    for (int k = 0; k < TW_CLUSTER_SLOTS; k++)
        map[k] = -1;
    char host[256];
    snprintf(host, sizeof(host), "%s", s->node[i].host);
    int covered = r.type == TW_REPLY_ERROR
                      ? -1
                      : tw_cluster_parse_slots(&r, host, cluster_add_addr, s, map);
    if (covered < 0) {
        snprintf(s->last_error, sizeof(s->last_error), "%.100s:%d CLUSTER SLOTS: %.200s", host,
                 s->node[i].port, r.type == TW_REPLY_ERROR ? r.str : "unexpected reply");
        store_reply_clear(&r);
        return TW_EIO;
    }
    store_reply_clear(&r);
    if (covered < TW_CLUSTER_SLOTS)
        tw_log(TW_LOG_WARN, "redis_cluster_partial", "node=%s:%d slots_served=%d of=%d", host,
               s->node[i].port, covered, TW_CLUSTER_SLOTS);
    memcpy(s->slot_node, map, TW_CLUSTER_SLOTS * sizeof(*map));
    return 0;
}

/* Reads the slot map from the first node that answers: connected nodes first. */
static int cluster_refresh(struct tw_store *s)
{
    int16_t *map = malloc(TW_CLUSTER_SLOTS * sizeof(*map));
    if (!map)
        return TW_ENOMEM;
    int rc = TW_EIO;
    for (int pass = 0; pass < 2 && rc != 0; pass++) {
        for (int i = 0; i < s->n_nodes && rc != 0; i++) {
            if ((pass == 0) != (s->node[i].ctx != NULL))
                continue;
            rc = cluster_read_map(s, i, map);
        }
    }
    free(map);
    if (rc == 0)
        s->map_stale = false;
    return rc;
}

/* After a connection error: every node's replies may be out of step with its commands. */
static void cluster_drop_all(struct tw_store *s)
{
    for (int i = 0; i < s->n_nodes; i++)
        store_node_drop(s, i);
    s->map_stale = true;
}

static bool cmd_is(const struct tw_cmd *cmd, const char *name)
{
    size_t len = cmd->argvlen ? cmd->argvlen[0] : strlen(cmd->argv[0]);
    return !cmd->script && cmd->argc >= 1 && len == strlen(name) &&
           strncasecmp(cmd->argv[0], name, len) == 0;
}

/* Each command's node (-1 none); in_block marks commands of a MULTI ... EXEC block. */
static int cluster_route(struct tw_store *s, const struct tw_cmd *cmds, size_t n, int *target,
                         bool *in_block)
{
    int any = s->slot_node[0];
    for (int i = 0; any < 0 && i < s->n_nodes; i++)
        any = i;
    int last = any; /* the node of the latest command with a key */
    for (size_t i = 0; i < n; i++) {
        int slot = tw_cluster_cmd_slot(&cmds[i]);
        target[i] = slot < 0 ? last : s->slot_node[slot];
        if (slot >= 0)
            last = target[i];
        in_block[i] = false;
        if (slot >= 0 && target[i] < 0) {
            snprintf(s->last_error, sizeof(s->last_error), "no cluster node serves slot %d",
                     slot);
            s->map_stale = true;
            return TW_EIO;
        }
    }
    for (size_t i = 0; i < n; i++) {
        if (!cmd_is(&cmds[i], "MULTI"))
            continue;
        size_t end = i + 1;
        int node = -1;
        for (; end < n && !cmd_is(&cmds[end], "EXEC"); end++) {
            if (tw_cluster_cmd_slot(&cmds[end]) < 0)
                continue;
            if (node >= 0 && target[end] != node) {
                snprintf(s->last_error, sizeof(s->last_error),
                         "a MULTI block spans Redis Cluster nodes");
                return TW_EINVAL;
            }
            node = target[end];
        }
        for (size_t k = i; k <= end && k < n; k++) {
            target[k] = node >= 0 ? node : any;
            in_block[k] = true;
        }
        i = end;
    }
    return 0;
}

static void sleep_ms(int ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* Decides what to do with a reply: 0 = done, 1 = send the command again (target/asking
 * updated), 2 = send it again after a pause, -1 = failed. */
static int cluster_follow(struct tw_store *s, const struct tw_cmd *cmd, struct tw_reply *r,
                          int *target, bool *asking)
{
    struct tw_cluster_redirect rd;
    if (tw_cluster_parse_redirect(r, &rd)) {
        int node = cluster_node(s, rd.host, rd.port);
        if (node < 0)
            return 0;
        if (!rd.ask) {
            s->slot_node[rd.slot] = (int16_t)node;
            s->map_stale = true;
        }
        tw_log(TW_LOG_DEBUG, "redis_cluster_redirect", "kind=%s slot=%d node=%s:%d",
               rd.ask ? "ask" : "moved", rd.slot, rd.host, rd.port);
        *target = node;
        *asking = rd.ask;
        return 1;
    }
    *asking = false;
    if (r->type == TW_REPLY_ERROR && strncmp(r->str, "TRYAGAIN", 8) == 0)
        return 2; /* again, after a pause */
    if (cmd->script && store_is_noscript(r)) {
        tw_log(TW_LOG_INFO, "redis_noscript", "script=%s action=reload node=%s:%d",
               cmd->script->name, s->node[*target].host, s->node[*target].port);
        return store_node_load_scripts(s, *target) == 0 ? 1 : -1;
    }
    if (r->type == TW_REPLY_ERROR && strncmp(r->str, "CLUSTERDOWN", 11) == 0)
        s->map_stale = true;
    return 0;
}

int store_cluster_pipeline(struct tw_store *s, const struct tw_cmd *cmds, size_t n,
                           struct tw_reply *out)
{
    int rc = s->map_stale ? cluster_refresh(s) : 0;
    if (rc < 0)
        return rc;
    int *target = malloc((n + 1) * sizeof(*target));
    bool *flags = malloc((n + 1) * 3 * sizeof(*flags));
    if (!target || !flags) {
        free(target);
        free(flags);
        return TW_ENOMEM;
    }
    bool *in_block = flags, *asking = flags + n + 1, *pending = flags + 2 * (n + 1);
    rc = cluster_route(s, cmds, n, target, in_block);
    for (size_t i = 0; i < n; i++) {
        asking[i] = false;
        pending[i] = true;
    }
    for (int round = 0; rc == 0 && round < CLUSTER_ROUNDS; round++) {
        bool again = false, pause = false;
        for (size_t i = 0; i < n && rc == 0; i++)
            if (pending[i])
                rc = store_node_connect(s, target[i]);
        for (size_t i = 0; i < n && rc == 0; i++)
            if (pending[i])
                rc = store_node_append(s, target[i], &cmds[i], asking[i]);
        for (size_t i = 0; i < n && rc == 0; i++) {
            if (!pending[i])
                continue;
            if (asking[i]) {
                struct tw_reply ok = {0};
                rc = store_node_read(s, target[i], &ok); /* ASKING's +OK */
                store_reply_clear(&ok);
                if (rc < 0)
                    break;
            }
            store_reply_clear(&out[i]);
            rc = store_node_read(s, target[i], &out[i]);
        }
        for (size_t i = 0; i < n && rc == 0; i++) {
            if (!pending[i])
                continue;
            int follow = in_block[i] ? 0 : cluster_follow(s, &cmds[i], &out[i], &target[i],
                                                          &asking[i]);
            if (follow < 0)
                rc = TW_EIO;
            pending[i] = follow > 0;
            again = again || pending[i];
            pause = pause || follow == 2;
        }
        /* The keyless commands after a redirected one (WAIT) go with it. */
        for (size_t i = 0; i < n && rc == 0; i++) {
            if (!pending[i] || tw_cluster_cmd_slot(&cmds[i]) < 0)
                continue;
            for (size_t j = i + 1; j < n && !in_block[j] && tw_cluster_cmd_slot(&cmds[j]) < 0;
                 j++) {
                pending[j] = true;
                target[j] = target[i];
                asking[j] = false;
            }
        }
        if (!again)
            break;
        if (pause)
            sleep_ms(CLUSTER_TRYAGAIN_MS);
    }
    free(target);
    free(flags);
    if (rc < 0 && rc != TW_EINVAL)
        cluster_drop_all(s);
    return rc;
}
