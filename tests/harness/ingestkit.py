# SPDX-License-Identifier: Apache-2.0
# twin-ingest helpers shared by the integration and fault tests: a running stack, sending telemetry, reading state and history.
"""A twin-ingest stack on top of twinharness: Redis, Mosquitto, one or more ingest
instances, a publisher and a subscriber for Rejected messages, plus readers for the Redis keys
of DESIGN.md ("Redis keys") and checks of exactly-once delivery."""

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

    def __init__(self, h, workers=4, env=None, instances=1, start=True, redis_kw=None):
        self.h = h
        self.redis = h.redis(**(redis_kw or {}))
        self.broker = h.mosquitto()
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
        self.infos = {}  # (asset, seq) -> MQTTMessageInfo
        self.sent_per_asset = {a: 0 for a in self.assets}
        self._stop = threading.Event()
        self._thread = None
        self.error = None
        self.started_at = None
        self.finished_at = None

    @staticmethod
    def samples(asset_index, seq):
        return {"temp": 20.0 + (seq % 50) * 0.1 + asset_index, "rpm": float(seq)}

    def _run(self):
        try:
            sent = 0
            t0 = time.monotonic()
            for seq in range(1, self.per_asset + 1):
                for i, asset in enumerate(self.assets):
                    if self._stop.is_set():
                        return
                    payload = th.telemetry(self.samples(i, seq), seq=seq)
                    info = self.client.publish(telemetry_topic(asset, self.root), payload, qos=1)
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

    def acked(self):
        return sum(1 for info in list(self.infos.values()) if info.is_published())

    def acked_keys(self):
        return {k for k, info in list(self.infos.items()) if info.is_published()}


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
