# SPDX-License-Identifier: Apache-2.0
# twin-ingest's handling of bad input: every case is rejected whole with a Rejected message and a counter, state is untouched, and ingest keeps working.
import struct

import ingestkit as ik
import twinharness as th
from twinharness import TwinTestCase, Wire, now_ms

MAX_PAYLOAD = 1024
MAX_SAMPLES = 16
MINUTE_MS = 60_000
DAY_MS = 24 * 60 * MINUTE_MS
GOOD_ASSET = "press-1"


def telemetry_of_size(size, seq):
    """A valid Telemetry of exactly `size` bytes with at most MAX_SAMPLES samples."""
    ts = now_ms()
    for count in range(1, MAX_SAMPLES + 1):
        head = [(f"n{i:02d}".ljust(64, "x"), float(i)) for i in range(count - 1)]
        for last_len in range(1, 65):
            payload = th.telemetry(head + [("z" * last_len, 0.5)], seq=seq, ts_ms=ts)
            if len(payload) == size:
                return payload
    raise ValueError(f"cannot build a telemetry of {size} bytes")


class BadInputTest(TwinTestCase):
    """Each test starts ingest with MAX_PAYLOAD 1024 and MAX_SAMPLES 16 and a known state of
    press-1 (seq 1), feeds bad messages, and ends by checking that a good message still
    applies and that no worker process died."""

    ENV = {"TWIN_INGEST_MAX_PAYLOAD": MAX_PAYLOAD, "TWIN_INGEST_MAX_SAMPLES": MAX_SAMPLES}

    def setUp(self):
        super().setUp()
        self.pb = th.load_proto()
        self.s = ik.IngestStack(self.h, env=self.ENV)
        self.next_seq = {GOOD_ASSET: 1}
        self.s.send(GOOD_ASSET, {"temp": 1.0, "rpm": 2.0}, seq=1)
        self.workers = self.s.ingest.children("ingest-w")
        self.assertEqual(len(self.workers), 4, "ingest runs 4 worker processes by default")

    def seq(self, asset=GOOD_ASSET):
        self.next_seq[asset] = self.next_seq.get(asset, 0) + 1
        return self.next_seq[asset]

    def snapshot(self, asset):
        return (self.s.state(asset), self.s.history_len(asset), self.s.r.smembers("twin:assets"),
                self.s.r.get(f"twin:{{{asset}}}:replay"))

    def assert_rejected(self, payload, reason, topic=None, asset=GOOD_ASSET):
        """Publishes payload and checks the whole rejection contract; returns the Rejected."""
        topic = topic or ik.telemetry_topic(asset)
        before = self.snapshot(asset)
        counter = self.s.ingest.metric(ik.rejected_series(reason))
        mark = self.s.rejects.count(ik.REJECTED_TOPIC)
        self.s.send_raw(topic, payload)
        msg = self.s.rejects.wait_message(
            ik.REJECTED_TOPIC, start=mark, timeout=5,
            predicate=lambda m: self.pb.Rejected.FromString(m.payload).topic == topic)
        rej = self.pb.Rejected.FromString(msg.payload)
        self.assertEqual(rej.reason, reason, f"detail: {rej.detail!r}")
        self.assertEqual(rej.payload_head, payload[:64])
        self.assertTrue(rej.detail, "Rejected.detail should say why")
        self.assertEqual(self.s.ingest.metric(ik.rejected_series(reason)), counter + 1)
        self.assertEqual(self.snapshot(asset), before, "a rejected message changed Redis")
        self.assertEqual(self.s.rejects.count(ik.REJECTED_TOPIC), mark + 1,
                         "one Rejected per rejected message")
        return rej

    def assert_applies(self, asset=GOOD_ASSET, samples=None, payload=None):
        seq = self.seq(asset)
        applied = self.s.totals()["applied"]
        if payload is None:
            payload = th.telemetry(samples or {"temp": float(seq)}, seq=seq)
        self.s.send_raw(ik.telemetry_topic(asset), payload)
        self.assertEqual(self.s.totals()["applied"], applied + 1, "a good message was not applied")
        self.assertEqual(self.s.state(asset)["_seq"], str(seq))

    def tearDown(self):
        # A good message still applies and no worker died (bad input never crashes).
        if self.s.ingest.running:
            self.assert_applies()
            self.assertEqual(self.s.ingest.children("ingest-w"), self.workers, "a worker process died")
        super().tearDown()

    # ---- the cases --------------------------------------------------------------------------

    def test_empty_payload_is_rejected(self):
        self.assert_rejected(b"", "empty_payload")

    def test_garbage_and_truncated_protobuf_are_undecodable(self):
        good = th.telemetry({"temp": 3.0, "rpm": 4.0}, seq=99)
        cases = {
            "varint_overflow": b"\xff" * 11,
            "json": b'{"temp": 21.5}',
            "cut_in_last_double": good[:-3],
            "cut_in_asset_id": Wire.f_bytes(1, b"press-1")[:-3],
            "length_beyond_end": b"\x22\x50" + Wire.sample("temp", 1.0),
            "field_number_zero": b"\x00\x01" + good,
            "group_wire_type": b"\x0b" + good,
            "sample_cut_inside": Wire.f_varint(3, 5) + b"\x22\x0b" + Wire.sample("temp", 1.0)[:11],
        }
        for name, payload in cases.items():
            with self.subTest(case=name):
                self.assert_rejected(payload, "undecodable")

    def test_oversize_payload_is_rejected_and_the_cap_is_inclusive(self):
        at_cap = telemetry_of_size(MAX_PAYLOAD, seq=self.next_seq[GOOD_ASSET] + 1)
        self.assertEqual(len(at_cap), MAX_PAYLOAD)
        self.assert_applies(payload=at_cap)
        for size in (MAX_PAYLOAD + 1, 200_000):
            with self.subTest(size=size):
                payload = (telemetry_of_size(MAX_PAYLOAD + 1, seq=self.seq() + 100)
                           if size == MAX_PAYLOAD + 1 else (bytes(range(256)) * size)[:size])
                self.assertEqual(len(payload), size)
                self.assert_rejected(payload, "oversize")

    def test_asset_id_differing_from_topic_is_asset_mismatch(self):
        for other in ("press-2", "PRESS-1", "press-1x", "press-"):
            with self.subTest(asset_id=other):
                self.assert_rejected(th.telemetry({"temp": 5.0}, asset_id=other, seq=50),
                                     "asset_mismatch")

    def test_bad_asset_in_topic_is_bad_asset_id(self):
        for asset in ("bad$id", "a" * 65, "bad id", "b@d", "pr\u00e9ss", ""):
            topic = ik.telemetry_topic(asset)
            for asset_id in ("", asset):
                with self.subTest(topic=topic, asset_id=asset_id):
                    self.assert_rejected(th.telemetry({"temp": 5.0}, asset_id=asset_id, seq=1),
                                         "bad_asset_id", topic=topic, asset=asset)
                    self.assertFalse(self.s.r.exists(ik.state_key(asset)))

    def test_asset_id_with_nul_control_or_invalid_utf8_is_bad_asset_id(self):
        for raw in (b"press-1\x00", b"press\x00-1", b"\x00", b"pr\x01ess-1", b"press-1\n",
                    b"\xff\xfe", b"press-1\xc3", b"press-1\x7f"):
            with self.subTest(asset_id=raw):
                self.assert_rejected(Wire.telemetry({"temp": 5.0}, asset_id=raw, seq=60),
                                     "bad_asset_id")

    def test_message_without_samples_is_no_samples(self):
        for payload in (Wire.telemetry([], seq=70), Wire.telemetry([], asset_id="press-1"),
                        self.pb.Telemetry(asset_id="press-1").SerializeToString()):
            with self.subTest(payload=payload):
                self.assert_rejected(payload, "no_samples")

    def test_more_samples_than_the_cap_is_too_many_samples(self):
        over = [(f"s{i}", float(i)) for i in range(MAX_SAMPLES + 1)]
        self.assert_rejected(th.telemetry(over, seq=80), "too_many_samples")
        self.assert_applies(samples=over[:MAX_SAMPLES])
        self.assertEqual(len([k for k in self.s.state(GOOD_ASSET) if k.startswith("s")]),
                         MAX_SAMPLES)

    def test_bad_signal_names_are_bad_signal(self):
        for name in ("te mp", "temp$", "", "x" * 65, "_seq", "_temp", b"te\x00mp", b"temp\x00",
                     b"t\x7fx", "temp\u00e9rature", "tab\t", b"\xff\xfe"):
            with self.subTest(signal=name):
                # A good sample first: the message is refused whole.
                payload = Wire.telemetry([("temp", 5.0), (name, 1.0)], seq=90)
                self.assert_rejected(payload, "bad_signal")

    def test_same_signal_twice_is_duplicate_signal(self):
        for samples in ([("temp", 1.0), ("temp", 2.0)],
                        [("a", 1.0), ("b", 2.0), ("a", 1.0)]):
            with self.subTest(samples=samples):
                self.assert_rejected(th.telemetry(samples, seq=95), "duplicate_signal")

    def test_nan_and_infinities_are_non_finite(self):
        neg_nan = struct.unpack("<d", b"\x00\x00\x00\x00\x00\x00\xf8\xff")[0]
        for value in (float("nan"), float("inf"), float("-inf"), neg_nan):
            for samples in ([("temp", value)], [("temp", 7.0), ("rpm", value), ("x", 1.0)]):
                with self.subTest(value=value, n=len(samples)):
                    self.assert_rejected(th.telemetry(samples, seq=96), "non_finite")

    def test_device_time_outside_default_window_is_ts_out_of_window(self):
        now = now_ms()
        for ts in (now + 11 * MINUTE_MS, now + 365 * DAY_MS, now - 7 * DAY_MS - 60 * MINUTE_MS,
                   now - 3650 * DAY_MS, -1):
            with self.subTest(offset_ms=ts - now):
                self.assert_rejected(th.telemetry({"temp": 5.0}, seq=97, ts_ms=ts),
                                     "ts_out_of_window")
        self.assert_applies(payload=th.telemetry({"temp": 6.0}, seq=self.next_seq[GOOD_ASSET] + 1,
                                                 ts_ms=now_ms() + 9 * MINUTE_MS))
        self.assert_applies(payload=th.telemetry(
            {"temp": 6.5}, seq=self.next_seq[GOOD_ASSET] + 1,
            ts_ms=now_ms() - 7 * DAY_MS + 60 * MINUTE_MS))

    def test_one_bad_sample_rejects_the_whole_message(self):
        before = self.s.state(GOOD_ASSET)
        self.assert_rejected(th.telemetry({"temp": 10.0, "rpm": float("nan")}, seq=2),
                             "non_finite")
        self.assertEqual(self.s.state(GOOD_ASSET), before)
        # seq 2 was not remembered: the same seq with good values applies.
        self.assert_applies(samples={"temp": 10.0, "rpm": 20.0})
        self.assertEqual(self.s.state(GOOD_ASSET)["temp"], "10")
        self.assertEqual(self.s.totals()["duplicate"], 0)

    def test_rejected_messages_are_qos0_and_name_the_topic(self):
        topic = ik.telemetry_topic(GOOD_ASSET)
        rej = self.assert_rejected(b"\xff", "undecodable")
        self.assertEqual(rej.topic, topic)
        self.assertEqual(self.s.rejects.messages(ik.REJECTED_TOPIC)[-1].qos, 0)
        self.assertFalse(self.s.rejects.messages(ik.REJECTED_TOPIC)[-1].retain)


