# SPDX-License-Identifier: Apache-2.0
# Twinloop on a real 3-master Redis Cluster: ingest applies every asset on the node of its slot, readers find them, and resharding mid-stream loses and duplicates nothing.
"""TWIN_REDIS_URL=redis+cluster://... with the cluster's first two nodes only (the store learns
the third from CLUSTER SLOTS). Checked with a cluster-aware redis-py client and each node's
own view."""

import threading
import time

import clusterkit as ck
import ctlkit
import ingestkit as ik
import twinharness as th
from twinharness import TwinTestCase, wait_until

N_ASSETS = 40


class RedisClusterTest(TwinTestCase):

    def setUp(self):
        super().setUp()
        self.cluster = ck.RedisCluster(self.h, masters=3)
        self.addCleanup(self.cluster.close)
        self.broker = self.h.mosquitto()
        self.view = ck.ClusterView(self.cluster)
        self.assets = [f"cl-{i:02d}" for i in range(N_ASSETS)]
        self.pub = self.h.mqtt(self.broker, client_id="device-pub")

    def ingest(self, workers=2, log_level="info"):
        return self.h.service("twin-ingest", broker=self.broker, redis=self.cluster,
                              env={"TWIN_INGEST_WORKERS": workers}, log_level=log_level)

    def stream(self, per_asset, rate, name="stream"):
        return ik.TelemetryStream(self.pub, self.assets, per_asset, rate=rate, name=name).start()

    def wait_applied(self, stream, timeout=60):
        stream.join(120)
        wait_until(lambda: stream.acked() == stream.sent, 30, what="every PUBACK")
        wait_until(lambda: ik.total_history(self.view, self.assets) >= stream.sent, timeout,
                   interval=0.2, what=f"{stream.sent} messages in history")
        return ik.history_seq_report(self.view, self.assets, dict(stream.sent_per_asset))

    def assert_exactly_once(self, rep):
        self.assertEqual((rep["missing"], rep["duplicates"], rep["extra"], rep["bad_state"]),
                         (0, 0, 0, 0), rep["examples"])

    def test_ingest_puts_each_asset_on_its_node_and_twinctl_reads_them_all(self):
        ingest = self.ingest()
        rep = self.wait_applied(self.stream(per_asset=10, rate=400))
        self.assert_exactly_once(rep)
        self.assertEqual(rep["entries"], N_ASSETS * 10)
        # Every node holds a share, and each asset's keys are on the node of its slot.
        shares = [self.cluster.dbsize(i) for i in range(3)]
        self.assertTrue(all(s > 0 for s in shares), shares)
        for a in self.assets[:8]:
            node = self.cluster.nodes[self.cluster.owner(ik.state_key(a))].client()
            self.assertEqual(node.hget(ik.state_key(a), "_seq"), "10")
        self.assertEqual(set(self.view.r.smembers("twin:assets")), set(self.assets))
        self.assertEqual(ingest.metric("twin_ingest_redis_errors_total"), 0)
        # twinctl on the same URL: the asset list (one node) and each state (all nodes).
        ctl = ctlkit.Ctl(self.h, broker=self.broker, redis=self.cluster)
        res = ctl.run("assets")
        self.assertEqual(res.returncode, 0, res.stderr)
        for a in self.assets:
            self.assertIn(a, res.stdout)
        res = ctl.run("state", self.assets[-1])
        self.assertEqual(res.returncode, 0, res.stderr)
        self.assertIn("rpm", res.stdout)

    def test_resharding_mid_stream_loses_and_duplicates_nothing(self):
        ingest = self.ingest(log_level="debug")  # the store logs each redirect at debug
        stream = self.stream(per_asset=60, rate=300, name="reshard-stream")  # 8 s
        wait_until(lambda: ik.total_history(self.view, self.assets) >= 400, 30,
                   what="the stream to be under way")
        moved_before = {a: self.cluster.owner(ik.state_key(a)) for a in self.assets}
        # Half of node 0's slots move to node 1 while ingest writes: keys are migrated one by
        # one (ASK redirects), then the slots change owner (MOVED).
        done = {}
        mover = threading.Thread(target=lambda: done.setdefault(
            "out", self.cluster.reshard(0, 1, 2700)), daemon=True)
        mover.start()
        rep = self.wait_applied(stream)
        mover.join(90)
        self.assertIn("out", done, "resharding did not finish")
        moved = [a for a in self.assets
                 if moved_before[a] == 0 and self.cluster.owner(ik.state_key(a)) == 1]
        self.assertGreater(len(moved), 0, "no asset changed node: the test proved nothing")
        self.assert_exactly_once(rep)
        log = ingest.log_text()
        redirects = {k: log.count(f"event=redis_cluster_redirect kind={k}") for k in ("moved", "ask")}
        print(f"[figures] resharding: {len(moved)} of {N_ASSETS} assets moved node, "
              f"{rep['entries']} applied of {stream.sent} acked, "
              f"duplicates {rep['duplicates']}, missing {rep['missing']}, "
              f"ingest followed {redirects['moved']} MOVED and {redirects['ask']} ASK", flush=True)
        self.assertGreater(redirects["moved"], 0, "ingest never followed a MOVED")
        # Later telemetry of a moved asset lands on its new node.
        a = moved[0]
        self.pub.publish(ik.telemetry_topic(a), th.telemetry({"rpm": 1.0}, seq=1000), qos=1)
        node = self.cluster.nodes[1].client()
        wait_until(lambda: node.hget(ik.state_key(a), "_seq") == "1000", 15,
                   what=f"{a}'s state on its new node")
        self.assertTrue(ingest.running)

    def test_a_slot_in_migration_is_followed_with_ask_then_moved(self):
        ingest = self.ingest(workers=1, log_level="debug")
        a = self.assets[0]

        def send(seqs):
            for seq in seqs:
                info = self.pub.publish(ik.telemetry_topic(a), th.telemetry({"rpm": seq}, seq=seq),
                                        qos=1)
                wait_until(info.is_published, 10, what="PUBACK")
            wait_until(lambda: self.view.r.xlen(ik.history_key(a)) >= seqs[-1], 20,
                       what=f"seq {seqs[-1]} of {a} applied")

        send(range(1, 6))
        c = self.cluster
        slot = c.slot_of(ik.state_key(a))
        src = c.owner(ik.state_key(a))
        dst = (src + 1) % 3
        src_r, dst_r = c.nodes[src].client(), c.nodes[dst].client()
        # The slot migrates by hand, as redis-cli --cluster reshard does it: the asset's keys
        # move while the slot still belongs to src, which answers ASK for them.
        dst_r.execute_command("CLUSTER", "SETSLOT", slot, "IMPORTING", c.node_id(src))
        src_r.execute_command("CLUSTER", "SETSLOT", slot, "MIGRATING", c.node_id(dst))
        keys = src_r.execute_command("CLUSTER", "GETKEYSINSLOT", slot, 100)
        self.assertEqual(len(keys), 3, keys)  # state, history, replay
        src_r.execute_command("MIGRATE", th.LOOPBACK, c.nodes[dst].port, "", 0, 5000, "KEYS",
                              *keys)
        send(range(6, 11))
        for node in c.nodes:
            node.client().execute_command("CLUSTER", "SETSLOT", slot, "NODE", c.node_id(dst))
        send(range(11, 13))
        rep = ik.history_seq_report(ck.ClusterView(c), [a], {a: 12})
        self.assert_exactly_once(rep)
        self.assertEqual(dst_r.hget(ik.state_key(a), "_seq"), "12")
        log = ingest.log_text()
        self.assertIn("event=redis_cluster_redirect kind=ask", log)
        self.assertIn("event=redis_cluster_redirect kind=moved", log)

    def test_predictor_and_scenario_runner_work_on_the_cluster(self):
        self.ingest()
        pred = self.h.service("twin-predictor", broker=self.broker, redis=self.cluster,
                              env={"TWIN_PREDICTOR_PUBLISH_MS": 200,
                                   "TWIN_PREDICTOR_PERSIST_MS": 500})
        rep = self.wait_applied(self.stream(per_asset=30, rate=600))
        self.assert_exactly_once(rep)
        # The predictor persists each asset's model on that asset's node.
        wait_until(lambda: all(self.view.r.exists(f"twin:{{{a}}}:model") for a in self.assets),
                   30, interval=0.5, what="every asset's model state persisted")
        self.assertEqual(pred.metric("twin_predictor_persist_errors_total"), 0)
        # The scenario runner reads its live snapshot across the nodes.
        scen = self.h.service("twin-scenario", broker=self.broker, redis=self.cluster,
                              env={"TWIN_MODEL": str(th.DEPLOY_DIR / "plant.json")})
        ctl = ctlkit.Ctl(self.h, broker=self.broker, redis=self.cluster)
        res = ctl.run("scenario", "run", "--demand", "1.2", "--horizon", "8h",
                      "--replications", "4", "--json", timeout=120)
        self.assertEqual(res.returncode, 0, res.stdout + res.stderr)
        self.assertGreater(scen.metric('twin_scenario_requests_total{outcome="ok"}'), 0)


if __name__ == "__main__":
    th.main()
