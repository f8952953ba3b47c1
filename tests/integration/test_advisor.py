# SPDX-License-Identifier: Apache-2.0
# twin-advisor on a real broker and Redis: recommendations from the live state (requests and forecast alerts), guarded autonomy (commands within the plant model's guardrails, refusals audited), approvals, and bad input.
import json
import time

import twinharness as th
import twinutil as tu
import twinwire as tw
from twinharness import TwinTestCase

ROOT = "twin/v1"
DEMO_PLANT = th.DEPLOY_DIR / "plant.json"
HOUR_MS = 3600 * 1000


def plant_with(tmp, **autonomy):
    """The demo plant with its actions.autonomy changed; returns the file's path."""
    model = json.loads(DEMO_PLANT.read_text())
    model["actions"]["autonomy"].update(autonomy)
    path = tmp / "plant-advisor.json"
    path.write_text(json.dumps(model))
    return path


class AdvisorStack:
    """Redis + Mosquitto + twin-advisor, an MQTT client watching everything it says."""

    def __init__(self, h, autonomy=False, model=DEMO_PLANT, replications=100):
        self.pb = tw.load_proto()
        self.redis = h.redis()
        self.broker = h.mosquitto()
        self.r = self.redis.client(decode=False)
        self.advisor = h.service("twin-advisor", broker=self.broker, redis=self.redis,
                                 log_level="debug", env={
                                     "TWIN_MODEL": str(model),
                                     "TWIN_ADVISOR_AUTONOMY": "true" if autonomy else "false",
                                     "TWIN_ADVISOR_REPLICATIONS": str(replications),
                                     "TWIN_ADVISOR_THREADS": "2"})
        self.client = h.mqtt(self.broker)
        for leaf in ("asset/+/recommendation", "asset/+/command", "rejected/advisor"):
            self.client.subscribe(f"{ROOT}/{leaf}")

    def worn(self, asset, ts_ms, vibration=10.5, stroke_rate=14.0):
        """Writes a live state in which the machine is badly worn (as ingest would)."""
        self.r.hset(f"twin:{{{asset}}}:state", mapping={
            "vibration": str(vibration), "stroke_rate": str(stroke_rate),
            "_ts_ms": str(ts_ms), "_seq": "1"})

    def request(self, asset, rid, by="tester"):
        m = self.pb.RecommendationRequest(id=rid, asset_id=asset, requested_by=by)
        self.client.publish(f"{ROOT}/recommendation/request", m.SerializeToString())

    def alert(self, asset, ts_ms, signal="vibration", kind=None):
        a = self.pb.Alert(asset_id=asset, signal=signal,
                          kind=kind if kind is not None else self.pb.Alert.THRESHOLD_FORECAST,
                          severity=self.pb.Alert.CRITICAL, ts_ms=ts_ms, eta_ms=ts_ms + HOUR_MS,
                          value=10.5, threshold=11.0, message="test")
        self.client.publish(f"{ROOT}/asset/{asset}/alert", a.SerializeToString())

    def approve(self, asset, rec_id, by="alice", reject=False):
        m = self.pb.Approval(recommendation_id=rec_id, asset_id=asset, approved_by=by,
                             reject=reject)
        self.client.publish(f"{ROOT}/asset/{asset}/approval", m.SerializeToString())

    def recommendation(self, asset, predicate=lambda r: True, timeout=60.0, start=0):
        def decoded(msg):
            rec = self.pb.Recommendation()
            rec.ParseFromString(msg.payload)
            return rec
        msg = self.client.wait_message(f"{ROOT}/asset/{asset}/recommendation",
                                       lambda m: predicate(decoded(m)), timeout=timeout,
                                       start=start)
        return decoded(msg)

    def commands(self, asset):
        out = []
        for msg in self.client.messages(f"{ROOT}/asset/{asset}/command"):
            c = self.pb.Command()
            c.ParseFromString(msg.payload)
            out.append(c)
        return out

    def rejected(self, reason, contains="", timeout=10.0):
        def match(msg):
            rej = self.pb.Rejected()
            rej.ParseFromString(msg.payload)
            return rej.reason == reason and contains in rej.detail
        msg = self.client.wait_message(f"{ROOT}/rejected/advisor", match, timeout=timeout)
        rej = self.pb.Rejected()
        rej.ParseFromString(msg.payload)
        return rej

    def audit(self):
        return [{k.decode(): v.decode() for k, v in fields.items()}
                for _, fields in self.r.xrange("twin:audit")]


