/* SPDX-License-Identifier: Apache-2.0 */
/* Parsing of the broker and Redis URLs that every service takes. */
#ifndef TWIN_URL_H
#define TWIN_URL_H

#include <stdbool.h>
#include <stddef.h>

struct tw_mqtt_url {
    char server_uri[300]; /* what Paho takes: tcp://host:port or ssl://host:port */
    char host[256];
    int port;
    bool tls;
};

/* Accepts mqtt://, mqtts://, tcp://, ssl:// with an optional :port (defaults 1883 / 8883).
 * IPv6 literals go in brackets. Returns 0 or TW_EINVAL with a reason in err. */
int tw_url_parse_mqtt(const char *url, struct tw_mqtt_url *out, char *err, size_t errlen);

#define TW_REDIS_SEEDS_MAX 16 /* nodes named in a redis+cluster:// URL */

struct tw_redis_seed {
    char host[256];
    int port;
};

struct tw_redis_url {
    char host[256]; /* a cluster URL: its first node */
    int port;
    char user[128];     /* empty: no user (plain AUTH password or no AUTH) */
    char password[256]; /* empty: no AUTH */
    int db;
    bool cluster; /* redis+cluster://: seeds[0..n_seeds) are nodes to learn the cluster from */
    int n_seeds;
    struct tw_redis_seed seeds[TW_REDIS_SEEDS_MAX];
};

/* Accepts redis://[[user]:password@]host[:port][/db] and, for a Redis Cluster,
 * redis+cluster://[[user]:password@]host[:port][,host[:port]...] (database 0 only); user and
 * password may be percent-encoded. Returns 0 or TW_EINVAL with a reason in err (never
 * echoing the password). */
int tw_url_parse_redis(const char *url, struct tw_redis_url *out, char *err, size_t errlen);

/* Copies url into out with any password replaced by "***". */
void tw_url_mask(const char *url, char *out, size_t outlen);

#endif
