# SPDX-License-Identifier: Apache-2.0
# twinctl, the operator's CLI, against real mosquitto, redis, twin-ingest and twin-predictor: publish, state, assets, predict, watch, alerts, top, usage errors and JSON output.
import json
import math
import os
import pty
import queue
import select
import signal
import subprocess
import threading
import time

import ingestkit as ik
import predkit as pk
import scenkit as sk
import twinharness as th
from twinharness import TwinTestCase

T0 = 1_700_000_000_000
STEP = 60_000
MODEL = pk.plant_model(
    {"press": {"temp": {"unit": "degC", "warn": {"above": 70}, "alarm": {"above": 90},
                        "season_samples": 12},
               "rpm": {"unit": "1/min"}}},
    {"press-1": "press", "press-2": "press"})


def wave(i):
    return 50.0 + 5.0 * math.sin(2 * math.pi * i / 12) + 0.3 * math.sin(7.3 * i)


class Ctl:
    """Runs build/bin/twinctl against a broker and Redis."""

    def __init__(self, h, broker=None, redis=None, env=None):
        self.h = h
        self.env = {"TWIN_TOPIC_ROOT": ik.ROOT}
        if broker is not None:
            self.env["TWIN_MQTT_URL"] = broker.url
        if redis is not None:
            self.env["TWIN_REDIS_URL"] = redis.url
        self.env.update(env or {})

    def run(self, *args, timeout=60.0, env=None):
        variables = dict(self.env)
        variables.update(env or {})
        res = self.h.run("twinctl", [str(a) for a in args], env=variables, timeout=timeout)
        res.stdout = res.stdout.decode("utf-8", "replace")
        res.stderr = res.stderr.decode("utf-8", "replace")
        return res

    def json_lines(self, *args, **kw):
        res = self.run(*args, "--json", **kw)
        docs = [json.loads(line) for line in res.stdout.splitlines() if line.strip()]
        return res, docs

    def start(self, *args):
        """A long-running twinctl (watch, alerts --follow) whose stdout and stderr lines are
        collected by threads."""
        return Running(self.h, [str(th.BIN_DIR / "twinctl"), *[str(a) for a in args]],
                       th.clean_env(self.env))


class Running:
    def __init__(self, h, argv, env):
        self.proc = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     stdin=subprocess.DEVNULL, start_new_session=True)
        self.out, self.err = queue.Queue(), queue.Queue()
        self.err_lines = []
        for stream, q in ((self.proc.stdout, self.out), (self.proc.stderr, self.err)):
            threading.Thread(target=self._pump, args=(stream, q), daemon=True).start()

    @staticmethod
    def _pump(stream, q):
        for line in iter(stream.readline, b""):
            q.put(line.decode("utf-8", "replace").rstrip("\n"))
        q.put(None)

    @staticmethod
    def _take(q, timeout):
        """Lines from q as they come until the stream ends (returns) or timeout passes
        (yields None once, then stops)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = q.get(timeout=0.1)
            except queue.Empty:
                continue
            if line is None:
                return
            yield line
        yield None

    def wait_stderr(self, needle, timeout=15.0):
        for line in self._take(self.err, timeout):
            if line is None:
                break
            self.err_lines.append(line)
            if needle in line:
                return line
        raise th.WaitTimeout(f"twinctl stderr never said {needle!r}: {self.err_lines}")

    def wait_line(self, predicate, timeout=20.0):
        seen = []
        for line in self._take(self.out, timeout):
            if line is None:
                break
            seen.append(line)
            if predicate(line):
                return line
        raise th.WaitTimeout(f"no matching line from twinctl within {timeout} s: {seen}")

    def lines(self, timeout=10.0):
        """Every remaining stdout line, until the process closes it."""
        out = []
        for line in self._take(self.out, timeout):
            if line is None:
                raise th.WaitTimeout(f"twinctl still writing after {timeout} s: {out}")
            out.append(line)
        return out

    def wait(self, timeout=15.0):
        return self.proc.wait(timeout=timeout)

    def stderr_lines(self, timeout=10.0):
        """Every stderr line (those seen by wait_stderr too), until the process closes it."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = self.err.get(timeout=0.1)
            except queue.Empty:
                continue
            if line is None:
                return self.err_lines
            self.err_lines.append(line)
        raise th.WaitTimeout(f"twinctl still writing to stderr after {timeout} s")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)
        self.proc.stdout.close()
        self.proc.stderr.close()


