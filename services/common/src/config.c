/* SPDX-License-Identifier: Apache-2.0 */
/* Option tables: defaults, TWIN_* variables and --flags into a config struct, --help and checks. */
#include "twin/config.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "twin/err.h"
#include "twin/url.h"

#ifndef TWIN_VERSION
#define TWIN_VERSION "0.1.0"
#endif

#define CFG_TOPIC_ROOT_MAX 128
/* Leaves room for a service prefix in the MQTT client id, which brokers cap (often at 64+). */
#define CFG_INSTANCE_MAX 48
#define CFG_ECHO_MAX     64 /* longest piece of user input quoted back in an error */
#define CFG_REASON_MAX   256
#define CFG_LABEL_MAX    96
#define CFG_VALUE_MAX    512
#define CFG_LOG_LINE_MAX 3584 /* fits, with the prefix, in one tw_log_write line */
#define CFG_ENV_PREFIX   "TWIN_"

enum cfg_source { CFG_FROM_DEFAULT, CFG_FROM_ENV, CFG_FROM_FLAG };

/* The text an option ends up with, and where it came from (for error messages). */
struct cfg_value {
    const char *text;
    enum cfg_source source;
};

/* Copies user input for quoting in a one-line message: capped, control characters and quotes
 * replaced, so the message stays one readable line. */
static const char *cfg_echo(const char *text, char *buf, size_t len)
{
    size_t n = 0;
    size_t i = 0;

    for (; text[i] && i < CFG_ECHO_MAX && n + 1 < len; i++) {
        unsigned char c = (unsigned char)text[i];
        buf[n++] = (char)(c < 0x20 || c == 0x7f || c == '"' ? '?' : c);
    }
    if (text[i] && n + 4 < len) {
        memcpy(buf + n, "...", 3);
        n += 3;
    }
    buf[n] = '\0';
    return buf;
}

/* "--flag", "TWIN_X" or "default of --flag": where a bad value came from. */
static void cfg_source_name(const struct tw_option *opt, enum cfg_source src, char *buf, size_t len)
{
    const char *name = opt->env ? opt->env : "?";

    if (src == CFG_FROM_ENV)
        snprintf(buf, len, "%s", name);
    else if (src == CFG_FROM_FLAG || opt->flag)
        snprintf(buf, len, "%s--%s", src == CFG_FROM_FLAG ? "" : "default of ", opt->flag);
    else
        snprintf(buf, len, "default of %s", name);
}

static bool cfg_parse_bool(const char *text, bool *out)
{
    static const char *const yes[] = {"true", "1", "yes", "on"};
    static const char *const no[] = {"false", "0", "no", "off"};

    for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
        if (strcasecmp(text, yes[i]) == 0 || strcasecmp(text, no[i]) == 0) {
            *out = strcasecmp(text, yes[i]) == 0;
            return true;
        }
    }
    return false;
}

static int cfg_parse_int(const struct tw_option *opt, const char *text, int64_t *out, char *reason,
                         size_t len)
{
    char echo[CFG_ECHO_MAX + 4];
    const char *shown =
        opt->flags & TW_OPT_SECRET ? "the value" : cfg_echo(text, echo, sizeof(echo));
    const char *digits = text[0] == '-' || text[0] == '+' ? text + 1 : text;
    char *end = NULL;

    errno = 0;
    long long value = isdigit((unsigned char)digits[0]) ? strtoll(text, &end, 10) : 0;
    if (!end || *end != '\0')
        return tw_fail(reason, len, "\"%s\" is not an integer", shown);
    if ((errno == ERANGE && value < 0) || value < opt->min)
        return tw_fail(reason, len, "%s is below the minimum %" PRId64, shown, opt->min);
    if (errno == ERANGE || value > opt->max)
        return tw_fail(reason, len, "%s is above the maximum %" PRId64, shown, opt->max);
    *out = value;
    return 0;
}

