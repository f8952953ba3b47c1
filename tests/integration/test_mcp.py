# SPDX-License-Identifier: Apache-2.0
# twin-mcp over stdio against a real stack (broker, Redis, ingest, predictor): the handshake, every tool's answer checked against what Redis holds, tool errors for bad input and a Redis outage, and a client that goes away.
"""The client side is written out here (JSON-RPC lines on the program's stdin and stdout),
so that what goes over the wire is what the test checks; tests/mcp/ drives the same program
with the official TypeScript SDK."""

import http.client
import json
import math
import subprocess
import time

import predkit as pk
import scenkit as sk
import twinharness as th
from twinharness import TwinTestCase

TIMEOUT_S = 20


class McpProcess:
    """build/bin/twin-mcp with pipes; request() sends one message and reads its answer."""

    def __init__(self, h, redis_url, args=(), env=None):
        self.log_path = h.dir / "twin-mcp.log"
        self.log = open(self.log_path, "ab")  # pylint: disable=consider-using-with
        self.proc = subprocess.Popen(
            [str(th.BIN_DIR / "twin-mcp"), *args], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=self.log,
            env=th.clean_env({"TWIN_REDIS_URL": redis_url, "TWIN_REDIS_TIMEOUT_MS": 1000,
                              **(env or {})}))
        self.next_id = 1

    def send(self, obj):
        line = obj if isinstance(obj, (bytes, str)) else json.dumps(obj)
        if isinstance(line, str):
            line = line.encode()
        self.proc.stdin.write(line + b"\n")
        self.proc.stdin.flush()

    def read(self):
        line = self.proc.stdout.readline()
        if not line:
            raise AssertionError("twin-mcp closed its stdout")
        return json.loads(line)

    def request(self, method, params=None):
        rid = self.next_id
        self.next_id += 1
        msg = {"jsonrpc": "2.0", "id": rid, "method": method}
        if params is not None:
            msg["params"] = params
        self.send(msg)
        answer = self.read()
        assert answer["id"] == rid, answer
        return answer

    def call(self, tool, **arguments):
        return self.request("tools/call", {"name": tool, "arguments": arguments})["result"]

    def close(self):
        """Ends the session (EOF on stdin); the exit status. Fails on a sanitizer report."""
        if self.proc.poll() is None:
            self.proc.stdin.close()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc.stdout.close()
        self.log.close()
        text = self.log_path.read_text(errors="replace")
        for mark in ("Sanitizer", "runtime error:"):
            if mark in text:
                raise AssertionError(f"twin-mcp: sanitizer report in {self.log_path}:\n"
                                     f"{text[-3000:]}")
        return self.proc.returncode


