/* SPDX-License-Identifier: Apache-2.0 */
/* JSON-RPC 2.0 for twin-mcp: one message parsed and classified, responses and notifications
 * built as one-line texts. */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mcp.h"

#define ID_MAX 9007199254740991.0 /* 2^53 - 1: the integers a double (and JavaScript) holds */

/* An id MCP accepts: a string or an integer (not null, not fractional, not beyond 2^53). */
static bool id_usable(const cJSON *id)
{
    if (cJSON_IsString(id))
        return true;
    return cJSON_IsNumber(id) && fabs(id->valuedouble) <= ID_MAX &&
           id->valuedouble == floor(id->valuedouble);
}

int mcp_rpc_parse(const char *text, size_t len, struct mcp_msg *out, const char **why)
{
    memset(out, 0, sizeof(*out));
    cJSON *root = cJSON_ParseWithLength(text, len);
    if (!root) {
        *why = "not JSON";
        return MCP_PARSE_ERROR;
    }
    out->root = root;
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(root, "id");
    if (cJSON_IsObject(root) && id_usable(id))
        out->id = id;
    if (!cJSON_IsObject(root)) {
        *why = cJSON_IsArray(root) ? "batches are not supported" : "not a JSON-RPC object";
        return MCP_INVALID_REQUEST;
    }
    const cJSON *version = cJSON_GetObjectItemCaseSensitive(root, "jsonrpc");
    if (!cJSON_IsString(version) || strcmp(version->valuestring, "2.0") != 0) {
        *why = "\"jsonrpc\" must be \"2.0\"";
        return MCP_INVALID_REQUEST;
    }
    const cJSON *method = cJSON_GetObjectItemCaseSensitive(root, "method");
    if (!method) {
        if (cJSON_GetObjectItemCaseSensitive(root, "result") ||
            cJSON_GetObjectItemCaseSensitive(root, "error")) {
            out->kind = MCP_KIND_RESPONSE;
            return 0;
        }
        *why = "no \"method\"";
        return MCP_INVALID_REQUEST;
    }
    if (!cJSON_IsString(method) || method->valuestring[0] == '\0') {
        *why = "\"method\" must be a non-empty string";
        return MCP_INVALID_REQUEST;
    }
    const cJSON *params = cJSON_GetObjectItemCaseSensitive(root, "params");
    if (params && !cJSON_IsObject(params) && !cJSON_IsArray(params)) {
        *why = "\"params\" must be an object or an array";
        return MCP_INVALID_REQUEST;
    }
    if (id && !out->id) {
        *why = "\"id\" must be a string or an integer";
        return MCP_INVALID_REQUEST;
    }
    out->kind = out->id ? MCP_KIND_REQUEST : MCP_KIND_NOTIFICATION;
    out->method = method->valuestring;
    out->params = params;
    return 0;
}

/* The id as the client sent it. cJSON prints a number with 15 significant digits when that
 * reads back within its tolerance, which would answer id 9007199254740991 with
 * 9007199254740990: an integer id is printed exactly instead. */
static cJSON *id_copy_of(const cJSON *id)
{
    if (!id)
        return cJSON_CreateNull();
    if (cJSON_IsNumber(id)) {
        char text[32];
        snprintf(text, sizeof(text), "%" PRId64, (int64_t)id->valuedouble);
        return cJSON_CreateRaw(text);
    }
    return cJSON_Duplicate(id, true);
}

/* {"jsonrpc":"2.0","id":<id>} with `key` set to item (taken), printed unformatted. */
static char *rpc_envelope(const cJSON *id, const char *key, cJSON *item)
{
    cJSON *root = cJSON_CreateObject();
    cJSON *id_copy = id_copy_of(id);
    char *text = NULL;
    if (root && id_copy && item && cJSON_AddStringToObject(root, "jsonrpc", "2.0")) {
        cJSON_AddItemToObject(root, "id", id_copy);
        id_copy = NULL;
        cJSON_AddItemToObject(root, key, item);
        item = NULL;
        text = cJSON_PrintUnformatted(root);
    }
    cJSON_Delete(id_copy);
    cJSON_Delete(item);
    cJSON_Delete(root);
    return text;
}

char *mcp_rpc_result(const cJSON *id, cJSON *result)
{
    return rpc_envelope(id, "result", result);
}

char *mcp_rpc_error(const cJSON *id, int code, const char *message, cJSON *data)
{
    cJSON *err = cJSON_CreateObject();
    if (err && cJSON_AddNumberToObject(err, "code", code) &&
        cJSON_AddStringToObject(err, "message", message)) {
        if (data)
            cJSON_AddItemToObject(err, "data", data);
        data = NULL;
    }
    cJSON_Delete(data);
    return rpc_envelope(id, "error", err);
}

char *mcp_rpc_notification(const char *method, cJSON *params)
{
    cJSON *root = cJSON_CreateObject();
    char *text = NULL;
    if (root && cJSON_AddStringToObject(root, "jsonrpc", "2.0") &&
        cJSON_AddStringToObject(root, "method", method)) {
        if (params)
            cJSON_AddItemToObject(root, "params", params);
        params = NULL;
        text = cJSON_PrintUnformatted(root);
    }
    cJSON_Delete(params);
    cJSON_Delete(root);
    return text;
}

/* The shortest text that reads back as exactly x (cJSON's own printing stops at 15 digits
 * when those read back within a tolerance, which changes the last bits). */
static cJSON *exact_number(double x)
{
    char text[40];
    if (!isfinite(x))
        return cJSON_CreateNull();
    for (int digits = 15; digits <= 17; digits++) {
        snprintf(text, sizeof(text), "%.*g", digits, x);
        if (strtod(text, NULL) == x)
            break;
    }
    return cJSON_CreateRaw(text);
}

void mcp_exact_numbers(cJSON *tree)
{
    cJSON *item = tree ? tree->child : NULL;
    while (item) {
        cJSON *next = item->next;
        if (cJSON_IsNumber(item)) {
            cJSON *exact = exact_number(item->valuedouble);
            if (exact && cJSON_IsObject(tree)) /* keeps the member's name */
                cJSON_ReplaceItemInObjectCaseSensitive(tree, item->string, exact);
            else if (exact)
                cJSON_ReplaceItemViaPointer(tree, item, exact);
        } else {
            mcp_exact_numbers(item);
        }
        item = next;
    }
}
