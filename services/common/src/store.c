/* SPDX-License-Identifier: Apache-2.0 */
/* Redis connections, pipelines and scripts for services (with store_cluster.c the only code that uses hiredis). */
#include "twin/store.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store_internal.h"
#include "twin/err.h"
#include "twin/log.h"

static struct timeval ms_to_tv(int ms)
{
    struct timeval tv = {.tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000};
    return tv;
}

int tw_store_create(const struct tw_store_config *cfg, struct tw_script *const *scripts,
                    size_t n_scripts, struct tw_store **out)
{
    char err[160];
    struct tw_store *s = calloc(1, sizeof(*s));
    if (!s)
        return TW_ENOMEM;
    if (tw_url_parse_redis(cfg->url, &s->url, err, sizeof(err)) < 0) {
        tw_log(TW_LOG_ERROR, "redis_url_invalid", "reason=\"%s\"", err);
        free(s);
        return TW_EINVAL;
    }
    s->connect_timeout_ms = cfg->connect_timeout_ms > 0 ? cfg->connect_timeout_ms : 2000;
    s->command_timeout_ms = cfg->command_timeout_ms > 0 ? cfg->command_timeout_ms : 5000;
    s->scripts = scripts;
    s->n_scripts = n_scripts;
    s->node = calloc(s->url.cluster ? STORE_NODES_MAX : 1, sizeof(*s->node));
    if (!s->node) {
        tw_store_destroy(s);
        return TW_ENOMEM;
    }
    if (s->url.cluster) {
        int rc = store_cluster_init(s);
        if (rc < 0) {
            tw_store_destroy(s);
            return rc;
        }
    } else {
        memcpy(s->node[0].host, s->url.host, sizeof(s->node[0].host));
        s->node[0].port = s->url.port;
        s->n_nodes = 1;
    }
    *out = s;
    return 0;
}

void store_node_drop(struct tw_store *s, int i)
{
    if (s->node[i].ctx) {
        redisFree(s->node[i].ctx);
        s->node[i].ctx = NULL;
    }
}

void tw_store_destroy(struct tw_store *s)
{
    if (!s)
        return;
    for (int i = 0; i < s->n_nodes; i++)
        store_node_drop(s, i);
    free(s->node);
    free(s->slot_node);
    explicit_bzero(&s->url, sizeof(s->url)); /* no password left in freed memory */
    free(s);
}

const char *tw_store_last_error(const struct tw_store *s)
{
    return s->last_error;
}

bool tw_store_is_connected(const struct tw_store *s)
{
    if (s->url.cluster && (!s->slot_node || s->map_stale))
        return false;
    for (int i = 0; i < s->n_nodes; i++)
        if (s->node[i].ctx)
            return true;
    return false;
}

bool tw_store_is_cluster(const struct tw_store *s)
{
    return s->url.cluster;
}

int store_node_fail(struct tw_store *s, int i, const char *what)
{
    int rc = TW_EIO;
    redisContext *ctx = s->node[i].ctx;
    const char *where = s->url.cluster ? s->node[i].host : "";
    char port[16] = "";
    if (s->url.cluster)
        snprintf(port, sizeof(port), ":%d", s->node[i].port);
    if (ctx) {
        if (ctx->err == REDIS_ERR_IO && (errno == EAGAIN || errno == EWOULDBLOCK))
            rc = TW_ETIMEDOUT;
        snprintf(s->last_error, sizeof(s->last_error), "%.100s%s%s%s: %.200s", where, port,
                 where[0] ? " " : "", what, rc == TW_ETIMEDOUT ? "timed out" : ctx->errstr);
    } else {
        snprintf(s->last_error, sizeof(s->last_error), "%.100s%s%s%s", where, port,
                 where[0] ? " " : "", what);
    }
    store_node_drop(s, i);
    return rc;
}

/* Runs one command on a fresh connection during set-up; an error reply fails the connect. */
static int store_setup_cmd(struct tw_store *s, int i, const char *what, redisReply **keep,
                           int argc, const char **argv)
{
    redisReply *r = redisCommandArgv(s->node[i].ctx, argc, argv, NULL);
    if (!r)
        return store_node_fail(s, i, what);
    if (r->type == REDIS_REPLY_ERROR) {
        snprintf(s->last_error, sizeof(s->last_error), "%s: %s", what, r->str);
        freeReplyObject(r);
        store_node_drop(s, i);
        return TW_EIO;
    }
    if (keep)
        *keep = r;
    else
        freeReplyObject(r);
    return 0;
}