class McpStdioTest(TwinTestCase):

    def setUp(self):
        super().setUp()
        self.s = pk.PredictorStack(self.h)
        self.mcp = McpProcess(self.h, self.s.redis.url)
        self.addCleanup(self.mcp.close)

    def handshake(self):
        init = self.mcp.request("initialize", {
            "protocolVersion": "2025-11-25", "capabilities": {},
            "clientInfo": {"name": "twin-test", "version": "1"}})["result"]
        self.mcp.send({"jsonrpc": "2.0", "method": "notifications/initialized"})
        return init

    def feed(self, asset, n=40):
        """n samples of two signals, one per second of device time; waits for a Prediction."""
        t0 = th.now_ms() - n * 1000
        for i in range(n):
            self.s.send(asset, {"temp": 20.0 + (i % 5), "load": float(i)}, seq=i + 1,
                        ts_ms=t0 + i * 1000, settle=False)
        self.s.settle()
        self.s.wait_prediction(asset, t0 + (n - 1) * 1000, timeout=TIMEOUT_S)
        th.wait_until(lambda: self.s.stored_prediction(asset) is not None and
                      self.s.stored_prediction(asset).basis_ts_ms == t0 + (n - 1) * 1000,
                      TIMEOUT_S, what="the stored prediction")
        return t0

    def test_every_tool_answers_what_redis_holds(self):
        init = self.handshake()
        self.assertEqual(init["protocolVersion"], "2025-11-25")
        self.assertEqual(init["serverInfo"]["name"], "twin-mcp")
        self.assertIn("tools", init["capabilities"])
        tools = self.mcp.request("tools/list")["result"]["tools"]
        self.assertEqual(sorted(t["name"] for t in tools),
                         ["explain_alert", "get_history", "get_prediction", "get_state",
                          "list_alerts", "list_assets", "recommend", "run_scenario"])
        t0 = self.feed("mcp-press-1")
        self.feed("mcp-pump-2", n=10)

        assets = self.mcp.call("list_assets")
        self.assertFalse(assets["isError"])
        self.assertEqual(assets["structuredContent"]["assets"], ["mcp-press-1", "mcp-pump-2"])
        self.assertEqual(json.loads(assets["content"][0]["text"]), assets["structuredContent"])
        only = self.mcp.call("list_assets", prefix="mcp-pu", limit=5)["structuredContent"]
        self.assertEqual((only["assets"], only["matching"], only["truncated"]),
                         (["mcp-pump-2"], 1, False))

        st = self.mcp.call("get_state", asset="mcp-press-1")["structuredContent"]
        raw = self.s.state("mcp-press-1")
        self.assertEqual(st["signals"], {"temp": float(raw["temp"]), "load": float(raw["load"])})
        self.assertEqual((st["seq"], st["ts_ms"]), (40, t0 + 39 * 1000))

        hist = self.mcp.call("get_history", asset="mcp-press-1", max_points=8)["structuredContent"]
        self.assertEqual(hist["entries"], 40)
        self.assertEqual(len(hist["points"]), 8)
        self.assertEqual(hist["entries_per_point"], 5)
        first = hist["points"][0]
        self.assertEqual((first["ts_ms"], first["n"]), (t0, 5))
        self.assertAlmostEqual(first["mean"]["load"], 2.0)  # loads 0..4
        self.assertEqual((first["min"]["temp"], first["max"]["temp"]), (20.0, 24.0))
        self.assertEqual(sum(p["n"] for p in hist["points"]), 40)
        one = self.mcp.call("get_history", asset="mcp-press-1", signals=["load"],
                            max_points=100)["structuredContent"]
        self.assertEqual([p["mean"] for p in one["points"]],
                         [{"load": float(i)} for i in range(40)])

        pred = self.mcp.call("get_prediction", asset="mcp-press-1", points=3)["structuredContent"]
        stored = self.s.stored_prediction("mcp-press-1")
        self.assertEqual(pred["basis_ts_ms"], stored.basis_ts_ms)
        by_signal = {f["signal"]: f for f in pred["forecasts"]}
        self.assertEqual(set(by_signal), {f.signal for f in stored.forecasts})
        for f in stored.forecasts:
            got = by_signal[f.signal]
            self.assertEqual(got["model"], f.model)
            self.assertEqual(len(got["points"]), min(3, len(f.points)))
            for p, q in zip(got["points"], f.points):
                self.assertEqual((p["ts_ms"], p["mean"], p["lo"], p["hi"]),
                                 (q.ts_ms, q.mean, q.lo, q.hi))
            self.assertEqual(got["quality"]["n"], f.quality.n)

    def test_bad_input_is_a_clear_tool_error_and_the_server_goes_on(self):
        self.handshake()
        cases = [
            ({"name": "get_state", "arguments": {"asset": "no such"}}, "must be an asset id"),
            ({"name": "get_state", "arguments": {"asset": "ghost-9"}}, "no state for asset"),
            ({"name": "get_prediction", "arguments": {"asset": "ghost-9"}}, "no prediction"),
            ({"name": "get_history", "arguments": {}}, "\"asset\" is required"),
            ({"name": "get_history", "arguments": {"asset": "a", "max_points": 5000}},
             "at most 2000"),
            ({"name": "get_history", "arguments": {"asset": "a", "from_ms": 9, "to_ms": 3}},
             "is after"),
            ({"name": "list_assets", "arguments": {"colour": "red"}}, "unknown argument"),
        ]
        for params, says in cases:
            r = self.mcp.request("tools/call", params)["result"]
            self.assertTrue(r["isError"], params)
            self.assertIn(says, r["content"][0]["text"], params)
        err = self.mcp.request("tools/call", {"name": "drop_tables"})["error"]
        self.assertEqual(err["code"], -32602)
        # Garbage, an oversize line, then a good request: answered in order.
        self.mcp.send(b"{nope")
        self.assertEqual(self.mcp.read()["error"]["code"], -32700)
        self.mcp.send(json.dumps({"jsonrpc": "2.0", "id": 99, "method": "ping",
                                  "params": {"pad": "x" * 2_000_000}}))
        big = self.mcp.read()
        self.assertEqual(big["error"]["code"], -32600)
        self.assertIn("above the limit", big["error"]["message"])
        self.assertEqual(self.mcp.request("ping")["result"], {})

    def test_a_redis_outage_is_a_tool_error_and_it_recovers(self):
        self.handshake()
        self.feed("mcp-press-1", n=5)
        self.s.redis.stop()
        r = self.mcp.call("get_state", asset="mcp-press-1")
        self.assertTrue(r["isError"])
        self.assertIn("unreachable", r["content"][0]["text"])
        self.s.redis.start()
        r = th.wait_until(lambda: (lambda x: x if not x["isError"] else None)(
            self.mcp.call("get_state", asset="mcp-press-1")), TIMEOUT_S, interval=0.5,
            what="get_state after Redis is back")
        self.assertEqual(r["structuredContent"]["seq"], 5)

    def test_end_of_input_ends_the_server_with_status_0(self):
        self.handshake()
        t = time.monotonic()
        self.assertEqual(self.mcp.close(), 0)
        self.assertLess(time.monotonic() - t, 5)


