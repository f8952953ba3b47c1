// SPDX-License-Identifier: Apache-2.0
// An MCP client made with the official TypeScript SDK: starts twin-mcp over stdio, lists its tools and calls each one given, printing one JSON document with everything it got.
//
// Usage: node sdk_client.mjs <path of twin-mcp> '<JSON list of [tool, arguments]>'
// The environment (TWIN_REDIS_URL, ...) is passed on to twin-mcp. Exit status 0 when the
// session worked (tool errors are results, reported in the output), 1 otherwise.
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";

const [program, callsJson] = process.argv.slice(2);
if (!program || !callsJson) {
  console.error("usage: node sdk_client.mjs <twin-mcp> '<[[tool, args], ...]>'");
  process.exit(2);
}

const transport = new StdioClientTransport({
  command: program,
  args: [],
  env: Object.fromEntries(Object.entries(process.env).filter(([k]) => k.startsWith("TWIN_") ||
    ["PATH", "ASAN_OPTIONS", "UBSAN_OPTIONS", "LSAN_OPTIONS", "TSAN_OPTIONS"].includes(k))),
  stderr: "inherit",
});
const client = new Client({ name: "twinloop-sdk-test", version: "1.0.0" });

try {
  await client.connect(transport);
  const out = {
    server: client.getServerVersion(),
    capabilities: client.getServerCapabilities(),
    instructions: client.getInstructions(),
    tools: (await client.listTools()).tools,
    calls: [],
  };
  for (const [name, args] of JSON.parse(callsJson)) {
    // callTool validates structuredContent against the tool's outputSchema.
    out.calls.push({ name, args, result: await client.callTool({ name, arguments: args }) });
  }
  await client.close();
  process.stdout.write(JSON.stringify(out) + "\n");
} catch (err) {
  console.error(`sdk_client: ${err && err.stack ? err.stack : err}`);
  process.exit(1);
}
