# SPDX-License-Identifier: Apache-2.0
# twin-devsim obeys Commands on a real broker: a maintain command shows in the final report, bad ones are rejected (Rejected on rejected/devsim, counters) while the plant runs on, a maintenance before the demo's wear failure avoids it (two runs compared), and other modes ignore commands.
import json
import time

import twinharness as th
from twinharness import TwinTestCase

ROOT = "twin/v1"
PLANT = th.DEPLOY_DIR / "plant.json"
START_MS = 1_700_000_000_000
APPLIED = 'twin_devsim_commands_total{result="applied"}'
REJECTED = 'twin_devsim_commands_total{result="rejected"}'
DUPLICATE = 'twin_devsim_commands_total{result="duplicate"}'


def command(pb, cid, asset, kind="maintain", topic_asset=None, start_ms=0, duration_ms=0,
            setpoint=0.0):
    """(topic, payload) of a Command for `asset`, published on `topic_asset`'s topic."""
    msg = pb.Command(id=cid, asset_id=asset, recommendation_id="rec-test",
                     issued_ms=int(time.time() * 1000), issued_by="test_devsim_commands",
                     reason="integration test",
                     action=pb.Action(kind=kind, asset_id=asset, start_ms=start_ms,
                                      duration_ms=duration_ms, setpoint=setpoint))
    return f"{ROOT}/asset/{topic_asset or asset}/command", msg.SerializeToString()


def json_report(text):
    """The --json report: the last line of output that is a JSON object."""
    lines = [line for line in text.splitlines() if line.startswith('{"mode"')]
    if not lines:
        raise AssertionError(f"no JSON report in:\n{text[-3000:]}")
    return json.loads(lines[-1])


def by_asset(report):
    return {a["asset"]: a for a in report["assets"]}


