# SPDX-License-Identifier: Apache-2.0
# The scaled topology under faults: 2 twin-ingest and 2 twin-predictor instances on a 3-master Redis Cluster with replicas; kill -9 of one instance of each and of a Redis master mid-stream: nothing acknowledged lost or applied twice, every asset predicted by exactly one instance, before, during and after.
"""What issue 8 asks of the scaled topology, on real processes (loopback only).

Ingest instances share the telemetry through the broker's shared subscription and acknowledge
a message only after Redis WAIT saw it on a replica; predictor instances split the assets by
a rendezvous hash over the instances whose status is online. The test kills, at once, one
ingest, one predictor and the Redis master of a share of the assets, lets the cluster promote
that master's replica, and restarts the three (as a supervisor would): the master and the
ingest after a few seconds, the predictor once the survivor has taken over all its assets
(from their stored models and history); the survivor then hands them back."""

import signal
import time

import clusterkit as ck
import ingestkit as ik
import predkit as pk
import twinharness as th
from twinharness import TwinTestCase, wait_until

N_ASSETS = 40
PER_ASSET = 200
RATE = 400          # msg/s: a 20 s stream
KILL_AFTER = 3000   # messages applied before the kills
DOWN_S = 4.0        # how long the killed services stay down
TIMEOUT_S = 60
DRAIN_TIMEOUT_S = 120
RESUME_S = 6.0      # Predictions of every asset resume within this once ingest is back


