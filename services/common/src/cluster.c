/* SPDX-License-Identifier: Apache-2.0 */
/* Redis Cluster routing pieces: key slots (CRC16), MOVED/ASK replies and the CLUSTER SLOTS map. */
#include "twin/cluster.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* CRC16-CCITT (XMODEM): polynomial 0x1021, initial value 0, no reflection (Redis's crc16). */
static uint16_t crc16(const char *buf, size_t len)
{
    uint16_t crc = 0;
    for (size_t i = 0; i < len; i++) {
        crc = (uint16_t)(crc ^ ((unsigned char)buf[i] << 8));
        for (int b = 0; b < 8; b++)
            crc = (uint16_t)((crc & 0x8000) ? (crc << 1) ^ 0x1021 : crc << 1);
    }
    return crc;
}

uint16_t tw_cluster_key_slot(const char *key, size_t len)
{
    const char *open = memchr(key, '{', len);
    if (open) {
        size_t rest = len - (size_t)(open - key) - 1;
        const char *close = memchr(open + 1, '}', rest);
        if (close && close > open + 1)
            return (uint16_t)(crc16(open + 1, (size_t)(close - open - 1)) & (TW_CLUSTER_SLOTS - 1));
    }
    return (uint16_t)(crc16(key, len) & (TW_CLUSTER_SLOTS - 1));
}

/* "<digits>" -> value in [0, max], or -1. */
static long parse_uint(const char *s, size_t len, long max)
{
    long v = 0;
    if (len == 0 || len > 9)
        return -1;
    for (size_t i = 0; i < len; i++) {
        if (!isdigit((unsigned char)s[i]))
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    return v <= max ? v : -1;
}

static size_t arg_len(const struct tw_cmd *cmd, int i)
{
    return cmd->argvlen ? cmd->argvlen[i] : strlen(cmd->argv[i]);
}

/* Commands of ours without a key (all the others have theirs first). */
static bool keyless(const char *name, size_t len)
{
    static const char *const names[] = {"TIME",  "PING",    "INFO",    "SCRIPT", "CLUSTER",
                                        "MULTI", "EXEC",    "DISCARD", "ECHO",   "DBSIZE",
                                        "AUTH",  "SELECT",  "CONFIG",  "ACL",    "CLIENT",
                                        "COMMAND", "WAIT",  "READONLY", "ASKING", "HELLO"};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        if (strlen(names[i]) == len && strncasecmp(names[i], name, len) == 0)
            return true;
    }
    return false;
}

int tw_cluster_cmd_slot(const struct tw_cmd *cmd)
{
    if (cmd->script) {
        /* argv: numkeys key... */
        if (cmd->argc < 2 || parse_uint(cmd->argv[0], arg_len(cmd, 0), INT32_MAX) < 1)
            return -1;
        return tw_cluster_key_slot(cmd->argv[1], arg_len(cmd, 1));
    }
    if (cmd->argc < 1 || keyless(cmd->argv[0], arg_len(cmd, 0)) || cmd->argc < 2)
        return -1;
    return tw_cluster_key_slot(cmd->argv[1], arg_len(cmd, 1));
}

/* "host:port" (the last ':' separates: IPv6 addresses come unbracketed). */
static bool parse_addr(const char *s, size_t len, char *host, size_t hostlen, int *port)
{
    const char *colon = NULL;
    for (size_t i = 0; i < len; i++)
        if (s[i] == ':')
            colon = s + i;
    if (!colon)
        return false;
    size_t hlen = (size_t)(colon - s);
    long p = parse_uint(colon + 1, len - hlen - 1, 65535);
    if (hlen >= hostlen || p < 1)
        return false;
    memcpy(host, s, hlen);
    host[hlen] = '\0';
    *port = (int)p;
    return true;
}

bool tw_cluster_parse_redirect(const struct tw_reply *r, struct tw_cluster_redirect *out)
{
    if (r->type != TW_REPLY_ERROR || !r->str)
        return false;
    const char *s = r->str;
    size_t len = r->len;
    if (len > 6 && strncmp(s, "MOVED ", 6) == 0) {
        out->ask = false;
        s += 6, len -= 6;
    } else if (len > 4 && strncmp(s, "ASK ", 4) == 0) {
        out->ask = true;
        s += 4, len -= 4;
    } else {
        return false;
    }
    const char *sp = memchr(s, ' ', len);
    if (!sp)
        return false;
    long slot = parse_uint(s, (size_t)(sp - s), TW_CLUSTER_SLOTS - 1);
    if (slot < 0)
        return false;
    out->slot = (int)slot;
    size_t rest = len - (size_t)(sp - s) - 1;
    return parse_addr(sp + 1, rest, out->host, sizeof(out->host), &out->port);
}

int tw_cluster_parse_slots(const struct tw_reply *r, const char *fallback_host,
                           int (*add)(void *ctx, const struct tw_cluster_addr *addr), void *ctx,
                           int16_t *slot_node)
{
    if (r->type != TW_REPLY_ARRAY)
        return -1;
    int covered = 0;
    for (size_t i = 0; i < r->n; i++) {
        const struct tw_reply *range = &r->elem[i];
        if (range->type != TW_REPLY_ARRAY || range->n < 3 || range->elem[0].type != TW_REPLY_INT ||
            range->elem[1].type != TW_REPLY_INT)
            return -1;
        long long lo = range->elem[0].integer, hi = range->elem[1].integer;
        if (lo < 0 || hi >= TW_CLUSTER_SLOTS || lo > hi)
            return -1;
        const struct tw_reply *master = &range->elem[2];
        if (master->type != TW_REPLY_ARRAY || master->n < 2 ||
            master->elem[0].type != TW_REPLY_STR || master->elem[1].type != TW_REPLY_INT)
            return -1;
        struct tw_cluster_addr addr;
        const char *host = master->elem[0].str;
        if (host[0] == '\0' || strcmp(host, "?") == 0)
            host = fallback_host;
        long long port = master->elem[1].integer;
        if (strlen(host) >= sizeof(addr.host) || port < 1 || port > 65535)
            return -1;
        strcpy(addr.host, host);
        addr.port = (int)port;
        int node = add(ctx, &addr);
        if (node < 0 || node > INT16_MAX)
            return -1;
        for (long long slot = lo; slot <= hi; slot++)
            slot_node[slot] = (int16_t)node;
        covered += (int)(hi - lo + 1);
    }
    return covered;
}
