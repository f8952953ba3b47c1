# SPDX-License-Identifier: Apache-2.0
# twin-ingest's apply semantics: duplicates, late and stale sequence numbers, unsequenced telemetry and exact uint64 seq.
import ingestkit as ik
import twinharness as th
from twinharness import TwinTestCase, now_ms

W = 1024  # the default replay window


class IngestSemanticsTest(TwinTestCase):

    def stack(self, **env):
        return ik.IngestStack(self.h, env=env)

    def test_duplicate_seq_is_dropped_and_counted(self):
        s = self.stack()
        s.send("a1", {"temp": 1.0}, seq=1)
        s.send("a1", {"temp": 2.0}, seq=2)
        s.send("a1", {"temp": 99.0}, seq=2)   # same seq again, other content
        s.send("a1", {"temp": 98.0}, seq=1)   # below the top and seen
        t = s.totals()
        self.assertEqual((t["applied"], t["duplicate"], t["late"], t["stale"]), (2, 2, 0, 0))
        self.assertEqual(s.history_seqs("a1"), [1, 2])
        state = s.state("a1")
        self.assertEqual((state["temp"], state["_seq"]), ("2", "2"))

    def test_late_seq_is_appended_to_history_but_leaves_state(self):
        s = self.stack()
        sub = self.h.mqtt(s.broker)
        sub.subscribe(ik.state_topic("a1"))
        ts10, ts7 = now_ms() - 1000, now_ms() - 5000
        s.send("a1", {"temp": 10.0}, seq=10, ts_ms=ts10)
        s.send("a1", {"temp": 7.0, "rpm": 70.0}, seq=7, ts_ms=ts7)
        t = s.totals()
        self.assertEqual((t["applied"], t["late"], t["duplicate"]), (1, 1, 0))
        hist = s.history("a1")
        self.assertEqual([dict(f)["seq"] for _, f in hist], ["10", "7"])
        self.assertEqual(hist[1][1], [("ts_ms", str(ts7)), ("seq", "7"), ("temp", "7"),
                                      ("rpm", "70")])
        self.assertEqual(s.state("a1"), {"temp": "10", "_seq": "10", "_ts_ms": str(ts10),
                                         "_ingest_ms": s.state("a1")["_ingest_ms"],
                                         "_changed": "temp"})
        last = th.load_proto().TwinState.FromString(sub.messages(ik.state_topic("a1"))[-1].payload)
        self.assertEqual(last.seq, 10)
        s.send("a1", {"temp": 7.5}, seq=7)  # a late one is remembered too
        self.assertEqual(s.totals()["duplicate"], 1)
        self.assertEqual(s.history_seqs("a1"), [10, 7])

    def test_late_inside_window_and_stale_below_it(self):
        s = self.stack()
        top = 5000
        s.send("a1", {"temp": 1.0}, seq=top)
        s.send("a1", {"temp": 2.0}, seq=top - (W - 1))  # oldest inside the window: late
        s.send("a1", {"temp": 3.0}, seq=top - (W + 1))  # below the window: stale
        s.send("a1", {"temp": 4.0}, seq=1)
        t = s.totals()
        self.assertEqual((t["applied"], t["late"], t["stale"], t["duplicate"]), (1, 1, 2, 0))
        self.assertEqual(s.history_seqs("a1"), [top, top - (W - 1)])
        self.assertEqual(s.state("a1")["temp"], "1")
        self.assertEqual(s.state("a1")["_seq"], str(top))

    def test_replay_window_setting_sets_the_late_stale_boundary(self):
        s = self.stack(TWIN_INGEST_REPLAY_WINDOW=64)
        s.send("a1", {"temp": 1.0}, seq=100)
        s.send("a1", {"temp": 2.0}, seq=100 - 63)
        s.send("a1", {"temp": 3.0}, seq=100 - 65)
        t = s.totals()
        self.assertEqual((t["late"], t["stale"]), (1, 1))
        self.assertEqual(s.history_seqs("a1"), [100, 37])

    def test_window_slide_does_not_mistake_unseen_seq_for_duplicate(self):
        s = self.stack()
        for seq in range(1, 11):
            s.send("a1", {"temp": float(seq)}, seq=seq, settle=False)
            s.settle()
        s.send("a1", {"temp": 1030.0}, seq=1030)  # slides by less than W
        s.send("a1", {"temp": 1026.0}, seq=1026)  # never seen: late, not duplicate
        s.send("a1", {"temp": 9.0}, seq=9)        # seen, still inside: duplicate
        s.send("a2", {"temp": 1.0}, seq=3)
        s.send("a2", {"temp": 2.0}, seq=3 + 5 * W)  # jumps beyond the window
        s.send("a2", {"temp": 3.0}, seq=3 + 4 * W + 1)  # inside the new window, unseen
        t = s.totals()
        self.assertEqual((t["applied"], t["late"], t["duplicate"], t["stale"]), (13, 2, 1, 0))
        self.assertEqual(s.history_seqs("a1"), list(range(1, 11)) + [1030, 1026])
        self.assertEqual(s.history_seqs("a2"), [3, 3 + 5 * W, 3 + 4 * W + 1])

    def test_out_of_order_arrival_converges_to_highest_seq(self):
        s = self.stack()
        s.send("a1", {"temp": 3.0, "rpm": 30.0}, seq=3)
        s.send("a1", {"temp": 1.0, "rpm": 10.0}, seq=1)
        s.send("a1", {"temp": 2.0, "rpm": 20.0}, seq=2)
        state = s.state("a1")
        self.assertEqual((state["temp"], state["rpm"], state["_seq"]), ("3", "30", "3"))
        self.assertEqual(sorted(s.history_seqs("a1")), [1, 2, 3])
        self.assertEqual(s.totals()["late"], 2)

    def test_unsequenced_updates_state_only_when_not_older(self):
        s = self.stack()
        t0 = now_ms() - 60_000
        s.send("a1", {"temp": 1.0}, seq=5, ts_ms=t0)
        s.send("a1", {"temp": 2.0}, seq=0, ts_ms=t0 - 1000)   # older: history only
        state = s.state("a1")
        self.assertEqual((state["temp"], state["_seq"], state["_ts_ms"]), ("1", "5", str(t0)))
        s.send("a1", {"temp": 3.0}, seq=0, ts_ms=t0)          # same time: not older
        state = s.state("a1")
        self.assertEqual((state["temp"], state["_seq"], state["_ts_ms"]), ("3", "5", str(t0)))
        s.send("a1", {"temp": 4.0}, seq=0, ts_ms=t0 + 1000)   # newer
        s.send("a1", {"temp": 4.0}, seq=0, ts_ms=t0 + 1000)   # unsequenced: no dedup
        state = s.state("a1")
        self.assertEqual((state["temp"], state["_seq"], state["_ts_ms"]),
                         ("4", "5", str(t0 + 1000)))
        hist = s.history("a1")
        self.assertEqual([(dict(f)["seq"], dict(f)["ts_ms"], dict(f)["temp"]) for _, f in hist],
                         [("5", str(t0), "1"), ("0", str(t0 - 1000), "2"), ("0", str(t0), "3"),
                          ("0", str(t0 + 1000), "4"), ("0", str(t0 + 1000), "4")])
        s.send("a1", {"temp": 6.0}, seq=6, ts_ms=t0 + 2000)   # sequencing continues from 5
        self.assertEqual((s.state("a1")["temp"], s.state("a1")["_seq"]), ("6", "6"))
        t = s.totals()
        self.assertEqual((t["duplicate"], t["stale"]), (0, 0))

    def test_unsequenced_first_message_does_not_block_sequenced_ones(self):
        s = self.stack()
        s.send("a1", {"temp": 1.0}, seq=0)
        self.assertEqual(s.state("a1")["temp"], "1")
        self.assertIn(s.state("a1").get("_seq"), (None, "0"))
        s.send("a1", {"temp": 2.0}, seq=1)
        self.assertEqual((s.state("a1")["temp"], s.state("a1")["_seq"]), ("2", "1"))
        self.assertEqual(s.history_seqs("a1"), [0, 1])

    def test_uint64_seq_above_2_pow_53_is_compared_and_stored_exactly(self):
        s = self.stack()
        sub = self.h.mqtt(s.broker)
        sub.subscribe(ik.state_topic("a1"))
        big = [2 ** 53, 2 ** 53 + 1, 2 ** 64 - 1, 2 ** 64 - 2]
        s.send("a1", {"v": 1.0}, seq=big[0])
        self.assertEqual(s.state("a1")["_seq"], "9007199254740992")
        s.send("a1", {"v": 2.0}, seq=big[1])  # equal to 2^53 as a double
        self.assertEqual(s.state("a1")["_seq"], "9007199254740993")
        self.assertEqual(s.state("a1")["v"], "2")
        s.send("a1", {"v": 2.5}, seq=big[1])
        s.send("a1", {"v": 3.0}, seq=big[2])
        self.assertEqual(s.state("a1")["_seq"], "18446744073709551615")
        s.send("a1", {"v": 4.0}, seq=big[3])  # one below the top: late
        s.send("a1", {"v": 4.5}, seq=big[3])
        self.assertEqual(s.state("a1")["_seq"], "18446744073709551615")
        self.assertEqual(s.state("a1")["v"], "3")
        self.assertEqual(s.history_seqs("a1"), big)
        t = s.totals()
        self.assertEqual((t["applied"], t["late"], t["duplicate"], t["stale"]), (3, 1, 2, 0))
        states = []  # distinct updates, in order (a settle republish repeats the newest)
        for m in sub.messages(ik.state_topic("a1")):
            st = th.load_proto().TwinState.FromString(m.payload)
            if (st.seq, st.ingest_ms) not in states:
                states.append((st.seq, st.ingest_ms))
        self.assertEqual([seq for seq, _ in states], big[:3])
        # The other order: 2^53+1 first, then 2^53 is late (not a duplicate).
        s.send("a2", {"v": 1.0}, seq=2 ** 53 + 1)
        s.send("a2", {"v": 2.0}, seq=2 ** 53)
        self.assertEqual(s.history_seqs("a2"), [2 ** 53 + 1, 2 ** 53])
        self.assertEqual(s.totals()["late"], 2)

    def test_applied_counter_counts_each_state_change(self):
        s = self.stack()
        for seq in range(1, 21):
            s.send(f"a{seq % 3}", {"temp": float(seq)}, seq=seq)
        t = s.totals()
        self.assertEqual((t["received"], t["applied"], t["late"], t["duplicate"]), (20, 20, 0, 0))
        m = s.ingest.metrics()
        self.assertEqual(m["twin_ingest_state_published_total"], 20)
        self.assertEqual(m["twin_ingest_apply_seconds_count"], 20)
        self.assertEqual(m["twin_ingest_handle_seconds_count"], 20)


if __name__ == "__main__":
    th.main()
