# SPDX-License-Identifier: Apache-2.0
# Self-test of the test harness: Redis and Mosquitto start, pause, restart and stop as the fault tests assume, with the shipped configs.
import signal
import socket
import time
import unittest

import twinharness as th
from twinharness import TwinTestCase, Wire, wait_until


class HarnessProcessTest(TwinTestCase):

    def test_redis_restart_keeps_data_through_aof(self):
        redis = self.h.redis()
        r = redis.client()
        self.assertEqual(r.config_get("appendonly")["appendonly"], "yes")
        self.assertEqual(r.config_get("appendfsync")["appendfsync"], "everysec")
        self.assertEqual(r.config_get("maxmemory-policy")["maxmemory-policy"], "noeviction")
        r.hset("twin:{h}:state", mapping={"a": "1", "_seq": "7"})
        r.xadd("twin:{h}:history", {"ts_ms": "1", "seq": "7", "a": "1"})
        self.assertEqual(redis.restart(), 0)
        r2 = redis.client()
        self.assertEqual(r2.hgetall("twin:{h}:state"), {"a": "1", "_seq": "7"})
        self.assertEqual(r2.xlen("twin:{h}:history"), 1)

    def test_redis_pause_stops_answers_until_resumed(self):
        redis = self.h.redis()
        redis.pause()
        self.assertFalse(redis.ping())
        redis.resume()
        self.assertTrue(redis.ping())

    def test_redis_kill9_and_start_again_on_same_port(self):
        redis = self.h.redis()
        port = redis.port
        self.assertEqual(redis.kill9(), -signal.SIGKILL)
        self.assertFalse(th.port_accepts(port))
        redis.start()
        self.assertEqual(redis.port, port)
        self.assertTrue(redis.ping())

    def test_mosquitto_keeps_offline_persistent_session_queue_beyond_1000_across_restart(self):
        # deploy/mosquitto.conf must not drop QoS 1 messages for an offline session
        # (max_queued_messages 0) and must keep sessions across a broker restart.
        broker = self.h.mosquitto()
        sub = self.h.mqtt(broker, client_id="persist-sub", clean_start=False,
                          session_expiry_s=600)
        sub.subscribe("twin/v1/asset/+/telemetry", qos=1)
        sub.close()
        pub = self.h.mqtt(broker)
        n = 3000
        for i in range(n):
            pub.publish("twin/v1/asset/a1/telemetry", str(i).encode(), qos=1)
        pub.wait_acked(60)
        pub.close()
        self.assertEqual(broker.restart(), 0)  # SIGTERM: mosquitto saves its persistence db
        sub2 = self.h.mqtt(broker, client_id="persist-sub", clean_start=False,
                           session_expiry_s=600)
        wait_until(lambda: sub2.count("twin/v1/asset/a1/telemetry") >= n, 60,
                   what=f"{n} queued messages after the broker restart "
                        f"(got {sub2.count('twin/v1/asset/a1/telemetry')})")
        got = [int(m.payload) for m in sub2.messages("twin/v1/asset/a1/telemetry")]
        self.assertEqual(sorted(set(got)), list(range(n)))

    def test_mosquitto_retained_message_reaches_late_subscriber(self):
        broker = self.h.mosquitto()
        pub = self.h.mqtt(broker)
        pub.publish("twin/v1/asset/x/state", b"hello", qos=1, retain=True)
        pub.wait_acked(10)
        late = self.h.mqtt(broker)
        late.subscribe("twin/v1/asset/x/state")
        m = late.wait_message("twin/v1/asset/x/state", timeout=5)
        self.assertTrue(m.retain)
        self.assertEqual(m.payload, b"hello")

    def test_process_group_is_killed_at_close(self):
        h = th.Harness("inner")
        try:
            p = th.ManagedProcess(h, "sh", ["/bin/sh", "-c", "sleep 300 & sleep 300 & wait"])
            p.start()
            wait_until(lambda: len(p.members()) >= 3, 5, what="the shell and its 2 children")
            pgid = p.pgid
        finally:
            h.close()
            h.remove_dir()
        wait_until(lambda: not th.group_members(pgid), 5, what="the group to be gone")

    def test_service_whose_metrics_port_was_taken_starts_again_on_another(self):
        broker, redis = self.h.mosquitto(), self.h.redis()
        # The port the harness hands out is taken before the service binds it, as a client
        # socket of another process can take it as its ephemeral port.
        blocker = socket.socket()
        self.addCleanup(blocker.close)
        blocker.bind(("127.0.0.1", 0))
        blocker.listen(1)
        taken, real, calls = blocker.getsockname()[1], th.free_port, []

        def taken_first():
            calls.append(1)
            return taken if len(calls) == 1 else real()
        th.free_port = taken_first
        try:
            p = self.h.service("twin-predictor", broker=broker, redis=redis)
        finally:
            th.free_port = real
        self.assertIn("errno=98", p.log_text())
        self.assertNotEqual(p.metrics_port, taken)
        self.assertEqual(p.healthz()[0], 200)
        self.assertEqual(p.starts, 2)


class HarnessHelpersTest(unittest.TestCase):

    def test_wait_until_times_out_with_assertion(self):
        t0 = time.monotonic()
        with self.assertRaises(AssertionError):
            wait_until(lambda: False, timeout=0.3, interval=0.05, what="never")
        self.assertLess(time.monotonic() - t0, 2.0)

    def test_free_ports_are_distinct_and_bindable(self):
        ports = {th.free_port() for _ in range(20)}
        self.assertEqual(len(ports), 20)
        with socket.socket() as s:
            s.bind((th.LOOPBACK, ports.pop()))

    def test_parse_metrics_keys_full_series(self):
        text = ("# HELP a x\n# TYPE a counter\na 3\n"
                'twin_ingest_rejected_total{reason="oversize"} 2\n'
                'h_bucket{le="+Inf"} 5 1700000000\n')
        m = th.parse_metrics(text)
        self.assertEqual(m["a"], 3.0)
        self.assertEqual(m['twin_ingest_rejected_total{reason="oversize"}'], 2.0)
        self.assertEqual(m['h_bucket{le="+Inf"}'], 5.0)
        self.assertEqual(th.metric_sum(m, "twin_ingest_rejected_total"), 2.0)

    def test_hand_encoded_telemetry_equals_protobuf_encoding(self):
        pb = th.load_proto()
        samples = [("temp", 21.5), ("rpm", -0.0), ("x:y/z", 1e300)]
        for seq in (0, 1, 2**64 - 1):
            for ts in (1, 1700000000123, 2**62):
                want = pb.Telemetry(asset_id="press-1", ts_ms=ts, seq=seq)
                for s, v in samples:
                    want.samples.add(signal=s, value=v)
                self.assertEqual(Wire.telemetry(samples, asset_id="press-1", seq=seq, ts_ms=ts),
                                 want.SerializeToString())
        neg = pb.Telemetry()
        neg.ParseFromString(Wire.telemetry([("a", 1.0)], ts_ms=-5))
        self.assertEqual(neg.ts_ms, -5)


if __name__ == "__main__":
    th.main()
