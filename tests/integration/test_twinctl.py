# SPDX-License-Identifier: Apache-2.0
# twinctl, the operator's CLI, against real mosquitto, redis, twin-ingest and twin-predictor: publish, state, assets, predict, watch, alerts, top, usage errors and JSON output.
import json
import signal

import ingestkit as ik
import predkit as pk
import twinharness as th
from ctlkit import MODEL, STEP, T0, Ctl, wave
from twinharness import TwinTestCase


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


if __name__ == "__main__":
    th.main()
