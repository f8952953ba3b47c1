# SPDX-License-Identifier: Apache-2.0
# twin-predictor's public contract: retained Prediction and its Redis copy, model state in Redis, Alerts with episodes, changed-only learning, bad input, settings.
import math

import ingestkit as ik
import predkit as pk
import twinharness as th
from twinharness import TwinTestCase

T0 = 1_700_000_000_000
STEP = 60_000
MODEL = pk.plant_model(
    {"press": {"temp": {"unit": "degC", "warn": {"above": 70}, "alarm": {"above": 90},
                        "season_samples": 12},
               "load": {"unit": "kN"}}},
    {"press-1": "press", "press-2": "press"})


def wave(i):
    return 50.0 + 5.0 * math.sin(2 * math.pi * i / 12) + 0.3 * math.sin(7.3 * i)


class PredictorContractTest(TwinTestCase):

    def test_prediction_is_retained_stored_and_names_its_model_and_quality(self):
        s = pk.PredictorStack(self.h, model=MODEL, env={"TWIN_PREDICTOR_HORIZON": "12steps",
                                                        "TWIN_PREDICTOR_POINTS": 6})
        n = 60
        ts = [T0 + i * STEP for i in range(n)]
        s.stream("press-1", "temp", ts, [wave(i) for i in range(n)])
        p = s.wait_prediction("press-1", ts[-1])
        self.assertEqual(p.asset_id, "press-1")
        self.assertEqual(p.basis_ts_ms, ts[-1])
        f = s.forecast(p, "temp")
        self.assertEqual(len(f.points), 6)
        self.assertEqual([pt.ts_ms for pt in f.points], [ts[-1] + k * 2 * STEP for k in range(1, 7)])
        for pt in f.points:
            self.assertTrue(pt.lo <= pt.mean <= pt.hi)
            self.assertLess(abs(pt.mean - 50.0), 10.0)
        self.assertIn(f.model, {"naive", "snaive", "hw_add", "hw_mult", "holt", "ar", "grey"})
        self.assertEqual(f.quality.n, n - 1)
        # Every sample learnt once: ingest's settle republishes (same state again) are not.
        self.assertEqual(s.predictor.metric("twin_predictor_updates_total"), n)
        self.assertGreater(f.quality.mae, 0.0)
        self.assertGreaterEqual(f.quality.rmse, f.quality.mae)
        self.assertLess(f.quality.mase, 1.0)  # a 12-step season: better than the last value
        self.assertTrue(0.0 < f.quality.coverage <= 1.0)
        # Retained for late subscribers, and the same message in Redis.
        late = self.h.mqtt(s.broker, client_id="late-dashboard")
        late.subscribe(pk.prediction_topic("press-1"))
        m = late.wait_message(pk.prediction_topic("press-1"), lambda m: m.retain, timeout=10)
        self.assertEqual(s.pb.Prediction.FromString(m.payload).basis_ts_ms, ts[-1])
        th.wait_until(lambda: s.stored_prediction("press-1").basis_ts_ms == ts[-1], 10,
                      what="twin:{press-1}:prediction to hold the last Prediction")
        # Model state persisted per signal (protobuf SignalModelState).
        models = th.wait_until(lambda: s.stored_models("press-1"), 10, what="model state")
        self.assertEqual(set(models), {"temp"})
        self.assertEqual(models["temp"].basis_ts_ms, ts[-1])
        self.assertGreater(len(models["temp"].state), 100)

    def test_only_signals_listed_as_changed_are_learnt(self):
        s = pk.PredictorStack(self.h, model=MODEL)
        seq = 0
        for i in range(10):
            seq += 1
            s.pub.publish(ik.telemetry_topic("press-2"),
                          th.telemetry({"temp": wave(i), "load": 5.0 + i}, seq=seq,
                                       ts_ms=T0 + i * STEP), qos=1)
        s.wait_prediction("press-2", T0 + 9 * STEP)
        for i in range(10, 20):  # load only: temp stays in the TwinState but is not "changed"
            seq += 1
            s.send_value("press-2", "load", T0 + i * STEP, 5.0 + i, seq)
        p = s.wait_prediction("press-2", T0 + 19 * STEP)
        self.assertEqual(s.forecast(p, "load").quality.n, 19)
        self.assertEqual(s.forecast(p, "temp").quality.n, 9)
        self.assertEqual(s.forecast(p, "temp").points[0].ts_ms, T0 + 10 * STEP)

    def test_breach_is_one_episode_with_cleared(self):
        s = pk.PredictorStack(self.h, model=MODEL)
        values = [wave(i) for i in range(30)] + [95.0, 96.0] + [wave(i) for i in range(32, 40)]
        ts = [T0 + i * STEP for i in range(len(values))]
        s.stream("press-1", "temp", ts, values)
        kind = s.pb.Alert
        breach = s.wait_alert("press-1", lambda a: a.kind == kind.THRESHOLD_BREACH)
        self.assertEqual(breach.signal, "temp")
        self.assertEqual(breach.severity, kind.CRITICAL)
        self.assertEqual(breach.ts_ms, ts[30])
        self.assertEqual(breach.value, 95.0)
        self.assertEqual(breach.threshold, 90.0)
        cleared = s.wait_alert("press-1", lambda a: a.kind == kind.CLEARED and "limits" in a.message)
        self.assertGreater(cleared.ts_ms, ts[31])
        kinds = [a.kind for a in s.alerts("press-1")]
        self.assertEqual(kinds.count(kind.THRESHOLD_BREACH), 1)
        # The jump is also an anomaly on the forecast residuals, one episode.
        self.assertEqual(kinds.count(kind.ANOMALY), 1)
        self.assertGreater(s.predictor.metric('twin_predictor_alerts_total{kind="threshold_breach"}'), 0)

    def test_bad_state_payloads_are_rejected_and_the_service_lives_on(self):
        s = pk.PredictorStack(self.h, model=MODEL)
        mark = s.watch.count(pk.REJECTED_TOPIC)
        s.pub.publish(f"{pk.ROOT}/asset/press-1/state", b"\xff\xff\xff\xff", qos=1)
        rej = s.pb.Rejected.FromString(
            s.watch.wait_message(pk.REJECTED_TOPIC, start=mark, timeout=10).payload)
        self.assertEqual(rej.reason, "undecodable")
        self.assertEqual(rej.payload_head, b"\xff\xff\xff\xff")
        bad_value = s.pb.TwinState(asset_id="press-1", ts_ms=T0, seq=1, changed=["temp"])
        bad_value.samples.add(signal="temp", value=float("nan"))
        s.pub.publish(f"{pk.ROOT}/asset/press-1/state", bad_value.SerializeToString(), qos=1)
        other = s.pb.TwinState(asset_id="press-2", ts_ms=T0, seq=1, changed=["temp"])
        other.samples.add(signal="temp", value=1.0)
        s.pub.publish(f"{pk.ROOT}/asset/press-1/state", other.SerializeToString(), qos=1)
        th.wait_until(lambda: s.watch.count(pk.REJECTED_TOPIC) >= mark + 2, 10,
                      what="two more Rejected")
        s.stream("press-1", "temp", [T0 + STEP * k for k in range(1, 4)], [1.0, 2.0, 3.0])
        self.assertTrue(s.predictor.running)

    def test_bad_settings_exit_2_with_a_reason(self):
        for args in (["--horizon", "soon"], ["--points", "0"], ["--no-such-flag"]):
            res = self.h.run("twin-predictor", args + ["--check-config"], timeout=10)
            self.assertEqual(res.returncode, 2, args)
            self.assertTrue(res.stderr.strip(), args)
        res = self.h.run("twin-predictor", ["--help"], timeout=10)
        self.assertEqual(res.returncode, 0)
        for name in ("TWIN_PREDICTOR_HORIZON", "TWIN_PREDICTOR_PUBLISH_MS",
                     "TWIN_PREDICTOR_PERSIST_MS", "TWIN_MODEL"):
            self.assertIn(name, res.stdout if isinstance(res.stdout, str) else res.stdout.decode())


if __name__ == "__main__":
    th.main()