/* Parses one value into its field in cfg; reason gets why it is bad (without the name). */
static int cfg_store(const struct tw_option *opt, const char *text, void *cfg, char *reason,
                     size_t len)
{
    char *field = (char *)cfg + opt->offset;
    char echo[CFG_ECHO_MAX + 4];
    int64_t number = 0;
    bool flag = false;

    switch (opt->kind) {
    case TW_OPT_STR:
        memcpy(field, &text, sizeof(text));
        return 0;
    case TW_OPT_INT:
        if (text && cfg_parse_int(opt, text, &number, reason, len) < 0)
            return TW_EINVAL;
        memcpy(field, &number, sizeof(number));
        return 0;
    case TW_OPT_BOOL:
        if (text && !cfg_parse_bool(text, &flag))
            return tw_fail(reason, len,
                           "\"%s\" is not a boolean (use true/false, yes/no, on/off "
                           "or 1/0)",
                           opt->flags & TW_OPT_SECRET ? "the value"
                                                      : cfg_echo(text, echo, sizeof(echo)));
        memcpy(field, &flag, sizeof(flag));
        return 0;
    }
    return tw_fail(reason, len, "unknown option kind %d", (int)opt->kind);
}

static int cfg_apply(const struct tw_option *opt, const struct cfg_value *v, void *cfg, char *err,
                     size_t errlen)
{
    char reason[CFG_REASON_MAX] = "";
    char where[CFG_LABEL_MAX];

    int rc = cfg_store(opt, v->text, cfg, reason, sizeof(reason));
    if (rc == 0 && v->text && opt->check)
        rc = opt->check(v->text, reason, sizeof(reason));
    if (rc == 0)
        return 0;
    cfg_source_name(opt, v->source, where, sizeof(where));
    return tw_fail(err, errlen, "%s: %s", where, reason[0] ? reason : "invalid value");
}

/* True when name[0, len) looks like the flag an environment-only option would have had:
 * "mqtt-password" or "password" for TWIN_MQTT_PASSWORD (whole words at the end). */
static bool cfg_env_matches(const char *env, const char *name, size_t len)
{
    if (!env || len == 0)
        return false;
    if (strncmp(env, CFG_ENV_PREFIX, strlen(CFG_ENV_PREFIX)) == 0)
        env += strlen(CFG_ENV_PREFIX);
    size_t env_len = strlen(env);
    if (env_len < len || (env_len > len && env[env_len - len - 1] != '_'))
        return false;
    env += env_len - len;
    for (size_t i = 0; i < len; i++) {
        char want = env[i] == '_' ? '-' : (char)tolower((unsigned char)env[i]);
        if (name[i] != want)
            return false;
    }
    return true;
}

static bool cfg_flag_is(const struct tw_option *opt, const char *name, size_t len)
{
    return opt->flag && strlen(opt->flag) == len && strncmp(opt->flag, name, len) == 0;
}

/* Why --name is not accepted: a secret, an environment-only setting, or unknown. */
static int cfg_refuse_flag(const struct tw_program *prog, const char *name, size_t len, char *err,
                           size_t errlen)
{
    char echo[CFG_ECHO_MAX + 4];
    char flag[CFG_ECHO_MAX + 1];

    snprintf(flag, sizeof(flag), "%.*s", (int)(len < CFG_ECHO_MAX ? len : CFG_ECHO_MAX), name);
    for (size_t i = 0; i < prog->n_options; i++) {
        const struct tw_option *opt = &prog->options[i];
        if (!cfg_flag_is(opt, name, len) && (opt->flag || !cfg_env_matches(opt->env, name, len)))
            continue;
        if (opt->flags & TW_OPT_SECRET)
            return tw_fail(err, errlen,
                           "--%s: secrets are not accepted as flags (other users could read them "
                           "in ps); set %s instead",
                           cfg_echo(flag, echo, sizeof(echo)),
                           opt->env ? opt->env : "its variable");
        return tw_fail(err, errlen, "--%s: this setting has no flag; set %s instead",
                       cfg_echo(flag, echo, sizeof(echo)), opt->env ? opt->env : "its variable");
    }
    return tw_fail(err, errlen, "unknown flag --%s (see --help)",
                   cfg_echo(flag, echo, sizeof(echo)));
}