class RecommendTest(TwinTestCase):

    def test_a_worn_press_is_to_be_maintained_with_the_evidence_and_autonomy_off_only_advises(self):
        s = AdvisorStack(self.h)
        now = tu.now_ms()
        s.worn("press-1", now)
        s.request("press-1", "r1")
        rec = s.recommendation("press-1")
        self.assertEqual(rec.status, s.pb.Recommendation.OK, rec.error)
        self.assertEqual((rec.trigger, rec.request_id, rec.ts_ms), ("request", "r1", now))
        self.assertEqual(rec.action.kind, "maintain")
        self.assertEqual(rec.objective, "station.press.downtime")
        self.assertFalse(rec.maximize)
        kinds = [o.action.kind for o in rec.options]
        self.assertIn("none", kinds)
        self.assertGreaterEqual(len(rec.options), 3)  # none, maintain now, at shift end (, slow)
        best = rec.options[0]
        self.assertEqual(best.rank, 1)
        self.assertEqual(best.action.kind, "maintain")
        self.assertLess(best.effect.hi, 0, "the chosen action pays with 95 % confidence")
        self.assertEqual(best.action.duration_ms, 15 * 60 * 1000)
        names = [k.name for k in best.kpis]
        self.assertIn("station.press.downtime", names)
        self.assertIn("maintain", rec.why)
        self.assertEqual(rec.decision, "advice")
        self.assertEqual(rec.command_id, "")
        # Stored for readers, audited, and no command.
        stored = s.pb.Recommendation()
        stored.ParseFromString(s.r.get("twin:{press-1}:recommendation"))
        self.assertEqual(stored.id, rec.id)
        audit = s.audit()
        self.assertEqual([e["event"] for e in audit], ["advice"])
        self.assertEqual(audit[0]["recommendation"], rec.id)
        time.sleep(0.5)
        self.assertEqual(s.commands("press-1"), [])
        self.assertEqual(s.advisor.metric('twin_advisor_recommendations_total{action="maintain"}'), 1)

    def test_a_healthy_machine_is_left_running(self):
        s = AdvisorStack(self.h)
        s.worn("weld-1", tu.now_ms(), vibration=1.0)
        s.request("weld-1", "r2")
        rec = s.recommendation("weld-1")
        self.assertEqual(rec.status, s.pb.Recommendation.OK, rec.error)
        self.assertEqual(rec.action.kind, "none")
        self.assertIn("Leave it running", rec.why)

    def test_bad_requests_are_rejected_or_answered_with_an_error(self):
        s = AdvisorStack(self.h)
        s.client.publish(f"{ROOT}/recommendation/request", b"\xff\xff\xff")
        self.assertIn("RecommendationRequest", s.rejected("undecodable").detail)
        s.request("ghost-9", "r3")
        self.assertIn("ghost-9", s.rejected("unknown_asset").detail)
        s.request("press-1", "bad id!")
        self.assertIn("id must be", s.rejected("undecodable", "id must").detail)
        # An asset of the model that is in no station: an ERROR recommendation says why.
        s.request("compressor-1", "r4")
        rec = s.recommendation("compressor-1")
        self.assertEqual(rec.status, s.pb.Recommendation.ERROR)
        self.assertIn("no station", rec.error)
        # The advisor is still there.
        s.worn("press-2", tu.now_ms())
        s.request("press-2", "r5")
        self.assertEqual(s.recommendation("press-2").status, s.pb.Recommendation.OK)


