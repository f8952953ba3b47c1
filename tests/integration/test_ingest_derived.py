# SPDX-License-Identifier: Apache-2.0
# Derived signals through the real stack: twin-ingest computes a kind's derived signals atomically with each update (state, history, TwinState's `changed`), keeps operator state across a restart, starts a changed expression's operators over, leaves late telemetry alone and refuses a device that sends a derived signal.
import json
import re

import ingestkit as ik
import twinharness as th
import twinutil as tu
from twinharness import TwinTestCase


T0 = 0  # set by stack()

PLANT = {
    "version": 1,
    "asset_kinds": {"meter": {"signals": {
        "volts": {"unit": "V"},
        "amps": {"unit": "A"},
        "pulses": {},
        "power": {"unit": "kW", "expr": "volts * amps / 1000"},
        "energy": {"unit": "kWh", "expr": "integral(power) / 3600"},
        "running_s": {"unit": "s", "expr": "time_in(amps > 1)"},
        "flow": {"expr": "delta(pulses, 1000)"},
        "volts_max": {"unit": "V", "expr": "max_over(volts, 1h)"},
        "overload": {"expr": "power > 2.5"},
    }}},
    "assets": {"m-1": {"kind": "meter"}},
}


def num(state, name):
    return float(state[name]) if name in state else None


