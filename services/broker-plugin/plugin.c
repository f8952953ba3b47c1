/* SPDX-License-Identifier: Apache-2.0 */
/* Mosquitto 2 plugin: binds client ids to users (no client takes over another's session) and holds telemetry senders back until twin-ingest has subscribed. */
#include <mosquitto.h>
#include <mosquitto_broker.h>
#include <mosquitto_plugin.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cidrules.h"

#define PLUGIN_NAME      "twin_clientid"
#define PLUGIN_ECHO_MAX  64 /* longest piece of a client's user name or id quoted in the log */
#define HOLD_USERS_MAX   16
#define HOLD_FILTER_MAX  256
#define HOLD_LOG_EVERY_S 10

/*
 * Configured in mosquitto.conf, before the password file is consulted:
 *
 *     plugin /path/to/twin_clientid.so
 *     plugin_opt_clientid twin-ingest twin-ingest-*
 *     plugin_opt_clientid * %u
 *     plugin_opt_hold_until $share/twin-ingest/twin/v1/asset/+/telemetry
 *     plugin_opt_hold_users * twin-devsim operator
 *
 * Client ids: each plugin_opt_clientid is one rule (cidrules.h). Mosquitto 2.0 calls the
 * plugins' basic-auth callbacks in order and its password file's check after them
 * (src/security.c, mosquitto_unpwd_check): this plugin refuses a bad client id and otherwise
 * defers, so the password is still checked. The client id is known by then (handle_connect.c
 * sets it before the check), and a refused CONNECT never reaches the session takeover.
 *
 * The hold: Mosquitto 2.0.11 does not save shared subscriptions with its persistent state,
 * so after a restart a telemetry message that arrives before twin-ingest has subscribed again
 * matches nobody: the device gets its PUBACK and the message is gone. Until some client
 * subscribes to the hold_until filter (exactly that string) after the broker started, the
 * CONNECT of every hold_users user ("*": every user without a client id rule of its own;
 * never an anonymous client) is closed without an answer; the clients retry as after any
 * network error and keep their unsent messages. The ACL callback only watches SUBSCRIBE and
 * defers every decision to the ACL file, which the hold therefore needs: when every ACL
 * callback defers, Mosquitto denies. Plugins are not reloaded on SIGHUP.
 */

struct plugin_state {
    struct cid_rules rules;
    char hold_filter[HOLD_FILTER_MAX + 1]; /* empty: no hold */
    char hold_user[HOLD_USERS_MAX][CID_USER_MAX + 1];
    int n_hold_users;
    bool hold_any; /* "*" among hold_users */
    bool open;     /* the hold_until subscription has been seen */
    time_t last_hold_log;
    unsigned long held_since_log;
};

static mosquitto_plugin_id_t *plugin_id;

/* Copies s for the log: at most PLUGIN_ECHO_MAX bytes, anything but printable ASCII as '?'. */
static void plugin_echo(char *out, size_t outlen, const char *s)
{
    size_t n = 0;
    for (; s && *s && n + 1 < outlen && n < PLUGIN_ECHO_MAX; s++, n++) {
        unsigned char c = (unsigned char)*s;
        out[n] = (c >= 0x20 && c < 0x7f) ? (char)c : '?';
    }
    out[n] = '\0';
}

/* Is this user's CONNECT held back while the hold is closed? */
static bool plugin_held(const struct plugin_state *st, const char *user)
{
    if (!user) /* anonymous clients are never held (the shipped broker refuses them) */
        return false;
    for (int i = 0; i < st->n_hold_users; i++)
        if (strcmp(st->hold_user[i], user) == 0)
            return true;
    if (!st->hold_any)
        return false;
    for (int i = 0; i < st->rules.nrule; i++) /* users with a rule of their own are named */
        if (!st->rules.rule[i].any_user && strcmp(st->rules.rule[i].user, user) == 0)
            return false;
    return true;
}

static int plugin_basic_auth(int event, void *event_data, void *userdata)
{
    (void)event;
    struct plugin_state *st = userdata;
    const struct mosquitto_evt_basic_auth *ev = event_data;
    const char *user = ev->username;
    const char *id = mosquitto_client_id(ev->client);
    char u[PLUGIN_ECHO_MAX + 1], i[PLUGIN_ECHO_MAX + 1];
    if (user) {
        enum cid_verdict v = cid_rules_check(&st->rules, user, id ? id : "");
        if (v != CID_OK) {
            plugin_echo(u, sizeof(u), user);
            plugin_echo(i, sizeof(i), id);
            mosquitto_log_printf(MOSQ_LOG_NOTICE,
                                 "%s: refused user '%s' with client id '%s': %s", PLUGIN_NAME, u,
                                 i, cid_verdict_name(v));
            return MOSQ_ERR_AUTH;
        }
    }
    if (st->hold_filter[0] && !st->open && plugin_held(st, user)) {
        time_t now = time(NULL);
        st->held_since_log++;
        if (now - st->last_hold_log >= HOLD_LOG_EVERY_S) {
            plugin_echo(u, sizeof(u), user ? user : "(anonymous)");
            mosquitto_log_printf(MOSQ_LOG_NOTICE,
                                 "%s: holding back %lu connection(s) (the last of user '%s') "
                                 "until a client subscribes to %s",
                                 PLUGIN_NAME, st->held_since_log, u, st->hold_filter);
            st->last_hold_log = now;
            st->held_since_log = 0;
        }
        return MOSQ_ERR_UNKNOWN; /* no CONNACK: the socket is closed, the client retries */
    }
    return MOSQ_ERR_PLUGIN_DEFER;
}

