/* SPDX-License-Identifier: Apache-2.0 */
/* twin-mcp: settings, and the stdio transport (one JSON-RPC message per line in, one per line
 * out) or the HTTP one (http.c) between an MCP client such as an LLM application and the
 * twin's tools. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mcp.h"
#include "twin/config.h"
#include "twin/err.h"
#include "twin/log.h"
#include "twin/model.h"
#include "twin/signal.h"
#include "twin/store.h"

#define OPT(member) offsetof(struct mcp_settings, member)
#define MCP_VERSION "0.1.0"

struct mcp_settings {
    struct tw_common_config common;
    const char *transport;
    const char *http_addr;
    int64_t http_port;
    const char *allowed_origins;
    int64_t max_message;
    int64_t redis_timeout_ms;
};

static int check_transport(const char *text, char *err, size_t errlen)
{
    if (strcmp(text, "stdio") == 0 || strcmp(text, "http") == 0)
        return 0;
    return tw_fail(err, errlen, "must be stdio or http");
}

static const struct tw_option mcp_options[] = {
    TW_COMMON_OPTIONS(struct mcp_settings, common),
    {"transport", "TWIN_MCP_TRANSPORT", "stdio",
     "stdio (the client starts twin-mcp) or http (Streamable HTTP: POST http://ADDR:PORT/mcp)",
     TW_OPT_STR, OPT(transport), 0, 0, 0, check_transport},
    {"http-addr", "TWIN_MCP_HTTP_ADDR", "127.0.0.1",
     "http: numeric address to listen on (keep it on this machine unless a TLS proxy with its "
     "own authentication is in front)",
     TW_OPT_STR, OPT(http_addr), 0, 0, 0, NULL},
    {"http-port", "TWIN_MCP_HTTP_PORT", "8765", "http: port (0: any free one, logged)", TW_OPT_INT,
     OPT(http_port), 0, 65535, 0, NULL},
    {"allowed-origins", "TWIN_MCP_ALLOWED_ORIGINS", "",
     "http: Origin values browsers may call from besides this machine's, comma-separated",
     TW_OPT_STR, OPT(allowed_origins), 0, 0, 0, NULL},
    {"max-message", "TWIN_MCP_MAX_MESSAGE", "1048576",
     "largest JSON-RPC message accepted, bytes (a longer line is answered with an error)",
     TW_OPT_INT, OPT(max_message), 1024, 64 * 1024 * 1024, 0, NULL},
    {"redis-timeout-ms", "TWIN_REDIS_TIMEOUT_MS", "5000", "Redis command timeout, ms", TW_OPT_INT,
     OPT(redis_timeout_ms), 10, 600000, 0, NULL},
};

static const struct tw_program mcp_program = {
    .name = "twin-mcp",
    .summary = "the twin as Model Context Protocol tools for LLM clients, over stdio or HTTP",
    .options = mcp_options,
    .n_options = sizeof(mcp_options) / sizeof(mcp_options[0]),
};

static const char instructions[] =
    "Twinloop is a digital twin of a plant: every asset (machine, pump, ...) reports signals; "
    "the twin keeps their current state and history and forecasts each signal with intervals. "
    "Start with list_assets, then get_state, get_history or get_prediction for an asset. Times "
    "are Unix milliseconds.";

/* The whole file as a string (the plant model, already checked by loading it), or NULL. */
static char *read_text(const char *path)
{
    FILE *f = fopen(path, "rb");
    char *text = NULL;
    long n = -1;
    if (f && fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) >= 0 && fseek(f, 0, SEEK_SET) == 0 &&
        (text = malloc((size_t)n + 1)) != NULL) {
        if (fread(text, 1, (size_t)n, f) == (size_t)n) {
            text[n] = '\0';
        } else {
            free(text);
            text = NULL;
        }
    }
    if (f)
        fclose(f);
    return text;
}

/* Writes one message and a newline; stdout carries nothing else (logs go to stderr). */
static int send_line(const char *text)
{
    if (fputs(text, stdout) == EOF || fputc('\n', stdout) == EOF || fflush(stdout) == EOF)
        return -1;
    return 0;
}

static void notify_stdio(void *ctx, const char *text)
{
    (void)ctx;
    send_line(text);
}

