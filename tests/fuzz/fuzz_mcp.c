/* SPDX-License-Identifier: Apache-2.0 */
/* libFuzzer target: twin-mcp's protocol layer; any line gets at most one answer, always one line of
 * JSON-RPC 2.0 with the request's id, and a request always gets one. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "fuzz_check.h"
#include "mcp.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int echo(void *ctx, const cJSON *args, cJSON **out, char *err, size_t errlen)
{
    (void)ctx;
    if (cJSON_GetObjectItemCaseSensitive(args, "fail")) {
        snprintf(err, errlen, "asked to fail");
        return -1;
    }
    *out = cJSON_Duplicate(args, true);
    return *out ? 0 : -1;
}

static const struct mcp_tool tools[] = {
    {"echo", "Echo", "returns its arguments",
     "{\"type\":\"object\",\"properties\":{\"asset\":{\"type\":\"string\",\"maxLength\":8},"
     "\"n\":{\"type\":\"integer\",\"minimum\":1,\"maximum\":10},\"x\":{\"type\":\"number\"},"
     "\"kind\":{\"type\":\"string\",\"enum\":[\"a\",\"b\"]},\"fail\":{\"type\":\"boolean\"},"
     "\"tags\":{\"type\":\"array\",\"items\":{\"type\":\"string\"},\"maxItems\":2}},"
     "\"required\":[\"asset\"],\"additionalProperties\":false}",
     NULL, echo},
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct mcp_server s = {.tools = tools, .n_tools = 1, .name = "f", .version = "0"};
    char *out = mcp_handle(&s, (const char *)data, size);
    /* Whether the input was a request with a usable id, as the server must see it. */
    cJSON *in = cJSON_ParseWithLength((const char *)data, size);
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(in, "id");
    const cJSON *method = cJSON_GetObjectItemCaseSensitive(in, "method");
    const cJSON *version = cJSON_GetObjectItemCaseSensitive(in, "jsonrpc");
    bool request = cJSON_IsObject(in) && cJSON_IsString(method) && method->valuestring[0] &&
                   (cJSON_IsString(id) || cJSON_IsNumber(id)) && cJSON_IsString(version) &&
                   strcmp(version->valuestring, "2.0") == 0;
    if (request)
        CHECK(out != NULL);
    if (out) {
        CHECK(strchr(out, '\n') == NULL);
        cJSON *a = cJSON_Parse(out);
        CHECK(cJSON_IsObject(a));
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(a, "jsonrpc");
        CHECK(cJSON_IsString(v) && strcmp(v->valuestring, "2.0") == 0);
        const cJSON *aid = cJSON_GetObjectItemCaseSensitive(a, "id");
        CHECK(aid != NULL);
        bool result = cJSON_GetObjectItemCaseSensitive(a, "result") != NULL;
        bool error = cJSON_GetObjectItemCaseSensitive(a, "error") != NULL;
        CHECK(result != error);
        /* A request's own id comes back unchanged (strings exactly, integers exactly). */
        if (request && result)
            CHECK(cJSON_Compare(aid, id, true));
        cJSON_Delete(a);
    }
    cJSON_Delete(in);
    cJSON_free(out);
    return 0;
}
