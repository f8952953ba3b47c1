/* SPDX-License-Identifier: Apache-2.0 */
/* Parses and masks the broker (mqtt://) and Redis (redis://) URLs every service takes. */
#include "twin/url.h"

#include <ctype.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "twin/err.h"

#define URL_MQTT_PORT  1883
#define URL_MQTTS_PORT 8883
#define URL_REDIS_PORT 6379
#define URL_MASK       "***"
#define URL_ECHO_MAX   64 /* longest piece of user input quoted back in an error */

/* The part of a URL after "scheme://", split into its pieces (pointers into the URL). */
struct url_parts {
    const char *scheme;
    size_t scheme_len;
    const char *userinfo; /* NULL when there is no '@' */
    size_t userinfo_len;
    const char *hostport;
    size_t hostport_len;
    const char *path; /* from the first '/' after the host, or the empty end of the string */
};

/* RFC 3986 scheme: ALPHA *( ALPHA / DIGIT / "+" / "-" / "." ). Checking it before quoting the
 * scheme back keeps "user:secret://..." (no scheme at all) out of error messages. */
static bool url_scheme_valid(const char *s, size_t len)
{
    if (len == 0 || !isalpha((unsigned char)s[0]))
        return false;
    for (size_t i = 1; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (!isalnum(c) && c != '+' && c != '-' && c != '.')
            return false;
    }
    return true;
}

/* The userinfo ends at the last '@', so a password may hold unencoded '@', ':' or '/'. */
static int url_split(const char *url, const char *example, struct url_parts *p, char *err,
                     size_t errlen)
{
    memset(p, 0, sizeof(*p));
    if (!url || !url[0])
        return tw_fail(err, errlen, "the URL is empty (expected %s)", example);
    const char *sep = strstr(url, "://");
    if (!sep || !url_scheme_valid(url, (size_t)(sep - url)))
        return tw_fail(err, errlen, "the URL has no scheme (expected %s)", example);
    p->scheme = url;
    p->scheme_len = (size_t)(sep - url);
    const char *rest = sep + 3;
    const char *at = strrchr(rest, '@');
    if (at) {
        p->userinfo = rest;
        p->userinfo_len = (size_t)(at - rest);
        rest = at + 1;
    }
    p->hostport = rest;
    p->path = strchr(rest, '/');
    if (!p->path)
        p->path = rest + strlen(rest);
    p->hostport_len = (size_t)(p->path - rest);
    return 0;
}

static bool url_scheme_is(const struct url_parts *p, const char *name)
{
    return p->scheme_len == strlen(name) && strncasecmp(p->scheme, name, p->scheme_len) == 0;
}

static int url_parse_port(const char *s, size_t len, int *port, char *err, size_t errlen)
{
    long value = 0;

    if (len == 0 || len > 5)
        goto bad;
    for (size_t i = 0; i < len; i++) {
        if (!isdigit((unsigned char)s[i]))
            goto bad;
        value = value * 10 + (s[i] - '0');
    }
    if (value < 1 || value > 65535)
        goto bad;
    *port = (int)value;
    return 0;
bad:
    return tw_fail(err, errlen, "port '%.*s' is not a number from 1 to 65535",
                   (int)(len < URL_ECHO_MAX ? len : URL_ECHO_MAX), s);
}

static bool url_host_valid(const char *s, size_t len, bool v6)
{
    bool colon = false;

    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (v6 && (isxdigit(c) || c == ':' || c == '.'))
            colon = colon || c == ':';
        else if (v6 || !(isalnum(c) || c == '-' || c == '.' || c == '_'))
            return false;
    }
    return !v6 || colon;
}

static int url_copy_host(const char *s, size_t len, bool v6, char *host, size_t hostlen, char *err,
                         size_t errlen)
{
    if (len == 0)
        return tw_fail(err, errlen, "the URL has no host");
    if (len >= hostlen)
        return tw_fail(err, errlen, "the host name is longer than %zu characters", hostlen - 1);
    if (!url_host_valid(s, len, v6))
        return tw_fail(err, errlen, "host '%.*s' is not a valid %s", (int)len, s,
                       v6 ? "IPv6 address" : "host name or address");
    memcpy(host, s, len);
    host[len] = '\0';
    return 0;
}

/* "host", "host:port", "[v6]" or "[v6]:port"; *port keeps its default when none is given. */
static int url_parse_hostport(const char *s, size_t len, char *host, size_t hostlen, int *port,
                              bool *v6, char *err, size_t errlen)
{
    const char *end = s + len;
    const char *host_end;
    const char *port_start = NULL;

    *v6 = len > 0 && s[0] == '[';
    if (*v6) {
        host_end = memchr(s, ']', len);
        if (!host_end)
            return tw_fail(err, errlen, "the IPv6 address has no closing ']'");
        if (host_end + 1 < end && host_end[1] != ':')
            return tw_fail(err, errlen, "unexpected text after the IPv6 address");
        port_start = host_end + 1 < end ? host_end + 2 : NULL;
        s++;
    } else {
        host_end = memchr(s, ':', len);
        if (host_end && memchr(host_end + 1, ':', (size_t)(end - host_end - 1)))
            return tw_fail(err, errlen, "IPv6 addresses must be written in brackets: [::1]");
        port_start = host_end ? host_end + 1 : NULL;
        host_end = host_end ? host_end : end;
    }
    int rc = url_copy_host(s, (size_t)(host_end - s), *v6, host, hostlen, err, errlen);
    if (rc == 0 && port_start)
        rc = url_parse_port(port_start, (size_t)(end - port_start), port, err, errlen);
    return rc;
}