class McpSdkClientTest(McpStdioTest):
    """The official TypeScript SDK (npm @modelcontextprotocol/sdk, tests/mcp/) as the client:
    it starts twin-mcp over stdio, negotiates, lists the tools and calls every one; the SDK
    checks each structuredContent against the tool's outputSchema."""

    SDK_DIR = th.REPO_DIR / "tests" / "mcp"

    def test_the_sdk_client_lists_and_calls_every_tool(self):
        if not (self.SDK_DIR / "node_modules" / "@modelcontextprotocol" / "sdk").is_dir():
            raise AssertionError("tests/mcp/node_modules is missing: run tests/mcp/install.sh "
                                 "(scripts/test.sh does)")
        self.mcp.close()  # the SDK starts its own
        self.h.service("twin-scenario", broker=self.s.broker, redis=self.s.redis,
                       env={"TWIN_MODEL": str(sk.DEMO_PLANT), "TWIN_SCENARIO_THREADS": 2})
        self.h.service("twin-advisor", broker=self.s.broker, redis=self.s.redis,
                       env={"TWIN_MODEL": str(sk.DEMO_PLANT), "TWIN_ADVISOR_THREADS": 2,
                            "TWIN_ADVISOR_REPLICATIONS": 100})
        self.s.redis.client().hset("twin:{press-1}:state", mapping={
            "vibration": "10.5", "stroke_rate": "14", "_ts_ms": str(th.now_ms()), "_seq": "1"})
        self.feed("mcp-press-1")
        calls = [["list_assets", {}], ["get_state", {"asset": "mcp-press-1"}],
                 ["get_history", {"asset": "mcp-press-1", "max_points": 4}],
                 ["get_prediction", {"asset": "mcp-press-1", "points": 2}],
                 ["list_alerts", {"limit": 5}],
                 ["explain_alert", {"asset": "mcp-press-1", "signal": "temp"}],
                 ["run_scenario", {"ignore_live": True, "horizon_hours": 24, "replications": 2,
                                   "perturbations": [{"kind": "demand_factor", "factor": 1.4}]}],
                 ["recommend", {"asset": "press-1"}],
                 ["get_state", {"asset": "ghost-9"}]]
        res = subprocess.run(
            ["node", str(self.SDK_DIR / "sdk_client.mjs"), str(th.BIN_DIR / "twin-mcp"),
             json.dumps(calls)], capture_output=True, text=True, timeout=120, cwd=self.SDK_DIR,
            env=th.clean_env({"TWIN_REDIS_URL": self.s.redis.url,
                              "TWIN_MQTT_URL": self.s.broker.url, "PATH": "/usr/bin:/bin"}))
        self.assertEqual(res.returncode, 0, res.stderr[-3000:])
        out = json.loads(res.stdout)
        self.assertEqual(out["server"]["name"], "twin-mcp")
        self.assertIn("list_assets", out["instructions"])
        self.assertEqual(sorted(t["name"] for t in out["tools"]),
                         ["explain_alert", "get_history", "get_prediction", "get_state",
                          "list_alerts", "list_assets", "recommend", "run_scenario"])
        results = [c["result"] for c in out["calls"]]
        errors = [r.get("isError") for r in results]
        self.assertEqual(errors[:5] + errors[6:], [False] * 7 + [True], results)
        if errors[5]:  # explain_alert: the signal may have raised no alert in 40 samples
            self.assertIn("no alert", results[5]["content"][0]["text"])
        self.assertEqual(results[6]["structuredContent"]["status"], "ok")
        self.assertIn("throughput", [k["name"] for k in results[6]["structuredContent"]["kpis"]])
        self.assertEqual(results[0]["structuredContent"]["assets"], ["mcp-press-1"])
        self.assertEqual(results[1]["structuredContent"]["seq"], 40)
        self.assertEqual(len(results[2]["structuredContent"]["points"]), 4)
        self.assertEqual(results[3]["structuredContent"]["basis_ts_ms"],
                         self.s.stored_prediction("mcp-press-1").basis_ts_ms)
        rec = results[7]["structuredContent"]
        self.assertEqual((rec["asset_id"], rec["action"]["kind"], rec["decision"]),
                         ("press-1", "maintain", "advice"))
        self.assertLess(rec["options"][0]["effect"]["hi"], 0)
        self.assertIn("no state for asset", results[8]["content"][0]["text"])

    # The stdio tests of the base class run once, there.
    test_every_tool_answers_what_redis_holds = None
    test_bad_input_is_a_clear_tool_error_and_the_server_goes_on = None
    test_a_redis_outage_is_a_tool_error_and_it_recovers = None
    test_end_of_input_ends_the_server_with_status_0 = None