static const struct tw_option *cfg_find_flag(const struct tw_program *prog, const char *name,
                                             size_t len)
{
    for (size_t i = 0; i < prog->n_options; i++) {
        const struct tw_option *opt = &prog->options[i];
        if (cfg_flag_is(opt, name, len) && !(opt->flags & TW_OPT_SECRET))
            return opt;
    }
    return NULL;
}

/* Parses "--name=value", "--name value" or a bare boolean "--name" at argv[*i]. */
static int cfg_parse_flag(const struct tw_program *prog, int argc, char **argv, int *i,
                          struct cfg_value *vals, char *err, size_t errlen)
{
    const char *name = argv[*i] + 2;
    const char *eq = strchr(name, '=');
    size_t len = eq ? (size_t)(eq - name) : strlen(name);
    const struct tw_option *opt = cfg_find_flag(prog, name, len);
    const char *value = eq ? eq + 1 : NULL;
    const char *next = *i + 1 < argc ? argv[*i + 1] : NULL;
    bool ignored;

    if (!opt)
        return cfg_refuse_flag(prog, name, len, err, errlen);
    /* A bare boolean flag means true; a following true/false word is still taken as its value. */
    if (!value && opt->kind == TW_OPT_BOOL) {
        value = "true";
        if (next && cfg_parse_bool(next, &ignored)) {
            value = next;
            (*i)++;
        }
    } else if (!value) {
        /* "--a --b" is a forgotten value, not the value "--b". */
        if (!next || strncmp(next, "--", 2) == 0)
            return tw_fail(err, errlen, "--%s: missing value", opt->flag);
        value = next;
        (*i)++;
    }
    vals[opt - prog->options] = (struct cfg_value){value, CFG_FROM_FLAG};
    return 0;
}

static int cfg_parse_argv(const struct tw_program *prog, int argc, char **argv,
                          struct cfg_value *vals, enum tw_config_action *action, char *err,
                          size_t errlen)
{
    char echo[CFG_ECHO_MAX + 4];

    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        int rc = 0;
        if (strcmp(arg, "--") == 0 && i + 1 == argc)
            break;
        if (strcmp(arg, "--check-config") == 0)
            *action = TW_CONFIG_CHECK;
        else if (strncmp(arg, "--", 2) == 0 && arg[2] != '\0')
            rc = cfg_parse_flag(prog, argc, argv, &i, vals, err, errlen);
        else if (arg[0] == '-' && arg[1] != '\0' && arg[1] != '-')
            rc = tw_fail(err, errlen, "unknown flag %s (see --help)",
                         cfg_echo(arg, echo, sizeof(echo)));
        else
            rc = tw_fail(err, errlen,
                         "unexpected argument \"%s\" (settings are --flag value or --flag=value)",
                         cfg_echo(strcmp(arg, "--") == 0 ? argv[i + 1] : arg, echo, sizeof(echo)));
        if (rc < 0)
            return rc;
    }
    return 0;
}

/* --help and --version win over everything else, so they work even with a broken setting. */
static bool cfg_handle_info_flags(const struct tw_program *prog, int argc, char **argv)
{
    for (int i = 1; i < argc && strcmp(argv[i], "--") != 0; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            tw_config_print_help(prog, stdout);
            return true;
        }
        if (strcmp(argv[i], "--version") == 0) {
            printf("%s %s\n", prog->name, TWIN_VERSION);
            fflush(stdout);
            return true;
        }
    }
    return false;
}

static void cfg_read_env(const struct tw_program *prog, struct cfg_value *vals)
{
    for (size_t i = 0; i < prog->n_options; i++) {
        const struct tw_option *opt = &prog->options[i];
        const char *env = opt->env ? getenv(opt->env) : NULL;
        /* An empty variable counts as unset: env files and compose write `TWIN_X=` for that. */
        if (env && env[0])
            vals[i] = (struct cfg_value){env, CFG_FROM_ENV};
        else
            vals[i] = (struct cfg_value){opt->def, CFG_FROM_DEFAULT};
    }
}