int tw_url_parse_mqtt(const char *url, struct tw_mqtt_url *out, char *err, size_t errlen)
{
    static const char example[] = "mqtt://host:port";
    struct url_parts p;
    bool v6;

    memset(out, 0, sizeof(*out));
    int rc = url_split(url, example, &p, err, errlen);
    if (rc < 0)
        return rc;
    if (url_scheme_is(&p, "mqtts") || url_scheme_is(&p, "ssl"))
        out->tls = true;
    else if (!url_scheme_is(&p, "mqtt") && !url_scheme_is(&p, "tcp"))
        return tw_fail(err, errlen,
                       "unsupported scheme '%.*s' (use mqtt://, mqtts://, tcp:// or ssl://)",
                       (int)(p.scheme_len < URL_ECHO_MAX ? p.scheme_len : URL_ECHO_MAX), p.scheme);
    if (p.userinfo)
        return tw_fail(err, errlen,
                       "credentials in the broker URL are not supported; set "
                       "TWIN_MQTT_USER and TWIN_MQTT_PASSWORD");
    if (p.path[0] && strcmp(p.path, "/") != 0)
        return tw_fail(err, errlen, "the broker URL must not have a path");
    out->port = out->tls ? URL_MQTTS_PORT : URL_MQTT_PORT;
    rc = url_parse_hostport(p.hostport, p.hostport_len, out->host, sizeof(out->host), &out->port,
                            &v6, err, errlen);
    if (rc < 0) {
        memset(out, 0, sizeof(*out));
        return rc;
    }
    snprintf(out->server_uri, sizeof(out->server_uri), "%s://%s%s%s:%d", out->tls ? "ssl" : "tcp",
             v6 ? "[" : "", out->host, v6 ? "]" : "", out->port);
    return 0;
}

static int url_hex(unsigned char c)
{
    if (isdigit(c))
        return c - '0';
    if (isxdigit(c))
        return tolower(c) - 'a' + 10;
    return -1;
}

/* Percent-decodes s[0, len) into out. `what` names the field; its text is never echoed. */
static int url_decode(const char *s, size_t len, char *out, size_t outlen, const char *what,
                      char *err, size_t errlen)
{
    size_t n = 0;

    for (size_t i = 0; i < len; i++) {
        int c = (unsigned char)s[i];
        if (c == '%') {
            int hi = i + 2 < len ? url_hex((unsigned char)s[i + 1]) : -1;
            int lo = i + 2 < len ? url_hex((unsigned char)s[i + 2]) : -1;
            if (hi < 0 || lo < 0 || (hi == 0 && lo == 0))
                return tw_fail(err, errlen, "the %s has a bad percent-escape", what);
            c = hi * 16 + lo;
            i += 2;
        }
        if (n + 1 >= outlen)
            return tw_fail(err, errlen, "the %s is longer than %zu bytes", what, outlen - 1);
        out[n++] = (char)c;
    }
    out[n] = '\0';
    return 0;
}

static int url_parse_userinfo(const struct url_parts *p, struct tw_redis_url *out, char *err,
                              size_t errlen)
{
    const char *colon = memchr(p->userinfo, ':', p->userinfo_len);

    if (!colon)
        return tw_fail(err, errlen, "credentials must be written user:password@ or :password@");
    size_t user_len = (size_t)(colon - p->userinfo);
    size_t pass_len = p->userinfo_len - user_len - 1;
    int rc =
        url_decode(p->userinfo, user_len, out->user, sizeof(out->user), "user name", err, errlen);
    if (rc == 0)
        rc = url_decode(colon + 1, pass_len, out->password, sizeof(out->password), "password", err,
                        errlen);
    if (rc == 0 && out->password[0] == '\0')
        rc = tw_fail(err, errlen, "the credentials have an empty password");
    return rc;
}

/* "" or "/" mean database 0; otherwise "/<decimal>". */
static int url_parse_db(const char *path, int *db, char *err, size_t errlen)
{
    long long value = 0;
    const char *digits = path[0] == '/' ? path + 1 : path;
    size_t len = strlen(digits);

    for (size_t i = 0; i < len; i++) {
        if (!isdigit((unsigned char)digits[i]) || value > INT_MAX)
            return tw_fail(err, errlen, "database '%.*s' is not a number from 0 to %d",
                           (int)(len < URL_ECHO_MAX ? len : URL_ECHO_MAX), digits, INT_MAX);
        value = value * 10 + (digits[i] - '0');
    }
    if (value > INT_MAX)
        return tw_fail(err, errlen, "database '%.*s' is not a number from 0 to %d",
                       (int)(len < URL_ECHO_MAX ? len : URL_ECHO_MAX), digits, INT_MAX);
    *db = (int)value;
    return 0;
}

