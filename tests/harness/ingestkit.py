# SPDX-License-Identifier: Apache-2.0
# twin-ingest helpers shared by the integration and fault tests: a running stack, sending telemetry, reading state and history.
"""A twin-ingest stack on top of twinharness: Redis, Mosquitto, one or more ingest
instances, a publisher and a subscriber for Rejected messages, plus readers for the Redis keys
of DESIGN.md ("Redis keys") and checks of exactly-once delivery."""

import os
import threading
import time

import twinharness as th

ROOT = "twin/v1"
REJECTED_TOPIC = f"{ROOT}/rejected/ingest"
OUTCOMES = ("applied", "late", "duplicate", "stale")

# Every reason word of DESIGN.md's list that ingest can produce (unknown_asset needs a model).
REASONS = ("empty_payload", "undecodable", "oversize", "asset_mismatch", "bad_asset_id",
           "no_samples", "too_many_samples", "bad_signal", "duplicate_signal", "non_finite",
           "ts_out_of_window")


def telemetry_topic(asset, root=ROOT):
    return f"{root}/asset/{asset}/telemetry"


def state_topic(asset, root=ROOT):
    return f"{root}/asset/{asset}/state"


def state_key(asset):
    return f"twin:{{{asset}}}:state"


def history_key(asset):
    return f"twin:{{{asset}}}:history"


def _pairs(fields):
    """A stream entry's fields as [(field, value)] in order (redis-py gives a dict, which
    keeps the order, or a flat list)."""
    if isinstance(fields, dict):
        return list(fields.items())
    return list(zip(fields[0::2], fields[1::2]))


def rejected_series(reason):
    return f'twin_ingest_rejected_total{{reason="{reason}"}}'


def totals(metrics):
    """received, each outcome, rejected (all reasons) and handled (outcomes + rejected) of one
    instance's /metrics."""
    out = {"received": metrics.get("twin_ingest_received_total", 0.0)}
    for o in OUTCOMES:
        out[o] = metrics.get(f"twin_ingest_{o}_total", 0.0)
    out["rejected"] = th.metric_sum(metrics, "twin_ingest_rejected_total")
    out["handled"] = sum(out[o] for o in OUTCOMES) + out["rejected"]
    return out


class IngestStack:
    """Redis + Mosquitto + twin-ingest instance(s), a publisher and a Rejected subscriber.

    send() publishes one Telemetry with QoS 1 and (by default) waits until ingest has
    handled it (its outcome or rejection counted), so consecutive sends are handled in order
    even with several workers."""

    def __init__(self, h, workers=4, env=None, instances=1, start=True, redis_kw=None,
                 broker_kw=None):
        self.h = h
        self.redis = h.redis(**(redis_kw or {}))
        self.broker = h.mosquitto(**(broker_kw or {}))
        self.r = self.redis.client()
        self.workers = workers
        self.env = dict(env or {})
        self.ingests = []
        self.rejects = h.mqtt(self.broker, client_id="rejected-watch")
        self.rejects.subscribe(REJECTED_TOPIC, qos=0)
        self.pub = h.mqtt(self.broker, client_id="device-pub")
        self.sent = 0  # telemetry published through send()/send_raw()
        self.base_handled = 0.0
        for _ in range(instances if start else 0):
            self.add_ingest()

    @property
    def ingest(self):
        return self.ingests[0]

    def add_ingest(self, env=None, start=True, **kw):
        variables = {"TWIN_INGEST_WORKERS": self.workers}
        variables.update(self.env)
        variables.update(env or {})
        svc = self.h.service("twin-ingest", broker=self.broker, redis=self.redis,
                             env=variables, start=start, **kw)
        self.ingests.append(svc)
        return svc

    # -- sending --

    def send_raw(self, topic, payload, settle=True, timeout=15.0):
        info = self.pub.publish(topic, payload, qos=1)
        self.sent += 1
        th.wait_until(info.is_published, timeout, what=f"PUBACK for a message to {topic}")
        if settle:
            self.settle(timeout)
        return info

    def send(self, asset, samples, seq=0, ts_ms=None, asset_id="", settle=True, topic=None):
        payload = th.telemetry(samples, asset_id=asset_id, seq=seq, ts_ms=ts_ms)
        return self.send_raw(topic or telemetry_topic(asset), payload, settle=settle)

    def totals(self):
        """totals() summed over every running instance."""
        out = {}
        for svc in self.ingests:
            if svc.running:
                for k, v in totals(svc.metrics()).items():
                    out[k] = out.get(k, 0.0) + v
        return out

    def settle(self, timeout=15.0):
        """Waits until the instances have handled (applied, late, duplicate, stale or
        rejected) as many messages as were sent through this stack; returns the totals."""
        want = self.sent - self.base_handled
        last = {}

        def handled():
            last.update(self.totals())
            return dict(last) if last.get("handled", 0) >= want else None
        try:
            return th.wait_until(handled, timeout, what=f"ingest to handle {want:.0f} messages",
                                 ignore=(OSError,))
        except th.WaitTimeout as exc:
            raise th.WaitTimeout(f"{exc} (totals: {last})") from None

    # -- Redis --

    def state(self, asset):
        return self.r.hgetall(state_key(asset))

    def history(self, asset):
        """[(entry id, [(field, value), ...])] in stream order, fields in their order."""
        raw = self.r.execute_command("XRANGE", history_key(asset), "-", "+")
        return [(eid, _pairs(fv)) for eid, fv in raw]

    def history_seqs(self, asset):
        return [int(dict(fields)["seq"]) for _, fields in self.history(asset)]

    def history_len(self, asset):
        return self.r.xlen(history_key(asset))