class TwinctlUsageTest(TwinTestCase):

    def test_help_lists_every_command_and_exit_codes(self):
        ctl = Ctl(self.h)
        res = ctl.run("help")
        self.assertEqual(res.returncode, 0, res.stderr)
        for word in ("assets", "state ASSET", "predict ASSET", "watch [FILTER]", "alerts",
                     "publish ASSET", "top", "scenario show ID", "model check FILE",
                     "Exit status"):
            self.assertIn(word, res.stdout)
        self.assertEqual(ctl.run().returncode, 2)

    def test_bad_arguments_exit_2_before_connecting(self):
        # No broker or Redis at these addresses: a usage error must come first.
        ctl = Ctl(self.h, env={"TWIN_MQTT_URL": "mqtt://127.0.0.1:1",
                               "TWIN_REDIS_URL": "redis://127.0.0.1:1"})
        cases = [
            ("frobnicate",),
            ("state",),
            ("state", "bad/asset"),
            ("state", "press-1", "--bogus"),
            ("predict", "press-1", "--points", "x"),
            ("assets", "extra"),
            ("publish", "press-1"),
            ("publish", "press-1", "temp"),
            ("publish", "press-1", "temp=abc"),
            ("publish", "press-1", "temp=nan"),
            ("publish", "press-1", "temp=inf"),
            ("publish", "press-1", "_meta=1"),
            ("publish", "press-1", "temp=1", "temp=2"),
            ("publish", "bad asset", "temp=1"),
            ("publish", "press-1", "temp=1", "--seq", "-3"),
            ("watch", "--count", "0"),
            ("watch", "twin/#/x"),
            ("watch", "--for", "soon"),
            ("alerts", "--asset", "a b"),
            ("alerts", "--wait", "x"),
            ("top", "--interval", "fast"),
            ("top", "--metrics", "ingest=ftp://x"),
            ("scenario", "show"),
        ]
        for args in cases:
            res = ctl.run(*args, timeout=20)
            self.assertEqual(res.returncode, 2, f"{args}: {res.stdout} {res.stderr}")
            self.assertTrue(res.stderr.startswith("twinctl: "), f"{args}: {res.stderr!r}")
            self.assertNotIn("Sanitizer", res.stderr)

    def test_unreachable_services_exit_1(self):
        ctl = Ctl(self.h, env={"TWIN_REDIS_URL": f"redis://127.0.0.1:{th.free_port()}"})
        res = ctl.run("state", "press-1")
        self.assertEqual(res.returncode, 1, res.stderr)
        self.assertIn("Redis", res.stderr)
        port = th.free_port()
        res = ctl.run("top", "--once", "--interval", "200ms", "--metrics",
                      f"ingest=http://127.0.0.1:{port}")
        self.assertEqual(res.returncode, 1, res.stdout + res.stderr)
        self.assertIn("down", res.stdout)


