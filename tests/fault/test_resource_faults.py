# SPDX-License-Identifier: Apache-2.0
# Resource faults: Redis at maxmemory (noeviction), twin-predictor stopped past its keepalive (a slow consumer), and devices with skewed clocks (faketime).
"""Each test runs real processes, applies one fault and prints one line `FIGURES [fault]
acked= applied= lost= dup_applied= out_of_order= rejects= recovery_s= broker_dropped= ...`
(definitions: ingestkit.FIGURE_DEFINITIONS; per test below where a figure means more)."""
import json
import os
import subprocess
import time

import ingestkit as ik
import twinharness as th
from twinharness import TwinTestCase, wait_until

N_ASSETS = 40
PER_ASSET = 100          # 4000 messages per stream
RATE = 600               # msg/s
FAULT_ENV = {"TWIN_MQTT_KEEPALIVE_S": 2, "TWIN_REDIS_TIMEOUT_MS": 500,
             "TWIN_INGEST_SHUTDOWN_GRACE_MS": 2000}
OOM_HOLD_S = 4.0
# > 1.5 x keepalive (2 s) + 6 s: mosquitto 2.0 checks keepalives only every 5-6 s
# (keepalive__check), so only then has it surely ended the stopped predictor's connection.
PAUSE_S = 10.0
SKEW_ASSETS = 4          # twin-devsim's load-000001..load-000004
SKEW_PER = 10            # messages per asset per skewed device run
# faketime offsets of the device's clock and what DESIGN.md's window makes of them.
SKEW_CASES = ((None, "accepted"), ("+2h", "rejected"), ("-8d", "rejected"),
              ("-3d", "accepted"), ("+5m", "accepted"))


def oom_errors(r):
    """Commands Redis refused with OOM since it started (INFO errorstats)."""
    stat = r.info("errorstats").get("errorstat_OOM", {})
    if isinstance(stat, str):  # redis-py 4.3 leaves "count=N" unparsed
        stat = dict(kv.split("=", 1) for kv in stat.split(","))
    return int(stat.get("count", 0))