# ---- streams for scale and fault tests -------------------------------------------------------


class TelemetryStream:
    """Publishes seq 1..per_asset to every asset (round by round: seq k to all assets, then
    k+1), QoS 1, optionally paced to `rate` msg/s, in a background thread; remembers every
    message's MQTTMessageInfo so acknowledged (asset, seq) pairs can be listed."""

    def __init__(self, client, assets, per_asset, rate=None, root=ROOT, name="stream"):
        self.client = client
        self.assets = list(assets)
        self.per_asset = per_asset
        self.rate = rate
        self.root = root
        self.name = name
        self.infos = {}  # (asset, seq) -> MQTTMessageInfo; written under _infos_lock
        self._infos_lock = threading.Lock()
        self.sent_per_asset = {a: 0 for a in self.assets}
        self._stop = threading.Event()
        self._thread = None
        self.error = None
        self.started_at = None
        self.finished_at = None
        self.t0_ms = None  # the wall clock when publishing began (ms)

    @staticmethod
    def samples(asset_index, seq):
        return {"temp": 20.0 + (seq % 50) * 0.1 + asset_index, "rpm": float(seq)}

    def ts_ms(self, seq):  # pylint: disable=unused-argument
        """The device time of message `seq`: None, the wall clock when it is encoded."""
        return None

    def _run(self):
        try:
            sent = 0
            t0 = time.monotonic()
            self.t0_ms = th.now_ms()
            for seq in range(1, self.per_asset + 1):
                for i, asset in enumerate(self.assets):
                    if self._stop.is_set():
                        return
                    payload = th.telemetry(self.samples(i, seq), seq=seq, ts_ms=self.ts_ms(seq))
                    info = self.client.publish(telemetry_topic(asset, self.root), payload, qos=1)
                    with self._infos_lock:
                        self.infos[(asset, seq)] = info
                    self.sent_per_asset[asset] = seq
                    sent += 1
                    if self.rate:
                        ahead = t0 + sent / self.rate - time.monotonic()
                        if ahead > 0:
                            time.sleep(ahead)
        except Exception as exc:  # pylint: disable=broad-except
            self.error = exc
        finally:
            self.finished_at = time.monotonic()

    def start(self):
        self.started_at = time.monotonic()
        self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
        self._thread.start()
        return self

    def stop(self):
        self._stop.set()

    def join(self, timeout):
        self._thread.join(timeout)
        if self._thread.is_alive():
            self.stop()
            self._thread.join(5)
            raise th.WaitTimeout(f"{self.name} still publishing after {timeout} s")
        if self.error:
            raise self.error

    @property
    def sent(self):
        return len(self.infos)

    def infos_now(self):
        """A copy of infos: the publishing thread adds to it meanwhile."""
        with self._infos_lock:
            return dict(self.infos)

    def acked(self):
        return sum(1 for info in self.infos_now().values() if info.is_published())

    def acked_keys(self):
        return {k for k, info in self.infos_now().items() if info.is_published()}


