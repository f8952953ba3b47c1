# SPDX-License-Identifier: Apache-2.0
# twin-ingest as a program: --help, configuration errors, --check-config, signals and exit codes, status topic, /healthz and /metrics.
import re
import signal
import time

import ingestkit as ik
import twinharness as th
from twinharness import TwinTestCase, wait_until

BINARY = "twin-ingest"

# (variable, default as --help must show it; None: only listed)
SETTINGS = [
    ("TWIN_MQTT_URL", "mqtt://127.0.0.1:1883"),
    ("TWIN_MQTT_USER", None),
    ("TWIN_MQTT_PASSWORD", None),
    ("TWIN_REDIS_URL", "redis://127.0.0.1:6379"),
    ("TWIN_TOPIC_ROOT", "twin/v1"),
    ("TWIN_INSTANCE", None),
    ("TWIN_LOG_LEVEL", None),
    ("TWIN_METRICS_PORT", "0"),
    ("TWIN_MQTT_KEEPALIVE_S", "10"),
    ("TWIN_MQTT_SESSION_EXPIRY_S", None),
    ("TWIN_INGEST_WORKERS", "4"),
    ("TWIN_INGEST_GROUP", "twin-ingest"),
    ("TWIN_INGEST_MAX_PAYLOAD", "65536"),
    ("TWIN_INGEST_MAX_SAMPLES", "256"),
    ("TWIN_INGEST_MAX_PAST_MS", "604800000"),
    ("TWIN_INGEST_MAX_FUTURE_MS", "600000"),
    ("TWIN_INGEST_REPLAY_WINDOW", "1024"),
    ("TWIN_INGEST_HISTORY_MAXLEN", "10000"),
    ("TWIN_REDIS_TIMEOUT_MS", "5000"),
    ("TWIN_INGEST_SHUTDOWN_GRACE_MS", "10000"),
    ("TWIN_INGEST_PRINT_SCRIPT", "false"),
]

# Nothing listens here: a config check must not need the broker or Redis.
CLOSED_ENV = {"TWIN_MQTT_URL": "mqtt://127.0.0.1:9", "TWIN_REDIS_URL": "redis://127.0.0.1:9"}