class ResourceFaultTest(ik.FaultChecks, TwinTestCase):

    def setUp(self):
        super().setUp()
        self.assets = [f"r{i:02d}" for i in range(N_ASSETS)]

    def stack(self, workers=4):
        self.s = ik.IngestStack(self.h, workers=workers, env=FAULT_ENV,
                                broker_kw=ik.FAULT_BROKER_KW)
        self.drops = ik.BrokerDrops(self.h, self.s.broker)
        return self.s

    # -- Redis out of memory --

    def test_redis_at_maxmemory_is_back_pressure_not_loss(self):
        # Redis at its maxmemory with the shipped noeviction policy: every write is refused
        # with OOM for OOM_HOLD_S, which ingest must treat like Redis being down (retry, take
        # nothing new: the broker queues), not as a bad message (reject) or a lost one.
        s = self.stack()
        r = s.r
        seen = {}

        def fault():
            # Just below what Redis uses: a limit just above it is reached by the stream
            # within a second, but then freed buffers (replies, the AOF's) can take Redis back
            # under it and let writes through now and then. Here every write is refused.
            used = int(r.info("memory")["used_memory"])
            r.config_set("maxmemory", max(1 << 20, used - 64 * 1024))
            t0 = time.monotonic()
            wait_until(lambda: oom_errors(r) > 0, 15, interval=0.02,
                       what="Redis to refuse a write with OOM")
            seen["oom_after_s"] = time.monotonic() - t0
            time.sleep(OOM_HOLD_S)
            seen["oom_errors"] = oom_errors(r)
            seen["errors_during"] = s.ingest.metric("twin_ingest_redis_errors_total")
            r.config_set("maxmemory", 0)
            return time.monotonic()
        fig = ik.stream_with_fault(s, self.assets, "redis maxmemory noeviction", fault,
                                   PER_ASSET, RATE, drops=self.drops)
        fig.update(seen)
        fig["worker_restarts"] = int(s.ingest.metric("twin_ingest_worker_restarts_total"))
        log = s.ingest.log_text()
        fig["oom_log_lines"] = sum(1 for line in log.splitlines()
                                   if "event=redis_apply_failed" in line and "OOM" in line)
        self.report("redis maxmemory noeviction", fig)
        self.assert_exactly_once(fig, N_ASSETS * PER_ASSET)
        self.assertGreater(fig["errors_during"], 0, "ingest met the OOM errors")
        self.assertGreater(fig["oom_log_lines"], 0, "and said so in its log")
        self.assertEqual(fig["worker_restarts"], 0, "no worker died of it")
        s.ingest.wait_healthy(timeout=10)

    # -- slow consumer: twin-predictor stopped --
    #
    # recovery_s of these tests: from the end of the fault (SIGCONT, restart) until the
    # predictor had received as many TwinStates as ingest had published by then (less those
    # `before`, for a new process); telemetry_recovery_s is the ingest figure.

    @staticmethod
    def twinstates(s):
        """TwinStates ingest has published so far: first publications and republished ones
        (README, "The retained state settles"); the predictor's subscription gets both."""
        m = s.ingest.metrics()
        return int(m.get("twin_ingest_state_published_total", 0) +
                   m.get("twin_ingest_state_republished_total", 0))

    def predictor(self, s, publish_ms=1000):
        return self.h.service("twin-predictor", broker=s.broker, redis=s.redis,
                              env={"TWIN_MQTT_KEEPALIVE_S": 2,
                                   "TWIN_PREDICTOR_PUBLISH_MS": publish_ms,
                                   "TWIN_PREDICTOR_PERSIST_MS": 500})

    def catch_up(self, s, pred, before, since):
        want = self.twinstates(s) - before
        wait_until(lambda: pred.metric("twin_predictor_states_total") >= want, 30,
                   interval=0.05, what=f"the predictor to catch up with {want} TwinStates",
                   ignore=(OSError,))
        return time.monotonic() - since

    def test_predictor_stopped_past_its_keepalive_gets_every_twinstate(self):
        # One ingest worker publishes each asset's TwinStates in order, and the stream's device
        # time grows with seq, so every TwinState the predictor receives teaches it each of
        # its two signals once: a duplicate or a republished state teaches nothing
        # (twin_predictor_updates_total counts only samples newer than the last).
        # No Prediction is published during the test (publish period of an hour): a QoS 1
        # publish that fails on the socket the broker closed while the predictor was stopped
        # trips Paho's use-after-free (README, "A Paho bug under broker faults"), seen in 2 of
        # ~8 runs of a gcc ASan build. This test is about the TwinStates it receives.
        s = self.stack(workers=1)
        pred = self.predictor(s, publish_ms=3_600_000)
        marks = {}

        def fault():
            pred.pause()
            time.sleep(PAUSE_S)
            pred.resume()
            marks["end"] = time.monotonic()
            marks["catchup_s"] = self.catch_up(s, pred, 0, marks["end"])
            return marks["end"]
        fig = ik.stream_with_fault(s, self.assets, "predictor SIGSTOP", fault, PER_ASSET, RATE,
                                   stream_cls=ik.SeqClockTelemetryStream)

        m = s.ingest.metrics()
        fig["twinstates_published"] = int(m.get("twin_ingest_state_published_total", 0))
        # Republished states (README, "The retained state settles"): a burst of the stream
        # can bring two updates of one asset within 25 ms; they are TwinStates too.
        fig["twinstates_republished"] = int(m.get("twin_ingest_state_republished_total", 0))
        want = fig["twinstates_published"] + fig["twinstates_republished"]
        wait_until(lambda: pred.metric("twin_predictor_states_total") >= want, 30,
                   interval=0.1, what=f"the predictor to receive the {want} TwinStates")
        pm = pred.metrics()
        fig["telemetry_recovery_s"] = fig["recovery_s"]
        fig["recovery_s"] = marks["catchup_s"]
        fig.update(self.drops.figures())
        fig["predictor_received"] = int(pm.get("twin_predictor_states_total", 0))
        fig["predictor_learnt"] = int(pm.get("twin_predictor_updates_total", 0)) // 2
        fig["predictor_dup_received"] = fig["predictor_received"] - want
        fig["predictor_missed"] = fig["twinstates_published"] - fig["predictor_learnt"]
        fig["predictor_rejected"] = int(th.metric_sum(pm, "twin_predictor_rejected_total"))
        fig["predictor_backpressure_waits"] = int(
            pm.get("twin_predictor_backpressure_waits_total", 0))
        fig["predictor_timed_out"] = s.broker.log_text().count(
            f"twin-predictor-{pred.instance} has exceeded timeout")
        self.report("predictor SIGSTOP", fig)
        self.assert_exactly_once(fig, N_ASSETS * PER_ASSET)
        self.assertEqual(fig["twinstates_published"], N_ASSETS * PER_ASSET)
        self.assertGreaterEqual(fig["predictor_timed_out"], 1,
                                "the broker ended the stopped predictor's connection")
        self.assertGreaterEqual(fig["predictor_received"], want)
        self.assertEqual(fig["predictor_learnt"], fig["twinstates_published"],
                         "every TwinState learnt once")
        self.assertEqual(fig["predictor_rejected"], 0)
        self.assertTrue(pred.running)

    @staticmethod
    def first_states(s):
        """TwinStates ingest has published for the first time (not republished ones): each
        carries one new sample of both signals."""
        return int(s.ingest.metrics().get("twin_ingest_state_published_total", 0))

    def test_predictor_killed_and_restarted_later_learns_what_was_published_meanwhile(self):
        # A predictor starts with a clean MQTT session (README, "Several predictor
        # instances"): the TwinStates published while it was down are not redelivered; it
        # learns them from the history stream when each asset's next TwinState makes it read
        # the stored model and replay the history since (README, "Learning survives
        # restarts"). So every sample published after the kill is learnt once the stream ends:
        # at least two observations (temp, rpm) per first-time TwinState since the kill.
        s = self.stack(workers=1)
        pred = self.predictor(s)
        marks = {}

        def fault():
            pred.kill9()
            marks["at_kill"] = self.first_states(s)
            time.sleep(3.0)
            pred.start()  # same instance name; a clean session
            marks["end"] = time.monotonic()
            pred.wait_ready()
            return marks["end"]
        fig = ik.stream_with_fault(s, self.assets, "predictor kill -9, restart 3 s later",
                                   fault, PER_ASSET, RATE, drops=None)
        since_kill = self.first_states(s) - marks["at_kill"]
        wait_until(lambda: pred.metric("twin_predictor_updates_total") >= 2 * since_kill, 30,
                   interval=0.1, what=f"the restarted predictor to learn the {since_kill} "
                                      "TwinStates' samples published since the kill")
        fig["telemetry_recovery_s"] = fig["recovery_s"]
        fig["recovery_s"] = time.monotonic() - marks["end"]
        fig.update(self.drops.figures())
        pm = pred.metrics()
        fig["twinstates_published_since_kill"] = since_kill
        fig["predictor_received_since_restart"] = int(pm.get("twin_predictor_states_total", 0))
        fig["predictor_learnt_since_restart"] = int(pm.get("twin_predictor_updates_total", 0))
        fig["predictor_restored_from_model"] = int(
            pm.get('twin_predictor_restored_signals_total{from="model"}', 0))
        fig["predictor_catch_up_logged"] = int("event=catch_up" in pred.log_text())
        self.report("predictor kill -9, restart 3 s later", fig)
        self.assert_exactly_once(fig, N_ASSETS * PER_ASSET)
        self.assertGreater(since_kill, 0)
        self.assertGreater(fig["predictor_restored_from_model"], 0)
        self.assertEqual(fig["predictor_catch_up_logged"], 1)
        self.assertEqual(int(th.metric_sum(pm, "twin_predictor_rejected_total")), 0)

    # -- devices with skewed clocks --
    #
    # DESIGN.md: device time must lie in [now - 7 days, now + 10 minutes] of ingest's clock,
    # else the message is rejected whole (`ts_out_of_window`); inside the window sequenced
    # telemetry is ordered by seq, not by time, and unsequenced telemetry updates the state
    # only if its ts_ms is not older than the stored _ts_ms.

    @staticmethod
    def faketime_env(variables):
        """The environment of a program run under faketime: its library is preloaded, so a
        sanitizer runtime linked dynamically (gcc's ASan) is not first in the library list
        and must not insist on it. And ASan's allocator must not return memory to the OS on a
        timer: with clang's static ASan, twinctl under faketime hung in its first malloc
        (waiting in the allocator's refill, most likely on the clock read that timer makes
        through faketime) on 35 of 35 runs; with the timer off, none of 10 did."""
        asan = os.environ.get("ASAN_OPTIONS", "")
        extra = "verify_asan_link_order=0:allocator_release_to_os_interval_ms=-1"
        return th.clean_env({**variables, "FAKETIME_DONT_FAKE_MONOTONIC": 1,
                             "ASAN_OPTIONS": f"{asan}:{extra}".lstrip(":")})

    def devsim(self, skew, seq_base, count):
        """twin-devsim (load mode: SKEW_ASSETS assets, seq_base..) under faketime `skew` (None:
        the real clock); its final report (sent, acked, ...)."""
        argv = [str(th.BIN_DIR / "twin-devsim"), "--mode", "load", "--assets", str(SKEW_ASSETS),
                "--rate", "400", "--count", str(count), "--seq-base", str(seq_base),
                "--faults=false", "--json", "--instance", f"dev{seq_base}"]
        if skew:
            argv = ["faketime", "-f", skew] + argv
        env = self.faketime_env({"TWIN_MQTT_URL": self.s.broker.url, "TWIN_LOG_LEVEL": "warn"})
        out = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=60,
                             start_new_session=True, check=False)
        self.assertEqual(out.returncode, 0, out.stderr[-2000:])
        return json.loads(out.stdout.strip().splitlines()[-1])

    def handled(self, n):
        wait_until(lambda: self.s.totals().get("handled", 0) >= n, 20, ignore=(OSError,),
                   what=f"ingest to handle {n} messages")

    def test_device_clock_skew_is_refused_outside_the_window_and_never_blocks_good_data(self):
        s = self.stack(workers=2)
        assets = [f"load-{i:06d}" for i in range(1, SKEW_ASSETS + 1)]
        sent = 0
        # seq ranges: case k uses 100k+1..100k+PER; the good device then sends 100k+50.
        for k, (skew, outcome) in enumerate(SKEW_CASES):
            base = 100 * k + 1
            before = {a: s.state(a) for a in assets}
            rej0 = s.totals().get("rejected", 0)
            late0 = s.totals().get("late", 0)
            t0 = time.monotonic()
            rep = self.devsim(skew, base, SKEW_PER * SKEW_ASSETS)
            sent += rep["sent"]
            self.handled(sent)
            after = {a: s.state(a) for a in assets}
            hist = {a: s.history_seqs(a) for a in assets}
            case = [(a, q) for a in assets for q in hist[a] if base <= q < base + SKEW_PER]
            now = th.now_ms()
            fig = {"acked": rep["acked"], "applied": len(set(case)),
                   "dup_applied": len(case) - len(set(case)),
                   "out_of_order": sum(1 for a in assets for i, q in enumerate(hist[a])
                                       if base <= q < base + SKEW_PER and
                                       any(p > q for p in hist[a][:i])),
                   "rejects": int(s.totals().get("rejected", 0) - rej0)}
            fig["lost"] = fig["acked"] - fig["applied"] - fig["rejects"]
            fig["skew"] = skew or "none"
            fig["state_ts_minus_now_s"] = round(
                min(int(after[a]["_ts_ms"]) for a in assets) / 1000 - now / 1000)
            # A correctly-clocked device (this test's client) right after the skewed one.
            t_good = time.monotonic()
            for a in assets:
                s.pub.publish(ik.telemetry_topic(a), th.telemetry({"t": 1.0}, seq=base + 49))
            sent += len(assets)
            wait_until(lambda: all(s.state(a).get("_seq") == str(base + 49) for a in assets),
                       20, what="the good device's telemetry to update every state")
            fig["recovery_s"] = time.monotonic() - t_good
            fig.update(self.drops.figures(fresh=False))
            fig["ts_out_of_window_total"] = int(
                s.ingest.metric(ik.rejected_series("ts_out_of_window")))
            fig["seconds"] = round(time.monotonic() - t0, 1)
            self.report(f"device clock {fig['skew']}", fig)
            self.assertEqual((fig["acked"], fig["dup_applied"], fig["lost"]),
                             (len(assets) * SKEW_PER, 0, 0))
            if outcome == "rejected":
                self.assertEqual((fig["applied"], fig["rejects"]), (0, fig["acked"]))
                self.assertEqual(after, before, "a refused message changes no state")
            else:
                self.assertEqual((fig["applied"], fig["rejects"]), (fig["acked"], 0))
                self.assertEqual({a: after[a]["_seq"] for a in assets},
                                 {a: str(base + SKEW_PER - 1) for a in assets})
            self.assertEqual(s.totals().get("late", 0), late0)
            for a in assets:  # the good message's own time is the state's time again
                self.assertLess(abs(int(s.state(a)["_ts_ms"]) - th.now_ms()), 30_000)
        self.unsequenced_case(s, assets[0], sent)

    def unsequenced_case(self, s, asset, sent):
        """Unsequenced telemetry (seq 0) from a device 5 min fast (inside the window), then
        from a correct one: DESIGN's rule keeps the state at the newest ts_ms, so the
        correct device's messages go to history only (counted late) until ingest's clock
        passes the skewed time; a sequenced message moves the state on at once."""
        late0 = s.totals().get("late", 0)
        rej0 = s.totals().get("rejected", 0)
        hist0 = len(s.history(asset))
        t_skew = time.monotonic()
        out = subprocess.run(
            ["faketime", "-f", "+5m", "sh", "-c",
             f'exec "$0" publish {asset} t=5 --quiet --ts-ms "$(date +%s%3N)"',
             str(th.BIN_DIR / "twinctl")],
            env=self.faketime_env({"TWIN_MQTT_URL": s.broker.url}),
            capture_output=True, text=True, timeout=30, start_new_session=True, check=False)
        self.assertEqual(out.returncode, 0, out.stderr[-2000:])
        self.handled(sent + 1)
        skewed_ts = int(s.state(asset)["_ts_ms"])
        self.assertGreater(skewed_ts - th.now_ms(), 240_000, "the +5 min sample is the state")
        for _ in range(3):
            s.pub.publish(ik.telemetry_topic(asset), th.telemetry({"t": 6.0}))
        self.handled(sent + 4)
        blocked = int(s.totals().get("late", 0) - late0)
        state_after = s.state(asset)
        t_good = time.monotonic()
        s.pub.publish(ik.telemetry_topic(asset), th.telemetry({"t": 7.0}, seq=10_000))
        wait_until(lambda: s.state(asset).get("_seq") == "10000", 20,
                   what="a sequenced message to update the state")
        seqs = s.history_seqs(asset)[hist0:]  # the 4 unsequenced ones, then seq 10000
        fig = {"acked": 5, "applied": len(seqs), "lost": 5 - len(seqs),
               "dup_applied": 0, "out_of_order": blocked,
               "rejects": int(s.totals().get("rejected", 0) - rej0),
               # the correct device's unsequenced telemetry reaches the state again only once
               # ingest's clock passes the skewed sample's time (blocked_for_up_to_s)
               "recovery_s": None, "skew": "+5m unsequenced",
               "good_unsequenced_blocked": blocked,
               "blocked_for_up_to_s": round((skewed_ts - th.now_ms()) / 1000),
               "sequenced_unblocks_s": round(time.monotonic() - t_good, 2),
               "seconds": round(time.monotonic() - t_skew, 1)}
        fig.update(self.drops.figures())
        self.report("device clock +5m, unsequenced", fig)
        self.assertEqual(blocked, 3, "DESIGN: an older unsequenced ts_ms goes to history only")
        self.assertEqual((fig["applied"], fig["rejects"]), (5, 0))
        self.assertEqual(int(state_after["_ts_ms"]), skewed_ts)
        self.assertEqual(fig["broker_dropped"], 0)


if __name__ == "__main__":
    th.main()