def history_seq_report(stack, assets, expected_per_asset):
    """Compares every asset's history with seq {1..N_asset}: the figures of exactly-once.

    expected_per_asset: {asset: N}. Returns a dict with entries, duplicates, missing, extra,
    bad_state (assets whose state _seq is not N) and examples of each problem."""
    rep = {"entries": 0, "duplicates": 0, "missing": 0, "extra": 0, "bad_state": 0,
           "examples": []}
    pipe = stack.r.pipeline(transaction=False)
    for a in assets:
        pipe.execute_command("XRANGE", history_key(a), "-", "+")
        pipe.hget(state_key(a), "_seq")
    results = pipe.execute()
    for i, a in enumerate(assets):
        raw, top = results[2 * i], results[2 * i + 1]
        seqs = [int(dict(_pairs(fv))["seq"]) for _, fv in raw]
        n = expected_per_asset[a]
        want = set(range(1, n + 1))
        got = set(seqs)
        dup = len(seqs) - len(got)
        missing = sorted(want - got)
        extra = sorted(got - want)
        rep["entries"] += len(seqs)
        rep["duplicates"] += dup
        rep["missing"] += len(missing)
        rep["extra"] += len(extra)
        if str(top) != str(n) and n > 0:
            rep["bad_state"] += 1
        if (dup or missing or extra or (n and str(top) != str(n))) and len(rep["examples"]) < 5:
            rep["examples"].append({"asset": a, "expected_n": n, "history_len": len(seqs),
                                    "duplicated": sorted({s for s in seqs if seqs.count(s) > 1})[:10],
                                    "missing": missing[:10], "extra": extra[:10],
                                    "state_seq": top})
    return rep


def total_history(stack, assets):
    pipe = stack.r.pipeline(transaction=False)
    for a in assets:
        pipe.xlen(history_key(a))
    return sum(pipe.execute())


# ---- fault tests: figures of one fault, measured the same way in every test ------------------

# The uniform figures line of a fault test (tests/fault/test_*_faults.py): these first, in this
# order, then test-specific extras. FIGURE_DEFINITIONS says how each is measured.
FIGURE_KEYS = ("acked", "applied", "lost", "dup_applied", "out_of_order", "rejects",
               "recovery_s", "broker_dropped")
FIGURE_DEFINITIONS = {
    "acked": "device QoS 1 publishes whose PUBACK the device got (paho's is_published())",
    "applied": "distinct (asset, seq) of those sent that are in the assets' history streams",
    "lost": "acked (asset, seq) absent from history at the end",
    "dup_applied": "history entries beyond the first of one (asset, seq)",
    "out_of_order": "history entries (first of their seq) appended after an entry with a "
                    "higher seq of the same asset: applied as late (ingest_late is ingest's "
                    "own count of the same)",
    "rejects": "twin_ingest_rejected_total, all reasons, summed over running instances",
    "recovery_s": "from the end of the fault until every message acked by then (lost ones "
                  "aside) and the first one sent after it that was applied at all were in "
                  "history; first-seen times from polling history every 0.1 s",
    "broker_dropped": "mosquitto's $SYS/broker/publish/messages/dropped summed over broker "
                      "lifetimes (sys_interval 1, read after the next $SYS update), or the "
                      "number of its 'Outgoing messages are being dropped' log lines if "
                      "larger",
}
SYS_DROPPED = "$SYS/broker/publish/messages/dropped"
SYS_UPTIME = "$SYS/broker/uptime"
BROKER_DROP_LOG = "Outgoing messages are being dropped"
# Broker settings for fault tests: $SYS counters every second instead of every 10 s.
FAULT_BROKER_KW = {"extra_conf": "sys_interval 1\n"}