class LimitSettingsTest(TwinTestCase):
    """The limit settings themselves: other windows, 0 = no limit, the largest sample cap."""

    def test_time_window_settings_are_honoured(self):
        s = ik.IngestStack(self.h, env={"TWIN_INGEST_MAX_FUTURE_MS": 5000,
                                        "TWIN_INGEST_MAX_PAST_MS": MINUTE_MS})
        now = now_ms()
        s.send("a1", {"t": 1.0}, seq=1, ts_ms=now + MINUTE_MS)
        s.send("a1", {"t": 2.0}, seq=2, ts_ms=now - 2 * MINUTE_MS)
        t = s.totals()
        self.assertEqual((t["applied"], t["rejected"]), (0, 2))
        self.assertEqual(s.ingest.metric(ik.rejected_series("ts_out_of_window")), 2)
        s.send("a1", {"t": 3.0}, seq=3, ts_ms=now_ms() - 30_000)
        s.send("a1", {"t": 4.0}, seq=4, ts_ms=now_ms() + 2000)
        self.assertEqual(s.totals()["applied"], 2)

    def test_zero_means_no_time_limit(self):
        s = ik.IngestStack(self.h, env={"TWIN_INGEST_MAX_FUTURE_MS": 0,
                                        "TWIN_INGEST_MAX_PAST_MS": 0})
        s.send("a1", {"t": 1.0}, seq=1, ts_ms=978307200000)            # 2001-01-01
        s.send("a1", {"t": 2.0}, seq=2, ts_ms=now_ms() + 365 * DAY_MS)
        self.assertEqual(s.totals()["applied"], 2)
        self.assertEqual(s.history_seqs("a1"), [1, 2])

    def test_message_at_the_largest_max_samples_setting_is_applied(self):
        # --max-samples accepts up to 1000; a message that large must apply, not stall.
        s = ik.IngestStack(self.h, env={"TWIN_INGEST_MAX_SAMPLES": 1000,
                                        "TWIN_INGEST_SHUTDOWN_GRACE_MS": 1000})
        samples = [(f"s{i:04d}", float(i)) for i in range(1000)]
        s.send("a1", samples, seq=1, settle=False)
        s.settle(timeout=10)
        t = s.totals()
        self.assertEqual((t["applied"], t["rejected"]), (1, 0))
        state = s.state("a1")
        self.assertEqual(len(state), 1000 + 4)  # signals + _seq, _ts_ms, _ingest_ms, _changed
        self.assertEqual(state["s0999"], "999")
        s.send("a1", {"s0000": 5.0}, seq=2)
        self.assertEqual(s.state("a1")["s0000"], "5")


if __name__ == "__main__":
    th.main()