class TwinctlIngestTest(TwinTestCase):

    def test_publish_then_state_assets_watch_and_top(self):
        s = ik.IngestStack(self.h, workers=1)
        model_path = self.h.dir / "plant.json"
        model_path.write_text(json.dumps(MODEL))
        ctl = Ctl(self.h, s.broker, s.redis)

        watcher = ctl.start("watch", f"{ik.ROOT}/asset/+/state", "--count", "1", "--json",
                            "--for", "30s")
        try:
            watcher.wait_stderr("listening on")
            res = ctl.run("publish", "press-1", "temp=71.5", "rpm=1480", "--seq", "7")
            self.assertEqual(res.returncode, 0, res.stderr)
            self.assertIn("published 2 samples", res.stdout)
            self.assertEqual(watcher.wait(20), 0)
            lines = watcher.lines()
        finally:
            watcher.stop()
        self.assertEqual(len(lines), 1, lines)
        msg = json.loads(lines[0])
        self.assertEqual((msg["type"], msg["subject"], msg["seq"]), ("state", "press-1", 7))
        self.assertEqual({x["signal"]: x["value"] for x in msg["samples"]},
                         {"temp": 71.5, "rpm": 1480})
        self.assertEqual(sorted(msg["changed"]), ["rpm", "temp"])

        # state: people's table, the limit status from the model, JSON with exact fields.
        res = ctl.run("state", "press-1", "--model", model_path)
        self.assertEqual(res.returncode, 0, res.stderr)
        self.assertIn("seq 7", res.stdout)
        temp_line = next(l for l in res.stdout.splitlines() if l.startswith("temp"))
        self.assertIn("71.5", temp_line)
        self.assertIn("degC", temp_line)
        self.assertIn("WARN", temp_line)
        res, docs = ctl.json_lines("state", "press-1", env={"TWIN_MODEL": model_path})
        self.assertEqual(res.returncode, 0, res.stderr)
        self.assertEqual(len(docs), 1)
        st = docs[0]
        self.assertEqual((st["asset"], st["seq"]), ("press-1", 7))
        self.assertGreater(st["ingest_ms"], 0)
        sig = {x["signal"]: x for x in st["signals"]}
        self.assertEqual(sig["temp"]["value"], 71.5)
        self.assertEqual((sig["temp"]["unit"], sig["temp"]["status"]), ("degC", "WARN"))
        self.assertNotIn("status", sig["rpm"])  # no limits: no status
        self.assertEqual(sig["rpm"]["value"], 1480)

        # An alarm value.
        self.assertEqual(ctl.run("publish", "press-1", "temp=95", "--seq", "8").returncode, 0)
        th.wait_until(lambda: s.state("press-1").get("_seq") == "8", 10, what="seq 8 applied")
        res, docs = ctl.json_lines("state", "press-1", "--model", model_path)
        self.assertEqual({x["signal"]: x.get("status") for x in docs[0]["signals"]},
                         {"temp": "ALARM", "rpm": None})

        # assets: sorted, with signal count and seq.
        self.assertEqual(ctl.run("publish", "a-first", "x=1").returncode, 0)
        th.wait_until(lambda: s.state("a-first"), 10, what="a-first applied")
        res = ctl.run("assets")
        self.assertEqual(res.returncode, 0, res.stderr)
        rows = [l.split()[0] for l in res.stdout.splitlines()[1:-1]]
        self.assertEqual(rows, ["a-first", "press-1"])
        self.assertIn("2 assets", res.stdout)
        res, docs = ctl.json_lines("assets")
        self.assertEqual([(d["asset"], d["signals"], d["seq"]) for d in docs],
                         [("a-first", 1, 0), ("press-1", 2, 8)])
        self.assertTrue(all(0 <= d["age_ms"] < 60_000 for d in docs))

        # Unknown asset: exit 1 with a clear message.
        res = ctl.run("state", "nobody-here")
        self.assertEqual(res.returncode, 1)
        self.assertIn('no state for asset "nobody-here"', res.stderr)
        res = ctl.run("predict", "nobody-here")
        self.assertEqual(res.returncode, 1)
        self.assertIn("no prediction", res.stderr)

        # watch for people: telemetry and state decoded, the retained state marked.
        res = ctl.run("watch", f"{ik.ROOT}/asset/press-1/#", "--count", "1", "--for", "10s")
        self.assertEqual(res.returncode, 0, res.stderr)
        self.assertRegex(res.stdout, r"state\s+press-1\s+seq 8: .*temp=95\*.*\(retained\)")
        # Garbage on twin topics is reported as undecodable, never a crash.
        watcher = ctl.start("watch", f"{ik.ROOT}/asset/junk/#", "--count", "4", "--json",
                            "--for", "20s")
        try:
            watcher.wait_stderr("listening on")
            for leaf in ("state", "prediction", "alert", "telemetry"):
                s.pub.publish(f"{ik.ROOT}/asset/junk/{leaf}", b"\xff\x01garbage", qos=1)
            self.assertEqual(watcher.wait(20), 0)
            junk = [json.loads(l) for l in watcher.lines()]
        finally:
            watcher.stop()
        self.assertEqual(sorted(d["type"] for d in junk),
                         ["alert", "prediction", "state", "telemetry"])
        self.assertTrue(all(d.get("error") == "undecodable" for d in junk), junk)
        # --count not reached within --for: exit 1.
        res = ctl.run("watch", f"{ik.ROOT}/asset/nobody/#", "--count", "1", "--for", "1s")
        self.assertEqual(res.returncode, 1)

        # top against the real ingest while telemetry flows.
        stream = ik.TelemetryStream(s.pub, ["flow-1"], per_asset=100_000, rate=100).start()
        try:
            th.wait_until(lambda: s.state("flow-1"), 10, what="the stream to be applied")
            url = f"http://127.0.0.1:{s.ingest.metrics_port}"
            res, docs = ctl.json_lines("top", "--once", "--interval", "1s", "--metrics",
                                       f"ingest={url}")
            self.assertEqual(res.returncode, 0, res.stderr)
            self.assertEqual(len(docs), 1, res.stdout)
            top = docs[0]
            self.assertEqual((top["service"], top["up"]), ("ingest", True))
            self.assertGreater(top["rates"]["twin_ingest_applied_total"], 20)
            self.assertGreater(top["latency_ms"]["twin_ingest_apply_seconds"], 0)
            self.assertEqual(top["gauges"]["twin_ingest_workers_up"], 1)
            self.assertIn('reason="non_finite"',
                          top["rates_by_label"]["twin_ingest_rejected_total"])
            dead = th.free_port()
            res = ctl.run("top", "--once", "--interval", "1s", "--metrics",
                          f"ingest={url},predictor=http://127.0.0.1:{dead}")
            self.assertEqual(res.returncode, 0, res.stderr)
            applied = [w for w in res.stdout.split("  ") if w.strip().startswith("applied ")]
            self.assertTrue(applied and float(applied[0].split()[1]) > 20, res.stdout)
            self.assertRegex(res.stdout, r"predictor\s+http://\S+\s+down: ")
        finally:
            stream.stop()