def figures_line(name, fig, extra_keys=None):
    """One line: FIGURES [name] then FIGURE_KEYS in order, then the rest of `fig` (or only
    extra_keys), `-` for a missing figure."""
    def fmt(v):
        if v is None:
            return "-"
        if isinstance(v, float):
            return f"{v:.1f}"
        return str(v)
    parts = [f"{k}={fmt(fig.get(k))}" for k in FIGURE_KEYS]
    rest = extra_keys if extra_keys is not None else [k for k in fig if k not in FIGURE_KEYS]
    parts += [f"{k}={fmt(fig.get(k))}" for k in rest]
    return f"FIGURES [{name}] " + " ".join(parts)


class BrokerDrops:
    """Messages the broker dropped: $SYS/broker/publish/messages/dropped (a counter per broker
    lifetime, so it restarts at 0 when the broker does: summed over lifetimes) and the
    broker's "Outgoing messages are being dropped" log lines (one per episode of dropping,
    not per message; every lifetime's log)."""

    def __init__(self, h, broker):
        self.broker = broker
        self.client = h.mqtt(broker, client_id=f"sys-watch-{os.urandom(3).hex()}")
        self.client.subscribe(SYS_DROPPED, qos=0)
        self.client.subscribe(SYS_UPTIME, qos=0)

    def sys_total(self):
        values = [int(float(m.payload)) for m in self.client.messages(SYS_DROPPED)]
        total, prev = 0, 0
        for v in values:
            if v < prev:  # the broker restarted: its counter started again
                total += prev
            prev = v
        return total + prev

    def log_lines(self):
        return self.broker.log_text().count(BROKER_DROP_LOG)

    def figures(self, fresh=True):
        """{broker_dropped (the larger of the two counts), broker_dropped_sys,
        broker_dropped_log}. `fresh` first waits for the broker's next $SYS update (it
        publishes its uptime with every one), so the counter includes drops until now."""
        if fresh:
            n = self.client.count(SYS_UPTIME)
            th.wait_until(lambda: self.client.count(SYS_UPTIME) > n, 10, interval=0.05,
                          what="the broker's next $SYS update")
            time.sleep(0.2)  # the rest of that update
        sys_n, log_n = self.sys_total(), self.log_lines()
        return {"broker_dropped": max(sys_n, log_n), "broker_dropped_sys": sys_n,
                "broker_dropped_log": log_n}


class HistoryTracker:
    """Reads the assets' history streams incrementally (XRANGE from the last id seen), keeping
    every entry's (asset, seq) in stream order and the monotonic time it was first seen."""

    def __init__(self, stack, assets):
        self.r = stack.r
        self.assets = list(assets)
        self.last_id = {a: "-" for a in self.assets}
        self.entries = {a: [] for a in self.assets}
        self.first_seen = {}
        self.count = 0

    def poll(self):
        """Reads what is new; returns the number of entries so far."""
        pipe = self.r.pipeline(transaction=False)
        for a in self.assets:
            start = self.last_id[a]
            pipe.execute_command("XRANGE", history_key(a), start if start == "-" else f"({start}",
                                 "+")
        now = time.monotonic()
        for a, raw in zip(self.assets, pipe.execute()):
            for eid, fv in raw:
                seq = int(dict(_pairs(fv))["seq"])
                self.entries[a].append(seq)
                self.first_seen.setdefault((a, seq), now)
                self.last_id[a] = eid
                self.count += 1
        return self.count

    def keys(self):
        return set(self.first_seen)

    def figures(self, sent_keys, acked_keys):
        """applied, lost, dup_applied, out_of_order, extra (entries of seqs never sent)."""
        distinct = self.keys()
        out_of_order = 0
        for a in self.assets:
            top, seen = 0, set()
            for seq in self.entries[a]:
                if seq not in seen and seq < top:
                    out_of_order += 1
                seen.add(seq)
                top = max(top, seq)
        return {"applied": len(distinct & sent_keys), "lost": len(acked_keys - distinct),
                "dup_applied": self.count - len(distinct), "out_of_order": out_of_order,
                "extra": len(distinct - sent_keys), "entries": self.count}