/* Reads messages until stdin ends. Returns the exit status. */
static int serve_stdio(struct mcp_server *srv, size_t max_message)
{
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    int status = 0;
    while ((n = getline(&line, &cap, stdin)) >= 0) {
        while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
            line[--n] = '\0';
        if (n == 0)
            continue;
        char *reply;
        if ((size_t)n > max_message) {
            char msg[128];
            snprintf(msg, sizeof(msg), "message of %zd bytes is above the limit of %zu", n,
                     max_message);
            reply = mcp_rpc_error(NULL, MCP_INVALID_REQUEST, msg, NULL);
        } else {
            reply = mcp_handle(srv, line, (size_t)n);
        }
        int rc = reply ? send_line(reply) : 0;
        cJSON_free(reply);
        if (rc < 0) {
            tw_log(TW_LOG_ERROR, "stdout_closed", "detail=\"the client went away\"");
            status = 1;
            break;
        }
    }
    free(line);
    return status;
}

int main(int argc, char **argv)
{
    static struct mcp_settings cfg;
    enum tw_config_action action;
    char err[256];
    /* Logs on stderr only: stdout is the protocol. */
    tw_log_init("mcp", TW_LOG_INFO);
    if (tw_config_load(&mcp_program, argc, argv, &cfg, &cfg.common, &action, err, sizeof(err)) <
        0) {
        fprintf(stderr, "twin-mcp: %s\n", err);
        return 2;
    }
    if (action == TW_CONFIG_HELP)
        return 0;
    if (action == TW_CONFIG_CHECK) {
        printf("twin-mcp: configuration is valid\n");
        return 0;
    }
    tw_log_init("mcp", cfg.common.log_level);
    tw_config_log(&mcp_program, &cfg);
    signal(SIGPIPE, SIG_IGN); /* a client that goes away is an error on write, not a crash */
    struct tw_store_config scfg = {.url = cfg.common.redis_url,
                                   .connect_timeout_ms = 2000,
                                   .command_timeout_ms = (int)cfg.redis_timeout_ms};
    struct tw_model *model = NULL;
    if (tw_model_load_reporting("twin-mcp", cfg.common.model_path, &model) < 0)
        return 2;
    char *model_text = model ? read_text(cfg.common.model_path) : NULL;
    struct mcp_twin twin = {.topic_root = cfg.common.topic_root,
                            .model = model,
                            .model_text = model_text,
                            .mqtt_url = cfg.common.mqtt_url,
                            .mqtt_user = cfg.common.mqtt_user,
                            .mqtt_password = cfg.common.mqtt_password,
                            .mqtt_ca_file = cfg.common.mqtt_ca_file};
    int rc = tw_store_create(&scfg, NULL, 0, &twin.store);
    if (rc < 0) {
        tw_log(TW_LOG_ERROR, "start_failed", "error=%s", tw_strerror(rc));
        tw_model_free(model);
        free(model_text);
        return 1;
    }
    struct mcp_server srv = {.tools = mcp_twin_tools,
                             .n_tools = mcp_twin_n_tools,
                             .resources = &mcp_twin_resources,
                             .ctx = &twin,
                             .name = "twin-mcp",
                             .version = MCP_VERSION,
                             .instructions = instructions};
    twin.server = &srv;
    tw_log(TW_LOG_INFO, "started", "transport=%s tools=%zu", cfg.transport, srv.n_tools);
    int status;
    if (strcmp(cfg.transport, "http") == 0) {
        struct mcp_http_config hcfg = {.addr = cfg.http_addr,
                                       .port = (int)cfg.http_port,
                                       .max_message = (size_t)cfg.max_message,
                                       .allowed_origins = cfg.allowed_origins};
        status = mcp_serve_http(&srv, &hcfg, tw_signal_stop_flag());
        tw_log(TW_LOG_INFO, "stopped", "reason=%s", status == 0 ? "signal" : "listen_failed");
    } else {
        srv.notify = notify_stdio; /* progress notifications go out while a tool runs */
        status = serve_stdio(&srv, (size_t)cfg.max_message);
        tw_log(TW_LOG_INFO, "stopped", "reason=%s", status == 0 ? "end_of_input" : "write_failed");
    }
    tw_store_destroy(twin.store);
    tw_model_free(model);
    free(model_text);
    return status;
}
