# SPDX-License-Identifier: Apache-2.0
# twin-ingest under faults during a sequenced QoS 1 stream: kill -9, Redis paused past the keepalive, Redis restarted; nothing lost, nothing applied twice.
import os
import signal
import subprocess
import time

import ingestkit as ik
import twinharness as th
from twinharness import TwinTestCase, wait_until

N_ASSETS = 50
PER_ASSET = 120          # 6000 messages per stream
RATE = 600               # msg/s: a 10 s stream, the fault in the middle
RECOVERY_TIMEOUT_S = 30
DRAIN_TIMEOUT_S = 60

# Short keepalive and Redis timeout keep the faults (and the test) short.
FAULT_ENV = {"TWIN_MQTT_KEEPALIVE_S": 2, "TWIN_REDIS_TIMEOUT_MS": 500,
             "TWIN_INGEST_SHUTDOWN_GRACE_MS": 2000}


class IngestFaultTest(TwinTestCase):

    def setUp(self):
        super().setUp()
        self.s = ik.IngestStack(self.h, env=FAULT_ENV)
        self.assets = [f"m{i:02d}" for i in range(N_ASSETS)]

    def stream_with_fault(self, name, fault, per_asset=PER_ASSET, rate=RATE):
        """Streams, applies `fault` (returns the monotonic time the fault ended) once a
        fifth of the stream is in, and checks exactly-once delivery afterwards."""
        s = self.s
        total = N_ASSETS * per_asset
        stream = ik.TelemetryStream(s.pub, self.assets, per_asset, rate=rate, name=name).start()
        wait_until(lambda: ik.total_history(s, self.assets) >= total // 5, 30,
                   what="a fifth of the stream applied before the fault")
        t_fault = time.monotonic()
        fault_end = fault()
        acked_at_end = stream.acked()
        recovery_s, recovered = None, True
        try:
            wait_until(lambda: ik.total_history(s, self.assets) >= acked_at_end,
                       RECOVERY_TIMEOUT_S, interval=0.1,
                       what=f"history to catch up with the {acked_at_end} messages acked "
                            f"by the end of the fault")
            recovery_s = time.monotonic() - fault_end
        except th.WaitTimeout:
            recovered = False
        stream.join(120)
        s.pub.wait_acked(60)
        expected = dict(stream.sent_per_asset)
        if recovered:
            try:
                wait_until(lambda: ik.total_history(s, self.assets) >= total, DRAIN_TIMEOUT_S,
                           interval=0.2, what="the stream to drain")
            except th.WaitTimeout:
                pass
            # Redelivered copies may still trickle in: wait until the count holds still.
            last = [-1]

            def settled():
                now = ik.total_history(s, self.assets)
                done, last[0] = now == last[0], now
                return done
            wait_until(settled, 15, interval=1.0, what="history to stop growing")
        rep = ik.history_seq_report(s, self.assets, expected)
        live = [svc for svc in s.ingests if svc.running]
        m = ik.totals(live[-1].metrics()) if live else {}
        print(f"\n[{name}] sent={stream.sent} acked={stream.acked()} "
              f"history_entries={rep['entries']} duplicates_in_history={rep['duplicates']} "
              f"missing={rep['missing']} extra={rep['extra']} bad_state={rep['bad_state']} "
              f"fault_s={fault_end - t_fault:.1f} "
              f"recovery_s={'%.1f' % recovery_s if recovery_s is not None else 'NOT RECOVERED'} "
              f"ingest_counters_since_last_start={ {k: int(v) for k, v in m.items()} }",
              flush=True)
        self.assertEqual(stream.acked(), stream.sent, "the broker acknowledged every message")
        self.assertEqual(stream.sent, total)
        self.assertTrue(recovered, f"ingest did not catch up within {RECOVERY_TIMEOUT_S} s "
                        f"after the fault ended: {rep}")
        self.assertEqual((rep["entries"], rep["duplicates"], rep["missing"], rep["extra"]),
                         (total, 0, 0, 0), rep["examples"])
        self.assertEqual(rep["bad_state"], 0, rep["examples"])
        return rep

    def test_kill9_of_ingest_and_restart_loses_and_duplicates_nothing(self):
        svc = self.s.ingest

        def fault():
            svc.kill9()
            wait_until(lambda: not svc.members(), 5,
                       what="the workers to die with their parent")
            time.sleep(1.0)
            svc.start()
            return time.monotonic()
        self.stream_with_fault("kill -9 ingest", fault)
        svc.wait_healthy(timeout=10)

    def test_redis_paused_beyond_mqtt_keepalive_loses_and_duplicates_nothing(self):
        redis = self.s.redis

        def fault():
            redis.pause()
            time.sleep(6.0)  # > 1.5 x keepalive (2 s): the broker may drop the sessions
            redis.resume()
            return time.monotonic()
        self.stream_with_fault("redis SIGSTOP 6 s", fault)
        self.s.ingest.wait_healthy(timeout=20)

    def test_redis_restart_loses_and_duplicates_nothing(self):
        redis = self.s.redis

        def fault():
            self.assertEqual(redis.stop(), 0, "Redis stops cleanly on SIGTERM (AOF written)")
            time.sleep(1.0)
            redis.start()
            return time.monotonic()
        self.stream_with_fault("redis restart", fault)
        self.s.ingest.wait_healthy(timeout=20)

    def test_kill9_of_one_worker_loses_and_duplicates_nothing(self):
        svc = self.s.ingest
        victims = []

        def fault():
            victims.append(svc.children("ingest-w")[1])
            os.kill(victims[0], signal.SIGKILL)
            wait_until(lambda: len(svc.children("ingest-w")) == 4 and victims[0] not in svc.children("ingest-w"),
                       15, what="the parent to replace the killed worker")
            return time.monotonic()
        self.stream_with_fault("kill -9 one worker", fault)
        self.assertTrue(svc.running)
        self.assertGreaterEqual(svc.metric("twin_ingest_worker_restarts_total"), 1)

    def test_messages_published_while_ingest_is_down_are_applied_after_restart(self):
        s = self.s
        svc = s.ingest
        assets = self.assets[:10]
        for a in assets:
            s.send(a, {"t": 0.0}, seq=1)
        self.assertEqual(svc.stop(), 0)
        queued = 0
        for seq in range(2, 42):
            for a in assets:
                s.pub.publish(ik.telemetry_topic(a), th.telemetry({"t": float(seq)}, seq=seq))
                queued += 1
        s.pub.wait_acked(30)
        self.assertEqual(ik.total_history(s, assets), len(assets), "nothing applied while down")
        t0 = time.monotonic()
        svc.start()
        wait_until(lambda: ik.total_history(s, assets) >= len(assets) + queued, 30,
                   what=f"the {queued} queued messages applied after the restart")
        took = time.monotonic() - t0
        rep = ik.history_seq_report(s, assets, {a: 41 for a in assets})
        print(f"\n[queued while down] queued={queued} all applied {took:.1f} s after the restart; "
              f"history_entries={rep['entries']} duplicates={rep['duplicates']} "
              f"missing={rep['missing']}", flush=True)
        self.assertEqual((rep["entries"], rep["duplicates"], rep["missing"], rep["extra"],
                          rep["bad_state"]), (len(assets) * 41, 0, 0, 0, 0), rep["examples"])
    def queue_while_stopped(self, assets, last_seq):
        """Applies seq 1 of each asset, stops ingest cleanly, then publishes seq 2..last_seq
        of each (all acknowledged by the broker, queued for ingest's sessions)."""
        s = self.s
        for a in assets:
            s.send(a, {"t": 0.0}, seq=1)
        self.assertEqual(s.ingest.stop(), 0)
        for seq in range(2, last_seq + 1):
            for a in assets:
                s.pub.publish(ik.telemetry_topic(a), th.telemetry({"t": float(seq)}, seq=seq))
        s.pub.wait_acked(30)

    def test_message_handed_over_while_redis_is_down_survives_kill9(self):
        # The PUBACK to the broker must follow the apply, not the hand-over: with Redis down,
        # each worker holds a message it cannot apply; kill -9 then loses it unless the
        # broker was never told it was delivered.
        s = self.s
        svc = s.ingest
        assets = self.assets[:8]
        for a in assets:
            s.send(a, {"t": 0.0}, seq=1)
        s.redis.stop()
        for a in assets:
            s.pub.publish(ik.telemetry_topic(a), th.telemetry({"t": 2.0}, seq=2))
        s.pub.wait_acked(30)
        wait_until(lambda: ik.totals(svc.metrics())["received"] >= len(assets) + 4, 15,
                   what="every worker to hold a message it cannot apply")
        svc.kill9()
        s.redis.start()
        self.assertEqual(ik.total_history(s, assets), len(assets), "nothing applied while down")
        svc.start()
        wait_until(lambda: ik.total_history(s, assets) >= 2 * len(assets), 30,
                   what="the held messages applied after the restart")
        rep = ik.history_seq_report(s, assets, {a: 2 for a in assets})
        print(f"\n[held while redis down, kill -9] sent={len(assets)} "
              f"history_entries={rep['entries']} duplicates={rep['duplicates']} "
              f"missing={rep['missing']}", flush=True)
        self.assertEqual((rep["entries"], rep["duplicates"], rep["missing"], rep["extra"],
                          rep["bad_state"]), (2 * len(assets), 0, 0, 0, 0), rep["examples"])

    def test_retiring_an_instance_applies_its_queued_share_and_ends_its_sessions(self):
        # Offline sessions in the shared group keep taking their share of telemetry; an
        # instance removed for good is retired with --retire, which applies that share.
        s = self.s
        svc = s.ingest
        assets = self.assets[:4]
        self.queue_while_stopped(assets, 51)
        retire = subprocess.run(svc.argv + ["--retire"], env=svc.env, timeout=120,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self.assertEqual(retire.returncode, 0, retire.stdout[-2000:])
        self.assertIn("event=session_drain_done sessions=4", retire.stdout)
        rep = ik.history_seq_report(s, assets, {a: 51 for a in assets})
        print(f"\n[retire] queued={50 * len(assets)} history_entries={rep['entries']} "
              f"duplicates={rep['duplicates']} missing={rep['missing']}", flush=True)
        self.assertEqual((rep["entries"], rep["duplicates"], rep["missing"]),
                         (51 * len(assets), 0, 0), rep["examples"])
        # The retired sessions are gone: new telemetry waits for no one but live members.
        s.add_ingest(env={"TWIN_INGEST_WORKERS": 1})
        s.send(assets[0], {"t": 99.0}, seq=52, settle=False)
        wait_until(lambda: s.state(assets[0]).get("_seq") == "52", 15,
                   what="the new instance to apply new telemetry")

    def test_restart_with_fewer_workers_does_not_strand_queued_messages(self):
        # Each worker has its own persistent session; what the broker queued for sessions
        # that no longer run (w2, w3 here) must not be stranded until the session expires.
        s = self.s
        svc = s.ingest
        assets = self.assets[:4]
        self.queue_while_stopped(assets, 101)
        s.add_ingest(env={"TWIN_INGEST_WORKERS": 2}, instance=svc.instance)
        try:
            wait_until(lambda: ik.total_history(s, assets) >= 4 * 101, 20,
                       what="the messages queued while ingest was down")
        finally:
            print(f"\n[fewer workers] queued=400 applied_after_restart="
                  f"{ik.total_history(s, assets) - 4}", flush=True)


if __name__ == "__main__":
    th.main()
