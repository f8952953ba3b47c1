/* SPDX-License-Identifier: Apache-2.0 */
/* twin-mcp's parts: JSON-RPC 2.0 messages, the MCP protocol (lifecycle, tools) over any
 * transport, and the tool table that reads the twin. */
#ifndef MCP_H
#define MCP_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

/* ---- jsonrpc.c: JSON-RPC 2.0 messages (pure) --------------------------------------------- */

enum mcp_rpc_error {
    MCP_PARSE_ERROR = -32700,
    MCP_INVALID_REQUEST = -32600,
    MCP_METHOD_NOT_FOUND = -32601,
    MCP_INVALID_PARAMS = -32602,
    MCP_INTERNAL_ERROR = -32603,
};

enum mcp_kind { MCP_KIND_REQUEST, MCP_KIND_NOTIFICATION, MCP_KIND_RESPONSE };

struct mcp_msg {
    cJSON *root; /* owns everything below */
    enum mcp_kind kind;
    const cJSON *id;     /* a request's id (string or number); NULL for a notification */
    const char *method;  /* requests and notifications */
    const cJSON *params; /* object, array or NULL */
};

/* Parses one message (a single JSON-RPC object; batches are not part of MCP since 2025-06-18).
 * 0, or a JSON-RPC error code with *why set (static text); then out->id is still set when the
 * message had a usable id, so that the error can answer it. Either way the caller frees
 * out->root (cJSON_Delete, NULL is fine). */
int mcp_rpc_parse(const char *text, size_t len, struct mcp_msg *out, const char **why);

/* A response text (malloc'd, one line, no newline): result is taken (deleted). NULL on
 * out-of-memory. */
char *mcp_rpc_result(const cJSON *id, cJSON *result);
/* An error response; id NULL answers with "id": null. data may be NULL (taken). */
char *mcp_rpc_error(const cJSON *id, int code, const char *message, cJSON *data);
/* Replaces every number in tree by its exact text (the shortest that reads back as the same
 * double), for results whose values must survive printing bit for bit. */
void mcp_exact_numbers(cJSON *tree);
/* A notification text (method, params taken; params may be NULL). */
char *mcp_rpc_notification(const char *method, cJSON *params);

/* ---- protocol.c: the MCP server, transport-independent (pure given its tools) ------------ */

#define MCP_PROTOCOL_LATEST "2025-11-25"

/* Whether this server speaks the protocol revision (2025-11-25, 2025-06-18, 2025-03-26,
 * 2024-11-05). */
bool mcp_protocol_supported(const char *version);

/* A tool's handler: fills *result_out with the tool's structured result (an object) and
 * returns 0, or returns -1 with a message for the caller in err (a tool error: the call
 * itself was understood, e.g. an unknown asset or Redis down). args is an object (maybe
 * empty). */
typedef int (*mcp_tool_fn)(void *ctx, const cJSON *args, cJSON **result_out, char *err,
                           size_t errlen);

struct mcp_tool {
    const char *name;
    const char *title;
    const char *description;
    const char *input_schema;  /* JSON text */
    const char *output_schema; /* JSON text or NULL */
    mcp_tool_fn call;
};

#define MCP_RESOURCE_NOT_FOUND -32002

/* Resources, when the server offers them. list appends {uri, name, title, description,
 * mimeType} objects to `out` (an array); read appends the contents to `out` and returns 0, or
 * MCP_RESOURCE_NOT_FOUND, or -1 with err for any other failure. */
struct mcp_resources_api {
    int (*list)(void *ctx, cJSON *out, char *err, size_t errlen);
    int (*read)(void *ctx, const char *uri, cJSON *out, char *err, size_t errlen);
    const char *templates; /* JSON array of resource templates */
};

struct mcp_server {
    const struct mcp_tool *tools;
    size_t n_tools;
    const struct mcp_resources_api *resources; /* NULL: none offered */
    void *ctx;                                 /* handed to the tools */
    const char *name, *version;                /* serverInfo */
    const char *instructions;                  /* NULL: none */
    bool initialized;                          /* an initialize was answered */
    char protocol[16];                         /* the revision agreed on */
    /* Sends a notification while a request runs (stdio); NULL: the transport cannot. */
    void (*notify)(void *notify_ctx, const char *text);
    void *notify_ctx;
    cJSON *progress_token; /* of the tools/call being handled, or NULL */
};