class TwinctlTest(TwinTestCase):

    def test_twinctl_asks_approves_and_reads_the_audit(self):
        s = AdvisorStack(self.h)
        s.worn("press-1", tu.now_ms())
        env = {"TWIN_MQTT_URL": s.broker.url, "TWIN_REDIS_URL": s.redis.url, "USER": "carol"}

        def ctl(*args):
            p = self.h.run("twinctl", args, env=env, timeout=60)
            return p.returncode, p.stdout.decode(), p.stderr.decode()

        rc, out, err = ctl("recommend", "press-1", "--json")
        self.assertEqual(rc, 0, err)
        rec = json.loads(out)
        self.assertEqual((rec["asset_id"], rec["action"]["kind"], rec["decision"]),
                         ("press-1", "maintain", "advice"))
        self.assertEqual(rec["options"][0]["rank"], 1)
        self.assertLess(rec["options"][0]["effect"]["hi"], 0)
        self.assertIn("station.press.downtime", [k["name"] for k in rec["options"][0]["kpis"]])
        rc, out, err = ctl("recommend", "press-1")
        self.assertEqual(rc, 0, err)
        self.assertIn("do: maintain now for 15 min", out)
        self.assertIn("leave it running", out)
        rec_id = out.split()[1]
        rc, out, err = ctl("approve", "press-1", rec_id)
        self.assertEqual(rc, 0, err)
        self.assertIn("decision: executed: approved by carol", out)
        self.assertEqual(len(s.commands("press-1")), 1)
        # Again: the advisor refuses, twinctl says why and fails.
        rc, out, err = ctl("approve", "press-1", rec_id)
        self.assertEqual(rc, 1)
        self.assertIn("decided already", err)
        rc, out, err = ctl("audit", "--json")
        self.assertEqual(rc, 0, err)
        self.assertEqual([e["event"] for e in json.loads(out)], ["advice", "advice", "command"])
        rc, out, err = ctl("audit", "--asset", "press-1")
        self.assertEqual(rc, 0, err)
        self.assertIn("carol", out.splitlines()[-1])
        self.assertIn("command", out.splitlines()[-1])
        self.assertEqual(ctl("recommend")[0], 2)
        rc, out, err = ctl("recommend", "press-1", "--by", "x" * 600)
        self.assertEqual(rc, 2)
        self.assertIn("too long", err)


