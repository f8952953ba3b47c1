/* SPDX-License-Identifier: Apache-2.0 */
/* The MCP server's protocol, independent of the transport: initialize and its version
 * negotiation, ping, logging/setLevel, tools/list and tools/call with argument checking,
 * resources/list, resources/read and resources/templates/list. */
#include <stdio.h>
#include <string.h>

#include "mcp.h"

static const char *const supported_versions[] = {MCP_PROTOCOL_LATEST, "2025-06-18", "2025-03-26",
                                                 "2024-11-05"};
static const char *const log_levels[] = {"debug", "info",     "notice", "warning",
                                         "error", "critical", "alert",  "emergency"};

bool mcp_protocol_supported(const char *version)
{
    for (size_t i = 0; i < sizeof(supported_versions) / sizeof(supported_versions[0]); i++)
        if (strcmp(version, supported_versions[i]) == 0)
            return true;
    return false;
}

static const cJSON *param(const struct mcp_msg *m, const char *name)
{
    return cJSON_IsObject(m->params) ? cJSON_GetObjectItemCaseSensitive(m->params, name) : NULL;
}

static char *on_initialize(struct mcp_server *s, const struct mcp_msg *m)
{
    const cJSON *asked = param(m, "protocolVersion");
    if (!cJSON_IsString(asked))
        return mcp_rpc_error(m->id, MCP_INVALID_PARAMS, "initialize needs protocolVersion", NULL);
    /* The client's revision when this server speaks it, else the newest this server knows:
     * the client then decides whether it can go on. */
    const char *agreed =
        mcp_protocol_supported(asked->valuestring) ? asked->valuestring : MCP_PROTOCOL_LATEST;
    snprintf(s->protocol, sizeof(s->protocol), "%s", agreed);
    s->initialized = true;
    cJSON *r = cJSON_CreateObject();
    cJSON *caps = cJSON_AddObjectToObject(r, "capabilities");
    cJSON *tools = cJSON_AddObjectToObject(caps, "tools");
    cJSON_AddBoolToObject(tools, "listChanged", false);
    cJSON_AddObjectToObject(caps, "logging");
    if (s->resources) {
        cJSON *res = cJSON_AddObjectToObject(caps, "resources");
        cJSON_AddBoolToObject(res, "listChanged", false);
        cJSON_AddBoolToObject(res, "subscribe", false);
    }
    cJSON *info = cJSON_AddObjectToObject(r, "serverInfo");
    cJSON_AddStringToObject(info, "name", s->name);
    cJSON_AddStringToObject(info, "title", "Twinloop digital twin");
    cJSON_AddStringToObject(info, "version", s->version);
    cJSON_AddStringToObject(r, "protocolVersion", agreed);
    if (s->instructions)
        cJSON_AddStringToObject(r, "instructions", s->instructions);
    return mcp_rpc_result(m->id, r);
}

static cJSON *parse_schema(const char *text)
{
    return text ? cJSON_Parse(text) : NULL;
}

static char *on_tools_list(struct mcp_server *s, const struct mcp_msg *m)
{
    cJSON *r = cJSON_CreateObject();
    cJSON *list = cJSON_AddArrayToObject(r, "tools");
    for (size_t i = 0; i < s->n_tools; i++) {
        const struct mcp_tool *t = &s->tools[i];
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "name", t->name);
        cJSON_AddStringToObject(o, "title", t->title);
        cJSON_AddStringToObject(o, "description", t->description);
        cJSON_AddItemToObject(o, "inputSchema", parse_schema(t->input_schema));
        if (t->output_schema)
            cJSON_AddItemToObject(o, "outputSchema", parse_schema(t->output_schema));
        cJSON *ann = cJSON_AddObjectToObject(o, "annotations");
        cJSON_AddBoolToObject(ann, "readOnlyHint", true);
        cJSON_AddBoolToObject(ann, "openWorldHint", false);
        cJSON_AddItemToArray(list, o);
    }
    return mcp_rpc_result(m->id, r);
}

