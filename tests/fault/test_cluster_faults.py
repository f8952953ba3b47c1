# SPDX-License-Identifier: Apache-2.0
# twin-ingest on a Redis Cluster with replicas: kill -9 of a master mid-stream, its replica promoted, the old master back as a replica; nothing acknowledged lost, nothing applied twice.
"""With TWIN_INGEST_REDIS_REPLICAS=1 ingest acknowledges a message to the broker only after
Redis WAIT reports a replica has its apply, so the replica promoted when a master dies holds
everything acknowledged. While the promoted master has no replica of its own, its share of
the telemetry waits in the broker (back-pressure); when the old master returns as its
replica, it drains."""

import signal
import time

import clusterkit as ck
import ingestkit as ik
import twinharness as th
from twinharness import TwinTestCase, wait_until

N_ASSETS = 50
PER_ASSET = 100
RATE = 500           # msg/s: a 10 s stream, the kill 2 s in
FAILOVER_TIMEOUT_S = 30
DRAIN_TIMEOUT_S = 90


class ClusterFailoverTest(TwinTestCase):

    def test_kill9_of_a_master_with_replica_wait_loses_and_duplicates_nothing(self):
        c = ck.RedisCluster(self.h, masters=3, replicas=1)
        self.addCleanup(c.close)
        broker = self.h.mosquitto()
        ingest = self.h.service("twin-ingest", broker=broker, redis=c, env={
            "TWIN_INGEST_WORKERS": 4, "TWIN_INGEST_REDIS_REPLICAS": 1,
            "TWIN_INGEST_REDIS_REPLICA_WAIT_MS": 500, "TWIN_REDIS_TIMEOUT_MS": 1000})
        assets = [f"f{i:02d}" for i in range(N_ASSETS)]
        pub = self.h.mqtt(broker, client_id="device-pub")
        stream = ik.TelemetryStream(pub, assets, PER_ASSET, rate=RATE, name="failover").start()
        view = ck.ClusterView(c)
        wait_until(ck.safely(lambda: ik.total_history(view, assets) >= 1000), 30,
                   what="the stream to be under way")
        victim = c.owner(ik.state_key(assets[0]))
        victim_assets = [a for a in assets if c.owner(ik.state_key(a)) == victim]
        t_kill = time.monotonic()
        c.nodes[victim].stop(sig=signal.SIGKILL)
        # Its replica takes over once the others agree it is down (cluster-node-timeout 2 s).
        wait_until(lambda: c.all_ok() and ck.safely(
            lambda: c.owner(ik.state_key(assets[0])) != victim)(), FAILOVER_TIMEOUT_S,
            interval=0.2, what="a replica promoted in place of the killed master")
        failover_s = time.monotonic() - t_kill
        # The old master comes back and joins as the new master's replica: WAIT is met again.
        c.nodes[victim].start()
        wait_until(lambda: c.role(victim) == "slave" and c.replica_in_sync(victim),
                   FAILOVER_TIMEOUT_S, interval=0.2, what="the old master back as a replica")
        t_back = time.monotonic()
        stream.join(120)
        wait_until(lambda: stream.acked() == stream.sent, DRAIN_TIMEOUT_S, what="every PUBACK")
        acked = stream.acked_keys()
        view = ck.ClusterView(c)  # a fresh client with the new map
        wait_until(ck.safely(lambda: ik.total_history(view, assets) >= len(acked)),
                   DRAIN_TIMEOUT_S, interval=0.2, what="every acknowledged message applied")
        drained_s = time.monotonic() - t_back
        rep = ik.history_seq_report(view, assets, dict(stream.sent_per_asset))
        print(f"[figures] redis master kill -9 with WAIT 1: acked {len(acked)}, applied "
              f"{rep['entries'] - rep['duplicates']}, lost {rep['missing']}, dup_applied "
              f"{rep['duplicates']}, assets on the killed master {len(victim_assets)}, "
              f"failover {failover_s:.1f} s, drained {drained_s:.1f} s after the old master "
              f"rejoined, redis_errors {ingest.metric('twin_ingest_redis_errors_total'):.0f}",
              flush=True)
        self.assertEqual((rep["missing"], rep["duplicates"], rep["extra"], rep["bad_state"]),
                         (0, 0, 0, 0), rep["examples"])
        self.assertEqual(len(acked), N_ASSETS * PER_ASSET)
        self.assertTrue(ingest.running)


if __name__ == "__main__":
    th.main()
