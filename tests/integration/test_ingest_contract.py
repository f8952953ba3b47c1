# SPDX-License-Identifier: Apache-2.0
# twin-ingest's public contract: telemetry in, Redis state/history/asset set and the retained TwinState out, as DESIGN.md fixes them.
import math
import struct

import ingestkit as ik
import twinharness as th
from twinharness import TwinTestCase, now_ms


def bits(x):
    return struct.pack("<d", x)


class IngestContractTest(TwinTestCase):

    def setUp(self):
        super().setUp()
        self.pb = th.load_proto()
        self.s = ik.IngestStack(self.h)

    def twin_state(self, msg):
        st = self.pb.TwinState.FromString(msg.payload)
        return st, {s.signal: s.value for s in st.samples}

    def test_telemetry_lands_in_state_history_and_asset_set(self):
        ts = now_ms() - 1500
        before = now_ms()
        self.s.send("press-1", [("temp", 21.5), ("rpm", 1500.0)], seq=1, ts_ms=ts)
        after = now_ms()
        state = self.s.state("press-1")
        self.assertEqual(state["temp"], "21.5")
        self.assertEqual(state["rpm"], "1500")
        self.assertEqual(state["_seq"], "1")
        self.assertEqual(state["_ts_ms"], str(ts))
        self.assertTrue(before <= int(state["_ingest_ms"]) <= after,
                        f"_ingest_ms {state['_ingest_ms']} not in [{before}, {after}]")
        self.assertEqual(set(state), {"temp", "rpm", "_seq", "_ts_ms", "_ingest_ms", "_changed"})
        self.assertEqual(state["_changed"], "temp,rpm")
        self.assertTrue(self.s.r.sismember("twin:assets", "press-1"))
        hist = self.s.history("press-1")
        self.assertEqual(len(hist), 1)
        self.assertEqual(hist[0][1], [("ts_ms", str(ts)), ("seq", "1"), ("temp", "21.5"),
                                      ("rpm", "1500")])

    def test_every_applied_message_is_one_history_entry_in_order(self):
        ts0 = now_ms() - 10_000
        for seq in range(1, 6):
            self.s.send("press-1", {"temp": float(seq)}, seq=seq, ts_ms=ts0 + seq)
        hist = self.s.history("press-1")
        self.assertEqual([dict(f)["seq"] for _, f in hist], ["1", "2", "3", "4", "5"])
        self.assertEqual([dict(f)["ts_ms"] for _, f in hist], [str(ts0 + i) for i in range(1, 6)])
        self.assertEqual(self.s.state("press-1")["temp"], "5")
        self.assertEqual(self.s.r.smembers("twin:assets"), {"press-1"})

    VALUES = [0.1, 1e300, -0.0, 5e-324, 1 / 3, -1.7976931348623157e308,
              2.2250738585072014e-308, 123456789.12345679, 0.0, -42.0, 2.0 ** 53 + 2]

    def test_values_are_stored_as_exact_17_digit_text_and_round_trip(self):
        samples = [(f"v{i}", v) for i, v in enumerate(self.VALUES)]
        self.s.send("press-1", samples, seq=1)
        state = self.s.state("press-1")
        hist = dict(self.s.history("press-1")[0][1])
        self.assertEqual(state["v0"], "0.10000000000000001")
        self.assertEqual(state["v1"], "1.0000000000000001e+300")
        self.assertEqual(state["v2"], "-0")
        self.assertEqual(math.copysign(1.0, float(state["v2"])), -1.0)
        for name, v in samples:
            with self.subTest(value=repr(v)):
                self.assertEqual(state[name], "%.17g" % v)
                self.assertEqual(hist[name], "%.17g" % v)
                self.assertEqual(bits(float(state[name])), bits(v), state[name])

    def test_twin_state_values_are_bit_exact_including_negative_zero(self):
        samples = [(f"v{i}", v) for i, v in enumerate(self.VALUES)]
        sub = self.h.mqtt(self.s.broker)
        sub.subscribe(ik.state_topic("press-1"))
        self.s.send("press-1", samples, seq=1)
        values = self.twin_state(sub.wait_message(ik.state_topic("press-1")))[1]
        for name, v in samples:
            with self.subTest(value=repr(v)):
                self.assertEqual(bits(values[name]), bits(v),
                                 f"TwinState carries {values[name]!r} for {v!r}")

    def test_retained_state_is_merged_across_partial_updates(self):
        topic = ik.state_topic("press-1")
        sub = self.h.mqtt(self.s.broker)
        sub.subscribe(topic)
        ts1, ts2 = now_ms() - 2000, now_ms() - 1000
        self.s.send("press-1", {"temp": 20.5}, seq=1, ts_ms=ts1)
        first, values1 = self.twin_state(sub.wait_message(topic))
        self.assertEqual(values1, {"temp": 20.5})
        self.assertEqual(list(first.changed), ["temp"])
        self.s.send("press-1", {"rpm": 1200.0}, seq=2, ts_ms=ts2)
        second, values2 = self.twin_state(sub.wait_message(topic, start=1))
        self.assertEqual(second.asset_id, "press-1")
        self.assertEqual(second.seq, 2)
        self.assertEqual(second.ts_ms, ts2)
        self.assertEqual(str(second.ingest_ms), self.s.state("press-1")["_ingest_ms"])
        self.assertEqual(values2, {"temp": 20.5, "rpm": 1200.0})
        self.assertEqual(list(second.changed), ["rpm"])
        # One TwinState per applied message; a settle republish (two updates within 25 ms)
        # repeats the newest exactly, so count distinct updates.
        updates = {(st.seq, st.ingest_ms) for st in
                   (self.twin_state(m)[0] for m in sub.messages(topic))}
        self.assertEqual(len(updates), 2, "one TwinState per applied message")

        late = self.h.mqtt(self.s.broker)
        late.subscribe(topic)
        msg = late.wait_message(topic, timeout=5)
        self.assertTrue(msg.retain, "the state message must be retained")
        retained, values = self.twin_state(msg)
        self.assertEqual(values, {"temp": 20.5, "rpm": 1200.0})
        self.assertEqual(retained.seq, 2)
        self.assertEqual(list(retained.changed), ["rpm"])

    def test_ts_zero_means_ingest_clock(self):
        topic = ik.state_topic("press-1")
        sub = self.h.mqtt(self.s.broker)
        sub.subscribe(topic)
        before = now_ms()
        self.s.send("press-1", {"temp": 1.0}, seq=1, ts_ms=0)
        after = now_ms()
        state = self.s.state("press-1")
        self.assertTrue(before <= int(state["_ts_ms"]) <= after,
                        f"_ts_ms {state['_ts_ms']} not in [{before}, {after}]")
        self.assertEqual(dict(self.s.history("press-1")[0][1])["ts_ms"], state["_ts_ms"])
        st, _ = self.twin_state(sub.wait_message(topic))
        self.assertEqual(str(st.ts_ms), state["_ts_ms"])

    def test_empty_asset_id_means_the_topic_asset(self):
        sub = self.h.mqtt(self.s.broker)
        sub.subscribe(ik.state_topic("press-2"))
        self.s.send("press-2", {"temp": 7.0}, seq=1, asset_id="")
        self.assertEqual(self.s.state("press-2")["temp"], "7")
        st, _ = self.twin_state(sub.wait_message(ik.state_topic("press-2")))
        self.assertEqual(st.asset_id, "press-2")
        self.s.send("press-3", {"temp": 8.0}, seq=1, asset_id="press-3")
        self.assertEqual(self.s.state("press-3")["temp"], "8")
        self.assertEqual(self.s.r.smembers("twin:assets"), {"press-2", "press-3"})
        self.assertEqual(self.s.totals()["applied"], 2)

    def test_assets_are_independent(self):
        self.s.send("press-1", {"temp": 1.0}, seq=5)
        self.s.send("press-2", {"temp": 2.0}, seq=1)
        self.assertEqual(self.s.state("press-1")["_seq"], "5")
        self.assertEqual(self.s.state("press-2")["_seq"], "1")
        self.assertEqual(self.s.state("press-2")["temp"], "2")
        self.assertEqual(self.s.totals()["applied"], 2)

    def test_names_at_the_edge_of_the_alphabet_are_accepted(self):
        asset = "A" * 60 + ".b_-"
        signal = "Az09._:/-" + "s" * 55
        self.assertEqual((len(asset), len(signal)), (64, 64))
        self.s.send(asset, {signal: 3.5}, seq=1)
        self.assertEqual(self.s.state(asset)[signal], "3.5")

    def test_status_topic_is_retained_online_while_running(self):
        watcher = self.h.mqtt(self.s.broker)
        watcher.subscribe(self.s.ingest.status_topic)
        msg = watcher.wait_message(self.s.ingest.status_topic, timeout=5)
        self.assertEqual(msg.payload, b"online")
        self.assertTrue(msg.retain)


if __name__ == "__main__":
    th.main()