int store_node_load_scripts(struct tw_store *s, int i)
{
    for (size_t k = 0; k < s->n_scripts; k++) {
        redisReply *r = NULL;
        const char *argv[] = {"SCRIPT", "LOAD", s->scripts[k]->source};
        int rc = store_setup_cmd(s, i, "SCRIPT LOAD", &r, 3, argv);
        if (rc < 0)
            return rc;
        if (r->type != REDIS_REPLY_STRING || r->len != 40) {
            freeReplyObject(r);
            store_node_drop(s, i);
            snprintf(s->last_error, sizeof(s->last_error), "SCRIPT LOAD: unexpected reply");
            return TW_EPROTO;
        }
        /* The SHA1 of the source: the same on every node. */
        memcpy(s->scripts[k]->sha, r->str, 41);
        freeReplyObject(r);
    }
    return 0;
}

static int store_auth_select(struct tw_store *s, int i)
{
    int rc = 0;
    if (s->url.password[0]) {
        const char *argv[] = {"AUTH", s->url.user, s->url.password};
        if (!s->url.user[0])
            argv[1] = s->url.password; /* AUTH <password>: the default user */
        rc = store_setup_cmd(s, i, "AUTH", NULL, s->url.user[0] ? 3 : 2, argv);
    }
    if (rc == 0 && s->url.db != 0) {
        char db[16];
        snprintf(db, sizeof(db), "%d", s->url.db);
        const char *argv[] = {"SELECT", db};
        rc = store_setup_cmd(s, i, "SELECT", NULL, 2, argv);
    }
    return rc;
}

int store_node_connect(struct tw_store *s, int i)
{
    struct store_node *n = &s->node[i];
    if (n->ctx)
        return 0;
    n->ctx = redisConnectWithTimeout(n->host, n->port, ms_to_tv(s->connect_timeout_ms));
    if (!n->ctx || n->ctx->err)
        return store_node_fail(s, i, "connect");
    /* hiredis sets TCP_NODELAY on TCP connections; keepalive finds a dead peer. */
    redisEnableKeepAlive(n->ctx);
    if (redisSetTimeout(n->ctx, ms_to_tv(s->command_timeout_ms)) != REDIS_OK)
        return store_node_fail(s, i, "set timeout");
    int rc = store_auth_select(s, i);
    if (rc == 0)
        rc = store_node_load_scripts(s, i);
    if (rc == 0)
        s->last_error[0] = '\0';
    return rc;
}

int tw_store_connect(struct tw_store *s)
{
    if (!s->url.cluster)
        return store_node_connect(s, 0);
    /* A cluster: connected once the slot map is known (store_cluster.c). */
    static const char *const ping[] = {"PING"};
    struct tw_reply *r = NULL;
    int rc = tw_store_command(s, &r, 1, ping, NULL);
    tw_store_replies_free(r, 1);
    return rc;
}

/* ---- replies ------------------------------------------------------------------------------ */

static int reply_convert(const redisReply *r, struct tw_reply *out)
{
    memset(out, 0, sizeof(*out));
    switch (r->type) {
    case REDIS_REPLY_INTEGER:
        out->type = TW_REPLY_INT;
        out->integer = r->integer;
        return 0;
    case REDIS_REPLY_NIL:
        out->type = TW_REPLY_NIL;
        return 0;
    case REDIS_REPLY_STRING:
    case REDIS_REPLY_STATUS:
    case REDIS_REPLY_ERROR: {
        out->type = r->type == REDIS_REPLY_STRING   ? TW_REPLY_STR
                    : r->type == REDIS_REPLY_STATUS ? TW_REPLY_STATUS
                                                    : TW_REPLY_ERROR;
        char *copy = malloc(r->len + 1);
        if (!copy)
            return TW_ENOMEM;
        memcpy(copy, r->str, r->len);
        copy[r->len] = '\0';
        out->str = copy;
        out->len = r->len;
        return 0;
    }
    case REDIS_REPLY_ARRAY:
        break;
    default:
        return TW_EPROTO;
    }
    out->type = TW_REPLY_ARRAY;
    struct tw_reply *elem = calloc(r->elements + 1, sizeof(*elem));
    if (!elem)
        return TW_ENOMEM;
    out->elem = elem;
    for (size_t i = 0; i < r->elements; i++) {
        out->n = i + 1;
        int rc = reply_convert(r->element[i], &elem[i]);
        if (rc < 0)
            return rc;
    }
    return 0;
}

void store_reply_clear(struct tw_reply *r)
{
    if (r->type == TW_REPLY_ARRAY) {
        for (size_t i = 0; i < r->n; i++)
            store_reply_clear((struct tw_reply *)&r->elem[i]);
        free((void *)r->elem);
    } else if (r->str) {
        free((void *)r->str);
    }
    memset(r, 0, sizeof(*r));
}

void tw_store_replies_free(struct tw_reply *replies, size_t n)
{
    if (!replies)
        return;
    for (size_t i = 0; i < n; i++)
        store_reply_clear(&replies[i]);
    free(replies);
}

