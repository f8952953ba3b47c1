# SPDX-License-Identifier: Apache-2.0
# The closed loop on the demo plant: predicted failure -> recommendation -> command -> less downtime, measured against the no-action baseline with a 95 % interval, every command inside the guardrails and in the audit stream.
"""Two arms run side by side, each a whole stack (Redis, Mosquitto, twin-ingest,
twin-predictor, twin-advisor, twin-devsim on deploy/plant.json): the baseline with the advisor's
autonomy off (it only advises), the treatment with it on. twin-devsim plays the same seeds in
both, accelerated, over the same span of device time, and reports each machine's downtime by
cause; its machines' lives come from a stream of their own, so the arms differ by what the
commands did, not by the luck of the draw. A pair is (seed, machine): the difference of its
downtime between the arms. The mean difference's 95 % t-interval must lie below zero. Every
Command a devsim received must be in twin:audit as a `command` entry, inside the plant model's
ranges and rate limits."""

import json
import math
import statistics
import threading

import twinharness as th
import twinutil as tu
from twinharness import TwinTestCase

PLANT = th.DEPLOY_DIR / "plant.json"
ROOT = "twin/v1"
HOUR_MS = 3600 * 1000
DAY_MS = 24 * HOUR_MS
SEEDS = (11, 12, 13)
DAYS = 3
PERIOD_MS = 60_000
SPEED = 3600
T_975 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306,
         9: 2.262, 10: 2.228, 11: 2.201, 12: 2.179, 13: 2.160, 14: 2.145, 15: 2.131, 16: 2.120,
         17: 2.110, 18: 2.101, 19: 2.093, 20: 2.086, 22: 2.074, 24: 2.064, 29: 2.045}


def t_975(df):
    return T_975.get(df) or next(v for k, v in sorted(T_975.items(), reverse=True) if k <= df)