class CommandLineTest(TwinTestCase):

    def run_ingest(self, *args, env=None, timeout=10):
        merged = dict(CLOSED_ENV)
        merged.update(env or {})
        t0 = time.monotonic()
        res = self.h.run(BINARY, args, env=merged, timeout=timeout)
        return res, time.monotonic() - t0

    def test_help_lists_every_setting_with_its_default(self):
        res, _ = self.run_ingest("--help")
        self.assertEqual(res.returncode, 0, res.stderr)
        text = res.stdout.decode()
        positions = sorted((text.find(var), var) for var, _ in SETTINGS if var in text)
        missing = [var for var, _ in SETTINGS if var not in text]
        self.assertEqual(missing, [], "settings missing from --help")
        ingest_vars = set(re.findall(r"TWIN_INGEST_[A-Z_]+", text))
        self.assertTrue({v for v, _ in SETTINGS if v.startswith("TWIN_INGEST_")} <= ingest_vars)
        for i, (pos, var) in enumerate(positions):
            default = dict(SETTINGS)[var]
            if default is None:
                continue
            end = positions[i + 1][0] if i + 1 < len(positions) else len(text)
            with self.subTest(var=var):
                self.assertRegex(text[pos:end], rf"(?<![\w.:/-]){re.escape(default)}(?![\w.:/-])",
                                 f"--help does not show the default {default} for {var}")
        for flag in ("--mqtt-url", "--redis-url", "--workers", "--max-samples", "--max-payload",
                     "--replay-window", "--check-config", "--help"):
            self.assertIn(flag, text)
        self.assertNotIn("--mqtt-password", text, "passwords are environment-only")

    def test_bad_settings_exit_2_with_a_one_line_reason(self):
        cases = [
            ("TWIN_INGEST_MAX_SAMPLES=abc", [], {"TWIN_INGEST_MAX_SAMPLES": "abc"},
             r"MAX_SAMPLES|max-samples"),
            ("--max-samples 0", ["--max-samples", "0"], {}, r"max-samples|MAX_SAMPLES"),
            ("--replay-window 1000", ["--replay-window", "1000"], {}, r"replay-window|REPLAY"),
            ("--no-such-flag", ["--no-such-flag"], {}, r"no-such-flag"),
            ("TWIN_MQTT_URL=http://x", [], {"TWIN_MQTT_URL": "http://x"}, r"MQTT_URL|mqtt-url"),
            ("--mqtt-password x", ["--mqtt-password", "x"], {}, r"(?i)password"),
            ("--workers 0", ["--workers", "0"], {}, r"workers|WORKERS"),
            ("TWIN_REDIS_URL=ftp://x", [], {"TWIN_REDIS_URL": "ftp://x"}, r"REDIS_URL|redis-url"),
            ("TWIN_INSTANCE=bad id", [], {"TWIN_INSTANCE": "bad id"}, r"INSTANCE|instance"),
            ("TWIN_LOG_LEVEL=loud", [], {"TWIN_LOG_LEVEL": "loud"}, r"LOG_LEVEL|log-level|level"),
            ("TWIN_TOPIC_ROOT=twin/#", [], {"TWIN_TOPIC_ROOT": "twin/#"}, r"TOPIC_ROOT|topic"),
            ("--max-payload=-5", ["--max-payload=-5"], {}, r"max-payload|MAX_PAYLOAD"),
            ("--max-samples (no value)", ["--max-samples"], {}, r"max-samples"),
            ("positional argument", ["extra"], {}, r"extra"),
        ]
        for name, args, env, mention in cases:
            with self.subTest(case=name):
                res, took = self.run_ingest(*args, env=env)
                err = res.stderr.decode()
                self.assertEqual(res.returncode, 2, f"stderr: {err!r}")
                lines = err.strip().splitlines()
                self.assertEqual(len(lines), 1, f"expected one line on stderr, got {err!r}")
                self.assertRegex(lines[0], mention)
                self.assertLess(took, 5.0)

    def test_check_config_exits_0_without_broker_or_redis(self):
        res, took = self.run_ingest("--check-config", env={"TWIN_INGEST_WORKERS": "2"})
        self.assertEqual(res.returncode, 0, res.stderr)
        self.assertLess(took, 5.0)
        res, _ = self.run_ingest("--check-config", "--replay-window", "1000")
        self.assertEqual(res.returncode, 2)

    def test_print_script_prints_the_apply_script_without_broker_or_redis(self):
        res, took = self.run_ingest("--print-script")
        self.assertEqual(res.returncode, 0, res.stderr)
        self.assertLess(took, 5.0)
        script = res.stdout.decode()
        self.assertTrue(script.startswith("local kind_code -- no kind has derived signals\n"))
        self.assertIn("twin-ingest's apply", script)
        model = self.h.dir / "meter.json"
        model.write_text('{"version": 1, "asset_kinds": {"meter": {"signals": {"amps": {}, '
                         '"kwh": {"expr": "integral(amps * 0.23) / 3600"}}}}, "assets": {}}')
        res, _ = self.run_ingest("--print-script", env={"TWIN_MODEL": str(model)})
        self.assertEqual(res.returncode, 0, res.stderr)
        script = res.stdout.decode()
        self.assertIn("    if kind == 'meter' then\n", script)
        self.assertIn("do -- kwh: D.div(D.integral(S,1,D.mul(V['amps'],0.23000000000000001)),"
                      "3600)\n", script)
        model.write_text('{"version": 1, "asset_kinds": {"meter": {"signals": {'
                         '"kwh": {"expr": "integral(volts)"}}}}, "assets": {}}')
        res, _ = self.run_ingest("--print-script", env={"TWIN_MODEL": str(model)})
        self.assertEqual(res.returncode, 2)
        self.assertEqual(res.stdout, b"")

    def test_flags_win_over_environment(self):
        res, _ = self.run_ingest("--check-config", "--replay-window", "2048",
                                 env={"TWIN_INGEST_REPLAY_WINDOW": "1000"})
        self.assertEqual(res.returncode, 0, res.stderr)
        res, _ = self.run_ingest("--check-config", "--max-samples=abc",
                                 env={"TWIN_INGEST_MAX_SAMPLES": "5"})
        self.assertEqual(res.returncode, 2)