class TwinctlPredictorTest(TwinTestCase):

    def test_predict_and_alerts(self):
        s = pk.PredictorStack(self.h, model=MODEL, env={"TWIN_PREDICTOR_HORIZON": "12steps",
                                                        "TWIN_PREDICTOR_POINTS": 6})
        ctl = Ctl(self.h, s.broker, s.redis)
        follower = ctl.start("alerts", "--follow", "--json", "--asset", "press-1")
        try:
            follower.wait_stderr("listening on")
            values = [wave(i) for i in range(30)] + [95.0]
            ts = [T0 + i * STEP for i in range(len(values))]
            s.stream("press-1", "temp", ts, values)
            line = follower.wait_line(
                lambda l: json.loads(l)["kind"] == "THRESHOLD_BREACH", timeout=20)
            alert = json.loads(line)
            self.assertEqual((alert["asset"], alert["signal"], alert["severity"]),
                             ("press-1", "temp", "CRITICAL"))
            self.assertEqual((alert["value"], alert["threshold"], alert["ts_ms"]),
                             (95.0, 90.0, ts[30]))
            follower.proc.send_signal(signal.SIGINT)
            self.assertEqual(follower.wait(10), 0)
        finally:
            follower.stop()

        # predict: the stored Prediction for people and as JSON.
        th.wait_until(lambda: (s.stored_prediction("press-1") or
                               s.pb.Prediction()).basis_ts_ms == ts[-1], 10,
                      what="the last Prediction stored")
        res = ctl.run("predict", "press-1")
        self.assertEqual(res.returncode, 0, res.stderr)
        self.assertRegex(res.stdout, r"temp\s+model \S+\s+n 30\b")
        self.assertIn("95 % [", res.stdout)
        self.assertIn("(2 more points", res.stdout)
        res, docs = ctl.json_lines("predict", "press-1")
        self.assertEqual(res.returncode, 0, res.stderr)
        p = docs[0]
        self.assertEqual((p["asset"], p["basis_ts_ms"]), ("press-1", ts[-1]))
        f = p["forecasts"][0]
        self.assertEqual((f["signal"], f["quality"]["n"]), ("temp", 30))
        self.assertEqual(len(f["points"]), 6)
        for pt in f["points"]:
            self.assertLessEqual(pt["lo"], pt["mean"])
            self.assertLessEqual(pt["mean"], pt["hi"])
            self.assertEqual(pt["offset_ms"], pt["ts_ms"] - ts[-1])
        self.assertTrue(0 < f["quality"]["coverage"] <= 1)

        # alerts without --follow: what arrives within --wait (here the CLEARED of the breach).
        waiter = ctl.start("alerts", "--wait", "20s", "--count", "1")
        try:
            waiter.wait_stderr("listening on")
            s.stream("press-1", "temp", [T0 + i * STEP for i in range(31, 40)],
                     [wave(i) for i in range(31, 40)], first_seq=32, new_signal=False)
            self.assertEqual(waiter.wait(25), 0)
            out = waiter.lines()
        finally:
            waiter.stop()
        self.assertEqual(len(out), 1, out)
        self.assertRegex(out[0], r"UTC  press-1  temp  [A-Z_]+ [A-Z_]+")
        res = ctl.run("alerts", "--wait", "500ms")
        self.assertEqual(res.returncode, 0, res.stderr)
        self.assertIn("alerts in 0.5 s", res.stderr)


