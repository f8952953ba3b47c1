/* SPDX-License-Identifier: Apache-2.0 */
/* The only file that includes hiredis: Redis connection, pipelines and scripts for services. */
#include "twin/store.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hiredis/hiredis.h>

#include "twin/err.h"
#include "twin/log.h"
#include "twin/url.h"

struct tw_store {
    struct tw_redis_url url;
    int connect_timeout_ms;
    int command_timeout_ms;
    redisContext *ctx;
    struct tw_script *const *scripts;
    size_t n_scripts;
    char last_error[200];
};

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
    *out = s;
    return 0;
}

static void store_drop(struct tw_store *s)
{
    if (s->ctx) {
        redisFree(s->ctx);
        s->ctx = NULL;
    }
}

void tw_store_destroy(struct tw_store *s)
{
    if (!s)
        return;
    store_drop(s);
    memset(&s->url, 0, sizeof(s->url)); /* no password left in freed memory */
    free(s);
}

const char *tw_store_last_error(const struct tw_store *s)
{
    return s->last_error;
}

bool tw_store_is_connected(const struct tw_store *s)
{
    return s->ctx != NULL;
}

/* Marks the connection dead and maps the client library's error to ours. */
static int store_fail(struct tw_store *s, const char *what)
{
    int rc = TW_EIO;
    if (s->ctx) {
        if (s->ctx->err == REDIS_ERR_IO && (errno == EAGAIN || errno == EWOULDBLOCK))
            rc = TW_ETIMEDOUT;
        snprintf(s->last_error, sizeof(s->last_error), "%s: %s", what,
                 rc == TW_ETIMEDOUT ? "timed out" : s->ctx->errstr);
    } else {
        snprintf(s->last_error, sizeof(s->last_error), "%s", what);
    }
    store_drop(s);
    return rc;
}

/* Runs one command on a fresh connection during set-up; an error reply fails the connect. */
static int store_setup_cmd(struct tw_store *s, const char *what, redisReply **keep, int argc,
                           const char **argv)
{
    redisReply *r = redisCommandArgv(s->ctx, argc, argv, NULL);
    if (!r)
        return store_fail(s, what);
    if (r->type == REDIS_REPLY_ERROR) {
        snprintf(s->last_error, sizeof(s->last_error), "%s: %s", what, r->str);
        freeReplyObject(r);
        store_drop(s);
        return TW_EIO;
    }
    if (keep)
        *keep = r;
    else
        freeReplyObject(r);
    return 0;
}

static int store_load_scripts(struct tw_store *s)
{
    for (size_t i = 0; i < s->n_scripts; i++) {
        redisReply *r = NULL;
        const char *argv[] = {"SCRIPT", "LOAD", s->scripts[i]->source};
        int rc = store_setup_cmd(s, "SCRIPT LOAD", &r, 3, argv);
        if (rc < 0)
            return rc;
        if (r->type != REDIS_REPLY_STRING || r->len != 40) {
            freeReplyObject(r);
            store_drop(s);
            snprintf(s->last_error, sizeof(s->last_error), "SCRIPT LOAD: unexpected reply");
            return TW_EPROTO;
        }
        memcpy(s->scripts[i]->sha, r->str, 41);
        freeReplyObject(r);
    }
    return 0;
}

static int store_auth_select(struct tw_store *s)
{
    int rc = 0;
    if (s->url.password[0]) {
        const char *argv[] = {"AUTH", s->url.user, s->url.password};
        if (!s->url.user[0])
            argv[1] = s->url.password; /* AUTH <password>: the default user */
        rc = store_setup_cmd(s, "AUTH", NULL, s->url.user[0] ? 3 : 2, argv);
    }
    if (rc == 0 && s->url.db != 0) {
        char db[16];
        snprintf(db, sizeof(db), "%d", s->url.db);
        const char *argv[] = {"SELECT", db};
        rc = store_setup_cmd(s, "SELECT", NULL, 2, argv);
    }
    return rc;
}