class Arm:
    """One stack and one devsim run; `report` is devsim's JSON report."""

    def __init__(self, h, autonomy, seed, start_ms):
        self.h, self.autonomy, self.seed, self.start_ms = h, autonomy, seed, start_ms
        tag = f"{seed}-{'on' if autonomy else 'off'}"  # each arm its own data dirs and logs
        self.redis = h.redis(name=f"redis-{tag}")
        self.broker = h.mosquitto(name=f"mosquitto-{tag}")
        common = {"TWIN_MODEL": str(PLANT)}
        h.service("twin-ingest", broker=self.broker, redis=self.redis,
                  env={**common, "TWIN_INGEST_MAX_PAST_MS": "0"})
        h.service("twin-predictor", broker=self.broker, redis=self.redis,
                  env={**common, "TWIN_PREDICTOR_HORIZON": "4h"})
        self.advisor = h.service("twin-advisor", broker=self.broker, redis=self.redis, env={
            **common, "TWIN_ADVISOR_AUTONOMY": "true" if autonomy else "false",
            "TWIN_ADVISOR_THREADS": "1"})
        self.client = h.mqtt(self.broker)
        self.client.subscribe(f"{ROOT}/asset/+/command")
        self.client.subscribe(f"{ROOT}/asset/+/alert")
        self.report = None

    def play(self):
        p = self.h.run("twin-devsim", [
            "--mode", "demo", "--seed", str(self.seed), "--period-ms", str(PERIOD_MS),
            "--speed", str(SPEED), "--start-ms", str(self.start_ms),
            "--count", str(DAYS * DAY_MS // PERIOD_MS), "--json",
            "--instance", f"devsim-{self.seed}-{int(self.autonomy)}"],
            env={"TWIN_MQTT_URL": self.broker.url, "TWIN_MODEL": str(PLANT)},
            timeout=DAYS * DAY_MS / 1000 / SPEED * 3 + 120)
        assert p.returncode == 0, p.stderr.decode()[-2000:]
        self.report = json.loads(p.stdout)

    def commands(self):
        return [m for m in self.client.messages() if m.topic.endswith("/command")]

    def downtime_min(self):
        return {a["asset"]: (a["downtime_failure_ms"] + a["downtime_maintenance_ms"]) / 60000
                for a in self.report["assets"]}

    def audit(self):
        r = self.redis.client()
        return [f for _, f in r.xrange("twin:audit")]


class ClosedLoopTest(TwinTestCase):

    def test_autonomy_cuts_downtime_against_no_action_and_stays_inside_its_guardrails(self):
        start = (tu.now_ms() // DAY_MS - DAYS - 1) * DAY_MS
        diffs, rows, arms = [], [], []
        for seed in SEEDS:
            pair = [Arm(self.h, False, seed, start), Arm(self.h, True, seed, start)]
            threads = [threading.Thread(target=a.play) for a in pair]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            self.assertTrue(all(a.report for a in pair), "a devsim run failed")
            base, auto = pair[0].downtime_min(), pair[1].downtime_min()
            for asset in sorted(base):
                if asset not in ("compressor-1", "chiller-1"):  # no station: nothing to do
                    diffs.append(auto[asset] - base[asset])
                    rows.append((seed, asset, base[asset], auto[asset]))
            arms.extend(pair)
        n = len(diffs)
        mean = statistics.mean(diffs)
        half = t_975(n - 1) * statistics.stdev(diffs) / math.sqrt(n)
        for seed, asset, b, a in rows:
            print(f"[closed-loop] seed={seed} {asset:12s} no-action {b:7.1f} min  autonomy "
                  f"{a:7.1f} min  diff {a - b:+7.1f}")
        for arm in arms:
            r = arm.report
            print(f"[closed-loop] seed={arm.seed} autonomy={arm.autonomy}: {r['failures']} "
                  f"failures, {r['maintenances']} maintenances, {r['seconds']:.0f} s, "
                  f"max lag {r['max_lag_ms']} ms")
        print(f"[closed-loop] downtime difference per machine over {DAYS} d: {mean:+.1f} min "
              f"(95 % CI {mean - half:+.1f} to {mean + half:+.1f}, n={n})")
        # Every command the devices got is an audited `command` inside the guardrails.
        for arm in arms:
            audit = arm.audit()
            sent = {f["command"] for f in audit if f["event"] == "command"}
            got = []
            for msg in arm.commands():
                c = tw_command(msg.payload)
                got.append(c)
                self.assertIn(c.id, sent)
                self.assertEqual(c.action.kind, "maintain")
                self.assertTrue(5 * 60000 <= c.action.duration_ms <= HOUR_MS)
            if not arm.autonomy:
                self.assertEqual(got, [])
                self.assertNotIn("command", [f["event"] for f in audit])
            else:
                self.assertGreater(len(got), 0)
                self.assertEqual(len(got), len(sent))
                self.assertEqual(arm.report["commands"]["applied"], len(got))
                self.assert_rate_limits([f for f in audit if f["event"] == "command"])
        self.assertLess(mean + half, 0, "autonomy must cut downtime with 95 % confidence")

    def assert_rate_limits(self, commands):
        """The audited commands (plant time) keep the model's intervals per machine and its
        hourly cap for the plant."""
        actions = json.loads(PLANT.read_text())["actions"]
        gap_ms = max(tu.duration_ms(actions["autonomy"]["min_interval"]),
                     tu.duration_ms(actions["maintain"]["min_interval"]))
        cap = actions["autonomy"]["max_per_hour"]
        times = sorted(int(f["ts_ms"]) for f in commands)
        by_asset = {}
        for f in commands:
            by_asset.setdefault(f["asset"], []).append(int(f["ts_ms"]))
        for asset, ts in by_asset.items():
            ts.sort()
            for a, b in zip(ts, ts[1:]):
                self.assertGreaterEqual(b - a, gap_ms, f"{asset}: commands {b - a} ms apart")
        for i, t in enumerate(times):
            in_hour = sum(1 for u in times[i:] if u - t < HOUR_MS)
            self.assertLessEqual(in_hour, cap, f"{in_hour} commands in the hour from {t}")


def tw_command(payload):
    pb = th.load_proto()
    c = pb.Command()
    c.ParseFromString(payload)
    return c


if __name__ == "__main__":
    th.main()