T0 = 1_700_000_000_000
STEP = 60_000
ALERT_MODEL = pk.plant_model(
    {"press": {"temp": {"unit": "degC", "warn": {"above": 70}, "alarm": {"above": 90},
                        "season_samples": 12}}},
    {"mcp-press-1": "press"})


def wave(i):
    return 50.0 + 5.0 * math.sin(2 * math.pi * i / 12) + 0.3 * math.sin(7.3 * i)


class McpAlertsTest(TwinTestCase):
    """Alerts: the predictor logs each one it publishes in twin:{<asset>}:alerts; list_alerts
    and explain_alert read that log, the plant model, the history and the forecast."""

    def test_list_and_explain_an_alert_with_its_evidence(self):
        s = pk.PredictorStack(self.h, model=ALERT_MODEL)
        values = [wave(i) for i in range(30)] + [95.0, 96.0] + [wave(i) for i in range(32, 40)]
        ts = [T0 + i * STEP for i in range(len(values))]
        s.stream("mcp-press-1", "temp", ts, values)
        kind = s.pb.Alert
        s.wait_alert("mcp-press-1", lambda a: a.kind == kind.CLEARED)
        published = s.alerts("mcp-press-1")
        r = s.redis.client()
        th.wait_until(lambda: r.xlen("twin:{mcp-press-1}:alerts") == len(published), 10,
                      what="every published Alert in the alert log")
        mcp = McpProcess(self.h, s.redis.url)
        self.addCleanup(mcp.close)
        listed = mcp.call("list_alerts")["structuredContent"]
        self.assertEqual(listed["matching"], len(published))
        newest_first = sorted(published, key=lambda a: -a.ts_ms)
        self.assertEqual([a["ts_ms"] for a in listed["alerts"]], [a.ts_ms for a in newest_first])
        breaches = mcp.call("list_alerts", asset="mcp-press-1",
                            kinds=["threshold_breach"])["structuredContent"]["alerts"]
        self.assertEqual(len(breaches), 1)
        b = breaches[0]
        self.assertEqual((b["signal"], b["kind"], b["severity"], b["ts_ms"], b["value"],
                          b["threshold"]), ("temp", "threshold_breach", 3, ts[30], 95.0, 90.0))
        self.assertEqual(mcp.call("list_alerts", since_ms=ts[-1] + 1)["structuredContent"]
                         ["matching"], 0)
        self.assertEqual(mcp.close(), 0)

        mcp = McpProcess(self.h, s.redis.url, env={"TWIN_MODEL": str(s.model_path)})
        self.addCleanup(mcp.close)
        ex = mcp.call("explain_alert", asset="mcp-press-1", signal="temp", ts_ms=ts[30])
        self.assertFalse(ex["isError"], ex)
        e = ex["structuredContent"]
        self.assertEqual(e["alert"]["kind"], "threshold_breach")
        self.assertIn("crossed a limit", e["meaning"])
        self.assertEqual(e["limits"], {"unit": "degC", "warn_above": 70, "alarm_above": 90})
        samples = e["recent_samples"]
        self.assertEqual(samples[-1]["ts_ms"], ts[-1])  # the newest of the signal
        self.assertLessEqual(len(samples), 12)
        self.assertEqual(e["forecast"]["basis_ts_ms"], ts[-1])
        self.assertTrue(e["forecast"]["points"])
        # Resources: the plant model file, and each asset as one document.
        res = mcp.request("resources/list")["result"]["resources"]
        self.assertEqual([r["uri"] for r in res], ["twin://plant", "twin://asset/mcp-press-1"])
        plant = mcp.request("resources/read", {"uri": "twin://plant"})["result"]["contents"][0]
        self.assertEqual(json.loads(plant["text"]), ALERT_MODEL)
        doc = json.loads(mcp.request("resources/read", {"uri": "twin://asset/mcp-press-1"})
                         ["result"]["contents"][0]["text"])
        self.assertEqual(doc["model"]["kind"], "press")
        self.assertEqual(doc["model"]["signals"]["temp"]["alarm_above"], 90)
        self.assertEqual(doc["state"]["ts_ms"], ts[-1])
        self.assertEqual(doc["prediction"]["basis_ts_ms"], ts[-1])
        err = mcp.request("resources/read", {"uri": "twin://asset/ghost-9"})["error"]
        self.assertEqual(err["code"], -32002)
        tmpl = mcp.request("resources/templates/list")["result"]["resourceTemplates"]
        self.assertEqual(tmpl[0]["uriTemplate"], "twin://asset/{asset}")
        newest = mcp.call("explain_alert", asset="mcp-press-1", signal="temp")
        self.assertEqual(newest["structuredContent"]["alert"]["kind"], "cleared")
        missing = mcp.call("explain_alert", asset="mcp-press-1", signal="load")
        self.assertTrue(missing["isError"])
        self.assertIn("no alert", missing["content"][0]["text"])


