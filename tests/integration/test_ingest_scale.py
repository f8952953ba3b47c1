# SPDX-License-Identifier: Apache-2.0
# twin-ingest under load: 20,000 QoS 1 messages over 100 assets applied exactly once, two instances sharing one group, and the TwinStates that follow.
import time

import ingestkit as ik
import twinharness as th
from twinharness import TwinTestCase, wait_until


def assets_named(n):
    return [f"asset-{i:03d}" for i in range(n)]


class IngestScaleTest(TwinTestCase):

    def load(self, s, assets, per_asset, label):
        """Publishes seq 1..per_asset to every asset as fast as QoS 1 allows and waits until
        ingest handled every message; returns the summed totals."""
        total = len(assets) * per_asset
        stream = ik.TelemetryStream(s.pub, assets, per_asset, name=label)
        t0 = time.monotonic()
        stream.start()
        stream.join(180)
        s.pub.wait_acked(180)
        self.assertEqual(stream.acked(), total, "every message PUBACKed by the broker")
        t_acked = time.monotonic()
        last = {}

        def drained():
            last.update(s.totals())
            return last["handled"] >= total
        wait_until(drained, 240, interval=0.25, what=f"{total} messages handled",
                   ignore=(OSError,))
        t_done = time.monotonic()
        print(f"\n[{label}] {total} msgs: published+acked in {t_acked - t0:.1f} s, all handled "
              f"after {t_done - t0:.1f} s ({total / (t_done - t0):.0f} msg/s); "
              f"applied={last['applied']:.0f} late={last['late']:.0f} "
              f"duplicate={last['duplicate']:.0f} stale={last['stale']:.0f} "
              f"rejected={last['rejected']:.0f}", flush=True)
        return dict(last)

    def assert_exactly_once(self, s, assets, per_asset, t):
        total = len(assets) * per_asset
        rep = ik.history_seq_report(s, assets, {a: per_asset for a in assets})
        print(f"history entries={rep['entries']} duplicates={rep['duplicates']} "
              f"missing={rep['missing']} bad_state={rep['bad_state']}", flush=True)
        self.assertEqual((rep["entries"], rep["duplicates"], rep["missing"], rep["extra"]),
                         (total, 0, 0, 0), rep["examples"])
        self.assertEqual(rep["bad_state"], 0, f"assets whose _seq != {per_asset}: "
                         f"{rep['examples']}")
        self.assertEqual(t["received"], total)
        # Each message changes state once (applied) or, when a racing session already applied
        # a higher seq of the same asset, goes to history only (late): never both, never twice.
        self.assertEqual(t["applied"] + t["late"], total)
        self.assertEqual((t["duplicate"], t["stale"], t["rejected"]), (0, 0, 0))
        self.assertEqual(s.r.scard("twin:assets"), len(assets))

    def test_20000_messages_over_100_assets_are_applied_exactly_once(self):
        s = ik.IngestStack(self.h)
        assets = assets_named(100)
        t = self.load(s, assets, 200, "one instance")
        self.assert_exactly_once(s, assets, 200, t)
        m = s.ingest.metrics()
        self.assertEqual(m["twin_ingest_redis_errors_total"], 0)
        self.assertEqual(m["twin_ingest_state_published_total"], t["applied"])

    def test_two_instances_share_the_load_and_apply_everything_once(self):
        s = ik.IngestStack(self.h, instances=2)
        self.assertNotEqual(s.ingests[0].instance, s.ingests[1].instance)
        assets = assets_named(100)
        t = self.load(s, assets, 100, "two instances")
        self.assert_exactly_once(s, assets, 100, t)
        got = [ik.totals(x.metrics())["received"] for x in s.ingests]
        print(f"[two instances] received per instance: {got}", flush=True)
        self.assertTrue(all(g > 0 for g in got), f"both instances take messages: {got}")
        self.assertEqual(sum(got), 10_000)

    # ---- the TwinStates that follow the applies ---------------------------------------------

    def twin_state_progress(self, states, assets, per_asset, applied, label, timeout):
        """Waits up to `timeout` s for one TwinState per applied message on a live
        subscription; returns (received, {asset: highest seq seen})."""
        pb = th.load_proto()
        highest = {}
        seen = [0]
        updates = set()  # (asset, seq, ingest_ms): a settle republish repeats one exactly

        def caught_up():
            msgs = states.messages()
            for m in msgs[seen[0]:]:
                st = pb.TwinState.FromString(m.payload)
                highest[st.asset_id] = max(highest.get(st.asset_id, 0), st.seq)
                updates.add((st.asset_id, st.seq, st.ingest_ms))
            seen[0] = len(msgs)
            return len(updates) >= applied
        t0 = time.monotonic()
        try:
            wait_until(caught_up, timeout, interval=0.2, what="the TwinStates")
        except th.WaitTimeout:
            pass
        behind = [a for a in assets if highest.get(a) != per_asset]
        print(f"[{label}] TwinStates received {len(updates)} distinct ({seen[0]} in all) of "
              f"{applied:.0f} applied, "
              f"{time.monotonic() - t0:.1f} s after the apply finished; assets without a "
              f"TwinState for their last seq: {len(behind)}", flush=True)
        return len(updates), highest

    def test_twin_states_reach_the_broker_within_15_s_of_apply(self):
        s = ik.IngestStack(self.h)
        assets = assets_named(100)
        states = self.h.mqtt(s.broker, client_id="states")
        states.subscribe(ik.state_topic("+"))
        t = self.load(s, assets, 200, "twin state latency")
        received, highest = self.twin_state_progress(states, assets, 200, t["applied"],
                                                     "twin state latency", 15)
        self.assertEqual(received, t["applied"],
                         "TwinStates still missing 15 s after every message was applied")
        self.assertEqual({a: highest.get(a) for a in assets}, {a: 200 for a in assets})

    def test_retained_twin_state_is_the_latest_after_concurrent_apply(self):
        # Two instances race on few assets, so consecutive seqs of an asset are applied, and
        # their TwinStates published, by different sessions.
        s = ik.IngestStack(self.h, instances=2)
        assets = assets_named(10)
        per_asset = 300
        states = self.h.mqtt(s.broker, client_id="states")
        states.subscribe(ik.state_topic("+"))
        t = self.load(s, assets, per_asset, "retained state")
        self.twin_state_progress(states, assets, per_asset, t["applied"], "retained state", 60)
        pb = th.load_proto()
        stale = {}

        def retained_matches_redis():
            """A fresh subscriber's retained states, compared with Redis."""
            late = self.h.mqtt(s.broker, client_id=f"late-{time.monotonic_ns()}")
            late.subscribe(ik.state_topic("+"))
            wait_until(lambda: len(late.messages()) >= len(assets), 10, what="retained states")
            stale.clear()
            for m in late.messages():
                st = pb.TwinState.FromString(m.payload)
                in_redis = s.state(st.asset_id)
                values = {x.signal: "%.17g" % x.value for x in st.samples}
                if (str(st.seq) != in_redis["_seq"] or
                        values != {k: v for k, v in in_redis.items() if not k.startswith("_")}):
                    stale[st.asset_id] = (st.seq, int(in_redis["_seq"]))
            late.close()
            return not stale
        # Racing sessions may leave an older state retained for a moment; the session that
        # applied the later update republishes the newest 200 ms after the burst (settle).
        t0 = time.monotonic()
        try:
            wait_until(retained_matches_redis, 5, interval=0.5, what="retained = Redis")
        except th.WaitTimeout:
            pass
        print(f"[retained state] assets whose retained TwinState differs from Redis: "
              f"{len(stale)} of {len(assets)} after {time.monotonic() - t0:.1f} s; "
              f"(retained seq, Redis _seq): {sorted(stale.items())[:5]}", flush=True)
        self.assertEqual(stale, {}, "retained TwinState older than the state in Redis")


if __name__ == "__main__":
    th.main()