class ScaledFaultTest(TwinTestCase):

    def predictor_figures(self, predictors):
        out = []
        for p in predictors:
            m = p.metrics()
            out.append({k: m.get(k, 0.0) for k in (
                "twin_predictor_members", "twin_predictor_assets",
                "twin_predictor_released_assets_total", "twin_predictor_not_owned_total",
                'twin_predictor_restored_signals_total{from="model"}')})
        return out

    def wait_split(self, predictors, what):
        """Both instances see each other and every asset is modelled by exactly one."""
        def split():
            figs = [p.metrics() for p in predictors]
            members = [f.get("twin_predictor_members", 0) for f in figs]
            assets = [f.get("twin_predictor_assets", 0) for f in figs]
            ok = members == [2.0, 2.0] and sum(assets) == N_ASSETS and min(assets) > 0
            return (members, assets) if ok else None
        return wait_until(split, TIMEOUT_S, interval=0.2, what=what, ignore=(OSError,))

    def test_kill9_of_an_ingest_a_predictor_and_a_redis_master_mid_stream(self):
        c = ck.RedisCluster(self.h, masters=3, replicas=1)
        self.addCleanup(c.close)
        broker = self.h.mosquitto()
        ingest_env = {"TWIN_INGEST_WORKERS": 2, "TWIN_INGEST_REDIS_REPLICAS": 1,
                      "TWIN_INGEST_REDIS_REPLICA_WAIT_MS": 500, "TWIN_REDIS_TIMEOUT_MS": 1000}
        ingests = [self.h.service("twin-ingest", broker=broker, redis=c, env=ingest_env)
                   for _ in range(2)]
        pred_env = {"TWIN_PREDICTOR_PUBLISH_MS": 500, "TWIN_PREDICTOR_PERSIST_MS": 1000,
                    "TWIN_REDIS_TIMEOUT_MS": 1000}
        predictors = [self.h.service("twin-predictor", broker=broker, redis=c, env=pred_env)
                      for _ in range(2)]
        for p in predictors:
            p.wait_online()
        watch = self.h.mqtt(broker, client_id="prediction-watch")
        watch.subscribe(f"{ik.ROOT}/asset/+/prediction")
        assets = [f"s{i:02d}" for i in range(N_ASSETS)]
        pub = self.h.mqtt(broker, client_id="device-pub")
        stream = ik.TelemetryStream(pub, assets, PER_ASSET, rate=RATE, name="scaled").start()
        view = ck.ClusterView(c)
        split_before = self.wait_split(predictors, "both predictors to split the assets")
        wait_until(ck.safely(lambda: ik.total_history(view, assets) >= KILL_AFTER), TIMEOUT_S,
                   what="the stream to be under way")

        # One of each at once: an ingest, a predictor, the master of assets[0]'s slot.
        victim = c.owner(ik.state_key(assets[0]))
        t_kill = time.monotonic()
        ingests[0].kill9()
        predictors[0].kill9()
        c.nodes[victim].stop(sig=signal.SIGKILL)
        wait_until(lambda: c.all_ok() and ck.safely(
            lambda: c.owner(ik.state_key(assets[0])) != victim)(), TIMEOUT_S, interval=0.2,
            what="a replica promoted in place of the killed master")
        # The old master returns as the new one's replica: until then WAIT 1 holds every apply
        # of that shard back, and with it the workers of the surviving ingest.
        c.nodes[victim].start()
        wait_until(lambda: c.role(victim) == "slave" and c.replica_in_sync(victim), TIMEOUT_S,
                   interval=0.2, what="the old master back as a replica")
        # The killed ingest comes back: Mosquitto kept queueing its share of the telemetry in
        # its session (a shared subscription's offline member still gets its turn), and it
        # drains now.
        time.sleep(max(0.0, DOWN_S - (time.monotonic() - t_kill)))
        ingests[0].start()
        t_ingest_back = time.monotonic()
        # The surviving predictor has taken every asset over (the Will said the other is
        # offline) as their TwinStates came.
        wait_until(lambda: predictors[1].metric("twin_predictor_members") == 1.0 and
                   predictors[1].metric("twin_predictor_assets") == N_ASSETS, TIMEOUT_S,
                   interval=0.2, what="the surviving predictor to own every asset")
        takeover_s = time.monotonic() - t_kill
        predictors[0].start()
        predictors[0].wait_online()
        split_after = self.wait_split(predictors, "the restarted predictor to get its share back")

        stream.join(DRAIN_TIMEOUT_S)
        t_end = time.monotonic()
        wait_until(lambda: stream.acked() == stream.sent, DRAIN_TIMEOUT_S, what="every PUBACK")
        acked = stream.acked_keys()
        view = ck.ClusterView(c)
        wait_until(ck.safely(lambda: ik.total_history(view, assets) >= len(acked)), DRAIN_TIMEOUT_S,
                   interval=0.2, what="every acknowledged message applied")
        rep = ik.history_seq_report(view, assets, dict(stream.sent_per_asset))

        # Predictions: every asset, all along the stream (an asset whose telemetry waited in
        # the killed ingest's session has none while it is down).
        gaps = {}
        for a in assets:
            times = [m.at for m in watch.messages(pk.prediction_topic(a))
                     if stream.started_at <= m.at <= t_end]
            times = [stream.started_at, *times, t_end]
            gaps[a] = max(b - x for x, b in zip(times, times[1:]))
        figs = self.predictor_figures(predictors)
        print(f"[figures] scaled kill -9 (ingest, predictor, redis master): acked {len(acked)}, "
              f"applied {rep['entries'] - rep['duplicates']}, lost {rep['missing']}, "
              f"dup_applied {rep['duplicates']}, split before {split_before[1]}, after "
              f"{split_after[1]}, takeover {takeover_s:.1f} s, longest prediction gap "
              f"{max(gaps.values()):.1f} s ({max(gaps, key=gaps.get)}), predictors {figs}",
              flush=True)
        self.assertEqual((rep["missing"], rep["duplicates"], rep["extra"], rep["bad_state"]),
                         (0, 0, 0, 0), rep["examples"])
        self.assertEqual(len(acked), N_ASSETS * PER_ASSET)
        # The longest silence: from the kills until both ingests run again, plus RESUME_S.
        self.assertLessEqual(max(gaps.values()), t_ingest_back - t_kill + RESUME_S, gaps)
        # And each asset's Predictions reach its last telemetry.
        pb = th.load_proto()
        for a in assets:
            last_ts = int(view.r.hget(ik.state_key(a), "_ts_ms"))
            wait_until(lambda a=a, last_ts=last_ts: any(
                pb.Prediction.FromString(m.payload).basis_ts_ms >= last_ts
                for m in watch.messages(pk.prediction_topic(a))[-3:]), TIMEOUT_S,
                what=f"a Prediction of {a} from its last TwinState")
        # The survivor took the killed one's assets from their stored models, and gave them
        # back when it returned.
        self.assertGreater(figs[1]['twin_predictor_restored_signals_total{from="model"}'], 0)
        self.assertGreater(figs[1]["twin_predictor_released_assets_total"], 0)
        for s in [*ingests, *predictors]:
            self.assertTrue(s.running, s.name)


if __name__ == "__main__":
    th.main()
