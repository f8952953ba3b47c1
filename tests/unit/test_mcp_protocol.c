/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests of twin-mcp's protocol layer without Redis: JSON-RPC parsing and errors, the
 * initialize handshake and version negotiation, tools/list, tools/call with argument checking
 * and tool errors, logging/setLevel, and the HTTP transport's request rules. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "mcp.h"

/* ---- a fake tool table ------------------------------------------------------------------- */

static int calls;

static int echo_tool(void *ctx, const cJSON *args, cJSON **out, char *err, size_t errlen)
{
    (void)ctx;
    (void)err;
    (void)errlen;
    calls++;
    *out = cJSON_Duplicate(args, true);
    return 0;
}

static int failing_tool(void *ctx, const cJSON *args, cJSON **out, char *err, size_t errlen)
{
    (void)ctx;
    (void)args;
    (void)out;
    calls++;
    snprintf(err, errlen, "asset press-9 is unknown");
    return -1;
}

static const struct mcp_tool tools[] = {
    {"echo", "Echo", "returns its arguments",
     "{\"type\":\"object\",\"properties\":{\"asset\":{\"type\":\"string\",\"maxLength\":8},"
     "\"n\":{\"type\":\"integer\",\"minimum\":1,\"maximum\":10},"
     "\"kind\":{\"type\":\"string\",\"enum\":[\"a\",\"b\"]},"
     "\"tags\":{\"type\":\"array\",\"items\":{\"type\":\"string\"},\"maxItems\":2},"
     "\"on\":{\"type\":\"boolean\"},\"x\":{\"type\":\"number\"}},"
     "\"required\":[\"asset\"],\"additionalProperties\":false}",
     "{\"type\":\"object\"}", echo_tool},
    {"fails", "Fails", "always a tool error", "{\"type\":\"object\"}", NULL, failing_tool},
};

static struct mcp_server server(void)
{
    return (struct mcp_server){.tools = tools,
                               .n_tools = 2,
                               .name = "twin-mcp",
                               .version = "0.0.1",
                               .instructions = "hello"};
}

/* Handles text and returns the parsed answer (NULL when there is none). */
static cJSON *ask(struct mcp_server *s, const char *text)
{
    char *out = mcp_handle(s, text, strlen(text));
    if (!out)
        return NULL;
    cJSON *j = cJSON_Parse(out);
    assert_non_null(j);
    assert_null(strchr(out, '\n')); /* one line: stdio frames by newline */
    cJSON_free(out);
    return j;
}

static const cJSON *get(const cJSON *o, const char *path)
{
    char buf[128];
    snprintf(buf, sizeof(buf), "%s", path);
    const cJSON *cur = o;
    for (char *tok = strtok(buf, "."); tok && cur; tok = strtok(NULL, "."))
        cur = cJSON_IsArray(cur) ? cJSON_GetArrayItem(cur, atoi(tok))
                                 : cJSON_GetObjectItemCaseSensitive(cur, tok);
    return cur;
}

static int error_code(const cJSON *answer)
{
    const cJSON *c = get(answer, "error.code");
    assert_non_null(c);
    return c->valueint;
}

static const char *text_of(const cJSON *answer)
{
    const cJSON *t = get(answer, "result.content.0.text");
    assert_true(cJSON_IsString(t));
    return t->valuestring;
}

/* ---- JSON-RPC ----------------------------------------------------------------------------- */