def _wait_still(read, quiet_s, timeout, interval=0.1):
    """Calls read() until its value has not changed for quiet_s (or timeout); the last value."""
    deadline = time.monotonic() + timeout
    last, since = read(), time.monotonic()
    while time.monotonic() < deadline:
        time.sleep(interval)
        now = read()
        if now != last:
            last, since = now, time.monotonic()
        elif time.monotonic() - since >= quiet_s:
            break
    return last


def is_acked(info):
    """info.is_published(), also for a message published while the client was disconnected:
    paho keeps it, sends it after the reconnect and marks it published on its PUBACK, but its
    is_published() raises for the MQTT_ERR_NO_CONN it was queued with."""
    try:
        return info.is_published()
    except RuntimeError:
        with info._condition:  # pylint: disable=protected-access
            return info._published  # pylint: disable=protected-access


class ResendingTelemetryStream(TelemetryStream):
    """A TelemetryStream whose publisher may lose its broker: acked() and acked_keys() count
    messages queued while disconnected once their PUBACK arrives (is_acked)."""

    def acked(self):
        return sum(1 for info in self.infos_now().values() if is_acked(info))

    def acked_keys(self):
        return {k for k, info in self.infos_now().items() if is_acked(info)}


class SeqClockTelemetryStream(ResendingTelemetryStream):
    """A ResendingTelemetryStream whose device time is the stream's start plus 10 ms per seq
    (not the wall clock at publishing): strictly increasing per asset even when the
    publishing thread falls behind its pace and catches up in a burst, where two messages of
    one asset could otherwise carry the same ts_ms."""

    def ts_ms(self, seq):
        return self.t0_ms + 10 * seq


class FaultChecks:
    """Mixin for fault tests (TwinTestCase subclasses): the figures line and the exactly-once
    assertion of a stream of `expected` messages."""

    def report(self, name, fig):
        print("\n" + figures_line(name, fig, [k for k in fig if k not in FIGURE_KEYS
                                               and k != "examples"]), flush=True)

    def assert_exactly_once(self, fig, expected):
        self.assertEqual(fig["acked"], fig["sent"], "the broker acknowledged every message")
        self.assertEqual(fig["sent"], expected)
        self.assertEqual((fig["applied"], fig["lost"], fig["dup_applied"], fig["extra"]),
                         (fig["acked"], 0, 0, 0), fig["examples"])
        self.assertEqual((fig["bad_state"], fig["rejects"], fig["broker_dropped"]), (0, 0, 0),
                         fig["examples"])


class _TimedPublisher:
    """Wraps an MqttClient for a TelemetryStream: remembers when each publish was made, in
    the order the stream makes them (the order of its `infos`); while `hold()` is in force,
    publish() waits (bounded) for `resume()` and the stream then catches up with its pace."""

    def __init__(self, client):
        self.client = client
        self.times = []
        self._go = threading.Event()
        self._go.set()

    def hold(self):
        self._go.clear()

    def resume(self):
        self._go.set()

    def publish(self, topic, payload, qos=1, retain=False):
        self._go.wait(60)
        self.times.append(time.monotonic())
        return self.client.publish(topic, payload, qos=qos, retain=retain)


def _wait_applied(tracker, keys, timeout, quiet_s=3.0, may_stop=lambda: True):
    """Polls history until every key in `keys` is in it, or nothing new arrived for quiet_s
    while may_stop() holds, or timeout."""
    deadline = time.monotonic() + timeout
    last, since = -1, time.monotonic()
    while time.monotonic() < deadline:
        n = tracker.poll()
        if keys <= tracker.keys():
            return True
        if n != last:
            last, since = n, time.monotonic()
        elif may_stop() and time.monotonic() - since > quiet_s:
            return False
        time.sleep(0.1)
    return False