int tw_store_connect(struct tw_store *s)
{
    if (s->ctx)
        return 0;
    s->ctx = redisConnectWithTimeout(s->url.host, s->url.port, ms_to_tv(s->connect_timeout_ms));
    if (!s->ctx || s->ctx->err)
        return store_fail(s, "connect");
    /* hiredis sets TCP_NODELAY on TCP connections; keepalive finds a dead peer. */
    redisEnableKeepAlive(s->ctx);
    if (redisSetTimeout(s->ctx, ms_to_tv(s->command_timeout_ms)) != REDIS_OK)
        return store_fail(s, "set timeout");
    int rc = store_auth_select(s);
    if (rc == 0)
        rc = store_load_scripts(s);
    if (rc == 0)
        s->last_error[0] = '\0';
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

static void reply_clear(struct tw_reply *r)
{
    if (r->type == TW_REPLY_ARRAY) {
        for (size_t i = 0; i < r->n; i++)
            reply_clear((struct tw_reply *)&r->elem[i]);
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
        reply_clear(&replies[i]);
    free(replies);
}

/* ---- commands ----------------------------------------------------------------------------- */

/* Arrays for up to this many arguments live on the stack; longer commands allocate. */
#define STORE_STACK_ARGS 64

static int store_append(struct tw_store *s, const struct tw_cmd *cmd)
{
    const char *stack_argv[STORE_STACK_ARGS];
    size_t stack_len[STORE_STACK_ARGS];
    const char **argv = stack_argv;
    size_t *argvlen = stack_len;
    int argc = 0, rc = 0;
    if (cmd->argc < 0 || cmd->argc > INT32_MAX - 2)
        return TW_EINVAL;
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
    if (redisAppendCommandArgv(s->ctx, argc, argv, argvlen) != REDIS_OK)
        rc = store_fail(s, "append");
out:
    if (argv != stack_argv) {
        free(argv);
        free(argvlen);
    }
    return rc;
}

static int store_read(struct tw_store *s, struct tw_reply *out)
{
    void *raw = NULL;
    if (redisGetReply(s->ctx, &raw) != REDIS_OK || !raw)
        return store_fail(s, "read");
    int rc = reply_convert(raw, out);
    freeReplyObject(raw);
    if (rc < 0)
        reply_clear(out);
    return rc;
}

static bool is_noscript(const struct tw_reply *r)
{
    return r->type == TW_REPLY_ERROR && strncmp(r->str, "NOSCRIPT", 8) == 0;
}

/* Redis lost its script cache (restart, SCRIPT FLUSH, failover): load again, resend once. */
static int store_retry_noscript(struct tw_store *s, const struct tw_cmd *cmd, struct tw_reply *r)
{
    tw_log(TW_LOG_INFO, "redis_noscript", "script=%s action=reload", cmd->script->name);
    int rc = store_load_scripts(s);
    if (rc == 0)
        rc = store_append(s, cmd);
    if (rc == 0) {
        reply_clear(r);
        rc = store_read(s, r);
    }
    return rc;
}

int tw_store_pipeline(struct tw_store *s, const struct tw_cmd *cmds, size_t n,
                      struct tw_reply **replies)
{
    *replies = NULL;
    int rc = tw_store_connect(s);
    if (rc < 0)
        return rc;
    struct tw_reply *out = calloc(n + 1, sizeof(*out));
    if (!out)
        return TW_ENOMEM;
    for (size_t i = 0; i < n && rc == 0; i++)
        rc = store_append(s, &cmds[i]);
    for (size_t i = 0; i < n && rc == 0; i++)
        rc = store_read(s, &out[i]);
    for (size_t i = 0; i < n && rc == 0; i++)
        if (cmds[i].script && is_noscript(&out[i]))
            rc = store_retry_noscript(s, &cmds[i], &out[i]);
    if (rc < 0) {
        if (rc != TW_EIO && rc != TW_ETIMEDOUT)
            store_drop(s); /* replies may be out of step with commands now */
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