static void malformed_messages_get_the_json_rpc_error_for_their_fault(void **state)
{
    (void)state;
    struct mcp_server s = server();
    static const struct {
        const char *text;
        int code;
        bool has_id; /* the answer repeats the id */
    } cases[] = {
        {"not json", MCP_PARSE_ERROR, false},
        {"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":", MCP_PARSE_ERROR, false},
        {"[{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\"}]", MCP_INVALID_REQUEST, false},
        {"42", MCP_INVALID_REQUEST, false},
        {"{\"id\":1,\"method\":\"ping\"}", MCP_INVALID_REQUEST, true},
        {"{\"jsonrpc\":\"1.0\",\"id\":1,\"method\":\"ping\"}", MCP_INVALID_REQUEST, true},
        {"{\"jsonrpc\":\"2.0\",\"id\":1}", MCP_INVALID_REQUEST, true},
        {"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":7}", MCP_INVALID_REQUEST, true},
        {"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"\"}", MCP_INVALID_REQUEST, true},
        {"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\",\"params\":3}", MCP_INVALID_REQUEST,
         true},
        {"{\"jsonrpc\":\"2.0\",\"id\":null,\"method\":\"ping\"}", MCP_INVALID_REQUEST, false},
        {"{\"jsonrpc\":\"2.0\",\"id\":1.5,\"method\":\"ping\"}", MCP_INVALID_REQUEST, false},
        {"{\"jsonrpc\":\"2.0\",\"id\":{},\"method\":\"ping\"}", MCP_INVALID_REQUEST, false},
        {"{\"jsonrpc\":\"2.0\",\"id\":1e300,\"method\":\"ping\"}", MCP_INVALID_REQUEST, false},
        {"{\"jsonrpc\":\"2.0\",\"id\":9007199254740993,\"method\":\"ping\"}", MCP_INVALID_REQUEST,
         false},
        {"{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"resources/list\"}", MCP_METHOD_NOT_FOUND,
         true},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        cJSON *a = ask(&s, cases[i].text);
        assert_non_null(a);
        assert_int_equal(error_code(a), cases[i].code);
        assert_true(cJSON_IsString(get(a, "error.message")));
        const cJSON *id = get(a, "id");
        if (cases[i].has_id)
            assert_true(cJSON_IsNumber(id));
        else
            assert_true(cJSON_IsNull(id));
        cJSON_Delete(a);
    }
}

static void notifications_and_responses_get_no_answer(void **state)
{
    (void)state;
    struct mcp_server s = server();
    assert_null(ask(&s, "{\"jsonrpc\":\"2.0\",\"method\":\"notifications/initialized\"}"));
    assert_null(ask(&s, "{\"jsonrpc\":\"2.0\",\"method\":\"notifications/cancelled\","
                        "\"params\":{\"requestId\":3}}"));
    assert_null(ask(&s, "{\"jsonrpc\":\"2.0\",\"method\":\"tools/call\"}")); /* no id */
    assert_null(ask(&s, "{\"jsonrpc\":\"2.0\",\"id\":5,\"result\":{}}"));
    assert_int_equal(calls, 0);
}

static void ids_come_back_as_they_were_sent(void **state)
{
    (void)state;
    struct mcp_server s = server();
    cJSON *a = ask(&s, "{\"jsonrpc\":\"2.0\",\"id\":\"req-7\",\"method\":\"ping\"}");
    assert_string_equal(get(a, "id")->valuestring, "req-7");
    assert_true(cJSON_IsObject(get(a, "result")));
    assert_null(get(a, "result")->child); /* ping answers {} */
    cJSON_Delete(a);
    a = ask(&s, "{\"jsonrpc\":\"2.0\",\"id\":9007199254740991,\"method\":\"ping\"}");
    assert_true(get(a, "id")->valuedouble == 9007199254740991.0);
    cJSON_Delete(a);
}

/* ---- lifecycle ---------------------------------------------------------------------------- */

static void initialize_agrees_on_a_revision_and_states_capabilities(void **state)
{
    (void)state;
    static const struct {
        const char *asked, *agreed;
    } cases[] = {{"2025-11-25", "2025-11-25"},        {"2025-06-18", "2025-06-18"},
                 {"2025-03-26", "2025-03-26"},        {"2024-11-05", "2024-11-05"},
                 {"2031-01-01", MCP_PROTOCOL_LATEST}, {"nonsense", MCP_PROTOCOL_LATEST}};
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct mcp_server s = server();
        char req[256];
        snprintf(req, sizeof(req),
                 "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"initialize\",\"params\":{"
                 "\"protocolVersion\":\"%s\",\"capabilities\":{},\"clientInfo\":{\"name\":\"t\","
                 "\"version\":\"1\"}}}",
                 cases[i].asked);
        cJSON *a = ask(&s, req);
        assert_string_equal(get(a, "result.protocolVersion")->valuestring, cases[i].agreed);
        assert_string_equal(get(a, "result.serverInfo.name")->valuestring, "twin-mcp");
        assert_string_equal(get(a, "result.serverInfo.version")->valuestring, "0.0.1");
        assert_true(cJSON_IsFalse(get(a, "result.capabilities.tools.listChanged")));
        assert_non_null(get(a, "result.capabilities.logging"));
        assert_null(get(a, "result.capabilities.resources")); /* not offered (yet) */
        assert_string_equal(get(a, "result.instructions")->valuestring, "hello");
        assert_true(s.initialized);
        assert_string_equal(s.protocol, cases[i].agreed);
        cJSON_Delete(a);
    }
    struct mcp_server s = server();
    cJSON *a = ask(&s, "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"initialize\",\"params\":{}}");
    assert_int_equal(error_code(a), MCP_INVALID_PARAMS);
    assert_false(s.initialized);
    cJSON_Delete(a);
}