/* A tools/call result carrying only a message, as a tool error (the model reads it). */
static cJSON *tool_error(const char *text)
{
    cJSON *r = cJSON_CreateObject();
    cJSON *content = cJSON_AddArrayToObject(r, "content");
    cJSON *item = cJSON_CreateObject();
    cJSON_AddStringToObject(item, "type", "text");
    cJSON_AddStringToObject(item, "text", text);
    cJSON_AddItemToArray(content, item);
    cJSON_AddBoolToObject(r, "isError", true);
    return r;
}

void mcp_progress(struct mcp_server *s, double progress, double total, const char *message)
{
    if (!s || !s->notify || !s->progress_token)
        return;
    cJSON *p = cJSON_CreateObject();
    cJSON_AddItemToObject(p, "progressToken", cJSON_Duplicate(s->progress_token, true));
    cJSON_AddNumberToObject(p, "progress", progress);
    cJSON_AddNumberToObject(p, "total", total);
    if (message)
        cJSON_AddStringToObject(p, "message", message);
    mcp_exact_numbers(p); /* the token exactly as the client sent it */
    char *text = mcp_rpc_notification("notifications/progress", p);
    if (text)
        s->notify(s->notify_ctx, text);
    cJSON_free(text);
}

static char *on_tools_call(struct mcp_server *s, const struct mcp_msg *m)
{
    const cJSON *name = param(m, "name");
    const cJSON *args = param(m, "arguments");
    if (!cJSON_IsString(name))
        return mcp_rpc_error(m->id, MCP_INVALID_PARAMS, "tools/call needs a tool name", NULL);
    const struct mcp_tool *t = NULL;
    for (size_t i = 0; i < s->n_tools && !t; i++)
        if (strcmp(s->tools[i].name, name->valuestring) == 0)
            t = &s->tools[i];
    if (!t) {
        char msg[160];
        snprintf(msg, sizeof(msg), "Unknown tool: %.100s", name->valuestring);
        return mcp_rpc_error(m->id, MCP_INVALID_PARAMS, msg, NULL);
    }
    cJSON *empty = NULL;
    if (!args)
        args = empty = cJSON_CreateObject();
    char err[512] = "";
    cJSON *schema = parse_schema(t->input_schema), *structured = NULL, *r;
    if (mcp_check_args(schema, args, err, sizeof(err)) < 0) {
        char msg[600];
        snprintf(msg, sizeof(msg), "Invalid arguments for %s: %s", t->name, err);
        r = tool_error(msg);
    } else {
        const cJSON *meta = param(m, "_meta");
        const cJSON *token = cJSON_GetObjectItemCaseSensitive(meta, "progressToken");
        s->progress_token =
            cJSON_IsString(token) || cJSON_IsNumber(token) ? cJSON_Duplicate(token, true) : NULL;
        int rc = t->call(s->ctx, args, &structured, err, sizeof(err));
        cJSON_Delete(s->progress_token);
        s->progress_token = NULL;
        r = rc < 0 ? tool_error(err) : NULL;
    }
    if (!r) {
        /* The structured result, and the same as JSON text for clients that read only text. */
        r = cJSON_CreateObject();
        mcp_exact_numbers(structured);
        char *text = cJSON_PrintUnformatted(structured);
        cJSON *content = cJSON_AddArrayToObject(r, "content");
        cJSON *item = cJSON_CreateObject();
        cJSON_AddStringToObject(item, "type", "text");
        cJSON_AddStringToObject(item, "text", text ? text : "{}");
        cJSON_AddItemToArray(content, item);
        cJSON_AddItemToObject(r, "structuredContent", structured);
        cJSON_AddBoolToObject(r, "isError", false);
        cJSON_free(text);
    }
    cJSON_Delete(schema);
    cJSON_Delete(empty);
    return mcp_rpc_result(m->id, r);
}