class McpRecommendTest(TwinTestCase):
    """recommend: the request goes to a real twin-advisor over MQTT; its Recommendation comes
    back as the tool's result, its refusals and absence as tool errors."""

    def test_recommend_answers_from_the_advisor_and_says_why_not(self):
        s = sk.ScenarioStack(self.h)
        mcp = McpProcess(self.h, s.redis.url, env={"TWIN_MQTT_URL": s.broker.url})
        self.addCleanup(mcp.close)
        # No advisor yet: a clear error once the wait is over.
        r = mcp.call("recommend", asset="press-1", timeout_s=2)
        self.assertTrue(r["isError"])
        self.assertIn("is twin-advisor running", r["content"][0]["text"])
        self.h.service("twin-advisor", broker=s.broker, redis=s.redis,
                       env={"TWIN_MODEL": str(sk.DEMO_PLANT), "TWIN_ADVISOR_THREADS": 2,
                            "TWIN_ADVISOR_REPLICATIONS": 100})
        s.redis.client().hset("twin:{press-1}:state", mapping={
            "vibration": "10.5", "stroke_rate": "14", "_ts_ms": str(th.now_ms()), "_seq": "1"})
        r = mcp.call("recommend", asset="press-1")
        self.assertFalse(r["isError"], r)
        rec = r["structuredContent"]
        self.assertEqual((rec["action"]["kind"], rec["decision"], rec["trigger"]),
                         ("maintain", "advice", "request"))
        self.assertTrue(rec["request_id"].startswith("mcp-"))
        self.assertIn("maintain", rec["why"])
        self.assertEqual(json.loads(r["content"][0]["text"]), rec)
        for asset, why in (("compressor-1", "no station"), ("ghost-9", "not in the plant model")):
            r = mcp.call("recommend", asset=asset)
            self.assertTrue(r["isError"])
            self.assertIn(why, r["content"][0]["text"])
        r = mcp.call("recommend", asset="bad id!")
        self.assertTrue(r["isError"])


