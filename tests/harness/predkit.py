# SPDX-License-Identifier: Apache-2.0
# Test kit for twin-predictor: ingest + predictor on real broker and Redis, a watcher of Predictions and Alerts, and series helpers.
import csv
import json

import ingestkit as ik
import twinharness as th
import twinutil as tu

ROOT = ik.ROOT
REJECTED_TOPIC = f"{ROOT}/rejected/predictor"
SERIES_DIR = th.SHARED_DIR / "data" / "series"
PLANT_DIR = th.SHARED_DIR / "data" / "plant"
# Ingest refuses negative device times; old recordings (1700–1960) are moved forward by this
# whole number of days, which keeps every interval (the predictor only uses intervals).
TS_SHIFT_MS = 100_000 * 86_400_000


def prediction_topic(asset, root=ROOT):
    return f"{root}/asset/{asset}/prediction"


def alert_topic(asset, root=ROOT):
    return f"{root}/asset/{asset}/alert"


def model_key(asset):
    return f"twin:{{{asset}}}:model"


def prediction_key(asset):
    return f"twin:{{{asset}}}:prediction"


def read_series(name):
    """(ts_ms, value) lists of ../shared/data/series/<name>.csv, shifted to positive times."""
    ts, xs = [], []
    with open(SERIES_DIR / f"{name}.csv", newline="") as f:
        for row in csv.DictReader(f):
            ts.append(int(row["ts_ms"]) + TS_SHIFT_MS)
            xs.append(float(row["value"]))
    return ts, xs


def plant_model(kinds, assets):
    """A plant model document: kinds {name: {signal: spec}}, assets {id: kind}."""
    return {
        "version": 1,
        "plant": "predictor-test",
        "asset_kinds": {k: {"signals": sig} for k, sig in kinds.items()},
        "assets": {a: {"kind": k} for a, k in assets.items()},
    }


class PredictorStack(ik.IngestStack):
    """Redis + Mosquitto + one twin-ingest (one worker: TwinStates leave in telemetry order) +
    twin-predictor, with a watcher subscribed to every Prediction, Alert and predictor
    Rejected. `model` (a dict) is written to a file and given to both services."""

    def __init__(self, h, model=None, env=None, ingest_env=None, start_predictor=True):
        common = {"TWIN_INGEST_MAX_PAST_MS": 0, "TWIN_INGEST_MAX_FUTURE_MS": 0}
        self.model_path = None
        if model is not None:
            self.model_path = h.dir / "plant.json"
            self.model_path.write_text(json.dumps(model))
            common["TWIN_MODEL"] = str(self.model_path)
        common.update(ingest_env or {})
        super().__init__(h, workers=1, env=common)
        self.pb = th.load_proto()
        self.watch = h.mqtt(self.broker, client_id="prediction-watch")
        self.watch.subscribe(f"{ROOT}/asset/+/prediction")
        self.watch.subscribe(f"{ROOT}/asset/+/alert")
        self.watch.subscribe(REJECTED_TOPIC, qos=0)
        self.predictor_env = {"TWIN_PREDICTOR_PUBLISH_MS": 0, "TWIN_PREDICTOR_PERSIST_MS": 500}
        if self.model_path:
            self.predictor_env["TWIN_MODEL"] = str(self.model_path)
        self.predictor_env.update(env or {})
        self.predictor = None
        if start_predictor:
            self.start_predictor()

    def start_predictor(self, env=None, **kw):
        """A new predictor instance (its own MQTT session). To restart the same one (same
        session, as after a crash), use self.predictor.start()."""
        variables = dict(self.predictor_env)
        variables.update(env or {})
        self.predictor = self.h.service("twin-predictor", broker=self.broker, redis=self.redis,
                                        env=variables, **kw)
        return self.predictor

    # -- watching --

    def predictions(self, asset):
        return [self.pb.Prediction.FromString(m.payload)
                for m in self.watch.messages(prediction_topic(asset))]

    def wait_prediction(self, asset, basis_ts_ms, timeout=15.0, interval=0.002):
        """The first Prediction of the asset whose basis is at least basis_ts_ms."""
        topic = prediction_topic(asset)
        seen = [0]

        def find():
            msgs = self.watch.messages(topic)
            for m in msgs[seen[0]:]:
                p = self.pb.Prediction.FromString(m.payload)
                if p.basis_ts_ms >= basis_ts_ms:
                    return p
            seen[0] = len(msgs)
            return None
        return tu.wait_until(find, timeout, interval=interval,
                             what=f"a Prediction of {asset} with basis >= {basis_ts_ms}")

    def alerts(self, asset):
        return [self.pb.Alert.FromString(m.payload) for m in self.watch.messages(alert_topic(asset))]

    def wait_alert(self, asset, predicate, timeout=15.0):
        m = self.watch.wait_message(alert_topic(asset),
                                    lambda m: predicate(self.pb.Alert.FromString(m.payload)),
                                    timeout=timeout)
        return self.pb.Alert.FromString(m.payload)

    @staticmethod
    def forecast(prediction, signal):
        for f in prediction.forecasts:
            if f.signal == signal:
                return f
        return None

    # -- sending --

    def send_value(self, asset, signal, ts_ms, value, seq):
        """Publishes one sample without waiting for ingest (the Prediction is the receipt)."""
        payload = th.telemetry({signal: value}, seq=seq, ts_ms=ts_ms)
        self.pub.publish(ik.telemetry_topic(asset), payload, qos=1)
        self.sent += 1

    def stream(self, asset, signal, ts, xs, on_prediction=None, first_seq=1, timeout=15.0,
               new_signal=True):
        """Sends the samples one at a time, each after the Prediction that used the previous
        one; on_prediction(i, prediction) sees the Prediction made with samples 0..i. A new
        signal's first sample makes no forecast yet (its step is not known): the Prediction
        after the second one is the receipt for both."""
        for i, (t, x) in enumerate(zip(ts, xs)):
            self.send_value(asset, signal, t, x, first_seq + i)
            if new_signal and i == 0 and len(ts) > 1:
                continue
            p = self.wait_prediction(asset, t, timeout=timeout)
            if on_prediction:
                on_prediction(i, p)

    # -- Redis --

    def stored_prediction(self, asset):
        raw = self.redis.client(decode=False).get(prediction_key(asset))
        return None if raw is None else self.pb.Prediction.FromString(raw)

    def stored_models(self, asset):
        raw = self.redis.client(decode=False).hgetall(model_key(asset))
        return {k.decode(): self.pb.SignalModelState.FromString(v) for k, v in raw.items()}
