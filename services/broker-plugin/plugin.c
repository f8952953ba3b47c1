/* SPDX-License-Identifier: Apache-2.0 */
/* Mosquitto 2 plugin: refuses a CONNECT whose client id is not one its user may use, so no client can take over another's session. */
#include <mosquitto.h>
#include <mosquitto_broker.h>
#include <mosquitto_plugin.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cidrules.h"

#define PLUGIN_NAME     "twin_clientid"
#define PLUGIN_ECHO_MAX 64 /* longest piece of a client's user name or id quoted in the log */

/*
 * Configured in mosquitto.conf, before the password file is consulted:
 *
 *     plugin /path/to/twin_clientid.so
 *     plugin_opt_clientid twin-ingest twin-ingest-*
 *     plugin_opt_clientid * %u
 *
 * Each plugin_opt_clientid is one rule (cidrules.h). Mosquitto 2.0 calls the plugins'
 * basic-auth callbacks in order and its password file's check after them (src/security.c,
 * mosquitto_unpwd_check): this plugin refuses a bad client id and otherwise defers, so the
 * password is still checked. The client id is known by then (handle_connect.c sets it
 * before the check), and a refused CONNECT never reaches the session takeover. Anonymous
 * clients are left to allow_anonymous. Plugins are not reloaded on SIGHUP.
 */

static mosquitto_plugin_id_t *plugin_id;
static struct cid_rules *plugin_rules;

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

static int plugin_basic_auth(int event, void *event_data, void *userdata)
{
    (void)event;
    const struct cid_rules *rules = userdata;
    const struct mosquitto_evt_basic_auth *ev = event_data;
    const char *user = ev->username;
    if (!user)
        return MOSQ_ERR_PLUGIN_DEFER;
    const char *id = mosquitto_client_id(ev->client);
    enum cid_verdict v = cid_rules_check(rules, user, id ? id : "");
    if (v == CID_OK)
        return MOSQ_ERR_PLUGIN_DEFER;
    char u[PLUGIN_ECHO_MAX + 1], i[PLUGIN_ECHO_MAX + 1];
    plugin_echo(u, sizeof(u), user);
    plugin_echo(i, sizeof(i), id);
    mosquitto_log_printf(MOSQ_LOG_NOTICE, "%s: refused user '%s' with client id '%s': %s",
                         PLUGIN_NAME, u, i, cid_verdict_name(v));
    return MOSQ_ERR_AUTH;
}

int mosquitto_plugin_version(int supported_version_count, const int *supported_versions)
{
    for (int i = 0; i < supported_version_count; i++) {
        if (supported_versions[i] == 5)
            return 5;
    }
    return -1;
}

int mosquitto_plugin_init(mosquitto_plugin_id_t *identifier, void **userdata,
                          struct mosquitto_opt *options, int option_count)
{
    struct cid_rules *rules = malloc(sizeof(*rules));
    if (!rules)
        return MOSQ_ERR_NOMEM;
    cid_rules_init(rules);
    char err[512];
    for (int i = 0; i < option_count; i++) {
        if (strcmp(options[i].key, "clientid") != 0) {
            mosquitto_log_printf(MOSQ_LOG_ERR, "%s: unknown option plugin_opt_%s", PLUGIN_NAME,
                                 options[i].key);
            free(rules);
            return MOSQ_ERR_INVAL;
        }
        if (cid_rules_add(rules, options[i].value, err, sizeof(err)) != 0) {
            mosquitto_log_printf(MOSQ_LOG_ERR, "%s: plugin_opt_clientid %s: %s", PLUGIN_NAME,
                                 options[i].value, err);
            free(rules);
            return MOSQ_ERR_INVAL;
        }
    }
    if (rules->nrule == 0) {
        snprintf(err, sizeof(err), "no plugin_opt_clientid rule: every client would be refused");
    } else if (cid_rules_finish(rules, err, sizeof(err)) == 0) {
        err[0] = '\0';
    }
    if (err[0]) {
        mosquitto_log_printf(MOSQ_LOG_ERR, "%s: %s", PLUGIN_NAME, err);
        free(rules);
        return MOSQ_ERR_INVAL;
    }
    int rc = mosquitto_callback_register(identifier, MOSQ_EVT_BASIC_AUTH, plugin_basic_auth,
                                         NULL, rules);
    if (rc != MOSQ_ERR_SUCCESS) {
        free(rules);
        return rc;
    }
    plugin_id = identifier;
    plugin_rules = rules;
    *userdata = rules;
    mosquitto_log_printf(MOSQ_LOG_INFO, "%s: %d client id rules", PLUGIN_NAME, rules->nrule);
    return MOSQ_ERR_SUCCESS;
}

int mosquitto_plugin_cleanup(void *userdata, struct mosquitto_opt *options, int option_count)
{
    (void)options;
    (void)option_count;
    if (plugin_id)
        mosquitto_callback_unregister(plugin_id, MOSQ_EVT_BASIC_AUTH, plugin_basic_auth, NULL);
    free(userdata ? userdata : plugin_rules);
    plugin_id = NULL;
    plugin_rules = NULL;
    return MOSQ_ERR_SUCCESS;
}