class AutonomyTest(TwinTestCase):

    def test_a_forecast_alert_leads_to_a_command_inside_the_guardrails_and_refusals_are_audited(self):
        model = plant_with(self.h.dir, max_per_hour=1, min_interval="2h")
        s = AdvisorStack(self.h, autonomy=True, model=model)
        # 08:00 UTC yesterday: inside a shift of the demo plant, whatever the time of the run.
        t0 = (tu.now_ms() // (24 * HOUR_MS) - 1) * 24 * HOUR_MS + 8 * HOUR_MS
        s.worn("press-1", t0)
        s.alert("press-1", t0)
        rec = s.recommendation("press-1")
        self.assertEqual(rec.trigger, "threshold_forecast")
        self.assertEqual(rec.action.kind, "maintain")
        self.assertEqual(rec.decision, "executed")
        cmds = s.commands("press-1")
        self.assertEqual(len(cmds), 1)
        c = cmds[0]
        self.assertEqual((c.id, c.asset_id, c.recommendation_id), (rec.command_id, "press-1", rec.id))
        self.assertEqual(c.action.kind, "maintain")
        self.assertTrue(5 * 60000 <= c.action.duration_ms <= HOUR_MS)
        self.assertTrue(c.issued_by.startswith("twin-advisor/"))
        audit = s.audit()
        self.assertEqual(audit[-1]["event"], "command")
        self.assertEqual(audit[-1]["command"], c.id)
        # Another alert of the same machine within "every" (2 h): not evaluated again.
        s.alert("press-1", t0 + 10 * 60000)
        tu.wait_until(lambda: s.advisor.metric(
            'twin_advisor_alerts_skipped_total{reason="recent"}') == 1, 10)
        # Other kinds of alert are not triggers.
        s.alert("press-1", t0, kind=s.pb.Alert.ANOMALY)
        tu.wait_until(lambda: s.advisor.metric(
            'twin_advisor_alerts_skipped_total{reason="not_forecast"}') == 1, 10)
        # A second worn machine 10 min later (plant time): max 1 autonomous command an hour.
        s.worn("weld-1", t0 + 10 * 60000, vibration=7.0)
        s.alert("weld-1", t0 + 10 * 60000)
        rec2 = s.recommendation("weld-1")
        self.assertEqual(rec2.action.kind, "maintain")
        self.assertTrue(rec2.decision.startswith("refused: max_per_hour"), rec2.decision)
        self.assertEqual(s.commands("weld-1"), [])
        # The same press asked about again 30 min on: refused, it had a command 30 min ago.
        s.worn("press-1", t0 + 30 * 60000)
        n = len(s.client.messages(f"{ROOT}/asset/press-1/recommendation"))
        s.request("press-1", "again")
        rec3 = s.recommendation("press-1", lambda r: r.request_id == "again", start=n)
        self.assertTrue(rec3.decision.startswith("refused: min_interval"), rec3.decision)
        # Over two hours of plant time later (actions.evaluate.every) weld-1 is evaluated
        # again, and the hour's command budget is free.
        s.worn("weld-1", t0 + 2 * HOUR_MS + 15 * 60000, vibration=7.0)
        s.alert("weld-1", t0 + 2 * HOUR_MS + 15 * 60000)
        rec4 = s.recommendation("weld-1", lambda r: r.decision == "executed")
        self.assertEqual(len(s.commands("weld-1")), 1)
        events = [(e["event"], e["asset"]) for e in s.audit()]
        self.assertEqual(events, [("command", "press-1"), ("refused", "weld-1"),
                                  ("refused", "press-1"), ("command", "weld-1")])
        self.assertIn("max_per_hour", s.audit()[1]["reason"])
        self.assertEqual(s.advisor.metric("twin_advisor_commands_total"), 2)
        self.assertEqual(rec4.command_id, s.commands("weld-1")[0].id)

    def test_approval_executes_an_advice_and_an_out_of_range_action_is_refused_and_audited(self):
        s = AdvisorStack(self.h, autonomy=False)
        now = tu.now_ms()
        s.worn("press-1", now)
        s.request("press-1", "a1")
        rec = s.recommendation("press-1")
        self.assertEqual(rec.decision, "advice")
        n = len(s.client.messages(f"{ROOT}/asset/press-1/recommendation"))
        s.approve("press-1", rec.id, by="alice")
        done = s.recommendation("press-1", lambda r: r.decision != "advice", start=n)
        self.assertEqual(done.decision, "executed: approved by alice")
        cmds = s.commands("press-1")
        self.assertEqual(len(cmds), 1)
        self.assertEqual(cmds[0].issued_by, "alice")
        self.assertEqual(s.audit()[-1]["event"], "command")
        self.assertEqual(s.audit()[-1]["by"], "alice")
        # Approving twice: refused, one command only.
        s.approve("press-1", rec.id, by="bob")
        self.assertIn("decided already", s.rejected("unknown_recommendation").detail)
        # A stored recommendation whose action is outside the model's range (a model made
        # stricter since, or a forged key): approving it is refused by the guardrail, audited.
        forged = s.pb.Recommendation(id="rec-forged", asset_id="weld-1",
                                     status=s.pb.Recommendation.OK, decision="advice",
                                     ts_ms=now, created_ms=now)
        forged.action.kind = "maintain"
        forged.action.asset_id = "weld-1"
        forged.action.duration_ms = 3 * HOUR_MS
        forged.action.label = "maintain for 3 h"
        s.r.set("twin:{weld-1}:recommendation", forged.SerializeToString())
        s.approve("weld-1", "rec-forged", by="alice")
        refused = s.recommendation("weld-1", lambda r: r.decision.startswith("refused"))
        self.assertIn("out_of_range", refused.decision)
        self.assertEqual(s.commands("weld-1"), [])
        last = s.audit()[-1]
        self.assertEqual((last["event"], last["asset"], last["by"]), ("refused", "weld-1", "alice"))
        self.assertIn("outside", last["reason"])
        # Unknown recommendation and bad approval.
        s.approve("press-2", "rec-nope")
        self.assertIn("current recommendation", s.rejected("unknown_recommendation", "rec-nope").detail)
        s.client.publish(f"{ROOT}/asset/press-1/approval", b"\x0a\x02id")
        self.assertIn("approved_by", s.rejected("undecodable", "approved_by").detail)


if __name__ == "__main__":
    th.main()