class TwinctlScenarioTest(TwinTestCase):

    def test_progress_bar_on_a_terminal_and_show_alias(self):
        s = sk.ScenarioStack(self.h)
        # stderr on a pseudo-terminal: the progress bar is drawn there.
        master, slave = pty.openpty()
        env = th.clean_env({"TWIN_MQTT_URL": s.broker.url, "TWIN_REDIS_URL": s.redis.url})
        proc = subprocess.Popen([str(th.BIN_DIR / "twinctl"), "scenario", "run", "--demand", "1.4",
                                 "--ignore-live", "--horizon", "2d", "--replications", "8",
                                 "--id", "bar-1"], env=env, stdout=subprocess.PIPE,
                                stderr=slave, stdin=subprocess.DEVNULL, start_new_session=True)
        os.close(slave)
        tty = b""
        deadline = time.monotonic() + 90
        try:
            while time.monotonic() < deadline:
                ready, _, _ = select.select([master], [], [], 0.2)
                if ready:
                    try:
                        chunk = os.read(master, 4096)
                    except OSError:
                        break
                    if not chunk:
                        break
                    tty += chunk
                elif proc.poll() is not None:
                    break
            out, _ = proc.communicate(timeout=30)
        finally:
            os.close(master)
            if proc.poll() is None:
                proc.kill()
                proc.wait(5)
            proc.stdout.close()
        self.assertEqual(proc.returncode, 0, tty.decode(errors="replace"))
        self.assertRegex(tty.decode(errors="replace"), r"running \[[#.]{30}\] +\d+\.\d %")
        self.assertIn("Scenario bar-1", out.decode())
        # scenario show is scenario get.
        ctl = Ctl(self.h, s.broker, s.redis)
        show, get = ctl.run("scenario", "show", "bar-1"), ctl.run("scenario", "get", "bar-1")
        self.assertEqual((show.returncode, get.returncode), (0, 0), show.stderr)
        self.assertEqual(show.stdout, get.stdout)
        self.assertIn("Scenario bar-1", show.stdout)
        res, docs = ctl.json_lines("scenario", "show", "bar-1")
        self.assertEqual((res.returncode, docs[0]["id"]), (0, "bar-1"))


