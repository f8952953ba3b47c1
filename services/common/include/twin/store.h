/* SPDX-License-Identifier: Apache-2.0 */
/* Redis access for services: connection with reconnect and timeouts, pipelined commands,
 * and Lua scripts run by EVALSHA that are reloaded when Redis answers NOSCRIPT. */
#ifndef TWIN_STORE_H
#define TWIN_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct tw_store;

enum tw_reply_type {
    TW_REPLY_NIL,
    TW_REPLY_INT,
    TW_REPLY_STR,    /* bulk string: str/len */
    TW_REPLY_STATUS, /* +OK style: str/len */
    TW_REPLY_ERROR,  /* -ERR style: str/len */
    TW_REPLY_ARRAY,  /* elem[0..n) */
};

/* A reply, independent of the client library, so reply handling is unit-testable. */
struct tw_reply {
    enum tw_reply_type type;
    long long integer;
    const char *str; /* NUL-terminated; len excludes the NUL */
    size_t len;
    size_t n;
    const struct tw_reply *elem;
};

/* A Lua script, loaded on every (re)connect and again on NOSCRIPT. */
struct tw_script {
    const char *name;
    const char *source;
    char sha[41];
};

/* One command of a pipeline. With `script` set, the command is EVALSHA <sha> followed by argv
 * (numkeys first); otherwise argv is the whole command. */
struct tw_cmd {
    const struct tw_script *script;
    int argc;
    const char *const *argv;
    const size_t *argvlen;
};

struct tw_store_config {
    const char *url; /* redis://[user:password@]host:port[/db] or redis+cluster://h1:p1,h2:p2 */
    int connect_timeout_ms;
    int command_timeout_ms;
};

/* Creates a store handle; it connects lazily on first use and after any failure. Scripts
 * given here (may be NULL/0) are loaded at each connect; they must outlive the store.
 * One thread at a time (a handle is one connection). */
int tw_store_create(const struct tw_store_config *cfg, struct tw_script *const *scripts,
                    size_t n_scripts, struct tw_store **out);
void tw_store_destroy(struct tw_store *s);

/* Connects now if not connected. 0, TW_EIO (unreachable, auth failed: *detail says which),
 * TW_ETIMEDOUT. */
int tw_store_connect(struct tw_store *s);

/* Sends cmds in one write and reads their n replies (one round trip). On success *replies
 * (n entries, owned by the caller, free with tw_store_replies_free) may contain error
 * replies. A NOSCRIPT answer reloads the script and resends that command once.
 * Returns 0, TW_EIO or TW_ETIMEDOUT — then the connection is dropped, and whether the
 * commands ran is unknown: callers retry only idempotent work. */
int tw_store_pipeline(struct tw_store *s, const struct tw_cmd *cmds, size_t n,
                      struct tw_reply **replies);

/* One command; *reply owned by the caller (tw_store_replies_free(reply, 1)). */
int tw_store_command(struct tw_store *s, struct tw_reply **reply, int argc, const char *const *argv,
                     const size_t *argvlen);

void tw_store_replies_free(struct tw_reply *replies, size_t n);

/* Text of the last connection error, for logs (no secrets). */
const char *tw_store_last_error(const struct tw_store *s);

bool tw_store_is_connected(const struct tw_store *s);

/* True for a redis+cluster:// store: commands are routed by key slot, and a pipeline's
 * commands may run on several nodes (a MULTI block must stay in one slot's node). */
bool tw_store_is_cluster(const struct tw_store *s);

#endif