class McpScenarioTest(TwinTestCase):
    """run_scenario: the request goes to a real twin-scenario over MQTT; its progress comes
    back as MCP progress notifications (stdio), its result as the KPI comparison."""

    def test_a_what_if_runs_with_progress_and_returns_the_kpis(self):
        s = sk.ScenarioStack(self.h)
        mcp = McpProcess(self.h, s.redis.url, env={"TWIN_MQTT_URL": s.broker.url})
        self.addCleanup(mcp.close)
        mcp.send({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {
            "name": "run_scenario", "_meta": {"progressToken": "p-1"},
            "arguments": {"name": "press down 4 h", "ignore_live": True, "horizon_hours": 48,
                          "replications": 6, "seed": 11, "perturbations": [
                              {"kind": "machine_down", "target": "press", "start_hours": 1,
                               "duration_hours": 4}]}}})
        notes = []
        while True:
            msg = mcp.read()
            if msg.get("method") == "notifications/progress":
                notes.append(msg["params"])
                continue
            break
        self.assertEqual(msg["id"], 1)
        r = msg["result"]
        self.assertFalse(r["isError"], r)
        out = r["structuredContent"]
        self.assertEqual((out["status"], out["name"], out["replications"]),
                         ("ok", "press down 4 h", 6))
        self.assertEqual(out["seed"], "11")
        kpis = {k["name"]: k for k in out["kpis"]}
        down = kpis["station.press.downtime"]
        self.assertGreater(down["difference"]["mean"], 0)  # the press stood still longer
        self.assertTrue(down["significant"])
        self.assertIn("throughput", kpis)
        # Progress came first, for this call, ending at 100 %.
        self.assertTrue(notes)
        self.assertTrue(all(n["progressToken"] == "p-1" and n["total"] == 100 for n in notes))
        self.assertEqual(notes[-1]["progress"], 100)
        self.assertEqual([n["progress"] for n in notes], sorted(n["progress"] for n in notes))
        # The runner stored the same result under the id.
        self.assertEqual(s.stored(out["id"]).status, s.pb.ScenarioResult.OK)
        # A call without a progressToken gets no notifications; a refused one a tool error.
        bad = mcp.call("run_scenario", ignore_live=True, perturbations=[
            {"kind": "machine_down", "target": "lathe-9", "duration_hours": 1}])
        self.assertTrue(bad["isError"])
        self.assertIn("lathe-9", bad["content"][0]["text"])
        bad = mcp.call("run_scenario", perturbations=[{"kind": "meteor"}])
        self.assertTrue(bad["isError"])
        self.assertIn("kind must be", bad["content"][0]["text"])
        # A maintenance and a slowdown, with the slowdown's own field names.
        r = mcp.call("run_scenario", ignore_live=True, horizon_hours=24, replications=2,
                     perturbations=[{"kind": "maintain", "target": "press-1", "start_hours": 1,
                                     "duration_hours": 2},
                                    {"kind": "slow", "target": "weld", "factor": 0.5,
                                     "wear_exponent": 2}])
        self.assertFalse(r["isError"], r)
        kpis = {k["name"]: k for k in r["structuredContent"]["kpis"]}
        self.assertGreater(kpis["station.press.downtime"]["difference"]["mean"], 0)
        bad = mcp.call("run_scenario", ignore_live=True, perturbations=[
            {"kind": "slow", "target": "weld", "factor": 1.5}])
        self.assertTrue(bad["isError"])
        self.assertIn("factor must be a speed in (0, 1]", bad["content"][0]["text"])
        bad = mcp.call("run_scenario", ignore_live=True, perturbations=[
            {"kind": "maintain", "target": "press-1"}])
        self.assertTrue(bad["isError"])
        self.assertIn("duration_ms must be > 0 for MAINTAIN", bad["content"][0]["text"])

    def test_no_broker_is_a_clear_tool_error(self):
        s = sk.ScenarioStack(self.h, start=False)
        mcp = McpProcess(self.h, s.redis.url,
                         env={"TWIN_MQTT_URL": f"mqtt://127.0.0.1:{th.free_port()}"})
        self.addCleanup(mcp.close)
        r = mcp.call("run_scenario", ignore_live=True, timeout_s=5)
        self.assertTrue(r["isError"])
        self.assertIn("broker could not be reached", r["content"][0]["text"])