class TwinctlAtShiftTest(TwinTestCase):
    """`--at shift` sends a start time that is the next shift of the model's calendar."""

    @staticmethod
    def expected_wait_ms(now_ms):
        # deploy/plant.json: shifts 06:00-14:00 and 14:00-22:00 UTC every day.
        pos = (now_ms / 1000.0) % 86400
        windows = [(6 * 3600, 14 * 3600), (14 * 3600, 22 * 3600)]
        if any(a <= pos < b for a, b in windows):
            return 0
        return min(((a - pos) % 86400) for a, _ in windows) * 1000.0

    def test_at_shift_starts_the_disruption_with_the_next_shift(self):
        broker = self.h.mosquitto()
        watch = self.h.mqtt(broker, client_id="request-watch")
        watch.subscribe(f"{ik.ROOT}/scenario/request")
        ctl = Ctl(self.h, broker)
        model = th.DEPLOY_DIR / "plant.json"
        before = th.now_ms()
        # Nobody answers: twinctl gives up after --timeout (exit 1) once the request is sent.
        res = ctl.run("scenario", "run", "--down", "press", "--at", "shift", "--for", "4h",
                      "--model", model, "--timeout", "1s", "--id", "shift-1")
        self.assertEqual(res.returncode, 1, res.stderr)
        msg = watch.wait_message(f"{ik.ROOT}/scenario/request")
        req = th.load_proto().ScenarioRequest.FromString(msg.payload)
        p = req.perturbations[0]
        self.assertEqual((p.target, p.duration_ms), ("press", 4 * 3600 * 1000))
        want = self.expected_wait_ms(before)
        self.assertLessEqual(abs(p.start_ms - want), 5000 if want else 0,
                             f"start_ms {p.start_ms}, expected about {want}")

    def test_at_shift_without_a_model_is_a_usage_error(self):
        ctl = Ctl(self.h, env={"TWIN_MODEL": "", "TWIN_MQTT_URL": "mqtt://127.0.0.1:9"})
        res = ctl.run("scenario", "run", "--down", "press", "--at", "shift")
        self.assertEqual(res.returncode, 2)
        self.assertIn("--at shift needs the plant model", res.stderr)
        res = ctl.run("scenario", "run", "--down", "press", "--at", "shift", "--model",
                      "/nonexistent/plant.json")
        self.assertEqual(res.returncode, 2)
        self.assertIn("/nonexistent/plant.json", res.stderr)


INT64_MIN, INT64_MAX = -(1 << 63), (1 << 63) - 1
EVIL = "\x1b]0;pwned\x07\x1b[2J"  # sets the window title, clears the screen


