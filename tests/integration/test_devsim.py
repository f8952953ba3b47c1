# SPDX-License-Identifier: Apache-2.0
# twin-devsim against the real broker, twin-ingest and twin-predictor: the demo plant alerts within 60 s, --seed determinism, CSV replay into history, load mode counts, bad settings.
import json
import time

import twinharness as th
from twinharness import TwinTestCase

ROOT = "twin/v1"
PLANT = th.DEPLOY_DIR / "plant.json"
START_MS = 1_700_000_000_000


def text(out):
    return out.decode() if isinstance(out, bytes) else out


def asset_of(topic):
    return topic.split("/")[3]


class DevsimTest(TwinTestCase):

    def devsim(self, broker, args, env=None, **kw):
        variables = {"TWIN_MODEL": str(PLANT)}
        variables.update(env or {})
        return self.h.service("twin-devsim", broker=broker, env=variables, args=args, **kw)

    def run_to_end(self, broker, args, timeout=60):
        """Runs twin-devsim until it exits by itself; returns (status, stdout, stderr)."""
        env = {"TWIN_MQTT_URL": broker.url, "TWIN_INSTANCE": f"once-{time.monotonic_ns()}",
               "TWIN_MODEL": str(PLANT)}
        res = self.h.run("twin-devsim", args, env=env, timeout=timeout)
        return res.returncode, text(res.stdout), text(res.stderr)

    def capture(self, msgs):
        pb = th.load_proto()
        out = []
        for m in msgs:
            t = pb.Telemetry.FromString(m.payload)
            out.append((asset_of(m.topic), t.asset_id, t.ts_ms, t.seq,
                        tuple((s.signal, s.value) for s in t.samples)))
        return out

    def test_demo_plant_gives_state_predictions_and_an_alert_within_60_s(self):
        """The acceptance of issue 6 with the real services at their default settings: every
        asset of deploy/plant.json gets state, forecasts with bands, and an Alert comes
        within 60 s of the start (real time, 1 s per asset)."""
        redis = self.h.redis()
        broker = self.h.mosquitto()
        env = {"TWIN_MODEL": str(PLANT)}
        self.h.service("twin-ingest", broker=broker, redis=redis, env=env)
        self.h.service("twin-predictor", broker=broker, redis=redis, env=env)
        watch = self.h.mqtt(broker, client_id="devsim-watch")
        watch.subscribe(f"{ROOT}/asset/+/prediction")
        watch.subscribe(f"{ROOT}/asset/+/alert")
        t0 = time.monotonic()
        sim = self.devsim(broker, [], redis=redis)
        pb = th.load_proto()
        assets = ["press-1", "press-2", "weld-1", "paint-1", "assembly-1", "compressor-1",
                  "chiller-1"]
        r = redis.client()

        def alerts():
            return [pb.Alert.FromString(m.payload) for m in watch.messages()
                    if m.topic.endswith("/alert")]
        first = th.wait_until(lambda: alerts(), 60 - (time.monotonic() - t0), interval=0.2,
                              what="an Alert within 60 s of twin-devsim's start")
        took = time.monotonic() - t0
        self.h.note(f"first alert after {took:.1f} s: {first[0].asset_id} {first[0].signal} "
                    f"kind={first[0].kind} value={first[0].value:.1f}")
        self.assertLess(took, 60.0)
        for a in assets:
            state = r.hgetall(f"twin:{{{a}}}:state")
            self.assertTrue(state, f"no state for {a}")
            self.assertGreater(len([k for k in state if not k.startswith("_")]), 3, a)

        def banded(asset):
            for m in watch.messages(f"{ROOT}/asset/{asset}/prediction"):
                p = pb.Prediction.FromString(m.payload)
                if any(pt.hi > pt.lo for f in p.forecasts for pt in f.points):
                    return p
            return None
        for a in assets:
            th.wait_until(lambda a=a: banded(a), 20, what=f"a Prediction of {a} with bands")
        # The press kind's derived signals (twin-ingest computes them; devsim sends only the
        # measured ones) are in state and history and get forecasts like measured ones.
        kind = json.loads(PLANT.read_text())["asset_kinds"]["press"]["signals"]
        derived = {name for name, sig in kind.items() if "expr" in sig}
        self.assertGreaterEqual(len(derived), 5)

        def forecast_signals(asset):
            out = set()
            for m in watch.messages(f"{ROOT}/asset/{asset}/prediction"):
                out |= {f.signal for f in pb.Prediction.FromString(m.payload).forecasts}
            return out
        th.wait_until(lambda: derived <= forecast_signals("press-1"), 30,
                      what=f"forecasts of press-1's derived signals {sorted(derived)}")
        state = r.hgetall("twin:{press-1}:state")
        self.assertLessEqual(derived, set(state), state)
        self.assertGreater(float(state["motor_power"]), 0)
        newest = r.xrevrange("twin:{press-1}:history", count=1)[0][1]
        self.assertLessEqual(derived, set(newest), newest)
        self.assertGreater(sim.metric("twin_devsim_acked_total"), 7 * 20)
        self.assertEqual(sim.metric("twin_devsim_publish_failed_total"), 0)
        self.assertEqual(sim.metric("twin_devsim_assets"), 7)
        self.assertEqual(sim.stop(), 0)

    def test_same_seed_same_telemetry(self):
        """Accelerated (as fast as possible) from a fixed start: the same seed publishes the
        same messages, another seed other values."""
        broker = self.h.mosquitto()
        sub = self.h.mqtt(broker, client_id="devsim-capture")
        sub.subscribe(f"{ROOT}/asset/+/telemetry")
        runs = []
        for seed in (5, 5, 6):
            sub.clear()
            args = ["--seed", str(seed), "--as-fast-as-possible", "--count", "200",
                    "--start-ms", str(START_MS), "--seq-base", "1000", "--json"]
            rc, out, err = self.run_to_end(broker, args)
            self.assertEqual(rc, 0, err)
            report = json.loads(out)
            self.assertEqual(report["sent"], 7 * 200)
            self.assertEqual(report["acked"], 7 * 200)
            th.wait_until(lambda: len(sub.messages()) >= 1400, 20, what="1400 telemetry")
            runs.append(sorted(self.capture(sub.messages())))
        self.assertEqual(len(runs[0]), 1400)
        self.assertEqual(runs[0], runs[1])
        self.assertNotEqual([r[4] for r in runs[0]], [r[4] for r in runs[2]])
        self.assertEqual([r[:4] for r in runs[0]], [r[:4] for r in runs[2]])
        first = [r for r in runs[0] if r[0] == "press-1"]
        self.assertEqual([r[3] for r in first], list(range(1000, 1200)))
        self.assertEqual(first[0][2], START_MS)
        self.assertEqual(first[1][2] - first[0][2], 1000)
        self.assertTrue(all(r[0] == r[1] for r in runs[0]))

    def test_replay_puts_exactly_the_recorded_values_in_history(self):
        redis = self.h.redis()
        broker = self.h.mosquitto()
        self.h.service("twin-ingest", broker=broker, redis=redis)
        rows = [(1000, "temp", 20.5), (1000, "flow", 3.25), (2000, "temp", 21.0),
                (2500, "flow", -1.5), (4000, "temp", 22.75), (4000, "flow", 0.0)]
        csv = self.h.dir / "rec.csv"
        csv.write_text("ts_ms,signal,value\n" + "".join(f"{t},{s},{v}\n" for t, s, v in rows))
        rc, out, err = self.run_to_end(broker, ["--mode", "replay", "--replay", str(csv),
                                                "--asset", "rec-1", "--as-fast-as-possible",
                                                "--shift-to-now", "--json"])
        self.assertEqual(rc, 0, err)
        self.assertEqual(json.loads(out)["sent"], 4)
        r = redis.client()
        hist = th.wait_until(lambda: (lambda e: e if len(e) == 4 else None)(
            r.xrange("twin:{rec-1}:history")), 15, what="4 history entries")
        got = []  # ingest's workers may apply them in another order: late ones go to history
        for _, fields in hist:
            ts = int(fields.pop("ts_ms"))
            fields.pop("seq")
            got.append((ts, {k: float(v) for k, v in fields.items()}))
        got.sort(key=lambda e: e[0])
        base = got[0][0] - 1000
        self.assertLess(abs(got[-1][0] - int(time.time() * 1000)), 60_000)  # shifted to now
        self.assertEqual([t - base for t, _ in got], [1000, 2000, 2500, 4000])
        self.assertEqual([v for _, v in got], [{"temp": 20.5, "flow": 3.25}, {"temp": 21.0},
                                               {"flow": -1.5}, {"temp": 22.75, "flow": 0.0}])

    def test_replay_with_bad_lines_sends_nothing_and_names_the_lines(self):
        broker = self.h.mosquitto()
        sub = self.h.mqtt(broker, client_id="devsim-bad-replay")
        sub.subscribe(f"{ROOT}/asset/+/telemetry")
        csv = self.h.dir / "bad.csv"
        csv.write_text("1000,temp,1\n1000,temp,2\n2000,temp,x\n3000,temp,3\n")
        rc, _, err = self.run_to_end(broker, ["--mode", "replay", "--replay", str(csv),
                                              "--asset", "rec-2", "--as-fast-as-possible"])
        self.assertEqual(rc, 2)
        self.assertIn(f"{csv}:2: signal repeated", err)
        self.assertIn(f"{csv}:3: value is not a finite number", err)
        rc, out, err = self.run_to_end(broker, ["--mode", "replay", "--replay", str(csv),
                                                "--asset", "rec-2", "--as-fast-as-possible",
                                                "--skip-bad-lines", "--json"])
        self.assertEqual(rc, 0, err)
        self.assertEqual(json.loads(out)["sent"], 2)
        th.wait_until(lambda: len(sub.messages()) == 2, 10, what="the 2 good messages")

    def test_load_mode_publishes_the_asked_count(self):
        broker = self.h.mosquitto()
        sub = self.h.mqtt(broker, client_id="devsim-load-count", max_inflight=1000)
        sub.subscribe(f"{ROOT}/asset/+/telemetry")
        rc, out, err = self.run_to_end(broker, ["--mode", "load", "--assets", "50", "--rate",
                                                "2000", "--duration", "2", "--json"])
        self.assertEqual(rc, 0, err)
        report = json.loads(out)
        self.assertEqual(report["sent"], 4000)
        self.assertEqual(report["acked"], 4000)
        self.assertEqual(report["failed"], 0)
        self.assertGreater(report["rate"], 1900)
        self.assertLess(report["rate"], 2100)
        th.wait_until(lambda: len(sub.messages()) >= 4000, 20, what="4000 receipts")
        got = self.capture(sub.messages())
        self.assertEqual(len({(g[0], g[3]) for g in got}), 4000)
        self.assertEqual({g[0] for g in got}, {f"load-{i:06d}" for i in range(1, 51)})

    def test_bad_settings_exit_2_with_one_line(self):
        cases = [["--mode", "nope"], ["--rate", "0"], ["--speed", "0"], ["--no-such-flag"],
                 ["--mode", "replay"], ["--mode", "replay", "--asset", "a-1"],
                 ["--mode", "replay", "--replay", "/nonexistent.csv", "--asset", "a-1"],
                 ["--asset", "bad id!"], ["--model", "/nonexistent/plant.json"],
                 ["--period-ms", "-1"], ["--seed", "x"],
                 # After year 9999 (the old maximum INT64_MAX / 4 overflowed ns arithmetic).
                 ["--start-ms", "253402300800000"], ["--start-ms", "2305843009213693951"]]
        for args in cases:
            res = self.h.run("twin-devsim", args + ["--check-config"], timeout=10)
            self.assertEqual(res.returncode, 2, (args, res.stderr))
            lines = text(res.stderr).strip().splitlines()
            self.assertEqual(len(lines), 1, (args, res.stderr))
            self.assertTrue(lines[0].startswith("twin-devsim: "), lines[0])
        res = self.h.run("twin-devsim", ["--check-config"], env={"TWIN_MODEL": str(PLANT)})
        self.assertEqual(res.returncode, 0, res.stderr)
        res = self.h.run("twin-devsim", ["--help"])
        self.assertEqual(res.returncode, 0)
        for flag in ("--mode", "--rate", "--replay", "--seed", "TWIN_DEVSIM_SPEED"):
            self.assertIn(flag, text(res.stdout))

    def test_start_ms_far_in_the_future_waits_without_overflow(self):
        broker = self.h.mosquitto()
        sub = self.h.mqtt(broker, client_id="devsim-future")
        sub.subscribe(f"{ROOT}/asset/+/telemetry")
        res = self.h.run("twin-devsim", ["--start-ms", "253402300799999", "--check-config"],
                         env={"TWIN_MODEL": str(PLANT)}, timeout=10)
        self.assertEqual(res.returncode, 0, res.stderr)
        sim = self.devsim(broker, ["--start-ms", "253402300799999", "--as-fast-as-possible",
                                   "--count", "1"])
        th.wait_until(lambda: "demo_start_in_future" in sim.log_text(), 10,
                      what="the warning about a start in the future")
        time.sleep(1.0)  # the first due time is computed: UBSan would have aborted by now
        self.assertTrue(sim.running, sim.log_tail())
        self.assertEqual(sim.sanitizer_reports(), [])
        self.assertEqual(sub.messages(), [])  # device time never runs ahead of the clock

    def test_replay_times_are_capped_and_a_bom_is_skipped(self):
        broker = self.h.mosquitto()
        sub = self.h.mqtt(broker, client_id="devsim-replay-cap")
        sub.subscribe(f"{ROOT}/asset/+/telemetry")
        csv = self.h.dir / "huge.csv"
        csv.write_text("ts_ms,signal,value\n0,temp,1\n9223372036854775807,temp,2\n")
        # Paced (no --as-fast-as-possible): the shift adds the span INT64_MAX to the clock.
        args = ["--mode", "replay", "--replay", str(csv), "--asset", "rec-3", "--shift-to-now"]
        rc, _, err = self.run_to_end(broker, args)
        self.assertEqual(rc, 2, err)
        self.assertIn(f"{csv}:3: ts_ms is not an integer from 0 to 253402300799999", err)
        self.assertNotIn("runtime error", err)
        rc, out, err = self.run_to_end(broker, args + ["--skip-bad-lines", "--json"])
        self.assertEqual((rc, json.loads(out)["sent"]), (0, 1), err)
        # A file saved by Excel as "CSV UTF-8" starts with a byte order mark.
        bom = self.h.dir / "bom.csv"
        bom.write_bytes(b"\xef\xbb\xbfts_ms,signal,value\r\n1000,temp,1\r\n2000,temp,2\r\n")
        rc, out, err = self.run_to_end(broker, ["--mode", "replay", "--replay", str(bom),
                                                "--asset", "rec-4", "--as-fast-as-possible",
                                                "--shift-to-now", "--json"])
        self.assertEqual((rc, json.loads(out)["sent"]), (0, 2), err)
        th.wait_until(lambda: len(sub.messages()) == 3, 10, what="1 + 2 replayed messages")


if __name__ == "__main__":
    th.main()