class LifecycleTest(TwinTestCase):

    def assert_stops_cleanly(self, svc, sig=signal.SIGTERM, within_s=5.0):
        t0 = time.monotonic()
        svc.send_signal(sig)
        try:
            rc = svc.wait_exit(within_s + 15)
        finally:
            took = time.monotonic() - t0
            print(f"[{self.id().split('.')[-1]}] exit after {took:.1f} s", flush=True)
        self.assertEqual(rc, 0, f"exit status after {signal.Signals(sig).name} ({took:.1f} s)")
        self.assertLess(took, within_s, f"took {took:.1f} s to exit")
        self.assertEqual(svc.members(), [], "worker processes left behind")
        return took

    def test_sigterm_when_idle_exits_0_and_publishes_offline(self):
        s = ik.IngestStack(self.h)
        s.send("a1", {"t": 1.0}, seq=1)
        self.assert_stops_cleanly(s.ingest)
        watcher = self.h.mqtt(s.broker)
        watcher.subscribe(s.ingest.status_topic)
        msg = watcher.wait_message(s.ingest.status_topic, timeout=5)
        self.assertEqual((msg.payload, msg.retain), (b"offline", True))

    def test_sigint_exits_0(self):
        s = ik.IngestStack(self.h)
        self.assert_stops_cleanly(s.ingest, signal.SIGINT)

    def test_sigterm_during_a_stream_exits_0_and_nothing_is_lost(self):
        s = ik.IngestStack(self.h)
        assets = [f"a{i:02d}" for i in range(50)]
        stream = ik.TelemetryStream(s.pub, assets, 200, rate=2000).start()
        wait_until(lambda: s.totals()["handled"] >= 3000, 30, what="3000 messages handled",
                   ignore=(OSError,))
        instance = s.ingest.instance
        try:
            self.assert_stops_cleanly(s.ingest)
        finally:
            stream.join(60)
            s.pub.wait_acked(60)
            # Whatever was not acknowledged by ingest stays with the broker for its session.
            again = s.add_ingest(instance=instance)
            expected = {a: stream.sent_per_asset[a] for a in assets}
            wait_until(lambda: ik.total_history(s, assets) >= sum(expected.values()), 60,
                       what="every message applied after the restart")
            rep = ik.history_seq_report(s, assets, expected)
            print(f"[sigterm during stream] sent={stream.sent} acked={stream.acked()} "
                  f"history={rep['entries']} duplicates={rep['duplicates']} "
                  f"missing={rep['missing']}", flush=True)
            self.assertEqual((rep["duplicates"], rep["missing"], rep["extra"],
                              rep["bad_state"]), (0, 0, 0, 0), rep["examples"])
            self.assertTrue(again.running)

    def test_sigterm_after_a_burst_exits_0_within_seconds(self):
        s = ik.IngestStack(self.h)
        assets = [f"a{i:02d}" for i in range(100)]
        stream = ik.TelemetryStream(s.pub, assets, 100).start()
        stream.join(60)
        s.pub.wait_acked(60)
        wait_until(lambda: s.totals()["handled"] >= 10_000, 60, what="10000 messages handled",
                   ignore=(OSError,))
        self.assert_stops_cleanly(s.ingest)

    def test_last_will_says_offline_after_kill9(self):
        s = ik.IngestStack(self.h)
        watcher = self.h.mqtt(s.broker)
        watcher.subscribe(s.ingest.status_topic)
        watcher.wait_message(s.ingest.status_topic, lambda m: m.payload == b"online", timeout=5)
        s.ingest.kill9()
        watcher.wait_message(s.ingest.status_topic, lambda m: m.payload == b"offline", timeout=10)
        wait_until(lambda: not s.ingest.members(), 5, what="workers to die with their parent")

    def test_waits_for_redis_at_start_then_applies(self):
        redis = self.h.redis(start=False)
        broker = self.h.mosquitto()
        svc = self.h.service(BINARY, broker=broker, redis=redis, ready=False)
        time.sleep(2.0)  # the service must keep retrying, not exit
        self.assertTrue(svc.running, f"exited with {svc.returncode} while Redis was down")
        self.assertNotEqual(svc.healthz()[0], 200)
        redis.start()
        svc.wait_ready(timeout=20)
        pub = self.h.mqtt(broker)
        info = pub.publish(ik.telemetry_topic("a1"), th.telemetry({"t": 1.0}, seq=1))
        wait_until(info.is_published, 10)
        r = redis.client()
        wait_until(lambda: r.hget(ik.state_key("a1"), "_seq") == "1", 10, what="state applied")

    def test_waits_for_broker_at_start_then_applies(self):
        redis = self.h.redis()
        broker = self.h.mosquitto(start=False)
        svc = self.h.service(BINARY, broker=broker, redis=redis, ready=False)
        time.sleep(2.0)
        self.assertTrue(svc.running, f"exited with {svc.returncode} while the broker was down")
        self.assertNotEqual(svc.healthz()[0], 200)
        broker.start()
        svc.wait_healthy(timeout=30)
        pub = self.h.mqtt(broker)
        r = redis.client()
        # The subscription is made on connect; publish until one lands (bounded).
        for seq in range(1, 21):
            pub.publish(ik.telemetry_topic("a1"), th.telemetry({"t": float(seq)}, seq=seq))
            try:
                wait_until(lambda: r.exists(ik.state_key("a1")), 1.0)
                break
            except th.WaitTimeout:
                continue
        self.assertTrue(r.exists(ik.state_key("a1")), "nothing applied after the broker came up")

    def test_workers_setting_sets_worker_processes_and_sessions(self):
        s = ik.IngestStack(self.h, workers=2)
        self.assertEqual(len(s.ingest.children("ingest-w")), 2)
        m = s.ingest.metrics()
        self.assertEqual(m["twin_ingest_workers_up"], 2)
        self.assertEqual(m['twin_ingest_mqtt_connected{worker="0"}'], 1)
        self.assertEqual(m['twin_ingest_mqtt_connected{worker="1"}'], 1)
        self.assertNotIn('twin_ingest_mqtt_connected{worker="2"}', m)
        log = s.broker.log_text()
        for k in (0, 1):
            self.assertIn(f"as twin-ingest-{s.ingest.instance}-w{k} ", log)
        # Higher numbers are only probed by the drainer (for sessions a run with more
        # workers left behind): each such client leaves again, and takes no telemetry.
        probe = f"twin-ingest-{s.ingest.instance}-w2"
        wait_until(lambda: f"Client {probe} disconnected" in s.broker.log_text(), 10,
                   what="the drainer's probe of w2 to leave")
        s.send("press-1", {"temp": 1.0}, seq=1)
        self.assertEqual(s.totals()["applied"], 1)