class TwinctlHostileInputTest(TwinTestCase):
    """Payloads and Redis values anyone on the broker could write: extreme times and terminal
    escapes. twinctl (built with ASan+UBSan) must print them, not crash or pass escapes on."""

    def publish_all(self, pub, msgs):
        for topic, payload in msgs:
            pub.publish(topic, payload, qos=1)
        pub.wait_acked()

    def extreme_messages(self):
        pb = th.load_proto()
        state = pb.TwinState(asset_id="x-1", ts_ms=INT64_MIN, ingest_ms=INT64_MAX, seq=1,
                             samples=[pb.Sample(signal="temp", value=1.0)], changed=["temp"])
        pred = pb.Prediction(asset_id="x-1", basis_ts_ms=INT64_MIN, forecasts=[pb.SignalForecast(
            signal="temp", model="ets", points=[pb.ForecastPoint(ts_ms=INT64_MAX, mean=1.0)])])
        alert = pb.Alert(asset_id="x-1", signal="temp", kind=pb.Alert.THRESHOLD_FORECAST,
                         severity=pb.Alert.WARNING, ts_ms=INT64_MIN, eta_ms=INT64_MAX,
                         threshold=90.0, message="soon")
        return [(f"{ik.ROOT}/asset/x-1/state", state.SerializeToString()),
                (f"{ik.ROOT}/asset/x-1/prediction", pred.SerializeToString()),
                (f"{ik.ROOT}/asset/x-1/alert", alert.SerializeToString())]

    def run_watchers(self, ctl, pub, msgs, argvs):
        procs = [ctl.start(*argv) for argv in argvs]
        try:
            for w in procs:
                w.wait_stderr("listening on")
            self.publish_all(pub, msgs)
            codes = [w.wait(30) for w in procs]
            outs = [(w.lines(), w.stderr_lines()) for w in procs]
        finally:
            for w in procs:
                w.stop()
        for argv, code, (out, err) in zip(argvs, codes, outs):
            self.assertEqual(code, 0, f"{argv}: {out} {err}")
            self.assertFalse(any("runtime error" in l or "Sanitizer" in l for l in err), err)
        return [out for out, _ in outs]

    def test_extreme_times_in_watch_alerts_state_predict_assets(self):
        broker, redis = self.h.mosquitto(), self.h.redis()
        pub = self.h.mqtt(broker, client_id="hostile")
        ctl = Ctl(self.h, broker, redis)
        flt = f"{ik.ROOT}/asset/x-1/#"
        human, js, alerts, alerts_js = self.run_watchers(
            ctl, pub, self.extreme_messages(),
            [("watch", flt, "--count", "3", "--for", "30s"),
             ("watch", flt, "--count", "3", "--for", "30s", "--json"),
             ("alerts", "--count", "1", "--wait", "30s"),
             ("alerts", "--count", "1", "--wait", "30s", "--json")])
        self.assertEqual(len(human), 3, human)
        self.assertRegex(next(l for l in human if " state " in l), r"applied \? after device")
        self.assertRegex(next(l for l in human if " prediction " in l), r"temp ets \+\? ")
        self.assertRegex(next(l for l in human if " alert " in l), r"\(\? after the sample\)")
        docs = {d["type"]: d for d in map(json.loads, js)}
        self.assertEqual(docs["state"]["ts_ms"], INT64_MIN)
        self.assertIsNone(docs["prediction"]["forecasts"][0]["points"][0]["offset_ms"])
        self.assertEqual(docs["alert"]["eta_ms"], INT64_MAX)
        self.assertRegex(alerts[0], r"\(\? after the sample\)")
        self.assertEqual(json.loads(alerts_js[0])["ts_ms"], INT64_MIN)

        # The same times in Redis: state, assets (age) and predict.
        r = redis.client(decode=False)
        r.sadd("twin:assets", "x-1")
        r.hset("twin:{x-1}:state", mapping={"_ts_ms": str(INT64_MIN), "_seq": "1",
                                            "_ingest_ms": str(INT64_MIN), "temp": "1"})
        r.set("twin:{x-1}:prediction", self.extreme_messages()[1][1])
        for args in (("state", "x-1"), ("assets",), ("predict", "x-1")):
            for json_flag in ((), ("--json",)):
                res = ctl.run(*args, *json_flag)
                self.assertEqual(res.returncode, 0, f"{args}{json_flag}: {res.stderr}")
                self.assertNotIn("runtime error", res.stderr)
        res, docs = ctl.json_lines("assets")
        self.assertIsNone(docs[0]["age_ms"])  # now - INT64_MIN does not fit: null
        res = ctl.run("state", "x-1")
        self.assertRegex(res.stdout, r"\(\? ago; 0 ms after device time\)")

    def test_terminal_escapes_from_payloads_are_escaped(self):
        broker, redis = self.h.mosquitto(), self.h.redis()
        pub = self.h.mqtt(broker, client_id="hostile")
        ctl = Ctl(self.h, broker, redis)
        pb = th.load_proto()
        alert = pb.Alert(asset_id="x-1", signal="t" + EVIL, kind=pb.Alert.ANOMALY,
                         severity=pb.Alert.INFO, ts_ms=T0, message="msg" + EVIL + "\\end")
        rejected = pb.Rejected(topic="t", reason="bad" + EVIL, detail="detail" + EVIL)
        result = pb.ScenarioResult(id="s-1", name="name" + EVIL, status=pb.ScenarioResult.ERROR,
                                   error="error" + EVIL)
        msgs = [(f"{ik.ROOT}/asset/x-1/alert", alert.SerializeToString()),
                (f"{ik.ROOT}/rejected/telemetry", rejected.SerializeToString()),
                (f"{ik.ROOT}/scenario/s-1/result", result.SerializeToString())]
        human, js, alerts = self.run_watchers(
            ctl, pub, msgs, [("watch", f"{ik.ROOT}/#", "--count", "3", "--for", "30s"),
                             ("watch", f"{ik.ROOT}/#", "--count", "3", "--for", "30s", "--json"),
                             ("alerts", "--count", "1", "--wait", "30s")])
        for out in (human, js, alerts):
            text = "\n".join(out)
            self.assertNotIn("\x1b", text)
            self.assertNotIn("\x07", text)
        text = "\n".join(human + alerts)
        self.assertIn("msg\\x1b]0;pwned\\x07\\x1b[2J\\x5cend", text)
        for word in ("detail", "name", "error", "bad"):
            self.assertIn(word + "\\x1b]0;pwned", text)
        # JSON keeps the text exact (cJSON writes control characters as \u00XX).
        docs = {d["type"]: d for d in map(json.loads, js)}
        self.assertEqual(docs["alert"]["message"], "msg" + EVIL + "\\end")
        self.assertEqual(docs["rejected"]["detail"], "detail" + EVIL)

        # The same result stored in Redis, read by `scenario show`; a state hash's names.
        r = redis.client(decode=False)
        r.set("twin:scenario:s-1", result.SerializeToString())
        r.hset("twin:{x-1}:state", mapping={"_ts_ms": str(T0), "_ingest_ms": str(T0),
                                            "_changed": "a" + EVIL, "b" + EVIL: "1"})
        r.sadd("twin:assets", "x" + EVIL)
        for args in (("scenario", "show", "s-1"), ("state", "x-1"), ("assets",)):
            res = ctl.run(*args)
            self.assertNotIn("\x1b", res.stdout + res.stderr, args)
            self.assertIn("\\x1b]0;pwned", res.stdout, args)