class DerivedSignalsTest(TwinTestCase):

    def stack(self):
        global T0
        T0 = (tu.now_ms() // 1000 - 3600) * 1000  # device time of the first sample: 1 h ago
        path = self.h.dir / "plant.json"
        path.write_text(json.dumps(PLANT))
        return ik.IngestStack(self.h, workers=2, env={"TWIN_MODEL": str(path)})

    def test_derived_signals_follow_each_update_and_survive_a_restart(self):
        s = self.stack()
        watch = self.h.mqtt(s.broker, client_id="state-watch")
        watch.subscribe(ik.state_topic("m-1"), qos=1)
        # 230 V, 10 A for 60 s, then 20 A: power 2.3 then 4.6 kW.
        s.send("m-1", {"volts": 230.0, "amps": 10.0, "pulses": 990.0}, seq=1, ts_ms=T0)
        st = s.state("m-1")
        self.assertAlmostEqual(num(st, "power"), 2.3)
        self.assertEqual(num(st, "energy"), 0.0)
        self.assertEqual(num(st, "running_s"), 0.0)
        self.assertIsNone(num(st, "flow"))  # no previous count yet
        self.assertEqual(num(st, "overload"), 0.0)
        s.send("m-1", {"amps": 20.0, "pulses": 5.0}, seq=2, ts_ms=T0 + 60_000)
        st = s.state("m-1")
        self.assertAlmostEqual(num(st, "power"), 4.6)  # volts from the state, amps from this update
        self.assertAlmostEqual(num(st, "energy"), (2.3 + 4.6) / 2 * 60 / 3600)
        self.assertEqual(num(st, "running_s"), 60.0)
        self.assertEqual(num(st, "flow"), 15.0)  # 990 -> 5 wrapped at 1000
        self.assertEqual(num(st, "overload"), 1.0)
        self.assertEqual(num(st, "volts_max"), 230.0)
        # The TwinState lists what this update carried and what it derived.
        pb = th.load_proto()
        msg = th.wait_until(lambda: next((m for m in watch.messages()
                                          if pb.TwinState.FromString(m.payload).seq == 2), None),
                            10, what="the TwinState of seq 2")
        changed = set(pb.TwinState.FromString(msg.payload).changed)
        self.assertEqual(changed, {"amps", "pulses", "power", "energy", "running_s", "flow",
                                   "volts_max", "overload"})
        # History holds the derived values of each update.
        _, fields = s.history("m-1")[-1]
        self.assertAlmostEqual(float(dict(fields)["energy"]), num(st, "energy"))
        # A late sample (older seq inside the window... here unsequenced and older) goes to
        # history as sent and derives nothing.
        s.send("m-1", {"amps": 0.0}, seq=0, ts_ms=T0 + 30_000)
        self.assertEqual(s.state("m-1"), st)
        self.assertNotIn("power", dict(s.history("m-1")[-1][1]))
        # The operators' state lives in Redis: a new ingest process goes on where it was.
        self.assertEqual(s.ingest.stop(), 0)
        s.base_handled = s.sent  # the new process counts from 0
        s.ingest.start()
        s.send("m-1", {"amps": 0.5}, seq=3, ts_ms=T0 + 120_000)
        st = s.state("m-1")
        self.assertAlmostEqual(num(st, "energy"),
                               ((2.3 + 4.6) / 2 * 60 + (4.6 + 0.115) / 2 * 60) / 3600)
        self.assertEqual(num(st, "running_s"), 120.0)
        self.assertEqual(num(st, "overload"), 0.0)
        self.assertTrue(s.r.exists("twin:{m-1}:derived"))

    def test_a_changed_expression_starts_its_operator_over(self):
        s = self.stack()
        s.send("m-1", {"volts": 230.0, "amps": 10.0, "pulses": 990.0}, seq=1, ts_ms=T0)
        s.send("m-1", {"amps": 20.0, "pulses": 995.0}, seq=2, ts_ms=T0 + 60_000)
        self.assertEqual(num(s.state("m-1"), "flow"), 5.0)
        raw = s.redis.client(decode=False)  # the operator state is MessagePack
        key = re.compile(rb"flow#[0-9a-f]{8}")
        delta_key = key.search(raw.hget("twin:{m-1}:derived", "state")).group()
        # The model changes under a running plant: "flow" becomes an ewma (its delta's state
        # would break the ewma if fed to it), "energy" keeps its expression and its state,
        # "volts_max" goes away.
        plant = json.loads(json.dumps(PLANT))
        signals = plant["asset_kinds"]["meter"]["signals"]
        signals["flow"] = {"expr": "ewma(pulses, 1m)"}
        del signals["volts_max"]
        (self.h.dir / "plant.json").write_text(json.dumps(plant))
        self.assertEqual(s.ingest.stop(), 0)
        s.base_handled = s.sent
        s.ingest.start()
        s.send("m-1", {"amps": 20.0, "pulses": 1001.0}, seq=3, ts_ms=T0 + 120_000)
        st = s.state("m-1")
        self.assertEqual(num(st, "flow"), 1001.0)  # a new ewma starts at the value
        self.assertAlmostEqual(num(st, "energy"), (2.3 + 4.6) / 2 * 60 / 3600 + 4.6 * 60 / 3600)
        stored = raw.hget("twin:{m-1}:derived", "state")
        self.assertNotIn(b"volts_max", stored)
        self.assertEqual([k.group() != delta_key for k in key.finditer(stored)], [True])
        s.send("m-1", {"pulses": 1003.0}, seq=4, ts_ms=T0 + 180_000)
        self.assertGreater(num(s.state("m-1"), "flow"), 1001.0)

    def test_operator_state_stored_wrapped_by_an_older_ingest_goes_on(self):
        # An expression with one operator now stores that operator's state as it is; an older
        # ingest wrapped it as {state}, like the slots of an expression with several operators.
        plant = json.loads(json.dumps(PLANT))
        plant["asset_kinds"]["meter"]["signals"]["swing"] = {
            "unit": "V", "expr": "max_over(volts, 1h) - min_over(volts, 1h)"}
        s = self.stack()
        (self.h.dir / "plant.json").write_text(json.dumps(plant))
        self.assertEqual(s.ingest.stop(), 0)
        s.base_handled = s.sent
        s.ingest.start()
        s.send("m-1", {"volts": 230.0, "amps": 10.0, "pulses": 990.0}, seq=1, ts_ms=T0)
        self.assertEqual(num(s.state("m-1"), "swing"), 0.0)
        # Rewrite the stored state as the older layout had it.
        rewrap = """
            local S = cmsgpack.unpack(redis.call('HGET', KEYS[1], 'state'))
            local n = 0
            for k, v in pairs(S) do
                if type(v[1]) ~= 'table' then S[k] = {v}; n = n + 1 end
            end
            redis.call('HSET', KEYS[1], 'state', cmsgpack.pack(S))
            return n"""
        self.assertEqual(s.r.eval(rewrap, 1, "twin:{m-1}:derived"), 4)  # all but swing
        s.send("m-1", {"volts": 240.0, "amps": 20.0, "pulses": 995.0}, seq=2, ts_ms=T0 + 60_000)
        st = s.state("m-1")
        self.assertAlmostEqual(num(st, "energy"), (2.3 + 4.8) / 2 * 60 / 3600)
        self.assertEqual(num(st, "flow"), 5.0)
        self.assertEqual(num(st, "running_s"), 60.0)
        self.assertEqual(num(st, "volts_max"), 240.0)
        self.assertEqual(num(st, "swing"), 10.0)
        # and it is stored in the new layout again
        self.assertEqual(s.r.eval(rewrap, 1, "twin:{m-1}:derived"), 4)

    def test_a_device_may_not_send_a_derived_signal(self):
        s = self.stack()
        pb = th.load_proto()
        mark = s.rejects.count(ik.REJECTED_TOPIC)
        s.send("m-1", {"volts": 230.0, "power": 99.0}, seq=1, ts_ms=T0)
        rej = pb.Rejected.FromString(
            s.rejects.wait_message(ik.REJECTED_TOPIC, start=mark, timeout=5).payload)
        self.assertEqual(rej.reason, "bad_signal")
        self.assertIn('signal "power" is derived', rej.detail)
        self.assertEqual(s.state("m-1"), {})

    def test_an_expression_that_fails_at_run_time_stores_nothing_for_it(self):
        s = self.stack()
        # amps 0: power 0, and nothing divides by it; volts missing: power has no value.
        s.send("m-1", {"amps": 3.0}, seq=1, ts_ms=T0)
        st = s.state("m-1")
        self.assertNotIn("power", st)
        self.assertEqual(num(st, "running_s"), 0.0)
        self.assertEqual(num(st, "amps"), 3.0)


if __name__ == "__main__":
    th.main()