static int plugin_acl_check(int event, void *event_data, void *userdata)
{
    (void)event;
    struct plugin_state *st = userdata;
    const struct mosquitto_evt_acl_check *ev = event_data;
    if (!st->open && ev->access == MOSQ_ACL_SUBSCRIBE && ev->topic &&
        strcmp(ev->topic, st->hold_filter) == 0) {
        char u[PLUGIN_ECHO_MAX + 1];
        plugin_echo(u, sizeof(u), mosquitto_client_username(ev->client));
        st->open = true;
        mosquitto_log_printf(MOSQ_LOG_NOTICE,
                             "%s: %s subscribed by user '%s': telemetry senders may connect",
                             PLUGIN_NAME, st->hold_filter, u);
    }
    return MOSQ_ERR_PLUGIN_DEFER;
}

int mosquitto_plugin_version(int supported_version_count, const int *supported_versions)
{
    for (int i = 0; i < supported_version_count; i++) {
        if (supported_versions[i] == 5)
            return 5;
    }
    return -1;
}

/* plugin_opt_hold_users: space-separated user names, "*" for the default rule's users. */
static int plugin_hold_users(struct plugin_state *st, const char *value, char *err, size_t errlen)
{
    const char *s = value;
    while (*s) {
        while (*s == ' ' || *s == '\t')
            s++;
        size_t len = strcspn(s, " \t");
        if (len == 0)
            break;
        if (len == 1 && s[0] == '*') {
            st->hold_any = true;
        } else if (len > CID_USER_MAX || st->n_hold_users == HOLD_USERS_MAX) {
            snprintf(err, errlen, "hold_users: at most %d names of at most %d bytes",
                     HOLD_USERS_MAX, CID_USER_MAX);
            return -1;
        } else {
            memcpy(st->hold_user[st->n_hold_users], s, len);
            st->hold_user[st->n_hold_users][len] = '\0';
            st->n_hold_users++;
        }
        s += len;
    }
    return 0;
}

static int plugin_option(struct plugin_state *st, const struct mosquitto_opt *o, char *err,
                         size_t errlen)
{
    if (strcmp(o->key, "clientid") == 0)
        return cid_rules_add(&st->rules, o->value, err, errlen);
    if (strcmp(o->key, "hold_until") == 0) {
        if (strlen(o->value) > HOLD_FILTER_MAX || strchr(o->value, ' ')) {
            snprintf(err, errlen, "hold_until: one topic filter of at most %d bytes",
                     HOLD_FILTER_MAX);
            return -1;
        }
        strcpy(st->hold_filter, o->value);
        return 0;
    }
    if (strcmp(o->key, "hold_users") == 0)
        return plugin_hold_users(st, o->value, err, errlen);
    snprintf(err, errlen, "unknown option");
    return -1;
}

int mosquitto_plugin_init(mosquitto_plugin_id_t *identifier, void **userdata,
                          struct mosquitto_opt *options, int option_count)
{
    struct plugin_state *st = calloc(1, sizeof(*st));
    if (!st)
        return MOSQ_ERR_NOMEM;
    cid_rules_init(&st->rules);
    char err[512] = "";
    for (int i = 0; i < option_count && !err[0]; i++) {
        if (plugin_option(st, &options[i], err, sizeof(err)) != 0) {
            mosquitto_log_printf(MOSQ_LOG_ERR, "%s: plugin_opt_%s %s: %s", PLUGIN_NAME,
                                 options[i].key, options[i].value, err);
            free(st);
            return MOSQ_ERR_INVAL;
        }
    }
    if (st->rules.nrule == 0)
        snprintf(err, sizeof(err), "no plugin_opt_clientid rule: every client would be refused");
    else if (cid_rules_finish(&st->rules, err, sizeof(err)) == 0 &&
             !st->hold_filter[0] != (!st->hold_any && st->n_hold_users == 0))
        snprintf(err, sizeof(err), "plugin_opt_hold_until and plugin_opt_hold_users go together");
    if (err[0]) {
        mosquitto_log_printf(MOSQ_LOG_ERR, "%s: %s", PLUGIN_NAME, err);
        free(st);
        return MOSQ_ERR_INVAL;
    }
    int rc = mosquitto_callback_register(identifier, MOSQ_EVT_BASIC_AUTH, plugin_basic_auth,
                                         NULL, st);
    if (rc == MOSQ_ERR_SUCCESS && st->hold_filter[0])
        rc = mosquitto_callback_register(identifier, MOSQ_EVT_ACL_CHECK, plugin_acl_check, NULL,
                                         st);
    if (rc != MOSQ_ERR_SUCCESS) {
        mosquitto_callback_unregister(identifier, MOSQ_EVT_BASIC_AUTH, plugin_basic_auth, NULL);
        free(st);
        return rc;
    }
    plugin_id = identifier;
    *userdata = st;
    mosquitto_log_printf(MOSQ_LOG_INFO, "%s: %d client id rules%s%s", PLUGIN_NAME,
                         st->rules.nrule, st->hold_filter[0] ? "; holding senders until " : "",
                         st->hold_filter);
    return MOSQ_ERR_SUCCESS;
}

int mosquitto_plugin_cleanup(void *userdata, struct mosquitto_opt *options, int option_count)
{
    (void)options;
    (void)option_count;
    struct plugin_state *st = userdata;
    if (plugin_id) {
        mosquitto_callback_unregister(plugin_id, MOSQ_EVT_BASIC_AUTH, plugin_basic_auth, NULL);
        if (st && st->hold_filter[0])
            mosquitto_callback_unregister(plugin_id, MOSQ_EVT_ACL_CHECK, plugin_acl_check, NULL);
    }
    free(st);
    plugin_id = NULL;
    return MOSQ_ERR_SUCCESS;
}