class TwinctlSmallFixesTest(TwinTestCase):

    def test_at_shift_with_a_model_without_production_publishes_nothing(self):
        broker = self.h.mosquitto()
        watch = self.h.mqtt(broker, client_id="request-watch")
        watch.subscribe(f"{ik.ROOT}/scenario/#")
        model_path = self.h.dir / "noprod.json"
        model_path.write_text(json.dumps(MODEL))
        ctl = Ctl(self.h, broker)
        res = ctl.run("scenario", "run", "--down", "press", "--at", "shift", "--model",
                      model_path, "--timeout", "2s", "--id", "shift-2")
        self.assertEqual(res.returncode, 2, res.stdout + res.stderr)
        self.assertIn("no production part", res.stderr)
        time.sleep(1.0)
        self.assertEqual(watch.messages(), [], "a request was published after a usage error")

    def test_count_out_of_range_is_a_usage_error(self):
        ctl = Ctl(self.h, env={"TWIN_MQTT_URL": "mqtt://127.0.0.1:1"})
        for cmd in ("watch", "alerts"):
            res = ctl.run(cmd, "--count", "99999999999999999999999", timeout=20)
            self.assertEqual(res.returncode, 2, f"{cmd}: {res.stderr}")
            self.assertIn("--count takes a positive number", res.stderr)

    def test_top_once_interrupted_exits_0(self):
        port = th.free_port()
        ctl = Ctl(self.h)
        top = ctl.start("top", "--once", "--interval", "1h", "--metrics",
                        f"ingest=http://127.0.0.1:{port}")
        try:
            time.sleep(1.0)  # past the first scrape, asleep in the interval
            top.proc.send_signal(signal.SIGINT)
            self.assertEqual(top.wait(10), 0)
        finally:
            top.stop()

    def test_top_refuses_a_metrics_answer_over_8_mib(self):
        import http.server

        sizes = {"/small": 8 * 1024 * 1024 - 4096, "/large": 8 * 1024 * 1024 + 1}

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                size = sizes.get(self.path, 0)
                head = b"# TYPE twin_x_total counter\ntwin_x_total 1\n"
                line = b"#" + b"p" * 1022 + b"\n"
                body = head + line * ((size - len(head)) // len(line))
                body += b"#" * (size - len(body) - 1) + b"\n" if size > len(body) else b""
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        try:
            base = f"http://127.0.0.1:{server.server_address[1]}"
            res, docs = Ctl(self.h).json_lines(
                "top", "--once", "--interval", "200ms", "--metrics",
                f"small={base}/small,large={base}/large", timeout=60)
        finally:
            server.shutdown()
            server.server_close()
        self.assertEqual(res.returncode, 0, res.stderr)
        by = {d["service"]: d for d in docs}
        self.assertTrue(by["small"]["up"], by["small"])
        self.assertFalse(by["large"]["up"], by["large"])
        self.assertIn("answer too large", by["large"]["error"])


if __name__ == "__main__":
    th.main()