/* The comma-separated nodes of a redis+cluster:// URL. */
static int url_parse_seeds(const struct url_parts *p, struct tw_redis_url *out, char *err,
                           size_t errlen)
{
    const char *s = p->hostport, *end = p->hostport + p->hostport_len;
    bool v6;

    for (;;) {
        const char *comma = memchr(s, ',', (size_t)(end - s));
        const char *item_end = comma ? comma : end;
        if (out->n_seeds == TW_REDIS_SEEDS_MAX)
            return tw_fail(err, errlen, "a cluster URL names at most %d nodes", TW_REDIS_SEEDS_MAX);
        struct tw_redis_seed *seed = &out->seeds[out->n_seeds];
        seed->port = URL_REDIS_PORT;
        int rc = url_parse_hostport(s, (size_t)(item_end - s), seed->host, sizeof(seed->host),
                                    &seed->port, &v6, err, errlen);
        if (rc < 0)
            return rc;
        out->n_seeds++;
        if (!comma)
            break;
        s = comma + 1;
    }
    memcpy(out->host, out->seeds[0].host, sizeof(out->host));
    out->port = out->seeds[0].port;
    return 0;
}

static int url_parse_redis_parts(const struct url_parts *p, struct tw_redis_url *out, char *err,
                                 size_t errlen)
{
    bool v6;

    if (url_scheme_is(p, "rediss"))
        return tw_fail(err, errlen,
                       "rediss:// (TLS) is not supported; use redis://, "
                       "through a TLS tunnel if the link needs encryption");
    out->cluster = url_scheme_is(p, "redis+cluster");
    if (!out->cluster && !url_scheme_is(p, "redis"))
        return tw_fail(err, errlen, "unsupported scheme '%.*s' (use redis:// or redis+cluster://)",
                       (int)(p->scheme_len < URL_ECHO_MAX ? p->scheme_len : URL_ECHO_MAX),
                       p->scheme);
    if (p->userinfo) {
        int rc = url_parse_userinfo(p, out, err, errlen);
        if (rc < 0)
            return rc;
    }
    int rc;
    if (out->cluster) {
        rc = url_parse_seeds(p, out, err, errlen);
    } else {
        out->port = URL_REDIS_PORT;
        rc = url_parse_hostport(p->hostport, p->hostport_len, out->host, sizeof(out->host),
                                &out->port, &v6, err, errlen);
    }
    if (rc < 0)
        return rc;
    rc = url_parse_db(p->path, &out->db, err, errlen);
    if (rc == 0 && out->cluster && out->db != 0)
        rc = tw_fail(err, errlen, "a Redis Cluster has database 0 only");
    return rc;
}

int tw_url_parse_redis(const char *url, struct tw_redis_url *out, char *err, size_t errlen)
{
    static const char example[] = "redis://[user:password@]host[:port][/db]";
    struct url_parts p;

    memset(out, 0, sizeof(*out));
    int rc = url_split(url, example, &p, err, errlen);
    if (rc == 0)
        rc = url_parse_redis_parts(&p, out, err, errlen);
    if (rc < 0)
        explicit_bzero(out, sizeof(*out)); /* a half-decoded password must not linger */
    return rc;
}

/* Appends s[0, len) to out, cutting at outlen - 1; *used counts what was kept. */
static void url_append(char *out, size_t outlen, size_t *used, const char *s, size_t len)
{
    size_t room = outlen - 1 - *used;
    size_t n = len < room ? len : room;

    memcpy(out + *used, s, n);
    *used += n;
    out[*used] = '\0';
}

void tw_url_mask(const char *url, char *out, size_t outlen)
{
    size_t used = 0;

    if (!out || outlen == 0)
        return;
    out[0] = '\0';
    if (!url)
        return;
    const char *sep = strstr(url, "://");
    const char *rest = sep ? sep + 3 : url;
    const char *at = strrchr(rest, '@');
    if (!at) {
        url_append(out, outlen, &used, url, strlen(url));
        return;
    }
    /* Keep the user name (not a secret, and useful when reading logs), hide the rest. Without
     * a ':' the whole userinfo may be a password, so it is all hidden. */
    const char *colon = memchr(rest, ':', (size_t)(at - rest));
    const char *keep_end = colon ? colon + 1 : rest;
    url_append(out, outlen, &used, url, (size_t)(keep_end - url));
    url_append(out, outlen, &used, URL_MASK, strlen(URL_MASK));
    url_append(out, outlen, &used, at, strlen(at));
}