static char *on_set_level(const struct mcp_msg *m)
{
    const cJSON *level = param(m, "level");
    for (size_t i = 0; cJSON_IsString(level) && i < sizeof(log_levels) / sizeof(log_levels[0]); i++)
        if (strcmp(level->valuestring, log_levels[i]) == 0)
            return mcp_rpc_result(m->id, cJSON_CreateObject());
    return mcp_rpc_error(m->id, MCP_INVALID_PARAMS,
                         "level must be one of debug, info, notice, warning, error, critical, "
                         "alert, emergency",
                         NULL);
}

static char *on_resources_list(struct mcp_server *s, const struct mcp_msg *m)
{
    char err[256] = "";
    cJSON *r = cJSON_CreateObject();
    cJSON *list = cJSON_AddArrayToObject(r, "resources");
    if (s->resources->list(s->ctx, list, err, sizeof(err)) < 0) {
        cJSON_Delete(r);
        return mcp_rpc_error(m->id, MCP_INTERNAL_ERROR, err, NULL);
    }
    return mcp_rpc_result(m->id, r);
}

static char *on_resources_read(struct mcp_server *s, const struct mcp_msg *m)
{
    const cJSON *uri = param(m, "uri");
    if (!cJSON_IsString(uri))
        return mcp_rpc_error(m->id, MCP_INVALID_PARAMS, "resources/read needs a uri", NULL);
    char err[256] = "";
    cJSON *r = cJSON_CreateObject();
    cJSON *contents = cJSON_AddArrayToObject(r, "contents");
    int rc = s->resources->read(s->ctx, uri->valuestring, contents, err, sizeof(err));
    if (rc == 0)
        return mcp_rpc_result(m->id, r);
    cJSON_Delete(r);
    if (rc == MCP_RESOURCE_NOT_FOUND) {
        cJSON *data = cJSON_CreateObject();
        cJSON_AddStringToObject(data, "uri", uri->valuestring);
        return mcp_rpc_error(m->id, MCP_RESOURCE_NOT_FOUND, "Resource not found", data);
    }
    return mcp_rpc_error(m->id, MCP_INTERNAL_ERROR, err, NULL);
}

static char *on_request(struct mcp_server *s, const struct mcp_msg *m)
{
    if (strcmp(m->method, "initialize") == 0)
        return on_initialize(s, m);
    if (strcmp(m->method, "ping") == 0)
        return mcp_rpc_result(m->id, cJSON_CreateObject());
    if (strcmp(m->method, "tools/list") == 0)
        return on_tools_list(s, m);
    if (strcmp(m->method, "tools/call") == 0)
        return on_tools_call(s, m);
    if (strcmp(m->method, "logging/setLevel") == 0)
        return on_set_level(m);
    if (s->resources && strcmp(m->method, "resources/list") == 0)
        return on_resources_list(s, m);
    if (s->resources && strcmp(m->method, "resources/read") == 0)
        return on_resources_read(s, m);
    if (s->resources && strcmp(m->method, "resources/templates/list") == 0) {
        cJSON *r = cJSON_CreateObject();
        cJSON_AddItemToObject(r, "resourceTemplates", cJSON_Parse(s->resources->templates));
        return mcp_rpc_result(m->id, r);
    }
    char msg[160];
    snprintf(msg, sizeof(msg), "Method not found: %.100s", m->method);
    return mcp_rpc_error(m->id, MCP_METHOD_NOT_FOUND, msg, NULL);
}

char *mcp_handle(struct mcp_server *s, const char *text, size_t len)
{
    struct mcp_msg m;
    const char *why = NULL;
    char *out = NULL;
    int rc = mcp_rpc_parse(text, len, &m, &why);
    if (rc != 0)
        out = mcp_rpc_error(m.id, rc, why, NULL);
    else if (m.kind == MCP_KIND_REQUEST)
        out = on_request(s, &m);
    /* Notifications (initialized, cancelled, ...) and responses need no answer. */
    cJSON_Delete(m.root);
    return out;
}