static void set_level_takes_the_eight_syslog_levels_only(void **state)
{
    (void)state;
    struct mcp_server s = server();
    cJSON *a = ask(&s, "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"logging/setLevel\","
                       "\"params\":{\"level\":\"warning\"}}");
    assert_true(cJSON_IsObject(get(a, "result")));
    cJSON_Delete(a);
    a = ask(&s, "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"logging/setLevel\","
                "\"params\":{\"level\":\"loud\"}}");
    assert_int_equal(error_code(a), MCP_INVALID_PARAMS);
    cJSON_Delete(a);
}

/* ---- tools -------------------------------------------------------------------------------- */

static void tools_list_gives_every_tool_with_its_schemas(void **state)
{
    (void)state;
    struct mcp_server s = server();
    cJSON *a = ask(&s, "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/list\"}");
    const cJSON *list = get(a, "result.tools");
    assert_int_equal(cJSON_GetArraySize(list), 2);
    assert_string_equal(get(list, "0.name")->valuestring, "echo");
    assert_string_equal(get(list, "0.title")->valuestring, "Echo");
    assert_string_equal(get(list, "0.inputSchema.type")->valuestring, "object");
    assert_string_equal(get(list, "0.inputSchema.required.0")->valuestring, "asset");
    assert_non_null(get(list, "0.outputSchema"));
    assert_null(get(list, "1.outputSchema"));
    assert_true(cJSON_IsTrue(get(list, "0.annotations.readOnlyHint")));
    cJSON_Delete(a);
}

static void a_call_returns_structured_content_and_the_same_as_text(void **state)
{
    (void)state;
    struct mcp_server s = server();
    calls = 0;
    cJSON *a = ask(&s, "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/call\",\"params\":{"
                       "\"name\":\"echo\",\"arguments\":{\"asset\":\"p-1\",\"n\":3,\"kind\":\"b\","
                       "\"tags\":[\"x\"],\"on\":true}}}");
    assert_int_equal(calls, 1);
    assert_true(cJSON_IsFalse(get(a, "result.isError")));
    const cJSON *sc = get(a, "result.structuredContent");
    assert_string_equal(get(sc, "asset")->valuestring, "p-1");
    cJSON *from_text = cJSON_Parse(text_of(a));
    assert_true(cJSON_Compare(from_text, sc, true));
    cJSON_Delete(from_text);
    cJSON_Delete(a);
    /* Numbers come back bit for bit (cJSON alone prints 17.8939652504555 for this one). */
    a = ask(&s, "{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"tools/call\",\"params\":{"
                "\"name\":\"echo\",\"arguments\":{\"asset\":\"p\",\"x\":17.893965250455498}}}");
    assert_true(get(a, "result.structuredContent.x")->valuedouble == 17.893965250455498);
    assert_non_null(strstr(text_of(a), "17.893965250455498"));
    cJSON_Delete(a);
}