/* ---- commands ----------------------------------------------------------------------------- */

/* Arrays for up to this many arguments live on the stack; longer commands allocate. */
#define STORE_STACK_ARGS 64

int store_node_append(struct tw_store *s, int node, const struct tw_cmd *cmd, bool asking)
{
    const char *stack_argv[STORE_STACK_ARGS];
    size_t stack_len[STORE_STACK_ARGS];
    const char **argv = stack_argv;
    size_t *argvlen = stack_len;
    int argc = 0, rc = 0;
    if (cmd->argc < 0 || cmd->argc > INT32_MAX - 2)
        return TW_EINVAL;
    if (asking && redisAppendCommand(s->node[node].ctx, "ASKING") != REDIS_OK)
        return store_node_fail(s, node, "append");
    if (cmd->argc + 2 > STORE_STACK_ARGS) {
        argv = malloc((size_t)(cmd->argc + 2) * sizeof(*argv));
        argvlen = malloc((size_t)(cmd->argc + 2) * sizeof(*argvlen));
        if (!argv || !argvlen) {
            rc = TW_ENOMEM;
            goto out;
        }
    }
    if (cmd->script) {
        argv[argc] = "EVALSHA";
        argvlen[argc++] = 7;
        argv[argc] = cmd->script->sha;
        argvlen[argc++] = 40;
    }
    for (int i = 0; i < cmd->argc; i++, argc++) {
        argv[argc] = cmd->argv[i];
        argvlen[argc] = cmd->argvlen ? cmd->argvlen[i] : strlen(cmd->argv[i]);
    }
    if (redisAppendCommandArgv(s->node[node].ctx, argc, argv, argvlen) != REDIS_OK)
        rc = store_node_fail(s, node, "append");
out:
    if (argv != stack_argv) {
        free(argv);
        free(argvlen);
    }
    return rc;
}

int store_node_read(struct tw_store *s, int node, struct tw_reply *out)
{
    void *raw = NULL;
    if (redisGetReply(s->node[node].ctx, &raw) != REDIS_OK || !raw)
        return store_node_fail(s, node, "read");
    int rc = reply_convert(raw, out);
    freeReplyObject(raw);
    if (rc < 0)
        store_reply_clear(out);
    return rc;
}

bool store_is_noscript(const struct tw_reply *r)
{
    return r->type == TW_REPLY_ERROR && strncmp(r->str, "NOSCRIPT", 8) == 0;
}

/* Redis lost its script cache (restart, SCRIPT FLUSH, failover): load again, resend once. */
static int store_retry_noscript(struct tw_store *s, const struct tw_cmd *cmd, struct tw_reply *r)
{
    tw_log(TW_LOG_INFO, "redis_noscript", "script=%s action=reload", cmd->script->name);
    int rc = store_node_load_scripts(s, 0);
    if (rc == 0)
        rc = store_node_append(s, 0, cmd, false);
    if (rc == 0) {
        store_reply_clear(r);
        rc = store_node_read(s, 0, r);
    }
    return rc;
}

/* One Redis: every command on node 0, one write and n reads. */
static int store_single_pipeline(struct tw_store *s, const struct tw_cmd *cmds, size_t n,
                                 struct tw_reply *out)
{
    int rc = store_node_connect(s, 0);
    for (size_t i = 0; i < n && rc == 0; i++)
        rc = store_node_append(s, 0, &cmds[i], false);
    for (size_t i = 0; i < n && rc == 0; i++)
        rc = store_node_read(s, 0, &out[i]);
    for (size_t i = 0; i < n && rc == 0; i++)
        if (cmds[i].script && store_is_noscript(&out[i]))
            rc = store_retry_noscript(s, &cmds[i], &out[i]);
    if (rc < 0 && rc != TW_EIO && rc != TW_ETIMEDOUT)
        store_node_drop(s, 0); /* replies may be out of step with commands now */
    return rc;
}

int tw_store_pipeline(struct tw_store *s, const struct tw_cmd *cmds, size_t n,
                      struct tw_reply **replies)
{
    *replies = NULL;
    struct tw_reply *out = calloc(n + 1, sizeof(*out));
    if (!out)
        return TW_ENOMEM;
    int rc = s->url.cluster ? store_cluster_pipeline(s, cmds, n, out)
                            : store_single_pipeline(s, cmds, n, out);
    if (rc < 0) {
        tw_store_replies_free(out, n);
        return rc;
    }
    *replies = out;
    return 0;
}

int tw_store_command(struct tw_store *s, struct tw_reply **reply, int argc, const char *const *argv,
                     const size_t *argvlen)
{
    struct tw_cmd cmd = {.script = NULL, .argc = argc, .argv = argv, .argvlen = argvlen};
    return tw_store_pipeline(s, &cmd, 1, reply);
}