/* The hostname, restricted to the instance alphabet, as the default instance name. */
static int cfg_default_instance(char *buf, size_t len, char *err, size_t errlen)
{
    char host[256];
    size_t n = 0;

    if (gethostname(host, sizeof(host)) < 0)
        return tw_fail(err, errlen, "cannot read the hostname (%s); set TWIN_INSTANCE",
                       strerror(errno));
    host[sizeof(host) - 1] = '\0';
    for (size_t i = 0; host[i] && n < CFG_INSTANCE_MAX && n + 1 < len; i++) {
        unsigned char c = (unsigned char)host[i];
        buf[n++] = (char)(isalnum(c) || c == '.' || c == '_' || c == '-' ? c : '-');
    }
    buf[n] = '\0';
    if (n == 0)
        return tw_fail(err, errlen, "the hostname is empty; set TWIN_INSTANCE");
    return 0;
}

static int cfg_fill_common(struct tw_common_config *common, char *err, size_t errlen)
{
    enum tw_log_level level = TW_LOG_INFO;

    if (common->log_level_text && tw_log_parse_level(common->log_level_text, &level) < 0)
        return tw_fail(err, errlen, "--log-level: not one of debug, info, warn, error or off");
    common->log_level = level;
    if (common->instance && common->instance[0])
        return 0;
    int rc = cfg_default_instance(common->instance_buf, sizeof(common->instance_buf), err, errlen);
    if (rc == 0)
        common->instance = common->instance_buf;
    return rc;
}

int tw_config_load(const struct tw_program *prog, int argc, char **argv, void *cfg,
                   struct tw_common_config *common, enum tw_config_action *action, char *err,
                   size_t errlen)
{
    struct cfg_value *vals = NULL;
    int rc = 0;

    if (err && errlen > 0)
        err[0] = '\0';
    *action = TW_CONFIG_RUN;
    if (cfg_handle_info_flags(prog, argc, argv)) {
        *action = TW_CONFIG_HELP;
        return 0;
    }
    vals = calloc(prog->n_options ? prog->n_options : 1, sizeof(*vals));
    if (!vals) {
        tw_fail(err, errlen, "out of memory reading the settings");
        return TW_ENOMEM;
    }
    cfg_read_env(prog, vals);
    rc = cfg_parse_argv(prog, argc, argv, vals, action, err, errlen);
    for (size_t i = 0; rc == 0 && i < prog->n_options; i++)
        rc = cfg_apply(&prog->options[i], &vals[i], cfg, err, errlen);
    if (rc == 0 && common)
        rc = cfg_fill_common(common, err, errlen);
    free(vals);
    return rc;
}

/* "--mqtt-url VALUE", "--dry-run[=BOOL]" or "(env only)": the first column of --help. */
static void cfg_flag_label(const struct tw_option *opt, char *buf, size_t len)
{
    static const char *const metavar[] = {
        [TW_OPT_STR] = " VALUE", [TW_OPT_INT] = " N", [TW_OPT_BOOL] = "[=BOOL]"};

    if (!opt->flag || (opt->flags & TW_OPT_SECRET))
        snprintf(buf, len, "(env only)");
    else
        snprintf(buf, len, "--%s%s", opt->flag, opt->kind <= TW_OPT_BOOL ? metavar[opt->kind] : "");
}

/* The default as --help shows it; secrets are masked even there. */
static void cfg_default_label(const struct tw_option *opt, char *buf, size_t len)
{
    char masked[CFG_VALUE_MAX];
    const char *def = opt->def;

    if (!def)
        def = opt->kind == TW_OPT_BOOL ? "false" : opt->kind == TW_OPT_INT ? "0" : "(none)";
    else if (opt->flags & TW_OPT_SECRET)
        def = "***";
    else if (opt->flags & TW_OPT_SECRET_IN_URL) {
        tw_url_mask(def, masked, sizeof(masked));
        def = masked;
    }
    if (opt->kind == TW_OPT_INT)
        snprintf(buf, len, "default: %s, range %" PRId64 "..%" PRId64, def, opt->min, opt->max);
    else
        snprintf(buf, len, "default: %s", def);
}