static void bad_arguments_are_a_tool_error_naming_the_problem_and_the_tool_is_not_run(void **state)
{
    (void)state;
    static const struct {
        const char *args, *says;
    } cases[] = {
        {"{}", "\"asset\" is required"},
        {"{\"asset\":7}", "\"asset\" must be a string"},
        {"{\"asset\":\"123456789\"}", "longer than 8"},
        {"{\"asset\":\"p\",\"n\":0}", "at least 1"},
        {"{\"asset\":\"p\",\"n\":11}", "at most 10"},
        {"{\"asset\":\"p\",\"n\":2.5}", "whole number"},
        {"{\"asset\":\"p\",\"n\":\"2\"}", "must be an integer"},
        {"{\"asset\":\"p\",\"kind\":\"c\"}", "not one of the allowed"},
        {"{\"asset\":\"p\",\"tags\":[\"a\",\"b\",\"c\"]}", "more than 2 items"},
        {"{\"asset\":\"p\",\"tags\":[1]}", "must be a string"},
        {"{\"asset\":\"p\",\"on\":1}", "true or false"},
        {"{\"asset\":\"p\",\"extra\":1}", "unknown argument \"extra\""},
        {"[1]", "must be a JSON object"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct mcp_server s = server();
        char req[512];
        snprintf(req, sizeof(req),
                 "{\"jsonrpc\":\"2.0\",\"id\":4,\"method\":\"tools/call\",\"params\":{\"name\":"
                 "\"echo\",\"arguments\":%s}}",
                 cases[i].args);
        calls = 0;
        cJSON *a = ask(&s, req);
        assert_true(cJSON_IsTrue(get(a, "result.isError")));
        if (!strstr(text_of(a), cases[i].says))
            fail_msg("%s: \"%s\" does not say \"%s\"", cases[i].args, text_of(a), cases[i].says);
        assert_int_equal(calls, 0);
        cJSON_Delete(a);
    }
}

static void unknown_tools_are_protocol_errors_and_tool_failures_are_tool_errors(void **state)
{
    (void)state;
    struct mcp_server s = server();
    cJSON *a = ask(&s, "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/call\",\"params\":{"
                       "\"name\":\"nope\"}}");
    assert_int_equal(error_code(a), MCP_INVALID_PARAMS);
    assert_non_null(strstr(get(a, "error.message")->valuestring, "nope"));
    cJSON_Delete(a);
    a = ask(&s, "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/call\",\"params\":{}}");
    assert_int_equal(error_code(a), MCP_INVALID_PARAMS);
    cJSON_Delete(a);
    calls = 0;
    a = ask(&s, "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/call\",\"params\":{"
                "\"name\":\"fails\"}}"); /* no arguments: an empty object */
    assert_int_equal(calls, 1);
    assert_true(cJSON_IsTrue(get(a, "result.isError")));
    assert_string_equal(text_of(a), "asset press-9 is unknown");
    assert_null(get(a, "result.structuredContent"));
    cJSON_Delete(a);
}

/* ---- the twin's own tools ------------------------------------------------------------------- */

static void every_twin_tool_has_valid_schemas_and_an_asset_where_it_needs_one(void **state)
{
    (void)state;
    assert_int_equal(mcp_twin_n_tools, 8);
    for (size_t i = 0; i < mcp_twin_n_tools; i++) {
        const struct mcp_tool *t = &mcp_twin_tools[i];
        cJSON *in = cJSON_Parse(t->input_schema), *out = cJSON_Parse(t->output_schema);
        if (!in || !out)
            fail_msg("%s: a schema is not JSON", t->name);
        assert_string_equal(get(in, "type")->valuestring, "object");
        assert_true(cJSON_IsFalse(get(in, "additionalProperties")));
        assert_true(strlen(t->description) > 40);
        char err[256];
        cJSON *empty = cJSON_CreateObject();
        bool needs_asset = strcmp(t->name, "list_assets") != 0 &&
                           strcmp(t->name, "list_alerts") != 0 &&
                           strcmp(t->name, "run_scenario") != 0;
        assert_int_equal(mcp_check_args(in, empty, err, sizeof(err)), needs_asset ? -1 : 0);
        cJSON_Delete(empty);
        cJSON_Delete(in);
        cJSON_Delete(out);
    }
}

/* ---- resources ---------------------------------------------------------------------------- */

static int fake_list(void *ctx, cJSON *out, char *err, size_t errlen)
{
    (void)ctx;
    (void)err;
    (void)errlen;
    cJSON *r = cJSON_CreateObject();
    cJSON_AddStringToObject(r, "uri", "twin://asset/p-1");
    cJSON_AddStringToObject(r, "name", "p-1");
    cJSON_AddItemToArray(out, r);
    return 0;
}

static int fake_read(void *ctx, const char *uri, cJSON *out, char *err, size_t errlen)
{
    (void)ctx;
    if (strcmp(uri, "twin://broken") == 0) {
        snprintf(err, errlen, "store unreachable");
        return -1;
    }
    if (strcmp(uri, "twin://asset/p-1") != 0)
        return MCP_RESOURCE_NOT_FOUND;
    cJSON *c = cJSON_CreateObject();
    cJSON_AddStringToObject(c, "uri", uri);
    cJSON_AddStringToObject(c, "text", "{}");
    cJSON_AddItemToArray(out, c);
    return 0;
}

static const struct mcp_resources_api fake_resources = {
    fake_list, fake_read, "[{\"uriTemplate\":\"twin://asset/{asset}\",\"name\":\"asset\"}]"};

static void resources_are_listed_read_and_missing_ones_are_not_found(void **state)
{
    (void)state;
    struct mcp_server s = server();
    cJSON *a = ask(&s, "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"resources/list\"}");
    assert_int_equal(error_code(a), MCP_METHOD_NOT_FOUND); /* not offered */
    cJSON_Delete(a);
    s.resources = &fake_resources;
    a = ask(&s, "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"initialize\",\"params\":{"
                "\"protocolVersion\":\"2025-11-25\"}}");
    assert_true(cJSON_IsFalse(get(a, "result.capabilities.resources.subscribe")));
    cJSON_Delete(a);
    a = ask(&s, "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"resources/list\"}");
    assert_string_equal(get(a, "result.resources.0.uri")->valuestring, "twin://asset/p-1");
    cJSON_Delete(a);
    a = ask(&s, "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"resources/templates/list\"}");
    assert_string_equal(get(a, "result.resourceTemplates.0.uriTemplate")->valuestring,
                        "twin://asset/{asset}");
    cJSON_Delete(a);
    a = ask(&s, "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"resources/read\",\"params\":{"
                "\"uri\":\"twin://asset/p-1\"}}");
    assert_string_equal(get(a, "result.contents.0.text")->valuestring, "{}");
    cJSON_Delete(a);
    a = ask(&s, "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"resources/read\",\"params\":{"
                "\"uri\":\"twin://asset/nope\"}}");
    assert_int_equal(error_code(a), MCP_RESOURCE_NOT_FOUND);
    assert_string_equal(get(a, "error.data.uri")->valuestring, "twin://asset/nope");
    cJSON_Delete(a);
    a = ask(&s, "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"resources/read\",\"params\":{"
                "\"uri\":\"twin://broken\"}}");
    assert_int_equal(error_code(a), MCP_INTERNAL_ERROR);
    assert_string_equal(get(a, "error.message")->valuestring, "store unreachable");
    cJSON_Delete(a);
    a = ask(&s, "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"resources/read\",\"params\":{}}");
    assert_int_equal(error_code(a), MCP_INVALID_PARAMS);
    cJSON_Delete(a);
}

/* ---- the HTTP transport's rules -------------------------------------------------------------- */

static int check_head(const char *text, size_t max_body, const char **why)
{
    char head[1024];
    struct mcp_http_req r;
    snprintf(head, sizeof(head), "%s", text);
    if (mcp_http_parse_head(head, &r) < 0)
        return -1;
    return mcp_http_check(&r, "https://dash.example", true, max_body, why);
}

static void http_requests_are_refused_with_the_status_that_names_the_fault(void **state)
{
    (void)state;
    const char *why = NULL;
    static const char ok[] =
        "POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json"
        "\r\nAccept: application/json, text/event-stream\r\nContent-Length: 10\r\n";
    assert_int_equal(check_head(ok, 100, &why), 0);
    static const struct {
        const char *head;
        int status;
    } cases[] = {
        {"GET /mcp HTTP/1.1\r\n", 405},
        {"DELETE /mcp HTTP/1.1\r\n", 405},
        {"POST /other HTTP/1.1\r\nContent-Length: 2\r\n", 404},
        {"POST /mcp?x=1 HTTP/1.1\r\nContent-Type: application/json\r\nContent-Length: 2\r\n", 0},
        {"POST /mcp HTTP/1.1\r\nOrigin: http://evil.example\r\nContent-Length: 2\r\n", 403},
        {"POST /mcp HTTP/1.1\r\nHost: evil.example:8765\r\nContent-Length: 2\r\n", 403},
        {"POST /mcp HTTP/1.1\r\nHost: [::1]:8765\r\nContent-Type: application/json\r\n"
         "Content-Length: 2\r\n",
         0},
        {"POST /mcp HTTP/1.1\r\nOrigin: http://localhost.evil.example\r\nContent-Length: 2\r\n",
         403},
        {"POST /mcp HTTP/1.1\r\nOrigin: http://localhost:3000\r\nContent-Type: application/json\r\n"
         "Content-Length: 2\r\n",
         0},
        {"POST /mcp HTTP/1.1\r\nOrigin: https://dash.example\r\nContent-Type: application/json\r\n"
         "Content-Length: 2\r\n",
         0},
        {"POST /mcp HTTP/1.1\r\nTransfer-Encoding: chunked\r\n", 411},
        {"POST /mcp HTTP/1.1\r\nContent-Type: application/json\r\n", 411},
        {"POST /mcp HTTP/1.1\r\nContent-Type: application/json\r\nContent-Length: 101\r\n", 413},
        {"POST /mcp HTTP/1.1\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n", 415},
        {"POST /mcp HTTP/1.1\r\nContent-Type: application/json\r\nAccept: text/html\r\n"
         "Content-Length: 2\r\n",
         406},
        {"POST /mcp HTTP/1.1\r\nContent-Type: application/json\r\nMCP-Protocol-Version: "
         "1999-01-01\r\n"
         "Content-Length: 2\r\n",
         400},
        {"POST /mcp HTTP/1.1\r\nContent-Type: application/json\r\nMCP-Protocol-Version: "
         "2025-06-18\r\n"
         "Content-Length: 2\r\n",
         0},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        why = NULL;
        int got = check_head(cases[i].head, 100, &why);
        if (got != cases[i].status)
            fail_msg("%s: %d, not %d", cases[i].head, got, cases[i].status);
        if (got != 0)
            assert_non_null(why);
    }
    static const char *const malformed[] = {
        "",
        "POST\r\n",
        "POST mcp HTTP/1.1\r\n",
        "POST /mcp SPDY/3\r\n",
        "POST /mcp HTTP/1.1\r\nno colon here\r\n",
        "POST /mcp HTTP/1.1\r\nContent-Length: 12x\r\n",
        "POST /mcp HTTP/1.1\r\nContent-Length: 2\r\nContent-Length: 3\r\n",
        "POST /mcp HTTP/1.1\r\nContent-Length: 99999999999999999999999\r\n",
    };
    for (size_t i = 0; i < sizeof(malformed) / sizeof(malformed[0]); i++)
        if (check_head(malformed[i], 100, &why) != -1)
            fail_msg("accepted: %s", malformed[i]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(malformed_messages_get_the_json_rpc_error_for_their_fault),
        cmocka_unit_test(notifications_and_responses_get_no_answer),
        cmocka_unit_test(ids_come_back_as_they_were_sent),
        cmocka_unit_test(initialize_agrees_on_a_revision_and_states_capabilities),
        cmocka_unit_test(set_level_takes_the_eight_syslog_levels_only),
        cmocka_unit_test(tools_list_gives_every_tool_with_its_schemas),
        cmocka_unit_test(a_call_returns_structured_content_and_the_same_as_text),
        cmocka_unit_test(bad_arguments_are_a_tool_error_naming_the_problem_and_the_tool_is_not_run),
        cmocka_unit_test(unknown_tools_are_protocol_errors_and_tool_failures_are_tool_errors),
        cmocka_unit_test(every_twin_tool_has_valid_schemas_and_an_asset_where_it_needs_one),
        cmocka_unit_test(http_requests_are_refused_with_the_status_that_names_the_fault),
        cmocka_unit_test(resources_are_listed_read_and_missing_ones_are_not_found),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