class HealthAndMetricsTest(TwinTestCase):

    def test_healthz_is_200_ok_when_connected(self):
        s = ik.IngestStack(self.h)
        status, body = s.ingest.healthz()
        self.assertEqual(status, 200)
        self.assertEqual(body.strip(), "ok")

    def test_healthz_is_503_when_redis_is_down_and_a_message_waits(self):
        s = ik.IngestStack(self.h, env={"TWIN_REDIS_TIMEOUT_MS": 500,
                                        "TWIN_INGEST_SHUTDOWN_GRACE_MS": 1000})
        s.redis.kill9()
        s.pub.publish(ik.telemetry_topic("a1"), th.telemetry({"t": 1.0}, seq=1))
        status, body = wait_until(lambda: (lambda r: r if r[0] == 503 else None)(
            s.ingest.healthz()), 15, what="/healthz 503")
        self.assertRegex(body, r"(?i)redis")
        self.assertGreater(s.ingest.metric("twin_ingest_redis_errors_total"), 0)

    def test_healthz_is_503_while_the_broker_is_down(self):
        s = ik.IngestStack(self.h, env={"TWIN_MQTT_KEEPALIVE_S": 2})
        s.broker.stop()
        status, body = wait_until(lambda: (lambda r: r if r[0] == 503 else None)(
            s.ingest.healthz()), 15, what="/healthz 503")
        self.assertRegex(body, r"(?i)mqtt|broker")
        s.broker.start()
        s.ingest.wait_healthy(timeout=30)

    def test_metrics_serves_prometheus_text_with_every_series(self):
        s = ik.IngestStack(self.h)
        s.send("a1", {"t": 1.0}, seq=1)
        s.send_raw(ik.telemetry_topic("a1"), b"")
        status, body, headers = th.http_get(s.ingest.metrics_port, "/metrics")
        self.assertEqual(status, 200)
        self.assertTrue(headers.get("content-type", "").startswith("text/plain"), headers)
        m = th.parse_metrics(body)
        for name in ("received", "applied", "late", "duplicate", "stale", "redis_errors",
                     "state_published"):
            self.assertIn(f"twin_ingest_{name}_total", m)
            self.assertIn(f"# TYPE twin_ingest_{name}_total counter", body)
        for reason in ik.REASONS:
            self.assertIn(ik.rejected_series(reason), m)
        self.assertEqual(m[ik.rejected_series("empty_payload")], 1)
        self.assertEqual(m["twin_ingest_received_total"], 2)
        self.assertEqual(m["twin_ingest_applied_total"], 1)
        self.assertEqual(m["twin_ingest_workers_up"], 4)
        for k in range(4):
            self.assertEqual(m[f'twin_ingest_mqtt_connected{{worker="{k}"}}'], 1)
            self.assertEqual(m[f'twin_ingest_redis_connected{{worker="{k}"}}'], 1)
        for hist in ("twin_ingest_apply_seconds", "twin_ingest_handle_seconds"):
            self.assertIn(f"# TYPE {hist} histogram", body)
            self.assertIn(f'{hist}_bucket{{le="+Inf"}}', m)
            self.assertEqual(m[f'{hist}_bucket{{le="+Inf"}}'], m[f"{hist}_count"])
        self.assertEqual(m["twin_ingest_handle_seconds_count"], 2)
        self.assertEqual(th.http_get(s.ingest.metrics_port, "/nope")[0], 404)


if __name__ == "__main__":
    th.main()
