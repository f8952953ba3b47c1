# SPDX-License-Identifier: Apache-2.0
# twin-predictor instances splitting the assets on a real broker and Redis: each asset modelled by one instance, a clean stop hands its assets over with their learning, a stale member's status cleared by hand, and the partition setting checked.
"""Two twin-predictor instances (partition "asset", the default) behind one twin-ingest.
Who models an asset is read from each instance's gauges and counters: the assets gauge says
how many it holds, not_owned how many TwinStates it skipped as another's."""

import time

import ingestkit as ik
import predkit as pk
import twinharness as th
from twinharness import TwinTestCase, wait_until

N_ASSETS = 24
TIMEOUT_S = 20


class PredictorPartitionTest(TwinTestCase):

    def setUp(self):
        super().setUp()
        self.s = pk.PredictorStack(self.h, start_predictor=False,
                                   env={"TWIN_PREDICTOR_PERSIST_MS": 300})
        self.assets = [f"pp-{i:02d}" for i in range(N_ASSETS)]
        self.seq = 0

    def start(self, n):
        out = []
        for _ in range(n):
            p = self.s.start_predictor()
            p.wait_online()
            out.append(p)
        return out

    def round(self):
        """One TwinState per asset, each value a step on from the last."""
        self.seq += 1
        for a in self.assets:
            self.s.send(a, {"temp": 20.0 + self.seq % 7, "load": float(self.seq)}, seq=self.seq,
                        ts_ms=th.now_ms(), settle=False)
        self.s.settle()

    @staticmethod
    def held(predictors):
        return [p.metric("twin_predictor_assets") for p in predictors]

    def wait_held(self, predictors, want, what):
        """Sends rounds until the instances hold `want` (a list of counts, or a predicate)."""
        ok = want if callable(want) else (lambda h: h == want)

        def check():
            self.round()
            h = self.held(predictors)
            return h if ok(h) else None
        return wait_until(check, TIMEOUT_S, interval=0.1, what=what)

    def test_each_asset_is_modelled_by_exactly_one_of_two_instances(self):
        a, b = self.start(2)
        held = self.wait_held([a, b], lambda h: sum(h) == N_ASSETS and min(h) > 0,
                              "the two instances to split the assets")
        for _ in range(3):
            self.round()
        self.assertEqual(sum(self.held([a, b])), N_ASSETS)
        self.assertEqual([a.metric("twin_predictor_members"), b.metric("twin_predictor_members")],
                         [2.0, 2.0])
        # Every TwinState reached both; each skipped exactly the other's.
        states = [p.metric("twin_predictor_states_total") for p in (a, b)]
        skipped = [p.metric("twin_predictor_not_owned_total") for p in (a, b)]
        self.assertEqual(states[0], states[1])
        self.assertAlmostEqual(skipped[0] + skipped[1], states[0], delta=N_ASSETS)
        # Every asset is predicted, each from its whole series.
        for asset in self.assets:
            p = self.s.wait_prediction(asset, 0)
            self.assertEqual(p.asset_id, asset)
        print(f"[figures] split {held}, states {states}, skipped {skipped}", flush=True)

    def test_a_clean_stop_hands_the_assets_over_with_their_learning(self):
        a, b = self.start(2)
        self.wait_held([a, b], lambda h: sum(h) == N_ASSETS and min(h) > 0, "a split")
        for _ in range(5):
            self.round()
        b_assets = int(b.metric("twin_predictor_assets"))
        self.assertEqual(b.stop(), 0)  # writes its models, then "offline"
        self.wait_held([a], [float(N_ASSETS)], "the survivor to hold every asset")
        restored = a.metric('twin_predictor_restored_signals_total{from="model"}')
        self.assertEqual(restored, 2 * b_assets)  # temp and load of each asset taken over
        self.assertEqual(a.metric("twin_predictor_members"), 1.0)
        # b comes back (a new process, a clean session): a gives its share back.
        b.start()
        b.wait_online()
        self.wait_held([a, b], lambda h: sum(h) == N_ASSETS and min(h) > 0, "the split again")
        self.assertEqual(a.metric("twin_predictor_released_assets_total"), float(b_assets))

    def test_a_stale_member_holds_its_share_until_its_status_is_cleared(self):
        a, b = self.start(2)
        self.wait_held([a, b], lambda h: sum(h) == N_ASSETS and min(h) > 0, "a split")
        # An instance the broker still lists as online, with no process behind it.
        ghost = f"{pk.ROOT}/service/predictor/ghost-1/status"
        op = self.h.mqtt(self.s.broker, client_id="operator-x")
        op.publish(ghost, b"online", qos=1, retain=True)
        op.wait_acked()
        wait_until(lambda: a.metric("twin_predictor_members") == 3.0 and
                   b.metric("twin_predictor_members") == 3.0, TIMEOUT_S, what="3 members")
        held = self.wait_held([a, b], lambda h: 0 < sum(h) < N_ASSETS, "the ghost's share to go")
        # Cleared (an empty retained message): its assets come back to the live two.
        op.publish(ghost, b"", qos=1, retain=True)
        op.wait_acked()
        self.wait_held([a, b], lambda h: sum(h) == N_ASSETS, "every asset held again")
        self.assertEqual(a.metric("twin_predictor_members"), 2.0)
        print(f"[figures] held with a ghost member: {held} of {N_ASSETS}", flush=True)

    def test_a_late_instance_sees_the_others_before_it_takes_any_asset(self):
        a, = self.start(1)
        self.wait_held([a], [float(N_ASSETS)], "one instance to hold everything")
        b, = self.start(1)
        # Its first members line already lists both: it never held an asset it does not own.
        self.wait_held([a, b], lambda h: sum(h) == N_ASSETS and min(h) > 0, "a split")
        first = next(line for line in b.log_text().splitlines() if "event=members" in line)
        self.assertIn(a.instance, first)
        self.assertIn("assets=0 ", first)
        self.assertEqual(b.metric("twin_predictor_released_assets_total"), 0.0)

    def test_bad_partition_setting_is_refused_at_start(self):
        res = self.h.run("twin-predictor", env={"TWIN_PREDICTOR_PARTITION": "round-robin",
                                                "TWIN_REDIS_URL": self.s.redis.url})
        self.assertEqual(res.returncode, 2, res.stderr)
        self.assertIn(b"must be asset or shared", res.stderr)
        res = self.h.run("twin-predictor", args=["--partition", "shared", "--check-config"])
        self.assertEqual(res.returncode, 0, res.stderr)


if __name__ == "__main__":
    th.main()
