# SPDX-License-Identifier: Apache-2.0
# twin-predictor under faults: kill -9 (learning continues from the stored state and the history written since), warm start from history, Redis down while predicting.
import math
import time

import predkit as pk
import twinharness as th
from twinharness import TwinTestCase

T0 = 1_700_000_000_000
STEP = 60_000
MODEL = pk.plant_model({"pump": {"flow": {"unit": "m3/h", "season_samples": 24}}},
                       {"pump-1": "pump"})


def value(i):
    return 120.0 + 6.0 * math.sin(2 * math.pi * i / 24) + 0.5 * math.sin(5.1 * i)


def stream(s, start, count):
    ts = [T0 + i * STEP for i in range(start, start + count)]
    s.stream("pump-1", "flow", ts, [value(i) for i in range(start, start + count)],
             first_seq=start + 1, new_signal=start == 0)
    return ts[-1]


def quality_n(s, basis):
    return s.forecast(s.wait_prediction("pump-1", basis), "flow").quality.n


class PredictorFaultTest(TwinTestCase):

    def test_kill9_loses_no_learning_beyond_the_last_persist(self):
        s = pk.PredictorStack(self.h, model=MODEL, env={"TWIN_PREDICTOR_PERSIST_MS": 300})
        last = stream(s, 0, 80)
        self.assertEqual(quality_n(s, last), 79)
        th.wait_until(lambda: s.stored_models("pump-1").get("flow") and
                      s.stored_models("pump-1")["flow"].basis_ts_ms == last, 10,
                      what="model state persisted up to the last sample")
        persisted = s.stored_models("pump-1")["flow"]
        s.predictor.kill9()
        s.predictor.start()  # same instance, same persistent session
        # The next sample continues the record: n grows from where it was persisted.
        last = stream(s, 80, 20)
        self.assertEqual(quality_n(s, last), 99)
        self.assertGreater(s.predictor.metric('twin_predictor_restored_signals_total{from="model"}'), 0)
        after = s.stored_models("pump-1")["flow"]
        self.assertEqual(after.format, persisted.format)

    def test_kill9_before_a_persist_catches_up_from_the_history_stream(self):
        s = pk.PredictorStack(self.h, model=MODEL, env={"TWIN_PREDICTOR_PERSIST_MS": 300})
        stream(s, 0, 40)
        s.predictor.stop()  # SIGTERM writes everything: the stored state has 40 samples
        instance = s.predictor.instance
        stored = s.stored_models("pump-1")["flow"].basis_ts_ms
        self.assertEqual(stored, T0 + 39 * STEP)
        # The same instance, now never persisting on its own: 10 more samples, then kill -9.
        s.start_predictor(env={"TWIN_PREDICTOR_PERSIST_MS": 600000}, instance=instance)
        last = stream(s, 40, 10)
        self.assertEqual(quality_n(s, last), 49)
        s.predictor.kill9()
        self.assertEqual(s.stored_models("pump-1")["flow"].basis_ts_ms, stored)
        # Restarted: the stored state (40 samples) plus the 10 from history, then one more.
        s.start_predictor(instance=instance)
        last = stream(s, 50, 1)
        self.assertEqual(quality_n(s, last), 50)
        th.wait_until(lambda: "event=catch_up" in s.predictor.log_text(), 10,
                      what="the catch-up to be logged")

    def test_without_stored_model_learning_restarts_from_the_history_stream(self):
        s = pk.PredictorStack(self.h, model=MODEL)
        last = stream(s, 0, 60)
        s.predictor.stop()
        s.r.delete(pk.model_key("pump-1"))
        s.predictor.start()
        last = stream(s, 60, 1)
        # All 61 history entries were learnt (60 at warm start, then the new one).
        self.assertEqual(quality_n(s, last), 60)
        self.assertGreater(
            s.predictor.metric('twin_predictor_restored_signals_total{from="history"}'), 0)

    def test_predictions_continue_while_redis_is_down_and_state_is_written_after(self):
        s = pk.PredictorStack(self.h, model=MODEL, env={"TWIN_PREDICTOR_PERSIST_MS": 200,
                                                        "TWIN_REDIS_TIMEOUT_MS": 300})
        last = stream(s, 0, 30)
        th.wait_until(lambda: s.stored_models("pump-1"), 10, what="first persist")
        # Redis stops answering: ingest holds telemetry back, so feed the predictor directly
        # with TwinStates as ingest would publish them.
        s.redis.pause()
        try:
            for i in range(30, 40):
                st = s.pb.TwinState(asset_id="pump-1", ts_ms=T0 + i * STEP, seq=i + 1,
                                    changed=["flow"])
                st.samples.add(signal="flow", value=value(i))
                s.pub.publish(f"{pk.ROOT}/asset/pump-1/state", st.SerializeToString(), qos=1)
                last = T0 + i * STEP
                self.assertEqual(quality_n(s, last), i)
            time.sleep(0.5)
        finally:
            s.redis.resume()
        th.wait_until(lambda: s.stored_models("pump-1")["flow"].basis_ts_ms == last, 20,
                      what="model state written once Redis is back")
        self.assertTrue(s.predictor.running)


if __name__ == "__main__":
    th.main()