class DevsimCommandsTest(TwinTestCase):

    def devsim(self, broker, args, **kw):
        return self.h.service("twin-devsim", broker=broker, env={"TWIN_MODEL": str(PLANT)},
                              args=args, **kw)

    def test_demo_applies_a_maintain_command_and_rejects_bad_ones(self):
        """At 600x (10 min of device time a second) a maintain command for press-2 takes it
        down for its 30 min, shown in the metrics and the JSON report; a malformed, a
        wrong-asset, an out-of-range, a stale-start, an unknown-asset and an unknown-kind
        command, a retained one and a repeated id are each refused with a Rejected on
        rejected/devsim, and the plant keeps publishing."""
        broker = self.h.mosquitto()
        pb = th.load_proto()
        watch = self.h.mqtt(broker, client_id="devsim-cmd-watch")
        watch.subscribe(f"{ROOT}/rejected/devsim")
        watch.subscribe(f"{ROOT}/asset/press-2/telemetry")
        pub = self.h.mqtt(broker, client_id="devsim-cmd-pub")
        # A retained command reaches a new subscription flagged as retained: refused (it would
        # act again at every new subscription).
        retained_topic, retained = command(pb, "cmd-bad-9", "press-1", duration_ms=60_000)
        pub.publish(retained_topic, retained, retain=True)
        pub.wait_acked()
        sim = self.devsim(broker, ["--speed", "600", "--period-ms", "10000", "--json"])
        watch.wait_message(f"{ROOT}/rejected/devsim", timeout=20)
        # Cleared (an empty message, refused as empty_payload): live ones are not flagged.
        pub.publish(retained_topic, b"", retain=True)

        pub.publish(*command(pb, "cmd-ok-1", "press-2", duration_ms=30 * 60_000))
        th.wait_until(lambda: sim.metric(APPLIED) == 1, 20, what="the command applied")
        th.wait_until(lambda: "event=maintenance_done asset=press-2" in sim.log_text(), 30,
                      what="press-2's maintenance to end")
        self.assertEqual(sim.metric("twin_devsim_maintenances_total"), 1)
        self.assertIn("event=command_applied id=cmd-ok-1 asset=press-2 kind=maintain",
                      sim.log_text())
        # While down, press-2's stroke rate read 0.
        rates = [s.value for m in watch.messages(f"{ROOT}/asset/press-2/telemetry")
                 for s in pb.Telemetry.FromString(m.payload).samples if s.signal == "stroke_rate"]
        self.assertIn(0.0, rates)

        bad = [
            ("undecodable", (f"{ROOT}/asset/press-1/command", b"\xff\xff\xff\xff not protobuf")),
            ("asset_mismatch", command(pb, "cmd-bad-2", "press-2", topic_asset="press-1",
                                       duration_ms=60_000)),
            ("out_of_range", command(pb, "cmd-bad-3", "press-1", duration_ms=25 * 3_600_000)),
            ("out_of_range", command(pb, "cmd-bad-4", "press-1", kind="slow", setpoint=1.5)),
            ("start_out_of_window", command(pb, "cmd-bad-5", "press-1", start_ms=START_MS,
                                            duration_ms=60_000)),
            ("unknown_asset", command(pb, "cmd-bad-6", "press-9", duration_ms=60_000)),
            ("unknown_kind", command(pb, "cmd-bad-7", "press-1", kind="none")),
            ("duplicate", command(pb, "cmd-ok-1", "press-2", duration_ms=30 * 60_000)),
        ]
        sent_before = sim.metric("twin_devsim_published_total")
        for _, (topic, payload) in bad:
            pub.publish(topic, payload)
        pub.wait_acked()
        want = ["retained", "empty_payload"] + [reason for reason, _ in bad]
        th.wait_until(lambda: len(watch.messages(f"{ROOT}/rejected/devsim")) >= len(want), 20,
                      what=f"{len(want)} Rejected on rejected/devsim")
        got = [pb.Rejected.FromString(m.payload)
               for m in watch.messages(f"{ROOT}/rejected/devsim")]
        self.assertEqual(sorted(r.reason for r in got), sorted(want))
        for r in got:
            self.assertTrue(r.topic.startswith(f"{ROOT}/asset/"), r)
            self.assertTrue(r.detail, r)
            self.assertEqual(bool(r.payload_head), r.reason != "empty_payload", r)
        undecodable = next(r for r in got if r.reason == "undecodable")
        self.assertEqual(undecodable.payload_head, b"\xff\xff\xff\xff not protobuf")
        self.assertEqual(sim.metric(REJECTED), len(want) - 1)
        self.assertEqual(sim.metric(DUPLICATE), 1)
        self.assertEqual(sim.metric(APPLIED), 1)
        self.assertEqual(
            sim.metric('twin_devsim_commands_rejected_total{reason="out_of_range"}'), 2)

        # The plant runs on: more telemetry, the process alive, no failed publishes.
        th.wait_until(lambda: sim.metric("twin_devsim_published_total") > sent_before + 100, 20,
                      what="telemetry after the bad commands")
        self.assertTrue(sim.running, sim.log_tail())
        self.assertGreaterEqual(
            sim.metric('twin_devsim_downtime_seconds_total{cause="maintenance"}'), 1800)
        self.assertEqual(sim.stop(), 0)
        report = json_report(sim.log_text())
        self.assertEqual(report["commands"], {"applied": 1, "rejected": len(want) - 1,
                                              "duplicate": 1})
        press2 = by_asset(report)["press-2"]
        self.assertEqual(press2["maintenances"], 1)
        self.assertEqual(press2["downtime_maintenance_ms"], 30 * 60_000)
        self.assertEqual(report["maintenances"], 1)
        self.assertEqual(report["downtime_maintenance_ms"], 30 * 60_000)
        for key in ("failures", "repairs", "maintenances", "downtime_failure_ms",
                    "downtime_maintenance_ms"):
            self.assertEqual(report[key], sum(a[key] for a in report["assets"]), key)
        self.assertEqual(len(report["assets"]), 7)
        self.assertIn("commands_applied=1", sim.log_text())

    def run_demo(self, broker, instance, count=800):
        """A deterministic accelerated run (fixed seed and start; 800 readings: 66 min of
        device time per asset); returns its JSON report and its log."""
        env = {"TWIN_MQTT_URL": broker.url, "TWIN_INSTANCE": instance, "TWIN_MODEL": str(PLANT)}
        args = ["--seed", "4", "--as-fast-as-possible", "--period-ms", "5000", "--count",
                str(count), "--start-ms", str(START_MS), "--seq-base", "1000", "--json"]
        res = self.h.run("twin-devsim", args, env=env, timeout=120)
        out = res.stdout.decode() if isinstance(res.stdout, bytes) else res.stdout
        err = res.stderr.decode() if isinstance(res.stderr, bytes) else res.stderr
        self.assertEqual(res.returncode, 0, err[-3000:])
        return json.loads(out), err

    def test_maintenance_before_the_wear_failure_avoids_it(self):
        """The closed loop, measured: paint-1's filters (the demo's head start) cross their warn
        limit after ~40 s and fail by wear after ~9 min of device time. Two runs with the same
        seed and start: the second gets a 15-min maintenance 2 min in (queued in its
        persistent session before it starts). paint-1's failure is avoided and the plant's
        downtime falls; every other machine runs exactly as before."""
        broker = self.h.mosquitto()
        pb = th.load_proto()
        base, _ = self.run_demo(broker, "cmp-a")
        # Session first (it subscribes), then the command waits in it for the second run.
        self.run_demo(broker, "cmp-b", count=1)
        pub = self.h.mqtt(broker, client_id="devsim-cmp-pub")
        pub.publish(*command(pb, "cmd-cmp-1", "paint-1", start_ms=START_MS + 120_000,
                             duration_ms=15 * 60_000))
        pub.wait_acked()
        fixed, err = self.run_demo(broker, "cmp-b")
        self.assertEqual(fixed["commands"], {"applied": 1, "rejected": 0, "duplicate": 0})
        self.assertIn("event=command_applied id=cmd-cmp-1 asset=paint-1", err)
        a, b = by_asset(base), by_asset(fixed)
        self.h.note(f"paint-1 without: {a['paint-1']}; with: {b['paint-1']}")
        self.assertGreaterEqual(a["paint-1"]["failures"], 1)
        self.assertEqual(a["paint-1"]["maintenances"], 0)
        self.assertEqual(b["paint-1"]["failures"], 0)
        self.assertEqual(b["paint-1"]["maintenances"], 1)
        self.assertEqual(b["paint-1"]["downtime_maintenance_ms"], 15 * 60_000)
        self.assertGreater(a["paint-1"]["downtime_failure_ms"], 15 * 60_000)
        self.assertLess(fixed["downtime_failure_ms"] + fixed["downtime_maintenance_ms"],
                        base["downtime_failure_ms"] + base["downtime_maintenance_ms"])
        for asset in a:
            if asset != "paint-1":
                self.assertEqual(a[asset], b[asset], asset)

    def test_other_modes_do_not_subscribe_to_commands(self):
        """Load mode neither obeys nor rejects commands: nothing on rejected/devsim, no
        commands in its report."""
        broker = self.h.mosquitto()
        watch = self.h.mqtt(broker, client_id="devsim-load-watch")
        watch.subscribe(f"{ROOT}/rejected/devsim")
        sim = self.devsim(broker, ["--mode", "load", "--assets", "2", "--rate", "50", "--json"])
        pub = self.h.mqtt(broker, client_id="devsim-load-pub")
        pub.publish(f"{ROOT}/asset/load-000001/command", b"\xff garbage")
        pub.wait_acked()
        time.sleep(1.0)
        self.assertEqual(watch.messages(), [])
        self.assertEqual(sim.metric(REJECTED), 0)
        self.assertEqual(sim.stop(), 0)
        report = json_report(sim.log_text())
        self.assertNotIn("commands", report)
        self.assertNotIn("assets", report)
        self.assertIn("downtime_failure_ms", report)

    def test_help_says_the_demo_obeys_commands(self):
        res = self.h.run("twin-devsim", ["--help"])
        self.assertEqual(res.returncode, 0)
        out = res.stdout.decode() if isinstance(res.stdout, bytes) else res.stdout
        self.assertIn("Commands", out)
        self.assertIn("downtime by cause", out)


if __name__ == "__main__":
    th.main()
