# SPDX-License-Identifier: Apache-2.0
# Several twin-scenario runners sharing the request topic (behind the shipped Redis and broker users): each request runs once, a duplicate id is refused whichever runner it reaches, and a cancel reaches the runner that holds the request.
"""Two runners in one shared-subscription group. Mosquitto hands a group's messages to its
members in turn, which the cancel test uses to make a cancel reach the runner that does not
hold the request."""

import time

import scenkit as sk
import twinharness as th
from twinharness import TwinTestCase, wait_until

DAY_MS = 24 * 3600 * 1000
# Runs for a minute or more: cancelled, never waited for.
LONG_SWEEP = {"method": "GRID", "objective": "throughput", "maximize": True,
              "parameters": [{"path": "station.press.machines", "min": 1, "max": 20, "step": 1}]}
LONG = {"horizon_ms": 60 * DAY_MS, "replications": 20, "ignore_live": True}
N_REQUESTS = 6


def claim_key(rid):
    return f"twin:scenario:{rid}:runner"


class SeveralRunnersTest(TwinTestCase):

    def setUp(self):
        super().setUp()
        self.s = sk.ScenarioStack(self.h, acl=True, start=False, env={"TWIN_SCENARIO_JOBS": 1})
        self.runners = [self.s.start_runner() for _ in range(2)]
        for r in self.runners:
            r.wait_online()

    def total(self, series):
        return sum(r.metric(series) for r in self.runners)

    def holder(self, rid):
        """The runner whose claim holds rid, and the other one."""
        name = self.s.r.get(claim_key(rid))
        self.assertIsNotNone(name, f"no claim for {rid}")
        by_name = {r.instance: r for r in self.runners}
        h = by_name[name.decode()]
        return h, next(r for r in self.runners if r is not h)

    def test_each_request_runs_once_on_one_of_the_runners(self):
        for i in range(N_REQUESTS):
            self.s.submit(f"once-{i}", [{"kind": "DEMAND_FACTOR", "factor": 1.2}])
        for i in range(N_REQUESTS):
            self.assertEqual(self.s.wait_result(f"once-{i}").status, self.s.pb.ScenarioResult.OK)
        wait_until(lambda: self.total('twin_scenario_requests_total{outcome="ok"}') == N_REQUESTS,
                   10, what="every runner's count")
        per_runner = [r.metric('twin_scenario_requests_total{outcome="ok"}') for r in self.runners]
        self.assertTrue(all(n > 0 for n in per_runner), per_runner)  # the group shares them
        self.assertEqual([len(self.s.results(f"once-{i}")) for i in range(N_REQUESTS)],
                         [1] * N_REQUESTS)
        # Finished requests leave no claim: their ids may be sent again.
        self.assertEqual(self.s.r.keys("twin:scenario:*:runner"), [])

    def test_a_duplicate_id_is_refused_by_either_runner(self):
        self.s.submit("dup-1", sweep=LONG_SWEEP, **LONG)
        self.s.wait_running("dup-1")
        holder, other = self.holder("dup-1")
        mark = self.s.watch.count(sk.REJECTED_TOPIC)
        self.s.submit("dup-1")  # in turn: one reaches each runner
        self.s.submit("dup-1")
        wait_until(lambda: len([x for x in self.s.rejected(mark) if x.reason == "duplicate_id"])
                   == 2, 10, what="both duplicates refused")
        details = [x.detail for x in self.s.rejected(mark)]
        self.assertEqual(other.metric('twin_scenario_rejected_total{reason="duplicate_id"}'), 1)
        self.assertTrue(any(f"on runner {holder.instance}" in d for d in details), details)
        self.s.cancel("dup-1")
        self.assertEqual(self.s.wait_result("dup-1", timeout=20).status,
                         self.s.pb.ScenarioResult.CANCELLED)
        self.assertEqual(len(self.s.results("dup-1")), 1)  # the duplicates never ran

    def test_a_cancel_that_reaches_the_other_runner_is_passed_on(self):
        self.s.submit("hold-1", sweep=LONG_SWEEP, **LONG)
        self.s.wait_running("hold-1")
        holder, other = self.holder("hold-1")
        # Probe with cancels of unknown ids until one lands on the holder: the next message
        # then goes to the other runner (the group's members take turns).
        for i in range(6):
            before = holder.metric('twin_scenario_rejected_total{reason="unknown_id"}')
            mark = self.s.watch.count(sk.REJECTED_TOPIC)
            self.s.cancel(f"probe-{i}")
            self.s.wait_rejected("unknown_id", start=mark)
            if holder.metric('twin_scenario_rejected_total{reason="unknown_id"}') > before:
                break
        else:
            self.fail("no probe reached the holding runner in 6 tries")
        self.s.cancel("hold-1")
        res = self.s.wait_result("hold-1", timeout=20)
        self.assertEqual(res.status, self.s.pb.ScenarioResult.CANCELLED)
        self.assertEqual(other.metric("twin_scenario_cancels_forwarded_total"), 1)
        self.assertEqual(holder.metric('twin_scenario_requests_total{outcome="cancelled"}'), 1)
        wait_until(lambda: self.s.r.get(claim_key("hold-1")) is None, 10,
                   what="the claim to be released")



class UpgradedRunnerTest(TwinTestCase):

    def test_a_session_from_before_the_shared_subscription_gets_each_request_once(self):
        """A runner's persistent session made by an earlier twin-scenario holds a plain
        subscription to the request topic; the broker keeps it across restarts, so without
        dropping it every request would reach the runner twice (the second refused as a
        duplicate, which twinctl and twin-mcp would report as a refusal)."""
        s = sk.ScenarioStack(self.h, start=False)
        instance = "upgraded-1"
        old = self.h.mqtt(s.broker, client_id=f"twin-scenario-{instance}", clean_start=False,
                          session_expiry_s=3600)
        old.subscribe(sk.REQUEST_TOPIC)
        old.close()
        runner = s.start_runner(instance=instance)
        runner.wait_online()
        mark = s.watch.count(sk.REJECTED_TOPIC)
        s.submit("once-after-upgrade")
        self.assertEqual(s.wait_result("once-after-upgrade").status, s.pb.ScenarioResult.OK)
        time.sleep(1.0)  # a second copy would be refused within milliseconds
        self.assertEqual(s.rejected(mark), [])
        self.assertEqual(runner.metric("twin_scenario_received_total"), 1)


if __name__ == "__main__":
    th.main()