class McpHttpTest(TwinTestCase):
    """The Streamable HTTP transport (stateless: POST /mcp), checked by the official
    conformance suite (npm @modelcontextprotocol/conformance, tests/mcp/) for what twin-mcp
    implements, and by hand for the HTTP rules."""

    SCENARIOS = ("server-initialize", "ping", "tools-list", "logging-set-level",
                 "resources-list", "dns-rebinding-protection")

    def setUp(self):
        super().setUp()
        self.s = pk.PredictorStack(self.h)
        self.port = th.free_port()
        # pylint: disable-next=consider-using-with
        self.log = open(self.h.dir / "twin-mcp-http.log", "ab")
        self.proc = subprocess.Popen(
            [str(th.BIN_DIR / "twin-mcp"), "--transport", "http", "--http-port", str(self.port),
             "--max-message", "4096"], stdout=subprocess.DEVNULL, stderr=self.log,
            env=th.clean_env({"TWIN_REDIS_URL": self.s.redis.url}))
        self.addCleanup(self.stop)
        th.wait_until(lambda: th.port_accepts(self.port), 10, what="twin-mcp to listen")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)
        self.log.close()
        text = (self.h.dir / "twin-mcp-http.log").read_text(errors="replace")
        if "Sanitizer" in text or "runtime error:" in text:
            raise AssertionError(f"twin-mcp: sanitizer report:\n{text[-3000:]}")
        return self.proc.returncode

    def post(self, body, headers=None, path="/mcp", method="POST"):
        conn = http.client.HTTPConnection(th.LOOPBACK, self.port, timeout=10)
        h = {"Content-Type": "application/json", "Accept": "application/json, text/event-stream"}
        h.update(headers or {})
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        conn.request(method, path, body=data if method == "POST" else None, headers=h)
        r = conn.getresponse()
        out = (r.status, dict(r.getheaders()), r.read())
        conn.close()
        return out

    def test_the_conformance_suite_passes_for_what_is_implemented(self):
        tool = th.REPO_DIR / "tests" / "mcp" / "node_modules" / ".bin" / "conformance"
        if not tool.exists():
            raise AssertionError("tests/mcp/node_modules is missing: run tests/mcp/install.sh "
                                 "(scripts/test.sh does)")
        self.s.send("mcp-press-1", {"temp": 21.5}, seq=1, ts_ms=th.now_ms())  # a resource
        for scenario in self.SCENARIOS:
            res = subprocess.run(
                [str(tool), "server", "--url", f"http://127.0.0.1:{self.port}/mcp", "--scenario",
                 scenario], capture_output=True, text=True, timeout=120, cwd=self.h.dir,
                env=th.clean_env({"PATH": "/usr/bin:/bin"}))
            self.assertEqual(res.returncode, 0,
                             f"{scenario}:\n{res.stdout[-3000:]}{res.stderr[-2000:]}")
            self.assertIn("0 failed", res.stdout, scenario)

    def test_http_rules_and_a_tool_call(self):
        self.s.send("mcp-press-1", {"temp": 21.5}, seq=1, ts_ms=th.now_ms())
        init = {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": "2025-11-25", "capabilities": {},
            "clientInfo": {"name": "t", "version": "1"}}}
        status, headers, body = self.post(init)
        self.assertEqual((status, headers["Content-Type"]), (200, "application/json"))
        self.assertEqual(json.loads(body)["result"]["protocolVersion"], "2025-11-25")
        call = {"jsonrpc": "2.0", "id": 2, "method": "tools/call",
                "params": {"name": "get_state", "arguments": {"asset": "mcp-press-1"}}}
        status, _, body = self.post(call, {"MCP-Protocol-Version": "2025-11-25"})
        self.assertEqual(status, 200)
        self.assertEqual(json.loads(body)["result"]["structuredContent"]["signals"],
                         {"temp": 21.5})
        note = {"jsonrpc": "2.0", "method": "notifications/initialized"}
        self.assertEqual(self.post(note)[0], 202)
        cases = [
            (lambda: self.post(call, method="GET"), 405),
            (lambda: self.post(call, method="DELETE"), 405),
            (lambda: self.post(call, path="/other"), 404),
            (lambda: self.post(call, {"Origin": "http://evil.example"}), 403),
            (lambda: self.post(call, {"Host": "rebound.example:8765"}), 403),
            (lambda: self.post(call, {"Content-Type": "text/plain"}), 415),
            (lambda: self.post(call, {"Accept": "text/html"}), 406),
            (lambda: self.post(call, {"MCP-Protocol-Version": "1999-01-01"}), 400),
            (lambda: self.post(b"x" * 5000), 413),
            (lambda: self.post(b"{not json"), 400),
        ]
        for send, want in cases:
            self.assertEqual(send()[0], want)
        self.assertEqual(self.post(call, {"Origin": "http://localhost:3000"})[0], 200)
        self.assertEqual(self.stop(), 0)  # SIGTERM: a clean exit


if __name__ == "__main__":
    th.main()
