# SPDX-License-Identifier: Apache-2.0
# Scenario isolation: the Redis user twin-scenario of deploy/users.acl can read twin:* and write only twin:scenario:*, the runner works behind it from the live state ingest wrote, and every live key is byte-identical before and after scenarios run.
import redis as redis_lib

import ingestkit as ik
import scenkit as sk
import twinharness as th
from twinharness import TwinTestCase

DAY_MS = 24 * 3600 * 1000


def scenario_user_client(redis, password=sk.SCENARIO_PASSWORD):
    return redis_lib.Redis(host=th.LOOPBACK, port=redis.port, username=sk.SCENARIO_USER,
                           password=password, socket_timeout=5, decode_responses=False)


def live_dump(r):
    """{key: (DUMP bytes, PTTL)} of every key outside twin:scenario:*."""
    out = {}
    for key in r.scan_iter(count=1000):
        if not key.startswith(b"twin:scenario:"):
            out[key] = (r.dump(key), r.pttl(key))
    return out


class IsolationTest(TwinTestCase):

    def test_the_runner_user_reads_twin_keys_and_writes_only_scenario_keys(self):
        redis = self.h.redis(aclfile=sk.ACL_FILE)
        admin = redis.client(decode=False)
        admin.hset("twin:{press-1}:state", mapping={"stroke_rate": "14", "_seq": "3"})
        admin.xadd("twin:{press-1}:history", {"ts_ms": "1", "seq": "1", "stroke_rate": "14"})
        admin.sadd("twin:assets", "press-1")
        admin.set("other:key", "x")
        u = scenario_user_client(redis)
        # Reads of twin:* work, in a transaction too (the snapshot).
        self.assertEqual(u.hgetall("twin:{press-1}:state")[b"stroke_rate"], b"14")
        pipe = u.pipeline(transaction=True)
        pipe.hgetall("twin:{press-1}:state")
        pipe.time()
        self.assertEqual(len(pipe.execute()), 2)
        # Writes to twin:scenario:* work.
        self.assertTrue(u.set("twin:scenario:x", b"result", ex=60))
        self.assertEqual(u.get("twin:scenario:x"), b"result")
        self.assertGreater(u.pttl("twin:scenario:x"), 0)
        # Everything else is refused with NOPERM: live keys, other keys, admin commands.
        refused = [
            lambda: u.hset("twin:{press-1}:state", "stroke_rate", "0"),
            lambda: u.set("twin:{press-1}:state", "x"),
            lambda: u.delete("twin:{press-1}:state"),
            lambda: u.xadd("twin:{press-1}:history", {"seq": "2"}),
            lambda: u.set("twin:{press-1}:history", "x"),
            lambda: u.sadd("twin:assets", "ghost"),
            lambda: u.set("twin:assets", "x"),
            lambda: u.set("twin:{press-1}:model", "x"),
            lambda: u.set("twin:{press-1}:prediction", "x"),
            lambda: u.set("twin:{press-1}:replay", "x"),
            lambda: u.set("other:key", "y"),
            lambda: u.get("other:key"),
            lambda: u.set("twin:scenario", "x"),  # not under twin:scenario:
            lambda: u.execute_command("COPY", "twin:scenario:x", "twin:{press-1}:state"),
            lambda: u.execute_command("RENAME", "twin:scenario:x", "twin:{press-1}:state"),
            lambda: u.eval("return redis.call('SET', KEYS[1], 'x')", 1, "twin:{press-1}:state"),
            lambda: u.execute_command("FUNCTION", "FLUSH"),
            lambda: u.flushall(),
            lambda: u.flushdb(),
            lambda: u.config_set("appendonly", "no"),
            lambda: u.execute_command("ACL", "SETUSER", "twin-scenario", "+@all", "~*"),
            lambda: u.publish("twin", "x"),
            lambda: u.execute_command("BGREWRITEAOF"),
            lambda: u.keys("*"),
            lambda: u.execute_command("SHUTDOWN", "NOSAVE"),
        ]
        for i, call in enumerate(refused):
            with self.assertRaises(redis_lib.exceptions.NoPermissionError, msg=f"call {i}"):
                call()
        self.assertEqual(admin.hgetall("twin:{press-1}:state"),
                         {b"stroke_rate": b"14", b"_seq": b"3"})
        self.assertEqual(admin.scard("twin:assets"), 1)
        self.assertEqual(admin.xlen("twin:{press-1}:history"), 1)
        self.assertEqual(admin.get("other:key"), b"x")
        with self.assertRaisesRegex(redis_lib.exceptions.RedisError, "WRONGPASS"):
            scenario_user_client(redis, password="wrong").ping()
        u.close()

    def test_scenarios_from_the_live_state_leave_every_live_key_byte_identical(self):
        s = ik.IngestStack(self.h, workers=1, redis_kw={"aclfile": sk.ACL_FILE},
                           env={"TWIN_MODEL": str(sk.DEMO_PLANT)})
        # Live state: press-1 stopped (stroke_rate below 1 is "down"), press-2 worn
        # (vibration 8 mm/s), weld-1 fine; plus a few more updates for history.
        seq = 0
        for i in range(5):
            seq += 1
            s.send("press-1", {"stroke_rate": 12.0 - 3 * i, "vibration": 3.0}, seq=seq)
            s.send("press-2", {"stroke_rate": 14.0, "vibration": 6.0 + 0.5 * i}, seq=seq)
            s.send("weld-1", {"vibration": 2.0, "weld_current": 10.0}, seq=seq)
        self.assertEqual(s.state("press-1")["stroke_rate"], "0")
        self.assertEqual(s.ingest.stop(), 0)  # nothing else writes from here on
        admin = s.redis.client(decode=False)
        before = live_dump(admin)
        self.assertGreaterEqual(len(before), 7)  # states, histories, replays, twin:assets
        admin.execute_command("ACL", "LOG", "RESET")

        stack = sk.ScenarioStack(self.h, acl=True, redis=s.redis, broker=s.broker)
        stack.submit("live-1", [{"kind": "MACHINE_DOWN", "target": "weld-1",
                                 "duration_ms": 4 * 3600000}], horizon_ms=2 * DAY_MS)
        res = stack.wait_result("live-1")
        self.assertEqual(res.status, stack.pb.ScenarioResult.OK, res.error)
        self.assertGreater(res.snapshot_ms, 0)
        log = stack.runner.log_text()
        self.assertIn("event=snapshot id=live-1 assets=5 found=3 machines_down=1", log)
        # press-2's vibration of 8 mm/s on the press's wear curve: 12 h of life used at 7.1,
        # 51 h at 11.0, so 21 h at 8; weld-1 (2 mm/s) is as new.
        self.assertIn("station=press signal=vibration age_s=75600", log)
        self.assertIn("station=weld signal=vibration age_s=0", log)
        stack.submit("sweep-1", sweep={"objective": "throughput", "maximize": True,
                                       "parameters": [{"path": "station.press.machines",
                                                       "values": [2, 3]}]})
        self.assertEqual(stack.wait_result("sweep-1").status, stack.pb.ScenarioResult.OK)
        # Wear is each machine's own: maintained at once, worn press-2 (21 h into a life of
        # 10 h on average) is spared the failure due any moment, while press-1 (new) only
        # loses its 8 h.
        stack.submit("maint-worn", [{"kind": "MAINTAIN", "target": "press-2",
                                     "duration_ms": 15 * 60000}],
                     horizon_ms=8 * 3600000, replications=20)
        stack.submit("maint-new", [{"kind": "MAINTAIN", "target": "press-1",
                                    "start_ms": 3600000, "duration_ms": 8 * 3600000}],
                     horizon_ms=14 * DAY_MS, replications=20)
        worn, new = stack.wait_result("maint-worn"), stack.wait_result("maint-new")
        self.assertEqual((worn.status, new.status), (stack.pb.ScenarioResult.OK,) * 2)
        self.assertLess(sk.kpi(worn, "station.press.downtime").difference.hi, 0)
        self.assertGreater(sk.kpi(new, "station.press.downtime").difference.mean, 2)
        stack.submit("bad-1", [{"kind": "MACHINE_DOWN", "target": "nowhere"}])
        self.assertEqual(stack.wait_result("bad-1").status, stack.pb.ScenarioResult.ERROR)
        stack.submit("long-1", sweep={"objective": "throughput", "maximize": True,
                                      "parameters": [{"path": "station.press.machines",
                                                      "min": 1, "max": 20, "step": 1}]},
                     horizon_ms=60 * DAY_MS, replications=20)
        stack.wait_running("long-1")
        stack.cancel("long-1")
        self.assertEqual(stack.wait_result("long-1", timeout=20).status,
                         stack.pb.ScenarioResult.CANCELLED)
        # The results went to twin:scenario:* (through the restricted user) ...
        for rid in ("live-1", "sweep-1", "bad-1", "long-1"):
            self.assertIsNotNone(stack.stored(rid), rid)
        users = [line for line in admin.execute_command("CLIENT", "LIST").decode().splitlines()
                 if "user=twin-scenario" in line]
        self.assertGreaterEqual(len(users), 2)  # the control loop and the workers
        # ... and nothing else changed, nor did the runner try anything it may not do.
        self.assertEqual(live_dump(admin), before)
        self.assertEqual(admin.execute_command("ACL", "LOG"), [])
        self.assertEqual(stack.runner.metric("twin_scenario_store_errors_total"), 0)

    def test_a_wrong_password_keeps_the_runner_waiting_and_unhealthy(self):
        stack = sk.ScenarioStack(self.h, acl=True, start=False)
        runner = stack.start_runner(
            env={"TWIN_REDIS_URL": f"redis://{sk.SCENARIO_USER}:nope@{th.LOOPBACK}:"
                                   f"{stack.redis.port}"}, ready=False)
        th.wait_until(lambda: "redis_unreachable" in runner.log_text(), 10,
                      what="the runner to log that Redis refused it")
        self.assertIn("WRONGPASS", runner.log_text())
        status, body = runner.healthz()
        self.assertEqual(status, 503, body)
        self.assertNotIn("nope", runner.log_text())  # the password is never logged
        self.assertTrue(runner.running)


if __name__ == "__main__":
    th.main()