def stream_with_fault(stack, assets, name, fault, per_asset, rate, drops=None,
                      recovery_timeout=30.0, drain_timeout=60.0, start_fraction=0.2,
                      stream_cls=ResendingTelemetryStream, quiet_s=0.0):
    """The approach of tests/fault/test_ingest_faults.py as a function, measuring instead of
    asserting (a fault may lose messages; the test decides what it accepts):

    streams seq 1..per_asset to every asset (QoS 1, `rate` msg/s) with stack.pub, runs
    `fault()` (it returns the monotonic time the fault ended; with quiet_s, `fault(resume)`
    after the device paused quiet_s, see there) once `start_fraction` of the
    stream is in history, waits for the recovery (history holds every message acked by the end
    of the fault) and the end of the stream, then returns the figures (FIGURE_KEYS and extras:
    sent, entries, extra, fault_s, ingest_* counters, broker_dropped_* with `drops`,
    bad_state, examples)."""
    total = len(assets) * per_asset
    tracker = HistoryTracker(stack, assets)
    pub = _TimedPublisher(stack.pub)
    stream = stream_cls(pub, assets, per_asset, rate=rate, name=name).start()
    th.wait_until(lambda: tracker.poll() >= total * start_fraction, 30, interval=0.05,
                  what=f"{start_fraction:.0%} of the stream applied before the fault")
    if quiet_s:
        # The device holds back for quiet_s before the fault, which gets a callable that lets
        # it go on (the stream then catches up with its pace).
        pub.hold()
        time.sleep(quiet_s)
    t_fault = time.monotonic()
    try:
        fault_end = fault(pub.resume) if quiet_s else fault()
    finally:
        pub.resume()
    acked_at_end = stream.acked_keys()
    # Recovery: every message acked by the end of the fault applied; or, once the stream is
    # over, history holding still for 3 s (messages were lost: the figures say how many).
    _wait_applied(tracker, acked_at_end, recovery_timeout,
                  may_stop=lambda: stream.finished_at is not None)
    stream.join(120)
    stack.pub.wait_acked(60)
    sent_keys, acked_keys = set(stream.infos), stream.acked_keys()
    _wait_applied(tracker, acked_keys, drain_timeout)
    # Redelivered copies may still trickle in: wait until history holds still for 1 s.
    _wait_still(tracker.poll, 1.0, 15.0)
    fig = {"sent": stream.sent, "acked": stream.acked()}
    fig.update(tracker.figures(sent_keys, acked_keys))
    # Back to normal: everything acked by the end of the fault is applied (the lost ones, if
    # any, never arrive: the last of the others), and so is a message sent after it.
    applied = tracker.keys()
    sent_at = dict(zip(stream.infos, pub.times))
    last_seen = max((tracker.first_seen[k] for k in acked_at_end & applied), default=fault_end)
    after = [tracker.first_seen[k] for k in applied if sent_at.get(k, 0) >= fault_end]
    if after:
        last_seen = max(last_seen, min(after))
    fig["recovery_s"] = max(0.0, last_seen - fault_end)
    # When the lost ones were sent, from the start of the fault (negative: before it).
    lost_at = sorted(sent_at[k] - t_fault for k in acked_keys - applied if k in sent_at)
    fig["lost_sent_from_s"] = lost_at[0] if lost_at else None
    fig["lost_sent_to_s"] = lost_at[-1] if lost_at else None
    fig["fault_s"] = fault_end - t_fault
    fig["acked_at_fault_end"] = len(acked_at_end)
    m = stack.totals()
    fig["rejects"] = int(m.get("rejected", 0))
    for k in ("received", "applied", "late", "duplicate", "stale"):
        fig[f"ingest_{k}"] = int(m.get(k, 0))
    fig["ingest_redis_errors"] = int(sum(svc.metric("twin_ingest_redis_errors_total")
                                         for svc in stack.ingests if svc.running))
    if drops is not None:
        fig.update(drops.figures())
    rep = history_seq_report(stack, assets, dict(stream.sent_per_asset))
    fig["bad_state"] = rep["bad_state"]
    fig["examples"] = rep["examples"]
    return fig