static void cfg_help_widths(const struct tw_program *prog, int *flag_w, int *env_w)
{
    char label[CFG_LABEL_MAX];

    *flag_w = (int)strlen("--check-config");
    *env_w = 0;
    for (size_t i = 0; i < prog->n_options; i++) {
        cfg_flag_label(&prog->options[i], label, sizeof(label));
        if ((int)strlen(label) > *flag_w)
            *flag_w = (int)strlen(label);
        if (prog->options[i].env && (int)strlen(prog->options[i].env) > *env_w)
            *env_w = (int)strlen(prog->options[i].env);
    }
}

void tw_config_print_help(const struct tw_program *prog, FILE *out)
{
    char label[CFG_LABEL_MAX];
    char def[CFG_VALUE_MAX + 64];
    int flag_w, env_w;

    cfg_help_widths(prog, &flag_w, &env_w);
    fprintf(out, "Usage: %s [--flag VALUE | --flag=VALUE]...\n", prog->name);
    if (prog->summary)
        fprintf(out, "%s\n", prog->summary);
    fprintf(out, "\nSettings: a --flag wins over its environment variable, which wins over the "
                 "default.\n\n");
    for (size_t i = 0; i < prog->n_options; i++) {
        const struct tw_option *opt = &prog->options[i];
        cfg_flag_label(opt, label, sizeof(label));
        cfg_default_label(opt, def, sizeof(def));
        fprintf(out, "  %-*s  %-*s  %s\n", flag_w, label, env_w, opt->env ? opt->env : "", def);
        fprintf(out, "  %-*s  %s\n", flag_w, "", opt->help ? opt->help : "");
    }
    fprintf(out, "\n  %-*s  %s\n", flag_w, "-h, --help", "print this help and exit");
    fprintf(out, "  %-*s  %s\n", flag_w, "--version", "print the version and exit");
    fprintf(out, "  %-*s  %s\n", flag_w, "--check-config",
            "check every setting and exit: 0 if valid, 2 with the reason if not");
    fflush(out);
}

/* The value of one option in cfg as text for the log, secrets masked. */
static const char *cfg_log_value(const struct tw_option *opt, const void *cfg, char *buf,
                                 size_t len)
{
    const char *field = (const char *)cfg + opt->offset;
    const char *text;
    int64_t number;
    bool flag;

    switch (opt->kind) {
    case TW_OPT_INT:
        memcpy(&number, field, sizeof(number));
        snprintf(buf, len, "%" PRId64, number);
        return buf;
    case TW_OPT_BOOL:
        memcpy(&flag, field, sizeof(flag));
        return flag ? "true" : "false";
    case TW_OPT_STR:
        break;
    }
    memcpy(&text, field, sizeof(text));
    if (!text || !text[0])
        return "";
    if (opt->flags & TW_OPT_SECRET)
        return "***";
    if (opt->flags & TW_OPT_SECRET_IN_URL) {
        tw_url_mask(text, buf, len);
        return buf;
    }
    return text;
}

/* Appends " key=value", quoting the value when it holds a space, quote or '='. */
static void cfg_log_append(char *line, size_t len, size_t *used, const char *key, const char *value)
{
    bool quote = strpbrk(value, " \"=\\") != NULL;
    size_t n = *used;

    n += (size_t)snprintf(line + n, len - n, "%s%s=%s", n ? " " : "", key, quote ? "\"" : "");
    for (const char *p = value; *p && n + 3 < len; p++) {
        if (quote && (*p == '"' || *p == '\\'))
            line[n++] = '\\';
        line[n++] = *p;
    }
    if (quote && n + 1 < len)
        line[n++] = '"';
    line[n < len ? n : len - 1] = '\0';
    *used = n < len ? n : len - 1;
}

