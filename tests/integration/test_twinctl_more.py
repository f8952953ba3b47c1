# SPDX-License-Identifier: Apache-2.0
# twinctl's scenario commands (progress bar, show, --at shift) and its handling of hostile input (extreme times, terminal escapes, oversized /metrics, out-of-range counts) against real services.
import json
import os
import pty
import select
import signal
import subprocess
import threading
import time

import ingestkit as ik
import scenkit as sk
import twinharness as th
from ctlkit import MODEL, T0, Ctl
from twinharness import TwinTestCase


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