/* A notifications/progress for the tools/call being handled, when its client asked for them
 * (params._meta.progressToken) and the transport can send them; otherwise nothing. */
void mcp_progress(struct mcp_server *s, double progress, double total, const char *message);

/* Handles one incoming message text; returns the response text to send (malloc'd) or NULL when
 * there is nothing to answer (a notification, a response). */
char *mcp_handle(struct mcp_server *s, const char *text, size_t len);

/* Checks args against the tool's input schema, for the subset the tools use (type object,
 * properties of type string / integer / number / boolean / array of strings, required,
 * additionalProperties false, string pattern via the id rules, integer minimum/maximum,
 * enum of strings). 0, or -1 with the first problem in err. */
int mcp_check_args(const cJSON *schema, const cJSON *args, char *err, size_t errlen);

/* ---- http.c: the Streamable HTTP transport (stateless, POST /mcp) ------------------------ */

struct mcp_http_req {
    char method[8];
    char target[256];
    size_t content_length;
    bool has_length, chunked, has_origin;
    char content_type[128];
    char accept[256];
    char origin[256];
    char host[256];
    char protocol_version[32];
};

struct mcp_http_config {
    const char *addr;            /* numeric address to listen on */
    int port;                    /* 0: any free one (logged) */
    size_t max_message;          /* largest body */
    const char *allowed_origins; /* comma-separated Origin values besides this machine's */
    bool local_only;             /* set by mcp_serve_http: it listens on a loopback address */
};

/* Parses a request head (modified in place; the blank line removed). 0 or -1 (malformed,
 * a value too long, an unreadable or repeated Content-Length). */
int mcp_http_parse_head(char *head, struct mcp_http_req *r);
/* Whether a browser page of this Origin may call: this machine's (localhost, 127.0.0.1, [::1])
 * or one listed exactly in `allowed` (comma-separated, may be NULL). */
bool mcp_http_origin_allowed(const char *origin, const char *allowed);
/* The HTTP status to refuse the request with before its body is read (0: serve it), and why.
 * local_only (the server listens on a loopback address): a Host header must name this machine
 * too, so that a rebound DNS name cannot reach it. */
int mcp_http_check(const struct mcp_http_req *r, const char *allowed_origins, bool local_only,
                   size_t max_body, const char **why);
/* Serves until *stop, one connection at a time (each answered, then closed). Exit status. */
int mcp_serve_http(struct mcp_server *srv, const struct mcp_http_config *cfg,
                   volatile sig_atomic_t *stop);

/* ---- tools.c: the twin's tools --------------------------------------------------------------*/

struct tw_store;
struct tw_model;
struct mcp_twin {
    struct tw_store *store;
    const char *topic_root;
    struct mcp_server *server; /* for progress notifications */
    const char *mqtt_url, *mqtt_user, *mqtt_password, *mqtt_ca_file; /* run_scenario, recommend */
    const struct tw_model *model; /* TWIN_MODEL, or NULL: limits and units in explanations */
    const char *model_text;       /* the file's text for twin://plant, or NULL */
};

struct tw_model_signal;
/* Adds the signal's unit and warn/alarm limits (those the plant model gives) to o. */
void mcp_signal_limits(cJSON *o, const struct tw_model_signal *spec);

/* run_scenario (scenario_tool.c) and recommend (recommend_tool.c): questions to twin-scenario
 * and twin-advisor over MQTT. */
int mcp_tool_run_scenario(void *ctx, const cJSON *args, cJSON **out, char *err, size_t errlen);
int mcp_tool_recommend(void *ctx, const cJSON *args, cJSON **out, char *err, size_t errlen);

struct tw_inbox;
/* Connects a session of its own (client_id) subscribed to filters, then publishes buf on topic:
 * the session, or NULL with "the broker could not be reached to ask <whom>…" in err. */
struct tw_inbox *mcp_ask(struct mcp_twin *t, const char *client_id, const char *const *filters,
                         size_t n_filters, const char *topic, const uint8_t *buf, size_t len,
                         const char *whom, char *err, size_t errlen);

extern const struct mcp_tool mcp_twin_tools[];
extern const size_t mcp_twin_n_tools;
/* twin://plant (the plant model file) and twin://asset/{asset} (model, state, forecast). */
extern const struct mcp_resources_api mcp_twin_resources;

#endif