/* Log keys follow the flag (or the variable for env-only settings) in snake case. */
static void cfg_log_key(const struct tw_option *opt, char *buf, size_t len)
{
    const char *name = opt->flag ? opt->flag : opt->env ? opt->env : "?";
    size_t n = 0;

    if (!opt->flag && strncmp(name, CFG_ENV_PREFIX, strlen(CFG_ENV_PREFIX)) == 0)
        name += strlen(CFG_ENV_PREFIX);
    for (; name[n] && n + 1 < len; n++)
        buf[n] = name[n] == '-' ? '_' : (char)tolower((unsigned char)name[n]);
    buf[n] = '\0';
}

void tw_config_log(const struct tw_program *prog, const void *cfg)
{
    char line[CFG_LOG_LINE_MAX] = "";
    char key[CFG_LABEL_MAX];
    char value[CFG_VALUE_MAX];
    size_t used = 0;

    if (!tw_log_enabled(TW_LOG_INFO))
        return;
    for (size_t i = 0; i < prog->n_options && used + 1 < sizeof(line); i++) {
        cfg_log_key(&prog->options[i], key, sizeof(key));
        cfg_log_append(line, sizeof(line), &used, key,
                       cfg_log_value(&prog->options[i], cfg, value, sizeof(value)));
    }
    tw_log_write(TW_LOG_INFO, "config", "%s", line);
}

int tw_check_mqtt_url(const char *text, char *err, size_t errlen)
{
    struct tw_mqtt_url url;

    return tw_url_parse_mqtt(text, &url, err, errlen);
}

int tw_check_redis_url(const char *text, char *err, size_t errlen)
{
    struct tw_redis_url url;

    int rc = tw_url_parse_redis(text, &url, err, errlen);
    explicit_bzero(&url, sizeof(url));
    return rc;
}

int tw_check_topic_root(const char *text, char *err, size_t errlen)
{
    size_t len = text ? strlen(text) : 0;

    if (len == 0)
        return tw_fail(err, errlen, "the topic root is empty");
    if (len > CFG_TOPIC_ROOT_MAX)
        return tw_fail(err, errlen, "the topic root is longer than %d characters",
                       CFG_TOPIC_ROOT_MAX);
    if (strpbrk(text, "+#"))
        return tw_fail(err, errlen, "the topic root must not contain the wildcards + or #");
    if (text[0] == '/' || text[len - 1] == '/')
        return tw_fail(err, errlen, "the topic root must not start or end with /");
    /* MQTT reserves topics starting with $ for the broker ($SYS, $share). */
    if (text[0] == '$')
        return tw_fail(err, errlen, "the topic root must not start with $");
    for (size_t i = 0; i < len; i++) {
        if ((unsigned char)text[i] < 0x20 || text[i] == 0x7f)
            return tw_fail(err, errlen, "the topic root must not contain control characters");
    }
    return 0;
}

int tw_check_instance(const char *text, char *err, size_t errlen)
{
    size_t len = text ? strlen(text) : 0;

    if (len == 0 || len > CFG_INSTANCE_MAX)
        return tw_fail(err, errlen, "must have 1 to %d characters", CFG_INSTANCE_MAX);
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)text[i];
        if (!isalnum(c) && c != '.' && c != '_' && c != '-')
            return tw_fail(err, errlen, "may only contain letters, digits, '.', '_' and '-'");
    }
    return 0;
}

int tw_check_log_level(const char *text, char *err, size_t errlen)
{
    char echo[CFG_ECHO_MAX + 4];
    enum tw_log_level level;

    if (text && tw_log_parse_level(text, &level) == 0)
        return 0;
    return tw_fail(err, errlen, "\"%s\" is not a log level (use debug, info, warn, error or off)",
                   cfg_echo(text ? text : "", echo, sizeof(echo)));
}
